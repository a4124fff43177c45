//! What syncflash does to the medium, apart from finding it: choose the pair to keep, write the
//! new pair, put it on trial, rotate. Every write goes through [`Io`], so that the model check
//! (tests below) can fail or cut any single one of them and look at what is left.
//!
//! The invariant, stated once (README "Trial and mark-good" says it in a user's words): *for
//! every reachable combination of pairs on the medium, trial record and running image, and for
//! every single failed or cut step of syncflash, a boot's take, mark-good or a fetch, at least
//! one verified pair that has not failed its trial and is at or above the floor stays on the
//! medium, and /init boots one within tries+2 power-ons.*
//!
//! What that takes here:
//! - **The keeper** ([`choose_keeper`]) is never a pair the trial record says failed
//!   ([`trial::standing`]), one below the floor raised by mark-good, or one below the minimum
//!   built into the initramfs. It is the pair the box booted from the medium (`medium_pair=`)
//!   unless that one is still on trial; else the newest pair marked good; else the first that
//!   verifies, in /init's order. A keeper still on trial is refused: the record holds one trial, and giving that
//!   one up would leave no image known to work.
//! - **No step touches the keeper.** The new pair is written beside it: as `.new` when the
//!   keeper is the primary (then rotated in: primary → `.old`, `.new` → primary, each rename to
//!   a free name), else straight under the primary names (the primary's files were deleted as
//!   not kept), image first and manifest last. A keeper under `.new` stays there: `/init` boots
//!   primary, `.old`, `.new`, in that order, and the next syncflash deletes it.
//! - **The trial record is written before the new pair can boot** (before its manifest lands
//!   under the primary name, or before the rotation's first rename), and a record that cannot be
//!   written stops the run with the new pair removed: a new primary must never boot untried.

use crate::cli::mib;
use crate::digest::hex;
use crate::error::{Code, Context, Error, Result};
use crate::pairs::{self, Files, Pair, Trusted, SUFFIXES};
use crate::progress::Progress;
use crate::trial::{self, Ident, Record, Standing};
use minisign_verify::PublicKey;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// imgfetch's validators cache, beside the image on the medium (where /init reads it).
pub const CACHE: &str = "fetch.cache";
/// Cluster rounding and directory entries: FAT32 on a big card has 32 KiB clusters.
const SLACK: u64 = 256 << 10;
/// Step names of the rotation, in `Pair::files()` order (manifest first, image last).
const OLD_STEPS: [&str; 8] = ["old-manifest", "old-sig", "old-roothash", "old-verity", "old-kernel", "old-initrd", "old-uki", "old-image"];
const NEW_STEPS: [&str; 8] = ["new-manifest", "new-sig", "new-roothash", "new-verity", "new-kernel", "new-initrd", "new-uki", "new-image"];

/// Every change syncflash makes to the medium. [`RealIo`] makes them; the model check's makes
/// them too, failing or cutting the one it was asked to.
pub trait Io {
    fn remove(&mut self, p: &Path) -> Result<()>;
    /// Rename to a name that does not exist (the caller checked).
    fn rename(&mut self, from: &Path, to: &Path) -> Result<()>;
    /// Rename over an existing name. syncflash never makes one (not atomic on FAT); the loader
    /// does, for its entry files only: each smaller than a cluster and fsynced under its
    /// temporary name first (src/loader.rs says why a cut leaves the old or the new one).
    fn replace(&mut self, from: &Path, to: &Path) -> Result<()>;
    /// A directory and its missing parents.
    fn create_dir(&mut self, p: &Path) -> Result<()>;
    /// Copy a file to a new one, fsync it, drop its pages. `hook`: the image (`write-half`).
    /// `want`: the SHA-256 the bytes written must have (hashed as they are written); else an
    /// error, the new file left for the caller to remove.
    fn copy(&mut self, from: &Path, to: &Path, progress: bool, hook: bool, want: Option<&[u8; 32]>) -> Result<()>;
    /// A small new file, fsynced, its pages dropped.
    fn write_small(&mut self, p: &Path, data: &[u8]) -> Result<()>;
    /// Make the directory's changes durable, in order.
    fn sync_dir(&mut self, dir: &Path) -> Result<()>;
    /// Create the trial file holding `r` (none on the medium: a flash from before trials).
    fn trial_create(&mut self, file: &Path, r: &Record) -> Result<()>;
    /// Rewrite the trial record with what `decide` makes of it (None: nothing).
    fn trial_update(&mut self, file: &Path, decide: &dyn Fn(Option<&Record>) -> Option<Record>) -> Result<Option<Record>>;
    /// The read-back of the written pair, as a step that can fail (a card that reads back
    /// something else).
    fn read_back(&mut self) -> Result<()> {
        Ok(())
    }
    /// The medium read-write (`ro` false) or back read-only; whether it did anything.
    fn remount(&mut self, ro: bool) -> Result<bool>;
    /// A named point of the run (the power-cut tests' pause points).
    fn step(&mut self, _name: &str) {}
    /// The first physical block of a file (None: none there); Err: the file system cannot tell.
    fn first_block(&mut self, p: &Path) -> std::result::Result<Option<u32>, String> {
        first_block(p)
    }
}

