//! SPEC §1 and §5 with the real binary: the exit status tells the truth, exec failures are
//! reported (not guessed), and bad usage is one line plus the usage line.

mod common;
use common::*;

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
    let out = std::process::Command::new(shim_bin()).arg("true").env("PATH", &path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_usage_is_2_with_what_is_wrong_then_usage() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&[], &[], "shim: no program to run"),
        (&["--frobnicate", "true"], &[], "shim: unknown option '--frobnicate'"),
        (&["-g", "soon", "true"], &[], "shim: --grace: invalid duration 'soon'"),
        (&["true"], &[("SHIM_GRACE", "soon")], "shim: SHIM_GRACE: invalid duration 'soon'"),
        (&["--forward-to", "everyone", "true"], &[], "shim: --forward-to: 'everyone'"),
    ];
    for (args, env, want) in cases {
        let out = std::process::Command::new(shim_bin()).args(args).envs(env.iter().copied()).output().unwrap();
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
        let out = std::process::Command::new(shim_bin()).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("usage: shim") && text.contains("--grace"), "{text}");
        assert!(out.stderr.is_empty());
    }
    let want = version_line();
    for flag in ["-V", "--version"] {
        let out = std::process::Command::new(shim_bin()).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn the_version_line_reads_as_an_init_version_to_docker() {
    // dockerd runs its init with --version and takes the part after " - ", which must be
    // `git.` then text with no other dot; `docker info` shows that text as "init version".
    let out = std::process::Command::new(shim_bin()).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let after_dash = text.split(" - ").nth(1).expect("a ' - ' in the version line").trim();
    let shown = after_dash.strip_prefix("git.").expect("git. after the dash");
    assert!(!shown.contains('.'), "Docker rejects a second dot: {text}");
    assert!(!text.starts_with("tini version "), "{text}");
    assert_eq!(shown, init_version(), "{text}");
}

#[test]
fn help_into_a_closed_pipe_does_not_crash() {
    use std::process::Stdio;
    let mut child = std::process::Command::new(shim_bin()).arg("--help").stdout(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
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
