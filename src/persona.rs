//! Called by a peer's name, shim takes that peer's command line, so that copying shim over
//! `/usr/bin/tini`, `/sbin/docker-init` or `/usr/bin/dumb-init` upgrades an image without
//! editing it.
//!
//! This module only translates: from the name shim was run as, it turns the peer's arguments
//! and variables into shim's own command line, which [`crate::config::parse`] then reads as
//! usual (so every `SHIM_*` variable still applies), or into a text to print and a code to
//! exit with (help, version, license, the peer's usage errors). The stop stays shim's: wait
//! for the whole tree, then SIGKILL what is left when the grace period ends. Pure but for
//! [`Done::exit`].

mod dumb_init;
mod tini;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config;
use crate::duration;

/// Whose command line shim speaks, from the name it was run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persona {
    Shim,
    /// `tini`, its release names (`tini-static`, `tini-amd64`, ...), and Docker's copy of it,
    /// `docker-init`.
    Tini,
    /// `dumb-init`, and its release names (`dumb-init_1.2.5_x86_64`).
    DumbInit,
}

impl Persona {
    /// The persona for `argv0`, by its last path component.
    pub fn from_name(argv0: &OsStr) -> Persona {
        let name = Path::new(argv0).file_name().map_or(&[][..], OsStrExt::as_bytes);
        match name {
            b"tini" | b"docker-init" => Persona::Tini,
            b"dumb-init" => Persona::DumbInit,
            n if n.starts_with(b"tini-") => Persona::Tini,
            n if n.starts_with(b"dumb-init_") => Persona::DumbInit,
            _ => Persona::Shim,
        }
    }
}

/// Where a text goes: each peer prints its help and version where it always has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Nothing to run: a text to print, and the code to exit with.
#[derive(Debug, PartialEq, Eq)]
pub struct Done {
    pub text: String,
    pub stream: Stream,
    pub code: u8,
}

/// tini and dumb-init both exit 1 on a bad command line.
const PEER_USAGE: u8 = 1;

impl Done {
    fn print(stream: Stream, text: String) -> Done {
        Done { text, stream, code: 0 }
    }

    /// A usage error as the peer `name` exits with it, worded as shim words its own: one line
    /// saying what is wrong, then the usage line.
    fn usage(name: &str, usage: &str, what: impl std::fmt::Display) -> Done {
        let text = format!("shim: as {name}: {what}\nusage: {name} {usage}\n");
        Done { text, stream: Stream::Stderr, code: PEER_USAGE }
    }

    /// Print the text and exit: the one thing here that touches the process.
    pub fn exit(self) -> ! {
        let written = match self.stream {
            Stream::Stdout => {
                std::io::stdout().write_all(self.text.as_bytes()).and_then(|()| std::io::stdout().flush())
            }
            Stream::Stderr => std::io::stderr().write_all(self.text.as_bytes()),
        };
        // Exiting anyway: a closed stdout or stderr changes nothing, and is no reason to panic.
        drop(written);
        std::process::exit(self.code.into())
    }
}

/// shim's own command line as a translation builds it.
#[derive(Debug, Default, PartialEq, Eq)]
struct ShimArgs {
    options: Vec<OsString>,
    program: Vec<OsString>,
}

impl ShimArgs {
    fn flag(&mut self, flag: &str) {
        self.options.push(flag.into());
    }

    fn option(&mut self, name: &str, value: impl Into<OsString>) {
        self.options.push(name.into());
        self.options.push(value.into());
    }

    /// `-v` as often as `level` says; none leaves `SHIM_VERBOSE` in charge.
    fn verbosity(&mut self, level: u8) {
        for _ in 0..level {
            self.flag("-v");
        }
    }

    /// `argv0 OPTIONS -- PROGRAM ARGS`: after `--` every word is the program's.
    fn into_args(self, argv0: OsString) -> Vec<OsString> {
        let mut args = vec![argv0];
        args.extend(self.options);
        args.push("--".into());
        args.extend(self.program);
        args
    }
}

/// Translate `args` (with `args[0]` the name shim was run as) and the peer's variables into
/// shim's own command line; called by no peer's name, `args` come back as they are.
pub fn translate<I, E>(args: I, env: E) -> Result<Vec<OsString>, Done>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.is_empty() {
        return Ok(args);
    }
    let argv0 = args.remove(0);
    let persona = Persona::from_name(&argv0);
    // Messages and usage lines use the name as called (`docker-init`, not `tini`).
    let name = Path::new(&argv0).file_name().unwrap_or_default().to_string_lossy().into_owned();
    let shim = match persona {
        Persona::Shim => {
            args.insert(0, argv0);
            return Ok(args);
        }
        Persona::Tini => tini::translate(&name, &args, &env)?,
        Persona::DumbInit => dumb_init::translate(&name, &args, &env)?,
    };
    Ok(shim.into_args(argv0))
}

