//! What the process is handed at start, read straight from where the C runtime keeps it: the
//! arguments `main` gets, the environment, and the three standard descriptors.
//!
//! The binary is `no_main`, so Rust's runtime set-up never runs, and these replace the parts
//! of it shim needs: on musl that set-up is also what would fill `std::env::args` (empty
//! without it), and what opens `/dev/null` on a standard descriptor that is closed.
//! `std::env::var_os` would work, but takes a lock and copies the name for every variable
//! looked up, then scans the whole environment for it. shim looks up eight `SHIM_*` variables
//! on every start, mostly not set, in an environment that can hold hundreds (Kubernetes sets
//! a few per Service): [`Environment`] finds the `SHIM_*` ones in one pass, and each lookup
//! searches only those.

use std::ffi::{c_char, c_int, CStr, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;

use super::environ;

/// The arguments `main` was given, `argv[0]` first, lent where the kernel put them: the
/// parser copies only the program's words.
pub struct Args {
    argv: *const *const c_char,
    next: usize,
    count: usize,
}

/// The arguments `main` was given.
///
/// # Safety
/// `argv` must hold `argc` pointers to NUL-terminated strings, as the C runtime passes them to
/// `main`, and they must stay there, unchanged, for the rest of the process (as main's do:
/// nothing in shim writes to them).
pub unsafe fn args(argc: c_int, argv: *const *const c_char) -> Args {
    Args { argv, next: 0, count: usize::try_from(argc).unwrap_or(0) }
}

impl Args {
    /// Argument `i`, if there is one.
    fn get(&self, i: usize) -> Option<&'static OsStr> {
        if i >= self.count {
            return None;
        }
        // SAFETY: i < argc, so `args` guarantees the pointer is there, and its string for the
        // rest of the process.
        let arg = unsafe { *self.argv.add(i) };
        // SAFETY: as above; a NULL stands for no argument.
        (!arg.is_null()).then(|| OsStr::from_bytes(unsafe { CStr::from_ptr(arg) }.to_bytes()))
    }

    /// The name shim was run as (`argv[0]`), or an empty one.
    pub fn name(&self) -> &OsStr {
        self.get(0).unwrap_or_default()
    }
}

impl Iterator for Args {
    type Item = &'static OsStr;

    fn next(&mut self) -> Option<&'static OsStr> {
        let arg = self.get(self.next)?;
        self.next += 1;
        Some(arg)
    }

    fn nth(&mut self, n: usize) -> Option<&'static OsStr> {
        self.next = self.next.saturating_add(n).min(self.count);
        self.next()
    }

    /// Exact: argv holds argc strings (a NULL among them would end it early, and `collect`
    /// and `extend` only reserve too much then).
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.next;
        (left, Some(left))
    }
}

/// The value of the environment variable `name` (the first entry for it, as getenv(3) finds),
/// or `None` if it is not set. `name` holds neither `=` nor a NUL byte.
pub fn env_var(name: &str) -> Option<OsString> {
    let name = name.as_bytes();
    // SAFETY: each entry is a NUL-terminated string from environ.
    entries().find_map(|text| unsafe { value_after(text, name) }).map(|v| OsString::from_vec(v.to_vec()))
}

/// Every entry of environ, in order.
fn entries() -> impl Iterator<Item = *const c_char> {
    // SAFETY: environ is libc's NULL-terminated array of NUL-terminated strings, set up before
    // main; shim never changes its environment, and reads it from its one thread.
    let mut entry = unsafe { environ };
    std::iter::from_fn(move || {
        if entry.is_null() {
            return None;
        }
        // SAFETY: `entry` points into environ, at or before its terminating NULL.
        let text = unsafe { *entry };
        if text.is_null() {
            return None;
        }
        // SAFETY: the entry was not the terminating NULL, so the next one is still in environ.
        entry = unsafe { entry.add(1) };
        Some(text)
    })
}

/// The prefix of shim's own variables.
const PREFIX: &str = "SHIM_";
/// More `SHIM_*` variables than shim has (eight) are looked up the slow way.
const MAX_OWN: usize = 8;

