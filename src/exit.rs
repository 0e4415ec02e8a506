//! Exit statuses: how a child ended, and the code shim itself exits with (SPEC §5).

use crate::signals::Sig;

/// The code shim exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCode(pub u8);

/// The command line or an environment variable is wrong.
pub const USAGE: ExitCode = ExitCode(2);
/// shim itself failed (fork, setup), so the program may never have run.
pub const FAILED: ExitCode = ExitCode(125);
/// The program was found but could not be executed.
pub const NOT_EXECUTABLE: ExitCode = ExitCode(126);
/// The program was not found.
pub const NOT_FOUND: ExitCode = ExitCode(127);

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(u8),
    Signaled(Sig),
}

impl Status {
    /// The shell's convention: the exit code, or 128+N for death by signal N.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Status::Exited(code) => ExitCode(code),
            // Signal numbers end at 64, so 128+N fits.
            Status::Signaled(sig) => ExitCode(128u8.saturating_add(sig.number() as u8)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{SIGKILL, SIGTERM};

    #[test]
    fn follows_the_shell_convention() {
        assert_eq!(Status::Exited(0).exit_code(), ExitCode(0));
        assert_eq!(Status::Exited(255).exit_code(), ExitCode(255));
        assert_eq!(Status::Signaled(SIGKILL).exit_code(), ExitCode(137));
        assert_eq!(Status::Signaled(SIGTERM).exit_code(), ExitCode(143));
        let rtmax = Sig::new(crate::signals::max()).unwrap();
        assert_eq!(Status::Signaled(rtmax).exit_code(), ExitCode(192));
    }
}
