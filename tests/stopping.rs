//! The contract's "Stopping" with real processes: the stop waits for everything shim is responsible for, the
//! main child exiting does not cut it short, the grace period ends in SIGKILL of all that is
//! left, and leftovers of a main child that exits on its own are stopped too.

mod common;
use common::*;

#[test]
fn a_program_ignoring_sigterm_is_killed_when_the_grace_period_ends() {
    let probe = probe();
    for mode in modes() {
        for (opts, env) in both_ways(&["-g", "2s"], &[("SHIM_GRACE", "2s")]) {
            let mut shim = Shim::start_program(mode, &opts, &env, &[&probe, "ignore-term"]);
            shim.expect("ready", secs(5.0));
            let sent = std::time::Instant::now();
            shim.signal(libc::SIGTERM);
            let (code, at) = shim.wait(secs(10.0));
            let took = at - sent;
            assert_eq!(code, 137, "{mode:?}");
            assert!(took >= secs(1.95) && took < secs(3.5), "{mode:?}: escalation after {took:?}, grace 2s");
        }
    }
}

#[test]
fn zero_grace_kills_at_once() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "0", &probe, "ignore-term"]);
        shim.expect("ready", secs(5.0));
        let sent = std::time::Instant::now();
        shim.signal(libc::SIGTERM);
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 137);
        assert!(at - sent < secs(1.0), "{mode:?}: {:?}", at - sent);
    }
}

#[test]
fn shell_form_the_server_finishes_its_work_after_the_shell_dies() {
    // CMD server; echo done — sh cannot exec the server, and dies at once on SIGTERM.
    let probe = probe();
    for mode in modes() {
        let script = format!("{probe} drain 2; echo done");
        let mut shim = Shim::start(mode, &["-g", "10s", "sh", "-c", &script]);
        shim.expect("ready", secs(5.0));
        let sent = std::time::Instant::now();
        shim.signal(libc::SIGTERM);
        shim.expect("draining", secs(5.0));
        shim.expect("drained", secs(5.0));
        let (code, at) = shim.wait(secs(5.0));
        let took = at - sent;
        assert_eq!(code, 143, "{mode:?}: sh died of SIGTERM, and that is the status");
        assert!(took >= secs(1.95) && took < secs(4.0), "{mode:?}: stop took {took:?}, drain is 2s");
        let rest = shim.rest_of_output(secs(2.0));
        assert!(!rest.contains(&"done".to_string()), "{rest:?}");
    }
}

#[test]
fn another_stop_signal_during_the_grace_period_is_forwarded() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "1s", &probe, "signals"]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        shim.expect("got 15", secs(5.0));
        shim.signal(libc::SIGINT);
        shim.expect("got 2", secs(5.0));
        assert_eq!(shim.wait(secs(5.0)).0, 137, "{mode:?}");
    }
}

#[test]
fn leftovers_of_a_main_child_that_exits_get_sigterm_and_may_finish() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "10s", &probe, "leave", "4", "drain", "1"]);
        shim.expect("ready", secs(5.0));
        shim.expect("draining", secs(5.0));
        let began = std::time::Instant::now();
        shim.expect("drained", secs(5.0));
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 4, "{mode:?}: the main child's code");
        assert!(at - began >= secs(0.95), "{mode:?}: shim did not wait for the leftover");
    }
}

#[test]
fn leftovers_that_ignore_sigterm_are_killed_at_the_deadline() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "1s", &probe, "leave", "5", "ignore-term"]);
        shim.expect("ready", secs(5.0));
        let leftover = wait_for(secs(5.0), || {
            let all = descendants(shim.pid);
            (all.len() == 1).then(|| all[0])
        })
        .expect("one leftover");
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 5, "{mode:?}");
        let took = at - shim.started;
        assert!(took >= secs(0.95) && took < secs(3.0), "{mode:?}: {took:?}");
        assert!(!alive(leftover), "{mode:?}: leftover {leftover} still alive");
    }
}

#[test]
fn a_daemon_that_left_the_group_gets_the_stop_signal_and_may_drain() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "10s", &probe, "escape-group", "1"]);
        shim.expect("escapee ready", secs(5.0));
        let sent = std::time::Instant::now();
        shim.signal(libc::SIGTERM);
        shim.expect("escapee draining", secs(5.0));
        shim.expect("escapee drained", secs(5.0));
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 143, "{mode:?}: the main child died of SIGTERM");
        assert!(at - sent >= secs(0.95) && at - sent < secs(5.0), "{mode:?}: {:?}", at - sent);
    }
}

#[test]
fn a_stopped_daemon_that_left_the_group_is_woken_to_drain() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "10s", &probe, "escape-group", "1"]);
        shim.expect("escapee ready", secs(5.0));
        let main = shim.main_child();
        let daemon = descendants(shim.pid).into_iter().find(|&p| p != main).expect("the escapee");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon), nix::sys::signal::Signal::SIGSTOP).unwrap();
        wait_for(secs(5.0), || status_field(daemon, "State").filter(|s| s.starts_with('T'))).expect("stopped");
        let sent = std::time::Instant::now();
        shim.signal(libc::SIGTERM);
        // Stopped, it could not act on SIGTERM: only the SIGCONT after it lets it drain, long
        // before the grace period ends.
        shim.expect("escapee draining", secs(5.0));
        shim.expect("escapee drained", secs(5.0));
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 143, "{mode:?}");
        assert!(at - sent < secs(5.0), "{mode:?}: {:?}", at - sent);
    }
}

#[test]
fn a_daemon_that_left_the_group_and_ignores_sigterm_is_killed_at_the_deadline() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "1s", &probe, "escape-group", "ignore"]);
        shim.expect("escapee ready", secs(5.0));
        let escaped = wait_for(secs(5.0), || {
            let all = descendants(shim.pid);
            (all.len() == 2).then(|| all[1])
        })
        .expect("the escaped grandchild");
        shim.signal(libc::SIGTERM);
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 143, "{mode:?}");
        let took = at - shim.started;
        assert!(took >= secs(0.95), "{mode:?}: shim exited before the escaped process was dealt with");
        assert!(!alive(escaped), "{mode:?}: escaped process {escaped} survived");
    }
}

#[test]
fn escalation_as_subreaper_spares_processes_that_are_not_descendants() {
    let probe = probe();
    let mut bystander =
        std::process::Command::new(&probe).arg("ignore-term").stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut shim = Shim::start(Mode::Subreaper, &["-g", "0", &probe, "leave", "0", "ignore-term"]);
    shim.expect("ready", secs(5.0));
    assert_eq!(shim.wait(secs(5.0)).0, 0);
    assert!(bystander.try_wait().unwrap().is_none(), "shim killed a process that was not its descendant");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn a_descendant_whose_name_is_not_utf8_is_still_found_and_killed() {
    // /proc/PID/stat holds the command name cut at 15 bytes, which may split a UTF-8
    // character; the subreaper's scan must still see the process.
    let dir = std::env::temp_dir().join(format!("shim-test-name-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let named = dir.join("аааааааааб");
    std::fs::copy(probe(), &named).unwrap();
    let named = named.to_str().unwrap().to_string();
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "1s", &named, "escape-group", "ignore"]);
        shim.expect("escapee ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 143, "{mode:?}");
        assert!(at - shim.started < secs(3.5), "{mode:?}: the escapee was not killed at the deadline");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
