//! Exit statuses: how a child ended, and the code shim itself exits with (the contract's "Exit status").

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

/// Exit codes of the program that `--success-exit` turns into 0 (a JVM exits 143 on SIGTERM).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuccessExits([u64; 4]);

impl SuccessExits {
    /// Add `143`, or a signal name meaning 128+N: `TERM`, `SIGTERM`.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let code = match text.parse::<u16>() {
            Ok(n) => u8::try_from(n).map_err(|_| format!("'{text}' is not an exit code from 0 to 255"))?,
            Err(_) => match Sig::parse(text) {
                Ok(sig) => Status::Signaled(sig).exit_code().0,
                Err(_) => return Err(format!("'{text}' is neither an exit code (0-255) nor a signal name")),
            },
        };
        self.0[usize::from(code / 64)] |= 1 << (code % 64);
        Ok(())
    }

    /// The code to exit with for the program's `code`.
    pub fn apply(&self, code: ExitCode) -> ExitCode {
        if self.0[usize::from(code.0 / 64)] & (1 << (code.0 % 64)) != 0 {
            ExitCode(0)
        } else {
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{SIGKILL, SIGTERM};

    #[test]
    fn success_exits_turn_listed_codes_into_zero() {
        let mut s = SuccessExits::default();
        s.add("143").unwrap();
        s.add("SIGUSR1").unwrap();
        s.add("255").unwrap();
        assert_eq!(s.apply(ExitCode(143)), ExitCode(0));
        assert_eq!(s.apply(ExitCode(138)), ExitCode(0));
        assert_eq!(s.apply(ExitCode(255)), ExitCode(0));
        assert_eq!(s.apply(ExitCode(137)), ExitCode(137));
        assert_eq!(s.apply(ExitCode(1)), ExitCode(1));
        let mut t = SuccessExits::default();
        t.add("TERM").unwrap();
        assert_eq!(t.apply(ExitCode(143)), ExitCode(0));
        for bad in ["256", "-1", "x", ""] {
            assert!(SuccessExits::default().add(bad).is_err(), "{bad}");
        }
    }

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
