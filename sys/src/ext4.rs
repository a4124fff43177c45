//! ext4 online resize: EXT4_IOC_RESIZE_FS on the mounted filesystem. The kernel adds groups
//! (switching to meta_bg when reserved GDT blocks run out) while the filesystem stays in use.

use super::{ioctl_ptr, Req};
use std::os::fd::AsRawFd;

/// `_IOW('f', 16, __u64)`.
pub const RESIZE_FS: Req<u64> = Req::new(nix::request_code_write!(b'f', 16, std::mem::size_of::<u64>()) as u32);

/// Grow the ext4 filesystem that `mount_point` (any file or directory on it, opened read-only)
/// belongs to, to `blocks` filesystem blocks. Needs CAP_SYS_RESOURCE; EROFS on a read-only mount,
/// ENOTTY when it is not ext4.
pub fn resize(dir: &std::fs::File, blocks: u64) -> nix::Result<()> {
    let mut count: u64 = blocks;
    ioctl_ptr(dir.as_raw_fd(), RESIZE_FS, &mut count).map(drop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_number() {
        assert_eq!(super::RESIZE_FS.nr, 0x40086610);
    }
}
