//! `syscall-gate`: fault injection at one syscall, deterministic. It runs COMMAND under a
//! seccomp filter that hands every `exit_group(2)` of COMMAND and of its descendants to the
//! gate (SECCOMP_RET_USER_NOTIF, seccomp_unotify(2)), and the gate decides, while the exiting
//! process waits in the kernel, what happens to it. A window that no timing from outside can
//! hit (between two instructions of a child that failed to exec and its exit) is then held
//! open for as long as the fault takes.
//!
//! ```text
//! syscall-gate [--pid1] MODE -- COMMAND [ARGS...]
//!   pass             every exit runs as asked (a control)
//!   signal-at-exit   an exit of any process but COMMAND's own: SIGTERM the process, give it
//!                    200 ms to die of it, then let the exit run
//!   kill-at-exit     an exit of any process but COMMAND's own: SIGKILL the process, so that
//!                    its status says SIGKILL whatever code it was exiting with
//!   --pid1           COMMAND is PID 1 of a new PID namespace, with its own /proc
//! ```
//! COMMAND's own exit always runs at once. The gate exits with COMMAND's
//! code (128+N for signal N), 124 if COMMAND still runs after 20 s (it is killed), 120 if the
//! gate could not set up. It prints nothing on stdout; its own lines on stderr start
//! `syscall-gate:`, and a fault mode that never fired says so there.
//!
//! To gate another syscall, change the number in `gate_filter` and add a mode to `Fault`.

use std::ffi::CString;
use std::io::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const TIMED_OUT: i32 = 124;
/// The gate's own failure: a code shim never exits with, so it cannot pass for shim's.
const FAILED: i32 = 120;
/// How long a signalled process gets to die before its exit is let through.
const SIGNAL_GRACE: Duration = Duration::from_millis(200);
const USAGE: &str = "usage: syscall-gate [--pid1] pass|signal-at-exit|kill-at-exit -- COMMAND [ARGS...]";

/// seccomp_data.arch of native programs (linux/audit.h: EM_* | 64-bit | little-endian).
const AUDIT_ARCH: Option<u32> = if cfg!(target_arch = "x86_64") {
    Some(0xc000_003e)
} else if cfg!(target_arch = "aarch64") {
    Some(0xc000_00b7)
} else {
    None
};

#[derive(Clone, Copy)]
enum Fault {
    SignalAtExit,
    KillAtExit,
}

fn main() {
    let code = run().unwrap_or_else(|e| {
        eprintln!("syscall-gate: {e}");
        FAILED
    });
    std::process::exit(code);
}

/// A negative return is a failure: say what failed and the errno.
fn check(rc: i64, what: &str) -> Result<i64, String> {
    if rc < 0 {
        Err(format!("{what}: {}", Error::last_os_error()))
    } else {
        Ok(rc)
    }
}

/// The fd a syscall just made for this process, or what failed.
fn new_fd(rc: i64, what: &str) -> Result<OwnedFd, String> {
    let fd = check(rc, what)?;
    // SAFETY: the kernel just made this fd for this process, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn errno() -> i32 {
    Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn run() -> Result<i32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid1 = args.first().is_some_and(|a| a == "--pid1");
    let (fault, command) = match &args[usize::from(pid1)..] {
        [mode, dashes, command @ ..] if dashes == "--" && !command.is_empty() => {
            let fault = match mode.as_str() {
                "pass" => None,
                "signal-at-exit" => Some(Fault::SignalAtExit),
                "kill-at-exit" => Some(Fault::KillAtExit),
                _ => return Err(format!("unknown mode '{mode}'; {USAGE}")),
            };
            (fault, command)
        }
        _ => return Err(USAGE.into()),
    };
    let argv = command.iter().map(|a| CString::new(a.as_str()).map_err(|_| "an argument holds a NUL byte"));
    let argv: Vec<CString> = argv.collect::<Result<_, _>>()?;
    if pid1 {
        // SAFETY: unshare takes flags only. The next fork's child is PID 1 of the namespace.
        check(unsafe { libc::unshare(libc::CLONE_NEWPID) }.into(), "unshare a PID namespace")?;
    }
    let mut pair = [-1; 2];
    // SAFETY: socketpair writes two fds into a live two-int array.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, pair.as_mut_ptr()) };
    check(rc.into(), "make a socket pair")?;
    let (ours, theirs) = (new_fd(pair[0].into(), "socketpair")?, new_fd(pair[1].into(), "socketpair")?);
    // SAFETY: the gate has no other thread, so the child may run ordinary code until exec.
    let pid = check(unsafe { libc::fork() }.into(), "fork")? as libc::pid_t;
    if pid == 0 {
        drop(ours);
        let e = enter_gate(pid1, &theirs).and_then(|()| exec(&argv)).unwrap_err();
        eprintln!("syscall-gate: {e}");
        // SAFETY: _exit ends this forked child without running the parent's exit handlers.
        unsafe { libc::_exit(FAILED) }
    }
    drop(theirs);
    let command_fd = pidfd_open(pid)?;
    let mut number: libc::c_int = -1;
    let want = std::mem::size_of_val(&number);
    // SAFETY: recv writes at most `want` bytes into a live c_int.
    let got =
        unsafe { libc::recv(ours.as_raw_fd(), (&mut number as *mut libc::c_int).cast(), want, libc::MSG_WAITALL) };
    if check(got as i64, "receive the listener's number")? != want as i64 {
        return Err("COMMAND's process ended before its filter was installed".into());
    }
    let listener = take_fd(&command_fd, number)?;
    // EOF on the socket tells the child the listener is taken: it may exec (which closes its own).
    drop(ours);
    Gate { listener, command: pid, command_fd, fault }.supervise()
}

