//! `probe`: the program the integration tests run under shim. Each mode does one thing a
//! real program does and reports it on stdout, one line per fact, flushed at once, so tests
//! wait for lines (handshakes) rather than sleeping.
//!
//! ```text
//! probe signals [SIG...]     handle every catchable signal, print "got N"; exit 0 after any listed one
//! probe drain SECS           a server: on SIGTERM print "draining", work SECS more, print "drained", exit 0
//! probe ignore-term          ignore SIGTERM and wait forever
//! probe no-handler           install nothing and wait forever
//! probe exit CODE            exit with CODE at once
//! probe status               print the signal mask, ignored set, fds, ids and cwd, then exit 0
//! probe ids                  print its ids, groups, capabilities and HOME, then try to get root
//!                            back (setuid, setresuid, setgid, setgroups) and print what each said
//! probe orphans N            make N orphans that exit all at once, print "orphaned N", wait forever
//! probe tty                  print the tty's foreground group and own group, echo stdin lines, report SIGINT
//! probe escape-group SECS|ignore   fork a daemon-like child (setsid) that drains SECS on SIGTERM,
//!                            or ignores it; print "escaped PID", wait forever
//! probe leave CODE MODE...   start `probe MODE...`, wait until it is ready, exit with CODE
//! probe ignoring SIG PROG... set SIG (a number) to ignored, then exec PROG: a careless caller
//! probe churn N              fork N processes in batches, each orphaned and exiting at once;
//!                            print "churned N", wait forever
//! ```
//! Every "ready" line means the handlers are installed; with PROBE_READY_FD set, a byte is
//! also written to that fd then, for a parent that cannot read stdout.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, Write};
use std::time::Duration;

