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
pub fn block_dev(path: impl AsRef<std::path::Path>) -> Result<(u32, u32)> {
    let path = path.as_ref();
    let md = std::fs::metadata(path).ctx(path.display())?;
    if !md.file_type().is_block_device() {
        return Err(Error::new(path.display().to_string(), "not a block device"));
    }
    let rdev = md.rdev();
    Ok((nix::sys::stat::major(rdev) as u32, nix::sys::stat::minor(rdev) as u32))
}

/// "253:0" (a sysfs `dev` attribute, mountinfo's third field) → (253, 0).
pub fn parse_devno(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    let num = |x: &str| x.bytes().all(|c| c.is_ascii_digit()).then(|| x.parse().ok()).flatten();
    Some((num(a)?, num(b)?))
}

/// Bytes of RAM the kernel could hand out now (`MemAvailable` in /proc/meminfo).
pub fn mem_available() -> Option<u64> {
    meminfo_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemAvailable")
}

/// A `NAME:   N kB` field of /proc/meminfo text, in bytes.
pub fn meminfo_field(text: &str, name: &str) -> Option<u64> {
    let v = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
    let mut w = v.split_whitespace();
    let n: u64 = w.next()?.parse().ok()?;
    match w.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
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
    crate::mountinfo::at(&crate::mountinfo::read(), &abs).is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo() {
        let t = "MemTotal:       24000000 kB\nMemAvailable:     123 kB\nHugePages_Total:       0\n";
        assert_eq!(super::meminfo_field(t, "MemAvailable"), Some(123 * 1024));
        assert_eq!(super::meminfo_field(t, "HugePages_Total"), Some(0));
        assert_eq!(super::meminfo_field(t, "Mem"), None);
        assert_eq!(super::meminfo_field("MemAvailable: 99999999999999999999 kB", "MemAvailable"), None);
    }

    #[test]
    fn devnos() {
        assert_eq!(super::parse_devno("253:0\n"), Some((253, 0)));
        for bad in ["x", "1:", ":1", "+1:2", "1:-2", "1:2:3", "4294967296:0", " : "] {
            assert_eq!(super::parse_devno(bad), None, "{bad:?}");
        }
    }
}
