//! Just enough HTTP to answer a health check: find where a request ends, and the bytes to
//! answer it with. Pure, so the parser and every answer are unit-tested.
//!
//! Every method and path gets the health answer: HAProxy's `option httpchk` sends OPTIONS by
//! default, Kubernetes and Docker GET, some checkers HEAD (which gets no body). Each answer
//! closes the connection, so no request is ever read after the first.

use crate::machine::Health;

/// What the bytes received so far make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Not all of it yet: the blank line that ends the headers has not come.
    Partial,
    /// A whole request; `head` when its method is HEAD.
    Complete { head: bool },
    /// Not HTTP.
    Bad,
}

/// Classify `bytes`, everything a client has sent so far (or what [`compact`] left of it).
pub fn parse(bytes: &[u8]) -> Request {
    // Empty lines before the request line are to be ignored (RFC 9112, 2.2).
    let bytes = &bytes[leading_blank(bytes)..];
    // The request line must look like HTTP as soon as it is whole; garbage is answered at
    // once instead of holding a slot until the deadline.
    let line_end = bytes.iter().position(|&b| b == b'\n');
    if let Some(end) = line_end {
        if !request_line(&bytes[..end]) {
            return Request::Bad;
        }
    } else if bytes.len() > 1 && !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r') {
        return Request::Bad;
    }
    let Some(end) = line_end else { return Request::Partial };
    // Headers end at an empty line: CRLF CRLF, or bare LFs from a lenient client.
    let rest = &bytes[end + 1..];
    let mut line_start = 0;
    for (i, &b) in rest.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &rest[line_start..i];
        if line.is_empty() || line == b"\r" {
            return Request::Complete { head: bytes.starts_with(b"HEAD ") };
        }
        line_start = i + 1;
    }
    Request::Partial
}

fn leading_blank(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len())
}

/// Make room in a full buffer whose request is still [`Request::Partial`]: the headers are
/// never looked at, so all of them but their last 3 bytes (which may begin the blank line)
/// are dropped, with one byte standing for them (not a newline, so no blank line is made up).
/// The new length, or `None` when the request line alone fills the buffer.
pub fn compact(buf: &mut [u8]) -> Option<usize> {
    let start = leading_blank(buf);
    let line_end = start + buf[start..].iter().position(|&b| b == b'\n')?;
    let keep_from = buf.len().checked_sub(3)?;
    if keep_from <= line_end + 2 {
        return None;
    }
    buf[line_end + 1] = b'.';
    buf.copy_within(keep_from.., line_end + 2);
    Some(line_end + 5)
}

/// `METHOD SP TARGET SP HTTP/1.x`, optionally ending in CR.
fn request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    parts.next().is_none()
        && !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && !target.is_empty()
        && target.iter().all(u8::is_ascii_graphic)
        && matches!(version, b"HTTP/1.0" | b"HTTP/1.1")
}

/// The answers shim gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200: the program runs, no stop has begun (and the probe, if any, connected).
    Ok,
    /// 503: a stop has begun, or the program is gone.
    Draining,
    /// 503: `--health-probe` could not connect to the program.
    NotListening,
    /// 400: not HTTP, or more than shim reads.
    BadRequest,
}

impl Answer {
    /// The answer to a whole request: the machine's `health`, and `probe`, whether
    /// `--health-probe`'s connect succeeded (`None` without one, or when not tried).
    pub fn of(health: Health, probe: Option<bool>) -> Answer {
        match (health, probe) {
            (Health::Draining, _) => Answer::Draining,
            (Health::Serving, Some(false)) => Answer::NotListening,
            (Health::Serving, _) => Answer::Ok,
        }
    }
}

