//! Just enough HTTP/1.1 for imgfetch: GET and HEAD over plain TCP, one request per connection,
//! `Range`, redirects, a deadline for every read (stall detection) under an overall deadline.
//!
//! Why not minreq: its `ResponseLazy` reads the body one byte at a time through an iterator
//! (measured 40 MB/s against curl's 290 MB/s on loopback) and its timeout spawns a thread per
//! request; threads, channels and hash maps cost the binary ~160 KiB. This is ~250 lines.
//! Bodies are `Content-Length` or read-until-close, which the caller bounds with
//! [`Response::limit`]; a missing, bad or conflicting length is never guessed at. Chunked transfer coding (which static file
//! servers do not use for files) is refused. No TLS: images are trusted through their signature.

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 16 << 10;
const MAX_REDIRECTS: usize = 8;
/// 1xx interim responses skipped before the final one; a server sending more is broken.
const MAX_INTERIM: usize = 8;

/// How long a request may wait: `stall` for each connect or read, never past `deadline`.
#[derive(Clone, Copy)]
pub struct Limits {
    pub stall: Duration,
    pub deadline: Option<Instant>,
}

impl Limits {
    fn wait(&self) -> io::Result<Duration> {
        let left = match self.deadline {
            Some(d) => d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()),
            None => Some(self.stall),
        };
        left.map(|l| l.min(self.stall)).ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    }
}

/// A status line and headers, parsed and checked ([`parse_head`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// The body length the headers announce (all `Content-Length` values agree).
    pub content_length: Option<u64>,
}

impl Head {
    /// A header's value (names are case-insensitive); the first when repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parse a response head: the bytes before the blank line (a trailing `\r\n\r\n` and anything
/// after it are ignored). Pure, so it can be fuzzed. Refused, as RFC 9112 section 6.3 says a
/// client must: a Content-Length that is not a decimal number, or several that differ (a body
/// whose end is in doubt is never read "until close"); and a transfer coding other than
/// identity, which this client does not decode.
pub fn parse_head(raw: &[u8]) -> std::result::Result<Head, String> {
    let raw = raw.windows(4).position(|w| w == b"\r\n\r\n").and_then(|i| raw.get(..i)).unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.splitn(3, ' ');
    let proto = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    let status = Some(code)
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()) && proto.starts_with("HTTP/1."))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("not an HTTP response: '{}'", status_line.chars().take(80).collect::<String>()))?;
    let reason = words.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut content_length = None;
    for (_, v) in headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        // `Content-Length: 42, 42` is one value repeated (RFC 9110 section 8.6).
        for part in v.split(',').map(str::trim) {
            let n = Some(part)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(|| format!("bad Content-Length '{v}'"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            content_length = Some(n);
        }
    }
    let head = Head { status, reason, headers, content_length };
    if head.header("transfer-encoding").is_some_and(|v| !v.eq_ignore_ascii_case("identity")) {
        return Err("chunked transfer coding is not supported".to_owned());
    }
    Ok(head)
}

pub struct Response {
    pub status: u16,
    pub reason: String,
    /// The URL that answered, after redirects.
    pub url: String,
    head: Head,
    stream: TcpStream,
    pending: Vec<u8>,
    off: usize,
    /// Body bytes still to come (`None`: until the server closes).
    left: Option<u64>,
    /// Refuse the body past this many bytes ([`Response::limit`]).
    max: Option<u64>,
    got: u64,
    lim: Limits,
    /// The socket's read timeout as last set: set again only when it changes (near the
    /// deadline), not once per read.
    timeout: Option<Duration>,
}

