//! Replays the fuzz corpus (fuzz/corpus/) through the fuzz targets' entry points, so every
//! input that ever found a bug, and the seeds, run on each `cargo test` even where cargo-fuzz
//! and a nightly toolchain are missing.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let data = std::fs::read(entry.path()).unwrap();
        run(&data);
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn command_line_corpus() {
    replay("command_line", |d| drop(shim::fuzzing::parse_command_line(d)));
}

#[test]
fn machine_corpus() {
    replay("machine", |d| {
        shim::fuzzing::run_machine(d);
    });
}
