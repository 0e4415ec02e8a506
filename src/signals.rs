//! Signal numbers as shim reasons about them: names, parsing, and which class each belongs to
//! (stop, fault, job control, forwarded). Pure: nothing here sends or receives a signal.
//!
//! Signals are plain numbers wrapped in [`Sig`] rather than `nix::sys::signal::Signal`,
//! because that enum has no real-time signals and shim forwards those too.

use std::fmt;

/// A signal number, 1..=[`max`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sig(i32);

pub const SIGHUP: Sig = Sig(libc::SIGHUP);
pub const SIGINT: Sig = Sig(libc::SIGINT);
pub const SIGQUIT: Sig = Sig(libc::SIGQUIT);
pub const SIGKILL: Sig = Sig(libc::SIGKILL);
pub const SIGUSR1: Sig = Sig(libc::SIGUSR1);
pub const SIGTERM: Sig = Sig(libc::SIGTERM);
pub const SIGCHLD: Sig = Sig(libc::SIGCHLD);
pub const SIGCONT: Sig = Sig(libc::SIGCONT);
pub const SIGSTOP: Sig = Sig(libc::SIGSTOP);
pub const SIGTSTP: Sig = Sig(libc::SIGTSTP);
pub const SIGTTIN: Sig = Sig(libc::SIGTTIN);
pub const SIGTTOU: Sig = Sig(libc::SIGTTOU);
pub const SIGPIPE: Sig = Sig(libc::SIGPIPE);

/// Names of the classic signals, indexed by number. Real-time ones are named relative to
/// SIGRTMIN/SIGRTMAX as `kill -l` does.
const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Aliases accepted on input only.
const ALIASES: [(&str, i32); 3] = [("IOT", libc::SIGABRT), ("POLL", libc::SIGIO), ("CLD", libc::SIGCHLD)];

/// The highest signal number the kernel knows (64 on Linux).
pub fn max() -> i32 {
    libc::SIGRTMAX()
}

/// SIGRTMIN as glibc, bash's `kill -l` and Docker number it. The kernel's first real-time
/// signal is 32, and each libc reserves a few for itself (glibc 2, musl 3), but names are for
/// the people and tools sending them, and those agree on 34.
fn rtmin() -> i32 {
    34
}

impl Sig {
    /// A signal from its number, if it is one.
    pub fn new(n: i32) -> Option<Sig> {
        (1..=max()).contains(&n).then_some(Sig(n))
    }

    pub fn number(self) -> i32 {
        self.0
    }

    /// Every signal a process can catch or block: all but SIGKILL and SIGSTOP.
    pub fn catchable() -> impl Iterator<Item = Sig> {
        (1..=max()).map(Sig).filter(|s| *s != SIGKILL && *s != SIGSTOP)
    }

