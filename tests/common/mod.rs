//! The integration tests' prelude: run the built shim as a real PID 1 (in a new PID and mount
//! namespace, through `unshare`) or as a subreaper that is not PID 1; read what the program
//! prints line by line with a deadline (handshakes, not sleeps); send real signals; look at
//! real process state in /proc; and kill by pid whatever a test leaves behind.
//!
//! Where this machine cannot run shim as PID 1 (not root, no `unshare`), the PID-1 half of
//! each test prints why and is skipped; with `SHIM_TEST_REQUIRE_PID1=1` (CI sets it) that is a
//! failure instead, so a suite that tested less cannot pass.
#![allow(dead_code)]
// Signals by number (real-time ones included) need libc::kill; each use is a plain syscall.
#![allow(unsafe_code)]

pub mod engine;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shim::proctree::{self, Entry};

/// The shim under test: this build's, or another binary named by SHIM_UNDER_TEST (CI points it
/// at the shipped build, scripts/build.sh's, so the binary that ships is the one tested; and
/// at a wrapper that runs the aarch64 one under qemu-user, scripts/test-arm64.sh).
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
/// not, a test in PID 1 mode prints why and returns (or fails: see [`unavailable`]).
pub fn namespaces_available() -> bool {
    static WHY_NOT: OnceLock<Option<String>> = OnceLock::new();
    let why_not = WHY_NOT.get_or_init(|| {
        if !is_root() {
            return Some("not root".into());
        }
        match Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).status() {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!("unshare --pid failed: {s}")),
            Err(e) => Some(format!("no unshare: {e}")),
        }
    });
    why_not.as_ref().is_none_or(|why| unavailable("PID namespaces", why))
}

/// Whether the tests run as root, which a test that switches to another user needs; the
/// PID-1 tests need it too, so its absence is treated alike.
pub fn root_available() -> bool {
    is_root() || unavailable("root", "not root")
}

fn is_root() -> bool {
    // SAFETY: geteuid only reads.
    unsafe { libc::geteuid() == 0 }
}

/// What a test does when this machine cannot run its PID-1 part (or a kernel feature such a
/// test needs): print why and skip it (false), or, under `SHIM_TEST_REQUIRE_PID1` (any value
/// but empty or `0`), fail.
pub fn unavailable(what: &str, why: &str) -> bool {
    let required = std::env::var("SHIM_TEST_REQUIRE_PID1").is_ok_and(|v| !v.is_empty() && v != "0");
    if required {
        panic!("{what} unavailable ({why}), and SHIM_TEST_REQUIRE_PID1 is set: the PID-1 tests must run");
    }
    eprintln!("skipping: {what} unavailable ({why})");
    false
}

/// Modes this machine can run, with a printed reason for any it cannot.
pub fn modes() -> Vec<Mode> {
    BOTH.into_iter().filter(|m| *m == Mode::Subreaper || namespaces_available()).collect()
}

/// The command that runs `program` in `mode`: as PID 1 of a new PID and mount namespace
/// (through unshare), or as itself.
pub fn command(mode: Mode, program: &str) -> Command {
    match mode {
        Mode::Pid1 => {
            let mut c = Command::new("unshare");
            // --kill-child: if unshare dies, the namespace goes with it.
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child", program]);
            c
        }
        Mode::Subreaper => Command::new(program),
    }
}

/// A running shim.
pub struct Shim {
    pub mode: Mode,
    /// The process the test started: unshare for PID 1, shim itself otherwise.
    outer: Child,
    /// shim's pid as this test sees it.
    pub pid: i32,
    out: Lines,
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
    pub stderr: Stderr,
    /// The binary to start instead of [`shim_bin`]: shim installed under another name.
    pub bin: Option<&'a str>,
}

/// Where shim's stderr goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    /// To the test, which keeps all of it ([`Shim::stderr`]).
    Captured,
    /// Nowhere: descriptor 2 is closed.
    Closed,
    /// Into a pipe nobody can read: every write fails with EPIPE.
    BrokenPipe,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { env: &[], stdin: Stdio::null(), stderr: Stderr::Captured, bin: None }
    }
}

impl Shim {
    pub fn start(mode: Mode, args: &[&str]) -> Shim {
        Shim::start_with(mode, args, Options::default())
    }

    /// Start shim with `opts` and `env`, then `--` and `program`.
    pub fn start_program(mode: Mode, opts: &[&str], env: &[(&str, &str)], program: &[&str]) -> Shim {
        let args: Vec<&str> = opts.iter().copied().chain(["--"]).chain(program.iter().copied()).collect();
        Shim::start_with(mode, &args, Options { env, ..Options::default() })
    }

