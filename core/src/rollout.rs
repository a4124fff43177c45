//! Fleet updates: the trusted comment a release is signed with ([`TrustedComment`], the one
//! definition of its words: mk/sign.sh has it written by `liveroot publish comment`), the bucket
//! a box falls in, and the validators cache imgfetch polls with.
//!
//! Trusted comment words (separated by blanks, `,` or `;`; others are ignored):
//! - `version=N` — the release's version (the floor, downgrades and rollouts compare it).
//! - `rollout=PCT` — `0` to `100`, up to two decimals (`12.5`): the share of boxes that take
//!   version N. `rollout=0` stops a rollout.
//! - `rollout=START+DURATION` — unix seconds: nobody before START, everybody from
//!   START+DURATION, linearly in between.
//! - `expires=UNIXTIME` — from then on the manifest is refused (a stale or replayed one).
//!
//! A box's bucket is the first 8 bytes (big-endian) of SHA-256(machine id ‖ `:` ‖ N in decimal)
//! modulo 10000; it takes version N when its bucket is below the open share in hundredths of a
//! percent. Hashing the version in gives each release another order of boxes, so the same boxes
//! are not always first. Everything here is parsing and checked arithmetic (fuzz target
//! `rollout`).

use sha2::{Digest, Sha256};

pub const BUCKETS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// Open buckets, `0..=BUCKETS` (hundredths of a percent).
    Percent(u64),
    /// Opens linearly from `start` to `start + duration` (unix seconds).
    Linear { start: u64, duration: u64 },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub rollout: Option<Rollout>,
    pub expires: Option<u64>,
}

/// What a release's trusted comment says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrustedComment {
    pub version: u64,
    pub policy: Policy,
}

impl std::fmt::Display for TrustedComment {
    /// `version=N[ rollout=R][ expires=T]`, what mk/sign.sh signs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "version={}", self.version)?;
        if let Some(r) = self.policy.rollout {
            write!(f, " rollout={r}")?;
        }
        if let Some(e) = self.policy.expires {
            write!(f, " expires={e}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Rollout {
    /// `12.5`, `100`, `START+DURATION`: what [`parse`] reads back to the same value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rollout::Percent(n) if n % 100 == 0 => write!(f, "{}", n / 100),
            Rollout::Percent(n) if n % 10 == 0 => write!(f, "{}.{}", n / 100, n % 100 / 10),
            Rollout::Percent(n) => write!(f, "{}.{:02}", n / 100, n % 100),
            Rollout::Linear { start, duration } => write!(f, "{start}+{duration}"),
        }
    }
}

fn words(trusted_comment: &str) -> impl Iterator<Item = &str> {
    trusted_comment.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
}

/// The `N` of the first `version=N` word of a trusted comment.
pub fn version(trusted_comment: &str) -> Option<u64> {
    words(trusted_comment).find_map(|w| w.strip_prefix("version=")).and_then(digits)
}

/// `--rollout` / `rollout=` text as [`parse`] reads it.
pub fn parse_rollout(v: &str) -> Result<Rollout, String> {
    rollout(v).ok_or_else(|| format!("bad rollout={v} (PCT or START+DURATION)"))
}

/// The rollout and expiry words of a trusted comment. A malformed or repeated word is an error:
/// a signed manifest the box cannot read is not one to act on.
pub fn parse(trusted_comment: &str) -> Result<Policy, String> {
    let mut p = Policy::default();
    for w in words(trusted_comment) {
        if let Some(v) = w.strip_prefix("rollout=") {
            if p.rollout.is_some() {
                return Err("rollout= given twice".into());
            }
            p.rollout = Some(parse_rollout(v)?);
        } else if let Some(v) = w.strip_prefix("expires=") {
            if p.expires.is_some() {
                return Err("expires= given twice".into());
            }
            p.expires = Some(digits(v).ok_or_else(|| format!("bad expires={v} (unix time)"))?);
        }
    }
    Ok(p)
}

fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn rollout(v: &str) -> Option<Rollout> {
    if let Some((a, b)) = v.split_once('+') {
        return Some(Rollout::Linear { start: digits(a)?, duration: digits(b)? });
    }
    let v = v.strip_suffix('%').unwrap_or(v);
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.len() > 3 || frac.len() > 2 || (v.contains('.') && frac.is_empty()) {
        return None;
    }
    let f = if frac.is_empty() { 0 } else { digits(frac)? * if frac.len() == 1 { 10 } else { 1 } };
    let n = digits(int)?.checked_mul(100)?.checked_add(f)?;
    (n <= BUCKETS).then_some(Rollout::Percent(n))
}

