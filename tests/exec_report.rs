//! How shim learns that its program could not be started when the child that failed to
//! exec is disturbed after its report: a stop signal at its exit, or a SIGKILL that leaves it
//! with SIGKILL's status whatever code it was exiting with. Both windows lie between two
//! instructions of the child, so no timing from outside hits them; testkit's `syscall-gate`
//! holds that one exit_group(2) in the kernel (seccomp user notification) and applies the
//! fault while the child waits, every run alike.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

const MISSING: &str = "/no/such/program";

/// Whether the kernel offers seccomp user notification, which the gate needs. If not, the
/// test prints why and returns, or fails where the PID-1 tests are required (CI).
fn gate_available() -> bool {
    const WHAT: &str = "seccomp user notification";
    match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(actions) if actions.split_whitespace().any(|a| a == "user_notif") => true,
        Ok(actions) => unavailable(WHAT, &format!("the kernel offers only: {}", actions.trim())),
        Err(e) => unavailable(WHAT, &format!("/proc/sys/kernel/seccomp/actions_avail: {e}")),
    }
}

/// `shim PROGRAM...` run through the gate in `fault` mode, as PID 1 of its own namespace or
/// not: exit code, stdout and stderr.
fn through_gate(mode: Mode, fault: &str, program: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(testkit_bin("syscall-gate"));
    if mode == Mode::Pid1 {
        cmd.arg("--pid1");
    }
    cmd.args([fault, "--", shim_bin()]).args(program);
    // The gate kills what still runs after 20 s (exit 124); this is the last resort.
    let out = output_within(&mut cmd, Duration::from_secs(30));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (exit_code(out.status), text(&out.stdout), text(&out.stderr))
}

fn assert_one_line(mode: Mode, stderr: &str, prefix: &str) {
    assert!(
        stderr.lines().count() == 1 && stderr.starts_with(prefix),
        "{mode:?}: stderr should be one line starting {prefix:?}, but is {stderr:?}"
    );
}

/// The control: through the gate with every write let through, a missing program is 127
/// and one line, as without it.
#[test]
fn the_open_gate_changes_nothing_for_a_missing_program() {
    if !gate_available() {
        return;
    }
    for mode in modes() {
        let (code, out, err) = through_gate(mode, "pass", &[MISSING]);
        assert_eq!(code, 127, "{mode:?}: {err}");
        assert_eq!(out, "", "{mode:?}");
        assert_one_line(mode, &err, &format!("shim: failed to run '{MISSING}':"));
    }
}

/// The control for a program that runs: its own exit goes through the gate (echo's output
/// arrives, and the code is its own), so the gate itself disturbs nothing.
#[test]
fn the_open_gate_lets_a_running_program_run_and_exit() {
    if !gate_available() {
        return;
    }
    for mode in modes() {
        let (code, out, err) = through_gate(mode, "pass", &["sh", "-c", "echo hi; exit 3"]);
        assert_eq!((code, out.as_str(), err.as_str()), (3, "hi\n", ""), "{mode:?}");
    }
}

/// A stop signal (`docker stop`'s SIGTERM) that reaches the child after its failed execve, as
/// it exits, changes nothing: its report is already in shim's memory (or, under an emulator,
/// in the pipe). A shim that took the child's end for the program's would exit 143 (or 127
/// with no line), and this test fails.
#[test]
fn a_signal_at_the_childs_exit_still_gives_127_and_the_reason() {
    if !gate_available() {
        return;
    }
    for mode in modes() {
        let (code, out, err) = through_gate(mode, "signal-at-exit", &[MISSING]);
        assert_eq!(code, 127, "{mode:?}: {err}");
        assert_eq!(out, "", "{mode:?}");
        assert_one_line(mode, &err, &format!("shim: failed to run '{MISSING}':"));
    }
}

/// A child SIGKILLed once it has reported (SIGKILL cannot be blocked; an OOM kill or a
/// `docker kill` can come at any instruction) is still a failure to run, with the reason it
/// reported: 127 and one line, never 137. A shim that believed the child's status over its
/// report would reap a killed child as if it were the program and exit 137 with no line, and
/// this test fails.
#[test]
fn a_child_killed_after_its_report_still_gives_127_and_the_reason() {
    if !gate_available() {
        return;
    }
    for mode in modes() {
        let (code, out, err) = through_gate(mode, "kill-at-exit", &[MISSING]);
        assert_eq!(code, 127, "{mode:?}: {err}");
        assert_eq!(out, "", "{mode:?}");
        assert_one_line(mode, &err, &format!("shim: failed to run '{MISSING}':"));
    }
}

/// Whether valgrind is installed, which the emulated-vfork test needs. If not, the test prints
/// why and returns, or fails where the PID-1 tests are required (CI).
fn valgrind_available() -> bool {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ => unavailable("valgrind", "not installed: apt-get install valgrind"),
    }
}

/// Under an emulator that runs vfork as a fork, the child's memory is its own, so its report
/// cannot come through memory. valgrind is one: it makes a fork of the first clone and passes
/// CLONE_SIGHAND on to it, which the kernel refuses, and shim clones again with the pipe. A
/// program that cannot run is still reported with its reason, and one that runs still runs,
/// with its own exit code.
#[test]
fn where_vfork_is_a_fork_the_report_comes_through_the_pipe() {
    if !valgrind_available() {
        return;
    }
    let under_valgrind = |program: &[&str]| {
        let out = output_within(
            Command::new("valgrind").args(["-q", "--tool=none", shim_bin(), "--"]).args(program),
            secs(60.0),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = under_valgrind(&[MISSING]);
    assert_eq!(code, Some(127), "{err}");
    assert_eq!(out, "");
    assert_eq!(err, format!("shim: failed to run '{MISSING}': no such file\n"));
    let (code, out, err) = under_valgrind(&["sh", "-c", "echo ran; exit 3"]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(out, "ran\n");
    assert_eq!(err, "");
}
