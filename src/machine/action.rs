//! What the machine answers with: [`Action`]s, who they are for ([`Target`]), why
//! ([`Why`], [`Dropped`]) as the log says it, and the fixed-size [`Actions`] list that
//! carries them without allocating.

use std::fmt;
use std::time::Duration;

use crate::exit::ExitCode;
use crate::signals::Sig;

/// Who a signal goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The main child alone.
    Child,
    /// The main child's process group (its pgid is the child's pid, always > 1).
    Group,
    /// Everything shim is responsible for: the group and, as PID 1, every process in the
    /// namespace; as subreaper, every descendant.
    Everyone,
}

/// Why a signal is sent: for the log, and for tests to tell the paths apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A signal shim received, passed on.
    Forward,
    /// SIGCONT after a stop signal: a stopped process could not act on it otherwise.
    Wake,
    /// The first stop signal goes out: the grace period starts now.
    StopBegins,
    /// The main child exited and others remain.
    Leftovers,
    /// The grace period ran out.
    Escalate,
    /// A third stop signal, or a second Ctrl-C: no more waiting.
    Forced,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Forward => "forwarding",
            Why::Wake => "waking, so that a stopped process acts on the stop signal:",
            Why::StopBegins => "stopping:",
            Why::Leftovers => "main child exited, others remain:",
            Why::Escalate => "grace period is over:",
            Why::Forced => "stop forced (a third stop signal, or Ctrl-C during the stop):",
        })
    }
}

/// Why a received signal was not passed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// A synchronous fault signal: meaningless to the program.
    Fault,
    /// Its target is gone (the main child exited, or everything was already killed).
    NoTarget,
    /// shim sent it to itself: a SIGPIPE from writing to a closed stderr, say.
    OwnSignal,
    /// `--map-signal FROM:0`.
    Mapped,
    /// The terminal sent it to the program's group already.
    Delivered,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dropped::Fault => "a fault signal means nothing to the program",
            Dropped::NoTarget => "nothing left to send it to",
            Dropped::OwnSignal => "shim caused it itself",
            Dropped::Mapped => "--map-signal drops it",
            Dropped::Delivered => "the terminal sent it to the program's group already",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Action {
    Send {
        sig: Sig,
        to: Target,
        why: Why,
    },
    Drop {
        sig: Sig,
        why: Dropped,
    },
    /// A stop began; `sig` is held back until `until` (the delay, or the hook's bound).
    Hold {
        sig: Sig,
        until: Duration,
    },
    /// Start the pre-stop hook.
    StartHook,
    /// The hook overran its bound: SIGKILL it.
    KillHook,
    /// Stop shim itself (SIGSTOP) after the program stopped, handing the terminal back.
    SuspendSelf,
    /// Give the terminal's foreground back to the program's group before it resumes.
    ForegroundChild,
    /// Take the terminal back from the program's group, if it holds it, before exiting.
    RestoreTerminal,
    Exit(ExitCode),
}

/// The actions that answer one event, in order: three at most, which is all any path needs
/// (kill the hook, forward, wake). Built whole, never appended to, so nothing can be dropped
/// for want of room.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Actions([Option<Action>; 3]);

impl Actions {
    pub(super) fn none() -> Self {
        Actions::default()
    }

    pub(super) fn one(a: Action) -> Self {
        Actions([None, Some(a), None])
    }

    pub(super) fn of(actions: [Option<Action>; 3]) -> Self {
        Actions(actions)
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Action>, 3>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}
