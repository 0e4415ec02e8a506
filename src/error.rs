//! shim's one error type: a message that reads as one `shim:` line saying what failed and
//! what to do, and the exit code that goes with it (the contract's "Exit status").

use std::ffi::OsStr;
use std::fmt;

use nix::errno::Errno;

use crate::exit::{self, ExitCode};
use crate::health::addr::Listen;
use crate::sys::SpawnError;
use crate::user::UserSpec;

#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub code: ExitCode,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    /// shim's own setup failed: `failed to <what>: <cause>`.
    pub fn setup(what: &str, errno: Errno) -> Error {
        Error { message: format!("failed to {what}: {}{}", errno.desc(), limit_hint(errno)), code: exit::FAILED }
    }

    /// `--health`'s address could not be listened on.
    pub fn health(addr: &Listen, errno: Errno) -> Error {
        let hint = match errno {
            Errno::EADDRINUSE => "; something else listens there: choose another --health port",
            Errno::EACCES => "; ports below 1024 need root or CAP_NET_BIND_SERVICE: choose a higher one",
            Errno::EADDRNOTAVAIL => "; no interface here has that address: use :PORT for all of them",
            _ => limit_hint(errno),
        };
        Error {
            message: format!("failed to listen for health checks on {addr}: {}{hint}", errno.desc()),
            code: exit::FAILED,
        }
    }

    /// `--user` names someone the image's account files do not have, or they cannot be read:
    /// found before anything runs.
    pub fn user(spec: &UserSpec, why: &str) -> Error {
        Error { message: format!("failed to run as '{spec}': {why}"), code: exit::FAILED }
    }

    /// The program could not be started.
    pub fn spawn(program: &OsStr, e: SpawnError) -> Error {
        let name = program.to_string_lossy();
        match e {
            SpawnError::BadArgument => Error {
                message: format!("failed to run '{name}': an argument or variable holds a NUL byte"),
                code: exit::FAILED,
            },
            SpawnError::Setup { what, errno } => {
                let hint = match errno {
                    Errno::EAGAIN => "; too many processes: raise the limit (ulimit -u, pids.max)",
                    Errno::ENOMEM => "; out of memory",
                    _ => limit_hint(errno),
                };
                Error {
                    message: format!("failed to start '{name}': {what}: {}{hint}", errno.desc()),
                    code: exit::FAILED,
                }
            }
            SpawnError::CutReport { got } => Error {
                message: format!(
                    "failed to start '{name}': the child died while reporting why it could not run it \
                     ({got} of its bytes came); try again, and check what kills processes here"
                ),
                code: exit::FAILED,
            },
            SpawnError::ChildSetup { what, errno } => Error {
                message: format!("failed to start '{name}': the child could not {what}: {}", errno.desc()),
                code: exit::FAILED,
            },
            SpawnError::SwitchUser { what, errno } => {
                let hint = match errno {
                    Errno::EPERM => "; --user needs shim to run as root, with CAP_SETUID and CAP_SETGID",
                    _ => "",
                };
                Error {
                    message: format!("failed to start '{name}': the child could not {what}: {}{hint}", errno.desc()),
                    code: exit::FAILED,
                }
            }
            SpawnError::Exec { errno, interpreter } => {
                let code = exec_failure_code(errno);
                let reason = match errno {
                    Errno::ENOENT if interpreter.is_some() => {
                        let i = interpreter.unwrap_or_default();
                        format!(
                            "its interpreter '{}' (its #! line) was not found; install it or fix that line",
                            i.to_string_lossy()
                        )
                    }
                    Errno::ENOENT | Errno::ENOTDIR if name.contains('/') => "no such file".to_string(),
                    Errno::ENOENT | Errno::ENOTDIR => {
                        "not found in PATH; check the name or give its full path".to_string()
                    }
                    Errno::EACCES => "permission denied; is it a directory, or not executable (chmod +x)?".to_string(),
                    Errno::ENOEXEC => {
                        "exec format error; a script needs a #! line, or the binary is for another architecture"
                            .to_string()
                    }
                    e => e.desc().to_lowercase(),
                };
                Error { message: format!("failed to run '{name}': {reason}"), code }
            }
        }
    }
}

/// The shell's convention: 127 when the program does not exist, 126 when it exists but
/// cannot be run.
pub fn exec_failure_code(errno: Errno) -> ExitCode {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => exit::NOT_FOUND,
        _ => exit::NOT_EXECUTABLE,
    }
}

/// What to do when a call failed for want of a descriptor: the one limit a user can raise.
fn limit_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EMFILE | Errno::ENFILE => "; raise the open-files limit (ulimit -n)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_127_anything_else_126() {
        assert_eq!(exec_failure_code(Errno::ENOENT), exit::NOT_FOUND);
        assert_eq!(exec_failure_code(Errno::ENOTDIR), exit::NOT_FOUND);
        for e in [Errno::EACCES, Errno::ENOEXEC, Errno::EPERM, Errno::ETXTBSY, Errno::E2BIG] {
            assert_eq!(exec_failure_code(e), exit::NOT_EXECUTABLE, "{e}");
        }
    }

    #[test]
    fn messages_name_the_program_and_what_to_do() {
        let exec = |errno| SpawnError::Exec { errno, interpreter: None };
        let e = Error::spawn(OsStr::new("srv"), exec(Errno::ENOENT));
        assert_eq!(e.message, "failed to run 'srv': not found in PATH; check the name or give its full path");
        let e = Error::spawn(OsStr::new("./srv"), exec(Errno::ENOENT));
        assert_eq!(e.message, "failed to run './srv': no such file");
        let missing = SpawnError::Exec { errno: Errno::ENOENT, interpreter: Some("/bin/bash".into()) };
        let e = Error::spawn(OsStr::new("./x.sh"), missing);
        assert_eq!(
            e.message,
            "failed to run './x.sh': its interpreter '/bin/bash' (its #! line) was not found; install it or fix that line"
        );
        assert_eq!(e.code, exit::NOT_FOUND);
        let e = Error::spawn(OsStr::new("./srv"), exec(Errno::ENOENT));
        assert_eq!(e.message, "failed to run './srv': no such file");
        let e = Error::spawn(OsStr::new("srv"), SpawnError::Setup { what: "fork", errno: Errno::EAGAIN });
        assert!(
            e.message.starts_with("failed to start 'srv': fork: ") && e.message.contains("raise the limit"),
            "{}",
            e.message
        );
        assert_eq!(e.code, exit::FAILED);
        let e =
            Error::spawn(OsStr::new("srv"), SpawnError::SwitchUser { what: "set its user id", errno: Errno::EPERM });
        assert!(e.message.starts_with("failed to start 'srv': the child could not set its user id: "), "{}", e.message);
        assert!(
            e.message.ends_with("--user needs shim to run as root, with CAP_SETUID and CAP_SETGID"),
            "{}",
            e.message
        );
        assert_eq!(e.code, exit::FAILED);
    }
}
