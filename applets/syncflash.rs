//! syncflash — write the image the box booted (fetched from the network into RAM) back to the
//! flash, so that no power cut at any moment leaves the flash without a complete, verified image.
//!
//! ```text
//! syncflash [--medium DIR] [--image FILE --manifest FILE [--sig FILE]] [--dry-run] [--progress]
//!           [--state FILE]
//! ```
//! With no arguments, in a live session, everything comes from `/run/live/state`: `image_file`
//! (the booted image; `SHA256SUMS` and `SHA256SUMS.minisig` beside it), `medium_mount` (or
//! `medium` + `medium_type`, mounted privately when the boot released it) and `image` (its path
//! on the medium, e.g. `LiveOS/squashfs.img`; default that).
//!
//! ## On the medium: three pairs, one directory
//! A *pair* is `IMG{S}` + `SHA256SUMS{S}` (+ `SHA256SUMS.minisig{S}`) with the same suffix S:
//! primary (no suffix), `.old`, `.new`. Manifests and signatures are copied byte for byte (they
//! name the image by its primary name), so a pair verifies under any suffix. A pair is
//! *complete* when its image and manifest exist (and its signature, when the boot has a key),
//! and *good* when it also verifies.
//!
//! No step relies on a rename that replaces an existing name (not atomic on FAT32); every
//! rename goes to a name that no longer exists, and each step is followed by fsync of the file
//! or directory and syncfs, so the steps reach the card in order:
//! 1. `preflight`: the new image is checked against its manifest (exit 3 if not: nothing
//!    written) — unless the state vouches for it (`image_file` is this file, `verified` is
//!    sha256/sig and `image_sha256` is the manifest's digest): then the read-back in step 3 is
//!    the only pass over it. A state digest that differs is ignored (the file is hashed). The *keeper* is chosen: the first good pair among primary, `.old`, `.new`
//!    (`medium_pair` in the state — the pair /init verified at boot — spares reading it). If
//!    the keeper is the primary and its manifest and signature are the new ones byte for byte:
//!    nothing to do (exit 5, nothing written: flash wear). Room: free space plus the files of
//!    the other pairs must hold the new pair. `--dry-run` stops here and says what it would do.
//!    A file to delete that shares its first block with a keeper file (FIBMAP: a FAT rename cut
//!    by a power loss leaves both names on one cluster chain) is refused: repair first.
//! 2. `remount-rw` (if the medium is mounted read-only), `delete`: the files of every pair but
//!    the keeper (stale `.old`, leftover `.new`, a bad primary). A keeper found under `.new`
//!    (a run cut during its renames) is renamed to `.old` (`keep-new`).
//! 3. `write-image`, `write-manifest`: `IMG.new`, then `SHA256SUMS.minisig.new` and
//!    `SHA256SUMS.new`, each fsynced; the manifest last, so `.new` is complete only once the
//!    image is entirely on the card. `verify`: cached pages dropped, read back, SHA-256 checked.
//! 4. `old-manifest`, `old-sig`, `old-image`: a primary keeper becomes `.old` (manifest first:
//!    the primary pair is incomplete at once, while `.new` is complete and verified).
//!    `new-image`, `new-sig`, `new-manifest`: `.new` becomes the primary (manifest last: the
//!    primary is complete only when all of it is in place; meanwhile `.old` is).
//! 5. `remount-ro`. `medium_pair=primary` is recorded in the state file (if it exists).
//!
//! So one `.old` pair always stays: the image the primary replaced (the previous keeper). It
//! is deleted at the start of the next syncflash, once the primary is known good.
//!
//! ## At boot (/init)
//! The first good pair among primary, `.old`, `.new` boots; a fallback says why the primary was
//! refused. The boot never writes to the flash: leftovers are removed by the next syncflash.
//!
//! ## Test hook
//! With `LIVEROOT_SYNCFLASH_PAUSE_AT=STEP` in the environment, syncflash prints
//! `syncflash-step NAME` on stderr before each step and, at STEP, sleeps for an hour (the tests
//! cut the power there). `write-half` is a point in the middle of the image write. Without the
//! variable nothing changes; it cannot make syncflash skip a step.
//!
//! Exit: 0 written, 1 refused or failed, 2 usage, 3 the new image does not match its manifest,
//! 5 the flash already holds this image.

