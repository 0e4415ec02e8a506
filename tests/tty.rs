//! The contract's "Start" and "Running" on a real pseudo-terminal: shim hands the terminal's foreground to the
//! program's group, so typed lines reach the program and Ctrl-C reaches it through the terminal
//! driver (not through shim); and, when shim is not PID 1, Ctrl-Z in an interactive shell stops
//! the program and then shim, the shell gets the terminal back, and `fg` resumes both; `bg`
//! leaves the terminal with the shell; a program started in the background (`&`) comes to the
//! foreground with `fg`; and when shim exits, the terminal is its caller's group's again.
//!
//! Each test opens a pty, starts its first process as the leader of a new session whose
//! controlling terminal is the pty's slave, and reads the master side with poll and a deadline.
// Making the pty the controlling terminal takes setsid and TIOCSCTTY between fork and exec,
// in a `pre_exec` closure, which is unsafe.
#![allow(unsafe_code)]

mod common;
use common::*;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// What the keys send in a terminal's default settings (termios(3): VINTR, VEOF, VSUSP).
const CTRL_C: &[u8] = b"\x03";
const CTRL_D: &[u8] = b"\x04";
const CTRL_Z: &[u8] = b"\x1a";

const WAIT: Duration = Duration::from_secs(5);

/// A process started as the leader of a new session on a new pty, and what the pty showed.
/// Dropping it kills, by pid, the process and everything below it, unless it already exited.
struct OnTerminal {
    child: Child,
    master: OwnedFd,
    transcript: String,
    /// Where the next `expect` starts looking: everything before it was matched already.
    cursor: usize,
    /// The master read EIO: every holder of the slave side has closed it.
    closed: bool,
}

impl OnTerminal {
    fn start(mut cmd: Command) -> OnTerminal {
        let pty = nix::pty::openpty(None, None).expect("open a pty");
        let slave = || Stdio::from(pty.slave.try_clone().expect("dup the pty slave"));
        cmd.stdin(slave()).stdout(slave()).stderr(slave());
        // SAFETY: between fork and exec the closure calls only setsid and ioctl, both
        // async-signal-safe, and reads errno; it allocates nothing. std runs it after the pty
        // slave is on fd 0.
        unsafe {
            cmd.pre_exec(|| {
                // A new session has no controlling terminal; TIOCSCTTY makes the pty (fd 0) its
                // controlling terminal, with this process's group in the foreground (tty_ioctl(4)).
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start the process on the pty");
        // Only the child keeps the slave open: when it and its descendants are gone, reading
        // the master gives EIO, which is how the end of output is known.
        drop(cmd);
        drop(pty.slave);
        OnTerminal { child, master: pty.master, transcript: String::new(), cursor: 0, closed: false }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Type `bytes` on the terminal's keyboard.
    fn send(&self, bytes: &[u8]) {
        let n = nix::unistd::write(&self.master, bytes).expect("write to the pty master");
        assert_eq!(n, bytes.len(), "short write to the pty master");
    }

    /// Read what the terminal shows, once, waiting until `deadline` at most. False when nothing
    /// came in time or nothing more ever can.
    fn read_some(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // Round up: a timeout rounded down to 0 ms would spin until the deadline.
        let timeout = PollTimeout::try_from(left + Duration::from_millis(1)).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => return false,
            Ok(_) => {}
            Err(e) => panic!("poll on the pty master: {e}"),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&self.master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.transcript.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            Err(Errno::EINTR | Errno::EAGAIN) => false,
            Err(e) => panic!("read from the pty master: {e}"),
        }
    }

    /// Wait until the terminal shows `want` after what was matched before; move past it.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.transcript[self.cursor..].find(want) {
                self.cursor += at + want.len();
                return;
            }
            if !self.read_some(deadline) && (self.closed || Instant::now() >= deadline) {
                panic!("the terminal never showed {want:?}; since the last match: {:?}", self.unmatched());
            }
        }
    }

