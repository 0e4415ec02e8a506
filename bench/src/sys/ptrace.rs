//! Counting what an init does at start and at exit, one instruction at a time: the init runs
//! as PID 1 of a new PID and mount namespace under ptrace(2), single-stepped from its exec to
//! its exit, and so is every child it makes until that child execs. The program it runs is
//! let run, and only its exit is noted, which is where the init's last phase begins.
//!
//! Each step is one instruction of the tracee's, and an instruction that is `syscall` is a
//! syscall, its number read from rax before it runs. The CPU traps after each repetition of a
//! `rep`-prefixed string instruction, with the same instruction next: steps that find the
//! instruction pointer where the last one left it count no further, so such an instruction
//! counts once, however many bytes it copies (a 192-byte `rep movsb` would otherwise count as
//! 192 instructions). No sampling and no clock: the counts do
//! not depend on the machine's load, and a run of a small init takes a few milliseconds.
//! x86_64 only, as the whole suite is.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{check, Exit, Program, Stdio};

/// Where in an init's life an instruction ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// From its exec to the syscall that makes its first child, that syscall included.
    ToSpawn,
    /// Its children's, from their start to their exec, the exec included.
    ChildToExec,
    /// The init's, from the spawn until the program (its first child) exits.
    Running,
    /// The init's, from the program's exit to its own.
    ToExit,
}

pub const PHASES: [Phase; 4] = [Phase::ToSpawn, Phase::ChildToExec, Phase::Running, Phase::ToExit];

/// What one phase counted.
#[derive(Clone, Debug, Default)]
pub struct Counted {
    pub instructions: u64,
    /// Syscall numbers, in the order made.
    pub syscalls: Vec<i64>,
}

/// A whole traced run.
pub struct Trace {
    pub phases: [Counted; 4],
    pub exit: Exit,
}

impl Trace {
    pub fn of(&self, phase: Phase) -> &Counted {
        &self.phases[PHASES.iter().position(|&p| p == phase).unwrap_or(0)]
    }
}

/// What a tracee is to the count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Init,
    /// A child of the init's (or of one of them), not yet exec'd: stepped and counted.
    Child,
    /// A child that has exec'd: let run; `main` for the init's first one, the program.
    Program {
        main: bool,
    },
}

/// The x86_64 `syscall` instruction, as the low two bytes of a little-endian word.
const SYSCALL: u64 = 0x050f;

/// The syscall number execve(2) has on x86_64: the init's own exec, counted in its first phase.
const EXECVE: i64 = libc::SYS_execve;

/// Single-stepped, the init runs thousands of times slower than the program, which would exit
/// long before the init got to wait for it, and what the init does after the spawn would all
/// count as after the program's exit. So the program is held at its exec until the init waits
/// (no step of it returns for this long, as it sleeps in the kernel), as it does unstepped:
/// then the program runs, and its exit is where the init's last phase begins.
const BLOCKED: Duration = Duration::from_millis(100);
/// An init that never waits (one that polls) gets the program after this many more steps.
const HELD_STEPS: u64 = 200_000;

fn ptrace(request: libc::c_uint, pid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every request made here takes integers or a pointer to a live buffer as `data`
    // (GETREGS, GETEVENTMSG), and the callers pass such a pointer where one is needed.
    let rc = unsafe { libc::ptrace(request, pid, addr as *mut libc::c_void, data as *mut libc::c_void) };
    if rc == -1 {
        let e = io::Error::last_os_error();
        // PEEKTEXT returns data; -1 is only an error when errno says so.
        if e.raw_os_error().unwrap_or(0) != 0 {
            return Err(e);
        }
    }
    Ok(rc)
}

/// The next instruction of `pid`: where it is, whether it is `syscall`, and rax (its number
/// if so).
fn next_instruction(pid: i32) -> io::Result<(u64, bool, i64)> {
    // SAFETY: an all-zero user_regs_struct is a valid value of this plain C struct.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut libc::user_regs_struct as usize)?;
    // PEEKTEXT's -1 is ambiguous: clear errno first so that only a real error is one.
    // SAFETY: errno is this thread's own.
    unsafe { *libc::__errno_location() = 0 };
    let word = ptrace(libc::PTRACE_PEEKTEXT, pid, regs.rip as usize, 0)? as u64;
    Ok((regs.rip, word & 0xffff == SYSCALL, regs.rax as i64))
}