impl Response {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// Bound the body: reading past `max` bytes fails (`InvalidData`, "body larger than N
    /// bytes") instead of filling the disk. Meant for bodies without a Content-Length, which
    /// are read until the server closes; a body of exactly `max` bytes is fine.
    pub fn limit(&mut self, max: u64) {
        self.max = Some(max);
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut cap = self.left.map_or(buf.len() as u64, |l| l.min(buf.len() as u64));
        if let Some(m) = self.max {
            // One byte more than allowed is enough to tell "too large" from "exactly max".
            cap = cap.min(m.saturating_sub(self.got).saturating_add(1));
        }
        let cap = usize::try_from(cap).unwrap_or(buf.len()).min(buf.len());
        if cap == 0 {
            return Ok(0);
        }
        let n = match self.pending.get(self.off..).filter(|p| !p.is_empty()) {
            Some(p) => {
                let n = cap.min(p.len());
                buf[..n].copy_from_slice(&p[..n]);
                self.off += n;
                n
            }
            None => {
                let w = self.lim.wait()?;
                if self.timeout != Some(w) {
                    self.stream.set_read_timeout(Some(w))?;
                    self.timeout = Some(w);
                }
                self.stream.read(&mut buf[..cap])?
            }
        };
        if let Some(l) = self.left.as_mut() {
            *l = l.saturating_sub(n as u64);
        }
        self.got = self.got.saturating_add(n as u64);
        if let Some(m) = self.max.filter(|&m| self.got > m) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("body larger than {m} bytes")));
        }
        Ok(n)
    }
}

/// `http://HOST[:PORT]/PATH` → (host, port, path). `HOST` may be a bracketed IPv6 address.
pub fn parse_url(url: &str) -> Option<(&str, u16, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (auth, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (host, port) = match auth.rfind(':') {
        Some(i) if !auth[i..].contains(']') => (&auth[..i], auth[i + 1..].parse().ok()?),
        _ => (auth, 80),
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    (!host.is_empty() && !host.contains(['@', ' '])).then_some((host, port, path))
}

fn io_err(url: &str, e: &io::Error, lim: &Limits) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            Error::network(url, format!("stalled: nothing received for {} s", lim.stall.as_secs()))
        }
        _ => Error::network(url, crate::error::io_reason(e)),
    }
}

/// Requests under one set of [`Limits`], sharing name lookups: each host is resolved once per
/// `Client` (one per run), and every Range chunk, retry and redirect to it reuses the
/// addresses. The lookup itself runs under the limits too: getaddrinfo has no timeout of its
/// own, so it runs on a thread that is abandoned when the deadline passes.
pub struct Client {
    pub lim: Limits,
    resolved: RefCell<Vec<(String, u16, Vec<SocketAddr>)>>,
}

impl Client {
    pub fn new(lim: Limits) -> Client {
        Client { lim, resolved: RefCell::new(Vec::new()) }
    }

    /// One request; redirects (301 302 303 307 308) are followed to other http:// URLs.
    pub fn request(&self, method: &str, url: &str, range: Option<(u64, u64)>) -> Result<Response> {
        let spec = range.map(|(a, b)| format!("bytes={a}-{b}"));
        self.request_with(method, url, spec.as_deref(), "")
    }

    /// A request with a `Range:` value as given (`bytes=a-b,c-d`: several ranges at once).
    pub fn request_spec(&self, method: &str, url: &str, spec: &str) -> Result<Response> {
        self.request_with(method, url, Some(spec), "")
    }

