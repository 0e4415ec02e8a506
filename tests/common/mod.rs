//! The integration tests' prelude: run the built shim as a real PID 1 (in a new PID and mount
//! namespace, through `unshare`) or as a subreaper that is not PID 1; read what the program
//! prints line by line with a deadline (handshakes, not sleeps); send real signals; look at
//! real process state in /proc; and kill by pid whatever a test leaves behind.
#![allow(dead_code)]
// Signals by number (real-time ones included) need libc::kill; each use is a plain syscall.
#![allow(unsafe_code)]

pub mod docker;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The shim under test: this build's, or another binary named by SHIM_UNDER_TEST (CI points it
/// at the static release build, so the binary that ships is the one tested).
pub fn shim_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| std::env::var("SHIM_UNDER_TEST").unwrap_or_else(|_| env!("CARGO_BIN_EXE_shim").to_string()))
}

/// The probe program (testkit).
pub fn probe() -> String {
    testkit_bin("probe")
}

/// A testkit program, built on first use. `cargo test` builds other packages' binaries only
/// as test harnesses, so the tests build them, in a target dir of their own so as not to wait
/// on the lock of the `cargo test` that runs them.
pub fn testkit_bin(name: &str) -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = workspace.join("target/testkit");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "shim-testkit", "--target-dir"])
            .arg(&target)
            .current_dir(&workspace)
            .status()
            .expect("run cargo to build the testkit");
        assert!(status.success(), "building the testkit failed");
        target.join("debug")
    });
    dir.join(name).to_string_lossy().into_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of a fresh PID namespace, as in a container.
    Pid1,
    /// An ordinary process that made itself a child subreaper.
    Subreaper,
}

pub const BOTH: [Mode; 2] = [Mode::Pid1, Mode::Subreaper];

/// Whether this machine lets the tests make PID namespaces (root and unshare). When it does
/// not, a test in PID 1 mode prints why and returns: it cannot say anything here.
pub fn namespaces_available() -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let ok = OK.get_or_init(|| {
        // SAFETY: geteuid only reads.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        match Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("unshare --pid failed: {s}")),
            Err(e) => Err(format!("no unshare: {e}")),
        }
    });
    match ok {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipping: PID namespaces unavailable ({why})");
            false
        }
    }
}

/// Modes this machine can run, with a printed reason for any it cannot.
pub fn modes() -> Vec<Mode> {
    BOTH.into_iter().filter(|m| *m == Mode::Subreaper || namespaces_available()).collect()
}

/// A running shim.
pub struct Shim {
    pub mode: Mode,
    /// The process the test started: unshare for PID 1, shim itself otherwise.
    outer: Child,
    /// shim's pid as this test sees it.
    pub pid: i32,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_closed: Receiver<()>,
    pub started: Instant,
    exit: Option<(i32, Instant)>,
}

/// What the mask of a process that blocked every catchable signal reads as in /proc.
pub const ALL_BLOCKED: &str = "fffffffffffbfeff";

pub struct Options<'a> {
    pub env: &'a [(&'a str, &'a str)],
    pub stdin: Stdio,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { env: &[], stdin: Stdio::null() }
    }
}

impl Shim {
    pub fn start(mode: Mode, args: &[&str]) -> Shim {
        Shim::start_with(mode, args, Options::default())
    }

