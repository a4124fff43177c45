//! The hardware watchdog (`/dev/watchdog`, linux/watchdog.h). Opening the device starts the
//! timer; a close without the magic character 'V' leaves it running (the kernel logs "watchdog
//! did not stop!"), which is how /init hands a running timer over to the booted system.

use super::{ioctl_ptr, Req};
use nix::errno::Errno;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `_IOR('W', 4, int)`: the kernel reads the int (WDIOS_* flags).
pub const WDIOC_SETOPTIONS: Req<libc::c_int> = Req::new(0x8004_5704);
/// `_IOR('W', 5, int)`: a ping; the int is not touched.
pub const WDIOC_KEEPALIVE: Req<libc::c_int> = Req::new(0x8004_5705);
/// `_IOWR('W', 6, int)`: seconds in, the timeout the driver chose out.
pub const WDIOC_SETTIMEOUT: Req<libc::c_int> = Req::new(0xC004_5706);
/// WDIOC_SETOPTIONS flag: stop the timer (refused with EBUSY when the driver has nowayout).
pub const WDIOS_DISABLECARD: libc::c_int = 1;

pub struct Watchdog(File);

impl Watchdog {
    /// Open (and so start) the watchdog. EBUSY: someone else holds it (the device is single-open).
    pub fn open(path: &Path) -> Result<Watchdog, Errno> {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map(Watchdog)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Set the timeout; returns the one the driver took (it may round).
    pub fn set_timeout(&self, secs: libc::c_int) -> Result<libc::c_int, Errno> {
        let mut t = secs;
        ioctl_ptr(self.0.as_raw_fd(), WDIOC_SETTIMEOUT, &mut t)?;
        Ok(t)
    }

    pub fn keepalive(&self) -> Result<(), Errno> {
        let mut unused = 0;
        ioctl_ptr(self.0.as_raw_fd(), WDIOC_KEEPALIVE, &mut unused).map(|_| ())
    }

    /// Stop the timer now.
    pub fn disable(&self) -> Result<(), Errno> {
        let mut flags = WDIOS_DISABLECARD;
        ioctl_ptr(self.0.as_raw_fd(), WDIOC_SETOPTIONS, &mut flags).map(|_| ())
    }

    /// Write the magic 'V' and close: the driver stops the timer at this close (unless nowayout).
    pub fn magic_close(mut self) -> Result<(), Errno> {
        self.0.write_all(b"V").map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Close without the magic character: the timer keeps running and resets the machine
    /// unless someone opens the device again and feeds or stops it.
    pub fn leave_running(self) {
        drop(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers() {
        // linux/watchdog.h, WATCHDOG_IOCTL_BASE 'W'; _IOR = dir 2, _IOWR = dir 3, size 4 (int).
        let ioc = |dir: u32, nr: u32| (dir << 30) | (4 << 16) | ((b'W' as u32) << 8) | nr;
        assert_eq!(WDIOC_SETOPTIONS.nr, ioc(2, 4));
        assert_eq!(WDIOC_KEEPALIVE.nr, ioc(2, 5));
        assert_eq!(WDIOC_SETTIMEOUT.nr, ioc(3, 6));
        assert_eq!(WDIOC_SETTIMEOUT.nr, nix::request_code_readwrite!(b'W', 6, std::mem::size_of::<libc::c_int>()) as u32);
        assert_eq!(WDIOC_KEEPALIVE.nr, nix::request_code_read!(b'W', 5, std::mem::size_of::<libc::c_int>()) as u32);
        assert_eq!(std::mem::size_of::<libc::c_int>(), 4);
    }

    #[test]
    fn missing_device() {
        assert_eq!(Watchdog::open(Path::new("/nonexistent/watchdog")).err(), Some(Errno::ENOENT));
    }
}
