//! md (Linux software RAID) without mdadm: the array ioctls on /dev/mdN and the sysfs attributes
//! under /sys/block/mdN/md. Only what a superblock-less raid1 ("build" mode) needs.
//!
//! Errors are returned as `Errno` so callers can tell EBUSY from ENOSPC; nothing here prints.

use super::{Req, ValReq};
use std::os::fd::{AsRawFd, OwnedFd};

/// Block major of /dev/mdN.
pub const MD_MAJOR: u32 = 9;

/// `mdu_array_info_t` from <linux/raid/md_u.h>.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArrayInfo {
    pub major_version: i32,
    pub minor_version: i32,
    pub patch_version: i32,
    pub ctime: u32,
    pub level: i32,
    /// Used size of each member in KiB.
    pub size: i32,
    pub nr_disks: i32,
    pub raid_disks: i32,
    pub md_minor: i32,
    pub not_persistent: i32,
    pub utime: u32,
    pub state: i32,
    pub active_disks: i32,
    pub working_disks: i32,
    pub failed_disks: i32,
    pub spare_disks: i32,
    pub layout: i32,
    pub chunk_size: i32,
}

/// `mdu_disk_info_t`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskInfo {
    pub number: i32,
    pub major: i32,
    pub minor: i32,
    pub raid_disk: i32,
    pub state: i32,
}

/// `mdu_param_t`, the RUN_ARRAY argument (ignored by current kernels, but sized into the number).
#[repr(C)]
#[derive(Default)]
struct Param {
    personality: i32,
    chunk_size: i32,
    max_fault: i32,
}

const _: () = assert!(std::mem::size_of::<ArrayInfo>() == 72);
const _: () = assert!(std::mem::size_of::<DiskInfo>() == 20);
const _: () = assert!(std::mem::size_of::<Param>() == 12);

/// `DiskInfo::state` bits.
pub const DISK_FAULTY: i32 = 1 << 0;
pub const DISK_ACTIVE: i32 = 1 << 1;
pub const DISK_SYNC: i32 = 1 << 2;
pub const DISK_REMOVED: i32 = 1 << 3;
pub const DISK_WRITEMOSTLY: i32 = 1 << 9;

/// `ArrayInfo::state` bit: no writes in flight (mdadm's "clean" vs "active").
pub const ARRAY_CLEAN: i32 = 1 << 0;

pub const GET_ARRAY_INFO: Req<ArrayInfo> = Req::new(nix::request_code_read!(MD_MAJOR, 0x11, std::mem::size_of::<ArrayInfo>()) as u32);
pub const GET_DISK_INFO: Req<DiskInfo> = Req::new(nix::request_code_read!(MD_MAJOR, 0x12, std::mem::size_of::<DiskInfo>()) as u32);
pub const ADD_NEW_DISK: Req<DiskInfo> = Req::new(nix::request_code_write!(MD_MAJOR, 0x21, std::mem::size_of::<DiskInfo>()) as u32);
pub const HOT_REMOVE_DISK: ValReq = ValReq(nix::request_code_none!(MD_MAJOR, 0x22) as u32);
pub const SET_ARRAY_INFO: Req<ArrayInfo> = Req::new(nix::request_code_write!(MD_MAJOR, 0x23, std::mem::size_of::<ArrayInfo>()) as u32);
pub const HOT_ADD_DISK: ValReq = ValReq(nix::request_code_none!(MD_MAJOR, 0x28) as u32);
pub const SET_DISK_FAULTY: ValReq = ValReq(nix::request_code_none!(MD_MAJOR, 0x29) as u32);
const RUN_ARRAY: Req<Param> = Req::new(nix::request_code_write!(MD_MAJOR, 0x30, std::mem::size_of::<Param>()) as u32);
pub const STOP_ARRAY: ValReq = ValReq(nix::request_code_none!(MD_MAJOR, 0x32) as u32);

/// An open /dev/mdN.
pub struct Md {
    fd: OwnedFd,
    /// Kernel name, "md7".
    pub name: String,
    pub minor: u32,
}

fn ioctl_ptr<T>(fd: &OwnedFd, req: Req<T>, arg: &mut T) -> nix::Result<()> {
    super::ioctl_ptr(fd.as_raw_fd(), req, arg).map(drop)
}