/// The new pair as checked at its source: its files and what its manifest vouches for.
pub struct Source {
    pub files: Files,
    pub trusted: Trusted,
    pub size: u64,
    /// Bytes of the whole pair (image, sidecars, manifest, signature).
    pub total: u64,
    /// imgfetch's validators cache for the medium, when the one beside the state is about this
    /// version; None: remove the medium's (see `put_cache`).
    pub cache: Option<String>,
}

impl Source {
    fn has_sidecars(&self) -> bool {
        self.trusted.roothash.is_some()
    }
    fn ident(&self) -> Ident {
        Ident { version: self.trusted.version.unwrap_or(0), sha256: self.trusted.sha256 }
    }
}

/// Check the new pair where it is: manifest (signature with a key, binding of `name`,
/// sidecars), the `.verity` tree, and the image unless the boot already hashed it to the
/// manifest's digest. Nothing is written.
pub fn read_source(files: Files, name: &str, key: Option<&PublicKey>, vouched: Option<[u8; 32]>) -> Result<Source> {
    let trusted = pairs::check_files(&files, name, key)?;
    pairs::check_verity_file(&files, &trusted)?;
    pairs::check_boot_files(&files, &trusted)?;
    if vouched != Some(trusted.sha256) {
        pairs::check_image_file(&files, &trusted, None)?;
    }
    let size = std::fs::metadata(&files.image).ctx(files.image.display())?.len();
    let mut total = size
        .saturating_add(trusted.manifest.len() as u64)
        .saturating_add(trusted.sig.as_ref().map_or(0, |s| s.len() as u64));
    if trusted.roothash.is_some() {
        for p in [&files.verity, &files.roothash] {
            total = total.saturating_add(std::fs::metadata(p).ctx(p.display())?.len());
        }
    }
    if let Some(b) = trusted.boot {
        for (p, _, _) in b.listed(&files) {
            total = total.saturating_add(std::fs::metadata(p).ctx(p.display())?.len());
        }
    }
    Ok(Source { files, trusted, size, total, cache: None })
}

/// What to do, besides the source.
pub struct Job<'a> {
    pub key: Option<&'a PublicKey>,
    /// The directory of the pairs on the medium, and the image's name there.
    pub dir: PathBuf,
    pub name: String,
    /// The pair /init booted from this medium (`medium_pair=`: primary, old, new; "" none).
    pub booted: String,
    /// The image the box runs (`image_sha256=`, `image_version=`), if known.
    pub running: Option<Ident>,
    /// LiveOS/trial.state beside the image.
    pub trial_file: PathBuf,
    /// Boots the new image gets to call mark-good; 0: it is written untried (rd.live.tries=0).
    pub tries: u8,
    /// The lowest version the initramfs boots (`min_version=` in the state).
    pub min_version: u64,
    pub allow_downgrade: bool,
    pub dry_run: bool,
    pub progress: bool,
}

/// One pair on the medium as the keeper choice sees it.
#[derive(Debug)]
struct Candidate {
    sfx: &'static str,
    version: u64,
    standing: Standing,
}

// Written to the descriptors directly: print! would panic on a closed stdout. The unit tests
// (the model check) go through print!, which the test harness captures.
#[cfg(not(test))]
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(not(test))]
fn warn(text: &str) {
    let _ = std::io::stderr().write_all(format!("syncflash: warning: {text}\n").as_bytes());
}

#[cfg(test)]
fn say(text: &str) {
    print!("{text}");
}

#[cfg(test)]
fn warn(text: &str) {
    eprintln!("syncflash: warning: {text}");
}


fn show(p: &Path) -> String {
    p.display().to_string()
}

/// Is pair `p` one the box can boot from: manifest (and, with a key, signature), sidecars and
/// image all verify. The image of the pair /init booted (`booted`) is not read again.
fn pair_trusted(p: &Pair, key: Option<&PublicKey>, booted: bool) -> Result<Trusted> {
    let t = pairs::check_manifest(p, key)?;
    pairs::check_verity_file(&p.paths(), &t)?;
    if !booted {
        pairs::check_image(p, &t, None)?;
    }
    Ok(t)
}

