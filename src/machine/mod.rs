//! The supervision state machine: every decision shim makes once the program runs — what to
//! forward and to whom, when a stop begins, how long it is held back, when to escalate to
//! SIGKILL, when to exit and with which code (docs/contract.md: Running, Stopping, Exit
//! status). Sans-IO: it is fed [`Event`]s with the current monotonic time and answers with
//! [`Action`]s; it never calls the kernel, so every path is unit-tested here.

mod action;
mod policy;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use action::{Action, Actions, Dropped, Target, Why};
pub use policy::{Hook, JobControl, Policy, Tty};

use crate::config::ForwardTo;
use crate::exit::Status;
use crate::signals::{Origin, Sig, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGTERM};

/// When an event happens (monotonic, from any fixed origin), asked for only where the answer
/// depends on it: most events, a forwarded signal among them, need no time, and a caller that
/// reads a clock for it then reads none. The same time however often it is asked during one
/// event.
pub trait Now {
    fn now(&mut self) -> Duration;
}

impl Now for Duration {
    fn now(&mut self) -> Duration {
        *self
    }
}

impl<N: Now + ?Sized> Now for &mut N {
    fn now(&mut self) -> Duration {
        (**self).now()
    }
}

/// After escalation, SIGKILL again this often while anything is left: a process forked between
/// the scan and the kill (outside a PID namespace nothing freezes them) is caught next round.
pub const REKILL_EVERY: Duration = Duration::from_secs(1);

/// Stop signals forwarded before the next one forces the stop.
const FORCE_AFTER_FORWARDED: u8 = 2;

/// Who holds the terminal when shim is resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// shim's group: the user's shell did `fg`.
    Shim,
    /// Someone else (`bg`, or no terminal at all).
    Other,
}

/// What shim's health endpoint answers (`--health`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// 200: the program runs and no stop has begun.
    Serving,
    /// 503 from the instant a stop begins (before its delay and hook, so that a load
    /// balancer stops routing while the program still serves) until shim exits.
    Draining,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// shim received a signal (other than SIGCHLD, which becomes [`Event::Reaped`], and
    /// SIGCONT, which becomes [`Event::Continued`]).
    Signal { sig: Sig, origin: Origin },
    /// One full drain of `waitpid`: the main child's status if it was reaped in it, whether
    /// any child of shim remains, and whether the main child was seen to stop.
    Reaped { main: Option<Status>, left: Left, main_stopped: bool },
    /// The pre-stop hook exited.
    HookExited,
    /// shim received SIGCONT: it was resumed, and `holder` has the terminal now.
    Continued { origin: Origin, holder: Holder },
    /// Time passed: whatever was due by now is done. Fed after every wake-up while a deadline
    /// is set, so that a steady stream of signals can never starve it; with none set, a tick
    /// does nothing.
    Tick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    Some,
    Nothing,
}

/// What began a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Requested(Sig),
    ChildExited,
}

/// Whether the pre-stop hook is still running while a stop is held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HookRun {
    Running,
    /// Finished, failed to start, or none configured.
    Over,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The stop signal is held back while the delay or the hook runs, until `release_at`.
    Holding { sig: Sig, release_at: Duration, hook: HookRun },
    /// Forwarded: waiting for everything to exit until `deadline`.
    Draining { deadline: Duration },
    /// SIGKILL sent at `last`; again every [`REKILL_EVERY`] while anything is left.
    Killing { last: Duration },
}

#[derive(Clone, Copy, Debug)]
struct Stopping {
    cause: Stop,
    phase: Phase,
    /// Stop signals forwarded so far in this stop (by shim, or by the terminal).
    forwarded: u8,
    /// Ctrl-Cs typed so far in this stop.
    ctrl_c: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Main {
    Running,
    Exited(Status),
}

/// The state of one supervision.
#[derive(Debug)]
pub struct Machine {
    policy: Policy,
    main: Main,
    stop: Option<Stopping>,
    /// shim stopped itself after the program stopped.
    suspended: bool,
    /// The program is stopped: a terminating signal alone would stay pending.
    main_stopped: bool,
    done: bool,
}

impl Machine {
    pub fn new(policy: Policy) -> Self {
        Machine { policy, main: Main::Running, stop: None, suspended: false, main_stopped: false, done: false }
    }

