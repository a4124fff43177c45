//! imgfetch — fetch a signed live image over HTTP, verifying its SHA-256 while it streams.
//!
//! ```text
//! imgfetch [--pubkey KEY|--pubkey-file F] [--newer-than N | --if-newer LOCAL_DIR]
//!          [--allow-downgrade] [--min-version N] [--max-size SIZE] [--keep-partial]
//!          [--to DIR] [--timeout S] [--stall-timeout S] [--retries N] [--chunk-size SIZE]
//!          [--progress] [--cache FILE] [--machine-id ID] [--poll INTERVAL]
//!          [--seed FILE]... [--no-delta] URL
//! ```
//!
//! URL is the server directory (`http://HOST[:PORT]/PATH/`, image `squashfs.img`) or the image
//! itself (`.../NAME`). The directory holds `SHA256SUMS`, `SHA256SUMS.minisig` and the image.
//! The manifest is fetched first and its signature checked; with `--newer-than N` the signed
//! `version=` must be above N (the floor /init computed), with `--if-newer DIR` above the highest
//! version signed among the pairs in DIR (primary, .old, .new: a cut mid-rotation must not lower
//! it), else nothing is downloaded; `--min-version N` is never overridden (the initramfs minimum).
//! When the manifest lists dm-verity sidecars (`NAME.verity`, `NAME.roothash`) they are fetched
//! too and checked against their digests.
//! A body of unknown length (no HEAD, no Content-Length) is capped by the room checks (free space
//! of DIR, and MemAvailable on a tmpfs, each minus a reserve) and by `--max-size` (default 16G),
//! and refused past the cap. On failure the `.part` file is removed unless `--keep-partial`.
//! The image is fetched in Range requests of bounded size over src/http.rs (not minreq: see
//! there), every read under a stall deadline and the whole run under `--timeout`: a stalled or
//! cut connection is retried with backoff from where it stopped, `Content-Range` is checked
//! strictly. A server without Range support gets one streaming GET.
//! The download goes to `NAME.part` (resumable across runs while `NAME.part.sha256` names the
//! same digest), is fsynced and renamed to `NAME` only once the digest matches.
//! stdout: the path of the verified image. Exit: 0 fetched and verified, 1 failure (no space,
//! no RAM), 2 usage, 3 verification failed (signature, checksum, rollback), 4 network failure,
//! 5 already up to date (or not yet rolled out to this box).
//!
//! Fleet updates (src/rollout.rs): the trusted comment's `expires=T` refuses a stale or replayed
//! manifest (exit 3); `rollout=PCT` or `rollout=START+DURATION` holds a version back (exit 5)
//! from boxes whose bucket is not open yet. `--cache FILE` remembers the validators of the
//! `.minisig` that last needed nothing, so the next check is one conditional GET: a 304 is
//! "nothing to do", never a reason to accept anything. `--poll INTERVAL` checks after a random
//! delay below INTERVAL, then every INTERVAL, doubling the wait after failures (capped), until
//! an image is fetched.

use crate::digest::{hex, Hasher};
use crate::error::{Code, Context, Error, Result};
use crate::http::{self, Limits, Response};
use crate::manifest;
use crate::osarg;
use crate::progress::{size_str, Progress};
use std::path::{Path, PathBuf};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

pub const SUMMARY: &str = "fetch a newer signed image over HTTP, verified while it streams";

const HELP: &str = "Usage: imgfetch [--pubkey KEY|--pubkey-file F] [--newer-than N|--if-newer DIR]
                [--allow-downgrade] [--min-version N] [--max-size SIZE] [--keep-partial]
                [--to DIR] [--timeout S] [--stall-timeout S] [--retries N]
                [--chunk-size SIZE] [--progress] [--cache FILE] [--machine-id ID]
                [--poll INTERVAL] [--seed FILE]... [--no-delta] URL

Fetch SHA256SUMS (+ .minisig) and the image from URL (http://HOST[:PORT]/PATH/ for
squashfs.img, or http://.../NAME), check the signature, stream the image into DIR/NAME.part
verifying SHA-256 as it arrives, and rename it to DIR/NAME once it matches. Plain HTTP only:
authenticity comes from the minisign signature, not from the transport.

  --pubkey KEY          trust the manifest only if signed by this minisign key (base64)
  --pubkey-file F       the same, key read from a minisign.pub file
  --newer-than N        download only if the signed version=M is above N (exit 5 when
                        equal; an older one is refused)
  --if-newer DIR        the same with N the highest version signed among the image pairs in
                        DIR (NAME, NAME.old, NAME.new with their SHA256SUMS and .minisig)
  --allow-downgrade     with --newer-than/--if-newer, accept an older signed version
  --min-version N       refuse a signed version below N, whatever else is given
  --max-size SIZE       the most a body of unknown length may be (default 16G; the free
                        space and RAM checks usually cap it lower)
  --keep-partial        keep DIR/NAME.part after a failure, to resume it next run
  --to DIR              where to put the image and its manifest (default: .)
  --timeout S           bound the whole run to S seconds (default: none; at most 604800,
                        a week)
  --stall-timeout S     give up on a connection that sends nothing for S s (default 15;
                        at most 604800)
  --retries N           failed requests in a row before giving up (default 5; at most 1000)
  --chunk-size SIZE     bytes per Range request (default 16M; 4K to 1G)
  --progress            bytes, percent, rate and ETA on stderr
  --cache FILE          remember the server's validators of SHA256SUMS.minisig when nothing
                        was to do (or after a fetch); the next check sends If-None-Match /
                        If-Modified-Since and a 304 ends it (exit 5)
  --machine-id ID       this box's identity for phased rollouts (default: the DMI product
                        UUID, else the lowest permanent MAC of a NIC)
  --poll INTERVAL       keep checking: first after a random delay below INTERVAL, then every
                        INTERVAL (30, 30s, 15m, 6h, 1d); failures double the wait, up to
                        6x INTERVAL and 1 h (never below INTERVAL); ends once fetched;
                        at most 7d
  --seed FILE           a local image to reuse blocks from (repeatable): when the signed
                        manifest lists NAME.zidx and the server does Range, only the blocks
                        no seed holds are downloaded (the result is verified whole)
  --no-delta            always download the whole image
  -h, --help            show this help