/// The keeper among the pairs that may be kept (module doc): the booted one unless it is on
/// trial, else the newest good one, else the first in boot order. Err: the only choice is on
/// trial.
fn choose_keeper<'c>(c: &'c [Candidate], booted: &str) -> std::result::Result<Option<&'c Candidate>, &'c Candidate> {
    if let Some(b) = c.iter().find(|x| pairs::label(x.sfx) == booted && x.standing != Standing::Trial) {
        return Ok(Some(b));
    }
    // The first of the highest version (primary before .old before .new).
    let newest = |f: &dyn Fn(&Candidate) -> bool| c.iter().rev().filter(|x| f(x)).max_by_key(|x| x.version);
    if let Some(g) = newest(&|x| x.standing == Standing::Good) {
        return Ok(Some(g));
    }
    // Nothing known of them: the one /init would boot (the first in boot order).
    match c.iter().find(|x| x.standing == Standing::Unknown) {
        Some(u) => Ok(Some(u)),
        None => c.first().map_or(Ok(None), Err),
    }
}

/// Everything after the source was checked. Ok(true) when the medium now holds the new pair.
pub fn sync(job: &Job, src: &Source, io: &mut dyn Io) -> Result<bool> {
    io.step("preflight");
    let dir = &job.dir;
    if !dir.is_dir() {
        return Err(Error::new(show(dir), "no such directory on the medium"));
    }
    let name = job.name.as_str();
    let pair = |sfx: &str| Pair::new(dir, name, sfx);
    let record = match trial::read(&job.trial_file) {
        Ok(c) => c.and_then(|c| c.record),
        Err(e) => return Err(Error::new(e.object, format!("{}; nothing written", e.reason))),
    };
    let floor = record.as_ref().map_or(0, |r| r.floor);
    let new = src.ident();
    // The image the box runs is still on trial: its trial is not over, and writing another
    // image would end it unfinished (the record holds one), leaving it to be deleted or to
    // raise the floor at its mark-good above everything the medium still holds.
    if let Some(r) = job.running.filter(|r| *r != new && trial::standing(record.as_ref(), r) == Standing::Trial) {
        return Err(Error::new(
            show(&src.files.image),
            format!("the running {} is on trial: run liveinit mark-good first (or let it fall back); nothing written", r.label()),
        ));
    }
    if trial::standing(record.as_ref(), &new) == Standing::Failed {
        return Err(Error::new(show(&src.files.image), format!("{} failed its trial on this box; nothing written", new.label())));
    }
    if job.key.is_some() && src.trusted.version.is_some() {
        let v = new.version;
        if v < job.min_version {
            return Err(Error::new(
                show(&src.files.image),
                format!("version {v} is below the minimum {} built into the initramfs: it would not boot; nothing written", job.min_version),
            ));
        }
        if v < floor && !job.allow_downgrade {
            return Err(Error::new(
                show(&src.files.image),
                format!("version {v} is below version {floor} marked good: a downgrade (--allow-downgrade writes it); nothing written"),
            ));
        }
    }

    // The pairs that may be kept, each passed over named with its reason.
    let mut cands = Vec::new();
    let mut present = Vec::new();
    for sfx in SUFFIXES {
        let p = pair(sfx);
        if !p.files().iter().any(|f| f.exists()) {
            continue;
        }
        present.push(sfx);
        let t = match pair_trusted(&p, job.key, p.label() == job.booted) {
            Ok(t) => t,
            Err(e) => {
                say(&format!("syncflash: {} pair not kept: {e}\n", p.label()));
                continue;
            }
        };
        if t.manifest == src.trusted.manifest && t.sig == src.trusted.sig && sfx.is_empty() {
            return Err(Error::new(
                show(&p.image()),
                format!("already holds this image (sha256 {}); nothing written", hex(&src.trusted.sha256)),
            )
            .code(Code::NoChange));
        }
        let id = Ident { version: t.version.unwrap_or(0), sha256: t.sha256 };
        let standing = trial::standing(record.as_ref(), &id);
        let why = if standing == Standing::Failed {
            Some(format!("{} failed its trial", id.label()))
        } else if job.key.is_some() && id.version < job.min_version {
            Some(format!("version {} is below the minimum {} built into the initramfs", id.version, job.min_version))
        } else if job.key.is_some() && id.version < floor {
            Some(format!("version {} is below version {floor} marked good", id.version))
        } else {
            None
        };
        match why {
            Some(w) => say(&format!("syncflash: {} pair not kept: {w}\n", p.label())),
            None => cands.push(Candidate { sfx, version: id.version, standing }),
        }
    }
    let keeper = match choose_keeper(&cands, &job.booted) {
        Ok(k) => k,
        Err(t) => {
            return Err(Error::new(
                show(&pair(t.sfx).image()),
                format!(
                    "version {} is on trial and the only image to keep: giving its trial up would leave no image known to work; \
                     boot it and run liveinit mark-good first (or let it fall back); nothing written",
                    t.version
                ),
            ))
        }
    };
    let keep_sfx = keeper.map(|k| k.sfx);
    // A `.new` keeper caught half-way through its move to the primary is moved the rest of the
    // way first (write_and_rotate): it is the primary then.
    let split_new = keep_sfx == Some(".new") && pair(".new").resolved() != pair(".new").files();
    // The new pair goes beside the keeper: `.new` next to a primary keeper, else the primary.
    let target = if keep_sfx == Some("") || split_new { ".new" } else { "" };

    // Room: the new pair beside the keeper; everything else goes.
    // A keeper half-way through its move to `.old` owns files under the primary names.
    let kept: Vec<PathBuf> = keep_sfx.map(|k| pair(k).resolved().to_vec()).unwrap_or_default();
    // Every doomed pair's manifest goes first: from the first deletion on none of them verifies.
    // A pair caught half-way through its move from `.new` has its manifest under `.new` and its
    // other files under the primary's names; deleted pair by pair, a cut or a failed deletion
    // left it verifying without its kernel or initramfs (or hash tree), which a boot that
    // reached it would then start (the model check found it).
    let gone: Vec<Pair> = present.iter().filter(|s| Some(**s) != keep_sfx).map(|s| pair(s)).collect();
    let doomed: Vec<PathBuf> = gone
        .iter()
        .map(|p| p.manifest())
        .chain(gone.iter().flat_map(|p| p.files().into_iter().skip(1)))
        .filter(|p| p.exists() && !kept.contains(p))
        .collect();
    if let Some(k) = keep_sfx {
        refuse_shared(&pair(k), &doomed, io)?;
    }
    let freed: u64 = doomed.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let need = src.total.saturating_add(SLACK);
    let vfs = nix::sys::statvfs::statvfs(dir.as_path()).ctx(dir.display())?;
    let free = (vfs.blocks_available() as u64).saturating_mul(vfs.fragment_size() as u64);
    if free.saturating_add(freed) < need {
        return Err(Error::new(
            show(dir),
            format!(
                "no room for the new image beside the current one: needs {}, has {} free{}; nothing written",
                mib(need),
                mib(free),
                if freed > 0 { format!(" (+{} from old files)", mib(freed)) } else { String::new() }
            ),
        ));
    }

    let keeper_txt = match keep_sfx {
        Some("") => format!("current image {} (becomes {name}.old)", show(&pair("").image())),
        Some(s) => format!("fallback {}", show(&pair(s).image())),
        None => "no verified image on the medium".to_owned(),
    };
    if job.dry_run {
        let mut plan = format!(
            "syncflash: would write {} ({}{}) to {}, keeping the {keeper_txt}\n",
            src.files.image.display(),
            mib(src.size),
            if src.has_sidecars() { ", with its verity sidecars" } else { "" },
            show(&pair(target).image())
        );
        for p in &doomed {
            plan.push_str(&format!("syncflash: would delete {}\n", p.display()));
        }
        let c = dir.join(CACHE);
        if src.cache.is_some() {
            plan.push_str(&format!("syncflash: would write {} (the server's validators for this version)\n", c.display()));
        } else if c.exists() {
            plan.push_str(&format!("syncflash: would delete {} (about another version)\n", c.display()));
        }
        say(&plan);
        return Ok(false);
    }

    io.step("remount-rw");
    let remounted = io.remount(false)?;
    let keep_version = keeper.map_or(0, |k| k.version);
    // A downgrade written on purpose lowers the floor to it (start_trial): from this floor.
    let downgrade_from = (job.allow_downgrade && new.version > 0 && new.version < floor).then_some(floor);
    let res = write_and_rotate(job, src, io, keep_sfx, target, (keep_version, downgrade_from), &doomed);
    if remounted {
        io.step("remount-ro");
        let r = io.remount(true);
        if res.is_ok() {
            r?;
        }
    }
    res?;
    say(&format!(
        "syncflash: {} now holds sha256 {}{}{}\n",
        show(&pair("").image()),
        hex(&src.trusted.sha256),
        if src.has_sidecars() { " (with its verity sidecars)" } else { "" },
        match keep_sfx {
            Some("") => format!("; the previous image is {name}.old"),
            Some(_) if split_new => format!("; the previous image is {name}.old"),
            Some(s) => format!("; the previous image is {name}{s}"),
            None => String::new(),
        }
    ));
    Ok(true)
}

