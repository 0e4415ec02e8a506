//! `bench-child`: the program every init runs in the benchmarks, and the program run bare for
//! the floor, so that whatever it costs cancels out. It talks to the harness through two
//! inherited descriptors instead of stdout, so no init's output handling is measured:
//! fd 3 it writes to, fd 4 it reads from.
//!
//! ```text
//! bench-child ack          'r' when ready; one 'a' per SIGUSR1 received; exit 0 on SIGTERM
//! bench-child count        'r' when ready; counts SIGUSR1; on SIGUSR2 writes the count (u64 LE);
//!                          exit 0 on SIGTERM
//! bench-child orphans N    makes N orphans, each blocked reading a gate pipe; 'r' once all
//!                          are blocked; on 'g' from fd 4 closes the gate, so all exit at
//!                          once; on 'q' (or EOF) exits 0
//! bench-child idle SECS    'r'; sleeps SECS; 'd'; exits 0 on 'q' (or EOF) from fd 4: `sleep
//!                          SECS` with a handshake at each end, and an exit the harness times
//!                          after it has read the init's counters
//! ```
//! "Ready" means the signals are blocked: as a namespace's PID 1 (the floor) a signal with no
//! handler and not blocked would be dropped by the kernel, and under an init a signal that
//! arrived before the mask was set would kill the child.
#![allow(unsafe_code)]

use std::process::exit;
use std::time::Duration;

const TO_HARNESS: libc::c_int = 3;
const FROM_HARNESS: libc::c_int = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["ack"] => signals(Mode::Ack),
        ["count"] => signals(Mode::Count),
        ["orphans", n] => orphans(n.parse().unwrap_or_else(|_| usage())),
        ["idle", secs] => idle(secs.parse().unwrap_or_else(|_| usage())),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: bench-child ack | count | orphans N | idle SECS (fd 3: to the harness, fd 4: from it)");
    exit(2)
}

/// Write all of `bytes` to `fd`; exit if the harness is gone, since nobody is listening.
fn send(fd: libc::c_int, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: the pointer and length describe the live, unsent tail of `bytes`.
        let n = unsafe { libc::write(fd, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        if n > 0 {
            done += n as usize;
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            exit(3);
        }
    }
}

/// One byte from `fd`, or `None` at EOF or on error.
fn receive(fd: libc::c_int) -> Option<u8> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a live u8.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => return Some(byte),
            -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ack,
    Count,
}

fn signals(mode: Mode) -> ! {
    // SAFETY: an all-zero sigset_t is a valid value to hand to sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t for each call; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::sigaddset(&mut set, libc::SIGTERM);
    }
    // Blocked, not handled: sigwaitinfo takes them synchronously, the cheapest way to receive.
    // SAFETY: `set` is initialised; the old mask is not asked for.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
        exit(4);
    }
    send(TO_HARNESS, b"r");
    let mut count: u64 = 0;
    loop {
        // SAFETY: `set` is initialised; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        match sig {
            libc::SIGUSR1 if mode == Mode::Ack => send(TO_HARNESS, b"a"),
            libc::SIGUSR1 => count += 1,
            libc::SIGUSR2 if mode == Mode::Count => send(TO_HARNESS, &count.to_le_bytes()),
            libc::SIGTERM => exit(0),
            _ => {}
        }
    }
}

fn pipe() -> [libc::c_int; 2] {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        exit(5);
    }
    fds
}

fn close(fd: libc::c_int) {
    // SAFETY: closes a descriptor this process owns and no Rust object wraps.
    unsafe { libc::close(fd) };
}

fn orphans(n: usize) -> ! {
    let [gate_r, gate_w] = pipe();
    let [ready_r, ready_w] = pipe();
    // The orphans are made by an intermediate process that then exits, so the kernel hands
    // them to the nearest reaper: the init. This process keeps the gate's write end.
    // SAFETY: this program is single-threaded; the forked processes only make raw syscalls.
    match unsafe { libc::fork() } {
        -1 => exit(6),
        0 => {
            for _ in 0..n {
                // SAFETY: as above.
                match unsafe { libc::fork() } {
                    -1 => {
                        // SAFETY: leaves at once without running anything inherited.
                        unsafe { libc::_exit(7) }
                    }
                    0 => orphan(gate_r, gate_w, ready_r, ready_w),
                    _ => {}
                }
            }
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        intermediate => {
            close(gate_r);
            close(ready_w);
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a live c_int.
            let waited = unsafe { libc::waitpid(intermediate, &mut status, 0) };
            if waited != intermediate || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                exit(8);
            }
            // Every orphan writes one byte once it has dropped its copy of the gate and is
            // about to block on it.
            for _ in 0..n {
                if receive(ready_r).is_none() {
                    exit(9);
                }
            }
            send(TO_HARNESS, b"r");
            loop {
                match receive(FROM_HARNESS) {
                    Some(b'g') => close(gate_w),
                    Some(b'q') | None => exit(0),
                    Some(_) => {}
                }
            }
        }
    }
}

fn orphan(gate_r: libc::c_int, gate_w: libc::c_int, ready_r: libc::c_int, ready_w: libc::c_int) -> ! {
    for fd in [gate_w, ready_r, TO_HARNESS, FROM_HARNESS] {
        close(fd);
    }
    let byte = [b'x'];
    // SAFETY: writes one byte from a live buffer.
    if unsafe { libc::write(ready_w, byte.as_ptr().cast(), 1) } != 1 {
        // The main child then reads EOF short of N bytes and reports the failure.
        // SAFETY: leaves at once without running anything inherited.
        unsafe { libc::_exit(10) }
    }
    close(ready_w);
    // Blocks until the last write end is closed: the main child closing the gate.
    let _eof = receive(gate_r);
    // SAFETY: leaves without running anything inherited from the parent's state.
    unsafe { libc::_exit(0) }
}

fn idle(secs: f64) -> ! {
    send(TO_HARNESS, b"r");
    std::thread::sleep(Duration::from_secs_f64(secs));
    send(TO_HARNESS, b"d");
    // Exiting wakes the init; the harness reads the init's counters before it says 'q'.
    while let Some(byte) = receive(FROM_HARNESS) {
        if byte == b'q' {
            break;
        }
    }
    exit(0)
}
