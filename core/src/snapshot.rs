//! Device-mapper devices that dmsnap makes (snapshots and verity mappings), as operations the
//! applets share: dmsnap makes and lists them, migrate removes the live ones. Nothing here
//! prints.
//!
//! Every such device carries the uuid `LIVEROOT-NAME`; a snapshot whose COW store dmsnap made
//! itself (a sparse `NAME.overlay` file on a loop, `--overlay-size`) carries
//! `LIVEROOT-NAME.overlay`, so that removing it deletes that file and never a COW the user gave.

use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::sys::dm::{Control, Target};
use std::path::{Path, PathBuf};
use crate::sys::loopdev;

pub const UUID_PREFIX: &str = "LIVEROOT-";
pub const OVERLAY_SUFFIX: &str = ".overlay";

/// The uuid dmsnap gives device `name`; `own_overlay` when dmsnap made its COW file.
pub fn uuid(name: &str, own_overlay: bool) -> String {
    format!("{UUID_PREFIX}{name}{}", if own_overlay { OVERLAY_SUFFIX } else { "" })
}

pub fn mapper_path(name: &str) -> String {
    format!("/dev/mapper/{name}")
}

/// The overlay loop and file dmsnap made for snapshot `name`, found from the table's COW device;
/// only when the uuid says dmsnap made them.
fn own_overlay(ctl: &Control, name: &str, dm_uuid: &str) -> Option<(String, String)> {
    if dm_uuid != uuid(name, true) {
        return None;
    }
    let t = ctl.targets(name, true).ok()?;
    let snap = t.iter().find(|t| t.kind == "snapshot")?;
    let cow = snap.params.split_whitespace().nth(1)?;
    let back = fsutil::read_attr(format!("/sys/dev/block/{cow}/loop/backing_file")).ok()?;
    let back = back.strip_suffix(" (deleted)").unwrap_or(&back).to_owned();
    if back.rsplit('/').next()? != format!("{name}{OVERLAY_SUFFIX}") {
        return None;
    }
    let (ma, mi) = fsutil::parse_devno(cow)?;
    let kname = fsutil::kernel_name(ma, mi).ok()?;
    Some((format!("/dev/{kname}"), back))
}

/// Remove device `name` made by dmsnap (snapshot or verity), its /dev/mapper node, and the
/// overlay loop and file dmsnap made for it. Loops dmsnap attached for a verity mapping were set
/// to autoclear: they go with the device.
pub fn remove(name: &str) -> Result<()> {
    let ctl = Control::open()?;
    let info = ctl.info(name)?.ok_or_else(|| Error::new(name, "no such device-mapper device"))?;
    if !info.uuid.starts_with(UUID_PREFIX) {
        return Err(Error::new(name, "not made by dmsnap (uuid is not LIVEROOT-*); use dmsetup remove"));
    }
    let overlay = own_overlay(&ctl, name, &info.uuid);
    ctl.remove(name)?;
    let node = mapper_path(name);
    match std::fs::remove_file(&node) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(node, &e)),
        _ => {}
    }
    if let Some((dev, file)) = overlay {
        // Autoclear normally released the loop with the snapshot; detach covers a loop that
        // never got the flag. Only while it still backs our file.
        if let Ok(i) = loopdev::info(&dev) {
            if i.back_file.trim_end_matches(" (deleted)") == file {
                loopdev::detach(&dev)?;
            }
        }
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(file, &e)),
            _ => {}
        }
    }
    Ok(())
}

/// One line of `status` for a snapshot target's status params.
pub fn describe(name: &str, params: &str) -> String {
    let p = params.trim();
    let alloc = p.split_once(' ').and_then(|(used, meta)| {
        let (a, t) = used.split_once('/')?;
        Some((a.parse::<u64>().ok()?, t.parse::<u64>().ok()?, meta.trim().parse::<u64>().ok()?))
    });
    match (alloc, p) {
        (Some((a, t, m)), _) => {
            let pct = if t == 0 { 0.0 } else { a as f64 * 100.0 / t as f64 };
            format!(
                "{name}: {} / {} used ({}%), metadata {}\n",
                // Sector counts from the kernel's status line; a wrap would print nonsense.
                crate::cli::size_str(a.saturating_mul(512)),
                crate::cli::size_str(t.saturating_mul(512)),
                crate::cli::fixed1(pct),
                crate::cli::size_str(m.saturating_mul(512))
            )
        }
        (None, "Overflow") => format!("{name}: Overflow: the overlay is full; writes fail with I/O errors, reads still work\n"),
        (None, "Invalid") => format!("{name}: Invalid: the snapshot was dropped; all I/O fails\n"),
        (None, "Merge failed") => format!("{name}: Merge failed\n"),
        (None, other) => format!("{name}: {other}\n"),
    }
}