/// `keep`: the kept pair's version, and the floor a downgrade lowers (see [`start_trial`]).
fn write_and_rotate(job: &Job, src: &Source, io: &mut dyn Io, keeper: Option<&str>, target: &str, keep: (u64, Option<u64>), doomed: &[PathBuf]) -> Result<()> {
    let dir = job.dir.as_path();
    let name = job.name.as_str();
    let (prim, old, new) = (Pair::new(dir, name, ""), Pair::new(dir, name, ".old"), Pair::new(dir, name, target));

    io.step("delete");
    for p in doomed {
        io.remove(p)?;
    }
    io.sync_dir(dir)?;
    // A keeper half-way through its move (a cut rotation) is moved the rest of the way, each
    // rename leaving it complete (pairs::Pair::resolved): to `.old` after its manifest, or from
    // `.new` to the primary, its manifest last.
    let mut keeper = keeper;
    if keeper == Some(".old") {
        io.step("finish-old");
        for (from, to) in prim.files().iter().zip(old.files()) {
            if !to.exists() {
                rename_fresh(io, dir, from, &to)?;
            }
        }
    }
    if keeper == Some(".new") && target == ".new" {
        io.step("finish-new");
        let moving = Pair::new(dir, name, ".new");
        for (from, to) in moving.files().iter().zip(prim.files()).rev() {
            if !to.exists() {
                rename_fresh(io, dir, from, &to)?;
            }
        }
        keeper = Some("");
    }

    // The image and its sidecars first, the manifest last; with the primary as the target, the
    // trial record before the manifest: from then on a boot may choose it.
    io.step("write-image");
    say(&format!("syncflash: writing {} ({})\n", new.image().display(), mib(src.size)));
    let written = (|| -> Result<()> {
        io.copy(&src.files.image, &new.image(), job.progress, true, None)?;
        io.step("write-sidecars");
        if src.has_sidecars() {
            io.copy(&src.files.verity, &new.verity(), false, false, None)?;
            io.copy(&src.files.roothash, &new.roothash(), false, false, None)?;
        }
        // A release's own kernel and initramfs travel with it (the boot kexecs into them), and
        // its signed unified image (the loader starts it under Secure Boot once it is good).
        if let Some(b) = src.trusted.boot {
            io.copy(&src.files.kernel, &new.kernel(), false, false, None)?;
            io.copy(&src.files.initrd, &new.initrd(), false, false, None)?;
            if b.uki.is_some() {
                io.copy(&src.files.uki, &new.uki(), false, false, None)?;
            }
        }
        io.step("write-manifest");
        if let Some(sig) = &src.trusted.sig {
            io.write_small(&new.sig(), sig)?;
        }
        if target.is_empty() {
            start_trial(job, src, io, keep)?;
        }
        io.write_small(&new.manifest(), &src.trusted.manifest)?;
        io.sync_dir(dir)?;
        // Read back from the card (pages dropped after writing) with the checks the boot makes.
        io.step("verify");
        io.read_back()?;
        read_back(job, src, &new)
    })();
    if let Err(e) = written {
        for f in new.files() {
            if f.exists() {
                let _ = io.remove(&f);
            }
        }
        let _ = io.sync_dir(dir);
        return Err(Error::new(e.object, format!("{}; the new files removed, the kept image untouched", e.reason)).code(e.code));
    }
    if target.is_empty() {
        settle_trial(job, src, io);
        return put_cache(&dir.join(CACHE), src, io, dir);
    }

    // The trial record before the renames make it the primary: a cut after the last rename
    // must not leave a new primary that boots untried. A record about the `.new` pair while the
    // current primary still boots is harmless: that boot is not about it and spends nothing.
    if let Err(e) = start_trial(job, src, io, keep) {
        for f in new.files() {
            let _ = io.remove(&f);
        }
        let _ = io.sync_dir(dir);
        return Err(Error::new(e.object, format!("{}; the new files removed, the current image untouched", e.reason)));
    }

    // Rotation: renames to names that do not exist, one at a time. While the primary's go to
    // `.old` (manifest first), `.new` is complete; while `.new`'s come back (manifest last),
    // `.old` is.
    if keeper == Some("") {
        for (stepname, (from, to)) in OLD_STEPS.iter().zip(prim.files().iter().zip(old.files())) {
            io.step(stepname);
            rename_fresh(io, dir, from, &to)?;
        }
    }
    for (stepname, (from, to)) in NEW_STEPS.iter().zip(new.files().iter().zip(prim.files())).rev() {
        io.step(stepname);
        rename_fresh(io, dir, from, &to)?;
    }
    settle_trial(job, src, io);
    put_cache(&dir.join(CACHE), src, io, dir)
}