fn ioctl_val(fd: &OwnedFd, req: ValReq, arg: u64) -> nix::Result<()> {
    super::ioctl_val(fd.as_raw_fd(), req, arg as libc::c_ulong).map(drop)
}

impl Md {
    /// Open /dev/mdN (read-write: the array ioctls change state).
    pub fn open(path: &str, name: &str, minor: u32) -> nix::Result<Md> {
        use nix::fcntl::{open, OFlag};
        let raw = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        Ok(Md { fd, name: name.to_owned(), minor })
    }

    /// ENODEV when no array is configured on this node.
    pub fn array_info(&self) -> nix::Result<ArrayInfo> {
        let mut a = ArrayInfo::default();
        ioctl_ptr(&self.fd, GET_ARRAY_INFO, &mut a)?;
        Ok(a)
    }

    /// Disk by descriptor number; an unused number comes back with state DISK_REMOVED.
    pub fn disk_info(&self, number: i32) -> nix::Result<DiskInfo> {
        let mut d = DiskInfo { number, ..DiskInfo::default() };
        ioctl_ptr(&self.fd, GET_DISK_INFO, &mut d)?;
        Ok(d)
    }

    /// Every disk the array knows (nr_disks of them), in descriptor order.
    pub fn disks(&self, info: &ArrayInfo) -> nix::Result<Vec<DiskInfo>> {
        let mut out = Vec::new();
        // Descriptor numbers have holes after removals; the kernel caps them well below this.
        for n in 0..1024 {
            if out.len() >= info.nr_disks.max(0) as usize {
                break;
            }
            let d = self.disk_info(n)?;
            if d.state & DISK_REMOVED == 0 && (d.major, d.minor) != (0, 0) {
                out.push(d);
            }
        }
        Ok(out)
    }

    pub fn set_array_info(&self, info: &ArrayInfo) -> nix::Result<()> {
        let mut copy = *info;
        ioctl_ptr(&self.fd, SET_ARRAY_INFO, &mut copy)
    }

    pub fn add_new_disk(&self, disk: &DiskInfo) -> nix::Result<()> {
        let mut copy = *disk;
        ioctl_ptr(&self.fd, ADD_NEW_DISK, &mut copy)
    }

    pub fn run(&self) -> nix::Result<()> {
        let mut p = Param::default();
        ioctl_ptr(&self.fd, RUN_ARRAY, &mut p)
    }

    /// EBUSY while the array is open elsewhere (mounted, held by dm, ...).
    pub fn stop(&self) -> nix::Result<()> {
        ioctl_val(&self.fd, STOP_ARRAY, 0)
    }

    /// Add a spare to a running array, recording its size (ENOSPC if too small). The kernel
    /// turns any md_import_device failure (device busy, gone) into EINVAL.
    pub fn hot_add(&self, major: u32, minor: u32) -> nix::Result<()> {
        ioctl_val(&self.fd, HOT_ADD_DISK, crate::sysfs::encode_dev(major, minor))
    }

    /// EBUSY while the member is still active or has I/O pending.
    pub fn hot_remove(&self, major: u32, minor: u32) -> nix::Result<()> {
        ioctl_val(&self.fd, HOT_REMOVE_DISK, crate::sysfs::encode_dev(major, minor))
    }

    pub fn set_faulty(&self, major: u32, minor: u32) -> nix::Result<()> {
        ioctl_val(&self.fd, SET_DISK_FAULTY, crate::sysfs::encode_dev(major, minor))
    }
}

/// Ask md to create mdN (EEXIST if it exists; the file is absent when md is not loaded).
pub fn new_array(name: &str) -> crate::error::Result<()> {
    crate::sysfs::write_attr("/sys/module/md_mod/parameters/new_array", name)
}

/// /sys/block/NAME/md
pub fn sysdir(name: &str) -> String {
    format!("/sys/block/{name}/md")
}

/// One attribute of the array: sync_action, sync_completed, degraded, array_state, raid_disks,
/// component_size, sync_speed, consistency_policy, ...
pub fn attr(name: &str, attr: &str) -> crate::error::Result<String> {
    crate::sysfs::read_attr(format!("{}/{attr}", sysdir(name)))
}

