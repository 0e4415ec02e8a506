//! The command line and the `SHIM_*` environment variables, turned into a [`Config`]
//! (the contract's "Command line"). Pure: the environment is passed in as a lookup function so tests need no
//! process state.
//!
//! Parsing is by hand rather than with an argument crate: options end at `--` or at the first
//! word that is not an option, and everything after belongs to the program untouched (its own
//! `-v` included), which general-purpose parsers get wrong or make costly in binary size.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::time::Duration;

use crate::duration;
use crate::exit::SuccessExits;
use crate::health::addr;
use crate::signals::{Sig, SignalMap};
use crate::user::UserSpec;

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
    /// How long to keep serving after a stop signal before forwarding it.
    pub stop_delay: Duration,
    /// A program (and its arguments) to run when a stop begins; empty for none.
    pub pre_stop: Vec<String>,
    pub map: SignalMap,
    pub success: SuccessExits,
    /// The signal shim asks for when its parent dies.
    pub pdeathsig: Option<Sig>,
    /// Where shim answers health checks itself (`--health`).
    pub health: Option<addr::Listen>,
    /// What must also accept a TCP connection for a health check to be 200.
    pub health_probe: Option<SocketAddr>,
    /// Who the program and the pre-stop hook run as; `None`: as shim.
    pub user: Option<UserSpec>,
    /// The program and its arguments; never empty.
    pub program: Vec<OsString>,
}

/// What the command line asks for.
// Made once per run and moved once: boxing the config would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    let mut h = format!(
        "{USAGE}
shim {}: a tiny PID 1 for containers. Runs PROGRAM in its own process
group, forwards signals, reaps zombies; on a stop, waits for all, then SIGKILLs.

Options, each also set by its SHIM_* variable (the command line wins):
",
        env!("CARGO_PKG_VERSION")
    );
    for o in OPTIONS.iter().filter(|o| !o.help.is_empty()) {
        let flags = match (o.kind, o.short) {
            (Kind::Help, _) => "  -h, --help / -V, --version".to_string(),
            (_, Some(c)) => format!("  -{c}, --{}", o.long),
            (_, None) => format!("      --{}", o.long),
        };
        let flags = if o.value.is_empty() { flags } else { format!("{flags} {}", o.value) };
        let env = match (o.env, o.default) {
            ("", _) => String::new(),
            (env, "") => format!(" [{env}]"),
            (env, default) => format!(" [{env}={default}]"),
        };
        let mut lines = o.help.lines();
        let first = lines.next().unwrap_or("");
        let rest: Vec<&str> = lines.collect();
        let first = if rest.is_empty() { format!("{first}{env}") } else { first.to_string() };
        let gap = if flags.len() < HELP_COLUMN { "" } else { " " };
        h.push_str(&format!("{flags:<HELP_COLUMN$}{gap}{first}\n"));
        for (i, line) in rest.iter().enumerate() {
            let env = if i + 1 == rest.len() { env.as_str() } else { "" };
            h.push_str(&format!("{:HELP_COLUMN$}{line}{env}\n", ""));
        }
    }
    h.push_str(
        "
DURATION as Go writes it: 1.5s, 500ms, 1m30s; a bare 7 is 7s. SIG: TERM, 15.
A third stop signal, or a second Ctrl-C, SIGKILLs everything at once. Exit: the
program's, or 128+N if signal N killed it; 2 usage; 125 shim failed; 126 program
not executable; 127 program not found.
",
    );
    h
}

/// Where `--help` starts an option's text.
const HELP_COLUMN: usize = 28;

/// `shim 0.1.0 - git.0123456789ab (shim_0_1_0)`: the version, then the commit stamped by
/// build.rs, in the `NAME - git.COMMIT` shape container engines read from their init's
/// `--version`. Docker (20.10 and later) keeps only what follows `git.`, shows it as
/// `docker info`'s "init version", and rejects it if it holds another dot; so that line also
/// names the version, spelt without dots. Any other shape makes dockerd warn and show N/A.
pub fn version() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!("shim {version} - git.{} (shim_{})\n", env!("SHIM_COMMIT"), version.replace('.', "_"))
}

/// What an option does with the command line.
#[derive(Clone, Copy)]
enum Kind {
    /// Takes a value, applied to the config. Repeatable ones take several; from the
    /// environment, comma-separated.
    Value {
        apply: fn(&mut Config, &str) -> Result<(), String>,
        repeatable: bool,
    },
    /// Counted (`-vv`); its variable is the count.
    Count,
    Help,
    Version,
}

