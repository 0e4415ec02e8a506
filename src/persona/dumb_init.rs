//! dumb-init's command line, read as dumb-init 1.2 reads it (`getopt_long` with `+hvVcr:`).
//!
//! - Options end at `--` or at the first word that is not one, as with shim; long options
//!   may be cut short while unambiguous (`--single`), and take `--rewrite=s:r` or
//!   `--rewrite s:r`.
//! - `-c`/`--single-child` and `DUMB_INIT_SETSID=0` are `--forward-to child`: dumb-init's
//!   default, like shim's, signals the program's whole group.
//! - `-r`/`--rewrite s:r` (signal numbers, `s` 1-31, `r` 0-31, read as `sscanf("%d:%d")`
//!   does; repeatable, the last for an `s` wins) is `--map-signal s:r`, and `r` = 0 drops.
//!   Rewrites that could change nothing are accepted and left out: of SIGKILL, SIGSTOP or
//!   SIGCHLD (no-ops in dumb-init too), of a fault signal (shim never forwards those), and of
//!   SIGTSTP, SIGTTIN or SIGTTOU to SIGSTOP (dumb-init's own default; shim has its own job
//!   control). Any other rewrite to SIGSTOP is refused: shim never sends it.
//! - `-v`/`--verbose` and `DUMB_INIT_DEBUG=1` log everything (`-vvv`).
//! - `-h`/`--help` and `-V`/`--version` print to stderr, as dumb-init does, and exit 0.
//! - Any other option, a bad value, or no program is dumb-init's usage error: exit 1.

use std::ffi::OsString;

use super::{about, c_integer, version, Done, ShimArgs, Stream};
use crate::signals::{Sig, SIGCHLD, SIGKILL, SIGSTOP};

const USAGE: &str = "[-cvhV] [-r s:r]... [--] PROGRAM [ARGS...]";

/// dumb-init rewrites the classic signals only.
const MAX_SIGNAL: i64 = 31;
/// shim's highest log level: dumb-init's debug output has every event.
const VERBOSE: u8 = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    SingleChild,
    Rewrite,
    Verbose,
    Version,
}

const LONG: [(&str, Opt); 5] = [
    ("help", Opt::Help),
    ("single-child", Opt::SingleChild),
    ("rewrite", Opt::Rewrite),
    ("verbose", Opt::Verbose),
    ("version", Opt::Version),
];

/// What the options asked for so far.
struct Asked {
    single_child: bool,
    verbose: bool,
    /// The rewrite of each signal, by number; 0 drops it.
    rewrites: [Option<i64>; MAX_SIGNAL as usize + 1],
}

impl Asked {
    /// Act on one option, `spelled` as given, with its value if it takes one.
    fn take(&mut self, name: &str, opt: Opt, spelled: &str, value: &str) -> Result<(), Done> {
        match opt {
            Opt::Help => return Err(Done::print(Stream::Stderr, help(name))),
            Opt::Version => return Err(version(Stream::Stderr)),
            Opt::SingleChild => self.single_child = true,
            Opt::Verbose => self.verbose = true,
            Opt::Rewrite => {
                let (from, to) = rewrite(value).ok_or_else(|| {
                    let what =
                        format!("{spelled}: '{value}' is not s:r, signal numbers, s from 1 to 31, r from 0 to 31");
                    Done::usage(name, USAGE, what)
                })?;
                self.rewrites[from as usize] = Some(to);
            }
        }
        Ok(())
    }
}

