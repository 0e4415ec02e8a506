//! Properties of the pure state machine, for any policy and any sequence of events in any
//! order and timing: it exits when everything is gone and says nothing after; SIGKILL comes
//! never before the deadline and always at it; the exit code follows the contract's "Exit
//! status"; every stop signal is followed by a SIGCONT to wake what is stopped; forwarded signals
//! go to the configured target, mapped as configured.

use std::time::Duration;

use proptest::prelude::*;
use shim::config::ForwardTo;
use shim::exit::{ExitCode, Status, SuccessExits};
use shim::machine::{
    Action, Dropped, Event, Health, Holder, Hook, JobControl, Left, Machine, Policy, Target, Tty, Why,
};
use shim::signals::{Origin, Sig, SignalMap};

fn sig(n: i32) -> Sig {
    Sig::new(n).unwrap()
}

/// Signals a test may send: every one but KILL, STOP and CHLD (SIGCHLD becomes a reap).
fn any_signal() -> impl Strategy<Value = Sig> {
    (1..=64i32).prop_filter("sendable", |n| ![9, 19, 17].contains(n)).prop_map(sig)
}

fn any_status() -> impl Strategy<Value = Status> {
    prop_oneof![any::<u8>().prop_map(Status::Exited), any_signal().prop_map(Status::Signaled)]
}

#[derive(Clone, Debug)]
enum Step {
    Signal(Sig),
    /// A key: to shim's group (false), or to the program's and passed on by the key watch.
    Keyboard(Sig, bool),
    /// The main child exits; whether others remain.
    MainExits(Status, bool),
    /// Orphans reaped; whether anything remains (only once the main child is gone can it be
    /// nothing).
    Others(bool),
    HookExited,
    MainStopped,
    Continued(bool),
    Tick,
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any_signal().prop_map(Step::Signal),
        1 => (prop_oneof![Just(sig(2)), Just(sig(3))], any::<bool>()).prop_map(|(s, p)| Step::Keyboard(s, p)),
        1 => (any_status(), any::<bool>()).prop_map(|(s, l)| Step::MainExits(s, l)),
        2 => any::<bool>().prop_map(Step::Others),
        1 => Just(Step::HookExited),
        1 => Just(Step::MainStopped),
        1 => any::<bool>().prop_map(Step::Continued),
        4 => Just(Step::Tick),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    grace_ms: u64,
    delay_ms: u64,
    hook: bool,
    child: bool,
    /// (from, to) over signals that never begin a stop, so a stop's forward is observable.
    maps: Vec<(i32, i32)>,
    success: Vec<u8>,
    follow: bool,
}

