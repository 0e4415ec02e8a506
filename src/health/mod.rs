//! The health endpoint (`--health`): shim's own answer to a load balancer's health checks,
//! 200 until a stop begins and 503 from that instant (the contract's "Health checks"). It
//! owns the listening socket and the few clients being answered, and is served in the
//! supervision loop's one thread between signals: every socket is non-blocking, every client
//! is bounded in bytes, time and number, and the loop's one kernel wait covers its sockets.
//! What the answer is comes from the state machine ([`Health`]); this module only carries it.

pub mod addr;
mod http;
mod socket;

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;

pub use crate::machine::Health;
use http::{Answer, Request};

/// Clients answered at once. Health checkers open one connection per check, so a handful
/// is plenty, and a flood cannot take more than this: when all are taken, the one that has
/// waited longest for its request is closed to make room, so that clients that connect and
/// send nothing (a slowloris) cannot keep a real check out.
const MAX_CLIENTS: usize = 16;
/// The most of a request shim keeps: its request line must fit. Headers beyond it are read
/// and dropped (only the blank line that ends them matters), within the read deadline.
const REQUEST_MAX: usize = 1024;
/// A client must have sent its whole request this long after it connected.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `--health-probe`'s connect may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connections taken per wake-up, so that a flood of them is handled in bounded slices
/// between signals.
const ACCEPT_BATCH: usize = 32;
/// After accept fails for want of resources (fds, memory), the listener is left alone this
/// long: it stays readable, and retrying at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// One connection being answered.
struct Client {
    conn: OwnedFd,
    /// When it is given up: the read deadline, then the probe's.
    until: Duration,
    len: usize,
    request: [u8; REQUEST_MAX],
    /// The probe's connect under way, once the request is in and the answer depends on it.
    probe: Option<(OwnedFd, bool)>,
}

/// The listening socket and its clients.
pub(crate) struct Server {
    listener: OwnedFd,
    probe: Option<SocketAddr>,
    clients: Vec<Client>,
    /// Which of the last wait's sockets were ready: the listener, then each client.
    listener_ready: bool,
    ready: [bool; MAX_CLIENTS],
    paused_until: Option<Duration>,
}

/// What a wait gave.
pub(crate) struct Woken {
    /// A signal is pending.
    pub signal: bool,
}

impl Server {
    /// Listen on `addr`; `probe` is `--health-probe`'s address; `place` moves the listener
    /// where it must be (above fds 0-2).
    pub fn open(
        addr: SocketAddr,
        probe: Option<SocketAddr>,
        place: impl FnOnce(OwnedFd) -> Result<OwnedFd, Errno>,
    ) -> Result<Server, Errno> {
        Ok(Server {
            listener: place(socket::listen(addr)?)?,
            probe,
            clients: Vec::with_capacity(MAX_CLIENTS),
            listener_ready: false,
            ready: [false; MAX_CLIENTS],
            paused_until: None,
        })
    }

    /// The port it listens on: the one the kernel chose for port 0.
    pub fn port(&self) -> Option<u16> {
        socket::local_port(&self.listener)
    }

    /// The listener's fd, which must survive the closing of inherited fds.
    pub fn fd(&self) -> i32 {
        self.listener.as_raw_fd()
    }

    /// Sleep in the kernel until a signal is pending on `signals` (a signalfd), a socket of
    /// this server is ready, or `due` (the machine's next deadline) or a client's comes; all
    /// times on the loop's clock, `now` the present.
    pub fn wait(&mut self, signals: &OwnedFd, due: Option<Duration>, now: Duration) -> Result<Woken, Errno> {
        let listening = self.paused_until.is_none_or(|t| now >= t);
        if listening {
            self.paused_until = None;
        }
        let mut set = [socket::PollFd::default(); 2 + MAX_CLIENTS];
        set[0] = socket::PollFd::readable(signals);
        let mut n = 1;
        if listening {
            set[n] = socket::PollFd::readable(&self.listener);
            n += 1;
        }
        for c in &self.clients {
            set[n] = match &c.probe {
                Some((sock, _)) => socket::PollFd::writable(sock),
                None => socket::PollFd::readable(&c.conn),
            };
            n += 1;
        }
        let next = self.clients.iter().map(|c| c.until).chain(self.paused_until).chain(due).min();
        socket::poll(&mut set[..n], next.map(|t| t.saturating_sub(now)))?;
        let first_client = if listening { 2 } else { 1 };
        self.listener_ready = listening && set[1].ready();
        for (i, slot) in self.ready.iter_mut().enumerate() {
            *slot = set.get(first_client + i).is_some_and(|p| i < self.clients.len() && p.ready());
        }
        Ok(Woken { signal: set[0].ready() })
    }

