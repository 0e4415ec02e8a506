//! Figure 3: a signal storm. Each init runs as PID 1 with `bench-child count` under it; the
//! harness, on the other CPU so the init runs concurrently, sends it SIGUSR1 as fast as kill(2)
//! goes, then SIGUSR2. A lower-numbered pending signal is taken first (signal(7)), so when the
//! child answers SIGUSR2 with its count, the init has dealt with every SIGUSR1: the init's CPU
//! is read then, once it sleeps. Standard signals coalesce while pending, so the child's count
//! (how many arrived) is below what was sent, more so for a slower init; CPU is divided by the
//! signals sent.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Bench, Known, BUSY_NOTE};
use crate::error::{Context, Result};
use crate::procfs;
use crate::stats;
use crate::sys::{self, Namespace};

struct Samples {
    cpu_ns_per_signal: Vec<f64>,
    ticks: Vec<f64>,
    delivered: Vec<f64>,
    cpu_us_per_delivered: Vec<f64>,
    wakeups: Vec<f64>,
    send_ms: Vec<f64>,
    rss_kib: u64,
    hwm_kib: u64,
    alive_after: bool,
    problem: Option<String>,
}

/// One storm against init `i`.
fn storm(b: &Bench, i: usize, busy: bool, signals: u64, s: &mut Samples) -> Result<()> {
    let mut r = b.start(i, Namespace::Pid1, &["count"])?;
    r.expect(b'r', Duration::from_secs(5))?;
    let pid = r.pid();
    if !busy && !procfs::wait_asleep(pid, Duration::from_secs(2)) {
        return Err(r.failure("never settled into its wait"));
    }
    let before = procfs::cpu(pid).context(|| format!("read {}'s CPU time", r.name))?;
    let switches = procfs::status(pid).context(|| format!("read {}'s status", r.name))?.voluntary;
    let t0 = Instant::now();
    for k in 0..signals {
        if let Err(e) = sys::kill(pid, libc::SIGUSR1) {
            s.alive_after = false;
            return Err(r.failure(&format!("kill failed after {k} signals: {e}")));
        }
    }
    let sent = t0.elapsed();
    r.proc.signal(libc::SIGUSR2).context(|| format!("{}: send SIGUSR2", r.name))?;
    let mut count = [0u8; 8];
    r.read(&mut count, Duration::from_secs(20))?;
    if !busy && !procfs::wait_asleep(pid, Duration::from_secs(5)) {
        return Err(r.failure("never went back to sleep after the storm"));
    }
    let used = procfs::cpu(pid).context(|| format!("read {}'s CPU time", r.name))?.since(before);
    let mem = procfs::status(pid).context(|| format!("read {}'s status", r.name))?;
    let alive = !r.proc.exited().context(|| format!("{}: check it is alive", r.name))?;
    s.cpu_ns_per_signal.push(used.runtime_ns as f64 / signals as f64);
    s.ticks.push(used.ticks as f64);
    let delivered = u64::from_le_bytes(count);
    s.delivered.push(delivered as f64 / signals as f64);
    if delivered > 0 {
        s.cpu_us_per_delivered.push(used.runtime_ns as f64 / 1e3 / delivered as f64);
    }
    // Each voluntary switch is the init going back to sleep: one wake-up.
    s.wakeups.push(mem.voluntary.saturating_sub(switches) as f64);
    s.send_ms.push(sent.as_secs_f64() * 1e3);
    s.rss_kib = s.rss_kib.max(mem.rss_kib);
    s.hwm_kib = s.hwm_kib.max(mem.hwm_kib);
    s.alive_after &= alive;
    if r.stop(Duration::from_secs(5))?.is_none() {
        return Err(r.failure("did not exit within 5 s of SIGTERM after the storm"));
    }
    Ok(())
}

/// Only the inits that forward SIGUSR1 (figure 2); the others are reported as such.
pub fn run(b: &Bench, known: &Known) -> Result<Value> {
    let signals: u64 = if b.quick { 10_000 } else { 100_000 };
    let rounds = if b.quick { 1 } else { 3 };
    sys::pin_self(b.harness_cpu).context(|| format!("pin the harness to CPU {}", b.harness_cpu))?;
    let n = b.inits.len();
    let mut samples: Vec<Samples> = (0..n)
        .map(|_| Samples {
            cpu_ns_per_signal: vec![],
            ticks: vec![],
            delivered: vec![],
            cpu_us_per_delivered: vec![],
            wakeups: vec![],
            send_ms: vec![],
            rss_kib: 0,
            hwm_kib: 0,
            alive_after: true,
            problem: None,
        })
        .collect();
    let forwarders: Vec<usize> = b.init_indices().into_iter().filter(|&i| known.forwards[i]).collect();
    for i in b.init_indices().into_iter().filter(|i| !forwarders.contains(i)) {
        samples[i].problem = Some("does not forward SIGUSR1 (figure 2)".to_string());
    }
    for round in 0..rounds {
        let active: Vec<usize> = forwarders.iter().copied().filter(|&i| samples[i].problem.is_none()).collect();
        for i in Bench::rotated(round, &active) {
            if let Err(e) = storm(b, i, known.busy[i], signals, &mut samples[i]) {
                samples[i].problem = Some(e.to_string());
            }
        }
    }
    let results: Vec<Value> = b
        .init_indices()
        .into_iter()
        .map(|i| {
            let s = &samples[i];
            json!({
                "init": b.inits[i].name,
                "cpu_ns_per_signal": stats::json(&s.cpu_ns_per_signal),
                "cpu_ticks_total": stats::json(&s.ticks),
                "delivered_fraction": stats::json(&s.delivered),
                "cpu_us_per_delivered": stats::json(&s.cpu_us_per_delivered),
                "wakeups": stats::json(&s.wakeups),
                "send_ms": stats::json(&s.send_ms),
                "alive_after": !s.cpu_ns_per_signal.is_empty() && s.alive_after,
                "rss_kib_after": s.rss_kib,
                "hwm_kib_after": s.hwm_kib,
                "problem": s.problem,
                "note": known.busy[i].then_some(BUSY_NOTE),
            })
        })
        .collect();
    Ok(json!({
        "signals": signals,
        "rounds": rounds,
        "signal": "SIGUSR1",
        "cpu": format!("tree on CPU {}, sender on CPU {}", b.tree_cpu, b.harness_cpu),
        "results": results,
    }))
}