    /// Wait for a whole line after what was matched before for which `pick` gives a value.
    fn expect_line<T>(&mut self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut start = self.cursor;
            while let Some(len) = self.transcript[start..].find('\n') {
                let line = self.transcript[start..start + len].trim_end_matches('\r');
                if let Some(found) = pick(line) {
                    self.cursor = start + len + 1;
                    return found;
                }
                start += len + 1;
            }
            if !self.read_some(deadline) && (self.closed || Instant::now() >= deadline) {
                panic!("the terminal never showed {what}; since the last match: {:?}", self.unmatched());
            }
        }
    }

    /// Wait for a whole line that ends with `want`: what the program printed, perhaps after an
    /// echo with no newline of its own ("^C").
    fn expect_line_ending(&mut self, want: &str) {
        self.expect_line(&format!("a line ending {want:?}"), |line| line.ends_with(want).then_some(()));
    }

    fn unmatched(&self) -> &str {
        &self.transcript[self.cursor..]
    }

    /// Everything the terminal showed, once every holder of the slave closed it (or `WAIT` passed).
    fn whole_transcript(&mut self) -> &str {
        let deadline = Instant::now() + WAIT;
        while !self.closed && Instant::now() < deadline {
            self.read_some(deadline);
        }
        &self.transcript
    }

    /// The terminal's foreground process group, as this test's PID namespace numbers it. The
    /// master side may ask (TIOCGPGRP answers for the slave) without being the caller's
    /// controlling terminal.
    fn foreground(&self) -> i32 {
        nix::unistd::tcgetpgrp(&self.master).expect("tcgetpgrp on the pty master").as_raw()
    }

    /// Wait for the process to exit, reading the terminal meanwhile; its exit code.
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return exit_code(status);
            }
            assert!(Instant::now() < deadline, "pid {} did not exit; terminal: {:?}", self.pid(), self.transcript);
            let soon = Instant::now() + Duration::from_millis(5);
            if !self.read_some(soon) {
                std::thread::sleep(soon.saturating_duration_since(Instant::now()));
            }
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        // Once reaped, the pid may belong to someone else: then there is nothing to kill.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        kill_descendants(self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start shim on a new terminal, as PID 1 of a new PID namespace or as a plain process, with
/// the terminal as its stdin, stdout and stderr. `-vvv` puts its log in the transcript, so a
/// failure shows what shim did.
fn shim_on_terminal(mode: Mode, program: &[&str]) -> OnTerminal {
    let mut cmd = command(mode, shim_bin());
    cmd.arg("-vvv").args(program);
    OnTerminal::start(cmd)
}

/// shim's pid, as this test sees it.
fn shim_pid(mode: Mode, tty: &OnTerminal) -> i32 {
    match mode {
        Mode::Pid1 => wait_for(WAIT, || children(tty.pid()).first().copied()).expect("unshare never forked shim"),
        Mode::Subreaper => tty.pid(),
    }
}

fn main_child(shim: i32) -> i32 {
    wait_for(WAIT, || children(shim).first().copied()).expect("shim has no child")
}

/// "foreground X own Y" from `probe tty`, as (X, Y): the terminal's foreground group and the
/// probe's own, as the probe's PID namespace numbers them.
fn foreground_report(line: &str) -> Option<(i32, i32)> {
    let (_, rest) = line.split_once("foreground ")?;
    match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [fg, "own", own] => Some((fg.parse().ok()?, own.parse().ok()?)),
        _ => None,
    }
}

/// Wait for `probe tty` to report; assert the terminal's foreground is the program's group,
/// both as the program sees it and from outside. Returns the program's pid.
fn assert_program_in_foreground(mode: Mode, tty: &mut OnTerminal, shim: i32) -> i32 {
    let (fg, own) = tty.expect_line("the probe's foreground report", foreground_report);
    assert!(own > 0, "{mode:?}: the probe has no visible group: {:?}", tty.transcript);
    assert_eq!(fg, own, "{mode:?}: the terminal's foreground is not the program's group: {:?}", tty.transcript);
    let program = main_child(shim);
    assert_eq!(tty.foreground(), program, "{mode:?}: seen from outside, the foreground is not the program's group");
    program
}

