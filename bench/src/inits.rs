//! The inits measured side by side: shim, the peers that are installed, the floor (the
//! program run with no init), and the minimal init (the least any init can do, the yardstick
//! of shim's start-up). How each is invoked, its version, size and linkage, and the
//! limits of each that the figures run into, as observed on this machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::elf;
use crate::sys::Namespace;

/// The row name of the floor.
pub const FLOOR: &str = "no init";

/// The row name of shim's stable release build, measured beside the small build that ships.
pub const SHIM_STABLE: &str = "shim-stable";

/// The row name of the minimal init: not a peer (it does nothing a real init must, no grace
/// period, no process group, no logging), but what start-up and exit cost when an init does
/// nothing else.
pub const MINIMAL: &str = "minimal-init";

pub struct Init {
    pub name: String,
    /// `None` for the floor: the program is run bare.
    pub path: Option<PathBuf>,
    /// Arguments between the init and the program, as PID 1 and not.
    pub args_pid1: Vec<String>,
    pub args_host: Vec<String>,
    /// Arguments that make it print its version (or help) and exit 0 at once: the cost of
    /// loading the binary alone.
    pub version_args: Vec<String>,
    pub version: String,
    pub notes: Vec<String>,
}

impl Init {
    pub fn is_floor(&self) -> bool {
        self.path.is_none()
    }

    /// The full command line that runs `program` under this init.
    pub fn argv(&self, ns: Namespace, program: &[String]) -> Vec<String> {
        let Some(path) = &self.path else { return program.to_vec() };
        let args = if ns == Namespace::Pid1 { &self.args_pid1 } else { &self.args_host };
        std::iter::once(path.display().to_string()).chain(args.iter().cloned()).chain(program.iter().cloned()).collect()
    }

    pub fn to_json(&self) -> Value {
        let Some(path) = &self.path else {
            return json!({ "name": self.name, "floor": true, "notes": self.notes });
        };
        let size = std::fs::metadata(path).map(|m| m.len()).ok();
        let interp = elf::interpreter(path);
        json!({
            "name": self.name,
            "floor": false,
            "path": path.display().to_string(),
            "version": self.version,
            "invocation_pid1": self.argv(Namespace::Pid1, &["PROG".to_string()]).join(" "),
            "invocation_not_pid1": self.argv(Namespace::Host, &["PROG".to_string()]).join(" "),
            "binary_bytes": size,
            "static": interp.as_ref().ok().map(Option::is_none),
            "interpreter": interp.ok().flatten(),
            "notes": self.notes,
        })
    }
}

/// A peer that is not installed.
pub struct Skipped {
    pub name: &'static str,
    pub why: String,
}

struct Peer {
    name: &'static str,
    path: PathBuf,
    args_pid1: &'static [&'static str],
    args_host: &'static [&'static str],
    version_args: &'static [&'static str],
    install: &'static str,
    notes: &'static [&'static str],
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"))
}

fn peers() -> Vec<Peer> {
    let cargo_bin = cargo_home().join("bin");
    let tini_notes: &[&str] = &[
        "forwards to its child only (`-g` for the child's group)",
        "exits as soon as its child exits; the kernel then kills whatever is left in the namespace",
        "not PID 1 it reaps orphans only with `-s` (used here)",
    ];
    vec![
        Peer {
            name: "tini",
            path: "/usr/bin/tini".into(),
            args_pid1: &["--"],
            args_host: &["-s", "--"],
            version_args: &["--version"],
            install: "apt-get install tini",
            notes: tini_notes,
        },
        Peer {
            name: "tini-static",
            path: "/usr/bin/tini-static".into(),
            args_pid1: &["--"],
            args_host: &["-s", "--"],
            version_args: &["--version"],
            install: "apt-get install tini",
            notes: tini_notes,
        },
        Peer {
            name: "dumb-init",
            path: "/usr/bin/dumb-init".into(),
            args_pid1: &[],
            args_host: &[],
            version_args: &["--version"],
            install: "apt-get install dumb-init",
            notes: &[
                "setsid()s its child and forwards to that session's group; with sched_autogroup on and no cpu cgroup \
                 (the suite makes one of its own where it can: see the machine), the new session is also a \
                 scheduling group of its own, which shortens its round trips by 1-3 µs: `dumb-init -c` (no \
                 setsid) is then no faster than catatonit",
                "exits as soon as its child exits (SIGTERM to the group first)",
                "not a subreaper: not PID 1, orphans pass it by and are not its to reap",
            ],
        },
        Peer {
            name: "catatonit",
            path: "/usr/bin/catatonit".into(),
            args_pid1: &["--"],
            args_host: &["--"],
            version_args: &["--version"],
            install: "apt-get install catatonit",
            notes: &[
                "forwards to its child only; exits as soon as its child exits",
                "not PID 1 it makes itself a subreaper",
            ],
        },
        Peer {
            name: "pid1",
            path: cargo_bin.join("pid1"),
            args_pid1: &[],
            args_host: &[],
            // It has no version flag.
            version_args: &["--help"],
            install: "cargo install pid1-exe",
            notes: &[
                "the `pid1-exe` crate; forwards only SIGTERM and SIGINT, so the forwarding and storm figures do not apply",
                "not PID 1 it execs the program in its own place: no init is left running",
            ],
        },
        Peer {
            name: "tino",
            path: cargo_bin.join("tino"),
            args_pid1: &["--"],
            args_host: &["-s", "--"],
            version_args: &["--version"],
            install: "cargo install tino --locked",
            notes: &[
                "polls its signalfd with a zero timeout in a loop, so it never sleeps: a whole CPU while idle (figure 5); \
                 measured alone in figure 2, and never counted as the best peer",
                "prints a log line on stderr when it exits",
                "not PID 1 it reaps orphans only with `-s` (used here)",
            ],
        },
    ]
}

