//! The supervision state machine: every decision shim makes once the program runs — what to
//! forward and to whom, when a stop begins, how long it is held back, when to escalate to
//! SIGKILL, when to exit and with which code (SPEC §3–§5). Sans-IO: it is fed [`Event`]s with
//! the current monotonic time and answers with [`Action`]s; it never calls the kernel, so
//! every path is unit-tested here.

use std::time::Duration;

use crate::config::ForwardTo;
use crate::exit::{ExitCode, Status, SuccessExits};
use crate::signals::{Sig, SignalMap, SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGTERM};

/// After escalation, SIGKILL again this often while anything is left: a process forked between
/// the scan and the kill (outside a PID namespace nothing freezes them) is caught next round.
pub const REKILL_EVERY: Duration = Duration::from_secs(1);

/// Stop signals forwarded before the next one forces the stop.
const FORCE_AFTER_FORWARDED: u8 = 2;

/// The fixed facts a machine decides by.
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

/// Who holds the terminal when shim is resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// shim's group: the user's shell did `fg`.
    Shim,
    /// Someone else (`bg`, or no terminal at all).
    Other,
}

impl Policy {
    /// The defaults of SPEC §1 with the given grace and target.
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
    /// The first stop signal goes out: the grace period starts now.
    StopBegins,
    /// The main child exited and others remain.
    Leftovers,
    /// The grace period ran out.
    Escalate,
    /// A third stop signal, or a second Ctrl-C: no more waiting.
    Forced,
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

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// shim received a signal (other than SIGCHLD, which becomes [`Event::Reaped`]).
    Signal(Sig),
    /// The terminal driver sent it: Ctrl-C, Ctrl-\.
    KeyboardSignal(Sig),
    /// shim received a signal it caused itself.
    OwnSignal(Sig),
    /// One full drain of `waitpid`: the main child's status if it was reaped in it, and
    /// whether any child of shim remains.
    Reaped { main: Option<Status>, left: Left },
    /// The pre-stop hook exited.
    HookExited,
    /// The main child stopped (SIGTSTP, SIGTTIN, SIGSTOP...).
    MainStopped,
    /// shim received SIGCONT: it was resumed, and `holder` has the terminal now.
    Continued { holder: Holder },
    /// The timer set from [`Machine::deadline`] fired.
    Tick,
}

/// Who sent a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Outside,
    Keyboard,
    Shim,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The stop signal is held back while the delay or the hook runs; released at
    /// `release_at`, or when the hook exits if `early` (a hook with no delay).
    Holding { sig: Sig, release_at: Duration, early: bool },
    /// Forwarded: waiting for everything to exit until `deadline`.
    Draining { deadline: Duration },
    /// SIGKILL sent at `last`; again every [`REKILL_EVERY`] while anything is left.
    Killing { last: Duration },
}

#[derive(Clone, Copy, Debug)]
struct Stopping {
    cause: Stop,
    phase: Phase,
    /// Stop signals forwarded so far in this stop.
    forwarded: u8,
    /// Ctrl-Cs received so far in this stop.
    keyboard_interrupts: u8,
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
    hook_running: bool,
    /// shim stopped itself after the program stopped.
    suspended: bool,
    /// The program is stopped: a stop signal alone would stay pending.
    main_stopped: bool,
    done: bool,
}

/// At most three actions answer one event.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Actions([Option<Action>; 3]);