/// In the child: own /proc if PID 1, install the filter, hand its listener to the gate, and
/// wait until the gate has it.
fn enter_gate(pid1: bool, sock: &OwnedFd) -> Result<(), String> {
    // SAFETY: prctl with integer arguments. If the gate dies, COMMAND goes with it.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) }.into(), "set a parent-death signal")?;
    if pid1 {
        // SAFETY: unshare takes flags only.
        check(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into(), "unshare the mount namespace")?;
        // Private first, or the new /proc would also cover the host's (mount_namespaces(7)).
        // SAFETY: NUL-terminated literals or NULL, as mount(2) takes them.
        let rc = unsafe { libc::mount(null(), c"/".as_ptr(), null(), libc::MS_REC | libc::MS_PRIVATE, null()) };
        check(rc.into(), "make / private")?;
        let (proc, flags) = (c"proc".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        // SAFETY: as above.
        check(unsafe { libc::mount(proc, c"/proc".as_ptr(), proc, flags, null()) }.into(), "mount /proc")?;
    }
    // Closed on return either way: if handing it over fails, exits fail (ENOSYS), not hang.
    let listener = gate_filter()?;
    let number = listener.as_raw_fd();
    // SAFETY: send reads the bytes of a live c_int.
    let sent = unsafe {
        libc::send(sock.as_raw_fd(), (&number as *const libc::c_int).cast(), std::mem::size_of_val(&number), 0)
    };
    check(sent as i64, "hand over the listener")?;
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into a live u8; it returns at EOF.
    check(unsafe { libc::recv(sock.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, 0) } as i64, "wait for the gate")?;
    Ok(())
}

/// Install the filter: exit_group(2) goes to the listener, everything else runs. Returns the
/// listener.
fn gate_filter() -> Result<OwnedFd, String> {
    let arch = AUDIT_ARCH.ok_or("this architecture's seccomp value is not known here")?;
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jump_if = |k: u32, jt: u8, jf: u8| libc::sock_filter { jt, jf, ..stmt(libc::BPF_JMP | libc::BPF_JEQ, k) };
    let load = |offset: usize| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset as u32);
    let ret = |action: u32| stmt(libc::BPF_RET | libc::BPF_K, action);
    let mut program = [
        load(std::mem::offset_of!(libc::seccomp_data, arch)),
        jump_if(arch, 1, 0),
        // Another ABI's syscall numbers mean other calls: leave them alone.
        ret(libc::SECCOMP_RET_ALLOW),
        load(std::mem::offset_of!(libc::seccomp_data, nr)),
        jump_if(libc::SYS_exit_group as u32, 0, 1),
        ret(libc::SECCOMP_RET_USER_NOTIF),
        ret(libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_mut_ptr() };
    // SAFETY: prctl with integer arguments; needed to install a filter without CAP_SYS_ADMIN.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into(), "set no_new_privs")?;
    // SAFETY: seccomp reads the program through `prog`, both live for the call; the kernel copies it.
    let fd = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog)
    };
    new_fd(fd, "install the seccomp filter")
}

fn exec(argv: &[CString]) -> Result<(), String> {
    let ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).chain([null()]).collect();
    // SAFETY: a NULL-terminated array of NUL-terminated strings that outlive the call.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    Err(format!("exec {:?}: {}", argv[0], Error::last_os_error()))
}

fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, String> {
    // SAFETY: pidfd_open takes a pid and flags.
    new_fd(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }, "pidfd_open")
}

/// A copy of another process's fd `fd` (pidfd_getfd(2); the copy is close-on-exec).
fn take_fd(pidfd: &OwnedFd, fd: RawFd) -> Result<OwnedFd, String> {
    // SAFETY: pidfd_getfd takes two fds and flags.
    new_fd(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) }, "pidfd_getfd")
}

