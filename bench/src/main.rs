//! `shim-bench`: measures shim and every installed peer init side by side in one run, and
//! writes `bench/results/latest.{json,md,svg}`.
//!
//! ```text
//! cargo run --release -p shim-bench               the full suite (a few minutes)
//! cargo run --release -p shim-bench -- --quick    a short smoke run
//! cargo run --release -p shim-bench -- --render   redraw latest.md and latest.svg from latest.json
//! cargo run --release -p shim-bench -- --counts   figure 8 alone (seconds), printed, nothing written
//! cargo run --release -p shim-bench -- --start    figure 1 alone (a minute), printed, nothing written
//! cargo run --release -p shim-bench -- --forward  figure 2 alone (a minute), printed, nothing written
//! cargo run --release -p shim-bench -- --reap     figure 4 (after figure 2), printed, nothing written
//! ```
//! It needs root: every init is measured as PID 1 of a new PID namespace, as in a container.
//! `main` only wires parse → build → measure → write.

mod cgroup;
mod elf;
mod error;
mod figures;
mod inits;
mod machine;
mod prepare;
mod procfs;
mod report;
mod stats;
mod sys;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{json, Value};

use error::{Context, Error, Result};
use figures::Bench;

const USAGE: &str =
    "usage: cargo run --release -p shim-bench [-- --quick | --render | --counts | --start | --forward | --reap]";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Full,
    Quick,
    /// Redraw the Markdown and the chart from the last results.
    Render,
    /// Only count start-up's instructions and syscalls (figure 8), and print them.
    Counts,
    /// Only time start + exit (figure 1), and print it.
    Start,
    /// Only time signal forwarding (figure 2), and print it.
    Forward,
    /// Only measure reaping (figure 4, after figure 2, which finds the inits that never
    /// sleep), and print it.
    Reap,
}

fn parse_args() -> Result<Mode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Ok(Mode::Full),
        ["--quick"] => Ok(Mode::Quick),
        ["--render"] => Ok(Mode::Render),
        ["--counts"] => Ok(Mode::Counts),
        ["--start"] => Ok(Mode::Start),
        ["--forward"] => Ok(Mode::Forward),
        ["--reap"] => Ok(Mode::Reap),
        ["-h" | "--help"] => {
            println!("{USAGE}");
            std::process::exit(0)
        }
        _ => Err(Error::new(format!("understand the arguments {args:?}\n{USAGE}"))),
    }
}

fn main() -> ExitCode {
    match parse_args().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shim-bench: failed to {e}");
            ExitCode::FAILURE
        }
    }
}

fn method(b: &Bench) -> Vec<String> {
    vec![
        "As PID 1: the harness clones each init (or the bare program) into a new PID and mount namespace itself \
         (clone with CLONE_NEWPID | CLONE_NEWNS, no `unshare` process in between, so only the floor is subtracted); \
         /proc is not remounted inside. Not PID 1: an ordinary child of the harness. Either way the tree gets a \
         container's environment (PATH, HOSTNAME, HOME), stdin from /dev/null, stdout and stderr to a log."
            .to_string(),
        "Cgroup: the suite moves itself into a cpu cgroup of its own (`shim-bench`, v1 or v2) before it starts \
         anything, so every tree runs as in a container, where the kernel's autogroup does not apply; the \
         machine line says which cgroup it ran in."
            .to_string(),
        "Interleaved: every figure runs the inits in turn, round after round (B A C, C B A, A C B ...), each round in its own shuffled order (the same in every run), so that no init always follows the same one: what a round leaves behind, caches evicted by a large binary or the kernel's deferred frees after a reaping round, does not fall on one init."
            .to_string(),
        format!(
            "Pinned: the measured tree (init, child, orphans) runs on CPU {}; the harness shares that CPU where a figure \
             times a round trip (1, 2, 7), and runs on CPU {} where it must not compete (3, 4, 5).",
            b.tree_cpu, b.harness_cpu
        ),
        "Δ: an init's median minus the floor's (`no init`: the same program run the same way with no init); in \
         figure 1, the median over rounds of the init's time minus the floor's in the same round, which a loaded \
         machine moves less. \
         × best peer: a value over the best peer's (shim and the floor are not peers, nor is a peer that never \
         sleeps: it buys its latency with a whole CPU). Percentiles by nearest rank."
            .to_string(),
        "minimal-init: bench/minimal-init/minimal-init.c, built static with musl-gcc by the suite; it blocks every \
         signal, vforks and execs the program, forwards, reaps and exits with its status, and does nothing else. Its \
         start + exit Δ is what any init costs, and figure 1 gives every init's Δ as a multiple of it. Not a peer."
            .to_string(),
        "The program of figures 1 and 8: bench/minimal-init/true.c (`int main(void) { return 0; }`), static with \
         musl-gcc, so that no dynamic loader's start-up, and none of its spread from run to run, is in the times."
            .to_string(),
        "CPU: the init's own time (not its children's), from /proc/PID/schedstat in ns, read while it sleeps."
            .to_string(),
        format!(
            "shim is built by the suite as it ships, by scripts/build.sh; `shim-stable` is the stable release \
             build (`cargo build --release --target {} -p shim`, into target/bench-build), measured beside it. Neither \
             is a peer. The peers are the installed binaries. One static bench child serves every init and the floor, \
             so its cost cancels out.",
            prepare::TARGET
        ),
    ]
}

