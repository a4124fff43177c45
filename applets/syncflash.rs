//! syncflash — write the image the box booted (fetched from the network into RAM) back to the
//! flash, so that no power cut at any moment leaves the flash without a complete, verified image.
//!
//! ```text
//! syncflash [--medium DIR] [--image FILE --manifest FILE [--sig FILE]] [--pubkey-file KEY]
//!           [--dry-run] [--progress] [--state FILE] [--tries N]
//! ```
//! With no arguments, in a live session, everything comes from `/run/live/state`: `image_file`
//! (the booted image; `SHA256SUMS`, `SHA256SUMS.minisig` and the sidecars `IMG.verity`,
//! `IMG.roothash` beside it), `medium_mount` (or `medium` + `medium_type`, mounted privately
//! when the boot released it), `image` (its path on the medium, e.g. `LiveOS/squashfs.img`;
//! default that) and `pubkey` (the key the boot verified with).
//!
//! ## On the medium: three pairs, one directory
//! A *pair* (see `pairs`) is `IMG{S}` + `SHA256SUMS{S}` (+ `SHA256SUMS.minisig{S}`, + the
//! dm-verity sidecars `IMG.verity{S}` and `IMG.roothash{S}` when its manifest lists them) with
//! the same suffix S: primary (no suffix), `.old`, `.new`. Manifests, signatures and sidecars
//! are copied byte for byte (the manifest names the files by their primary names), so a pair
//! verifies under any suffix. A pair is *good* when `pairs::check_manifest` accepts it (the
//! manifest lists IMG; the sidecars it lists are there and match; with a key, the signature is
//! there and verifies), its `.verity` matches its digest and its image matches its manifest.
//!
//! **The key**: `--pubkey-file`, else the `pubkey=` file in the state, else none (checksums
//! only, against accidents). A key that is named but cannot be read is a refusal (exit 1).
//! With a key, an unsigned or wrongly signed pair is never the keeper (it is deleted like any
//! bad pair) and an unsigned or wrongly signed source is refused (exit 3).
//!
//! No step relies on a rename that replaces an existing name (not atomic on FAT32); every
//! rename goes to a name that no longer exists, and each step is followed by fsync of the file,
//! or by syncfs then fsync of the directory (the fsync flushes the card's write cache after
//! everything syncfs wrote), so the steps reach the card in order:
//! 1. `preflight`: the new pair is checked where it is, as the boot would: manifest, signature,
//!    sidecars (listed but missing or different: exit 3, nothing written), image — unless the
//!    state vouches for the image (`image_file` is this file, `verified` is sha256/sig and
//!    `image_sha256` is the manifest's digest): then the read-back in step 3 is the only pass
//!    over it. A state digest that differs is ignored (the file is hashed). The *keeper* is
//!    chosen: the first good pair among primary, `.old`, `.new`; each pair passed over is named
//!    with its reason (`medium_pair` in the state — the pair /init verified at boot — spares
//!    reading its image, not its manifest and signature). If the keeper is the primary and its
//!    manifest and signature are the new ones byte for byte: nothing to do (exit 5, nothing
//!    written: flash wear). Room: free space plus the files of the other pairs must hold the
//!    new pair. `--dry-run` stops here and says what it would do.
//!    A file to delete that shares its first block with a keeper file (FIBMAP: a FAT rename cut
//!    by a power loss leaves both names on one cluster chain) is refused: repair first. Where
//!    FIBMAP cannot answer (tmpfs, btrfs; FAT32 and ext4 can) for a keeper file or a file to
//!    delete, sharing cannot be ruled out: refused too (fail closed).
//! 2. `remount-rw` (if the medium is mounted read-only), `delete`: the files of every pair but
//!    the keeper (stale `.old`, leftover `.new`, a bad primary). A keeper found under `.new`
//!    (a run cut during its renames) is renamed to `.old` (`keep-new`, manifest first).
//! 3. `write-image`, `write-sidecars`, `write-manifest`: `IMG.new`, then `IMG.verity.new` and
//!    `IMG.roothash.new`, then `SHA256SUMS.minisig.new` and `SHA256SUMS.new`, each fsynced and
//!    its cached pages dropped; the manifest last, so `.new` is complete only once everything
//!    it lists is on the card. `verify`: the `.new` pair read back from the card and checked as
//!    a keeper is (signature with the key, sidecars, `.verity` and image hashed) and byte for
//!    byte the source's manifest, signature and root hash; any failure removes `.new`.
//!    Then the new pair is put on trial (`LiveOS/trial.state`, src/trial.rs; `--tries`, else
//!    `rd.live.tries`, else 3; 0: no trial) unless the trial record is already about it (a fetched image on
//!    trial goes on with its tries; one marked good stays good). Before the renames: from the
//!    first rename on, a boot may choose the new pair (the primary is incomplete, `.new` is
//!    not), and it must find it on trial; while the old primary still boots, a record about
//!    another image spends nothing.
//! 4. `old-manifest`, `old-sig`, `old-roothash`, `old-verity`, `old-image`: a primary keeper
//!    becomes `.old` (manifest first: the primary pair is incomplete at once, while `.new` is
//!    complete and verified; `.old` is complete only once its image, the last, is there).
//!    `new-image`, `new-verity`, `new-roothash`, `new-sig`, `new-manifest`: `.new` becomes the
//!    primary (manifest last: the primary is complete only when all of it is in place;
//!    meanwhile `.old` is). A step whose file the pair does not have renames nothing.
//! 5. `cache`: imgfetch's validators cache beside the state file (`/run/live/fetch.cache`, the
//!    boot's `--cache`) is written as `LiveOS/fetch.cache` (beside the image) when it is about
//!    the version just written (its `above`, the floor it was decided against, is that
//!    version): the next boot's check is then one conditional GET, a 304 while the server's
//!    signature is unchanged. Otherwise a `fetch.cache` there is removed: it was about the
//!    image replaced, whose floor no boot will have again. Written in place (no rename): the
//!    file is an unsigned hint, a 304 to it only ever means "do nothing", and a torn or stale
//!    one does not parse or does not match the floor, costing one full check (imgfetch warns
//!    and ignores it); a FAT rename cut by a power loss could instead leave two names on one
//!    cluster chain. A failure here is a warning: the image is written.
//!    `remount-ro`. `medium_pair=primary` is recorded in the state file (if it exists).
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
//! Exit: 0 written, 1 refused or failed, 2 usage, 3 the new pair does not verify (checksum,
//! signature, sidecars) or its read-back does not, 5 the flash already holds this image.

