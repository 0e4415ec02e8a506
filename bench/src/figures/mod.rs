//! The figures, one module each, and what they share: starting an init with the bench child
//! under it, talking to the child through its pipes with deadlines, and the interleaved order
//! of runs.
//!
//! Every figure interleaves the inits (A B C A B C ..., each round starting one further along),
//! so a slow minute of the machine lands on all of them alike. Inits that misbehave in a figure
//! are recorded with the reason and left out of the rest of that figure, not the whole run.

pub mod counts;
pub mod forward;
pub mod idle;
pub mod memory;
pub mod reap;
pub mod shutdown;
pub mod start;
pub mod storm;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Context, Error, Result};
use crate::inits::Init;
use crate::procfs::{self, Cpu, Status};
use crate::stats;
use crate::sys::{self, Exit, Namespace, Proc, Program, Stdio};

/// What figure 2 learnt about each init (by index) that the later figures need.
pub struct Known {
    /// It forwards SIGUSR1 to its child as PID 1.
    pub forwards: Vec<bool>,
    /// It never sleeps: it polls in a loop, so it is never seen waiting in the kernel.
    pub busy: Vec<bool>,
}

/// The caveat written next to a busy init's numbers.
pub const BUSY_NOTE: &str = "never sleeps (polls in a loop): its CPU time includes the polling";

/// The environment every tree gets: what a container starts with (Docker sets these three),
/// not the harness's, which under `cargo run` holds dozens of CARGO_* variables that an init
/// copying its environment would be charged for.
pub const ENV: [&str; 3] =
    ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=shim-bench", "HOME=/root"];

/// How long an init may take to go to sleep before it is taken to be busy.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

/// What every figure needs.
pub struct Bench {
    pub inits: Vec<Init>,
    pub child: PathBuf,
    /// The program figures 1 and 8 start (a static `true`).
    pub program: PathBuf,
    pub quick: bool,
    /// The CPU the measured tree (init and children) is pinned to.
    pub tree_cpu: usize,
    /// The harness's CPU where it must not compete with the tree (storm, reaping); the same
    /// as `tree_cpu` on a one-CPU machine.
    pub harness_cpu: usize,
    null: OwnedFd,
    /// One log per init for its stdout and stderr, so failures can be shown.
    logs: Vec<(OwnedFd, PathBuf)>,
}

impl Bench {
    pub fn new(inits: Vec<Init>, child: PathBuf, program: PathBuf, quick: bool, log_dir: &Path) -> Result<Bench> {
        let cpus = sys::allowed_cpus().context(|| "read the allowed CPUs".to_string())?;
        let tree_cpu = *cpus.last().ok_or_else(|| Error::new("find a CPU to run on"))?;
        let harness_cpu = cpus.iter().copied().find(|&c| c != tree_cpu).unwrap_or(tree_cpu);
        std::fs::create_dir_all(log_dir).context(|| format!("create {}", log_dir.display()))?;
        let null = File::open("/dev/null").and_then(sys::open_high).context(|| "open /dev/null".to_string())?;
        let mut logs = Vec::new();
        for init in &inits {
            let path = log_dir.join(format!("{}.log", init.name.replace(' ', "-")));
            let file = File::create(&path).and_then(sys::open_high).context(|| format!("create {}", path.display()))?;
            logs.push((file, path));
        }
        Ok(Bench { inits, child, program, quick, tree_cpu, harness_cpu, null, logs })
    }

    /// Start init `i` with `bench-child ARGS` under it, the tree pinned to the tree CPU.
    pub fn start(&self, i: usize, ns: Namespace, child_args: &[&str]) -> Result<Running> {
        let init = &self.inits[i];
        let program: Vec<String> =
            std::iter::once(self.child.display().to_string()).chain(child_args.iter().map(|s| s.to_string())).collect();
        let argv = init.argv(ns, &program);
        let prepared = Program::new(&argv, &ENV).context(|| format!("prepare {}", argv.join(" ")))?;
        let (from_child, child_writes) = sys::pipe().context(|| "create a pipe".to_string())?;
        let (child_reads, to_child) = sys::pipe().context(|| "create a pipe".to_string())?;
        let stdio = Stdio {
            null: self.null.as_fd(),
            log: self.logs[i].0.as_fd(),
            to_harness: Some(child_writes.as_fd()),
            from_harness: Some(child_reads.as_fd()),
        };
        let proc =
            sys::spawn(&prepared, ns, Some(self.tree_cpu), &stdio).context(|| format!("start {}", argv.join(" ")))?;
        // The child's ends are closed here as they drop: only the tree holds them now.
        Ok(Running {
            name: init.name.clone(),
            log: self.logs[i].1.clone(),
            proc,
            from_child: from_child.into(),
            to_child: to_child.into(),
        })
    }