    pub fn start_with(mode: Mode, args: &[&str], opts: Options) -> Shim {
        let bin = opts.bin.unwrap_or(shim_bin());
        let mut cmd = match opts.stderr {
            // sh closes descriptor 2 and execs shim in its own place: same pid, same parent.
            Stderr::Closed => {
                let mut c = command(mode, "sh");
                c.args(["-c", "exec \"$@\" 2>&-", "sh", bin]);
                c
            }
            Stderr::Captured | Stderr::BrokenPipe => command(mode, bin),
        };
        cmd.args(args).stdin(opts.stdin).stdout(Stdio::piped());
        cmd.stderr(match opts.stderr {
            Stderr::Captured => Stdio::piped(),
            Stderr::Closed => Stdio::null(),
            Stderr::BrokenPipe => Stdio::from(broken_pipe()),
        });
        for (k, v) in opts.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut outer = cmd.spawn().expect("start shim");
        let out = Lines::of(outer.stdout.take().unwrap());
        let stderr = Arc::new(Mutex::new(String::new()));
        let (closed_tx, stderr_closed) = mpsc::channel();
        if let Some(mut err) = outer.stderr.take() {
            let sink = stderr.clone();
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
        }
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
        let shim = Shim { mode, outer, pid, out, stderr, stderr_closed, started, exit: None };
        if !ready {
            panic!("shim {pid} never blocked its signals");
        }
        shim
    }

    /// Wait for a line of the program's output that contains `want`; return it.
    pub fn expect(&mut self, want: &str, within: Duration) -> String {
        self.out.try_expect(want, within).unwrap_or_else(|e| panic!("{e}; stderr: {}", self.stderr()))
    }

    /// Wait until a line containing each of `wants` has been seen, in any order.
    pub fn expect_all(&mut self, wants: &[&str], within: Duration) {
        if let Err(e) = self.out.try_expect_all(wants, within) {
            panic!("{e}; stderr: {}", self.stderr())
        }
    }

    /// Every line printed so far and until the output closes (after exit).
    pub fn rest_of_output(&mut self, within: Duration) -> Vec<String> {
        self.out.rest(within)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until shim's stderr contains `want` (a log line with `-v`: shim's own handshake).
    pub fn expect_stderr(&self, want: &str, within: Duration) {
        self.expect_stderr_times(want, 1, within);
    }

    /// Wait until shim's stderr holds `want` at least `times` times (shim's `-v` lines as a
    /// handshake: each stop signal it has taken in is one line).
    pub fn expect_stderr_times(&self, want: &str, times: usize, within: Duration) {
        if wait_for(within, || (self.stderr().matches(want).count() >= times).then_some(())).is_none() {
            panic!("stderr never said {want:?} {times} time(s) within {within:?}: {}", self.stderr());
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
        match wait_for(within, || self.wait_nohang()) {
            Some(exit) => exit,
            None => panic!("shim did not exit within {within:?}; stderr: {}", self.stderr()),
        }
    }

    /// shim's exit code and time if it has exited, without waiting.
    pub fn wait_nohang(&mut self) -> Option<(i32, Instant)> {
        if self.exit.is_none() {
            if let Some(status) = self.outer.try_wait().expect("wait") {
                self.exit = Some((exit_code(status), Instant::now()));
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
        kill_descendants(self.pid);
        // SAFETY: kill takes two integers.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.outer.kill();
        let _ = self.outer.wait();
    }
}

/// A process's exit code as a shell shows it: 128+N for death by signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The lines a process writes to a pipe, read on a thread of their own, so a test waits for
/// each with a deadline.
pub struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    pub fn of(source: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Wait for a new line that contains `want`; return it, or say what came instead.
    pub fn try_expect(&mut self, want: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(want) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    let tail = &self.seen[self.seen.len().saturating_sub(20)..];
                    return Err(format!(
                        "no line with {want:?} within {within:?}; {} lines so far, the last: {tail:?}",
                        self.seen.len()
                    ));
                }
            }
        }
    }

    pub fn expect(&mut self, want: &str, within: Duration) -> String {
        self.try_expect(want, within).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait until a line containing each of `wants` has been seen, in any order, counting
    /// those seen already.
    pub fn try_expect_all(&mut self, wants: &[&str], within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut missing: Vec<&str> =
            wants.iter().copied().filter(|w| !self.seen.iter().any(|l| l.contains(w))).collect();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let line = self.try_expect("", left)?;
            missing.retain(|w| !line.contains(w));
        }
        Ok(())
    }

