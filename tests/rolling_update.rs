//! The rolling update of a service behind a load balancer, in a real Docker engine behind a
//! real HAProxy: two replicas serve a constant load; two new ones start and join; the two old
//! ones get `docker stop -t 30` at once, as Compose does, and are removed; the load goes on
//! until the new ones have served alone for a few seconds. Every request's outcome counts.
//!
//! The same load and procedure run for each way the replica's image may start its server:
//! exec form with no init; shell form `CMD /server; echo done` with no init, with
//! `docker run --init` (tini), with shim, and with shim's `--health` port checked by HAProxy
//! and a `--stop-delay`. The last must lose nothing, in every run.
//!
//! The replica is testkit's `replica` (it stops like a Go `net/http` server), the load is
//! testkit's `loadgen`, and HAProxy runs docker/examples/rolling-update/haproxy.cfg itself,
//! on loopback, with four fixed slots: 1 and 2 for the old replicas, 3 and 4 for the new.
//! Opt-in like the other Docker suite: without an engine, busybox-static or haproxy it prints
//! why and passes. Writes the table to target/rolling-update.md and the timeline (requests per
//! 100 ms by outcome, one band per variant) to target/rolling-update.svg.

mod common;
use common::engine::*;
use common::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Requests per second through the balancer.
const RATE: u32 = 60;
const STOP_TIMEOUT: u64 = 30;
/// Longer than HAProxy takes to drop a replica (2 checks 500 ms apart, haproxy.cfg), with
/// room for a loaded machine.
const STOP_DELAY: &str = "3s";
/// Each variant takes 20 ports from here (this suite owns 18200-18299).
const FIRST_PORT: u16 = 18200;

struct Variant {
    label: &'static str,
    image: &'static str,
    tini: bool,
    health: bool,
}

const VARIANTS: [Variant; 5] = [
    Variant { label: "`CMD [\"/server\"]`, no init", image: "exec", tini: false, health: false },
    Variant { label: "`CMD /server; echo done`, no init", image: "shell", tini: false, health: false },
    Variant {
        label: "`CMD /server; echo done`, `docker run --init` (tini)",
        image: "shell",
        tini: true,
        health: false,
    },
    Variant { label: "`CMD /server; echo done`, shim", image: "shell-shim", tini: false, health: false },
    Variant {
        label: "`CMD /server; echo done`, shim `--health` + `--stop-delay 3s`",
        image: "shell-shim",
        tini: false,
        health: true,
    },
];

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

fn sleep(s: f64) {
    std::thread::sleep(secs(s));
}

/// One variant's ports: HAProxy's two, then each slot's program port and health port.
struct Ports {
    listen: u16,
    stats: u16,
    program: [u16; 4],
    health: [u16; 4],
}

impl Ports {
    fn of(variant: usize) -> Ports {
        let base = FIRST_PORT + 20 * variant as u16;
        Ports {
            listen: base,
            stats: base + 1,
            program: [base + 2, base + 3, base + 4, base + 5],
            health: [base + 6, base + 7, base + 8, base + 9],
        }
    }
}

fn haproxy_config() -> PathBuf {
    workspace().join("docker/examples/rolling-update/haproxy.cfg")
}

/// HAProxy in the foreground (`-db`), on this variant's ports; killed by pid when dropped.
struct Haproxy {
    child: Child,
    log: PathBuf,
}

