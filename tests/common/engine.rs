//! Container engines as a user drives them, through their command lines: `docker` (the
//! machine's daemon, or one a test started) and `podman`. Images built FROM scratch with
//! static binaries, containers, each removed when its guard drops, and the measure both
//! Docker suites take: a stop with a request in flight.

use super::{secs, wait_for};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LABEL: &str = "shim-test";

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build shim, the server and the probe static, in a target dir of their own so this does
/// not wait on the build lock of the running `cargo test`. The directory that holds them.
/// With SHIM_UNDER_TEST, that binary is the one the images get as shim (CI: the shipped
/// build), beside the testkit's.
pub fn static_binaries() -> PathBuf {
    let target_dir = workspace().join("target/docker-build");
    let under_test = std::env::var_os("SHIM_UNDER_TEST").map(PathBuf::from);
    let packages: &[&str] =
        if under_test.is_some() { &["-p", "shim-testkit"] } else { &["-p", "shim", "-p", "shim-testkit"] };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "x86_64-unknown-linux-musl"])
        .args(packages)
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace())
        .status()
        .expect("cargo");
    assert!(status.success(), "static build failed");
    let built = target_dir.join("x86_64-unknown-linux-musl/release");
    let Some(shim) = under_test else { return built };
    // Symlinks: what reads them (a copy into a build context, a run) follows them. A shim left
    // in `built` by an earlier run without SHIM_UNDER_TEST is not the one under test.
    let dir = target_dir.join(format!("under-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&built).unwrap().flatten() {
        if entry.path().is_file() && entry.file_name() != "shim" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let shim = std::fs::canonicalize(&shim).unwrap_or_else(|e| panic!("SHIM_UNDER_TEST {}: {e}", shim.display()));
    std::os::unix::fs::symlink(shim, dir.join("shim")).unwrap();
    dir
}

/// An engine's command line, and what it needs on this machine.
#[derive(Clone, Debug)]
pub struct Engine {
    program: &'static str,
    /// `DOCKER_HOST` for a daemon other than the machine's.
    env: Vec<(&'static str, String)>,
    /// Options every `run` takes.
    run_options: Vec<&'static str>,
}

impl Engine {
    /// The machine's Docker daemon.
    pub fn docker() -> Engine {
        Engine { program: "docker", env: Vec::new(), run_options: Vec::new() }
    }

    /// A Docker daemon listening on `socket`.
    pub fn docker_at(socket: &Path) -> Engine {
        Engine::docker().with_env("DOCKER_HOST", &format!("unix://{}", socket.display()))
    }

    /// The same engine, its command line run with `key=value` in its environment.
    pub fn with_env(mut self, key: &'static str, value: &str) -> Engine {
        self.env.push((key, value.to_string()));
        self
    }

    /// Podman, as root. It raises the open-files and process limits of a container far above
    /// what this machine lets a process without CAP_SYS_RESOURCE set, and runc then fails
    /// with "error setting rlimits"; these keep them within reach.
    pub fn podman() -> Engine {
        Engine {
            program: "podman",
            env: Vec::new(),
            run_options: vec!["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"],
        }
    }

    /// Another program that talks to the same engine (`docker-compose`).
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        cmd
    }

    pub fn command(&self) -> Command {
        self.tool(self.program)
    }

    /// Run the engine's command line; its stdout, trimmed, or what it said on failure.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = self.command().args(args).output().map_err(|e| format!("{}: {e}", self.program))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!("{} {}: {}", self.program, args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

/// Images built for this run, named `shim-test-WHAT:TAG`; removed on drop.
pub struct Images {
    pub engine: Engine,
    tag: String,
    built: RefCell<Vec<String>>,
}

impl Images {
    pub fn new(engine: &Engine) -> Images {
        Images { engine: engine.clone(), tag: std::process::id().to_string(), built: RefCell::new(Vec::new()) }
    }

    pub fn name(&self, what: &str) -> String {
        format!("shim-test-{what}:{}", self.tag)
    }

    /// Build `dockerfile` (given as text) with `context`, or with an empty one.
    pub fn build(&self, what: &str, dockerfile: &str, context: Option<&Path>) {
        let name = self.name(what);
        let empty = workspace().join("target/docker-empty-context");
        std::fs::create_dir_all(&empty).unwrap();
        let mut child = self
            .build_command(&name)
            .args(["-f", "-"])
            .arg(context.unwrap_or(&empty))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("build");
        child.stdin.take().unwrap().write_all(dockerfile.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Build a Dockerfile from the tree (docker/), with `context` and build args.
    pub fn build_file(&self, what: &str, dockerfile: &Path, context: &Path, build_args: &[String]) {
        let name = self.name(what);
        let mut cmd = self.build_command(&name);
        for arg in build_args {
            cmd.args(["--build-arg", arg]);
        }
        let out = cmd.arg("-f").arg(dockerfile).arg(context).output().unwrap();
        assert!(out.status.success(), "building {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The base image: busybox for a shell, and static binaries from `bins`, each given as
    /// (its name in `bins`, its name at `/` in the image), and nothing else. Its name.
    pub fn build_base(&self, bins: &Path, files: &[(&str, &str)]) -> String {
        let ctx = workspace().join(format!("target/docker-ctx-{}-{}", std::process::id(), unique()));
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

    /// The base with shim, the test server and the probe.
    pub fn build_standard_base(&self, bins: &Path) -> String {
        self.build_base(bins, &[("shim", "shim"), ("server", "server"), ("probe", "probe")])
    }

    fn build_command(&self, name: &str) -> Command {
        self.built.borrow_mut().push(name.to_string());
        let mut cmd = self.engine.command();
        cmd.env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none", "-q", "--label", LABEL, "-t", name]);
        cmd
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        // Only this run's images: another run may be using the same engine.
        let built = self.built.take();
        if !built.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(built.iter().rev().map(String::as_str));
            let _ = self.engine.cli(&args);
        }
    }
}

/// A container that is removed when dropped.
pub struct Container {
    pub engine: Engine,
    pub name: String,
}

impl Container {
    pub fn run(engine: &Engine, image: &str, options: &[&str], command: &[&str]) -> Container {
        let name = format!("shim-test-{}-{}", std::process::id(), unique());
        let mut args = vec!["run", "-d", "--name", &name, "--label", LABEL];
        args.extend(&engine.run_options);
        args.extend(options);
        args.push(image);
        args.extend(command);
        engine.cli(&args).unwrap_or_else(|e| panic!("{e}"));
        Container { engine: engine.clone(), name }
    }

    /// A guard for a container that something else starts, or started, under `name`.
    pub fn named(engine: &Engine, name: &str) -> Container {
        Container { engine: engine.clone(), name: name.to_string() }
    }

    pub fn logs(&self) -> String {
        let out = self.engine.command().args(["logs", &self.name]).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    pub fn wait_log(&self, want: &str, within: Duration) -> bool {
        wait_for(within, || self.logs().contains(want).then_some(())).is_some()
    }

    pub fn exit_code(&self) -> i32 {
        self.engine.cli(&["inspect", "-f", "{{.State.ExitCode}}", &self.name]).unwrap().parse().unwrap()
    }

    pub fn host_pid(&self) -> i32 {
        self.engine.cli(&["inspect", "-f", "{{.State.Pid}}", &self.name]).unwrap().parse().unwrap()
    }

    /// The engine's `stop -t SECONDS`, to run.
    pub fn stop_command(&self, timeout: u64) -> Command {
        let mut cmd = self.engine.command();
        cmd.args(["stop", "-t", &timeout.to_string(), &self.name]).stdout(Stdio::null());
        cmd
    }

    /// `stop -t 10`; how long it took.
    pub fn stop(&self) -> Duration {
        let t = Instant::now();
        let out = self.stop_command(10).output().unwrap();
        assert!(out.status.success(), "stop {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        t.elapsed()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.engine.cli(&["rm", "-f", &self.name]);
    }
}

pub fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// An HTTP GET on 127.0.0.1; the status code, or `None` if the connection was refused or cut.
pub fn get(port: u16, path: &str, timeout: Duration) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

/// What a stop with a request in flight did.
pub struct Outcome {
    pub stop: Duration,
    pub in_flight: Option<u16>,
    pub new_connection_served: bool,
    pub exit: i32,
    pub logs: String,
}

impl Outcome {
    /// The server drained its 3 s request within a 10 s stop: the request was served, no new
    /// connection was, nothing waited for a SIGKILL, and the exit code is `exit`.
    pub fn drained(&self, exit: i32, took_at_most: Duration) -> Result<(), String> {
        let mut wrong = Vec::new();
        if self.in_flight != Some(200) {
            wrong.push(format!("in-flight request got {:?}", self.in_flight));
        }
        if self.new_connection_served {
            wrong.push("a new connection was served after the stop began".to_string());
        }
        if self.stop > took_at_most {
            wrong.push(format!("stop took {:?}, more than {took_at_most:?}", self.stop));
        }
        if self.exit != exit {
            wrong.push(format!("exit code {} (want {exit})", self.exit));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\n{}", wrong.join(", "), self.logs))
        }
    }
}

/// With the server in `c` started, wait until it listens on `port`, put a `slow`-second
/// request in flight, run `stop`, and see what happened. `notice` is how long the server may
/// take to say it is draining once `stop` runs (the stop command's own start-up included)
/// before a new connection is tried anyway: one that never notices is served.
pub fn stop_with_request_in_flight(
    c: &Container,
    port: u16,
    slow: u64,
    mut stop: Command,
    notice: Duration,
) -> Outcome {
    assert!(c.wait_log("listening", secs(10.0)), "{}: server never listened: {}", c.name, c.logs());
    let path = format!("/slow/{slow}");
    let request = std::thread::spawn({
        let path = path.clone();
        move || get(port, &path, secs(60.0))
    });
    assert!(c.wait_log(&format!("request {path} started"), secs(10.0)), "{}", c.logs());

    let started = Instant::now();
    let stopper: Child = stop.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().expect("stop");
    let stopper = std::thread::spawn(move || {
        let out = stopper.wait_with_output();
        (started.elapsed(), out)
    });
    // Once the server is draining (or it has not noticed the stop in time), a new connection
    // must be refused.
    c.wait_log("draining", notice);
    let new_connection_served = !stopper.is_finished() && get(port, "/", secs(2.0)).is_some();
    let (stop, out) = stopper.join().unwrap();
    let out = out.expect("stop");
    assert!(out.status.success(), "stop failed: {}", String::from_utf8_lossy(&out.stderr));
    let in_flight = request.join().unwrap();
    Outcome { stop, in_flight, new_connection_served, exit: c.exit_code(), logs: c.logs() }
}

/// The in-flight column: the status code, or **cut**.
pub fn in_flight_text(o: &Outcome) -> String {
    match o.in_flight {
        Some(code) => format!("{code}"),
        None => "**cut**".to_string(),
    }
}

pub fn served_text(o: &Outcome) -> &'static str {
    if o.new_connection_served {
        "served"
    } else {
        "refused"
    }
}
