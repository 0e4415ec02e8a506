//! `replica`: the service a rolling update replaces. It stops the way a careful Go `net/http`
//! server does with `http.Server.Shutdown` on SIGTERM, and speaks HTTP/1.1 with keep-alive, so
//! a balancer in front of it reuses its connections as it would in production.
//!
//! ```text
//! replica [PORT]        (PORT defaults to $PORT; binds 127.0.0.1)
//!   GET /slow/MS        200 after MS milliseconds
//!   POST any path       200 with the length of the body it read
//!   GET any other path  200 "ok"
//! ```
//! Every response carries `X-Served-By: PORT`, so a client can tell which replica answered.
//!
//! On SIGTERM: close the listener (the kernel refuses new connections from then on), close
//! every idle keep-alive connection, let each active request finish and answer it with
//! `Connection: close`, and exit 0 once no connection is left. As in Go, a connection that has
//! not sent its first request yet gets 5 s before it counts as idle, and a request whose first
//! bytes arrive on an idle connection just as the drain closes it is lost: that is the
//! keep-alive race every balancer meets during deploys.
//!
//! It logs one line when listening, one when the drain begins and one when it ends.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a new connection may wait for its first request once a drain has begun (Go: 5 s).
const NEW_CONNECTION_GRACE: Duration = Duration::from_secs(5);
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

fn log(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "replica: {line}");
    let _ = out.flush();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Accepted, no request read yet.
    New(Instant),
    /// Between requests of a keep-alive connection.
    Idle,
    /// Reading a request, running it or writing its response.
    Active,
}

struct Conn {
    /// A second handle on the socket, so the drain can shut it from its own thread.
    stream: TcpStream,
    state: State,
    closed: bool,
}

/// Every open connection and its state, and whether the drain has begun.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Conn>>,
    draining: AtomicBool,
    next_id: AtomicU64,
}

impl Registry {
    fn add(&self, stream: &TcpStream) -> Option<u64> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let handle = stream.try_clone().ok()?;
        let conn = Conn { stream: handle, state: State::New(Instant::now()), closed: false };
        self.conns.lock().unwrap().insert(id, conn);
        Some(id)
    }

    /// The first bytes of a request arrived; false if the drain closed the connection first.
    fn activate(&self, id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap();
        match conns.get_mut(&id) {
            Some(conn) if !conn.closed => {
                conn.state = State::Active;
                true
            }
            _ => false,
        }
    }

    /// The response went out; false if the connection must close instead of waiting for more.
    /// A connection that goes idle before the drain begins is closed by `close_idle`.
    fn idle(&self, id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap();
        if self.draining.load(Ordering::SeqCst) {
            return false;
        }
        match conns.get_mut(&id) {
            Some(conn) => {
                conn.state = State::Idle;
                true
            }
            None => false,
        }
    }

    fn remove(&self, id: u64) {
        self.conns.lock().unwrap().remove(&id);
    }

    /// Shut every idle connection (and every new one past its grace); how many are left open.
    fn close_idle(&self) -> usize {
        let mut conns = self.conns.lock().unwrap();
        for conn in conns.values_mut() {
            let idle = match conn.state {
                State::Idle => true,
                State::New(since) => since.elapsed() >= NEW_CONNECTION_GRACE,
                State::Active => false,
            };
            if idle && !conn.closed {
                conn.closed = true;
                // The connection's own thread then reads end of file and drops the socket.
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
        }
        conns.len()
    }

    fn counts(&self) -> (usize, usize) {
        let conns = self.conns.lock().unwrap();
        let active = conns.values().filter(|c| c.state == State::Active).count();
        (active, conns.len() - active)
    }
}

struct Request {
    method: String,
    path: String,
    body_len: usize,
    keep_alive: bool,
}

/// Read one request head and its body (Content-Length only, which is what balancers send).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path, version) = (words.next()?.to_string(), words.next()?.to_string(), words.next()?);
    let mut keep_alive = version == "HTTP/1.1";
    let mut length = 0usize;
    let mut head = line.len();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        head += line.len();
        if line.is_empty() || head > MAX_HEAD {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok().filter(|n| *n <= MAX_BODY)?;
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = if value.eq_ignore_ascii_case("close") {
                false
            } else {
                keep_alive || value.eq_ignore_ascii_case("keep-alive")
            };
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body_len: length, keep_alive })
}

fn respond(request: &Request) -> String {
    if request.method == "POST" {
        return format!("posted {} bytes\n", request.body_len);
    }
    match request.path.strip_prefix("/slow/").and_then(|ms| ms.parse::<u64>().ok()) {
        Some(ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            format!("slow {ms}\n")
        }
        None => "ok\n".to_string(),
    }
}

fn serve(id: u64, stream: TcpStream, registry: &Registry, port: u16) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        // Wait for the first byte of the next request; end of file or an error ends it.
        match reader.fill_buf() {
            Ok(bytes) if !bytes.is_empty() => {}
            _ => break,
        }
        if !registry.activate(id) {
            break;
        }
        let Some(request) = read_request(&mut reader) else { break };
        let body = respond(&request);
        // Decided after the work: a drain that began meanwhile closes the connection.
        let keep_alive = request.keep_alive && !registry.draining.load(Ordering::SeqCst);
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Served-By: {port}\r\n\
             Connection: {}\r\n\r\n{body}",
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        if writer.write_all(reply.as_bytes()).is_err() || !keep_alive || !registry.idle(id) {
            break;
        }
    }
    registry.remove(id);
}

/// Block SIGTERM in every thread (threads inherit the mask) and wait for it in one of them.
fn wait_for_sigterm_in_background(on_term: impl FnOnce() + Send + 'static) {
    // SAFETY: the set is plain data, initialised by sigemptyset before use; the mask is set
    // before any other thread exists. A blocked signal is queued even for PID 1, which would
    // otherwise drop a SIGTERM it has no handler for.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits on a valid, initialised set; sig is a valid out-pointer.
        unsafe { libc::sigwait(&set, &mut sig) };
        on_term();
    });
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .expect("usage: replica [PORT], or PORT in the environment");
    let registry = Arc::new(Registry::default());
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let listen_fd = listener.as_raw_fd();

    wait_for_sigterm_in_background({
        let registry = registry.clone();
        move || {
            let (active, idle) = registry.counts();
            log(&format!("SIGTERM: closing the listener, {idle} idle and {active} active connection(s)"));
            // Before the listener shuts, so the accept loop knows its error means the drain.
            registry.draining.store(true, Ordering::SeqCst);
            // Shutting the listening socket wakes the blocked accept() (closing it would not)
            // and makes the kernel refuse new connections.
            // SAFETY: shutdown on the listener's fd, which stays open until the process exits.
            unsafe { libc::shutdown(listen_fd, libc::SHUT_RDWR) };
            // Go's Shutdown polls the same way until every connection is gone.
            while registry.close_idle() > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            log("drained, exiting 0");
            std::process::exit(0);
        }
    });
    log(&format!("listening on 127.0.0.1:{port}"));

    for stream in listener.incoming() {
        let draining = registry.draining.load(Ordering::SeqCst);
        let stream = match stream {
            Ok(stream) if !draining => stream,
            // A connection reset before it was accepted: accept the next one.
            Err(_) if !draining => continue,
            _ => break,
        };
        let Some(id) = registry.add(&stream) else { continue };
        let registry = registry.clone();
        std::thread::spawn(move || serve(id, stream, &registry, port));
    }
    // Accepting ended with the drain; the SIGTERM thread exits once the connections are gone.
    loop {
        std::thread::park();
    }
}