impl Haproxy {
    fn start(ports: &Ports, checks_health_port: bool, dir: &Path) -> Result<Haproxy, String> {
        let log = dir.join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(haproxy_config());
        cmd.env("LISTEN", format!("127.0.0.1:{}", ports.listen)).env("STATS", format!("127.0.0.1:{}", ports.stats));
        for slot in 0..4 {
            let checked = if checks_health_port { ports.health[slot] } else { ports.program[slot] };
            cmd.env(format!("SLOT{}", slot + 1), format!("127.0.0.1:{}", ports.program[slot]));
            cmd.env(format!("SLOT{}_HEALTH", slot + 1), checked.to_string());
        }
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        let child = cmd.spawn().map_err(|e| format!("haproxy: {e}"))?;
        let haproxy = Haproxy { child, log };
        if wait_for(secs(10.0), || slot_states(ports.stats)).is_none() {
            return Err(format!("haproxy never answered on its stats port: {}", haproxy.log_text()));
        }
        Ok(haproxy)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What HAProxy's stats say of slots 1-4: (status, last check) such as ("UP", "L7OK").
fn slot_states(stats_port: u16) -> Option<Vec<(String, String)>> {
    let mut s = TcpStream::connect(("127.0.0.1", stats_port)).ok()?;
    s.set_read_timeout(Some(secs(2.0))).ok()?;
    s.write_all(b"GET /stats;csv HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let csv = &reply[reply.find("# pxname")? + 2..];
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (sv, status, check) = (column("svname")?, column("status")?, column("check_status")?);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let states: Vec<(String, String)> = (1..=4)
        .filter_map(|slot| {
            let row = rows.iter().find(|r| r.get(sv) == Some(&format!("slot{slot}").as_str()))?;
            Some((row.get(status)?.to_string(), row.get(check)?.to_string()))
        })
        .collect();
    (states.len() == 4).then_some(states)
}

/// Whether HAProxy sends traffic to a slot because a check said so (not merely at start-up).
fn serving(state: &(String, String)) -> bool {
    state.0 == "UP" && state.1.starts_with("L7OK")
}

fn wait_slots(stats_port: u16, want: [bool; 4], within: Duration) -> Result<(), String> {
    let matches =
        || slot_states(stats_port).filter(|s| s.iter().zip(want).all(|(state, up)| serving(state) == up)).map(|_| ());
    wait_for(within, matches).ok_or_else(|| format!("slots never became {want:?}: {:?}", slot_states(stats_port)))
}

/// Polls the stats every 50 ms and notes when each slot leaves or joins the balancer; stops
/// polling when dropped.
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(f64, usize, bool)>>>,
}

impl Watcher {
    fn start(stats_port: u16) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let (mut events, mut last) = (Vec::new(), [None; 4]);
                while !stop.load(Ordering::SeqCst) {
                    for (slot, state) in slot_states(stats_port).unwrap_or_default().iter().enumerate() {
                        let up = state.0.starts_with("UP");
                        if last[slot] != Some(up) {
                            events.push((now_ms(), slot, up));
                            last[slot] = Some(up);
                        }
                    }
                    sleep(0.05);
                }
                events
            }
        });
        Watcher { stop, thread: Some(thread) }
    }

    /// (when, slot, in the balancer) at every change.
    fn events(mut self) -> Vec<(f64, usize, bool)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The load generator, running until `finish`; killed by pid if dropped before.
struct Load {
    child: Child,
    out: PathBuf,
}

struct Record {
    start_ms: f64,
    latency_ms: f64,
    served_by: Option<u16>,
    outcome: String,
}

impl Record {
    fn failed(&self) -> bool {
        self.outcome != "200"
    }
}

impl Load {
    fn start(bin: &Path, port: u16, dir: &Path) -> Result<Load, String> {
        let out = dir.join("requests.txt");
        let mut child = Command::new(bin)
            .arg(format!("127.0.0.1:{port}"))
            .arg(RATE.to_string())
            .arg(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("loadgen: {e}"))?;
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line);
        let load = Load { child, out };
        if line.trim() != "running" {
            return Err(format!("loadgen did not start: {line:?}"));
        }
        Ok(load)
    }

    /// Close its stdin, wait for its last requests (they time out within 22 s), read them.
    fn finish(mut self) -> Result<Vec<Record>, String> {
        drop(self.child.stdin.take());
        let exited = wait_for(secs(40.0), || self.child.try_wait().ok().flatten());
        if !exited.is_some_and(|status| status.success()) {
            return Err(format!("loadgen did not finish: {exited:?}"));
        }
        let text = std::fs::read_to_string(&self.out).map_err(|e| format!("loadgen's output: {e}"))?;
        text.lines().map(|line| Record::parse(line).ok_or_else(|| format!("bad loadgen line {line:?}"))).collect()
    }
}

