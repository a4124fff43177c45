//! sysfs attributes and block device numbers: what the kernel layer itself reads (md members,
//! loop and dm device numbers) and the layers above share.

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

#[cfg(test)]
mod tests {
    #[test]
    fn devnos() {
        assert_eq!(super::parse_devno("253:0\n"), Some((253, 0)));
        for bad in ["x", "1:", ":1", "+1:2", "1:-2", "1:2:3", "4294967296:0", " : "] {
            assert_eq!(super::parse_devno(bad), None, "{bad:?}");
        }
    }
}
