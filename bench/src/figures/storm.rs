//! Figure 3: a signal storm. Each init runs as PID 1 with `bench-child count` under it; the
//! harness, on the other CPU so the init runs concurrently, sends it SIGUSR1 as fast as kill(2)
//! goes, then SIGUSR2. A lower-numbered pending signal is taken first (signal(7)), so when the
//! child answers SIGUSR2 with its count, the init has dealt with every SIGUSR1: the init's CPU
//! is read then, once it sleeps. Standard signals coalesce while pending, so the child's count
//! (how many arrived) is below what was sent, more so for a slower init; CPU is divided by the
//! signals sent.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{interleave, Bench, Known, Samples, BUSY_NOTE};
use crate::error::{Context, Result};
use crate::sys::{self, Namespace};

/// The series each round adds to.
const SERIES: [&str; 6] =
    ["cpu_ns_per_signal", "cpu_ticks_total", "delivered_fraction", "cpu_us_per_delivered", "wakeups", "send_ms"];

/// One storm against init `i`; `alive` is cleared if the init did not outlive it.
fn storm(b: &Bench, i: usize, busy: bool, signals: u64, s: &mut Samples, alive: &mut bool) -> Result<()> {
    let mut r = b.start(i, Namespace::Pid1, &["count"])?;
    r.expect(b'r', Duration::from_secs(5))?;
    let pid = r.pid();
    r.settle(busy, Duration::from_secs(2), "never settled into its wait")?;
    let before = r.cpu()?;
    let switches = r.status()?.voluntary;
    let t0 = Instant::now();
    for k in 0..signals {
        if let Err(e) = sys::kill(pid, libc::SIGUSR1) {
            *alive = false;
            return Err(r.failure(&format!("kill failed after {k} signals: {e}")));
        }
    }
    let sent = t0.elapsed();
    r.proc.signal(libc::SIGUSR2).context(|| format!("{}: send SIGUSR2", r.name))?;
    let mut count = [0u8; 8];
    r.read(&mut count, Duration::from_secs(20))?;
    r.settle(busy, Duration::from_secs(5), "never went back to sleep after the storm")?;
    let used = r.cpu()?.since(before);
    let mem = r.status()?;
    *alive &= !r.proc.exited().context(|| format!("{}: check it is alive", r.name))?;
    s.push("cpu_ns_per_signal", used.runtime_ns as f64 / signals as f64);
    s.push("cpu_ticks_total", used.ticks as f64);
    let delivered = u64::from_le_bytes(count);
    s.push("delivered_fraction", delivered as f64 / signals as f64);
    if delivered > 0 {
        s.push("cpu_us_per_delivered", used.runtime_ns as f64 / 1e3 / delivered as f64);
    }
    // Each voluntary switch is the init going back to sleep: one wake-up.
    s.push("wakeups", mem.voluntary.saturating_sub(switches) as f64);
    s.push("send_ms", sent.as_secs_f64() * 1e3);
    s.saw(&mem);
    if r.stop(Duration::from_secs(5))?.is_none() {
        return Err(r.failure("did not exit within 5 s of SIGTERM after the storm"));
    }
    Ok(())
}

/// Only the inits that forward SIGUSR1 (figure 2); the others are reported as such.
pub fn run(b: &Bench, known: &Known) -> Result<Value> {
    let signals: u64 = if b.quick { 10_000 } else { 100_000 };
    let rounds = if b.quick { 1 } else { 3 };
    b.pin_harness(b.harness_cpu)?;
    let n = b.inits.len();
    let mut samples: Vec<Samples> = (0..n).map(|_| Samples::new(&SERIES)).collect();
    let mut alive_after = vec![true; n];
    let mut problems: Vec<Option<String>> = vec![None; n];
    for i in b.init_indices().into_iter().filter(|&i| !known.forwards[i]) {
        problems[i] = Some("does not forward SIGUSR1 (figure 2)".to_string());
    }
    interleave(rounds, &b.init_indices(), &mut problems, |_, i| {
        storm(b, i, known.busy[i], signals, &mut samples[i], &mut alive_after[i])
    });
    let results: Vec<Value> = b
        .init_indices()
        .into_iter()
        .map(|i| {
            let mut fields = samples[i].to_json();
            fields["alive_after"] = (samples[i].any() && alive_after[i]).into();
            b.result(i, fields, problems[i].as_deref(), known.busy[i].then_some(BUSY_NOTE))
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
