//! imgfetch — the command line of core/src/fetch.rs: fetch a signed live image over HTTP,
//! verified while it streams. Its options and exit codes are documented once, in `Args`
//! (`imgfetch --help`); how a run goes is in core/src/fetch.rs.
//!
//! Values with bounds (seconds, counts, sizes, intervals) are taken as text and checked here,
//! so that a refusal names the option and the bound (`imgfetch: --timeout: '604801' is out of
//! range (at most 604800 s, a week)`), which argh's own parse errors would not.

use crate::cli::{self, MAX_SECONDS};
use crate::error::{Context, Error, Result};
use crate::fetch::{self, policy, Floor, Key, Options, MAX_CHUNK, MAX_UNKNOWN};
use crate::osarg;
use crate::cli::size_str;
use argh::FromArgs;
use std::io::Write;

pub const SUMMARY: &str = "fetch a newer signed image over HTTP, verified while it streams";

#[derive(FromArgs)]
/// Fetch SHA256SUMS (+ .minisig) and the image from URL (http://HOST[:PORT]/PATH/ for
/// squashfs.img, or http://.../NAME), check the signature, stream the image into DIR/NAME.part
/// verifying SHA-256 as it arrives, and rename it to DIR/NAME once it matches; dm-verity
/// sidecars the manifest lists (NAME.verity, NAME.roothash) come with it. Plain HTTP only:
/// authenticity comes from the minisign signature, not from the transport. Stalled or cut
/// transfers resume where they stopped, in Range requests when the server allows. On success
/// the image's path is printed on stdout.
#[argh(
    note = "Fleet updates: a trusted comment's expires=T refuses a stale or replayed manifest;
rollout=PCT or rollout=START+DURATION holds a version back from boxes whose bucket is not
open yet.",
    note = "Exit status: 0 fetched and verified, 1 failure (no space, no RAM), 2 usage,
3 verification failed (also an expired manifest), 4 network failure, 5 already up to
date or not yet rolled out to this box."
)]
struct Args {
    #[argh(option, arg_name = "KEY")]
    /// trust the manifest only if signed by this minisign key (base64)
    pubkey: Option<String>,
    #[argh(option, arg_name = "F")]
    /// the same, key read from a minisign.pub file
    pubkey_file: Option<String>,
    #[argh(option, arg_name = "N")]
    /// download only if the signed version=M is above N (exit 5 when equal; an older one is
    /// refused)
    newer_than: Option<String>,
    #[argh(option, arg_name = "DIR")]
    /// the same with N the highest version signed among the image pairs in DIR (NAME, NAME.old,
    /// NAME.new with their SHA256SUMS and .minisig)
    if_newer: Option<String>,
    #[argh(switch)]
    /// with --newer-than/--if-newer, accept an older signed version
    allow_downgrade: bool,
    #[argh(option, arg_name = "N")]
    /// refuse a signed version below N, whatever else is given
    min_version: Option<String>,
    #[argh(option, arg_name = "SIZE")]
    /// the most a body of unknown length may be (default 16G; the free space and RAM checks
    /// usually cap it lower)
    max_size: Option<String>,
    #[argh(switch)]
    /// keep DIR/NAME.part after a failure, to resume it next run
    keep_partial: bool,
    #[argh(option, arg_name = "DIR")]
    /// where to put the image and its manifest (default: .)
    to: Option<String>,
    #[argh(option, arg_name = "S")]
    /// bound the whole run to S seconds (default: none; at most 604800, a week)
    timeout: Option<String>,
    #[argh(option, arg_name = "S")]
    /// give up on a connection that sends nothing for S s (default 15; at most 604800)
    stall_timeout: Option<String>,
    #[argh(option, arg_name = "N")]
    /// failed requests in a row before giving up (default 5; at most 1000)
    retries: Option<String>,
    #[argh(option, arg_name = "SIZE")]
    /// bytes per Range request (default 16M; 4K to 1G)
    chunk_size: Option<String>,
    #[argh(switch)]
    /// bytes, percent, rate and ETA on stderr
    progress: bool,
    #[argh(option, arg_name = "FILE")]
    /// remember the server's validators of SHA256SUMS.minisig when nothing was to do (or after
    /// a fetch); the next check sends If-None-Match / If-Modified-Since and a 304 ends it
    /// (exit 5)
    cache: Option<String>,
    #[argh(option, arg_name = "ID")]
    /// this box's identity for phased rollouts (default: the DMI product UUID, else the lowest
    /// permanent MAC of a NIC)
    machine_id: Option<String>,
    #[argh(option, arg_name = "INTERVAL")]
    /// keep checking: first after a random delay below INTERVAL, then every INTERVAL (30, 30s,
    /// 15m, 6h, 1d); failures double the wait, up to 6x INTERVAL and 1 h (never below
    /// INTERVAL); ends once fetched; at most 7d
    poll: Option<String>,
    #[argh(option, arg_name = "FILE")]
    /// a local image to reuse blocks from (repeatable): when the signed manifest lists
    /// NAME.zidx and the server does Range, only the blocks no seed holds are downloaded (the
    /// result is verified whole)
    seed: Vec<String>,
    #[argh(switch)]
    /// always download the whole image
    no_delta: bool,
    #[argh(positional, arg_name = "URL")]
    /// the server directory (image squashfs.img) or the image itself
    url: String,
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
    at_most(opt, v, number(opt, v)?, MAX_SECONDS, &format!("{MAX_SECONDS} s, a week"))
}

