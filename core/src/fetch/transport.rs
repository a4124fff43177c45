//! How a fetch moves bytes: requests over core/src/http.rs (not minreq: see there) under one
//! overall deadline, retried with backoff from where they stopped, into a `.part` file that is
//! hashed as it grows, within the room the target has.

use crate::digest::Hasher;
use crate::error::{Code, Context, Error, Result};
use crate::http::{self, Response};
use crate::fsutil::with_suffix;
use crate::manifest;
use crate::cli::size_str;
use crate::progress::Progress;
use std::fs::File;
use std::io::{Read, Write};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Read size. A read takes what the socket holds, up to this: on loopback 1 MiB reads return
/// 590-690 KiB on average (1.3-1.7 reads and writes per MiB). CPU (user + sys, both threads)
/// of 1 GiB from nginx by buffer size x count: 64 KiB x 8 1.78 s, 256 KiB x 4 1.65 s,
/// 512 KiB x 4 1.50 s, 1 MiB x 2 1.37 s: fewer hand-overs between the threads (a wake-up and
/// a context switch each) and fewer syscalls.
pub const BUF: usize = 1 << 20;
/// Buffers: one being received and written while the other is hashed. The receiving thread is
/// the slower one (the copies out of the socket and into the page cache), so a third would
/// only wait; with two, peak RSS is 2.9 MiB.
const NBUF: usize = 2;
const MIB: u64 = 1 << 20;
/// RAM that must stay free beside an image downloaded into tmpfs.
const RAM_RESERVE: u64 = 32 * MIB;
/// Free space that must stay on the target beside an image of unknown length.
const DISK_RESERVE: u64 = 16 * MIB;

/// The run's overall deadline, from which each request's own deadline is cut.
pub struct Clock {
    pub start: Instant,
    pub end: Option<Instant>,
    pub total: u64,
}

impl Clock {
    /// From now, `timeout` seconds (0: no deadline). Checked as well as bounded: an overflowing
    /// deadline is a panic (SIGILL in the release).
    pub fn new(timeout: u64) -> Result<Clock> {
        let start = Instant::now();
        let end = match timeout {
            0 => None,
            t => Some(start.checked_add(Duration::from_secs(t)).ok_or_else(|| Error::usage(format!("--timeout: {t} s is too long")))?),
        };
        Ok(Clock { start, end, total: timeout })
    }

    fn left(&self, obj: &str) -> Result<Option<Duration>> {
        match self.end {
            None => Ok(None),
            Some(end) => match end.checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => Ok(Some(d)),
                _ => Err(Error::network(obj, format!("timed out after {} s (--timeout)", self.total))),
            },
        }
    }
}

/// Permanent failures (the server answered, and no retry will change its mind).
fn permanent(e: &Error) -> bool {
    e.code != Code::Network || e.reason.starts_with("HTTP 4")
}

pub fn send(method: &str, url: &str, range: Option<(u64, u64)>, http: &http::Client, ok: &[u16]) -> Result<Response> {
    let r = http.request(method, url, range)?;
    if !ok.contains(&r.status) {
        return Err(Error::network(url, format!("HTTP {} {}", r.status, r.reason)));
    }
    Ok(r)
}

/// A response's `ETag` and `Last-Modified`, when sane enough to be sent back.
pub type Validators = [Option<String>; 2];

/// An attempt's failure, and whether it made progress (the next one resumes, and the count of
/// failures in a row starts over).
pub type Attempt<T> = std::result::Result<T, (Error, bool)>;

pub struct Fetcher {
    pub clock: Clock,
    pub retries: u32,
    /// One per run: the server's name is looked up once, inside the deadline.
    pub http: http::Client,
    /// Where lines for the user go (retries, fallbacks).
    pub note: fn(&str),
}