/// `probe tty` under shim on a new terminal, once it has reported the terminal is its group's.
fn probe_in_foreground(mode: Mode, probe: &str) -> OnTerminal {
    let mut tty = shim_on_terminal(mode, &[probe, "tty"]);
    let shim = shim_pid(mode, &tty);
    assert_program_in_foreground(mode, &mut tty, shim);
    tty
}

/// Ctrl-D on an empty line: `probe tty` reads EOF, says "eof" and exits 0, and shim with it.
fn end_with_eof(mode: Mode, tty: &mut OnTerminal) {
    tty.send(CTRL_D);
    tty.expect_line_ending("eof");
    assert_eq!(tty.wait(), 0, "{mode:?}: shim's exit code; terminal: {:?}", tty.whole_transcript());
}

/// The state letter in /proc/PID/status: R, S, T (stopped), Z...
fn state(pid: i32) -> char {
    status_field(pid, "State").and_then(|s| s.chars().next()).unwrap_or('?')
}

#[test]
fn the_programs_group_gets_the_terminals_foreground() {
    let probe = probe();
    for mode in modes() {
        let mut tty = probe_in_foreground(mode, &probe);
        end_with_eof(mode, &mut tty);
    }
}

#[test]
fn a_typed_line_reaches_the_program() {
    let probe = probe();
    for mode in modes() {
        let mut tty = probe_in_foreground(mode, &probe);
        tty.send(b"hello\n");
        tty.expect_line_ending("read hello");
        end_with_eof(mode, &mut tty);
    }
}

#[test]
fn ctrl_c_reaches_the_program_through_the_terminal_not_through_shim() {
    let probe = probe();
    for mode in modes() {
        let mut tty = probe_in_foreground(mode, &probe);
        tty.send(CTRL_C);
        // The terminal echoes "^C" without a newline, so the probe's line may follow it.
        tty.expect_line_ending("got INT");
        // The probe handles SIGINT and goes on reading: nothing began a stop.
        tty.send(b"still here\n");
        tty.expect_line_ending("read still here");
        end_with_eof(mode, &mut tty);
        let transcript = tty.whole_transcript();
        // shim hears of the key (its key watch passes it on: -vvv logs that), but the driver
        // sent it to the program's group, and shim neither sends it again nor begins a stop.
        assert_eq!(transcript.matches("got INT").count(), 1, "{mode:?}: {transcript:?}");
        assert!(!transcript.contains("stopping"), "{mode:?}: a Ctrl-C began a stop: {transcript:?}");
        assert!(!transcript.contains("forwarding SIGINT to"), "{mode:?}: shim sent SIGINT again: {transcript:?}");
    }
}

#[test]
fn ctrl_c_typed_during_a_stop_forces_it_at_once() {
    // The program ignores SIGTERM; the grace is long. A Ctrl-C at the terminal during the stop
    // goes to the program's group, not to shim: shim's key watch must pass it on for the stop
    // to be forced, or shim waits out the whole grace.
    let script = "trap 'echo got TERM' TERM; trap 'echo got INT' INT; echo ready; while :; do sleep 0.05; done";
    for mode in modes() {
        let mut tty = shim_on_terminal(mode, &["-g", "30s", "sh", "-c", script]);
        let shim = shim_pid(mode, &tty);
        tty.expect_line_ending("ready");
        // SAFETY: kill takes two integers.
        assert_eq!(unsafe { libc::kill(shim, libc::SIGTERM) }, 0);
        tty.expect_line_ending("got TERM");
        let typed = Instant::now();
        tty.send(CTRL_C);
        let code = tty.wait();
        let took = typed.elapsed();
        assert_eq!(code, 137, "{mode:?}: {:?}", tty.whole_transcript());
        assert!(took < Duration::from_secs(5), "{mode:?}: the stop was not forced: {took:?}");
        assert!(tty.whole_transcript().contains("stop forced"), "{mode:?}: {:?}", tty.whole_transcript());
    }
}

