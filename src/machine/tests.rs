//! Unit tests of the state machine: every path, with no real signal or process.

use super::*;
use crate::exit::ExitCode;
use crate::signals::{SIGQUIT, SIGTSTP, SIGUSR1};

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
    Event::Reaped { main, left, main_stopped: false }
}

/// A signal from another process.
fn signal(sig: Sig) -> Event {
    Event::Signal { sig, origin: Origin::Process(50) }
}

/// A key typed at the terminal, with shim's group in the foreground.
fn key(sig: Sig) -> Event {
    Event::Signal { sig, origin: Origin::Keyboard }
}

/// The main child stopped (SIGTSTP, SIGTTIN, SIGSTOP...).
fn stopped() -> Event {
    Event::Reaped { main: None, left: Left::Some, main_stopped: true }
}

fn cont(holder: Holder) -> Event {
    Event::Continued { origin: Origin::Process(50), holder }
}

fn wake(to: Target) -> Action {
    send(SIGCONT, to, Why::Wake)
}

#[test]
fn ordinary_signals_are_forwarded_to_the_group_and_start_nothing() {
    let mut m = group();
    for sig in [SIGHUP, SIGUSR1, SIGTSTP, SIGCONT, Sig::parse("RTMIN+3").unwrap(), Sig::parse("WINCH").unwrap()] {
        assert_eq!(acts(&mut m, signal(sig), ms(1)), [send(sig, Target::Group, Why::Forward)]);
    }
    assert_eq!(m.deadline(), None, "no stop, so no timer: idle costs nothing");
}

/// The time of every event, counting how often it is asked for.
struct Counted(u32);

impl Now for Counted {
    fn now(&mut self) -> Duration {
        self.0 += 1;
        ms(0)
    }
}

#[test]
fn only_events_that_depend_on_the_time_read_it() {
    let mut m = group();
    let mut reads = Counted(0);
    let _ = m.handle(signal(SIGUSR1), &mut reads);
    let _ = m.handle(cont(Holder::Other), &mut reads);
    let _ = m.handle(reaped(None, Left::Some), &mut reads);
    assert_eq!(reads.0, 0, "forwarding and an empty reap need no time");
    let _ = m.handle(signal(SIGTERM), &mut reads);
    let asked = reads.0;
    assert!(asked > 0, "a stop sets its deadline from the time");
    let _ = m.handle(signal(SIGUSR1), &mut reads);
    assert_eq!(reads.0, asked, "forwarding during a stop needs none either");
}

#[test]
fn forward_to_child_targets_the_child_alone() {
    let mut m = machine(ForwardTo::Child, JobControl::Off);
    assert_eq!(acts(&mut m, signal(SIGHUP), ms(0)), [send(SIGHUP, Target::Child, Why::Forward)]);
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(0)),
        [send(SIGTERM, Target::Child, Why::StopBegins), wake(Target::Child)]
    );
}

#[test]
fn fault_signals_are_not_forwarded() {
    let mut m = group();
    for name in ["SEGV", "BUS", "FPE", "ILL", "TRAP", "SYS", "ABRT"] {
        let sig = Sig::parse(name).unwrap();
        assert_eq!(acts(&mut m, signal(sig), ms(0)), [Action::Drop { sig, why: Dropped::Fault }]);
    }
    assert_eq!(m.stopping(), None);
}

#[test]
fn signals_shim_caused_itself_are_not_forwarded() {
    let mut m = group();
    let pipe = crate::signals::SIGPIPE;
    assert_eq!(
        acts(&mut m, Event::Signal { sig: pipe, origin: Origin::Shim }, ms(0)),
        [Action::Drop { sig: pipe, why: Dropped::OwnSignal }]
    );
    assert_eq!(acts(&mut m, signal(pipe), ms(0)), [send(pipe, Target::Group, Why::Forward)]);
}