impl Fetcher {
    /// Run `f` until it succeeds, fails for good, or fails `retries + 1` times in a row with no
    /// progress in between.
    pub fn retry<T>(&self, obj: &str, mut f: impl FnMut() -> Attempt<T>) -> Result<T> {
        let mut failures = 0;
        loop {
            self.clock.left(obj)?;
            let (e, progressed) = match f() {
                Ok(v) => return Ok(v),
                Err(x) => x,
            };
            if permanent(&e) {
                return Err(e);
            }
            failures = if progressed { 1 } else { failures + 1 };
            if failures > self.retries {
                return Err(e);
            }
            let mut pause = Duration::from_millis(250 << (failures - 1).min(5));
            if let Some(left) = self.clock.left(obj)? {
                pause = pause.min(left);
            }
            (self.note)(&format!("{e}; retrying in {} ms", pause.as_millis()));
            std::thread::sleep(pause);
        }
    }

    /// A small file (manifest, signature), at most [`manifest::MAX_SIZE`] bytes.
    pub fn small(&self, url: &str) -> Result<Vec<u8>> {
        self.small_if(url, None)?.map(|(d, _)| d).ok_or_else(|| Error::network(url, "HTTP 304 to an unconditional GET"))
    }

    /// [`Fetcher::small`], conditional on the validators of `cond`: `None` when the server
    /// answers 304 Not Modified; else the body and the server's validators (ETag, Last-Modified).
    pub fn small_if(&self, url: &str, cond: Option<&crate::rollout::Cache>) -> Result<Option<(Vec<u8>, Validators)>> {
        let mut extra = String::new();
        if let Some(c) = cond {
            for (h, v) in [("If-None-Match", &c.etag), ("If-Modified-Since", &c.modified)] {
                if let Some(v) = v {
                    extra.push_str(&format!("{h}: {v}\r\n"));
                }
            }
        }
        self.retry(url, || {
            let r = self.http.request_with("GET", url, None, &extra).map_err(|e| (e, false))?;
            if r.status == 304 && cond.is_some() {
                return Ok(None);
            }
            if r.status != 200 {
                return Err((Error::network(url, format!("HTTP {} {}", r.status, r.reason)), false));
            }
            let v = ["etag", "last-modified"].map(|h| r.header(h).filter(|v| crate::rollout::header_safe(v)).map(str::to_owned));
            let mut data = Vec::new();
            r.take(manifest::MAX_SIZE + 1)
                .read_to_end(&mut data)
                .map_err(|e| (Error::network(url, crate::error::io_reason(&e)), false))?;
            if data.len() as u64 > manifest::MAX_SIZE {
                return Err((Error::verify(url, "larger than 1 MiB"), false));
            }
            Ok(Some((data, v)))
        })
    }

    /// Size, Range support and the URL after redirects. A server refusing HEAD is not an error.
    pub fn head(&self, url: &str) -> Result<(Option<u64>, bool, String)> {
        self.retry(url, || {
            let r = match send("HEAD", url, None, &self.http, &[200]) {
                Ok(r) => r,
                Err(e) if e.reason.starts_with("HTTP 405") || e.reason.starts_with("HTTP 501") => {
                    return Ok((None, false, url.to_owned()))
                }
                Err(e) => return Err((e, false)),
            };
            let ranges = r.header("accept-ranges").is_some_and(|v| v.eq_ignore_ascii_case("bytes"));
            Ok((r.content_length(), ranges, r.url.clone()))
        })
    }

    /// A body of at most `cap` bytes into RAM (the block index); None when the server announces
    /// or sends more.
    pub fn bounded(&self, url: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        self.retry(url, || {
            let r = send("GET", url, None, &self.http, &[200]).map_err(|e| (e, false))?;
            if r.content_length().is_some_and(|n| n > cap) {
                return Ok(None);
            }
            let mut data = Vec::new();
            r.take(cap + 1).read_to_end(&mut data).map_err(|e| (Error::network(url, crate::error::io_reason(&e)), false))?;
            Ok(Some(data).filter(|d| d.len() as u64 <= cap))
        })
    }
}

