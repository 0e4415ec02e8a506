//! The thin layer that calls the kernel: signal mask and waiting, spawning the program (as
//! `--user`, if given), reaping, sending signals, the terminal, fds, and reading `/proc` and
//! the account files. It decides nothing that the state machine could; it reports what the
//! kernel said, and logs nothing. With the health endpoint's socket calls, the only module
//! with `unsafe`.
//!
//! Private to the crate, and sound only in a single-threaded process that owns no fd at or
//! above 3 but those shim opens itself, which it names when it closes the rest (`fork`,
//! closing inherited fds): the crate's one public way in, [`crate::supervise`], states that
//! as its safety contract.
//!
//! Where nix is not used, the reason is given: mostly real-time signal numbers (nix's `Signal`
//! enum has none) and the libc wrappers that silently refuse the signals libc reserves for
//! its threads (32-34), which shim must still block, receive and forward.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::{self, ForkResult, Pid};

use crate::exit::Status;
use crate::proctree;
use crate::signals::{Received, Sig};
use crate::user::Identity;

pub mod arena;
pub mod clock;
pub mod start;

/// Every catchable signal, as the kernel's 64-bit mask (bit N-1 for signal N). SIGKILL and
/// SIGSTOP cannot be blocked; the kernel drops them from any mask anyway.
const ALL_CATCHABLE: u64 = !((1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)));
const NO_SIGNALS: u64 = 0;
/// The size the kernel's `rt_sig*` calls expect for a mask.
const KERNEL_SIGSET_SIZE: usize = std::mem::size_of::<u64>();

fn set_mask(mask: &u64) -> Errno {
    // SAFETY: rt_sigprocmask reads KERNEL_SIGSET_SIZE bytes from a valid u64 and writes
    // nothing (old set is NULL). It is async-signal-safe, so this may run between fork and exec.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            mask as *const u64,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        )
    };
    if rc == 0 {
        Errno::UnknownErrno
    } else {
        Errno::last()
    }
}

/// How blocking at load went: [`NOT_TRIED`], [`BLOCKED`], or the errno it failed with.
static AT_LOAD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(NOT_TRIED);
const NOT_TRIED: i32 = 0;
const BLOCKED: i32 = -1;

/// Block every catchable signal. A signal with no handler sent to PID 1 is dropped by the
/// kernel, but a blocked one is queued (signal(7), `sig_ignored()` in kernel/signal.c), so this
/// comes before anything else. The raw syscall, because libc's `sigprocmask` quietly leaves its
/// reserved signals unblocked, and one of those would kill shim when it is not PID 1. If
/// [`block_signals_at_load`] did it already, that is the answer, and no second syscall is made.
pub fn block_signals() -> Result<(), Errno> {
    if AT_LOAD.load(std::sync::atomic::Ordering::Relaxed) == BLOCKED {
        return Ok(());
    }
    match set_mask(&ALL_CATCHABLE) {
        Errno::UnknownErrno => Ok(()),
        e => Err(e),
    }
}

/// For `.init_array`: blocks signals before even the C runtime calls `main`.
pub extern "C" fn block_signals_at_load() {
    // Nothing can be reported this early: main asks [`block_signals`], which reports it, after
    // trying once more.
    let result = match set_mask(&ALL_CATCHABLE) {
        Errno::UnknownErrno => BLOCKED,
        e => e as i32,
    };
    AT_LOAD.store(result, std::sync::atomic::Ordering::Relaxed);
}

/// Put back to their defaults the dispositions that would break shim or leak into the
/// program. SIGPIPE: Rust's runtime ignores it, and an ignored disposition survives exec, so
/// the program would inherit it; shim keeps it blocked, so its own writes to a closed pipe fail
/// with EPIPE instead. SIGCHLD: if the caller left it ignored, the kernel would reap children
/// itself and never report them (waitpid(2)), and shim would wait forever.
pub fn reset_dispositions() -> Result<(), Errno> {
    // The kernel's struct sigaction with every field zero: SIG_DFL (0 on every Linux), no
    // flags, no restorer, an empty mask; larger than any architecture's, so the kernel reads
    // zeros only. The raw syscall, as for the mask: libc's sigaction copies and checks its own
    // struct on the way, and nix's builds a SigAction first, which on every start costs more
    // than the two syscalls themselves.
    const DEFAULT_ACTION: [u64; 8] = [0; 8];
    for sig in [libc::SIGPIPE, libc::SIGCHLD] {
        // SAFETY: rt_sigaction reads a struct sigaction from a live, all-zero buffer at least
        // its size and writes nothing (old action NULL); SIG_DFL runs no handler code.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                DEFAULT_ACTION.as_ptr(),
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_SIZE,
            )
        };
        if rc != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// rt_sigtimedwait(2) on every catchable signal: the syscall's result, and the two fields
/// of the siginfo it filled that shim reads (si_code, and si_pid where the code says a
/// process sent it, else 0). Async-signal-safe, so the key watch uses it after fork too.
fn take_signal(timeout: Option<&libc::timespec>) -> (libc::c_long, libc::c_int, libc::pid_t) {
    let ts_ptr = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: the mask is a valid u64 of KERNEL_SIGSET_SIZE bytes, info is writable, and ts_ptr
    // is NULL or points to a timespec that outlives the call. The raw syscall, because libc's
    // wrapper may strip its reserved signals from the set.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &ALL_CATCHABLE as *const u64,
            &mut info as *mut libc::siginfo_t,
            ts_ptr,
            KERNEL_SIGSET_SIZE,
        )
    };
    // si_code <= 0 means a process sent it (SI_USER, SI_QUEUE, SI_TKILL): then si_pid names it.
    // SAFETY: for these codes the kernel filled the si_pid union member.
    let sender = if info.si_code <= 0 { unsafe { info.si_pid() } } else { 0 };
    // Only these two go back: the whole 128-byte struct would be copied out on every signal.
    (rc, info.si_code, sender)
}