/// The environment as it was at start, with shim's own variables found.
pub struct Environment {
    /// The entries that start with `SHIM_`, in environ's order.
    own: [*const c_char; MAX_OWN],
    count: usize,
    /// There were more than MAX_OWN of them.
    overflow: bool,
}

impl Environment {
    /// One pass over environ, which stops within each entry at the first byte that is not
    /// `SHIM_`'s.
    pub fn read() -> Environment {
        Environment::of(entries())
    }

    /// From `entries`, each a NUL-terminated string that lives as long as the process.
    fn of(entries: impl Iterator<Item = *const c_char>) -> Environment {
        let mut env = Environment { own: [std::ptr::null(); MAX_OWN], count: 0, overflow: false };
        // SAFETY: each entry is a NUL-terminated string, as `of` requires.
        for text in entries.filter(|&text| unsafe { starts_with(text, PREFIX.as_bytes()) }) {
            match env.own.get_mut(env.count) {
                Some(slot) => *slot = text,
                None => env.overflow = true,
            }
            env.count += 1;
        }
        env
    }

    /// The value of `name`, as [`env_var`] finds it. The parser asks for each of shim's
    /// variables, mostly not set, so the answer for one of them when none is set is inlined
    /// into it: a call costs more than that answer.
    #[inline]
    pub fn var(&self, name: &str) -> Option<OsString> {
        // A pattern, not `str::starts_with`, which calls memcmp for five bytes.
        let own = matches!(name.as_bytes(), [b'S', b'H', b'I', b'M', b'_', ..]);
        if own && self.count == 0 {
            return None;
        }
        self.search(name, own)
    }

    #[inline(never)]
    fn search(&self, name: &str, own: bool) -> Option<OsString> {
        if !own || self.overflow {
            return env_var(name);
        }
        let own = &self.own[..self.count];
        // SAFETY: each is a NUL-terminated string from environ, which never changes.
        own.iter()
            .find_map(|&text| unsafe { value_after(text, name.as_bytes()) })
            .map(|v| OsString::from_vec(v.to_vec()))
    }
}

/// Whether the NUL-terminated `text` starts with `prefix`, which holds no NUL.
///
/// # Safety
/// `text` must be a NUL-terminated string. The bytes compared stop at the first that differs
/// from `prefix`, and `prefix` holds no NUL, so none past the NUL is read.
unsafe fn starts_with(text: *const c_char, prefix: &[u8]) -> bool {
    // SAFETY: every byte before i matched a non-NUL byte of `prefix`, so the string goes on.
    prefix.iter().enumerate().all(|(i, &b)| unsafe { *text.add(i) } as u8 == b)
}

/// What follows `name=` in the NUL-terminated `text`, if it starts with that.
///
/// # Safety
/// As [`starts_with`]; `name` holds neither NUL nor `=`.
unsafe fn value_after<'a>(text: *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    // SAFETY: the caller's guarantee; after a match the string has at least `name.len()`
    // bytes and then this one (its NUL at the least).
    if !unsafe { starts_with(text, name) } || unsafe { *text.add(name.len()) } as u8 != b'=' {
        return None;
    }
    // SAFETY: the rest of the string, after the `=`, up to its NUL.
    Some(unsafe { CStr::from_ptr(text.add(name.len() + 1)) }.to_bytes())
}

/// Open `/dev/null` on each of stdin, stdout and stderr that is closed, as Rust's runtime
/// would have. Otherwise the next descriptor shim opens would take that number, shim's log
/// lines could land in it, and the program would inherit it as its stdin, stdout or stderr.
/// One poll(2) tells which are closed (POLLNVAL).
pub fn open_standard_fds() -> Result<(), Errno> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    loop {
        // SAFETY: poll reads and writes the three live pollfds, and waits not at all.
        match unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) } {
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()),
            _ => break,
        }
    }
    for pfd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // The lowest free descriptor is taken, and the lower ones are open by now: this one.
        // SAFETY: a constant NUL-terminated path; the descriptor is the process's for good.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd != pfd.fd {
            return Err(if fd < 0 { Errno::last() } else { Errno::EBADF });
        }
    }
    Ok(())
}

