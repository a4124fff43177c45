//! sysfs attributes and block device numbers: what the kernel layer itself reads (md members,
//! loop and dm device numbers) and the layers above share. The one place that knows the
//! /sys/class/block and /sys/dev/block layout (names, sizes, partition → disk, slaves, holders)
//! and the kernel's dev_t encoding.

use crate::error::{Context, Error, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A block device number, (major, minor).
pub type DevNo = (u32, u32);

const SYS: &str = "/sys";

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

/// The kernel's `new_encode_dev` (and `huge_encode_dev`, the same for 32-bit numbers): what md's
/// dev_t-taking ioctls decode and what `dm_ioctl.dev` and `dm_name_list.dev` carry.
pub fn encode_dev(major: u32, minor: u32) -> u64 {
    u64::from(minor & 0xff) | (u64::from(major) << 8) | (u64::from(minor & !0xff) << 12)
}

/// The inverse of [`encode_dev`]: 12 bits of major, 20 of minor.
pub fn decode_dev(dev: u64) -> DevNo {
    let major = ((dev & 0xfff00) >> 8) as u32;
    let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
    (major, minor)
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

/// Kernel name of a block device ("loop0", "dm-1", "md7", "vda1") from its device number.
pub fn kernel_name(major: u32, minor: u32) -> Result<String> {
    kernel_name_in(Path::new(SYS), (major, minor))
}

/// Size in bytes of a block device (sysfs counts 512-byte sectors whatever the device's own).
pub fn block_size_bytes(major: u32, minor: u32) -> Result<u64> {
    let p = format!("{SYS}/dev/block/{major}:{minor}/size");
    let s = read_attr(&p)?;
    s.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(512))
        .ok_or_else(|| Error::new(p, format!("unexpected value '{s}'")))
}

/// (major, minor) of the block device named NAME.
pub fn devno_of_name(name: &str) -> Option<DevNo> {
    devno_of_name_in(Path::new(SYS), name)
}

/// The disk and partition number of a partition (None for a whole disk).
pub fn partition_of(name: &str) -> Option<(String, u32)> {
    partition_of_in(Path::new(SYS), name)
}

/// The whole disk a partition belongs to (None for a whole disk).
pub fn parent_disk(dev: DevNo) -> Option<DevNo> {
    let root = Path::new(SYS);
    let (disk, _) = partition_of_in(root, &kernel_name_in(root, dev).ok()?)?;
    devno_of_name_in(root, &disk)
}

/// Partitions of a whole disk, as device numbers.
pub fn partitions(dev: DevNo) -> Vec<DevNo> {
    partitions_in(Path::new(SYS), dev)
}

/// Kernel names of the devices under a stacked one (dm, md): `slaves/`.
pub fn slaves(dev: DevNo) -> Vec<String> {
    list_in(Path::new(SYS), dev, "slaves")
}

/// Kernel names of the devices stacked on this one (what holds it open): `holders/`.
pub fn holders(dev: DevNo) -> Vec<String> {
    list_in(Path::new(SYS), dev, "holders")
}

/// Every block device's kernel name, sorted.
pub fn block_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("{SYS}/class/block"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether sysfs knows a block device of that kernel name.
pub fn is_block_name(name: &str) -> bool {
    !name.contains('/') && Path::new(SYS).join("class/block").join(name).exists()
}

/// `/dev/NAME` for a kernel block device name, created from sysfs if devtmpfs has none.
pub fn dev_node(name: &str) -> Result<String> {
    let path = format!("/dev/{name}");
    let (ma, mi) = parse_devno(&read_attr(format!("{SYS}/class/block/{name}/dev"))?)
        .ok_or_else(|| Error::new(&path, "unexpected sysfs dev"))?;
    mknod_block(&path, ma, mi)?;
    Ok(path)
}

fn kernel_name_in(root: &Path, (major, minor): DevNo) -> Result<String> {
    let link = root.join(format!("dev/block/{major}:{minor}"));
    let target = std::fs::read_link(&link).ctx(link.display())?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::new(link.display().to_string(), "unexpected sysfs link"))
}

fn class_block(root: &Path, name: &str) -> PathBuf {
    root.join("class/block").join(name)
}

fn devno_of_name_in(root: &Path, name: &str) -> Option<DevNo> {
    parse_devno(&read_attr(class_block(root, name).join("dev")).ok()?)
}

fn partition_of_in(root: &Path, name: &str) -> Option<(String, u32)> {
    let n = read_attr(class_block(root, name).join("partition")).ok()?.trim().parse().ok()?;
    // A partition's directory sits inside its disk's: .../block/sda/sda1.
    let real = std::fs::canonicalize(class_block(root, name)).ok()?;
    let parent = real.parent()?.file_name()?.to_str()?.to_owned();
    Some((parent, n))
}

fn partitions_in(root: &Path, dev: DevNo) -> Vec<DevNo> {
    let Ok(k) = kernel_name_in(root, dev) else { return Vec::new() };
    let Ok(rd) = std::fs::read_dir(class_block(root, &k)) else { return Vec::new() };
    let mut v: Vec<DevNo> = rd
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            (n.starts_with(&k) && class_block(root, &n).join("partition").exists()).then(|| devno_of_name_in(root, &n))?
        })
        .collect();
    v.sort();
    v
}

