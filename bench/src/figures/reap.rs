//! Figure 4: reaping. Each init runs as PID 1 with `bench-child orphans N` under it, which
//! hands it N orphans blocked on one pipe; the harness then has the pipe closed, so all exit at
//! once, and polls the init's list of children until only the main child is left: no zombie
//! remains. The init's CPU over that time, divided by N, is what one reap costs it. The tree
//! (init, child, orphans) is on one CPU, the harness on the other.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Bench, Known, BUSY_NOTE};
use crate::error::{Context, Result};
use crate::procfs::{self, Children};
use crate::stats;
use crate::sys::{self, Namespace};

/// The poll period: the resolution of the time to no zombie. Short enough to resolve a few
/// ms, long enough that reading the list (which takes the lock the init needs to reap) does
/// not slow the reaping down.
const POLL: Duration = Duration::from_micros(200);

#[derive(Default)]
struct Samples {
    cpu_us_per_orphan: Vec<f64>,
    ms_to_no_zombie: Vec<f64>,
    wakeups: Vec<f64>,
    rss_kib: u64,
    hwm_kib: u64,
    problem: Option<String>,
}

fn reap(b: &Bench, i: usize, busy: bool, orphans: usize, s: &mut Samples) -> Result<()> {
    let mut r = b.start(i, Namespace::Pid1, &["orphans", &orphans.to_string()])?;
    r.expect(b'r', Duration::from_secs(120))?;
    let pid = r.pid();
    if !busy && !procfs::wait_asleep(pid, Duration::from_secs(5)) {
        return Err(r.failure("never settled into its wait"));
    }
    let mut children = Children::open(pid).context(|| format!("open {}'s list of children", r.name))?;
    let all = children.all().context(|| format!("read {}'s children", r.name))?;
    if all.len() != orphans + 1 {
        return Err(r.failure(&format!("has {} children, not the main child and {orphans} orphans", all.len())));
    }
    let main = all[0];
    let before = procfs::cpu(pid).context(|| format!("read {}'s CPU time", r.name))?;
    let switches = procfs::status(pid).context(|| format!("read {}'s status", r.name))?.voluntary;
    let t0 = Instant::now();
    r.tell(b'g')?;
    loop {
        let first = children.first().context(|| format!("read {}'s children", r.name))?;
        if first == [main] {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(r.failure("zombies were still there 120 s after the orphans exited"));
        }
        std::thread::sleep(POLL);
    }
    let clean = t0.elapsed();
    if !busy && !procfs::wait_asleep(pid, Duration::from_secs(5)) {
        return Err(r.failure("never went back to sleep after reaping"));
    }
    let used = procfs::cpu(pid).context(|| format!("read {}'s CPU time", r.name))?.since(before);
    let mem = procfs::status(pid).context(|| format!("read {}'s status", r.name))?;
    s.cpu_us_per_orphan.push(used.runtime_ns as f64 / 1e3 / orphans as f64);
    s.ms_to_no_zombie.push(clean.as_secs_f64() * 1e3);
    // Each voluntary switch is the init going back to sleep: one wake-up, one batch reaped.
    s.wakeups.push(mem.voluntary.saturating_sub(switches) as f64);
    s.rss_kib = s.rss_kib.max(mem.rss_kib);
    s.hwm_kib = s.hwm_kib.max(mem.hwm_kib);
    r.tell(b'q')?;
    if r.proc.wait(Duration::from_secs(10)).context(|| format!("wait for {}", r.name))?.is_none() {
        return Err(r.failure("did not exit within 10 s of its child"));
    }
    Ok(())
}

pub fn run(b: &Bench, known: &Known) -> Result<Value> {
    let orphans = if b.quick { 2_000 } else { 20_000 };
    let rounds = if b.quick { 1 } else { 3 };
    sys::pin_self(b.harness_cpu).context(|| format!("pin the harness to CPU {}", b.harness_cpu))?;
    let mut samples: Vec<Samples> = (0..b.inits.len()).map(|_| Samples::default()).collect();
    for round in 0..rounds {
        let active: Vec<usize> = b.init_indices().into_iter().filter(|&i| samples[i].problem.is_none()).collect();
        for i in Bench::rotated(round, &active) {
            if let Err(e) = reap(b, i, known.busy[i], orphans, &mut samples[i]) {
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
                "cpu_us_per_orphan": stats::json(&s.cpu_us_per_orphan),
                "ms_to_no_zombie": stats::json(&s.ms_to_no_zombie),
                "wakeups": stats::json(&s.wakeups),
                "rss_kib_after": s.rss_kib,
                "hwm_kib_after": s.hwm_kib,
                "problem": s.problem,
                "note": known.busy[i].then_some(BUSY_NOTE),
            })
        })
        .collect();
    Ok(json!({
        "orphans": orphans,
        "rounds": rounds,
        "poll_us": POLL.as_micros() as u64,
        "cpu": format!("tree on CPU {}, harness on CPU {}", b.tree_cpu, b.harness_cpu),
        "results": results,
    }))
}