pub(super) fn translate(
    name: &str,
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<ShimArgs, Done> {
    let usage = |what: String| Done::usage(name, USAGE, what);
    let mut shim = ShimArgs::default();
    let mut asked = Asked { single_child: false, verbose: false, rewrites: [None; MAX_SIGNAL as usize + 1] };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(word.as_os_str());
        if bytes == b"--" {
            shim.program.extend(words.by_ref().cloned());
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            shim.program.push(word.clone());
            shim.program.extend(words.by_ref().cloned());
            break;
        }
        let Some(text) = word.to_str() else {
            return Err(usage(format!("unknown option '{}'", word.to_string_lossy())));
        };
        if let Some(long) = text.strip_prefix("--") {
            let (given, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let opt = long_option(given).map_err(usage)?;
            let spelled = format!("--{given}");
            let value = match (opt, inline) {
                (Opt::Rewrite, Some(v)) => v,
                (Opt::Rewrite, None) => next_value(&mut words, &spelled).map_err(usage)?,
                (_, Some(_)) => return Err(usage(format!("{spelled} takes no value"))),
                (_, None) => String::new(),
            };
            asked.take(name, opt, &spelled, &value)?;
            continue;
        }
        for (i, flag) in text.char_indices().skip(1) {
            let opt = match flag {
                'h' => Opt::Help,
                'c' => Opt::SingleChild,
                'r' => Opt::Rewrite,
                'v' => Opt::Verbose,
                'V' => Opt::Version,
                _ => return Err(usage(format!("unknown option '-{flag}'"))),
            };
            if opt != Opt::Rewrite {
                asked.take(name, opt, "", "")?;
                continue;
            }
            // `-r15:3` or `-r 15:3`: the rest of the word is the value, else the next word.
            let rest = &text[i + 1..];
            let value = if rest.is_empty() { next_value(&mut words, "-r").map_err(usage)? } else { rest.into() };
            asked.take(name, opt, "-r", &value)?;
            break;
        }
    }
    if shim.program.is_empty() {
        return Err(usage("no program to run".into()));
    }
    // Read after the options, as dumb-init does; they only ever add.
    let verbose = asked.verbose || env("DUMB_INIT_DEBUG").is_some_and(|v| v == "1");
    let single_child = asked.single_child || env("DUMB_INIT_SETSID").is_some_and(|v| v == "0");

    if verbose {
        shim.verbosity(VERBOSE);
    }
    if single_child {
        shim.option("--forward-to", "child");
    }
    for (from, to) in asked.rewrites.iter().enumerate().filter_map(|(from, to)| Some((from as i32, (*to)? as i32))) {
        // Both numbers are within 1..=31 (0 for `to`), which every Linux has.
        let Some(sig) = Sig::new(from) else { continue };
        let to_sig = Sig::new(to);
        if !has_effect(sig, to_sig) {
            continue;
        }
        if to_sig == Some(SIGSTOP) {
            let what = format!("-r {from}:{to}: shim never forwards SIGSTOP (it would freeze the program for good)");
            return Err(usage(what));
        }
        shim.option("--map-signal", format!("{from}:{to}"));
    }
    Ok(shim)
}

/// The long option `given` names, exactly or as the only one it begins.
fn long_option(given: &str) -> Result<Opt, String> {
    if let Some(&(_, opt)) = LONG.iter().find(|(n, _)| *n == given) {
        return Ok(opt);
    }
    let candidates: Vec<&(&str, Opt)> = LONG.iter().filter(|(n, _)| n.starts_with(given)).collect();
    match candidates[..] {
        [(_, opt)] if !given.is_empty() => Ok(*opt),
        [] => Err(format!("unknown option '--{given}'")),
        _ => {
            let names: Vec<String> = candidates.iter().map(|(n, _)| format!("--{n}")).collect();
            Err(format!("option '--{given}' is ambiguous ({})", names.join(", ")))
        }
    }
}

fn next_value<'a>(words: &mut impl Iterator<Item = &'a OsString>, spelled: &str) -> Result<String, String> {
    let word = words.next().ok_or_else(|| format!("{spelled} needs a value"))?;
    Ok(word.to_string_lossy().into_owned())
}

/// `s:r` as `sscanf("%d:%d")` reads it (blanks and a sign before each number, the colon right
/// after the first, anything after the second ignored), within dumb-init's ranges.
fn rewrite(text: &str) -> Option<(i64, i64)> {
    let (from, rest) = c_integer(text)?;
    let (to, _ignored) = c_integer(rest.strip_prefix(':')?)?;
    ((1..=MAX_SIGNAL).contains(&from) && (0..=MAX_SIGNAL).contains(&to)).then_some((from, to))
}