#[test]
fn each_stop_signal_begins_a_stop_with_the_grace_deadline() {
    for sig in [SIGTERM, SIGINT, SIGQUIT] {
        let mut m = group();
        assert_eq!(
            acts(&mut m, signal(sig), ms(500)),
            [send(sig, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
        );
        assert_eq!(m.stopping(), Some(Stop::Requested(sig)));
        assert_eq!(m.deadline(), Some(ms(500) + GRACE));
    }
}

#[test]
fn a_clean_stop_exits_with_the_childs_code_and_never_kills() {
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, reaped(Some(Status::Exited(0)), Left::Nothing), ms(300)), [Action::Exit(ExitCode(0))]);
    assert_eq!(m.deadline(), None);
    assert_eq!(acts(&mut m, Event::Tick, GRACE * 2), [], "nothing after the last process is reaped");
}

#[test]
fn the_main_child_exiting_does_not_end_a_stop_while_others_drain() {
    // sh -c 'server; echo done': sh dies at once on SIGTERM, the server drains.
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, reaped(Some(Status::Signaled(SIGTERM)), Left::Some), ms(1)), []);
    assert_eq!(m.deadline(), Some(GRACE), "the grace period still runs from the stop signal");
    assert_eq!(acts(&mut m, reaped(None, Left::Nothing), ms(3000)), [Action::Exit(ExitCode(143))]);
}

#[test]
fn grace_runs_out_then_everyone_is_killed_then_exit_137() {
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
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
    let _ = m.handle(signal(SIGTERM), ms(0));
    let _ = m.handle(Event::Tick, GRACE);
    assert_eq!(m.deadline(), Some(GRACE + REKILL_EVERY));
    assert_eq!(acts(&mut m, signal(SIGTERM), GRACE + ms(1)), [Action::Drop { sig: SIGTERM, why: Dropped::NoTarget }]);
    assert_eq!(acts(&mut m, Event::Tick, GRACE + REKILL_EVERY), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
}

#[test]
fn zero_grace_escalates_on_the_next_tick() {
    let mut m = Machine::new(Policy::new(Duration::ZERO, ForwardTo::Group));
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(7)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(ms(7)));
    assert_eq!(acts(&mut m, Event::Tick, ms(7)), [send(SIGKILL, Target::Everyone, Why::Escalate)]);
}

#[test]
fn another_stop_signal_during_grace_is_forwarded_and_keeps_the_deadline() {
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut m, signal(SIGINT), ms(2000)),
        [send(SIGINT, Target::Everyone, Why::Forward), wake(Target::Everyone)]
    );
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
        [send(SIGTERM, Target::Everyone, Why::Leftovers), wake(Target::Everyone)]
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
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(5)),
        [send(SIGTERM, Target::Everyone, Why::Forward), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(GRACE));
}

#[test]
fn with_forward_to_child_nothing_is_sent_to_a_dead_child() {
    let mut m = machine(ForwardTo::Child, JobControl::Off);
    let _ = m.handle(reaped(Some(Status::Exited(0)), Left::Some), ms(0));
    assert_eq!(acts(&mut m, signal(SIGHUP), ms(1)), [Action::Drop { sig: SIGHUP, why: Dropped::NoTarget }]);
}

#[test]
fn with_forward_to_child_the_rest_get_the_stop_signal_when_the_child_exits() {
    let mut m = machine(ForwardTo::Child, JobControl::Off);
    let _ = m.handle(signal(SIGQUIT), ms(0));
    assert_eq!(
        acts(&mut m, reaped(Some(Status::Signaled(SIGQUIT)), Left::Some), ms(5)),
        [send(SIGQUIT, Target::Everyone, Why::Leftovers), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(GRACE), "the deadline still counts from the stop signal");
}

#[test]
fn with_forward_to_group_the_group_is_not_signalled_twice() {
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, reaped(Some(Status::Signaled(SIGTERM)), Left::Some), ms(5)), []);
}

