//! The thin layer of socket calls the health endpoint makes. Every socket is non-blocking and
//! close-on-exec: nothing here ever waits, and neither the program nor the pre-stop hook
//! inherits one. With `sys`, the only module with `unsafe`: taking ownership of an accepted
//! fd, and ppoll(2) over a set rebuilt on every wait (nix's `PollFd` borrows each fd for the
//! set's lifetime, which the server's own changes to its clients would outlive).
#![allow(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrStorage};

/// How many connections the kernel queues for shim before it accepts them. More than the
/// clients shim serves at once: the queue only has to absorb a burst between two wake-ups.
const BACKLOG: i32 = 64;

const FLAGS: SockFlag = SockFlag::SOCK_NONBLOCK.union(SockFlag::SOCK_CLOEXEC);

fn family(addr: &SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A listening socket on `addr`. On `[::]`, IPv4 clients are taken too; where the kernel has
/// no IPv6 at all, `[::]` becomes `0.0.0.0`.
pub fn listen(addr: SocketAddr) -> Result<OwnedFd, Errno> {
    let (fd, addr) = match socket::socket(family(&addr), SockType::Stream, FLAGS, None) {
        Err(Errno::EAFNOSUPPORT) if addr.ip().is_unspecified() => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            (socket::socket(AddressFamily::Inet, SockType::Stream, FLAGS, None)?, v4)
        }
        other => (other?, addr),
    };
    // A restarted shim must not find its port held by connections of the one before.
    socket::setsockopt(&fd, socket::sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket::setsockopt(&fd, socket::sockopt::Ipv6V6Only, &false)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    socket::listen(&fd, Backlog::new(BACKLOG)?)?;
    Ok(fd)
}

/// The port `fd` is bound to: the one the kernel chose for port 0.
pub fn local_port(fd: &OwnedFd) -> Option<u16> {
    let addr: SockaddrStorage = socket::getsockname(fd.as_raw_fd()).ok()?;
    addr.as_sockaddr_in().map(|v4| v4.port()).or_else(|| addr.as_sockaddr_in6().map(|v6| v6.port()))
}

/// The next waiting connection, if any.
pub fn accept(listener: &OwnedFd) -> Result<Option<OwnedFd>, Errno> {
    loop {
        match socket::accept4(listener.as_raw_fd(), FLAGS) {
            // SAFETY: accept4 just returned this fd, and nothing else owns it.
            Ok(fd) => return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            Err(Errno::EAGAIN) => return Ok(None),
            // The client gave up before it was accepted: take the next one.
            Err(Errno::ECONNABORTED | Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What a read gave.
pub enum Read {
    Bytes(usize),
    /// Nothing yet.
    Later,
    /// The client closed, or the connection failed.
    Closed,
}

pub fn read(fd: &OwnedFd, into: &mut [u8]) -> Read {
    match nix::unistd::read(fd, into) {
        Ok(0) => Read::Closed,
        Ok(n) => Read::Bytes(n),
        Err(Errno::EAGAIN | Errno::EINTR) => Read::Later,
        Err(_) => Read::Closed,
    }
}

/// Send `bytes` and close: without waiting, and without a SIGPIPE if the client has gone (an
/// answer is a few hundred bytes into an empty socket buffer, so it goes whole or the client
/// is gone). What the client sent beyond what was read is read away first: closing with
/// unread bytes resets the connection, and the client may lose the answer.
pub fn answer(fd: OwnedFd, bytes: &[u8]) {
    let _ = socket::send(fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT);
    let mut rest = [0u8; 512];
    for _ in 0..8 {
        if !matches!(read(&fd, &mut rest), Read::Bytes(_)) {
            break;
        }
    }
}

/// A connect that has been started.
pub enum Connect {
    /// It finished at once (loopback usually does): whether it succeeded.
    Done(bool),
    /// Under way: the socket becomes writable when it is done.
    Pending(OwnedFd),
}

/// Start a non-blocking connect to `addr`.
pub fn connect(addr: SocketAddr) -> Connect {
    let Ok(fd) = socket::socket(family(&addr), SockType::Stream, FLAGS, None) else {
        return Connect::Done(false);
    };
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => Connect::Done(true),
        Err(Errno::EINPROGRESS | Errno::EINTR) => Connect::Pending(fd),
        Err(_) => Connect::Done(false),
    }
}

/// Whether the connect under way on `fd`, now writable, succeeded.
pub fn connected(fd: &OwnedFd) -> bool {
    matches!(socket::getsockopt(&fd.as_fd(), socket::sockopt::SocketError), Ok(0))
}

/// One entry of a wait's set: an fd and what to wait for on it.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl Default for PollFd {
    /// An entry the kernel skips (fd -1).
    fn default() -> Self {
        PollFd(libc::pollfd { fd: -1, events: 0, revents: 0 })
    }
}

impl PollFd {
    pub fn readable(fd: &impl AsRawFd) -> Self {
        PollFd(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 })
    }

    pub fn writable(fd: &impl AsRawFd) -> Self {
        PollFd(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 })
    }

    /// Whether the last wait found it ready, hung up or failed: each means "act on it now".
    pub fn ready(&self) -> bool {
        self.0.revents != 0
    }
}

/// Sleep in the kernel until an entry of `set` is ready or `timeout` passes (`None`: no
/// timeout). The signal mask stays as it is: with every signal blocked, a signal shows as
/// its signalfd becoming readable.
pub fn poll(set: &mut [PollFd], timeout: Option<Duration>) -> Result<(), Errno> {
    let ts = timeout.map(|d| libc::timespec {
        // time_t is 64-bit on every 64-bit Linux target.
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX) as _,
        tv_nsec: d.subsec_nanos().into(),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: PollFd is repr(transparent) over pollfd, so the slice is a valid pollfd array
    // of its length; ts_ptr is NULL or points to a timespec that outlives the call; a NULL
    // mask leaves the mask alone.
    let rc = unsafe { libc::ppoll(set.as_mut_ptr().cast(), set.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
    match Errno::result(rc) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e),
    }
}
