//! The live boot (`liveinit boot`): everything /init used to decide, carried out in one call.
//! /init mounts the API filesystems, runs this, offers rd.break, and switches root; a failing
//! step prints one line `liveroot: STEP: object: reason` and the call exits non-zero (the code of
//! the error: 1, 3 verification, 4 network), and /init runs the rescue shell.
//!
//! The decisions are pure functions in [`plan`]; which image boots (the pair, the trial record,
//! the fetch, and the fallback from each) is [`choose`], written against [`Env`] so that a fake
//! drives it in the tests; [`Real`] is the system.

pub mod plan;
mod run;
pub mod take;

pub use run::{boot, switch_root_live};

use crate::select::Selected;
use crate::trial::{Ident, Start};
use std::path::{Path, PathBuf};
use take::Taken;

/// A failure that ends the boot: `STEP: object: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescue {
    pub line: String,
    pub code: crate::error::Code,
}

impl Rescue {
    pub fn new(step: &str, why: impl std::fmt::Display) -> Rescue {
        Rescue { line: format!("{step}: {why}"), code: crate::error::Code::Failure }
    }
    fn from_error(step: &str, e: &crate::error::Error) -> Rescue {
        Rescue { line: format!("{step}: {e}"), code: e.code }
    }
}

/// What a mounted image holds: the squashfs's device and the rootfs loop (the snapshot origin).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mounted {
    /// The loop the squashfs was mounted from (autoclear: it goes with the mount), or the
    /// dm-verity device.
    pub squash_dev: String,
    /// The dm-verity mapping's name, when mounted through one.
    pub verity_name: Option<String>,
    pub rootfs_image: &'static str,
    pub rootfs_loop: String,
}

/// The system [`choose`] works on.
pub trait Env {
    /// The medium's pair that boots, skipping `skip` (select-image); refusals are said.
    fn select(&mut self, skip: &[String]) -> crate::error::Result<Selected>;
    /// The trial take of `img` (a fetched one with `start`); with `peek` nothing is written.
    fn take(&mut self, img: &Ident, start: Option<Start>, peek: bool) -> Taken;
    /// Network up and imgfetch above `above` (`None`: network root); the image's path and
    /// imgfetch's last words, or why not.
    fn fetch(&mut self, above: Option<u64>, local: Option<&Selected>) -> Result<(PathBuf, String), String>;
    /// The fetched pair's bound digest and signed version (its manifest checked again).
    fn check_fetched(&mut self, file: &Path) -> crate::error::Result<Selected>;
    /// The squashfs (through dm-verity when `verity` gives a root hash and hash tree) and the
    /// rootfs inside it; on failure `STEP: object: reason`, with what was set up undone.
    fn mount(&mut self, file: &Path, verity: Option<(&[u8], &Path)>) -> Result<Mounted, String>;
    /// Undo [`Env::mount`].
    fn unmount(&mut self, m: &Mounted);
    /// A fetched image that does not boot: its files go.
    fn discard_fetched(&mut self, file: &Path);
    /// Before a fetched image's trial begins: the trial file, created where the medium has none.
    fn trial_file(&mut self, tries: u8);
    /// A local pair that does not boot: its RAM copy, if any, goes.
    fn free_ram_copy(&mut self, s: &Selected);
    /// The local RAM copy is not needed (a fetched image boots).
    fn release_local_ram(&mut self);
    /// A fetched image that brings its own kernel: Err(why) unless it can run on this one
    /// ([`kexec::fetched_runs_here`]).
    fn fetched_kernel_ok(&mut self, file: &Path, m: &Mounted) -> Result<(), String>;
    /// A line for the console (`liveroot: ` is prepended) and one for the kernel log.
    fn say(&mut self, line: &str);
    fn log(&mut self, line: &str);
}

/// Which image boots, and what the state says of it.
#[derive(Debug)]
pub struct Chosen {
    pub file: PathBuf,
    /// The medium's pair (the local candidate's, also when a fetched image boots).
    pub pair: String,
    pub sha256: Option<[u8; 32]>,
    pub version: Option<u64>,
    pub verified: &'static str,
    pub roothash: Option<Vec<u8>>,
    pub fetched: bool,
    pub floor: u64,
    pub trial: Option<u8>,
    pub fallback: Option<String>,
    pub mounted: Mounted,
}

