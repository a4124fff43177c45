//! kexec_file_load(2) and the reboot into the loaded kernel: how a release's own kernel is
//! started by the kernel the boot loader started (core/src/boot/kexec.rs says when). The file
//! variant, not kexec_load(2): the kernel parses the bzImage itself, and under lockdown (Secure
//! Boot) it is the only one allowed, for a kernel whose signature it can check.

use nix::errno::Errno;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;

/// Load `kernel` (a bzImage) with `initrd` and the command line `cmdline` as the kernel to
/// start at the next [`exec`]. Nothing runs yet; a later load replaces this one.
pub fn load(kernel: &File, initrd: &File, cmdline: &str) -> Result<(), Errno> {
    let c = CString::new(cmdline).map_err(|_| Errno::EINVAL)?;
    let bytes = c.as_bytes_with_nul();
    // SAFETY: kexec_file_load(kernel_fd, initrd_fd, cmdline_len, cmdline, flags) reads
    // `cmdline_len` bytes from `cmdline`, which points at `bytes`, alive and NUL-terminated for
    // the whole call (the kernel requires the NUL within the length); both fds are open files
    // borrowed for the call; flags 0. It writes no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd.as_raw_fd(),
            bytes.len() as libc::c_ulong,
            bytes.as_ptr(),
            0 as libc::c_ulong,
        )
    };
    Errno::result(r).map(drop)
}

/// Start the loaded kernel now. Only returns on failure (nothing loaded: EINVAL; not allowed:
/// EPERM). The caller has synced and unmounted what it wrote.
pub fn exec() -> Errno {
    // SAFETY: reboot(2) with LINUX_REBOOT_CMD_KEXEC takes no pointer; on success this process
    // and the running kernel are gone, so nothing of ours is left in a torn state beyond what the
    // caller already flushed.
    let r = unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_KEXEC) };
    Errno::result(r).err().unwrap_or(Errno::EINVAL)
}

/// Whether this kernel can load one by file at all (`/sys/kernel/kexec_loaded` exists with
/// CONFIG_KEXEC_CORE).
pub fn supported() -> bool {
    std::path::Path::new("/sys/kernel/kexec_loaded").exists()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_command_line_with_a_nul_is_refused_before_the_kernel() {
        let f = std::fs::File::open("/dev/null").expect("/dev/null");
        assert_eq!(super::load(&f, &f, "a\0b"), Err(nix::errno::Errno::EINVAL));
    }
}