/// The read buffers of a download, kept from one request to the next ([`NBUF`] of [`BUF`]
/// bytes, touched only as used).
pub struct Bufs(Vec<Vec<u8>>);

impl Default for Bufs {
    fn default() -> Bufs {
        Bufs((0..NBUF).map(|_| vec![0u8; BUF]).collect())
    }
}

/// Buffers between the receiving thread and the hashing one: full ones in order, empty ones
/// back. Neither side waits for room, only for a buffer.
struct Handoff {
    q: Mutex<Queues>,
    cv: Condvar,
}

struct Queues {
    full: VecDeque<(Vec<u8>, usize)>,
    empty: Vec<Vec<u8>>,
    /// No more full buffers will come.
    closed: bool,
    /// Threads in `wait` (a count, not a flag: one woken may not have taken the lock back yet
    /// when the other starts to wait). Wake-ups only then; a notify is a futex call even when
    /// nobody waits.
    waiting: u8,
}

impl Handoff {
    /// Change the queues and wake the other side.
    fn put(&self, f: impl FnOnce(&mut Queues)) {
        if let Ok(mut q) = self.q.lock() {
            f(&mut q);
            if q.waiting > 0 {
                self.cv.notify_all();
            }
        }
    }

    /// Wait until `take` finds something; None once `take` can find nothing more.
    fn wait<T>(&self, mut take: impl FnMut(&mut Queues) -> Option<Option<T>>) -> Option<T> {
        let mut q = self.q.lock().ok()?;
        loop {
            if let Some(v) = take(&mut q) {
                return v;
            }
            q.waiting = q.waiting.saturating_add(1);
            q = self.cv.wait(q).ok()?;
            q.waiting = q.waiting.saturating_sub(1);
        }
    }

    /// The next full buffer, in order; None when closed and drained.
    fn next(&self) -> Option<(Vec<u8>, usize)> {
        self.wait(|q| q.full.pop_front().map(Some).or(q.closed.then_some(None)))
    }

    /// An empty buffer: a returned one, else a new one when none is queued to come back (there
    /// were fewer than two: at most one is being hashed).
    fn free(&self) -> Option<Vec<u8>> {
        self.wait(|q| q.empty.pop().or_else(|| q.full.is_empty().then(|| vec![0u8; BUF])).map(Some))
    }
}

/// Where the bytes go: the `.part` file, the hash, the progress line.
pub struct Sink {
    pub file: File,
    pub hasher: Hasher,
    pub pos: u64,
    pub meter: Option<Progress>,
    pub name: String,
    pub stall: u64,
    /// The most a body of unknown length may bring, and what sets that limit.
    pub cap: (u64, String),
}

impl Sink {
    pub fn restart(&mut self) -> Result<()> {
        self.file.set_len(0).ctx(&self.name)?;
        use std::io::Seek;
        self.file.rewind().ctx(&self.name)?;
        self.hasher = Hasher::new(false);
        self.pos = 0;
        Ok(())
    }

    /// Hash the `len` bytes already in the file (a resumed `.part`), leaving `pos` after them.
    pub fn rehash(&mut self, len: u64) -> Result<()> {
        let mut buf = vec![0u8; BUF];
        let mut r = (&self.file).take(len);
        loop {
            let n = r.read(&mut buf).ctx(&self.name)?;
            if n == 0 {
                break;
            }
            self.hasher.update(&buf[..n]);
        }
        self.pos = len;
        Ok(())
    }

