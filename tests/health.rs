//! The contract's "Health checks", with the real binary: `--health` answers 200 while the
//! program runs and 503 from the instant a stop begins (while a stop delay still lets the
//! program serve), `--health-probe` ties the 200 to the program's own port, a bad or taken
//! address keeps the program from starting, no socket leaks into the program or the hook,
//! and neither a flood of connections nor a slowloris client changes anything about
//! forwarding, reaping, the stop, memory or idleness.
#![allow(unsafe_code)]

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Start shim with `--health` on a port the kernel picks, read back from its log.
fn start(mode: Mode, opts: &[&str], env: &[(&str, &str)], program: &[&str]) -> (Shim, SocketAddr) {
    let opts: Vec<&str> = ["-v", "--health", "127.0.0.1:0"].into_iter().chain(opts.iter().copied()).collect();
    let shim = Shim::start_program(mode, &opts, env, program);
    shim.expect_stderr("answering health checks on 127.0.0.1:", secs(5.0));
    let log = shim.stderr();
    let port = log
        .split("answering health checks on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in the log: {log}"));
    (shim, SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
}

/// Send `request` and read the whole answer: (status code, body).
fn ask(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, secs(5.0)).expect("connect to the health port");
    s.set_read_timeout(Some(secs(5.0))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr) -> (u16, String) {
    ask(addr, b"GET /healthz HTTP/1.1\r\nHost: shim\r\nUser-Agent: kube-probe/1.29\r\nAccept: */*\r\nConnection: close\r\n\r\n")
}

/// A port nothing listens on (the kernel handed it out a moment ago and it was given back).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn answers_200_until_a_stop_begins_then_503_while_the_delay_lets_the_program_serve() {
    let probe = probe();
    for mode in modes() {
        let (mut shim, addr) = start(mode, &["--stop-delay", "3s"], &[], &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        assert_eq!(get(addr), (200, "ok".into()), "{mode:?}");
        assert_eq!(get(addr), (200, "ok".into()), "{mode:?}: each check is answered");
        let stopped = Instant::now();
        shim.signal(libc::SIGTERM);
        shim.expect_stderr("answered 503 draining from now", secs(5.0));
        assert_eq!(get(addr), (503, "draining".into()), "{mode:?}");
        assert_eq!(ask(addr, b"HEAD / HTTP/1.0\r\n\r\n"), (503, String::new()), "{mode:?}: HEAD has no body");
        // The program has had no stop signal yet: it still serves while the balancer drains.
        let child = shim.main_child();
        assert!(alive(child), "{mode:?}");
        assert!(stopped.elapsed() < secs(2.5), "{mode:?}: checked too late to prove anything");
        assert!(!shim.stderr().contains("stopping: SIGTERM"), "{mode:?}: forwarded before the delay");
        shim.expect("got 15", secs(10.0));
        let (code, exited) = shim.wait(secs(10.0));
        assert_eq!(code, 0, "{mode:?}: {}", shim.stderr());
        let took = exited - stopped;
        assert!(took >= secs(2.9) && took < secs(6.0), "{mode:?}: the stop took {took:?}");
    }
}

