//! The addresses `--health` and `--health-probe` take, as text: pure, so every spelling is
//! unit-tested. Only literal addresses (and `localhost`): shim resolves no names, since a
//! FROM-scratch image has no resolver to ask, and a health port bound to whatever a name
//! happened to resolve to at start-up is a surprise.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A listening address, and its host as the user wrote it: logs and errors show that rather
/// than the parsed form, which also spares the binary std's address formatting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub at: SocketAddr,
    host: String,
}

impl Listen {
    /// As written, with `port` (the one the kernel chose, for port 0).
    pub fn shown(&self, port: u16) -> String {
        format!("{}:{port}", self.host)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown(self.at.port()))
    }
}

/// Where to listen for health checks. `:PORT` is every address: IPv6 and IPv4 together
/// (`[::]`; shim falls back to `0.0.0.0` where the kernel has no IPv6). Port 0 lets the
/// kernel choose one, which the log names.
pub fn listen(text: &str) -> Result<Listen, String> {
    let (host, port) = split(text)?;
    let ip = match host {
        "" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        host => ip(host, text)?,
    };
    let written = text.rsplit_once(':').map_or("", |(h, _)| h);
    Ok(Listen { at: SocketAddr::new(ip, port), host: written.to_string() })
}

/// What to connect to for `--health-probe`: the program's own port. `:PORT` is this
/// container's loopback, where the program is always reachable if it listens at all.
pub fn probe(text: &str) -> Result<SocketAddr, String> {
    let (host, port) = split(text)?;
    if port == 0 {
        return Err(format!("'{text}' has port 0: give the program's port"));
    }
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        host => ip(host, text)?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// `HOST:PORT`, `[V6]:PORT` or `:PORT`, as (host without brackets, port).
fn split(text: &str) -> Result<(&str, u16), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("'{text}' has no port: write :8099 or 127.0.0.1:8099"));
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(|| format!("'{text}' has an unclosed '['"))?,
        // An IPv6 address needs brackets, or its last group would read as the port.
        None if host.contains(':') => return Err(format!("'{text}': write an IPv6 address in brackets, [::1]:8099")),
        None => host,
    };
    let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|_| digits)
        .ok_or_else(|| format!("'{port}' in '{text}' is not a port (0-65535)"))?;
    Ok((host, port))
}

fn ip(host: &str, text: &str) -> Result<IpAddr, String> {
    if host == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.parse::<IpAddr>().map_err(|_| format!("'{host}' in '{text}' is not an IP address (names are not looked up)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        listen(s).unwrap().at.to_string()
    }

    #[test]
    fn an_address_is_shown_as_written() {
        assert_eq!(listen(":8099").unwrap().to_string(), ":8099");
        assert_eq!(listen("[::]:8099").unwrap().to_string(), "[::]:8099");
        assert_eq!(listen("localhost:0").unwrap().shown(41234), "localhost:41234");
    }

    #[test]
    fn every_spelling_of_a_listen_address() {
        assert_eq!(ok(":8099"), "[::]:8099");
        assert_eq!(ok("0.0.0.0:8099"), "0.0.0.0:8099");
        assert_eq!(ok("127.0.0.1:8099"), "127.0.0.1:8099");
        assert_eq!(ok("[::]:8099"), "[::]:8099");
        assert_eq!(ok("[::1]:1"), "[::1]:1");
        assert_eq!(ok("localhost:80"), "127.0.0.1:80");
        assert_eq!(ok("127.0.0.1:0"), "127.0.0.1:0", "the kernel picks the port");
    }

    #[test]
    fn a_probe_address_defaults_to_loopback_and_needs_a_port() {
        assert_eq!(probe(":8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(probe("[::1]:8080").unwrap().to_string(), "[::1]:8080");
        assert!(probe(":0").unwrap_err().contains("port 0"));
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (text, says) in [
            ("8099", "no port"),
            ("", "no port"),
            (":", "not a port"),
            (":65536", "not a port"),
            (":-1", "not a port"),
            (":http", "not a port"),
            (":+8099", "not a port"),
            ("::1:8099", "brackets"),
            ("[::1:8099", "unclosed"),
            ("example.com:80", "not an IP address"),
            ("1.2.3:80", "not an IP address"),
        ] {
            let e = listen(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
