//! The thin layer that calls the kernel, and the harness's only unsafe code: pinning to a CPU,
//! pipes, starting a process (optionally as PID 1 of a new PID and mount namespace), waiting
//! for it with a deadline, and killing it by its pid when the harness is done with it or an
//! error cuts a figure short; and, in `ptrace`, counting an init's instructions and syscalls.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

pub mod ptrace;

/// Descriptors the harness hands to a child are moved at or above this, so that the child's
/// `dup2` onto 0..=4 never overwrites a source it still has to copy.
const HIGH_FD: RawFd = 64;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cpu_set(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of a valid set; an out-of-range cpu is ignored.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set
}

/// Run the calling process on `cpu` only.
pub fn pin_self(cpu: usize) -> io::Result<()> {
    let set = cpu_set(cpu);
    // SAFETY: passes a valid cpu_set_t of the size given.
    check(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }).map(drop)
}

/// The CPUs the harness may run on.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most the size given into `set`.
    check(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    // SAFETY: CPU_ISSET only reads the initialised set.
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

fn move_high(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that nothing else owns.
    let high = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH_FD) })?;
    // SAFETY: `high` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// A pipe, both ends close-on-exec (so no init inherits the harness's ends), placed high.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are new and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((move_high(r)?, move_high(w)?))
}

/// A file opened close-on-exec and placed high, to become a child's stdio.
pub fn open_high(file: std::fs::File) -> io::Result<OwnedFd> {
    move_high(OwnedFd::from(file))
}

/// Wait until `fd` is readable (data or EOF). `false`: the timeout ran out first.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = libc::timespec { tv_sec: left.as_secs() as libc::time_t, tv_nsec: left.subsec_nanos() as _ };
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, a valid timespec, no signal mask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        match rc {
            1 => return Ok(true),
            0 => return Ok(false),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Send `sig` to `pid`. The storm calls this in a tight loop, so it is a bare kill(2).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers and no pointers.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Where a process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// PID 1 of a new PID and mount namespace, as in a container.
    Pid1,
    /// An ordinary child of the harness.
    Host,
}

/// Everything a child needs, allocated before the clone: between clone and exec only raw
/// syscalls run, no allocation.
pub struct Program {
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl Program {
    /// `argv[0]` must be a path: no PATH search, so no init is charged for one. `env`: the
    /// whole environment, `NAME=value` each.
    pub fn new(argv: &[String], env: &[&str]) -> io::Result<Program> {
        let cstr = |b: &[u8]| CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
        let argv: Vec<CString> = argv.iter().map(|a| cstr(a.as_bytes())).collect::<io::Result<_>>()?;
        if argv.is_empty() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let envp: Vec<CString> = env.iter().map(|kv| cstr(kv.as_bytes())).collect::<io::Result<_>>()?;
        let ptrs = |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        Ok(Program { argv_ptrs: ptrs(&argv), argv, envp_ptrs: ptrs(&envp), _envp: envp })
    }
}

/// The descriptors a child gets: stdin from /dev/null, stdout and stderr to a log, and the two
/// pipes the bench child talks on as fds 3 and 4.
pub struct Stdio<'a> {
    pub null: BorrowedFd<'a>,
    pub log: BorrowedFd<'a>,
    pub to_harness: Option<BorrowedFd<'a>>,
    pub from_harness: Option<BorrowedFd<'a>>,
}

/// A started process, killed (SIGKILL, by its pid) and reaped when dropped unless it was
/// already waited for. As PID 1 of its namespace, killing it takes the whole namespace down.
pub struct Proc {
    pid: i32,
    pidfd: OwnedFd,
    exit: Option<Exit>,
    /// Minor page faults of the process and the children it reaped, once reaped.
    minor_faults: Option<u64>,
}