/// The new pair is on trial (src/trial.rs) until the system it boots calls `liveinit
/// mark-good`; the trial falls back to the kept pair's version, which becomes the floor. A
/// record already about this image (a fetched image on trial, or one marked good) is kept: its
/// trial goes on from the flash ([`settle_trial`] once the flash holds it). A medium without
/// the file (a flash from before trials) gets one. A record that cannot be written is an
/// error: the new image must not boot untried.
/// A downgrade written on purpose (`keep.1`: --allow-downgrade, from that floor) lowers the
/// floor to it, else the boot would refuse it as a rollback; it is on trial like any new image.
fn start_trial(job: &Job, src: &Source, io: &mut dyn Io, keep: (u64, Option<u64>)) -> Result<()> {
    let file = job.trial_file.as_path();
    let img = src.ident();
    let running = job.running == Some(img);
    let (keep, downgrade_from) = keep;
    let down = downgrade_from.is_some();
    if job.tries == 0 && !down {
        say("syncflash: 0 tries (rd.live.tries=0): the new image boots untried; no trial written\n");
        return Ok(());
    }
    let s = trial::Start { tries: job.tries.max(1), keep: if down { 0 } else { keep } };
    if !file.exists() {
        let r = trial::begin(None, &img, s, running);
        io.trial_create(file, &r)?;
        io.sync_dir(file.parent().unwrap_or(Path::new("/")))?;
        say(&format!("syncflash: {}: created (a medium from before trials); the new image is on trial: {} boots to call liveinit mark-good\n", show(file), job.tries));
        return Ok(());
    }
    let r = io.trial_update(file, &|c| {
        let r = trial::pending(c, &img, s, running);
        if down {
            return r.map(|r| Record { floor: img.version, ..r });
        }
        r
    })?;
    if let Some(from) = downgrade_from {
        say(&format!("syncflash: --allow-downgrade: the floor is lowered from {from} to {}\n", img.version));
    }
    match r {
        Some(_) => say(&format!("syncflash: the new image is on trial: {} boots to call liveinit mark-good\n", job.tries)),
        None => say("syncflash: the trial state already covers this image; kept\n"),
    }
    Ok(())
}

