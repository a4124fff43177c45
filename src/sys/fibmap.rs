//! FIBMAP: the physical block holding a logical block of a file. syncflash uses it to notice two
//! directory entries sharing one cluster chain (a FAT rename cut by a power loss can leave both
//! names), where deleting one would free the other's data.

use nix::errno::Errno;
use std::os::fd::AsRawFd;

/// `_IO(0x00, 1)`, one of the historic fixed numbers.
pub const FIBMAP: u32 = 1;

/// Physical block of logical block `block` of `file` (0 for a hole or an empty file).
/// Needs CAP_SYS_RAWIO; ENOTTY/EINVAL where the filesystem has no bmap (tmpfs, btrfs).
pub fn physical_block(file: &std::fs::File, block: u32) -> nix::Result<u32> {
    let mut b: libc::c_int = block as libc::c_int;
    // SAFETY: FIBMAP reads and writes one int through the pointer; `b` lives across the call and
    // the descriptor is open for its duration.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), FIBMAP as _, &mut b as *mut libc::c_int) };
    Errno::result(r).map(|_| b as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_number() {
        assert_eq!(super::FIBMAP, nix::request_code_none!(0, 1) as u32);
    }
}