/// A signalfd for every catchable signal: readable while one is pending, so that one
/// ppoll(2) can wait for signals and sockets at once. It is only ever polled, never read:
/// signals are still taken with [`wait_signal`], the same way with or without it.
pub fn signal_fd() -> Result<OwnedFd, Errno> {
    // SAFETY: the mask is a valid u64 of KERNEL_SIGSET_SIZE bytes; -1 asks for a new fd.
    // The raw syscall, for the same reason as in take_signal.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &ALL_CATCHABLE as *const u64,
            KERNEL_SIGSET_SIZE,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        )
    };
    let fd = i32::try_from(Errno::result(fd)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just made this fd, and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// `fd` itself if it is 3 or above, else a close-on-exec copy that is: started with 0, 1 or 2
/// closed, shim would otherwise take one of them for its own, and its log lines (to 2) would
/// go into a socket.
pub fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    let copy = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl just made this fd, and nothing else owns it; the original is closed when
    // `fd` drops.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(copy) })
}

/// What waiting for a signal gave.
#[derive(Debug)]
pub enum Wait {
    Signal(Received),
    /// The timeout ran out, or the wait was interrupted (SIGSTOP/SIGCONT do that).
    Nothing,
}

/// Sleep in the kernel until a blocked signal is pending or `timeout` passes; `None` waits
/// forever. No fd, no poll loop: idle costs nothing.
pub fn wait_signal(timeout: Option<Duration>) -> Result<Wait, Errno> {
    let ts = timeout.map(|d| libc::timespec {
        // time_t is 64-bit on every 64-bit Linux target.
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX) as _,
        tv_nsec: d.subsec_nanos().into(),
    });
    let (rc, code, sender) = take_signal(ts.as_ref());
    if rc < 0 {
        return match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => Ok(Wait::Nothing),
            e => Err(e),
        };
    }
    let Some(sig) = i32::try_from(rc).ok().and_then(Sig::new) else {
        return Ok(Wait::Nothing);
    };
    Ok(Wait::Signal(Received { sig, code, pid: sender }))
}

/// Ask for `sig` when shim's parent dies (prctl(2) PR_SET_PDEATHSIG). If the parent died
/// before the request took effect, shim sends the signal to itself, so it is not missed.
/// Raw prctl and kill: nix's versions take no real-time signals.
pub fn set_parent_death_signal(sig: Sig) -> Result<(), Errno> {
    let parent = unistd::getppid();
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; the remaining arguments are unused.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig.number() as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(Errno::last());
    }
    if unistd::getppid() != parent {
        kill_raw(pid(), sig)?;
    }
    Ok(())
}