/// The boot's inputs to [`choose`].
pub struct Inputs<'a> {
    pub live: &'a crate::cmdline::Live,
    /// `DIR/NAME` of the medium's image, for messages; `None`: a network root.
    pub image: Option<String>,
    pub min_version: u64,
    pub ram: bool,
}

fn ident(s: &Selected) -> Option<Ident> {
    s.sha256.map(|sha256| Ident { version: s.version.unwrap_or(0), sha256 })
}

fn verity(s: &Selected) -> Option<(&[u8], &Path)> {
    match (&s.roothash, &s.verity) {
        (Some(r), Some(v)) => Some((r.as_slice(), v.as_path())),
        _ => None,
    }
}

struct Cand {
    sel: Selected,
    trial: Option<u8>,
    failed: u64,
}

/// The local pair to boot unless a fetched image does, and what the trial record says of it,
/// asked without writing. A pair the record would not boot gets its real take (a used-up trial
/// is recorded as failed), is skipped like a refused one, and the next is chosen.
fn candidate(env: &mut dyn Env, i: &Inputs, skip: &mut Vec<String>, fallback: &mut Option<String>, failed: &mut u64) -> Result<Cand, Rescue> {
    let image = i.image.as_deref().unwrap_or_default();
    loop {
        let sel = env.select(skip).map_err(|e| Rescue::from_error("verify", &e))?;
        if sel.pair != "primary" {
            env.say(&format!("verify: {image} refused; booting the {0} image {image}.{0}", sel.pair));
        }
        if sel.in_ram && !i.ram {
            env.say("verify: no dm-verity sidecars; copying the image to RAM and verifying it there (a re-read from the medium could differ)");
        }
        let how = format!("{}{}{}", sel.verified, if sel.roothash.is_some() { " (dm-verity)" } else { "" }, if sel.in_ram { " (RAM copy)" } else { "" });
        env.log(&format!("verify: {}: {how}", sel.file.display()));
        let Some(img) = ident(&sel) else { return Ok(Cand { sel, trial: None, failed: *failed }) };
        let peek = env.take(&img, None, true);
        *failed = peek.failed;
        let Some(why) = peek.fallback else { return Ok(Cand { sel, trial: peek.left, failed: *failed }) };
        let real = env.take(&img, None, false);
        *failed = real.failed;
        let why = real.fallback.unwrap_or(why);
        skip_pair(env, i, &sel, &why, skip);
        *fallback = Some(why);
    }
}

fn skip_pair(env: &mut dyn Env, i: &Inputs, sel: &Selected, why: &str, skip: &mut Vec<String>) {
    env.say(&format!("trial: {} ({}): {why}; booting the previous image", i.image.as_deref().unwrap_or_default(), sel.pair));
    env.log(&format!("trial: {why}"));
    env.free_ram_copy(sel);
    skip.push(sel.pair.clone());
}

