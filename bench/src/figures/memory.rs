//! Figure 6: memory and size. Not a run of its own: the init's resident memory as read in the
//! idle figure and after the storm and the reaping, with each binary's size and linkage.

use serde_json::{json, Value};

use crate::report::entry;

fn kib(v: Option<&Value>, key: &str) -> Value {
    v.and_then(|v| v[key].as_u64()).filter(|&k| k > 0).map_or(Value::Null, Value::from)
}

/// `inits`: the JSON of each init (size, linkage).
pub fn compose(inits: &[Value], idle: &Value, storm: &Value, reap: &Value) -> Value {
    let results: Vec<Value> = inits
        .iter()
        .filter(|init| init["floor"] != true)
        .map(|init| {
            let name = init["name"].as_str().unwrap_or_default();
            let [i, s, r] = [idle, storm, reap].map(|figure| entry(&figure["results"], name));
            json!({
                "init": name,
                "rss_kib_idle": kib(i, "rss_kib"),
                "rss_anon_kib_idle": kib(i, "rss_anon_kib"),
                "rss_file_kib_idle": kib(i, "rss_file_kib"),
                "hwm_kib_idle": kib(i, "hwm_kib"),
                "rss_kib_after_storm": kib(s, "rss_kib_after"),
                "hwm_kib_after_storm": kib(s, "hwm_kib_after"),
                "rss_kib_after_reaping": kib(r, "rss_kib_after"),
                "hwm_kib_after_reaping": kib(r, "hwm_kib_after"),
                "binary_bytes": init["binary_bytes"],
                "static": init["static"],
                "interpreter": init["interpreter"],
            })
        })
        .collect();
    json!({
        "note": "VmRSS, RssAnon, RssFile and VmHWM from /proc/PID/status. RssFile is file pages mapped from the binary and its libraries, shared with the page cache; RssAnon is the init's own. A dynamic binary's size leaves out the shared libraries it loads, which its VmRSS counts",
        "results": results,
    })
}