fn size(opt: &str, v: &str) -> Result<u64> {
    cli::parse_size(v).map_err(|e| usage(&format!("{opt}: {e}")))
}

/// The checked options, and the poll interval if any.
fn options(a: Args) -> Result<(Options, Option<u64>)> {
    if a.pubkey.is_some() && a.pubkey_file.is_some() {
        return Err(usage("--pubkey and --pubkey-file are exclusive"));
    }
    let versioned = a.if_newer.is_some() || a.newer_than.is_some() || a.min_version.is_some();
    if versioned && a.pubkey.is_none() && a.pubkey_file.is_none() {
        return Err(usage("--if-newer, --newer-than and --min-version need --pubkey or --pubkey-file (versions are signed)"));
    }
    let floor = match (a.newer_than, a.if_newer) {
        (Some(_), Some(_)) => return Err(usage("--if-newer and --newer-than are exclusive")),
        (Some(n), None) => Some(Floor::Version(number("--newer-than", &n)?)),
        (None, Some(d)) => Some(Floor::Pairs(osarg::path(&d))),
        (None, None) => None,
    };
    let (base, name) = policy::split_url(&a.url).map_err(|e| usage(&e))?;
    let retries = match a.retries {
        Some(v) => at_most("--retries", &v, number("--retries", &v)?, 1000, "1000")?,
        None => 5,
    };
    let chunk = match a.chunk_size {
        Some(v) => at_most("--chunk-size", &v, size("--chunk-size", &v)?, MAX_CHUNK, "1G")?.max(4096),
        None => 16 << 20,
    };
    let poll = match a.poll {
        Some(v) => {
            let n = cli::parse_interval(&v).ok_or_else(|| usage(&format!("--poll: '{v}' is not an interval (30, 30s, 15m, 6h, 1d)")))?;
            Some(at_most("--poll", &v, n, MAX_SECONDS, &format!("{MAX_SECONDS} s, a week"))?)
        }
        None => None,
    };
    let o = Options {
        base,
        name,
        key: a.pubkey.map(Key::Base64).or(a.pubkey_file.map(|f| Key::File(osarg::path(&f)))),
        floor,
        min_version: a.min_version.map(|v| number("--min-version", &v)).transpose()?.unwrap_or(0),
        allow_downgrade: a.allow_downgrade,
        max_size: a.max_size.map(|v| size("--max-size", &v)).transpose()?.unwrap_or(MAX_UNKNOWN),
        keep_partial: a.keep_partial,
        to: osarg::path(a.to.as_deref().unwrap_or(".")),
        timeout: a.timeout.map(|v| seconds("--timeout", &v)).transpose()?.unwrap_or(0),
        stall: a.stall_timeout.map(|v| seconds("--stall-timeout", &v)).transpose()?.unwrap_or(15).max(1),
        retries: u32::try_from(retries).unwrap_or(1000),
        chunk,
        progress: a.progress,
        cache: a.cache.map(|f| osarg::path(&f)),
        machine_id: a.machine_id.filter(|v| !v.is_empty()),
        seeds: a.seed.iter().map(|s| osarg::path(s)).collect(),
        no_delta: a.no_delta,
        url: a.url,
        note: warn,
    };
    Ok((o, poll))
}

