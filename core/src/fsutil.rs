//! Small file-system helpers shared by applets. The sysfs attribute and device-number helpers
//! live in the kernel layer (sys::sysfs), which needs them itself; they are re-exported here.

use crate::error::{Context, Error, Result};
pub use crate::sys::sysfs::{block_dev, mknod_block, parse_devno, read_attr};
use std::os::unix::fs::MetadataExt;





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
}