fn list_in(root: &Path, (major, minor): DevNo, dir: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(root.join(format!("dev/block/{major}:{minor}/{dir}"))) else { return Vec::new() };
    let mut v: Vec<String> = rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    v.sort();
    v
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

    #[test]
    fn kernel_dev_encoding() {
        use super::{decode_dev, encode_dev};
        assert_eq!(encode_dev(7, 0), 0x700);
        assert_eq!(encode_dev(7, 1), 0x701);
        assert_eq!(encode_dev(253, 1), 0xfd01);
        assert_eq!(encode_dev(259, 0x123), 0x11_0323);
        assert_eq!(encode_dev(8, 0x100), 0x10_0800);
        assert_eq!(decode_dev(0xfe00), (254, 0));
        for (ma, mi) in [(254, 0), (7, 300), (259, 1 << 19), (4095, 0xfffff)] {
            assert_eq!(decode_dev(encode_dev(ma, mi)), (ma, mi));
        }
    }

    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs-shaped tree: disk vda (254:0) with partitions vda1, vda2; dm-0 on vda2.
    fn fake() -> PathBuf {
        let root = std::env::temp_dir().join(format!("liveroot-sysfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dev = |rel: &str, devno: &str, part: Option<&str>| {
            let d = root.join("devices/virtual").join(rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("dev"), format!("{devno}\n")).unwrap();
            if let Some(p) = part {
                std::fs::write(d.join("partition"), format!("{p}\n")).unwrap();
            }
            for sub in ["slaves", "holders"] {
                std::fs::create_dir_all(d.join(sub)).unwrap();
            }
            let name = Path::new(rel).file_name().unwrap();
            std::fs::create_dir_all(root.join("class/block")).unwrap();
            std::fs::create_dir_all(root.join("dev/block")).unwrap();
            symlink(&d, root.join("class/block").join(name)).unwrap();
            symlink(&d, root.join("dev/block").join(devno)).unwrap();
            d
        };
        dev("block/vda", "254:0", None);
        dev("block/vda/vda1", "254:1", Some("1"));
        let vda2 = dev("block/vda/vda2", "254:2", Some("2"));
        let dm = dev("block/dm-0", "253:0", None);
        std::fs::create_dir_all(dm.join("slaves/vda2")).unwrap();
        std::fs::create_dir_all(vda2.join("holders/dm-0")).unwrap();
        root
    }

    #[test]
    fn topology() {
        let root = fake();
        let r = root.as_path();
        assert_eq!(kernel_name_in(r, (254, 2)).unwrap(), "vda2");
        assert!(kernel_name_in(r, (1, 1)).is_err());
        assert_eq!(devno_of_name_in(r, "vda1"), Some((254, 1)));
        assert_eq!(devno_of_name_in(r, "nope"), None);
        assert_eq!(partition_of_in(r, "vda2"), Some(("vda".to_owned(), 2)));
        assert_eq!(partition_of_in(r, "vda"), None);
        assert_eq!(partitions_in(r, (254, 0)), vec![(254, 1), (254, 2)]);
        assert!(partitions_in(r, (254, 1)).is_empty());
        assert_eq!(list_in(r, (253, 0), "slaves"), ["vda2"]);
        assert_eq!(list_in(r, (254, 2), "holders"), ["dm-0"]);
        assert!(list_in(r, (254, 1), "holders").is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