fn warn(msg: &str) {
    let _ = std::io::stderr().write_all(format!("imgfetch: {msg}\n").as_bytes());
}

/// The options given a value, each of which may be repeated (the last counts), as the
/// hand-written parser this replaced allowed and scripts rely on; `--seed` accumulates.
const LAST_WINS: &[&str] = &[
    "--pubkey", "--pubkey-file", "--newer-than", "--if-newer", "--min-version", "--max-size", "--to", "--timeout",
    "--stall-timeout", "--retries", "--chunk-size", "--cache", "--machine-id", "--poll",
];

pub fn run(argv: &[String]) -> Result<()> {
    let (o, poll) = options(cli::parse_last_wins(argv, "", LAST_WINS)?)?;
    let f = match poll {
        Some(every) => fetch::poll(&o, every)?,
        None => fetch::once(&o)?,
    };
    let ms = f.elapsed.as_millis();
    warn(&format!(
        "{}: {} verified{} in {}.{} s",
        f.path.display(),
        size_str(f.bytes),
        f.version.map(|v| format!(", version {v},")).unwrap_or_default(),
        ms / 1000,
        ms % 1000 / 100
    ));
    // The exact bytes, for the script that uses the name.
    let mut line = std::os::unix::ffi::OsStrExt::as_bytes(f.path.as_os_str()).to_vec();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line).and_then(|_| out.flush()).ctx("standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<(Options, Option<u64>)> {
        let argv: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        options(cli::parse_last_wins(&argv, "", LAST_WINS)?)
    }

    fn code(r: Result<(Options, Option<u64>)>) -> Option<i32> {
        r.err().map(|e| if e.help { 0 } else { e.exit_code() })
    }

    #[test]
    fn args() {
        assert_eq!(code(p(&["imgfetch"])), Some(2));
        assert_eq!(code(p(&["imgfetch", "--if-newer", "/x", "http://h/"])), Some(2));
        assert_eq!(code(p(&["imgfetch", "--retries=x", "http://h/"])), Some(2));
        assert_eq!(code(p(&["imgfetch", "http://h/", "http://g/"])), Some(2));
        assert_eq!(code(p(&["imgfetch", "--help"])), Some(0));
        let (a, poll) = p(&["imgfetch", "--timeout=9", "--chunk-size", "1M", "--to", "/t", "http://h/"]).unwrap();
        assert_eq!((a.timeout, a.chunk, a.to.to_str(), a.stall, a.retries, poll), (9, 1 << 20, Some("/t"), 15, 5, None));
        assert_eq!((a.base.as_str(), a.name.as_str()), ("http://h/", "squashfs.img"));
        let (a, poll) = p(&["imgfetch", "--seed", "a", "--seed=b", "--poll", "15m", "--machine-id=", "http://h/x.img"]).unwrap();
        assert_eq!((a.seeds.len(), poll, a.machine_id, a.name.as_str()), (2, Some(900), None, "x.img"));
        let (a, _) = p(&["imgfetch", "--stall-timeout", "2", "--to=/a", "--stall-timeout", "1", "--to", "/b", "http://h/"]).unwrap();
        assert_eq!((a.stall, a.to.to_str()), (1, Some("/b")));
        let e = p(&["imgfetch", "--timeout", "604801", "http://h/"]).err().unwrap();
        assert!(e.to_string().starts_with("--timeout: '604801' is out of range (at most 604800 s, a week)"), "{e}");
    }
}
