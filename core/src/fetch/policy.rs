//! What a fetch decides, apart from moving bytes: where the image is, whether the signed version
//! is one to take, whether this box's rollout bucket is open, what a `.part` left by an earlier
//! run is worth, whether a delta is worth trying, and how long a poll waits. Pure functions, so
//! that each decision has a unit test instead of an HTTP server.

use crate::error::{Code, Error, Result};
use crate::manifest::Manifest;
use crate::manifest::{ROOTHASH, SIG, VERITY};
use crate::rollout::{self, Rollout};

/// The image a directory URL means.
pub const DEFAULT_NAME: &str = "squashfs.img";

/// `http://host/dir/` → (`http://host/dir/`, `squashfs.img`); `http://host/dir/x.img` → (dir,
/// `x.img`). The error is a usage message.
pub fn split_url(url: &str) -> std::result::Result<(String, String), String> {
    if url.starts_with("https://") {
        return Err("https is not supported (no TLS stack); the signature makes plain http safe".into());
    }
    if crate::http::parse_url(url).is_none() {
        return Err(format!("'{url}': expected http://HOST[:PORT]/PATH/"));
    }
    if !url[7..].contains('/') {
        return Ok((format!("{url}/"), DEFAULT_NAME.into()));
    }
    let cut = url.rfind('/').unwrap_or(url.len()) + 1;
    let name = &url[cut..];
    if name.is_empty() {
        return Ok((url.to_owned(), DEFAULT_NAME.into()));
    }
    if name == "." || name == ".." || name.contains(['?', '#']) {
        return Err(format!("'{url}': bad image name"));
    }
    Ok((url[..cut].to_owned(), name.to_owned()))
}

/// The version rules of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Versions {
    /// Whether the manifest was authenticated (versions mean something only then).
    pub keyed: bool,
    /// `--min-version`: never lifted.
    pub min: u64,
    /// The local version to be above (`--newer-than`, or the highest pair of `--if-newer`).
    pub floor: Option<u64>,
    pub allow_downgrade: bool,
}

/// What the signed version asks of this box.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No floor: fetch whatever is signed.
    Fetch,
    /// The local version equals the signed one: nothing to do (exit 5).
    UpToDate(u64),
    /// Newer than the floor (or older, with `--allow-downgrade`): fetch, subject to rollout.
    Update { remote: u64, local: u64 },
}

/// Judge the signed `remote` version; `url` and `sig_url` name the objects in refusals.
pub fn judge(v: Versions, remote: Option<u64>, url: &str, sig_url: &str) -> Result<Step> {
    if v.keyed && v.min > 0 {
        let r = remote.unwrap_or(0);
        if r < v.min {
            return Err(Error::verify(url, format!("version {r} is below the minimum {}: refused", v.min)));
        }
    }
    let Some(local) = v.floor else { return Ok(Step::Fetch) };
    let remote = remote.ok_or_else(|| Error::verify(sig_url, "no version=N in the trusted comment"))?;
    if remote == local {
        return Ok(Step::UpToDate(local));
    }
    if remote < local && !v.allow_downgrade {
        return Err(Error::verify(url, format!("version {remote} is older than the local version {local}: rollback refused")));
    }
    Ok(Step::Update { remote, local })
}

/// A manifest whose `expires=` has passed is stale or replayed.
pub fn check_expiry(expires: Option<u64>, now: u64, sig_url: &str) -> Result<()> {
    match expires.filter(|&t| now >= t) {
        Some(t) => Err(Error::verify(sig_url, format!("expired at {}: stale or replayed, refused", rollout::utc(t)))),
        None => Ok(()),
    }
}

/// A rollout that holds this box back: when its bucket opens (if a time is known) and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Held {
    pub at: Option<u64>,
    pub why: String,
}

