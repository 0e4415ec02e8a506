//! The command line and the `SHIM_*` environment variables, turned into a [`Config`]
//! (SPEC §1). Pure: the environment is passed in as a lookup function so tests need no
//! process state.
//!
//! Parsing is by hand rather than with an argument crate: options end at `--` or at the first
//! word that is not an option, and everything after belongs to the program untouched (its own
//! `-v` included), which general-purpose parsers get wrong or make costly in binary size.

use std::ffi::OsString;
use std::time::Duration;

use crate::duration;

/// Where forwarded signals go (`--forward-to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardTo {
    /// The child's whole process group: a shell and the programs it started.
    Group,
    /// The main child alone.
    Child,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub grace: Duration,
    pub verbosity: u8,
    pub forward_to: ForwardTo,
    /// The program and its arguments; never empty.
    pub program: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Config),
    Help,
    Version,
}

/// A bad command line or environment variable: one fragment saying what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

pub const USAGE: &str = "usage: shim [OPTIONS] [--] PROGRAM [ARGS...]";

pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
const MAX_VERBOSITY: u8 = 3;

pub fn help() -> String {
    format!(
        "shim {version}: a tiny PID 1 for containers. It runs PROGRAM in its own process group,
forwards signals to it, reaps zombies, and on a stop waits for everything to exit,
then SIGKILLs what is left after the grace period.

{USAGE}

Options (each also set by its environment variable; the command line wins):
  -g, --grace DURATION    time from the first stop signal to SIGKILL of everything
                          left [SHIM_GRACE, default {grace}]; 10s, 500ms, 1m30s; 0 = none
  -v, --verbose           log lifecycle events on stderr; repeat for more
                          [SHIM_VERBOSE=0..3, default 0]
      --forward-to WHO    send forwarded signals to the child's process 'group' or
                          to the 'child' alone [SHIM_FORWARD_TO, default group]
  -h, --help              print this help and exit
  -V, --version           print the version and exit

Options end at '--' or at the first word that is not an option.
Exit status: the program's, or 128+N if signal N killed it; 2 bad usage;
125 shim failed; 126 program not executable; 127 program not found.
",
        version = env!("CARGO_PKG_VERSION"),
        grace = duration::display(DEFAULT_GRACE),
    )
}

pub fn version() -> String {
    format!("shim {}\n", env!("CARGO_PKG_VERSION"))
}

/// Options as given on the command line, before the environment fills the gaps.
#[derive(Default)]
struct Given {
    grace: Option<Duration>,
    verbosity: Option<u8>,
    forward_to: Option<ForwardTo>,
}

/// Parse `args` (with `args[0]` the name shim was run as) and the environment.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut args = args.into_iter().skip(1);
    let mut given = Given::default();
    let mut program = Vec::new();

    while let Some(arg) = args.next() {
        // A word that is not valid UTF-8 cannot be one of shim's options.
        let Some(text) = arg.to_str() else {
            program.push(arg);
            break;
        };
        if text == "--" {
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match name {
                "help" => return Ok(Command::Help),
                "version" => return Ok(Command::Version),
                "verbose" => {
                    if inline.is_some() {
                        return Err(UsageError("--verbose takes no value; repeat it, or set SHIM_VERBOSE".into()));
                    }
                    bump(&mut given.verbosity);
                }
                "grace" => given.grace = Some(grace(&value(name, inline, &mut args)?)?),
                "forward-to" => given.forward_to = Some(forward_to(&value(name, inline, &mut args)?)?),
                _ => return Err(UsageError(format!("unknown option '--{name}'"))),
            }
        } else if text.len() > 1 && text.starts_with('-') {
            let flags = text[1..].char_indices();
            for (i, flag) in flags {
                match flag {
                    'h' => return Ok(Command::Help),
                    'V' => return Ok(Command::Version),
                    'v' => bump(&mut given.verbosity),
                    'g' => {
                        // `-g5s` or `-g 5s`.
                        let rest = &text[1 + i + 1..];
                        let v = if rest.is_empty() { value("g", None, &mut args)? } else { rest.to_string() };
                        given.grace = Some(grace(&v)?);
                        break;
                    }
                    other => return Err(UsageError(format!("unknown option '-{other}'"))),
                }
            }
        } else {
            program.push(arg);
            break;
        }
    }
    program.extend(args);
    if program.is_empty() {
        return Err(UsageError("no program to run".into()));
    }

    let from_env = |name: &str| -> Result<Option<String>, UsageError> {
        match env(name) {
            None => Ok(None),
            Some(v) => v.into_string().map(Some).map_err(|_| UsageError(format!("{name} is not valid UTF-8"))),
        }
    };
    let in_env = |name: &str, e: UsageError| UsageError(format!("{name}: {}", e.0));

    let grace = match given.grace {
        Some(g) => g,
        None => match from_env("SHIM_GRACE")? {
            Some(v) => grace(&v).map_err(|e| in_env("SHIM_GRACE", e))?,
            None => DEFAULT_GRACE,
        },
    };
    let verbosity = match given.verbosity {
        Some(v) => v,
        None => match from_env("SHIM_VERBOSE")? {
            Some(v) => match v.parse::<u8>() {
                Ok(n) if n <= MAX_VERBOSITY => n,
                _ => return Err(UsageError(format!("SHIM_VERBOSE: '{v}' is not a level from 0 to 3"))),
            },
            None => 0,
        },
    };
    let forward_to = match given.forward_to {
        Some(f) => f,
        None => match from_env("SHIM_FORWARD_TO")? {
            Some(v) => forward_to(&v).map_err(|e| in_env("SHIM_FORWARD_TO", e))?,
            None => ForwardTo::Group,
        },
    };
    Ok(Command::Run(Config { grace, verbosity, forward_to, program }))
}