#[test]
fn every_checker_gets_its_answer_and_what_is_not_http_gets_400() {
    let probe = probe();
    let (mut shim, addr) = start(Mode::Subreaper, &[], &[], &[&probe, "signals", "TERM"]);
    shim.expect("ready", secs(5.0));
    let checkers: [(&[u8], u16, &str); 6] = [
        // HAProxy's `option httpchk` with no arguments.
        (b"OPTIONS / HTTP/1.0\r\ncontent-length: 0\r\n\r\n", 200, "ok"),
        (b"GET / HTTP/1.0\r\n\r\n", 200, "ok"),
        (b"GET /any/path?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok"),
        (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400, "bad request"),
        (b"hello there\n", 400, "bad request"),
    ];
    for (request, status, body) in checkers {
        assert_eq!(ask(addr, request), (status, body.to_string()), "{:?}", String::from_utf8_lossy(request));
    }
    // Headers far longer than what shim keeps (cookies, a checker's own) are read past; a
    // request line that long is not.
    let cookies = [
        b"GET / HTTP/1.1\r\n".as_slice(),
        &b"Cookie: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(100),
        b"\r\n",
    ]
    .concat();
    assert_eq!(ask(addr, &cookies), (200, "ok".into()));
    let long_line = [b"GET /".as_slice(), &b"a".repeat(2000), b" HTTP/1.1\r\n\r\n"].concat();
    assert_eq!(ask(addr, &long_line).0, 400);
    // Empty lines before the request are ignored, as HTTP says.
    assert_eq!(ask(addr, b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), (200, "ok".into()));
    // A request a byte at a time is still one request.
    let mut s = TcpStream::connect(addr).unwrap();
    for b in b"GET / HTTP/1.1\r\n\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut answer = String::new();
    s.set_read_timeout(Some(secs(5.0))).unwrap();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\nok"), "{answer:?}");
    // A client that sends nothing is closed after its deadline, with no answer.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(secs(10.0))).unwrap();
    let opened = Instant::now();
    let mut nothing = Vec::new();
    let _ = silent.read_to_end(&mut nothing);
    let held = opened.elapsed();
    assert!(nothing.is_empty() && held >= secs(1.5) && held < secs(5.0), "{held:?}: {nothing:?}");
    shim.signal(libc::SIGTERM);
    assert_eq!(shim.wait(secs(5.0)).0, 0);
}

#[test]
fn the_probe_gives_200_only_while_the_program_accepts_connections() {
    let probe = probe();
    let port = free_port();
    let program_addr = format!("127.0.0.1:{port}");
    for mode in modes() {
        let (mut shim, addr) =
            start(mode, &["--stop-delay", "2s"], &[("SHIM_HEALTH_PROBE", &program_addr)], &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        assert_eq!(get(addr), (503, "not listening".into()), "{mode:?}: nothing on {program_addr} yet");
        let listening = TcpListener::bind(&program_addr).unwrap();
        assert_eq!(get(addr), (200, "ok".into()), "{mode:?}");
        drop(listening);
        assert_eq!(get(addr), (503, "not listening".into()), "{mode:?}: it stopped listening");
        let _listening = TcpListener::bind(&program_addr).unwrap();
        assert_eq!(get(addr), (200, "ok".into()), "{mode:?}");
        shim.signal(libc::SIGTERM);
        shim.expect_stderr("answered 503 draining from now", secs(5.0));
        assert_eq!(get(addr), (503, "draining".into()), "{mode:?}: draining, though the program still listens");
        assert_eq!(shim.wait(secs(10.0)).0, 0, "{mode:?}");
    }
}

/// A listener whose accept queue is full, so that a new connect to it neither succeeds nor
/// fails: the kernel drops its SYN and retries for a minute.
struct Unanswering {
    fd: i32,
    _queued: Vec<TcpStream>,
    addr: SocketAddr,
}

impl Unanswering {
    fn new() -> Unanswering {
        let port = free_port();
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        // SAFETY: plain socket calls on integers and a sockaddr_in built on the stack.
        let fd = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be() },
                sin_zero: [0; 8],
            };
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len), 0);
            assert_eq!(libc::listen(fd, 0), 0);
            fd
        };
        // A backlog of 0 still queues one: fill it, and one more for good measure.
        let queued = (0..2).filter_map(|_| TcpStream::connect_timeout(&addr, secs(0.5)).ok()).collect();
        Unanswering { fd, _queued: queued, addr }
    }
}

impl Drop for Unanswering {
    fn drop(&mut self) {
        // SAFETY: closes the fd this value owns.
        unsafe { libc::close(self.fd) };
    }
}

