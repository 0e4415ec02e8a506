//! shim installed under a peer's name (`tini`, `docker-init`, `dumb-init`) speaks that peer's
//! command line and keeps its own stop: the peers' documented examples against the real
//! binary, as PID 1 and as a subreaper, and their usage errors.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

/// shim installed as `name` (a symlink, as good as a copy: shim goes by the name it was run
/// as) in a directory of its own, removed when dropped.
struct Installed {
    dir: PathBuf,
    name: String,
    path: String,
}

impl Installed {
    fn new(name: &str) -> Installed {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shim-persona-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = std::fs::canonicalize(shim_bin()).unwrap();
        let path = dir.join(name);
        std::os::unix::fs::symlink(target, &path).unwrap();
        Installed { dir, name: name.to_string(), path: path.to_string_lossy().into_owned() }
    }

    fn start(&self, mode: Mode, args: &[&str], env: &[(&str, &str)]) -> Shim {
        Shim::start_with(mode, args, Options { env, bin: Some(&self.path), ..Options::default() })
    }

    fn output(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new(&self.path).args(args).envs(env.iter().copied()).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn tini_g_e_143_turns_a_sigterm_death_into_0() {
    let tini = Installed::new("tini");
    let probe = probe();
    for mode in modes() {
        // Without -e the same stop exits 143: the mapping is what makes the 0.
        for (options, want) in [(&["-g", "-e", "143", "--"][..], 0), (&["-g", "--"][..], 143)] {
            let args: Vec<&str> = options.iter().copied().chain([probe.as_str(), "no-handler"]).collect();
            let mut shim = tini.start(mode, &args, &[]);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGTERM);
            let (code, _) = shim.wait(secs(10.0));
            assert_eq!(code, want, "{mode:?} tini {options:?}: {}", shim.stderr());
        }
    }
}

#[test]
fn docker_init_runs_the_program_and_stops_as_shim_does() {
    let init = Installed::new("docker-init");
    let probe = probe();
    for mode in modes() {
        // As Docker calls it: `docker-init -- PROGRAM ARGS`.
        let mut shim = init.start(mode, &["--", &probe, "exit", "3"], &[]);
        assert_eq!(shim.wait(secs(10.0)).0, 3, "{mode:?}: {}", shim.stderr());
        assert_eq!(shim.full_stderr(secs(5.0)), "", "{mode:?}: quiet by default, as tini is");

        // tini would wait for ever on a program that ignores SIGTERM; shim SIGKILLs it after
        // its grace period, set by its own variable under the peer's name.
        let mut shim = init.start(mode, &["--", &probe, "ignore-term"], &[("SHIM_GRACE", "300ms")]);
        shim.expect("ready", secs(5.0));
        let sent = Instant::now();
        shim.signal(libc::SIGTERM);
        let (code, at) = shim.wait(secs(10.0));
        let took = at.duration_since(sent).as_secs_f64();
        assert_eq!(code, 137, "{mode:?}: {}", shim.stderr());
        assert!((0.25..3.0).contains(&took), "{mode:?}: SIGKILL after {took:.3}s, not 0.3s");
    }
}

#[test]
fn tini_takes_its_options_anywhere_before_the_double_dash() {
    let tini = Installed::new("tini");
    for mode in modes() {
        // The -v after the program is tini's (glibc's getopt), so shim logs; the program's
        // own words come after --.
        let args = ["sh", "-v", "--", "-c", "echo \"$@\"; exit 6", "sh", "-v", "x"];
        let mut shim = tini.start(mode, &args, &[]);
        shim.expect("-v x", secs(5.0));
        assert_eq!(shim.wait(secs(10.0)).0, 6, "{mode:?}: {}", shim.stderr());
        let err = shim.full_stderr(secs(5.0));
        assert!(err.contains("shim: started 'sh -c"), "{mode:?}: -v did not reach shim: {err}");
    }
}

#[test]
fn dumb_init_r_15_3_turns_sigterm_into_sigquit() {
    let dumb_init = Installed::new("dumb-init");
    let probe = probe();
    for mode in modes() {
        // Without the rewrite the program gets SIGTERM itself.
        for (options, want) in [(&["-r", "15:3"][..], "got 3"), (&[][..], "got 15")] {
            let args: Vec<&str> = options.iter().copied().chain([probe.as_str(), "signals", "QUIT", "TERM"]).collect();
            let mut shim = dumb_init.start(mode, &args, &[]);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGTERM);
            shim.expect(want, secs(5.0));
            assert_eq!(shim.wait(secs(10.0)).0, 0, "{mode:?}: {}", shim.stderr());
            // The SIGCONT that follows every stop signal (to wake anything stopped) is shim's own.
            let got: Vec<String> = shim.rest_of_output(secs(2.0)).into_iter().filter(|l| l != "got 18").collect();
            assert_eq!(got, ["ready", want], "{mode:?} dumb-init {options:?}");
        }
    }
}

#[test]
fn dumb_init_c_signals_the_child_alone() {
    let dumb_init = Installed::new("dumb-init");
    let probe = probe();
    // sh and a probe in its group: USR1 reaches the probe only if it goes to the whole group.
    let script = format!("trap 'echo sh-got-usr1' USR1; {probe} signals TERM & wait; wait");
    for mode in modes() {
        for (options, env, group) in [
            (&["-c"][..], &[][..], false),
            (&["--single-child"][..], &[][..], false),
            (&[][..], &[("DUMB_INIT_SETSID", "0")][..], false),
            (&[][..], &[][..], true),
        ] {
            let args: Vec<&str> = options.iter().copied().chain(["sh", "-c", &script]).collect();
            let mut shim = dumb_init.start(mode, &args, env);
            shim.expect("ready", secs(5.0));
            shim.signal(libc::SIGUSR1);
            if group {
                shim.expect_all(&["sh-got-usr1", "got 10"], secs(5.0));
            } else {
                shim.expect("sh-got-usr1", secs(5.0));
            }
            // sh dies of SIGTERM; the probe, left over, gets SIGTERM from shim and exits.
            shim.signal(libc::SIGTERM);
            shim.expect("got 15", secs(5.0));
            assert_eq!(shim.wait(secs(10.0)).0, 143, "{mode:?}: {}", shim.stderr());
            let lines = shim.rest_of_output(secs(2.0));
            let reached = lines.iter().any(|l| l == "got 10");
            assert_eq!(reached, group, "{mode:?} {options:?} {env:?}: USR1 to the group? {lines:?}");
        }
    }
}

