//! The supervision state machine: every decision shim makes once the program runs — what to
//! forward and to whom, when a stop begins, when to escalate to SIGKILL, when to exit and with
//! which code (SPEC §3–§5). Sans-IO: it is fed [`Event`]s with the current monotonic time and
//! answers with [`Action`]s; it never calls the kernel, so every path is unit-tested here.

use std::time::Duration;

use crate::config::ForwardTo;
use crate::exit::{ExitCode, Status};
use crate::signals::{Sig, SIGCONT, SIGKILL, SIGTERM};

/// After escalation, SIGKILL again this often while anything is left: a process forked between
/// the scan and the kill (outside a PID namespace nothing freezes them) is caught next round.
pub const REKILL_EVERY: Duration = Duration::from_secs(1);

/// The fixed facts a machine decides by.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub grace: Duration,
    pub forward_to: ForwardTo,
    /// shim runs in an interactive terminal, not as PID 1: when the program stops (Ctrl-Z),
    /// shim stops too so the user's shell gets the terminal back.
    pub job_control: JobControl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobControl {
    /// PID 1, or no terminal: shim never stops itself.
    Off,
    /// Follow the program's stops and resumes.
    Follow,
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
    /// The first stop signal: the grace period starts now.
    StopBegins,
    /// The main child exited on its own and others remain.
    Leftovers,
    /// The grace period ran out.
    Escalate,
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
    /// Stop shim itself (SIGSTOP) after the program stopped, handing the terminal back.
    SuspendSelf,
    /// Give the terminal's foreground back to the program's group before it resumes.
    ForegroundChild,
    Exit(ExitCode),
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// shim received a signal (other than SIGCHLD, which becomes [`Event::Reaped`]).
    Signal(Sig),
    /// shim received a signal it caused itself.
    OwnSignal(Sig),
    /// One full drain of `waitpid`: the main child's status if it was reaped in it, and
    /// whether any child of shim remains.
    Reaped { main: Option<Status>, left: Left },
    /// The main child stopped (SIGTSTP, SIGSTOP...).
    MainStopped,
    /// The timer set from [`Machine::deadline`] fired.
    Tick,
}

/// Who sent a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Outside,
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

#[derive(Clone, Copy, Debug)]
struct Stopping {
    cause: Stop,
    deadline: Duration,
    /// When SIGKILL was last sent to everyone.
    killed_at: Option<Duration>,
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
    suspended: bool,
    done: bool,
}

/// At most two actions answer one event.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Actions([Option<Action>; 2]);