    /// The descriptors for a run that needs no pipes: stdin from /dev/null, output to the log.
    pub fn quiet_stdio(&self, i: usize) -> Stdio<'_> {
        Stdio { null: self.null.as_fd(), log: self.logs[i].0.as_fd(), to_harness: None, from_harness: None }
    }

    /// `members` in the order of `round`: shuffled, the same for the same round in every run.
    /// A fixed cyclic order (only the starting init moving) gave every init the same
    /// predecessor in almost every round, and what a round leaves behind (caches evicted by a
    /// large binary, the kernel's deferred frees after a reaping round) then fell on the same
    /// init every time.
    pub fn shuffled(round: usize, members: &[usize]) -> Vec<usize> {
        let mut order = members.to_vec();
        // xorshift64*, seeded by the round: any fixed sequence that mixes well will do.
        let mut state = (round as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for k in (1..order.len()).rev() {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let pick = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % (k + 1);
            order.swap(k, pick);
        }
        order
    }

    /// Every init but the floor.
    pub fn init_indices(&self) -> Vec<usize> {
        (0..self.inits.len()).filter(|&i| !self.inits[i].is_floor()).collect()
    }

    pub fn all_indices(&self) -> Vec<usize> {
        (0..self.inits.len()).collect()
    }

    pub fn pin_harness(&self, cpu: usize) -> Result<()> {
        sys::pin_self(cpu).context(|| format!("pin the harness to CPU {cpu}"))
    }

    /// Init `i`'s entry in a figure's results: its name, the figure's `fields`, why it has no
    /// numbers (if so), and what to bear in mind about them (if anything).
    pub fn result(&self, i: usize, mut fields: Value, problem: Option<&str>, note: Option<&str>) -> Value {
        fields["init"] = self.inits[i].name.clone().into();
        fields["problem"] = problem.into();
        fields["note"] = note.into();
        fields
    }
}

/// Run `once(round, i)` for every init `i` of `members`, `rounds` times, interleaved. An init
/// whose run fails is recorded in `problems` with the reason and left out of later rounds, as
/// is one that has a problem already.
pub fn interleave(
    rounds: usize,
    members: &[usize],
    problems: &mut [Option<String>],
    mut once: impl FnMut(usize, usize) -> Result<()>,
) {
    for round in 0..rounds {
        let active: Vec<usize> = members.iter().copied().filter(|&i| problems[i].is_none()).collect();
        for i in Bench::shuffled(round, &active) {
            if let Err(e) = once(round, i) {
                problems[i] = Some(e.to_string());
            }
        }
    }
}

/// One init's samples over a figure's rounds: a series of numbers per name, each summarised in
/// the JSON, and the most memory it was seen with after a round.
pub struct Samples {
    series: Vec<(&'static str, Vec<f64>)>,
    rss_kib: u64,
    hwm_kib: u64,
}

impl Samples {
    /// Every name appears in the JSON, as null if it got no sample.
    pub fn new(names: &[&'static str]) -> Samples {
        Samples { series: names.iter().map(|&n| (n, Vec::new())).collect(), rss_kib: 0, hwm_kib: 0 }
    }

    pub fn push(&mut self, name: &'static str, v: f64) {
        match self.series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(v),
            None => self.series.push((name, vec![v])),
        }
    }

    /// The init's memory as read after a round.
    pub fn saw(&mut self, status: &Status) {
        self.rss_kib = self.rss_kib.max(status.rss_kib);
        self.hwm_kib = self.hwm_kib.max(status.hwm_kib);
    }

    /// Whether a whole round was recorded.
    pub fn any(&self) -> bool {
        self.series.first().is_some_and(|(_, values)| !values.is_empty())
    }