/// An interactive bash, if this machine has one; else why not.
fn interactive_bash() -> Result<Command, String> {
    match Command::new("bash").args(["-c", "true"]).stdin(Stdio::null()).status() {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(format!("bash -c true failed: {s}")),
        Err(e) => return Err(format!("no bash: {e}")),
    }
    let mut bash = Command::new("bash");
    // --noediting: no readline, so the shell reads plain lines the terminal driver assembled
    // and writes no escape sequences; job control is on all the same (-i on a terminal).
    bash.args(["--norc", "--noprofile", "--noediting", "-i"])
        .env("PS1", PROMPT)
        .env("TERM", "dumb")
        // Null: the shell saves no history on exit.
        .env("HISTFILE", "");
    Ok(bash)
}

const PROMPT: &str = "tty-test> ";

#[test]
fn ctrl_z_stops_the_program_then_shim_and_fg_resumes_both() {
    let Some(mut tty) = bash_on_terminal() else { return };
    let probe = probe();
    let shell = tty.pid();
    tty.send(format!("{} -vvv {probe} tty\n", shim_bin()).as_bytes());
    let shim = wait_for(WAIT, || children(shell).first().copied()).expect("the shell never started shim");
    let program = assert_program_in_foreground(Mode::Subreaper, &mut tty, shim);
    tty.send(b"hello\n");
    tty.expect_line_ending("read hello");

    tty.send(CTRL_Z);
    // The shell reports the job stopped only once shim, its job, has stopped; then it takes
    // the terminal back and prompts.
    tty.expect("Stopped");
    tty.expect(PROMPT);
    wait_for_both(&tty, program, shim, "after Ctrl-Z", stopped);
    assert_eq!(tty.foreground(), shell, "the shell did not get the terminal back");

    fg_then_read_then_exit(&mut tty, program, shim);
}

/// An interactive bash on a new terminal, at its first prompt; `None`, with the reason
/// printed, when this machine has no bash.
fn bash_on_terminal() -> Option<OnTerminal> {
    match interactive_bash() {
        Ok(bash) => {
            let mut tty = OnTerminal::start(bash);
            tty.expect(PROMPT);
            Some(tty)
        }
        Err(why) => {
            eprintln!("skipping: {why}");
            None
        }
    }
}

/// Wait until both the program and shim are in a state `ok` accepts ("stopped", "running").
fn wait_for_both(tty: &OnTerminal, program: i32, shim: i32, what: &str, ok: fn(char) -> bool) {
    let both = wait_for(WAIT, || (ok(state(program)) && ok(state(shim))).then_some(()));
    assert!(
        both.is_some(),
        "{what}: program {program} is {}, shim {shim} is {}; terminal: {:?}",
        state(program),
        state(shim),
        tty.transcript
    );
}

fn stopped(state: char) -> bool {
    state == 'T'
}

fn running(state: char) -> bool {
    matches!(state, 'R' | 'S')
}

