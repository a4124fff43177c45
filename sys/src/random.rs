//! Random bytes from the kernel (getrandom(2)), for salts and uuids.

use crate::error::{Error, Result};
use nix::errno::Errno;

/// Fill `buf` from getrandom(2), blocking until the pool is initialized (as veritysetup does for
/// its salt).
pub fn fill(buf: &mut [u8]) -> Result<()> {
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        // SAFETY: `rest` is a live, writable slice; the kernel writes at most `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(Error::sys("getrandom", e)),
            }
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_and_differs() {
        let (mut a, mut b) = ([0u8; 48], [0u8; 48]);
        super::fill(&mut a).unwrap();
        super::fill(&mut b).unwrap();
        assert_ne!(a, b);
        super::fill(&mut []).unwrap();
    }
}
