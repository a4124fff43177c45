//! Loop devices: bind a file to /dev/loopN, read back what the kernel holds, unbind.
//!
//! LOOP_CONFIGURE does the whole setup in one ioctl (Linux ≥ 5.8); older kernels get
//! LOOP_SET_FD + LOOP_SET_STATUS64. Free devices come from /dev/loop-control, which only
//! names a candidate: another process may bind it first, so [`attach`] retries on EBUSY.

use super::{cstr, ioctl_ptr, ioctl_val, Req, ValReq};
use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

// The loop ioctls predate _IOC encoding: plain 0x4C00 + n ('L' << 8).
pub const LOOP_SET_FD: ValReq = ValReq(0x4C00);
pub const LOOP_CLR_FD: ValReq = ValReq(0x4C01);
pub const LOOP_SET_STATUS64: Req<LoopInfo64> = Req::new(0x4C04);
pub const LOOP_GET_STATUS64: Req<LoopInfo64> = Req::new(0x4C05);
pub const LOOP_SET_CAPACITY: ValReq = ValReq(0x4C07);
pub const LOOP_SET_DIRECT_IO: ValReq = ValReq(0x4C08);
pub const LOOP_SET_BLOCK_SIZE: ValReq = ValReq(0x4C09);
pub const LOOP_CONFIGURE: Req<LoopConfig> = Req::new(0x4C0A);
pub const LOOP_CTL_ADD: ValReq = ValReq(0x4C80);
#[allow(dead_code)] // completes the set; pinned by the tests
pub const LOOP_CTL_REMOVE: ValReq = ValReq(0x4C81);
pub const LOOP_CTL_GET_FREE: ValReq = ValReq(0x4C82);

pub const LO_FLAGS_READ_ONLY: u32 = 1;
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
pub const LO_FLAGS_PARTSCAN: u32 = 8;
pub const LO_FLAGS_DIRECT_IO: u32 = 16;

pub const LO_NAME_SIZE: usize = 64;
pub const LOOP_MAJOR: u32 = 7;

/// What util-linux does when another process grabs the free device first.
const RACE_TRIES: u32 = 64;
const RACE_SLEEP: std::time::Duration = std::time::Duration::from_millis(200);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoopInfo64 {
    pub lo_device: u64,
    pub lo_inode: u64,
    pub lo_rdevice: u64,
    pub lo_offset: u64,
    pub lo_sizelimit: u64,
    pub lo_number: u32,
    pub lo_encrypt_type: u32,
    pub lo_encrypt_key_size: u32,
    pub lo_flags: u32,
    pub lo_file_name: [u8; LO_NAME_SIZE],
    pub lo_crypt_name: [u8; LO_NAME_SIZE],
    pub lo_encrypt_key: [u8; 32],
    pub lo_init: [u64; 2],
}
const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoopConfig {
    pub fd: u32,
    pub block_size: u32,
    pub info: LoopInfo64,
    pub reserved: [u64; 8],
}
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

impl Default for LoopInfo64 {
    fn default() -> Self {
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
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        }
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
    /// Logical sector size; 0 = kernel default (512).
    pub block_size: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// "/dev/loopN"
    pub name: String,
    /// As the kernel reports it: the full path, with " (deleted)" if the file was unlinked.
    pub back_file: String,
    pub offset: u64,
    pub sizelimit: u64,
    pub read_only: bool,
    pub autoclear: bool,
    pub partscan: bool,
    pub direct_io: bool,
    /// Logical sector size in bytes.
    pub log_sec: u32,
    /// st_dev of the backing file, kernel encoding (as stat(2) returns it).
    pub back_dev: u64,
    pub back_ino: u64,
    /// N of /dev/loopN.
    pub number: u32,
    /// Device number of the loop device itself, if sysfs has it.
    pub maj_min: Option<(u32, u32)>,
    /// Raw LO_FLAGS_*.
    pub flags: u32,
}