/// Things made so far by `create`, undone in reverse unless disarmed.
#[derive(Default)]
struct Undo {
    file: Option<PathBuf>,
    loopdev: Option<String>,
    dm: Option<String>,
    ctl: Option<Control>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let (Some(name), Some(ctl)) = (&self.dm, &self.ctl) {
            let _ = ctl.remove(name);
        }
        if let Some(dev) = &self.loopdev {
            let _ = loopdev::detach(dev);
        }
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The COW store of a snapshot.
pub enum Cow {
    /// A block device given by the user.
    Device(PathBuf),
    /// A sparse file `DIR/NAME.overlay` of `bytes` (a multiple of 4096) on a loop device that
    /// goes away with the snapshot.
    Overlay { bytes: u64, dir: PathBuf },
}

/// Create snapshot `name` of `origin` (store `mode` P, PO or N; `chunk` sectors), and its
/// /dev/mapper node. On failure nothing made is left behind.
pub fn create(name: &str, origin: &Path, cow: &Cow, mode: &str, chunk: u64) -> Result<()> {
    let (oma, omi) = fsutil::block_dev(origin)?;
    let sectors = fsutil::block_size_bytes(oma, omi)? / 512;
    if sectors == 0 {
        return Err(Error::new(origin.display().to_string(), "origin is empty (0 sectors)"));
    }
    if let Cow::Device(cow) = cow {
        let (cma, cmi) = fsutil::block_dev(cow)?;
        if (cma, cmi) == (oma, omi) {
            return Err(Error::usage("--cow and --origin are the same device"));
        }
    }
    let overlay_file = match cow {
        Cow::Overlay { dir, .. } => {
            let md = std::fs::metadata(dir).ctx(dir.display())?;
            if !md.is_dir() {
                return Err(Error::new(dir.display().to_string(), "not a directory"));
            }
            Some(dir.join(format!("{name}{OVERLAY_SUFFIX}")))
        }
        Cow::Device(_) => None,
    };

    let ctl = Control::open()?;
    if ctl.info(name)?.is_some() {
        return Err(Error::new(name, "a device-mapper device with this name already exists"));
    }
    let mut undo = Undo::default();

    let cow_dev = match (cow, &overlay_file) {
        (Cow::Overlay { bytes, .. }, Some(file)) => {
            let path = &file.display().to_string();
            let f = std::fs::OpenOptions::new().write(true).create_new(true).open(file).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::new(path, "overlay file already exists (left from an earlier snapshot? remove it)")
                } else {
                    Error::io(path, &e)
                }
            })?;
            undo.file = Some(file.clone());
            f.set_len(*bytes).ctx(path)?;
            drop(f);
            // Not autoclear yet: with no other opener the kernel would clear the loop as soon
            // as attach closes it. Autoclear is set below, once the snapshot holds it open.
            let dev = loopdev::attach(file, &loopdev::Setup::default())?;
            undo.loopdev = Some(dev.clone());
            PathBuf::from(dev)
        }
        (Cow::Device(d), _) => d.clone(),
        (Cow::Overlay { .. }, None) => return Err(Error::new(name, "no overlay file")),
    };
    let (cma, cmi) = fsutil::block_dev(&cow_dev)?;

    let target = Target {
        start: 0,
        length: sectors,
        kind: "snapshot".into(),
        params: format!("{oma}:{omi} {cma}:{cmi} {mode} {chunk}"),
    };
    let uuid = uuid(name, undo.loopdev.is_some());
    ctl.create(name, &uuid)?;
    undo.dm = Some(name.to_owned());
    undo.ctl = Some(Control::open()?);
    ctl.load(name, std::slice::from_ref(&target), false).map_err(|e| {
        Error::new(name, format!("{} (table: {target})", e.reason))
    })?;
    if let Some(dev) = undo.loopdev.take() {
        // The snapshot holds the loop open, so this only marks it autoclear: it goes away with
        // the snapshot.
        if let Err(e) = loopdev::detach(&dev) {
            undo.loopdev = Some(dev);
            return Err(e);
        }
    }
    let info = ctl.resume(name)?;
    let node = mapper_path(name);
    fsutil::mknod_block(&node, info.major, info.minor)?;
    // Complete: keep everything.
    undo.dm = None;
    undo.file = None;
    Ok(())
}


#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn uuids() {
        assert_eq!(super::uuid("live-rw", true), "LIVEROOT-live-rw.overlay");
        assert_eq!(super::uuid("live-rw", false), "LIVEROOT-live-rw");
        // A device named like an overlay, with a COW the user gave, is not taken for one.
        assert_ne!(super::uuid("a.overlay", false), super::uuid("a.overlay", true));
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            describe("live-rw", "25600/1048576 80"),
            "live-rw: 12.5M / 512.0M used (2.4%), metadata 40.0K\n"
        );
        assert!(describe("live-rw", "Overflow").starts_with("live-rw: Overflow: "));
        assert!(describe("live-rw", "Invalid").starts_with("live-rw: Invalid: "));
        assert_eq!(describe("x", "Merge failed"), "x: Merge failed\n");
        assert_eq!(describe("x", "0/0 0"), "x: 0B / 0B used (0.0%), metadata 0B\n");
        // Sector counts whose byte counts do not fit in u64 (overflowed before).
        let max = u64::MAX;
        assert_eq!(describe("x", &format!("{max}/{max} {max}")), "x: 15.9E / 15.9E used (100.0%), metadata 15.9E\n");
    }
}