impl Actions {
    fn none() -> Self {
        Actions::default()
    }
    fn one(a: Action) -> Self {
        Actions([Some(a), None])
    }
    fn two(a: Action, b: Action) -> Self {
        Actions([Some(a), Some(b)])
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Action>, 2>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

impl Machine {
    pub fn new(policy: Policy) -> Self {
        Machine { policy, main: Main::Running, stop: None, suspended: false, done: false }
    }

    /// When [`Event::Tick`] is next due, if ever: the grace deadline, then re-kill rounds.
    /// `None` means shim may sleep until a signal comes.
    pub fn deadline(&self) -> Option<Duration> {
        if self.done {
            return None;
        }
        let s = self.stop?;
        Some(match s.killed_at {
            None => s.deadline,
            Some(at) => at.saturating_add(REKILL_EVERY),
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
            Event::Signal(sig) => self.on_signal(sig, now),
            Event::OwnSignal(sig) => Actions::one(Action::Drop { sig, why: Dropped::OwnSignal }),
            Event::Reaped { main, left } => self.on_reaped(main, left, now),
            Event::MainStopped => self.on_main_stopped(),
            Event::Tick => self.on_tick(now),
        }
    }

    fn on_signal(&mut self, sig: Sig, now: Duration) -> Actions {
        if sig.is_fault() {
            return Actions::one(Action::Drop { sig, why: Dropped::Fault });
        }
        if self.stop.is_some_and(|s| s.killed_at.is_some()) {
            return Actions::one(Action::Drop { sig, why: Dropped::NoTarget });
        }
        let mut why = Why::Forward;
        if sig.is_stop() && self.stop.is_none() {
            self.begin_stop(Stop::Requested(sig), now);
            why = Why::StopBegins;
        }
        let Some(to) = self.forward_target() else {
            return Actions::one(Action::Drop { sig, why: Dropped::NoTarget });
        };
        let send = Action::Send { sig, to, why };
        if sig == SIGCONT && self.suspended {
            self.suspended = false;
            return Actions::two(Action::ForegroundChild, send);
        }
        Actions::one(send)
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
        match left {
            Left::Nothing => {
                self.done = true;
                Actions::one(Action::Exit(status.exit_code()))
            }
            Left::Some if just_exited => match self.stop.map(|s| s.cause) {
                None => {
                    self.begin_stop(Stop::ChildExited, now);
                    Actions::one(Action::Send { sig: SIGTERM, to: Target::Everyone, why: Why::Leftovers })
                }
                // Only the child got the stop signal; the rest get it now. With the group as
                // target they have it already, and a second SIGTERM often means "quit now".
                Some(Stop::Requested(sig)) if self.policy.forward_to == ForwardTo::Child => {
                    Actions::one(Action::Send { sig, to: Target::Everyone, why: Why::Leftovers })
                }
                Some(_) => Actions::none(),
            },
            Left::Some => Actions::none(),
        }
    }

    fn on_main_stopped(&mut self) -> Actions {
        if self.policy.job_control == JobControl::Follow && self.main == Main::Running && self.stop.is_none() {
            self.suspended = true;
            return Actions::one(Action::SuspendSelf);
        }
        Actions::none()
    }

    fn on_tick(&mut self, now: Duration) -> Actions {
        match self.deadline() {
            Some(_) if self.is_due(now) => {
                if let Some(s) = self.stop.as_mut() {
                    s.killed_at = Some(now);
                }
                Actions::one(Action::Send { sig: SIGKILL, to: Target::Everyone, why: Why::Escalate })
            }
            _ => Actions::none(),
        }
    }

    fn begin_stop(&mut self, cause: Stop, now: Duration) {
        self.stop = Some(Stopping { cause, deadline: now.saturating_add(self.policy.grace), killed_at: None });
    }

    /// Where a received signal goes now; `None` when that target no longer exists.
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
    use crate::signals::{SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGUSR1};

    const GRACE: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn machine(forward_to: ForwardTo, job_control: JobControl) -> Machine {
        Machine::new(Policy { grace: GRACE, forward_to, job_control })
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
            assert_eq!(acts(&mut m, Event::Signal(sig), ms(500)), [send(sig, Target::Group, Why::StopBegins)]);
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
        let mut m =
            Machine::new(Policy { grace: Duration::ZERO, forward_to: ForwardTo::Group, job_control: JobControl::Off });
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(7)), [send(SIGTERM, Target::Group, Why::StopBegins)]);
        assert_eq!(m.deadline(), Some(ms(7)));
        assert_eq!(acts(&mut m, Event::Tick, ms(7)), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
    }

    #[test]
    fn another_stop_signal_during_grace_is_forwarded_and_keeps_the_deadline() {
        let mut m = group();
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::Signal(SIGINT), ms(2000)), [send(SIGINT, Target::Group, Why::Forward)]);
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
        assert_eq!(acts(&mut m, Event::Signal(SIGTERM), ms(5)), [send(SIGTERM, Target::Group, Why::Forward)]);
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
            acts(&mut m, Event::Signal(SIGCONT), ms(9)),
            [Action::ForegroundChild, send(SIGCONT, Target::Group, Why::Forward)]
        );
        // A later SIGCONT with nothing suspended is just forwarded.
        assert_eq!(acts(&mut m, Event::Signal(SIGCONT), ms(10)), [send(SIGCONT, Target::Group, Why::Forward)]);
    }

    #[test]
    fn no_suspending_during_a_stop() {
        let mut m = machine(ForwardTo::Group, JobControl::Follow);
        let _ = m.handle(Event::Signal(SIGTERM), ms(0));
        assert_eq!(acts(&mut m, Event::MainStopped, ms(1)), []);
    }

    #[test]
    fn a_deadline_past_the_end_of_time_saturates() {
        let mut m =
            Machine::new(Policy { grace: Duration::MAX, forward_to: ForwardTo::Group, job_control: JobControl::Off });
        let _ = m.handle(Event::Signal(SIGTERM), ms(5));
        assert_eq!(m.deadline(), Some(Duration::MAX));
    }
}
