//! Small file-system helpers shared by applets: free memory, mount points. The sysfs and
//! device-number helpers live in the kernel layer (sys::sysfs), which needs them itself; the
//! common ones are re-exported here.

pub use crate::sys::sysfs::{block_dev, block_size_bytes, kernel_name, mknod_block, parse_devno, read_attr};
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

/// `path` with `suffix` appended to its last component, bytes kept (`IMAGE.verity`,
/// `FILE.part`).
pub fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    std::path::PathBuf::from(s)
}

/// A line `liveroot: LINE` in the kernel log at `level` (6 info, 3 error); where /dev/kmsg cannot
/// be written (no devtmpfs yet) the line is dropped: the console has it too.
pub fn kmsg(level: u8, line: &str) {
    use std::io::Write;
    if let Ok(mut k) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = k.write_all(format!("<{level}>liveroot: {line}\n").as_bytes());
    }
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
