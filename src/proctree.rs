//! Finding every descendant of a process from `/proc/<pid>/stat` lines, for shim as a
//! subreaper, where `kill(-1, ...)` would reach far more than its own processes. Pure: the
//! lines are read elsewhere.

/// What shim needs from one `/proc/<pid>/stat` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// Zombie or dead: nothing left to signal.
    pub gone: bool,
}

/// Parse `pid (comm) state ppid pgrp ...`. The command name may hold spaces, parentheses and
/// bytes that are not UTF-8, so the fields are counted from the last `)` (proc(5)).
pub fn parse_stat(line: &[u8]) -> Option<Entry> {
    let open = line.windows(2).position(|w| w == b" (")?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let pid = std::str::from_utf8(&line[..open]).ok()?.parse().ok()?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Entry { pid, ppid, pgrp, gone: matches!(state, "Z" | "X" | "x") })
}

/// Every live descendant of `root`, children before grandchildren.
pub fn descendants(root: i32, entries: &[Entry]) -> Vec<Entry> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(entries.iter().filter(|e| e.ppid == parent && e.pid != root).map(|e| e.pid));
        i += 1;
        // A pid cannot appear twice in one scan, so this terminates; guard anyway.
        if found.len() > entries.len() + 1 {
            break;
        }
    }
    found
        .into_iter()
        .filter(|&pid| pid != root)
        .filter_map(|pid| entries.iter().find(|e| e.pid == pid && !e.gone).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_line() {
        let e = parse_stat(b"1234 (sleep) S 1200 1234 1200 0 -1 4194304 100 0 0 0").unwrap();
        assert_eq!(e, Entry { pid: 1234, ppid: 1200, pgrp: 1234, gone: false });
    }

    #[test]
    fn parses_a_name_with_spaces_and_parentheses() {
        let e = parse_stat(b"77 (a) b (c) Z 5 70 77 0").unwrap();
        assert_eq!(e, Entry { pid: 77, ppid: 5, pgrp: 70, gone: true });
    }

    #[test]
    fn parses_a_name_cut_in_the_middle_of_a_utf8_character() {
        let mut line = b"42 (\xd0\xb0\xd0\xb0\xd0".to_vec();
        line.extend_from_slice(b") S 7 42 42 0");
        assert_eq!(parse_stat(&line), Some(Entry { pid: 42, ppid: 7, pgrp: 42, gone: false }));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "x (y) S", "12 (y)", "12 y S 3", "(y) S 3", "12 (y) S notanumber", "12 (y) S 3"] {
            assert_eq!(parse_stat(bad.as_bytes()), None, "{bad:?}");
        }
    }

    fn e(pid: i32, ppid: i32) -> Entry {
        Entry { pid, ppid, pgrp: pid, gone: false }
    }

    fn pids(entries: Vec<Entry>) -> Vec<i32> {
        let mut p: Vec<i32> = entries.iter().map(|e| e.pid).collect();
        p.sort();
        p
    }

    #[test]
    fn finds_the_whole_subtree_and_nothing_else() {
        let entries = [e(1, 0), e(10, 1), e(20, 10), e(21, 10), e(30, 20), e(40, 1), e(50, 40)];
        assert_eq!(pids(descendants(10, &entries)), [20, 21, 30]);
        assert_eq!(pids(descendants(30, &entries)), Vec::<i32>::new());
    }

    #[test]
    fn skips_zombies_but_still_walks_below_them() {
        // A zombie's children were re-parented already, but a scan may catch the moment before.
        let entries = [e(10, 1), Entry { pid: 20, ppid: 10, pgrp: 20, gone: true }, e(30, 20)];
        assert_eq!(pids(descendants(10, &entries)), [30]);
    }
}
