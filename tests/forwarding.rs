//! The contract's "Start" and "Running" with real signals: what shim receives reaches the program (or its group),
//! faults do not, nothing is lost right after start, and a storm does not break it.

mod common;
use common::*;
use std::time::Duration;

/// SIGRTMIN+3 as glibc and Docker number it.
const RTMIN_3: i32 = 37;

#[test]
fn each_signal_reaches_the_program() {
    let probe = probe();
    let sigs = [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGPIPE,
        libc::SIGCONT,
        RTMIN_3,
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
    ];
    for mode in modes() {
        for sig in sigs {
            let mut shim = Shim::start(mode, &["-g", "30s", &probe, "signals", "TERM", "INT", "QUIT"]);
            shim.expect("ready", secs(5.0));
            shim.signal(sig);
            shim.expect(&format!("got {sig}"), secs(5.0));
            if ![libc::SIGTERM, libc::SIGINT, libc::SIGQUIT].contains(&sig) {
                shim.signal(libc::SIGTERM);
            }
            let (code, _) = shim.wait(secs(5.0));
            assert_eq!(code, 0, "{mode:?} signal {sig}: {}", shim.stderr());
        }
    }
}

#[test]
fn fault_signals_sent_to_shim_are_not_forwarded() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, libc::SIGSYS, libc::SIGABRT]
        {
            shim.signal(sig);
        }
        shim.signal(libc::SIGUSR1);
        shim.expect("got 10", secs(5.0));
        shim.signal(libc::SIGUSR2);
        shim.expect("got 12", secs(5.0));
        shim.signal(libc::SIGTERM);
        assert_eq!(shim.wait(secs(5.0)).0, 0);
        // The SIGCONT that follows every stop signal (to wake anything stopped) is shim's own.
        let lines: Vec<String> = shim.rest_of_output(secs(2.0)).into_iter().filter(|l| l != "got 18").collect();
        assert_eq!(lines, ["ready", "got 10", "got 12", "got 15"], "{mode:?}");
    }
}

/// `sh` traps USR1 and starts the probe in the background: both are in the group.
fn group_script(probe: &str) -> String {
    format!("trap 'echo sh-got-usr1' USR1; {probe} signals TERM & wait; wait")
}

#[test]
fn forward_to_group_reaches_the_whole_group() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["sh", "-c", &group_script(&probe)]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGUSR1);
        let mut got = [shim.expect("", secs(5.0)), shim.expect("", secs(5.0))];
        got.sort();
        assert_eq!(got, ["got 10", "sh-got-usr1"], "{mode:?}");
        shim.signal(libc::SIGTERM);
        shim.wait(secs(5.0));
    }
}

#[test]
fn forward_to_child_reaches_the_child_alone() {
    let probe = probe();
    for mode in modes() {
        for (opts, env) in both_ways(&["--forward-to", "child"], &[("SHIM_FORWARD_TO", "child")]) {
            let script = group_script(&probe);
            let mut shim = Shim::start_program(mode, &opts, &env, &["sh", "-c", &script]);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGUSR1);
            shim.expect("sh-got-usr1", secs(5.0));
            // sh dies of SIGTERM; the probe, left over, gets SIGTERM from shim and exits.
            shim.signal(libc::SIGTERM);
            shim.expect("got 15", secs(5.0));
            assert_eq!(shim.wait(secs(5.0)).0, 143);
            let lines = shim.rest_of_output(secs(2.0));
            assert!(!lines.iter().any(|l| l == "got 10"), "{mode:?}: USR1 reached the group: {lines:?}");
        }
    }
}

#[test]
fn sigterm_right_after_start_is_never_lost() {
    // The race: the signal may land before the spawn, between fork and exec, or just after.
    // A lost one would leave the program running until the test's 5 s limit (grace is 30 s).
    let probe = probe();
    for mode in modes() {
        for i in 0..32u64 {
            let mut shim = Shim::start(mode, &["-g", "30s", &probe, "no-handler"]);
            std::thread::sleep(Duration::from_micros(i * 31));
            shim.signal(libc::SIGTERM);
            let (code, at) = shim.wait(secs(5.0));
            assert_eq!(code, 143, "{mode:?} run {i}: {}", shim.stderr());
            assert!(at - shim.started < secs(4.0));
        }
    }
}

#[test]
fn a_storm_of_20000_signals_leaves_shim_alive_and_responsive() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        for i in 0..20_000 {
            shim.signal(if i % 2 == 0 { libc::SIGUSR1 } else { RTMIN_3 });
        }
        // Real-time signals queue and standard ones coalesce; the order between them is the
        // kernel's, so only require that both kinds arrived.
        shim.expect_all(&["got 10", &format!("got {RTMIN_3}")], secs(10.0));
        assert!(alive(shim.pid));
        shim.signal(libc::SIGTERM);
        shim.expect("got 15", secs(30.0));
        assert_eq!(shim.wait(secs(10.0)).0, 0, "{mode:?}");
    }
}
