//! Block-device requests that are not about loop, dm or md: re-reading a partition table, the
//! logical sector size.

use super::{ioctl_ptr, ioctl_val, Req, ValReq};
use nix::errno::Errno;
use std::os::fd::AsRawFd;

/// `_IO(0x12, 95)`: the kernel drops a disk's partitions and reads its table again. EBUSY while
/// any partition is open.
pub const BLKRRPART: ValReq = ValReq(0x125f);

/// `_IO(0x12, 104)`: the logical sector size, the smallest write the device takes (O_DIRECT
/// offsets and lengths must be multiples of it).
pub const BLKSSZGET: Req<libc::c_int> = Req::new(0x1268);

pub fn logical_sector_size(dev: &std::fs::File) -> Result<u32, Errno> {
    let mut n: libc::c_int = 0;
    ioctl_ptr(dev.as_raw_fd(), BLKSSZGET, &mut n).map(|_| n as u32)
}

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
        // #define BLKSSZGET _IO(0x12,104)
        assert_eq!(super::BLKSSZGET.nr, (0x12 << 8) | 104);
    }
}
