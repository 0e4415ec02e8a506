//! Build what is measured: shim's binary as `scripts/build.sh` makes it (the one that
//! ships) and its stable release build beside it, the bench child, and the floor's
//! minimal init (C, static with musl). The cargo builds go to a target directory of their own
//! so this never waits on the lock of a `cargo build` or `cargo test` running in the main one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error, Result};

pub const TARGET: &str = "x86_64-unknown-linux-musl";

pub struct Built {
    /// The small build, or the stable one if the small one cannot be made here.
    pub shim: PathBuf,
    /// How `shim` was built.
    pub shim_build: String,
    /// The stable release build, when `shim` is the small one.
    pub shim_stable: Option<PathBuf>,
    pub child: PathBuf,
    /// The least an init can do (bench/minimal-init/minimal-init.c): the floor of figure 1.
    pub minimal_init: PathBuf,
    /// The program figures 1 and 8 run under each init (bench/minimal-init/true.c).
    pub program: PathBuf,
    /// Where the builds went; the inits' logs go there too.
    pub target_dir: PathBuf,
}

fn cargo(root: &Path, target_dir: &Path, args: &[&str]) -> Result<()> {
    // CARGO is the cargo that runs this bench (`cargo run` sets it).
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root).args(["build", "--release", "--target", TARGET, "--target-dir"]).arg(target_dir).args(args);
    eprintln!("shim-bench: {cmd:?}");
    let status = cmd.status().context(|| format!("run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        return Err(Error::new(format!(
            "build {} ({status}); is the target installed? `rustup target add {TARGET}`",
            args.join(" ")
        )));
    }
    Ok(())
}

/// `root` is the workspace root.
pub fn build(root: &Path) -> Result<Built> {
    let target_dir = root.join("target").join("bench-build");
    cargo(root, &target_dir, &["-p", "shim"])?;
    cargo(root, &target_dir, &["-p", "shim-bench", "--bin", "bench-child"])?;
    let out = target_dir.join(TARGET).join("release");
    let minimal_init = build_c(root, &target_dir, "minimal-init")?;
    let program = build_c(root, &target_dir, "true")?;
    let stable = out.join("shim");
    let (shim, shim_build, shim_stable) = match build_shipped(root) {
        Ok(shipped) => {
            (shipped, format!("`{SHIPPED_SCRIPT}` (nightly, std rebuilt, panics abort at once)"), Some(stable))
        }
        Err(e) => {
            eprintln!("shim-bench: measuring the stable build only: {e}");
            (stable, format!("`cargo build --release` (stable; `{SHIPPED_SCRIPT}` failed here: {e})"), None)
        }
    };
    Ok(Built { shim, shim_build, shim_stable, child: out.join("bench-child"), minimal_init, program, target_dir })
}

const SHIPPED_SCRIPT: &str = "scripts/build.sh";

/// Run the shipped build's own script, and take the binary it names on its last line
/// (`PATH: N bytes ...`).
fn build_shipped(root: &Path) -> Result<PathBuf> {
    let mut cmd = Command::new(root.join(SHIPPED_SCRIPT));
    cmd.current_dir(root).stderr(std::process::Stdio::inherit());
    eprintln!("shim-bench: {cmd:?}");
    let out = cmd.output().context(|| format!("run {SHIPPED_SCRIPT}"))?;
    if !out.status.success() {
        return Err(Error::new(format!("{SHIPPED_SCRIPT} exited with {}", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let path = text
        .lines()
        .last()
        .and_then(|l| l.split_once(": "))
        .map(|(path, _)| root.join(path))
        .filter(|p| p.is_file())
        .ok_or_else(|| Error::new(format!("find the binary {SHIPPED_SCRIPT} built in its output {text:?}")))?;
    Ok(path)
}

/// The C compiler for the minimal init and the program: musl's wrapper, so that they are as
/// static and as small as shim's own C library makes shim.
const MUSL_GCC: &str = "musl-gcc";

/// Build bench/minimal-init/NAME.c into the target directory as NAME.
fn build_c(root: &Path, target_dir: &Path, name: &str) -> Result<PathBuf> {
    let source = root.join("bench").join("minimal-init").join(format!("{name}.c"));
    let out = target_dir.join(name);
    let mut cmd = Command::new(MUSL_GCC);
    cmd.args(["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o"]).arg(&out).arg(&source);
    eprintln!("shim-bench: {cmd:?}");
    let status = cmd.status().context(|| format!("run {MUSL_GCC} (`apt-get install musl-tools`)"))?;
    if !status.success() {
        return Err(Error::new(format!("build {} ({status})", source.display())));
    }
    Ok(out)
}
