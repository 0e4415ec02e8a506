//! The time since shim started, from CLOCK_MONOTONIC: what the state machine's deadlines and
//! the log's durations are measured in.
//!
//! The C library reads the clock through the vDSO, with no syscall, but its first reading
//! looks the function up in the vDSO's symbol table (about 1,400 instructions in musl) and
//! touches two pages shim has not touched yet, the vDSO's code and its data: two page faults,
//! which in a VM cost more than all of start-up's own instructions. A start and a quick exit
//! read the clock two or three times, so the first few readings are plain clock_gettime(2)
//! syscalls; a process that reads it often (a storm of signals, two readings each) moves to
//! the vDSO after them.

use std::cell::Cell;
use std::time::Duration;

/// Readings made by syscall before the vDSO takes over.
const BY_SYSCALL: u32 = 4;

pub struct Clock {
    start: Duration,
    reads: Cell<u32>,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Clock {
        let clock = Clock { start: Duration::ZERO, reads: Cell::new(0) };
        Clock { start: clock.monotonic(), ..clock }
    }

    /// The time since [`Clock::start`].
    pub fn elapsed(&self) -> Duration {
        self.monotonic().saturating_sub(self.start)
    }

    fn monotonic(&self) -> Duration {
        let reads = self.reads.get();
        self.reads.set(reads.saturating_add(1));
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        let rc = if reads < BY_SYSCALL {
            // SAFETY: clock_gettime writes one timespec into a live one.
            unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts as *mut libc::timespec) }
        } else {
            // SAFETY: as above, through the C library (and so the vDSO).
            libc::c_long::from(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) })
        };
        // CLOCK_MONOTONIC cannot fail for a valid pointer; if it did, time stands still,
        // which delays a deadline and never brings one forward.
        if rc != 0 {
            return self.start;
        }
        Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_goes_on_across_the_switch_to_the_vdso() {
        let clock = Clock::start();
        let mut last = Duration::ZERO;
        for _ in 0..2 * BY_SYSCALL {
            let now = clock.elapsed();
            assert!(now >= last, "{now:?} after {last:?}");
            last = now;
        }
        std::thread::sleep(Duration::from_millis(20));
        let slept = clock.elapsed() - last;
        assert!(slept >= Duration::from_millis(20) && slept < Duration::from_secs(5), "{slept:?}");
    }
}
