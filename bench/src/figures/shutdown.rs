//! Figure 7: shutdown. Each init runs as PID 1 with `bench-child ack` under it, which exits at
//! once on SIGTERM; the harness times from kill(init, SIGTERM) to the init's exit (pidfd
//! readable, then waitpid). The floor is the child alone as PID 1. A fresh init per run,
//! interleaved; harness and tree share one CPU.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{interleave, Bench, Known, BUSY_NOTE};
use crate::error::{Context, Result};
use crate::stats;
use crate::sys::Namespace;

/// One timed stop of init `i`, in µs, and how it exited.
fn once(b: &Bench, i: usize, busy: bool) -> Result<(f64, String)> {
    let mut r = b.start(i, Namespace::Pid1, &["ack"])?;
    r.expect(b'r', Duration::from_secs(5))?;
    r.settle(busy, Duration::from_secs(2), "never settled into its wait")?;
    let t0 = Instant::now();
    r.proc.signal(libc::SIGTERM).context(|| format!("{}: send SIGTERM", r.name))?;
    let exit = r.proc.wait(Duration::from_secs(5)).context(|| format!("wait for {}", r.name))?;
    let took = t0.elapsed();
    match exit {
        Some(exit) => Ok((took.as_secs_f64() * 1e6, exit.to_string())),
        None => Err(r.failure("did not exit within 5 s of SIGTERM")),
    }
}

pub fn run(b: &Bench, known: &Known) -> Result<Value> {
    let runs = if b.quick { 20 } else { 200 };
    let warmup = if b.quick { 2 } else { 10 };
    b.pin_harness(b.tree_cpu)?;
    let n = b.inits.len();
    let mut samples = vec![Vec::new(); n];
    let mut exits: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut problems: Vec<Option<String>> = vec![None; n];
    interleave(warmup + runs, &b.all_indices(), &mut problems, |round, i| {
        let (us, exit) = once(b, i, known.busy[i])?;
        if round >= warmup {
            samples[i].push(us);
        }
        if !exits[i].contains(&exit) {
            exits[i].push(exit);
        }
        Ok(())
    });
    let results: Vec<Value> = (0..n)
        .map(|i| {
            let fields = json!({ "us": stats::json(&samples[i]), "exits": exits[i] });
            b.result(i, fields, problems[i].as_deref(), known.busy[i].then_some(BUSY_NOTE))
        })
        .collect();
    Ok(json!({
        "runs": runs,
        "warmup_runs": warmup,
        "unit": "µs",
        "cpu": format!("harness and tree on CPU {}", b.tree_cpu),
        "results": results,
    }))
}