    pub fn expect_all(&mut self, wants: &[&str], within: Duration) {
        self.try_expect_all(wants, within).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every line seen so far and until the source closes (or `within` passed).
    pub fn rest(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        while let Ok(line) = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    pub fn seen(&self) -> &[String] {
        &self.seen
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

/// Run `cmd` to completion, stdin from /dev/null, stdout and stderr captured; SIGKILLed if it
/// takes longer than `within`.
pub fn output_within(cmd: &mut Command, within: Duration) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start");
    let _deadline = Deadline::new(child.id(), within);
    child.wait_with_output().expect("wait")
}

/// The write end of a pipe whose read end is closed everywhere, so that every write to it
/// fails with EPIPE. A child another test forks meanwhile may hold the read end until its
/// exec (close-on-exec), so write until EPIPE says no reader is left: none can come back.
pub fn broken_pipe() -> OwnedFd {
    use nix::errno::Errno;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("create a pipe");
    drop(read);
    let broken = wait_for(Duration::from_secs(5), || {
        matches!(nix::unistd::write(&write, b"x"), Err(Errno::EPIPE)).then_some(())
    });
    broken.expect("the pipe's read end stayed open elsewhere");
    write
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
/// aside), so sleeping there counts too, and so does shim's other wait, ppoll: under
/// qemu-user the mask /proc shows is qemu's own, never all blocked, and where shim sleeps is
/// what tells.
pub fn signals_blocked(pid: i32) -> bool {
    status_field(pid, "SigBlk").as_deref() == Some(ALL_BLOCKED) || in_event_loop(pid)
}

/// Whether shim sleeps in its event loop: in rt_sigtimedwait, or in ppoll with the health
/// endpoint (`--health`), both entered only with every signal blocked: past its start-up,
/// idle. /proc/PID/syscall starts with the number of the call it sleeps in, which differs
/// between architectures (x86_64: 128 and 271, aarch64: 137 and 73).
pub fn in_event_loop(pid: i32) -> bool {
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    [libc::SYS_rt_sigtimedwait, libc::SYS_ppoll].iter().any(|n| syscall.starts_with(&format!("{n} ")))
}

/// `pid`'s voluntary and involuntary context switches so far: unchanged means it never woke.
pub fn context_switches(pid: i32) -> [u64; 2] {
    ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"]
        .map(|f| status_field(pid, f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
}

/// A field of /proc/PID/status, trimmed.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

/// Direct children of `pid`, zombies included.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `pid`'s line of /proc/PID/stat, as shim reads it; `None` once it is reaped.
fn entry(pid: i32) -> Option<Entry> {
    proctree::parse_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process, as shim sees them when it looks for its descendants.
pub fn processes() -> Vec<Entry> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(entry)
        .collect()
}

/// Every live descendant of `root`, parents before children.
pub fn descendants(root: i32) -> Vec<i32> {
    proctree::descendants(root, &processes()).iter().map(|e| e.pid).collect()
}

/// SIGKILL every descendant of `root`, the deepest first, so that none is left to be
/// re-parented; SIGKILL ends stopped ones too.
pub fn kill_descendants(root: i32) {
    for pid in descendants(root).into_iter().rev() {
        // SAFETY: kill takes two integers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Zombie children of `pid`.
pub fn zombies_of(pid: i32) -> usize {
    processes().iter().filter(|p| p.ppid == pid && p.gone).count()
}

/// `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    entry(pid).is_some_and(|e| !e.gone)
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The same settings given as command-line options, or as SHIM_* variables.
pub type Way<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// Both ways to give the same settings: a test runs each.
pub fn both_ways<'a>(args: &[&'a str], env: &[(&'a str, &'a str)]) -> [Way<'a>; 2] {
    [(args.to_vec(), vec![]), (vec![], env.to_vec())]
}

/// Run shim to completion (30 s at most) and return its exit code, stdout and stderr.
pub fn run(mode: Mode, args: &[&str]) -> (i32, String, String) {
    let mut shim = Shim::start(mode, args);
    let (code, _) = shim.wait(Duration::from_secs(30));
    let out = shim.rest_of_output(Duration::from_secs(5)).join("\n");
    (code, out, shim.full_stderr(Duration::from_secs(5)))
}

/// What a container engine shows as the init's version: the commit the tree is at (12 hex
/// digits, `unknown` without git), as build.rs stamps it, then the version without dots.
pub fn init_version() -> String {
    let out =
        Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output();
    let commit = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unknown".to_string(),
    };
    format!("{commit} (shim_{})", env!("CARGO_PKG_VERSION").replace('.', "_"))
}

/// The whole line `shim --version` prints.
pub fn version_line() -> String {
    format!("shim {} - git.{}\n", env!("CARGO_PKG_VERSION"), init_version())
}
