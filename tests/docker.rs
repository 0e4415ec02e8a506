//! shim in a real Docker engine, on the problem it exists for: `docker stop` of a service that
//! has a request in flight, for each way a Dockerfile can start it, with no init, with
//! `docker run --init` (tini) and with shim. Also: a server that ignores SIGTERM, signals from
//! `docker kill`, Ctrl-C through `docker run -t`, and zombies inside the container.
//!
//! Opt-in by nature: without a reachable engine (or busybox-static) it prints why and passes.
//! `.ci/run` installs and starts Docker so it always runs there. Images are built FROM scratch
//! with static binaries only (nothing can be pulled), labelled `shim-test`, and removed at the
//! end; every container is removed by its guard. Servers bind 127.0.0.1 on `--network host`.
//!
//! The table of measurements is written to `target/docker-e2e.md`.

mod common;
use common::engine::*;
use common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn docker(args: &[&str]) -> Result<String, String> {
    Engine::docker().cli(args)
}

/// Why the suite cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if docker(&["info", "--format", "{{.ServerVersion}}"]).is_err() {
        return Some("no Docker engine reachable (start dockerd; .ci/run does)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no /bin/busybox (apt-get install busybox-static)".into());
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Init {
    None,
    Tini,
    Shim,
}

impl Init {
    fn label(self) -> &'static str {
        match self {
            Init::None => "no init",
            Init::Tini => "`docker run --init` (tini)",
            Init::Shim => "shim",
        }
    }
}

/// The ways a Dockerfile starts the server: (name, label, CMD line, exit code expected with shim).
const FORMS: [(&str, &str, &str, i32); 4] = [
    ("exec", "`CMD [\"/server\"]`", "CMD [\"/server\"]", 0),
    ("shell", "`CMD /server`", "CMD /server", 0),
    ("and", "`CMD echo x && /server`", "CMD echo x && /server", 0),
    // busybox sh cannot exec the server here; it dies of SIGTERM at once, so 143.
    ("semi", "`CMD /server; echo done`", "CMD /server; echo \"server exited with $?\"", 143),
];

/// Start the server, put a 3 s request in flight, `docker stop -t 10`, and see what happened.
fn stop_with_request_in_flight(image: &str, init: Init, port: u16) -> Outcome {
    stop_with_slow_request(image, init, port, 3, 10)
}

/// Start the server, put a `slow`-second request in flight, `docker stop -t STOP_TIMEOUT`.
fn stop_with_slow_request(image: &str, init: Init, port: u16, slow: u64, stop_timeout: u64) -> Outcome {
    let port_env = format!("PORT={port}");
    let mut options = vec!["--network", "host", "-e", &port_env];
    if init == Init::Tini {
        options.push("--init");
    }
    let c = Container::run(&Engine::docker(), image, &options, &[]);
    engine::stop_with_request_in_flight(&c, port, slow, c.stop_command(stop_timeout), secs(1.0))
}

/// One row of the table for a stop with a request in flight.
fn row(dockerfile: &str, pid1: &str, o: &Outcome) -> String {
    format!(
        "| {dockerfile} | {pid1} | {:.2} s | {} | {} | {} |\n",
        o.stop.as_secs_f64(),
        in_flight_text(o),
        served_text(o),
        o.exit
    )
}