impl Record {
    /// `START_UNIX_MS LATENCY_MS METHOD PATH SERVED_BY OUTCOME`, as loadgen writes it.
    fn parse(line: &str) -> Option<Record> {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            [start, latency, _method, _path, served_by, outcome] => Some(Record {
                start_ms: start.parse().ok()?,
                latency_ms: latency.parse().ok()?,
                served_by: served_by.parse().ok(),
                outcome: outcome.to_string(),
            }),
            _ => None,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_replica(image: &str, variant: &Variant, ports: &Ports, slot: usize) -> Container {
    let mut options =
        vec!["--network".to_string(), "host".into(), "-e".into(), format!("PORT={}", ports.program[slot])];
    if variant.tini {
        options.push("--init".into());
    }
    if variant.health {
        for env in [
            format!("SHIM_HEALTH=127.0.0.1:{}", ports.health[slot]),
            format!("SHIM_HEALTH_PROBE=127.0.0.1:{}", ports.program[slot]),
            format!("SHIM_STOP_DELAY={STOP_DELAY}"),
        ] {
            options.extend(["-e".to_string(), env]);
        }
    }
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    Container::run(&Engine::docker(), image, &options, &[])
}

/// What one variant's rolling update did.
struct Run {
    records: Vec<Record>,
    load_start: f64,
    stop_begin: f64,
    stop_end: f64,
    /// When both old slots had left the balancer, by HAProxy's stats.
    old_out: Option<f64>,
    longest_stop: Duration,
    exits: Vec<i32>,
    old_ports: [u16; 2],
    new_ports: [u16; 2],
}

impl Run {
    fn failures(&self) -> BTreeMap<&str, usize> {
        let mut kinds = BTreeMap::new();
        for r in self.records.iter().filter(|r| r.failed()) {
            *kinds.entry(r.outcome.as_str()).or_insert(0) += 1;
        }
        kinds
    }

    fn failed(&self) -> usize {
        self.records.iter().filter(|r| r.failed()).count()
    }

    /// Requests the old replicas had in flight when their stop began (a failed one counts:
    /// it is a request the stop met, wherever it went).
    fn in_flight_at_stop(&self) -> usize {
        let on_old = |r: &&Record| r.failed() || r.served_by.is_some_and(|p| self.old_ports.contains(&p));
        self.records
            .iter()
            .filter(on_old)
            .filter(|r| r.start_ms < self.stop_begin && r.start_ms + r.latency_ms > self.stop_begin)
            .count()
    }

    fn served_by_new_after_stop(&self) -> usize {
        let on_new = |r: &&Record| r.served_by.is_some_and(|p| self.new_ports.contains(&p));
        self.records.iter().filter(on_new).filter(|r| r.start_ms > self.stop_end).count()
    }
}

fn rolling_update(index: usize, images: &Images, loadgen: &Path, dir: &Path) -> Result<Run, String> {
    let variant = &VARIANTS[index];
    let ports = Ports::of(index);
    let image = images.name(variant.image);
    let haproxy = Haproxy::start(&ports, variant.health, dir)?;
    let watcher = Watcher::start(ports.stats);
    let old = [start_replica(&image, variant, &ports, 0), start_replica(&image, variant, &ports, 1)];
    wait_slots(ports.stats, [true, true, false, false], secs(20.0))?;

    let load = Load::start(loadgen, ports.listen, dir)?;
    let load_start = now_ms();
    // Time for keep-alive connections to form and slow requests to pile up.
    sleep(2.0);
    let new = [start_replica(&image, variant, &ports, 2), start_replica(&image, variant, &ports, 3)];
    wait_slots(ports.stats, [true; 4], secs(20.0))?;
    // All four share the load for a while, so the old ones have requests in flight.
    sleep(1.0);

    let stop_begin = now_ms();
    let stops: Vec<_> = old
        .iter()
        .map(|c| {
            let name = c.name.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                Engine::docker().cli(&["stop", "-t", &STOP_TIMEOUT.to_string(), &name]).map(|_| t.elapsed())
            })
        })
        .collect();
    let mut longest_stop = Duration::ZERO;
    for stop in stops {
        longest_stop = longest_stop.max(stop.join().unwrap()?);
    }
    let stop_end = now_ms();
    let exits = old.iter().map(Container::exit_code).collect();
    drop(old);
    // The new replicas serve alone for a while.
    sleep(3.0);
    let records = load.finish()?;
    drop(new);
    drop(haproxy);

