//! Reading the results back: the headline number of each figure per init, the best peer, and
//! the targets shim is held to. The Markdown and the chart are both drawn from the JSON through
//! this module, so they cannot disagree with it.

pub mod markdown;
pub mod svg;

use serde_json::{json, Value};

use crate::inits::FLOOR;

/// The one number per init that the chart and the summary table show and the targets check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    StartPid1,
    StartHost,
    Forward,
    Storm,
    Reap,
    ReapTime,
    Idle,
    Rss,
    Binary,
    Shutdown,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::StartPid1,
        Metric::StartHost,
        Metric::Forward,
        Metric::Storm,
        Metric::Reap,
        Metric::ReapTime,
        Metric::Idle,
        Metric::Rss,
        Metric::Binary,
        Metric::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Metric::StartPid1 => "1. start + exit as PID 1: Δ over no init",
            Metric::StartHost => "1. start + exit not as PID 1: Δ over no init",
            Metric::Forward => "2. signal forwarding round trip: Δ over direct",
            Metric::Storm => "3. signal storm: init CPU per signal",
            Metric::Reap => "4. reaping: init CPU per orphan",
            Metric::ReapTime => "4. reaping: time until no zombie is left",
            Metric::Idle => "5. idle: context switches while the child sleeps",
            Metric::Rss => "6. memory: VmRSS, largest of idle / after storm / after reaping",
            Metric::Binary => "6. binary size",
            Metric::Shutdown => "7. shutdown: SIGTERM to exit, Δ over no init",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::StartPid1 | Metric::StartHost | Metric::Forward | Metric::Reap | Metric::Shutdown => "µs",
            Metric::Storm => "ns",
            Metric::ReapTime => "ms",
            Metric::Idle => "",
            Metric::Rss | Metric::Binary => "KiB",
        }
    }

    /// A value as the tables and the chart print it.
    pub fn format(self, v: f64) -> String {
        match self {
            Metric::Idle => format!("{v:.0}"),
            _ => with_unit(v, self.unit()),
        }
    }

    /// shim's absolute target, where there is one.
    pub fn target(self) -> Option<f64> {
        match self {
            Metric::StartPid1 => Some(100.0),
            Metric::Storm => Some(570.0),
            Metric::Reap => Some(3.3),
            Metric::Idle => Some(0.0),
            Metric::Rss => Some(200.0),
            Metric::Binary => Some(400.0),
            Metric::Shutdown => Some(38.0),
            Metric::StartHost | Metric::Forward | Metric::ReapTime => None,
        }
    }
}

/// The entry for `init` in a list of per-init results.
pub fn entry<'a>(list: &'a Value, init: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|r| r["init"] == init)
}

fn median(summary: &Value) -> Option<f64> {
    summary["median"].as_f64()
}

/// The init names in the order measured, floor first.
pub fn init_names(doc: &Value) -> Vec<String> {
    doc["inits"]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(|i| i["name"].as_str().map(str::to_string)).collect())
}

/// The list of per-init results a metric is read from.
pub fn results(doc: &Value, metric: Metric) -> &Value {
    let f = &doc["figures"];
    match metric {
        Metric::StartPid1 => &f["start"]["pid1"],
        Metric::StartHost => &f["start"]["not_pid1"],
        Metric::Forward => &f["forward"]["results"],
        Metric::Storm => &f["storm"]["results"],
        Metric::Reap | Metric::ReapTime => &f["reap"]["results"],
        Metric::Idle => &f["idle"]["results"],
        Metric::Rss | Metric::Binary => &f["memory"]["results"],
        Metric::Shutdown => &f["shutdown"]["results"],
    }
}

/// A figure's number for one init; `None` where it was not measured.
pub fn value(doc: &Value, metric: Metric, init: &str) -> Option<f64> {
    let list = results(doc, metric);
    let e = entry(list, init)?;
    // Median of `key` for `init`, minus the floor's.
    let delta = |key: &str| Some(median(&e[key])? - median(&entry(list, FLOOR)?[key])?);
    match metric {
        Metric::StartPid1 | Metric::StartHost | Metric::Forward | Metric::Shutdown => delta("us"),
        Metric::Storm => median(&e["cpu_ns_per_signal"]),
        Metric::Reap => median(&e["cpu_us_per_orphan"]),
        Metric::ReapTime => median(&e["ms_to_no_zombie"]),
        Metric::Idle => e["context_switches"].as_f64(),
        Metric::Rss => ["rss_kib_idle", "rss_kib_after_storm", "rss_kib_after_reaping"]
            .iter()
            .filter_map(|k| e[k].as_f64())
            .reduce(f64::max),
        Metric::Binary => Some(e["binary_bytes"].as_f64()? / 1024.0),
    }
}

/// Whether the init named `init` never sleeps: its latency costs a whole CPU.
pub fn never_sleeps(doc: &Value, init: &str) -> bool {
    doc["inits"].as_array().into_iter().flatten().any(|i| i["name"] == init && i["never_sleeps"] == true)
}