fn open_raw(path: &Path, flags: libc::c_int) -> std::result::Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    let fd = Errno::result(fd)?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// N of "/dev/loopN" (or "loopN").
pub fn dev_number(dev: &str) -> Option<u32> {
    let base = dev.rsplit('/').next()?;
    let n = base.strip_prefix("loop")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

fn control() -> Result<OwnedFd> {
    open_raw(Path::new("/dev/loop-control"), libc::O_RDWR).map_err(|e| Error::sys("/dev/loop-control", e))
}

/// Ask /dev/loop-control for a free device ("/dev/loopN"); the kernel creates one if all are
/// bound. Only a hint: nothing reserves it. The node is made when /dev is not devtmpfs.
pub fn find_free() -> Result<String> {
    let ctl = control()?;
    let n = ioctl_val(ctl.as_raw_fd(), LOOP_CTL_GET_FREE, 0)
        .map_err(|e| Error::sys("cannot find an unused loop device", e))?;
    let dev = format!("/dev/loop{n}");
    ensure_node(&dev, n as u32)?;
    Ok(dev)
}

fn ensure_node(dev: &str, n: u32) -> Result<()> {
    if std::fs::symlink_metadata(dev).is_ok() {
        return Ok(());
    }
    // Without devtmpfs nobody makes the node; the minor is N when max_part is 0.
    let minor = sysfs_dev(n).map(|(_, mi)| mi).unwrap_or(n);
    crate::sysfs::mknod_block(dev, LOOP_MAJOR, minor)
}

fn sysfs_dev(n: u32) -> Option<(u32, u32)> {
    crate::sysfs::parse_devno(&std::fs::read_to_string(format!("/sys/block/loop{n}/dev")).ok()?)
}

/// The backing file, opened the way the loop device will use it.
struct Backing {
    fd: OwnedFd,
    read_only: bool,
    /// Canonical path, for lo_file_name (the kernel truncates it to 63 bytes).
    name: Vec<u8>,
}

fn open_backing(backing: &Path, setup: &Setup) -> Result<Backing> {
    let obj = || backing.display().to_string();
    let md = std::fs::metadata(backing).map_err(|e| Error::io(obj(), &e))?;
    if md.is_dir() {
        return Err(Error::sys(obj(), Errno::EISDIR));
    }
    if !md.is_file() && !md.file_type().is_block_device() {
        return Err(Error::new(obj(), "not a regular file or block device"));
    }
    let extra = if setup.direct_io { libc::O_DIRECT } else { 0 };
    let mut read_only = setup.read_only;
    let fd = if read_only {
        open_raw(backing, libc::O_RDONLY | extra)
    } else {
        // Like util-linux: a file we may not write (read-only fs, mode bits) silently gives a
        // read-only device, which is what a squashfs on read-only media wants anyway.
        match open_raw(backing, libc::O_RDWR | extra) {
            Err(Errno::EROFS) | Err(Errno::EACCES) => {
                read_only = true;
                open_raw(backing, libc::O_RDONLY | extra)
            }
            r => r,
        }
    }
    .map_err(|e| Error::sys(obj(), e))?;
    let name = std::fs::canonicalize(backing)
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_else(|_| backing.as_os_str().as_bytes().to_vec());
    Ok(Backing { fd, read_only, name })
}

fn build_info(b: &Backing, setup: &Setup) -> LoopInfo64 {
    let mut info = LoopInfo64 { lo_offset: setup.offset, lo_sizelimit: setup.sizelimit, ..Default::default() };
    let mut flags = 0;
    if b.read_only {
        flags |= LO_FLAGS_READ_ONLY;
    }
    if setup.autoclear {
        flags |= LO_FLAGS_AUTOCLEAR;
    }
    if setup.partscan {
        flags |= LO_FLAGS_PARTSCAN;
    }
    if setup.direct_io {
        flags |= LO_FLAGS_DIRECT_IO;
    }
    info.lo_flags = flags;
    let n = b.name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..n].copy_from_slice(&b.name[..n]);
    info
}