/// Run one figure, saying on stderr what it is and how long it took.
fn figure<T>(n: usize, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("shim-bench: figure {n}/8: {what}");
    let t0 = Instant::now();
    let out = f().context(|| format!("measure figure {n} ({what})"))?;
    eprintln!("shim-bench:   done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(out)
}

fn write_outputs(dir: &Path, doc: &Value) -> Result<String> {
    std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    let markdown = report::markdown::render(doc);
    let json = serde_json::to_string_pretty(doc).context(|| "serialise the results".to_string())?;
    for (name, text) in
        [("latest.json", json + "\n"), ("latest.md", markdown.clone()), ("latest.svg", report::svg::render(doc))]
    {
        let path = dir.join(name);
        std::fs::write(&path, text).context(|| format!("write {}", path.display()))?;
        eprintln!("shim-bench: wrote {}", path.display());
    }
    Ok(markdown)
}

fn run(mode: Mode) -> Result<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().ok_or_else(|| Error::new("find the workspace root"))?;
    let results = manifest.join("results");
    if mode == Mode::Render {
        let path = results.join("latest.json");
        let text = std::fs::read_to_string(&path).context(|| format!("read {}", path.display()))?;
        let mut doc: Value = serde_json::from_str(&text).context(|| format!("parse {}", path.display()))?;
        doc["targets"] = report::evaluate_targets(&doc);
        print!("{}", write_outputs(&results, &doc)?);
        return Ok(());
    }
    if !sys::is_root() {
        return Err(Error::new("start: the bench needs root, to run each init as PID 1 of a new PID namespace"));
    }
    match cgroup::enter() {
        Ok(dir) => eprintln!("shim-bench: measuring in the cpu cgroup {}, as a container would run", dir.display()),
        Err(why) => eprintln!("shim-bench: measuring in the cgroup it was started in: {why}"),
    }
    let quick = mode == Mode::Quick;
    let command = format!("cargo run --release -p shim-bench{}", if quick { " -- --quick" } else { "" });
    let built = prepare::build(root)?;
    let (inits, skipped) = inits::discover(&built);
    for s in &skipped {
        eprintln!("shim-bench: skipping {}: {}", s.name, s.why);
    }
    let date = machine::utc_now();
    // Before the suite: the reaping figure's own orphans (40 000 in all) raise it for minutes after.
    let load_start = machine::load_average();
    let t0 = Instant::now();
    let bench = Bench::new(inits, built.child.clone(), built.program.clone(), quick, &built.target_dir.join("logs"))?;
    if mode == Mode::Counts {
        let counts = figures::counts::run(&bench).context(|| "count instructions and syscalls".to_string())?;
        print!("{}", report::markdown::one_figure(&json!({ "figures": { "counts": counts } }), "counts"));
        return Ok(());
    }
    if mode == Mode::Start {
        let start = figures::start::run(&bench).context(|| "time start + exit".to_string())?;
        print!("{}", report::markdown::one_figure(&json!({ "figures": { "start": start } }), "start"));
        return Ok(());
    }
    if mode == Mode::Forward {
        let (forward, _) = figures::forward::run(&bench).context(|| "time signal forwarding".to_string())?;
        print!("{}", report::markdown::one_figure(&json!({ "figures": { "forward": forward } }), "forward"));
        return Ok(());
    }
    if mode == Mode::Reap {
        let (_, known) = figures::forward::run(&bench).context(|| "time signal forwarding".to_string())?;
        let reap = figures::reap::run(&bench, &known).context(|| "measure reaping".to_string())?;
        print!("{}", report::markdown::one_figure(&json!({ "figures": { "reap": reap } }), "reap"));
        return Ok(());
    }
    let start = figure(1, "start + exit of INIT -- true", || figures::start::run(&bench))?;
    let (forward, known) = figure(2, "signal forwarding latency", || figures::forward::run(&bench))?;
    let storm = figure(3, "signal storm", || figures::storm::run(&bench, &known))?;
    let reap = figure(4, "reaping orphans", || figures::reap::run(&bench, &known))?;
    let idle = figure(5, "idle (and memory, figure 6)", || figures::idle::run(&bench, &known))?;
    let shutdown = figure(7, "shutdown", || figures::shutdown::run(&bench, &known))?;
    let counts = figure(8, "instructions and syscalls of start-up and exit", || figures::counts::run(&bench))?;
    let mut inits: Vec<Value> = bench.inits.iter().map(inits::Init::to_json).collect();
    for (init, busy) in inits.iter_mut().zip(&known.busy) {
        init["never_sleeps"] = Value::Bool(*busy);
    }
    let memory = figures::memory::compose(&inits, &idle, &storm, &reap);
    let mut doc = json!({
        "date": date,
        "command": command,
        "argv": std::env::args().collect::<Vec<_>>(),
        "quick": quick,
        "machine": machine::describe(),
        "load_average_before": load_start,
        "duration_s": (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "method": method(&bench),
        "inits": inits,
        "skipped": skipped.iter().map(|s| json!({ "name": s.name, "why": s.why })).collect::<Vec<_>>(),
        "figures": {
            "start": start,
            "forward": forward,
            "storm": storm,
            "reap": reap,
            "idle": idle,
            "memory": memory,
            "shutdown": shutdown,
            "counts": counts,
        },
    });
    doc["targets"] = report::evaluate_targets(&doc);
    print!("{}", write_outputs(&results, &doc)?);
    Ok(())
}