/// The peer with the lowest value, and that value. Neither shim nor the floor is a peer, nor is
/// an init that never sleeps: its latency costs a whole CPU, which no container can spare.
pub fn best_peer(doc: &Value, metric: Metric) -> Option<(String, f64)> {
    init_names(doc)
        .into_iter()
        .filter(|n| n != "shim" && n != FLOOR && !never_sleeps(doc, n))
        .filter_map(|n| value(doc, metric, &n).map(|v| (n, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Numbers as the tables print them: three significant digits or so, no noise.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn with_unit(x: f64, unit: &str) -> String {
    if unit.is_empty() {
        num(x)
    } else {
        format!("{} {unit}", num(x))
    }
}

/// Each target, shim's number against it, and whether it is met. Written into the JSON.
pub fn evaluate_targets(doc: &Value) -> Value {
    let mut out = Vec::new();
    for metric in Metric::ALL {
        let v = value(doc, metric, "shim");
        let shown = v.map(|v| metric.format(v));
        let best = best_peer(doc, metric);
        let of_best = best.as_ref().map_or(String::new(), |(n, b)| format!(" ({n}: {})", metric.format(*b)));
        let best = best.map(|b| b.1);
        let checks: Vec<(String, Option<String>, Option<bool>)> = match (metric, metric.target()) {
            (Metric::StartPid1, Some(limit)) => {
                let ratio = v.zip(best.filter(|&b| b > 0.0)).map(|(v, b)| v / b);
                vec![
                    (format!("Δ ≤ {}", metric.format(limit)), shown, v.map(|v| v <= limit)),
                    (
                        format!("Δ ≤ 0.15× the best peer's{of_best}"),
                        ratio.map(|r| format!("{r:.2}×")),
                        ratio.map(|r| r <= 0.15),
                    ),
                ]
            }
            (Metric::Forward, _) => {
                vec![(format!("Δ ≤ the best peer's{of_best}"), shown, v.zip(best).map(|(v, b)| v <= b))]
            }
            (Metric::Binary, Some(limit)) => {
                let is_static = entry(results(doc, metric), "shim").and_then(|m| m["static"].as_bool()) == Some(true);
                let linkage = if is_static { "static" } else { "not static" };
                let shown = shown.map(|s| format!("{s}, {linkage}"));
                vec![(format!("≤ {}, static", metric.format(limit)), shown, v.map(|v| v <= limit && is_static))]
            }
            (Metric::Idle, Some(limit)) => vec![("0 context switches".into(), shown, v.map(|v| v <= limit))],
            (_, Some(limit)) => vec![(format!("≤ {}", metric.format(limit)), shown, v.map(|v| v <= limit))],
            (_, None) => vec![],
        };
        for (target, shim, met) in checks {
            out.push(json!({
                "figure": metric.label(),
                "target": target,
                "shim": shim.unwrap_or_else(|| "not measured".to_string()),
                "met": met,
            }));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        let s = |m: f64| json!({ "median": m });
        json!({
            "inits": [{ "name": FLOOR }, { "name": "shim" }, { "name": "tini" }, { "name": "catatonit" }],
            "figures": {
                "start": { "pid1": [
                    { "init": FLOOR, "us": s(1000.0) },
                    { "init": "shim", "us": s(1080.0) },
                    { "init": "tini", "us": s(1700.0) },
                    { "init": "catatonit", "us": s(1500.0) },
                ] },
                "storm": { "results": [
                    { "init": "shim", "cpu_ns_per_signal": s(600.0) },
                    { "init": "tini", "cpu_ns_per_signal": s(900.0) },
                ] },
            }
        })
    }

    #[test]
    fn deltas_are_over_the_floor_and_the_best_peer_is_the_lowest() {
        let d = doc();
        assert_eq!(value(&d, Metric::StartPid1, "shim"), Some(80.0));
        assert_eq!(best_peer(&d, Metric::StartPid1), Some(("catatonit".to_string(), 500.0)));
        assert_eq!(value(&d, Metric::Forward, "shim"), None);
    }

    #[test]
    fn targets_say_met_missed_or_not_measured() {
        let t = evaluate_targets(&doc());
        let find =
            |s: &str| t.as_array().unwrap().iter().find(|x| x["target"].as_str().unwrap().starts_with(s)).cloned();
        assert_eq!(find("Δ ≤ 100 µs").unwrap()["met"], true);
        // 80 / 500 = 0.16 > 0.15.
        assert_eq!(find("Δ ≤ 0.15×").unwrap()["met"], false);
        assert_eq!(find("≤ 570 ns").unwrap()["met"], false);
        assert_eq!(find("≤ 3.30 µs").unwrap()["met"], Value::Null);
    }

    #[test]
    fn numbers_keep_about_three_digits() {
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(0.0923), "0.092");
    }
}