/// The box's bucket for `version`, `0..BUCKETS`.
pub fn bucket(machine_id: &[u8], version: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(machine_id);
    h.update(b":");
    h.update(version.to_string().as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(d.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(first) % BUCKETS
}

/// Whether `bucket` is open at `now`; when not, the time it opens (unix seconds), if any will.
pub fn gate(r: Rollout, bucket: u64, now: u64) -> Result<(), Option<u64>> {
    match r {
        Rollout::Percent(p) => (bucket < p).then_some(()).ok_or(None),
        Rollout::Linear { start, duration } => {
            // Bucket b opens once floor((now - start) * BUCKETS / duration) > b, that is at
            // start + ceil((b + 1) * duration / BUCKETS).
            let need = (u128::from(bucket) + 1) * u128::from(duration);
            let wait = need.div_ceil(u128::from(BUCKETS));
            let at = u128::from(start).saturating_add(wait).min(u128::from(u64::MAX)) as u64;
            if now >= at {
                Ok(())
            } else {
                Err(Some(at))
            }
        }
    }
}

/// `2026-11-28 16:05:00 UTC` for unix seconds.
pub fn utc(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = crate::civil::from_unix(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// What imgfetch remembers of the last manifest that asked nothing of the box: the server's
/// validators of `SHA256SUMS.minisig`, and the conditions under which "nothing to do" holds:
/// the same image URL, the same local floor (`above`), and until `until` (unix seconds, 0 =
/// no limit: the manifest's expiry, or when this box's bucket opens). Validators are the
/// server's word, not signed: a 304 only ever means "do nothing".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cache {
    pub url: String,
    pub above: u64,
    pub version: u64,
    /// The box waits for its bucket to open (else it is up to date).
    pub waiting: bool,
    pub until: u64,
    pub etag: Option<String>,
    pub modified: Option<String>,
}

/// A validator fit to be sent back in a header: printable ASCII, bounded.
pub fn header_safe(v: &str) -> bool {
    !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| (0x20..0x7f).contains(&b))
}

impl Cache {
    pub fn parse(text: &[u8]) -> Option<Cache> {
        if text.len() > 4096 {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        let mut c = Cache::default();
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let Some((k, v)) = line.split_once('=') else { continue };
            match k {
                "url" => c.url = v.to_owned(),
                "above" => c.above = digits(v)?,
                "version" => c.version = digits(v)?,
                "waiting" => c.waiting = v == "1",
                "until" => c.until = digits(v)?,
                "etag" => c.etag = Some(v.to_owned()).filter(|v| header_safe(v)),
                "modified" => c.modified = Some(v.to_owned()).filter(|v| header_safe(v)),
                _ => {}
            }
        }
        (!c.url.is_empty() && (c.etag.is_some() || c.modified.is_some())).then_some(c)
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "# imgfetch: validators of the last manifest that needed nothing (not trusted: a 304 only skips)\nurl={}\nabove={}\nversion={}\nwaiting={}\nuntil={}\n",
            self.url,
            self.above,
            self.version,
            u8::from(self.waiting),
            self.until
        );
        for (k, v) in [("etag", &self.etag), ("modified", &self.modified)] {
            if let Some(v) = v {
                s.push_str(&format!("{k}={v}\n"));
            }
        }
        s
    }

    /// Whether the remembered "nothing to do" still holds for this run.
    pub fn applies(&self, url: &str, above: u64, now: u64) -> bool {
        self.url == url && self.above == above && (self.until == 0 || now < self.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_comment_reads_back() {
        let tc = |version, rollout, expires| TrustedComment { version, policy: Policy { rollout, expires } };
        assert_eq!(tc(7, None, None).to_string(), "version=7");
        let full = tc(7, Some(Rollout::Percent(1250)), Some(1_800_000_000));
        assert_eq!(full.to_string(), "version=7 rollout=12.5 expires=1800000000");
        for r in (0..=BUCKETS).map(Rollout::Percent).chain([Rollout::Linear { start: 5, duration: u64::MAX }]) {
            let t = tc(u64::MAX, Some(r), Some(u64::MAX)).to_string();
            assert_eq!((version(&t), parse(&t)), (Some(u64::MAX), Ok(Policy { rollout: Some(r), expires: Some(u64::MAX) })), "{t}");
        }
        assert_eq!(Rollout::Percent(5).to_string(), "0.05");
        assert!(parse_rollout("100.01").is_err());
    }

    #[test]
    fn words() {
        assert_eq!(parse("version=3").unwrap(), Policy::default());
        let p = parse("version=3 rollout=12.5 expires=1800000000").unwrap();
        assert_eq!(p, Policy { rollout: Some(Rollout::Percent(1250)), expires: Some(1_800_000_000) });
        assert_eq!(parse("version=3,rollout=100%").unwrap().rollout, Some(Rollout::Percent(10_000)));
        assert_eq!(parse("rollout=0.05").unwrap().rollout, Some(Rollout::Percent(5)));
        assert_eq!(parse("rollout=0").unwrap().rollout, Some(Rollout::Percent(0)));
        assert_eq!(parse("rollout=1764300000+86400").unwrap().rollout, Some(Rollout::Linear { start: 1_764_300_000, duration: 86_400 }));
        for bad in ["rollout=101", "rollout=100.01", "rollout=5.", "rollout=.5", "rollout=1.234", "rollout=-1", "rollout=", "rollout=1+",
            "rollout=+5", "rollout=a", "expires=", "expires=12x", "expires=99999999999999999999999", "rollout=1 rollout=2", "expires=1 expires=1"]
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gates() {
        assert_eq!(gate(Rollout::Percent(0), 0, 0), Err(None));
        assert_eq!(gate(Rollout::Percent(10_000), 9_999, 0), Ok(()));
        assert_eq!(gate(Rollout::Percent(2_500), 2_499, 0), Ok(()));
        assert_eq!(gate(Rollout::Percent(2_500), 2_500, 0), Err(None));
        let r = Rollout::Linear { start: 1000, duration: 10_000 };
        assert_eq!(gate(r, 0, 999), Err(Some(1001)));
        assert_eq!(gate(r, 0, 1001), Ok(()));
        assert_eq!(gate(r, 9_999, 10_999), Err(Some(11_000)));
        assert_eq!(gate(r, 9_999, 11_000), Ok(()));
        assert_eq!(gate(Rollout::Linear { start: 5, duration: 0 }, 9_999, 5), Ok(()));
        assert_eq!(gate(Rollout::Linear { start: u64::MAX, duration: u64::MAX }, 9_999, 0), Err(Some(u64::MAX)));
    }

    #[test]
    fn buckets_are_stable_and_even() {
        // Pinned: a change of the formula reshuffles every fleet's rollout order.
        assert_eq!(bucket(b"box-1", 2), bucket(b"box-1", 2));
        let pinned = bucket(b"4c4c4544-0042-3510-8052-b4c04f4e3332", 7);
        let mut h = Sha256::new();
        h.update(b"4c4c4544-0042-3510-8052-b4c04f4e3332:7");
        let d = h.finalize();
        assert_eq!(pinned, u64::from_be_bytes(d[..8].try_into().unwrap()) % BUCKETS);
        assert_ne!(bucket(b"box-1", 2), bucket(b"box-1", 3), "each version its own order (not a law: these two differ)");
        // 10,000 simulated machine ids: every 10 % step opens 10 % ± 1.5 % of them.
        let ids: Vec<u64> = (0..10_000).map(|i| bucket(format!("machine-{i:05}").as_bytes(), 42)).collect();
        for step in 1..=10u64 {
            let open = ids.iter().filter(|&&b| gate(Rollout::Percent(step * 1000), b, 0).is_ok()).count() as f64;
            let want = step as f64 * 1000.0;
            assert!((open - want).abs() <= 150.0, "{step}0 %: {open} open");
        }
        // The linear form opens the same share at the same fraction of its duration.
        let r = Rollout::Linear { start: 0, duration: 1000 };
        let half = ids.iter().filter(|&&b| gate(r, b, 500).is_ok()).count();
        assert!((4850..=5150).contains(&half), "{half}");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_824_000 + 3_723), "2026-11-28 01:02:03 UTC");
        let _ = utc(u64::MAX);
    }

    #[test]
    fn cache_round_trip() {
        let c = Cache { url: "http://h/x/squashfs.img".into(), above: 2, version: 2, waiting: false, until: 0, etag: Some("\"a-1\"".into()), modified: None };
        assert_eq!(Cache::parse(c.text().as_bytes()), Some(c.clone()));
        assert!(c.applies("http://h/x/squashfs.img", 2, 5));
        assert!(!c.applies("http://h/x/squashfs.img", 1, 5), "another floor");
        assert!(!c.applies("http://h/y/squashfs.img", 2, 5));
        let t = Cache { until: 10, ..c.clone() };
        assert!(t.applies(&t.url, 2, 9) && !t.applies(&t.url, 2, 10));
        // A validator that would inject a header is dropped, and without one there is no cache.
        assert_eq!(Cache::parse(b"url=u\netag=a\nb\n").map(|c| c.etag), Some(Some("a".into())));
        assert_eq!(Cache::parse("url=u\netag=a\u{1}b\n".as_bytes()), None);
        assert_eq!(Cache::parse(b"url=u\nabove=x\netag=a\n"), None);
    }
}
