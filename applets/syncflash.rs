//! syncflash — write the image the box booted (fetched from the network into RAM) back to the
//! flash, so that no power cut at any moment leaves the flash without a complete, verified image.
//!
//! Options: `Args` below, the one place (`syncflash --help`).
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
//!    over it. A state digest that differs is ignored (the file is hashed). A signed source
//!    below the minimum built into the initramfs (`min_version=` in the state), one that failed
//!    its trial on this box, or one below the floor marked good (unless `--allow-downgrade`,
//!    which lowers the floor to it) is refused (exit 1, nothing written). The *keeper* is
//!    chosen (src/flashsync.rs): among the good pairs that did not fail their trial and are at
//!    or above the floor and the minimum, the one the box booted (`medium_pair`, unless it is
//!    still on trial), else the newest marked good, else the first in boot order; the only pair
//!    left being on trial is a refusal. Each pair passed over is named with its reason
//!    (`medium_pair` also spares reading its image, not its manifest and signature). If the
//!    primary's manifest and signature are the new ones byte for byte: nothing to do (exit 5,
//!    nothing written: flash wear). Room: free space plus the files of the other pairs must hold
//!    the new pair. `--dry-run` stops here and says what it would do.
//!    A file to delete that shares its first block with a keeper file (FIBMAP: a FAT rename cut
//!    by a power loss leaves both names on one cluster chain) is refused: repair first. Where
//!    FIBMAP cannot answer (tmpfs, btrfs; FAT32 and ext4 can) for a keeper file or a file to
//!    delete, sharing cannot be ruled out: refused too (fail closed).
//! 2. `remount-rw` (if the medium is mounted read-only), `delete`: the files of every pair but
//!    the keeper (stale `.old`, leftover `.new`, a bad or failed primary). No step ever
//!    renames or rewrites a keeper: one found under `.new` stays there; one under `.old` caught
//!    half-way through its move from the primary (`pairs::Pair::resolved`) has the rest of its
//!    files moved after its manifest (`finish-old`), complete after every rename.
//! 3. `write-image`, `write-sidecars`, `write-manifest`: to `.new` when the keeper is the
//!    primary, else straight under the primary names (freed in step 2): the image, then the
//!    sidecars, then the signature and the manifest, each fsynced and its cached pages dropped;
//!    the manifest last, so the pair is complete only once everything it lists is on the card.
//!    `verify`: the pair read back from the card and checked as a keeper is (signature with the
//!    key, sidecars, `.verity` and image hashed) and byte for byte the source's manifest,
//!    signature and root hash; any failure removes it.
//!    The new pair is put on trial (`LiveOS/trial.state`, src/trial.rs; `--tries`, else
//!    `rd.live.tries`, refused when malformed as the boot refuses it, else 3; 0: not on trial) falling back to the keeper's version, which
//!    becomes the floor, unless the record is already about it (a fetched image on trial goes
//!    on with its tries; one marked good stays good); a medium without the file gets one. This
//!    happens before a boot may choose the new pair: before its manifest lands under the primary
//!    name, or before the first rename of step 4. A record that cannot be written removes the
//!    new pair (exit 1): a new primary never boots untried.
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
//!    `remount-ro`. `medium_pair` in the state file (if it exists) follows the running image:
//!    `primary` when it is the image written, `old` when it was the primary moved there.
//!
//! So one `.old` pair always stays: the image the primary replaced (the previous keeper). It
//! is deleted at the start of the next syncflash, once the primary is known good.
//!
//! ## At boot (/init)
//! The first good pair among primary, `.old`, `.new` boots; a fallback says why the primary was
//! refused. The boot never writes to the flash: leftovers are removed by the next syncflash.
//!
//! ## Test hook
//! With a line `syncflash=STEP` in the root-owned hook file (`/run/liveroot/test-hooks`, see
//! src/testhook.rs; never the environment), syncflash prints `syncflash-step NAME` on stderr
//! before each step and, at STEP, sleeps for an hour (the tests cut the power there).
//! `write-half` is a point in the middle of the image write. Without the file nothing changes;
//! it cannot make syncflash skip a step.
//!
//! Exit: 0 written, 1 refused or failed, 2 usage, 3 the new pair does not verify (checksum,
//! signature, sidecars) or its read-back does not, 5 the flash already holds this image.

use crate::error::{Context, Error, Result};
use crate::manifest;
use crate::fsutil::with_suffix;
use crate::osarg;
use crate::flashsync;
use crate::manifest::{SIG_SUFFIX, SUMS};
use crate::pairs::Files;
use crate::state;
use argh::FromArgs;
use std::path::{Path, PathBuf};

pub const SUMMARY: &str = "write the booted (fetched) image to the flash, safe against power cuts";

/// imgfetch's validators cache: beside the state file, and beside the image on the medium
/// (where /init reads it).
const CACHE: &str = "fetch.cache";
/// Where the medium is mounted when the boot released it (rd.live.ram, a network boot).

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
    /// /proc/cmdline, else 3; 0: not put on trial)
    tries: Option<u8>,
    #[argh(switch)]
    /// write a signed version below the one marked good (the floor) all the same
    allow_downgrade: bool,
}

/// The test hook (src/testhook.rs, a `syncflash=STEP` line): announce each step; pause at the
/// chosen one so the host can cut the power.
fn step(name: &str) {
    crate::testhook::pause_point("syncflash", name, false);
}

