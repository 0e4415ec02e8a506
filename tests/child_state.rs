//! The contract's "Start": what the program starts with — an empty signal mask, default dispositions for
//! what shim changed, its own process group, the caller's cwd, environment and fds, no fd of
//! shim's — and what shim keeps for itself after the spawn: no inherited fd, no cwd.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn field<'a>(lines: &'a str, name: &str) -> &'a str {
    lines
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim()))
        .unwrap_or_else(|| panic!("no {name} in {lines}"))
}

/// The fds this test process passes to what it runs: those without close-on-exec
/// (fdinfo's flags are octal; O_CLOEXEC is 02000000).
fn inheritable_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| {
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).map(str::trim);
            flags.and_then(|f| u32::from_str_radix(f, 8).ok()).is_some_and(|f| f & 0o2000000 == 0)
        })
        .collect();
    fds.sort();
    fds
}

/// SigIgn of `cat` started the way shim is in `mode`, without shim: what shim inherits.
fn inherited_ignored(mode: Mode, wrapper: &[&str]) -> u64 {
    let (first, rest) = wrapper.split_first().unwrap_or((&"env", &[]));
    let out =
        command(mode, first).args(rest).args(["cat", "/proc/self/status"]).stderr(Stdio::null()).output().unwrap();
    u64::from_str_radix(field(&String::from_utf8_lossy(&out.stdout), "SigIgn"), 16).unwrap()
}

const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

#[test]
fn the_program_starts_with_nothing_blocked_and_sigpipe_at_default() {
    // cat, not the probe: Rust's runtime ignores SIGPIPE in the probe itself. What the caller
    // left ignored stays ignored (that is its choice); SIGPIPE, which Rust's runtime in shim
    // ignores, must not.
    for mode in modes() {
        let (code, out, err) = run(mode, &["cat", "/proc/self/status"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(field(&out, "SigBlk"), "0000000000000000", "{mode:?}");
        let ignored = u64::from_str_radix(field(&out, "SigIgn"), 16).unwrap();
        assert_eq!(ignored & SIGPIPE_BIT, 0, "{mode:?}: SIGPIPE left ignored");
        assert_eq!(ignored, inherited_ignored(mode, &[]) & !SIGPIPE_BIT, "{mode:?}");
    }
}

#[test]
fn a_disposition_shim_inherited_as_ignored_is_passed_on() {
    // nohup ignores SIGHUP before running shim; that choice is the caller's, not shim's.
    let out =
        Command::new("nohup").args([shim_bin(), "cat", "/proc/self/status"]).stderr(Stdio::null()).output().unwrap();
    let ignored = u64::from_str_radix(field(&String::from_utf8_lossy(&out.stdout), "SigIgn"), 16).unwrap();
    assert_eq!(ignored & 1, 1, "SIGHUP no longer ignored");
    assert_eq!(ignored, inherited_ignored(Mode::Subreaper, &["nohup"]) & !SIGPIPE_BIT);
}

#[test]
fn the_program_gets_its_own_group_in_shims_session() {
    let probe = probe();
    for mode in modes() {
        let (_, out, _) = run(mode, &[&probe, "status"]);
        let pid = field(&out, "pid");
        assert_eq!(field(&out, "pgid"), pid, "{mode:?}: not a group leader");
        assert_ne!(field(&out, "sid"), pid, "{mode:?}: shim must not start a new session");
    }
}

#[test]
fn the_program_gets_the_callers_fds_and_none_of_shims() {
    let probe = probe();
    // sh opens fd 5 and execs shim with it: an fd shim inherited, for the program to use.
    let script = r#"exec 5</dev/null; exec "$@""#;
    let out = Command::new("sh").args(["-c", script, "sh", shim_bin(), &probe, "status"]).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let mut want = inheritable_fds();
    want.push(5);
    want.sort();
    want.dedup();
    let want: Vec<String> = want.iter().map(|f| f.to_string()).collect();
    assert_eq!(field(&out, "fds"), want.join(" "), "{out}");
}

#[test]
fn shim_keeps_no_inherited_fd_and_no_working_directory() {
    let probe = probe();
    let dir = std::env::temp_dir().join(format!("shim-test-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = r#"exec 5</dev/null 6>/dev/null; exec "$@""#;
    let mut child = Command::new("sh")
        .args(["-c", script, "sh", shim_bin(), &probe, "signals", "TERM"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shim = child.id() as i32;
    let mut first = [0u8; 6];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    wait_for(secs(5.0), || in_event_loop(shim).then_some(())).expect("shim never settled into its loop");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{shim}/fd"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let cwd = std::fs::read_link(format!("/proc/{shim}/cwd")).unwrap();
    let program = children(shim)[0];
    let program_cwd = std::fs::read_link(format!("/proc/{program}/cwd")).unwrap();
    // SAFETY-free cleanup: signal by pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut fds = fds;
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "shim kept inherited fds");
    assert_eq!(cwd, std::path::Path::new("/"), "shim pins its starting directory");
    assert_eq!(program_cwd, dir, "the program must start where shim was started");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn environment_stdin_and_stdout_pass_through() {
    let mut child = Command::new(shim_bin())
        .args(["sh", "-c", "echo \"$GREETING\"; cat"])
        .env("GREETING", "hello from the environment")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello through stdin\n").unwrap();
    // Bounded: if shim hangs, it is killed by pid (and the test fails).
    let deadline = Deadline::new(child.id(), secs(10.0));
    let out = child.wait_with_output().unwrap();
    drop(deadline);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the environment\nhello through stdin\n");
}

#[test]
fn an_inherited_ignored_sigchld_neither_hangs_shim_nor_reaches_the_program() {
    // Ignored, SIGCHLD would make the kernel reap shim's children itself and never tell it.
    let probe = probe();
    let sigchld = libc::SIGCHLD.to_string();
    for mode in modes() {
        let (code, _, err) = run(mode, &[&probe, "ignoring", &sigchld, shim_bin(), "sh", "-c", "exit 3"]);
        assert_eq!(code, 3, "{mode:?}: {err}");
        let (_, out, _) = run(mode, &[&probe, "ignoring", &sigchld, shim_bin(), "cat", "/proc/self/status"]);
        let ignored = u64::from_str_radix(field(&out, "SigIgn"), 16).unwrap();
        assert_eq!(ignored & (1 << (libc::SIGCHLD - 1)), 0, "{mode:?}: the program inherited SIGCHLD ignored");
    }
}