/// One option: everything about it in one place. `--help`, the parser and the environment
/// all read this table, so adding an option is adding a row.
struct Opt {
    long: &'static str,
    short: Option<char>,
    /// The value's name in `--help`; empty for a flag.
    value: &'static str,
    /// Its variable; empty for none.
    env: &'static str,
    /// The default as `--help` shows it; empty for none worth showing.
    default: &'static str,
    /// One or two lines for `--help`, of at most 52 columns each.
    help: &'static str,
    kind: Kind,
}

const OPTIONS: [Opt; 13] = [
    Opt {
        long: "grace",
        short: Some('g'),
        value: "DURATION",
        env: "SHIM_GRACE",
        default: "10s",
        help: "SIGKILL what is left this long after forwarding a\nstop signal; 0: at once",
        kind: Kind::Value { apply: |c, v| duration::parse(v).map(|d| c.grace = d), repeatable: false },
    },
    Opt {
        long: "stop-delay",
        short: Some('d'),
        value: "DURATION",
        env: "SHIM_STOP_DELAY",
        default: "0",
        help: "keep serving this long before forwarding a stop\nsignal (load balancers)",
        kind: Kind::Value { apply: |c, v| duration::parse(v).map(|d| c.stop_delay = d), repeatable: false },
    },
    Opt {
        long: "pre-stop",
        short: Some('p'),
        value: "COMMAND",
        env: "SHIM_PRE_STOP",
        default: "",
        help: "run COMMAND (split like a shell, none needed) when a\nstop begins, before forwarding it",
        kind: Kind::Value { apply: |c, v| split_words(v).map(|w| c.pre_stop = w), repeatable: false },
    },
    Opt {
        long: "map-signal",
        short: Some('m'),
        value: "FROM:TO",
        env: "SHIM_MAP_SIGNAL",
        default: "TERM:QUIT,HUP:0",
        help: "forward FROM as TO (TERM:QUIT), or drop it (HUP:0);\nrepeatable",
        kind: Kind::Value { apply: |c, v| c.map.add(v), repeatable: true },
    },
    Opt {
        long: "success-exit",
        short: Some('s'),
        value: "CODE",
        env: "SHIM_SUCCESS_EXIT",
        default: "143,130",
        help: "exit 0 when the program exits CODE (143, or TERM for\n128+15); repeatable",
        kind: Kind::Value { apply: |c, v| c.success.add(v), repeatable: true },
    },
    Opt {
        long: "forward-to",
        short: None,
        value: "WHO",
        env: "SHIM_FORWARD_TO",
        default: "",
        help: "the program's 'group', or 'child'",
        kind: Kind::Value {
            apply: |c, v| {
                c.forward_to = match v {
                    "group" => ForwardTo::Group,
                    "child" => ForwardTo::Child,
                    _ => return Err(format!("'{v}' is neither 'group' nor 'child'")),
                };
                Ok(())
            },
            repeatable: false,
        },
    },
    Opt {
        long: "pdeathsig",
        short: None,
        value: "SIG",
        env: "SHIM_PDEATHSIG",
        default: "",
        help: "get SIG when shim's parent dies",
        kind: Kind::Value { apply: |c, v| Sig::parse(v).map(|s| c.pdeathsig = Some(s)), repeatable: false },
    },
    Opt {
        long: "health",
        short: None,
        value: "ADDR",
        env: "SHIM_HEALTH",
        default: "",
        help: "HTTP 200 here, 503 once a stop begins",
        kind: Kind::Value { apply: |c, v| addr::listen(v).map(|a| c.health = Some(a)), repeatable: false },
    },
    Opt {
        long: "health-probe",
        short: None,
        value: "ADDR",
        env: "SHIM_HEALTH_PROBE",
        default: "",
        help: "200 only while ADDR accepts TCP",
        kind: Kind::Value { apply: |c, v| addr::probe(v).map(|a| c.health_probe = Some(a)), repeatable: false },
    },
    Opt {
        long: "user",
        short: Some('u'),
        value: "USER[:GROUP]",
        env: "SHIM_USER",
        default: "",
        help: "run PROGRAM and the hook as USER",
        kind: Kind::Value { apply: |c, v| UserSpec::parse(v).map(|u| c.user = Some(u)), repeatable: false },
    },
    Opt {
        long: "verbose",
        short: Some('v'),
        value: "",
        env: "SHIM_VERBOSE",
        default: "0-3",
        help: "log events; repeat for more",
        kind: Kind::Count,
    },
    Opt {
        long: "help",
        short: Some('h'),
        value: "",
        env: "",
        default: "",
        help: "print this, or the version, and exit",
        kind: Kind::Help,
    },
    Opt {
        long: "version",
        short: Some('V'),
        value: "",
        env: "",
        default: "",
        // Shown on the row of --help.
        help: "",
        kind: Kind::Version,
    },
];

