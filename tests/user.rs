//! `--user`, with the real binary (the contract's "Start" and "Exit status"): the program and
//! the pre-stop hook run as the user, with its ids and groups and no capability left, and
//! cannot get root back; shim itself stays root; a user that cannot be resolved, or a switch
//! that fails, is exit 125 with one line, and nothing runs.
//!
//! The test users live in a passwd and a group file of the test's own, bind-mounted over
//! /etc's in a mount namespace that only shim and its children see (unshare, private
//! propagation), so the machine's /etc is never edited and the mounts end with the processes.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
app:x:1234:2345:app:/home/app:/bin/sh
multi:x:1235:2345:in two more groups:/srv/multi:/bin/sh
";

const GROUP: &str = "root:x:0:
appgrp:x:2345:
extra1:x:3001:multi,other
extra2:x:3002:someone,multi
web:x:4000:app
";

/// What shim finds in /etc.
enum Etc {
    /// The test's own passwd and group, in a directory removed on drop.
    Test(PathBuf),
    /// Nothing at all, as in a `FROM scratch` image: an empty tmpfs over /etc.
    Empty,
}

impl Etc {
    fn test() -> Etc {
        // One directory per test: they run in parallel.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shim-test-user-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("passwd"), PASSWD).unwrap();
        std::fs::write(dir.join("group"), GROUP).unwrap();
        Etc::Test(dir)
    }

    /// The arguments of `unshare` that run `command` with this /etc in place: the mounts are
    /// made by a shell that then execs `command`, so `command` keeps unshare's pid.
    fn around(&self, command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["--mount", "--propagation", "private", "sh", "-c"].map(String::from).to_vec();
        match self {
            Etc::Test(dir) => {
                args.push(
                    "mount --bind \"$1\" /etc/passwd && mount --bind \"$2\" /etc/group && shift 2 && exec \"$@\""
                        .into(),
                );
                args.push("sh".into());
                args.push(dir.join("passwd").to_string_lossy().into_owned());
                args.push(dir.join("group").to_string_lossy().into_owned());
            }
            Etc::Empty => {
                args.push("mount -t tmpfs none /etc && exec \"$@\"".into());
                args.push("sh".into());
            }
        }
        args.extend(command.iter().map(|w| w.to_string()));
        args
    }

    /// shim with `args`, started in `mode` with this /etc.
    fn start(&self, mode: Mode, args: &[&str], env: &[(&str, &str)]) -> Shim {
        let command: Vec<&str> = std::iter::once(shim_bin()).chain(args.iter().copied()).collect();
        let around = self.around(&command);
        let around: Vec<&str> = around.iter().map(String::as_str).collect();
        Shim::start_with(mode, &around, Options { env, bin: Some("unshare"), ..Options::default() })
    }

    /// shim with `args` run to completion in `mode` with this /etc: exit code, stdout, stderr.
    fn run(&self, mode: Mode, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut shim = self.start(mode, args, env);
        let (code, _) = shim.wait(secs(30.0));
        let out = shim.rest_of_output(secs(5.0)).join("\n");
        (code, out, shim.full_stderr(secs(5.0)))
    }
}

