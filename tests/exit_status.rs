//! The contract's "Command line" and "Exit status" with the real binary: the exit status tells the truth, exec failures are
//! reported (not guessed), and bad usage is one line plus the usage line.

mod common;
use common::*;
use std::process::Command;

#[test]
fn the_programs_exit_code_passes_through() {
    let probe = probe();
    for mode in modes() {
        for code in ["0", "3", "255"] {
            let (got, _, err) = run(mode, &["--", &probe, "exit", code]);
            assert_eq!(got.to_string(), code, "{mode:?}: {err}");
            assert_eq!(err, "", "{mode:?}: nothing on stderr by default");
        }
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    for mode in modes() {
        for (sig, code) in [("KILL", 137), ("TERM", 143), ("USR1", 138)] {
            let script = format!("kill -{sig} $$");
            let (got, _, err) = run(mode, &["sh", "-c", &script]);
            assert_eq!(got, code, "{mode:?} {sig}: {err}");
        }
    }
}

#[test]
fn not_found_is_127_with_one_line() {
    for mode in modes() {
        for name in ["no-such-program-anywhere", "/no/such/path"] {
            let (code, _, err) = run(mode, &[name]);
            assert_eq!(code, 127, "{mode:?} {name}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with(&format!("shim: failed to run '{name}': ")), "{err}");
        }
    }
}

#[test]
fn an_empty_program_name_is_not_found() {
    for mode in modes() {
        let (code, _, err) = run(mode, &[""]);
        assert_eq!(code, 127, "{mode:?}: {err}");
    }
}

#[test]
fn not_executable_is_126_with_one_line() {
    let dir = std::env::temp_dir().join(format!("shim-test-126-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain");
    std::fs::write(&plain, "not a program").unwrap();
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, [0x7f, b'E', b'L', b'F', 0, 0, 0, 0]).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o755)).unwrap();
    for mode in modes() {
        for (path, why) in [(&plain, "permission denied"), (&dir, "permission denied"), (&garbage, "exec format error")]
        {
            let path = path.to_str().unwrap();
            let (code, _, err) = run(mode, &[path]);
            assert_eq!(code, 126, "{mode:?} {path}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with(&format!("shim: failed to run '{path}': {why}")), "{err}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_program_not_executable_in_one_path_entry_but_found_later_runs() {
    // As execvp: EACCES in an early PATH entry does not hide the program further on.
    let dir = std::env::temp_dir().join(format!("shim-test-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("true"), "not executable").unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let out = output_within(Command::new(shim_bin()).arg("true").env("PATH", &path), secs(10.0));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_usage_is_2_with_what_is_wrong_then_usage() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&[], &[], "shim: no program to run"),
        (&["--frobnicate", "true"], &[], "shim: unknown option '--frobnicate'"),
        (&["-g", "soon", "true"], &[], "shim: --grace: invalid duration 'soon'"),
        (&["true"], &[("SHIM_GRACE", "soon")], "shim: SHIM_GRACE: invalid duration 'soon'"),
        (&["--forward-to", "everyone", "true"], &[], "shim: --forward-to: 'everyone'"),
        (&["--grace", "-1s", "true"], &[], "shim: --grace: '-1s' is negative"),
        (&["-g", "1x", "true"], &[], "shim: --grace: unknown unit 'x' in '1x' (units: ns, us, ms, s, m, h)"),
        (&["-g1e3", "true"], &[], "shim: --grace: '1e3': exponents are not accepted"),
        (&["true"], &[("SHIM_STOP_DELAY", "1e3")], "shim: SHIM_STOP_DELAY: '1e3': exponents are not accepted"),
        (&["--stop-delay=", "true"], &[], "shim: --stop-delay: empty duration"),
        (&["-g", "2562048h", "true"], &[], "shim: --grace: '2562048h' is too large (at most 2562047h47m16.854775807s"),
    ];
    for &(args, env, want) in cases {
        let out = output_within(Command::new(shim_bin()).args(args).envs(env.iter().copied()), secs(10.0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with(want), "{args:?}: {err}");
        assert_eq!(lines[1], "usage: shim [OPTIONS] [--] PROGRAM [ARGS...]");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    for flag in ["-h", "--help"] {
        let out = output_within(Command::new(shim_bin()).arg(flag), secs(10.0));
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("usage: shim") && text.contains("--grace"), "{text}");
        assert!(out.stderr.is_empty());
    }
    for flag in ["-V", "--version"] {
        let out = output_within(Command::new(shim_bin()).arg(flag), secs(10.0));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("shim {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn help_into_a_closed_pipe_does_not_crash() {
    // Closed before shim starts, so its one write of the help fails for sure.
    let child = Command::new(shim_bin())
        .arg("--help")
        .stdout(broken_pipe())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _deadline = Deadline::new(child.id(), secs(10.0));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err, "", "a closed stdout is no error");
}

#[test]
fn words_after_the_program_are_the_programs_even_if_they_look_like_options() {
    for mode in modes() {
        let (code, out, err) = run(mode, &["sh", "-c", "echo \"$@\"", "sh", "-v", "--grace", "1", "--help", "--"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "-v --grace 1 --help --");
    }
}

#[test]
fn verbose_logs_the_lifecycle_as_shim_lines() {
    for mode in modes() {
        let probe = probe();
        let (code, _, err) = run(mode, &["-v", &probe, "exit", "4"]);
        assert_eq!(code, 4);
        assert!(err.lines().all(|l| l.starts_with("shim: ")), "{err}");
        assert!(
            err.contains("started '") && err.contains("exited with 4 after") && err.contains("exiting with 4"),
            "{err}"
        );
        let (_, _, quiet) = run(mode, &[&probe, "exit", "4"]);
        assert_eq!(quiet, "");
    }
}

#[test]
fn a_script_whose_interpreter_is_missing_names_it() {
    let dir = std::env::temp_dir().join(format!("shim-interp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("x.sh");
    std::fs::write(&script, "#!/no/such/bash -e\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(shim_bin()).arg(&script).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("its interpreter '/no/such/bash' (its #! line) was not found"), "{err}");
}

#[test]
fn a_newline_in_an_argument_does_not_break_the_log_into_lines() {
    for mode in modes() {
        let (code, _, err) = run(mode, &["-v", "sh", "-c", "exit 0", "a\nshim: forged line"]);
        assert_eq!(code, 0);
        assert!(err.lines().all(|l| l.starts_with("shim: ")), "{err}");
        assert!(err.contains(r"a\nshim: forged line"), "{err}");
        assert!(!err.lines().any(|l| l == "shim: forged line'"), "{err}");
    }
}

#[test]
fn a_fault_signal_cannot_be_mapped() {
    let out = std::process::Command::new(shim_bin()).args(["-m", "SEGV:USR1", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("shim: --map-signal: 'SEGV:USR1': SIGSEGV is a fault signal"), "{err}");
}

#[test]
fn log_lines_say_the_times_that_apply() {
    let probe = probe();
    for mode in modes() {
        // A stop delay of 3 s is "3s", not "2.999s".
        let mut shim = Shim::start(mode, &["-v", "-d", "3s", &probe, "signals", "TERM", "INT"]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        shim.expect_stderr("keeps serving", secs(5.0));
        shim.signal(libc::SIGINT);
        assert_eq!(shim.wait(secs(5.0)).0, 0);
        let err = shim.full_stderr(secs(5.0));
        assert!(err.contains("keeps serving for up to 3s first"), "{mode:?}: {err}");

        // A hook with no delay is bounded by the grace: "2s".
        let mut shim = Shim::start(mode, &["-v", "-g", "2s", "-p", "sleep 0.1", &probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        assert_eq!(shim.wait(secs(5.0)).0, 0);
        let err = shim.full_stderr(secs(5.0));
        assert!(err.contains("keeps serving for up to 2s first"), "{mode:?}: {err}");

        // With --forward-to child, the leftovers' SIGKILL still counts from the stop signal:
        // the program leaves after about 1 s of a 3 s grace, so less than 3 s is left.
        let script = "trap 'sleep 1; exit 0' TERM; sleep 30 & echo ready; while :; do sleep 0.05; done";
        let mut shim = Shim::start(mode, &["-v", "-g", "3s", "--forward-to", "child", "sh", "-c", script]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        shim.expect_stderr("others remain", secs(5.0));
        let err = shim.stderr();
        let line = err.lines().find(|l| l.contains("others remain")).unwrap();
        let left = line.rsplit("SIGKILL in ").next().unwrap();
        assert!(
            left != "3s" && (left.ends_with("ms") || left.starts_with("1.") || left.starts_with("2")),
            "{mode:?}: {line}"
        );
        let _ = shim.wait(secs(10.0));
    }
}

/// Durations in Go's grammar reach the timer: a fractional grace period and one in
/// milliseconds from the variable are what the SIGKILL waits for; a stop delay written as a
/// sequence with a fraction is taken in full.
#[test]
fn durations_in_gos_grammar_are_honoured() {
    let ignore_term = "trap '' TERM; echo ready; while :; do sleep 1; done";
    for mode in modes() {
        for (args, env, shown, least, most) in [
            (&["-v", "--grace", "1.5s"][..], &[][..], "left in 1.5s", 1.4, 5.0),
            (&["-v"][..], &[("SHIM_GRACE", "250ms")][..], "left in 250ms", 0.2, 3.0),
        ] {
            let all: Vec<&str> = args.iter().copied().chain(["sh", "-c", ignore_term]).collect();
            let mut shim = Shim::start_with(mode, &all, Options { env, ..Options::default() });
            shim.expect("ready", secs(10.0));
            let sent = std::time::Instant::now();
            shim.signal(libc::SIGTERM);
            shim.expect_stderr(shown, secs(5.0));
            let (code, at) = shim.wait(secs(10.0));
            let took = at.duration_since(sent).as_secs_f64();
            assert_eq!(code, 137, "{mode:?} {args:?} {env:?}: {}", shim.stderr());
            assert!((least..most).contains(&took), "{mode:?} {args:?} {env:?}: SIGKILL after {took:.3}s");
        }

        // 90.5 s of delay: the log says so, and a second stop signal forwards at once.
        let mut shim = Shim::start(mode, &["-v", "--stop-delay", "1m30.5s", "sh", "-c", "echo ready; sleep 30"]);
        shim.expect("ready", secs(10.0));
        shim.signal(libc::SIGTERM);
        shim.expect_stderr("keeps serving for up to 90.", secs(5.0));
        shim.signal(libc::SIGTERM);
        let (code, _) = shim.wait(secs(10.0));
        assert_eq!(code, 143, "{mode:?}: {}", shim.stderr());
    }
}