/// Whether `remote` is rolled out to the box `id` (its identity and where it came from; None is
/// the last bucket, which opens only with the whole fleet). Ok: the line to say.
pub fn rolled_out(r: Rollout, id: Option<(&str, &str)>, remote: u64, now: u64) -> std::result::Result<String, Held> {
    let b = id.map_or(rollout::BUCKETS - 1, |(id, _)| rollout::bucket(id.as_bytes(), remote));
    let src = id.map_or("no machine identity: the last bucket", |(_, s)| s);
    match rollout::gate(r, b, now) {
        Ok(()) => Ok(format!("version {remote} rolled out to this box (bucket {b}; {src})")),
        Err(at) => {
            let when = match (at, r) {
                (Some(t), _) => format!("open at {}", rollout::utc(t)),
                (None, Rollout::Percent(p)) => format!("rollout {}.{:02}% open", p / 100, p % 100),
                (None, _) => "not open".to_owned(),
            };
            Err(Held { at, why: format!("version {remote} not yet rolled out to this box (bucket {b}, {when}; {src})") })
        }
    }
}

/// The "nothing to do" a 304 to the conditional GET of the signature means, from the cache that
/// was sent with it.
pub fn not_modified(url: &str, c: &rollout::Cache) -> Error {
    let what = if c.waiting { format!("version {} not yet rolled out to this box", c.version) } else { format!("already up to date (version {})", c.version) };
    Error::new(url, format!("{what}: {SIG} not modified since the last check (HTTP 304)")).code(Code::NoChange)
}

/// The cache entry for a manifest that needs nothing from a box at `above`: it lasts until the
/// rollout opens or the manifest expires, whichever is first (0: no end).
pub fn remember(url: &str, above: u64, version: Option<u64>, waiting: bool, until: Option<u64>, expires: Option<u64>, validators: [Option<String>; 2]) -> rollout::Cache {
    let until = until.into_iter().chain(expires).min().unwrap_or(0);
    let [etag, modified] = validators;
    rollout::Cache { url: url.to_owned(), above, version: version.unwrap_or(0), waiting, until, etag, modified }
}

/// What the manifest lists for image `name`: its digest and, when listed, its dm-verity
/// sidecars (both or neither) with theirs.
pub type Sidecars = Option<[(String, [u8; 32]); 2]>;

/// A release's boot files the manifest lists, each with its digest: its kernel and initramfs
/// (both or neither) and, for Secure Boot, its signed unified image (only with them).
pub type BootFiles = Option<Vec<(String, [u8; 32])>>;

/// What the manifest lists for image `name`: its digest, its sidecars and a release's boot files
/// (fetched and checked as the sidecars are), by the rules of `pairs::check_files`.
pub fn wanted_all(m: &Manifest, name: &str, murl: &str) -> Result<([u8; 32], Sidecars, BootFiles)> {
    let (want, sidecars) = wanted(m, name, murl)?;
    let boot = crate::pairs::boot_listed(m, murl)?.map(|b| b.named().into_iter().map(|(n, d)| (n.to_owned(), d)).collect());
    Ok((want, sidecars, boot))
}

pub fn wanted(m: &Manifest, name: &str, murl: &str) -> Result<([u8; 32], Sidecars)> {
    let want = m.get(name.as_bytes()).ok_or_else(|| Error::verify(murl, format!("{name}: not listed")))?.sha256;
    let (vname, rname) = (format!("{name}{VERITY}"), format!("{name}{ROOTHASH}"));
    let sidecars = match (m.get(vname.as_bytes()), m.get(rname.as_bytes())) {
        (None, None) => None,
        (Some(v), Some(r)) => Some([(vname, v.sha256), (rname, r.sha256)]),
        _ => return Err(Error::verify(murl, format!("lists only one of {vname} and {rname}"))),
    };
    Ok((want, sidecars))
}

/// Where a download resumes: the length of the `.part` an earlier run left, when its note names
/// the same digest and it is no longer than the image; else 0.
pub fn resume_at(note: Option<&str>, want_hex: &str, part_len: u64, size: Option<u64>) -> u64 {
    match note {
        Some(n) if n.trim() == want_hex && size.is_none_or(|s| part_len <= s) => part_len,
        _ => 0,
    }
}

/// A delta is tried only with seeds, unless refused, and on a fresh download (a resumed `.part`
/// already holds what a delta would write).
pub fn try_delta(seeds: usize, no_delta: bool, resume: u64) -> bool {
    seeds > 0 && !no_delta && resume == 0
}