/// Become the reaper of orphaned descendants, as PID 1 is for a namespace (prctl(2)).
pub fn become_subreaper() -> Result<(), Errno> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// shim's pid, asked of the kernel once: it is compared on every signal received.
pub fn pid() -> i32 {
    static PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
    match PID.load(std::sync::atomic::Ordering::Relaxed) {
        0 => {
            let pid = unistd::getpid().as_raw();
            PID.store(pid, std::sync::atomic::Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// Why the program could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// The program or its arguments cannot be passed to exec (a NUL byte).
    BadArgument,
    /// shim could not set up or fork.
    Setup { what: &'static str, errno: Errno },
    /// exec failed in the child; this is the errno it reported, and, for a script whose `#!`
    /// interpreter is missing (ENOENT for a file that is there), that interpreter.
    Exec { errno: Errno, interpreter: Option<OsString> },
    /// The child could not set itself up before exec.
    ChildSetup { what: &'static str, errno: Errno },
    /// The child could not become the `--user` it was given; it ran nothing.
    SwitchUser { what: &'static str, errno: Errno },
    /// The child's report through the pipe ended after `got` of its bytes: it died while
    /// reporting a failure.
    CutReport { got: usize },
}

/// The step the child reports when it cannot run the program, with its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Step {
    Exec = 0,
    Group = 1,
    Mask = 2,
    SupplementaryGroups = 3,
    Gid = 4,
    Uid = 5,
}

/// The report's size through the pipe: the word, native-endian.
const REPORT_LEN: usize = 8;

/// The child's report as one word, so that it is stored, and read, whole: 0 is no report;
/// else a set top bit, the step in the byte above the errno, and the errno in the low 32 bits.
fn encode_report(step: Step, errno: Errno) -> u64 {
    1 << 63 | u64::from(step as u8) << 32 | u64::from(errno as i32 as u32)
}

/// The step and errno of a report, or `None` for no report. A step byte that is none of
/// ours is read as exec's, the step whose failure says least about shim itself.
fn decode_report(word: u64) -> Option<(Step, Errno)> {
    if word >> 63 == 0 {
        return None;
    }
    let step = [Step::Group, Step::Mask, Step::SupplementaryGroups, Step::Gid, Step::Uid]
        .into_iter()
        .find(|&s| s as u8 == (word >> 32) as u8)
        .unwrap_or(Step::Exec);
    Some((step, Errno::from_raw(word as u32 as i32)))
}

/// What a failed step means, for every step but exec: exec's error also names a missing `#!`
/// interpreter, which only the file system can tell.
fn setup_error(step: Step, errno: Errno) -> Option<SpawnError> {
    Some(match step {
        Step::Exec => return None,
        Step::Group => SpawnError::ChildSetup { what: "make its process group", errno },
        Step::Mask => SpawnError::ChildSetup { what: "clear its signal mask", errno },
        Step::SupplementaryGroups => SpawnError::SwitchUser { what: "set its supplementary groups", errno },
        Step::Gid => SpawnError::SwitchUser { what: "set its group id", errno },
        Step::Uid => SpawnError::SwitchUser { what: "set its user id", errno },
    })
}

/// Everything the child needs, allocated before the clone: between it and exec only
/// async-signal-safe calls are allowed, and allocating is not one.
struct Prepared {
    /// The arguments, each NUL-terminated, back to back: one allocation however many there
    /// are, as start-up makes few and each costs more than copying the bytes.
    strings: Vec<u8>,
    /// Pointers into `strings`, then NULL: execve's argv.
    argv_ptrs: Vec<*const libc::c_char>,
    /// A name with a slash is the one path to try ([`Prepared::paths`]).
    given_path: bool,
    /// For a name without one, the paths found in PATH, in its order.
    searched: Vec<CString>,
    /// Who the child becomes before exec, if anyone.
    user: Option<Switch>,
    /// The environment with `HOME` added, when `--user` must add it; else `environ` as it is.
    envp: Option<Vec<*const libc::c_char>>,
    _home: Option<CString>,
}

/// `--user`'s ids as the raw calls take them.
struct Switch {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

impl Prepared {
    /// The paths execve tries, in turn.
    fn paths(&self) -> impl Iterator<Item = &CStr> {
        let given = self.given_path.then(|| CStr::from_bytes_until_nul(&self.strings).ok()).flatten();
        given.into_iter().chain(self.searched.iter().map(CString::as_c_str))
    }
}

// The process environment as libc keeps it. shim never changes its own environment, so
// this is the caller's, and the child passes it to execve as it is (with `HOME` added when
// `--user` must add it): nothing to copy.
extern "C" {
    static environ: *const *const libc::c_char;
}

/// The default PATH when none is set, as musl's execvp uses.
const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/bin:/usr/bin";

fn prepare(program: &[OsString], user: Option<&Identity>) -> Result<Prepared, SpawnError> {
    let name = program.first().ok_or(SpawnError::BadArgument)?.as_bytes();
    let mut strings = Vec::with_capacity(program.iter().map(|w| w.len() + 1).sum());
    for word in program {
        if word.as_bytes().contains(&0) {
            return Err(SpawnError::BadArgument);
        }
        strings.extend_from_slice(word.as_bytes());
        strings.push(0);
    }
    let mut argv_ptrs = Vec::with_capacity(program.len() + 1);
    let mut at = 0;
    for word in program {
        argv_ptrs.push(strings[at..].as_ptr().cast());
        at += word.len() + 1;
    }
    argv_ptrs.push(std::ptr::null());
    // Like execvp: a name with a slash is a path; otherwise each PATH entry is tried, an empty
    // entry meaning the current directory. An empty name is ENOENT, not a PATH entry's
    // directory: nothing to try.
    let given_path = name.contains(&b'/');
    let mut searched = Vec::new();
    if !name.is_empty() && !given_path {
        let path = start::env_var("PATH").map(OsString::into_vec);
        let path = path.as_deref().unwrap_or(DEFAULT_PATH);
        for dir in path.split(|&b| b == b':') {
            let mut full = dir.to_vec();
            if !dir.is_empty() {
                full.push(b'/');
            }
            full.extend_from_slice(name);
            // Entries where nothing by that name exists are left out here, so that the child
            // usually makes one execve, not one per PATH entry: the fewer it makes, the shorter
            // the time in which it runs with signals unblocked and can die unreported.
            let gone = std::fs::metadata(std::ffi::OsStr::from_bytes(&full))
                .is_err_and(|e| matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)));
            if !gone {
                searched.push(CString::new(full).map_err(|_| SpawnError::BadArgument)?);
            }
        }
    }
    let switch = user.map(|u| Switch { uid: u.uid, gid: u.gid, groups: u.groups.clone() });
    // HOME is the user's unless the caller set one, as gosu does: unset and empty alike.
    let home = match user {
        Some(u) if start::env_var("HOME").is_none_or(|h| h.is_empty()) => {
            Some(CString::new([b"HOME=", &u.home[..]].concat()).map_err(|_| SpawnError::BadArgument)?)
        }
        _ => None,
    };
    let envp = home.as_ref().map(environ_with);
    Ok(Prepared { strings, argv_ptrs, given_path, searched, user: switch, envp, _home: home })
}

/// `environ`'s entries, an empty `HOME=` among them left out, then `extra`, NULL-terminated.
/// The strings stay libc's: shim never changes its environment, so they live until exec.
fn environ_with(extra: &CString) -> Vec<*const libc::c_char> {
    let mut ptrs = Vec::new();
    // SAFETY: environ is libc's NULL-terminated array of NUL-terminated strings, unchanged
    // since start and read by this single thread only; a NULL environ is read as empty.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            if std::ffi::CStr::from_ptr(*entry).to_bytes() != b"HOME=" {
                ptrs.push(*entry);
            }
            entry = entry.add(1);
        }
    }
    ptrs.push(extra.as_ptr());
    ptrs.push(std::ptr::null());
    ptrs
}

/// Start the program in a new process group of its own, with an empty signal mask, and
/// return its pid once exec has succeeded. When `foreground`, the group is made the
/// terminal's foreground group first (and the caller takes the terminal back if the spawn
/// fails). exec failure is reported by the child, so it is known, not guessed: one word in
/// the memory it shares with shim, the step that failed and its errno.
///
/// The child is a vfork child (clone(2) with CLONE_VM | CLONE_VFORK): it runs in shim's own
/// memory, on a stack of its own, and shim sleeps until it has exec'd or exited. A fork would
/// copy shim's page tables for a process that only execs, and every page either side then
/// wrote would take a copy-on-write fault: in a VM a page fault costs more than a dozen
/// syscalls, and a fork cost shim about ten of them. Waiting for the exec also means that
/// the report, if there is one, is there to read once shim wakes, and that the child's group
/// exists.
///
/// An emulator may run the clone as a plain fork (qemu-user and valgrind emulate vfork so):
/// then the child's memory is its own and shim would wake at once, with no report to read.
/// The first clone also asks to share the signal handlers (CLONE_SIGHAND), which a kernel
/// grants with CLONE_VM and refuses without it (EINVAL): qemu-user refuses it for a fork
/// itself, and valgrind passes it on to the fork it makes. So on a kernel the child reports
/// through memory and no pipe is made: a pipe is an inode and two files to allocate, then
/// close and free, and cold, on a start that is otherwise a few syscalls, it cost as much as a
/// tenth of shim's start-up. Refused, shim clones again without it and the report comes
/// through a close-on-exec pipe instead, read until EOF (nothing read: exec succeeded). The
/// child marks, first thing, that it runs, so that an emulator that forks and grants the flag
/// is seen too (no mark when shim wakes): the program then starts all the same, and an exec
/// that fails shows only as exit status 127.
pub fn spawn(program: &[OsString], foreground: bool, user: Option<&Identity>) -> Result<Pid, SpawnError> {
    let prepared = prepare(program, user)?;
    match clone_reporting(&prepared, foreground, -1, libc::CLONE_SIGHAND) {
        Ok((child, Some(report))) => finish(child, report, &prepared),
        // A fork in all but name, with no channel for a report: the child runs on its own.
        Ok((child, None)) => Ok(child),
        Err(Errno::EINVAL) => spawn_through_pipe(&prepared, foreground),
        Err(errno) => Err(SpawnError::Setup { what: "fork", errno }),
    }
}

/// [`spawn`] where the memory may not be shared: the report also comes through a pipe.
#[cold]
#[inline(never)]
fn spawn_through_pipe(prepared: &Prepared, foreground: bool) -> Result<Pid, SpawnError> {
    let (read_end, write_end) =
        unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| SpawnError::Setup { what: "create a pipe", errno })?;
    let cloned = clone_reporting(prepared, foreground, write_end.as_raw_fd(), 0);
    drop(write_end);
    let (child, shared) = cloned.map_err(|errno| SpawnError::Setup { what: "fork", errno })?;
    // Shared after all: as in spawn. Not read from the pipe, which would wait: exec closes the
    // child's copy only after it has woken this process.
    let report = match shared.map_or_else(|| read_pipe_report(&read_end), |word| Ok(PipeReport::Word(word))) {
        Ok(PipeReport::Word(word)) => word,
        Ok(PipeReport::Cut { got }) => {
            let _ = reap_one(child);
            return Err(SpawnError::CutReport { got });
        }
        Err(errno) => {
            let _ = reap_one(child);
            return Err(SpawnError::Setup { what: "read the program's start-up report", errno });
        }
    };
    finish(child, report, prepared)
}