fn defaults() -> Config {
    Config {
        grace: DEFAULT_GRACE,
        verbosity: 0,
        forward_to: ForwardTo::Group,
        stop_delay: Duration::ZERO,
        pre_stop: Vec::new(),
        map: SignalMap::default(),
        success: SuccessExits::default(),
        pdeathsig: None,
        health: None,
        health_probe: None,
        user: None,
        program: Vec::new(),
    }
}

/// Parse `args` (with `args[0]` the name shim was run as) and the environment. The words may
/// be borrowed (shim's own `main` lends them from argv): only the program's are copied.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: AsRef<OsStr> + Into<OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut args = args.into_iter().skip(1);
    let mut config = defaults();
    // Which options the command line set: they are not taken from the environment.
    let mut given = [false; OPTIONS.len()];
    let mut verbosity: Option<u8> = None;

    while let Some(arg) = args.next() {
        // A word that is not valid UTF-8 cannot be one of shim's options.
        let Some(text) = arg.as_ref().to_str() else {
            config.program.push(arg.into());
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
            let i = OPTIONS
                .iter()
                .position(|o| o.long == name)
                .ok_or_else(|| UsageError(format!("unknown option '--{name}'")))?;
            let shown = format!("--{name}");
            if let Some(done) = take(&mut config, &mut given, &mut verbosity, i, &shown, inline, &mut args)? {
                return Ok(done);
            }
        } else if text.len() > 1 && text.starts_with('-') {
            for (at, flag) in text[1..].char_indices() {
                let i = OPTIONS
                    .iter()
                    .position(|o| o.short == Some(flag))
                    .ok_or_else(|| UsageError(format!("unknown option '-{flag}'")))?;
                // `-g5s` or `-g 5s`: the rest of the word is the value.
                let rest = &text[1 + at + flag.len_utf8()..];
                let takes_value = matches!(OPTIONS[i].kind, Kind::Value { .. });
                let inline = (takes_value && !rest.is_empty()).then(|| rest.to_string());
                if let Some(done) =
                    take(&mut config, &mut given, &mut verbosity, i, &format!("-{flag}"), inline, &mut args)?
                {
                    return Ok(done);
                }
                if takes_value {
                    break;
                }
            }
        } else {
            config.program.push(arg.into());
            break;
        }
    }
    config.program.extend(args.map(Into::into));
    if config.program.is_empty() {
        return Err(UsageError("no program to run".into()));
    }

    for (i, option) in OPTIONS.iter().enumerate() {
        let Kind::Value { apply, repeatable } = option.kind else { continue };
        if given[i] || option.env.is_empty() {
            continue;
        }
        let Some(raw) = env(option.env) else { continue };
        let v = raw.into_string().map_err(|_| UsageError(format!("{} is not valid UTF-8", option.env)))?;
        let values: Vec<&str> = if repeatable { v.split(',').map(str::trim).collect() } else { vec![&v] };
        for one in values {
            apply(&mut config, one).map_err(|e| UsageError(format!("{}: {e}", option.env)))?;
        }
    }
    match (&config.health, config.health_probe) {
        (None, Some(_)) => {
            return Err(UsageError("--health-probe needs --health: the probe only shapes its answers".into()))
        }
        // A probe of the health port itself would always succeed.
        (Some(listen), Some(probe))
            if probe.port() == listen.at.port()
                && (listen.at.ip().is_unspecified() || listen.at.ip() == probe.ip()) =>
        {
            return Err(UsageError(format!(
                "--health-probe: port {} is the --health port itself; give the program's own port",
                probe.port()
            )))
        }
        _ => {}
    }
    config.verbosity = match verbosity {
        Some(v) => v,
        None => match env("SHIM_VERBOSE").map(|v| v.to_string_lossy().into_owned()) {
            Some(v) => match v.parse::<u8>() {
                Ok(n) if n <= MAX_VERBOSITY => n,
                _ => return Err(UsageError(format!("SHIM_VERBOSE: '{v}' is not a level from 0 to 3"))),
            },
            None => 0,
        },
    };
    Ok(Command::Run(config))
}