    /// The signals that begin a stop (the contract's "Stopping").
    pub fn is_stop(self) -> bool {
        matches!(self.0, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
    }

    /// Synchronous fault signals: sent to shim they mean nothing to the program, so they are
    /// not forwarded (the contract's "Running").
    pub fn is_fault(self) -> bool {
        matches!(
            self.0,
            libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP | libc::SIGSYS | libc::SIGABRT
        )
    }

    /// The terminal job-control signals.
    pub fn is_job_control(self) -> bool {
        matches!(self.0, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
    }

    /// Parse `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+3`, `SIGRTMAX-1`.
    pub fn parse(text: &str) -> Result<Sig, String> {
        let bad = || format!("unknown signal '{text}' (try TERM, SIGUSR1, 15 or RTMIN+2)");
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if name.bytes().all(|b| b.is_ascii_digit()) {
            return name.parse::<i32>().ok().and_then(Sig::new).ok_or_else(bad);
        }
        if let Some(&(_, n)) = NAMES.iter().chain(ALIASES.iter()).find(|(nm, _)| *nm == name) {
            return Ok(Sig(n));
        }
        let rt = |rest: &str, base: i32, sign: i32| -> Option<Sig> {
            let offset = if rest.is_empty() {
                0
            } else {
                rest.strip_prefix(if sign > 0 { '+' } else { '-' })?.parse::<i32>().ok()?
            };
            let n = base.checked_add(sign.checked_mul(offset)?)?;
            (rtmin()..=max()).contains(&n).then_some(Sig(n))
        };
        let found = if let Some(rest) = name.strip_prefix("RTMIN") {
            rt(rest, rtmin(), 1)
        } else if let Some(rest) = name.strip_prefix("RTMAX") {
            rt(rest, max(), -1)
        } else {
            None
        };
        found.ok_or_else(bad)
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == self.0) {
            return write!(f, "SIG{name}");
        }
        let (min, max) = (rtmin(), max());
        if self.0 >= min && self.0 - min <= max - self.0 {
            match self.0 - min {
                0 => write!(f, "SIGRTMIN"),
                d => write!(f, "SIGRTMIN+{d}"),
            }
        } else if self.0 >= min && self.0 <= max {
            match max - self.0 {
                0 => write!(f, "SIGRTMAX"),
                d => write!(f, "SIGRTMAX-{d}"),
            }
        } else {
            write!(f, "SIG{}", self.0)
        }
    }
}

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}({})", self.0)
    }
}

/// What `--map-signal` makes of one received signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Forwarded as it is.
    Keep,
    /// Forwarded as another signal.
    To(Sig),
    /// Not forwarded at all (`FROM:0`).
    Drop,
}

/// What `--map-signal FROM:TO` makes of received signals: each is forwarded as itself,
/// as another signal, or not at all (`TO` = 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMap {
    /// Indexed by signal number.
    table: Vec<Mapping>,
}

impl Default for SignalMap {
    fn default() -> Self {
        SignalMap { table: vec![Mapping::Keep; max() as usize + 1] }
    }
}

impl SignalMap {
    /// What to send for a received `sig`; `None` drops it.
    pub fn apply(&self, sig: Sig) -> Option<Sig> {
        match self.table.get(sig.0 as usize).copied().unwrap_or(Mapping::Keep) {
            Mapping::Keep => Some(sig),
            Mapping::To(to) => Some(to),
            Mapping::Drop => None,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.table.iter().all(|m| *m == Mapping::Keep)
    }

    /// Add `FROM:TO`, e.g. `TERM:QUIT`, `SIGHUP:0`, `15:3`. A later entry for the same FROM wins.
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let (from, to) =
            entry.split_once(':').ok_or_else(|| format!("'{entry}' is not FROM:TO (try TERM:QUIT or HUP:0)"))?;
        let from = Sig::parse(from).map_err(|e| format!("'{entry}': {e}"))?;
        if from == SIGKILL || from == SIGSTOP || from == SIGCHLD {
            return Err(format!("'{entry}': {from} cannot be mapped"));
        }
        if from.is_fault() {
            return Err(format!("'{entry}': {from} is a fault signal, never forwarded, so it cannot be mapped"));
        }
        let to =
            if to == "0" { Mapping::Drop } else { Mapping::To(Sig::parse(to).map_err(|e| format!("'{entry}': {e}"))?) };
        if to == Mapping::To(SIGSTOP) {
            return Err(format!("'{entry}': mapping to SIGSTOP would freeze the program for good; use TSTP"));
        }
        self.table[from.0 as usize] = to;
        Ok(())
    }
}

/// A signal as the kernel handed it over: its number, `si_code`, and `si_pid` where the code
/// says a process sent it (0 otherwise). Raw facts; [`Origin::of`] says what they mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub sig: Sig,
    pub code: i32,
    pub pid: i32,
}

