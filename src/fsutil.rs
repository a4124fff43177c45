//! Small file-system helpers shared by applets: sysfs attributes and device numbers.

use crate::error::{Context, Error, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Read a sysfs (or procfs) attribute, trimmed of the trailing newline.
pub fn read_attr(path: impl AsRef<std::path::Path>) -> Result<String> {
    let p = path.as_ref();
    std::fs::read_to_string(p).ctx(p.display()).map(|s| s.trim_end().to_owned())
}

/// Write a sysfs attribute in one write, as the kernel expects.
pub fn write_attr(path: impl AsRef<std::path::Path>, value: &str) -> Result<()> {
    let p = path.as_ref();
    std::fs::write(p, value).ctx(p.display())
}

/// (major, minor) of a block device node; errors name the path.
pub fn block_dev(path: &str) -> Result<(u32, u32)> {
    let md = std::fs::metadata(path).ctx(path)?;
    if !md.file_type().is_block_device() {
        return Err(Error::new(path, "not a block device"));
    }
    let rdev = md.rdev();
    Ok((nix::sys::stat::major(rdev) as u32, nix::sys::stat::minor(rdev) as u32))
}

/// Kernel name of a block device ("loop0", "dm-1", "md7", "vda1") from its device number.
pub fn kernel_name(major: u32, minor: u32) -> Result<String> {
    let link = format!("/sys/dev/block/{major}:{minor}");
    let target = std::fs::read_link(&link).ctx(&link)?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::new(link, "unexpected sysfs link"))
}

/// Size in bytes of a block device, from sysfs (512-byte sectors).
pub fn block_size_bytes(major: u32, minor: u32) -> Result<u64> {
    let p = format!("/sys/dev/block/{major}:{minor}/size");
    let s = read_attr(&p)?;
    s.parse::<u64>().map(|n| n * 512).map_err(|_| Error::new(p, format!("unexpected value '{s}'")))
}

/// Create (or replace a stale) block device node `path` for (major, minor), mode 0600.
pub fn mknod_block(path: &str, major: u32, minor: u32) -> Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    if let Ok((ma, mi)) = block_dev(path) {
        if (ma, mi) == (major, minor) {
            return Ok(());
        }
    }
    let _ = std::fs::remove_file(path);
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).ctx(dir.display())?;
    }
    mknod(path, SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), makedev(major.into(), minor.into())).ctx(path)
}

/// A mount point: its device differs from its parent's, or it is listed in mountinfo.
pub fn is_mountpoint(p: &std::path::Path) -> bool {
    let (Ok(me), Ok(up)) = (std::fs::metadata(p), std::fs::metadata(p.join(".."))) else {
        return false;
    };
    if me.dev() != up.dev() || me.ino() == up.ino() {
        return true;
    }
    let Ok(abs) = std::fs::canonicalize(p) else { return false };
    let abs = abs.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(abs.as_str()))
}