pub fn set_attr(name: &str, attr: &str, value: &str) -> crate::error::Result<()> {
    crate::sysfs::write_attr(format!("{}/{attr}", sysdir(name)), value)
}

/// `sync_completed`: (done, total) sectors, or None when idle ("none") or not started.
pub fn parse_sync_completed(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('/')?;
    let done = a.trim().parse().ok()?;
    let total: u64 = b.trim().parse().ok()?;
    (total > 0).then_some((done, total))
}

/// A member as sysfs shows it (`md/dev-NAME/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Kernel name of the component ("loop0", "vda", "dm-1").
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// Comma-separated flags: in_sync, spare, faulty, write_mostly, blocked, ...
    pub state: String,
    /// Slot (raid_disk) or None for "none".
    pub slot: Option<u32>,
    /// Size of the member as md uses it, KiB (0 when md recorded none).
    pub size_kib: u64,
}

impl Member {
    pub fn has(&self, flag: &str) -> bool {
        self.state.split(',').any(|f| f == flag)
    }
}

/// All members of array `name`, sorted by kernel name.
pub fn members(name: &str) -> crate::error::Result<Vec<Member>> {
    use crate::error::Context;
    let dir = sysdir(name);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).ctx(&dir)? {
        let e = e.ctx(&dir)?;
        let fname = e.file_name();
        let Some(dev) = fname.to_str().and_then(|n| n.strip_prefix("dev-")) else { continue };
        let base = format!("{dir}/dev-{dev}");
        // A member being removed keeps its dev-* directory a moment after its block link goes.
        let Ok(devno) = crate::sysfs::read_attr(format!("{base}/block/dev")) else { continue };
        let (ma, mi) = crate::sysfs::parse_devno(&devno)
            .ok_or_else(|| crate::error::Error::new(format!("{base}/block/dev"), "unexpected value"))?;
        let slot = crate::sysfs::read_attr(format!("{base}/slot"))?.parse().ok();
        let size_kib = crate::sysfs::read_attr(format!("{base}/size"))?.parse().unwrap_or(0);
        let state = crate::sysfs::read_attr(format!("{base}/state"))?;
        out.push(Member { name: dev.to_owned(), major: ma, minor: mi, state, slot, size_kib });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers() {
        assert_eq!(GET_ARRAY_INFO.nr, 0x80480911);
        assert_eq!(GET_DISK_INFO.nr, 0x80140912);
        assert_eq!(ADD_NEW_DISK.nr, 0x40140921);
        assert_eq!(SET_ARRAY_INFO.nr, 0x40480923);
        assert_eq!(RUN_ARRAY.nr, 0x400C0930);
        assert_eq!(STOP_ARRAY.0, 0x932);
        assert_eq!(HOT_REMOVE_DISK.0, 0x922);
        assert_eq!(HOT_ADD_DISK.0, 0x928);
        assert_eq!(SET_DISK_FAULTY.0, 0x929);
    }

    #[test]
    fn layouts() {
        assert_eq!(std::mem::size_of::<ArrayInfo>(), 72);
        assert_eq!(std::mem::size_of::<DiskInfo>(), 20);
        assert_eq!(std::mem::offset_of!(ArrayInfo, not_persistent), 36);
        assert_eq!(std::mem::offset_of!(ArrayInfo, chunk_size), 68);
        assert_eq!(std::mem::offset_of!(DiskInfo, state), 16);
    }

    #[test]
    fn sync_completed() {
        assert_eq!(parse_sync_completed("8448 / 65536"), Some((8448, 65536)));
        assert_eq!(parse_sync_completed("none"), None);
        assert_eq!(parse_sync_completed("delayed"), None);
        assert_eq!(parse_sync_completed("0 / 0"), None);
    }

    #[test]
    fn devno_and_flags() {
        let m = Member {
            name: "vda".into(),
            major: 253,
            minor: 0,
            state: "faulty,write_mostly".into(),
            slot: None,
            size_kib: 0,
        };
        assert!(m.has("faulty") && m.has("write_mostly") && !m.has("in_sync"));
    }
}
