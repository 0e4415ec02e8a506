//! What the Docker suites share: the `docker` command, whether an engine is there, the static
//! binaries the images hold, and images and containers that remove themselves when dropped.
//!
//! Nothing can be pulled, so every image is built FROM scratch with static binaries and
//! busybox-static for a shell (`DOCKER_BUILDKIT=0 docker build --network none`). Each suite
//! names and labels what it creates with a prefix of its own, and removes exactly what it
//! created, so suites that run at the same time never remove each other's images.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::wait_for;

pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker").args(args).stdin(Stdio::null()).output().map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Why a Docker suite cannot run here, if it cannot.
pub fn docker_unavailable() -> Option<String> {
    if docker(&["info", "--format", "{{.ServerVersion}}"]).is_err() {
        return Some("no Docker engine reachable (start dockerd; .ci/run does)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no /bin/busybox (apt-get install busybox-static)".into());
    }
    None
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build shim and the testkit programs static, in a target dir of their own so this does not
/// wait on the build lock of the running `cargo test`.
pub fn static_binaries() -> PathBuf {
    let target_dir = workspace().join("target/docker-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "x86_64-unknown-linux-musl", "-p", "shim", "-p", "shim-testkit"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace())
        .status()
        .expect("cargo");
    assert!(status.success(), "static build failed");
    target_dir.join("x86_64-unknown-linux-musl/release")
}

/// Images built for this run, named `PREFIX-WHAT:PID` and labelled PREFIX; removed on drop.
pub struct Images {
    prefix: &'static str,
    built: RefCell<Vec<String>>,
}

impl Images {
    pub fn new(prefix: &'static str) -> Images {
        Images { prefix, built: RefCell::new(Vec::new()) }
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}:{}", self.prefix, std::process::id())
    }

    /// Build `dockerfile` (given as text) with `context`, or an empty context.
    pub fn build(&self, what: &str, dockerfile: &str, context: Option<&Path>) {
        let name = self.name(what);
        let empty = workspace().join("target/docker-empty-context");
        std::fs::create_dir_all(&empty).unwrap();
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "-q", "--label", self.prefix, "-t", &name, "-f", "-"])
            .arg(context.unwrap_or(&empty))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.built.borrow_mut().push(name.clone());
        let mut child = cmd.spawn().expect("docker build");
        child.stdin.take().unwrap().write_all(dockerfile.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Build a Dockerfile from the tree (docker/), with `context` and build args.
    pub fn build_file(&self, what: &str, dockerfile: &Path, context: &Path, build_args: &[String]) {
        let name = self.name(what);
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none", "-q", "--label", self.prefix, "-t", &name]);
        for arg in build_args {
            cmd.args(["--build-arg", arg]);
        }
        self.built.borrow_mut().push(name.clone());
        let out = cmd.arg("-f").arg(dockerfile).arg(context).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The base image: busybox for a shell, and static binaries from `bins`, each given as
    /// (its name in `bins`, its name at `/` in the image).
    pub fn build_base(&self, bins: &Path, files: &[(&str, &str)]) -> String {
        let ctx = workspace().join(format!("target/docker-ctx-{}-{}", self.prefix, std::process::id()));
        std::fs::create_dir_all(ctx.join("www")).unwrap();
        std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
        for (from, to) in files {
            let from = bins.join(from);
            std::fs::copy(&from, ctx.join(to)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
        std::fs::write(ctx.join("www/index.html"), "hello\n").unwrap();
        let names: Vec<&str> = files.iter().map(|(_, to)| *to).collect();
        self.build(
            "base",
            &format!(
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                 COPY {} /\nCOPY www /www\n",
                names.join(" ")
            ),
            Some(&ctx),
        );
        std::fs::remove_dir_all(&ctx).unwrap();
        self.name("base")
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        // Newest first: an image built FROM another goes before it.
        let built: Vec<String> = self.built.borrow().iter().rev().cloned().collect();
        if !built.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(built.iter().map(String::as_str));
            let _ = docker(&args);
        }
    }
}

/// A container that is removed when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d` as `PREFIX-PID-N`, labelled PREFIX.
    pub fn run(prefix: &str, image: &str, options: &[&str], command: &[&str]) -> Container {
        let name = format!("{prefix}-{}-{}", std::process::id(), unique());
        let mut args = vec!["run", "-d", "--name", &name, "--label", prefix];
        args.extend(options);
        args.push(image);
        args.extend(command);
        docker(&args).unwrap_or_else(|e| panic!("{e}"));
        Container { name }
    }

    pub fn logs(&self) -> String {
        let out = Command::new("docker").args(["logs", &self.name]).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    pub fn wait_log(&self, want: &str, within: Duration) -> bool {
        wait_for(within, || self.logs().contains(want).then_some(())).is_some()
    }

    pub fn exit_code(&self) -> i32 {
        docker(&["inspect", "-f", "{{.State.ExitCode}}", &self.name]).unwrap().parse().unwrap()
    }

    pub fn host_pid(&self) -> i32 {
        docker(&["inspect", "-f", "{{.State.Pid}}", &self.name]).unwrap().parse().unwrap()
    }

    /// `docker stop -t TIMEOUT`; how long it took.
    pub fn stop(&self, timeout: u64) -> Duration {
        let t = Instant::now();
        docker(&["stop", "-t", &timeout.to_string(), &self.name]).unwrap();
        t.elapsed()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

pub fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