#[test]
fn job_control_suspends_and_resumes_only_when_following() {
    let mut off = group();
    assert_eq!(acts(&mut off, stopped(), ms(0)), []);

    let mut m = machine(ForwardTo::Group, JobControl::Follow);
    assert_eq!(acts(&mut m, stopped(), ms(0)), [Action::SuspendSelf]);
    assert_eq!(
        acts(&mut m, cont(Holder::Shim), ms(9)),
        [Action::ForegroundChild, send(SIGCONT, Target::Group, Why::Forward)]
    );
    // A later SIGCONT with nothing suspended is just forwarded.
    assert_eq!(acts(&mut m, cont(Holder::Shim), ms(10)), [send(SIGCONT, Target::Group, Why::Forward)]);
}

#[test]
fn no_suspending_during_a_stop() {
    let mut m = machine(ForwardTo::Group, JobControl::Follow);
    let _ = m.handle(signal(SIGTERM), ms(0));
    let got = acts(&mut m, stopped(), ms(1));
    assert!(!got.contains(&Action::SuspendSelf), "{got:?}");
}

#[test]
fn a_deadline_past_the_end_of_time_saturates() {
    let mut m = Machine::new(Policy::new(Duration::MAX, ForwardTo::Group));
    let _ = m.handle(signal(SIGTERM), ms(5));
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
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(0)), [Action::Hold { sig: SIGTERM, until: DELAY }]);
    assert_eq!(m.deadline(), Some(DELAY));
    assert_eq!(acts(&mut m, signal(SIGHUP), ms(100)), [send(SIGHUP, Target::Group, Why::Forward)], "it keeps serving");
    assert_eq!(acts(&mut m, Event::Tick, DELAY - ms(1)), []);
    assert_eq!(
        acts(&mut m, Event::Tick, DELAY),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(DELAY + GRACE));
}

#[test]
fn a_second_stop_signal_during_the_delay_forwards_at_once() {
    let mut m = with(|p| p.stop_delay = DELAY);
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut m, signal(SIGINT), ms(1000)),
        [send(SIGINT, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(ms(1000) + GRACE));
}

#[test]
fn the_main_child_exiting_during_the_delay_proceeds_with_the_stop() {
    let mut m = with(|p| p.stop_delay = DELAY);
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut m, reaped(Some(Status::Exited(0)), Left::Some), ms(200)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(ms(200) + GRACE));

    let mut alone = with(|p| p.stop_delay = DELAY);
    let _ = alone.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut alone, reaped(Some(Status::Exited(0)), Left::Nothing), ms(200)), [Action::Exit(ExitCode(0))]);
}

#[test]
fn a_pre_stop_hook_runs_within_the_delay_and_is_killed_if_it_overruns() {
    let mut m = with(|p| {
        p.stop_delay = DELAY;
        p.pre_stop = Hook::Configured;
    });
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(0)), [Action::Hold { sig: SIGTERM, until: DELAY }, Action::StartHook]);
    assert_eq!(
        acts(&mut m, Event::Tick, DELAY),
        [Action::KillHook, send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(acts(&mut m, Event::HookExited, DELAY), [], "its exit after the kill changes nothing");
}

#[test]
fn with_a_delay_a_hook_that_finishes_early_does_not_cut_the_delay_short() {
    let mut m = with(|p| {
        p.stop_delay = DELAY;
        p.pre_stop = Hook::Configured;
    });
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, Event::HookExited, ms(300)), []);
    assert_eq!(
        acts(&mut m, Event::Tick, DELAY),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
}