    pub fn start_with(mode: Mode, args: &[&str], opts: Options) -> Shim {
        let mut cmd = match mode {
            Mode::Pid1 => {
                let mut c = Command::new("unshare");
                // --kill-child: if unshare dies, the namespace goes with it.
                c.args(["--pid", "--fork", "--mount-proc", "--kill-child", shim_bin()]);
                c
            }
            Mode::Subreaper => Command::new(shim_bin()),
        };
        cmd.args(args).stdin(opts.stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in opts.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut outer = cmd.spawn().expect("start shim");
        let (tx, lines) = mpsc::channel();
        let out = outer.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = outer.stderr.take().unwrap();
        let sink = stderr.clone();
        let (closed_tx, stderr_closed) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = closed_tx.send(());
        });
        let pid = match mode {
            // A program that exits at once may take shim and unshare with it before we look:
            // then there is no pid to find, and 0 stands for "gone".
            Mode::Pid1 => wait_for(Duration::from_secs(5), || {
                let found = children(outer.id() as i32).first().copied();
                found.or_else(|| outer.try_wait().ok().flatten().map(|_| 0))
            })
            .unwrap_or_else(|| {
                let _ = outer.kill();
                let _ = outer.wait();
                panic!("unshare never forked shim")
            }),
            Mode::Subreaper => outer.id() as i32,
        };
        // Ready means shim has blocked its signals: from then on none may be lost. (Or it is
        // gone already: a program that exits at once.)
        let ready = wait_for(Duration::from_secs(5), || {
            let gone = status_field(pid, "State").is_none_or(|s| s.starts_with('Z'));
            (gone || signals_blocked(pid)).then_some(())
        })
        .is_some();
        // Built before the check so that a failing check still cleans up (Drop).
        let shim = Shim { mode, outer, pid, lines, seen: Vec::new(), stderr, stderr_closed, started, exit: None };
        if !ready {
            panic!("shim {pid} never blocked its signals");
        }
        shim
    }

    /// Wait for a line of the program's output that contains `want`; return it.
    pub fn expect(&mut self, want: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(want) {
                        return line;
                    }
                }
                Err(_) => {
                    let tail = &self.seen[self.seen.len().saturating_sub(20)..];
                    panic!(
                        "no line with {want:?} within {within:?}; {} lines so far, the last: {tail:?}; stderr: {}",
                        self.seen.len(),
                        self.stderr()
                    )
                }
            }
        }
    }

    /// Wait until a line containing each of `wants` has been seen, in any order.
    pub fn expect_all(&mut self, wants: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        let mut missing: Vec<&str> =
            wants.iter().copied().filter(|w| !self.seen.iter().any(|l| l.contains(w))).collect();
        while !missing.is_empty() {
            let line =
                self.expect("", deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
            missing.retain(|w| !line.contains(w));
        }
    }

    /// Every line printed so far and until the output closes (after exit).
    pub fn rest_of_output(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until shim's stderr contains `want` (a log line with `-v`: shim's own handshake).
    pub fn expect_stderr(&self, want: &str, within: Duration) {
        if wait_for(within, || self.stderr().contains(want).then_some(())).is_none() {
            panic!("stderr never said {want:?} within {within:?}: {}", self.stderr());
        }
    }

    /// Wait until shim's stderr holds `want` at least `times` times (shim's `-v` lines as a
    /// handshake: each stop signal it has taken in is one line).
    pub fn expect_stderr_times(&self, want: &str, times: usize, within: Duration) {
        if wait_for(within, || (self.stderr().matches(want).count() >= times).then_some(())).is_none() {
            panic!("stderr never said {want:?} {times} times within {within:?}: {}", self.stderr());
        }
    }

    /// All of stderr, once every process holding it has closed it (or `within` passed).
    pub fn full_stderr(&self, within: Duration) -> String {
        let _ = self.stderr_closed.recv_timeout(within);
        self.stderr()
    }

    /// Send `sig` to shim, as `docker stop` / `kill` would.
    pub fn signal(&self, sig: i32) {
        assert!(self.pid > 0, "shim is gone already");
        // SAFETY: kill takes two integers.
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid);
    }

    /// Wait for shim to exit; its code and when it exited. Panics after `within`.
    pub fn wait(&mut self, within: Duration) -> (i32, Instant) {
        if let Some(e) = self.exit {
            return e;
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.outer.try_wait().expect("wait") {
                use std::os::unix::process::ExitStatusExt;
                let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                self.exit = Some((code, Instant::now()));
                return self.exit.unwrap();
            }
            if Instant::now() > deadline {
                panic!("shim did not exit within {within:?}; stderr: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// shim's exit code and time if it has exited, without waiting.
    pub fn wait_nohang(&mut self) -> Option<(i32, Instant)> {
        if self.exit.is_none() {
            if let Some(status) = self.outer.try_wait().expect("wait") {
                use std::os::unix::process::ExitStatusExt;
                let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                self.exit = Some((code, Instant::now()));
            }
        }
        self.exit
    }

    /// The pid of shim's main child (the first child it has).
    pub fn main_child(&self) -> i32 {
        wait_for(Duration::from_secs(5), || children(self.pid).first().copied()).expect("shim has no child")
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        // Kill by pid: the whole tree below shim first (as subreaper it may own processes in
        // other groups), then shim, then the outer process.
        for pid in descendants(self.pid).into_iter().rev() {
            // SAFETY: kill takes two integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // SAFETY: as above.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.outer.kill();
        let _ = self.outer.wait();
    }
}

/// Kills `pid` with SIGKILL if it is still unreaped after `within`; stands down when dropped,
/// so a pid reaped and reused meanwhile is never signalled.
pub struct Deadline(Option<std::sync::mpsc::Sender<()>>);

impl Deadline {
    pub fn new(pid: u32, within: Duration) -> Deadline {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(within) {
                // SAFETY: kill takes two integers; the owner has not reaped pid yet (it would
                // have dropped the guard first).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        });
        Deadline(Some(tx))
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Poll `f` every millisecond until it gives a value or `within` passes. For state only /proc
/// can show (a pid appearing, a zombie going): there is nothing to hand-shake with.
pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `pid` has every catchable signal blocked. While a process sleeps in
/// rt_sigtimedwait the kernel shows the awaited signals as unblocked (it keeps the real mask
/// aside), so sleeping there counts too.
pub fn signals_blocked(pid: i32) -> bool {
    status_field(pid, "SigBlk").as_deref() == Some(ALL_BLOCKED) || in_event_loop(pid)
}

/// Whether shim sleeps in its event loop (rt_sigtimedwait): past its start-up, idle.
pub fn in_event_loop(pid: i32) -> bool {
    const RT_SIGTIMEDWAIT: &str = "128 ";
    std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|s| s.starts_with(RT_SIGTIMEDWAIT))
}

/// A field of /proc/PID/status, trimmed.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

/// Direct children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// (pid, ppid, state) of every process.
pub fn processes() -> Vec<(i32, i32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state));
    }
    out
}

/// Every descendant of `root`, parents before children.
pub fn descendants(root: i32) -> Vec<i32> {
    let all = processes();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    found.remove(0);
    found
}

/// Zombie children of `pid`.
pub fn zombies_of(pid: i32) -> usize {
    processes().iter().filter(|p| p.1 == pid && p.2 == 'Z').count()
}

pub fn alive(pid: i32) -> bool {
    processes().iter().any(|p| p.0 == pid && p.2 != 'Z')
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Run shim to completion (30 s at most) and return its exit code, stdout and stderr.
pub fn run(mode: Mode, args: &[&str]) -> (i32, String, String) {
    let mut shim = Shim::start(mode, args);
    let (code, _) = shim.wait(Duration::from_secs(30));
    let out = shim.rest_of_output(Duration::from_secs(5)).join("\n");
    (code, out, shim.full_stderr(Duration::from_secs(5)))
}
