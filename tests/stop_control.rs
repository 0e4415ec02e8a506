//! Controlling the stop, with the real binary: the stop delay, the pre-stop hook, signal
//! maps, success exit codes, the forced stop and the parent-death signal. Each option is
//! exercised from the command line and from its SHIM_* variable.

mod common;
use common::*;
use std::process::Command;
use std::time::Instant;

#[test]
fn the_stop_delay_keeps_the_program_serving_then_forwards() {
    let probe = probe();
    for mode in modes() {
        for (opts, env) in both_ways(&["-v", "-d", "2s"], &[("SHIM_VERBOSE", "1"), ("SHIM_STOP_DELAY", "2s")]) {
            let mut shim = Shim::start_program(mode, &opts, &env, &[&probe, "signals", "TERM"]);
            shim.expect("ready", secs(5.0));
            let sent = Instant::now();
            shim.signal(libc::SIGTERM);
            // Still serving during the delay: once shim says it holds the stop, other signals
            // go through at once, and before the stop signal.
            shim.expect_stderr("keeps serving", secs(1.5));
            shim.signal(libc::SIGHUP);
            shim.expect("got 1", secs(5.0));
            shim.expect("got 15", secs(5.0));
            let held = sent.elapsed();
            assert!(held >= secs(1.95) && held < secs(3.5), "{mode:?}: SIGTERM forwarded after {held:?}, delay 2s");
            assert_eq!(shim.wait(secs(5.0)).0, 0);
            // The SIGCONT that follows every stop signal (to wake anything stopped) is shim's own.
            let lines: Vec<String> = shim.rest_of_output(secs(2.0)).into_iter().filter(|l| l != "got 18").collect();
            assert_eq!(lines, ["ready", "got 1", "got 15"], "{mode:?}: SIGHUP must arrive during the delay");
        }
    }
}

#[test]
fn a_second_stop_signal_during_the_delay_is_forwarded_at_once() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start_program(mode, &["-v", "-d", "30s"], &[], &[&probe, "signals", "INT"]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        // Sent together, the kernel would hand shim the lower-numbered SIGINT first.
        shim.expect_stderr("keeps serving", secs(5.0));
        let sent = Instant::now();
        shim.signal(libc::SIGINT);
        shim.expect("got 2", secs(5.0));
        assert!(sent.elapsed() < secs(2.0), "{mode:?}");
        assert_eq!(shim.wait(secs(5.0)).0, 0);
    }
}

#[test]
fn the_pre_stop_hook_runs_before_forwarding_with_its_output_shown() {
    let probe = probe();
    for mode in modes() {
        // No shell needed: the hook is the probe itself, its words split by shim.
        let hook = format!("{probe} leave 0 drain 0");
        for (opts, env) in both_ways(&["-p", &hook], &[("SHIM_PRE_STOP", &hook)]) {
            let mut shim = Shim::start_program(mode, &opts, &env, &[&probe, "signals", "TERM"]);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGTERM);
            // The hook's own "ready" comes before the program hears of the stop.
            shim.expect("ready", secs(5.0));
            shim.expect("got 15", secs(5.0));
            assert_eq!(shim.wait(secs(5.0)).0, 0, "{mode:?}: {}", shim.stderr());
        }
    }
}

#[test]
fn a_hook_that_overruns_the_delay_is_killed_and_the_stop_goes_on() {
    let probe = probe();
    for mode in modes() {
        let hook = format!("{probe} ignore-term");
        // The program outlives the stop signal (it exits on SIGHUP), so shim is still there
        // to be looked at once the hook has been dealt with.
        let mut shim = Shim::start_program(mode, &["-d", "1s", "-p", &hook], &[], &[&probe, "signals", "HUP"]);
        shim.expect("ready", secs(5.0));
        let program = shim.main_child();
        let sent = Instant::now();
        shim.signal(libc::SIGTERM);
        shim.expect("ready", secs(5.0));
        let hook = children(shim.pid).into_iter().find(|&p| p != program).expect("the hook is shim's child");
        shim.expect("got 15", secs(5.0));
        assert!(sent.elapsed() < secs(2.5), "{mode:?}: the hook held the stop for {:?}", sent.elapsed());
        // Killed and reaped: no longer shim's child, not even a zombie.
        let gone = wait_for(secs(5.0), || (!children(shim.pid).contains(&hook)).then_some(()));
        assert!(gone.is_some(), "{mode:?}: the hook {hook} was left running or unreaped");
        assert!(!alive(hook), "{mode:?}: the hook {hook} is still alive");
        shim.signal(libc::SIGHUP);
        assert_eq!(shim.wait(secs(5.0)).0, 0);
        assert!(shim.full_stderr(secs(5.0)).contains("shim: pre-stop hook overran its time: killing it"));
    }
}

#[test]
fn a_hook_that_fails_is_reported_and_never_blocks_the_stop() {
    let probe = probe();
    for mode in modes() {
        for (hook, says) in [
            (
                "/no/such/hook --flag",
                "shim: pre-stop hook: failed to run '/no/such/hook': no such file; stopping anyway",
            ),
            (&format!("{probe} exit 3") as &str, "shim: pre-stop hook exited with 3; stopping anyway"),
        ] {
            let mut shim = Shim::start_program(mode, &["-p", hook], &[], &[&probe, "signals", "TERM"]);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGTERM);
            shim.expect("got 15", secs(5.0));
            assert_eq!(shim.wait(secs(5.0)).0, 0);
            let err = shim.full_stderr(secs(5.0));
            assert!(err.contains(says), "{mode:?}: {err}");
        }
    }
}

