//! `loadgen`: a constant rate of HTTP requests through a balancer, with every request's
//! outcome recorded, for watching what a rolling update loses.
//!
//! ```text
//! loadgen ADDR RATE OUT
//! ```
//! Sends RATE requests per second to ADDR (127.0.0.1:PORT) until its stdin closes, waits for
//! the requests still in flight (each is bounded by its timeouts), writes OUT and prints
//! "done N". It prints "running" when the first request goes out.
//!
//! The load is open-loop, as real users are: a slow or failing request never delays the next
//! one. The mix, the same in every run: 80 % `GET /`, 10 % `GET /slow/MS` with MS from 1000
//! to 3000, 10 % `POST /orders` (not idempotent: a client must not retry it). Connections are
//! kept alive and reused, the most recently used first, as HTTP client pools do; a new one is
//! opened only when none is idle.
//!
//! OUT has one line per request, in the order they were sent:
//! `START_UNIX_MS LATENCY_MS METHOD PATH SERVED_BY OUTCOME`, where SERVED_BY is the
//! `X-Served-By` header of the response (`-` without one) and OUTCOME the status code, or
//! the error: `refused`, `reset` (also a broken pipe), `closed` (the connection ended before
//! a whole response), `timeout`, `error` (anything else).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longer than the slowest request and than any stop delay a balancer may hold one for.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

type Conn = BufReader<TcpStream>;

/// Idle keep-alive connections, most recently used last.
#[derive(Default)]
struct Pool(Mutex<Vec<Conn>>);

impl Pool {
    fn take(&self) -> Option<Conn> {
        self.0.lock().unwrap().pop()
    }

    fn give_back(&self, conn: Conn) {
        self.0.lock().unwrap().push(conn);
    }
}

struct Record {
    start_ms: f64,
    latency: Duration,
    method: &'static str,
    path: String,
    served_by: String,
    outcome: String,
}

/// A response as far as the load cares.
struct Response {
    status: u16,
    served_by: String,
    keep_alive: bool,
}

fn error_kind(e: &std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => "reset",
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "timeout",
        ErrorKind::UnexpectedEof => "closed",
        _ => "error",
    }
}

fn eof() -> std::io::Error {
    std::io::Error::from(ErrorKind::UnexpectedEof)
}

fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

fn read_line(conn: &mut Conn) -> std::io::Result<String> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(eof());
    }
    Ok(line)
}

/// Read one response: status line, headers, and a body by Content-Length, chunks, or to the
/// end of the connection.
fn read_response(conn: &mut Conn) -> std::io::Result<Response> {
    let status_line = read_line(conn)?;
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or_default().to_string();
    let status = words.next().and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other("bad status line"))?;
    let mut keep_alive = version == "HTTP/1.1";
    let (mut length, mut chunked, mut served_by) = (None, false, "-".to_string());
    loop {
        let line = read_line(conn)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            "x-served-by" => served_by = value.to_string(),
            _ => {}
        }
    }
    if chunked {
        loop {
            let size = usize::from_str_radix(read_line(conn)?.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        conn.read_exact(&mut vec![0; length])?;
    } else {
        conn.read_to_end(&mut Vec::new())?;
        keep_alive = false;
    }
    Ok(Response { status, served_by, keep_alive })
}

fn exchange(conn: &mut Conn, request: &[u8]) -> std::io::Result<Response> {
    conn.get_mut().write_all(request)?;
    read_response(conn)
}

/// Send one request on an idle connection or a new one, and record how it went.
fn run_one(addr: SocketAddr, pool: &Pool, method: &'static str, path: String, body: &str) -> Record {
    let start_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
        body.len()
    );
    let result = match pool.take() {
        Some(conn) => Ok(conn),
        None => connect(addr),
    }
    .and_then(|mut conn| exchange(&mut conn, request.as_bytes()).map(|response| (conn, response)));
    let (served_by, outcome) = match result {
        Ok((conn, response)) => {
            if response.keep_alive {
                pool.give_back(conn);
            }
            (response.served_by, response.status.to_string())
        }
        Err(e) => ("-".to_string(), error_kind(&e).to_string()),
    };
    Record { start_ms, latency: started.elapsed(), method, path, served_by, outcome }
}

/// The same sequence in every run (xorshift64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn request(&mut self) -> (&'static str, String) {
        match self.next() % 100 {
            0..=9 => ("GET", format!("/slow/{}", 1000 + self.next() % 2001)),
            10..=19 => ("POST", "/orders".to_string()),
            _ => ("GET", "/".to_string()),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, rate, out] = args.as_slice() else {
        eprintln!("usage: loadgen ADDR RATE OUT");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR is IP:PORT");
    let rate: f64 = rate.parse().expect("RATE is requests per second");
    let period = Duration::from_secs_f64(1.0 / rate);

    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn({
        let stop = stop.clone();
        move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            stop.store(true, Ordering::SeqCst);
        }
    });

    let pool = Arc::new(Pool::default());
    let mut mix = Mix(0x9e37_79b9_7f4a_7c15);
    let mut requests = Vec::new();
    let t0 = Instant::now();
    println!("running");
    let _ = std::io::stdout().flush();
    while !stop.load(Ordering::SeqCst) {
        let (method, path) = mix.request();
        let body = if method == "POST" { "item=42&quantity=1" } else { "" };
        let pool = pool.clone();
        requests.push(std::thread::spawn(move || run_one(addr, &pool, method, path, body)));
        // The schedule is fixed in advance: a late tick sends at once and does not shift the rest.
        let next = t0 + period * requests.len() as u32;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }

    let mut text = String::new();
    for request in requests {
        let r = request.join().expect("a request thread panicked");
        text.push_str(&format!(
            "{:.3} {:.3} {} {} {} {}\n",
            r.start_ms,
            r.latency.as_secs_f64() * 1000.0,
            r.method,
            r.path,
            r.served_by,
            r.outcome
        ));
    }
    std::fs::write(out, &text).expect("write OUT");
    println!("done {}", text.lines().count());
}