fn bump(verbosity: &mut Option<u8>) {
    *verbosity = Some(verbosity.unwrap_or(0).saturating_add(1).min(MAX_VERBOSITY));
}

/// The value of option `name`: inline after `=`, or the next word.
fn value(name: &str, inline: Option<String>, rest: &mut impl Iterator<Item = OsString>) -> Result<String, UsageError> {
    let dashes = if name.len() == 1 { "-" } else { "--" };
    let v = match inline {
        Some(v) => v,
        None => rest
            .next()
            .ok_or_else(|| UsageError(format!("{dashes}{name} needs a value")))?
            .into_string()
            .map_err(|_| UsageError(format!("the value of {dashes}{name} is not valid UTF-8")))?,
    };
    Ok(v)
}

fn grace(text: &str) -> Result<Duration, UsageError> {
    duration::parse(text).map_err(|e| UsageError(format!("grace: {e}")))
}

fn forward_to(text: &str) -> Result<ForwardTo, UsageError> {
    match text {
        "group" => Ok(ForwardTo::Group),
        "child" => Ok(ForwardTo::Child),
        _ => Err(UsageError(format!("forward-to: '{text}' is neither 'group' nor 'child'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        std::iter::once("shim").chain(words.iter().copied()).map(OsString::from).collect()
    }

    fn run(words: &[&str], env: &[(&str, &str)]) -> Result<Config, UsageError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match parse(os(words), |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.into()))? {
            Command::Run(c) => Ok(c),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn prog(c: &Config) -> Vec<&str> {
        c.program.iter().map(|w| w.to_str().unwrap()).collect()
    }

    #[test]
    fn defaults() {
        let c = run(&["server"], &[]).unwrap();
        assert_eq!(c.grace, Duration::from_secs(10));
        assert_eq!(c.verbosity, 0);
        assert_eq!(c.forward_to, ForwardTo::Group);
        assert_eq!(prog(&c), ["server"]);
    }

    #[test]
    fn options_end_at_the_first_program_word() {
        let c = run(&["-v", "ls", "-v", "--grace", "1s", "--"], &[]).unwrap();
        assert_eq!(c.verbosity, 1);
        assert_eq!(c.grace, DEFAULT_GRACE);
        assert_eq!(prog(&c), ["ls", "-v", "--grace", "1s", "--"]);
    }

    #[test]
    fn options_end_at_double_dash() {
        let c = run(&["--grace=3s", "--", "-v", "x"], &[]).unwrap();
        assert_eq!(c.grace, Duration::from_secs(3));
        assert_eq!(prog(&c), ["-v", "x"]);
    }

    #[test]
    fn every_spelling_of_grace() {
        for words in
            [&["-g", "2s", "p"][..], &["-g2s", "p"], &["--grace", "2s", "p"], &["--grace=2s", "p"], &["-vg2s", "p"]]
        {
            assert_eq!(run(words, &[]).unwrap().grace, Duration::from_secs(2), "{words:?}");
        }
    }

    #[test]
    fn verbosity_counts_and_caps() {
        assert_eq!(run(&["-vv", "p"], &[]).unwrap().verbosity, 2);
        assert_eq!(run(&["-v", "--verbose", "-v", "p"], &[]).unwrap().verbosity, 3);
        assert_eq!(run(&["-vvvvv", "p"], &[]).unwrap().verbosity, 3);
    }

    #[test]
    fn environment_fills_what_the_command_line_leaves() {
        let env = [("SHIM_GRACE", "1m30s"), ("SHIM_VERBOSE", "2"), ("SHIM_FORWARD_TO", "child")];
        let c = run(&["p"], &env).unwrap();
        assert_eq!((c.grace, c.verbosity, c.forward_to), (Duration::from_secs(90), 2, ForwardTo::Child));
        let c = run(&["-g", "5s", "-v", "--forward-to", "group", "p"], &env).unwrap();
        assert_eq!((c.grace, c.verbosity, c.forward_to), (Duration::from_secs(5), 1, ForwardTo::Group));
    }

    #[test]
    fn the_command_line_wins_even_over_a_bad_variable() {
        assert!(run(&["-g", "1s", "p"], &[("SHIM_GRACE", "nonsense")]).is_ok());
    }

    #[test]
    fn bad_variables_name_themselves() {
        let e = run(&["p"], &[("SHIM_GRACE", "soon")]).unwrap_err().0;
        assert!(e.starts_with("SHIM_GRACE:") && e.contains("'soon'"), "{e}");
        let e = run(&["p"], &[("SHIM_VERBOSE", "9")]).unwrap_err().0;
        assert!(e.starts_with("SHIM_VERBOSE:"), "{e}");
        let e = run(&["p"], &[("SHIM_FORWARD_TO", "all")]).unwrap_err().0;
        assert!(e.starts_with("SHIM_FORWARD_TO:"), "{e}");
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(run(&[], &[]).unwrap_err().0, "no program to run");
        assert_eq!(run(&["-v"], &[]).unwrap_err().0, "no program to run");
        assert_eq!(run(&["--"], &[]).unwrap_err().0, "no program to run");
        assert_eq!(run(&["--nope", "p"], &[]).unwrap_err().0, "unknown option '--nope'");
        assert_eq!(run(&["-x", "p"], &[]).unwrap_err().0, "unknown option '-x'");
        assert_eq!(run(&["--grace"], &[]).unwrap_err().0, "--grace needs a value");
        assert_eq!(run(&["-g"], &[]).unwrap_err().0, "-g needs a value");
        assert!(run(&["--grace", "x", "p"], &[]).unwrap_err().0.contains("invalid duration 'x'"));
        assert!(run(&["--forward-to=all", "p"], &[]).unwrap_err().0.contains("'all'"));
        assert!(run(&["--verbose=2", "p"], &[]).is_err());
    }

    #[test]
    fn help_and_version_win_wherever_they_stand_among_options() {
        assert_eq!(parse(os(&["-v", "--help", "p"]), |_| None), Ok(Command::Help));
        assert_eq!(parse(os(&["-h"]), |_| None), Ok(Command::Help));
        assert_eq!(parse(os(&["-V"]), |_| None), Ok(Command::Version));
        assert_eq!(parse(os(&["--version"]), |_| None), Ok(Command::Version));
        // After the program starts they are the program's.
        assert!(matches!(parse(os(&["p", "--help"]), |_| None), Ok(Command::Run(_))));
    }

    #[test]
    fn a_lone_dash_is_a_program_word() {
        assert_eq!(prog(&run(&["-"], &[]).unwrap()), ["-"]);
    }

    #[test]
    fn help_fits_one_screen_and_names_every_option() {
        let h = help();
        assert!(h.lines().count() <= 24, "{} lines", h.lines().count());
        for word in [
            "--grace",
            "SHIM_GRACE",
            "--verbose",
            "SHIM_VERBOSE",
            "--forward-to",
            "SHIM_FORWARD_TO",
            "--help",
            "--version",
        ] {
            assert!(h.contains(word), "help lacks {word}");
        }
    }
}