#[test]
fn without_a_delay_the_hook_is_bounded_by_the_grace_period_and_forwarding_follows_it() {
    let mut m = with(|p| p.pre_stop = Hook::Configured);
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(0)), [Action::Hold { sig: SIGTERM, until: GRACE }, Action::StartHook]);
    assert_eq!(
        acts(&mut m, Event::HookExited, ms(700)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(m.deadline(), Some(ms(700) + GRACE));

    let mut slow = with(|p| p.pre_stop = Hook::Configured);
    let _ = slow.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut slow, Event::Tick, GRACE),
        [Action::KillHook, send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
}

#[test]
fn a_hook_that_cannot_start_never_blocks_the_stop() {
    // The supervisor reports a failed start as the hook's exit.
    let mut m = with(|p| p.pre_stop = Hook::Configured);
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut m, Event::HookExited, ms(1)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
}

#[test]
fn mapped_signals_are_rewritten_or_dropped_and_stops_use_the_mapping() {
    let mut m = with(|p| {
        p.map.add("TERM:QUIT").unwrap();
        p.map.add("HUP:0").unwrap();
    });
    assert_eq!(acts(&mut m, signal(SIGHUP), ms(0)), [Action::Drop { sig: SIGHUP, why: Dropped::Mapped }]);
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(0)),
        [send(SIGQUIT, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(m.stopping(), Some(Stop::Requested(SIGTERM)), "what began the stop is what was received");

    let mut leftovers = with(|p| p.map.add("TERM:QUIT").unwrap());
    assert_eq!(
        acts(&mut leftovers, reaped(Some(Status::Exited(0)), Left::Some), ms(0)),
        [send(SIGQUIT, Target::Everyone, Why::Leftovers), wake(Target::Everyone)]
    );
}

#[test]
fn success_exit_codes_become_zero() {
    let mut m = with(|p| p.success.add("143").unwrap());
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut m, reaped(Some(Status::Signaled(SIGTERM)), Left::Nothing), ms(1)),
        [Action::Exit(ExitCode(0))]
    );
    let mut other = with(|p| p.success.add("143").unwrap());
    assert_eq!(acts(&mut other, reaped(Some(Status::Exited(1)), Left::Nothing), ms(1)), [Action::Exit(ExitCode(1))]);
}

#[test]
fn a_third_stop_signal_forces_the_stop() {
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
    let _ = m.handle(signal(SIGTERM), ms(10));
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(20)), [send(SIGKILL, Target::Everyone, Why::Forced)]);
    assert_eq!(m.deadline(), Some(ms(20) + REKILL_EVERY));
}

#[test]
fn a_second_ctrl_c_forces_the_stop_but_a_second_sigint_from_kill_does_not() {
    let mut m = group();
    assert_eq!(
        acts(&mut m, key(SIGINT), ms(0)),
        [send(SIGINT, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    assert_eq!(acts(&mut m, key(SIGINT), ms(5)), [send(SIGKILL, Target::Everyone, Why::Forced)]);

    let mut k = group();
    let _ = k.handle(signal(SIGINT), ms(0));
    assert_eq!(
        acts(&mut k, signal(SIGINT), ms(5)),
        [send(SIGINT, Target::Everyone, Why::Forward), wake(Target::Everyone)]
    );
}

#[test]
fn during_a_delay_a_third_stop_signal_still_forces() {
    let mut m = with(|p| p.stop_delay = DELAY);
    let _ = m.handle(signal(SIGTERM), ms(0)); // held
    let _ = m.handle(signal(SIGTERM), ms(1)); // released: forwarded once
    let _ = m.handle(signal(SIGTERM), ms(2)); // forwarded twice
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(3)), [send(SIGKILL, Target::Everyone, Why::Forced)]);
}

#[test]
fn in_group_mode_stop_signals_reach_everyone_and_others_only_the_group() {
    let mut m = group();
    assert_eq!(acts(&mut m, signal(SIGHUP), ms(0)), [send(SIGHUP, Target::Group, Why::Forward)]);
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(0)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
}

#[test]
fn a_stopped_program_is_woken_to_act_on_a_stop_signal() {
    let mut m = group();
    assert_eq!(acts(&mut m, stopped(), ms(0)), []);
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(1)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
    // Only once: it is running again.
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(2)),
        [send(SIGTERM, Target::Everyone, Why::Forward), wake(Target::Everyone)]
    );

    let mut hup = group();
    let _ = hup.handle(stopped(), ms(0));
    assert_eq!(acts(&mut hup, signal(SIGHUP), ms(1)), [send(SIGHUP, Target::Group, Why::Forward), wake(Target::Group)]);
    let mut usr = group();
    let _ = usr.handle(stopped(), ms(0));
    assert_eq!(acts(&mut usr, signal(SIGUSR1), ms(1)), [send(SIGUSR1, Target::Group, Why::Forward)]);
}

