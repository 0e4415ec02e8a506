//! shim's own log lines on stderr: one `shim: ...` line per event, each in a single
//! unbuffered write so a SIGKILL right after loses nothing (SPEC §6). No logging framework:
//! a level and a fixed buffer are all it takes.

use std::fmt::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// 0: warnings and errors only; 1: lifecycle; 2: every signal and reap; 3: debug.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

/// Longer lines are cut: a log line must never allocate or fail.
const MAX_LINE: usize = 1024;

struct Line {
    buf: [u8; MAX_LINE],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep room for the newline.
        let room = MAX_LINE - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Set once stderr is gone. Each write to a broken pipe also raises SIGPIPE at shim; were it
/// to keep logging, every log line would cause another wake-up, and a log line about that
/// wake-up another: a loop that would spin PID 1 forever.
static GONE: AtomicBool = AtomicBool::new(false);

/// Write `shim: <args>` as one line.
pub fn line(args: fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut line = Line { buf: [0; MAX_LINE], len: 0 };
    let _ = line.write_str("shim: ");
    let _ = line.write_fmt(args);
    line.buf[line.len] = b'\n';
    if crate::sys::write_stderr(&line.buf[..=line.len]) == crate::sys::Stderr::Gone {
        GONE.store(true, Ordering::Relaxed);
    }
}

/// A warning or error: always shown.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line(format_args!($($arg)*)) };
}

/// A line shown at verbosity `$level` and above.
#[macro_export]
macro_rules! info {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::line(format_args!($($arg)*))
        }
    };
}