/// The paragraph every persona's help opens with.
fn about(name: &str, peer: &str) -> String {
    format!(
        "shim, called as {name}: {peer}'s command line, shim's stop.
On SIGTERM shim waits for every process, then SIGKILLs what is left when the
grace period ends (SHIM_GRACE, {grace} by default); every SHIM_* variable applies.
",
        grace = duration::display(config::DEFAULT_GRACE),
    )
}

fn version(stream: Stream) -> Done {
    Done::print(stream, config::version())
}

fn license() -> Done {
    Done::print(Stream::Stdout, format!("shim is licensed under {}.\n", env!("CARGO_PKG_LICENSE")))
}

/// The integer at the start of `text` as C's `strtol` finds it (and so `atoi` and `sscanf`'s
/// `%d`): blanks, a sign, at least one digit, saturating far beyond any value the peers take;
/// and what follows it.
fn c_integer(text: &str) -> Option<(i64, &str)> {
    let text = text.trim_start_matches(|c: char| matches!(c, ' ' | '\t'..='\r'));
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let len = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    let value = unsigned[..len].bytes().fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')));
    Some((if negative { -value } else { value }, &unsigned[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_name_picks_the_persona() {
        for (name, want) in [
            ("tini", Persona::Tini),
            ("/usr/bin/tini", Persona::Tini),
            ("/tini", Persona::Tini),
            ("tini-static", Persona::Tini),
            ("/usr/local/bin/tini-static-amd64", Persona::Tini),
            ("/sbin/docker-init", Persona::Tini),
            ("dumb-init", Persona::DumbInit),
            ("/usr/bin/dumb-init", Persona::DumbInit),
            ("dumb-init_1.2.5_x86_64", Persona::DumbInit),
            ("shim", Persona::Shim),
            ("/shim", Persona::Shim),
            ("tiny", Persona::Shim),
            ("tini.sh", Persona::Shim),
            ("/usr/bin/tini/..", Persona::Shim),
            ("catatonit", Persona::Shim),
            ("", Persona::Shim),
        ] {
            assert_eq!(Persona::from_name(OsStr::new(name)), want, "{name}");
        }
    }

    #[test]
    fn under_its_own_name_shim_is_shim() {
        let args = os(&["/shim", "-l", "-e", "143", "prog"]);
        assert_eq!(translate(args.clone(), |_| Some("1".into())), Ok(args));
        assert_eq!(translate(Vec::new(), |_| None), Ok(Vec::new()));
    }

    #[test]
    fn the_translation_is_shims_command_line() {
        let got = translate(os(&["/usr/bin/tini", "-e", "143", "--", "prog", "-v"]), |_| None).unwrap();
        assert_eq!(got, os(&["/usr/bin/tini", "--success-exit", "143", "--", "prog", "-v"]));
        match config::parse(got, |_| None).unwrap() {
            config::Command::Run(c) => {
                assert_eq!(c.program, os(&["prog", "-v"]));
                assert_eq!(c.success.apply(crate::exit::ExitCode(143)), crate::exit::ExitCode(0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shims_variables_still_apply_under_a_peers_name() {
        let got = translate(os(&["dumb-init", "prog"]), |_| None).unwrap();
        let env = |name: &str| (name == "SHIM_GRACE").then(|| OsString::from("250ms"));
        match config::parse(got, env).unwrap() {
            config::Command::Run(c) => assert_eq!(c.grace, std::time::Duration::from_millis(250)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn integers_as_c_reads_them() {
        assert_eq!(c_integer("42"), Some((42, "")));
        assert_eq!(c_integer(" \t\n\x0b\x0c\r+42:3"), Some((42, ":3")));
        assert_eq!(c_integer("-7x"), Some((-7, "x")));
        assert_eq!(c_integer("99999999999999999999999"), Some((i64::MAX, "")));
        for none in ["", " ", "+", "-", "x1", "+ 1"] {
            assert_eq!(c_integer(none), None, "{none:?}");
        }
    }

    #[test]
    fn help_texts_fit_a_terminal() {
        for (args, stream) in [(["tini", "-h"], Stream::Stdout), (["dumb-init", "--help"], Stream::Stderr)] {
            let done = translate(os(&args), |_| None).unwrap_err();
            assert_eq!((done.stream, done.code), (stream, 0));
            assert!(done.text.lines().all(|l| l.chars().count() <= 80), "{}", done.text);
            assert!(done.text.lines().count() <= 24, "{}", done.text);
        }
    }
}
