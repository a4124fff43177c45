//! Copying an image into RAM (rd.live.ram, or a keyed boot without dm-verity sidecars): the room
//! checks against MemAvailable, the tmpfs it goes to, and a copy that hashes exactly the bytes it
//! writes, so that what boots from RAM is what was verified (one read of the medium).

use crate::digest::{Digests, Hasher, BLOCK};
use crate::error::{Context, Error, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

pub const MIB: u64 = 1 << 20;

/// A `/proc/meminfo` value (`MemAvailable`, `MemTotal`) in bytes.
pub fn meminfo(key: &str) -> Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ctx("/proc/meminfo")?;
    crate::fsutil::meminfo_field(&text, key).ok_or_else(|| Error::new("/proc/meminfo", format!("no {key}")))
}

/// Size of a file or block device (seeking to the end answers for both).
pub fn file_size(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let mut f = File::open(path).ctx(path.display())?;
    f.seek(SeekFrom::End(0)).ctx(path.display())
}

/// Refuse when copying `need` bytes would leave less than `minmem_mib` MiB of RAM available.
pub fn check_mem(obj: &str, need: u64, minmem_mib: u64) -> Result<()> {
    let avail = meminfo("MemAvailable")?;
    if avail < need.saturating_add(minmem_mib.saturating_mul(MIB)) {
        return Err(Error::new(
            obj,
            format!(
                "copying to RAM needs {} MiB but only {} MiB are available and rd.minmem={} MiB must stay free",
                need.div_ceil(MIB),
                avail / MIB,
                minmem_mib
            ),
        ));
    }
    Ok(())
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> Result<u64> {
    let vfs = nix::sys::statvfs::statvfs(dir).ctx(dir.display())?;
    Ok((vfs.blocks_available() as u64).saturating_mul(vfs.fragment_size() as u64))
}

/// Mount a tmpfs of `bytes` on `dir` (created), unless `dir` already is a mount point. A tmpfs
/// size is a limit, not an allocation: sizing it to what RAM can spare lets a fetched image or a
/// larger `.old` pair fit later without a remount.
pub fn mount_tmpfs(dir: &Path, bytes: u64) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(dir).ctx(dir.display())?;
    if crate::fsutil::is_mountpoint(dir) {
        return Ok(());
    }
    let opts = format!("size={}k,mode=0755", bytes.div_ceil(1024).max(4));
    mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(opts.as_str())).ctx(dir.display())
}

/// Copy `src` to `dest` in one pass, hashing the very buffers that are written.
pub fn copy_hashed(src: &Path, dest: &Path) -> Result<Digests> {
    let (s, d) = (src.display().to_string(), dest.display().to_string());
    let mut input = File::open(src).ctx(&s)?;
    let mut out = File::create(dest).ctx(&d)?;
    let mut h = Hasher::new(false);
    copy_through(&mut input, &mut out, &mut vec![0u8; BLOCK], Some(&mut h), (&s, &d), &mut |_| {})?;
    out.flush().ctx(&d)?;
    Ok(h.finish())
}

/// Copy `input` to `out` through `buf`, feeding `h` (when given) the very bytes that are
/// written: a digest of what was read before or after could differ from what landed. `done`
/// hears the bytes copied so far; `labels` name the two ends in errors. The bytes copied.
pub fn copy_through(
    input: &mut impl Read,
    out: &mut impl Write,
    buf: &mut [u8],
    mut h: Option<&mut Hasher>,
    labels: (&str, &str),
    done: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match input.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(labels.0, &e)),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        out.write_all(chunk).ctx(labels.1)?;
        if let Some(h) = h.as_deref_mut() {
            h.update(chunk);
        }
        total = total.saturating_add(n as u64);
        done(total);
    }
    Ok(total)
}