/// Clone the child with `pipe` as its report pipe (-1: none) and `share` as more clone
/// flags: its pid, and its report if the memory turned out to be shared (`None`: a fork in
/// all but name, whose report, if any, is the pipe's).
fn clone_reporting(
    prepared: &Prepared,
    foreground: bool,
    pipe: RawFd,
    share: libc::c_int,
) -> Result<(Pid, Option<u64>), Errno> {
    let args = ChildArgs { prepared, foreground, report: AtomicU64::new(0), ran: AtomicBool::new(false), pipe };
    let child = clone_vfork(&args, share)?;
    if args.ran.load(Ordering::SeqCst) {
        // The child has exec'd or exited (CLONE_VFORK). Unless it left a report, the exec went
        // past its point of no return, or the child died before it could fail, which is for
        // its exit status to tell.
        return Ok((child, Some(args.report.load(Ordering::SeqCst))));
    }
    // The child runs on its own from here. Its group is also made from this side, so that it
    // exists once spawn returns (a failure is the child's to report: it makes the same call
    // itself).
    let _ = unistd::setpgid(child, child);
    Ok((child, None))
}

/// The spawn's outcome from the child's report (0: exec succeeded).
fn finish(child: Pid, report: u64, prepared: &Prepared) -> Result<Pid, SpawnError> {
    let Some((step, errno)) = decode_report(report) else {
        return Ok(child);
    };
    // Collect the failed child so it is not left a zombie. It is shim's own child, so waitpid
    // can only fail with EINTR, which waitpid_raw retries.
    let _ = reap_one(child);
    Err(setup_error(step, errno)
        .unwrap_or_else(|| SpawnError::Exec { errno, interpreter: missing_interpreter(prepared, errno) }))
}

/// What came through the pipe before EOF.
#[derive(Debug, PartialEq, Eq)]
enum PipeReport {
    /// The word (0 if nothing came: exec succeeded).
    Word(u64),
    /// Part of a word, or more than one: never taken for a success.
    Cut { got: usize },
}

fn decode_pipe_report(bytes: &[u8]) -> PipeReport {
    match bytes.len() {
        0 => PipeReport::Word(0),
        REPORT_LEN => PipeReport::Word(u64::from_ne_bytes(bytes.try_into().unwrap_or([0; REPORT_LEN]))),
        got => PipeReport::Cut { got },
    }
}