/// Exit with `code` at once, through _exit(2): without Rust's runtime clean-up, the other
/// half of what `no_main` leaves out, and without the C library's exit(3), which runs exit
/// handlers and flushes its stdio. shim registers no handler and never writes through the C
/// library's stdio (log lines go to stderr unbuffered, and `--help` flushes what it prints),
/// while that flush walks a list of open files that lies on a page nothing else touches: one
/// more page fault, on every exit.
pub fn exit_process(code: u8) -> ! {
    // SAFETY: _exit ends the process and takes a plain number; the process has one thread.
    unsafe { libc::_exit(code.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_is_found_only_by_its_whole_name() {
        // The unit tests' own environment: cargo sets CARGO_PKG_NAME for them.
        assert_eq!(env_var("CARGO_PKG_NAME"), std::env::var_os("CARGO_PKG_NAME"));
        assert_eq!(env_var("CARGO_PKG_NAM"), None);
        assert_eq!(env_var("SHIM_SURELY_NOT_SET_ANYWHERE"), None);
    }

    #[test]
    fn shims_own_variables_are_found_as_any_other() {
        let env = Environment::read();
        // The tests run with whatever SHIM_* the caller set; none is made up here, as the
        // environment of a threaded test binary must not be changed.
        for name in ["SHIM_GRACE", "SHIM_VERBOSE", "SHIM_SURELY_NOT_SET_ANYWHERE", "CARGO_PKG_NAME", "PATH"] {
            assert_eq!(env.var(name), std::env::var_os(name), "{name}");
        }
    }

    #[test]
    fn the_first_entry_for_a_name_wins_and_only_whole_names_match() {
        let entries = [c"PATH=/bin", c"SHIM_GRACE=5s", c"SHIM_GRACEFUL=no", c"SHIM_GRACE=6s", c"SHIM_VERBOSE"];
        let env = Environment::of(entries.iter().map(|e| e.as_ptr()));
        assert_eq!((env.count, env.overflow), (4, false));
        assert_eq!(env.var("SHIM_GRACE"), Some("5s".into()));
        assert_eq!(env.var("SHIM_GRACEFUL"), Some("no".into()));
        assert_eq!(env.var("SHIM_VERBOSE"), None, "an entry without '=' sets nothing");
        assert_eq!(env.var("SHIM_GRAC"), None);
    }

    #[test]
    fn a_value_follows_the_first_equals_sign() {
        let text = c"NAME=a=b";
        // SAFETY: a NUL-terminated literal.
        unsafe {
            assert_eq!(value_after(text.as_ptr(), b"NAME"), Some(&b"a=b"[..]));
            assert_eq!(value_after(text.as_ptr(), b"NAM"), None);
            assert_eq!(value_after(text.as_ptr(), b"NAMES"), None);
            assert_eq!(value_after(c"NAME=".as_ptr(), b"NAME"), Some(&b""[..]));
            assert_eq!(value_after(c"NAME".as_ptr(), b"NAME"), None);
        }
    }

    #[test]
    fn arguments_are_read_as_main_gets_them() {
        let words = [c"shim", c"--", c"caf\xc3\xa9"];
        let argv: Vec<*const c_char> = words.iter().map(|w| w.as_ptr()).chain([std::ptr::null()]).collect();
        // SAFETY: three NUL-terminated strings, then the NULL main's argv ends with; `words`
        // are static, and `argv` outlives every Args made here.
        let all = || unsafe { args(3, argv.as_ptr()) };
        assert_eq!(all().name(), "shim");
        assert_eq!(all().collect::<Vec<_>>(), ["shim", "--", "caf\u{e9}"]);
        assert_eq!(all().skip(1).collect::<Vec<_>>(), ["--", "caf\u{e9}"]);
        assert_eq!(all().nth(5), None);
        // SAFETY: argc 0 reads nothing.
        let none = unsafe { args(0, argv.as_ptr()) };
        assert_eq!(none.name(), "");
        assert_eq!(none.count(), 0);
    }
}