    pub fn to_json(&self) -> Value {
        let mut fields = json!({ "rss_kib_after": self.rss_kib, "hwm_kib_after": self.hwm_kib });
        for (name, values) in &self.series {
            fields[*name] = stats::json(values);
        }
        fields
    }
}

/// An init running the bench child. Dropping it kills the init by its pid (and so, as PID 1,
/// its whole namespace).
pub struct Running {
    pub name: String,
    log: PathBuf,
    pub proc: Proc,
    from_child: File,
    to_child: File,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// Read exactly `buf.len()` bytes from the child within `timeout`.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ready = sys::wait_readable(self.from_child.as_fd(), left).context(|| "wait on a pipe".to_string())?;
            if !ready {
                return Err(self.failure(&format!("no answer from the bench child within {timeout:?}")));
            }
            match self.from_child.read(&mut buf[got..]) {
                Ok(0) => return Err(self.failure("the bench child's pipe closed")),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::new(format!("read from the bench child: {e}"))),
            }
        }
        Ok(())
    }

    /// Read one byte and check it is `expected`.
    pub fn expect(&mut self, expected: u8, timeout: Duration) -> Result<()> {
        let mut b = [0u8];
        self.read(&mut b, timeout)?;
        if b[0] != expected {
            return Err(self.failure(&format!("the bench child said {:?}, not {:?}", b[0] as char, expected as char)));
        }
        Ok(())
    }

    /// Wait until the init sleeps in the kernel (unless it never does: `busy`); else the
    /// failure `what`.
    pub fn settle(&mut self, busy: bool, timeout: Duration, what: &str) -> Result<()> {
        if busy || procfs::wait_asleep(self.pid(), timeout) {
            Ok(())
        } else {
            Err(self.failure(what))
        }
    }

    pub fn cpu(&self) -> Result<Cpu> {
        procfs::cpu(self.pid()).context(|| format!("read {}'s CPU time", self.name))
    }

    pub fn status(&self) -> Result<Status> {
        procfs::status(self.pid()).context(|| format!("read {}'s status", self.name))
    }

    pub fn tell(&mut self, byte: u8) -> Result<()> {
        self.to_child.write_all(&[byte]).context(|| format!("{}: write to the bench child", self.name))
    }

    /// SIGTERM the init and wait for it; `None` if it is still running after `timeout` (it is
    /// then killed when dropped).
    pub fn stop(&mut self, timeout: Duration) -> Result<Option<Exit>> {
        match self.proc.signal(libc::SIGTERM) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(Error::new(format!("{}: send SIGTERM: {e}", self.name))),
        }
        self.proc.wait(timeout).context(|| format!("{}: wait for its exit", self.name))
    }

    /// An error that says what happened to the init, and the end of its log.
    pub fn failure(&mut self, what: &str) -> Error {
        let state = match self.proc.exited() {
            Ok(true) => match self.proc.wait(Duration::ZERO) {
                Ok(Some(exit)) => format!("the init ended: {exit}"),
                _ => "the init ended".to_string(),
            },
            _ => "the init is still running".to_string(),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
        Error::new(format!(
            "{}: {what}; {state}{}",
            self.name,
            if tail.is_empty() { String::new() } else { format!("; its log ends: {tail}") }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Bench;

    #[test]
    fn every_round_is_a_permutation_and_the_same_in_every_run() {
        let members: Vec<usize> = (0..10).collect();
        for round in 0..100 {
            let mut order = Bench::shuffled(round, &members);
            assert_eq!(order, Bench::shuffled(round, &members));
            order.sort_unstable();
            assert_eq!(order, members);
        }
    }

    #[test]
    fn no_init_keeps_one_predecessor() {
        // Over forty rounds of nine, each init follows at least five different ones.
        let members: Vec<usize> = (0..9).collect();
        let mut before = vec![std::collections::BTreeSet::new(); members.len()];
        for round in 0..40 {
            let order = Bench::shuffled(round, &members);
            for pair in order.windows(2) {
                before[pair[1]].insert(pair[0]);
            }
        }
        assert!(before.iter().all(|seen| seen.len() >= 5), "{before:?}");
    }
}