    /// Answer, read or give up on every client the last wait found ready or whose time is up,
    /// then take new connections; `health` is the machine's state now.
    pub fn serve(&mut self, health: Health, now: Duration) {
        // Backwards, so that removing one moves only clients already seen.
        for i in (0..self.clients.len()).rev() {
            let due = now >= self.clients[i].until;
            if self.ready[i] || due {
                let step = self.step(i, health, now);
                self.finish(i, step);
            }
        }
        self.ready = [false; MAX_CLIENTS];
        if !std::mem::take(&mut self.listener_ready) {
            return;
        }
        let mut evicted = false;
        for _ in 0..ACCEPT_BATCH {
            match socket::accept(&self.listener) {
                Ok(Some(conn)) if self.make_room() => {
                    let until = now.saturating_add(READ_TIMEOUT);
                    self.clients.push(Client { conn, until, len: 0, request: [0; REQUEST_MAX], probe: None });
                    // Its request is usually there already: answer it without another wake-up.
                    let i = self.clients.len() - 1;
                    let step = self.step(i, health, now);
                    self.finish(i, step);
                }
                // Every client is waiting on its probe: the newcomer is the one closed.
                Ok(Some(excess)) => drop(excess),
                Ok(None) => break,
                // Out of fds: the oldest client waiting for its request makes room, once per
                // round; with none, the listener rests.
                Err(Errno::EMFILE | Errno::ENFILE) if !evicted && self.close_oldest() => evicted = true,
                Err(_) => {
                    self.paused_until = Some(now.saturating_add(ACCEPT_PAUSE));
                    break;
                }
            }
        }
    }

    /// Whether a new client fits, after closing the oldest one still sending its request if
    /// need be. One waiting on its probe is kept: it is answered within the probe's timeout.
    fn make_room(&mut self) -> bool {
        self.clients.len() < MAX_CLIENTS || self.close_oldest()
    }

    /// Close the client that has waited longest for its request, if there is one.
    fn close_oldest(&mut self) -> bool {
        let oldest = self.clients.iter().enumerate().filter(|(_, c)| c.probe.is_none()).min_by_key(|(_, c)| c.until);
        match oldest.map(|(i, _)| i) {
            Some(i) => {
                self.clients.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Move client `i` on as far as it goes now.
    fn step(&mut self, i: usize, health: Health, now: Duration) -> Step {
        let probe = self.probe;
        let c = &mut self.clients[i];
        if let Some((sock, head)) = &c.probe {
            let connected = now < c.until && socket::connected(sock);
            return Step::Answer(http::response(Answer::of(health, Some(connected)), *head));
        }
        if now >= c.until {
            return Step::Close;
        }
        match socket::read(&c.conn, &mut c.request[c.len..]) {
            socket::Read::Bytes(n) => c.len += n,
            socket::Read::Later => return Step::Waiting,
            socket::Read::Closed => return Step::Close,
        }
        let head = match http::parse(&c.request[..c.len]) {
            Request::Complete { head } => head,
            Request::Partial if c.len < REQUEST_MAX => return Step::Waiting,
            // Long headers (cookies, a checker's own): read on, keeping what matters.
            Request::Partial => match http::compact(&mut c.request) {
                Some(len) => {
                    c.len = len;
                    return Step::Waiting;
                }
                None => return Step::Answer(http::response(Answer::BadRequest, false)),
            },
            Request::Bad => return Step::Answer(http::response(Answer::BadRequest, false)),
        };
        // Draining needs no probe: the answer is 503 whatever the program does.
        let probed = match probe {
            Some(addr) if health == Health::Serving => match socket::connect(addr) {
                socket::Connect::Done(ok) => Some(ok),
                socket::Connect::Pending(sock) => {
                    c.probe = Some((sock, head));
                    c.until = now.saturating_add(PROBE_TIMEOUT);
                    return Step::Waiting;
                }
            },
            _ => None,
        };
        Step::Answer(http::response(Answer::of(health, probed), head))
    }

    /// Carry out what [`Server::step`] found for client `i`.
    fn finish(&mut self, i: usize, step: Step) {
        match step {
            Step::Waiting => {}
            Step::Close => drop(self.clients.swap_remove(i)),
            Step::Answer(bytes) => socket::answer(self.clients.swap_remove(i).conn, bytes),
        }
    }
}

/// Where a client stands after a step.
enum Step {
    Waiting,
    /// Given up on, with no answer: it closed, or its time ran out.
    Close,
    /// Answered with these bytes, then closed.
    Answer(&'static [u8]),
}