/// The most a block index for an image of `size` bytes may be: 6 bytes per KiB block plus its
/// header, and never more than [`crate::delta::MAX_INDEX`] whatever size the server claims (it
/// is read into RAM before its digest can be checked).
pub fn index_cap(size: u64) -> u64 {
    (size / 1024).saturating_add(1).saturating_mul(6).saturating_add(24).min(crate::delta::MAX_INDEX)
}

/// The inclusive end of the Range request starting at `pos` (< `total`).
pub fn range_end(pos: u64, chunk: u64, total: u64) -> u64 {
    pos.saturating_add(chunk).min(total).saturating_sub(1)
}

/// The polling schedule: `first` from a random draw, then `every`, doubling after each failure
/// in a row up to 6 × `every` or an hour, whichever is less (never below `every`).
pub fn first_wait(every: u64, random: u64) -> u64 {
    random % every.max(1)
}

pub fn next_wait(every: u64, failures: u32) -> u64 {
    let cap = every.saturating_mul(6).min(every.max(3600));
    every.saturating_mul(1u64 << failures.min(20)).min(cap).max(every)
}

/// The box's identity for rollout buckets from what the system shows (see
/// `transport::machine_id` for where each comes from): a DMI product UUID unless a placeholder
/// of one repeated digit, else the lowest permanent MAC of a NIC with a device behind it.
pub fn identity(dmi_uuid: Option<&str>, nics: &[Nic]) -> Option<(String, &'static str)> {
    if let Some(u) = dmi_uuid {
        let u = u.trim().to_ascii_lowercase();
        let mut digits = u.bytes().filter(|b| b.is_ascii_hexdigit());
        let first = digits.next();
        if first.is_some() && digits.any(|d| Some(d) != first) {
            return Some((u, "DMI product_uuid"));
        }
    }
    let mut macs: Vec<&str> = nics
        .iter()
        .filter(|n| n.device && n.assign_type == "0" && n.kind == "1" && n.mac.len() == 17 && n.mac != "00:00:00:00:00:00")
        .map(|n| n.mac.as_str())
        .collect();
    macs.sort_unstable();
    macs.first().map(|m| (m.to_string(), "NIC MAC"))
}