Exit status: 0 fetched and verified, 1 failure (no space, no RAM), 2 usage,
3 verification failed (also an expired manifest), 4 network failure, 5 already up to
date or not yet rolled out to this box.
";

const MANIFEST: &str = "SHA256SUMS";
const SIG: &str = "SHA256SUMS.minisig";
const BUF: usize = 256 << 10;
const MIB: u64 = 1 << 20;
/// RAM that must stay free beside an image downloaded into tmpfs.
const RAM_RESERVE: u64 = 32 * MIB;
/// Free space that must stay on the target beside an image of unknown length.
const DISK_RESERVE: u64 = 16 * MIB;
/// The largest `--chunk-size`: one Range request need not be bigger, and offsets stay far
/// from overflowing.
const MAX_CHUNK: u64 = 1 << 30;
/// Default cap for a body whose length nobody announced.
const MAX_UNKNOWN: u64 = 16 << 30;

struct Args {
    pubkey: Option<String>,
    pubkey_file: Option<String>,
    if_newer: Option<String>,
    newer_than: Option<u64>,
    min_version: u64,
    max_size: u64,
    keep_partial: bool,
    allow_downgrade: bool,
    to: String,
    timeout: u64,
    stall: u64,
    retries: u32,
    chunk: u64,
    progress: bool,
    seeds: Vec<String>,
    no_delta: bool,
    url: String,
    cache: Option<String>,
    machine_id: Option<String>,
    poll: Option<u64>,
}

fn usage(msg: &str) -> Error {
    Error::usage(format!("{msg}\nTry 'imgfetch --help' for more information."))
}

fn number(opt: &str, v: &str) -> Result<u64> {
    v.parse().map_err(|_| usage(&format!("{opt}: '{v}' is not a number")))
}

/// `n` when at most `max`, else a usage error naming the bound (`shown`, as the help says it).
fn at_most(opt: &str, v: &str, n: u64, max: u64, shown: &str) -> Result<u64> {
    if n > max {
        return Err(usage(&format!("{opt}: '{v}' is out of range (at most {shown})")));
    }
    Ok(n)
}

/// Seconds: at most a week, so that no deadline computed from them overflows the clock.
fn seconds(opt: &str, v: &str) -> Result<u64> {
    let max = crate::cli::MAX_SECONDS;
    at_most(opt, v, number(opt, v)?, max, &format!("{max} s, a week"))
}

fn parse_args(argv: &[String]) -> Result<Args> {
    let mut a = Args {
        pubkey: None,
        pubkey_file: None,
        if_newer: None,
        newer_than: None,
        min_version: 0,
        max_size: MAX_UNKNOWN,
        keep_partial: false,
        allow_downgrade: false,
        to: ".".into(),
        timeout: 0,
        stall: 15,
        retries: 5,
        chunk: 16 * MIB,
        progress: false,
        seeds: Vec::new(),
        no_delta: false,
        url: String::new(),
        cache: None,
        machine_id: None,
        poll: None,
    };
    let mut urls = Vec::new();
    let mut it = crate::cli::normalize(argv.get(1..).unwrap_or(&[]), "").into_iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with('-') {
            urls.push(arg);
            continue;
        }
        let mut value = || it.next().ok_or_else(|| usage(&format!("option '{arg}' requires an argument")));
        match arg.as_str() {
            "-h" | "--help" => return Err(Error::help(HELP)),
            "--pubkey" => a.pubkey = Some(value()?),
            "--pubkey-file" => a.pubkey_file = Some(value()?),
            "--if-newer" => a.if_newer = Some(value()?),
            "--newer-than" => a.newer_than = Some(number(&arg, &value()?)?),
            "--min-version" => a.min_version = number(&arg, &value()?)?,
            "--max-size" => {
                let v = value()?;
                a.max_size = crate::cli::parse_size(&v).map_err(|e| usage(&e))?;
            }
            "--keep-partial" => a.keep_partial = true,
            "--allow-downgrade" => a.allow_downgrade = true,
            "--to" => a.to = value()?,
            "--timeout" => a.timeout = seconds(&arg, &value()?)?,
            "--stall-timeout" => a.stall = seconds(&arg, &value()?)?.max(1),
            "--retries" => {
                let v = value()?;
                a.retries = u32::try_from(at_most(&arg, &v, number(&arg, &v)?, 1000, "1000")?).unwrap_or(1000);
            }
            "--chunk-size" => {
                let v = value()?;
                a.chunk = at_most(&arg, &v, crate::cli::parse_size(&v).map_err(|e| usage(&e))?, MAX_CHUNK, "1G")?.max(4096);
            }
            "--progress" => a.progress = true,
            "--cache" => a.cache = Some(value()?),
            "--machine-id" => a.machine_id = Some(value()?).filter(|v| !v.is_empty()),
            "--poll" => {
                let v = value()?;
                let n = interval(&v).ok_or_else(|| usage(&format!("--poll: '{v}' is not an interval (30, 30s, 15m, 6h, 1d)")))?;
                a.poll = Some(at_most(&arg, &v, n, crate::cli::MAX_SECONDS, &format!("{} s, a week", crate::cli::MAX_SECONDS))?);
            }
            "--seed" => a.seeds.push(value()?),
            "--no-delta" => a.no_delta = true,
            _ => return Err(usage(&format!("unrecognized option '{arg}'"))),
        }
    }
    match urls.as_slice() {
        [u] => a.url = u.clone(),
        [] => return Err(usage("no URL given")),
        _ => return Err(usage("one URL only")),
    }
    if a.pubkey.is_some() && a.pubkey_file.is_some() {
        return Err(usage("--pubkey and --pubkey-file are exclusive"));
    }
    let versioned = a.if_newer.is_some() || a.newer_than.is_some() || a.min_version > 0;
    if versioned && a.pubkey.is_none() && a.pubkey_file.is_none() {
        return Err(usage("--if-newer, --newer-than and --min-version need --pubkey or --pubkey-file (versions are signed)"));
    }
    if a.if_newer.is_some() && a.newer_than.is_some() {
        return Err(usage("--if-newer and --newer-than are exclusive"));
    }
    Ok(a)
}