#[test]
fn a_program_that_stops_during_a_stop_is_woken() {
    // SIGTERM can be taken before the SIGCHLD that says the program had stopped.
    let mut m = machine(ForwardTo::Group, JobControl::Follow);
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, stopped(), ms(1)), [wake(Target::Everyone)]);
}

#[test]
fn after_bg_the_terminal_is_not_handed_over() {
    let mut m = machine(ForwardTo::Group, JobControl::Follow);
    assert_eq!(acts(&mut m, stopped(), ms(0)), [Action::SuspendSelf]);
    assert_eq!(acts(&mut m, cont(Holder::Other), ms(5)), [send(SIGCONT, Target::Group, Why::Forward)]);
    // Later, `fg`: shim was not suspended any more, so no hand-over either; the program
    // stops on its next read, and the cycle starts again.
    assert_eq!(acts(&mut m, cont(Holder::Shim), ms(9)), [send(SIGCONT, Target::Group, Why::Forward)]);
}

#[test]
fn the_terminal_is_taken_back_before_exiting() {
    let mut m = with(|p| p.tty = Tty::Present);
    assert_eq!(
        acts(&mut m, reaped(Some(Status::Exited(0)), Left::Nothing), ms(0)),
        [Action::RestoreTerminal, Action::Exit(ExitCode(0))]
    );
}

/// A key typed at the terminal while the program's group holds it: the key watch passed it on.
fn typed(sig: Sig) -> Event {
    Event::Signal { sig, origin: Origin::ProgramKeyboard }
}

#[test]
fn a_ctrl_c_the_program_got_from_the_terminal_is_the_programs_to_act_on() {
    let mut m = group();
    for _ in 0..3 {
        assert_eq!(acts(&mut m, typed(SIGINT), ms(0)), [Action::Drop { sig: SIGINT, why: Dropped::Delivered }]);
    }
    assert_eq!(m.stopping(), None, "a shell or a REPL takes Ctrl-C to cancel a line: no stop, no deadline");
    assert_eq!(m.deadline(), None);
}

#[test]
fn during_a_stop_a_ctrl_c_typed_at_the_terminal_forces_it() {
    let mut m = with(|p| p.stop_delay = DELAY);
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, typed(SIGINT), ms(5)), [send(SIGKILL, Target::Everyone, Why::Forced)], "held back or not");

    let mut leftovers = group();
    let _ = leftovers.handle(reaped(Some(Status::Exited(0)), Left::Some), ms(0));
    assert_eq!(acts(&mut leftovers, typed(SIGINT), ms(5)), [send(SIGKILL, Target::Everyone, Why::Forced)]);
}

#[test]
fn other_keys_the_program_got_are_not_sent_again() {
    let mut m = group();
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(acts(&mut m, typed(SIGQUIT), ms(1)), [Action::Drop { sig: SIGQUIT, why: Dropped::Delivered }]);
    // Counted as a stop signal forwarded: the next one is the third, and forces.
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(2)), [send(SIGKILL, Target::Everyone, Why::Forced)]);
}