/// Run `path args` and return the first line it prints (stdout, else stderr), waiting at most
/// `timeout`; killed by its pid if it overruns.
fn first_line(path: &Path, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + timeout;
    while child.try_wait().ok()?.is_none() {
        if Instant::now() >= deadline {
            if let Err(e) = child.kill() {
                eprintln!("shim-bench: could not kill {} (pid {}): {e}", path.display(), child.id());
            }
            let _reaped = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().ok()?;
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    String::from_utf8_lossy(&text).lines().next().map(|l| l.trim().to_string())
}

/// A crate's version as `cargo install` recorded it, for binaries with no version flag.
fn installed_crate_version(binary: &str) -> Option<String> {
    let listing = std::fs::read_to_string(cargo_home().join(".crates.toml")).ok()?;
    let line = listing.lines().find(|l| l.contains(&format!("\"{binary}\"")))?;
    // `"pid1-exe 0.1.6 (registry+...)" = ["pid1"]`
    let mut words = line.trim_start_matches('"').split_whitespace();
    Some(format!("{} {}", words.next()?, words.next()?))
}

pub fn floor() -> Init {
    Init {
        name: FLOOR.to_string(),
        path: None,
        args_pid1: vec![],
        args_host: vec![],
        version_args: vec![],
        version: String::new(),
        notes: vec!["the program itself, with no init: the floor every Δ is taken over".to_string()],
    }
}

/// An init this suite builds: called `INIT -- PROG` either way, with `--version`.
fn built_here(name: &str, path: &Path, notes: Vec<String>) -> Init {
    Init {
        name: name.to_string(),
        path: Some(path.to_path_buf()),
        args_pid1: vec!["--".to_string()],
        args_host: vec!["--".to_string()],
        version_args: vec!["--version".to_string()],
        version: first_line(path, &["--version"], Duration::from_secs(5)).unwrap_or_default(),
        notes,
    }
}

fn minimal(path: &Path) -> Init {
    let notes = vec![
        "bench/minimal-init/minimal-init.c, static with musl: blocks every signal, vforks and execs the program, \
         forwards every signal to it, reaps, exits with its status. Nothing a real init needs besides (no grace \
         period, no process group, no terminal, no logging): the least an init can cost, never a peer"
            .to_string(),
        "not PID 1 it is no subreaper: orphans pass it by".to_string(),
    ];
    built_here(MINIMAL, path, notes)
}

fn shim(name: &str, path: &Path, build: &str) -> Init {
    let notes = vec![
        format!("built by {build}"),
        "forwards to the program's process group; waits for every descendant, not only its child".to_string(),
        "not PID 1 it makes itself a subreaper".to_string(),
    ];
    built_here(name, path, notes)
}

/// The floor, shim (and its stable build, if shim is the small one), the minimal init, then
/// every installed peer; and the peers that are not installed.
pub fn discover(built: &crate::prepare::Built) -> (Vec<Init>, Vec<Skipped>) {
    let timeout = Duration::from_secs(5);
    let mut inits = vec![floor(), shim("shim", &built.shim, &built.shim_build)];
    if let Some(stable) = &built.shim_stable {
        inits.push(shim(SHIM_STABLE, stable, "`cargo build --release` (stable Rust), for comparison"));
    }
    inits.push(minimal(&built.minimal_init));
    let mut skipped = Vec::new();
    for peer in peers() {
        if !peer.path.is_file() {
            skipped.push(Skipped {
                name: peer.name,
                why: format!("{} is not installed (`{}`)", peer.path.display(), peer.install),
            });
            continue;
        }
        let version = match peer.name {
            "pid1" => installed_crate_version("pid1"),
            _ => first_line(&peer.path, peer.version_args, timeout),
        };
        inits.push(Init {
            name: peer.name.to_string(),
            path: Some(peer.path),
            args_pid1: peer.args_pid1.iter().map(|s| s.to_string()).collect(),
            args_host: peer.args_host.iter().map(|s| s.to_string()).collect(),
            version_args: peer.version_args.iter().map(|s| s.to_string()).collect(),
            version: version.unwrap_or_default(),
            notes: peer.notes.iter().map(|s| s.to_string()).collect(),
        });
    }
    (inits, skipped)
}