    let events = watcher.events();
    let left = |slot: usize| events.iter().find(|&&(t, s, up)| s == slot && !up && t >= stop_begin).map(|e| e.0);
    let old_out = left(0).zip(left(1)).map(|(a, b)| a.max(b));
    let p = ports.program;
    Ok(Run {
        records,
        load_start,
        stop_begin,
        stop_end,
        old_out,
        longest_stop,
        exits,
        old_ports: [p[0], p[1]],
        new_ports: [p[2], p[3]],
    })
}

/// Whether this shim has `--health`: it exits 2 (unknown option) if not.
fn shim_has_health(shim: &Path) -> Result<(), String> {
    let port = FIRST_PORT + 99;
    let out = Command::new(shim)
        .args(["--health", &format!("127.0.0.1:{port}"), "--", "/bin/busybox", "true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", shim.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("this shim has no --health ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn row(label: &str, run: &Run) -> String {
    let kinds = run.failures();
    let kinds = if kinds.is_empty() {
        "-".to_string()
    } else {
        kinds.iter().map(|(kind, n)| format!("{kind}: {n}")).collect::<Vec<_>>().join(", ")
    };
    let out = run.old_out.map_or("-".to_string(), |t| format!("{:.2} s", (t - run.stop_begin) / 1000.0));
    let exits: Vec<String> = run.exits.iter().map(i32::to_string).collect();
    format!(
        "| {label} | {} | {} | {kinds} | {out} | {:.2} s | {} |\n",
        run.records.len(),
        if run.failed() == 0 { "**0**".to_string() } else { run.failed().to_string() },
        run.longest_stop.as_secs_f64(),
        exits.join(", ")
    )
}

fn color(outcome: &str) -> &'static str {
    match outcome {
        "200" => "#b9c6cf",
        "502" => "#d62728",
        "503" => "#ff7f0e",
        "504" => "#8c564b",
        "reset" => "#9467bd",
        "refused" => "#e377c2",
        "closed" => "#17becf",
        "timeout" => "#222222",
        _ => "#7f7f7f",
    }
}

/// Requests per 100 ms by outcome, one band per variant, stacked bars on a shared time axis,
/// with the stop's start, the old replicas leaving the balancer, and the stop's end marked.
fn timeline(runs: &[(&str, &Run)]) -> String {
    const PX_PER_S: f64 = 20.0;
    const BAND: f64 = 90.0;
    const LEFT: f64 = 14.0;
    let span =
        runs.iter().map(|(_, r)| r.records.last().map_or(0.0, |l| l.start_ms - r.load_start)).fold(0.0, f64::max);
    let buckets: Vec<BTreeMap<usize, BTreeMap<&str, usize>>> = runs
        .iter()
        .map(|(_, run)| {
            let mut b: BTreeMap<usize, BTreeMap<&str, usize>> = BTreeMap::new();
            for r in &run.records {
                let i = ((r.start_ms - run.load_start).max(0.0) / 100.0) as usize;
                *b.entry(i).or_default().entry(r.outcome.as_str()).or_insert(0) += 1;
            }
            b
        })
        .collect();
    let peak = buckets.iter().flat_map(|b| b.values().map(|o| o.values().sum::<usize>())).max().unwrap_or(1) as f64;
    let width = LEFT * 2.0 + span / 1000.0 * PX_PER_S;
    const TOP: f64 = 20.0;
    let height = TOP + BAND * runs.len() as f64 + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    svg += &format!("<text x=\"{LEFT}\" y=\"14\">Requests per 100 ms by outcome, placed when they were sent</text>\n");
    let x = |run: &Run, t: f64| LEFT + (t - run.load_start) / 1000.0 * PX_PER_S;
    let mut seen = BTreeMap::new();
    for (band, ((label, run), b)) in runs.iter().zip(&buckets).enumerate() {
        let base = TOP + BAND * (band as f64 + 1.0) - 8.0;
        let title = label.replace('`', "").replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
        svg += &format!("<text x=\"{LEFT}\" y=\"{:.0}\">{title}: {} failed</text>\n", base - 66.0, run.failed());
        for (i, outcomes) in b {
            let mut y = base;
            // Successes at the bottom, failures stacked on them.
            let mut order: Vec<_> = outcomes.iter().collect();
            order.sort_by_key(|(o, _)| **o != "200");
            for (outcome, n) in order {
                let h = *n as f64 / peak * 54.0;
                y -= h;
                seen.insert(*outcome, ());
                svg += &format!(
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"2\" height=\"{h:.1}\" fill=\"{}\"/>\n",
                    LEFT + *i as f64 * PX_PER_S / 10.0,
                    color(outcome)
                );
            }
        }
        for (t, stroke) in [(Some(run.stop_begin), "#1f77b4"), (run.old_out, "#2ca02c"), (Some(run.stop_end), "#444")] {
            if let Some(t) = t {
                let x = x(run, t);
                svg += &format!(
                    "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.0}\" y2=\"{base:.0}\" stroke=\"{stroke}\"/>\n",
                    base - 58.0
                );
            }
        }
    }
    // One time axis for every band: seconds since the load started.
    let axis = TOP + BAND * runs.len() as f64 + 6.0;
    for second in (0..=(span / 1000.0) as usize).step_by(5) {
        let x = LEFT + second as f64 * PX_PER_S;
        svg += &format!("<text x=\"{x:.0}\" y=\"{axis:.0}\" text-anchor=\"middle\">{second} s</text>\n");
    }
    let mut lx = LEFT;
    let legend = seen.keys().map(|o| (*o, color(o))).chain([
        ("docker stop begins", "#1f77b4"),
        ("old replicas out of HAProxy", "#2ca02c"),
        ("docker stop returns", "#444"),
    ]);
    for (name, fill) in legend {
        let y = height - 16.0;
        svg += &format!("<rect x=\"{lx:.0}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{fill}\"/>", y - 9.0);
        svg += &format!("<text x=\"{:.0}\" y=\"{y:.0}\">{name}</text>\n", lx + 14.0);
        lx += 24.0 + 7.0 * name.len() as f64;
    }
    svg + "</svg>\n"
}

/// The recipe's configuration as compose.yaml sets it (discovery through Docker's DNS) must
/// parse too, though nothing here can run it.
fn compose_branch_parses() -> Result<(), String> {
    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(haproxy_config())
        .envs([("LISTEN", ":8080"), ("STATS", ":8404"), ("REPLICAS", "app:8080"), ("HEALTH_PORT", "8099")])
        .output()
        .map_err(|e| format!("haproxy: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("haproxy.cfg as compose.yaml sets it: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn unavailable_here() -> Option<String> {
    if Engine::docker().cli(&["info", "--format", "{{.ServerVersion}}"]).is_err() {
        return Some("no Docker engine reachable (start dockerd; .ci/run does)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no /bin/busybox (apt-get install busybox-static)".into());
    }
    if Command::new("haproxy").arg("-v").output().is_err() {
        return Some("no haproxy (apt-get install haproxy)".into());
    }
    None
}

#[test]
fn rolling_update_behind_haproxy() {
    if let Some(why) = unavailable_here() {
        eprintln!("skipping the rolling-update suite: {why}");
        return;
    }
    let bins = static_binaries();
    let images = Images::new(&Engine::docker());
    let base = images.build_base(&bins, &[("shim", "shim"), ("replica", "server")]);
    images.build("exec", &format!("FROM {base}\nCMD [\"/server\"]\n"), None);
    images.build("shell", &format!("FROM {base}\nCMD /server; echo done\n"), None);
    images.build("shell-shim", &format!("FROM {base}\nENTRYPOINT [\"/shim\", \"--\"]\nCMD /server; echo done\n"), None);

    let work = workspace().join(format!("target/rolling-update-{}", std::process::id()));
    let mut runs = Vec::new();
    let mut failures: Vec<String> = compose_branch_parses().err().into_iter().collect();
    let mut not_run = String::new();
    for (index, variant) in VARIANTS.iter().enumerate() {
        let dir = work.join(index.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let run = if variant.health { shim_has_health(&bins.join("shim")) } else { Ok(()) }
            .and_then(|()| rolling_update(index, &images, &bins.join("loadgen"), &dir));
        match run {
            Ok(run) => runs.push((variant, run)),
            Err(e) => {
                not_run += &format!("| {} | not run: {} | | | | | |\n", variant.label, e.lines().next().unwrap_or(""));
                failures.push(format!("{}: {e}", variant.label));
            }
        }
    }

    // "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://..." reads "HAProxy 2.6.12".
    let version = Command::new("haproxy").arg("-v").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let version = version.split_whitespace().nth(2).and_then(|v| v.split('-').next()).unwrap_or("?");
    let mut table = format!(
        "{RATE} requests/s through HAProxy {version} (`inter 500ms fall 2 rise 2`), 80 % `GET /`, 10 % 1-3 s `GET`, \
         10 % `POST`, keep-alive; 2 old replicas, 2 new, `docker stop -t {STOP_TIMEOUT}` of the old ones at once.\n\n\
         | variant | requests | failed | failed by kind | old replicas out of HAProxy after | \
         longest `docker stop -t {STOP_TIMEOUT}` | exit codes |\n|---|---|---|---|---|---|---|\n",
    );
    for (variant, run) in &runs {
        table += &row(variant.label, run);
    }
    table += &not_run;
    let target = workspace().join("target");
    std::fs::write(target.join("rolling-update.md"), &table).unwrap();
    let bands: Vec<(&str, &Run)> = runs.iter().map(|(variant, run)| (variant.label, run)).collect();
    std::fs::write(target.join("rolling-update.svg"), timeline(&bands)).unwrap();
    eprintln!("{table}");

    for (variant, run) in &runs {
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(format!("{}: {what}", variant.label));
            }
        };
        let load_secs = (run.records.last().map_or(run.load_start, |r| r.start_ms) - run.load_start) / 1000.0;
        check(
            run.records.len() as f64 >= 0.9 * RATE as f64 * load_secs,
            format!("{} requests in {load_secs:.1} s: the load fell behind its rate", run.records.len()),
        );
        // The stop must meet requests in flight, or the window it opens is not exercised.
        check(
            run.in_flight_at_stop() > 0,
            "no request was in flight on the old replicas when they were stopped".into(),
        );
        check(
            run.served_by_new_after_stop() as f64 >= 2.0 * RATE as f64,
            format!("the new replicas served only {} requests after the stop", run.served_by_new_after_stop()),
        );
    }
    // The goal: shim's health port takes the replica out of the balancer before the program
    // stops accepting, so nothing is lost.
    for (variant, run) in runs.iter().filter(|(variant, _)| variant.health) {
        if run.failed() > 0 {
            failures.push(format!("{}: {} failed requests, want 0: {:?}", variant.label, run.failed(), run.failures()));
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
    }
    assert!(failures.is_empty(), "{}\n(HAProxy logs and requests in {})", failures.join("\n"), work.display());
}