/// `30`, `30s`, `15m`, `6h`, `1d` → seconds (at least 1).
fn interval(v: &str) -> Option<u64> {
    let (n, unit) = match v.strip_suffix(['s', 'm', 'h', 'd']) {
        Some(n) => (n, v.get(n.len()..)?),
        None => (v, "s"),
    };
    let mul = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 1,
    };
    let n: u64 = Some(n).filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()?;
    n.checked_mul(mul).filter(|&s| s > 0)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The box's identity for rollout buckets, the same at boot and in the running system (the
/// image's /etc/machine-id is the same on every box that boots it): `--machine-id`, else the
/// firmware's DMI product UUID (unless a placeholder of one repeated digit), else the lowest
/// permanent MAC address among the NICs with a device behind them (the lowest, not the first
/// name's: the initramfs calls it eth0, the running system maybe enp1s0). None: the box is in
/// the last bucket, which opens only when the whole fleet does.
fn machine_id(given: Option<&str>) -> Option<(String, &'static str)> {
    if let Some(g) = given {
        return Some((g.to_owned(), "--machine-id"));
    }
    if let Ok(u) = std::fs::read_to_string("/sys/class/dmi/id/product_uuid") {
        let u = u.trim().to_ascii_lowercase();
        let mut digits = u.bytes().filter(|b| b.is_ascii_hexdigit());
        let first = digits.next();
        if first.is_some() && digits.any(|d| Some(d) != first) {
            return Some((u, "DMI product_uuid"));
        }
    }
    let mut macs = Vec::new();
    for e in std::fs::read_dir("/sys/class/net").into_iter().flatten().flatten() {
        let p = e.path();
        let r = |f: &str| std::fs::read_to_string(p.join(f)).map(|s| s.trim().to_owned()).unwrap_or_default();
        let mac = r("address");
        if p.join("device").exists() && r("addr_assign_type") == "0" && r("type") == "1" && mac.len() == 17 && mac != "00:00:00:00:00:00" {
            macs.push(mac);
        }
    }
    macs.sort();
    macs.into_iter().next().map(|m| (m, "NIC MAC"))
}

/// Remember `c` in FILE (through a temporary name); a failure only costs the next check a
/// full manifest.
fn save_cache(file: &str, c: &crate::rollout::Cache) {
    let path = osarg::path(file);
    let tmp = with_suffix(&path, ".tmp");
    let r = std::fs::write(&tmp, c.text()).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        warn(&format!("{file}: cannot remember the validators: {}", crate::error::io_reason(&e)));
    }
}

/// `http://host/dir/` → (`http://host/dir/`, `squashfs.img`); `http://host/dir/x.img` → (dir, `x.img`).
fn split_url(url: &str) -> Result<(String, String)> {
    if url.starts_with("https://") {
        return Err(usage("https is not supported (no TLS stack); the signature makes plain http safe"));
    }
    if http::parse_url(url).is_none() {
        return Err(usage(&format!("'{url}': expected http://HOST[:PORT]/PATH/")));
    }
    if !url[7..].contains('/') {
        return Ok((format!("{url}/"), "squashfs.img".into()));
    }
    let cut = url.rfind('/').unwrap_or(url.len()) + 1;
    let name = &url[cut..];
    if name.is_empty() {
        return Ok((url.to_owned(), "squashfs.img".into()));
    }
    if name == "." || name == ".." || name.contains(['?', '#']) {
        return Err(usage(&format!("'{url}': bad image name")));
    }
    Ok((url[..cut].to_owned(), name.to_owned()))
}

fn warn(msg: &str) {
    let _ = std::io::stderr().write_all(format!("imgfetch: {msg}\n").as_bytes());
}

/// The run's overall deadline, from which each request's own deadline is cut.
struct Clock {
    start: Instant,
    end: Option<Instant>,
    total: u64,
}