/// Read the child's report until EOF.
fn read_pipe_report(read_end: &OwnedFd) -> Result<PipeReport, Errno> {
    // One byte more than a report: a child that wrote more is not one of ours.
    let mut buf = [0u8; REPORT_LEN + 1];
    let mut got = 0;
    while got < buf.len() {
        match unistd::read(read_end, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(decode_pipe_report(&buf[..got]))
}

/// What the vfork child is handed, in shim's memory, which it shares.
struct ChildArgs<'a> {
    prepared: &'a Prepared,
    foreground: bool,
    /// Written by the child, once, when it cannot run the program ([`encode_report`]).
    report: AtomicU64,
    /// Set by the child first thing: unset when this process wakes, the memory was not shared.
    ran: AtomicBool,
    /// The write end of the report pipe, the child's own copy of this descriptor number; -1
    /// when there is none (the memory is shared).
    pipe: RawFd,
}

/// The stack the vfork child runs on: a buffer in `clone_vfork`'s frame, on shim's own stack,
/// which the child has to itself while shim sleeps (CLONE_VFORK). Under a page, so that the
/// frame is made without probing page by page, and most often on stack pages that start-up
/// has touched already: a static would take pages of its own and push the C library's statics
/// (environ, the thread's TLS) onto one more page, each a fault. The child makes a handful of
/// calls before exec, about 300 bytes of stack in a release build and 700 in a debug one (the
/// debug build, which the tests run, checks that it never comes near the bottom).
#[repr(C, align(16))]
struct ChildStack(#[allow(dead_code)] [u8; CHILD_STACK_BYTES]);

const CHILD_STACK_BYTES: usize = 2 * 1024;

/// Run [`vfork_child`] as a new process that shares this memory, and return its pid once it
/// has exec'd or exited. `share` is more clone flags: CLONE_SIGHAND, or none.
fn clone_vfork(args: &ChildArgs<'_>, share: libc::c_int) -> Result<Pid, Errno> {
    // Left unwritten in a release build: the child touches only the few hundred bytes at its
    // top, and zeroing the rest would touch (and fault in) stack below them for nothing. The
    // debug build zeroes it, for its check.
    let mut stack = std::mem::MaybeUninit::<ChildStack>::uninit();
    let base = stack.as_mut_ptr().cast::<u8>();
    if cfg!(debug_assertions) {
        // SAFETY: writes CHILD_STACK_BYTES bytes inside the buffer.
        unsafe { base.write_bytes(0, CHILD_STACK_BYTES) };
    }
    // The stack grows down from its end, which the alignment of ChildStack keeps 16-aligned.
    let top = base.wrapping_add(CHILD_STACK_BYTES);
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | share | libc::SIGCHLD;
    let arg = (args as *const ChildArgs<'_>).cast_mut().cast::<libc::c_void>();
    // SAFETY: the child runs `vfork_child` on `stack`, which this thread does not touch while
    // it sleeps (CLONE_VFORK), and it reads `args` in that time, so both outlive their use.
    // Sharing the memory, the child calls only async-signal-safe functions and writes nothing
    // of shim's but errno, which this thread does not read before a failed call sets it again
    // (see exec_child), and the word that it failed. Without CLONE_SETTLS it also shares the
    // thread pointer, which those functions only use for errno. With CLONE_SIGHAND it shares
    // the signal dispositions as well, which it never changes (nor does shim: it blocks
    // signals and sets no handler); exec gives the program a copy of its own. It never
    // returns: it execs or _exits.
    let pid = unsafe { libc::clone(vfork_child, top.cast(), flags, arg) };
    #[cfg(debug_assertions)]
    {
        // The buffer starts zeroed and the child wrote only from the top down: its lowest
        // quarter must still be zero, or the stack is too small for what the child does now.
        // Read as volatile: the writes were the child's, through a pointer handed to clone.
        let bottom = base.cast_const();
        // SAFETY: the child is gone from this stack (it exec'd or exited), and these bytes lie
        // inside the buffer.
        let untouched = (0..CHILD_STACK_BYTES / 4).all(|i| unsafe { bottom.add(i).read_volatile() } == 0);
        debug_assert!(untouched, "the vfork child came within a quarter of its stack's bottom");
    }
    if pid < 0 {
        Err(Errno::last())
    } else {
        Ok(Pid::from_raw(pid))
    }
}

extern "C" fn vfork_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs clone_vfork passed, alive while its parent sleeps.
    let args = unsafe { &*arg.cast::<ChildArgs<'_>>() };
    exec_child(args)
}

/// The `#!` interpreter of the first candidate that exists, if exec said ENOENT: the kernel
/// gives the same errno for a missing script and for a script whose interpreter is missing.
/// Out of line: inlined, its buffer would widen spawn's stack frame on every start.
#[cold]
#[inline(never)]
fn missing_interpreter(p: &Prepared, errno: Errno) -> Option<OsString> {
    if errno != Errno::ENOENT {
        return None;
    }
    let mut head = [0u8; 256];
    for path in p.paths() {
        let Ok(mut file) = std::fs::File::open(std::ffi::OsStr::from_bytes(path.to_bytes())) else { continue };
        let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
        return shebang(&head[..n]).map(|i| OsString::from_vec(i.to_vec()));
    }
    None
}

/// The interpreter a `#!` line names: its first word (binfmt_script(5)).
fn shebang(head: &[u8]) -> Option<&[u8]> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    line.split(|b| b.is_ascii_whitespace()).find(|w| !w.is_empty())
}

/// Tell the parent which step failed and why, then exit without running Rust or atexit
/// destructors, which are not safe in a vfork child. Every signal is blocked first: between
/// exec attempts a `docker stop` must stay pending, not kill the child with nothing said.
fn report_and_exit(to: &ChildArgs<'_>, step: Step, errno: Errno) -> ! {
    // Nothing to do if blocking fails: the report goes out regardless.
    let _ = set_mask(&ALL_CATCHABLE);
    let word = encode_report(step, errno);
    to.report.store(word, Ordering::SeqCst);
    // Also through the pipe, if there is one, which shim reads only if the memory turns out
    // not to be shared.
    let bytes = word.to_ne_bytes();
    // SAFETY: writes REPORT_LEN bytes from a live buffer to an fd this process owns, then
    // _exit, which takes a plain number and never returns.
    unsafe {
        if to.pipe >= 0 {
            libc::write(to.pipe, bytes.as_ptr().cast(), bytes.len());
        }
        libc::_exit(127)
    }
}

fn exec_child(args: &ChildArgs<'_>) -> ! {
    // Only async-signal-safe calls below, on memory prepared before the clone, of which
    // nothing is written but the report: the parent's memory it is. Nothing is
    // dropped either: this never returns.
    let (p, report) = (args.prepared, args);
    args.ran.store(true, Ordering::SeqCst);
    // SAFETY: setpgid(0, 0) on the calling process takes no pointers.
    if unsafe { libc::setpgid(0, 0) } != 0 {
        report_and_exit(report, Step::Group, Errno::last());
    }
    if args.foreground {
        // The signal mask is still full here, so a background tcsetpgrp is not stopped by
        // SIGTTOU (tcsetpgrp(3)). A failure only means no terminal for the program: not fatal.
        // SAFETY: tcsetpgrp takes an fd and a pid, no pointers.
        unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid()) };
    }
    if let Some(user) = &p.user {
        switch_user(user, report);
    }
    let envp = match &p.envp {
        Some(with_home) => with_home.as_ptr(),
        // SAFETY: reads the pointer libc keeps, unchanged since start, in this single thread.
        None => unsafe { environ },
    };
    let mut errno = Errno::ENOENT;
    let mut denied = false;
    for path in p.paths() {
        // The program starts with nothing blocked, whatever shim blocks; never silently
        // otherwise. Unblocked only around execve itself, so that a signal that comes while
        // the child is between attempts stays pending: delivered to the program if an exec
        // succeeds, and unable to kill the child before it reports if none does.
        let masked = set_mask(&NO_SIGNALS);
        if masked != Errno::UnknownErrno {
            report_and_exit(report, Step::Mask, masked);
        }
        // SAFETY: path, argv and envp are NUL-terminated strings in NULL-terminated arrays
        // that live until exec replaces this process (environ's are libc's, unchanged since
        // start).
        unsafe { libc::execve(path.as_ptr(), p.argv_ptrs.as_ptr(), envp) };
        errno = Errno::last();
        // Blocking can only fail for a bad argument, and this one is a constant.
        let _ = set_mask(&ALL_CATCHABLE);
        match errno {
            // As execvp: keep looking, but report EACCES if nothing else is found.
            Errno::EACCES => denied = true,
            Errno::ENOENT | Errno::ENOTDIR => {}
            _ => break,
        }
    }
    if denied && matches!(errno, Errno::ENOENT | Errno::ENOTDIR) {
        errno = Errno::EACCES;
    }
    report_and_exit(report, Step::Exec, errno)
}

