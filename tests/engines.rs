//! shim as the engine's own init, the one a container gets without writing an ENTRYPOINT: a
//! Docker daemon started with `--init-path` (what daemon.json's `"init-path"` sets), under
//! `docker run --init` and Compose's `init: true`; and Podman's `run --init`, with
//! `--init-path` or containers.conf's `init_path`. The engines call it as
//! `/sbin/docker-init -- PROGRAM ARGS` and `/run/podman-init -- PROGRAM ARGS`, and it can only
//! be configured through `SHIM_*` variables (`-e SHIM_GRACE=3s`).
//!
//! Measured as in tests/docker.rs: `stop -t 10` with a request in flight, for the exec form and
//! for the shell form that only shim drains; a server that ignores SIGTERM, ended by
//! `SHIM_GRACE=3s`; and `docker info` showing shim's version, with no warning in the daemon's
//! log.
//!
//! The Docker daemon is this test's own, never the machine's: its own data and exec roots,
//! socket, pidfile, config file and containerd, no bridge and no iptables; started here,
//! stopped by its pid at the end, its directories removed. Podman has no daemon; its images
//! and containers are named for this run and removed. Without root, dockerd, podman,
//! docker-compose or busybox-static the part that needs it prints why and is skipped, except
//! under CI (`CI` set), where `.ci/run` installs them all and a missing one is a failure.
//!
//! The table of measurements is written to `target/engines-e2e.md`.

mod common;
use common::engine::*;
use common::*;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The ways the image starts the server: (name, table label, CMD line, exit code expected).
const FORMS: [(&str, &str, &str, i32); 2] = [
    ("exec", "`CMD [\"/server\"]`", "CMD [\"/server\"]", 0),
    // The shell stays (it has more to run), dies of SIGTERM at once: 143, once the server
    // has drained.
    ("semi", "`CMD /server; echo done`", "CMD /server; echo \"server exited with $?\"", 143),
];

/// A drain of a 3 s request ends within this; Docker's SIGKILL would come at 10 s.
const DRAINED_WITHIN: Duration = Duration::from_secs(4);

/// One measured row, and what was wrong with it, if anything.
struct Row {
    text: String,
    wrong: Option<String>,
}

type Cell = JoinHandle<Row>;