fn signal(pidfd: &OwnedFd, sig: libc::c_int) -> Result<(), String> {
    // SAFETY: pidfd_send_signal takes an fd, a signal number, no siginfo and no flags.
    let rc =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, null_mut::<libc::siginfo_t>(), 0) };
    check(rc, "pidfd_send_signal").map(drop)
}

/// Return when the process behind `pidfd` has exited, or after `at_most`.
fn await_exit(pidfd: &OwnedFd, at_most: Duration) -> Result<(), String> {
    let mut fds = [libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    // SAFETY: poll reads and writes one live pollfd.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, at_most.as_millis() as libc::c_int) };
    check(rc.into(), "poll a pidfd").map(drop)
}

/// The supervisor's side: the listener, and COMMAND's own process.
struct Gate {
    listener: OwnedFd,
    command: libc::pid_t,
    command_fd: OwnedFd,
    fault: Option<Fault>,
}

impl Gate {
    /// Answer the calls until COMMAND exits; its exit code.
    fn supervise(&self) -> Result<i32, String> {
        let deadline = Instant::now() + LIMIT;
        let mut fired = false;
        let mut fds = [&self.command_fd, &self.listener].map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                eprintln!("syscall-gate: COMMAND still runs after {LIMIT:?}: killing it");
                signal(&self.command_fd, libc::SIGKILL)?;
                reap(self.command)?;
                return Ok(TIMED_OUT);
            }
            fds.iter_mut().for_each(|p| p.revents = 0);
            // SAFETY: poll reads and writes two live pollfds.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, left.as_millis().max(1) as libc::c_int) } < 0
                && errno() != libc::EINTR
            {
                return Err(format!("poll: {}", Error::last_os_error()));
            }
            if fds[0].revents != 0 {
                break; // COMMAND exited
            }
            if fds[1].revents & libc::POLLIN != 0 {
                fired |= self.take_call()?;
            } else if fds[1].revents != 0 {
                fds[1].fd = -1; // POLLHUP: no process is left under the filter.
            }
        }
        if self.fault.is_some() && !fired {
            eprintln!("syscall-gate: the fault never fired: no process but COMMAND's own exited");
        }
        reap(self.command)
    }

    /// Take one call off the listener and answer it; whether a fault was applied.
    fn take_call(&self) -> Result<bool, String> {
        // SAFETY: the kernel requires a zeroed struct, and all zero is a valid value of it.
        let mut call: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV writes one seccomp_notif into a live one.
        if unsafe { libc::ioctl(self.listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut call) } < 0 {
            // ENOENT: the process died before its call was taken.
            return match errno() {
                libc::ENOENT | libc::EINTR => Ok(false),
                _ => Err(format!("take a call: {}", Error::last_os_error())),
            };
        }
        let exiting = call.pid as libc::pid_t;
        let Some(fault) = self.fault.filter(|_| exiting != self.command) else {
            return self.answer_continue(call.id).map(|()| false);
        };
        // The pid is pinned as a pidfd, then the call checked still pending: only then is the pidfd
        // known to name the exiting process, not one that reused its pid (seccomp_unotify(2)).
        let Ok(pidfd) = pidfd_open(exiting) else { return Ok(false) };
        if !self.still_pending(call.id) {
            return Ok(false);
        }
        match fault {
            Fault::SignalAtExit => {
                signal(&pidfd, libc::SIGTERM)?;
                // If the signal is not blocked, the process dies here, and the answer finds no call.
                await_exit(&pidfd, SIGNAL_GRACE)?;
            }
            Fault::KillAtExit => {
                signal(&pidfd, libc::SIGKILL)?;
                await_exit(&pidfd, Duration::from_secs(5))?;
            }
        }
        // Answered either way, so that nothing is left waiting; a dead process has no call left.
        self.answer_continue(call.id)?;
        Ok(true)
    }

    fn still_pending(&self, id: u64) -> bool {
        // SAFETY: NOTIF_ID_VALID reads a live u64.
        unsafe { libc::ioctl(self.listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
    }

    fn answer_continue(&self, id: u64) -> Result<(), String> {
        let flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
        let mut resp = libc::seccomp_notif_resp { id, val: 0, error: 0, flags };
        // SAFETY: NOTIF_SEND reads a live seccomp_notif_resp.
        if unsafe { libc::ioctl(self.listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } < 0
            && errno() != libc::ENOENT
        {
            // ENOENT: the process died waiting, which a fatal fault is meant to do.
            return Err(format!("answer a call: {}", Error::last_os_error()));
        }
        Ok(())
    }
}

fn reap(pid: libc::pid_t) -> Result<i32, String> {
    let mut status = 0;
    // SAFETY: waitpid writes a live c_int.
    check(unsafe { libc::waitpid(pid, &mut status, 0) }.into(), "waitpid")?;
    Ok(if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) })
}
