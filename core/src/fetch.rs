//! Fetch a signed live image over HTTP, verifying its SHA-256 while it streams (the imgfetch
//! applet is its command line; `imgfetch --help` says what each option does).
//!
//! One run, [`once`]: the manifest first, trusted only once its signature verifies; then what
//! the signed version, the expiry and the rollout ask of this box ([`policy`]); then the size
//! and the room; then the image, from seeds ([`crate::delta`]) and in Range requests of bounded
//! size or one streaming GET ([`transport`]) into `NAME.part` (resumable across runs while
//! `NAME.part.sha256` names the same digest), fsynced and renamed to `NAME` only once the
//! digest matches; then the dm-verity sidecars and a release's vmlinuz and initrd.img the
//! manifest lists, each checked against its
//! digest. [`poll`] repeats it until an image comes.

pub mod policy;
pub mod transport;

use crate::digest::{hex, Hasher};
use crate::error::{Code, Context, Error, Result};
use crate::http::{self, Limits};
use crate::manifest::{self, SIG, SUMS};
use crate::cli::size_str;
use crate::progress::Progress;
use policy::{BootFiles, Sidecars, Step, Versions};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;
use crate::fsutil::with_suffix;
use transport::{Fetcher, Leftovers, Sink, Validators};

/// Default cap for a body whose length nobody announced.
pub const MAX_UNKNOWN: u64 = 16 << 30;
/// The largest chunk: one Range request need not be bigger, and offsets stay far from
/// overflowing.
pub const MAX_CHUNK: u64 = 1 << 30;

/// The public key: given, or read from a minisign.pub file.
#[derive(Debug, Clone)]
pub enum Key {
    Base64(String),
    File(PathBuf),
}

/// The local version the signed one must be above.
#[derive(Debug, Clone)]
pub enum Floor {
    Version(u64),
    /// The highest version signed among the pairs in this directory.
    Pairs(PathBuf),
}

/// One run, as the command line asked for it (validated: see the applet).
#[derive(Debug, Clone)]
pub struct Options {
    /// The server directory, ending in `/`, and the image's name in it.
    pub base: String,
    pub name: String,
    /// The URL as given, for messages.
    pub url: String,
    pub key: Option<Key>,
    pub floor: Option<Floor>,
    pub min_version: u64,
    pub allow_downgrade: bool,
    pub max_size: u64,
    pub keep_partial: bool,
    pub to: PathBuf,
    pub timeout: u64,
    pub stall: u64,
    pub retries: u32,
    pub chunk: u64,
    pub progress: bool,
    pub cache: Option<PathBuf>,
    pub machine_id: Option<String>,
    pub seeds: Vec<PathBuf>,
    pub no_delta: bool,
    /// Where lines for the user go.
    pub note: fn(&str),
}

/// A verified image in place.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub bytes: u64,
    pub version: Option<u64>,
    pub elapsed: Duration,
}

/// Check every `every` seconds, the first time after a random delay below it (a fleet that
/// booted together spreads out), failures backing off ([`policy::next_wait`]), until an image is
/// fetched or a run fails in a way no retry changes (usage).
pub fn poll(o: &Options, every: u64) -> Result<Fetched> {
    let mut r = [0u8; 8];
    crate::sys::random::fill(&mut r)?;
    let mut wait = policy::first_wait(every, u64::from_le_bytes(r));
    let mut failures = 0u32;
    loop {
        (o.note)(&format!("{}: next check in {wait} s", o.url));
        std::thread::sleep(Duration::from_secs(wait));
        match once(o) {
            Err(e) if e.code == Code::NoChange => {
                (o.note)(&e.to_string());
                failures = 0;
                wait = every;
            }
            Err(e) if e.code != Code::Usage && !e.help => {
                (o.note)(&e.to_string());
                failures = failures.saturating_add(1);
                wait = policy::next_wait(every, failures);
            }
            done => return done,
        }
    }
}

/// The manifest as received, and what its signature vouches for.
struct Signed {
    data: Vec<u8>,
    sig: Vec<u8>,
    version: Option<u64>,
    policy: crate::rollout::Policy,
    validators: Validators,
}

/// The URLs of one run.
struct Urls {
    manifest: String,
    sig: String,
    image: String,
}