fn any_setup() -> impl Strategy<Value = Setup> {
    (
        0..5000u64,
        prop_oneof![Just(0u64), 1..3000u64],
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(
            (prop::sample::select(vec![1, 10, 12, 28]), prop::sample::select(vec![0, 1, 10, 12])),
            0..3,
        ),
        proptest::collection::vec(any::<u8>(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(grace_ms, delay_ms, hook, child, maps, success, follow)| Setup {
            grace_ms,
            delay_ms,
            hook,
            child,
            maps,
            success,
            follow,
        })
}

fn policy(s: &Setup) -> Policy {
    let mut map = SignalMap::default();
    for (from, to) in &s.maps {
        map.add(&format!("{from}:{to}")).unwrap();
    }
    let mut success = SuccessExits::default();
    for code in &s.success {
        success.add(&code.to_string()).unwrap();
    }
    Policy {
        stop_delay: Duration::from_millis(s.delay_ms),
        pre_stop: if s.hook { Hook::Configured } else { Hook::None },
        map,
        success,
        job_control: if s.follow { JobControl::Follow } else { JobControl::Off },
        tty: if s.follow { Tty::Present } else { Tty::Absent },
        ..Policy::new(Duration::from_millis(s.grace_ms), if s.child { ForwardTo::Child } else { ForwardTo::Group })
    }
}

/// What the test knows of the world the machine runs in.
struct World {
    now: Duration,
    main: Option<Status>,
    /// When the stop signal first went out (or the leftovers' SIGTERM).
    released: Option<Duration>,
    killed: bool,
    exited: Option<ExitCode>,
}

fn check(setup: &Setup, steps: &[(u64, Step)]) -> Result<(), TestCaseError> {
    let p = policy(setup);
    let grace = p.grace;
    let mut m = Machine::new(p.clone());
    let mut w = World { now: Duration::ZERO, main: None, released: None, killed: false, exited: None };
    let mut was_draining = false;

    for (dt, step) in steps {
        w.now += Duration::from_millis(*dt);
        let event = match step {
            Step::Signal(s) => Event::Signal { sig: *s, origin: Origin::Process(7) },
            Step::Keyboard(s, passed_on) => {
                Event::Signal { sig: *s, origin: if *passed_on { Origin::ProgramKeyboard } else { Origin::Keyboard } }
            }
            Step::MainExits(status, left) if w.main.is_none() => {
                w.main = Some(*status);
                let left = if *left { Left::Some } else { Left::Nothing };
                Event::Reaped { main: Some(*status), left, main_stopped: false }
            }
            Step::MainExits(..) => Event::Tick,
            Step::Others(left) => {
                let left = if *left || w.main.is_none() { Left::Some } else { Left::Nothing };
                Event::Reaped { main: None, left, main_stopped: false }
            }
            Step::HookExited => Event::HookExited,
            Step::MainStopped if w.main.is_none() => Event::Reaped { main: None, left: Left::Some, main_stopped: true },
            Step::MainStopped => Event::Tick,
            Step::Continued(shim) => Event::Continued {
                origin: Origin::Process(7),
                holder: if *shim { Holder::Shim } else { Holder::Other },
            },
            Step::Tick => Event::Tick,
        };
        let deadline_before = m.deadline();
        let actions: Vec<Action> = m.handle(event, w.now).into_iter().collect();

        if w.exited.is_some() {
            prop_assert!(actions.is_empty(), "acted after exiting: {actions:?}");
            continue;
        }
        // "Always at it": a due tick escalates (or releases a held stop first).
        if event == Event::Tick && deadline_before.is_some_and(|d| w.now >= d) {
            prop_assert!(!actions.is_empty(), "a due tick at {:?} did nothing (deadline {deadline_before:?})", w.now);
        }
        // The loop feeds no tick while no deadline is set, so one then must do nothing.
        if event == Event::Tick && deadline_before.is_none() {
            prop_assert!(actions.is_empty(), "a tick with no deadline acted: {actions:?}");
        }
        for (i, a) in actions.iter().enumerate() {
            match *a {
                Action::Send { sig, why: Why::Escalate, to } => {
                    prop_assert_eq!(sig.number(), 9);
                    prop_assert_eq!(to, Target::Everyone);
                    // The first SIGKILL comes at the deadline; later ones are the re-kill rounds.
                    if !w.killed {
                        let released = w.released.expect("escalation before any stop signal went out");
                        prop_assert!(
                            w.now >= released + grace,
                            "SIGKILL at {:?}, before {:?} + {:?}",
                            w.now,
                            released,
                            grace
                        );
                    }
                    w.killed = true;
                }
                Action::Send { why: Why::Forced, .. } => w.killed = true,
                Action::Send { why: Why::StopBegins | Why::Leftovers, to, .. } => {
                    w.released.get_or_insert(w.now);
                    let woken = Action::Send { sig: sig(18), to, why: Why::Wake };
                    prop_assert!(actions[i..].contains(&woken), "a stop signal with no SIGCONT after it: {actions:?}");
                }
                Action::Send { sig, why: Why::Wake, .. } => {
                    prop_assert_eq!(sig.number(), 18);
                    prop_assert!(!w.killed, "woke after SIGKILL");
                }
                Action::Send { sig, to, why: Why::Forward } => {
                    prop_assert!(!w.killed, "forwarded {sig:?} after SIGKILL");
                    if let Event::Signal { sig: received, .. } = event {
                        if !received.is_stop() && received.number() != 18 {
                            prop_assert_eq!(Some(sig), p.map.apply(received), "forwarded unmapped");
                            let want = if setup.child { Target::Child } else { Target::Group };
                            prop_assert_eq!(to, want, "forwarded to the wrong target");
                        }
                    }
                    if to == Target::Child {
                        prop_assert!(w.main.is_none(), "signal to a reaped child");
                    }
                }
                Action::Exit(code) => {
                    let status = w.main.expect("exit before the main child was reaped");
                    prop_assert_eq!(code, p.success.apply(status.exit_code()), "exit code against the contract");
                    w.exited = Some(code);
                }
                Action::Drop { why: Dropped::Fault, sig } => prop_assert!(sig.is_fault()),
                // The terminal sent a stop signal to the program's group itself: a stop held
                // back is released by it, but none begins.
                Action::Drop { why: Dropped::Delivered, .. } if m.stopping().is_some() => {
                    w.released.get_or_insert(w.now);
                }
                _ => {}
            }
        }
        // Health: 200 exactly while no stop has begun and the program runs; once 503, never
        // back, and 503 before any stop signal is sent.
        let draining = m.stopping().is_some() || w.main.is_some();
        prop_assert_eq!(m.health(), if draining { Health::Draining } else { Health::Serving });
        prop_assert!(!(was_draining && m.health() == Health::Serving), "health went back to 200");
        if w.released.is_some() {
            prop_assert_eq!(m.health(), Health::Draining, "a stop signal went out while still 200");
        }
        was_draining = m.health() == Health::Draining;
        // Once the stop signal went out, the deadline is the grace period after it, until
        // the kill.
        if let (Some(released), false, None) = (w.released, w.killed, w.exited) {
            if m.stopping().is_some() {
                prop_assert_eq!(m.deadline(), Some(released + grace));
            }
        }
    }

    // Termination: whatever happened, once everything is gone shim exits, and only then.
    if w.exited.is_none() {
        let main = if w.main.is_none() { Some(Status::Exited(0)) } else { None };
        w.main = w.main.or(main);
        let gone = Event::Reaped { main, left: Left::Nothing, main_stopped: false };
        let actions: Vec<Action> = m.handle(gone, w.now).into_iter().collect();
        let code = p.success.apply(w.main.unwrap().exit_code());
        prop_assert!(
            actions.contains(&Action::Exit(code)),
            "did not exit with {code:?} when all was gone: {actions:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_events(setup in any_setup(), steps in proptest::collection::vec((0..4000u64, any_step()), 0..60)) {
        check(&setup, &steps)?;
    }

    #[test]
    fn a_stop_left_to_run_always_ends_in_sigkill_at_the_deadline(setup in any_setup(), first in any_signal()) {
        // A stop signal, then nothing but ticks: the machine must escalate, and exactly at
        // the deadline it advertises.
        let p = policy(&setup);
        let mut m = Machine::new(p.clone());
        let stop = Sig::parse("TERM").unwrap();
        let _ = m.handle(Event::Signal { sig: first, origin: Origin::Process(7) }, Duration::ZERO);
        let _ = m.handle(Event::Signal { sig: stop, origin: Origin::Process(7) }, Duration::ZERO);
        let mut now = Duration::ZERO;
        let mut killed = false;
        for _ in 0..10 {
            let Some(due) = m.deadline() else { break };
            prop_assert!(due >= now);
            if due > now {
                let early: Vec<Action> = m.handle(Event::Tick, due - Duration::from_millis(1).min(due - now)).into_iter().collect();
                prop_assert!(early.iter().all(|a| !matches!(a, Action::Send { why: Why::Escalate, .. })), "escalated early");
            }
            now = due;
            let acts: Vec<Action> = m.handle(Event::Tick, now).into_iter().collect();
            if acts.iter().any(|a| matches!(a, Action::Send { why: Why::Escalate, .. })) {
                killed = true;
                break;
            }
        }
        prop_assert!(killed, "no SIGKILL after the stop");
    }
}