impl Clock {
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

fn send(method: &str, url: &str, range: Option<(u64, u64)>, http: &http::Client, ok: &[u16]) -> Result<Response> {
    let r = http.request(method, url, range)?;
    if !ok.contains(&r.status) {
        return Err(Error::network(url, format!("HTTP {} {}", r.status, r.reason)));
    }
    Ok(r)
}

/// A response's `ETag` and `Last-Modified`, when sane enough to be sent back.
type Validators = [Option<String>; 2];

struct Fetcher {
    clock: Clock,
    retries: u32,
    /// One per run: the server's name is looked up once, inside the deadline.
    http: http::Client,
}

impl Fetcher {
    /// Run `f` until it succeeds, fails for good, or fails `retries + 1` times in a row with no
    /// progress in between (`f` reports progress by returning `Err((e, true))`).
    fn retry<T>(&self, obj: &str, mut f: impl FnMut() -> std::result::Result<T, (Error, bool)>) -> Result<T> {
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
            warn(&format!("{e}; retrying in {} ms", pause.as_millis()));
            std::thread::sleep(pause);
        }
    }

    /// A small file (manifest, signature), at most [`manifest::MAX_SIZE`] bytes.
    fn small(&self, url: &str) -> Result<Vec<u8>> {
        self.small_if(url, None)?.map(|(d, _)| d).ok_or_else(|| Error::network(url, "HTTP 304 to an unconditional GET"))
    }

    /// [`Fetcher::small`], conditional on the validators of `cond`: `None` when the server
    /// answers 304 Not Modified; else the body and the server's validators (ETag, Last-Modified).
    fn small_if(&self, url: &str, cond: Option<&crate::rollout::Cache>) -> Result<Option<(Vec<u8>, Validators)>> {
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
    fn head(&self, url: &str) -> Result<(Option<u64>, bool, String)> {
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
}

/// Where the bytes go: the `.part` file, the hash, the progress line.
struct Sink {
    file: File,
    hasher: Hasher,
    pos: u64,
    meter: Option<Progress>,
    name: String,
    stall: u64,
    /// The most a body of unknown length may bring, and what sets that limit.
    cap: (u64, String),
}

impl Sink {
    fn restart(&mut self) -> Result<()> {
        self.file.set_len(0).ctx(&self.name)?;
        use std::io::Seek;
        self.file.rewind().ctx(&self.name)?;
        self.hasher = Hasher::new(false);
        self.pos = 0;
        Ok(())
    }

    /// Copy the body into the sink; `want` bytes exactly when known, else until EOF up to `max`.
    /// Errors carry whether any byte was stored (the next attempt resumes from `pos`).
    fn pump(&mut self, r: &mut Response, url: &str, want: Option<u64>, max: Option<u64>, buf: &mut [u8]) -> std::result::Result<(), (Error, bool)> {
        let start = self.pos;
        // Unknown length: stop one byte past the cap, which is enough to know it was passed.
        let limit = want.or(max.map(|m| m.saturating_add(1))).or(Some(self.cap.0.saturating_add(1).saturating_sub(start)));
        let mut got = 0u64;
        loop {
            let room = limit.map_or(buf.len() as u64, |l| (l - got).min(buf.len() as u64)) as usize;
            if room == 0 {
                break;
            }
            let n = match r.read(&mut buf[..room]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let why = if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                        format!("stalled at {}: nothing received for {} s or out of time", size_str(self.pos), self.stall)
                    } else {
                        crate::error::io_reason(&e)
                    };
                    return Err((Error::network(url, why), self.pos > start));
                }
            };
            if max.is_some_and(|m| self.pos + n as u64 > m) {
                return Err((Error::network(url, format!("server sent more than the {} bytes announced", max.unwrap_or(0))).code(Code::Verify), false));
            }
            if want.is_none() && max.is_none() && self.pos.saturating_add(n as u64) > self.cap.0 {
                return Err((
                    Error::new(url, format!("no length announced and the body goes past the cap of {} ({}): refused", size_str(self.cap.0), self.cap.1)),
                    false,
                ));
            }
            self.file.write_all(&buf[..n]).map_err(|e| (Error::io(&self.name, &e), false))?;
            self.hasher.update(&buf[..n]);
            self.pos += n as u64;
            got += n as u64;
            if let Some(m) = self.meter.as_mut() {
                m.update(self.pos);
            }
        }
        if let Some(w) = want.filter(|&w| got < w) {
            return Err((Error::network(url, format!("connection closed after {got} of {w} bytes")), got > 0));
        }
        Ok(())
    }
}

