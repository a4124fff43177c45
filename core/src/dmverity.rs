//! A dm-verity device over an image and its hash tree (files on read-only loops, or block
//! devices), built from a root hash the caller trusts and a superblock checked here.
//!
//! The kernel never reads the superblock: the table carries block sizes, block count, salt and
//! root hash. So the superblock is parsed and sanity-checked against the data's size
//! ([`crate::verity::table_params`]) before anything is attached, and the table is built from
//! the checked values. On any failure nothing is left behind: no dm device, no loop.

use crate::digest::input_size;
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::sys::dm::{Control, Target};
use crate::sys::loopdev;
use crate::verity::{self, OnCorruption, Params};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// What [`create`] made (for Rust callers such as liveinit; the applet needs none of it).
#[allow(dead_code)]
#[derive(Debug)]
pub struct Mapped {
    pub params: Params,
    /// "MAJOR:MINOR" of the data and hash devices in the table.
    pub data_dev: String,
    pub hash_dev: String,
    pub major: u32,
    pub minor: u32,
}

/// One input: a block device as is, or a regular file attached to a read-only loop.
struct Input {
    path: PathBuf,
    size: u64,
    is_file: bool,
}

fn input(file: &Path) -> Result<Input> {
    let path = file.display().to_string();
    let path = path.as_str();
    let f = File::open(file).ctx(path)?;
    let ft = f.metadata().ctx(path)?.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        return Err(Error::new(path, "not a regular file or block device"));
    }
    let size = input_size(&f).ok_or_else(|| Error::new(path, "cannot tell its size"))?;
    Ok(Input { path: file.to_path_buf(), size, is_file: ft.is_file() })
}

/// Read and parse the superblock at the start of `path`; errors name the file.
pub fn read_superblock(file: &Path) -> Result<verity::Superblock> {
    let path = file.display().to_string();
    let path = path.as_str();
    let mut b = Vec::with_capacity(verity::SB_SIZE);
    File::open(file).ctx(path)?.take(verity::SB_SIZE as u64).read_to_end(&mut b).ctx(path)?;
    verity::parse_superblock(&b).map_err(|e| Error::verify(path, e.reason))
}

/// Everything made so far, undone in reverse unless disarmed.
#[derive(Default)]
struct Undo {
    loops: Vec<String>,
    dm: Option<(Control, String)>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some((ctl, name)) = &self.dm {
            let _ = ctl.remove(name);
        }
        for l in self.loops.iter().rev() {
            let _ = loopdev::detach(l);
        }
    }
}

/// "MAJOR:MINOR" for the table; regular files get a read-only loop (recorded in `undo`).
fn device_for(i: &Input, undo: &mut Undo) -> Result<String> {
    let path = if i.is_file {
        let setup = loopdev::Setup { read_only: true, ..Default::default() };
        // Not autoclear yet: with no opener the kernel would clear it at once. Marked once the
        // table holds it.
        let dev = loopdev::attach(&i.path, &setup)?;
        undo.loops.push(dev.clone());
        PathBuf::from(dev)
    } else {
        i.path.clone()
    };
    let (ma, mi) = fsutil::block_dev(&path)?;
    Ok(format!("{ma}:{mi}"))
}