/// Become `--user`, or report which step failed and exit: a child that could not switch
/// must never run the program as root. Last before exec, once the group and the terminal are
/// set, and with every signal still blocked, so nothing can kill the child before it reports.
/// Groups, then the gid, then the uid: setuid away from root drops every capability (and
/// with them the right to the other two calls), and as root it sets the real, effective and
/// saved uid alike, so there is no way back (setuid(2), capabilities(7)).
fn switch_user(user: &Switch, report: &ChildArgs<'_>) {
    // The raw syscalls, not the C library's wrappers: those make every thread of the process
    // change ids together, through locks and signals in memory this child shares with shim,
    // while the kernel's calls change the calling task alone, which is what a child about to
    // exec wants. None of them allocates, and `groups` was made before the clone.
    // SAFETY: setgroups reads `groups.len()` gids from a live Vec.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, user.groups.len(), user.groups.as_ptr()) };
    if rc != 0 {
        report_and_exit(report, Step::SupplementaryGroups, Errno::last());
    }
    // SAFETY: setgid and setuid take plain numbers.
    if unsafe { libc::syscall(libc::SYS_setgid, user.gid) } != 0 {
        report_and_exit(report, Step::Gid, Errno::last());
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_setuid, user.uid) } != 0 {
        report_and_exit(report, Step::Uid, Errno::last());
    }
}

/// A file's bytes, or `None` if there is no such file (the account files of a `FROM scratch`
/// image).
pub fn read_if_present(path: &str) -> Result<Option<Vec<u8>>, Errno> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(io_errno(e)),
    }
}

/// shim's real gid, which a `--user` uid with no passwd entry keeps.
pub fn gid() -> u32 {
    unistd::getgid().as_raw()
}

/// Start the key watch: a process in the program's group `group`, so that the terminal's
/// signals reach it along with the program, which passes each one a key sent (SIGINT,
/// SIGQUIT) on to shim. With the program's group in the terminal's foreground, shim's own
/// group gets none of them, and a second Ctrl-C could never reach shim to force the stop.
pub fn spawn_key_watch(group: Pid, shims: &[i32]) -> Result<Pid, Errno> {
    let shim = pid();
    // SAFETY: single-threaded (the module's contract), and the child
    // calls only async-signal-safe functions (prctl, getppid, setpgid, close_range, close,
    // rt_sigtimedwait, kill).
    match unsafe { unistd::fork() }? {
        ForkResult::Parent { child } => {
            // Join it to the group from this side too, as spawn does for the program: a key
            // typed before the watch first gets to run must still reach it, and under load
            // that first run can come after the program has printed and been signalled. If
            // the group is gone, the watch's own call fails and it exits.
            let _ = unistd::setpgid(child, group);
            Ok(child)
        }
        ForkResult::Child => watch_keys(group, shim, shims),
    }
}

/// `shims`: fds of shim's own (the health endpoint's) for the watch to close, where
/// close_range(2) (Linux 5.9) is missing.
fn watch_keys(group: Pid, shim: libc::pid_t, shims: &[i32]) -> ! {
    // SAFETY: prctl, getppid, setpgid, close_range and close take integers; the fds closed
    // are this process's copies. Gone with shim, whatever happens to it; and nothing to watch
    // if the program's group is gone already.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != shim || libc::setpgid(0, group.as_raw()) != 0 {
            libc::_exit(0);
        }
        // shim's own fds (the health endpoint's sockets) are not this process's to hold.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for &fd in shims.iter().filter(|&&fd| fd >= 3) {
                libc::close(fd);
            }
        }
    }
    // The mask is shim's, everything blocked: nothing the group gets can stop or kill this
    // process. Every signal is taken off the queue, or real-time ones forwarded to the group
    // would pile up here against the user's limit of pending signals.
    loop {
        let (rc, code, _) = take_signal(None);
        let key = matches!(rc as libc::c_int, libc::SIGINT | libc::SIGQUIT);
        if key && code == libc::SI_KERNEL {
            // SAFETY: kill takes two integers. If shim is gone, so is this process.
            unsafe { libc::kill(shim, rc as libc::c_int) };
        }
    }
}

/// End the key watch and collect it: it lives exactly as long as the main child, so that
/// what is left after the program never counts it.
pub fn end_key_watch(watch: Pid) {
    // It is shim's own child, unreaped: neither call can fail but for EINTR, retried inside.
    let _ = kill_raw(watch.as_raw(), crate::signals::SIGKILL);
    let _ = reap_one(watch);
}

fn decode(raw: libc::c_int) -> Option<Status> {
    if libc::WIFEXITED(raw) {
        Some(Status::Exited(libc::WEXITSTATUS(raw) as u8))
    } else if libc::WIFSIGNALED(raw) {
        Sig::new(libc::WTERMSIG(raw)).map(Status::Signaled)
    } else {
        None
    }
}

/// waitpid with a raw status. Not nix's: it fails to decode a death by real-time signal,
/// after the child was already reaped, and the status would be lost.
fn waitpid_raw(pid: libc::pid_t, flags: libc::c_int) -> Result<(libc::pid_t, libc::c_int), Errno> {
    let mut raw: libc::c_int = 0;
    loop {
        // SAFETY: raw is a valid, writable c_int for the duration of the call.
        let rc = unsafe { libc::waitpid(pid, &mut raw, flags) };
        match rc {
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()),
            pid => return Ok((pid, raw)),
        }
    }
}

fn reap_one(pid: Pid) -> Result<(), Errno> {
    waitpid_raw(pid.as_raw(), 0).map(drop)
}

/// Whether shim has children left after a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remaining {
    /// waitpid returned 0: children remain, none has changed state.
    Some,
    /// ECHILD: shim has no child at all.
    None,
}

/// What one full drain of `waitpid` found.
#[derive(Debug)]
pub struct Drained {
    pub main: Option<Status>,
    /// The pre-stop hook's status, if it was reaped.
    pub hook: Option<Status>,
    /// The key watch's status, if it was reaped.
    pub watch: Option<Status>,
    pub main_stopped: bool,
    /// Other processes (orphans) reaped.
    pub others: u32,
    pub left: Remaining,
}