    /// Copy the body into the sink; `want` bytes exactly when known, else until EOF up to `max`.
    /// Errors carry whether any byte was stored (the next attempt resumes from `pos`).
    ///
    /// SHA-256 runs on a second thread, a buffer behind: this thread receives into a buffer and
    /// writes it to the file, then hands it over to be hashed while it receives the next one.
    /// On one thread the hash (about 0.65 s of CPU per GiB) came on top of the receive and
    /// write copies (about 0.85 s) and held imgfetch at 0.6-0.75x a bare `curl -o`; the server
    /// needs little CPU (sendfile), so on 2 cores the two halves overlap. Whatever happens the
    /// thread is joined before this returns: the hash then covers exactly the bytes before `pos`.
    pub fn pump(&mut self, r: &mut Response, url: &str, want: Option<u64>, max: Option<u64>, bufs: &mut Bufs) -> Attempt<()> {
        let start = self.pos;
        // Unknown length: stop one byte past the cap, which is enough to know it was passed.
        let limit = want.or(max.map(|m| m.saturating_add(1))).or(Some(self.cap.0.saturating_add(1).saturating_sub(start)));
        let Sink { file, hasher, pos, meter, name, stall, cap } = self;
        let name = name.as_str();
        let line = Handoff { q: Mutex::new(Queues { full: VecDeque::new(), empty: std::mem::take(&mut bufs.0), closed: false, waiting: 0 }), cv: Condvar::new() };
        let gone = || (Error::new(name, "the hashing thread stopped"), false);
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .spawn_scoped(s, || {
                    while let Some((b, n)) = line.next() {
                        hasher.update(b.get(..n).unwrap_or_default());
                        line.put(|q| q.empty.push(b));
                    }
                })
                .map_err(|e| (Error::new(name, format!("cannot start the hashing thread: {}", crate::error::io_reason(&e))), false))?;
            let mut got = 0u64;
            let done = loop {
                let Some(mut b) = line.free() else { break Err(gone()) };
                // Receive, check and store one buffer's worth: its length, 0 at the end.
                let mut step = || -> Attempt<usize> {
                    let room = limit.map_or(b.len() as u64, |l| l.saturating_sub(got).min(b.len() as u64)) as usize;
                    if room == 0 {
                        return Ok(0);
                    }
                    let n = loop {
                        match r.read(b.get_mut(..room).unwrap_or_default()) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                let why = if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                                    format!("stalled at {}: nothing received for {} s or out of time", size_str(*pos), stall)
                                } else {
                                    crate::error::io_reason(&e)
                                };
                                return Err((Error::network(url, why), *pos > start));
                            }
                        }
                    };
                    let end = pos.saturating_add(n as u64);
                    if let Some(m) = max.filter(|&m| end > m) {
                        return Err((Error::network(url, format!("server sent more than the {m} bytes announced")).code(Code::Verify), false));
                    }
                    if want.is_none() && max.is_none() && end > cap.0 {
                        return Err((
                            Error::new(url, format!("no length announced and the body goes past the cap of {} ({}): refused", size_str(cap.0), cap.1)),
                            false,
                        ));
                    }
                    file.write_all(b.get(..n).unwrap_or_default()).map_err(|e| (Error::io(name, &e), false))?;
                    Ok(n)
                };
                match step() {
                    Ok(0) => {
                        line.put(|q| q.empty.push(b));
                        break Ok(());
                    }
                    Ok(n) => {
                        *pos = pos.saturating_add(n as u64);
                        got = got.saturating_add(n as u64);
                        if let Some(m) = meter.as_mut() {
                            m.update(*pos);
                        }
                        line.put(|q| q.full.push_back((b, n)));
                    }
                    Err(e) => {
                        line.put(|q| q.empty.push(b));
                        break Err(e);
                    }
                }
            };
            // Nothing more to hash: the thread finishes what is queued and ends.
            line.put(|q| q.closed = true);
            let joined = worker.join();
            if let Ok(q) = line.q.lock().as_deref_mut() {
                bufs.0 = std::mem::take(&mut q.empty);
            }
            joined.map_err(|_| gone())?;
            done?;
            if let Some(w) = want.filter(|&w| got < w) {
                return Err((Error::network(url, format!("connection closed after {got} of {w} bytes")), got > 0));
            }
            Ok(())
        })
    }

    /// The image in Range requests of `chunk` bytes from `pos` to `total`. `Err((_, true))`
    /// with `*ranged` cleared: the server ignores Range (the caller starts over in one GET).
    pub fn ranged(&mut self, fx: &Fetcher, url: &str, total: u64, chunk: u64, ranged: &mut bool, bufs: &mut Bufs) -> Attempt<()> {
        while self.pos < total {
            let end = super::policy::range_end(self.pos, chunk, total);
            let mut r = send("GET", url, Some((self.pos, end)), &fx.http, &[200, 206]).map_err(|e| (e, false))?;
            if r.status == 200 {
                (fx.note)(&format!("{url}: the server ignores Range; fetching it in one request"));
                *ranged = false;
                return Err((Error::network(url, "no Range support"), true));
            }
            let expect = format!("bytes {}-{end}/{total}", self.pos);
            let cr = r.header("content-range").unwrap_or_default().to_owned();
            if cr != expect {
                return Err((Error::network(url, format!("Content-Range '{cr}', expected '{expect}'")), false));
            }
            let len = end + 1 - self.pos;
            if r.content_length() != Some(len) {
                let cl = r.header("content-length").unwrap_or("none").to_owned();
                return Err((Error::network(url, format!("Content-Length {cl} for a {len}-byte range")), false));
            }
            self.pump(&mut r, url, Some(len), None, bufs)?;
        }
        Ok(())
    }

    /// The image in one streaming GET, from the start; `size` is what HEAD said, if anything.
    pub fn whole(&mut self, fx: &Fetcher, url: &str, size: Option<u64>, to: &Path, bufs: &mut Bufs) -> Attempt<()> {
        if self.pos > 0 {
            self.restart().map_err(|e| (e, false))?;
        }
        let mut r = send("GET", url, None, &fx.http, &[200]).map_err(|e| (e, false))?;
        let cl = r.content_length();
        if let (None, Some(c)) = (size, cl) {
            check_room(to, c).map_err(|e| (e, false))?;
        }
        if let (Some(s), Some(c)) = (size, cl) {
            if s != c {
                return Err((Error::network(url, format!("Content-Length {c}, but HEAD said {s}")).code(Code::Verify), false));
            }
        }
        self.pump(&mut r, url, cl, size.or(cl), bufs)
    }
}