static mut PIPE_WRITE: libc::c_int = -1;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ready() {
    say("ready");
    if let Some(fd) = std::env::var("PROBE_READY_FD").ok().and_then(|v| v.parse::<libc::c_int>().ok()) {
        // SAFETY: writes one byte from a live buffer, then closes an fd the parent handed over.
        unsafe {
            libc::write(fd, b"r".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let byte = sig as u8;
    // SAFETY: write(2) is async-signal-safe; PIPE_WRITE is set once before handlers exist.
    unsafe { libc::write(PIPE_WRITE, (&byte as *const u8).cast(), 1) };
}

/// Route `sigs` to a self-pipe; returns its read end.
fn handle(sigs: &[i32]) -> libc::c_int {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-int array; the handler only writes to the pipe.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        PIPE_WRITE = fds[1];
        for &s in sigs {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
    fds[0]
}

fn next_signal(read_fd: libc::c_int) -> i32 {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a live buffer.
        let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            return byte.into();
        }
    }
}

fn catchable() -> Vec<i32> {
    // 32 and 33 are glibc's own; it refuses handlers for them.
    (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP && s != 32 && s != 33).collect()
}

fn forever() -> ! {
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}

fn sig_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "HUP" => libc::SIGHUP,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "WINCH" => libc::SIGWINCH,
        n => n.parse().expect("signal name or number"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "signals" => {
            let exit_on: Vec<i32> = args[1..].iter().map(|s| sig_number(s)).collect();
            let fd = handle(&catchable());
            ready();
            loop {
                let sig = next_signal(fd);
                say(&format!("got {sig}"));
                if exit_on.contains(&sig) {
                    std::process::exit(0);
                }
            }
        }
        "drain" => {
            let secs: f64 = arg(1).parse().expect("seconds");
            let fd = handle(&[libc::SIGTERM]);
            ready();
            next_signal(fd);
            say("draining");
            std::thread::sleep(Duration::from_secs_f64(secs));
            say("drained");
            std::process::exit(0);
        }
        "ignore-term" => {
            // SAFETY: SIG_IGN runs no code.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            ready();
            forever();
        }
        "no-handler" => {
            ready();
            forever();
        }
        "exit" => std::process::exit(arg(1).parse().expect("exit code")),
        "status" => {
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            for line in status.lines().filter(|l| l.starts_with("SigBlk") || l.starts_with("SigIgn")) {
                say(line);
            }
            let dir = std::fs::read_dir("/proc/self/fd").expect("fd dir");
            // The listing itself holds one fd: the highest; drop it by checking each is still open.
            let mut fds: Vec<i32> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            // SAFETY: fcntl F_GETFD on an integer only queries.
            fds.retain(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1);
            fds.sort();
            say(&format!("fds: {}", fds.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" ")));
            // SAFETY: these queries take no pointers.
            let (pid, pgid, sid) = unsafe { (libc::getpid(), libc::getpgrp(), libc::getsid(0)) };
            say(&format!("pid: {pid}"));
            say(&format!("pgid: {pgid}"));
            say(&format!("sid: {sid}"));
            say(&format!("cwd: {}", std::env::current_dir().unwrap().display()));
        }
        "ids" => {
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            for field in ["Uid", "Gid", "Groups", "CapPrm", "CapEff", "CapAmb"] {
                let value = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).unwrap_or("");
                say(&format!("{field}: {}", value.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            say(&format!("HOME: {}", std::env::var("HOME").unwrap_or_else(|_| "unset".into())));
            let outcome = |rc: libc::c_int| match rc {
                0 => "ok".to_string(),
                _ => format!("failed: {}", std::io::Error::last_os_error()),
            };
            let root: libc::gid_t = 0;
            // SAFETY: each call takes integers, or (setgroups) one live gid_t; errno is read
            // before the next call.
            unsafe {
                say(&format!("setuid(0): {}", outcome(libc::setuid(0))));
                say(&format!("setresuid(0, 0, 0): {}", outcome(libc::setresuid(0, 0, 0))));
                say(&format!("setgid(0): {}", outcome(libc::setgid(0))));
                say(&format!("setgroups([0]): {}", outcome(libc::setgroups(1, &root))));
            }
        }
        "orphans" => {
            let n: usize = arg(1).parse().expect("count");
            let mut gate = [0; 2];
            // SAFETY: the children only read the gate pipe and exit; no allocation after fork.
            unsafe {
                assert_eq!(libc::pipe(gate.as_mut_ptr()), 0);
                let middle = libc::fork();
                if middle == 0 {
                    libc::close(gate[1]);
                    for _ in 0..n {
                        if libc::fork() == 0 {
                            let mut b = 0u8;
                            libc::read(gate[0], (&mut b as *mut u8).cast(), 1);
                            libc::_exit(0);
                        }
                    }
                    // Leave them: they become the reaper's.
                    libc::_exit(0);
                }
                libc::close(gate[0]);
                let mut status = 0;
                libc::waitpid(middle, &mut status, 0);
                // Closing the gate wakes every orphan at once.
                libc::close(gate[1]);
            }
            say(&format!("orphaned {n}"));
            forever();
        }
        "tty" => {
            let fd = handle(&[libc::SIGINT]);
            // SAFETY: plain queries on fd 0.
            let (fg, own) = unsafe { (libc::tcgetpgrp(0), libc::getpgrp()) };
            say(&format!("foreground {fg} own {own}"));
            std::thread::spawn(move || loop {
                next_signal(fd);
                say("got INT");
            });
            for line in std::io::stdin().lock().lines() {
                say(&format!("read {}", line.unwrap_or_default()));
            }
            say("eof");
        }
        "escape-group" => {
            // The escapee leaves the group and session (setsid), as a daemon does. With SECS it
            // drains that long on SIGTERM; with "ignore" it ignores SIGTERM.
            let how = arg(1).to_string();
            // SAFETY: the child only calls setsid and signal set-up before running Rust code of
            // its own; this process is single-threaded here.
            let child = unsafe { libc::fork() };
            if child == 0 {
                // SAFETY: setsid takes no arguments.
                unsafe { libc::setsid() };
                if how == "ignore" {
                    // SAFETY: SIG_IGN runs no code.
                    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
                    say("escapee ready");
                    forever();
                }
                let secs: f64 = how.parse().expect("seconds or 'ignore'");
                let fd = handle(&[libc::SIGTERM]);
                say("escapee ready");
                next_signal(fd);
                say("escapee draining");
                std::thread::sleep(Duration::from_secs_f64(secs));
                say("escapee drained");
                std::process::exit(0);
            }
            say(&format!("escaped {child}"));
            forever();
        }
        "churn" => {
            let n: usize = arg(1).parse().expect("count");
            const BATCH: usize = 1000;
            let mut made = 0;
            while made < n {
                let batch = BATCH.min(n - made);
                // SAFETY: the middle process only forks and _exits; no allocation after fork.
                unsafe {
                    let middle = libc::fork();
                    if middle == 0 {
                        for _ in 0..batch {
                            if libc::fork() == 0 {
                                libc::_exit(0);
                            }
                        }
                        // Its children become orphans, for the reaper to collect.
                        libc::_exit(0);
                    }
                    let mut status = 0;
                    libc::waitpid(middle, &mut status, 0);
                }
                made += batch;
            }
            say(&format!("churned {n}"));
            forever();
        }
        "ignoring" => {
            use std::os::unix::process::CommandExt;
            let sig: i32 = arg(1).parse().expect("signal number");
            // SAFETY: SIG_IGN runs no code; an ignored disposition survives the exec below.
            unsafe { libc::signal(sig, libc::SIG_IGN) };
            let err = std::process::Command::new(&args[2]).args(&args[3..]).exec();
            panic!("exec {}: {err}", args[2]);
        }
        "leave" => {
            let code: i32 = arg(1).parse().expect("exit code");
            let mut fds = [0; 2];
            // SAFETY: fds is a valid two-int array. The write end is left inheritable on purpose.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(&args[2..])
                .env("PROBE_READY_FD", fds[1].to_string())
                .spawn()
                .expect("start the sub-probe");
            let mut b = 0u8;
            // SAFETY: closes our copy of the write end, then reads one byte into a live buffer.
            unsafe {
                libc::close(fds[1]);
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            }
            std::process::exit(code);
        }
        other => {
            eprintln!("probe: unknown mode '{other}'");
            std::process::exit(2);
        }
    }
}