#[test]
fn a_held_stop_is_released_by_a_key_the_program_got() {
    let mut m = with(|p| {
        p.stop_delay = DELAY;
        p.pre_stop = Hook::Configured;
    });
    let _ = m.handle(signal(SIGTERM), ms(0));
    assert_eq!(
        acts(&mut m, typed(SIGQUIT), ms(10)),
        [Action::KillHook, Action::Drop { sig: SIGQUIT, why: Dropped::Delivered }]
    );
    assert_eq!(m.deadline(), Some(ms(10) + GRACE), "the program has a stop signal: the grace starts");
}

#[test]
fn an_exit_in_the_same_drain_supersedes_a_stop() {
    let mut m = machine(ForwardTo::Group, JobControl::Follow);
    let gone = Event::Reaped { main: Some(Status::Exited(0)), left: Left::Nothing, main_stopped: true };
    assert_eq!(acts(&mut m, gone, ms(0)), [Action::Exit(ExitCode(0))], "never suspend for a program that is gone");
}

#[test]
fn a_sigcont_shim_sent_itself_is_not_forwarded() {
    let mut m = group();
    let own = Event::Continued { origin: Origin::Shim, holder: Holder::Shim };
    assert_eq!(acts(&mut m, own, ms(0)), [Action::Drop { sig: SIGCONT, why: Dropped::OwnSignal }]);
}

#[test]
fn a_stopped_daemon_is_woken_by_every_stop_signal_not_only_the_program() {
    // Nothing says the program stopped, yet the SIGCONT follows: a daemon outside the group
    // may be stopped, and it is among "everyone".
    let mut m = group();
    assert_eq!(
        acts(&mut m, signal(SIGTERM), ms(0)),
        [send(SIGTERM, Target::Everyone, Why::StopBegins), wake(Target::Everyone)]
    );
}

#[test]
fn the_log_reasons_read_as_phrases() {
    assert_eq!(Why::Forward.to_string(), "forwarding");
    assert_eq!(Why::StopBegins.to_string(), "stopping:");
    assert_eq!(Dropped::Mapped.to_string(), "--map-signal drops it");
    assert_eq!(Dropped::Delivered.to_string(), "the terminal sent it to the program's group already");
    assert!(Why::Forced.to_string().contains("Ctrl-C during the stop"));
}

#[test]
fn health_is_serving_until_a_stop_begins_and_draining_from_that_instant() {
    let mut m = with(|p| p.stop_delay = DELAY);
    assert_eq!(m.health(), Health::Serving);
    // What forwards or is the program's to act on changes nothing.
    for e in [signal(SIGHUP), signal(SIGUSR1), typed(SIGINT), cont(Holder::Other), stopped(), Event::Tick] {
        let _ = m.handle(e, ms(1));
        assert_eq!(m.health(), Health::Serving, "{e:?}");
    }
    // Draining as the stop is held back, before anything is forwarded: the balancer hears
    // of it while the program still serves.
    let held = acts(&mut m, signal(SIGTERM), ms(5));
    assert!(matches!(held[..], [Action::Hold { .. }]), "{held:?}");
    assert_eq!(m.health(), Health::Draining);
    for (e, at) in [(Event::Tick, DELAY + ms(5)), (reaped(Some(Status::Exited(0)), Left::Some), DELAY + ms(6))] {
        let _ = m.handle(e, at);
        assert_eq!(m.health(), Health::Draining, "never back: {e:?}");
    }
}

#[test]
fn health_drains_when_the_program_exits_on_its_own_or_a_hook_runs() {
    let mut m = group();
    let _ = m.handle(reaped(Some(Status::Exited(1)), Left::Some), ms(1));
    assert_eq!(m.health(), Health::Draining, "others remain, the program is gone");

    let mut m = with(|p| p.pre_stop = Hook::Configured);
    assert_eq!(acts(&mut m, signal(SIGTERM), ms(1)).last(), Some(&Action::StartHook));
    assert_eq!(m.health(), Health::Draining, "before the hook runs");
}