impl Drop for Etc {
    fn drop(&mut self) {
        if let Etc::Test(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The fields `probe ids` printed, as `Field: value` lines.
fn field<'a>(out: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    out.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name} in {out:?}")).trim()
}

fn own_status(name: &str) -> String {
    let own = status_field(std::process::id() as i32, name).unwrap_or_default();
    own.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn names_numbers_and_user_colon_group_are_what_id_prints() {
    if !root_available() {
        return;
    }
    let etc = Etc::test();
    let cases = [
        ("app", "uid=1234(app) gid=2345(appgrp) groups=2345(appgrp),4000(web)"),
        ("multi", "uid=1235(multi) gid=2345(appgrp) groups=2345(appgrp),3001(extra1),3002(extra2)"),
        // A number with an entry is that entry, groups and all.
        ("1235", "uid=1235(multi) gid=2345(appgrp) groups=2345(appgrp),3001(extra1),3002(extra2)"),
        // Without one: shim's own gid (root's), no supplementary groups.
        ("4321", "uid=4321 gid=0(root) groups=0(root)"),
        // A group given: that gid, and no supplementary groups.
        ("multi:web", "uid=1235(multi) gid=4000(web) groups=4000(web)"),
        ("app:3001", "uid=1234(app) gid=3001(extra1) groups=3001(extra1)"),
        ("4321:extra2", "uid=4321 gid=3002(extra2) groups=3002(extra2)"),
        ("4321:555", "uid=4321 gid=555 groups=555"),
    ];
    for mode in modes() {
        for (user, want) in cases {
            for (opts, env) in both_ways(&["--user", user], &[("SHIM_USER", user)]) {
                let args: Vec<&str> = opts.iter().copied().chain(["--", "id"]).collect();
                let (code, out, err) = etc.run(mode, &args, &env);
                assert_eq!((code, out.as_str(), err.as_str()), (0, want, ""), "{mode:?} --user {user} {env:?}");
            }
        }
    }
}

/// The machine's own accounts, no mount: what `id nobody` says nobody is.
#[test]
fn shim_user_nobody_runs_id_as_nobody() {
    if !root_available() {
        return;
    }
    let expected = output_within(Command::new("id").arg("nobody"), secs(10.0));
    assert!(expected.status.success(), "this machine has no user nobody");
    let expected = String::from_utf8_lossy(&expected.stdout).trim().to_string();
    for mode in modes() {
        let (code, out, err) = run(mode, &["--user", "nobody", "--", "id"]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, expected.as_str(), ""), "{mode:?}");
    }
}

#[test]
fn proc_shows_the_childs_new_ids_and_no_capabilities_while_shim_stays_root() {
    if !root_available() {
        return;
    }
    let etc = Etc::test();
    let probe = probe();
    for mode in modes() {
        let mut shim = etc.start(mode, &["--user", "multi", "--", &probe, "signals", "TERM"], &[]);
        shim.expect("ready", secs(5.0));
        let child = shim.main_child();
        let of = |pid: i32, name: &str| {
            let value = status_field(pid, name).unwrap_or_else(|| panic!("no {name} for pid {pid}"));
            value.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(of(child, "Uid"), "1235 1235 1235 1235", "{mode:?}: real, effective, saved, filesystem");
        assert_eq!(of(child, "Gid"), "2345 2345 2345 2345", "{mode:?}");
        assert_eq!(of(child, "Groups"), "3001 3002", "{mode:?}");
        for caps in ["CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(of(child, caps), "0000000000000000", "{mode:?}: {caps}");
        }
        // shim keeps root, to signal and SIGKILL whatever the user starts.
        assert_eq!(of(shim.pid, "Uid"), "0 0 0 0", "{mode:?}");
        assert_eq!(of(shim.pid, "CapEff"), own_status("CapEff"), "{mode:?}");
        shim.signal(libc::SIGTERM);
        shim.expect("got 15", secs(5.0));
        assert_eq!(shim.wait(secs(5.0)).0, 0, "{mode:?}: {}", shim.stderr());
    }
}

#[test]
fn the_program_cannot_get_root_back() {
    if !root_available() {
        return;
    }
    let etc = Etc::test();
    let probe = probe();
    for mode in modes() {
        let (code, out, err) = etc.run(mode, &["--user", "app", "--", &probe, "ids"], &[]);
        assert_eq!(code, 0, "{mode:?}: {err}");
        for call in ["setuid(0)", "setresuid(0, 0, 0)", "setgid(0)", "setgroups([0])"] {
            let said = field(&out, call);
            assert!(said.starts_with("failed: ") && said.ends_with("(os error 1)"), "{mode:?}: {call}: {said}");
        }
        assert_eq!(field(&out, "CapEff"), "0000000000000000", "{mode:?}");
    }
}

#[test]
fn home_is_the_users_unless_the_caller_set_one() {
    if !root_available() {
        return;
    }
    let etc = Etc::test();
    let probe = probe();
    let unset = |user: &str| -> Vec<String> {
        ["env", "-u", "HOME", shim_bin(), "--user", user, "--", &probe, "ids"].map(String::from).to_vec()
    };
    for mode in modes() {
        for (user, want) in [("app", "/home/app"), ("1234", "/home/app"), ("4321", "/")] {
            let words = etc.around(&unset(user).iter().map(String::as_str).collect::<Vec<_>>());
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let mut shim = Shim::start_with(mode, &words, Options { bin: Some("unshare"), ..Options::default() });
            assert_eq!(shim.wait(secs(30.0)).0, 0, "{mode:?} {user}: {}", shim.stderr());
            let out = shim.rest_of_output(secs(5.0)).join("\n");
            assert_eq!(field(&out, "HOME"), want, "{mode:?} --user {user}, HOME unset");
        }
        let (_, out, err) = etc.run(mode, &["--user", "app", "--", &probe, "ids"], &[("HOME", "/mine")]);
        assert_eq!(field(&out, "HOME"), "/mine", "{mode:?}: the caller's HOME is kept; {err}");
        // Empty is unset, as gosu takes it; the empty entry is replaced, not doubled.
        let (_, out, err) = etc.run(mode, &["--user", "app", "--", "sh", "-c", "env | grep ^HOME="], &[("HOME", "")]);
        assert_eq!(out, "HOME=/home/app", "{mode:?}: {err}");
    }
}

#[test]
fn a_name_that_cannot_be_resolved_is_125_and_nothing_runs() {
    if !root_available() {
        return;
    }
    let (test, empty) = (Etc::test(), Etc::Empty);
    let cases = [
        (&test, "nosuch", "shim: failed to run as 'nosuch': no user 'nosuch' in /etc/passwd"),
        (&test, "app:nosuch", "shim: failed to run as 'app:nosuch': no group 'nosuch' in /etc/group"),
        (&empty, "app", "shim: failed to run as 'app': no /etc/passwd to look up 'app' in; give UID:GID instead"),
        (
            &empty,
            "1234:web",
            "shim: failed to run as '1234:web': no /etc/group to look up 'web' in; give a GID instead",
        ),
    ];
    for mode in modes() {
        for (etc, user, want) in cases {
            let (code, out, err) = etc.run(mode, &["-v", "--user", user, "--", "sh", "-c", "echo ran"], &[]);
            assert_eq!(code, 125, "{mode:?} {user}: {err}");
            assert_eq!(out, "", "{mode:?} {user}: the program ran");
            assert_eq!(err, format!("{want}\n"), "{mode:?} {user}: one line, and not even the start");
        }
    }
}

/// A `FROM scratch` image has neither file: numbers need none.
#[test]
fn numbers_need_no_account_files() {
    if !root_available() {
        return;
    }
    let probe = probe();
    for mode in modes() {
        let (code, out, err) = Etc::Empty.run(mode, &["--user", "4321:4322", "--", &probe, "ids"], &[]);
        assert_eq!(code, 0, "{mode:?}: {err}");
        assert_eq!(field(&out, "Uid"), "4321 4321 4321 4321", "{mode:?}");
        assert_eq!(field(&out, "Gid"), "4322 4322 4322 4322", "{mode:?}");
        assert_eq!(field(&out, "Groups"), "", "{mode:?}");
    }
}

/// shim run as nobody cannot make its child anyone else: one line that says what --user
/// needs, exit 125, and the program never ran.
#[test]
fn shim_not_root_given_another_user_fails_clearly() {
    if !root_available() {
        return;
    }
    for mode in modes() {
        let mut cmd = command(mode, "setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", shim_bin()]);
        cmd.args(["--user", "1234", "--", "sh", "-c", "echo ran"]);
        let out = output_within(&mut cmd, secs(10.0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(exit_code(out.status), 125, "{mode:?}: {err}");
        assert_eq!(out.stdout, b"", "{mode:?}: the program ran");
        assert_eq!(
            err,
            "shim: failed to start 'sh': the child could not set its supplementary groups: Operation not \
             permitted; --user needs shim to run as root, with CAP_SETUID and CAP_SETGID\n",
            "{mode:?}"
        );
    }
}

/// Root without one of the two capabilities: the step that needs it fails after the others
/// succeeded. A child left with gid 2345 but uid 0 must still run nothing.
#[test]
fn a_step_that_fails_leaves_nothing_running_as_root() {
    if !root_available() {
        return;
    }
    let etc = Etc::test();
    for mode in modes() {
        for (dropped, what) in [("-setuid", "set its user id"), ("-setgid", "set its supplementary groups")] {
            let bounding = format!("--bounding-set={dropped}");
            let command = ["setpriv", &bounding, "--", shim_bin(), "--user", "app", "--", "sh", "-c", "echo ran"];
            let words = etc.around(&command);
            let mut cmd = command_in(mode, &words);
            let out = output_within(&mut cmd, secs(10.0));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(exit_code(out.status), 125, "{mode:?} {dropped}: {err}");
            assert_eq!(out.stdout, b"", "{mode:?} {dropped}: the program ran");
            let want = format!("shim: failed to start 'sh': the child could not {what}: Operation not permitted;");
            assert!(err.lines().count() == 1 && err.starts_with(&want), "{mode:?} {dropped}: {err}");
        }
    }
}

/// `unshare` with `words` in `mode`.
fn command_in(mode: Mode, words: &[String]) -> Command {
    let mut cmd = command(mode, "unshare");
    cmd.args(words);
    cmd
}

#[test]
fn without_user_nothing_changes() {
    let probe = probe();
    for mode in modes() {
        let (code, out, err) = run(mode, &["--", &probe, "ids"]);
        assert_eq!(code, 0, "{mode:?}: {err}");
        for name in ["Uid", "Gid", "Groups", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(field(&out, name), own_status(name), "{mode:?}: {name} is the caller's");
        }
        assert_eq!(field(&out, "HOME"), std::env::var("HOME").as_deref().unwrap_or("unset"), "{mode:?}");
    }
}

#[test]
fn the_pre_stop_hook_runs_as_the_user() {
    if !root_available() {
        return;
    }
    let etc = Etc::test();
    let probe = probe();
    let hook = format!("{probe} ids");
    for mode in modes() {
        // HOME empty, as if unset: the hook gets the user's too.
        let args = ["--user", "multi", "--pre-stop", &hook, "--", &probe, "signals", "TERM"];
        let mut shim = etc.start(mode, &args, &[("HOME", "")]);
        shim.expect("ready", secs(5.0));
        shim.signal(libc::SIGTERM);
        // The hook's lines come before the program hears of the stop.
        let uid = shim.expect("Uid: ", secs(5.0));
        let gid = shim.expect("Gid: ", secs(5.0));
        let groups = shim.expect("Groups: ", secs(5.0));
        let home = shim.expect("HOME: ", secs(5.0));
        let got = [uid, gid, groups, home];
        assert_eq!(
            got,
            ["Uid: 1235 1235 1235 1235", "Gid: 2345 2345 2345 2345", "Groups: 3001 3002", "HOME: /srv/multi"]
        );
        shim.expect("got 15", secs(5.0));
        assert_eq!(shim.wait(secs(5.0)).0, 0, "{mode:?}: {}", shim.stderr());
    }
}