/// One bind attempt. The error is the bare errno so the caller can tell a lost race (EBUSY)
/// from a real failure.
fn bind(dev: &str, b: &Backing, setup: &Setup) -> std::result::Result<(), Errno> {
    let mode = if b.read_only { libc::O_RDONLY } else { libc::O_RDWR };
    let dfd = open_raw(Path::new(dev), mode)?;
    let fd = dfd.as_raw_fd();
    let info = build_info(b, setup);
    let mut cfg = LoopConfig { fd: b.fd.as_raw_fd() as u32, block_size: setup.block_size, info, reserved: [0; 8] };
    let res = match ioctl_ptr(fd, LOOP_CONFIGURE, &mut cfg) {
        Ok(_) => Ok(()),
        Err(Errno::EINVAL) | Err(Errno::ENOTTY) | Err(Errno::ENOSYS) => legacy_bind(fd, b, setup, info),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) => {
            // EBUSY: the device is someone else's now; do not tear down their binding.
            if e != Errno::EBUSY {
                let _ = ioctl_val(fd, LOOP_CLR_FD, 0);
            }
            Err(e)
        }
    }
}

fn legacy_bind(fd: RawFd, b: &Backing, setup: &Setup, mut info: LoopInfo64) -> std::result::Result<(), Errno> {
    ioctl_val(fd, LOOP_SET_FD, b.fd.as_raw_fd() as libc::c_ulong)?;
    let clear = |e: Errno| {
        let _ = ioctl_val(fd, LOOP_CLR_FD, 0);
        e
    };
    if setup.block_size > 0 {
        retry_eagain(|| ioctl_val(fd, LOOP_SET_BLOCK_SIZE, setup.block_size as libc::c_ulong)).map_err(clear)?;
    }
    retry_eagain(|| ioctl_ptr(fd, LOOP_SET_STATUS64, &mut info)).map_err(clear)?;
    if setup.direct_io {
        // Older kernels ignore LO_FLAGS_DIRECT_IO in SET_STATUS64.
        let _ = ioctl_val(fd, LOOP_SET_DIRECT_IO, 1);
    }
    Ok(())
}

fn retry_eagain(mut f: impl FnMut() -> std::result::Result<i32, Errno>) -> std::result::Result<i32, Errno> {
    let mut tries = 0;
    loop {
        match f() {
            Err(Errno::EAGAIN) if tries < RACE_TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            r => return r,
        }
    }
}

/// Bind `backing` to a free loop device; returns "/dev/loopN". Retries the GET_FREE race;
/// on failure nothing is left bound.
pub fn attach(backing: &Path, setup: &Setup) -> Result<String> {
    let b = open_backing(backing, setup)?;
    let mut tries = 0;
    loop {
        let dev = find_free()?;
        match bind(&dev, &b, setup) {
            Ok(()) => return Ok(dev),
            Err(Errno::EBUSY) | Err(Errno::EAGAIN) if tries < RACE_TRIES => {
                tries += 1;
                std::thread::sleep(RACE_SLEEP);
            }
            Err(e) => return Err(Error::sys(dev, e)),
        }
    }
}

/// Bind `backing` to the given device ("/dev/loopN"); creates the device if the kernel has
/// not yet (LOOP_CTL_ADD) and the node if /dev lacks it.
pub fn attach_to(dev: &str, backing: &Path, setup: &Setup) -> Result<()> {
    let b = open_backing(backing, setup)?;
    if std::fs::symlink_metadata(dev).is_err() {
        if let Some(n) = dev_number(dev) {
            if let Ok(ctl) = control() {
                let _ = ioctl_val(ctl.as_raw_fd(), LOOP_CTL_ADD, n as libc::c_ulong);
            }
            ensure_node(dev, n)?;
        }
    }
    bind(dev, &b, setup).map_err(|e| Error::sys(dev, e))
}

