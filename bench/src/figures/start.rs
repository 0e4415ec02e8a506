//! Figure 1: the cost of an init at start and exit. `INIT -- true` (a static `true`,
//! [`Bench::program`]), timed from the clone to the reap, as PID 1 of a new PID and mount
//! namespace and as an ordinary child; the Δ over running `true` itself the same way is what
//! the init adds, taken round by round (the median of the differences within each round,
//! `delta_us_paired`). Harness and tree share one CPU, so no cross-CPU wake-up is timed.
//!
//! Two diagnostics come with it: the minor page faults of the whole tree (from wait4's rusage;
//! in a VM each costs a good part of a microsecond), and `INIT --version` alone, which is what
//! loading the init's binary costs before it does anything.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Bench, ENV};
use crate::error::{Context, Result};
use crate::stats;
use crate::sys::{self, Exit, Namespace, Program};

struct Mode {
    key: &'static str,
    ns: Namespace,
    /// Run `INIT VERSION_ARGS` instead of `INIT -- PROGRAM`.
    alone: bool,
}

const MODES: [Mode; 3] = [
    Mode { key: "pid1", ns: Namespace::Pid1, alone: false },
    Mode { key: "not_pid1", ns: Namespace::Host, alone: false },
    Mode { key: "alone", ns: Namespace::Host, alone: true },
];

#[derive(Default, Clone)]
struct Samples {
    us: Vec<f64>,
    /// Each recorded round's time, `None` where the run failed: rounds line up across inits.
    by_round: Vec<Option<f64>>,
    faults: Vec<f64>,
    failures: usize,
    last_failure: String,
}

pub fn run(b: &Bench) -> Result<Value> {
    // A round of every init takes tens of milliseconds, and the median of 300 moved the
    // floor ratio by a tenth from run to run.
    let runs = if b.quick { 30 } else { 1000 };
    let warmup = if b.quick { 3 } else { 20 };
    b.pin_harness(b.tree_cpu)?;
    let program = [b.program.display().to_string()];
    // prepared[m][i]: None where the mode does not apply (the floor has no binary of its own).
    let mut prepared: Vec<Vec<Option<Program>>> = Vec::new();
    for mode in &MODES {
        let mut per_init = Vec::new();
        for init in &b.inits {
            let argv = match (&init.path, mode.alone) {
                (None, true) => {
                    per_init.push(None);
                    continue;
                }
                (Some(path), true) => {
                    std::iter::once(path.display().to_string()).chain(init.version_args.iter().cloned()).collect()
                }
                (_, false) => init.argv(mode.ns, &program),
            };
            per_init.push(Some(Program::new(&argv, &ENV).context(|| format!("prepare {}", argv.join(" ")))?));
        }
        prepared.push(per_init);
    }
    let n = b.inits.len();
    let mut samples = vec![vec![Samples::default(); n]; MODES.len()];
    let members = b.all_indices();
    for round in 0..warmup + runs {
        for (m, mode) in MODES.iter().enumerate() {
            for i in Bench::shuffled(round, &members) {
                let Some(program) = &prepared[m][i] else { continue };
                let t0 = Instant::now();
                let mut proc = sys::spawn(program, mode.ns, Some(b.tree_cpu), &b.quiet_stdio(i))
                    .context(|| format!("start {}", b.inits[i].name))?;
                let exit = proc.wait(Duration::from_secs(5)).context(|| format!("wait for {}", b.inits[i].name))?;
                let took = t0.elapsed();
                let s = &mut samples[m][i];
                if round >= warmup {
                    let ok = matches!(exit, Some(Exit::Code(0)));
                    s.by_round.push(ok.then_some(took.as_secs_f64() * 1e6));
                }
                match exit {
                    Some(Exit::Code(0)) if round >= warmup => {
                        s.us.push(took.as_secs_f64() * 1e6);
                        s.faults.extend(proc.minor_faults().map(|f| f as f64));
                    }
                    Some(Exit::Code(0)) => {}
                    Some(other) => (s.failures, s.last_failure) = (s.failures + 1, other.to_string()),
                    // Killed by its pid as `proc` drops.
                    None => (s.failures, s.last_failure) = (s.failures + 1, "did not exit within 5 s".to_string()),
                }
            }
        }
    }
    let mut out = json!({
        "program": b.program.display().to_string(),
        "runs": runs,
        "warmup_runs": warmup,
        "unit": "µs",
        "cpu": format!("harness and tree on CPU {}", b.tree_cpu),
    });
    let floor = b.inits.iter().position(|init| init.is_floor());
    for (m, mode) in MODES.iter().enumerate() {
        out[mode.key] = (0..n)
            .filter(|&i| prepared[m][i].is_some())
            .map(|i| {
                let s = &samples[m][i];
                // The init's time minus the floor's in the same round: each round runs every
                // init back to back, so a slow minute of the machine falls on both.
                let paired: Vec<f64> = match floor.filter(|_| !mode.alone) {
                    Some(f) => s
                        .by_round
                        .iter()
                        .zip(&samples[m][f].by_round)
                        .filter_map(|(mine, floor)| Some((*mine)? - (*floor)?))
                        .collect(),
                    None => Vec::new(),
                };
                json!({
                    "init": b.inits[i].name,
                    "us": stats::json(&s.us),
                    "delta_us_paired": stats::json(&paired),
                    "minor_faults": stats::json(&s.faults),
                    "failures": s.failures,
                    "last_failure": s.last_failure,
                })
            })
            .collect();
    }
    Ok(out)
}
