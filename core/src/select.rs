//! Which image pair boots (`liveinit select-image`): the first of primary, `.old`, `.new`
//! ([`pairs::SUFFIXES`]) that its manifest binds, that is signed when a key is installed, whose
//! signed version is not below the minimum built into the initramfs, and whose bytes are checked
//! in one of three ways:
//!
//! - dm-verity sidecars listed: not read here; /init maps the image through a verity target built
//!   from the signed root hash, so every block is checked as it is read;
//! - a RAM copy: copied once, hashed over exactly the bytes written to RAM; what boots is what
//!   was hashed, whatever the medium serves later;
//! - otherwise hashed whole on the medium (verify, then read again: only against accidents, which
//!   is why /init asks for a RAM copy when a key is installed and there are no sidecars).

use crate::cmdline::sh_assignments;
use crate::digest::hex;
use crate::error::{Code, Error, Result};
use crate::pairs::{self, Pair, Trusted};
use crate::ramcopy;
use minisign_verify::PublicKey;
use std::path::{Path, PathBuf};

/// How the image bytes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Through dm-verity when the sidecars are listed, else hashed whole.
    Auto,
    /// Hashed whole, sidecars or not.
    Full,
    /// The manifest only (binding, signature, version); the image is not read.
    Manifest,
    /// Nothing: the first pair whose image exists (rd.live.check=0, no manifest, no key).
    None,
}

impl Check {
    pub fn parse(s: &str) -> Option<Check> {
        Some(match s {
            "auto" => Check::Auto,
            "full" => Check::Full,
            "manifest" => Check::Manifest,
            "none" => Check::None,
            _ => return None,
        })
    }
}

/// When to copy the chosen image into RAM.
#[derive(Debug, Clone)]
pub struct Ram {
    pub dir: PathBuf,
    /// MiB of RAM that must stay available (rd.minmem).
    pub minmem: u64,
    /// Copy only a pair without dm-verity sidecars (a pair with them is safe on the medium).
    pub unless_verity: bool,
}

pub struct Options<'a> {
    pub key: Option<&'a PublicKey>,
    pub min_version: u64,
    /// The highest version the running system marked good (the trial record's floor): a signed
    /// pair below it is a rollback. It rises only at mark-good, so the pair a trial falls back to
    /// still boots.
    pub good_floor: u64,
    pub check: Check,
    pub ram: Option<Ram>,
    /// Pairs (`primary`, `old`, `new`) not to try: /init already found them failing later (a
    /// dm-verity mapping that does not verify).
    pub skip: Vec<String>,
}

/// The pair that boots, as /init needs it.
#[derive(Debug)]
pub struct Selected {
    pub file: PathBuf,
    pub pair: String,
    /// The digest the manifest binds the image to (`None` unchecked).
    pub sha256: Option<[u8; 32]>,
    pub version: Option<u64>,
    /// `sig`, `sha256` or `no`: what vouches for the bytes that boot.
    pub verified: &'static str,
    pub roothash: Option<Vec<u8>>,
    pub verity: Option<PathBuf>,
    pub floor: u64,
    /// The image was copied into RAM and hashed there.
    pub in_ram: bool,
}

impl Selected {
    /// `IMG_*='value'` lines for `eval`.
    pub fn to_shell(&self) -> String {
        let p = |x: &Path| x.display().to_string();
        let vars = [
            ("IMG_FILE", p(&self.file)),
            ("IMG_PAIR", self.pair.clone()),
            ("IMG_SHA256", self.sha256.as_ref().map(|s| hex(s)).unwrap_or_default()),
            ("IMG_VERSION", self.version.map(|v| v.to_string()).unwrap_or_default()),
            ("IMG_VERIFIED", self.verified.to_owned()),
            ("IMG_ROOTHASH", self.roothash.as_deref().map(hex).unwrap_or_default()),
            ("IMG_VERITY", self.verity.as_deref().map(p).unwrap_or_default()),
            ("IMG_FLOOR", self.floor.to_string()),
            ("IMG_RAM", if self.in_ram { "1" } else { "" }.to_owned()),
        ];
        sh_assignments(&vars)
    }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}
/// The anti-rollback floor in the trial file `file` (`--trial-state`): the highest version
/// marked good. A missing or unreadable record lowers nothing (0, the reason told to `warn`): it
/// cannot be trusted more than the pairs beside it, and refusing to boot over it would brick the
/// box.
pub fn good_floor(file: &Path, warn: &mut dyn FnMut(&Error)) -> u64 {
    match crate::trial::read(file) {
        Ok(cur) => cur.and_then(|c| c.record).map_or(0, |r| r.floor),
        Err(e) => {
            warn(&e);
            0
        }
    }
}