#[test]
fn a_mapped_stop_signal_is_what_the_program_gets() {
    let probe = probe();
    for mode in modes() {
        for (opts, env) in
            both_ways(&["-m", "TERM:QUIT", "--map-signal=HUP:0"], &[("SHIM_MAP_SIGNAL", "TERM:QUIT,HUP:0")])
        {
            let mut shim = Shim::start_program(mode, &opts, &env, &[&probe, "signals", "QUIT", "TERM"]);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGHUP);
            shim.signal(libc::SIGUSR1);
            shim.expect("got 10", secs(5.0));
            shim.signal(libc::SIGTERM);
            shim.expect("got 3", secs(5.0));
            assert_eq!(shim.wait(secs(5.0)).0, 0);
            // The SIGCONT that follows every stop signal (to wake anything stopped) is shim's own.
            let lines: Vec<String> = shim.rest_of_output(secs(2.0)).into_iter().filter(|l| l != "got 18").collect();
            assert_eq!(lines, ["ready", "got 10", "got 3"], "{mode:?}: HUP must be dropped, TERM become QUIT");
        }
    }
}

#[test]
fn a_bad_map_is_a_usage_error_naming_the_bad_part() {
    for (args, env, want) in [
        (vec!["-m", "TERM:NOPE", "true"], vec![], "shim: --map-signal: 'TERM:NOPE': unknown signal 'NOPE'"),
        (
            vec!["true"],
            vec![("SHIM_MAP_SIGNAL", "TERM:QUIT,HUPP:0")],
            "shim: SHIM_MAP_SIGNAL: 'HUPP:0': unknown signal 'HUPP'",
        ),
    ] {
        let out = output_within(Command::new(shim_bin()).args(&args).envs(env), secs(10.0));
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.lines().next().unwrap_or("").starts_with(want), "{err}");
    }
}

#[test]
fn success_exit_codes_become_zero() {
    for mode in modes() {
        for (opts, env) in [
            (vec!["-s", "143"], vec![]),
            (vec!["--success-exit", "TERM"], vec![]),
            (vec![], vec![("SHIM_SUCCESS_EXIT", "1,143")]),
        ] {
            let mut shim = Shim::start_program(mode, &opts, &env, &["sh", "-c", "kill -TERM $$"]);
            assert_eq!(shim.wait(secs(5.0)).0, 0, "{mode:?} {opts:?} {env:?}");
        }
        let (code, _, _) = run(mode, &["-s", "143", "sh", "-c", "exit 3"]);
        assert_eq!(code, 3, "other codes pass through");
    }
}

#[test]
fn a_third_stop_signal_kills_everything_at_once() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-v", "-g", "60s", &probe, "ignore-term"]);
        shim.expect("ready", secs(5.0));
        let sent = Instant::now();
        for n in 1..=3 {
            shim.signal(libc::SIGTERM);
            // Each must be taken in turn, not coalesced into one pending SIGTERM: wait for
            // shim's log line about it before sending the next.
            if n < 3 {
                shim.expect_stderr_times("SIGTERM to ", n, secs(5.0));
            }
        }
        let (code, at) = shim.wait(secs(10.0));
        assert_eq!(code, 137, "{mode:?}");
        assert!(at - sent < secs(3.0), "{mode:?}: a forced stop took {:?}", at - sent);
        let err = shim.full_stderr(secs(5.0));
        assert!(err.contains("shim: stop forced"), "{err}");
    }
}

#[test]
fn the_parent_death_signal_reaches_shim_and_so_the_program() {
    let probe = probe();
    for (opts, env) in both_ways(&["--pdeathsig", "TERM"], &[("SHIM_PDEATHSIG", "TERM")]) {
        // sh starts shim in the background and waits; killing sh is the parent's death.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "\"$@\" & echo \"shim $!\"; wait", "sh", shim_bin()])
            .args(&opts)
            .args([probe.as_str(), "signals", "TERM"])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped());
        let mut parent = cmd.spawn().unwrap();
        // Should the test fail before it kills sh, sh dies anyway, and shim with it.
        let deadline = Deadline::new(parent.id(), secs(20.0));
        let mut lines = Lines::of(parent.stdout.take().unwrap());
        // sh's line and the probe's race each other: take them in either order.
        lines.expect_all(&["shim ", "ready"], secs(5.0));
        let pid: i32 = lines.seen().iter().find_map(|l| l.strip_prefix("shim ")?.parse().ok()).unwrap();
        parent.kill().unwrap();
        drop(deadline);
        parent.wait().unwrap();
        lines.expect("got 15", secs(5.0));
        let gone = wait_for(secs(5.0), || (!alive(pid)).then_some(()));
        if gone.is_none() {
            kill_descendants(pid);
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            panic!("shim {pid} outlived the stop");
        }
    }
}