/// Start `program`, pinned to `cpu` if given. The clone is a fork (no shared memory); the child
/// also gets SIGKILL if the harness dies, so a crash or Ctrl-C leaves nothing behind.
pub fn spawn(program: &Program, ns: Namespace, cpu: Option<usize>, stdio: &Stdio<'_>) -> io::Result<Proc> {
    let set = cpu.map(cpu_set);
    let mut flags = (libc::CLONE_PIDFD as libc::c_ulong) | (libc::SIGCHLD as libc::c_ulong);
    if ns == Namespace::Pid1 {
        flags |= (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_ulong;
    }
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone without CLONE_VM and with a null stack behaves as fork: the child gets a
    // copy of this address space and runs on its copy of this stack. The harness is
    // single-threaded, and the child below makes only raw syscalls on memory prepared before
    // the clone. CLONE_PIDFD stores the pidfd through the parent_tid pointer.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        exec_child(program, set.as_ref(), stdio);
    }
    // SAFETY: CLONE_PIDFD succeeded, so `pidfd` is a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Proc { pid: pid as i32, pidfd, exit: None, minor_faults: None })
}

fn exec_child(p: &Program, set: Option<&libc::cpu_set_t>, stdio: &Stdio<'_>) -> ! {
    // SAFETY: only async-signal-safe raw syscalls on memory prepared before the clone. The
    // sources handed to dup2 are all at or above HIGH_FD, so no dup2 clobbers a later source;
    // dup2 clears close-on-exec on the copies, which is what passes them on.
    unsafe {
        if let Some(set) = set {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0 {
                libc::_exit(126);
            }
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        // Rust's runtime ignores SIGPIPE, and an ignored disposition survives exec.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut ok = libc::dup2(stdio.null.as_raw_fd(), 0) == 0
            && libc::dup2(stdio.log.as_raw_fd(), 1) == 1
            && libc::dup2(stdio.log.as_raw_fd(), 2) == 2;
        if let Some(fd) = stdio.to_harness {
            ok &= libc::dup2(fd.as_raw_fd(), 3) == 3;
        }
        if let Some(fd) = stdio.from_harness {
            ok &= libc::dup2(fd.as_raw_fd(), 4) == 4;
        }
        if ok {
            libc::execve(p.argv[0].as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
        }
        libc::_exit(127)
    }
}

fn decode(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

impl Proc {
    /// The pid in the harness's namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if self.exit.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // Not yet reaped, so the pid cannot have been reused.
        kill(self.pid, sig)
    }

    /// Wait for the exit and reap. `None`: still running when `timeout` ran out.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        // A pidfd is readable once the process has exited; then waitpid does not block.
        if !wait_readable(self.pidfd.as_fd(), timeout)? {
            return Ok(None);
        }
        let exit = self.reap()?;
        Ok(Some(exit))
    }

    /// Whether it has exited (without reaping it).
    pub fn exited(&self) -> io::Result<bool> {
        if self.exit.is_some() {
            return Ok(true);
        }
        wait_readable(self.pidfd.as_fd(), Duration::ZERO)
    }

    /// Minor page faults of the process and of the children it reaped itself (wait4(2)
    /// reports both); `None` until it is reaped.
    pub fn minor_faults(&self) -> Option<u64> {
        self.minor_faults
    }

    fn reap(&mut self) -> io::Result<Exit> {
        let mut status = 0;
        loop {
            // SAFETY: an all-zero rusage is a valid value of this plain C struct.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: waits for our own unreaped child; `status` and `usage` are live and
            // writable.
            let rc = unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
            if rc == self.pid {
                let exit = decode(status);
                self.exit = Some(exit);
                self.minor_faults = u64::try_from(usage.ru_minflt).ok();
                return Ok(exit);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        // By pid, never by name; not yet reaped, so the pid is still this process's. SIGKILL
        // cannot be caught, even by a namespace's PID 1 when sent from outside it, so the
        // reap below does not block for long.
        match self.signal(libc::SIGKILL) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => eprintln!("shim-bench: could not kill pid {}: {e}", self.pid),
        }
        if let Err(e) = self.reap() {
            eprintln!("shim-bench: could not reap pid {}: {e}", self.pid);
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
