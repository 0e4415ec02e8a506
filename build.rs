//! Stamps the commit shim is built from into the binary, as `SHIM_COMMIT`, for `--version`
//! (which container engines read: `docker info` shows it).
//!
//! The commit is `git rev-parse --short=12 HEAD` of this crate's own repository, or
//! `unknown` when the source is not a git checkout (a tarball, a build context without
//! `.git`, no git installed). Nothing else goes in (no date, no dirty flag), so the same
//! source always builds the same binary. Cargo reruns this when HEAD moves: a checkout
//! rewrites `.git/HEAD`, a commit rewrites the branch's ref (loose, or in `packed-refs`).

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let commit = match git(&manifest_dir, &["rev-parse", "--show-toplevel"]) {
        // A crate vendored inside another project's repository must not take that
        // project's commit as its own.
        Some(top) if same_dir(Path::new(&top), Path::new(&manifest_dir)) => {
            watch_head(&manifest_dir);
            git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])
        }
        _ => None,
    };
    println!("cargo:rustc-env=SHIM_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rerun-if-changed=build.rs");
}

/// Tell cargo which files move when HEAD does. In a linked worktree HEAD is the worktree's
/// own and the refs are shared; `git rev-parse --git-path` resolves both.
fn watch_head(dir: &str) {
    let mut watched = vec![git(dir, &["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(dir, &["rev-parse", "--git-path", &branch]));
        watched.push(git(dir, &["rev-parse", "--git-path", "packed-refs"]));
    }
    for path in watched.into_iter().flatten() {
        let path = Path::new(dir).join(path);
        // A path that does not exist would make cargo rerun this on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// One line of git's output, or `None` if git is missing or says no.
fn git(dir: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    let line = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}
