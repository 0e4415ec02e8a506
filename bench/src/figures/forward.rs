//! Figure 2: signal forwarding latency. Each init runs as PID 1 with `bench-child ack` under
//! it; the harness sends SIGUSR1 to the init and times until the child's acknowledgement
//! arrives through its pipe. The floor sends to the child directly (the child as PID 1, with
//! the signal blocked, so the kernel queues it). The inits are started together and the round
//! trips interleaved across them; harness and trees share one CPU, so the figure is the
//! software path, not cross-CPU wake-ups. An init that never sleeps would take that CPU from
//! the others, so it is measured alone, after them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Bench, Known, Running, BUSY_NOTE, SETTLE_TIMEOUT};
use crate::error::{Context, Result};
use crate::procfs;
use crate::stats;
use crate::sys::Namespace;

/// Start init `i` and check it forwards SIGUSR1; `Ok((running, settled))`, or why not.
fn start_probed(b: &Bench, i: usize) -> Result<std::result::Result<(Running, bool), String>> {
    let mut r = b.start(i, Namespace::Pid1, &["ack"])?;
    if let Err(e) = r.expect(b'r', Duration::from_secs(5)) {
        return Ok(Err(e.to_string()));
    }
    let settled = procfs::wait_asleep(r.pid(), SETTLE_TIMEOUT);
    r.proc.signal(libc::SIGUSR1).context(|| format!("{}: send SIGUSR1", r.name))?;
    if r.expect(b'a', Duration::from_secs(1)).is_err() {
        return Ok(Err("does not forward SIGUSR1 as PID 1 (no acknowledgement within 1 s)".to_string()));
    }
    Ok(Ok((r, settled)))
}

/// Interleaved round trips across `group`, `warmup` of them not recorded.
fn round_trips(
    group: &mut Vec<(usize, Running)>,
    count: usize,
    warmup: usize,
    samples: &mut [Vec<f64>],
    problem: &mut [Option<String>],
) {
    for round in 0..warmup + count {
        let members: Vec<usize> = (0..group.len()).collect();
        let mut failed = Vec::new();
        for k in Bench::shuffled(round, &members) {
            let (i, r) = &mut group[k];
            let t0 = Instant::now();
            let acked = r
                .proc
                .signal(libc::SIGUSR1)
                .map_err(|e| e.to_string())
                .and_then(|()| r.expect(b'a', Duration::from_secs(2)).map_err(|e| e.to_string()));
            let took = t0.elapsed();
            match acked {
                Ok(()) if round >= warmup => samples[*i].push(took.as_secs_f64() * 1e6),
                Ok(()) => {}
                Err(e) => {
                    problem[*i] = Some(format!("round trip {round}: {e}"));
                    failed.push(k);
                }
            }
        }
        // Dropped, so killed by pid.
        for k in failed.into_iter().rev() {
            group.remove(k);
        }
    }
}

fn stop_all(group: Vec<(usize, Running)>) -> Result<()> {
    for (_, mut r) in group {
        if r.stop(Duration::from_secs(2))?.is_none() {
            eprintln!("shim-bench: {} did not exit within 2 s of SIGTERM; killing it", r.name);
        }
    }
    Ok(())
}

/// The figure, and what it learnt about each init.
pub fn run(b: &Bench) -> Result<(Value, Known)> {
    let count = if b.quick { 500 } else { 5000 };
    let warmup = if b.quick { 50 } else { 200 };
    b.pin_harness(b.tree_cpu)?;
    let n = b.inits.len();
    let mut problem: Vec<Option<String>> = vec![None; n];
    let mut busy = vec![false; n];
    let mut group = Vec::new();
    for i in b.all_indices() {
        match start_probed(b, i)? {
            Ok((r, true)) => group.push((i, r)),
            // Killed as it drops; measured alone below.
            Ok((_, false)) => busy[i] = true,
            Err(why) => problem[i] = Some(why),
        }
    }
    let mut samples = vec![Vec::with_capacity(count); n];
    round_trips(&mut group, count, warmup, &mut samples, &mut problem);
    let mut forwards: Vec<bool> = (0..n).map(|i| group.iter().any(|(j, _)| *j == i)).collect();
    stop_all(group)?;
    for i in (0..n).filter(|&i| busy[i]) {
        match start_probed(b, i)? {
            Ok((r, _)) => {
                let mut alone = vec![(i, r)];
                round_trips(&mut alone, count, warmup, &mut samples, &mut problem);
                forwards[i] = !alone.is_empty();
                stop_all(alone)?;
            }
            Err(why) => problem[i] = Some(why),
        }
    }
    let alone = format!("{BUSY_NOTE}; measured alone, as it would take the CPU from the others");
    let results: Vec<Value> = (0..n)
        .map(|i| {
            let fields = json!({ "us": stats::json(&samples[i]) });
            b.result(i, fields, problem[i].as_deref(), busy[i].then_some(alone.as_str()))
        })
        .collect();
    let figure = json!({
        "round_trips": count,
        "warmup_round_trips": warmup,
        "unit": "µs",
        "signal": "SIGUSR1",
        "cpu": format!("harness and trees on CPU {}", b.tree_cpu),
        "results": results,
    });
    for (i, f) in forwards.iter_mut().enumerate() {
        *f &= !b.inits[i].is_floor();
    }
    Ok((figure, Known { forwards, busy }))
}