/// The children [`drain`] tells apart from orphans.
#[derive(Clone, Copy, Debug)]
pub struct Known {
    pub main: Pid,
    pub hook: Option<Pid>,
    pub watch: Option<Pid>,
}

/// Reap every child that has exited. SIGCHLDs coalesce, so one may stand for many exits: loop
/// until waitpid says none is ready (0: some remain) or there are none at all (ECHILD).
pub fn drain(known: Known) -> Result<Drained, Errno> {
    let mut d = Drained { main: None, hook: None, watch: None, main_stopped: false, others: 0, left: Remaining::Some };
    let is = |pid: libc::pid_t, who: Option<Pid>| Some(pid) == who.map(Pid::as_raw);
    loop {
        match waitpid_raw(-1, libc::WNOHANG | libc::WUNTRACED) {
            Ok((0, _)) => return Ok(d),
            Err(Errno::ECHILD) => {
                d.left = Remaining::None;
                return Ok(d);
            }
            Err(e) => return Err(e),
            Ok((pid, raw)) if libc::WIFSTOPPED(raw) => d.main_stopped |= pid == known.main.as_raw(),
            Ok((pid, raw)) => match decode(raw) {
                Some(status) if pid == known.main.as_raw() => d.main = Some(status),
                Some(status) if is(pid, known.hook) => d.hook = Some(status),
                Some(status) if is(pid, known.watch) => d.watch = Some(status),
                Some(_) => d.others += 1,
                None => {}
            },
        }
    }
}

/// What sending a signal did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// ESRCH: nothing there any more. The expected race, not an error.
    NoneThere,
}

fn kill_raw(pid: libc::pid_t, sig: Sig) -> Result<Sent, Errno> {
    // kill(2) by number: nix's Signal has no real-time signals.
    // SAFETY: kill takes two integers and no pointers.
    match unsafe { libc::kill(pid, sig.number()) } {
        0 => Ok(Sent::Delivered),
        _ => match Errno::last() {
            Errno::ESRCH => Ok(Sent::NoneThere),
            e => Err(e),
        },
    }
}

/// Signal one process.
pub fn signal_process(pid: Pid, sig: Sig) -> Result<Sent, Errno> {
    if pid.as_raw() <= 1 {
        return Err(Errno::EINVAL);
    }
    kill_raw(pid.as_raw(), sig)
}

/// Signal a process group. Refuses pgid <= 1: `kill(-1)` would reach everything the user may
/// signal, and `kill(0)` shim's own group.
pub fn signal_group(pgid: Pid, sig: Sig) -> Result<Sent, Errno> {
    if pgid.as_raw() <= 1 {
        return Err(Errno::EINVAL);
    }
    kill_raw(-pgid.as_raw(), sig)
}

/// Signal every process in the PID namespace but shim. Only as its PID 1: anywhere else
/// `kill(-1)` reaches processes that are not shim's.
pub fn signal_namespace(sig: Sig) -> Result<Sent, Errno> {
    if pid() != 1 {
        return Err(Errno::EPERM);
    }
    kill_raw(-1, sig)
}

/// What a scan of /proc found.
pub struct Scan {
    /// Every live descendant of shim.
    pub found: Vec<proctree::Entry>,
    /// Entries that could be listed but not read (not because the process exited).
    pub unreadable: u32,
}

/// Every live descendant of shim, from /proc.
pub fn descendants() -> Result<Scan, Errno> {
    // A /proc mounted for another PID namespace names other pids: signalling by them would
    // reach the wrong processes. Refuse rather than guess.
    let own = std::fs::read("/proc/self/stat").map_err(io_errno)?;
    if proctree::parse_stat(&own).map(|e| e.pid) != Some(pid()) {
        return Err(Errno::EXDEV);
    }
    let mut entries = Vec::new();
    let mut unreadable = 0;
    let mut path = Vec::with_capacity(32);
    for item in std::fs::read_dir("/proc").map_err(io_errno)?.flatten() {
        let name = item.file_name();
        if !name.as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        path.clear();
        path.extend_from_slice(b"/proc/");
        path.extend_from_slice(name.as_bytes());
        path.extend_from_slice(b"/stat");
        // Bytes, not text: a command name cut at 15 bytes may split a UTF-8 character.
        match std::fs::read(std::ffi::OsStr::from_bytes(&path)) {
            Ok(stat) => entries.extend(proctree::parse_stat(&stat)),
            // The process exited between readdir and read.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {}
            Err(_) => unreadable += 1,
        }
    }
    Ok(Scan { found: proctree::descendants(pid(), &entries), unreadable })
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// fd 0, without `std::io::stdin()`, which would set up (and allocate) a buffered reader
/// shim never reads from.
fn stdin_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 0 is open for the process's whole life: open_standard_fds opens /dev/null
    // there if it was closed, and shim never closes it.
    unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) }
}

/// stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    unistd::isatty(stdin_fd()).unwrap_or(false)
}

/// shim's group is the foreground group of the terminal on stdin: the program's group should
/// take it to read the terminal and to receive Ctrl-C. Also true after the user's shell did
/// `fg`, and false after `bg`.
pub fn shim_holds_terminal() -> bool {
    stdin_is_terminal() && unistd::tcgetpgrp(stdin_fd()).is_ok_and(|fg| fg == unistd::getpgrp())
}

/// If the program's group (`pgid`) holds the terminal, give it back to shim's group, which
/// had it when the program took it: the user's shell, or a script that runs shim, must not
/// find its terminal owned by a group that is gone.
pub fn restore_terminal(pgid: Pid) -> Result<(), Errno> {
    match unistd::tcgetpgrp(stdin_fd()) {
        Ok(fg) if fg == pgid => unistd::tcsetpgrp(stdin_fd(), unistd::getpgrp()),
        _ => Ok(()),
    }
}

/// Make shim's own group the terminal's foreground group again, as it was before a spawn
/// that handed it over and then failed.
pub fn take_terminal_back() -> Result<(), Errno> {
    unistd::tcsetpgrp(stdin_fd(), unistd::getpgrp())
}