/// Start `program` as PID 1 of a new PID and mount namespace, traced from its exec, and count
/// until it exits; at most `limit` instructions, or it is killed and that is the error.
pub fn trace(program: &Program, stdio: &Stdio<'_>, limit: u64) -> io::Result<Trace> {
    let flags = (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a null stack behaves as fork; the harness is
    // single-threaded, and the child makes only raw syscalls on memory prepared before.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        traced_child(program, stdio);
    }
    let init = pid as i32;
    let result = count(init, limit);
    if result.is_err() {
        // By its pid: as PID 1 its whole namespace goes with it. The tracer's exit would kill
        // it too (PTRACE_O_EXITKILL), but the harness goes on.
        // SAFETY: kill takes integers.
        unsafe { libc::kill(init, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: reaps our own child into a live c_int.
        unsafe { libc::waitpid(init, &mut status, libc::__WALL) };
    }
    result
}

fn traced_child(p: &Program, stdio: &Stdio<'_>) -> ! {
    // SAFETY: only async-signal-safe raw syscalls, on memory prepared before the clone.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let ok = libc::dup2(stdio.null.as_raw_fd(), 0) == 0
            && libc::dup2(stdio.log.as_raw_fd(), 1) == 1
            && libc::dup2(stdio.log.as_raw_fd(), 2) == 2
            && check(libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize) as libc::c_int).is_ok();
        if ok {
            libc::execve(p.argv[0].as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
        }
        libc::_exit(127)
    }
}

/// One waitpid(2) on any tracee, or `None` if none stops within `timeout`.
fn wait_within(timeout: Duration) -> io::Result<Option<(i32, libc::c_int)>> {
    let deadline = Instant::now() + timeout;
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live c_int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
        if pid > 0 {
            return Ok(Some((pid, status)));
        }
        if pid < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// One waitpid(2) on any tracee.
fn wait_any() -> io::Result<(i32, libc::c_int)> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live c_int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid > 0 {
            return Ok((pid, status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

struct Counter {
    phases: [Counted; 4],
    phase: Phase,
    roles: HashMap<i32, Role>,
    /// The init's first child, the program, once spawned.
    main: Option<i32>,
    /// Where each tracee was at its last step.
    last: HashMap<i32, u64>,
    steps: u64,
    limit: u64,
}

impl Counter {
    fn counted(&mut self, phase: Phase) -> &mut Counted {
        &mut self.phases[PHASES.iter().position(|&p| p == phase).unwrap_or(0)]
    }

    /// Count the instruction `pid` is about to run, in the phase its role puts it in, then
    /// run it and stop again.
    fn step(&mut self, pid: i32, role: Role) -> io::Result<()> {
        self.steps += 1;
        if self.steps > self.limit {
            return Err(io::Error::other(format!("ran more than {} instructions", self.limit)));
        }
        let phase = if role == Role::Init { self.phase } else { Phase::ChildToExec };
        let (at, is_syscall, number) = next_instruction(pid)?;
        // The same instruction again: a `rep` string instruction's next repetition.
        let again = self.last.insert(pid, at) == Some(at);
        let counted = self.counted(phase);
        counted.instructions += u64::from(!again);
        if is_syscall {
            counted.syscalls.push(number);
        }
        ptrace(libc::PTRACE_SINGLESTEP, pid, 0, 0).map(drop)
    }
}

/// Resume a tracee stepping from a stop inside the kernel (an event, or a signal on its way),
/// where none of its instructions runs before it stops again: nothing to count. `sig` is
/// delivered.
fn resume_stepping(pid: i32, sig: libc::c_int) -> io::Result<()> {
    ptrace(libc::PTRACE_SINGLESTEP, pid, 0, sig as usize).map(drop)
}

fn resume(pid: i32, sig: libc::c_int) -> io::Result<()> {
    ptrace(libc::PTRACE_CONT, pid, 0, sig as usize).map(drop)
}

fn count(init: i32, limit: u64) -> io::Result<Trace> {
    // The exec stop: PTRACE_TRACEME makes the exec stop with SIGTRAP before the first
    // instruction of the new program.
    let (_, status) = wait_any()?;
    if !libc::WIFSTOPPED(status) {
        return Err(io::Error::other("the init did not start (its exec failed)"));
    }
    let options = libc::PTRACE_O_EXITKILL
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEEXIT;
    ptrace(libc::PTRACE_SETOPTIONS, init, 0, options as usize)?;
    let mut c = Counter {
        phases: Default::default(),
        phase: Phase::ToSpawn,
        roles: HashMap::from([(init, Role::Init)]),
        main: None,
        last: HashMap::new(),
        steps: 0,
        limit,
    };
    c.counted(Phase::ToSpawn).syscalls.push(EXECVE);
    c.step(init, Role::Init)?;
    // The program, stopped at its exec until the init waits for it (see HELD).
    let mut held: Option<(i32, u64)> = None;
    loop {
        let (pid, status) = match held {
            None => wait_any()?,
            Some((program, since)) => match wait_within(BLOCKED)? {
                Some(stop) if c.steps - since < HELD_STEPS => stop,
                other => {
                    held = None;
                    resume(program, 0)?;
                    match other {
                        Some(stop) => stop,
                        None => continue,
                    }
                }
            },
        };
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if pid == init {
                let exit = if libc::WIFEXITED(status) {
                    Exit::Code(libc::WEXITSTATUS(status))
                } else {
                    Exit::Signal(libc::WTERMSIG(status))
                };
                return Ok(Trace { phases: c.phases, exit });
            }
            c.roles.remove(&pid);
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        // A child auto-attached at a fork may report its first stop before its parent's event
        // names it: a child, then.
        let role = *c.roles.entry(pid).or_insert(Role::Child);
        match (role, event) {
            (
                Role::Init | Role::Child,
                libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK,
            ) => {
                let mut child: libc::c_ulong = 0;
                ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut child as *mut libc::c_ulong as usize)?;
                c.roles.entry(child as i32).or_insert(Role::Child);
                if role == Role::Init && c.main.is_none() {
                    c.main = Some(child as i32);
                    c.phase = Phase::Running;
                }
                resume_stepping(pid, 0)?;
            }
            (Role::Child, libc::PTRACE_EVENT_EXEC) => {
                let main = c.main == Some(pid);
                c.roles.insert(pid, Role::Program { main });
                if main {
                    held = Some((pid, c.steps));
                } else {
                    resume(pid, 0)?;
                }
            }
            (Role::Program { main: true }, libc::PTRACE_EVENT_EXIT) => {
                c.phase = Phase::ToExit;
                resume(pid, 0)?;
            }
            // Let the program run; a signal it stopped for is delivered, an event is not one.
            (Role::Program { .. }, _) => resume(pid, if event == 0 && sig != libc::SIGTRAP { sig } else { 0 })?,
            // Its own exit: nothing more of it to count.
            (_, libc::PTRACE_EVENT_EXIT) => resume(pid, 0)?,
            (_, 0) if sig == libc::SIGTRAP => c.step(pid, role)?,
            // A new tracee's first stop is ptrace's own SIGSTOP: the next step is its first
            // instruction after the fork.
            (Role::Child, 0) if sig == libc::SIGSTOP => c.step(pid, role)?,
            (_, 0) => resume_stepping(pid, sig)?,
            (_, _) => resume_stepping(pid, 0)?,
        }
    }
}

/// A syscall's name on x86_64, for the ones an init makes; others by number.
pub fn syscall_name(number: i64) -> String {
    const NAMES: &[(i64, &str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_open, "open"),
        (libc::SYS_close, "close"),
        (libc::SYS_fstat, "fstat"),
        (libc::SYS_poll, "poll"),
        (libc::SYS_lseek, "lseek"),
        (libc::SYS_mmap, "mmap"),
        (libc::SYS_mprotect, "mprotect"),
        (libc::SYS_munmap, "munmap"),
        (libc::SYS_brk, "brk"),
        (libc::SYS_rt_sigaction, "rt_sigaction"),
        (libc::SYS_rt_sigprocmask, "rt_sigprocmask"),
        (libc::SYS_rt_sigreturn, "rt_sigreturn"),
        (libc::SYS_ioctl, "ioctl"),
        (libc::SYS_pread64, "pread64"),
        (libc::SYS_access, "access"),
        (libc::SYS_pipe, "pipe"),
        (libc::SYS_dup2, "dup2"),
        (libc::SYS_getpid, "getpid"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_socketpair, "socketpair"),
        (libc::SYS_clone, "clone"),
        (libc::SYS_fork, "fork"),
        (libc::SYS_vfork, "vfork"),
        (libc::SYS_execve, "execve"),
        (libc::SYS_exit, "exit"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_kill, "kill"),
        (libc::SYS_uname, "uname"),
        (libc::SYS_fcntl, "fcntl"),
        (libc::SYS_chdir, "chdir"),
        (libc::SYS_readlink, "readlink"),
        (libc::SYS_getuid, "getuid"),
        (libc::SYS_getgid, "getgid"),
        (libc::SYS_geteuid, "geteuid"),
        (libc::SYS_getegid, "getegid"),
        (libc::SYS_setpgid, "setpgid"),
        (libc::SYS_getppid, "getppid"),
        (libc::SYS_getpgrp, "getpgrp"),
        (libc::SYS_setsid, "setsid"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (libc::SYS_sigaltstack, "sigaltstack"),
        (libc::SYS_prctl, "prctl"),
        (libc::SYS_arch_prctl, "arch_prctl"),
        (libc::SYS_gettid, "gettid"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_set_tid_address, "set_tid_address"),
        (libc::SYS_clock_gettime, "clock_gettime"),
        (libc::SYS_exit_group, "exit_group"),
        (libc::SYS_tgkill, "tgkill"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_newfstatat, "newfstatat"),
        (libc::SYS_set_robust_list, "set_robust_list"),
        (libc::SYS_signalfd4, "signalfd4"),
        (libc::SYS_epoll_create1, "epoll_create1"),
        (libc::SYS_epoll_ctl, "epoll_ctl"),
        (libc::SYS_epoll_wait, "epoll_wait"),
        (libc::SYS_pipe2, "pipe2"),
        (libc::SYS_prlimit64, "prlimit64"),
        (libc::SYS_getrandom, "getrandom"),
        (libc::SYS_rseq, "rseq"),
        (libc::SYS_clone3, "clone3"),
        (libc::SYS_close_range, "close_range"),
        (libc::SYS_statx, "statx"),
        (libc::SYS_sched_getaffinity, "sched_getaffinity"),
    ];
    NAMES.iter().find(|(n, _)| *n == number).map_or_else(|| format!("syscall {number}"), |(_, name)| name.to_string())
}