fn open_loop(dev: &str) -> Result<OwnedFd> {
    let md = std::fs::metadata(dev).map_err(|e| Error::io(dev, &e))?;
    if !md.file_type().is_block_device() || nix::sys::stat::major(md.rdev()) as u32 != LOOP_MAJOR {
        return Err(Error::new(dev, "not a loop device"));
    }
    // O_RDONLY: enough for every query and control ioctl, and works on read-only devices.
    open_raw(Path::new(dev), libc::O_RDONLY).map_err(|e| Error::sys(dev, e))
}

/// Unbind. With other openers the kernel only sets autoclear and unbinds at the last close.
pub fn detach(dev: &str) -> Result<()> {
    let fd = open_loop(dev)?;
    retry_eagain(|| ioctl_val(fd.as_raw_fd(), LOOP_CLR_FD, 0)).map(|_| ()).map_err(|e| Error::sys(dev, e))
}

/// Re-read the backing file size (LOOP_SET_CAPACITY).
pub fn set_capacity(dev: &str) -> Result<()> {
    let fd = open_loop(dev)?;
    ioctl_val(fd.as_raw_fd(), LOOP_SET_CAPACITY, 0).map(|_| ()).map_err(|e| Error::sys(dev, e))
}

pub fn set_direct_io(dev: &str, on: bool) -> Result<()> {
    let fd = open_loop(dev)?;
    ioctl_val(fd.as_raw_fd(), LOOP_SET_DIRECT_IO, on as libc::c_ulong).map(|_| ()).map_err(|e| Error::sys(dev, e))
}

pub fn set_block_size(dev: &str, size: u32) -> Result<()> {
    let fd = open_loop(dev)?;
    retry_eagain(|| ioctl_val(fd.as_raw_fd(), LOOP_SET_BLOCK_SIZE, size as libc::c_ulong))
        .map(|_| ())
        .map_err(|e| Error::sys(dev, e))
}

/// Raw LOOP_GET_STATUS64. ENXIO means unbound.
pub fn status(dev: &str) -> Result<LoopInfo64> {
    let fd = open_loop(dev)?;
    let mut info = LoopInfo64::default();
    ioctl_ptr(fd.as_raw_fd(), LOOP_GET_STATUS64, &mut info).map_err(|e| Error::sys(dev, e))?;
    Ok(info)
}

fn sysfs_u64(n: u32, attr: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/block/loop{n}/{attr}")).ok()?.trim().parse().ok()
}

/// What the kernel holds for a bound device; an error when it is unbound.
pub fn info(dev: &str) -> Result<Info> {
    let lo = status(dev)?;
    let n = lo.lo_number;
    // sysfs has the whole path; lo_file_name stops at 63 bytes and is what the binder chose.
    let back_file = match std::fs::read(format!("/sys/block/loop{n}/loop/backing_file")) {
        Ok(mut v) => {
            if v.last() == Some(&b'\n') {
                v.pop();
            }
            String::from_utf8_lossy(&v).into_owned()
        }
        Err(_) => {
            let mut name = lo.lo_file_name;
            // Mark a possibly truncated name the way util-linux does.
            name[LO_NAME_SIZE - 2] = if name[LO_NAME_SIZE - 2] != 0 { b'*' } else { 0 };
            name[LO_NAME_SIZE - 1] = 0;
            cstr(&name)
        }
    };
    let flag = |f: u32| lo.lo_flags & f != 0;
    Ok(Info {
        name: format!("/dev/loop{n}"),
        back_file,
        offset: lo.lo_offset,
        sizelimit: lo.lo_sizelimit,
        read_only: sysfs_u64(n, "ro").map(|v| v != 0).unwrap_or(flag(LO_FLAGS_READ_ONLY)),
        autoclear: flag(LO_FLAGS_AUTOCLEAR),
        partscan: flag(LO_FLAGS_PARTSCAN),
        direct_io: flag(LO_FLAGS_DIRECT_IO),
        log_sec: sysfs_u64(n, "queue/logical_block_size").unwrap_or(512) as u32,
        back_dev: lo.lo_device,
        back_ino: lo.lo_inode,
        number: n,
        maj_min: sysfs_dev(n),
        flags: lo.lo_flags,
    })
}