    /// When [`Event::Tick`] is next due, if ever. `None` means shim may sleep until a signal.
    pub fn deadline(&self) -> Option<Duration> {
        if self.done {
            return None;
        }
        Some(match self.stop?.phase {
            Phase::Holding { release_at, .. } => release_at,
            Phase::Draining { deadline } => deadline,
            Phase::Killing { last } => last.saturating_add(REKILL_EVERY),
        })
    }

    /// What a health check is answered with now. It flips once, when a stop begins or the
    /// program exits, and never back.
    pub fn health(&self) -> Health {
        match (self.stop, self.main) {
            (None, Main::Running) => Health::Serving,
            _ => Health::Draining,
        }
    }

    /// The stop in progress, if any.
    pub fn stopping(&self) -> Option<Stop> {
        self.stop.map(|s| s.cause)
    }

    /// Decide what `event`, happening at `now` (monotonic, from any fixed origin), calls for.
    pub fn handle(&mut self, event: Event, mut now: impl Now) -> Actions {
        if self.done {
            return Actions::none();
        }
        let now = &mut now;
        match event {
            Event::Signal { sig, origin } => self.on_signal(sig, origin, now),
            Event::Reaped { main, left, main_stopped } => self.on_reaped(main, left, main_stopped, now),
            Event::HookExited => self.on_hook_exited(now),
            Event::Continued { origin, holder } => self.on_continued(origin, holder),
            Event::Tick => self.on_tick(now),
        }
    }

    fn on_signal(&mut self, sig: Sig, origin: Origin, now: &mut impl Now) -> Actions {
        if origin == Origin::Shim {
            return Actions::one(Action::Drop { sig, why: Dropped::OwnSignal });
        }
        if sig.is_fault() {
            return Actions::one(Action::Drop { sig, why: Dropped::Fault });
        }
        let ctrl_c = sig == SIGINT && matches!(origin, Origin::Keyboard | Origin::ProgramKeyboard);
        // The terminal sent it to the program's group itself: sending it again would make a
        // program that counts its Ctrl-Cs count two. Nor does it begin a stop: it is the
        // program's to act on, and a shell or a REPL takes Ctrl-C to cancel a line.
        let delivered = origin == Origin::ProgramKeyboard;
        if let Some(s) = self.stop.as_mut() {
            if matches!(s.phase, Phase::Killing { .. }) {
                return Actions::one(Action::Drop { sig, why: Dropped::NoTarget });
            }
            if sig.is_stop() {
                // During a stop, a Ctrl-C the program got from the terminal is the user asking
                // again. One that shim got itself began a stop, so only a second one does.
                let forced = s.forwarded >= FORCE_AFTER_FORWARDED || (ctrl_c && (delivered || s.ctrl_c > 0));
                s.ctrl_c += u8::from(ctrl_c);
                if forced {
                    s.phase = Phase::Killing { last: now.now() };
                    return Actions::one(Action::Send { sig: SIGKILL, to: Target::Everyone, why: Why::Forced });
                }
                if delivered {
                    s.forwarded += 1;
                    // Held back or not, the program has a stop signal now: the grace starts.
                    let mut kill_hook = None;
                    if let Phase::Holding { hook, .. } = s.phase {
                        kill_hook = (hook == HookRun::Running).then_some(Action::KillHook);
                        s.phase = Phase::Draining { deadline: now.now().saturating_add(self.policy.grace) };
                    }
                    return Actions::of([kill_hook, Some(Action::Drop { sig, why: Dropped::Delivered }), None]);
                }
                // A second stop signal while the first is held back releases it at once.
                if matches!(s.phase, Phase::Holding { .. }) {
                    return self.release(sig, now);
                }
                return self.forward_stop(sig);
            }
        } else if sig.is_stop() && !delivered {
            return self.begin_requested_stop(sig, ctrl_c, now);
        }
        if delivered {
            return Actions::one(Action::Drop { sig, why: Dropped::Delivered });
        }
        let Some(to) = self.forward_target() else {
            return Actions::one(Action::Drop { sig, why: Dropped::NoTarget });
        };
        let Some(out) = self.policy.map.apply(sig) else {
            return Actions::one(Action::Drop { sig, why: Dropped::Mapped });
        };
        // A stopped program would only hold a hangup pending; wake it, as a shell's `kill` does.
        let wake = (out == SIGHUP && self.main_stopped).then_some(Action::Send { sig: SIGCONT, to, why: Why::Wake });
        Actions::of([None, Some(Action::Send { sig: out, to, why: Why::Forward }), wake])
    }

