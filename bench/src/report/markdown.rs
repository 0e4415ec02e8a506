//! The results as Markdown: the machine and method, the summary table the README shows (one
//! number per figure and init), the targets, and then every figure's results in full, one
//! table per list of results with a column per field (median, p90, p99 and max of each
//! summary), so nothing the JSON holds is left out and no figure needs a renderer of its own.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::{entry, init_names, num, results, value, Metric};
use crate::inits::FLOOR;
use crate::machine;

/// Each figure's key in the JSON and what it measures, in a line.
const FIGURES: [(&str, &str); 8] = [
    ("start", "1. Start + exit: `INIT -- PROGRAM`, µs from clone to reap (`alone`: `INIT --version`, no child)"),
    ("forward", "2. Signal forwarding: round trips through the init, µs; the floor signals the child directly"),
    ("storm", "3. Signal storm: signals sent to the init as fast as kill(2) goes; CPU is the init's own"),
    ("reap", "4. Reaping: orphans exiting at once; CPU and time until no zombie is left"),
    ("idle", "5. Idle: every init at once, each as PID 1; context switches and CPU over the window"),
    ("memory", "6. Memory and size, KiB"),
    ("shutdown", "7. Shutdown: kill(init, SIGTERM) until the init has exited, µs; the floor is the child alone"),
    ("counts", "8. Start-up and exit counted: instructions and syscalls of `INIT -- PROGRAM`, single-stepped"),
];

/// The statistics of a summary that the tables show; the tail percentiles only where there are
/// enough samples for them to differ from the worst (a figure of three rounds has not).
const STATS: [&str; 4] = ["median", "p90", "p99", "max"];
const FEW_STATS: [&str; 2] = ["median", "max"];
const ENOUGH_FOR_PERCENTILES: u64 = 10;

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

/// A Markdown table: the head, its rule, the rows, a blank line.
fn table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    row(out, head);
    row(out, &vec!["---".to_string(); head.len()]);
    for r in rows {
        row(out, r);
    }
    out.push('\n');
}

fn name_cell(init: &str) -> String {
    if init == "shim" {
        "**shim**".to_string()
    } else {
        init.to_string()
    }
}

/// A JSON value in a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| n.to_string(), num),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.replace('|', "/"),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join("; "),
        Value::Object(_) => v.to_string().replace('|', "/"),
    }
}

fn is_summary(v: &Value) -> bool {
    v.get("median").is_some()
}

/// Every entry of a list of per-init results, a column per field: a summary's statistics
/// each get a column; the init's name (field `name_key`) comes first, and why it has no
/// numbers last.
fn results_table(out: &mut String, list: &[Value], name_key: &str) {
    let objects: Vec<&Map<String, Value>> = list.iter().filter_map(Value::as_object).collect();
    let last = ["problem", "note"];
    let mut keys: Vec<&str> = Vec::new();
    for key in objects.iter().flat_map(|o| o.keys()) {
        if key != name_key && !last.contains(&key.as_str()) && !keys.contains(&key.as_str()) {
            keys.push(key);
        }
    }
    keys.sort_unstable();
    // The statistics shown for each key; none for a plain value.
    let stats = |k: &str| -> &[&str] {
        let summaries: Vec<&Value> = objects.iter().filter_map(|o| o.get(k)).filter(|v| is_summary(v)).collect();
        match summaries.iter().filter_map(|v| v["n"].as_u64()).max() {
            _ if summaries.is_empty() => &[],
            Some(n) if n >= ENOUGH_FOR_PERCENTILES => &STATS,
            _ => &FEW_STATS,
        }
    };
    let mut head = vec!["init".to_string()];
    for k in &keys {
        match stats(k) {
            [] => head.push(k.to_string()),
            shown => head.extend(shown.iter().map(|s| format!("{k} {s}"))),
        }
    }
    head.push("problem / note".to_string());
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            let mut cells = vec![name_cell(e[name_key].as_str().unwrap_or("?"))];
            for k in &keys {
                match stats(k) {
                    [] => cells.push(cell(&e[*k])),
                    shown => cells.extend(shown.iter().map(|s| cell(&e[*k][*s]))),
                }
            }
            let said: Vec<&str> = last.iter().filter_map(|k| e[*k].as_str()).collect();
            cells.push(said.join("; ").replace('|', "/"));
            cells
        })
        .collect();
    table(out, &head, &rows);
}

fn header(doc: &Value, out: &mut String) {
    let m = &doc["machine"];
    let _ = writeln!(
        out,
        "# shim benchmarks\n\nMeasured {} on {} ({} GiB); load average {} before the suite (a run shortly before \
         leaves it high: the reaping figure makes 1 000 processes runnable at once, forty times); the suite took {} s.  \n\
         Scheduler: sched_autogroup {}, cpu cgroup `{}` (the suite moves into one of its own, as a container has, \
         where autogroup does not apply; `/` if it could not).  \nCommand: `{}`\n",
        doc["date"].as_str().unwrap_or("?"),
        machine::one_line(m),
        m["memory_gib"],
        doc["load_average_before"].as_str().unwrap_or("?"),
        doc["duration_s"],
        if m["sched_autogroup"] == true { "on" } else { "off" },
        m["cpu_cgroup"].as_str().unwrap_or("?"),
        doc["command"].as_str().unwrap_or("?"),
    );
    if doc["quick"] == true {
        let _ = writeln!(out, "**Quick run** (`--quick`): few runs, small storms; a smoke test, not the figures.\n");
    }
    for line in doc["method"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "- {}", line.as_str().unwrap_or_default());
    }
    out.push('\n');
}

