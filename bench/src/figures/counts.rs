//! Figure 8: what start-up and exit take, counted. Each init runs `INIT -- true` (the static
//! one, [`Bench::program`]) as PID 1 of a new PID and mount namespace, single-stepped by the
//! harness (`sys::ptrace`) from its exec to its exit: its instructions and syscalls from the exec to the syscall that spawns
//! the program, its child's until that child execs, the init's own while the program runs,
//! and from the program's exit to the init's. Counts, not times, so the machine's load does
//! not move them; they vary by a few instructions between runs (randomised addresses change
//! how long a copy or a string search takes), so each is the median of a few runs, or of one
//! for an init that takes tens of thousands.

use serde_json::{json, Value};

use super::{interleave, Bench, ENV};
use crate::error::{Context, Result};
use crate::stats;
use crate::sys::ptrace::{self, Phase, PHASES};
use crate::sys::{Namespace, Program};

/// No init needs anywhere near this many; a run past it is stopped and reported.
const LIMIT: u64 = 20_000_000;
/// Inits that take more instructions than this are counted in one run only.
const ONCE_ABOVE: f64 = 50_000.0;

/// Each phase's key in the JSON.
fn key(phase: Phase) -> &'static str {
    match phase {
        Phase::ToSpawn => "to_spawn",
        Phase::ChildToExec => "child_to_exec",
        Phase::Running => "while_running",
        Phase::ToExit => "to_exit",
    }
}

#[derive(Default)]
struct Samples {
    instructions: Vec<Vec<f64>>,
    syscalls: Vec<Vec<f64>>,
    /// Start (exec to spawn) and exit (program's exit to the init's) together.
    instructions_start_and_exit: Vec<f64>,
    syscalls_start_and_exit: Vec<f64>,
    /// The syscalls of the first run, by name, per phase.
    names: Vec<String>,
    exits: Vec<String>,
}

pub fn run(b: &Bench) -> Result<Value> {
    let runs = if b.quick { 1 } else { 3 };
    let program = [b.program.display().to_string()];
    let n = b.inits.len();
    let mut prepared = Vec::new();
    for init in &b.inits {
        let argv = init.argv(Namespace::Pid1, &program);
        prepared.push(Program::new(&argv, &ENV).context(|| format!("prepare {}", argv.join(" ")))?);
    }
    let mut samples: Vec<Samples> = (0..n)
        .map(|_| Samples { instructions: vec![vec![]; 4], syscalls: vec![vec![]; 4], ..Samples::default() })
        .collect();
    let mut problems: Vec<Option<String>> = vec![None; n];
    interleave(runs, &b.init_indices(), &mut problems, |round, i| {
        // Counts barely vary, and stepping a dynamically linked init's loader takes seconds:
        // a large one is counted once.
        if round > 0 && samples[i].instructions_start_and_exit.first().is_some_and(|&n| n > ONCE_ABOVE) {
            return Ok(());
        }
        let trace = ptrace::trace(&prepared[i], &b.quiet_stdio(i), LIMIT)
            .context(|| format!("{}: count its instructions", b.inits[i].name))?;
        let s = &mut samples[i];
        for (k, phase) in PHASES.iter().enumerate() {
            let counted = trace.of(*phase);
            s.instructions[k].push(counted.instructions as f64);
            s.syscalls[k].push(counted.syscalls.len() as f64);
        }
        let ends = [trace.of(Phase::ToSpawn), trace.of(Phase::ToExit)];
        s.instructions_start_and_exit.push(ends.iter().map(|c| c.instructions as f64).sum());
        s.syscalls_start_and_exit.push(ends.iter().map(|c| c.syscalls.len() as f64).sum());
        if s.names.is_empty() {
            s.names = PHASES
                .iter()
                .map(|&p| trace.of(p).syscalls.iter().map(|&nr| ptrace::syscall_name(nr)).collect::<Vec<_>>().join(" "))
                .collect();
        }
        let exit = trace.exit.to_string();
        if !s.exits.contains(&exit) {
            s.exits.push(exit);
        }
        Ok(())
    });
    let results: Vec<Value> = b
        .init_indices()
        .into_iter()
        .map(|i| {
            let s = &samples[i];
            let mut fields = json!({
                "instructions_start_and_exit": stats::json(&s.instructions_start_and_exit),
                "syscalls_start_and_exit": stats::json(&s.syscalls_start_and_exit),
                "exits": s.exits,
            });
            for (k, phase) in PHASES.iter().enumerate() {
                fields[format!("instructions_{}", key(*phase))] = stats::json(&s.instructions[k]);
                fields[format!("syscalls_{}", key(*phase))] = stats::json(&s.syscalls[k]);
                fields[format!("syscall_names_{}", key(*phase))] = s.names.get(k).cloned().into();
            }
            b.result(i, fields, problems[i].as_deref(), None)
        })
        .collect();
    Ok(json!({
        "program": b.program.display().to_string(),
        "runs": runs,
        "how": "single-stepped under ptrace as PID 1 of a new PID and mount namespace; the init's own exec counts as its \
                first syscall",
        "start_and_exit": "to_spawn (exec to the spawn of the program, the spawn included) + to_exit (the program's exit \
                           to the init's)",
        "results": results,
    }))
}