/// The flash holds the new pair whole: a record that said the image was not the flash's (it
/// runs from RAM) now does, and one marked good raises the floor. A write that fails is a
/// warning: the floor then stays where it was, which costs nothing but rollback protection.
fn settle_trial(job: &Job, src: &Source, io: &mut dyn Io) {
    let file = job.trial_file.as_path();
    let img = src.ident();
    if !file.exists() {
        return;
    }
    match io.trial_update(file, &|c| trial::settled(c, &img)) {
        Ok(Some(r)) => say(&format!(
            "syncflash: the image's trial goes on from the flash ({}{})\n",
            r.status.name(),
            if r.status == trial::Status::Good { format!(", floor {}", r.floor) } else { String::new() }
        )),
        Ok(None) => {}
        Err(e) => warn(&format!("{e}: the trial record still says the image is not the flash's (no floor from it yet)")),
    }
}

/// The medium's validators cache after the rotation: this version's, or none. In place (no
/// rename): the file is an unsigned hint, a 304 to it only ever means "do nothing", and a torn
/// or stale one does not parse or does not match the floor, costing one full check; a FAT
/// rename cut by a power loss could instead leave two names on one cluster chain. Never an
/// error: the image is written.
fn put_cache(file: &Path, src: &Source, io: &mut dyn Io, dir: &Path) -> Result<()> {
    let r = match &src.cache {
        Some(text) => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(file)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.set_len(text.len() as u64)?;
                f.sync_all()
            })
            .map(|_| true)
            .map_err(|e| crate::error::io_reason(&e)),
        None if !file.exists() => return Ok(()),
        None => io.remove(file).map(|_| false).map_err(|e| e.reason),
    };
    match r.and_then(|w| io.sync_dir(dir).map(|_| w).map_err(|e| e.reason)) {
        Ok(true) => say(&format!("syncflash: {}: the server's validators for this version (the next boot's check is one request)\n", show(file))),
        Ok(false) => say(&format!("syncflash: {}: removed (about the image replaced)\n", show(file))),
        Err(why) => warn(&format!("{}: {why}: the next boot's check is a full one", show(file))),
    }
    Ok(())
}

/// The written pair as the card holds it must be exactly the source pair, and verify.
fn read_back(job: &Job, src: &Source, new: &Pair) -> Result<()> {
    let t = pairs::check_manifest(new, job.key).map_err(|e| Error::verify(e.object, format!("read back: {}", e.reason)))?;
    if t.manifest != src.trusted.manifest || t.sig != src.trusted.sig || t.roothash != src.trusted.roothash {
        return Err(Error::verify(show(&new.manifest()), "read back differs from the source"));
    }
    pairs::check_verity_file(&new.paths(), &t).map_err(|e| Error::verify(e.object, format!("read back: {}", e.reason)))?;
    pairs::check_boot_files(&new.paths(), &t).map_err(|e| Error::verify(e.object, format!("read back: {}", e.reason)))?;
    let mut p = job.progress.then(|| Progress::on_stderr("verify", Some(src.size)));
    pairs::check_image(new, &t, p.as_mut()).map_err(|e| Error::verify(e.object, "read back does not match the manifest (bad card or image?)"))
}

