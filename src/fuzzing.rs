//! Entry points for the fuzz targets in `fuzz/` (and for the test that replays their corpus):
//! arbitrary bytes become a command line and environment, or an event stream for the state
//! machine, and anything that panics is a bug. Pure; not used by the binary.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use crate::config::{self, Command, ForwardTo};
use crate::exit::Status;
use crate::machine::{Action, Event, Holder, Hook, JobControl, Left, Machine, Policy, Tty, Why};
use crate::signals::{Origin, Sig};

/// Parse `data` as NUL-separated words: the first half arguments, after a lone 0xff byte the
/// environment as NAME=VALUE words. Parsing may fail; it must not panic.
pub fn parse_command_line(data: &[u8]) -> Option<Command> {
    let (args, env) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let words = |d: &[u8]| -> Vec<OsString> { d.split(|&b| b == 0).map(|w| OsString::from_vec(w.to_vec())).collect() };
    let args = std::iter::once(OsString::from("shim")).chain(words(args));
    let env: Vec<(String, OsString)> = words(env)
        .into_iter()
        .filter_map(|w| {
            let w = w.into_vec();
            let eq = w.iter().position(|&b| b == b'=')?;
            Some((String::from_utf8(w[..eq].to_vec()).ok()?, OsString::from_vec(w[eq + 1..].to_vec())))
        })
        .collect();
    let result = config::parse(args, |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    if let Ok(Command::Run(c)) = &result {
        assert!(!c.program.is_empty(), "a run without a program");
        assert!(c.verbosity <= 3);
    }
    result.ok()
}

/// Drive a machine with a policy and events decoded from `data`, checking the invariants a
/// run must keep whatever happens. Returns the number of events fed.
pub fn run_machine(data: &[u8]) -> usize {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let Some(flags) = next() else { return 0 };
    let grace = Duration::from_millis(u64::from(next().unwrap_or(0)) * 40);
    let delay = Duration::from_millis(u64::from(next().unwrap_or(0)) * 20);
    let policy = Policy {
        stop_delay: if flags & 1 != 0 { delay } else { Duration::ZERO },
        pre_stop: if flags & 2 != 0 { Hook::Configured } else { Hook::None },
        job_control: if flags & 4 != 0 { JobControl::Follow } else { JobControl::Off },
        tty: if flags & 8 != 0 { Tty::Present } else { Tty::Absent },
        ..Policy::new(grace, if flags & 16 != 0 { ForwardTo::Child } else { ForwardTo::Group })
    };
    let mut m = Machine::new(policy);
    let mut now = Duration::ZERO;
    let mut main_exited = false;
    let mut exited = false;
    let mut fed = 0;
    while let (Some(kind), Some(arg)) = (next(), next()) {
        now += Duration::from_millis(u64::from(kind >> 4) * 50);
        let sig = Sig::new(i32::from(arg % 64) + 1).filter(|s| ![9, 17, 19].contains(&s.number()));
        let event = match kind % 8 {
            0 => match sig {
                Some(s) => Event::Signal { sig: s, origin: Origin::Process(2) },
                None => Event::Tick,
            },
            1 => Event::Signal {
                sig: if arg & 1 == 0 { crate::signals::SIGINT } else { crate::signals::SIGQUIT },
                origin: if arg & 2 == 0 { Origin::Keyboard } else { Origin::ProgramKeyboard },
            },
            2 if !main_exited => {
                main_exited = true;
                let status = match sig {
                    Some(s) if arg & 0x80 != 0 => Status::Signaled(s),
                    _ => Status::Exited(arg),
                };
                let left = if arg & 0x40 != 0 { Left::Some } else { Left::Nothing };
                Event::Reaped { main: Some(status), left, main_stopped: arg & 0x20 != 0 }
            }
            3 => {
                let left = if main_exited && arg & 1 == 0 { Left::Nothing } else { Left::Some };
                Event::Reaped { main: None, left, main_stopped: false }
            }
            4 => Event::HookExited,
            5 if !main_exited => Event::Reaped { main: None, left: Left::Some, main_stopped: true },
            6 => Event::Continued {
                origin: if arg & 2 == 0 { Origin::Process(2) } else { Origin::Shim },
                holder: if arg & 1 == 0 { Holder::Shim } else { Holder::Other },
            },
            _ => Event::Tick,
        };
        let acts: Vec<Action> = m.handle(event, now).into_iter().collect();
        fed += 1;
        if exited {
            assert!(acts.is_empty(), "acted after exiting: {acts:?}");
        }
        for a in acts {
            match a {
                Action::Exit(_) => {
                    assert!(main_exited, "exit while the main child runs");
                    exited = true;
                }
                Action::Send { sig, why: Why::Escalate | Why::Forced, .. } => assert_eq!(sig.number(), 9),
                _ => {}
            }
        }
        if let Some(due) = m.deadline() {
            // Whatever was due was done: the tick after this event leaves nothing overdue.
            let _ = m.handle(Event::Tick, now);
            if let Some(after) = m.deadline() {
                assert!(after >= now, "a deadline left in the past: {after:?} at {now:?}, was {due:?}");
            }
        }
    }
    fed
}
