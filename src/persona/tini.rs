//! tini's command line (and `docker-init`'s, which is tini), read as tini 0.19 reads it with
//! glibc's `getopt`: the build Docker ships as `docker-init`, Debian packages and tini's
//! release binaries are.
//!
//! - Options come anywhere before `--`: glibc moves the words that are not options behind
//!   them, so in `tini prog -v` the `-v` is tini's, and `tini sh -c x` is an unknown `-c`
//!   (tini's README: add `--`). With `POSIXLY_CORRECT` set, options end at the first word
//!   that is not one, as with a musl build (Alpine's).
//! - `--version` is the version only as the sole argument; `-h` and `-l` print and exit 0.
//! - `-e CODE` (0-255, repeatable) is `--success-exit CODE`; `-p SIGNAL` (a name with its
//!   `SIG`, from the classic signals) is `--pdeathsig`; `-v` raises tini's verbosity from 1,
//!   `TINI_VERBOSITY` replaces it, and shim logs one level below tini's count.
//! - `-s`, `-g`, `-w`, `TINI_SUBREAPER` and `TINI_KILL_PROCESS_GROUP` change nothing: shim is
//!   always a subreaper when it is not PID 1, always signals the program's whole group, and
//!   logs every reap from `-vv` (tini's level 3).
//! - Any other option, a bad value, or no program is tini's usage error: exit 1.

use std::ffi::OsString;

use super::{about, c_integer, license, version, Done, ShimArgs, Stream};

const USAGE: &str = "[-hlsgwv] [-p SIGNAL] [-e CODE]... [--] PROGRAM [ARGS...]";

/// The names `-p` takes: tini looks them up, `SIG` and all, in a table of the classic signals.
const SIGNALS: [&str; 28] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGSYS",
];

/// tini's verbosity when neither `-v` nor `TINI_VERBOSITY` says otherwise: warnings.
const DEFAULT_LEVEL: i64 = 1;
/// shim's highest log level.
const MAX_SHIM_LEVEL: u8 = 3;

pub(super) fn translate(
    name: &str,
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<ShimArgs, Done> {
    if args.len() == 1 && args[0] == "--version" {
        return Err(version(Stream::Stdout));
    }
    let usage = |what: String| Done::usage(name, USAGE, what);
    let permute = env("POSIXLY_CORRECT").is_none();
    let mut shim = ShimArgs::default();
    let mut verbose: i64 = 0;
    let mut pdeathsig = None;
    let mut success_exits = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            shim.program.extend(words.by_ref().cloned());
            break;
        }
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(word.as_os_str());
        if bytes.len() < 2 || bytes[0] != b'-' {
            shim.program.push(word.clone());
            if !permute {
                shim.program.extend(words.by_ref().cloned());
                break;
            }
            continue;
        }
        let Some(text) = word.to_str() else {
            return Err(usage(format!("unknown option '{}'", word.to_string_lossy())));
        };
        if text.starts_with("--") {
            let hint = if text == "--version" { "--version only alone" } else { "-h for help" };
            return Err(usage(format!("unknown option '{text}' (tini takes {hint})")));
        }
        for (i, flag) in text.char_indices().skip(1) {
            match flag {
                'h' => return Err(Done::print(Stream::Stdout, help(name))),
                'l' => return Err(license()),
                // Already what shim does; see the module's documentation.
                's' | 'g' | 'w' => {}
                'v' => verbose += 1,
                'p' | 'e' => {
                    // `-e143` or `-e 143`: the rest of the word is the value, else the next word.
                    let rest = &text[i + 1..];
                    let value = if rest.is_empty() {
                        let next = words.next().ok_or_else(|| usage(format!("-{flag} needs a value")))?;
                        next.to_string_lossy().into_owned()
                    } else {
                        rest.to_string()
                    };
                    if flag == 'p' {
                        pdeathsig = Some(signal(&value).ok_or_else(|| {
                            usage(format!("-p: '{value}' is not a signal tini knows (write SIGTERM, SIGKILL, ...)"))
                        })?);
                    } else {
                        let code = exit_code(&value)
                            .ok_or_else(|| usage(format!("-e: '{value}' is not an exit code from 0 to 255")))?;
                        success_exits.push(code);
                    }
                    break;
                }
                _ => {
                    let hint = "put -- before the program: tini takes options anywhere before it";
                    return Err(usage(format!("unknown option '-{flag}' ({hint})")));
                }
            }
        }
    }
    if shim.program.is_empty() {
        return Err(usage("no program to run".into()));
    }
    let level = match env("TINI_VERBOSITY") {
        Some(v) => atoi(&v.to_string_lossy()),
        None => DEFAULT_LEVEL + verbose,
    };
    shim.verbosity(shim_level(level));
    for code in success_exits {
        shim.option("--success-exit", code.to_string());
    }
    if let Some(sig) = pdeathsig {
        shim.option("--pdeathsig", sig);
    }
    Ok(shim)
}