/// Whether `dir` is a tmpfs or ramfs (its bytes are RAM).
fn in_ram(dir_path: &Path, dir: &str) -> Result<bool> {
    use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    let fs = statfs(dir_path).ctx(dir)?.filesystem_type();
    Ok(fs == TMPFS_MAGIC || fs == RAMFS_MAGIC)
}

/// Refuse early when the image cannot fit: free space, and RAM when the target is tmpfs/ramfs.
pub fn check_room(dir_path: &Path, need: u64) -> Result<()> {
    let dir = dir_path.display().to_string();
    let dir = dir.as_str();
    let vfs = nix::sys::statvfs::statvfs(dir_path).ctx(dir)?;
    let free = vfs.blocks_available() as u64 * vfs.fragment_size() as u64;
    if free < need {
        return Err(Error::new(dir, format!("not enough space: the image needs {}, {} free", size_str(need), size_str(free))));
    }
    if in_ram(dir_path, dir)? {
        let avail = crate::fsutil::mem_available().unwrap_or(0);
        if avail < need.saturating_add(RAM_RESERVE) {
            return Err(Error::new(
                dir,
                format!("not enough RAM: the image needs {} + {} reserve, {} available", size_str(need), size_str(RAM_RESERVE), size_str(avail)),
            ));
        }
    }
    Ok(())
}

