//! FIBMAP: the physical block holding a logical block of a file. syncflash uses it to notice two
//! directory entries sharing one cluster chain (a FAT rename cut by a power loss can leave both
//! names), where deleting one would free the other's data.

use super::{ioctl_ptr, Req};
use std::os::fd::AsRawFd;

/// `_IO(0x00, 1)`, one of the historic fixed numbers; it reads and writes an int all the same.
pub const FIBMAP: Req<libc::c_int> = Req::new(1);

/// `_IO(0x00, 2)`: the block size FIBMAP counts in (the file system's, e.g. the FAT sector size).
pub const FIGETBSZ: Req<libc::c_int> = Req::new(2);

/// The unit of [`physical_block`]'s answer, in bytes.
pub fn block_size(file: &std::fs::File) -> nix::Result<u32> {
    let mut b: libc::c_int = 0;
    ioctl_ptr(file.as_raw_fd(), FIGETBSZ, &mut b).map(|_| b as u32)
}

/// Physical block of logical block `block` of `file` (0 for a hole or an empty file).
/// Needs CAP_SYS_RAWIO; ENOTTY/EINVAL where the filesystem has no bmap (tmpfs, btrfs).
pub fn physical_block(file: &std::fs::File, block: u32) -> nix::Result<u32> {
    let mut b: libc::c_int = block as libc::c_int;
    ioctl_ptr(file.as_raw_fd(), FIBMAP, &mut b).map(|_| b as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_number() {
        assert_eq!(super::FIBMAP.nr, nix::request_code_none!(0, 1) as u32);
        assert_eq!(super::FIGETBSZ.nr, nix::request_code_none!(0, 2) as u32);
    }
}