/// Who sent a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Another process, by kill(2), sigqueue(3) or tgkill(2).
    Process(i32),
    /// The terminal driver, for a key (Ctrl-C, Ctrl-\, Ctrl-Z), sent to shim's own group.
    Keyboard,
    /// A key typed at the terminal, which sent it to the program's group (the foreground
    /// one): shim hears of it from its key watch, and the program has it already.
    ProgramKeyboard,
    /// The kernel for any other reason: a hangup, a window resize, a CPU limit, a timer.
    Kernel,
    /// shim itself: a SIGPIPE from writing to a closed stderr, say.
    Shim,
}

impl Origin {
    /// Classify `r`, received by the process `own`; `keyboard` is the key watch, the process
    /// that passes on what the terminal sends to the program's group, if there is one.
    pub fn of(r: Received, own: i32, keyboard: Option<i32>) -> Origin {
        // si_code <= 0 (SI_USER, SI_QUEUE, SI_TKILL...) is a process; then si_pid names it.
        if r.code <= 0 {
            return match r.pid {
                pid if pid == own => Origin::Shim,
                pid if Some(pid) == keyboard && pid > 0 => Origin::ProgramKeyboard,
                pid => Origin::Process(pid),
            };
        }
        // SI_KERNEL is the kernel itself. The terminal driver sends the keys' signals so, but
        // also a hangup's SIGHUP and SIGWINCH; only INT, QUIT and TSTP can be keys.
        let key = matches!(r.sig.0, libc::SIGINT | libc::SIGQUIT | libc::SIGTSTP);
        if r.code == libc::SI_KERNEL && key {
            Origin::Keyboard
        } else {
            Origin::Kernel
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Process(pid) => write!(f, "from pid {pid}"),
            Origin::Keyboard => f.write_str("from the terminal"),
            Origin::ProgramKeyboard => f.write_str("from the terminal, to the program's group"),
            Origin::Kernel => f.write_str("from the kernel"),
            Origin::Shim => f.write_str("from shim itself"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_rewrites_drops_or_keeps() {
        let mut m = SignalMap::default();
        assert!(m.is_identity());
        m.add("TERM:QUIT").unwrap();
        m.add("SIGHUP:0").unwrap();
        m.add("10:12").unwrap();
        assert_eq!(m.apply(SIGTERM), Some(SIGQUIT));
        assert_eq!(m.apply(SIGHUP), None);
        assert_eq!(m.apply(SIGUSR1).map(Sig::number), Some(12));
        assert_eq!(m.apply(SIGINT), Some(SIGINT));
        m.add("TERM:TERM").unwrap();
        assert_eq!(m.apply(SIGTERM), Some(SIGTERM), "the later entry wins");
    }

    #[test]
    fn a_bad_map_names_the_bad_part() {
        let mut m = SignalMap::default();
        for (bad, part) in [
            ("TERM", "'TERM' is not FROM:TO"),
            ("TERM:", "'TERM:': unknown signal ''"),
            ("NOPE:QUIT", "'NOPE:QUIT': unknown signal 'NOPE'"),
            ("TERM:NOPE", "'TERM:NOPE': unknown signal 'NOPE'"),
            ("KILL:TERM", "SIGKILL cannot be mapped"),
            ("CHLD:TERM", "SIGCHLD cannot be mapped"),
            ("TERM:STOP", "freeze"),
            ("SEGV:USR1", "SIGSEGV is a fault signal"),
            ("BUS:0", "SIGBUS is a fault signal"),
        ] {
            let e = m.add(bad).unwrap_err();
            assert!(e.contains(part), "{bad}: {e}");
        }
        assert!(m.is_identity(), "a failed add changes nothing");
    }

    #[test]
    fn parses_names_numbers_and_prefixes() {
        assert_eq!(Sig::parse("TERM"), Ok(SIGTERM));
        assert_eq!(Sig::parse("SIGTERM"), Ok(SIGTERM));
        assert_eq!(Sig::parse("sigterm"), Ok(SIGTERM));
        assert_eq!(Sig::parse("15"), Ok(SIGTERM));
        assert_eq!(Sig::parse("SIG15"), Ok(SIGTERM));
        assert_eq!(Sig::parse("32").map(Sig::number), Ok(32));
        assert_eq!(Sig::parse("USR1"), Ok(SIGUSR1));
        assert_eq!(Sig::parse("IOT").map(Sig::number), Ok(libc::SIGABRT));
    }

    #[test]
    fn parses_real_time_relative_names() {
        assert_eq!(Sig::parse("RTMIN").map(Sig::number), Ok(34));
        assert_eq!(Sig::parse("SIGRTMIN+3").map(Sig::number), Ok(rtmin() + 3));
        assert_eq!(Sig::parse("RTMAX-1").map(Sig::number), Ok(max() - 1));
        assert_eq!(Sig::parse("RTMAX").map(Sig::number), Ok(max()));
    }

    #[test]
    fn rejects_what_is_not_a_signal() {
        for bad in ["", "0", "65", "-1", "TERMX", "RTMIN+99", "RTMAX+1", "RTMIN-1", "RTMIN3", "SIG", "+15", "SIG-1"] {
            assert!(Sig::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn names_round_trip() {
        for sig in (1..=max()).filter_map(Sig::new) {
            assert_eq!(Sig::parse(&sig.to_string()), Ok(sig), "{sig:?}");
        }
    }

    #[test]
    fn classes() {
        assert!(SIGTERM.is_stop() && SIGINT.is_stop() && SIGQUIT.is_stop());
        assert!(!SIGHUP.is_stop());
        assert!(Sig::parse("SEGV").unwrap().is_fault());
        assert!(!SIGUSR1.is_fault());
        assert!(SIGTSTP.is_job_control() && !SIGCONT.is_job_control());
        let catchable: Vec<_> = Sig::catchable().collect();
        assert!(!catchable.contains(&SIGKILL) && !catchable.contains(&SIGSTOP));
        assert_eq!(catchable.len() as i32, max() - 2);
    }

    fn got(sig: Sig, code: i32, pid: i32) -> Origin {
        Origin::of(Received { sig, code, pid }, 100, Some(200))
    }

    #[test]
    fn origins_from_si_code_and_si_pid() {
        const SI_USER: i32 = 0;
        const SI_QUEUE: i32 = -1;
        const SI_TKILL: i32 = -6;
        assert_eq!(got(SIGTERM, SI_USER, 42), Origin::Process(42));
        assert_eq!(got(SIGTERM, SI_QUEUE, 42), Origin::Process(42));
        assert_eq!(got(SIGTERM, SI_TKILL, 42), Origin::Process(42));
        assert_eq!(got(SIGPIPE, SI_USER, 100), Origin::Shim);
        assert_eq!(got(SIGPIPE, SI_TKILL, 100), Origin::Shim);
        assert_eq!(got(SIGINT, SI_USER, 200), Origin::ProgramKeyboard, "passed on by the key watch");
        for key in [SIGINT, SIGQUIT, SIGTSTP] {
            assert_eq!(got(key, libc::SI_KERNEL, 0), Origin::Keyboard, "{key}");
        }
        // The terminal's hangup, a resize, a CPU limit: the kernel, not a key.
        for sig in [SIGHUP, Sig::parse("WINCH").unwrap(), Sig::parse("XCPU").unwrap(), SIGTERM] {
            assert_eq!(got(sig, libc::SI_KERNEL, 0), Origin::Kernel, "{sig}");
        }
        // A timer's or an I/O signal's own codes.
        assert_eq!(got(Sig::parse("ALRM").unwrap(), 1, 0), Origin::Kernel);
    }

    #[test]
    fn origins_read_well_in_a_log_line() {
        assert_eq!(Origin::Process(7).to_string(), "from pid 7");
        assert_eq!(Origin::Keyboard.to_string(), "from the terminal");
        assert_eq!(Origin::Kernel.to_string(), "from the kernel");
    }
}