pub fn run(argv: &[String]) -> Result<()> {
    let a: Args = crate::cli::parse(argv, "")?;
    if a.image.is_some() != a.manifest.is_some() {
        return Err(Error::usage("--image and --manifest go together\nTry 'syncflash --help' for more information."));
    }
    let state_file = a.state.as_deref().map_or_else(|| PathBuf::from(state::DEFAULT_PATH), osarg::path);
    let state_path = state_file.display().to_string();
    let st = state::LiveState::load(&state_file)?;

    // The key the boot trusts: a recorded one that cannot be read is a refusal, never "no key".
    let key_path = a.pubkey_file.as_deref().map(osarg::path).or_else(|| Some(PathBuf::from(&st.pubkey)).filter(|k| !k.as_os_str().is_empty()));
    let key = match &key_path {
        Some(k) => Some(manifest::pubkey_from_file(k).map_err(|e| Error::new(e.object, format!("{} (the public key); nothing written", e.reason)))?),
        None => None,
    };

    // The new pair.
    let (image, manifest_path) = match (&a.image, &a.manifest) {
        (Some(i), Some(m)) => (osarg::path(i), osarg::path(m)),
        _ => {
            let f = &st.image_file;
            if f.is_empty() {
                return Err(Error::new(
                    &state_path,
                    "no fetched image recorded (image_file); give --image and --manifest",
                ));
            }
            let dir = Path::new(f).parent().map(|d| d.to_path_buf()).unwrap_or_default();
            (PathBuf::from(f), dir.join(SUMS))
        }
    };
    let sig = a.sig.as_deref().map_or_else(|| with_suffix(&manifest_path, SIG_SUFFIX), osarg::path);
    let files = Files::beside(&image, manifest_path.clone(), sig);

    // Where it goes.
    let dest = a.dest.clone().unwrap_or_else(|| st.image().to_owned());
    let dest = dest.trim_start_matches('/');
    let (rel_dir, name) = match dest.rsplit_once('/') {
        Some((d, n)) => (d.to_owned(), n.to_owned()),
        None => (String::new(), dest.to_owned()),
    };
    if name.is_empty() || name == "." || name == ".." || rel_dir.split('/').any(|c| c == "..") {
        return Err(Error::usage(format!("--dest: '{dest}' is not a file path on the medium")));
    }
    // The medium as the state names it (mounted privately below if the boot released it).
    let private = a.medium.is_none() && st.medium_mount.is_empty();
    if private {
        if st.medium.is_empty() {
            return Err(Error::new(&state_path, "no medium recorded; give --medium DIR"));
        }
        if !Path::new(&st.medium).exists() {
            return Err(Error::new(&st.medium, "the medium is missing (unplugged?)"));
        }
    }

    // The boot (or imgfetch) already hashed the image it booted: no second pass over it then;
    // the read-back from the card is checked against the manifest all the same.
    let vouched = (Path::new(&st.image_file) == image && matches!(st.verified.as_str(), "sha256" | "sig"))
        .then(|| crate::digest::parse_sha256(st.image_sha256.as_bytes()))
        .flatten();
    let mut src = flashsync::read_source(files, &name, key.as_ref(), vouched).map_err(|e| {
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

    let on_medium = match &a.medium {
        Some(m) => state::OnMedium::at(osarg::path(m)),
        None => st.on_medium(Path::new(""), &state_path)?,
    };
    let root = on_medium.path.clone();
    // What /init verified is about the live medium, not about another --medium.
    let dir = root.join(&rel_dir);
    let job = flashsync::Job {
        key: key.as_ref(),
        trial_file: dir.join(crate::trial::FILE),
        dir,
        name: name.clone(),
        booted: if a.medium.is_some() { String::new() } else { st.medium_pair.clone() },
        running: crate::digest::parse_sha256(st.image_sha256.as_bytes())
            .map(|sha256| crate::trial::Ident { version: st.image_version.parse().unwrap_or(0), sha256 }),
        tries: match a.tries {
            Some(n) => n,
            None => cmdline_tries()?,
        },
        min_version: st.min_version.parse().unwrap_or(0),
        allow_downgrade: a.allow_downgrade,
        dry_run: a.dry_run,
        progress: a.progress,
    };
    let res = if root.is_dir() {
        flashsync::sync(&job, &src, &mut flashsync::RealIo { root: root.clone(), step })
    } else {
        Err(Error::new(root.display().to_string(), "the medium is missing (not a directory)"))
    };
    drop(on_medium);
    let done = res?;
    // The pair the running image now is: the primary when it is the image written; the
    // primary it booted from became `.old` (or went, when it was not kept).
    if done && a.medium.is_none() && state_file.exists() {
        let now = if Path::new(&st.image_file) == image { "primary" } else if job.booted == "primary" { "old" } else { "" };
        if !now.is_empty() {
            state::set(&state_file, &[("medium_pair".to_owned(), now.to_owned())])?;
        }
    }
    Ok(())
}

/// rd.live.tries from the running kernel's command line (0: no trial), else the default; a bad
/// value is refused as the boot refused it.
fn cmdline_tries() -> Result<u8> {
    crate::cmdline::tries_of(&std::fs::read_to_string("/proc/cmdline").ctx("/proc/cmdline")?)
}
