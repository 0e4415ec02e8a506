//! The chart: one group of horizontal bars per figure, each group scaled to its own largest
//! value, values written on the bars, shim in its own colour, shim's target as a dashed line.
//! Plain SVG text, drawn from the JSON: no plotting library.

use std::fmt::Write;

use serde_json::Value;

use super::{entry, init_names, value, Metric};
use crate::inits::FLOOR;
use crate::machine;

const WIDTH: f64 = 980.0;
const LABEL_X: f64 = 20.0;
const BAR_X: f64 = 140.0;
const BAR_W: f64 = 560.0;
const ROW_H: f64 = 18.0;
const BAR_H: f64 = 13.0;
const SHIM: &str = "#d9480f";
const PEER: &str = "#7f94b8";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An init's entry in the figure a metric comes from.
fn figure_entry<'a>(doc: &'a Value, metric: Metric, init: &str) -> Option<&'a Value> {
    let f = &doc["figures"];
    let list = match metric {
        Metric::StartPid1 => &f["start"]["pid1"],
        Metric::StartHost => &f["start"]["not_pid1"],
        Metric::Forward => &f["forward"]["results"],
        Metric::Storm => &f["storm"]["results"],
        Metric::Reap | Metric::ReapTime => &f["reap"]["results"],
        Metric::Idle => &f["idle"]["results"],
        Metric::Rss | Metric::Binary => &f["memory"]["results"],
        Metric::Shutdown => &f["shutdown"]["results"],
    };
    entry(list, init)
}

/// Why an init has no number in a figure, as that figure recorded it.
fn why_missing(doc: &Value, metric: Metric, init: &str) -> String {
    let e = figure_entry(doc, metric, init);
    let problem = e
        .and_then(|e| e["problem"].as_str().or_else(|| e["last_failure"].as_str().filter(|s| !s.is_empty())))
        .unwrap_or("not measured");
    let short: String = problem.chars().take(70).collect();
    if short.len() < problem.len() {
        format!("{short}…")
    } else {
        short
    }
}

fn label(doc: &Value, metric: Metric, init: &str, v: f64) -> String {
    let text = metric.format(v);
    if metric != Metric::Binary {
        // A caveat the figure recorded (an init that never sleeps) goes with the number.
        let busy = figure_entry(doc, metric, init).and_then(|e| e["note"].as_str()).is_some();
        return if busy { format!("{text} (never sleeps)") } else { text };
    }
    let is_static = entry(&doc["figures"]["memory"]["results"], init).and_then(|e| e["static"].as_bool());
    match is_static {
        Some(true) => format!("{text}, static"),
        Some(false) => format!("{text}, dynamic"),
        None => text,
    }
}

pub fn render(doc: &Value) -> String {
    let inits: Vec<String> = init_names(doc).into_iter().filter(|n| n != FLOOR).collect();
    let group_h = 26.0 + ROW_H * inits.len() as f64 + 14.0;
    let top = 112.0;
    let height = top + group_h * Metric::ALL.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = if doc["quick"] == true {
        "shim and the other container inits (quick run)"
    } else {
        "shim and the other container inits"
    };
    let _ = writeln!(s, r#"<text x="{LABEL_X}" y="30" font-size="20" font-weight="bold">{}</text>"#, esc(title));
    let machine_line = format!("{} · {}", doc["date"].as_str().unwrap_or("?"), machine::one_line(&doc["machine"]));
    let _ = writeln!(s, r##"<text x="{LABEL_X}" y="52" fill="#333">{}</text>"##, esc(&machine_line));
    let _ = writeln!(
        s,
        r##"<text x="{LABEL_X}" y="70" fill="#333">command: <tspan font-family="DejaVu Sans Mono, monospace">{}</tspan></text>"##,
        esc(doc["command"].as_str().unwrap_or("?"))
    );
    let _ = writeln!(
        s,
        r##"<text x="{LABEL_X}" y="88" fill="#555">Shorter is better. Each group is scaled to its own largest value; medians; dashed line: shim's target. Details: latest.md.</text>"##
    );
    let mut y = top;
    for metric in Metric::ALL {
        let values: Vec<Option<f64>> = inits.iter().map(|i| value(doc, metric, i)).collect();
        let target = metric.target().filter(|&t| t > 0.0);
        let scale = values.iter().flatten().copied().chain(target).fold(0.0f64, f64::max);
        let _ = writeln!(
            s,
            r#"<text x="{LABEL_X}" y="{:.1}" font-size="13" font-weight="bold">{}{}{}</text>"#,
            y + 14.0,
            esc(metric.label()),
            if metric.unit().is_empty() { String::new() } else { format!(" ({})", metric.unit()) },
            match metric.target_text() {
                Some(t) =>
                    format!(r#"<tspan dx="14" font-weight="normal" fill="{SHIM}">shim's target: {}</tspan>"#, esc(&t)),
                None => String::new(),
            }
        );
        let rows_top = y + 24.0;
        for (k, (init, v)) in inits.iter().zip(&values).enumerate() {
            let ry = rows_top + ROW_H * k as f64;
            let is_shim = init == "shim";
            let weight = if is_shim { r#" font-weight="bold""# } else { "" };
            let _ = writeln!(s, r#"<text x="{LABEL_X}" y="{:.1}"{weight}>{}</text>"#, ry + BAR_H - 2.0, esc(init));
            match v {
                Some(v) => {
                    let w = if scale > 0.0 { (v.max(0.0) / scale * BAR_W).max(0.0) } else { 0.0 };
                    let fill = if is_shim { SHIM } else { PEER };
                    let _ =
                        writeln!(s, r#"<rect x="{BAR_X}" y="{ry:.1}" width="{w:.1}" height="{BAR_H}" fill="{fill}"/>"#);
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}"{weight}>{}</text>"#,
                        BAR_X + w + 6.0,
                        ry + BAR_H - 2.0,
                        esc(&label(doc, metric, init, *v))
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"<text x="{BAR_X}" y="{:.1}" fill="#888" font-style="italic">n/a: {}</text>"##,
                        ry + BAR_H - 2.0,
                        esc(&why_missing(doc, metric, init))
                    );
                }
            }
        }
        if let Some(t) = target {
            let x = BAR_X + t / scale * BAR_W;
            let bottom = rows_top + ROW_H * inits.len() as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{SHIM}" stroke-dasharray="4 3"/>"#,
                rows_top - 4.0
            );
        }
        y += group_h;
    }
    let _ = writeln!(
        s,
        r##"<text x="{LABEL_X}" y="{:.1}" fill="#777" font-size="10">Drawn by shim-bench from bench/results/latest.json.</text>"##,
        height - 12.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_a_bar_per_init_and_says_why_one_is_missing() {
        let doc = json!({
            "date": "2026-01-01T00:00:00Z",
            "command": "cargo run --release -p shim-bench",
            "machine": { "cpu_model": "x", "cores": 2, "kernel": "Linux 6" },
            "inits": [{ "name": FLOOR }, { "name": "shim" }, { "name": "pid1" }],
            "figures": { "storm": { "results": [
                { "init": "shim", "cpu_ns_per_signal": { "median": 500.0 } },
                { "init": "pid1", "problem": "does not forward SIGUSR1 <figure 2>" },
            ] } },
        });
        let svg = render(&doc);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("500 ns"));
        assert!(svg.contains("does not forward SIGUSR1 &lt;figure 2&gt;"));
        assert!(svg.contains(SHIM));
        assert!(svg.contains("shim&#39;s target: ≤ 570 ns") || svg.contains("shim's target: ≤ 570 ns"));
    }
}