/// What /sys/class/net says of one interface.
#[derive(Debug, Default)]
pub struct Nic {
    pub mac: String,
    /// `addr_assign_type`: "0" is a permanent address.
    pub assign_type: String,
    /// `type`: "1" is Ethernet.
    pub kind: String,
    /// Whether a device is behind it (not a bridge, not a veth).
    pub device: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = split_url;
        assert_eq!(s("http://h/img/").unwrap(), ("http://h/img/".into(), "squashfs.img".into()));
        assert_eq!(s("http://h:8080").unwrap(), ("http://h:8080/".into(), "squashfs.img".into()));
        assert_eq!(s("http://h/a/b.sqfs").unwrap(), ("http://h/a/".into(), "b.sqfs".into()));
        assert!(s("https://h/").unwrap_err().contains("no TLS"));
        assert!(s("ftp://h/").is_err());
        assert!(s("http:///x").is_err());
        assert!(s("http://h/a/..").is_err());
        assert!(s("http://h/a/x?y").is_err());
    }

    fn v(floor: Option<u64>, min: u64, allow_downgrade: bool) -> Versions {
        Versions { keyed: true, min, floor, allow_downgrade }
    }

    fn why(r: Result<Step>) -> (i32, String) {
        let e = r.unwrap_err();
        (e.exit_code(), e.to_string())
    }

    #[test]
    fn versions() {
        assert_eq!(judge(v(None, 0, false), None, "u", "s").unwrap(), Step::Fetch);
        assert_eq!(judge(v(None, 0, false), Some(7), "u", "s").unwrap(), Step::Fetch);
        assert_eq!(judge(v(Some(2), 0, false), Some(2), "u", "s").unwrap(), Step::UpToDate(2));
        assert_eq!(judge(v(Some(2), 0, false), Some(3), "u", "s").unwrap(), Step::Update { remote: 3, local: 2 });
        assert_eq!(why(judge(v(Some(3), 0, false), Some(2), "u", "s")), (3, "u: version 2 is older than the local version 3: rollback refused".into()));
        assert_eq!(judge(v(Some(3), 0, true), Some(2), "u", "s").unwrap(), Step::Update { remote: 2, local: 3 });
        // The minimum holds whatever else is given, and no version is version 0.
        assert_eq!(why(judge(v(Some(3), 3, true), Some(2), "u", "s")), (3, "u: version 2 is below the minimum 3: refused".into()));
        assert_eq!(why(judge(v(None, 1, false), None, "u", "s")).1, "u: version 0 is below the minimum 1: refused");
        assert_eq!(why(judge(v(Some(1), 0, false), None, "u", "s")), (3, "s: no version=N in the trusted comment".into()));
        // Unsigned: --min-version means nothing (the applet refuses it without a key).
        assert_eq!(judge(Versions { keyed: false, min: 5, ..Default::default() }, None, "u", "s").unwrap(), Step::Fetch);
    }

    #[test]
    fn expiry() {
        assert!(check_expiry(None, 100, "s").is_ok());
        assert!(check_expiry(Some(101), 100, "s").is_ok());
        let e = check_expiry(Some(100), 100, "s").unwrap_err();
        assert_eq!((e.exit_code(), e.to_string()), (3, "s: expired at 1970-01-01 00:01:40 UTC: stale or replayed, refused".into()));
    }

    #[test]
    fn rollouts() {
        let id = Some(("box", "--machine-id"));
        let b = rollout::bucket(b"box", 4);
        assert_eq!(rolled_out(Rollout::Percent(10_000), id, 4, 0).unwrap(), format!("version 4 rolled out to this box (bucket {b}; --machine-id)"));
        let held = rolled_out(Rollout::Percent(0), id, 4, 0).unwrap_err();
        assert_eq!(held, Held { at: None, why: format!("version 4 not yet rolled out to this box (bucket {b}, rollout 0.00% open; --machine-id)") });
        // No identity: the last bucket, open only when everything is.
        assert!(rolled_out(Rollout::Percent(9_999), None, 4, 0).unwrap_err().why.contains("bucket 9999, rollout 99.99% open; no machine identity"));
        assert!(rolled_out(Rollout::Percent(10_000), None, 4, 0).is_ok());
        // Linear: a time is known, and the cache keeps it.
        let h = rolled_out(Rollout::Linear { start: 1000, duration: 10_000 }, None, 4, 1000).unwrap_err();
        assert_eq!(h.at, Some(11_000));
        assert!(h.why.contains("open at 1970-01-01 03:03:20 UTC"), "{}", h.why);
        assert!(rolled_out(Rollout::Linear { start: 1000, duration: 10_000 }, None, 4, 11_000).is_ok());
    }

    #[test]
    fn cache_entries() {
        let c = remember("u", 3, Some(4), true, Some(50), Some(40), [Some("\"e\"".into()), None]);
        assert_eq!((c.above, c.version, c.waiting, c.until, c.etag.as_deref()), (3, 4, true, 40, Some("\"e\"")));
        assert_eq!(remember("u", 3, None, false, None, None, [None, None]).until, 0);
        let e = not_modified("u", &c);
        assert_eq!((e.exit_code(), e.to_string()), (5, "u: version 4 not yet rolled out to this box: SHA256SUMS.minisig not modified since the last check (HTTP 304)".into()));
        assert!(not_modified("u", &remember("u", 4, Some(4), false, None, None, [None, None])).to_string().contains("already up to date (version 4)"));
    }

    #[test]
    fn manifest_choice() {
        let h = "00".repeat(32);
        let m = |t: &str| crate::manifest::parse("m", t.replace("H", &h).as_bytes()).unwrap();
        let (_, s) = wanted(&m("H  squashfs.img\n"), "squashfs.img", "m").unwrap();
        assert!(s.is_none());
        let (_, s) = wanted(&m("H  a.img\nH  a.img.verity\nH  a.img.roothash\n"), "a.img", "m").unwrap();
        assert_eq!(s.map(|s| s.map(|(n, _)| n)), Some(["a.img.verity".to_string(), "a.img.roothash".to_string()]));
        assert!(wanted(&m("H  a.img\nH  a.img.verity\n"), "a.img", "m").unwrap_err().to_string().contains("lists only one of"));
        let (_, _, b) = wanted_all(&m("H  a.img\nH  vmlinuz\nH  initrd.img\n"), "a.img", "m").unwrap();
        assert_eq!(b.map(|b| b.into_iter().map(|(n, _)| n).collect::<Vec<_>>()), Some(vec!["vmlinuz".to_string(), "initrd.img".to_string()]));
        assert!(wanted_all(&m("H  a.img\nH  vmlinuz\n"), "a.img", "m").unwrap_err().to_string().contains("lists only one of vmlinuz and initrd.img"));
        assert!(wanted_all(&m("H  a.img\n"), "a.img", "m").unwrap().2.is_none());
        let (_, _, b) = wanted_all(&m("H  a.img\nH  vmlinuz\nH  initrd.img\nH  liveroot.efi\n"), "a.img", "m").unwrap();
        let names: Vec<String> = b.unwrap_or_default().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["vmlinuz", "initrd.img", "liveroot.efi"], "a Secure Boot release's signed image is fetched with its kernel");
        let e = wanted_all(&m("H  a.img\nH  liveroot.efi\n"), "a.img", "m").unwrap_err().to_string();
        assert!(e.contains("lists liveroot.efi without vmlinuz and initrd.img"), "{e}");
        assert_eq!(wanted(&m("H  b.img\n"), "a.img", "m").unwrap_err().to_string(), "m: a.img: not listed");
    }

    #[test]
    fn resumes_and_deltas() {
        assert_eq!(resume_at(Some("ab\n"), "ab", 10, Some(20)), 10);
        assert_eq!(resume_at(Some("ab"), "ab", 10, None), 10);
        assert_eq!(resume_at(Some("cd"), "ab", 10, Some(20)), 0);
        assert_eq!(resume_at(None, "ab", 10, Some(20)), 0);
        assert_eq!(resume_at(Some("ab"), "ab", 30, Some(20)), 0);
        assert!(try_delta(1, false, 0));
        assert!(!try_delta(0, false, 0) && !try_delta(1, true, 0) && !try_delta(1, false, 5));
        assert_eq!(index_cap(0), 30);
        assert_eq!(index_cap(1 << 20), 1025 * 6 + 24);
        assert_eq!(index_cap(u64::MAX), crate::delta::MAX_INDEX);
        assert_eq!(range_end(0, 16, 100), 15);
        assert_eq!(range_end(96, 16, 100), 99);
        assert_eq!(range_end(u64::MAX - 1, 16, u64::MAX), u64::MAX - 1);
    }

    #[test]
    fn polling() {
        assert!(first_wait(60, 12_345) < 60);
        assert_eq!(first_wait(0, 5), 0);
        assert_eq!(next_wait(60, 0), 60);
        assert_eq!(next_wait(60, 1), 120);
        assert_eq!(next_wait(60, 3), 360);
        assert_eq!(next_wait(60, 30), 360);
        // An hourly poll or longer never backs off past an hour... but never below itself.
        assert_eq!(next_wait(3600, 2), 3600);
        assert_eq!(next_wait(86_400, 5), 86_400);
        assert_eq!(next_wait(1200, 5), 3600);
    }

    #[test]
    fn identities() {
        let nic = |mac: &str, device| Nic { mac: mac.into(), assign_type: "0".into(), kind: "1".into(), device };
        assert_eq!(identity(Some("ABCD-1234\n"), &[]), Some(("abcd-1234".into(), "DMI product_uuid")));
        // A placeholder UUID (one digit repeated) is no identity: the lowest MAC is.
        let nics = [nic("52:54:00:00:00:02", true), nic("52:54:00:00:00:01", true), nic("02:00:00:00:00:00", false)];
        assert_eq!(identity(Some("00000000-0000-0000-0000-000000000000"), &nics), Some(("52:54:00:00:00:01".into(), "NIC MAC")));
        assert_eq!(identity(None, &[nic("00:00:00:00:00:00", true)]), None);
        assert_eq!(identity(None, &[Nic { assign_type: "3".into(), ..nic("52:54:00:00:00:01", true) }]), None);
    }
}