#[test]
fn engines_end_to_end() {
    let docker = required("the Docker daemon with --init-path", docker_missing());
    let podman = required("Podman", podman_missing());
    if !docker && !podman {
        return;
    }
    let bins = static_binaries();
    let podman = podman.then(|| {
        let bins = bins.clone();
        std::thread::spawn(move || podman_rows(&bins))
    });
    let (mut rows, info) = if docker { docker_rows(&bins) } else { (Vec::new(), Ok(String::new())) };
    if let Some(podman) = podman {
        rows.extend(podman.join().expect("the Podman rows panicked"));
    }

    let mut table = String::from(
        "| engine | Dockerfile | init | `stop -t 10` took | in-flight request | new connection after stop | exit code |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for row in rows {
        table.push_str(&row.text);
        failures.extend(row.wrong);
    }
    if table.contains('¹') {
        table.push_str(
            "\n¹ The request takes 8 s so that it is still in flight when docker-compose (Python, slow to\n\
             start) sends the stop; the time includes docker-compose's own start-up, and the stop ends when\n\
             the request is done.\n",
        );
    }
    table.push('\n');
    match info {
        Ok(line) => table.push_str(&line),
        Err(e) => failures.push(e),
    }
    let _ = std::fs::write(workspace().join("target/engines-e2e.md"), &table);
    eprintln!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Whether a part can run; a part that cannot is skipped, or under CI fails the test.
fn required(part: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    if std::env::var_os("CI").is_some() {
        panic!("{part}: {why}; .ci/run installs it");
    }
    eprintln!("skipping {part}: {why}");
    false
}

fn docker_missing() -> Option<String> {
    images_missing()
        .or_else(|| (!runs("dockerd", &["--version"])).then(|| "no dockerd (apt-get install docker.io)".into()))
}

fn podman_missing() -> Option<String> {
    images_missing().or_else(|| (!runs("podman", &["--version"])).then(|| "no podman (apt-get install podman)".into()))
}

/// What both engines need: root (a daemon of the test's own; Podman's containers as here),
/// and busybox for a shell in the images.
fn images_missing() -> Option<String> {
    let uid = status_field(std::process::id() as i32, "Uid").unwrap_or_default();
    if uid.split_whitespace().nth(1) != Some("0") {
        return Some("not root".into());
    }
    (!Path::new("/bin/busybox").exists()).then(|| "no /bin/busybox (apt-get install busybox-static)".into())
}

fn compose_missing() -> Option<String> {
    (!runs("docker-compose", &["version", "--short"]))
        .then(|| "no docker-compose (apt-get install docker-compose)".into())
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A Docker daemon of the test's own, with shim as its init; stopped and removed on drop.
struct Daemon {
    child: Child,
    root: PathBuf,
    engine: Engine,
}

impl Daemon {
    fn start(init_path: &Path) -> Result<Daemon, String> {
        let root = std::env::temp_dir().join(format!("shim-test-dockerd-{}", std::process::id()));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        // Its own config file: the machine's /etc/docker/daemon.json may say otherwise.
        std::fs::write(root.join("daemon.json"), "{}\n").unwrap();
        let log = File::create(root.join("dockerd.log")).unwrap();
        let socket = root.join("docker.sock");
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .arg(format!("--init-path={}", init_path.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("dockerd: {e}"))?;
        let mut daemon = Daemon { child, root, engine: Engine::docker_at(&socket) };
        let deadline = Instant::now() + secs(60.0);
        while daemon.engine.cli(&["version", "--format", "{{.Server.Version}}"]).is_err() {
            if Instant::now() > deadline || daemon.child.try_wait().is_ok_and(|s| s.is_some()) {
                return Err(format!("dockerd did not come up:\n{}", daemon.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(daemon)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops what still runs and the containerd it started, then exits.
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGTERM).is_ok() && !exits_within(&mut self.child, secs(30.0)) {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
        // A containerd that outlived a killed dockerd: its pidfile names it, and its command
        // line names this daemon's exec root.
        let pidfile = self.root.join("exec/containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.contains(self.root.to_str().unwrap()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        unmount_under(&self.root);
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("could not remove {}: {e}", self.root.display());
        }
    }
}

fn exits_within(child: &mut Child, within: Duration) -> bool {
    wait_for(within, || child.try_wait().ok().flatten()).is_some()
}

/// What the daemon leaves mounted under its roots (its network namespace file, a layer of a
/// container it had no time to clean), deepest first, so that the directories can go.
fn unmount_under(root: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = root.to_str().unwrap();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| point.replace("\\040", " "))
        .filter(|point| point.starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").arg("-l").arg(&point).status();
    }
}

/// The rows of the Docker daemon started with `--init-path` (and of Compose, on it), and the
/// line that says what its `docker info` shows.
fn docker_rows(bins: &Path) -> (Vec<Row>, Result<String, String>) {
    let shim = bins.join("shim");
    let daemon = Daemon::start(&shim).unwrap_or_else(|e| panic!("{e}"));
    let engine = daemon.engine.clone();
    let images = Images::new(&engine);
    build_images(&images, bins);
    let version = engine.cli(&["version", "--format", "{{.Server.Version}}"]).unwrap();
    let name = format!("Docker {version}, daemon `--init-path`");

    let mut cells: Vec<Cell> = Vec::new();
    for (i, (form, label, _, exit)) in FORMS.into_iter().enumerate() {
        let (engine, image, name) = (engine.clone(), images.name(form), name.clone());
        let port = 18500 + i as u16;
        cells.push(std::thread::spawn(move || {
            let port_env = format!("PORT={port}");
            let c = Container::run(&engine, &image, &["--init", "--network", "host", "-e", &port_env], &[]);
            let o = stop_with_request_in_flight(&c, port, 3, c.stop_command(10), secs(1.0));
            drain_row(&name, label, "`docker run --init`", &o, o.drained(exit, DRAINED_WITHIN))
        }));
    }
    cells.push(grace_cell(
        name.clone(),
        "`docker run --init`",
        engine.clone(),
        images.name("base"),
        &["--init"],
        18502,
    ));
    if required("Compose's init: true", compose_missing()) {
        let (engine, image) = (engine.clone(), images.name("semi"));
        cells.push(std::thread::spawn(move || compose_row(&engine, &image, 18503)));
    }
    let rows = cells.into_iter().map(|c| c.join().expect("a Docker row panicked")).collect();
    let info = docker_info(&daemon, &shim);
    drop(images);
    (rows, info)
}

/// `docker info` shows shim as the init, with its version, and dockerd did not warn that it
/// could not read it.
fn docker_info(daemon: &Daemon, shim: &Path) -> Result<String, String> {
    let shown = daemon.engine.cli(&["info", "--format", "{{.InitBinary}}\t{{.InitCommit.ID}}"])?;
    let (binary, init_version_shown) = shown.split_once('\t').unwrap_or((&shown, ""));
    let log = daemon.log();
    let warnings: Vec<&str> =
        log.lines().filter(|l| l.contains(shim.to_str().unwrap()) && l.contains("level=warn")).collect();
    if binary != shim.to_str().unwrap() || init_version_shown != init_version() || !warnings.is_empty() {
        return Err(format!(
            "docker info: init binary {binary:?}, init version {init_version_shown:?} (want {:?}); \
             dockerd warned: {warnings:?}",
            init_version()
        ));
    }
    Ok(format!(
        "`docker info` of that daemon: `Init Binary: {binary}`, `init version: {init_version_shown}`; \
         its log has no warning about the init.\n"
    ))
}

/// Compose's `init: true`, on the daemon above: the shell form drains. The request takes 8 s,
/// so that it is still in flight when docker-compose (Python, slow to start) sends the stop.
fn compose_row(engine: &Engine, image: &str, port: u16) -> Row {
    let version = engine.tool("docker-compose").args(["version", "--short"]).output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let project = Compose::up(engine, image, port);
    let c = Container::named(engine, &project.container);
    let o = stop_with_request_in_flight(&c, port, 8, project.command(&["stop", "-t", "10"]), secs(8.0));
    let mut verdict = o.drained(143, secs(10.0));
    if verdict.is_ok() && !o.logs.contains("draining 1 request") {
        verdict = Err(format!("the request was not in flight at the stop:\n{}", o.logs));
    }
    let engine_name = format!("Docker Compose {version}, same daemon");
    let dockerfile = "`CMD /server; echo done`, 8 s request, `docker-compose stop -t 10` ¹";
    drain_row(&engine_name, dockerfile, "`init: true`", &o, verdict)
}

/// A Compose project of one service, `init: true`; taken down on drop.
struct Compose {
    engine: Engine,
    file: PathBuf,
    project: String,
    container: String,
}

impl Compose {
    fn up(engine: &Engine, image: &str, port: u16) -> Compose {
        let pid = std::process::id();
        let file = workspace().join(format!("target/compose-{pid}.yml"));
        let container = format!("shim-test-{pid}-compose");
        // File format 2.4: the newest of version 2, which has `init` (from 2.2).
        let yaml = format!(
            "version: \"2.4\"\nservices:\n  server:\n    image: {image}\n    container_name: {container}\n    \
             init: true\n    network_mode: host\n    environment:\n      PORT: \"{port}\"\n    labels:\n      - {LABEL}\n"
        );
        std::fs::write(&file, yaml).unwrap();
        let project = Compose { engine: engine.clone(), file, project: format!("shimtest{pid}"), container };
        let out = project.command(&["up", "-d"]).output().unwrap();
        assert!(out.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&out.stderr));
        project
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.engine.tool("docker-compose");
        cmd.arg("-f").arg(&self.file).args(["-p", &self.project]).args(args).stdout(Stdio::null());
        cmd
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).stderr(Stdio::null()).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Podman's rows: `--init --init-path` for the two forms, containers.conf's `init_path` for
/// the server that ignores SIGTERM.
fn podman_rows(bins: &Path) -> Vec<Row> {
    let shim = bins.join("shim");
    let engine = Engine::podman();
    let images = Images::new(&engine);
    build_images(&images, bins);
    let version = engine.cli(&["--version"]).unwrap();
    let name = format!("Podman {}", version.trim_start_matches("podman version "));
    let init_path = format!("--init-path={}", shim.display());

    let mut cells: Vec<Cell> = Vec::new();
    for (i, (form, label, _, exit)) in FORMS.into_iter().enumerate() {
        let (engine, image, name, init_path) = (engine.clone(), images.name(form), name.clone(), init_path.clone());
        let port = 18510 + i as u16;
        cells.push(std::thread::spawn(move || {
            let port_env = format!("PORT={port}");
            let options = ["--init", &init_path, "--network", "host", "-e", &port_env];
            let c = Container::run(&engine, &image, &options, &[]);
            let o = stop_with_request_in_flight(&c, port, 3, c.stop_command(10), secs(1.0));
            drain_row(&name, label, "`podman run --init --init-path`", &o, o.drained(exit, DRAINED_WITHIN))
        }));
    }
    // containers.conf, named by CONTAINERS_CONF: as /etc/containers/containers.conf would.
    let conf = workspace().join(format!("target/containers-{}.conf", std::process::id()));
    std::fs::write(&conf, format!("[containers]\ninit_path = \"{}\"\n", shim.display())).unwrap();
    let configured = engine.clone().with_env("CONTAINERS_CONF", conf.to_str().unwrap());
    let init = "`podman run --init`, containers.conf `init_path`";
    cells.push(grace_cell(name, init, configured, images.name("base"), &["--init"], 18512));
    let rows = cells.into_iter().map(|c| c.join().expect("a Podman row panicked")).collect();
    let _ = std::fs::remove_file(&conf);
    rows
}

/// The base, and an image per form on it; nothing in them says ENTRYPOINT: the engine adds
/// the init.
fn build_images(images: &Images, bins: &Path) {
    images.build_standard_base(bins);
    let base = images.name("base");
    for (form, _, cmd, _) in FORMS {
        images.build(form, &format!("FROM {base}\n{cmd}\n"), None);
    }
}

/// A server that ignores SIGTERM, `-e SHIM_GRACE=3s`: shim SIGKILLs it at 3 s, before the
/// engine's 10 s, so the exit is 137 at about 3 s.
fn grace_cell(
    engine_name: String,
    init: &'static str,
    engine: Engine,
    base: String,
    init_options: &[&str],
    port: u16,
) -> Cell {
    let mut options: Vec<String> = init_options.iter().map(|o| o.to_string()).collect();
    options.extend(["--network", "host", "-e", "SHIM_GRACE=3s"].map(String::from));
    std::thread::spawn(move || {
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let port = port.to_string();
        let c = Container::run(&engine, &base, &options, &["/server", &port, "--on-term", "ignore"]);
        assert!(c.wait_log("listening", secs(10.0)), "{}", c.logs());
        let took = c.stop();
        let exit = c.exit_code();
        let wrong = (exit != 137 || took < secs(2.8) || took > secs(5.0))
            .then(|| format!("{engine_name}, TERM-ignoring server: exit {exit} after {took:?}, want 137 at ~3 s"));
        let text = format!(
            "| {engine_name} | exec form, server ignores SIGTERM, `-e SHIM_GRACE=3s` | {init} | {:.2} s | - | - | {exit} |\n",
            took.as_secs_f64()
        );
        Row { text, wrong }
    })
}

fn drain_row(engine: &str, dockerfile: &str, init: &str, o: &Outcome, verdict: Result<(), String>) -> Row {
    let text = format!(
        "| {engine} | {dockerfile} | {init} | {:.2} s | {} | {} | {} |\n",
        o.stop.as_secs_f64(),
        in_flight_text(o),
        served_text(o),
        o.exit
    );
    Row { text, wrong: verdict.err().map(|e| format!("{engine}, {dockerfile}: {e}")) }
}