/// One number per figure and init, as the README shows them; `n/a` where an init has none.
fn summary(doc: &Value, out: &mut String) {
    let inits: Vec<String> = init_names(doc).into_iter().filter(|n| n != FLOOR).collect();
    let _ = writeln!(out, "## Summary\n\nMedians; Δ: over the same program run the same way with no init.\n");
    let head: Vec<String> = std::iter::once(String::new()).chain(inits.iter().map(|i| name_cell(i))).collect();
    let mut busy = false;
    let rows: Vec<Vec<String>> = Metric::ALL
        .iter()
        .map(|&metric| {
            let mut cells = vec![metric.label().to_string()];
            for init in &inits {
                let e = entry(results(doc, metric), init);
                let text = match (value(doc, metric, init), metric) {
                    (None, _) => "n/a".to_string(),
                    (Some(v), Metric::Binary) => {
                        let linkage = if e.is_some_and(|e| e["static"] == true) { "static" } else { "dynamic" };
                        format!("{} {linkage}", metric.format(v))
                    }
                    (Some(v), _) => metric.format(v),
                };
                // A caveat the figure recorded (an init that never sleeps) goes with the number.
                let noted = e.is_some_and(|e| e["note"].is_string());
                busy |= noted;
                cells.push(if noted { format!("{text} ¹") } else { text });
            }
            cells
        })
        .collect();
    table(out, &head, &rows);
    if busy {
        let _ = writeln!(
            out,
            "¹ never sleeps: it polls in a loop, a whole CPU while idle; never counted as the best peer.\n"
        );
    }
}

fn targets(doc: &Value, out: &mut String) {
    let _ = writeln!(out, "## Targets for shim\n");
    let head = ["figure", "target", "shim", "verdict"].map(String::from);
    let rows: Vec<Vec<String>> = doc["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let verdict = match t["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "not measured",
            };
            vec![cell(&t["figure"]), cell(&t["target"]), cell(&t["shim"]), verdict.to_string()]
        })
        .collect();
    table(out, &head, &rows);
}

/// The inits as found, with how each is run and its own limits as they bear on the figures.
fn inits(doc: &Value, out: &mut String) {
    let _ = writeln!(out, "## The inits\n");
    results_table(out, doc["inits"].as_array().map_or(&[], Vec::as_slice), "name");
    for s in doc["skipped"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "Skipped {}: {}.\n", cell(&s["name"]), cell(&s["why"]));
    }
}

/// A figure: what it measures, its settings, and each of its lists of results in full.
fn figure(doc: &Value, key: &str, title: &str, out: &mut String) {
    let Some(f) = doc["figures"][key].as_object() else { return };
    let _ = writeln!(out, "## {title}\n");
    let settings: Vec<String> =
        f.iter().filter(|(_, v)| !v.is_array()).map(|(k, v)| format!("{k}: {}", cell(v))).collect();
    let _ = writeln!(out, "{}.\n", settings.join("; "));
    for (k, list) in f.iter().filter_map(|(k, v)| Some((k, v.as_array()?))) {
        if k != "results" {
            let _ = writeln!(out, "### {k}\n");
        }
        results_table(out, list, "init");
    }
}

/// One figure of `doc`, as in the full report.
pub fn one_figure(doc: &Value, key: &str) -> String {
    let mut out = String::new();
    for (k, title) in FIGURES.iter().filter(|(k, _)| *k == key) {
        figure(doc, k, title, &mut out);
    }
    out
}

pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    header(doc, &mut out);
    summary(doc, &mut out);
    targets(doc, &mut out);
    inits(doc, &mut out);
    for (key, title) in FIGURES {
        figure(doc, key, title, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_results_table_has_a_column_per_field_and_statistic() {
        let mut out = String::new();
        let s = json!({ "n": 10, "median": 2.0, "p90": 3.0, "p99": 4.0, "max": 5.0 });
        results_table(
            &mut out,
            &[
                json!({ "init": "shim", "us": s, "runs": 3, "problem": null }),
                json!({ "init": "tini", "us": null, "runs": 0, "problem": "did not start | at all" }),
            ],
            "init",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "| init | runs | us median | us p90 | us p99 | us max | problem / note |");
        assert_eq!(lines[2], "| **shim** | 3 | 2.00 | 3.00 | 4.00 | 5.00 |  |");
        assert_eq!(lines[3], "| tini | 0 | - | - | - | - | did not start / at all |");
    }
}
