//! Figure 4: reaping. Each init runs as PID 1 with `bench-child orphans N` under it, which
//! hands it N orphans blocked on one pipe; the harness then has the pipe closed, so all exit at
//! once, and polls the init's list of children until only the main child is left: no zombie
//! remains. The init's CPU over that time, divided by N, is what one reap costs it. The tree
//! (init, child, orphans) is on one CPU, the harness on the other.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{interleave, Bench, Known, Samples, BUSY_NOTE};
use crate::error::{Context, Result};
use crate::procfs::Children;
use crate::sys::Namespace;

/// The poll period: the resolution of the time to no zombie. Short enough to resolve a few
/// ms, long enough that reading the list (which takes the lock the init needs to reap) does
/// not slow the reaping down.
const POLL: Duration = Duration::from_micros(200);

/// Orphans per round, and rounds. Many rounds of a thousand rather than a few of tens of
/// thousands: a round's CPU per orphan moves by ±30 % with where the kernel's deferred frees
/// (task structs, pids, /proc entries, after an RCU grace period) happen to run, and a median
/// of three such rounds of 20 000 moved by twice the differences between the inits from one
/// run to the next. Forty rounds of 1 000 take less time and repeat within about 6 %.
const ORPHANS: usize = 1_000;
const ROUNDS: usize = 40;

/// The series each round adds to.
const SERIES: [&str; 3] = ["cpu_us_per_orphan", "ms_to_no_zombie", "wakeups"];

fn reap(b: &Bench, i: usize, busy: bool, orphans: usize, s: &mut Samples) -> Result<()> {
    let mut r = b.start(i, Namespace::Pid1, &["orphans", &orphans.to_string()])?;
    r.expect(b'r', Duration::from_secs(120))?;
    r.settle(busy, Duration::from_secs(5), "never settled into its wait")?;
    let mut children = Children::open(r.pid()).context(|| format!("open {}'s list of children", r.name))?;
    let all = children.all().context(|| format!("read {}'s children", r.name))?;
    if all.len() != orphans + 1 {
        return Err(r.failure(&format!("has {} children, not the main child and {orphans} orphans", all.len())));
    }
    let main = all[0];
    let before = r.cpu()?;
    let switches = r.status()?.voluntary;
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
    r.settle(busy, Duration::from_secs(5), "never went back to sleep after reaping")?;
    let used = r.cpu()?.since(before);
    let mem = r.status()?;
    s.push("cpu_us_per_orphan", used.runtime_ns as f64 / 1e3 / orphans as f64);
    s.push("ms_to_no_zombie", clean.as_secs_f64() * 1e3);
    // Each voluntary switch is the init going back to sleep: one wake-up, one batch reaped.
    s.push("wakeups", mem.voluntary.saturating_sub(switches) as f64);
    s.saw(&mem);
    r.tell(b'q')?;
    if r.proc.wait(Duration::from_secs(10)).context(|| format!("wait for {}", r.name))?.is_none() {
        return Err(r.failure("did not exit within 10 s of its child"));
    }
    Ok(())
}

pub fn run(b: &Bench, known: &Known) -> Result<Value> {
    let rounds = if b.quick { 2 } else { ROUNDS };
    b.pin_harness(b.harness_cpu)?;
    let n = b.inits.len();
    let mut samples: Vec<Samples> = (0..n).map(|_| Samples::new(&SERIES)).collect();
    let mut problems: Vec<Option<String>> = vec![None; n];
    interleave(rounds, &b.init_indices(), &mut problems, |_, i| reap(b, i, known.busy[i], ORPHANS, &mut samples[i]));
    let results: Vec<Value> = b
        .init_indices()
        .into_iter()
        .map(|i| b.result(i, samples[i].to_json(), problems[i].as_deref(), known.busy[i].then_some(BUSY_NOTE)))
        .collect();
    Ok(json!({
        "orphans": ORPHANS,
        "rounds": rounds,
        "poll_us": POLL.as_micros() as u64,
        "cpu": format!("tree on CPU {}, harness on CPU {}", b.tree_cpu, b.harness_cpu),
        "results": results,
    }))
}
