//! Inode flags (`FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS`, linux/fs.h), for the one flag liveroot
//! changes: efivarfs makes every existing variable file immutable, so replacing a variable
//! means clearing `FS_IMMUTABLE_FL` first (what `chattr -i` does).

use super::{ioctl_ptr, Req};
use nix::errno::Errno;
use std::os::fd::RawFd;

/// `_IOR('f', 1, long)`: the request is sized for a long, but the kernel's handler
/// (fs/ioctl.c, ioctl_getflags) copies an unsigned int, so the argument is an int.
pub const FS_IOC_GETFLAGS: Req<libc::c_int> = Req::new(0x8008_6601);
/// `_IOW('f', 2, long)`: likewise an int read by the kernel.
pub const FS_IOC_SETFLAGS: Req<libc::c_int> = Req::new(0x4008_6602);
pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;

/// Clear the immutable flag of the open file `fd` (nothing to do when it is not set).
pub fn clear_immutable(fd: RawFd) -> Result<(), Errno> {
    let mut flags: libc::c_int = 0;
    ioctl_ptr(fd, FS_IOC_GETFLAGS, &mut flags)?;
    if flags & FS_IMMUTABLE_FL == 0 {
        return Ok(());
    }
    flags &= !FS_IMMUTABLE_FL;
    ioctl_ptr(fd, FS_IOC_SETFLAGS, &mut flags).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_the_headers() {
        // _IOC(dir, 'f', nr, sizeof(long)) on a 64-bit kernel: dir 2 read, 1 write, size 8.
        let ioc = |dir: u32, nr: u32| (dir << 30) | (8 << 16) | (u32::from(b'f') << 8) | nr;
        assert_eq!(FS_IOC_GETFLAGS.nr, ioc(2, 1));
        assert_eq!(FS_IOC_SETFLAGS.nr, ioc(1, 2));
    }

    #[test]
    fn a_plain_file_has_nothing_to_clear() {
        use std::os::fd::AsRawFd;
        let p = std::env::temp_dir().join(format!("liveroot-fsflags-{}", std::process::id()));
        let f = std::fs::File::create(&p).unwrap();
        // tmpfs before 6.0 has no flags at all: ENOTTY is the kernel saying so, not a bug here.
        match clear_immutable(f.as_raw_fd()) {
            Ok(()) | Err(Errno::ENOTTY) | Err(Errno::EOPNOTSUPP) => {}
            Err(e) => panic!("{e}"),
        }
        let _ = std::fs::remove_file(&p);
    }
}
