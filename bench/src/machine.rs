//! What the results were measured on, and when: written into every output, so a number is
//! never read without its machine.

use serde_json::{json, Value};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default().trim().to_string()
}

fn cpuinfo_field(cpuinfo: &str, key: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

pub fn load_average() -> String {
    read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

pub fn describe() -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let mem_kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok()));
    let virtualised = cpuinfo_field(&cpuinfo, "flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor"));
    json!({
        "kernel": format!("Linux {}", read("/proc/sys/kernel/osrelease")),
        "kernel_version": read("/proc/sys/kernel/version"),
        "cpu_model": cpuinfo_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        "cores": cores,
        "memory_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "virtual_machine": virtualised,
        // With autogroup on, outside a cpu cgroup, every new session is its own scheduling
        // group: an init that setsid()s its child (dumb-init) changes how the round trips are
        // scheduled. In a container's cpu cgroup autogroup does not apply.
        "sched_autogroup": read("/proc/sys/kernel/sched_autogroup_enabled") == "1",
        "cpu_cgroup": read("/proc/self/cgroup").lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "cpu").then(|| path.to_string())
        }),
    })
}

/// One line for a table caption or the chart.
pub fn one_line(machine: &Value) -> String {
    format!(
        "{}, {} core{}{}, {}",
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["cores"],
        if machine["cores"] == 1 { "" } else { "s" },
        if machine["virtual_machine"] == true { " (VM)" } else { "" },
        machine["kernel"].as_str().unwrap_or("?"),
    )
}

/// UTC now as `YYYY-MM-DDTHH:MM:SSZ`, from the civil-from-days algorithm (no date crate).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_798_761_600 + 3_661), "2027-01-01T01:01:01Z");
    }
}