pub fn once(o: &Options) -> Result<Fetched> {
    let key = match &o.key {
        Some(Key::Base64(k)) => Some(manifest::pubkey_from_base64(k)?),
        Some(Key::File(f)) => Some(manifest::pubkey_from_file(f)?),
        None => None,
    };
    let clock = transport::Clock::new(o.timeout)?;
    let http = http::Client::new(Limits { stall: Duration::from_secs(o.stall), deadline: clock.end });
    let fx = Fetcher { clock, retries: o.retries, http, note: o.note };
    std::fs::metadata(&o.to).ctx(o.to.display())?;
    let u = Urls { manifest: format!("{}{SUMS}", o.base), sig: format!("{}{SIG}", o.base), image: format!("{}{}", o.base, o.name) };
    let now = unix_now();
    let floor = match (&o.floor, &key) {
        (Some(Floor::Pairs(dir)), Some(key)) => Some(crate::pairs::floor(dir, &o.name, key, 0)),
        (Some(Floor::Version(v)), _) => Some(*v),
        _ => None,
    };

    // 1. The manifest and what it asks of this box.
    let s = manifest_for(o, &fx, &u, key.as_ref(), floor, now)?;
    let remember = |above: u64, waiting: bool, until: Option<u64>| {
        if let (Some(f), true) = (&o.cache, s.validators.iter().any(Option::is_some)) {
            let c = policy::remember(&u.image, above, s.version, waiting, until, s.policy.expires, s.validators.clone());
            transport::save_cache(f, &c, o.note);
        }
    };
    let v = Versions { keyed: key.is_some(), min: o.min_version, floor, allow_downgrade: o.allow_downgrade };
    match policy::judge(v, s.version, &o.url, &s_url(&o.base))? {
        Step::Fetch => {}
        Step::UpToDate(local) => {
            remember(local, false, None);
            return Err(Error::new(&o.url, format!("already up to date (version {local})")).code(Code::NoChange));
        }
        Step::Update { remote, local } => {
            (o.note)(&format!("{}: version {remote} (local {local})", o.url));
            // A phased rollout gates updates only: a box with no image of its own takes what is
            // signed.
            if let Some(r) = s.policy.rollout {
                let id = transport::machine_id(o.machine_id.as_deref());
                match policy::rolled_out(r, id.as_ref().map(|(i, s)| (i.as_str(), *s)), remote, now) {
                    Ok(line) => (o.note)(&format!("{}: {line}", o.url)),
                    Err(held) => {
                        remember(local, true, held.at);
                        return Err(Error::new(&o.url, held.why).code(Code::NoChange));
                    }
                }
            }
        }
    }
    let m = manifest::parse(&u.manifest, &s.data)?;
    let (want, sidecars, boot) = policy::wanted_all(&m, &o.name, &u.manifest)?;

    // 2. The image, then its sidecars; only then the manifest beside them and the final names.
    let mut left = Leftovers { files: Vec::new(), armed: !o.keep_partial };
    let (path, bytes) = image(o, &fx, &u, &m, &want, &mut left)?;
    sidecars_into(o, &fx, &sidecars, &mut left)?;
    boot_files_into(o, &fx, &boot, &mut left)?;
    transport::put(&o.to, SUMS, &s.data)?;
    if key.is_some() {
        transport::put(&o.to, SIG, &s.sig)?;
    }
    let part = with_suffix(&path, ".part");
    std::fs::rename(&part, &path).ctx(path.display())?;
    left.armed = false;
    let _ = std::fs::remove_file(with_suffix(&path, ".part.sha256"));
    // Once this image is the local one (syncflash), the same manifest needs nothing.
    if let Some(v) = s.version {
        remember(v, false, None);
    }
    if let Ok(d) = File::open(&o.to) {
        let _ = d.sync_all();
    }
    Ok(Fetched { path, bytes, version: s.version, elapsed: fx.clock.start.elapsed() })
}