/// Refuse early when the image cannot fit: free space, and RAM when the target is tmpfs/ramfs.
fn check_room(dir_path: &Path, need: u64) -> Result<()> {
    use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    let dir = dir_path.display().to_string();
    let dir = dir.as_str();
    let vfs = nix::sys::statvfs::statvfs(dir_path).ctx(dir)?;
    let free = vfs.blocks_available() as u64 * vfs.fragment_size() as u64;
    if free < need {
        return Err(Error::new(dir, format!("not enough space: the image needs {}, {} free", size_str(need), size_str(free))));
    }
    let fs = statfs(dir_path).ctx(dir)?.filesystem_type();
    if fs == TMPFS_MAGIC || fs == RAMFS_MAGIC {
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
fn room(dir_path: &Path, max: u64) -> Result<(u64, String)> {
    use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    let dir = dir_path.display().to_string();
    let dir = dir.as_str();
    let vfs = nix::sys::statvfs::statvfs(dir_path).ctx(dir)?;
    let free = (vfs.blocks_available() as u64).saturating_mul(vfs.fragment_size() as u64);
    let mut cap = (max, "--max-size".to_owned());
    let disk = free.saturating_sub(DISK_RESERVE);
    if disk < cap.0 {
        cap = (disk, format!("{dir}: {} free minus {} reserve", size_str(free), size_str(DISK_RESERVE)));
    }
    let fs = statfs(dir_path).ctx(dir)?.filesystem_type();
    if fs == TMPFS_MAGIC || fs == RAMFS_MAGIC {
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
struct Leftovers {
    files: Vec<PathBuf>,
    armed: bool,
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
fn fetch_sidecar(fx: &Fetcher, stall: u64, url: &str, dest_path: &Path, want: &[u8; 32], cap: (u64, String)) -> Result<()> {
    let part_path = with_suffix(dest_path, ".part");
    let (part, dest) = (part_path.display().to_string(), dest_path.display().to_string());
    let file = File::create(&part_path).ctx(&part)?;
    let mut sink = Sink { file, hasher: Hasher::new(false), pos: 0, meter: None, name: part.clone(), stall, cap };
    let mut buf = vec![0u8; BUF];
    fx.retry(url, || {
        sink.restart().map_err(|e| (e, false))?;
        let mut r = send("GET", url, None, &fx.http, &[200]).map_err(|e| (e, false))?;
        let cl = r.content_length();
        if cl.is_some_and(|c| c > sink.cap.0) {
            return Err((Error::new(url, format!("{} is larger than the cap of {} ({})", size_str(cl.unwrap_or(0)), size_str(sink.cap.0), sink.cap.1)), false));
        }
        sink.pump(&mut r, url, cl, None, &mut buf)
    })?;
    let got = std::mem::replace(&mut sink.hasher, Hasher::new(false)).finish();
    if &got.sha256 != want {
        return Err(Error::verify(url, "checksum mismatch with the signed manifest, refused"));
    }
    sink.file.sync_all().ctx(&part)?;
    drop(sink);
    std::fs::rename(&part_path, dest_path).ctx(dest)
}

/// The delta download (src/delta.rs) when it can be tried: the signed manifest lists
/// NAME.zidx, the server does Range. Its index is fetched, checked against the manifest and
/// parsed; any doubt is a line on stderr and None (the full download follows). Some(hasher):
/// NAME.part is complete and hashed.
#[allow(clippy::too_many_arguments)]
fn delta_hook(fx: &Fetcher, m: &manifest::Manifest, murl: &str, base: &str, name: &str, url: &str, size: Option<u64>, ranged: bool, seeds: &[String], part: &Path, want: &[u8; 32]) -> Result<Option<Hasher>> {
    let iname = format!("{name}{}", crate::delta::SUFFIX);
    let Some(entry) = m.get(iname.as_bytes()) else {
        warn(&format!("{murl}: no {iname} listed: downloading in full"));
        return Ok(None);
    };
    let Some(size) = size.filter(|_| ranged) else {
        warn(&format!("{url}: no Range support: downloading in full"));
        return Ok(None);
    };
    // The index is 6 bytes per KiB block at most, plus its header, and never more than
    // delta::MAX_INDEX whatever size the server claims: it is read into RAM before its digest
    // can be checked.
    let iurl = format!("{base}{iname}");
    let cap = (size / 1024).saturating_add(1).saturating_mul(6).saturating_add(24).min(crate::delta::MAX_INDEX);
    let too_big = || {
        let max = crate::delta::MAX_IMAGE >> 30;
        warn(&format!("{iurl}: more than {} (an index covers at most {max} GiB at 4 KiB blocks): downloading in full", size_str(cap)));
        Ok(None)
    };
    let got = fx.retry(&iurl, || {
        let r = send("GET", &iurl, None, &fx.http, &[200]).map_err(|e| (e, false))?;
        if r.content_length().is_some_and(|n| n > cap) {
            return Ok(None);
        }
        let mut data = Vec::new();
        r.take(cap + 1).read_to_end(&mut data).map_err(|e| (Error::network(&iurl, crate::error::io_reason(&e)), false))?;
        Ok(Some(data).filter(|d| d.len() as u64 <= cap))
    });
    let data = match got {
        Ok(Some(d)) => d,
        Ok(None) => return too_big(),
        Err(e) => {
            warn(&format!("{e}: downloading in full"));
            return Ok(None);
        }
    };
    let mut h = Hasher::new(false);
    h.update(&data);
    if h.finish().sha256 != entry.sha256 {
        return Err(Error::verify(&iurl, "checksum mismatch with the signed manifest, refused"));
    }
    let idx = match crate::delta::parse(&data) {
        Ok(i) if i.size == size => i,
        Ok(i) => {
            warn(&format!("{iurl}: indexes {} bytes, the image has {size}: downloading in full", i.size));
            return Ok(None);
        }
        Err(why) => {
            warn(&format!("{iurl}: {why}: downloading in full"));
            return Ok(None);
        }
    };
    let paths: Vec<PathBuf> = seeds.iter().map(|s| osarg::path(s)).collect();
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    match crate::delta::fetch(&fx.http, url, &idx, &refs, part, want)? {
        crate::delta::Outcome::Done(h) => Ok(Some(h)),
        crate::delta::Outcome::Full => Ok(None),
    }
}

/// `path` with `suffix` appended to its last component, bytes kept.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Write `data` to DIR/NAME through a temporary name.
fn put(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let (tmp, path) = (dir.join(format!(".{name}.tmp")), dir.join(name));
    let mut f = File::create(&tmp).ctx(tmp.display())?;
    f.write_all(data).and_then(|_| f.sync_all()).ctx(tmp.display())?;
    std::fs::rename(&tmp, &path).ctx(path.display())
}

pub fn run(argv: &[String]) -> Result<()> {
    let a = parse_args(argv)?;
    let Some(every) = a.poll else { return once(argv) };
    // As RAUC polls: a random first delay spreads a fleet that booted together; failures back
    // off so that a broken server is not hammered, within bounds so that it is noticed back.
    let cap = every.saturating_mul(6).min(every.max(3600));
    let mut r = [0u8; 8];
    crate::sys::random::fill(&mut r)?;
    let mut wait = u64::from_le_bytes(r) % every;
    let mut failures = 0u32;
    loop {
        warn(&format!("{}: next check in {wait} s", a.url));
        std::thread::sleep(Duration::from_secs(wait));
        match once(argv) {
            Err(e) if e.code == Code::NoChange => {
                warn(&e.to_string());
                failures = 0;
                wait = every;
            }
            Err(e) if e.code != Code::Usage && !e.help => {
                warn(&e.to_string());
                failures = failures.saturating_add(1);
                wait = every.saturating_mul(1u64 << failures.min(20)).min(cap).max(every);
            }
            done => return done,
        }
    }
}

fn once(argv: &[String]) -> Result<()> {
    let a = parse_args(argv)?;
    let (base, name) = split_url(&a.url)?;
    let key = match (&a.pubkey, &a.pubkey_file) {
        (Some(k), _) => Some(manifest::pubkey_from_base64(k)?),
        (None, Some(f)) => Some(manifest::pubkey_from_file(&crate::osarg::path(f))?),
        _ => None,
    };
    let now = Instant::now();
    // Checked as well as bounded: an overflowing deadline is a panic (SIGILL in the release).
    let end = match a.timeout {
        0 => None,
        t => Some(now.checked_add(Duration::from_secs(t)).ok_or_else(|| usage(&format!("--timeout: {t} s is too long")))?),
    };
    let clock = Clock { start: now, end, total: a.timeout };
    let http = http::Client::new(Limits { stall: Duration::from_secs(a.stall), deadline: clock.end });
    let fx = Fetcher { clock, retries: a.retries, http };
    let to = osarg::path(&a.to);
    std::fs::metadata(&to).ctx(to.display())?;

    // 1. The manifest, trusted only once its signature verifies over the bytes received. With a
    // cache that still applies, the signature comes first: it changes whenever anything signed
    // does (manifest, version, rollout, expiry), so one conditional GET of it is the whole poll.
    let murl = format!("{base}{MANIFEST}");
    let surl = format!("{base}{SIG}");
    let iurl = format!("{base}{name}");
    let now_unix = unix_now();
    let floor = match (&a.if_newer, &key) {
        (Some(dir), Some(key)) => Some(crate::pairs::floor(&crate::osarg::path(dir), &name, key, 0)),
        _ => a.newer_than,
    };
    let cache = match (&a.cache, &key, floor) {
        // An unreadable or torn cache (it is a hint, written in place on the medium) is a
        // full check, said once: never a failure.
        (Some(f), Some(_), Some(fl)) => std::fs::read(osarg::path(f))
            .ok()
            .and_then(|t| {
                let c = crate::rollout::Cache::parse(&t);
                if c.is_none() {
                    warn(&format!("{f}: not a validators cache; ignored (a full check)"));
                }
                c
            })
            .filter(|c| c.applies(&iurl, fl, now_unix)),
        _ => None,
    };
    let mut sig = Vec::new();
    let mut version = None;
    let mut policy = crate::rollout::Policy::default();
    let mut validators: Validators = [None, None];
    let mut data = Vec::new();
    if cache.is_none() {
        data = fx.small(&murl)?;
    }
    if key.is_some() {
        match fx.small_if(&surl, cache.as_ref())? {
            Some((s, v)) => (sig, validators) = (s, v),
            None => {
                let c = cache.unwrap_or_default();
                let what = if c.waiting { format!("version {} not yet rolled out to this box", c.version) } else { format!("already up to date (version {})", c.version) };
                return Err(Error::new(&a.url, format!("{what}: {SIG} not modified since the last check (HTTP 304)")).code(Code::NoChange));
            }
        }
    }
    if cache.is_some() {
        data = fx.small(&murl)?;
    }
    match &key {
        Some(key) => {
            let tc = manifest::verify_signature(&data, &sig, &surl, key)?;
            version = manifest::version(&tc);
            policy = crate::rollout::parse(&tc).map_err(|e| Error::verify(&surl, e))?;
        }
        None => warn(&format!("{murl}: no public key given: the manifest is not authenticated")),
    }
    if let Some(t) = policy.expires.filter(|&t| now_unix >= t) {
        return Err(Error::verify(&surl, format!("expired at {}: stale or replayed, refused", crate::rollout::utc(t))));
    }
    // What to remember when this manifest turns out to need nothing from a box at `above`.
    let remember = |above: u64, waiting: bool, until: Option<u64>| {
        if let (Some(f), true) = (&a.cache, validators.iter().any(Option::is_some)) {
            let until = until.into_iter().chain(policy.expires).min().unwrap_or(0);
            let [etag, modified] = validators.clone();
            let c = crate::rollout::Cache { url: iurl.clone(), above, version: version.unwrap_or(0), waiting, until, etag, modified };
            save_cache(f, &c);
        }
    };
    if key.is_some() && a.min_version > 0 {
        let v = version.unwrap_or(0);
        if v < a.min_version {
            return Err(Error::verify(&a.url, format!("version {v} is below the minimum {}: refused", a.min_version)));
        }
    }
    if let Some(local) = floor {
        let remote = version.ok_or_else(|| Error::verify(format!("{base}{SIG}"), "no version=N in the trusted comment"))?;
        if remote == local {
            remember(local, false, None);
            return Err(Error::new(&a.url, format!("already up to date (version {local})")).code(Code::NoChange));
        }
        if remote < local && !a.allow_downgrade {
            return Err(Error::verify(&a.url, format!("version {remote} is older than the local version {local}: rollback refused")));
        }
        warn(&format!("{}: version {remote} (local {local})", a.url));
        // A phased rollout gates updates only: a box with no image of its own takes what is signed.
        if let Some(r) = policy.rollout {
            let id = machine_id(a.machine_id.as_deref());
            let b = id.as_ref().map_or(crate::rollout::BUCKETS - 1, |(id, _)| crate::rollout::bucket(id.as_bytes(), remote));
            let src = id.as_ref().map_or("no machine identity: the last bucket", |(_, s)| s);
            if let Err(at) = crate::rollout::gate(r, b, now_unix) {
                remember(local, true, at);
                let when = match (at, r) {
                    (Some(t), _) => format!("open at {}", crate::rollout::utc(t)),
                    (None, crate::rollout::Rollout::Percent(p)) => format!("rollout {}.{:02}% open", p / 100, p % 100),
                    (None, _) => "not open".to_owned(),
                };
                return Err(Error::new(&a.url, format!("version {remote} not yet rolled out to this box (bucket {b}, {when}; {src})")).code(Code::NoChange));
            }
            warn(&format!("{}: version {remote} rolled out to this box (bucket {b}; {src})", a.url));
        }
    }
    let m = manifest::parse(&murl, &data)?;
    let want = m.get(name.as_bytes()).ok_or_else(|| Error::verify(&murl, format!("{name}: not listed")))?.sha256;
    let (vname, rname) = (format!("{name}{}", crate::pairs::VERITY), format!("{name}{}", crate::pairs::ROOTHASH));
    let sidecars = match (m.get(vname.as_bytes()), m.get(rname.as_bytes())) {
        (None, None) => None,
        (Some(v), Some(r)) => Some([(vname.clone(), v.sha256), (rname.clone(), r.sha256)]),
        _ => return Err(Error::verify(&murl, format!("lists only one of {vname} and {rname}"))),
    };

    // 2. Size and room before a byte of the image is fetched.
    let (size, mut ranged, url) = fx.head(&iurl)?;
    let path_file = to.join(&name);
    let (part_file, note_file) = (with_suffix(&path_file, ".part"), with_suffix(&path_file, ".part.sha256"));
    let (path, part) = (path_file.display().to_string(), part_file.display().to_string());
    let want_hex = hex(&want);
    let mut left = Leftovers { files: vec![part_file.clone(), note_file.clone()], armed: !a.keep_partial };
    let mut resume = 0;
    if std::fs::read_to_string(&note_file).is_ok_and(|s| s.trim() == want_hex) {
        resume = std::fs::metadata(&part_file).map(|m| m.len()).unwrap_or(0);
        if size.is_some_and(|s| resume > s) {
            resume = 0;
        }
    }
    if let Some(s) = size {
        check_room(&to, s - resume)?;
    }
    ranged &= size.is_some();

    // 2b. Delta: the blocks the seeds hold come from them, the rest in Range requests; the
    // result is hashed whole and checked in step 4 like a full download.
    let mut delta_hash = None;
    if !a.seeds.is_empty() && !a.no_delta && resume == 0 {
        delta_hash = delta_hook(&fx, &m, &murl, &base, &name, &url, size, ranged, &a.seeds, &part_file, &want)?;
    }

    // 3. Stream into NAME.part; the hash restarts from the bytes already there.
    let mut hasher = Hasher::new(false);
    let delta_done = delta_hash.is_some();
    let file = if let Some(h) = delta_hash.take() {
        hasher = h;
        resume = size.unwrap_or(0);
        OpenOptions::new().read(true).write(true).open(&part_file).ctx(&part)?
    } else if resume > 0 {
        let f = OpenOptions::new().read(true).write(true).open(&part_file).ctx(&part)?;
        let mut buf = vec![0u8; BUF];
        let mut r = (&f).take(resume);
        loop {
            let n = r.read(&mut buf).ctx(&part)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        warn(&format!("{part}: resuming at {}", size_str(resume)));
        f
    } else {
        let f = File::create(&part_file).ctx(&part)?;
        put(&to, &format!("{name}.part.sha256"), want_hex.as_bytes())?;
        f
    };
    let mut sink = Sink {
        file,
        hasher,
        pos: resume,
        meter: a.progress.then(|| Progress::on_stderr(&name, size).resumed_at(resume)),
        name: part.clone(),
        stall: a.stall,
        cap: room(&to, a.max_size)?,
    };
    if resume > 0 && !ranged && !delta_done {
        sink.restart()?;
    }
    let mut buf = vec![0u8; BUF];
    let chunk = a.chunk;
    let fetched = fx.retry(&url, || {
        if delta_done {
            return Ok(());
        }
        if ranged {
            let total = size.unwrap_or(0);
            while sink.pos < total {
                let end = sink.pos.saturating_add(chunk).min(total) - 1;
                let mut r = send("GET", &url, Some((sink.pos, end)), &fx.http, &[200, 206]).map_err(|e| (e, false))?;
                if r.status == 200 {
                    warn(&format!("{url}: the server ignores Range; fetching it in one request"));
                    ranged = false;
                    return Err((Error::network(&url, "no Range support"), true));
                }
                let expect = format!("bytes {}-{end}/{total}", sink.pos);
                let cr = r.header("content-range").unwrap_or_default().to_owned();
                if cr != expect {
                    return Err((Error::network(&url, format!("Content-Range '{cr}', expected '{expect}'")), false));
                }
                let len = end + 1 - sink.pos;
                if r.content_length() != Some(len) {
                    let cl = r.header("content-length").unwrap_or("none").to_owned();
                    return Err((Error::network(&url, format!("Content-Length {cl} for a {len}-byte range")), false));
                }
                sink.pump(&mut r, &url, Some(len), None, &mut buf)?;
            }
            Ok(())
        } else {
            if sink.pos > 0 {
                sink.restart().map_err(|e| (e, false))?;
            }
            let mut r = send("GET", &url, None, &fx.http, &[200]).map_err(|e| (e, false))?;
            let cl = r.content_length();
            if let (None, Some(c)) = (size, cl) {
                check_room(&to, c).map_err(|e| (e, false))?;
            }
            if let (Some(s), Some(c)) = (size, cl) {
                if s != c {
                    return Err((Error::network(&url, format!("Content-Length {c}, but HEAD said {s}")).code(Code::Verify), false));
                }
            }
            sink.pump(&mut r, &url, cl, size.or(cl), &mut buf)
        }
    });
    if let Err(e) = fetched {
        let _ = sink.file.sync_all();
        return Err(e);
    }

    // 4. Only a matching digest gets the image's name.
    let got = std::mem::replace(&mut sink.hasher, Hasher::new(false)).finish();
    if let Some(m) = sink.meter.as_mut() {
        m.finish(sink.pos);
    }
    if got.sha256 != want {
        drop(sink);
        let _ = std::fs::remove_file(&part_file);
        let _ = std::fs::remove_file(&note_file);
        return Err(Error::verify(&iurl, format!("checksum mismatch ({} bytes), image refused", got.bytes)));
    }
    sink.file.sync_all().ctx(&part)?;
    drop(sink);
    // 5. The dm-verity sidecars the manifest lists, so that syncflash can write them beside the
    // image; each is checked against its digest (and the root hash must be one).
    for (f, digest) in sidecars.iter().flatten() {
        let dest = to.join(f);
        left.files.push(with_suffix(&dest, ".part"));
        left.files.push(dest.clone());
        fetch_sidecar(&fx, a.stall, &format!("{base}{f}"), &dest, digest, room(&to, a.max_size)?)?;
    }
    if sidecars.is_some() {
        let rfile = to.join(&rname);
        let rpath = rfile.display().to_string();
        let text = std::fs::read(&rfile).ctx(&rpath)?;
        crate::pairs::parse_roothash(&text).ok_or_else(|| Error::verify(&rpath, "not a root hash (one line of hex)"))?;
    }
    put(&to, MANIFEST, &data)?;
    if key.is_some() {
        put(&to, SIG, &sig)?;
    }
    std::fs::rename(&part_file, &path_file).ctx(&path)?;
    left.armed = false;
    let _ = std::fs::remove_file(&note_file);
    // Once this image is the local one (syncflash), the same manifest needs nothing.
    if let Some(v) = version {
        remember(v, false, None);
    }
    if let Ok(d) = File::open(&to) {
        let _ = d.sync_all();
    }
    let secs = fx.clock.start.elapsed().as_millis() as u64;
    warn(&format!(
        "{path}: {} verified{} in {}.{} s",
        size_str(got.bytes),
        version.map(|v| format!(", version {v},")).unwrap_or_default(),
        secs / 1000,
        secs % 1000 / 100
    ));
    // The exact bytes, for the script that uses the name.
    let mut line = std::os::unix::ffi::OsStrExt::as_bytes(path_file.as_os_str()).to_vec();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line).and_then(|_| out.flush()).ctx("standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = |u: &str| split_url(u).map_err(|e| e.to_string());
        assert_eq!(s("http://h/img/").unwrap(), ("http://h/img/".into(), "squashfs.img".into()));
        assert_eq!(s("http://h:8080").unwrap(), ("http://h:8080/".into(), "squashfs.img".into()));
        assert_eq!(s("http://h/a/b.sqfs").unwrap(), ("http://h/a/".into(), "b.sqfs".into()));
        assert!(s("https://h/").unwrap_err().contains("no TLS"));
        assert!(s("ftp://h/").is_err());
        assert!(s("http:///x").is_err());
        assert!(s("http://h/a/..").is_err());
    }

    #[test]
    fn args() {
        let p = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["imgfetch"]).err().map(|e| e.exit_code()), Some(2));
        assert_eq!(p(&["imgfetch", "--if-newer", "/x", "http://h/"]).err().map(|e| e.exit_code()), Some(2));
        assert_eq!(p(&["imgfetch", "--retries=x", "http://h/"]).err().map(|e| e.exit_code()), Some(2));
        let a = p(&["imgfetch", "--timeout=9", "--chunk-size", "1M", "--to", "/t", "http://h/"]).ok().unwrap();
        assert_eq!((a.timeout, a.chunk, a.to.as_str(), a.stall, a.retries), (9, MIB, "/t", 15, 5));
    }
}