/// The terminal's foreground stays `holder`'s group, looked at every 25 ms for half a second:
/// a wrong hand-over follows a SIGCONT within milliseconds.
fn assert_foreground_stays(tty: &OnTerminal, holder: i32, program: i32, what: &str) {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let fg = tty.foreground();
        assert_eq!(
            fg, holder,
            "{what}: the terminal went to group {fg} (the program is {program}): {:?}",
            tty.transcript
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `fg` in the shell: the shell gives shim's group the terminal and continues it; shim, which
/// was suspended, hands the terminal on to the program, continues it, and a typed line reaches
/// it. Then Ctrl-D ends the program and shim, and the shell exits.
fn fg_then_read_then_exit(tty: &mut OnTerminal, program: i32, shim: i32) {
    tty.send(b"fg\n");
    wait_for_both(tty, program, shim, "after fg", running);
    tty.send(b"after fg\n");
    tty.expect_line_ending("read after fg");
    assert_eq!(tty.foreground(), program, "after fg the program's group is not in the foreground");

    tty.send(CTRL_D);
    tty.expect_line_ending("eof");
    tty.expect(PROMPT);
    tty.send(b"echo status=$?\n");
    tty.expect_line_ending("status=0");
    tty.expect(PROMPT);
    tty.send(b"exit\n");
    assert_eq!(tty.wait(), 0, "the shell's exit code; terminal: {:?}", tty.whole_transcript());
}

#[test]
fn bg_after_ctrl_z_leaves_the_terminal_to_the_shell() {
    let Some(mut tty) = bash_on_terminal() else { return };
    let probe = probe();
    let shell = tty.pid();
    tty.send(format!("{} -vvv {probe} tty\n", shim_bin()).as_bytes());
    let shim = wait_for(WAIT, || children(shell).first().copied()).expect("the shell never started shim");
    let program = assert_program_in_foreground(Mode::Subreaper, &mut tty, shim);

    tty.send(CTRL_Z);
    tty.expect("Stopped");
    tty.expect(PROMPT);
    wait_for_both(&tty, program, shim, "after Ctrl-Z", stopped);
    assert_eq!(tty.foreground(), shell, "the shell did not get the terminal back");

    // bg continues shim's group and leaves the terminal with the shell: shim must not hand it
    // to the program, which, back in its read, stops on SIGTTIN instead, and shim with it.
    tty.send(b"bg\n");
    tty.expect(PROMPT);
    assert_foreground_stays(&tty, shell, program, "after bg");
    wait_for_both(&tty, program, shim, "a background read after bg", stopped);
    assert_eq!(tty.foreground(), shell, "after bg");

    // The shell still reads the terminal: the arithmetic shows it ran the command, not an echo.
    tty.send(b"echo alive-$((40+2))\n");
    tty.expect_line_ending("alive-42");
    tty.expect(PROMPT);

    fg_then_read_then_exit(&mut tty, program, shim);
}

#[test]
fn a_program_started_in_the_background_comes_to_the_foreground_with_fg() {
    let Some(mut tty) = bash_on_terminal() else { return };
    let probe = probe();
    let shell = tty.pid();
    tty.send(format!("{} -vvv {probe} tty &\n", shim_bin()).as_bytes());
    let shim = wait_for(WAIT, || children(shell).first().copied()).expect("the shell never started shim");
    // In the background shim gives nothing away: the shell keeps the terminal.
    let (fg, own) = tty.expect_line("the probe's foreground report", foreground_report);
    let program = main_child(shim);
    assert_eq!(own, program, "the probe is not in a group of its own: {:?}", tty.transcript);
    assert_eq!(fg, shell, "started in the background, the program saw another foreground: {:?}", tty.transcript);
    // Its first read of the terminal stops it (SIGTTIN); shim follows, so the shell sees its
    // job stopped and `fg` continues shim, which then hands the terminal on.
    wait_for_both(&tty, program, shim, "a background read", stopped);
    assert_eq!(tty.foreground(), shell, "the program's stop moved the terminal");

    fg_then_read_then_exit(&mut tty, program, shim);
}

#[test]
fn shim_gives_the_terminal_back_when_it_exits() {
    let Some(mut tty) = bash_on_terminal() else { return };
    let shell = tty.pid();
    // A script runs shim, then reads the terminal itself: the terminal must be the script's
    // group's again, not that of the program's group, which is gone.
    for (program, code) in [("true", 0), ("/no/such/program", 127)] {
        let script = format!("{} -vvv {program}; echo \"code=$?\"; read x; echo \"got-$x\"", shim_bin());
        tty.send(format!("sh -c '{script}'\n").as_bytes());
        let sh = wait_for(WAIT, || children(shell).first().copied()).expect("the shell never started sh");
        tty.expect_line_ending(&format!("code={code}"));
        assert_eq!(
            tty.foreground(),
            sh,
            "{program}: after shim exited, the terminal is not the script's group's: {:?}",
            tty.transcript
        );
        tty.send(b"hello\n");
        tty.expect_line_ending("got-hello");
        tty.expect(PROMPT);
    }
    tty.send(b"exit\n");
    assert_eq!(tty.wait(), 0, "the shell's exit code; terminal: {:?}", tty.whole_transcript());
}