/// The whole response to send, status line to body.
pub fn response(answer: Answer, head: bool) -> &'static [u8] {
    // Written out in full: no formatting on the path that answers, and the lengths are
    // checked by the tests.
    match (answer, head) {
        (Answer::Ok, false) => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        }
        (Answer::Ok, true) => b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
        (Answer::Draining, false) => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\ndraining",
        (Answer::Draining, true) => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\n",
        (Answer::NotListening, false) => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nnot listening",
        (Answer::NotListening, true) => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n",
        (Answer::BadRequest, _) => b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkers_requests_are_complete_once_their_headers_end() {
        let haproxy = b"OPTIONS / HTTP/1.0\r\ncontent-length: 0\r\n\r\n";
        let kube = b"GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:8099\r\nUser-Agent: kube-probe/1.29\r\nAccept: */*\r\nConnection: close\r\n\r\n";
        let curl_head = b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let bare = b"GET / HTTP/1.0\n\n";
        assert_eq!(parse(haproxy), Request::Complete { head: false });
        assert_eq!(parse(kube), Request::Complete { head: false });
        assert_eq!(parse(curl_head), Request::Complete { head: true });
        assert_eq!(parse(bare), Request::Complete { head: false });
        // Every prefix is only partial: a request may come a byte at a time.
        for whole in [&haproxy[..], &kube[..], &curl_head[..]] {
            for cut in 0..whole.len() {
                assert_eq!(parse(&whole[..cut]), Request::Partial, "{:?}", String::from_utf8_lossy(&whole[..cut]));
            }
        }
    }

    #[test]
    fn empty_lines_before_the_request_are_ignored() {
        assert_eq!(parse(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), Request::Complete { head: false });
        assert_eq!(parse(b"\nHEAD / HTTP/1.0\n\n"), Request::Complete { head: true });
        assert_eq!(parse(b"\r\n"), Request::Partial);
    }

    #[test]
    fn headers_of_any_length_fit_a_small_buffer() {
        let request = [
            b"GET /healthz HTTP/1.1\r\n".as_slice(),
            &b"Cookie: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(60),
            b"\r\n",
        ]
        .concat();
        // Fed in slices of every size into a 64-byte buffer, compacted whenever full: it is
        // complete exactly when the whole request is in, never before.
        for step in 1..40 {
            let mut buf = [0u8; 64];
            let (mut len, mut fed) = (0, 0);
            loop {
                let n = step.min(buf.len() - len).min(request.len() - fed);
                buf[len..len + n].copy_from_slice(&request[fed..fed + n]);
                len += n;
                fed += n;
                match parse(&buf[..len]) {
                    Request::Complete { head } => {
                        assert!(!head);
                        assert_eq!(fed, request.len(), "step {step}: complete too early");
                        break;
                    }
                    Request::Bad => panic!("step {step}: bad at {fed}"),
                    Request::Partial => {
                        assert!(fed < request.len(), "step {step}: not complete at the end");
                        if len == buf.len() {
                            len = compact(&mut buf).expect("the request line fits");
                        }
                    }
                }
            }
        }
        // A request line longer than the buffer cannot be kept.
        let mut long = [b'a'; 64];
        long[..4].copy_from_slice(b"GET ");
        assert_eq!(compact(&mut long), None);
    }

    #[test]
    fn what_is_not_http_is_bad_as_soon_as_it_shows() {
        for garbage in [
            &b"\x16\x03\x01\x02\x00"[..],
            b"hello\n",
            b"GET /\r\n",
            b"get / HTTP/1.1\r\n",
            b"GET / HTTP/2.0\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET / HTTP/1.1 x\r\n",
            b"\0\0",
        ] {
            assert_eq!(parse(garbage), Request::Bad, "{garbage:?}");
        }
    }

    #[test]
    fn a_stop_is_503_whatever_the_probe_says() {
        assert_eq!(Answer::of(Health::Serving, None), Answer::Ok);
        assert_eq!(Answer::of(Health::Serving, Some(true)), Answer::Ok);
        assert_eq!(Answer::of(Health::Serving, Some(false)), Answer::NotListening);
        for probe in [None, Some(true), Some(false)] {
            assert_eq!(Answer::of(Health::Draining, probe), Answer::Draining);
        }
    }

    #[test]
    fn each_response_is_well_formed() {
        for answer in [Answer::Ok, Answer::Draining, Answer::NotListening, Answer::BadRequest] {
            let full = response(answer, false);
            let text = std::str::from_utf8(full).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap().parse().unwrap();
            assert_eq!(length, body.len(), "{text:?}");
            assert!(head.contains("\r\nConnection: close"), "{text:?}");
            if answer != Answer::BadRequest {
                assert_eq!(response(answer, true), &full[..full.len() - body.len()], "HEAD: the same, no body");
            }
        }
        assert!(
            response(Answer::Ok, false).starts_with(b"HTTP/1.1 200 ") && response(Answer::Ok, false).ends_with(b"ok")
        );
        assert!(response(Answer::Draining, false).starts_with(b"HTTP/1.1 503 "));
        assert!(response(Answer::Draining, false).ends_with(b"\r\n\r\ndraining"));
    }
}
