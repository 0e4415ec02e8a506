//! The chart the README shows: one group of horizontal bars per figure, each group scaled to
//! its own largest value, values written on the bars, shim in its own colour, shim's target as
//! a dashed line. Plain SVG text, drawn from the JSON: no plotting library.

use std::fmt::Write;

use serde_json::Value;

use super::{entry, init_names, results, value, Metric};
use crate::inits::FLOOR;
use crate::machine;

const LABEL_X: f64 = 20.0;
const BAR_X: f64 = 140.0;
const BAR_W: f64 = 560.0;
const ROW_H: f64 = 18.0;
const SHIM: &str = "#d9480f";
const PEER: &str = "#7f94b8";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// What goes after an init's bar: its value with the caveat its figure recorded, or why it has
/// no value.
fn label(doc: &Value, metric: Metric, init: &str, v: Option<f64>) -> String {
    let e = entry(results(doc, metric), init);
    let Some(v) = v else {
        let why = e.and_then(|e| e["problem"].as_str().or(e["last_failure"].as_str()).filter(|s| !s.is_empty()));
        return format!("n/a: {}", why.unwrap_or("not measured"));
    };
    let caveat = match (metric, e) {
        (Metric::Binary, Some(e)) if e["static"] == true => ", static",
        (Metric::Binary, Some(_)) => ", dynamic",
        (_, Some(e)) if e["note"].is_string() => " (never sleeps)",
        _ => "",
    };
    format!("{}{caveat}", metric.format(v))
}

/// shim's targets for a figure, as the JSON states them.
fn targets(doc: &Value, metric: Metric) -> String {
    let all = doc["targets"].as_array().into_iter().flatten();
    let texts: Vec<&str> = all.filter(|t| t["figure"] == metric.label()).filter_map(|t| t["target"].as_str()).collect();
    texts.join("; ")
}

pub fn render(doc: &Value) -> String {
    let inits: Vec<String> = init_names(doc).into_iter().filter(|n| n != FLOOR).collect();
    let group_h = 40.0 + ROW_H * inits.len() as f64;
    let height = 112.0 + group_h * Metric::ALL.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"980\" height=\"{height}\" font-family=\"DejaVu Sans, \
         Helvetica, Arial, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let quick = if doc["quick"] == true { " (quick run)" } else { "" };
    let lines = [
        format!("<tspan font-size=\"20\" font-weight=\"bold\">shim and the other container inits{quick}</tspan>"),
        esc(&format!("{} · {}", doc["date"].as_str().unwrap_or("?"), machine::one_line(&doc["machine"]))),
        "Shorter is better. Each group is scaled to its own largest value; medians; dashed line: shim's target. \
         Details: latest.md."
            .to_string(),
    ];
    for (k, line) in lines.iter().enumerate() {
        let _ = writeln!(s, "<text x=\"{LABEL_X}\" y=\"{}\">{line}</text>", 30 + 25 * k);
    }
    let mut y = 112.0;
    for metric in Metric::ALL {
        let values: Vec<Option<f64>> = inits.iter().map(|i| value(doc, metric, i)).collect();
        let target = metric.target().filter(|&t| t > 0.0);
        let scale = values.iter().flatten().copied().chain(target).fold(0.0f64, f64::max);
        let x_of = |v: f64| BAR_X + if scale > 0.0 { v.max(0.0) / scale * BAR_W } else { 0.0 };
        let unit = if metric.unit().is_empty() { String::new() } else { format!(" ({})", metric.unit()) };
        let _ =
            write!(s, "<text x=\"{LABEL_X}\" y=\"{}\" font-weight=\"bold\">{}{unit}", y + 14.0, esc(metric.label()));
        match targets(doc, metric) {
            t if t.is_empty() => {}
            t => {
                let _ = write!(
                    s,
                    "<tspan dx=\"14\" font-weight=\"normal\" fill=\"{SHIM}\">shim's target: {}</tspan>",
                    esc(&t)
                );
            }
        }
        s.push_str("</text>\n");
        let top = y + 24.0;
        for (k, (init, v)) in inits.iter().zip(&values).enumerate() {
            let (ry, fill) = (top + ROW_H * k as f64, if init == "shim" { SHIM } else { PEER });
            let bold = if init == "shim" { " font-weight=\"bold\"" } else { "" };
            let end = v.map_or(BAR_X - 6.0, x_of);
            if v.is_some() {
                let _ = writeln!(
                    s,
                    "<rect x=\"{BAR_X}\" y=\"{ry}\" width=\"{:.1}\" height=\"13\" fill=\"{fill}\"/>",
                    end - BAR_X
                );
            }
            let _ = writeln!(s, "<text x=\"{LABEL_X}\" y=\"{}\"{bold}>{}</text>", ry + 11.0, esc(init));
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\"{bold}>{}</text>",
                end + 6.0,
                ry + 11.0,
                esc(&label(doc, metric, init, *v))
            );
        }
        if let Some(t) = target {
            let (x, bottom) = (x_of(t), top + ROW_H * inits.len() as f64);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"{SHIM}\" stroke-dasharray=\"4 3\"/>",
                top - 4.0
            );
        }
        y += group_h;
    }
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
            "machine": { "cpu_model": "x", "cores": 2, "kernel": "Linux 6" },
            "inits": [{ "name": FLOOR }, { "name": "shim" }, { "name": "pid1" }],
            "targets": [{ "figure": Metric::Storm.label(), "target": "≤ 570 ns" }],
            "figures": { "storm": { "results": [
                { "init": "shim", "cpu_ns_per_signal": { "median": 500.0 } },
                { "init": "pid1", "problem": "does not forward SIGUSR1 <figure 2>" },
            ] } },
        });
        let svg = render(&doc);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(">500 ns<"));
        assert!(svg.contains("n/a: does not forward SIGUSR1 &lt;figure 2&gt;"));
        assert!(svg.contains("shim's target: ≤ 570 ns"));
    }
}