/// Bound devices in /sys/block directory order, which is the order util-linux prints them in.
pub fn list_bound_unsorted() -> Result<Vec<Info>> {
    let dir = std::fs::read_dir("/sys/block").map_err(|e| Error::io("/sys/block", &e))?;
    let mut out = Vec::new();
    for ent in dir.flatten() {
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if dev_number(&name).is_none() || !ent.path().join("loop/backing_file").exists() {
            continue;
        }
        // A device unbound between readdir and the ioctl is simply not listed.
        if let Ok(i) = info(&format!("/dev/{name}")) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Bound devices, sorted by device number.
#[allow(dead_code)] // for dmsnap, liveinit, migrate
pub fn list_bound() -> Result<Vec<Info>> {
    let mut v = list_bound_unsorted()?;
    v.sort_by_key(|i| i.number);
    Ok(v)
}

/// Does `info` use `file`? By (st_dev, st_ino) when the file can be stat'ed, else by name
/// (also canonicalized). `offset` narrows the match like `losetup -j FILE -o N`.
pub fn uses_file(info: &Info, file: &Path, offset: Option<u64>) -> bool {
    let hit = match std::fs::metadata(file) {
        Ok(md) => md.dev() == info.back_dev && md.ino() == info.back_ino,
        Err(_) => {
            let want = file.to_string_lossy();
            info.back_file == want
                || std::fs::canonicalize(file).map(|p| p.to_string_lossy() == info.back_file).unwrap_or(false)
        }
    };
    hit && offset.is_none_or(|o| o == info.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers() {
        let l = (b'L' as u32) << 8;
        assert_eq!(LOOP_SET_FD.0, l);
        assert_eq!(LOOP_SET_FD.0, 0x4C00);
        assert_eq!(LOOP_CLR_FD.0, 0x4C01);
        assert_eq!(LOOP_SET_STATUS64.nr, 0x4C04);
        assert_eq!(LOOP_GET_STATUS64.nr, 0x4C05);
        assert_eq!(LOOP_SET_CAPACITY.0, 0x4C07);
        assert_eq!(LOOP_SET_DIRECT_IO.0, 0x4C08);
        assert_eq!(LOOP_SET_BLOCK_SIZE.0, 0x4C09);
        assert_eq!(LOOP_CONFIGURE.nr, 0x4C0A);
        assert_eq!(LOOP_CTL_ADD.0, 0x4C80);
        assert_eq!(LOOP_CTL_REMOVE.0, 0x4C81);
        assert_eq!(LOOP_CTL_GET_FREE.0, 0x4C82);
    }

    #[test]
    fn layouts() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_number), 40);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_flags), 52);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_file_name), 56);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_init), 216);
        assert_eq!(std::mem::offset_of!(LoopConfig, info), 8);
        assert_eq!(std::mem::offset_of!(LoopConfig, reserved), 240);
    }

    #[test]
    fn numbers() {
        assert_eq!(dev_number("/dev/loop12"), Some(12));
        assert_eq!(dev_number("loop0"), Some(0));
        assert_eq!(dev_number("/dev/loop"), None);
        assert_eq!(dev_number("/dev/loop1p2"), None);
        assert_eq!(dev_number("/dev/sda"), None);
    }

    #[test]
    fn file_name_is_truncated_and_terminated() {
        let long = vec![b'a'; 100];
        let b = Backing {
            fd: open_raw(Path::new("/dev/null"), libc::O_RDONLY).unwrap(),
            read_only: true,
            name: long,
        };
        let info = build_info(&b, &Setup { autoclear: true, ..Default::default() });
        assert_eq!(info.lo_file_name[62], b'a');
        assert_eq!(info.lo_file_name[63], 0);
        assert_eq!(info.lo_flags, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR);
    }

    /// Scratch backing file, removed with its directory on drop.
    struct Img(std::path::PathBuf);
    impl Img {
        fn new(tag: &str) -> Img {
            let dir = std::env::temp_dir().join(format!("liveroot-loopdev-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let f = std::fs::canonicalize(&dir).unwrap().join("unit.img");
            std::fs::File::create(&f).unwrap().set_len(1 << 20).unwrap();
            Img(f)
        }
    }
    impl Drop for Img {
        fn drop(&mut self) {
            // Detach whatever still uses the file, even after a failed assertion.
            if let Ok(all) = list_bound() {
                for i in all.iter().filter(|i| uses_file(i, &self.0, None)) {
                    let _ = detach(&i.name);
                }
            }
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    /// A concurrent opener (another test probing a free device) turns LOOP_CLR_FD into
    /// "unbind at last close", so allow a moment.
    fn wait_unbound(f: &Path) {
        for _ in 0..100 {
            if !list_bound().unwrap().iter().any(|i| uses_file(i, f, None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{} is still bound", f.display());
    }

    #[test]
    fn legacy_setup_path() {
        // LOOP_SET_FD + LOOP_SET_STATUS64: kernels with LOOP_CONFIGURE never take this path
        // through attach(), so drive it directly. Other tests race for free devices.
        let img = Img::new("legacy");
        let setup = Setup { offset: 512, read_only: true, block_size: 1024, ..Default::default() };
        let b = open_backing(&img.0, &setup).unwrap();
        let mut dev = None;
        for _ in 0..RACE_TRIES {
            let d = find_free().unwrap();
            let fd = open_raw(Path::new(&d), libc::O_RDONLY).unwrap();
            match legacy_bind(fd.as_raw_fd(), &b, &setup, build_info(&b, &setup)) {
                Ok(()) => {
                    dev = Some(d);
                    break;
                }
                Err(Errno::EBUSY) => continue,
                Err(e) => panic!("{d}: {e}"),
            }
        }
        let dev = dev.expect("no loop device could be bound");
        let i = info(&dev).unwrap();
        assert_eq!(i.back_file, img.0.to_str().unwrap());
        assert_eq!((i.offset, i.read_only, i.log_sec), (512, true, 1024));
        detach(&dev).unwrap();
        wait_unbound(&img.0);
    }

    #[test]
    fn attach_info_list_detach() {
        let img = Img::new("api");
        let setup = Setup { sizelimit: 65536, autoclear: false, partscan: true, ..Default::default() };
        let dev = attach(&img.0, &setup).unwrap();
        let i = info(&dev).unwrap();
        assert_eq!(i.name, dev);
        assert_eq!((i.sizelimit, i.partscan, i.read_only, i.autoclear), (65536, true, false, false));
        assert_eq!(i.maj_min.map(|m| m.0), Some(LOOP_MAJOR));
        let all = list_bound().unwrap();
        assert!(all.windows(2).all(|w| w[0].number < w[1].number));
        let mine: Vec<_> = all.iter().filter(|i| uses_file(i, &img.0, None)).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].name, dev);
        assert!(!uses_file(mine[0], &img.0, Some(512)));
        // A bound device is busy for a second binding, which must not tear down the first.
        let e = attach_to(&dev, &img.0, &setup).unwrap_err();
        assert_eq!(e.to_string(), format!("{dev}: Device or resource busy"));
        assert_eq!(info(&dev).unwrap().back_file, img.0.to_str().unwrap());
        detach(&dev).unwrap();
        wait_unbound(&img.0);
        assert!(detach("/dev/null").is_err());
    }
}