    /// A request with an optional `Range:` value and `extra` header lines (each ending in
    /// `\r\n`; the caller vouches that they hold no other line breaks), e.g. `If-None-Match`.
    pub fn request_with(&self, method: &str, url: &str, range: Option<&str>, extra: &str) -> Result<Response> {
        let mut url = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let r = self.once(method, &url, range, extra)?;
            if !matches!(r.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(r);
            }
            let loc = r.header("location").ok_or_else(|| Error::network(&url, format!("HTTP {} without Location", r.status)))?;
            url = if loc.starts_with('/') {
                let (host, port, _) = parse_url(&url).ok_or_else(|| Error::new(&url, "bad URL"))?;
                if host.contains(':') {
                    format!("http://[{host}]:{port}{loc}")
                } else {
                    format!("http://{host}:{port}{loc}")
                }
            } else if loc.starts_with("http://") {
                loc.to_owned()
            } else {
                return Err(Error::network(&url, format!("redirected to '{loc}': only http:// is supported")));
            };
        }
        Err(Error::network(&url, "too many redirects"))
    }

    /// The addresses of `host:port`: a literal as is, a name from the cache or one lookup.
    fn resolve(&self, url: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if let Some((_, _, a)) = self.resolved.borrow().iter().find(|(h, p, _)| h == host && *p == port) {
            return Ok(a.clone());
        }
        // Like a connect or a read: at most `stall`, never past the deadline.
        let timed_out = || Error::network(url, format!("{host}: name lookup timed out"));
        let until = Instant::now().checked_add(self.lim.wait().map_err(|_| timed_out())?).ok_or_else(timed_out)?;
        let name = host.to_owned();
        let job = std::thread::spawn(move || (name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        while !job.is_finished() {
            if Instant::now() >= until {
                return Err(timed_out());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let addrs = job
            .join()
            .map_err(|_| Error::network(url, format!("{host}: name lookup failed")))?
            .map_err(|e| Error::network(url, format!("{host}: {}", crate::error::io_reason(&e))))?;
        if addrs.is_empty() {
            return Err(Error::network(url, format!("{host}: no address")));
        }
        self.resolved.borrow_mut().push((host.to_owned(), port, addrs.clone()));
        Ok(addrs)
    }

    fn once(&self, method: &str, url: &str, range: Option<&str>, extra: &str) -> Result<Response> {
        let lim = &self.lim;
        let (host, port, path) = parse_url(url).ok_or_else(|| Error::new(url, "expected http://HOST[:PORT]/PATH"))?;
        let addrs = self.resolve(url, host, port)?;
        let mut last = io::Error::from(io::ErrorKind::AddrNotAvailable);
        let mut stream = None;
        for a in addrs {
            match lim.wait().and_then(|w| TcpStream::connect_timeout(&a, w)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut stream = stream.ok_or_else(|| io_err(url, &last, lim))?;
        let hostport = if port == 80 { host.to_owned() } else { format!("{host}:{port}") };
        let hostport = if host.contains(':') { format!("[{host}]:{port}") } else { hostport };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: liveroot-imgfetch\r\nAccept-Encoding: identity\r\nConnection: close\r\n"
        );
        if let Some(spec) = range {
            req.push_str(&format!("Range: {spec}\r\n"));
        }
        req.push_str(extra);
        req.push_str("\r\n");
        let w = lim.wait().map_err(|e| io_err(url, &e, lim))?;
        stream
            .set_write_timeout(Some(w))
            .and_then(|_| stream.write_all(req.as_bytes()))
            .map_err(|e| io_err(url, &e, lim))?;

        // Status line and headers; whatever body bytes came with them are kept in `pending`.
        // Interim responses (100 Continue, 103 Early Hints) have no body: skip them.
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let mut interim = 0;
        let (head, pending) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = parse_head(buf.get(..end).unwrap_or(&[])).map_err(|why| Error::network(url, why))?;
                let rest = buf.split_off(end.saturating_add(4));
                if !(100..200).contains(&head.status) {
                    break (head, rest);
                }
                interim += 1;
                if head.status == 101 || interim > MAX_INTERIM {
                    return Err(Error::network(url, format!("unexpected HTTP {} {}", head.status, head.reason)));
                }
                buf = rest;
                continue;
            }
            if buf.len() > MAX_HEAD {
                return Err(Error::network(url, "response headers larger than 16 KiB"));
            }
            let w = lim.wait().map_err(|e| io_err(url, &e, lim))?;
            stream.set_read_timeout(Some(w)).map_err(|e| io_err(url, &e, lim))?;
            let n = stream.read(&mut chunk).map_err(|e| io_err(url, &e, lim))?;
            if n == 0 {
                return Err(Error::network(url, "connection closed before a response"));
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        };
        let status = head.status;
        let left = if method == "HEAD" || status == 204 || status == 304 { Some(0) } else { head.content_length };
        Ok(Response {
            status,
            reason: head.reason.clone(),
            url: url.to_owned(),
            head,
            stream,
            pending,
            off: 0,
            left,
            max: None,
            got: 0,
            lim: *lim,
            timeout: None,
        })
    }
}

/// `bytes FIRST-LAST/TOTAL` → (first, last, total), with first ≤ last < total.
pub fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let num = |s: &str| Some(s).filter(|s| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))?.parse::<u64>().ok();
    let (r, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = r.split_once('-')?;
    let (a, b, t) = (num(a)?, num(b)?, num(total)?);
    (a <= b && b < t).then_some((a, b, t))
}

/// The boundary of a `multipart/byteranges; boundary=B` Content-Type (1 to 70 characters, RFC
/// 2046), quoted or not; None for any other type.
pub fn byteranges_boundary(ct: &str) -> Option<String> {
    let mut it = ct.split(';');
    if !it.next()?.trim().eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    let b = it.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim())
    })?;
    let b = b.strip_prefix('"').and_then(|b| b.strip_suffix('"')).unwrap_or(b);
    (!b.is_empty() && b.len() <= 70 && b.bytes().all(|c| c.is_ascii_graphic() || c == b' ')).then(|| b.to_owned())
}