/// shim's log level for tini's: tini's 1 (warnings) is shim's 0, and so on up. A negative
/// `TINI_VERBOSITY` wraps around to the top in tini's unsigned counter.
fn shim_level(tini: i64) -> u8 {
    if tini < 0 {
        return MAX_SHIM_LEVEL;
    }
    u8::try_from(tini.saturating_sub(1).max(0)).unwrap_or(u8::MAX).min(MAX_SHIM_LEVEL)
}

/// `-p`'s value, as shim's `--pdeathsig` takes it.
fn signal(text: &str) -> Option<&'static str> {
    SIGNALS.iter().find(|name| **name == text).copied()
}

/// `-e`'s value, as `strtol` reads it: blanks, a sign, then digits and nothing else.
fn exit_code(text: &str) -> Option<u8> {
    match c_integer(text)? {
        (n, "") => u8::try_from(n).ok(),
        _ => None,
    }
}

/// `TINI_VERBOSITY` as C's `atoi` reads it: what follows the number is ignored, and no number
/// at all is 0.
fn atoi(text: &str) -> i64 {
    c_integer(text).map_or(0, |(n, _)| n)
}

fn help(name: &str) -> String {
    format!(
        "{about}
usage: {name} {USAGE}
       {name} --version

  -e CODE     exit 0 when the program exits CODE (0-255); repeatable
  -p SIGNAL   get SIGNAL (SIGTERM, SIGKILL, ...) when shim's parent dies
  -v          log more; repeat for more [TINI_VERBOSITY=1-4]
  -s, -g, -w  accepted: shim always subreaps, signals the program's whole group,
              and logs every reap from TINI_VERBOSITY=3 [TINI_SUBREAPER,
              TINI_KILL_PROCESS_GROUP]
  -l          print the license;  -h  this help;  --version (alone)  the version
",
        about = about(name, "tini"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::os;
    use super::super::translate as full;
    use super::*;
    use crate::signals::Sig;

    fn run(words: &[&str], env: &[(&str, &str)]) -> Result<Vec<OsString>, Done> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v));
        full(os(&[&["/usr/bin/tini"], words].concat()), lookup)
    }

    /// The shim command line after the name, as words.
    fn shim(words: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let args = run(words, env).unwrap_or_else(|d| panic!("{words:?}: {}", d.text));
        args[1..].iter().map(|w| w.to_string_lossy().into_owned()).collect()
    }

    fn error(words: &[&str], env: &[(&str, &str)]) -> String {
        let done = run(words, env).expect_err("a usage error");
        assert_eq!((done.stream, done.code), (Stream::Stderr, 1), "{words:?}");
        let lines: Vec<&str> = done.text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", done.text);
        assert!(lines[1].starts_with("usage: tini [-hlsgwv]"), "{}", done.text);
        lines[0].to_string()
    }

    #[test]
    fn the_documented_examples() {
        assert_eq!(shim(&["--", "prog", "-and", "args"], &[]), ["--", "prog", "-and", "args"]);
        assert_eq!(shim(&["-g", "-e", "143", "--", "prog"], &[]), ["--success-exit", "143", "--", "prog"]);
        assert_eq!(shim(&["-p", "SIGTERM", "--", "prog"], &[]), ["--pdeathsig", "SIGTERM", "--", "prog"]);
        assert_eq!(shim(&["-s", "--", "prog"], &[]), ["--", "prog"]);
        assert_eq!(shim(&["-v", "--", "bash", "-c", "exit 1"], &[]), ["-v", "--", "bash", "-c", "exit 1"]);
        assert_eq!(shim(&["-vv", "--", "true"], &[]), ["-v", "-v", "--", "true"]);
        assert_eq!(shim(&["-vvv", "--", "pwd"], &[]), ["-v", "-v", "-v", "--", "pwd"]);
    }

    #[test]
    fn options_and_values_in_every_spelling() {
        let want = ["-v", "--success-exit", "143", "--success-exit", "130", "--pdeathsig", "SIGKILL", "--", "p"];
        assert_eq!(shim(&["-ve143", "-e", "130", "-pSIGKILL", "p"], &[]), want);
        assert_eq!(shim(&["-sgwv", "-e143", "-e130", "-p", "SIGKILL", "--", "p"], &[]), want);
        // The last -p wins, as in tini.
        assert_eq!(shim(&["-p", "SIGHUP", "-p", "SIGKILL", "p"], &[]), ["--pdeathsig", "SIGKILL", "--", "p"]);
        // strtol's blanks and sign.
        assert_eq!(shim(&["-e", " +7", "p"], &[]), ["--success-exit", "7", "--", "p"]);
        assert_eq!(shim(&["-e", "-0", "p"], &[]), ["--success-exit", "0", "--", "p"]);
        // A value may look like an option.
        assert!(error(&["-e", "-v", "p"], &[]).contains("-e: '-v' is not an exit code"));
    }

    #[test]
    fn options_come_anywhere_before_the_double_dash() {
        assert_eq!(shim(&["prog", "-v"], &[]), ["-v", "--", "prog"]);
        assert_eq!(
            shim(&["prog", "arg", "-e", "3", "arg2"], &[]),
            ["--success-exit", "3", "--", "prog", "arg", "arg2"]
        );
        assert_eq!(shim(&["prog", "--", "-v", "--"], &[]), ["--", "prog", "-v", "--"]);
        assert_eq!(shim(&["-", "x"], &[]), ["--", "-", "x"], "a lone dash is a word");
        let e = error(&["sh", "-c", "echo hi"], &[]);
        assert_eq!(
            e,
            "shim: as tini: unknown option '-c' (put -- before the program: tini takes options anywhere before it)"
        );
    }

    #[test]
    fn posixly_correct_ends_options_at_the_program() {
        let env = [("POSIXLY_CORRECT", "")];
        assert_eq!(shim(&["-v", "sh", "-c", "echo hi"], &env), ["-v", "--", "sh", "-c", "echo hi"]);
        assert_eq!(shim(&["prog", "--", "x"], &env), ["--", "prog", "--", "x"]);
    }

    #[test]
    fn verbosity_counts_from_tinis_default_and_the_variable_replaces_it() {
        assert_eq!(shim(&["p"], &[]), ["--", "p"]);
        assert_eq!(shim(&["-vvvvvv", "p"], &[]), ["-v", "-v", "-v", "--", "p"], "capped at shim's top");
        assert_eq!(shim(&["p"], &[("TINI_VERBOSITY", "3")]), ["-v", "-v", "--", "p"]);
        assert_eq!(shim(&["-vvv", "p"], &[("TINI_VERBOSITY", "1")]), ["--", "p"], "read after -v, as tini does");
        assert_eq!(shim(&["p"], &[("TINI_VERBOSITY", "0")]), ["--", "p"]);
        assert_eq!(shim(&["p"], &[("TINI_VERBOSITY", "2x")]), ["-v", "--", "p"], "atoi stops at the x");
        assert_eq!(shim(&["p"], &[("TINI_VERBOSITY", "lots")]), ["--", "p"], "atoi reads no digits as 0");
        assert_eq!(shim(&["p"], &[("TINI_VERBOSITY", "-1")]), ["-v", "-v", "-v", "--", "p"]);
    }

    #[test]
    fn variables_with_nothing_to_do() {
        let env = [("TINI_SUBREAPER", ""), ("TINI_KILL_PROCESS_GROUP", "1")];
        assert_eq!(shim(&["--", "p"], &env), ["--", "p"]);
    }

    #[test]
    fn help_license_and_version() {
        let done = run(&["-h"], &[]).unwrap_err();
        assert_eq!((done.stream, done.code), (Stream::Stdout, 0));
        assert!(done.text.contains("usage: tini [-hlsgwv]") && done.text.contains("-e CODE"), "{}", done.text);
        // The first -h or -l wins, wherever it stands.
        assert_eq!(run(&["-v", "prog", "-h"], &[]).unwrap_err().code, 0);
        let done = run(&["-l"], &[]).unwrap_err();
        assert_eq!((done.stream, done.code), (Stream::Stdout, 0));
        assert!(done.text.contains(env!("CARGO_PKG_LICENSE")), "{}", done.text);
        let done = run(&["--version"], &[]).unwrap_err();
        assert_eq!(done, Done { text: crate::config::version(), stream: Stream::Stdout, code: 0 });
        assert!(
            error(&["--version", "p"], &[]).contains("unknown option '--version' (tini takes --version only alone)")
        );
        assert!(error(&["--help"], &[]).contains("unknown option '--help' (tini takes -h for help)"));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(error(&[], &[]), "shim: as tini: no program to run");
        assert_eq!(error(&["-v", "--"], &[]), "shim: as tini: no program to run");
        assert_eq!(error(&["-e"], &[]), "shim: as tini: -e needs a value");
        assert_eq!(error(&["-e", "256", "p"], &[]), "shim: as tini: -e: '256' is not an exit code from 0 to 255");
        assert_eq!(error(&["-e", "1x", "p"], &[]), "shim: as tini: -e: '1x' is not an exit code from 0 to 255");
        assert_eq!(error(&["-e", "-1", "p"], &[]), "shim: as tini: -e: '-1' is not an exit code from 0 to 255");
        assert_eq!(
            error(&["-p", "TERM", "--", "p"], &[]),
            "shim: as tini: -p: 'TERM' is not a signal tini knows (write SIGTERM, SIGKILL, ...)"
        );
        assert!(error(&["-p", "SIGRTMIN", "p"], &[]).contains("'SIGRTMIN' is not a signal tini knows"));
        assert!(error(&["-p", "sigterm", "p"], &[]).contains("'sigterm' is not a signal tini knows"));
        assert!(error(&["-V", "p"], &[]).contains("unknown option '-V'"));
        assert!(error(&["-gx", "p"], &[]).contains("unknown option '-x'"));
    }

    #[test]
    fn every_signal_tini_knows_is_one_shim_knows() {
        for name in SIGNALS {
            assert!(Sig::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn docker_init_speaks_tini_under_its_own_name() {
        let got = full(os(&["/sbin/docker-init", "--", "prog"]), |_| None).unwrap();
        assert_eq!(got, os(&["/sbin/docker-init", "--", "prog"]));
        let done = full(os(&["/sbin/docker-init", "-x"]), |_| None).unwrap_err();
        assert!(done.text.starts_with("shim: as docker-init: unknown option '-x'"), "{}", done.text);
        assert!(done.text.contains("\nusage: docker-init [-hlsgwv]"), "{}", done.text);
    }
}