impl Actions {
    fn none() -> Self {
        Actions::default()
    }
    fn one(a: Action) -> Self {
        Actions([Some(a), None, None])
    }
    fn two(a: Action, b: Action) -> Self {
        Actions([Some(a), Some(b), None])
    }
    /// Append `a`; a full list keeps what it has (three is the most any path needs).
    fn and(mut self, a: Option<Action>) -> Self {
        if let Some(slot) = self.0.iter_mut().find(|s| s.is_none()) {
            *slot = a;
        }
        self
    }
    fn maybe_then(first: Option<Action>, then: Action) -> Self {
        match first {
            Some(a) => Actions::two(a, then),
            None => Actions::one(then),
        }
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Action>, 3>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

impl Machine {
    pub fn new(policy: Policy) -> Self {
        Machine {
            policy,
            main: Main::Running,
            stop: None,
            hook_running: false,
            suspended: false,
            main_stopped: false,
            done: false,
        }
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

    /// Whether [`Event::Tick`] is due at `now`.
    pub fn is_due(&self, now: Duration) -> bool {
        self.deadline().is_some_and(|due| now >= due)
    }

    /// The stop in progress, if any.
    pub fn stopping(&self) -> Option<Stop> {
        self.stop.map(|s| s.cause)
    }

    /// Decide what `event`, happening at `now` (monotonic, from any fixed origin), calls for.
    pub fn handle(&mut self, event: Event, now: Duration) -> Actions {
        if self.done {
            return Actions::none();
        }
        match event {
            Event::Signal(sig) => self.on_signal(sig, Origin::Outside, now),
            Event::KeyboardSignal(sig) => self.on_signal(sig, Origin::Keyboard, now),
            Event::OwnSignal(sig) => Actions::one(Action::Drop { sig, why: Dropped::OwnSignal }),
            Event::Reaped { main, left } => self.on_reaped(main, left, now),
            Event::HookExited => self.on_hook_exited(now),
            Event::MainStopped => self.on_main_stopped(),
            Event::Continued { holder } => self.on_continued(holder),
            Event::Tick => self.on_tick(now),
        }
    }

    fn on_signal(&mut self, sig: Sig, origin: Origin, now: Duration) -> Actions {
        if sig.is_fault() {
            return Actions::one(Action::Drop { sig, why: Dropped::Fault });
        }
        if let Some(s) = self.stop.as_mut() {
            if matches!(s.phase, Phase::Killing { .. }) {
                return Actions::one(Action::Drop { sig, why: Dropped::NoTarget });
            }
            if sig.is_stop() {
                let repeated_ctrl_c = origin == Origin::Keyboard && sig == SIGINT && s.keyboard_interrupts > 0;
                if origin == Origin::Keyboard && sig == SIGINT {
                    s.keyboard_interrupts += 1;
                }
                if s.forwarded >= FORCE_AFTER_FORWARDED || repeated_ctrl_c {
                    s.phase = Phase::Killing { last: now };
                    return Actions::one(Action::Send { sig: SIGKILL, to: Target::Everyone, why: Why::Forced });
                }
                // A second stop signal while the first is held back releases it at once.
                if matches!(s.phase, Phase::Holding { .. }) {
                    return self.release(sig, now);
                }
            }
        } else if sig.is_stop() {
            return self.begin_requested_stop(sig, origin, now);
        }
        let target = if sig.is_stop() { self.stop_target() } else { self.forward_target() };
        let Some(to) = target else {
            return Actions::one(Action::Drop { sig, why: Dropped::NoTarget });
        };
        let Some(out) = self.policy.map.apply(sig) else {
            return Actions::one(Action::Drop { sig, why: Dropped::Mapped });
        };
        if sig.is_stop() {
            if let Some(s) = self.stop.as_mut() {
                s.forwarded += 1;
            }
        }
        Actions::one(Action::Send { sig: out, to, why: Why::Forward }).and(self.wake_if_stopped(out, to))
    }

    /// A stopped program would only hold a terminating signal pending; wake it as a shell's
    /// `kill` does, so it acts on it.
    fn wake_if_stopped(&mut self, sent: Sig, to: Target) -> Option<Action> {
        let terminating = sent.is_stop() || sent == SIGHUP;
        (terminating && std::mem::take(&mut self.main_stopped)).then_some(Action::Send {
            sig: SIGCONT,
            to,
            why: Why::Forward,
        })
    }

    fn on_continued(&mut self, holder: Holder) -> Actions {
        if self.stop.is_some_and(|s| matches!(s.phase, Phase::Killing { .. })) {
            return Actions::one(Action::Drop { sig: SIGCONT, why: Dropped::NoTarget });
        }
        self.main_stopped = false;
        let foreground =
            (std::mem::take(&mut self.suspended) && holder == Holder::Shim).then_some(Action::ForegroundChild);
        let Some(to) = self.forward_target() else {
            return Actions::one(Action::Drop { sig: SIGCONT, why: Dropped::NoTarget });
        };
        match self.policy.map.apply(SIGCONT) {
            Some(sig) => Actions::maybe_then(foreground, Action::Send { sig, to, why: Why::Forward }),
            None => Actions::maybe_then(foreground, Action::Drop { sig: SIGCONT, why: Dropped::Mapped }),
        }
    }

    fn begin_requested_stop(&mut self, sig: Sig, origin: Origin, now: Duration) -> Actions {
        let keyboard_interrupts = u8::from(origin == Origin::Keyboard && sig == SIGINT);
        let hook = self.policy.pre_stop == Hook::Configured;
        if self.policy.stop_delay.is_zero() && !hook {
            self.stop = Some(Stopping {
                cause: Stop::Requested(sig),
                phase: Phase::Draining { deadline: now },
                forwarded: 0,
                keyboard_interrupts,
            });
            return self.release(sig, now);
        }
        // The hook is bounded by the delay, or by the grace period when there is none.
        let (bound, early) =
            if self.policy.stop_delay.is_zero() { (self.policy.grace, true) } else { (self.policy.stop_delay, false) };
        let release_at = now.saturating_add(bound);
        self.stop = Some(Stopping {
            cause: Stop::Requested(sig),
            phase: Phase::Holding { sig, release_at, early },
            forwarded: 0,
            keyboard_interrupts,
        });
        self.hook_running = hook;
        let hold = Action::Hold { sig, until: release_at };
        if hook {
            Actions::two(hold, Action::StartHook)
        } else {
            Actions::one(hold)
        }
    }

    /// Forward the held (or a new) stop signal now and start the grace period; the hook, if
    /// still running, has had its time.
    fn release(&mut self, sig: Sig, now: Duration) -> Actions {
        let kill_hook = std::mem::take(&mut self.hook_running).then_some(Action::KillHook);
        let deadline = now.saturating_add(self.policy.grace);
        let first = self.stop.is_some_and(|s| s.forwarded == 0);
        if let Some(s) = self.stop.as_mut() {
            s.phase = Phase::Draining { deadline };
            s.forwarded += 1;
        }
        let to = self.stop_target().unwrap_or(Target::Everyone);
        let why = if first { Why::StopBegins } else { Why::Forward };
        match self.policy.map.apply(sig) {
            Some(out) => {
                let wake = self.wake_if_stopped(out, to);
                Actions::maybe_then(kill_hook, Action::Send { sig: out, to, why }).and(wake)
            }
            None => Actions::maybe_then(kill_hook, Action::Drop { sig, why: Dropped::Mapped }),
        }
    }

    fn on_reaped(&mut self, main: Option<Status>, left: Left, now: Duration) -> Actions {
        let just_exited = match (self.main, main) {
            (Main::Running, Some(status)) => {
                self.main = Main::Exited(status);
                true
            }
            _ => false,
        };
        let Main::Exited(status) = self.main else {
            // The main child is still a child of shim, so something is always left.
            return Actions::none();
        };
        if left == Left::Nothing {
            self.done = true;
            let exit = Action::Exit(self.policy.success.apply(status.exit_code()));
            let restore = (self.policy.tty == Tty::Present).then_some(Action::RestoreTerminal);
            return Actions::maybe_then(restore, exit);
        }
        if !just_exited {
            return Actions::none();
        }
        let Some(s) = self.stop else {
            // The program exited on its own and others remain: they are stopped now, with no
            // delay or hook (those are for stops asked for by a signal).
            let deadline = now.saturating_add(self.policy.grace);
            self.stop = Some(Stopping {
                cause: Stop::ChildExited,
                phase: Phase::Draining { deadline },
                forwarded: 0,
                keyboard_interrupts: 0,
            });
            return match self.policy.map.apply(SIGTERM) {
                Some(sig) => Actions::one(Action::Send { sig, to: Target::Everyone, why: Why::Leftovers }),
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
                    Some(out) => Actions::one(Action::Send { sig: out, to: Target::Everyone, why: Why::Leftovers }),
                    None => Actions::none(),
                }
            }
            _ => Actions::none(),
        }
    }

    fn on_hook_exited(&mut self, now: Duration) -> Actions {
        if !std::mem::take(&mut self.hook_running) {
            return Actions::none();
        }
        match self.stop.map(|s| s.phase) {
            Some(Phase::Holding { sig, early: true, .. }) => self.release(sig, now),
            _ => Actions::none(),
        }
    }

    fn on_main_stopped(&mut self) -> Actions {
        // Stopped while a stop is under way (the stop signal may have been taken before the
        // SIGCHLD that reported this): it could never act on it, so wake it.
        if self.main == Main::Running
            && self.stop.is_some_and(|s| matches!(s.phase, Phase::Draining { .. }) && s.forwarded > 0)
        {
            if let Some(to) = self.stop_target() {
                return Actions::one(Action::Send { sig: SIGCONT, to, why: Why::Forward });
            }
        }
        self.main_stopped = true;
        if self.policy.job_control == JobControl::Follow && self.main == Main::Running && self.stop.is_none() {
            self.suspended = true;
            return Actions::one(Action::SuspendSelf);
        }
        Actions::none()
    }

    fn on_tick(&mut self, now: Duration) -> Actions {
        if !self.is_due(now) {
            return Actions::none();
        }
        let Some(s) = self.stop.as_mut() else { return Actions::none() };
        match s.phase {
            Phase::Holding { sig, .. } => self.release(sig, now),
            Phase::Draining { .. } | Phase::Killing { .. } => {
                s.phase = Phase::Killing { last: now };
                Actions::one(Action::Send { sig: SIGKILL, to: Target::Everyone, why: Why::Escalate })
            }
        }
    }

    /// Where a stop signal goes. With the group as target, everyone gets it once, so a daemon
    /// that left the group (setsid) drains too instead of waiting for SIGKILL. With the child
    /// as target, only the child, while it runs; once it is gone, everyone left.
    fn stop_target(&self) -> Option<Target> {
        match (self.policy.forward_to, self.main) {
            (ForwardTo::Group, _) | (ForwardTo::Child, Main::Exited(_)) => Some(Target::Everyone),
            (ForwardTo::Child, Main::Running) => Some(Target::Child),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{SIGHUP, SIGQUIT, SIGTSTP, SIGUSR1};

    const GRACE: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn machine(forward_to: ForwardTo, job_control: JobControl) -> Machine {
        Machine::new(Policy { job_control, ..Policy::new(GRACE, forward_to) })
    }

    fn group() -> Machine {
        machine(ForwardTo::Group, JobControl::Off)
    }

    fn acts(m: &mut Machine, e: Event, now: Duration) -> Vec<Action> {
        m.handle(e, now).into_iter().collect()
    }

    fn send(sig: Sig, to: Target, why: Why) -> Action {
        Action::Send { sig, to, why }
    }

    fn reaped(main: Option<Status>, left: Left) -> Event {
        Event::Reaped { main, left }
    }

    #[test]
    fn ordinary_signals_are_forwarded_to_the_group_and_start_nothing() {
        let mut m = group();
        for sig in [SIGHUP, SIGUSR1, SIGTSTP, SIGCONT, Sig::parse("RTMIN+3").unwrap(), Sig::parse("WINCH").unwrap()] {
            assert_eq!(acts(&mut m, Event::Signal(sig), ms(1)), [send(sig, Target::Group, Why::Forward)]);
        }
        assert_eq!(m.deadline(), None, "no stop, so no timer: idle costs nothing");
    }

    #[test]
    fn forward_to_child_targets_the_child_alone() {
        let mut m = machine(ForwardTo::Child, JobControl::Off);
        assert_eq!(acts(&mut m, Event::Signal(SIGHUP), ms(0)), [send(SIGHUP, Target::Child, Why::Forward)]);
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(0)), [send(SIGTERM, Target::Child, Why::StopBegins)]);
    }

    #[test]
    fn fault_signals_are_not_forwarded() {
        let mut m = group();
        for name in ["SEGV", "BUS", "FPE", "ILL", "TRAP", "SYS", "ABRT"] {
            let sig = Sig::parse(name).unwrap();
            assert_eq!(acts(&mut m, Event::Signal(sig), ms(0)), [Action::Drop { sig, why: Dropped::Fault }]);
        }
        assert_eq!(m.stopping(), None);
    }

    #[test]
    fn signals_shim_caused_itself_are_not_forwarded() {
        let mut m = group();
        let pipe = crate::signals::SIGPIPE;
        assert_eq!(acts(&mut m, Event::OwnSignal(pipe), ms(0)), [Action::Drop { sig: pipe, why: Dropped::OwnSignal }]);
        assert_eq!(acts(&mut m, Event::Signal(pipe), ms(0)), [send(pipe, Target::Group, Why::Forward)]);
    }

    #[test]
    fn each_stop_signal_begins_a_stop_with_the_grace_deadline() {
        for sig in [SIGTERM, SIGINT, SIGQUIT] {
            let mut m = group();
            assert_eq!(acts(&mut m, Event::Signal(sig), ms(500)), [send(sig, Target::Everyone, Why::StopBegins)]);
            assert_eq!(m.stopping(), Some(Stop::Requested(sig)));
            assert_eq!(m.deadline(), Some(ms(500) + GRACE));
        }
    }

    #[test]
    fn a_clean_stop_exits_with_the_childs_code_and_never_kills() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, reaped(Some(Status::Exited(0)), Left::Nothing), ms(300)), [Action::Exit(ExitCode(0))]);
        assert_eq!(m.deadline(), None);
        assert_eq!(acts(&mut m, Event::Tick, GRACE * 2), [], "nothing after the last process is reaped");
    }

    #[test]
    fn the_main_child_exiting_does_not_end_a_stop_while_others_drain() {
        // sh -c 'server; echo done': sh dies at once on SIGTERM, the server drains.
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, reaped(Some(Status::Signaled(SIGTERM)), Left::Some), ms(1)), []);
        assert_eq!(m.deadline(), Some(GRACE), "the grace period still runs from the stop signal");
        assert_eq!(acts(&mut m, reaped(None, Left::Nothing), ms(3000)), [Action::Exit(ExitCode(143))]);
    }

    #[test]
    fn grace_runs_out_then_everyone_is_killed_then_exit_137() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::Tick, GRACE - ms(1)), [], "never before the deadline");
        assert_eq!(acts(&mut m, Event::Tick, GRACE), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
        assert_eq!(
            acts(&mut m, reaped(Some(Status::Signaled(SIGKILL)), Left::Nothing), GRACE),
            [Action::Exit(ExitCode(137))]
        );
    }

    #[test]
    fn after_escalation_kill_again_while_anything_is_left() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        let _ = m.handle(Event::Tick, GRACE);
        assert_eq!(m.deadline(), Some(GRACE + REKILL_EVERY));
        assert_eq!(
            acts(&mut m, Event::Signal(SIGTERM), GRACE + ms(1)),
            [Action::Drop { sig: SIGTERM, why: Dropped::NoTarget }]
        );
        assert_eq!(acts(&mut m, Event::Tick, GRACE + REKILL_EVERY), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
    }

    #[test]
    fn zero_grace_escalates_on_the_next_tick() {
        let mut m = Machine::new(Policy::new(Duration::ZERO, ForwardTo::Group));
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(7)), [send(SIGTERM, Target::Everyone, Why::StopBegins)]);
        assert_eq!(m.deadline(), Some(ms(7)));
        assert_eq!(acts(&mut m, Event::Tick, ms(7)), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
    }

    #[test]
    fn another_stop_signal_during_grace_is_forwarded_and_keeps_the_deadline() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::Signal(SIGINT), ms(2000)), [send(SIGINT, Target::Everyone, Why::Forward)]);
        assert_eq!(m.deadline(), Some(GRACE));
        assert_eq!(m.stopping(), Some(Stop::Requested(SIGTERM)));
    }

    #[test]
    fn main_child_exits_alone_shim_exits_at_once_with_its_code() {
        for (status, code) in [
            (Status::Exited(0), 0),
            (Status::Exited(3), 3),
            (Status::Exited(255), 255),
            (Status::Signaled(SIGKILL), 137),
            (Status::Signaled(SIGTERM), 143),
        ] {
            let mut m = group();
            assert_eq!(acts(&mut m, reaped(Some(status), Left::Nothing), ms(5)), [Action::Exit(ExitCode(code))]);
        }
    }

    #[test]
    fn main_child_exits_while_others_remain_they_get_term_then_kill() {
        let mut m = group();
        assert_eq!(
            acts(&mut m, reaped(Some(Status::Exited(4)), Left::Some), ms(100)),
            [send(SIGTERM, Target::Everyone, Why::Leftovers)]
        );
        assert_eq!(m.stopping(), Some(Stop::ChildExited));
        assert_eq!(m.deadline(), Some(ms(100) + GRACE));
        assert_eq!(acts(&mut m, Event::Tick, ms(100) + GRACE), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
        assert_eq!(
            acts(&mut m, reaped(None, Left::Nothing), ms(100) + GRACE),
            [Action::Exit(ExitCode(4))],
            "the main child's code, not the leftovers'"
        );
    }

    #[test]
    fn leftovers_that_leave_in_time_end_it_early() {
        let mut m = group();
        let _ = m.handle(reaped(Some(Status::Exited(0)), Left::Some), ms(0));
        assert_eq!(acts(&mut m, reaped(None, Left::Some), ms(10)), []);
        assert_eq!(acts(&mut m, reaped(None, Left::Nothing), ms(20)), [Action::Exit(ExitCode(0))]);
    }

    #[test]
    fn orphans_reaped_while_the_main_child_runs_change_nothing() {
        let mut m = group();
        assert_eq!(acts(&mut m, reaped(None, Left::Some), ms(0)), []);
        // Impossible in practice (the main child is a child), but harmless.
        assert_eq!(acts(&mut m, reaped(None, Left::Nothing), ms(0)), []);
        assert_eq!(m.stopping(), None);
    }

    #[test]
    fn a_stop_signal_during_a_leftovers_stop_is_forwarded_not_restarted() {
        let mut m = group();
        let _ = m.handle(reaped(Some(Status::Exited(0)), Left::Some), ms(0));
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(5)), [send(SIGTERM, Target::Everyone, Why::Forward)]);
        assert_eq!(m.deadline(), Some(GRACE));
    }

    #[test]
    fn with_forward_to_child_nothing_is_sent_to_a_dead_child() {
        let mut m = machine(ForwardTo::Child, JobControl::Off);
        let _ = m.handle(reaped(Some(Status::Exited(0)), Left::Some), ms(0));
        assert_eq!(acts(&mut m, Event::Signal(SIGHUP), ms(1)), [Action::Drop { sig: SIGHUP, why: Dropped::NoTarget }]);
    }

    #[test]
    fn with_forward_to_child_the_rest_get_the_stop_signal_when_the_child_exits() {
        let mut m = machine(ForwardTo::Child, JobControl::Off);
        let _ = m.handle(Event::Signal(SIGQUIT), ms(0));
        assert_eq!(
            acts(&mut m, reaped(Some(Status::Signaled(SIGQUIT)), Left::Some), ms(5)),
            [send(SIGQUIT, Target::Everyone, Why::Leftovers)]
        );
        assert_eq!(m.deadline(), Some(GRACE), "the deadline still counts from the stop signal");
    }

    #[test]
    fn with_forward_to_group_the_group_is_not_signalled_twice() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, reaped(Some(Status::Signaled(SIGTERM)), Left::Some), ms(5)), []);
    }

    #[test]
    fn job_control_suspends_and_resumes_only_when_following() {
        let mut off = group();
        assert_eq!(acts(&mut off, Event::MainStopped, ms(0)), []);

        let mut m = machine(ForwardTo::Group, JobControl::Follow);
        assert_eq!(acts(&mut m, Event::MainStopped, ms(0)), [Action::SuspendSelf]);
        assert_eq!(
            acts(&mut m, Event::Continued { holder: Holder::Shim }, ms(9)),
            [Action::ForegroundChild, send(SIGCONT, Target::Group, Why::Forward)]
        );
        // A later SIGCONT with nothing suspended is just forwarded.
        assert_eq!(
            acts(&mut m, Event::Continued { holder: Holder::Shim }, ms(10)),
            [send(SIGCONT, Target::Group, Why::Forward)]
        );
    }

    #[test]
    fn no_suspending_during_a_stop() {
        let mut m = machine(ForwardTo::Group, JobControl::Follow);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        let got = acts(&mut m, Event::MainStopped, ms(1));
        assert!(!got.contains(&Action::SuspendSelf), "{got:?}");
    }

    #[test]
    fn a_deadline_past_the_end_of_time_saturates() {
        let mut m = Machine::new(Policy::new(Duration::MAX, ForwardTo::Group));
        let _ = m.handle(Event::Signal(SIGTERM), ms(5));
        assert_eq!(m.deadline(), Some(Duration::MAX));
    }

    fn with(f: impl FnOnce(&mut Policy)) -> Machine {
        let mut p = Policy::new(GRACE, ForwardTo::Group);
        f(&mut p);
        Machine::new(p)
    }

    const DELAY: Duration = Duration::from_secs(5);

    #[test]
    fn a_stop_delay_holds_the_signal_then_forwards_it_and_the_grace_starts_there() {
        let mut m = with(|p| p.stop_delay = DELAY);
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(0)), [Action::Hold { sig: SIGTERM, until: DELAY }]);
        assert_eq!(m.deadline(), Some(DELAY));
        assert_eq!(
            acts(&mut m, Event::Signal(SIGHUP), ms(100)),
            [send(SIGHUP, Target::Group, Why::Forward)],
            "it keeps serving"
        );
        assert_eq!(acts(&mut m, Event::Tick, DELAY - ms(1)), []);
        assert_eq!(acts(&mut m, Event::Tick, DELAY), [send(SIGTERM, Target::Everyone, Why::StopBegins)]);
        assert_eq!(m.deadline(), Some(DELAY + GRACE));
    }

    #[test]
    fn a_second_stop_signal_during_the_delay_forwards_at_once() {
        let mut m = with(|p| p.stop_delay = DELAY);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::Signal(SIGINT), ms(1000)), [send(SIGINT, Target::Everyone, Why::StopBegins)]);
        assert_eq!(m.deadline(), Some(ms(1000) + GRACE));
    }

    #[test]
    fn the_main_child_exiting_during_the_delay_proceeds_with_the_stop() {
        let mut m = with(|p| p.stop_delay = DELAY);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(
            acts(&mut m, reaped(Some(Status::Exited(0)), Left::Some), ms(200)),
            [send(SIGTERM, Target::Everyone, Why::StopBegins)]
        );
        assert_eq!(m.deadline(), Some(ms(200) + GRACE));

        let mut alone = with(|p| p.stop_delay = DELAY);
        let _ = alone.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(
            acts(&mut alone, reaped(Some(Status::Exited(0)), Left::Nothing), ms(200)),
            [Action::Exit(ExitCode(0))]
        );
    }

    #[test]
    fn a_pre_stop_hook_runs_within_the_delay_and_is_killed_if_it_overruns() {
        let mut m = with(|p| {
            p.stop_delay = DELAY;
            p.pre_stop = Hook::Configured;
        });
        assert_eq!(
            acts(&mut m, Event::Signal(SIGTERM), ms(0)),
            [Action::Hold { sig: SIGTERM, until: DELAY }, Action::StartHook]
        );
        assert_eq!(
            acts(&mut m, Event::Tick, DELAY),
            [Action::KillHook, send(SIGTERM, Target::Everyone, Why::StopBegins)]
        );
        assert_eq!(acts(&mut m, Event::HookExited, DELAY), [], "its exit after the kill changes nothing");
    }

    #[test]
    fn with_a_delay_a_hook_that_finishes_early_does_not_cut_the_delay_short() {
        let mut m = with(|p| {
            p.stop_delay = DELAY;
            p.pre_stop = Hook::Configured;
        });
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::HookExited, ms(300)), []);
        assert_eq!(acts(&mut m, Event::Tick, DELAY), [send(SIGTERM, Target::Everyone, Why::StopBegins)]);
    }

    #[test]
    fn without_a_delay_the_hook_is_bounded_by_the_grace_period_and_forwarding_follows_it() {
        let mut m = with(|p| p.pre_stop = Hook::Configured);
        assert_eq!(
            acts(&mut m, Event::Signal(SIGTERM), ms(0)),
            [Action::Hold { sig: SIGTERM, until: GRACE }, Action::StartHook]
        );
        assert_eq!(acts(&mut m, Event::HookExited, ms(700)), [send(SIGTERM, Target::Everyone, Why::StopBegins)]);
        assert_eq!(m.deadline(), Some(ms(700) + GRACE));

        let mut slow = with(|p| p.pre_stop = Hook::Configured);
        let _ = slow.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(
            acts(&mut slow, Event::Tick, GRACE),
            [Action::KillHook, send(SIGTERM, Target::Everyone, Why::StopBegins)]
        );
    }

    #[test]
    fn a_hook_that_cannot_start_never_blocks_the_stop() {
        // The supervisor reports a failed start as the hook's exit.
        let mut m = with(|p| p.pre_stop = Hook::Configured);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::HookExited, ms(1)), [send(SIGTERM, Target::Everyone, Why::StopBegins)]);
    }

    #[test]
    fn mapped_signals_are_rewritten_or_dropped_and_stops_use_the_mapping() {
        let mut m = with(|p| {
            p.map.add("TERM:QUIT").unwrap();
            p.map.add("HUP:0").unwrap();
        });
        assert_eq!(acts(&mut m, Event::Signal(SIGHUP), ms(0)), [Action::Drop { sig: SIGHUP, why: Dropped::Mapped }]);
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(0)), [send(SIGQUIT, Target::Everyone, Why::StopBegins)]);
        assert_eq!(m.stopping(), Some(Stop::Requested(SIGTERM)), "what began the stop is what was received");

        let mut leftovers = with(|p| p.map.add("TERM:QUIT").unwrap());
        assert_eq!(
            acts(&mut leftovers, reaped(Some(Status::Exited(0)), Left::Some), ms(0)),
            [send(SIGQUIT, Target::Everyone, Why::Leftovers)]
        );
    }

    #[test]
    fn success_exit_codes_become_zero() {
        let mut m = with(|p| p.success.add("143").unwrap());
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(
            acts(&mut m, reaped(Some(Status::Signaled(SIGTERM)), Left::Nothing), ms(1)),
            [Action::Exit(ExitCode(0))]
        );
        let mut other = with(|p| p.success.add("143").unwrap());
        assert_eq!(
            acts(&mut other, reaped(Some(Status::Exited(1)), Left::Nothing), ms(1)),
            [Action::Exit(ExitCode(1))]
        );
    }

    #[test]
    fn a_third_stop_signal_forces_the_stop() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        let _ = m.handle(Event::Signal(SIGTERM), ms(10));
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(20)), [send(SIGKILL, Target::Everyone, Why::Forced)]);
        assert_eq!(m.deadline(), Some(ms(20) + REKILL_EVERY));
    }

    #[test]
    fn a_second_ctrl_c_forces_the_stop_but_a_second_sigint_from_kill_does_not() {
        let mut m = group();
        assert_eq!(
            acts(&mut m, Event::KeyboardSignal(SIGINT), ms(0)),
            [send(SIGINT, Target::Everyone, Why::StopBegins)]
        );
        assert_eq!(acts(&mut m, Event::KeyboardSignal(SIGINT), ms(5)), [send(SIGKILL, Target::Everyone, Why::Forced)]);

        let mut k = group();
        let _ = k.handle(Event::Signal(SIGINT), ms(0));
        assert_eq!(acts(&mut k, Event::Signal(SIGINT), ms(5)), [send(SIGINT, Target::Everyone, Why::Forward)]);
    }

    #[test]
    fn during_a_delay_a_third_stop_signal_still_forces() {
        let mut m = with(|p| p.stop_delay = DELAY);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0)); // held
        let _ = m.handle(Event::Signal(SIGTERM), ms(1)); // released: forwarded once
        let _ = m.handle(Event::Signal(SIGTERM), ms(2)); // forwarded twice
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(3)), [send(SIGKILL, Target::Everyone, Why::Forced)]);
    }

    #[test]
    fn in_group_mode_stop_signals_reach_everyone_and_others_only_the_group() {
        let mut m = group();
        assert_eq!(acts(&mut m, Event::Signal(SIGHUP), ms(0)), [send(SIGHUP, Target::Group, Why::Forward)]);
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(0)), [send(SIGTERM, Target::Everyone, Why::StopBegins)]);
    }

    #[test]
    fn a_stopped_program_is_woken_to_act_on_a_stop_signal() {
        let mut m = group();
        assert_eq!(acts(&mut m, Event::MainStopped, ms(0)), []);
        assert_eq!(
            acts(&mut m, Event::Signal(SIGTERM), ms(1)),
            [send(SIGTERM, Target::Everyone, Why::StopBegins), send(SIGCONT, Target::Everyone, Why::Forward)]
        );
        // Only once: it is running again.
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(2)), [send(SIGTERM, Target::Everyone, Why::Forward)]);

        let mut hup = group();
        let _ = hup.handle(Event::MainStopped, ms(0));
        assert_eq!(
            acts(&mut hup, Event::Signal(SIGHUP), ms(1)),
            [send(SIGHUP, Target::Group, Why::Forward), send(SIGCONT, Target::Group, Why::Forward)]
        );
        let mut usr = group();
        let _ = usr.handle(Event::MainStopped, ms(0));
        assert_eq!(acts(&mut usr, Event::Signal(SIGUSR1), ms(1)), [send(SIGUSR1, Target::Group, Why::Forward)]);
    }

    #[test]
    fn a_program_that_stops_during_a_stop_is_woken() {
        // SIGTERM can be taken before the SIGCHLD that says the program had stopped.
        let mut m = machine(ForwardTo::Group, JobControl::Follow);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::MainStopped, ms(1)), [send(SIGCONT, Target::Everyone, Why::Forward)]);
    }

    #[test]
    fn after_bg_the_terminal_is_not_handed_over() {
        let mut m = machine(ForwardTo::Group, JobControl::Follow);
        assert_eq!(acts(&mut m, Event::MainStopped, ms(0)), [Action::SuspendSelf]);
        assert_eq!(
            acts(&mut m, Event::Continued { holder: Holder::Other }, ms(5)),
            [send(SIGCONT, Target::Group, Why::Forward)]
        );
        // Later, `fg`: shim was not suspended any more, so no hand-over either; the program
        // stops on its next read, and the cycle starts again.
        assert_eq!(
            acts(&mut m, Event::Continued { holder: Holder::Shim }, ms(9)),
            [send(SIGCONT, Target::Group, Why::Forward)]
        );
    }

    #[test]
    fn the_terminal_is_taken_back_before_exiting() {
        let mut m = with(|p| p.tty = Tty::Present);
        assert_eq!(
            acts(&mut m, reaped(Some(Status::Exited(0)), Left::Nothing), ms(0)),
            [Action::RestoreTerminal, Action::Exit(ExitCode(0))]
        );
    }
}
