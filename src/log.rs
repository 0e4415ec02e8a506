//! shim's own log lines on stderr: one `shim: ...` line per event, each in a single
//! unbuffered write so a SIGKILL right after loses nothing (the contract's "Logs"). No logging framework:
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

/// Write `bytes` to stderr as they are, in one write (the usage error, before logging is set).
pub fn write_raw(bytes: &[u8]) {
    // Nowhere left to report a failure to.
    let _ = crate::sys::write_stderr(bytes);
}

/// A command line for a log line: `'word word'`, with anything that could break the line or
/// fool a reader escaped (`\n`, `\t`, `\xNN` for other control bytes and bytes that are not
/// UTF-8), so that every event stays one line.
pub struct Words<'a>(pub &'a [std::ffi::OsString]);

impl fmt::Display for Words<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::unix::ffi::OsStrExt;
        f.write_str("'")?;
        for (i, word) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            escape(word.as_bytes(), f)?;
        }
        f.write_str("'")
    }
}

fn escape(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                c => f.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn words_stay_on_one_line() {
        let words = [
            OsString::from("echo"),
            OsString::from("a\nb\tc\\d\u{7f}\u{1b}[31m"),
            OsString::from_vec(vec![b'x', 0xff]),
        ];
        assert_eq!(Words(&words).to_string(), r"'echo a\nb\tc\\d\x7f\x1b[31m x\xff'");
        assert_eq!(Words(&[OsString::from("caf\u{e9}")]).to_string(), "'caf\u{e9}'");
    }
}