/// Choose the image that boots and mount it: (1) the local candidate and, without writing, its
/// trial decision; (2) only while it is not on trial (one trial at a time), a newer image is
/// fetched: it boots if it verifies, mounts and its take lets it; (3) else the local candidate's
/// real take, then its mount; a pair either refuses is skipped and the choice starts again at (1)
/// for the next pair (the fetch is not tried again).
pub fn choose(env: &mut dyn Env, i: &Inputs) -> Result<Chosen, Rescue> {
    let live = i.live;
    let (mut skip, mut fallback, mut failed) = (Vec::new(), None, 0);
    let mut cand = match i.image {
        Some(_) => Some(candidate(env, i, &mut skip, &mut fallback, &mut failed)?),
        None => None,
    };
    let floor = cand.as_ref().map_or(i.min_version, |c| c.sel.floor);
    let above = plan::fetch_above(floor, cand.as_ref().map_or(0, |c| c.failed));
    let fetched = match plan::fetch(live, cand.as_ref().is_some_and(|c| c.trial.is_some())) {
        plan::Fetch::No => None,
        plan::Fetch::SkipOnTrial => {
            env.say("fetch: skipped: the local image is on trial");
            env.log("fetch: skipped: the local image is on trial");
            None
        }
        plan::Fetch::Yes => match env.fetch((!live.netroot).then_some(above), cand.as_ref().map(|c| &c.sel)) {
            Ok((file, said)) => {
                env.say(&format!("fetch: {said}; booting it"));
                Some(file)
            }
            Err(why) => {
                if plan::fetch_failed(live.netroot) == plan::OnFailure::Rescue {
                    return Err(Rescue { line: format!("fetch: {why}"), code: crate::error::Code::Network });
                }
                env.say(&format!("fetch: {why}; booting the local image"));
                None
            }
        },
    };
    if let Some(file) = fetched {
        match boot_fetched(env, i, &file, cand.as_ref(), floor, &mut fallback) {
            Ok(c) => {
                env.release_local_ram();
                return Ok(c);
            }
            Err(why) => {
                env.discard_fetched(&file);
                if plan::fetch_failed(live.netroot) == plan::OnFailure::Rescue {
                    return Err(Rescue::new(why.split_once(": ").map_or("fetch", |p| p.0), why.split_once(": ").map_or(why.as_str(), |p| p.1)));
                }
                env.say(&format!("fetch: {}: {why}; booting the local image", live.fetch));
            }
        }
    }
    loop {
        let Some(c) = cand.take() else {
            return Err(Rescue::new("fetch", format!("{}: no image to boot", live.fetch)));
        };
        let mut trial = None;
        if let Some(img) = ident(&c.sel) {
            let t = env.take(&img, None, false);
            if let Some(why) = t.fallback {
                skip_pair(env, i, &c.sel, &why, &mut skip);
                fallback = Some(why);
                cand = Some(candidate(env, i, &mut skip, &mut fallback, &mut failed)?);
                continue;
            }
            trial = t.left;
        }
        let v = verity(&c.sel);
        match env.mount(&c.sel.file, v) {
            Ok(mounted) => {
                let s = c.sel;
                return Ok(Chosen {
                    file: s.file,
                    pair: s.pair,
                    sha256: s.sha256,
                    version: s.version,
                    verified: s.verified,
                    roothash: s.roothash,
                    fetched: false,
                    floor,
                    trial,
                    fallback,
                    mounted,
                });
            }
            Err(why) => {
                if plan::mount_failed(v.is_some(), live.netroot) == plan::OnFailure::Rescue {
                    let (step, rest) = why.split_once(": ").unwrap_or(("mount", why.as_str()));
                    return Err(Rescue::new(step, rest));
                }
                env.say(&format!("{why}; trying the next pair"));
                env.free_ram_copy(&c.sel);
                skip.push(c.sel.pair.clone());
                cand = Some(candidate(env, i, &mut skip, &mut fallback, &mut failed)?);
            }
        }
    }
}

/// The fetched image: its manifest again (bound digest, signed version), its mount, and its
/// trial (begun at its first boot, falling back to the local candidate's version). Without a
/// medium (a network root) there is no trial state to keep: it boots untried.
fn boot_fetched(env: &mut dyn Env, i: &Inputs, file: &Path, cand: Option<&Cand>, floor: u64, fallback: &mut Option<String>) -> Result<Chosen, String> {
    let sel = env.check_fetched(file).map_err(|e| format!("verify: {e}"))?;
    let mounted = env.mount(file, None)?;
    if let Err(why) = env.fetched_kernel_ok(file, &mounted) {
        env.unmount(&mounted);
        return Err(format!("kernel: {why}"));
    }
    let mut trial = None;
    if let (Some(_), Some(img)) = (&i.image, ident(&sel)) {
        env.trial_file(i.live.tries);
        let keep = cand.and_then(|c| c.sel.version).unwrap_or(0);
        let t = env.take(&img, Some(Start { tries: i.live.tries, keep }), false);
        if let Some(why) = t.fallback {
            env.unmount(&mounted);
            *fallback = Some(why.clone());
            return Err(format!("trial: {why}"));
        }
        trial = t.left;
    }
    Ok(Chosen {
        file: file.to_owned(),
        pair: cand.map(|c| c.sel.pair.clone()).unwrap_or_default(),
        sha256: sel.sha256,
        version: sel.version,
        verified: "sig",
        roothash: None,
        fetched: true,
        floor: floor.max(sel.version.unwrap_or(0)),
        trial,
        fallback: fallback.clone(),
        mounted,
    })
}

pub mod kexec;

#[cfg(test)]
mod tests;