#[test]
fn docker_end_to_end() {
    if let Some(why) = unavailable() {
        eprintln!("skipping the Docker suite: {why}");
        return;
    }
    let bins = static_binaries();
    let images = Images::new(&Engine::docker());
    images.build_standard_base(&bins);
    let base = images.name("base");
    for (form, _, cmd, _) in FORMS {
        images.build(&format!("{form}-plain"), &format!("FROM {base}\n{cmd}\n"), None);
        images.build(&format!("{form}-shim"), &format!("FROM {base}\nENTRYPOINT [\"/shim\", \"--\"]\n{cmd}\n"), None);
    }
    images.build("shim-exec", &format!("FROM {base}\nENTRYPOINT [\"/shim\", \"--\"]\n"), None);
    // The distributable image, from docker/Dockerfile, and the examples built on it.
    let dist_ctx = workspace().join(format!("target/docker-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dist_ctx).unwrap();
    std::fs::copy(bins.join("shim"), dist_ctx.join("shim")).unwrap();
    images.build_file("dist", &workspace().join("docker/Dockerfile"), &dist_ctx, &[]);
    std::fs::remove_dir_all(&dist_ctx).unwrap();
    assert_eq!(
        docker(&["run", "--rm", "--network", "none", &images.name("dist"), "--version"]).unwrap(),
        version_line().trim_end()
    );
    for example in ["shell-form", "third-party", "slow-drain"] {
        let dir = workspace().join("docker/examples").join(example);
        let ctx = workspace().join(format!("target/docker-example-{example}-{}", std::process::id()));
        std::fs::create_dir_all(ctx.join("www")).unwrap();
        std::fs::copy(bins.join("server"), ctx.join("server")).unwrap();
        std::fs::write(ctx.join("www/index.html"), "hello\n").unwrap();
        let args = [format!("SHIM_IMAGE={}", images.name("dist")), format!("BASE={base}")];
        images.build_file(example, &dir.join("Dockerfile"), &ctx, &args);
        std::fs::remove_dir_all(&ctx).unwrap();
    }
    // Longer than Docker's default 10 s: only the example's SHIM_GRACE=25s lets it finish.
    let slow_drain = {
        let image = images.name("slow-drain");
        std::thread::spawn(move || stop_with_slow_request(&image, Init::Shim, 18160, 12, 30))
    };
    let shell_form_example = {
        let image = images.name("shell-form");
        std::thread::spawn(move || stop_with_request_in_flight(&image, Init::Shim, 18161))
    };

    // The matrix, every cell at once on its own port.
    let mut cells = Vec::new();
    for (i, (form, _, _, _)) in FORMS.iter().enumerate() {
        for (j, init) in [Init::None, Init::Tini, Init::Shim].into_iter().enumerate() {
            let image = images.name(&format!("{form}-{}", if init == Init::Shim { "shim" } else { "plain" }));
            let port = 18100 + (i * 3 + j) as u16;
            cells.push((i, init, std::thread::spawn(move || stop_with_request_in_flight(&image, init, port))));
        }
    }
    let mut failures = Vec::new();
    let mut table = String::from(
        "| Dockerfile | PID 1 | `docker stop -t 10` took | in-flight request | new connection after stop | exit code |\n|---|---|---|---|---|---|\n",
    );
    for (i, init, cell) in cells {
        let (_, label, _, want_exit) = FORMS[i];
        let o = cell.join().unwrap_or_else(|_| panic!("{label} {init:?} panicked"));
        table.push_str(&row(label, init.label(), &o));
        if init == Init::Shim {
            let mut check = |ok: bool, what: String| {
                if !ok {
                    failures.push(format!("{label} with shim: {what}\n{}", o.logs));
                }
            };
            check(o.in_flight == Some(200), format!("in-flight request got {:?}", o.in_flight));
            check(!o.new_connection_served, "a new connection was served after the stop began".into());
            check(o.stop < secs(4.0), format!("stop took {:?}, the drain is at most 3 s", o.stop));
            check(o.exit == want_exit, format!("exit code {} (want {want_exit})", o.exit));
        }
    }

    // A server that ignores SIGTERM: shim's grace (3 s), not Docker's 10 s, ends it, with 137.
    {
        let c = Container::run(
            &images.engine,
            &images.name("shim-exec"),
            &["--network", "host", "-e", "SHIM_GRACE=3s"],
            &["/server", "18150", "--on-term", "ignore"],
        );
        assert!(c.wait_log("listening", secs(10.0)), "{}", c.logs());
        let took = c.stop();
        let exit = c.exit_code();
        table.push_str(&format!(
            "| exec form, server ignores SIGTERM, `SHIM_GRACE=3s` | shim | {:.2} s | - | - | {exit} |\n",
            took.as_secs_f64()
        ));
        if exit != 137 || took < secs(2.8) || took > secs(5.0) {
            failures.push(format!("TERM-ignoring server: exit {exit} after {took:?}, want 137 at ~3 s"));
        }
    }

    // docker/examples, as users would build them.
    {
        let o = shell_form_example.join().unwrap();
        table.push_str(&row("docker/examples/shell-form", "shim", &o));
        if o.in_flight != Some(200) || o.new_connection_served || o.stop >= secs(4.0) || o.exit != 143 {
            failures.push(format!(
                "docker/examples/shell-form: {:?} after {:?}, exit {}\n{}",
                o.in_flight, o.stop, o.exit, o.logs
            ));
        }
        let o = slow_drain.join().unwrap();
        table.push_str(&row("docker/examples/slow-drain, 12 s request, `docker stop -t 30`", "shim", &o));
        if o.in_flight != Some(200) || o.new_connection_served || o.stop >= secs(13.0) || o.exit != 0 {
            failures.push(format!(
                "docker/examples/slow-drain: {:?} after {:?}, exit {}\n{}",
                o.in_flight, o.stop, o.exit, o.logs
            ));
        }
    }

    // A third-party binary never written to be PID 1: busybox httpd has no SIGTERM handler.
    {
        let c = Container::run(
            &images.engine,
            &images.name("third-party"),
            &["--network", "host", "-e", "LISTEN=127.0.0.1:18151"],
            &[],
        );
        let served = wait_for(secs(10.0), || get(18151, "/index.html", secs(2.0)));
        let took = c.stop();
        let exit = c.exit_code();
        table.push_str(&format!(
            "| docker/examples/third-party (busybox `httpd -f`) | shim | {:.2} s | - | - | {exit} |\n",
            took.as_secs_f64()
        ));
        if served != Some(200) || exit != 143 || took > secs(2.0) {
            failures.push(format!("httpd wrapped: served {served:?}, exit {exit} after {took:?}"));
        }
    }

    // docker kill -s HUP / USR1 reach the program.
    {
        let c =
            Container::run(&images.engine, &images.name("shim-exec"), &["--network", "none"], &["/probe", "signals"]);
        assert!(c.wait_log("ready", secs(10.0)), "{}", c.logs());
        for (sig, n) in [("HUP", 1), ("USR1", 10)] {
            docker(&["kill", "-s", sig, &c.name]).unwrap();
            if !c.wait_log(&format!("got {n}"), secs(5.0)) {
                failures.push(format!("docker kill -s {sig} did not reach the program: {}", c.logs()));
            }
        }
    }

    // Zombies made inside the container are reaped.
    {
        let c = Container::run(
            &images.engine,
            &images.name("shim-exec"),
            &["--network", "none"],
            &["/probe", "orphans", "500"],
        );
        assert!(c.wait_log("orphaned 500", secs(20.0)), "{}", c.logs());
        let pid1 = c.host_pid();
        let clean = wait_for(secs(10.0), || (zombies_of(pid1) == 0 && descendants(pid1).len() == 1).then_some(()));
        if clean.is_none() {
            failures.push(format!("{} zombies left in the container", zombies_of(pid1)));
        }
    }

    // docker run -t: Ctrl-C typed on the terminal reaches the program.
    match ctrl_c_through_docker_tty(&images.name("shim-exec")) {
        Ok(()) => {}
        Err(e) => failures.push(e),
    }

    let report = workspace().join("target/docker-e2e.md");
    let _ = std::fs::write(&report, &table);
    eprintln!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `docker run -it` inside `script`, which gives the docker client a terminal; Ctrl-C written
/// to that terminal must come out as SIGINT to the program in the container.
fn ctrl_c_through_docker_tty(image: &str) -> Result<(), String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping the docker -t Ctrl-C check: no script(1)");
        return Ok(());
    }
    let name = format!("shim-test-{}-tty", std::process::id());
    let _guard = Container::named(&Engine::docker(), &name);
    let command = format!("docker run --rm -i -t --name {name} --label {LABEL} --network none {image} /probe tty");
    let mut child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("script: {e}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_text = |want: &str, seen: &mut String| -> bool {
        let deadline = Instant::now() + secs(15.0);
        while !seen.contains(want) {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => seen.push_str(&chunk),
                Err(_) => return false,
            }
        }
        true
    };
    let mut stdin = child.stdin.take().unwrap();
    let result = (|| {
        if !wait_text("foreground", &mut seen) {
            return Err(format!("docker -t: the program never started: {seen:?}"));
        }
        stdin.write_all(b"\x03").map_err(|e| e.to_string())?;
        if !wait_text("got INT", &mut seen) {
            return Err(format!("docker -t: Ctrl-C did not reach the program: {seen:?}"));
        }
        stdin.write_all(b"\x04").map_err(|e| e.to_string())?;
        if !wait_text("eof", &mut seen) {
            return Err(format!("docker -t: Ctrl-D did not reach the program: {seen:?}"));
        }
        Ok(())
    })();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    result
}