/// A `multipart/byteranges` body, read strictly: CRLF lines of at most 512 bytes, at most two
/// empty lines before the first delimiter and nothing else, at most 16 header lines per part, a
/// `Content-Range` in each, and after each part's data CRLF and the next delimiter. After
/// [`Parts::next`] returns a range, the caller reads exactly its bytes from [`Parts::data`].
pub struct Parts<R> {
    r: R,
    delim: Vec<u8>,
    first: bool,
    done: bool,
}

const MAX_LINE: u64 = 512;

impl<R: std::io::BufRead> Parts<R> {
    pub fn new(r: R, boundary: &str) -> Self {
        Parts { r, delim: format!("--{boundary}").into_bytes(), first: true, done: false }
    }

    pub fn data(&mut self) -> &mut R {
        &mut self.r
    }

    fn line(&mut self) -> std::result::Result<Vec<u8>, String> {
        let mut l = Vec::new();
        (&mut self.r).take(MAX_LINE).read_until(b'\n', &mut l).map_err(|e| format!("multipart: {}", crate::error::io_reason(&e)))?;
        match l.strip_suffix(b"\r\n") {
            Some(s) => Ok(s.to_vec()),
            None if l.is_empty() => Err("multipart: body ends before its closing delimiter".into()),
            None => Err("multipart: line too long or not ended by CRLF".into()),
        }
    }

    /// The next part's (first, last, total), or None after the closing delimiter.
    pub fn next(&mut self) -> std::result::Result<Option<(u64, u64, u64)>, String> {
        if self.done {
            return Ok(None);
        }
        let mut l = self.line()?;
        let mut blank = 0;
        while l.is_empty() && blank < 2 {
            // The CRLF ending the previous part's data, or before the first delimiter.
            blank += 1;
            l = self.line()?;
        }
        if !self.first && blank != 1 {
            return Err("multipart: part data not followed by CRLF and a delimiter".into());
        }
        self.first = false;
        let rest = l.strip_prefix(&self.delim[..]).ok_or("multipart: expected a boundary delimiter")?;
        let rest = rest.strip_suffix(b"--").map(|r| (r, true)).unwrap_or((rest, false));
        if !rest.0.iter().all(|&c| c == b' ' || c == b'\t') {
            return Err("multipart: expected a boundary delimiter".into());
        }
        if rest.1 {
            self.done = true;
            return Ok(None);
        }
        let mut range = None;
        for _ in 0..=16 {
            let h = self.line()?;
            if h.is_empty() {
                return range.map(Some).ok_or_else(|| "multipart: part without Content-Range".into());
            }
            let h = String::from_utf8_lossy(&h);
            let (k, v) = h.split_once(':').ok_or("multipart: bad part header")?;
            if k.trim().eq_ignore_ascii_case("content-range") {
                if range.is_some() {
                    return Err("multipart: two Content-Range headers in a part".into());
                }
                range = Some(parse_content_range(v.trim()).ok_or_else(|| format!("multipart: bad Content-Range '{}'", v.trim()))?);
            }
        }
        Err("multipart: too many part headers".into())
    }
}

