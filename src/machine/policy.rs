//! The fixed facts a machine decides by: the user's configuration, and what shim found at
//! start (PID 1 or not, a terminal or not), turned once into [`Policy`].

use std::time::Duration;

use crate::config::{Config, ForwardTo};
use crate::exit::SuccessExits;
use crate::signals::SignalMap;

#[derive(Clone, Debug)]
pub struct Policy {
    pub grace: Duration,
    pub forward_to: ForwardTo,
    pub job_control: JobControl,
    /// How long a requested stop keeps the program serving before the signal is forwarded.
    pub stop_delay: Duration,
    pub pre_stop: Hook,
    pub map: SignalMap,
    pub success: SuccessExits,
    pub tty: Tty,
}

/// Whether stdin is a terminal the program may have been given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tty {
    Absent,
    /// On exit, the terminal goes back to shim's group if the program's group holds it.
    Present,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobControl {
    /// PID 1, or no terminal: shim never stops itself.
    Off,
    /// Not PID 1, with a terminal: follow the program's stops and resumes, so the user's
    /// shell sees the job stop and can resume it.
    Follow,
}

/// Whether a pre-stop hook is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    None,
    Configured,
}

impl Policy {
    /// The defaults with the given grace and target.
    pub fn new(grace: Duration, forward_to: ForwardTo) -> Policy {
        Policy {
            grace,
            forward_to,
            job_control: JobControl::Off,
            stop_delay: Duration::ZERO,
            pre_stop: Hook::None,
            map: SignalMap::default(),
            success: SuccessExits::default(),
            tty: Tty::Absent,
        }
    }

    /// The policy for `config`, run as PID 1 or not, with stdin a terminal or not.
    pub fn from_config(config: &Config, pid1: bool, tty: Tty) -> Policy {
        Policy {
            // PID 1 has no one to hand a terminal back to: it never stops itself. Started in
            // the background (`shim cat &`) it follows too: the program stops on its first
            // read of the terminal, shim with it, and `fg` brings both back.
            job_control: if !pid1 && tty == Tty::Present { JobControl::Follow } else { JobControl::Off },
            // Nor has it anyone to give the terminal back to when it exits: its namespace ends.
            tty: if pid1 { Tty::Absent } else { tty },
            stop_delay: config.stop_delay,
            pre_stop: if config.pre_stop.is_empty() { Hook::None } else { Hook::Configured },
            map: config.map.clone(),
            success: config.success.clone(),
            ..Policy::new(config.grace, config.forward_to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let words = std::iter::once("shim").chain(args.iter().copied()).map(std::ffi::OsString::from);
        match crate::config::parse(words, |_| None) {
            Ok(crate::config::Command::Run(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn job_control_only_outside_pid_1_and_with_a_terminal() {
        let c = config(&["prog"]);
        assert_eq!(Policy::from_config(&c, false, Tty::Present).job_control, JobControl::Follow);
        assert_eq!(Policy::from_config(&c, true, Tty::Present).job_control, JobControl::Off);
        assert_eq!(Policy::from_config(&c, false, Tty::Absent).job_control, JobControl::Off);
        assert_eq!(Policy::from_config(&c, true, Tty::Absent).job_control, JobControl::Off);
    }

    #[test]
    fn the_configuration_is_carried_over() {
        let c = config(&["-g", "3s", "-d", "2s", "-p", "hook", "-m", "TERM:QUIT", "-s", "143", "prog"]);
        let p = Policy::from_config(&c, true, Tty::Absent);
        assert_eq!(p.grace, Duration::from_secs(3));
        assert_eq!(p.stop_delay, Duration::from_secs(2));
        assert_eq!(p.pre_stop, Hook::Configured);
        assert_eq!(p.map, c.map);
        assert_eq!(p.success, c.success);
        assert_eq!(Policy::from_config(&config(&["prog"]), true, Tty::Absent).pre_stop, Hook::None);
    }
}