    /// Another stop signal during a stop: passed on, mapped, with its wake.
    fn forward_stop(&mut self, sig: Sig) -> Actions {
        if let Some(s) = self.stop.as_mut() {
            s.forwarded += 1;
        }
        let to = self.stop_target();
        match self.policy.map.apply(sig) {
            Some(out) => Actions::of([None, Some(Action::Send { sig: out, to, why: Why::Forward }), self.wake(to)]),
            None => Actions::one(Action::Drop { sig, why: Dropped::Mapped }),
        }
    }

    /// SIGCONT after every stop signal, to the same target: a stopped process (the program,
    /// or a daemon stopped on its own) cannot act on a stop signal until it runs again.
    fn wake(&mut self, to: Target) -> Option<Action> {
        self.main_stopped = false;
        Some(Action::Send { sig: SIGCONT, to, why: Why::Wake })
    }

    fn on_continued(&mut self, origin: Origin, holder: Holder) -> Actions {
        if origin == Origin::Shim {
            return Actions::one(Action::Drop { sig: SIGCONT, why: Dropped::OwnSignal });
        }
        if self.stop.is_some_and(|s| matches!(s.phase, Phase::Killing { .. })) {
            return Actions::one(Action::Drop { sig: SIGCONT, why: Dropped::NoTarget });
        }
        self.main_stopped = false;
        let foreground =
            (std::mem::take(&mut self.suspended) && holder == Holder::Shim).then_some(Action::ForegroundChild);
        let Some(to) = self.forward_target() else {
            return Actions::one(Action::Drop { sig: SIGCONT, why: Dropped::NoTarget });
        };
        let send = match self.policy.map.apply(SIGCONT) {
            Some(sig) => Action::Send { sig, to, why: Why::Forward },
            None => Action::Drop { sig: SIGCONT, why: Dropped::Mapped },
        };
        Actions::of([foreground, Some(send), None])
    }

    fn begin_requested_stop(&mut self, sig: Sig, ctrl_c: bool, now: &mut impl Now) -> Actions {
        let mut stop = Stopping {
            cause: Stop::Requested(sig),
            phase: Phase::Draining { deadline: now.now().saturating_add(self.policy.grace) },
            forwarded: 0,
            ctrl_c: u8::from(ctrl_c),
        };
        let hook = self.policy.pre_stop == Hook::Configured;
        if self.policy.stop_delay.is_zero() && !hook {
            self.stop = Some(stop);
            return self.release(sig, now);
        }
        // The hook is bounded by the delay, or by the grace period when there is none.
        let bound = if self.policy.stop_delay.is_zero() { self.policy.grace } else { self.policy.stop_delay };
        let release_at = now.now().saturating_add(bound);
        let run = if hook { HookRun::Running } else { HookRun::Over };
        stop.phase = Phase::Holding { sig, release_at, hook: run };
        self.stop = Some(stop);
        let start = hook.then_some(Action::StartHook);
        Actions::of([None, Some(Action::Hold { sig, until: release_at }), start])
    }

    /// Forward the held (or a new) stop signal now and start the grace period; the hook, if
    /// still running, has had its time.
    fn release(&mut self, sig: Sig, now: &mut impl Now) -> Actions {
        let deadline = now.now().saturating_add(self.policy.grace);
        let Some(s) = self.stop.as_mut() else { return Actions::none() };
        let kill_hook = matches!(s.phase, Phase::Holding { hook: HookRun::Running, .. }).then_some(Action::KillHook);
        let why = if s.forwarded == 0 { Why::StopBegins } else { Why::Forward };
        s.phase = Phase::Draining { deadline };
        s.forwarded += 1;
        let to = self.stop_target();
        match self.policy.map.apply(sig) {
            Some(out) => Actions::of([kill_hook, Some(Action::Send { sig: out, to, why }), self.wake(to)]),
            None => Actions::of([kill_hook, Some(Action::Drop { sig, why: Dropped::Mapped }), None]),
        }
    }