use crate::digest::hex;
use crate::error::{Code, Context, Error, Result};
use crate::manifest;
use crate::osarg;
use crate::pairs::{self, Files, Pair, Trusted, SUFFIXES, SUMS};
use crate::progress::Progress;
use crate::state;
use argh::FromArgs;
use minisign_verify::PublicKey;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const SUMMARY: &str = "write the booted (fetched) image to the flash, safe against power cuts";

const DEFAULT_IMAGE: &str = "LiveOS/squashfs.img";
/// imgfetch's validators cache: beside the state file, and beside the image on the medium
/// (where /init reads it).
const CACHE: &str = "fetch.cache";
/// Where the medium is mounted when the boot released it (rd.live.ram, a network boot).
const PRIVATE_MOUNT: &str = "/run/live/syncflash";
/// Cluster rounding and directory entries: FAT32 on a big card has 32 KiB clusters.
const SLACK: u64 = 256 << 10;
/// Step names of the rotation, in `Pair::files()` order (manifest first, image last).
const OLD_STEPS: [&str; 5] = ["old-manifest", "old-sig", "old-roothash", "old-verity", "old-image"];
const NEW_STEPS: [&str; 5] = ["new-manifest", "new-sig", "new-roothash", "new-verity", "new-image"];

#[derive(FromArgs)]
/// Write the image this box booted (fetched into RAM) to the flash so the next boot is local.
/// The new pair (image, SHA256SUMS, its .minisig, and the dm-verity sidecars IMAGE.verity and
/// IMAGE.roothash when the manifest lists them) is written as .new, verified by reading it
/// back, then rotated in (the current one becomes .old) with no instant at which the flash
/// lacks a complete, verified image. With a public key, only signed pairs count.
/// Exit codes: 0 written, 1 refused or failed, 2 usage, 3 image does not match its manifest,
/// 5 the flash already holds this image.
struct Args {
    #[argh(option)]
    /// the medium's root directory (default: medium_mount from the state, or the medium
    /// mounted privately)
    medium: Option<String>,
    #[argh(option)]
    /// the new image (default: image_file from the state); its sidecars beside it
    image: Option<String>,
    #[argh(option)]
    /// its SHA256SUMS (default: SHA256SUMS beside the image)
    manifest: Option<String>,
    #[argh(option)]
    /// its minisign signature (default: MANIFEST.minisig when it exists)
    sig: Option<String>,
    #[argh(option)]
    /// minisign public key: every pair must be signed by it (default: pubkey from the state,
    /// else none: checksums only)
    pubkey_file: Option<String>,
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
    #[argh(option)]
    /// boots the new image gets to call `liveinit mark-good` (default: rd.live.tries from
    /// /proc/cmdline, else 3; 0: no trial, the new image boots untried)
    tries: Option<u8>,
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// The test hook: announce each step; sleep at the chosen one so the host can cut the power.
fn step(name: &str) {
    let Ok(at) = std::env::var("LIVEROOT_SYNCFLASH_PAUSE_AT") else { return };
    let _ = std::io::stderr().write_all(format!("syncflash-step {name}\n").as_bytes());
    if at == name {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// The new pair as checked at its source: its files and what its manifest vouches for.
struct Source {
    files: Files,
    trusted: Trusted,
    size: u64,
    /// Bytes of the whole pair (image, sidecars, manifest, signature).
    total: u64,
    /// imgfetch's validators cache for the medium, when the one beside the state is about this
    /// version; None: remove the medium's (see `put_cache`).
    cache: Option<String>,
}

impl Source {
    fn has_sidecars(&self) -> bool {
        self.trusted.roothash.is_some()
    }
}

pub fn run(argv: &[String]) -> Result<()> {
    let a: Args = crate::cli::parse(argv, "")?;
    if a.image.is_some() != a.manifest.is_some() {
        return Err(Error::usage("--image and --manifest go together\nTry 'syncflash --help' for more information."));
    }
    let state_file = a.state.as_deref().map_or_else(|| PathBuf::from(state::DEFAULT_PATH), osarg::path);
    let state_path = state_file.display().to_string();
    let st = state::load(&state_file)?;
    let get = |k: &str| state::lookup(&st, k).to_owned();

    // The key the boot trusts: a recorded one that cannot be read is a refusal, never "no key".
    let key_path = a.pubkey_file.as_deref().map(osarg::path).or_else(|| Some(PathBuf::from(get("pubkey"))).filter(|k| !k.as_os_str().is_empty()));
    let key = match &key_path {
        Some(k) => Some(manifest::pubkey_from_file(k).map_err(|e| Error::new(e.object, format!("{} (the public key); nothing written", e.reason)))?),
        None => None,
    };

    // The new pair.
    let (image, manifest_path) = match (&a.image, &a.manifest) {
        (Some(i), Some(m)) => (osarg::path(i), osarg::path(m)),
        _ => {
            let f = get("image_file");
            if f.is_empty() {
                return Err(Error::new(
                    &state_path,
                    "no fetched image recorded (image_file); give --image and --manifest",
                ));
            }
            let dir = Path::new(&f).parent().map(|d| d.to_path_buf()).unwrap_or_default();
            (PathBuf::from(f), dir.join(SUMS))
        }
    };
    let files = Files {
        image: image.clone(),
        manifest: manifest_path.clone(),
        sig: a.sig.as_deref().map_or_else(|| with_suffix(&manifest_path, ".minisig"), osarg::path),
        verity: with_suffix(&image, pairs::VERITY),
        roothash: with_suffix(&image, pairs::ROOTHASH),
    };

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
        (Some(m), _) => (osarg::path(m), false),
        (None, m) if !m.is_empty() => (PathBuf::from(m), false),
        (None, _) => {
            let dev = get("medium");
            if dev.is_empty() {
                return Err(Error::new(&state_path, "no medium recorded; give --medium DIR"));
            }
            if !Path::new(&dev).exists() {
                return Err(Error::new(&dev, "the medium is missing (unplugged?)"));
            }
            (PathBuf::from(PRIVATE_MOUNT), true)
        }
    };

    // The boot (or imgfetch) already hashed the image it booted: no second pass over it then;
    // the read-back from the card is checked against the manifest all the same.
    let vouched = (Path::new(&get("image_file")) == image && matches!(get("verified").as_str(), "sha256" | "sig"))
        .then(|| crate::digest::parse_sha256(get("image_sha256").as_bytes()))
        .flatten();
    let mut src = read_source(files, &name, key.as_ref(), vouched).map_err(|e| {
        let mut e = e;
        e.reason.push_str("; nothing written");
        e
    })?;
    // The boot's `--cache` is beside the state (/run/live/fetch.cache); only a cache decided
    // against this version as the floor says anything about the boots that follow.
    let cache_file = state_file.parent().unwrap_or(Path::new("/")).join(CACHE);
    src.cache = std::fs::read(&cache_file)
        .ok()
        .and_then(|t| crate::rollout::Cache::parse(&t))
        .filter(|c| Some(c.above) == src.trusted.version)
        .map(|c| c.text());

    if private {
        let dev = get("medium");
        std::fs::create_dir_all(PRIVATE_MOUNT).ctx(PRIVATE_MOUNT)?;
        let fstype = get("medium_type");
        mount_ro(&dev, PRIVATE_MOUNT, if fstype.is_empty() || fstype == "auto" { "vfat" } else { &fstype })?;
    }
    // What /init verified is about the live medium, not about another --medium.
    let booted_pair = if a.medium.is_some() { String::new() } else { get("medium_pair") };
    let res = sync(&a, &src, key.as_ref(), &root, &rel_dir, &name, &booted_pair);
    if private {
        let _ = nix::mount::umount(PRIVATE_MOUNT);
    }
    let done = res?;
    if done && a.medium.is_none() && state_file.exists() {
        state::set(&state_file, &[("medium_pair".to_owned(), "primary".to_owned())])?;
    }
    Ok(())
}

/// The new primary is on trial (src/trial.rs) until the system it boots calls `liveinit
/// mark-good`: written in place in `LiveOS/trial.state`, through the device, as the boots do.
/// A record already about this image (a fetched image on trial, or one marked good) is kept:
/// its trial goes on from the flash. Without the file (a flash from before trials) or when the
/// write fails the image is written all the same, with a warning: it boots as a plain image.
fn start_trial(file: &Path, t: &Trusted, tries: Option<u8>) {
    let warn = |why: String| {
        let _ = std::io::stderr().write_all(format!("syncflash: warning: {why}: the new image is not on trial\n").as_bytes());
    };
    // rd.live.tries as /init reads it (src/cmdline.rs): a bad value is the default there too.
    let tries = tries.unwrap_or_else(|| {
        let line = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        crate::cmdline::split(&line)
            .into_iter()
            .rev()
            .find(|(k, _)| k == "rd.live.tries")
            .and_then(|(_, v)| v?.parse::<u8>().ok())
            .unwrap_or(crate::trial::DEFAULT_TRIES)
    });
    if tries == 0 {
        return say("syncflash: 0 tries (rd.live.tries=0): the new image boots untried; no trial written\n");
    }
    if !file.exists() {
        return warn(format!("{}: missing (make flash creates it; liveinit trial create)", file.display()));
    }
    let img = crate::trial::Ident { version: t.version.unwrap_or(0), sha256: t.sha256 };
    let kept = std::cell::Cell::new(false);
    let r = crate::trial::update(file, false, |c| {
        kept.set(c.is_some_and(|r| r.image == img));
        crate::trial::synced(c, &img, crate::trial::Start { tries, keep: 0 })
    });
    match r {
        Ok(Some(r)) if kept.get() => say(&format!(
            "syncflash: the image's trial goes on from the flash ({}{})\n",
            r.status.name(),
            if r.status == crate::trial::Status::Good { format!(", floor {}", r.floor) } else { String::new() }
        )),
        Ok(Some(_)) => say(&format!("syncflash: the new image is on trial: {tries} boots to call liveinit mark-good\n")),
        Ok(None) => say("syncflash: the trial state already covers this image; kept\n"),
        Err(e) => warn(e.to_string()),
    }
}

/// `path` with `suffix` appended to its last component, bytes kept.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Check the new pair where it is: manifest (signature with a key, binding of `name`,
/// sidecars), the `.verity` tree, and the image unless the boot already hashed it to the
/// manifest's digest. Nothing is written.
fn read_source(files: Files, name: &str, key: Option<&PublicKey>, vouched: Option<[u8; 32]>) -> Result<Source> {
    let trusted = pairs::check_files(&files, name, key)?;
    pairs::check_verity_file(&files, &trusted)?;
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
    Ok(Source { files, trusted, size, total, cache: None })
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

/// Everything after the source checked. Ok(true) when the flash now holds the new pair.
fn sync(a: &Args, src: &Source, key: Option<&PublicKey>, rootp: &Path, rel_dir: &str, name: &str, booted_pair: &str) -> Result<bool> {
    step("preflight");
    if !rootp.is_dir() {
        return Err(Error::new(show(rootp), "the medium is missing (not a directory)"));
    }
    let dir = rootp.join(rel_dir);
    if !dir.is_dir() {
        return Err(Error::new(show(&dir), "no such directory on the medium"));
    }
    let pair = |sfx: &str| Pair::new(&dir, name, sfx);

    // The keeper: the pair the box falls back on until the new one is in place.
    let mut keeper: Option<(&str, Trusted)> = None;
    for sfx in SUFFIXES {
        let p = pair(sfx);
        if !p.files().iter().any(|f| f.exists()) {
            continue;
        }
        match pair_trusted(&p, key, p.label() == booted_pair) {
            Ok(t) => {
                keeper = Some((sfx, t));
                break;
            }
            Err(e) => say(&format!("syncflash: {} pair not kept: {e}\n", p.label())),
        }
    }

    if let Some(("", t)) = &keeper {
        if t.manifest == src.trusted.manifest && t.sig == src.trusted.sig {
            return Err(Error::new(
                show(&pair("").image()),
                format!("already holds this image (sha256 {}); nothing written", hex(&src.trusted.sha256)),
            )
            .code(Code::NoChange));
        }
    }
    let keeper = keeper.map(|(s, _)| s);

    // Room: the new pair beside the keeper; everything else goes.
    let doomed: Vec<PathBuf> = SUFFIXES
        .iter()
        .filter(|s| Some(**s) != keeper)
        .flat_map(|s| pair(s).files())
        .filter(|p| p.exists())
        .collect();
    if let Some(k) = keeper {
        refuse_shared(&pair(k), &doomed)?;
    }
    let freed: u64 = doomed.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let need = src.total.saturating_add(SLACK);
    let vfs = nix::sys::statvfs::statvfs(&dir).ctx(dir.display())?;
    let free = (vfs.blocks_available() as u64).saturating_mul(vfs.fragment_size() as u64);
    if free.saturating_add(freed) < need {
        return Err(Error::new(
            show(&dir),
            format!(
                "no room for the new image beside the current one: needs {}, has {} free{}; nothing written",
                mib(need),
                mib(free),
                if freed > 0 { format!(" (+{} from old files)", mib(freed)) } else { String::new() }
            ),
        ));
    }

    let keeper_txt = match keeper {
        Some("") => format!("current image {} (becomes {}.old)", show(&pair("").image()), name),
        Some(s) => format!("fallback {}", show(&pair(s).image())),
        None => "no verified image on the medium".to_owned(),
    };
    if a.dry_run {
        let mut plan = format!(
            "syncflash: would write {} ({}{}) to {}.new, keeping the {keeper_txt}\n",
            src.files.image.display(),
            mib(src.size),
            if src.has_sidecars() { ", with its verity sidecars" } else { "" },
            show(&pair("").image())
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

    step("remount-rw");
    let remounted = remount(rootp, false)?;
    let res = write_and_rotate(a, src, key, &dir, name, keeper, &doomed);
    if remounted {
        step("remount-ro");
        let r = remount(rootp, true);
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
        if keeper.is_some() { format!("; the previous image is {}.old", name) } else { String::new() }
    ));
    Ok(true)
}

fn write_and_rotate(
    a: &Args,
    src: &Source,
    key: Option<&PublicKey>,
    dir: &Path,
    name: &str,
    keeper: Option<&str>,
    doomed: &[PathBuf],
) -> Result<()> {
    let dirf = File::open(dir).ctx(dir.display())?;
    // syncfs first, then fsync: on FAT a renamed file's directory entry gets its first cluster
    // and size only when the file's inode is written back (syncfs does that), and syncfs issues
    // no cache flush; the directory's fsync that follows does (fat_file_fsync). The other order
    // left each rename's entry at cluster 0 on the card until the next step's flush, and the
    // last one unflushed (tests/qemu/scenarios/syncflash-flushpoints.sh found both).
    let sync_dir = || -> Result<()> {
        nix::unistd::syncfs(dirf.as_raw_fd()).ctx(dir.display())?;
        dirf.sync_all().ctx(dir.display())
    };
    let (prim, old, new) = (Pair::new(dir, name, ""), Pair::new(dir, name, ".old"), Pair::new(dir, name, ".new"));

    step("delete");
    for p in doomed {
        std::fs::remove_file(p).ctx(p.display())?;
    }
    sync_dir()?;
    if keeper == Some(".new") {
        step("keep-new");
        for (from, to) in new.files().iter().zip(old.files()) {
            rename_fresh(from, &to, &sync_dir)?;
        }
    }

    // The new pair: the image and its sidecars first, the manifest last.
    step("write-image");
    say(&format!("syncflash: writing {} ({})\n", new.image().display(), mib(src.size)));
    copy_file(&src.files.image, &new.image(), a.progress, true)?;
    step("write-sidecars");
    if src.has_sidecars() {
        copy_file(&src.files.verity, &new.verity(), false, false)?;
        copy_file(&src.files.roothash, &new.roothash(), false, false)?;
    }
    step("write-manifest");
    if let Some(sig) = &src.trusted.sig {
        write_small(&new.sig(), sig)?;
    }
    write_small(&new.manifest(), &src.trusted.manifest)?;
    sync_dir()?;

    // Read back from the card (pages dropped after writing) with the checks the boot makes.
    step("verify");
    if let Err(e) = read_back(a, src, key, &new) {
        for f in new.files() {
            let _ = std::fs::remove_file(f);
        }
        let _ = sync_dir();
        return Err(Error::verify(e.object, format!("{}; removed, the current image is untouched", e.reason)));
    }

    // The trial record before the renames make it the primary: a cut after the last rename
    // must not leave a new primary that boots untried. A record about the `.new` pair while the
    // current primary still boots is harmless: that boot is not about it and spends nothing.
    start_trial(&dir.join(crate::trial::FILE), &src.trusted, a.tries);

    // Rotation: renames to names that do not exist, one at a time.
    if keeper == Some("") {
        for (stepname, (from, to)) in OLD_STEPS.iter().zip(prim.files().iter().zip(old.files())) {
            step(stepname);
            rename_fresh(from, &to, &sync_dir)?;
        }
    }
    // The reverse order: the primary is complete only once its manifest is back.
    for (stepname, (from, to)) in NEW_STEPS.iter().zip(new.files().iter().zip(prim.files())).rev() {
        step(stepname);
        rename_fresh(from, &to, &sync_dir)?;
    }
    put_cache(&dir.join(CACHE), src, &sync_dir);
    Ok(())
}

/// The medium's validators cache after the rotation (module doc, step 5): this version's, or
/// none. In place: see there why that is safe for this file. Never an error.
fn put_cache(file: &Path, src: &Source, sync_dir: &dyn Fn() -> Result<()>) {
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
            .map(|_| true),
        None => match std::fs::remove_file(file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            r => r.map(|_| false),
        },
    };
    match r.map_err(|e| crate::error::io_reason(&e)).and_then(|w| sync_dir().map(|_| w).map_err(|e| e.reason)) {
        Ok(true) => say(&format!("syncflash: {}: the server's validators for this version (the next boot's check is one request)\n", show(file))),
        Ok(false) => say(&format!("syncflash: {}: removed (about the image replaced)\n", show(file))),
        Err(why) => {
            let _ = std::io::stderr().write_all(
                format!("syncflash: warning: {}: {why}: the next boot's check is a full one\n", show(file)).as_bytes(),
            );
        }
    }
}

/// The `.new` pair as the card holds it must be exactly the source pair, and verify.
fn read_back(a: &Args, src: &Source, key: Option<&PublicKey>, new: &Pair) -> Result<()> {
    let t = pairs::check_manifest(new, key).map_err(|e| Error::verify(e.object, format!("read back: {}", e.reason)))?;
    if t.manifest != src.trusted.manifest || t.sig != src.trusted.sig || t.roothash != src.trusted.roothash {
        return Err(Error::verify(show(&new.manifest()), "read back differs from the source"));
    }
    pairs::check_verity_file(&new.paths(), &t).map_err(|e| Error::verify(e.object, format!("read back: {}", e.reason)))?;
    let mut p = a.progress.then(|| Progress::on_stderr("verify", Some(src.size)));
    pairs::check_image(new, &t, p.as_mut()).map_err(|e| {
        Error::verify(e.object, "read back does not match the manifest (bad card or image?)")
    })
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
fn refuse_shared(keeper: &Pair, doomed: &[PathBuf]) -> Result<()> {
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
    for p in keeper.files().into_iter().filter(|p| p.exists()) {
        match first_block(&p) {
            Ok(Some(b)) => kept.push((p, b)),
            Ok(None) => {}
            Err(why) => return Err(closed(&p, why)),
        }
    }
    for d in doomed {
        let b = match first_block(d) {
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

/// Write a small new file, fsync it and drop its pages (the read-back reads the card).
fn write_small(p: &Path, data: &[u8]) -> Result<()> {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice as Adv};
    let mut f = create(p)?;
    f.write_all(data).ctx(p.display())?;
    f.sync_all().ctx(p.display())?;
    let _ = posix_fadvise(f.as_raw_fd(), 0, 0, Adv::POSIX_FADV_DONTNEED);
    Ok(())
}

/// Copy `from` to a new file `to`, fsync it and drop its pages so the read-back comes from the
/// card, not from the cache. `hook`: announce the `write-half` step (the image copy).
fn copy_file(from: &Path, to: &Path, progress: bool, hook: bool) -> Result<()> {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice as Adv};
    let mut src = File::open(from).ctx(from.display())?;
    let from = show(from);
    let from = from.as_str();
    let size = src.metadata().ctx(from)?.len();
    let _ = posix_fadvise(src.as_raw_fd(), 0, 0, Adv::POSIX_FADV_SEQUENTIAL);
    let mut dst = create(to)?;
    let mut p = progress.then(|| Progress::on_stderr("write", Some(size)));
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
            p.update(done);
        }
        if hook && !half && done.saturating_mul(2) >= size {
            half = true;
            step("write-half");
        }
    }
    if let Some(p) = p.as_mut() {
        p.finish(done);
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
    crate::mountinfo::at(&crate::mountinfo::read(), dir).map(|m| m.read_only())
}

/// Remount the medium read-write (`ro` false) if it is a read-only mount, or back read-only.
/// Returns whether the read-write remount was done. A directory that is not a mount point is
/// used as it is.
fn remount(root: &Path, ro: bool) -> Result<bool> {
    use nix::mount::{mount, MsFlags};
    let dir = std::fs::canonicalize(root).ctx(root.display())?;
    let Some(is_ro) = mount_ro_state(&dir) else { return Ok(false) };
    if ro {
        return match mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>) {
            Ok(()) => Ok(true),
            // A deleted file still open (the image this system runs from, when its pair was not
            // trusted) keeps the kernel from remounting read-only. Everything written is synced.
            Err(nix::errno::Errno::EBUSY) => {
                let _ = std::io::stderr().write_all(
                    format!(
                        "syncflash: warning: {}: stays read-write: a deleted file on it is still open (the image this \
                         system runs from?); everything is synced\n",
                        dir.display()
                    )
                    .as_bytes(),
                );
                Ok(true)
            }
            Err(e) => Err(Error::sys(format!("{}: remount read-only", dir.display()), e)),
        };
    }
    if !is_ro {
        return Ok(false);
    }
    mount(None::<&str>, &dir, None::<&str>, MsFlags::MS_REMOUNT, None::<&str>).map_err(|e| {
        Error::new(dir.display().to_string(), format!("cannot remount read-write: {}; nothing written", e.desc()))
    })?;
    Ok(true)
}