/// Whether rewriting `from` as `to` (`None`: dropped) could change what shim does.
fn has_effect(from: Sig, to: Option<Sig>) -> bool {
    // Never delivered to shim (KILL, STOP), or shim's own (CHLD).
    let never_forwarded = from == SIGKILL || from == SIGSTOP || from == SIGCHLD || from.is_fault();
    let dumb_inits_default = from.is_job_control() && to == Some(SIGSTOP);
    !never_forwarded && !dumb_inits_default
}

fn help(name: &str) -> String {
    format!(
        "{about}
usage: {name} {USAGE}

  -c, --single-child  forward signals to the program only, not its whole group
                      [DUMB_INIT_SETSID=0]
  -r, --rewrite s:r   forward signal number s as r; r = 0 drops it; repeatable
  -v, --verbose       log every event [DUMB_INIT_DEBUG=1]
  -h, --help          print this help;  -V, --version  print the version
",
        about = about(name, "dumb-init"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::os;
    use super::super::translate as full;
    use super::*;

    fn run(words: &[&str], env: &[(&str, &str)]) -> Result<Vec<OsString>, Done> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v));
        full(os(&[&["/usr/bin/dumb-init"], words].concat()), lookup)
    }

    fn shim(words: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let args = run(words, env).unwrap_or_else(|d| panic!("{words:?}: {}", d.text));
        args[1..].iter().map(|w| w.to_string_lossy().into_owned()).collect()
    }

    fn error(words: &[&str]) -> String {
        let done = run(words, &[]).expect_err("a usage error");
        assert_eq!((done.stream, done.code), (Stream::Stderr, 1), "{words:?}");
        let lines: Vec<&str> = done.text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", done.text);
        assert!(lines[1].starts_with("usage: dumb-init [-cvhV]"), "{}", done.text);
        lines[0].to_string()
    }

    #[test]
    fn the_documented_examples() {
        assert_eq!(shim(&["python", "-c", "while True: pass"], &[]), ["--", "python", "-c", "while True: pass"]);
        assert_eq!(shim(&["--", "/my/script", "--with", "--args"], &[]), ["--", "/my/script", "--with", "--args"]);
        assert_eq!(shim(&["--rewrite", "15:3", "prog"], &[]), ["--map-signal", "15:3", "--", "prog"]);
        assert_eq!(shim(&["-r", "15:3", "prog"], &[]), ["--map-signal", "15:3", "--", "prog"]);
        assert_eq!(shim(&["--rewrite", "2:3", "--", "prog"], &[]), ["--map-signal", "2:3", "--", "prog"]);
        assert_eq!(shim(&["-c", "prog"], &[]), ["--forward-to", "child", "--", "prog"]);
        assert_eq!(shim(&["--single-child", "prog"], &[]), ["--forward-to", "child", "--", "prog"]);
        assert_eq!(shim(&["prog"], &[("DUMB_INIT_SETSID", "0")]), ["--forward-to", "child", "--", "prog"]);
        assert_eq!(shim(&["dumb-init", "echo", "oh, hi"], &[]), ["--", "dumb-init", "echo", "oh, hi"]);
        assert_eq!(shim(&["/bin/sh", "/script"], &[]), ["--", "/bin/sh", "/script"], "as a #! line");
    }

    #[test]
    fn options_end_at_the_program() {
        assert_eq!(shim(&["prog", "-v", "-c"], &[]), ["--", "prog", "-v", "-c"]);
        assert_eq!(shim(&["-", "-v"], &[]), ["--", "-", "-v"]);
        assert_eq!(shim(&["--", "--", "x"], &[]), ["--", "--", "x"]);
    }

    #[test]
    fn every_spelling() {
        let want =
            ["-v", "-v", "-v", "--forward-to", "child", "--map-signal", "1:0", "--map-signal", "15:3", "--", "p"];
        assert_eq!(shim(&["-cvr15:3", "-r", "1:0", "p"], &[]), want);
        assert_eq!(shim(&["--verbose", "--single-child", "--rewrite=15:3", "--rewrite", "1:0", "p"], &[]), want);
        assert_eq!(shim(&["--verb", "--s", "--rew=15:3", "--r", "1:0", "p"], &[]), want, "unambiguous prefixes");
        assert_eq!(shim(&["-v", "p"], &[]), shim(&["p"], &[("DUMB_INIT_DEBUG", "1")]));
        assert_eq!(shim(&["p"], &[("DUMB_INIT_DEBUG", "yes"), ("DUMB_INIT_SETSID", "1")]), ["--", "p"]);
    }

    #[test]
    fn rewrites_as_sscanf_reads_them_the_last_one_winning() {
        assert_eq!(shim(&["-r", " 15: +3trailing", "p"], &[]), ["--map-signal", "15:3", "--", "p"]);
        assert_eq!(shim(&["-r", "15:3", "-r", "15:0", "p"], &[]), ["--map-signal", "15:0", "--", "p"]);
        // Signal order, whatever the order given.
        assert_eq!(
            shim(&["-r", "15:3", "-r", "1:10", "p"], &[]),
            ["--map-signal", "1:10", "--map-signal", "15:3", "--", "p"]
        );
    }

    #[test]
    fn rewrites_that_change_nothing_are_left_out() {
        for r in ["9:15", "19:15", "17:0", "11:10", "6:0", "20:19", "21:19", "22:19"] {
            assert_eq!(shim(&["-r", r, "p"], &[]), ["--", "p"], "{r}");
        }
        // A later rewrite that changes nothing replaces an earlier one that did.
        assert_eq!(shim(&["-r", "20:1", "-r", "20:19", "p"], &[]), ["--", "p"]);
        // Job-control signals rewritten to something else than SIGSTOP are kept.
        assert_eq!(shim(&["-r", "20:20", "p"], &[]), ["--map-signal", "20:20", "--", "p"]);
    }

    #[test]
    fn help_and_version_go_to_stderr_with_0() {
        for words in [&["-h"][..], &["--help"], &["--he", "p"], &["-vh"]] {
            let done = run(words, &[]).unwrap_err();
            assert_eq!((done.stream, done.code), (Stream::Stderr, 0), "{words:?}");
            assert!(done.text.contains("usage: dumb-init [-cvhV]") && done.text.contains("--rewrite"), "{}", done.text);
        }
        for words in [&["-V"][..], &["--version"], &["--vers", "p"], &["-c", "-V", "p"]] {
            assert_eq!(run(words, &[]), Err(Done { text: crate::config::version(), stream: Stream::Stderr, code: 0 }));
        }
        // Options act in order: a bad one before -h is the error.
        assert!(error(&["-x", "-h"]).contains("unknown option '-x'"));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(error(&[]), "shim: as dumb-init: no program to run");
        assert_eq!(error(&["-c", "--"]), "shim: as dumb-init: no program to run");
        assert_eq!(error(&["-x", "p"]), "shim: as dumb-init: unknown option '-x'");
        assert_eq!(error(&["--nope", "p"]), "shim: as dumb-init: unknown option '--nope'");
        assert_eq!(error(&["--ver", "p"]), "shim: as dumb-init: option '--ver' is ambiguous (--verbose, --version)");
        assert_eq!(error(&["--verbose=1", "p"]), "shim: as dumb-init: --verbose takes no value");
        assert_eq!(error(&["-r"]), "shim: as dumb-init: -r needs a value");
        assert_eq!(error(&["--rewrite"]), "shim: as dumb-init: --rewrite needs a value");
        let bad = |v: &str| {
            format!("shim: as dumb-init: -r: '{v}' is not s:r, signal numbers, s from 1 to 31, r from 0 to 31")
        };
        for v in ["TERM:QUIT", "15", "15 :3", "0:3", "32:3", "15:32", "15:-1", ""] {
            assert_eq!(error(&["-r", v, "p"]), bad(v), "{v:?}");
        }
        assert!(error(&["--rewrite=15", "p"]).contains("--rewrite: '15' is not s:r"));
        assert_eq!(
            error(&["-r", "15:19", "p"]),
            "shim: as dumb-init: -r 15:19: shim never forwards SIGSTOP (it would freeze the program for good)"
        );
    }
}