fn s_url(base: &str) -> String {
    format!("{base}{SIG}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The manifest, trusted only once its signature verifies over the bytes received. With a cache
/// that still applies, the signature comes first: it changes whenever anything signed does
/// (manifest, version, rollout, expiry), so one conditional GET of it is the whole poll, and a
/// 304 is "nothing to do", never a reason to accept anything.
fn manifest_for(o: &Options, fx: &Fetcher, u: &Urls, key: Option<&minisign_verify::PublicKey>, floor: Option<u64>, now: u64) -> Result<Signed> {
    let cache = match (&o.cache, key, floor) {
        (Some(f), Some(_), Some(fl)) => transport::load_cache(f, o.note).filter(|c| c.applies(&u.image, fl, now)),
        _ => None,
    };
    let mut s = Signed { data: Vec::new(), sig: Vec::new(), version: None, policy: Default::default(), validators: [None, None] };
    if cache.is_none() {
        s.data = fx.small(&u.manifest)?;
    }
    if key.is_some() {
        match fx.small_if(&u.sig, cache.as_ref())? {
            Some((sig, v)) => (s.sig, s.validators) = (sig, v),
            None => return Err(policy::not_modified(&o.url, &cache.unwrap_or_default())),
        }
    }
    if cache.is_some() {
        s.data = fx.small(&u.manifest)?;
    }
    match key {
        Some(key) => {
            let tc = manifest::verify_signature(&s.data, &s.sig, &u.sig, key)?;
            s.version = crate::rollout::version(&tc);
            s.policy = crate::rollout::parse(&tc).map_err(|e| Error::verify(&u.sig, e))?;
        }
        None => (o.note)(&format!("{}: no public key given: the manifest is not authenticated", u.manifest)),
    }
    policy::check_expiry(s.policy.expires, now, &u.sig)?;
    Ok(s)
}

/// The image into TO/NAME.part, hashed whole and checked against `want`: resumed, from seeds,
/// in Range requests or in one GET. Returns TO/NAME (not yet renamed) and its size.
fn image(o: &Options, fx: &Fetcher, u: &Urls, m: &manifest::Manifest, want: &[u8; 32], left: &mut Leftovers) -> Result<(PathBuf, u64)> {
    // Size and room before a byte of the image is fetched.
    let (size, ranged, url) = fx.head(&u.image)?;
    let path = o.to.join(&o.name);
    let (part_file, note_file) = (with_suffix(&path, ".part"), with_suffix(&path, ".part.sha256"));
    let part = part_file.display().to_string();
    let want_hex = hex(want);
    left.files.extend([part_file.clone(), note_file.clone()]);
    let note = std::fs::read_to_string(&note_file).ok();
    let part_len = std::fs::metadata(&part_file).map(|m| m.len()).unwrap_or(0);
    let mut resume = policy::resume_at(note.as_deref(), &want_hex, part_len, size);
    if let Some(s) = size {
        transport::check_room(&o.to, s - resume)?;
    }
    let mut ranged = ranged && size.is_some();

    // Delta: the blocks the seeds hold come from them, the rest in Range requests; the result
    // is hashed whole and checked below like a full download.
    let mut delta = None;
    if policy::try_delta(o.seeds.len(), o.no_delta, resume) {
        delta = delta_from_seeds(o, fx, m, u, &url, size.filter(|_| ranged), want)?;
    }
    let delta_done = delta.is_some();
    let file = if delta_done {
        resume = size.unwrap_or(0);
        OpenOptions::new().read(true).write(true).open(&part_file).ctx(&part)?
    } else if resume > 0 {
        OpenOptions::new().read(true).write(true).open(&part_file).ctx(&part)?
    } else {
        let f = File::create(&part_file).ctx(&part)?;
        transport::put(&o.to, &format!("{}.part.sha256", o.name), want_hex.as_bytes())?;
        f
    };
    let mut sink = Sink {
        file,
        hasher: delta.unwrap_or_else(|| Hasher::new(false)),
        pos: resume,
        meter: None,
        name: part.clone(),
        stall: o.stall,
        cap: transport::room(&o.to, o.max_size)?,
    };
    if resume > 0 && !delta_done {
        // The hash restarts from the bytes already there.
        sink.rehash(resume)?;
        (o.note)(&format!("{part}: resuming at {}", size_str(resume)));
    }
    sink.meter = o.progress.then(|| Progress::on_stderr(&o.name, size).resumed_at(resume));
    if resume > 0 && !ranged && !delta_done {
        sink.restart()?;
    }
    let mut bufs = transport::Bufs::default();
    let fetched = fx.retry(&url, || match (delta_done, ranged) {
        (true, _) => Ok(()),
        (false, true) => sink.ranged(fx, &url, size.unwrap_or(0), o.chunk, &mut ranged, &mut bufs),
        (false, false) => sink.whole(fx, &url, size, &o.to, &mut bufs),
    });
    if let Err(e) = fetched {
        let _ = sink.file.sync_all();
        return Err(e);
    }

    // Only a matching digest gets the image's name.
    let got = std::mem::replace(&mut sink.hasher, Hasher::new(false)).finish();
    if let Some(m) = sink.meter.as_mut() {
        m.finish(sink.pos);
    }
    if &got.sha256 != want {
        drop(sink);
        let _ = std::fs::remove_file(&part_file);
        let _ = std::fs::remove_file(&note_file);
        return Err(Error::verify(&u.image, format!("checksum mismatch ({} bytes), image refused", got.bytes)));
    }
    sink.file.sync_all().ctx(&part)?;
    Ok((path, got.bytes))
}

/// The dm-verity sidecars the manifest lists, so that syncflash can write them beside the
/// image; each is checked against its digest, and the root hash must be one.
fn sidecars_into(o: &Options, fx: &Fetcher, sidecars: &Sidecars, left: &mut Leftovers) -> Result<()> {
    let Some(files) = sidecars else { return Ok(()) };
    listed_into(o, fx, files, left)?;
    let rfile = o.to.join(&files[1].0);
    let rpath = rfile.display().to_string();
    let text = std::fs::read(&rfile).ctx(&rpath)?;
    crate::pairs::parse_roothash(&text).ok_or_else(|| Error::verify(&rpath, "not a root hash (one line of hex)"))?;
    Ok(())
}

/// A release's own kernel and initramfs (and signed unified image), when the manifest lists
/// them: the boot kexecs into them and syncflash writes them with the image. Each is checked
/// against its signed digest.
fn boot_files_into(o: &Options, fx: &Fetcher, boot: &BootFiles, left: &mut Leftovers) -> Result<()> {
    match boot {
        Some(files) => listed_into(o, fx, files, left),
        None => Ok(()),
    }
}

/// Each small file the manifest lists beside the image, into `o.to`, checked against its digest
/// (a partial or refused one is left for `left` to remove).
fn listed_into(o: &Options, fx: &Fetcher, files: &[(String, [u8; 32])], left: &mut Leftovers) -> Result<()> {
    for (f, digest) in files {
        let dest = o.to.join(f);
        left.files.push(with_suffix(&dest, ".part"));
        left.files.push(dest.clone());
        transport::sidecar(fx, o.stall, &format!("{}{f}", o.base), &dest, digest, transport::room(&o.to, o.max_size)?)?;
    }
    Ok(())
}

/// The delta download (core/src/delta.rs) when it can be tried: the signed manifest lists
/// NAME.zidx, the server does Range (`size` is known only then). Its index is fetched, checked
/// against the manifest and parsed; any doubt is a line on stderr and None (the full download
/// follows). Some(hasher): NAME.part is complete and hashed.
fn delta_from_seeds(o: &Options, fx: &Fetcher, m: &manifest::Manifest, u: &Urls, url: &str, size: Option<u64>, want: &[u8; 32]) -> Result<Option<Hasher>> {
    let iname = format!("{}{}", o.name, crate::delta::SUFFIX);
    let Some(entry) = m.get(iname.as_bytes()) else {
        (o.note)(&format!("{}: no {iname} listed: downloading in full", u.manifest));
        return Ok(None);
    };
    let Some(size) = size else {
        (o.note)(&format!("{url}: no Range support: downloading in full"));
        return Ok(None);
    };
    let iurl = format!("{}{iname}", o.base);
    let cap = policy::index_cap(size);
    let data = match fx.bounded(&iurl, cap) {
        Ok(Some(d)) => d,
        Ok(None) => {
            let max = crate::delta::MAX_IMAGE >> 30;
            (o.note)(&format!("{iurl}: more than {} (an index covers at most {max} GiB at 4 KiB blocks): downloading in full", size_str(cap)));
            return Ok(None);
        }
        Err(e) => {
            (o.note)(&format!("{e}: downloading in full"));
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
            (o.note)(&format!("{iurl}: indexes {} bytes, the image has {size}: downloading in full", i.size));
            return Ok(None);
        }
        Err(why) => {
            (o.note)(&format!("{iurl}: {why}: downloading in full"));
            return Ok(None);
        }
    };
    let seeds: Vec<&Path> = o.seeds.iter().map(PathBuf::as_path).collect();
    let part = with_suffix(&o.to.join(&o.name), ".part");
    match crate::delta::fetch(&fx.http, url, &idx, &seeds, &part, want)? {
        crate::delta::Outcome::Done(h) => Ok(Some(h)),
        crate::delta::Outcome::Full => Ok(None),
    }
}
