//! Reading the results back: the headline number of each figure per init, the best peer, and
//! the targets shim is held to. The Markdown and the chart are both drawn from the JSON through
//! this module, so they cannot disagree with it.

pub mod markdown;
pub mod svg;

use serde_json::{json, Value};

use crate::inits::FLOOR;

/// The one number per init that the chart shows and the targets check.
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
            Metric::Idle => count(v),
            _ => with_unit(v, self.unit()),
        }
    }

    /// shim's target in words, where there is one.
    pub fn target_text(self) -> Option<String> {
        match self {
            Metric::StartPid1 => Some("≤ 100 µs and ≤ 0.15× the best peer's".to_string()),
            Metric::Forward => Some("≤ the best peer's".to_string()),
            Metric::Idle => Some("0".to_string()),
            Metric::Binary => Some("≤ 400 KiB, static".to_string()),
            _ => self.target().map(|t| format!("≤ {}", self.format(t))),
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

pub fn median(summary: &Value) -> Option<f64> {
    summary["median"].as_f64()
}

/// The init names in the order measured, floor first.
pub fn init_names(doc: &Value) -> Vec<String> {
    doc["inits"]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(|i| i["name"].as_str().map(str::to_string)).collect())
}

/// Median of `key` for `init` in `list`, minus the floor's.
fn delta(list: &Value, key: &str, init: &str) -> Option<f64> {
    Some(median(&entry(list, init)?[key])? - median(&entry(list, FLOOR)?[key])?)
}

/// A figure's number for one init; `None` where it was not measured.
pub fn value(doc: &Value, metric: Metric, init: &str) -> Option<f64> {
    let f = &doc["figures"];
    let mem = || entry(&f["memory"]["results"], init);
    match metric {
        Metric::StartPid1 => delta(&f["start"]["pid1"], "us", init),
        Metric::StartHost => delta(&f["start"]["not_pid1"], "us", init),
        Metric::Forward => delta(&f["forward"]["results"], "us", init),
        Metric::Storm => median(&entry(&f["storm"]["results"], init)?["cpu_ns_per_signal"]),
        Metric::Reap => median(&entry(&f["reap"]["results"], init)?["cpu_us_per_orphan"]),
        Metric::ReapTime => median(&entry(&f["reap"]["results"], init)?["ms_to_no_zombie"]),
        Metric::Idle => entry(&f["idle"]["results"], init)?["context_switches"].as_f64(),
        Metric::Rss => {
            let m = mem()?;
            ["rss_kib_idle", "rss_kib_after_storm", "rss_kib_after_reaping"]
                .iter()
                .filter_map(|k| m[k].as_f64())
                .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))))
        }
        Metric::Binary => Some(mem()?["binary_bytes"].as_f64()? / 1024.0),
        Metric::Shutdown => delta(&f["shutdown"]["results"], "us", init),
    }
}

/// The peer with the lowest value, and that value. Neither shim nor the floor is a peer, nor is
/// an init that never sleeps: its latency costs a whole CPU, which no container can spare.
pub fn best_peer(doc: &Value, metric: Metric) -> Option<(String, f64)> {
    let busy: Vec<&str> = doc["inits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["never_sleeps"] == true)
        .filter_map(|i| i["name"].as_str())
        .collect();
    init_names(doc)
        .into_iter()
        .filter(|n| n != "shim" && n != FLOOR && !busy.contains(&n.as_str()))
        .filter_map(|n| value(doc, metric, &n).map(|v| (n, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// `value / best`, when that means something (a positive best).
pub fn ratio(value: Option<f64>, best: Option<f64>) -> Option<f64> {
    match (value, best) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

/// Numbers as the tables print them: three significant digits or so, no noise.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A count: whole numbers, however small.
pub fn count(x: f64) -> String {
    format!("{x:.0}")
}

pub fn with_unit(x: f64, unit: &str) -> String {
    if unit.is_empty() {
        num(x)
    } else {
        format!("{} {unit}", num(x))
    }
}

/// Each target, shim's number against it, and whether it is met. Written into the JSON.
pub fn evaluate_targets(doc: &Value) -> Value {
    let shim = |m| value(doc, m, "shim");
    let mut out = Vec::new();
    let mut check = |metric: Metric, text: String, shown: Option<String>, met: Option<bool>| {
        out.push(json!({
            "figure": metric.label(),
            "target": text,
            "shim": shown.unwrap_or_else(|| "not measured".to_string()),
            "met": met,
        }));
    };
    for metric in Metric::ALL {
        let v = shim(metric);
        let best = best_peer(doc, metric);
        match metric {
            Metric::StartPid1 => {
                check(metric, "Δ ≤ 100 µs".into(), v.map(|v| with_unit(v, "µs")), v.map(|v| v <= 100.0));
                let r = ratio(v, best.as_ref().map(|b| b.1));
                check(
                    metric,
                    format!(
                        "Δ ≤ 0.15× the best peer's{}",
                        best.as_ref().map_or(String::new(), |(n, b)| format!(" ({n}: {})", with_unit(*b, "µs")))
                    ),
                    r.map(|r| format!("{r:.2}×")),
                    r.map(|r| r <= 0.15),
                );
            }
            Metric::Forward => {
                let text = format!(
                    "Δ ≤ the best peer's{}",
                    best.as_ref().map_or(String::new(), |(n, b)| format!(" ({n}: {})", with_unit(*b, "µs")))
                );
                let met = match (v, &best) {
                    (Some(v), Some((_, b))) => Some(v <= *b),
                    _ => None,
                };
                check(metric, text, v.map(|v| with_unit(v, "µs")), met);
            }
            Metric::Binary => {
                let is_static = entry(&doc["figures"]["memory"]["results"], "shim").and_then(|m| m["static"].as_bool());
                let shown = v.map(|v| {
                    format!(
                        "{}, {}",
                        with_unit(v, "KiB"),
                        if is_static == Some(true) { "static" } else { "not static" }
                    )
                });
                check(metric, "≤ 400 KiB, static".into(), shown, v.map(|v| v <= 400.0 && is_static == Some(true)));
            }
            _ => {
                let Some(limit) = metric.target() else { continue };
                let unit = metric.unit();
                let text = if metric == Metric::Idle {
                    "0 context switches".to_string()
                } else {
                    format!("≤ {}", with_unit(limit, unit))
                };
                check(metric, text, v.map(|v| metric.format(v)), v.map(|v| v <= limit));
            }
        }
    }
    Value::Array(out)
}

/// "met" / "**missed**" / "not measured", for the tables.
pub fn verdict(met: &Value) -> &'static str {
    match met.as_bool() {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
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
    }
}
