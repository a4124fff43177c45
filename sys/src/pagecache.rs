//! Page-cache residency of a file (mmap + mincore), so a streaming reader can drop only the pages
//! it brought in itself and leave pages that were already cached (e.g. the running root image)
//! alone.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Files are mapped in windows of this size, bounding the address space used at once.
const WINDOW: u64 = 256 << 20;

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// One byte per page of bytes [`start`, `start + len`) of `fd`: bit 0 set when the page is
/// cached now. `start` must be a multiple of the page size.
pub fn resident(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let page = page_size();
    if !start.is_multiple_of(page) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; usize::try_from(pages).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?];
    let mut done = 0u64;
    while done < len {
        let off = start + done;
        let n = (len - done).min(WINDOW);
        // SAFETY: a fresh read-only shared mapping chosen by the kernel (addr NULL); it aliases no
        // Rust object and is unmapped below. `off` is `start` (page aligned, checked above) plus
        // multiples of WINDOW, hence page aligned.
        let addr = unsafe {
            libc::mmap(std::ptr::null_mut(), n as usize, libc::PROT_READ, libc::MAP_SHARED, fd.as_raw_fd(), off as libc::off_t)
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let first = (done / page) as usize;
        let count = n.div_ceil(page) as usize;
        // SAFETY: `addr` is the page-aligned start of a live mapping of `n` bytes, and
        // vec[first..first + count] has exactly one byte per page of it (first + count <= pages).
        let rc = unsafe { libc::mincore(addr, n as usize, vec[first..first + count].as_mut_ptr()) };
        let err = io::Error::last_os_error();
        // SAFETY: unmapping exactly the mapping created above; nothing references it.
        unsafe { libc::munmap(addr, n as usize) };
        if rc != 0 {
            return Err(err);
        }
        done += n;
    }
    Ok(vec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn reading_a_file_makes_it_resident() {
        let p = std::env::temp_dir().join(format!("pagecache-{}", std::process::id()));
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&vec![7u8; 3 * 4096 + 5]).unwrap();
        drop(f);
        let mut f = std::fs::File::open(&p).unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        let r = resident(f.as_fd(), 0, v.len() as u64).unwrap();
        let tail = resident(f.as_fd(), page_size(), v.len() as u64 - page_size()).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(r.len() as u64, (v.len() as u64).div_ceil(page_size()));
        assert!(r.iter().all(|b| b & 1 == 1), "{r:?}");
        assert_eq!(tail.len(), r.len() - 1);
        assert!(tail.iter().all(|b| b & 1 == 1), "{tail:?}");
        assert!(resident(f.as_fd(), 0, 0).unwrap().is_empty());
        assert!(resident(f.as_fd(), 1, 10).is_err());
    }
}
