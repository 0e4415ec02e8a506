//! `server`: the HTTP service the Docker tests stop. It behaves like a well-written service, or
//! like one that was never written to be PID 1.
//!
//! ```text
//! server [PORT] [--on-term drain|ignore|default]     (PORT defaults to $PORT)
//!   GET /         200 "ok"
//!   GET /slow/N   200 "slow N" after N seconds
//!   drain    (default) on SIGTERM: stop accepting, finish in-flight requests, exit 0
//!   ignore   ignore SIGTERM
//!   default  install nothing: as PID 1 the kernel then drops SIGTERM
//! ```
//! It binds 127.0.0.1 only and logs one line per event on stdout.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn log(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "server: {line}");
    let _ = out.flush();
}

fn serve(mut stream: TcpStream, in_flight: Arc<AtomicUsize>) {
    let mut request = String::new();
    let _ = BufReader::new(&stream).read_line(&mut request);
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    log(&format!("request {path} started"));
    let body = match path.strip_prefix("/slow/").and_then(|n| n.parse::<u64>().ok()) {
        Some(secs) => {
            std::thread::sleep(Duration::from_secs(secs));
            format!("slow {secs}\n")
        }
        None => "ok\n".to_string(),
    };
    let reply = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(reply.as_bytes());
    log(&format!("request {path} done"));
    in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args
        .first()
        .filter(|a| !a.starts_with('-'))
        .cloned()
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .expect("usage: server [PORT] [--on-term MODE], or PORT in the environment");
    let on_term = args.iter().position(|a| a == "--on-term").and_then(|i| args.get(i + 1)).map_or("drain", |s| s);

    let mut set: libc::sigset_t;
    // SAFETY: sigset_t is plain data, filled by sigemptyset/sigaddset before use; the mask is
    // set before any thread exists, so every thread inherits it and only the waiter takes TERM.
    unsafe {
        set = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        match on_term {
            "drain" => {
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            "ignore" => {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
            }
            "default" => {}
            other => panic!("unknown --on-term {other}"),
        }
    }

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let listen_fd = listener.as_raw_fd();
    let in_flight = Arc::new(AtomicUsize::new(0));
    log(&format!("listening on 127.0.0.1:{port}, on SIGTERM: {on_term}"));

    if on_term == "drain" {
        let in_flight = in_flight.clone();
        std::thread::spawn(move || {
            let mut sig = 0;
            // SAFETY: waits on a valid, initialised set; sig is a valid out-pointer.
            unsafe { libc::sigwait(&set, &mut sig) };
            log(&format!("SIGTERM: draining {} request(s)", in_flight.load(Ordering::SeqCst)));
            // Stop accepting: shutting the listening socket wakes accept() and makes the
            // kernel refuse new connections.
            // SAFETY: shutdown and close on the listener's fd, which stays valid; accept
            // fails from here on and the accept loop ends.
            unsafe {
                libc::shutdown(listen_fd, libc::SHUT_RDWR);
            }
            while in_flight.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            log("drained, exiting 0");
            std::process::exit(0);
        });
    }

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let in_flight = in_flight.clone();
                std::thread::spawn(move || serve(stream, in_flight));
            }
            Err(_) => break,
        }
    }
    // Accepting stopped because of the drain: the waiter thread exits when requests finish.
    drop(listener);
    loop {
        std::thread::park();
    }
}
