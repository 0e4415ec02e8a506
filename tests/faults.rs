//! The worst day of a PID 1, with the real binary: limits that make fork fail (and
//! `--health`'s sockets), a start with one descriptor free, stderr closed or a broken pipe, a program that stops itself, a
//! program that forks 50 000 processes, a program that exits while shim is forwarding a storm
//! of signals, and processes that are not shim's, which no stop path may touch. Each ends in
//! a clear `shim:` line or the right behaviour, with the right exit code.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Instant;

#[test]
fn fork_failing_for_the_process_limit_is_125_with_what_to_do() {
    // Root, to switch to an unprivileged user.
    if !root_available() {
        return;
    }
    // Root is exempt from RLIMIT_NPROC, so run as nobody with a limit of one process.
    let out = output_within(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "prlimit", "--nproc=1", "--"])
            .args([shim_bin(), "true"]),
        secs(10.0),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("shim: failed to start 'true': fork: ") && err.contains("raise the limit"), "{err}");
}

/// Starting the program takes no descriptor of shim's own (the child reports through the
/// memory it shares with shim): with a single one free, the program runs.
#[test]
fn starting_the_program_needs_no_file_descriptor() {
    let program = ["sh", "-c", "echo ran"];
    let out = output_within(Command::new("prlimit").args(["--nofile=4", "--", shim_bin()]).args(program), secs(10.0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
}

/// `--health` needs two descriptors of its own, a listener and a signalfd, before anything
/// starts: with only one free, shim says so, and what to do, and runs nothing.
#[test]
fn health_out_of_file_descriptors_is_125_with_what_to_do() {
    let program = ["--health", "127.0.0.1:0", "sh", "-c", "echo ran"];
    let out = output_within(Command::new("prlimit").args(["--nofile=4", "--", shim_bin()]).args(program), secs(10.0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("shim: failed to ") && err.contains("ulimit -n"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "the program must not have run");
}

#[test]
fn a_closed_stderr_never_kills_shim() {
    for mode in modes() {
        // The program makes shim log (a forwarded signal it ignores), then exits 4. $PPID is
        // shim in both modes.
        let program = ["-vvv", "sh", "-c", "trap '' USR1; kill -USR1 $PPID; exit 4"];
        let mut shim = Shim::start_with(mode, &program, Options { stderr: Stderr::Closed, ..Options::default() });
        assert_eq!(shim.wait(secs(10.0)).0, 4, "{mode:?}");
    }
}

#[test]
fn a_broken_stderr_pipe_never_kills_shim() {
    let probe = probe();
    for mode in modes() {
        // Nobody can read stderr: every log line, from the first, is a write to a broken pipe.
        let program = ["-vvv", &probe, "signals", "TERM"];
        let mut shim = Shim::start_with(mode, &program, Options { stderr: Stderr::BrokenPipe, ..Options::default() });
        shim.expect("ready", secs(5.0));
        for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM] {
            shim.signal(sig);
        }
        shim.expect("got 15", secs(5.0));
        assert_eq!(shim.wait(secs(10.0)).0, 0, "{mode:?}: shim died of its own logging");
    }
}

#[test]
fn a_program_that_stops_itself_is_woken_by_the_stop() {
    for mode in modes() {
        let mut shim = Shim::start(mode, &["-g", "30s", "sh", "-c", "echo stopping; kill -STOP $$; echo resumed"]);
        shim.expect("stopping", secs(5.0));
        let child = shim.main_child();
        wait_for(secs(5.0), || status_field(child, "State").filter(|s| s.starts_with('T')).map(drop))
            .expect("the program never stopped");
        let sent = Instant::now();
        shim.signal(libc::SIGTERM);
        let (code, at) = shim.wait(secs(5.0));
        assert_eq!(code, 143, "{mode:?}: a stopped sh must get SIGCONT to act on SIGTERM");
        assert!(at - sent < secs(3.0), "{mode:?}");
    }
}

#[test]
fn a_program_that_forks_50000_processes_leaves_no_zombie() {
    let probe = probe();
    for mode in modes() {
        let mut shim = Shim::start(mode, &[&probe, "churn", "50000"]);
        shim.expect("churned 50000", secs(120.0));
        let clean =
            wait_for(secs(20.0), || (zombies_of(shim.pid) == 0 && descendants(shim.pid).len() == 1).then_some(()));
        assert!(clean.is_some(), "{mode:?}: {} zombies left", zombies_of(shim.pid));
        let rss: u64 =
            status_field(shim.pid, "VmHWM").and_then(|v| v.trim_end_matches(" kB").parse().ok()).unwrap_or(u64::MAX);
        assert!(rss < 4096, "{mode:?}: shim's peak RSS grew to {rss} kB");
        shim.signal(libc::SIGTERM);
        assert_eq!(shim.wait(secs(5.0)).0, 143);
    }
}

#[test]
fn a_program_that_exits_during_a_signal_storm_gives_its_own_code() {
    for mode in modes() {
        let mut shim = Shim::start(mode, &["sh", "-c", "trap '' USR1; echo ready; sleep 0.3; exit 7"]);
        shim.expect("ready", secs(5.0));
        // Forward as fast as possible until shim is gone.
        let mut sent = 0;
        while nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim.pid), nix::sys::signal::Signal::SIGUSR1).is_ok()
            && sent < 2_000_000
        {
            sent += 1;
            if sent % 1000 == 0 && shim.wait_nohang().is_some() {
                break;
            }
        }
        assert_eq!(shim.wait(secs(10.0)).0, 7, "{mode:?} after {sent} signals");
    }
}

#[test]
fn no_stop_path_touches_a_process_that_is_not_shims() {
    let probe = probe();
    let mut bystander = Command::new(&probe).arg("ignore-term").stdout(Stdio::null()).spawn().unwrap();
    let paths: [(&[&str], &[i32]); 4] = [
        // A requested stop, escalated at the deadline.
        (&["-g", "200ms", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], &[libc::SIGTERM]),
        // Leftovers of a program that exits, killed at the deadline.
        (&["-g", "200ms", "sh", "-c", "sh -c \"trap '' TERM; sleep 30\" & echo ready; exit 0"], &[]),
        // A forced stop.
        (&["-g", "30s", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], &[libc::SIGTERM; 3]),
        // A program that left its group, killed at the deadline.
        (&["-g", "200ms", &probe, "escape-group", "ignore"], &[libc::SIGTERM]),
    ];
    for (args, signals) in paths {
        let mut with_log = vec!["-v"];
        with_log.extend(args);
        let mut shim = Shim::start(Mode::Subreaper, &with_log);
        shim.expect("ready", secs(5.0));
        for (n, &sig) in signals.iter().enumerate() {
            shim.signal(sig);
            // Taken in turn, not coalesced: shim logs each stop signal it forwards.
            if n + 1 < signals.len() {
                shim.expect_stderr_times("SIGTERM to ", n + 1, secs(5.0));
            }
        }
        shim.wait(secs(10.0));
        assert!(bystander.try_wait().unwrap().is_none(), "{args:?}: shim killed a process that was not its own");
    }
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}
