//! Block-device requests that are not about loop, dm or md: re-reading a partition table.

use super::{ioctl_val, ValReq};
use nix::errno::Errno;
use std::os::fd::AsRawFd;

/// `_IO(0x12, 95)`: the kernel drops a disk's partitions and reads its table again. EBUSY while
/// any partition is open.
pub const BLKRRPART: ValReq = ValReq(0x125f);

/// Ask the kernel to read `disk`'s partition table again.
pub fn reread_partitions(disk: &std::fs::File) -> Result<(), Errno> {
    ioctl_val(disk.as_raw_fd(), BLKRRPART, 0).map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_number() {
        // linux/fs.h: #define BLKRRPART _IO(0x12,95)
        assert_eq!(super::BLKRRPART.0, (0x12 << 8) | 95);
    }
}