#[test]
fn a_probe_that_cannot_connect_is_bounded() {
    let probe = probe();
    let hung = Unanswering::new();
    let target = hung.addr.to_string();
    let (mut shim, addr) = start(Mode::Subreaper, &["--health-probe", &target], &[], &[&probe, "signals", "TERM"]);
    shim.expect("ready", secs(5.0));
    let asked = Instant::now();
    assert_eq!(get(addr), (503, "not listening".into()));
    let took = asked.elapsed();
    assert!(took >= secs(0.8) && took < secs(3.0), "the probe's connect took {took:?}");
    // And a signal during a hung probe is not held up by it.
    let mut pending = TcpStream::connect(addr).unwrap();
    pending.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let sent = Instant::now();
    shim.signal(libc::SIGUSR1);
    shim.expect("got 10", secs(5.0));
    assert!(sent.elapsed() < secs(0.5), "a signal waited {:?} for the probe", sent.elapsed());
    let mut answer = String::new();
    pending.set_read_timeout(Some(secs(5.0))).unwrap();
    pending.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    shim.signal(libc::SIGTERM);
    assert_eq!(shim.wait(secs(5.0)).0, 0);
}

#[test]
fn a_bad_address_is_a_usage_error_and_a_taken_one_stops_the_program_from_starting() {
    let marker = std::env::temp_dir().join(format!("shim-health-ran-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let touch = format!("echo ran > {}", marker.display());
    for mode in modes() {
        for (args, env) in [
            (vec!["--health", "8099"], vec![]),
            (vec!["--health", "example.com:80"], vec![]),
            (vec!["--health", ":70000"], vec![]),
            (vec![], vec![("SHIM_HEALTH", "::1:8099")]),
            (vec!["--health-probe", ":8080"], vec![]),
            (vec!["--health", ":+8099"], vec![]),
            (vec!["--health", ":8099", "--health-probe", ":8099"], vec![]),
        ] {
            let mut shim = Shim::start_program(mode, &args, &env, &["sh", "-c", &touch]);
            let (code, _) = shim.wait(secs(5.0));
            let err = shim.full_stderr(secs(5.0));
            assert_eq!(code, 2, "{mode:?} {args:?} {env:?}: {err}");
            assert!(err.starts_with("shim: ") && err.lines().count() == 2, "{err}");
        }
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = taken.local_addr().unwrap().to_string();
        let mut shim = Shim::start_program(mode, &["--health", &at], &[], &["sh", "-c", &touch]);
        let (code, _) = shim.wait(secs(5.0));
        let err = shim.full_stderr(secs(5.0));
        assert_eq!(code, 125, "{mode:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("shim: failed to listen for health checks on {at}: ")), "{err}");
        assert!(err.contains("choose another --health port"), "{err}");
        assert!(!marker.exists(), "{mode:?}: the program ran");
    }
}

/// What `pid`'s fds from 3 up point to (`socket:[INODE]`, `anon_inode:[signalfd]`, ...).
fn fd_targets(pid: i32) -> Vec<String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    dir.iter()
        .filter(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()).is_some_and(|fd| fd >= 3))
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

#[test]
fn neither_the_program_nor_the_hook_holds_an_fd_of_shims() {
    let probe = probe();
    let hook = r#"sh -c 'for f in /proc/$$/fd/*; do echo "hook-fd $(readlink $f)"; done; echo hook-done'"#;
    for mode in modes() {
        let (mut shim, addr) = start(mode, &["--pre-stop", hook], &[], &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        assert_eq!(get(addr).0, 200);
        // shim keeps nothing it inherited: what it holds from 3 up is its own, the listener
        // and the signalfd.
        let shims = fd_targets(shim.pid);
        assert_eq!(shims.len(), 2, "{mode:?}: {shims:?}");
        assert!(shims.iter().any(|t| t.starts_with("socket:")) && shims.iter().any(|t| t.contains("signalfd")));
        let programs = fd_targets(shim.main_child());
        assert!(programs.iter().all(|t| !shims.contains(t)), "{mode:?}: the program holds {programs:?} of {shims:?}");
        shim.signal(libc::SIGTERM);
        shim.expect("hook-done", secs(5.0));
        let lines = shim.rest_of_output(secs(10.0));
        let held: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("hook-fd ") && shims.iter().any(|t| l.ends_with(t.as_str())))
            .collect();
        assert!(held.is_empty(), "{mode:?}: the hook holds {held:?}");
        assert!(lines.iter().any(|l| l.starts_with("hook-fd ")), "{mode:?}: the hook listed nothing: {lines:?}");
        assert_eq!(shim.wait(secs(10.0)).0, 0, "{mode:?}");
    }
}

#[test]
fn a_port_alone_is_every_address_ipv4_and_ipv6() {
    let probe = probe();
    let port = free_port();
    let opts = ["-v", "--health", &format!(":{port}")];
    let mut shim = Shim::start_program(Mode::Subreaper, &opts, &[], &[&probe, "signals", "TERM"]);
    shim.expect("ready", secs(5.0));
    shim.expect_stderr(&format!("answering health checks on :{port}"), secs(5.0));
    assert_eq!(get(SocketAddr::from((Ipv4Addr::LOCALHOST, port))), (200, "ok".into()));
    // Where this machine has IPv6 loopback, the same socket answers there too.
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v6, secs(2.0)) {
        Ok(_) => assert_eq!(get(v6), (200, "ok".into())),
        Err(e) => eprintln!("no IPv6 loopback here ({e}): only IPv4 checked"),
    }
    shim.signal(libc::SIGTERM);
    assert_eq!(shim.wait(secs(5.0)).0, 0);
}

#[test]
fn idle_with_a_health_port_shim_never_wakes() {
    let probe = probe();
    for mode in modes() {
        let (mut shim, addr) = start(mode, &[], &[], &[&probe, "signals", "TERM"]);
        shim.expect("ready", secs(5.0));
        assert_eq!(get(addr).0, 200);
        let polling = format!("{} ", libc::SYS_ppoll);
        let in_wait =
            || std::fs::read_to_string(format!("/proc/{}/syscall", shim.pid)).is_ok_and(|s| s.starts_with(&polling));
        wait_for(secs(5.0), || in_wait().then_some(())).expect("shim never settled in ppoll");
        let before = context_switches(shim.pid);
        // Measuring idleness takes watching it idle, after a check, whose client is gone.
        std::thread::sleep(secs(1.5));
        assert_eq!(context_switches(shim.pid), before, "{mode:?}: shim woke up while idle");
        shim.signal(libc::SIGTERM);
        assert_eq!(shim.wait(secs(5.0)).0, 0);
    }
}

/// Connections that send a byte now and then and never finish a request; each one closed
/// is opened again, until `stop`.
fn slowloris(addr: SocketAddr, count: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut conns: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
        let mut opened = 0;
        while !stop.load(Ordering::Relaxed) {
            for slot in conns.iter_mut() {
                let alive = slot.as_mut().is_some_and(|s| s.write_all(b"G").is_ok());
                if !alive {
                    *slot = TcpStream::connect_timeout(&addr, secs(0.2)).ok();
                    opened += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        opened
    })
}

/// `total` connections as fast as they go, from `threads` threads: half close at once, half
/// send garbage first. How many connected.
fn flood(addr: SocketAddr, total: usize, threads: usize) -> usize {
    flood_until(addr, total, threads, Arc::new(AtomicBool::new(true)))
}

/// As `flood`, and on past `total` until `done`: how long a fixed count takes depends on
/// the machine, and what it must overlap is an event, not a duration.
fn flood_until(addr: SocketAddr, total: usize, threads: usize, done: Arc<AtomicBool>) -> usize {
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut connected = 0;
                let mut i = 0;
                while i < total / threads || !done.load(Ordering::Relaxed) {
                    i += 1;
                    if let Ok(mut s) = TcpStream::connect_timeout(&addr, secs(0.2)) {
                        connected += 1;
                        if (i + t) % 2 == 0 {
                            let _ = s.write_all(b"\x00\xffGARBAGE\r\n\r\n");
                        }
                    }
                }
                connected
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().unwrap()).sum()
}

fn rss_kib(pid: i32) -> u64 {
    status_field(pid, "VmRSS").and_then(|v| v.trim_end_matches(" kB").trim().parse().ok()).unwrap_or(0)
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_flood_and_a_slowloris_during_a_signal_storm_lose_nothing() {
    const RT_SIGNALS: usize = 2000;
    let probe = probe();
    // SIGRTMIN+3 as glibc numbers it: real-time signals queue, so each one must arrive.
    let rt = 37;
    // The orphans are made, and all exit at once, a second into the flood; their maker
    // ignores the storm's signal, which the whole group gets.
    let program =
        format!("(trap '' {rt}; echo trapped; sleep 1; exec {probe} orphans 300) & exec {probe} signals TERM");
    for mode in modes() {
        let (mut shim, addr) = start(mode, &[], &[], &["sh", "-c", &program]);
        // The storm starts only once the orphans' maker ignores it.
        shim.expect_all(&["ready", "trapped"], secs(10.0));
        let fds_idle = fd_count(shim.pid);
        let stop = Arc::new(AtomicBool::new(false));
        let loris = slowloris(addr, 24, stop.clone());
        let main = shim.main_child();
        // The flood runs until every orphan is reaped, so the reaping happens under it
        // whatever the machine's speed.
        let orphans_gone = Arc::new(AtomicBool::new(false));
        let gone = orphans_gone.clone();
        let flooding = std::thread::spawn(move || flood_until(addr, 10_000, 4, gone));
        let mut most_fds = 0;
        for i in 0..RT_SIGNALS {
            shim.signal(rt);
            if i % 100 == 0 {
                most_fds = most_fds.max(fd_count(shim.pid));
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        shim.expect("orphaned 300", secs(10.0));
        // Not "no zombie": just after the gate closes, most orphans have not exited yet. Only
        // the main child left means all 300 exited and were reaped.
        let reaped = wait_for(secs(5.0), || (children(shim.pid) == [main]).then_some(()));
        orphans_gone.store(true, Ordering::Relaxed);
        let connected = flooding.join().unwrap();
        assert!(reaped.is_some(), "{mode:?}: children left besides the main child: {:?}", children(shim.pid));
        let rss_after_one = rss_kib(shim.pid);
        let second = flood(addr, 5_000, 4);
        let rss_after_two = rss_kib(shim.pid);
        // A real check still gets through the slowloris clients, which are still at it.
        let answered = (0..3).any(|_| {
            let got = std::panic::catch_unwind(|| get(addr));
            matches!(got, Ok((200, _)))
        });
        assert!(answered, "{mode:?}: no check was answered under the slowloris clients");
        assert!(connected > 1000 && second > 500, "{mode:?}: the flood hardly connected: {connected}, {second}");
        assert!(
            rss_after_two <= rss_after_one + 8,
            "{mode:?}: memory grew from {rss_after_one} to {rss_after_two} KiB"
        );
        // The stop, during a third flood with the slowloris clients still at it, is as
        // prompt as ever.
        let third = std::thread::spawn(move || flood(addr, 5_000, 4));
        std::thread::sleep(Duration::from_millis(200));
        let stopped = Instant::now();
        shim.signal(libc::SIGTERM);
        let (code, exited) = shim.wait(secs(10.0));
        let took = exited - stopped;
        let _ = third.join();
        stop.store(true, Ordering::Relaxed);
        let reopened = loris.join().unwrap();
        let lines = shim.rest_of_output(secs(5.0));
        let got = lines.iter().filter(|l| l.trim() == format!("got {rt}")).count();
        assert_eq!(got, RT_SIGNALS, "{mode:?}: real-time signals lost under the flood");
        assert!(took < secs(3.0), "{mode:?}: the stop took {took:?}");
        assert_eq!(code, 0, "{mode:?}: {}", shim.stderr());
        // At most 16 clients at once, and one just accepted that closes the oldest.
        assert!(most_fds <= fds_idle + 17, "{mode:?}: {most_fds} fds at once, {fds_idle} idle");
        eprintln!(
            "{mode:?}: {connected} + {second} flood connections, {reopened} slowloris connects, \
             VmRSS {rss_after_one} then {rss_after_two} KiB, at most {most_fds} fds, stop {took:?}"
        );
    }
}
