//! The results as Markdown: how they were measured, the targets, then one table per figure
//! with the inits as rows, Δ over the floor and ratios to the best peer.

use std::fmt::Write;

use serde_json::Value;

use super::{best_peer, count, entry, init_names, median, num, ratio, value, verdict, with_unit, Metric};
use crate::inits::FLOOR;
use crate::machine;

struct Table {
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&'static str]) -> Table {
        Table { head: head.to_vec(), rows: vec![] }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.head.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
        out.push_str(&line(&self.head.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out.push('\n');
    }
}

fn name_cell(init: &str) -> String {
    if init == "shim" {
        "**shim**".to_string()
    } else {
        init.to_string()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".to_string(), num)
}

fn opt_count(x: Option<f64>) -> String {
    x.map_or("-".to_string(), count)
}

fn times(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |r| format!("{r:.2}×"))
}

fn field(summary: &Value, key: &str) -> Option<f64> {
    summary[key].as_f64()
}

/// The target cell for a figure: shim's verdicts on its targets, empty for other rows.
fn target_cell(doc: &Value, metric: Metric, init: &str) -> String {
    if init != "shim" {
        return String::new();
    }
    let Some(targets) = doc["targets"].as_array() else { return String::new() };
    targets
        .iter()
        .filter(|t| t["figure"] == metric.label())
        .map(|t| format!("{}: {}", t["target"].as_str().unwrap_or("?"), verdict(&t["met"])))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an init has no numbers here, or what to bear in mind about its numbers.
fn problem(v: Option<&Value>) -> String {
    let text: Vec<&str> = v.into_iter().flat_map(|v| [v["problem"].as_str(), v["note"].as_str()]).flatten().collect();
    text.join("; ").replace('|', "/")
}

/// Cells some figure adds after the ratios, from an init's entry and the floor's.
type Extra<'a> = &'a dyn Fn(Option<&Value>, Option<&Value>) -> Vec<String>;

/// Δ, its ratio to the best peer and to the floor, for a timed figure.
fn timed_rows(doc: &Value, list: &Value, metric: Metric, t: &mut Table, tail: &[&str], extra: Extra<'_>) {
    let best = best_peer(doc, metric).map(|b| b.1);
    let floor = entry(list, FLOOR).and_then(|e| median(&e["us"]));
    for init in init_names(doc) {
        let e = entry(list, &init);
        let s = e.map(|e| &e["us"]).filter(|s| !s.is_null());
        let d = value(doc, metric, &init);
        let mut cells = vec![name_cell(&init)];
        for key in tail {
            cells.push(opt(s.and_then(|s| field(s, key))));
        }
        if init == FLOOR {
            cells.extend(["(floor)".to_string(), "-".to_string(), "1.00×".to_string()]);
        } else {
            cells.push(opt(d));
            cells.push(times(ratio(d, best)));
            cells.push(times(ratio(s.and_then(median), floor)));
        }
        cells.extend(extra(e, entry(list, FLOOR)));
        cells.push(target_cell(doc, metric, &init));
        cells.push(problem(e));
        t.row(cells);
    }
}

fn header(doc: &Value, out: &mut String) {
    let m = &doc["machine"];
    let _ = writeln!(out, "# shim benchmarks\n");
    let _ = writeln!(
        out,
        "Measured {} on {} ({} GiB); load average {} before the suite (a run shortly before leaves it high: the \
         reaping figure makes 20 000 processes runnable at once); the suite took {} s.  ",
        doc["date"].as_str().unwrap_or("?"),
        machine::one_line(m),
        m["memory_gib"],
        doc["load_average_before"].as_str().unwrap_or("?"),
        doc["duration_s"],
    );
    let _ = writeln!(
        out,
        "Scheduler: sched_autogroup {}, cpu cgroup `{}` (a container has one of its own, where autogroup does not apply).  ",
        if m["sched_autogroup"] == true { "on" } else { "off" },
        m["cpu_cgroup"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(out, "Command: `{}`\n", doc["command"].as_str().unwrap_or("?"));
    if doc["quick"] == true {
        let _ = writeln!(out, "**Quick run** (`--quick`): few runs, small storms; a smoke test, not the figures.\n");
    }
    if let Some(method) = doc["method"].as_array() {
        for line in method {
            let _ = writeln!(out, "- {}", line.as_str().unwrap_or_default());
        }
        out.push('\n');
    }
    let mut t = Table::new(&["init", "version", "as PID 1", "not PID 1", "size", "linkage"]);
    for init in doc["inits"].as_array().into_iter().flatten() {
        if init["floor"] == true {
            continue;
        }
        let name = init["name"].as_str().unwrap_or("?");
        t.row(vec![
            name_cell(name),
            init["version"].as_str().unwrap_or("").to_string(),
            format!("`{}`", init["invocation_pid1"].as_str().unwrap_or("")),
            format!("`{}`", init["invocation_not_pid1"].as_str().unwrap_or("")),
            init["binary_bytes"].as_f64().map_or("-".into(), |b| with_unit(b / 1024.0, "KiB")),
            linkage(init),
        ]);
    }
    t.render(out);
    for s in doc["skipped"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "Skipped {}: {}.  ", s["name"].as_str().unwrap_or("?"), s["why"].as_str().unwrap_or("?"));
    }
    out.push('\n');
}

fn linkage(init: &Value) -> String {
    match (init["static"].as_bool(), init["interpreter"].as_str()) {
        (Some(true), _) => "static".to_string(),
        (Some(false), Some(i)) => format!("dynamic ({i})"),
        _ => "?".to_string(),
    }
}

fn targets(doc: &Value, out: &mut String) {
    let _ = writeln!(out, "## Targets for shim\n");
    let mut t = Table::new(&["figure", "target", "shim", "verdict"]);
    for x in doc["targets"].as_array().into_iter().flatten() {
        t.row(vec![
            x["figure"].as_str().unwrap_or("?").to_string(),
            x["target"].as_str().unwrap_or("?").to_string(),
            x["shim"].as_str().unwrap_or("?").to_string(),
            verdict(&x["met"]).to_string(),
        ]);
    }
    t.render(out);
}

fn start(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["start"];
    let _ = writeln!(
        out,
        "## 1. Start + exit: `INIT -- {}`\n\n{} runs per init and mode after {} warm-up runs, interleaved; {}. µs, from clone to reap.\n",
        f["program"].as_str().unwrap_or("?"),
        f["runs"],
        f["warmup_runs"],
        f["cpu"].as_str().unwrap_or("?"),
    );
    for (key, metric, title) in [
        ("pid1", Metric::StartPid1, "As PID 1 of a new PID + mount namespace"),
        ("not_pid1", Metric::StartHost, "Not PID 1 (a child of the harness)"),
    ] {
        let _ = writeln!(out, "### {title}\n");
        let mut t = Table::new(&[
            "init",
            "median µs",
            "p90",
            "p99",
            "Δ over no init µs",
            "Δ × best peer's",
            "× no init",
            "minor faults (Δ)",
            "target",
            "failures",
        ]);
        let list = &f[key];
        let faults = |e: Option<&Value>, floor: Option<&Value>| {
            let of = |e: Option<&Value>| e.and_then(|e| median(&e["minor_faults"]));
            vec![match (of(e), of(floor)) {
                (Some(v), Some(f)) if e != floor => format!("{} ({:+.0})", count(v), v - f),
                (v, _) => opt_count(v),
            }]
        };
        timed_rows(doc, list, metric, &mut t, &["median", "p90", "p99"], &faults);
        // The last column is the failure count here, not a problem text.
        for (row, init) in t.rows.iter_mut().zip(init_names(doc)) {
            let e = entry(list, &init);
            let n = e.and_then(|e| e["failures"].as_u64()).unwrap_or(0);
            *row.last_mut().expect("a row has cells") = if n == 0 {
                "0".to_string()
            } else {
                format!("{n} ({})", e.and_then(|e| e["last_failure"].as_str()).unwrap_or(""))
            };
        }
        t.render(out);
    }
    let _ = writeln!(
        out,
        "### Loading the init alone: `INIT --version` (`pid1 --help`: it has no version flag)\n\nNot PID 1, no child: \
         clone, exec, print, exit, reap. What the binary costs before it does any work.\n"
    );
    let mut t = Table::new(&["init", "median µs", "p90", "p99", "minor faults", "× best peer"]);
    let list = &f["alone"];
    let best = init_names(doc)
        .iter()
        .filter(|n| *n != "shim" && *n != FLOOR)
        .filter_map(|n| entry(list, n).and_then(|e| median(&e["us"])))
        .min_by(f64::total_cmp);
    for init in init_names(doc).into_iter().filter(|n| n != FLOOR) {
        let e = entry(list, &init);
        let us = e.map(|e| &e["us"]);
        t.row(vec![
            name_cell(&init),
            opt(us.and_then(median)),
            opt(us.and_then(|s| field(s, "p90"))),
            opt(us.and_then(|s| field(s, "p99"))),
            opt_count(e.and_then(|e| median(&e["minor_faults"]))),
            times(ratio(us.and_then(median), best)),
        ]);
    }
    t.render(out);
}

fn forward(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["forward"];
    let _ = writeln!(
        out,
        "## 2. Signal forwarding: {} round trips through the init\n\n{} round trips per init after {} warm-up, interleaved; \
         the child acknowledges each {} through a pipe; {}. The floor signals the child directly. µs.\n",
        f["signal"].as_str().unwrap_or("?"),
        f["round_trips"],
        f["warmup_round_trips"],
        f["signal"].as_str().unwrap_or("?"),
        f["cpu"].as_str().unwrap_or("?"),
    );
    let mut t = Table::new(&[
        "init",
        "median µs",
        "p99",
        "max",
        "Δ median over direct",
        "Δ × best peer's",
        "× direct",
        "target",
        "note",
    ]);
    timed_rows(doc, &f["results"], Metric::Forward, &mut t, &["median", "p99", "max"], &|_, _| vec![]);
    t.render(out);
}

fn storm(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["storm"];
    let _ = writeln!(
        out,
        "## 3. Signal storm: {} × {} sent to the init as fast as possible\n\n{} round(s) per init, interleaved; {}. \
         CPU: the init's schedstat runtime over the storm, divided by the signals sent. Pending signals coalesce, \
         so \"delivered\" (the share the child counted) is lower for a slower init; \"wake-ups\": the init's voluntary \
         context switches over the storm.\n",
        f["signals"],
        f["signal"].as_str().unwrap_or("?"),
        f["rounds"],
        f["cpu"].as_str().unwrap_or("?"),
    );
    let mut t = Table::new(&[
        "init",
        "CPU ns/signal (median)",
        "worst round",
        "× best peer",
        "delivered to child",
        "CPU µs per delivered",
        "wake-ups",
        "sent in ms",
        "alive after",
        "target",
        "note",
    ]);
    let best = best_peer(doc, Metric::Storm).map(|b| b.1);
    for init in init_names(doc).into_iter().filter(|n| n != FLOOR) {
        let e = entry(&f["results"], &init);
        let cpu = e.map(|e| &e["cpu_ns_per_signal"]);
        let v = value(doc, Metric::Storm, &init);
        t.row(vec![
            name_cell(&init),
            opt(v),
            opt(cpu.and_then(|c| field(c, "max"))),
            times(ratio(v, best)),
            e.and_then(|e| median(&e["delivered_fraction"])).map_or("-".into(), |d| format!("{:.1} %", d * 100.0)),
            opt(e.and_then(|e| median(&e["cpu_us_per_delivered"]))),
            opt_count(e.and_then(|e| median(&e["wakeups"]))),
            opt(e.and_then(|e| median(&e["send_ms"]))),
            match e.map(|e| &e["alive_after"]) {
                Some(Value::Bool(true)) => "yes".to_string(),
                Some(Value::Bool(false)) if v.is_some() => "**no**".to_string(),
                _ => "-".to_string(),
            },
            target_cell(doc, Metric::Storm, &init),
            problem(e),
        ]);
    }
    t.render(out);
}

fn reap(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["reap"];
    let _ = writeln!(
        out,
        "## 4. Reaping: {} orphans exiting at once\n\n{} round(s) per init, interleaved; {}. CPU: the init's runtime \
         from the orphans' release until no zombie is left, per orphan. Time: until the init's list of children holds \
         only the main child (polled every {} µs); the orphans' own exits, on the same CPU, are most of it. \
         \"wake-ups\": the init's voluntary context switches meanwhile.\n",
        f["orphans"],
        f["rounds"],
        f["cpu"].as_str().unwrap_or("?"),
        f["poll_us"],
    );
    let mut t = Table::new(&[
        "init",
        "CPU µs/orphan (median)",
        "worst round",
        "× best peer",
        "ms to no zombie (median)",
        "worst round",
        "× best peer",
        "wake-ups",
        "orphans per wake-up",
        "target",
        "note",
    ]);
    let best = best_peer(doc, Metric::Reap).map(|b| b.1);
    let best_time = best_peer(doc, Metric::ReapTime).map(|b| b.1);
    for init in init_names(doc).into_iter().filter(|n| n != FLOOR) {
        let e = entry(&f["results"], &init);
        let (v, time) = (value(doc, Metric::Reap, &init), value(doc, Metric::ReapTime, &init));
        let wakeups = e.and_then(|e| median(&e["wakeups"]));
        t.row(vec![
            name_cell(&init),
            opt(v),
            opt(e.and_then(|e| field(&e["cpu_us_per_orphan"], "max"))),
            times(ratio(v, best)),
            opt(time),
            opt(e.and_then(|e| field(&e["ms_to_no_zombie"], "max"))),
            times(ratio(time, best_time)),
            opt_count(wakeups),
            opt(wakeups.filter(|&w| w > 0.0).and_then(|w| Some(f["orphans"].as_f64()? / w))),
            target_cell(doc, Metric::Reap, &init),
            problem(e),
        ]);
    }
    t.render(out);
}

fn idle(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["idle"];
    let _ = writeln!(
        out,
        "## 5. Idle: `{}` under the init\n\nAll inits at once, each as PID 1; the window opens {} ms after the child \
         is ready and closes before it exits. Context switches from /proc/PID/status, CPU from schedstat.\n",
        f["child"].as_str().unwrap_or("?"),
        f["settle_ms"],
    );
    let mut t =
        Table::new(&["init", "context switches", "voluntary", "involuntary", "CPU µs", "window s", "target", "note"]);
    for init in init_names(doc).into_iter().filter(|n| n != FLOOR) {
        let e = entry(&f["results"], &init);
        let get = |k: &str| e.and_then(|e| e[k].as_f64());
        t.row(vec![
            name_cell(&init),
            opt_count(get("context_switches")),
            opt_count(get("voluntary")),
            opt_count(get("nonvoluntary")),
            opt(get("cpu_us")),
            opt(get("window_s")),
            target_cell(doc, Metric::Idle, &init),
            problem(e),
        ]);
    }
    t.render(out);
}

fn memory(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["memory"];
    let _ = writeln!(out, "## 6. Memory and size\n\nKiB. {}.\n", f["note"].as_str().unwrap_or(""));
    let mut t = Table::new(&[
        "init",
        "VmRSS idle",
        "of it RssAnon",
        "of it RssFile",
        "VmHWM idle",
        "VmRSS after storm",
        "VmHWM after storm",
        "VmRSS after reaping",
        "VmHWM after reaping",
        "× best peer (VmRSS)",
        "binary",
        "linkage",
        "target",
    ]);
    let best = best_peer(doc, Metric::Rss).map(|b| b.1);
    for init in init_names(doc).into_iter().filter(|n| n != FLOOR) {
        let e = entry(&f["results"], &init);
        let get = |k: &str| e.and_then(|e| e[k].as_f64());
        let targets = [target_cell(doc, Metric::Rss, &init), target_cell(doc, Metric::Binary, &init)];
        t.row(vec![
            name_cell(&init),
            opt(get("rss_kib_idle")),
            opt(get("rss_anon_kib_idle")),
            opt(get("rss_file_kib_idle")),
            opt(get("hwm_kib_idle")),
            opt(get("rss_kib_after_storm")),
            opt(get("hwm_kib_after_storm")),
            opt(get("rss_kib_after_reaping")),
            opt(get("hwm_kib_after_reaping")),
            times(ratio(value(doc, Metric::Rss, &init), best)),
            opt(value(doc, Metric::Binary, &init)),
            e.map_or("-".to_string(), linkage),
            targets.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("; "),
        ]);
    }
    t.render(out);
}

fn shutdown(doc: &Value, out: &mut String) {
    let f = &doc["figures"]["shutdown"];
    let _ = writeln!(
        out,
        "## 7. Shutdown: kill(init, SIGTERM) until the init has exited\n\nThe child exits at once on SIGTERM. {} runs \
         per init after {} warm-up, a fresh init each, interleaved; {}. The floor is the child alone as PID 1. µs.\n",
        f["runs"],
        f["warmup_runs"],
        f["cpu"].as_str().unwrap_or("?"),
    );
    let mut t = Table::new(&[
        "init",
        "median µs",
        "p90",
        "p99",
        "max",
        "Δ over no init µs",
        "Δ × best peer's",
        "× no init",
        "target",
        "note",
    ]);
    timed_rows(doc, &f["results"], Metric::Shutdown, &mut t, &["median", "p90", "p99", "max"], &|_, _| vec![]);
    t.render(out);
}

fn notes(doc: &Value, out: &mut String) {
    let _ = writeln!(out, "## The inits' own limits, as they bear on these figures\n");
    for init in doc["inits"].as_array().into_iter().flatten() {
        let notes: Vec<&str> = init["notes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "- **{}**: {}.", init["name"].as_str().unwrap_or("?"), notes.join("; "));
        }
    }
    out.push('\n');
}

pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    header(doc, &mut out);
    targets(doc, &mut out);
    start(doc, &mut out);
    forward(doc, &mut out);
    storm(doc, &mut out);
    reap(doc, &mut out);
    idle(doc, &mut out);
    memory(doc, &mut out);
    shutdown(doc, &mut out);
    notes(doc, &mut out);
    out
}