/// Make `pgid` the terminal's foreground group. shim blocks SIGTTOU, so this works from the
/// background too (tcsetpgrp(3)).
pub fn give_terminal(pgid: Pid) -> Result<(), Errno> {
    unistd::tcsetpgrp(stdin_fd(), pgid)
}

/// Stop shim itself; the user's shell sees the job stop and takes the terminal back.
pub fn stop_self() -> Result<(), Errno> {
    nix::sys::signal::kill(unistd::getpid(), Signal::SIGSTOP)
}

/// Close every fd from 3 up that shim inherited, but those in `keep` (shim's own, opened
/// before the spawn): the program has its own copies, and shim must not keep a socket alive
/// that the program closed. close_range(2), or /proc/self/fd on kernels before 5.9.
pub fn close_inherited_fds(keep: &[i32]) -> Result<(), Errno> {
    let close_range = |from: u32, to: u32| {
        // SAFETY: close_range takes integers; nothing in the process owns an fd at or above 3
        // but those in `keep` (the module's contract), which no range covers.
        from > to || unsafe { libc::syscall(libc::SYS_close_range, from, to, 0u32) } == 0
    };
    // The gaps between the fds kept, lowest first; `keep` is at most a few fds, so finding
    // the next one each time costs less than a sort (in code size too).
    let mut from: u32 = 3;
    let mut closed = true;
    while let Some(fd) = keep.iter().filter_map(|&fd| u32::try_from(fd).ok()).filter(|&fd| fd >= from).min() {
        closed &= close_range(from, fd - 1);
        from = fd + 1;
    }
    if closed && close_range(from, u32::MAX) {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(io_errno)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= 3 && !keep.contains(fd))
        .collect();
    for fd in fds {
        // SAFETY: closing an integer fd; the directory handle used to list them is closed
        // already, and EBADF for it is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Move to `/` so shim pins no mount the program may want unmounted.
pub fn leave_working_directory() -> Result<(), Errno> {
    unistd::chdir("/")
}

/// What a write to stderr found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stderr {
    Open,
    /// Nobody reads it any more (EPIPE), or it is closed (EBADF): it never comes back.
    Gone,
}

/// Write one whole line to stderr in one write(2), so lines from shim and the program do not
/// interleave mid-line. Other failures are ignored on purpose: there is nowhere left to report
/// them, and logging must never stop PID 1 (SIGPIPE is blocked, so a closed pipe is EPIPE).
pub fn write_stderr(line: &[u8]) -> Stderr {
    match unistd::write(std::io::stderr().as_fd(), line) {
        Err(Errno::EPIPE | Errno::EBADF) => Stderr::Gone,
        _ => Stderr::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::SIGTERM;

    // The guards answer before any kill(2) is made, so these send nothing.
    #[test]
    fn never_signals_a_group_at_or_below_1() {
        for pgid in [1, 0, -1, -42] {
            assert_eq!(signal_group(Pid::from_raw(pgid), SIGTERM), Err(Errno::EINVAL), "pgid {pgid}");
            assert_eq!(signal_process(Pid::from_raw(pgid), SIGTERM), Err(Errno::EINVAL), "pid {pgid}");
        }
    }

    #[test]
    fn signals_the_whole_namespace_only_as_its_pid_1() {
        assert_ne!(pid(), 1, "the unit tests never run as PID 1");
        assert_eq!(signal_namespace(SIGTERM), Err(Errno::EPERM));
    }

    #[test]
    fn the_interpreter_is_the_first_word_of_the_shebang_line() {
        assert_eq!(shebang(b"#!/bin/bash\necho"), Some(&b"/bin/bash"[..]));
        assert_eq!(shebang(b"#! /usr/bin/env  python3 -u\n"), Some(&b"/usr/bin/env"[..]));
        assert_eq!(shebang(b"#!/bin/sh"), Some(&b"/bin/sh"[..]));
        assert_eq!(shebang(b"#!\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
        assert_eq!(shebang(b""), None);
    }

    #[test]
    fn a_pipe_report_is_whole_or_a_failure_never_a_success() {
        assert_eq!(decode_pipe_report(&[]), PipeReport::Word(0));
        let word = encode_report(Step::Exec, Errno::ENOENT);
        assert_eq!(decode_pipe_report(&word.to_ne_bytes()), PipeReport::Word(word));
        for got in 1..REPORT_LEN {
            assert_eq!(decode_pipe_report(&[1; REPORT_LEN][..got]), PipeReport::Cut { got }, "{got} bytes");
        }
        assert_eq!(decode_pipe_report(&[0; REPORT_LEN + 1]), PipeReport::Cut { got: REPORT_LEN + 1 }, "not ours");
    }

    #[test]
    fn each_step_but_exec_is_a_set_up_error_of_its_own() {
        assert!(setup_error(Step::Exec, Errno::ENOENT).is_none(), "exec's error is made with its interpreter");
        let what = |step| match setup_error(step, Errno::EPERM) {
            Some(SpawnError::ChildSetup { what, errno: Errno::EPERM }) => ("setup", what),
            Some(SpawnError::SwitchUser { what, errno: Errno::EPERM }) => ("user", what),
            other => panic!("{step:?}: {other:?}"),
        };
        assert_eq!(what(Step::Group), ("setup", "make its process group"));
        assert_eq!(what(Step::Mask), ("setup", "clear its signal mask"));
        assert_eq!(what(Step::SupplementaryGroups), ("user", "set its supplementary groups"));
        assert_eq!(what(Step::Gid), ("user", "set its group id"));
        assert_eq!(what(Step::Uid), ("user", "set its user id"));
        assert_eq!(decode_report(1 << 63 | 200 << 32 | 2), Some((Step::Exec, Errno::ENOENT)), "not one of ours");
    }

    #[test]
    fn a_report_is_its_step_and_errno_and_no_report_is_none() {
        assert_eq!(decode_report(0), None);
        for step in [Step::Exec, Step::Group, Step::Mask, Step::SupplementaryGroups, Step::Gid, Step::Uid] {
            for errno in [Errno::ENOENT, Errno::EACCES, Errno::EPERM, Errno::UnknownErrno, Errno::from_raw(i32::MAX)] {
                assert_eq!(decode_report(encode_report(step, errno)), Some((step, errno)), "{step:?} {errno:?}");
            }
        }
    }
}
