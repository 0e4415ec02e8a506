//! Figure 5: an idle init. Every init runs at once, each as PID 1 with `bench-child idle SECS`
//! (a `sleep SECS` with a handshake at each end) under it, since idle inits do not disturb each
//! other. The window opens a settling time after the child is ready, once the init sleeps,
//! and closes when the child says it is done, before it exits: the init's context switches
//! and CPU over the window are what it does while nothing happens. Its memory is read then.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Bench, Known, Running, BUSY_NOTE};
use crate::error::{Context, Result};
use crate::procfs::{self, Cpu, Status};
use crate::sys::Namespace;

/// Time for each init to finish starting up after its child is ready (set-up after exec,
/// closing fds, its first wait). The start-up figure times that; this one is about after.
const SETTLE: Duration = Duration::from_millis(100);

struct Sample {
    at: Instant,
    status: Status,
    cpu: Cpu,
}

fn sample(r: &Running) -> Result<Sample> {
    Ok(Sample { at: Instant::now(), status: r.status()?, cpu: r.cpu()? })
}

pub fn run(b: &Bench, known: &Known) -> Result<Value> {
    let secs: f64 = if b.quick { 1.0 } else { 5.0 };
    b.pin_harness(b.harness_cpu)?;
    let indices = b.init_indices();
    let mut running = Vec::new();
    let mut problems: Vec<(usize, String)> = Vec::new();
    for &i in &indices {
        let mut r = b.start(i, Namespace::Pid1, &["idle", &secs.to_string()])?;
        match r.expect(b'r', Duration::from_secs(5)) {
            Ok(()) => running.push((i, r)),
            Err(e) => problems.push((i, e.to_string())),
        }
    }
    std::thread::sleep(SETTLE);
    let mut before = Vec::new();
    for (i, r) in &running {
        if !known.busy[*i] && !procfs::wait_asleep(r.pid(), Duration::from_secs(1)) {
            eprintln!("shim-bench: {} was not asleep {SETTLE:?} after its child started", r.name);
        }
        before.push(sample(r)?);
    }
    for (_, r) in running.iter_mut() {
        r.expect(b'd', Duration::from_secs_f64(secs + 10.0))?;
    }
    let mut after = Vec::new();
    for (_, r) in &running {
        after.push(sample(r)?);
    }
    for (_, r) in running.iter_mut() {
        r.tell(b'q')?;
        if r.proc.wait(Duration::from_secs(5)).context(|| format!("wait for {}", r.name))?.is_none() {
            eprintln!("shim-bench: {} did not exit within 5 s of its child; killing it", r.name);
        }
    }
    let mut results = Vec::new();
    for (k, (i, _)) in running.iter().enumerate() {
        let (a, z) = (&before[k], &after[k]);
        let voluntary = z.status.voluntary - a.status.voluntary;
        let nonvoluntary = z.status.nonvoluntary - a.status.nonvoluntary;
        let used = z.cpu.since(a.cpu);
        let fields = json!({
            "context_switches": voluntary + nonvoluntary,
            "voluntary": voluntary,
            "nonvoluntary": nonvoluntary,
            "cpu_us": (used.runtime_ns as f64 / 1e3 * 10.0).round() / 10.0,
            "cpu_ticks": used.ticks,
            "window_s": ((z.at - a.at).as_secs_f64() * 1000.0).round() / 1000.0,
            "rss_kib": z.status.rss_kib,
            "rss_anon_kib": z.status.rss_anon_kib,
            "rss_file_kib": z.status.rss_file_kib,
            "hwm_kib": z.status.hwm_kib,
        });
        results.push(b.result(*i, fields, None, known.busy[*i].then_some(BUSY_NOTE)));
    }
    for (i, problem) in problems {
        results.push(b.result(i, json!({}), Some(&problem), None));
    }
    Ok(json!({
        "child": format!("sleep {secs} (bench-child idle {secs})"),
        "seconds": secs,
        "settle_ms": SETTLE.as_millis() as u64,
        "results": results,
    }))
}
