//! Kernel module loading with finit_module(2): the kernel reads the module from the file
//! descriptor itself (and decompresses it when asked and able to).

use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::AsRawFd;

/// `MODULE_INIT_COMPRESSED_FILE` (linux/module.h, Linux ≥ 5.17): the file is .xz/.zst/.gz.
pub const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// Load the module in `file` with parameters `params` ("a=1 b=2", may be empty).
/// `EEXIST` means it is already loaded; the caller decides whether that is fine.
pub fn finit_module(file: &std::fs::File, params: &str, flags: u32) -> Result<(), Errno> {
    let params = CString::new(params).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the fd is open for the duration of the call, `params` is a valid NUL-terminated
    // string that outlives it, and the syscall reads nothing else from our memory.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), flags as libc::c_int) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn syscall_number_and_flag() {
        // x86_64 syscall table and include/uapi/linux/module.h.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(libc::SYS_finit_module, 313);
        assert_eq!(super::MODULE_INIT_COMPRESSED_FILE, 4);
    }
}