use crate::digest::{hash_file, hex, Hasher, Progress};
use crate::error::{Code, Context, Error, Result};
use crate::manifest;
use crate::state;
use argh::FromArgs;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const SUMMARY: &str = "write the booted (fetched) image to the flash, safe against power cuts";

const SUMS: &str = "SHA256SUMS";
const SIG: &str = "SHA256SUMS.minisig";
const DEFAULT_IMAGE: &str = "LiveOS/squashfs.img";
/// Where the medium is mounted when the boot released it (rd.live.ram, a network boot).
const PRIVATE_MOUNT: &str = "/run/live/syncflash";
const SUFFIXES: [&str; 3] = ["", ".old", ".new"];
/// Cluster rounding and directory entries: FAT32 on a big card has 32 KiB clusters.
const SLACK: u64 = 256 << 10;

#[derive(FromArgs)]
/// Write the image this box booted (fetched into RAM) to the flash so the next boot is local.
/// The new pair is written as .new, verified by reading it back, then rotated in (the current
/// one becomes .old) with no instant at which the flash lacks a complete, verified image.
/// Exit codes: 0 written, 1 refused or failed, 2 usage, 3 image does not match its manifest,
/// 5 the flash already holds this image.
struct Args {
    #[argh(option)]
    /// the medium's root directory (default: medium_mount from the state, or the medium
    /// mounted privately)
    medium: Option<String>,
    #[argh(option)]
    /// the new image (default: image_file from the state)
    image: Option<String>,
    #[argh(option)]
    /// its SHA256SUMS (default: SHA256SUMS beside the image)
    manifest: Option<String>,
    #[argh(option)]
    /// its minisign signature (default: MANIFEST.minisig when it exists)
    sig: Option<String>,
    #[argh(option)]
    /// the image's path on the medium (default: image from the state, else LiveOS/squashfs.img)
    dest: Option<String>,
    #[argh(option)]
    /// the live state file (default: /run/live/state)
    state: Option<String>,
    #[argh(switch, short = 'n')]
    /// check and say what would be done; write nothing
    dry_run: bool,
    #[argh(switch)]
    /// show bytes, rate and ETA while writing and reading back
    progress: bool,
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

/// The test hook: announce each step; sleep at the chosen one so the host can cut the power.
fn step(name: &str) {
    let Ok(at) = std::env::var("LIVEROOT_SYNCFLASH_PAUSE_AT") else { return };
    let _ = std::io::stderr().write_all(format!("syncflash-step {name}\n").as_bytes());
    if at == name {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// The new pair as read from its source: manifest and signature bytes, the image's digest.
struct Source {
    image: String,
    manifest: Vec<u8>,
    sig: Option<Vec<u8>>,
    sha256: [u8; 32],
    size: u64,
}

struct Target {
    /// The directory holding the pairs, and the image's primary name in it.
    dir: PathBuf,
    name: String,
}

impl Target {
    fn path(&self, base: &str, sfx: &str) -> PathBuf {
        self.dir.join(format!("{base}{sfx}"))
    }
    /// The files of a pair, in the order they are renamed away (manifest first).
    fn files(&self, sfx: &str) -> [PathBuf; 3] {
        [self.path(SUMS, sfx), self.path(SIG, sfx), self.path(&self.name, sfx)]
    }
    fn exists(&self, base: &str, sfx: &str) -> bool {
        self.path(base, sfx).exists()
    }
    fn complete(&self, sfx: &str) -> bool {
        self.exists(&self.name, sfx) && self.exists(SUMS, sfx)
    }
    fn show(&self, base: &str, sfx: &str) -> String {
        self.path(base, sfx).display().to_string()
    }
}

pub fn run(argv: &[String]) -> Result<()> {
    let a: Args = crate::cli::parse(argv, "")?;
    if a.image.is_some() != a.manifest.is_some() {
        return Err(Error::usage("--image and --manifest go together\nTry 'syncflash --help' for more information."));
    }
    let state_path = a.state.clone().unwrap_or_else(|| state::DEFAULT_PATH.to_owned());
    let st = state::load(&state_path)?;
    let get = |k: &str| st.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();

    // The new pair.
    let (image, manifest_path) = match (&a.image, &a.manifest) {
        (Some(i), Some(m)) => (i.clone(), m.clone()),
        _ => {
            let f = get("image_file");
            if f.is_empty() {
                return Err(Error::new(
                    &state_path,
                    "no fetched image recorded (image_file); give --image and --manifest",
                ));
            }
            let dir = Path::new(&f).parent().map(|d| d.to_path_buf()).unwrap_or_default();
            (f, dir.join(SUMS).display().to_string())
        }
    };
    let sig_path = a.sig.clone().or_else(|| {
        let p = format!("{manifest_path}.minisig");
        Path::new(&p).exists().then_some(p)
    });

    // Where it goes.
    let dest = a.dest.clone().unwrap_or_else(|| {
        let i = get("image");
        if i.is_empty() { DEFAULT_IMAGE.to_owned() } else { i }
    });
    let dest = dest.trim_start_matches('/');
    let (rel_dir, name) = match dest.rsplit_once('/') {
        Some((d, n)) => (d.to_owned(), n.to_owned()),
        None => (String::new(), dest.to_owned()),
    };
    if name.is_empty() || name == "." || name == ".." || rel_dir.split('/').any(|c| c == "..") {
        return Err(Error::usage(format!("--dest: '{dest}' is not a file path on the medium")));
    }
    let (root, private) = match (&a.medium, get("medium_mount")) {
        (Some(m), _) => (m.clone(), false),
        (None, m) if !m.is_empty() => (m, false),
        (None, _) => {
            let dev = get("medium");
            if dev.is_empty() {
                return Err(Error::new(&state_path, "no medium recorded; give --medium DIR"));
            }
            if !Path::new(&dev).exists() {
                return Err(Error::new(&dev, "the medium is missing (unplugged?)"));
            }
            (PRIVATE_MOUNT.to_owned(), true)
        }
    };

    // The boot (or imgfetch) already hashed the image it booted: no second pass over it then;
    // the read-back from the card is checked against the manifest all the same.
    let vouched = (get("image_file") == image && matches!(get("verified").as_str(), "sha256" | "sig"))
        .then(|| crate::digest::parse_sha256(get("image_sha256").as_bytes()))
        .flatten();
    let src = read_source(&image, &manifest_path, sig_path.as_deref(), &name, vouched)?;

    if private {
        let dev = get("medium");
        std::fs::create_dir_all(PRIVATE_MOUNT).ctx(PRIVATE_MOUNT)?;
        let fstype = get("medium_type");
        mount_ro(&dev, PRIVATE_MOUNT, if fstype.is_empty() || fstype == "auto" { "vfat" } else { &fstype })?;
    }
    // What /init verified is about the live medium, not about another --medium.
    let booted_pair = if a.medium.is_some() { String::new() } else { get("medium_pair") };
    let res = sync(&a, &src, &root, &rel_dir, &name, &booted_pair);
    if private {
        let _ = nix::mount::umount(PRIVATE_MOUNT);
    }
    let done = res?;
    if done && a.medium.is_none() && Path::new(&state_path).exists() {
        state::set(&state_path, &[("medium_pair".to_owned(), "primary".to_owned())])?;
    }
    Ok(())
}

/// Read the new manifest (+ signature) and check the image against it. Nothing is written.
fn read_source(image: &str, manifest_path: &str, sig: Option<&str>, name: &str, vouched: Option<[u8; 32]>) -> Result<Source> {
    let data = manifest::read(manifest_path)?;
    let m = manifest::parse(manifest_path, &data)?;
    let base = Path::new(image).file_name().and_then(|n| n.to_str()).unwrap_or(name);
    let e = m.get(name.as_bytes()).or_else(|| m.get(base.as_bytes())).ok_or_else(|| {
        Error::verify(manifest_path, format!("no entry for {name}: nothing written"))
    })?;
    if e.name != name.as_bytes() {
        return Err(Error::verify(
            manifest_path,
            format!("lists the image as {base}, the medium calls it {name}: the boot could not verify it"),
        ));
    }
    let sig = match sig {
        Some(p) => Some(std::fs::read(p).ctx(p)?),
        None => None,
    };
    let f = File::open(image).ctx(image)?;
    let size = f.metadata().ctx(image)?.len();
    let sha256 = match vouched.filter(|d| *d == e.sha256) {
        Some(d) => d,
        None => {
            let mut h = Hasher::new(false);
            hash_file(&f, &mut h, None).ctx(image)?;
            h.finish().sha256
        }
    };
    if sha256 != e.sha256 {
        return Err(Error::verify(image, format!("does not match {manifest_path}: nothing written")));
    }
    Ok(Source { image: image.to_owned(), manifest: data, sig, sha256: e.sha256, size })
}

/// Does the pair `sfx` verify: its image against its manifest (the entry of the primary name)?
fn pair_good(t: &Target, sfx: &str) -> bool {
    if !t.complete(sfx) {
        return false;
    }
    let Ok(data) = std::fs::read(t.path(SUMS, sfx)) else { return false };
    let Ok(m) = manifest::parse("", &data) else { return false };
    let Some(e) = m.get(t.name.as_bytes()) else { return false };
    matches!(file_sha256(&t.path(&t.name, sfx), None), Ok(d) if d == e.sha256)
}

fn file_sha256(p: &Path, progress: Option<&mut Progress>) -> std::io::Result<[u8; 32]> {
    let f = File::open(p)?;
    let mut h = Hasher::new(false);
    hash_file(&f, &mut h, progress)?;
    Ok(h.finish().sha256)
}

/// Everything after the source checked. Ok(true) when the flash now holds the new pair.
fn sync(a: &Args, src: &Source, root: &str, rel_dir: &str, name: &str, booted_pair: &str) -> Result<bool> {
    step("preflight");
    let rootp = Path::new(root);
    if !rootp.is_dir() {
        return Err(Error::new(root, "the medium is missing (not a directory)"));
    }
    let t = Target { dir: rootp.join(rel_dir), name: name.to_owned() };
    if !t.dir.is_dir() {
        return Err(Error::new(t.dir.display().to_string(), "no such directory on the medium"));
    }

    // The keeper: the pair the box falls back on until the new one is in place.
    let known = match booted_pair {
        "primary" => Some(""),
        "old" => Some(".old"),
        "new" => Some(".new"),
        _ => None,
    };
    let keeper = SUFFIXES.into_iter().find(|s| t.complete(s) && (known == Some(*s) || pair_good(&t, s)));

    if keeper == Some("") {
        let same_sums = std::fs::read(t.path(SUMS, "")).ok().as_deref() == Some(&src.manifest[..]);
        let old_sig = std::fs::read(t.path(SIG, "")).ok();
        if same_sums && old_sig == src.sig {
            return Err(Error::new(
                t.show(name, ""),
                format!("already holds this image (sha256 {}); nothing written", hex(&src.sha256)),
            )
            .code(Code::NoChange));
        }
    }

    // Room: the new pair beside the keeper; everything else goes.
    let doomed: Vec<PathBuf> = SUFFIXES
        .iter()
        .filter(|s| Some(**s) != keeper)
        .flat_map(|s| t.files(s))
        .filter(|p| p.exists())
        .collect();
    refuse_shared(&t, keeper, &doomed)?;
    let freed: u64 = doomed.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let need = src.size + src.manifest.len() as u64 + src.sig.as_ref().map_or(0, |s| s.len() as u64) + SLACK;
    let vfs = nix::sys::statvfs::statvfs(&t.dir).ctx(t.dir.display())?;
    let free = vfs.blocks_available() as u64 * vfs.fragment_size() as u64;
    if free + freed < need {
        return Err(Error::new(
            t.dir.display().to_string(),
            format!(
                "no room for the new image beside the current one: needs {}, has {} free{}; nothing written",
                mib(need),
                mib(free),
                if freed > 0 { format!(" (+{} from old files)", mib(freed)) } else { String::new() }
            ),
        ));
    }

    let keeper_txt = match keeper {
        Some("") => format!("current image {} (becomes {}.old)", t.show(name, ""), name),
        Some(s) => format!("fallback {}", t.show(name, s)),
        None => "no verified image on the medium".to_owned(),
    };
    if a.dry_run {
        let mut plan = format!("syncflash: would write {} ({}) to {}.new, keeping the {keeper_txt}\n", src.image, mib(src.size), t.show(name, ""));
        for p in &doomed {
            plan.push_str(&format!("syncflash: would delete {}\n", p.display()));
        }
        say(&plan);
        return Ok(false);
    }

    step("remount-rw");
    let remounted = remount(root, false)?;
    let res = write_and_rotate(a, src, &t, keeper, &doomed);
    if remounted {
        step("remount-ro");
        let r = remount(root, true);
        if res.is_ok() {
            r?;
        }
    }
    res?;
    say(&format!(
        "syncflash: {} now holds sha256 {}{}\n",
        t.show(name, ""),
        hex(&src.sha256),
        if keeper.is_some() { format!("; the previous image is {}.old", name) } else { String::new() }
    ));
    Ok(true)
}

fn write_and_rotate(a: &Args, src: &Source, t: &Target, keeper: Option<&str>, doomed: &[PathBuf]) -> Result<()> {
    let dir = File::open(&t.dir).ctx(t.dir.display())?;
    let sync_dir = || -> Result<()> {
        dir.sync_all().ctx(t.dir.display())?;
        nix::unistd::syncfs(dir.as_raw_fd()).ctx(t.dir.display())
    };

    step("delete");
    for p in doomed {
        std::fs::remove_file(p).ctx(p.display())?;
    }
    sync_dir()?;
    if keeper == Some(".new") {
        step("keep-new");
        for (from, to) in t.files(".new").iter().zip(t.files(".old")) {
            rename_fresh(from, &to, &sync_dir)?;
        }
    }

    // The new pair: the image first, the manifest last.
    step("write-image");
    let new_img = t.path(&t.name, ".new");
    say(&format!("syncflash: writing {} ({})\n", new_img.display(), mib(src.size)));
    copy_file(&src.image, &new_img, src.size, a.progress)?;
    step("write-manifest");
    if let Some(sig) = &src.sig {
        write_small(&t.path(SIG, ".new"), sig)?;
    }
    write_small(&t.path(SUMS, ".new"), &src.manifest)?;
    sync_dir()?;

    step("verify");
    let mut p = a.progress.then(|| Progress::new("verify", Some(src.size)));
    let d = file_sha256(&new_img, p.as_mut()).ctx(new_img.display())?;
    if d != src.sha256 {
        for f in t.files(".new") {
            let _ = std::fs::remove_file(f);
        }
        let _ = sync_dir();
        return Err(Error::verify(
            new_img.display().to_string(),
            "read back does not match the manifest (bad card or image?); removed, the current image is untouched",
        ));
    }
    for (base, want) in [(SUMS, Some(&src.manifest)), (SIG, src.sig.as_ref())] {
        let Some(want) = want else { continue };
        let p = t.path(base, ".new");
        if std::fs::read(&p).ctx(p.display())? != *want {
            return Err(Error::verify(p.display().to_string(), "read back differs; the current image is untouched"));
        }
    }

    // Rotation: renames to names that do not exist, one at a time.
    if keeper == Some("") {
        for (stepname, (from, to)) in ["old-manifest", "old-sig", "old-image"].iter().zip(t.files("").iter().zip(t.files(".old"))) {
            step(stepname);
            rename_fresh(from, &to, &sync_dir)?;
        }
    }
    let new = t.files(".new");
    let prim = t.files("");
    for (stepname, i) in [("new-image", 2), ("new-sig", 1), ("new-manifest", 0)] {
        step(stepname);
        rename_fresh(&new[i], &prim[i], &sync_dir)?;
    }
    Ok(())
}

/// First physical block of a non-empty file, where the filesystem tells (FIBMAP).
fn first_block(p: &Path) -> Option<u32> {
    let f = File::open(p).ok()?;
    if f.metadata().ok()?.len() == 0 {
        return None;
    }
    crate::sys::fibmap::physical_block(&f, 0).ok().filter(|b| *b != 0)
}

/// A power cut inside a FAT rename can leave the old and the new name on one cluster chain.
/// Deleting the doomed name would then free the keeper's data: refuse, write nothing.
fn refuse_shared(t: &Target, keeper: Option<&str>, doomed: &[PathBuf]) -> Result<()> {
    let Some(k) = keeper else { return Ok(()) };
    let kept: Vec<(PathBuf, u32)> = t.files(k).into_iter().filter_map(|p| first_block(&p).map(|b| (p, b))).collect();
    for d in doomed {
        let Some(b) = first_block(d) else { continue };
        if let Some((p, _)) = kept.iter().find(|(_, kb)| *kb == b) {
            return Err(Error::new(
                d.display().to_string(),
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
fn rename_fresh(from: &Path, to: &Path, sync_dir: &dyn Fn() -> Result<()>) -> Result<()> {
    if !from.exists() {
        return Ok(());
    }
    if to.exists() {
        return Err(Error::new(to.display().to_string(), "exists; refusing to rename over it"));
    }
    std::fs::rename(from, to).ctx(to.display())?;
    sync_dir()
}

fn create(p: &Path) -> Result<File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(p).ctx(p.display())
}

fn write_small(p: &Path, data: &[u8]) -> Result<()> {
    let mut f = create(p)?;
    f.write_all(data).ctx(p.display())?;
    f.sync_all().ctx(p.display())
}

/// Copy `from` to a new file `to`, fsync it and drop its pages so the read-back comes from the
/// card, not from the cache.
fn copy_file(from: &str, to: &Path, size: u64, progress: bool) -> Result<()> {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice as Adv};
    let mut src = File::open(from).ctx(from)?;
    let _ = posix_fadvise(src.as_raw_fd(), 0, 0, Adv::POSIX_FADV_SEQUENTIAL);
    let mut dst = create(to)?;
    let mut p = progress.then(|| Progress::new("write", Some(size)));
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut half) = (0u64, false);
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(from, &e)),
        };
        dst.write_all(&buf[..n]).ctx(to.display())?;
        done += n as u64;
        if let Some(p) = p.as_mut() {
            p.tick(done);
        }
        if !half && done * 2 >= size {
            half = true;
            step("write-half");
        }
    }
    if let Some(p) = p.as_mut() {
        p.finish();
    }
    dst.sync_all().ctx(to.display())?;
    let _ = posix_fadvise(dst.as_raw_fd(), 0, 0, Adv::POSIX_FADV_DONTNEED);
    if done != size {
        return Err(Error::new(from, "changed size while being copied"));
    }
    Ok(())
}

fn mount_ro(dev: &str, dir: &str, fstype: &str) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    mount(Some(dev), dir, Some(fstype), MsFlags::MS_RDONLY, None::<&str>).ctx(format!("{dev} on {dir}"))
}

/// The mount at exactly `dir`, if any: whether it is read-only.
fn mount_ro_state(dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = dir.to_str()?;
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(4)? == &want).then(|| f.get(5).is_some_and(|o| o.split(',').any(|x| x == "ro")))
        })
        .last()
}

/// Remount the medium read-write (`ro` false) if it is a read-only mount, or back read-only.
/// Returns whether the read-write remount was done. A directory that is not a mount point is
/// used as it is.
fn remount(root: &str, ro: bool) -> Result<bool> {
    use nix::mount::{mount, MsFlags};
    let dir = std::fs::canonicalize(root).ctx(root)?;
    let Some(is_ro) = mount_ro_state(&dir) else { return Ok(false) };
    if ro {
        return mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)
            .map(|_| true)
            .ctx(format!("{}: remount read-only", dir.display()));
    }
    if !is_ro {
        return Ok(false);
    }
    mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_REMOUNT, None::<&str>).map_err(|e| {
        Error::new(dir.display().to_string(), format!("cannot remount read-write: {}; nothing written", e.desc()))
    })?;
    Ok(true)
}
