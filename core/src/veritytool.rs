//! The dm-verity sidecars of an image file, as `veritysetup format` writes them and `veritysetup
//! verify` checks them: IMAGE.verity (superblock + hash tree) and IMAGE.roothash (hex, no
//! newline). The format itself (superblock, tree geometry, hashing) is core/src/verity.rs; this is
//! the files around it (imgcheck --verity-format, --verity-verify).

use crate::digest::{hex, input_size};
use crate::error::{Context, Error, Result};
use crate::fsutil::with_suffix;
use crate::manifest::{ROOTHASH, VERITY};
use crate::verity::{self, Mismatch, Superblock, TreeBuilder, Verifier};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads of the image: whole data blocks, large enough that the syscalls vanish next to
/// SHA-256.
const READ: usize = 1 << 20;

/// Read until `buf` is full or the input ends; the count read.
pub fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Write `data` to `path` so that the name only ever holds the complete file: a temporary name
/// in the same directory, fsync, rename, fsync of the directory.
pub fn write_durably(p: &Path, data: &[u8]) -> Result<()> {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut base = OsString::from(".");
    base.push(p.file_name().unwrap_or_default());
    base.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(base);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)?;
        File::open(&dir)?.sync_all()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(p.display().to_string(), &e));
    }
    Ok(())
}

/// The salt or uuid veritysetup would choose: random.
pub fn random_salt() -> Result<Vec<u8>> {
    let mut s = vec![0u8; verity::DEFAULT_SALT];
    crate::sys::random::fill(&mut s)?;
    Ok(s)
}

pub fn random_uuid() -> Result<[u8; 16]> {
    let mut r = [0u8; 16];
    crate::sys::random::fill(&mut r)?;
    Ok(verity::uuid_from_random(r))
}

/// Write IMAGE.verity and IMAGE.roothash for the image at `path` (sha256, 4096-byte blocks,
/// hash format 1), each under its name only complete and fsynced; the root hash in hex. A tail
/// shorter than a block is not covered (as with veritysetup): `note` says so.
pub fn format(path: &Path, salt: &[u8], uuid: [u8; 16], note: fn(&str)) -> Result<String> {
    let image = path.display().to_string();
    let image = image.as_str();
    let mut f = File::open(path).ctx(image)?;
    let size = input_size(&f).ok_or_else(|| Error::new(image, "not a regular file or block device"))?;
    let bs = u64::from(verity::DEFAULT_BLOCK);
    let blocks = size / bs;
    if blocks == 0 {
        return Err(Error::new(image, format!("{size} bytes: smaller than one {bs}-byte block")));
    }
    if size % bs != 0 {
        note(&format!(
            "{image}: the last {} bytes are not a whole {bs}-byte block and are not covered by the tree \
             (as with veritysetup); dm-verity will refuse to map it: pad the image to {bs} bytes",
            size % bs
        ));
    }
    let mut b = TreeBuilder::new(salt, verity::DEFAULT_BLOCK, verity::DEFAULT_BLOCK, blocks)?;
    {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        use std::os::fd::AsRawFd;
        let _ = posix_fadvise(f.as_raw_fd(), 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    }
    let mut buf = vec![0u8; READ];
    loop {
        let want = usize::try_from(b.wanted()).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            break;
        }
        let n = read_full(&mut f, buf.get_mut(..want).unwrap_or_default()).ctx(image)?;
        if n == 0 {
            return Err(Error::new(image, "file shrank while it was hashed"));
        }
        b.update(buf.get(..n).unwrap_or_default());
    }
    let tree = b.finish()?;
    let sb = Superblock::new(blocks, salt, uuid);
    let root = hex(&tree.root);
    // The tree first, the root hash last: a publisher that sees .roothash sees a complete pair.
    write_durably(&with_suffix(path, VERITY), &verity::hash_file(&sb, &tree))?;
    write_durably(&with_suffix(path, ROOTHASH), root.as_bytes())?;
    Ok(root)
}

/// The root hash of IMAGE from `file` (default IMAGE.roothash).
pub fn read_roothash(ipath: &Path, file: Option<&Path>) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = file.map_or_else(|| with_suffix(ipath, ROOTHASH), Path::to_path_buf);
    let path = file.display().to_string();
    let mut data = Vec::new();
    File::open(&file).ctx(&path)?.take(1025).read_to_end(&mut data).ctx(&path)?;
    crate::pairs::parse_roothash(&data).ok_or_else(|| Error::verify(&path, "not a root hash (one line of hex)"))
}

/// Check IMAGE and IMAGE.verity against `root` offline, naming the first block that does not
/// match; the number of data blocks checked.
pub fn verify(ipath: &Path, root: &[u8]) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let hfile = with_suffix(ipath, VERITY);
    let hpath = hfile.display().to_string();
    let image = ipath.display().to_string();
    let image = image.as_str();
    let mut hf = File::open(&hfile).ctx(&hpath)?;
    let hash_size = input_size(&hf).ok_or_else(|| Error::new(&hpath, "not a regular file or block device"))?;
    let mut sbb = [0u8; verity::SB_SIZE];
    let n = read_full(&mut hf, &mut sbb).ctx(&hpath)?;
    let sb = verity::parse_superblock(sbb.get(..n).unwrap_or_default()).map_err(|e| Error::verify(&hpath, e.reason))?;
    let mut f = File::open(ipath).ctx(image)?;
    let size = input_size(&f).ok_or_else(|| Error::new(image, "not a regular file or block device"))?;
    let exact = f.metadata().map(|m| m.is_file()).unwrap_or(true);
    let p = verity::table_params(&hpath, &sb, size, exact, hash_size, root)?;
    let start = p.hash_start.saturating_mul(u64::from(p.hash_block_size));
    let len = p.geometry.end.saturating_mul(u64::from(p.hash_block_size)).saturating_sub(start);
    let mut tree = vec![0u8; usize::try_from(len).map_err(|_| Error::new(&hpath, "hash tree too large for memory"))?];
    hf.seek(SeekFrom::Start(start)).ctx(&hpath)?;
    if read_full(&mut hf, &mut tree).ctx(&hpath)? != tree.len() {
        return Err(Error::verify(&hpath, "shorter than its hash tree"));
    }
    let dbs = u64::from(p.data_block_size);
    let explain = |m: Mismatch| match m {
        Mismatch::Root if p.geometry.levels.is_empty() => {
            Error::verify(image, "data block 0 does not match the root hash")
        }
        Mismatch::Root => Error::verify(&hpath, "hash tree does not match the root hash (wrong root hash, or a corrupt tree)"),
        Mismatch::HashBlock { level, index } => {
            Error::verify(&hpath, format!("hash block {index} (tree level {level}) does not match the level above"))
        }
        Mismatch::DataBlock(i) => Error::verify(
            image,
            format!("data block {i} (bytes {}-{}) does not match the hash tree", i * dbs, (i + 1) * dbs - 1),
        ),
    };
    let mut v = Verifier::new(&p, &tree).map_err(explain)?;
    let mut buf = vec![0u8; READ];
    loop {
        let want = usize::try_from(v.wanted()).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            break;
        }
        let n = read_full(&mut f, buf.get_mut(..want).unwrap_or_default()).ctx(image)?;
        if n == 0 {
            return Err(Error::verify(image, "shorter than the tree says"));
        }
        v.update(buf.get(..n).unwrap_or_default()).map_err(explain)?;
    }
    v.finish().map_err(|_| Error::verify(image, "shorter than the tree says"))
}