/// One request with its own [`Client`] (no lookup shared with other requests).
#[allow(dead_code)] // kept for callers that make a single request
pub fn request(method: &str, url: &str, range: Option<(u64, u64)>, lim: &Limits) -> Result<Response> {
    Client::new(*lim).request(method, url, range)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://h/a/b"), Some(("h", 80, "/a/b")));
        assert_eq!(parse_url("http://10.0.2.100:8080"), Some(("10.0.2.100", 8080, "/")));
        assert_eq!(parse_url("http://[::1]:81/x"), Some(("::1", 81, "/x")));
        assert_eq!(parse_url("http://[::1]/x"), Some(("::1", 80, "/x")));
        assert_eq!(parse_url("http://h:x/"), None);
        assert_eq!(parse_url("http:///x"), None);
        assert_eq!(parse_url("https://h/"), None);
        assert_eq!(parse_url("http://u@h/"), None);
    }

    /// A one-connection server on 127.0.0.1: it reads the request head, then `answer` writes
    /// to the connection. The URL to ask.
    pub(crate) fn serve_with(answer: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            answer(&mut c);
        });
        format!("http://127.0.0.1:{port}/x")
    }

    /// [`serve_with`] answering `reply`.
    fn serve(reply: &'static [u8]) -> String {
        serve_with(move |c| {
            let _ = c.write_all(reply);
        })
    }

    fn lim() -> Limits {
        Limits { stall: Duration::from_secs(5), deadline: Some(Instant::now() + Duration::from_secs(10)) }
    }

    fn get(reply: &'static [u8]) -> Result<(u16, Vec<u8>)> {
        let mut r = request("GET", &serve(reply), None, &lim())?;
        let mut body = Vec::new();
        r.read_to_end(&mut body).map_err(|e| Error::network("body", e.to_string()))?;
        Ok((r.status, body))
    }

    #[test]
    fn interim_responses_are_skipped() {
        let (st, body) = get(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!((st, &body[..]), (200, &b"hello"[..]));
        let (st, body) = get(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-2/9\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((st, &body[..]), (206, &b"abc"[..]));
        let e = get(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err();
        assert_eq!(e.exit_code(), 4);
    }

    #[test]
    fn bad_or_conflicting_content_length_is_refused() {
        for reply in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nhello world!"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ] {
            let e = get(reply).unwrap_err();
            assert_eq!(e.exit_code(), 4, "{e}");
            assert!(e.to_string().contains("Content-Length"), "{e}");
        }
        // The same value twice is one length.
        let (_, body) = get(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\nhello, more").unwrap();
        assert_eq!(body, b"hello");
    }

    #[test]
    fn unknown_length_is_bounded_by_the_caller() {
        let mut r = request("GET", &serve(b"HTTP/1.1 200 OK\r\n\r\n0123456789"), None, &lim()).unwrap();
        r.limit(4);
        let mut body = Vec::new();
        let e = r.read_to_end(&mut body).unwrap_err();
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        let mut r = request("GET", &serve(b"HTTP/1.1 200 OK\r\n\r\n0123456789"), None, &lim()).unwrap();
        r.limit(10);
        let mut body = Vec::new();
        r.read_to_end(&mut body).unwrap();
        assert_eq!(body, b"0123456789");
    }

    #[test]
    fn one_lookup_per_host() {
        let c = Client::new(lim());
        assert_eq!(c.resolve("u", "127.0.0.1", 80).unwrap(), ["127.0.0.1:80".parse().unwrap()]);
        assert!(c.resolved.borrow().is_empty(), "a literal needs no lookup");
        let a = c.resolve("u", "localhost", 81).unwrap();
        assert!(!a.is_empty());
        c.resolved.borrow_mut()[0].2 = vec!["127.0.0.9:81".parse().unwrap()];
        assert_eq!(c.resolve("u", "localhost", 81).unwrap(), ["127.0.0.9:81".parse().unwrap()], "second time from the cache");
        // A lookup that cannot finish before the deadline fails inside it.
        let past = Client::new(Limits { stall: Duration::from_secs(5), deadline: Some(Instant::now()) });
        let e = past.resolve("u", "localhost", 80).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }

    #[test]
    fn multipart_byteranges() {
        assert_eq!(byteranges_boundary("multipart/byteranges; boundary=00000000000000000001"), Some("00000000000000000001".into()));
        assert_eq!(byteranges_boundary("Multipart/Byteranges;boundary=\"a b\""), Some("a b".into()));
        assert_eq!(byteranges_boundary("multipart/mixed; boundary=x"), None);
        assert_eq!(byteranges_boundary("multipart/byteranges"), None);
        assert_eq!(parse_content_range("bytes 0-3/10"), Some((0, 3, 10)));
        for bad in ["bytes 3-2/10", "bytes 0-10/10", "bytes 0-3/*", "bytes -3/10", "bytes 0-+3/10", "items 0-3/10"] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
        let body = b"\r\n--B\r\nContent-Type: x\r\nContent-Range: bytes 0-3/10\r\n\r\nabcd\r\n--B\r\nContent-Range: bytes 8-9/10\r\n\r\nij\r\n--B--\r\nepilogue";
        let mut p = Parts::new(&body[..], "B");
        let mut got = Vec::new();
        while let Some((a, b, t)) = p.next().unwrap() {
            let mut d = vec![0; (b - a + 1) as usize];
            p.data().read_exact(&mut d).unwrap();
            got.push((a, b, t, d));
        }
        assert_eq!(got, [(0, 3, 10, b"abcd".to_vec()), (8, 9, 10, b"ij".to_vec())]);
        // Refused: data longer than its range, no Content-Range, no close delimiter, a foreign
        // boundary, junk before the first delimiter, an endless header line.
        let long_line = [&b"--B\r\nX: "[..], &[b'a'; 600], b"\r\n"].concat();
        for bad in [
            &b"--B\r\nContent-Range: bytes 0-1/10\r\n\r\nabc\r\n--B--\r\n"[..],
            b"--B\r\nContent-Type: x\r\n\r\nab\r\n--B--\r\n",
            b"--B\r\nContent-Range: bytes 0-1/10\r\n\r\nab\r\n",
            b"--C\r\nContent-Range: bytes 0-1/10\r\n\r\nab\r\n--C--\r\n",
            b"junk\r\n--B\r\nContent-Range: bytes 0-1/10\r\n\r\nab\r\n--B--\r\n",
            &long_line,
        ] {
            let mut p = Parts::new(bad, "B");
            let mut err = false;
            for _ in 0..4 {
                match p.next() {
                    Ok(Some((a, b, _))) => {
                        let mut d = vec![0; (b - a + 1) as usize];
                        let _ = p.data().read_exact(&mut d);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        err = true;
                        break;
                    }
                }
            }
            assert!(err, "accepted {:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.0 404 Not Found\r\nX: a:b\r\nnocolon\r\n\r\nbody").unwrap();
        assert_eq!((h.status, h.reason.as_str(), h.header("x"), h.content_length), (404, "Not Found", Some("a:b"), None));
        assert!(parse_head(b"HTTP/2 200 OK").is_err());
        assert!(parse_head(b"HTTP/1.1 20 OK").is_err());
        assert!(parse_head(b"HTTP/1.1 +20 OK").is_err());
        assert!(parse_head(b"HTTP/1.1 999 OK").is_err());
        assert!(parse_head(b"").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").is_err());
        assert_eq!(parse_head(b"HTTP/1.1 200 \xff\r\nContent-Length: 0").unwrap().content_length, Some(0));
    }
}