/// Take option `i`, spelled `shown`, with its value inline or from the next word; a command
/// that ends parsing (help, version) comes back.
fn take(
    config: &mut Config,
    given: &mut [bool],
    verbosity: &mut Option<u8>,
    i: usize,
    shown: &str,
    inline: Option<String>,
    rest: &mut impl Iterator<Item = impl Into<OsString>>,
) -> Result<Option<Command>, UsageError> {
    let option = &OPTIONS[i];
    match option.kind {
        Kind::Help => Ok(Some(Command::Help)),
        Kind::Version => Ok(Some(Command::Version)),
        Kind::Count if inline.is_some() => {
            Err(UsageError(format!("{shown} takes no value; repeat it, or set {}", option.env)))
        }
        Kind::Count => {
            *verbosity = Some(verbosity.unwrap_or(0).saturating_add(1).min(MAX_VERBOSITY));
            Ok(None)
        }
        Kind::Value { apply, .. } => {
            let v = value(shown, inline, rest)?;
            given[i] = true;
            apply(config, &v).map_err(|e| UsageError(format!("--{}: {e}", option.long)))?;
            Ok(None)
        }
    }
}

/// The value of option `name`: inline, or the next word.
fn value(
    name: &str,
    inline: Option<String>,
    rest: &mut impl Iterator<Item = impl Into<OsString>>,
) -> Result<String, UsageError> {
    match inline {
        Some(v) => Ok(v),
        None => rest
            .next()
            .ok_or_else(|| UsageError(format!("{name} needs a value")))?
            .into()
            .into_string()
            .map_err(|_| UsageError(format!("the value of {name} is not valid UTF-8"))),
    }
}