#[test]
fn tini_p_sigterm_stops_shim_when_its_parent_dies() {
    let tini = Installed::new("tini");
    let probe = probe();
    // sh starts tini in the background and waits; killing sh is the parent's death.
    let mut parent = Command::new("sh")
        .args(["-c", "\"$@\" & echo \"shim $!\"; wait", "sh", &tini.path, "-p", "SIGTERM", "--"])
        .args([probe.as_str(), "signals", "TERM"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(parent.stdout.take().unwrap());
    let mut seen = Vec::new();
    let pid: i32 = wait_line(&lines, &mut seen, "shim ").trim_start_matches("shim ").parse().unwrap();
    wait_line(&lines, &mut seen, "ready");
    parent.kill().unwrap();
    parent.wait().unwrap();
    wait_line(&lines, &mut seen, "got 15");
    if wait_for(secs(5.0), || (!alive(pid)).then_some(())).is_none() {
        for p in descendants(pid).into_iter().chain([pid]) {
            use nix::sys::signal::{kill, Signal};
            // Cleaning up before failing: a process gone meanwhile is no news.
            let _ = kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
        }
        panic!("shim {pid} outlived the stop");
    }
}

fn lines_of(out: std::process::ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `want`, among those seen already or arriving within 5 s.
fn wait_line(rx: &Receiver<String>, seen: &mut Vec<String>, want: &str) -> String {
    let deadline = Instant::now() + secs(5.0);
    loop {
        if let Some(i) = seen.iter().position(|l| l.contains(want)) {
            return seen.remove(i);
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {want:?} within 5s; seen {seen:?}"),
        }
    }
}

#[test]
fn the_peers_usage_errors_exit_as_the_peers_do() {
    let tini = Installed::new("tini");
    let dumb_init = Installed::new("dumb-init");
    type Case<'a> = (&'a Installed, &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (&tini, &["sh", "-c", "echo hi"], "shim: as tini: unknown option '-c' (put -- before the program"),
        (&tini, &["-p", "TERM", "--", "true"], "shim: as tini: -p: 'TERM' is not a signal tini knows"),
        (&tini, &["-e", "256", "--", "true"], "shim: as tini: -e: '256' is not an exit code from 0 to 255"),
        (&tini, &["-v"], "shim: as tini: no program to run"),
        (&dumb_init, &["-r", "15", "true"], "shim: as dumb-init: -r: '15' is not s:r"),
        (&dumb_init, &["--frobnicate", "true"], "shim: as dumb-init: unknown option '--frobnicate'"),
        (&dumb_init, &[], "shim: as dumb-init: no program to run"),
    ];
    for &(peer, args, want) in cases {
        let out = peer.output(args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with(want), "{args:?}: {err}");
        assert!(lines[1].starts_with(&format!("usage: {} [", peer.name)), "{err}");
        assert!(out.stdout.is_empty());
    }
    // shim's own variables are shim's to judge, with shim's usage error.
    let out = tini.output(&["--", "true"], &[("SHIM_GRACE", "soon")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("shim: SHIM_GRACE: invalid duration 'soon'"));
}

#[test]
fn version_help_and_license_are_shims_where_the_peer_prints_them() {
    let version = Command::new(shim_bin()).arg("--version").output().unwrap().stdout;
    let docker_init = Installed::new("docker-init");
    let dumb_init = Installed::new("dumb-init");

    let out = docker_init.output(&["--version"], &[]);
    assert_eq!((out.status.code(), &out.stdout, out.stderr.is_empty()), (Some(0), &version, true));
    let out = dumb_init.output(&["--version"], &[]);
    assert_eq!((out.status.code(), &out.stderr, out.stdout.is_empty()), (Some(0), &version, true));

    let out = docker_init.output(&["-h"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("usage: docker-init [") && text.contains("-e CODE"), "{text}");
    let out = dumb_init.output(&["--help"], &[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("usage: dumb-init [") && text.contains("--rewrite"), "{text}");

    let out = docker_init.output(&["-l"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_LICENSE")));
}

/// Neither peer has an option for a user, so an image that moves from `tini -- gosu app ...`
/// to shim under tini's name sets SHIM_USER, which applies as every SHIM_* variable does.
#[test]
fn shim_user_applies_under_the_peers_names() {
    if !root_available() {
        return;
    }
    let nobody = output_within(Command::new("id").arg("nobody"), secs(10.0));
    assert!(nobody.status.success(), "this machine has no user nobody");
    let want = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    for (name, args) in [("tini", &["--", "id"][..]), ("dumb-init", &["id"][..])] {
        let peer = Installed::new(name);
        for mode in modes() {
            let mut shim = peer.start(mode, args, &[("SHIM_USER", "nobody")]);
            assert_eq!(shim.wait(secs(10.0)).0, 0, "{mode:?} {name}: {}", shim.stderr());
            assert_eq!(shim.rest_of_output(secs(5.0)), [want.as_str()], "{mode:?} {name}");
        }
    }
}