/// Map `name` (uuid `uuid`) through a `verity` target over `data` and `hash` (files or block
/// devices) under `root_hash`, loaded read-only, with `/dev/mapper/NAME`.
pub fn create(name: &str, uuid: &str, data_path: &Path, hash_path: &Path, root_hash: &[u8], on: OnCorruption) -> Result<Mapped> {
    let d = input(data_path)?;
    let h = input(hash_path)?;
    let sb = read_superblock(hash_path)?;
    let (data, hash) = (data_path.display().to_string(), hash_path.display().to_string());
    let (data, hash) = (data.as_str(), hash.as_str());
    let params = verity::table_params(hash, &sb, d.size, d.is_file, h.size, root_hash)?;
    check_top(&params, data_path, hash_path)?;
    let ctl = Control::open()?;
    if ctl.info(name)?.is_some() {
        return Err(Error::new(name, "a device-mapper device with this name already exists"));
    }

    let mut undo = Undo::default();
    let data_dev = device_for(&d, &mut undo)?;
    let hash_dev = device_for(&h, &mut undo)?;
    let target = Target {
        start: 0,
        length: params.sectors(),
        kind: "verity".into(),
        params: params.table(&data_dev, &hash_dev, on),
    };
    ctl.create(name, uuid)?;
    undo.dm = Some((Control::open()?, name.to_owned()));
    // dm-verity refuses a writable table ("Device must be readonly").
    ctl.load(name, std::slice::from_ref(&target), true)
        .map_err(|e| Error::new(name, format!("{} (table: {target})", e.reason)))?;
    // The table holds the loops open now: this only marks them autoclear, so they go away with
    // the device.
    while let Some(l) = undo.loops.pop() {
        if let Err(e) = loopdev::detach(&l) {
            undo.loops.push(l);
            return Err(e);
        }
    }
    let info = ctl.resume(name)?;
    let node = format!("/dev/mapper/{name}");
    fsutil::mknod_block(&node, info.major, info.minor)?;
    // The first block through the device: the kernel checks its whole path up to the root hash,
    // so a tree that does not belong to this data is refused now rather than at mount.
    let mut first = vec![0u8; params.data_block_size as usize];
    if let Err(e) = File::open(&node).and_then(|mut f| f.read_exact(&mut first)) {
        let _ = std::fs::remove_file(&node);
        return Err(Error::verify(
            data,
            format!("data block 0 does not verify through dm-verity ({}): data and hash tree do not match", crate::error::io_reason(&e)),
        ));
    }
    undo.dm = None;
    Ok(Mapped { params, data_dev, hash_dev, major: info.major, minor: info.minor })
}

/// One block read before anything is made: the block under the root hash must hash to it.
fn check_top(p: &Params, data_path: &Path, hash_path: &Path) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let (data, hash) = (data_path.display().to_string(), hash_path.display().to_string());
    let (file, path, off, len) = match p.top() {
        verity::Top::Hash(off, len) => (hash_path, &hash, off, len),
        verity::Top::Data(off, len) => (data_path, &data, off, len),
    };
    let mut block = vec![0u8; len];
    let mut f = File::open(file).ctx(path)?;
    f.seek(SeekFrom::Start(off)).ctx(path)?;
    f.read_exact(&mut block).ctx(path)?;
    if p.top_matches(&block) {
        return Ok(());
    }
    Err(match p.top() {
        verity::Top::Hash(..) => Error::verify(&hash, "hash tree does not match the root hash (wrong root hash, or a corrupt tree)"),
        verity::Top::Data(..) => Error::verify(&data, "data block 0 does not match the root hash"),
    })
}

/// One `status` line for a verity target's status params (`V` verified so far, `C` a block
/// failed verification since the device was made).
pub fn describe(name: &str, params: &str) -> String {
    match params.split_whitespace().next() {
        Some("V") => format!("{name}: verity, verified\n"),
        Some("C") => format!("{name}: verity, CORRUPTED (blocks failed verification)\n"),
        _ => format!("{name}: verity, {}\n", params.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        assert_eq!(describe("live-base", "V"), "live-base: verity, verified\n");
        assert_eq!(describe("live-base", "C"), "live-base: verity, CORRUPTED (blocks failed verification)\n");
        // Newer kernels may append fields; the first one is the state.
        assert_eq!(describe("x", "C 1"), "x: verity, CORRUPTED (blocks failed verification)\n");
        assert_eq!(describe("x", ""), "x: verity, \n");
    }

    #[test]
    fn refuses_before_touching_the_kernel_when_the_superblock_is_bad() {
        let dir = std::env::temp_dir().join(format!("dmverity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = dir.join("h");
        std::fs::write(&h, b"not a superblock").unwrap();
        let e = read_superblock(&h).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().ends_with("/h: shorter than 512 bytes"), "{e}");
    }
}