/// Split a command into words as a shell would, without a shell (FROM-scratch images have
/// none): blanks separate words; '...' is literal; "..." is one word in which \" and \\ are
/// escapes; a backslash outside quotes takes the next character literally. No expansion.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    let bad = |what: &str| format!("{what} in '{text}'");
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(bad("unclosed '")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(bad("unclosed \"")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(bad("unclosed \"")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(bad("a trailing \\")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if words.is_empty() {
        return Err(format!("no command in '{text}'"));
    }
    Ok(words)
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
    fn borrowed_words_parse_as_owned_ones_do() {
        let words = ["shim", "-g", "2s", "--", "p", "-v"];
        let borrowed = parse(words.map(OsStr::new), |_| None);
        assert_eq!(borrowed, parse(words.map(OsString::from), |_| None));
        assert!(
            matches!(borrowed, Ok(Command::Run(c)) if c.grace == Duration::from_secs(2) && prog(&c) == ["p", "-v"])
        );
    }

    #[test]
    fn a_lone_dash_is_a_program_word() {
        assert_eq!(prog(&run(&["-"], &[]).unwrap()), ["-"]);
    }

    #[test]
    fn help_fits_one_screen_and_names_every_option() {
        let h = help();
        // 24 rows until --user and the health endpoint's two options took one each: every
        // other line says something no other does, and 28 still leave room for the prompt on
        // a 30-row terminal.
        assert!(h.lines().count() <= 28, "{} lines", h.lines().count());
        assert!(h.lines().all(|l| l.chars().count() <= 80), "a line is wider than a terminal:\n{h}");
        for o in &OPTIONS {
            assert!(h.contains(&format!("--{}", o.long)) && h.contains(o.env), "help lacks --{}", o.long);
            if let Some(c) = o.short {
                assert!(h.contains(&format!("-{c}, --{}", o.long)), "help lacks -{c}");
            }
        }
        for word in ["-v, --verbose", "SHIM_VERBOSE", "-h, --help", "-V, --version"] {
            assert!(h.contains(word), "help lacks {word}");
        }
    }

    #[test]
    fn every_new_option_from_the_command_line_and_from_its_variable() {
        use crate::exit::ExitCode;
        use crate::signals::{SIGHUP, SIGKILL, SIGQUIT, SIGTERM};
        let args = [
            "-d",
            "5s",
            "-p",
            "/bin/deregister --service 'my api'",
            "-m",
            "TERM:QUIT",
            "-m",
            "HUP:0",
            "-s",
            "143",
            "-s",
            "TERM",
            "--pdeathsig",
            "KILL",
            "-u",
            "app:web",
            "p",
        ];
        let c = run(&args, &[]).unwrap();
        assert_eq!(c.stop_delay, Duration::from_secs(5));
        assert_eq!(c.pre_stop, ["/bin/deregister", "--service", "my api"]);
        assert_eq!(c.map.apply(SIGTERM), Some(SIGQUIT));
        assert_eq!(c.map.apply(SIGHUP), None);
        assert_eq!(c.success.apply(ExitCode(143)), ExitCode(0));
        assert_eq!(c.pdeathsig, Some(SIGKILL));
        assert_eq!(c.user, Some(UserSpec::parse("app:web").unwrap()));

        let env = [
            ("SHIM_STOP_DELAY", "5s"),
            ("SHIM_PRE_STOP", "/bin/deregister --service 'my api'"),
            ("SHIM_MAP_SIGNAL", "TERM:QUIT, HUP:0"),
            ("SHIM_SUCCESS_EXIT", "143,TERM"),
            ("SHIM_PDEATHSIG", "KILL"),
            ("SHIM_USER", "app:web"),
        ];
        let e = run(&["p"], &env).unwrap();
        assert_eq!(e.stop_delay, c.stop_delay);
        assert_eq!(e.pre_stop, c.pre_stop);
        assert_eq!(e.map, c.map);
        assert_eq!(e.success, c.success);
        assert_eq!(e.pdeathsig, c.pdeathsig);
        assert_eq!(e.user, c.user);
        assert_eq!(run(&["--user=1000", "p"], &env).unwrap().user, Some(UserSpec::parse("1000").unwrap()));
    }

    #[test]
    fn a_repeatable_option_on_the_command_line_replaces_its_variable() {
        let c = run(&["-m", "USR1:USR2", "p"], &[("SHIM_MAP_SIGNAL", "TERM:QUIT")]).unwrap();
        assert_eq!(c.map.apply(crate::signals::SIGTERM), Some(crate::signals::SIGTERM));
    }

    #[test]
    fn bad_new_values_are_usage_errors_naming_the_part() {
        let err = |args: &[&str], env: &[(&str, &str)]| run(args, env).unwrap_err().0;
        assert_eq!(err(&["-m", "TERM", "p"], &[]), "--map-signal: 'TERM' is not FROM:TO (try TERM:QUIT or HUP:0)");
        let e = err(&["p"], &[("SHIM_MAP_SIGNAL", "TERM:QUIT,HUP:NOPE")]);
        assert!(e.starts_with("SHIM_MAP_SIGNAL: 'HUP:NOPE': unknown signal 'NOPE'"), "{e}");
        assert!(err(&["-s", "300", "p"], &[]).starts_with("--success-exit: '300'"));
        assert!(err(&["-p", "'unclosed", "p"], &[]).starts_with("--pre-stop: unclosed '"));
        assert!(err(&["--pdeathsig", "NOPE", "p"], &[]).starts_with("--pdeathsig: unknown signal"));
        assert!(err(&["--stop-delay=soon", "p"], &[]).starts_with("--stop-delay: invalid duration"));
        assert_eq!(err(&["-u", "app:", "p"], &[]), "--user: 'app:' is not USER or USER:GROUP");
        assert_eq!(err(&["p"], &[("SHIM_USER", "")]), "SHIM_USER: '' is not USER or USER:GROUP");
    }

    #[test]
    fn words_split_like_a_shell_without_one() {
        let w = split_words;
        assert_eq!(w("a b  c").unwrap(), ["a", "b", "c"]);
        let got = w(r#"  /bin/x --name 'two words' "q\"uo\\te" a\ b "#).unwrap();
        assert_eq!(got, ["/bin/x", "--name", "two words", r#"q"uo\te"#, "a b"]);
        assert_eq!(w("''").unwrap(), [""]);
        assert_eq!(w("it's").unwrap_err(), "unclosed ' in 'it's'");
        assert!(w("   ").is_err());
        assert!(w(r"a\").is_err());
        assert!(w(r#""a"#).is_err());
    }
}