/// The most a body of unknown length may be in `dir`: its free space and, on a tmpfs, the RAM
/// available, each minus a reserve, and `max`; with the reason naming the binding limit.
pub fn room(dir_path: &Path, max: u64) -> Result<(u64, String)> {
    let dir = dir_path.display().to_string();
    let dir = dir.as_str();
    let vfs = nix::sys::statvfs::statvfs(dir_path).ctx(dir)?;
    let free = (vfs.blocks_available() as u64).saturating_mul(vfs.fragment_size() as u64);
    let mut cap = (max, "--max-size".to_owned());
    let disk = free.saturating_sub(DISK_RESERVE);
    if disk < cap.0 {
        cap = (disk, format!("{dir}: {} free minus {} reserve", size_str(free), size_str(DISK_RESERVE)));
    }
    if in_ram(dir_path, dir)? {
        let avail = crate::fsutil::mem_available().unwrap_or(0);
        let ram = avail.saturating_sub(RAM_RESERVE);
        if ram < cap.0 {
            cap = (ram, format!("{} of RAM available minus {} reserve", size_str(avail), size_str(RAM_RESERVE)));
        }
    }
    Ok(cap)
}

/// Files removed when the run fails (`.part` files, sidecars not yet vouched for), unless
/// `--keep-partial`: at boot nothing of a failed fetch may stay in RAM.
pub struct Leftovers {
    pub files: Vec<PathBuf>,
    pub armed: bool,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if self.armed {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

/// Fetch a sidecar of the image in one GET into `dest.part`, checked against its listed digest,
/// then renamed to `dest`. Bounded by `cap` (a hash tree is about 1 % of its image).
pub fn sidecar(fx: &Fetcher, stall: u64, url: &str, dest_path: &Path, want: &[u8; 32], cap: (u64, String)) -> Result<()> {
    let part_path = with_suffix(dest_path, ".part");
    let (part, dest) = (part_path.display().to_string(), dest_path.display().to_string());
    let file = File::create(&part_path).ctx(&part)?;
    let mut sink = Sink { file, hasher: Hasher::new(false), pos: 0, meter: None, name: part.clone(), stall, cap };
    let mut bufs = Bufs::default();
    fx.retry(url, || {
        sink.restart().map_err(|e| (e, false))?;
        let mut r = send("GET", url, None, &fx.http, &[200]).map_err(|e| (e, false))?;
        let cl = r.content_length();
        if cl.is_some_and(|c| c > sink.cap.0) {
            return Err((Error::new(url, format!("{} is larger than the cap of {} ({})", size_str(cl.unwrap_or(0)), size_str(sink.cap.0), sink.cap.1)), false));
        }
        sink.pump(&mut r, url, cl, None, &mut bufs)
    })?;
    let got = std::mem::replace(&mut sink.hasher, Hasher::new(false)).finish();
    if &got.sha256 != want {
        return Err(Error::verify(url, "checksum mismatch with the signed manifest, refused"));
    }
    sink.file.sync_all().ctx(&part)?;
    drop(sink);
    std::fs::rename(&part_path, dest_path).ctx(dest)
}

/// Write `data` to DIR/NAME through a temporary name.
pub fn put(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let (tmp, path) = (dir.join(format!(".{name}.tmp")), dir.join(name));
    let mut f = File::create(&tmp).ctx(tmp.display())?;
    f.write_all(data).and_then(|_| f.sync_all()).ctx(tmp.display())?;
    std::fs::rename(&tmp, &path).ctx(path.display())
}

/// The validators cache in FILE, when readable and about this run; an unreadable or torn one
/// (it is a hint, written in place on the medium) is a full check, said once: never a failure.
pub fn load_cache(file: &Path, note: fn(&str)) -> Option<crate::rollout::Cache> {
    let text = std::fs::read(file).ok()?;
    let c = crate::rollout::Cache::parse(&text);
    if c.is_none() {
        note(&format!("{}: not a validators cache; ignored (a full check)", file.display()));
    }
    c
}

/// Remember `c` in FILE (through a temporary name); a failure only costs the next check a
/// full manifest.
pub fn save_cache(path: &Path, c: &crate::rollout::Cache, note: fn(&str)) {
    let tmp = with_suffix(path, ".tmp");
    let r = std::fs::write(&tmp, c.text()).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        note(&format!("{}: cannot remember the validators: {}", path.display(), crate::error::io_reason(&e)));
    }
}

/// The box's identity for rollout buckets, the same at boot and in the running system (the
/// image's /etc/machine-id is the same on every box that boots it): `given`, else what
/// [`super::policy::identity`] makes of the firmware's DMI product UUID and the NICs (the lowest
/// MAC, not the first name's: the initramfs calls it eth0, the running system maybe enp1s0).
pub fn machine_id(given: Option<&str>) -> Option<(String, &'static str)> {
    if let Some(g) = given {
        return Some((g.to_owned(), "--machine-id"));
    }
    let dmi = std::fs::read_to_string("/sys/class/dmi/id/product_uuid").ok();
    let mut nics = Vec::new();
    for e in std::fs::read_dir("/sys/class/net").into_iter().flatten().flatten() {
        let p = e.path();
        let r = |f: &str| std::fs::read_to_string(p.join(f)).map(|s| s.trim().to_owned()).unwrap_or_default();
        nics.push(super::policy::Nic { mac: r("address"), assign_type: r("addr_assign_type"), kind: r("type"), device: p.join("device").exists() });
    }
    super::policy::identity(dmi.as_deref(), &nics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Client, Limits};

    /// A one-connection server on 127.0.0.1 announcing `len` bytes and sending `body`.
    fn serve(len: usize, body: Vec<u8>) -> String {
        crate::http::tests::serve_with(move |c| {
            let _ = c.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes());
            // In pieces, so that reads come back short and buffers change hands many times.
            for piece in body.chunks(3001) {
                let _ = c.write_all(piece);
            }
        })
    }

