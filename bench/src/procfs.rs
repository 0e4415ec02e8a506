//! What the harness reads about an init from `/proc` (the host's, so host pids): its CPU time,
//! state, memory and context switches, and its children.
//!
//! CPU time comes from `/proc/PID/schedstat` (nanoseconds the scheduler charged the task) and
//! is cross-checked with utime+stime from `/proc/PID/stat` (clock ticks, 10 ms each here, too
//! coarse alone). schedstat is only brought up to date when the task leaves the CPU, so it is
//! read while the init is asleep: see [`wait_asleep`].

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// CPU charged to a task so far.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub runtime_ns: u64,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
}

impl Cpu {
    pub fn since(self, before: Cpu) -> Cpu {
        Cpu {
            runtime_ns: self.runtime_ns.saturating_sub(before.runtime_ns),
            ticks: self.ticks.saturating_sub(before.ticks),
        }
    }
}

/// The fields of /proc/PID/stat after the command name, which may itself hold spaces and ')'.
fn stat_fields(pid: i32) -> io::Result<Vec<String>> {
    let stat = std::fs::read(format!("/proc/{pid}/stat"))?;
    let close = stat.iter().rposition(|&b| b == b')').ok_or(io::ErrorKind::InvalidData)?;
    Ok(String::from_utf8_lossy(&stat[close + 1..]).split_whitespace().map(str::to_string).collect())
}

/// The state letter: R, S, D, Z, T...
pub fn state(pid: i32) -> io::Result<char> {
    stat_fields(pid)?.first().and_then(|s| s.chars().next()).ok_or_else(|| io::ErrorKind::InvalidData.into())
}

pub fn cpu(pid: i32) -> io::Result<Cpu> {
    let sched = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
    let runtime_ns = sched.split_whitespace().next().and_then(|v| v.parse().ok()).ok_or(io::ErrorKind::InvalidData)?;
    // After the name: state is field 3 of stat(5), utime 14 and stime 15; here index 0 is 3.
    let fields = stat_fields(pid)?;
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).ok_or(io::ErrorKind::InvalidData);
    Ok(Cpu { runtime_ns, ticks: num(11)? + num(12)? })
}

/// Memory and context switches from /proc/PID/status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    pub rss_kib: u64,
    /// The part of VmRSS that is the process's own (heap, stack, written data)...
    pub rss_anon_kib: u64,
    /// ...and the part that is mapped file pages (the binary and libraries), shared with the
    /// page cache and with every other process that maps the same file.
    pub rss_file_kib: u64,
    pub hwm_kib: u64,
    pub voluntary: u64,
    pub nonvoluntary: u64,
}

pub fn status(pid: i32) -> io::Result<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let n = value.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match key {
            "VmRSS" => s.rss_kib = n,
            "VmHWM" => s.hwm_kib = n,
            "RssAnon" => s.rss_anon_kib = n,
            "RssFile" => s.rss_file_kib = n,
            "voluntary_ctxt_switches" => s.voluntary = n,
            "nonvoluntary_ctxt_switches" => s.nonvoluntary = n,
            _ => {}
        }
    }
    Ok(s)
}

/// Wait (bounded) until `pid` sleeps: blocked in its wait for signals or children, with its
/// CPU time settled. No handshake can say that for every init, so this polls its state.
/// `false`: it never slept within `timeout` (or it is gone).
pub fn wait_asleep(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match state(pid) {
            Ok('S') => return true,
            Ok('Z') | Err(_) => return false,
            Ok(_) => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Short, so the answer is prompt; a sleep, so an init sharing this CPU gets to run.
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// An init's list of children (zombies included: a child leaves the list when it is reaped).
/// The kernel keeps it in fork/re-parent order, so the main child comes first.
pub struct Children {
    file: File,
    buf: Vec<u8>,
}

impl Children {
    pub fn open(pid: i32) -> io::Result<Children> {
        Ok(Children { file: File::open(format!("/proc/{pid}/task/{pid}/children"))?, buf: vec![0; 64] })
    }

    /// Every child, reading the whole list.
    pub fn all(&mut self) -> io::Result<Vec<i32>> {
        let mut text = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = self.file.read_at(&mut chunk, text.len() as u64)?;
            if n == 0 {
                break;
            }
            text.extend_from_slice(&chunk[..n]);
        }
        Ok(parse_pids(&text, true))
    }

    /// Only the first few children: enough to tell whether anything but the main child is
    /// left, without walking a list of 20 000 (the kernel holds the tasklist lock meanwhile,
    /// which the init needs to reap).
    pub fn first(&mut self) -> io::Result<Vec<i32>> {
        let n = self.file.read_at(&mut self.buf, 0)?;
        Ok(parse_pids(&self.buf[..n], n < self.buf.len()))
    }
}

/// Space-separated pids; the last word is dropped unless `complete` (it may be cut short).
fn parse_pids(text: &[u8], complete: bool) -> Vec<i32> {
    let text = String::from_utf8_lossy(text);
    let mut words: Vec<&str> = text.split(' ').collect();
    if !complete && !text.ends_with(' ') {
        words.pop();
    }
    words.iter().filter_map(|w| w.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_cut_short_drop_the_partial_last_one() {
        assert_eq!(parse_pids(b"12 345 67", false), vec![12, 345]);
        assert_eq!(parse_pids(b"12 345 ", false), vec![12, 345]);
        assert_eq!(parse_pids(b"12 345 ", true), vec![12, 345]);
        assert_eq!(parse_pids(b"", true), Vec::<i32>::new());
    }

    #[test]
    fn own_counters_read() {
        let me = std::process::id() as i32;
        assert!(cpu(me).is_ok());
        assert!(status(me).unwrap().rss_kib > 0);
        // The main thread: running, or waiting for this test's thread.
        assert!(matches!(state(me).unwrap(), 'R' | 'S'));
    }
}