/// First physical block of a file (None: empty, or no block at its start, so deleting it
/// frees nothing there). Err: the filesystem cannot tell (no FIBMAP: tmpfs, btrfs...).
fn first_block(p: &Path) -> std::result::Result<Option<u32>, String> {
    let f = File::open(p).map_err(|e| crate::error::io_reason(&e))?;
    if f.metadata().map_err(|e| crate::error::io_reason(&e))?.len() == 0 {
        return Ok(None);
    }
    match crate::sys::fibmap::physical_block(&f, 0) {
        Ok(0) => Ok(None),
        Ok(b) => Ok(Some(b)),
        Err(e) => Err(e.desc().to_owned()),
    }
}

/// A power cut inside a FAT rename can leave the old and the new name on one cluster chain.
/// Deleting the doomed name would then free the keeper's data: refuse, write nothing. Where
/// FIBMAP cannot answer, sharing cannot be ruled out: refuse too (fail closed).
fn refuse_shared(keeper: &Pair, doomed: &[PathBuf], io: &mut dyn Io) -> Result<()> {
    let closed = |p: &Path, why: String| {
        Error::new(
            show(p),
            format!(
                "FIBMAP cannot tell where its data lies ({why}), so deleting the old files could free the kept \
                 pair's; refusing (use a FAT32 or ext4 medium, or remove the stale files by hand); nothing written"
            ),
        )
    };
    if doomed.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::new();
    for p in keeper.resolved().into_iter().filter(|p| p.exists()) {
        match io.first_block(&p) {
            Ok(Some(b)) => kept.push((p, b)),
            Ok(None) => {}
            Err(why) => return Err(closed(&p, why)),
        }
    }
    for d in doomed {
        let b = match io.first_block(d) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(why) => return Err(closed(d, why)),
        };
        if let Some((p, _)) = kept.iter().find(|(_, kb)| *kb == b) {
            return Err(Error::new(
                show(d),
                format!(
                    "shares its data with {} (a rename cut by a power loss); repair the medium (fsck.vfat -a) first; nothing written",
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Rename to a name that must not exist (never a replacing rename: not atomic on FAT), then
/// make it durable. A missing source (an unsigned pair has no .minisig) is skipped.
fn rename_fresh(io: &mut dyn Io, dir: &Path, from: &Path, to: &Path) -> Result<()> {
    if !from.exists() {
        return Ok(());
    }
    if to.exists() {
        return Err(Error::new(to.display().to_string(), "exists; refusing to rename over it"));
    }
    io.rename(from, to)?;
    io.sync_dir(dir)
}

// ---- the real thing ---------------------------------------------------------------------------

/// The writes as syncflash makes them on a medium mounted at `root`.
pub struct RealIo {
    pub root: PathBuf,
    /// The test hook's pause points (applets/syncflash.rs).
    pub step: fn(&str),
}

fn create(p: &Path) -> Result<File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(p).ctx(p.display())
}

impl Io for RealIo {
    fn remove(&mut self, p: &Path) -> Result<()> {
        std::fs::remove_file(p).ctx(p.display())
    }
    fn rename(&mut self, from: &Path, to: &Path) -> Result<()> {
        std::fs::rename(from, to).ctx(to.display())
    }
    fn replace(&mut self, from: &Path, to: &Path) -> Result<()> {
        std::fs::rename(from, to).ctx(to.display())
    }
    fn create_dir(&mut self, p: &Path) -> Result<()> {
        std::fs::create_dir_all(p).ctx(p.display())
    }
    /// Copy `from` to a new file `to`, fsync it and drop its pages so the read-back comes from
    /// the card, not from the cache.
    fn copy(&mut self, from: &Path, to: &Path, progress: bool, hook: bool, want: Option<&[u8; 32]>) -> Result<()> {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice as Adv};
        let mut src = File::open(from).ctx(from.display())?;
        let (from, dest) = (show(from), show(to));
        let size = src.metadata().ctx(&from)?.len();
        let _ = posix_fadvise(src.as_raw_fd(), 0, 0, Adv::POSIX_FADV_SEQUENTIAL);
        let mut dst = create(to)?;
        let mut p = progress.then(|| Progress::on_stderr("write", Some(size)));
        let mut h = want.map(|_| crate::digest::Hasher::new(false));
        let step = self.step;
        let mut half = false;
        let done = crate::ramcopy::copy_through(&mut src, &mut dst, &mut vec![0u8; 1 << 20], h.as_mut(), (&from, &dest), &mut |done| {
            if let Some(p) = p.as_mut() {
                p.update(done);
            }
            if hook && !half && done.saturating_mul(2) >= size {
                half = true;
                step("write-half");
            }
        })?;
        if let Some(p) = p.as_mut() {
            p.finish(done);
        }
        if let (Some(h), Some(want)) = (h, want) {
            if h.finish().sha256 != *want {
                return Err(Error::verify(from, "checksum mismatch with the signed manifest"));
            }
        }
        dst.sync_all().ctx(&dest)?;
        let _ = posix_fadvise(dst.as_raw_fd(), 0, 0, Adv::POSIX_FADV_DONTNEED);
        if done != size {
            return Err(Error::new(from, "changed size while being copied"));
        }
        Ok(())
    }
    fn write_small(&mut self, p: &Path, data: &[u8]) -> Result<()> {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice as Adv};
        let mut f = create(p)?;
        f.write_all(data).ctx(p.display())?;
        f.sync_all().ctx(p.display())?;
        let _ = posix_fadvise(f.as_raw_fd(), 0, 0, Adv::POSIX_FADV_DONTNEED);
        Ok(())
    }
    /// syncfs first, then fsync: on FAT a renamed file's directory entry gets its first cluster
    /// and size only when the file's inode is written back (syncfs does that), and syncfs issues
    /// no cache flush; the directory's fsync that follows does (fat_file_fsync). The other order
    /// left each rename's entry at cluster 0 on the card until the next step's flush, and the
    /// last one unflushed (tests/qemu/scenarios/syncflash-flushpoints.sh found both).
    fn sync_dir(&mut self, dir: &Path) -> Result<()> {
        let d = File::open(dir).ctx(dir.display())?;
        nix::unistd::syncfs(d.as_raw_fd()).ctx(dir.display())?;
        d.sync_all().ctx(dir.display())
    }
    fn trial_create(&mut self, file: &Path, r: &Record) -> Result<()> {
        trial::create_with(file, Some(r))
    }
    /// Through the device, as the boots write it (src/trial.rs RawStore). Kernels that refuse
    /// writes to a mounted block device (BLK_DEV_WRITE_MOUNTED=n, 6.8 on) say EPERM before
    /// anything is written; syncflash has the medium mounted read-write then, so the record
    /// goes through the file system instead (pwrite in place, fdatasync).
    fn trial_update(&mut self, file: &Path, decide: &dyn Fn(Option<&Record>) -> Option<Record>) -> Result<Option<Record>> {
        let eperm = crate::error::io_reason(&std::io::Error::from_raw_os_error(libc::EPERM));
        match trial::update(file, false, decide) {
            Err(e) if e.reason == eperm => trial::update(file, true, decide),
            r => r,
        }
    }
    fn remount(&mut self, ro: bool) -> Result<bool> {
        remount(&self.root, ro)
    }
    fn step(&mut self, name: &str) {
        (self.step)(name)
    }
}

/// The mount at exactly `dir`, if any: whether it is read-only.
fn mount_ro_state(dir: &Path) -> Option<bool> {
    crate::mountinfo::at(&crate::mountinfo::read(), dir).map(|m| m.read_only())
}

/// Remount the medium read-write (`ro` false) if it is a read-only mount, or back read-only.
/// Returns whether the read-write remount was done. A directory that is not a mount point is
/// used as it is.
pub fn remount(root: &Path, ro: bool) -> Result<bool> {
    use nix::mount::{mount, MsFlags};
    let dir = std::fs::canonicalize(root).ctx(root.display())?;
    let Some(is_ro) = mount_ro_state(&dir) else { return Ok(false) };
    if ro {
        return match mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>) {
            Ok(()) => Ok(true),
            // A deleted file still open (the image this system runs from, when its pair was not
            // kept) keeps the kernel from remounting read-only. Everything written is synced.
            Err(nix::errno::Errno::EBUSY) => {
                warn(&format!(
                    "{}: stays read-write: a deleted file on it is still open (the image this system runs from?); everything is synced",
                    dir.display()
                ));
                Ok(true)
            }
            Err(e) => Err(Error::sys(format!("{}: remount read-only", dir.display()), e)),
        };
    }
    if !is_ro {
        return Ok(false);
    }
    mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_REMOUNT, None::<&str>)
        .map_err(|e| Error::new(dir.display().to_string(), format!("cannot remount read-write: {}; nothing written", e.desc())))?;
    Ok(true)
}