    fn sink(tag: &str) -> (Sink, PathBuf) {
        let p = std::env::temp_dir().join(format!("liveroot-pump-{}-{tag}", std::process::id()));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
        let s = Sink { file, hasher: Hasher::new(false), pos: 0, meter: None, name: tag.into(), stall: 5, cap: (u64::MAX, "test".into()) };
        (s, p)
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        let mut h = Hasher::new(false);
        h.update(data);
        h.finish().sha256
    }

    /// Whatever way the body ends, the file and the hash hold the same bytes, those before
    /// `pos`: a retry resumes from there and the digest still covers the whole image.
    #[test]
    fn the_hash_covers_exactly_what_was_stored() {
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let http = Client::new(Limits { stall: Duration::from_secs(30), deadline: None });
        // More buffers than the default and small ones: many hand-overs, and all of them can be
        // queued at once (bounded queues with less room than that deadlocked). None at all: the
        // first is made on demand.
        for (tag, sent, bufs) in [
            ("whole", body.len(), Bufs::default()),
            ("cut", 1_234_567, Bufs::default()),
            ("small", body.len(), Bufs((0..8).map(|_| vec![0u8; 4096]).collect())),
            ("none", body.len(), Bufs(Vec::new())),
        ] {
            let mut bufs = bufs;
            let (mut s, path) = sink(tag);
            let url = serve(body.len(), body[..sent].to_vec());
            let mut r = http.request("GET", &url, None).unwrap();
            let res = s.pump(&mut r, &url, Some(body.len() as u64), None, &mut bufs);
            match sent == body.len() {
                true => assert!(res.is_ok(), "{tag}"),
                false => {
                    let (e, progressed) = res.unwrap_err();
                    assert!(progressed && e.to_string().contains("connection closed after 1234567 of 3000000 bytes"), "{tag}: {e}");
                }
            }
            assert_eq!(s.pos, sent as u64, "{tag}");
            let got = std::mem::replace(&mut s.hasher, Hasher::new(false)).finish();
            assert_eq!((got.bytes, got.sha256), (sent as u64, sha(&body[..sent])), "{tag}");
            assert_eq!(std::fs::read(&path).unwrap(), &body[..sent], "{tag}");
            assert!(!bufs.0.is_empty(), "{tag}: the buffers come back for the next request");
            let _ = std::fs::remove_file(&path);
        }
    }
}