/// Choose the pair of image `name` in `dir` that boots. Each refused pair is reported through
/// `refused`; when none passes, the error is the first refusal (exit 3).
pub fn select(dir: &Path, name: &str, o: &Options, refused: &mut dyn FnMut(&Error)) -> Result<Selected> {
    // The floor counts every pair whose signature verifies, not only the one that boots: an
    // update interrupted mid-rotation must not lower it.
    let floor = match o.key {
        Some(k) => pairs::floor(dir, name, k, o.min_version),
        None => o.min_version,
    }
    .max(o.good_floor);
    let mut first: Option<Error> = None;
    for sfx in pairs::SUFFIXES {
        let p = Pair::new(dir, name, sfx);
        if o.skip.iter().any(|s| s == p.label()) {
            continue;
        }
        match try_pair(&p, o) {
            Ok(mut s) => {
                s.floor = floor;
                return Ok(s);
            }
            Err(e) => {
                refused(&e);
                first.get_or_insert(e);
            }
        }
    }
    let e = first.unwrap_or_else(|| Error::new(show(&dir.join(name)), "no image pair left to try"));
    Err(e.code(Code::Verify))
}

fn try_pair(p: &Pair, o: &Options) -> Result<Selected> {
    let img = p.paths().image;
    let t = match o.check {
        Check::None => {
            if !img.exists() {
                return Err(Error::new(show(&img), "missing"));
            }
            None
        }
        _ => Some(pairs::check_manifest(p, o.key)?),
    };
    if let (Some(t), Some(_)) = (&t, o.key) {
        let v = t.version.unwrap_or(0);
        if v < o.min_version {
            return Err(Error::verify(
                show(&p.sig()),
                format!("version {v} is below the minimum {} built into the initramfs", o.min_version),
            ));
        }
        if v < o.good_floor {
            return Err(Error::verify(
                show(&p.sig()),
                format!("version {v} is below version {} marked good: rollback refused", o.good_floor),
            ));
        }
    }
    let has_verity = t.as_ref().is_some_and(|t| t.roothash.is_some());
    let verified = |t: &Trusted| if t.signed { "sig" } else { "sha256" };
    let mut s = Selected {
        file: img.clone(),
        pair: p.label().to_owned(),
        sha256: t.as_ref().map(|t| t.sha256),
        version: t.as_ref().and_then(|t| t.version),
        verified: "no",
        roothash: None,
        verity: None,
        floor: 0,
        in_ram: false,
    };
    if let Some(ram) = o.ram.as_ref().filter(|r| !(r.unless_verity && has_verity && o.check != Check::None)) {
        let copy = copy_to_ram(p, ram)?;
        if let Some(t) = &t {
            if copy.sha256 != t.sha256 {
                remove_pair(&copy.pair);
                return Err(Error::verify(
                    show(&img),
                    format!("checksum mismatch with {} (as copied to RAM), image refused", show(&p.manifest())),
                ));
            }
            s.verified = verified(t);
        }
        s.file = copy.pair.image();
        s.in_ram = true;
        return Ok(s);
    }
    let Some(t) = t else { return Ok(s) };
    if matches!(o.check, Check::Full) || (o.check == Check::Auto && !has_verity) {
        pairs::check_image(p, &t, None)?;
        s.verified = verified(&t);
    }
    if has_verity {
        s.roothash = t.roothash.clone();
        s.verity = Some(p.paths().verity);
        s.verified = verified(&t);
    }
    Ok(s)
}

struct Copied {
    pair: Pair,
    sha256: [u8; 32],
}

/// Remove whatever of pair `p` exists (a refused RAM copy must not stay in RAM).
fn remove_pair(p: &Pair) {
    for f in p.files() {
        let _ = std::fs::remove_file(f);
    }
}

/// Copy pair `p` into `ram.dir` (same names), hashing the image as it is written.
fn copy_to_ram(p: &Pair, ram: &Ram) -> Result<Copied> {
    let img = show(&p.image());
    let files: Vec<PathBuf> = p.resolved().into_iter().filter(|f| f.exists()).collect();
    let mut need = 0u64;
    for f in &files {
        need = need.saturating_add(ramcopy::file_size(f)?);
    }
    ramcopy::check_mem(&img, need, ram.minmem)?;
    // Size the tmpfs to what RAM can spare, not to this pair: a larger `.old`, or an image
    // fetched later, must fit too (imgfetch checks MemAvailable itself before writing).
    let spare = ramcopy::meminfo("MemAvailable")?.saturating_sub(ram.minmem.saturating_mul(ramcopy::MIB));
    ramcopy::mount_tmpfs(&ram.dir, spare.max(need.saturating_add(ramcopy::MIB)))?;
    let dest = Pair::new(&ram.dir, &p.name, &p.sfx);
    // An earlier refused pair may have left nothing, but a re-run must not count stale copies.
    remove_pair(&dest);
    let free = ramcopy::free_space(&ram.dir)?;
    if free < need {
        return Err(Error::new(
            &img,
            format!("does not fit in {}: {} MiB needed, {} MiB free", show(&ram.dir), need.div_ceil(ramcopy::MIB), free / ramcopy::MIB),
        ));
    }
    let mut sha256 = [0u8; 32];
    let image = p.paths().image;
    for (from, to) in p.resolved().iter().zip(dest.files().iter()) {
        if !from.exists() {
            continue;
        }
        let d = ramcopy::copy_hashed(from, to).inspect_err(|_| remove_pair(&dest))?;
        if *from == image {
            sha256 = d.sha256;
        }
    }
    Ok(Copied { pair: dest, sha256 })
}
