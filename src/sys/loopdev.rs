//! Loop devices: interim attach/detach/info so dmsnap builds; the losetup branch replaces this
//! file with the full implementation (same API).

use crate::error::{Error, Result};
use nix::errno::Errno;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

const LOOP_SET_FD: u32 = 0x4C00;
const LOOP_CLR_FD: u32 = 0x4C01;
const LOOP_SET_STATUS64: u32 = 0x4C04;
const LOOP_GET_STATUS64: u32 = 0x4C05;
const LOOP_CONFIGURE: u32 = 0x4C0A;
const LOOP_CTL_GET_FREE: u32 = 0x4C82;

const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_PARTSCAN: u32 = 8;
const LO_FLAGS_DIRECT_IO: u32 = 16;

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

fn zero_info() -> LoopInfo64 {
    LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: 0,
        lo_file_name: [0; 64],
        lo_crypt_name: [0; 64],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    }
}

#[derive(Default, Clone, Debug)]
pub struct Setup {
    pub offset: u64,
    pub sizelimit: u64,
    pub read_only: bool,
    pub autoclear: bool,
    pub partscan: bool,
    pub direct_io: bool,
    pub block_size: u32,
}

#[allow(dead_code)] // the full API; dmsnap reads only some fields
#[derive(Clone, Debug)]
pub struct Info {
    pub name: String,
    pub back_file: String,
    pub offset: u64,
    pub sizelimit: u64,
    pub read_only: bool,
    pub autoclear: bool,
    pub partscan: bool,
    pub direct_io: bool,
    pub log_sec: u32,
    pub back_dev: u64,
    pub back_ino: u64,
}

fn ioctl_ptr<T>(fd: &std::fs::File, req: u32, arg: *mut T) -> std::result::Result<i32, Errno> {
    // SAFETY: callers pass a pointer to a live, correctly sized struct for `req` (or a plain
    // integer argument cast to a pointer for the fd/number ioctls); the kernel copies in/out.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    Errno::result(rc)
}

fn open_rw(path: &str) -> std::result::Result<std::fs::File, Errno> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

fn free_device() -> Result<String> {
    let ctl = open_rw("/dev/loop-control").map_err(|e| Error::sys("/dev/loop-control", e))?;
    let n = ioctl_ptr(&ctl, LOOP_CTL_GET_FREE, std::ptr::null_mut::<u8>())
        .map_err(|e| Error::sys("/dev/loop-control", e))?;
    let dev = format!("/dev/loop{n}");
    crate::fsutil::mknod_block(&dev, 7, n as u32)?;
    Ok(dev)
}

/// Bind `backing` to a free loop device and return its path.
pub fn attach(backing: &std::path::Path, setup: &Setup) -> Result<String> {
    let bname = backing.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(!setup.read_only)
        .open(backing)
        .map_err(|e| Error::io(&bname, &e))?;
    let mut info = zero_info();
    info.lo_offset = setup.offset;
    info.lo_sizelimit = setup.sizelimit;
    info.lo_flags = if setup.read_only { LO_FLAGS_READ_ONLY } else { 0 }
        | if setup.autoclear { LO_FLAGS_AUTOCLEAR } else { 0 }
        | if setup.partscan { LO_FLAGS_PARTSCAN } else { 0 }
        | if setup.direct_io { LO_FLAGS_DIRECT_IO } else { 0 };
    let abs = std::fs::canonicalize(backing).unwrap_or_else(|_| backing.to_path_buf());
    let abs = abs.to_string_lossy();
    let n = abs.len().min(63);
    info.lo_file_name[..n].copy_from_slice(&abs.as_bytes()[..n]);

    // GET_FREE is not a reservation: a racing setup makes ours fail with EBUSY; try again.
    for _ in 0..64 {
        let dev = free_device()?;
        let lo = match open_rw(&dev) {
            Ok(f) => f,
            Err(Errno::EBUSY) | Err(Errno::ENXIO) => continue,
            Err(e) => return Err(Error::sys(dev, e)),
        };
        let mut cfg = LoopConfig { fd: file.as_raw_fd() as u32, block_size: setup.block_size, info, reserved: [0; 8] };
        let r = match ioctl_ptr(&lo, LOOP_CONFIGURE, &mut cfg) {
            Err(Errno::EINVAL) | Err(Errno::ENOTTY) | Err(Errno::ENOSYS) => {
                ioctl_ptr(&lo, LOOP_SET_FD, file.as_raw_fd() as usize as *mut u8).and_then(|_| {
                    let mut i = info;
                    ioctl_ptr(&lo, LOOP_SET_STATUS64, &mut i).inspect_err(|_| {
                        let _ = ioctl_ptr(&lo, LOOP_CLR_FD, std::ptr::null_mut::<u8>());
                    })
                })
            }
            r => r,
        };
        match r {
            Ok(_) => return Ok(dev),
            Err(Errno::EBUSY) | Err(Errno::EAGAIN) => {
                std::thread::sleep(std::time::Duration::from_millis(200));
                continue;
            }
            Err(e) => return Err(Error::new(&bname, format!("cannot set up loop device {dev}: {}", e.desc()))),
        }
    }
    Err(Error::new(bname, "no free loop device (all attempts raced with other users)"))
}

/// Unbind a loop device (with other openers the kernel defers it to the last close).
pub fn detach(dev: &str) -> Result<()> {
    let lo = open_rw(dev).map_err(|e| Error::sys(dev, e))?;
    ioctl_ptr(&lo, LOOP_CLR_FD, std::ptr::null_mut::<u8>()).map_err(|e| match e {
        Errno::ENXIO => Error::new(dev, "not attached"),
        e => Error::sys(dev, e),
    })?;
    Ok(())
}

pub fn info(dev: &str) -> Result<Info> {
    let lo = std::fs::File::open(dev).map_err(|e| Error::io(dev, &e))?;
    let mut i = zero_info();
    ioctl_ptr(&lo, LOOP_GET_STATUS64, &mut i).map_err(|e| match e {
        Errno::ENXIO => Error::new(dev, "not attached"),
        e => Error::sys(dev, e),
    })?;
    let rdev = lo.metadata().map_err(|e| Error::io(dev, &e))?.rdev();
    let sys = format!("/sys/dev/block/{}:{}", nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let back_file = crate::fsutil::read_attr(format!("{sys}/loop/backing_file")).unwrap_or_else(|_| {
        let end = i.lo_file_name.iter().position(|&b| b == 0).unwrap_or(64);
        String::from_utf8_lossy(&i.lo_file_name[..end]).into_owned()
    });
    let log_sec = crate::fsutil::read_attr(format!("{sys}/queue/logical_block_size"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    Ok(Info {
        name: dev.to_owned(),
        back_file,
        offset: i.lo_offset,
        sizelimit: i.lo_sizelimit,
        read_only: i.lo_flags & LO_FLAGS_READ_ONLY != 0,
        autoclear: i.lo_flags & LO_FLAGS_AUTOCLEAR != 0,
        partscan: i.lo_flags & LO_FLAGS_PARTSCAN != 0,
        direct_io: i.lo_flags & LO_FLAGS_DIRECT_IO != 0,
        log_sec,
        back_dev: i.lo_device,
        back_ino: i.lo_inode,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers() {
        assert_eq!(super::LOOP_CONFIGURE, 0x4C0A);
        assert_eq!(super::LOOP_CTL_GET_FREE, 0x4C82);
    }
}