    fn on_reaped(&mut self, main: Option<Status>, left: Left, main_stopped: bool, now: &mut impl Now) -> Actions {
        let just_exited = match (self.main, main) {
            (Main::Running, Some(status)) => {
                self.main = Main::Exited(status);
                true
            }
            _ => false,
        };
        let Main::Exited(status) = self.main else {
            // An exit reaped in the same drain supersedes a stop seen in it: only a program
            // still there can be stopped.
            return if main_stopped { self.on_main_stopped() } else { Actions::none() };
        };
        if left == Left::Nothing {
            self.done = true;
            let exit = Action::Exit(self.policy.success.apply(status.exit_code()));
            let restore = (self.policy.tty == Tty::Present).then_some(Action::RestoreTerminal);
            return Actions::of([restore, Some(exit), None]);
        }
        if !just_exited {
            return Actions::none();
        }
        let Some(s) = self.stop else {
            // The program exited on its own and others remain: they are stopped now, with no
            // delay or hook (those are for stops asked for by a signal).
            self.stop = Some(Stopping {
                cause: Stop::ChildExited,
                phase: Phase::Draining { deadline: now.now().saturating_add(self.policy.grace) },
                forwarded: 0,
                ctrl_c: 0,
            });
            return match self.policy.map.apply(SIGTERM) {
                Some(sig) => Actions::of([
                    None,
                    Some(Action::Send { sig, to: Target::Everyone, why: Why::Leftovers }),
                    self.wake(Target::Everyone),
                ]),
                None => Actions::one(Action::Drop { sig: SIGTERM, why: Dropped::Mapped }),
            };
        };
        match (s.phase, s.cause) {
            // Exited while the stop was held back: proceed now.
            (Phase::Holding { sig, .. }, _) => self.release(sig, now),
            // Only the child got the stop signal; the rest get it now. With the group as
            // target they have it already, and a second SIGTERM often means "quit now".
            (Phase::Draining { .. }, Stop::Requested(sig)) if self.policy.forward_to == ForwardTo::Child => {
                match self.policy.map.apply(sig) {
                    Some(out) => Actions::of([
                        None,
                        Some(Action::Send { sig: out, to: Target::Everyone, why: Why::Leftovers }),
                        self.wake(Target::Everyone),
                    ]),
                    None => Actions::none(),
                }
            }
            _ => Actions::none(),
        }
    }

    fn on_hook_exited(&mut self, now: &mut impl Now) -> Actions {
        let Some(s) = self.stop.as_mut() else { return Actions::none() };
        let Phase::Holding { sig, hook: hook @ HookRun::Running, .. } = &mut s.phase else {
            return Actions::none();
        };
        *hook = HookRun::Over;
        let sig = *sig;
        // With no delay, the hook is what holds the stop back: its end releases it.
        if self.policy.stop_delay.is_zero() {
            self.release(sig, now)
        } else {
            Actions::none()
        }
    }

    fn on_main_stopped(&mut self) -> Actions {
        // Stopped while a stop is under way (the stop signal may have been taken before the
        // SIGCHLD that reported this): it could never act on it, so wake it.
        if self.stop.is_some_and(|s| matches!(s.phase, Phase::Draining { .. }) && s.forwarded > 0) {
            let to = self.stop_target();
            return Actions::one(Action::Send { sig: SIGCONT, to, why: Why::Wake });
        }
        self.main_stopped = true;
        if self.policy.job_control == JobControl::Follow && self.stop.is_none() {
            self.suspended = true;
            return Actions::one(Action::SuspendSelf);
        }
        Actions::none()
    }

    fn on_tick(&mut self, now: &mut impl Now) -> Actions {
        let mut at = now.now();
        if self.deadline().is_none_or(|due| at < due) {
            return Actions::none();
        }
        let Some(s) = self.stop.as_mut() else { return Actions::none() };
        match s.phase {
            Phase::Holding { sig, .. } => self.release(sig, &mut at),
            Phase::Draining { .. } | Phase::Killing { .. } => {
                s.phase = Phase::Killing { last: at };
                Actions::one(Action::Send { sig: SIGKILL, to: Target::Everyone, why: Why::Escalate })
            }
        }
    }

    /// Where a stop signal goes. With the group as target, everyone gets it once, so a daemon
    /// that left the group (setsid) drains too instead of waiting for SIGKILL. With the child
    /// as target, only the child, while it runs; once it is gone, everyone left.
    fn stop_target(&self) -> Target {
        match (self.policy.forward_to, self.main) {
            (ForwardTo::Group, _) | (ForwardTo::Child, Main::Exited(_)) => Target::Everyone,
            (ForwardTo::Child, Main::Running) => Target::Child,
        }
    }

    /// Where any other received signal goes now; `None` when that target no longer exists.
    fn forward_target(&self) -> Option<Target> {
        match (self.policy.forward_to, self.main) {
            (ForwardTo::Group, _) => Some(Target::Group),
            (ForwardTo::Child, Main::Running) => Some(Target::Child),
            (ForwardTo::Child, Main::Exited(_)) => None,
        }
    }
}
