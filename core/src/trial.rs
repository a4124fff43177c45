//! The trial state on the flash: is the image that boots on trial, how many tries are left, which
//! version failed, how high the anti-rollback floor is.
//!
//! ## The file
//! `LiveOS/trial.state` (beside the image), [`FILE_SIZE`] bytes, preallocated once (`make flash`,
//! `liveinit trial create`, which /init runs at the first fetched boot of a medium without one,
//! remounted read-write for that one write) and never resized, renamed or deleted: at boot and from mark-good it
//! is only overwritten in place, through the raw block device at the sectors FIBMAP names (see
//! [`RawStore`]). A write through the file system would also rewrite the FAT directory entry (the
//! mtime): a second write, in another sector, and the medium is mounted read-only at boot.
//!
//! Two copies ([`SLOTS`]), one per 4 KiB slot, so that on a card with 4 KiB pages the two never
//! share a page. Each slot starts with a record ([`LEN`] bytes, little-endian):
//!
//! | off | size | field |
//! |-----|------|-------|
//! | 0   | 8    | magic `LRTRIAL\0` |
//! | 8   | 2    | format (1) |
//! | 10  | 1    | status: 1 trial, 2 good, 3 failed |
//! | 11  | 1    | tries left |
//! | 12  | 1    | tries given at the start of the trial |
//! | 13  | 1    | origin: 0 the flash, 1 the network |
//! | 14  | 2    | zero |
//! | 16  | 4    | sequence number (serial arithmetic: wraps) |
//! | 20  | 4    | zero |
//! | 24  | 8    | the image's signed version (0: unsigned) |
//! | 32  | 32   | the image's SHA-256 as its manifest binds it |
//! | 64  | 8    | the highest version that failed a trial (0: none) |
//! | 72  | 8    | the anti-rollback floor: the highest version marked good |
//! | 80  | 4    | CRC-32 of bytes 0..80 |
//!
//! then a fixed filler text to the end of the slot (it makes the check that the device's bytes
//! are the file's meaningful even before the first record is written).
//!
//! The valid copy with the newer sequence number wins ([`choose`]). A write goes to the other
//! slot (the older or the invalid one) with the sequence number + 1, then is flushed, so a power
//! cut during it leaves the winner untouched: the state is the old one or the new one, never
//! none. Both copies invalid is "no record": the boot is a plain boot and says why.

use crate::error::{Context, Error, Result};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const FILE: &str = "trial.state";
pub const SLOT: usize = 4096;
pub const SLOTS: usize = 2;
pub const FILE_SIZE: u64 = (SLOT * SLOTS) as u64;
/// Encoded record length (the CRC ends it).
pub const LEN: usize = 84;
const MAGIC: [u8; 8] = *b"LRTRIAL\0";
const FORMAT: u16 = 1;
const FILLER: &[u8] = b"\nliveroot trial state: two copies, rewritten in place on the raw device; do not edit\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Trial = 1,
    Good = 2,
    Failed = 3,
}

impl Status {
    fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            1 => Status::Trial,
            2 => Status::Good,
            3 => Status::Failed,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Status::Trial => "trial",
            Status::Good => "good",
            Status::Failed => "failed",
        }
    }
}

/// Which image a record is about: its signed version and the digest its manifest binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    pub version: u64,
    pub sha256: [u8; 32],
}

impl Ident {
    /// `--sha256 HEX --version N` (the state's `image_sha256` and `image_version`): `None`
    /// for no SHA-256 (an unchecked image, never on trial); an empty version is 0 (unsigned).
    pub fn parse(sha256: &str, version: &str) -> Result<Option<Ident>> {
        let version = match version {
            "" => 0,
            v => v.parse().map_err(|_| Error::usage(format!("trial: --version {v}: expected a number")))?,
        };
        if sha256.is_empty() {
            return Ok(None);
        }
        let sha256 = crate::digest::parse_sha256(sha256.as_bytes())
            .ok_or_else(|| Error::usage(format!("trial: --sha256 {sha256}: expected 64 hex digits")))?;
        Ok(Some(Ident { version, sha256 }))
    }

    /// "version 3", or for an unsigned image "the image 1a2b3c4d…" (its digest's start).
    pub fn label(&self) -> String {
        match self.version {
            0 => format!("image {}", crate::digest::hex(self.sha256.get(..4).unwrap_or(&[]))),
            v => format!("version {v}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u32,
    pub status: Status,
    pub tries_left: u8,
    pub tries: u8,
    /// The image is not wholly on the flash (yet): fetched from the network, or being written
    /// by syncflash while it runs. Its mark-good raises no floor until syncflash settles it.
    pub net: bool,
    pub image: Ident,
    pub failed_version: u64,
    pub floor: u64,
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

impl Record {
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        fn put(b: &mut [u8], at: usize, v: &[u8]) {
            if let Some(d) = b.get_mut(at..at + v.len()) {
                d.copy_from_slice(v);
            }
        }
        put(&mut b, 0, &MAGIC);
        put(&mut b, 8, &FORMAT.to_le_bytes());
        put(&mut b, 10, &[self.status as u8, self.tries_left, self.tries, self.net as u8]);
        put(&mut b, 16, &self.seq.to_le_bytes());
        put(&mut b, 24, &self.image.version.to_le_bytes());
        put(&mut b, 32, &self.image.sha256);
        put(&mut b, 64, &self.failed_version.to_le_bytes());
        put(&mut b, 72, &self.floor.to_le_bytes());
        let crc = crc32fast::hash(b.get(..80).unwrap_or(&[]));
        put(&mut b, 80, &crc.to_le_bytes());
        b
    }

    /// A slot's bytes as a record, or why they are not one. Bytes from the medium: never panics.
    pub fn decode(b: &[u8]) -> std::result::Result<Record, &'static str> {
        let body = b.get(..LEN).ok_or("too short")?;
        if body.get(..8) != Some(&MAGIC[..]) {
            return Err("no record (bad magic)");
        }
        let crc = le32(body, 80).ok_or("too short")?;
        if crc32fast::hash(body.get(..80).ok_or("too short")?) != crc {
            return Err("CRC mismatch (a write cut short?)");
        }
        let format = u16::from_le_bytes([*body.get(8).ok_or("too short")?, *body.get(9).ok_or("too short")?]);
        if format != FORMAT {
            return Err("unknown format");
        }
        let byte = |i: usize| body.get(i).copied().ok_or("too short");
        let status = Status::from_u8(byte(10)?).ok_or("unknown status")?;
        let (tries_left, tries) = (byte(11)?, byte(12)?);
        if tries_left > tries {
            return Err("more tries left than given");
        }
        let net = match byte(13)? {
            0 => false,
            1 => true,
            _ => return Err("unknown origin"),
        };
        let sha256: [u8; 32] = body.get(32..64).and_then(|s| s.try_into().ok()).ok_or("too short")?;
        Ok(Record {
            seq: le32(body, 16).ok_or("too short")?,
            status,
            tries_left,
            tries,
            net,
            image: Ident { version: le64(body, 24).ok_or("too short")?, sha256 },
            failed_version: le64(body, 64).ok_or("too short")?,
            floor: le64(body, 72).ok_or("too short")?,
        })
    }

    /// The record that follows this one (next sequence number).
    fn next(&self) -> Record {
        Record { seq: self.seq.wrapping_add(1), ..self.clone() }
    }
}

/// `a` was written after `b` (RFC 1982 serial arithmetic: the sequence number wraps).
pub fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// What the two slots hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The newest valid copy, if any.
    pub record: Option<Record>,
    /// The slot the next write goes to: never the winner's.
    pub write_to: usize,
    /// Why each invalid slot was ignored.
    pub bad: [Option<&'static str>; SLOTS],
}

impl Current {
    /// The `write_to` slot's bytes for `r`: the record, then the filler.
    pub fn slot_bytes(&self, r: &Record) -> Vec<u8> {
        slot_bytes(Some(r))
    }
    /// "slot 0: CRC mismatch ...; slot 1: ..." for the invalid slots.
    pub fn why(&self) -> String {
        self.bad
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| format!("copy {i}: {b}")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One slot's full contents: `r` encoded (none: zeros), then the filler repeated.
pub fn slot_bytes(r: Option<&Record>) -> Vec<u8> {
    let mut v = vec![0u8; SLOT];
    if let Some(r) = r {
        if let Some(d) = v.get_mut(..LEN) {
            d.copy_from_slice(&r.encode());
        }
    }
    for (d, s) in v.iter_mut().skip(LEN).zip(FILLER.iter().cycle()) {
        *d = *s;
    }
    v
}

/// The newer valid copy wins; equal sequence numbers (never written so) pick copy 0.
pub fn choose(slots: [&[u8]; SLOTS]) -> Current {
    let [a, b] = slots.map(Record::decode);
    let bad = [a.as_ref().err().copied(), b.as_ref().err().copied()];
    let (record, write_to) = match (a.ok(), b.ok()) {
        (Some(a), Some(b)) if newer(b.seq, a.seq) => (Some(b), 0),
        (Some(a), _) => (Some(a), 1),
        (None, Some(b)) => (Some(b), 0),
        (None, None) => (None, 0),
    };
    Current { record, write_to, bad }
}

// ---- what a boot, mark-good and a new image do to the record ----------------------------------

/// What the record says of an image: the one question syncflash's keeper, /init's take and
/// the model check (tests) all ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Marked good: the record's image, marked good, or a signed version at or below the floor.
    Good,
    /// The record's image, on trial.
    Trial,
    /// It failed a trial: the record's image, failed, or a signed version above the floor and at
    /// or below the highest version that failed (the record keeps that one number; an image in
    /// that range is one that failed, or one whose unfinished trial gave way to a later one;
    /// with no floor in the record, only that version itself).
    Failed,
    /// Nothing is known of it: no record, an unsigned image, or a version above both numbers.
    Unknown,
}

/// The standing of `img` under the record `cur`.
pub fn standing(cur: Option<&Record>, img: &Ident) -> Standing {
    let Some(r) = cur else { return Standing::Unknown };
    if r.image == *img {
        return match r.status {
            Status::Good => Standing::Good,
            Status::Trial => Standing::Trial,
            Status::Failed => Standing::Failed,
        };
    }
    match img.version {
        0 => Standing::Unknown,
        v if v <= r.floor => Standing::Good,
        // A record with no floor (written before a trial's start recorded the version it falls
        // back to) cannot tell the image fallen back to from one that failed: only the failed
        // version itself is.
        v if v <= r.failed_version && (r.floor > 0 || v == r.failed_version) => Standing::Failed,
        _ => Standing::Unknown,
    }
}

/// What the boot of an image does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Not on trial: boot it, write nothing. The text says why (for the console), may be empty.
    Plain(String),
    /// On trial: this boot took a try; this many are left after it.
    Trial(u8),
    /// Do not boot it: boot the previous image. The reason, for `fallback_reason=`.
    Fallback(String),
}

/// A trial that begins: for `tries` boots, falling back to the image of version `keep` (the
/// one the box runs or boots when the trial fails; 0: none known), which becomes the floor if
/// it is higher: it is what the box returns to, so it must not read as failed or as a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub tries: u8,
    pub keep: u64,
}

/// The boot of image `img` with the record `cur`. `start`: the image was fetched (not on the
/// flash): a trial of it begins here unless the record already speaks of it; 0 tries (the
/// documented `rd.live.tries=0`) boots it untried and writes nothing. Returns the record to
/// write, if any.
pub fn take(cur: Option<&Record>, img: &Ident, start: Option<Start>) -> (Boot, Option<Record>) {
    match (standing(cur, img), cur) {
        // A fetched image is in RAM, not on the flash, whatever the record said of it before (a
        // syncflash of it that did not finish): its mark-good must raise no floor.
        (Standing::Trial, Some(r)) if r.tries_left > 0 => {
            let left = r.tries_left - 1;
            (Boot::Trial(left), Some(Record { tries_left: left, net: r.net || start.is_some(), ..r.next() }))
        }
        (Standing::Trial, Some(r)) => {
            let n = Record { status: Status::Failed, failed_version: r.failed_version.max(img.version), ..r.next() };
            (Boot::Fallback(failed_text(&n)), Some(n))
        }
        (Standing::Failed, Some(r)) if r.image == *img => (Boot::Fallback(failed_text(r)), None),
        (Standing::Failed, Some(r)) => (
            Boot::Fallback(format!(
                "{} is not above version {} that failed its trial (last good: {})",
                img.label(),
                r.failed_version,
                if r.floor > 0 { format!("version {}", r.floor) } else { "none".to_owned() }
            )),
            None,
        ),
        (Standing::Good, _) => (Boot::Plain(String::new()), None),
        (_, _) => match start {
            None => (
                Boot::Plain(match cur {
                    None => "no trial record".to_owned(),
                    Some(_) => String::new(),
                }),
                None,
            ),
            Some(Start { tries: 0, .. }) => (Boot::Plain(format!("{}: rd.live.tries=0: boots untried", img.label())), None),
            Some(s) => {
                let mut r = begin(cur, img, s, true);
                r.tries_left = s.tries - 1;
                (Boot::Trial(s.tries - 1), Some(r))
            }
        },
    }
}

fn failed_text(r: &Record) -> String {
    format!("{} failed its trial: {} boots without mark-good", r.image.label(), r.tries)
}

/// A new trial of `img` (`s.tries` tries, falling back to version `s.keep`). The failed
/// version and the floor carry over; the floor rises to `s.keep`. A trial of another image
/// that had not ended is given up here: that image counts as failed from now on (the record
/// holds one trial; an image whose trial never ended must not boot untried later).
pub fn begin(cur: Option<&Record>, img: &Ident, s: Start, net: bool) -> Record {
    let abandoned = cur.filter(|r| r.status != Status::Good && r.image != *img).map_or(0, |r| r.image.version);
    Record {
        seq: cur.map_or(1, |r| r.seq.wrapping_add(1)),
        status: Status::Trial,
        tries_left: s.tries,
        tries: s.tries,
        net,
        image: *img,
        failed_version: cur.map_or(0, |r| r.failed_version).max(abandoned),
        floor: cur.map_or(0, |r| r.floor).max(s.keep),
    }
}

/// `liveinit mark-good` for the running image `img`: the record to write (None: nothing to
/// change) and what to say.
pub fn mark_good(cur: Option<&Record>, img: &Ident) -> (Option<Record>, String) {
    let (v, l) = (img.version, img.label());
    match cur {
        Some(r) if r.image == *img => match r.status {
            Status::Good => (None, format!("{l} is already good")),
            // A fetched image raises no floor while it is only in RAM: a box that cannot
            // reach the server at its next boot must still boot its flash's image. It does
            // once syncflash has written it ([`synced`]).
            Status::Trial | Status::Failed if r.net => (
                Some(Record { status: Status::Good, ..r.next() }),
                format!("{l} marked good; the trial is over (the floor rises when syncflash writes it)"),
            ),
            Status::Trial | Status::Failed => (
                Some(Record { status: Status::Good, floor: r.floor.max(v), ..r.next() }),
                format!("{l} marked good; the trial is over (floor {})", r.floor.max(v)),
            ),
        },
        Some(_) => (None, format!("{l} is not on trial; nothing to mark")),
        None => (None, format!("{l}: no trial record; nothing to mark")),
    }
}

/// syncflash is about to make `img` bootable from the flash, keeping the pair of version
/// `s.keep`. A record already about it goes on as it is (None: nothing to write); any other
/// gives way to a new trial. `running`: the box runs `img` itself (fetched into RAM): until the
/// flash holds it whole ([`settled`]) the record says it is not the flash's, so that its
/// mark-good raises no floor above what the flash holds.
pub fn pending(cur: Option<&Record>, img: &Ident, s: Start, running: bool) -> Option<Record> {
    match cur {
        Some(r) if r.image == *img => None,
        _ => Some(begin(cur, img, s, running)),
    }
}

/// syncflash's rotation is done: the flash holds `img` whole. A record about it that said it
/// was not the flash's (a fetched image) now does; one marked good raises the floor now.
/// None: nothing to change.
pub fn settled(cur: Option<&Record>, img: &Ident) -> Option<Record> {
    match cur {
        Some(r) if r.image == *img && r.net => {
            let floor = if r.status == Status::Good { r.floor.max(img.version) } else { r.floor };
            Some(Record { net: false, floor, ..r.next() })
        }
        _ => None,
    }
}

// ---- where the copies are ---------------------------------------------------------------------

/// Reads and writes the two slots.
pub trait Store {
    fn read(&mut self) -> Result<[Vec<u8>; SLOTS]>;
    fn write(&mut self, slot: usize, data: &[u8]) -> Result<()>;
    /// Where, for messages.
    fn name(&self) -> String;
}

/// The slots through the file system (pread/pwrite, fdatasync): for a file that is not on a
/// block device (tests), never for the medium at boot (it would write the directory entry too).
pub struct FileStore {
    path: PathBuf,
    file: File,
}

impl FileStore {
    pub fn open(path: &Path, write: bool) -> Result<FileStore> {
        let file = std::fs::OpenOptions::new().read(true).write(write).open(path).ctx(path.display())?;
        check_size(&file, path)?;
        Ok(FileStore { path: path.to_owned(), file })
    }
}

fn check_size(file: &File, path: &Path) -> Result<()> {
    let len = file.metadata().ctx(path.display())?.len();
    if len < FILE_SIZE {
        return Err(Error::new(path.display().to_string(), format!("{len} bytes, not a trial file of {FILE_SIZE} (liveinit trial create)")));
    }
    Ok(())
}

fn read_slots(path: &str, mut at: impl FnMut(usize, &mut [u8]) -> std::io::Result<()>) -> Result<[Vec<u8>; SLOTS]> {
    let mut out = [vec![0u8; SLOT], vec![0u8; SLOT]];
    for (i, buf) in out.iter_mut().enumerate() {
        at(i, buf).ctx(path)?;
    }
    Ok(out)
}

impl Store for FileStore {
    fn read(&mut self) -> Result<[Vec<u8>; SLOTS]> {
        let f = &self.file;
        read_slots(&self.path.display().to_string(), |i, b| f.read_exact_at(b, (i * SLOT) as u64))
    }
    fn write(&mut self, slot: usize, data: &[u8]) -> Result<()> {
        let p = self.path.display();
        self.file.write_all_at(data, (slot.min(SLOTS - 1) * SLOT) as u64).ctx(&p)?;
        self.file.sync_data().ctx(&p)
    }
    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// The slots on the block device under the file system, at the sectors FIBMAP gives for the
/// file: writes touch exactly those sectors (O_DIRECT, one logical sector each, then a flush),
/// and nothing of the file system. Opening checks that the device's bytes there are the file's.
pub struct RawStore {
    path: PathBuf,
    file: File,
    dev_path: String,
    dev: File,
    /// Byte offset of each slot on the device.
    at: [u64; SLOTS],
    /// Logical sector size: the length of each read and write.
    sector: usize,
}

/// A buffer aligned for O_DIRECT (4096 covers every logical sector size accepted here).
struct Aligned {
    buf: Vec<u8>,
    off: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let buf = vec![0u8; len.saturating_add(SLOT)];
        let off = (SLOT - (buf.as_ptr() as usize) % SLOT) % SLOT;
        Aligned { buf, off }
    }
    fn get(&mut self, len: usize) -> &mut [u8] {
        let end = self.off.saturating_add(len).min(self.buf.len());
        self.buf.get_mut(self.off..end).unwrap_or(&mut [])
    }
}

impl RawStore {
    pub fn open(path: &Path) -> Result<RawStore> {
        let p = path.display().to_string();
        let file = File::open(path).ctx(&p)?;
        check_size(&file, path)?;
        let md = file.metadata().ctx(&p)?;
        let bsz = crate::sys::fibmap::block_size(&file).map_err(|e| Error::new(&p, format!("FIGETBSZ: {}", e.desc())))? as u64;
        if bsz == 0 {
            return Err(Error::new(&p, "the file system reports block size 0"));
        }
        let mut at = [0u64; SLOTS];
        for (i, a) in at.iter_mut().enumerate() {
            let off = (i * SLOT) as u64;
            let lblock = u32::try_from(off / bsz).map_err(|_| Error::new(&p, "offset out of range"))?;
            let b = crate::sys::fibmap::physical_block(&file, lblock)
                .map_err(|e| Error::new(&p, format!("FIBMAP cannot tell where its data lies ({}); refusing to write the device", e.desc())))?;
            if b == 0 {
                return Err(Error::new(&p, "has a hole; recreate it (liveinit trial create)"));
            }
            *a = (b as u64).checked_mul(bsz).and_then(|x| x.checked_add(off % bsz)).ok_or_else(|| Error::new(&p, "block number out of range"))?;
        }
        let (ma, mi) = (nix::sys::stat::major(md.dev()) as u32, nix::sys::stat::minor(md.dev()) as u32);
        let name = crate::fsutil::kernel_name(ma, mi).map_err(|e| Error::new(&p, format!("no block device under it ({e})")))?;
        let dev_path = crate::sys::sysfs::dev_node(&name)?;
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(&dev_path)
            .ctx(&dev_path)?;
        if crate::fsutil::block_dev(&dev_path)? != (ma, mi) {
            return Err(Error::new(&dev_path, "is not the device the file is on"));
        }
        let sector = crate::sys::blk::logical_sector_size(&dev).ctx(&dev_path)? as usize;
        if sector == 0 || sector > SLOT || !SLOT.is_multiple_of(sector) || sector as u64 > bsz {
            return Err(Error::new(&dev_path, format!("logical sector size {sector} does not fit a {SLOT}-byte slot")));
        }
        let mut s = RawStore { path: path.to_owned(), file, dev_path, dev, at, sector };
        s.check_mapping()?;
        Ok(s)
    }

    /// The device's bytes at the mapped sectors must be the file's (read with its cached pages
    /// dropped), else FIBMAP's answer is not to be trusted with a write.
    fn check_mapping(&mut self) -> Result<()> {
        drop_cache(&self.file);
        let p = self.path.display().to_string();
        let dev = self.read()?;
        for (i, d) in dev.iter().enumerate() {
            let mut f = vec![0u8; self.sector];
            self.file.read_exact_at(&mut f, (i * SLOT) as u64).ctx(&p)?;
            if d.get(..self.sector) != Some(&f[..]) {
                return Err(Error::new(
                    &p,
                    format!("copy {i}: {} at byte {} does not hold the file's bytes; refusing to write", self.dev_path, self.at.get(i).copied().unwrap_or(0)),
                ));
            }
        }
        Ok(())
    }
}

fn drop_cache(f: &File) {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice as Adv};
    use std::os::fd::AsRawFd;
    let _ = posix_fadvise(f.as_raw_fd(), 0, 0, Adv::POSIX_FADV_DONTNEED);
}

impl Store for RawStore {
    /// One logical sector per slot (the record is in the first); the rest of each slot as zeros.
    fn read(&mut self) -> Result<[Vec<u8>; SLOTS]> {
        let mut buf = Aligned::new(self.sector);
        let (dev, at, n) = (&self.dev, self.at, self.sector);
        read_slots(&self.dev_path, |i, out| {
            let b = buf.get(n);
            dev.read_exact_at(b, at.get(i).copied().unwrap_or(0))?;
            if let Some(o) = out.get_mut(..n) {
                o.copy_from_slice(b);
            }
            Ok(())
        })
    }
    fn write(&mut self, slot: usize, data: &[u8]) -> Result<()> {
        let at = *self.at.get(slot).ok_or_else(|| Error::new(&self.dev_path, "no such copy"))?;
        let mut buf = Aligned::new(self.sector);
        let b = buf.get(self.sector);
        let src = data.get(..self.sector).ok_or_else(|| Error::new(&self.dev_path, "short slot"))?;
        b.copy_from_slice(src);
        step("write");
        // O_DSYNC: the write returns once the device has it (FUA or a flush after it).
        self.dev.write_all_at(b, at).ctx(&self.dev_path)?;
        self.dev.sync_data().ctx(&self.dev_path)?;
        step("written");
        // The file system's cached copy of the file is stale now.
        drop_cache(&self.file);
        Ok(())
    }
    fn name(&self) -> String {
        format!("{} (on {})", self.path.display(), self.dev_path)
    }
}

/// The test hook (src/testhook.rs, a `trial=write,written` line): `write` is just before the
/// sector is written, `written` once it is flushed. A listed step is also said on /dev/console
/// (at boot /init keeps stderr in a file).
fn step(name: &str) {
    crate::testhook::pause_point("trial", name, true);
}

/// Read both copies and choose.
pub fn load(store: &mut dyn Store) -> Result<Current> {
    let s = store.read()?;
    Ok(choose([&s[0], &s[1]]))
}

/// Write `r` to the slot `cur` says, then read it back: the new copy must now win.
pub fn save(store: &mut dyn Store, cur: &Current, r: &Record) -> Result<()> {
    store.write(cur.write_to, &cur.slot_bytes(r))?;
    let now = load(store)?;
    if now.record.as_ref() != Some(r) {
        return Err(Error::new(store.name(), "the record read back differs from the one written"));
    }
    Ok(())
}

/// The record as the file system shows it (cached pages dropped first: the raw writes bypass
/// them). A missing file is `None`.
pub fn read(path: &Path) -> Result<Option<Current>> {
    if !path.exists() {
        return Ok(None);
    }
    if let Ok(f) = File::open(path) {
        drop_cache(&f);
    }
    let mut s = FileStore::open(path, false)?;
    load(&mut s).map(Some)
}

fn open_store(path: &Path, via_fs: bool) -> Result<Box<dyn Store>> {
    Ok(if via_fs { Box::new(FileStore::open(path, true)?) } else { Box::new(RawStore::open(path)?) })
}

/// Write what `decide` makes of the current record (None: nothing) over the older copy. It
/// decides on what the store itself reads: the device, for the raw store.
pub fn update(path: &Path, via_fs: bool, decide: impl Fn(Option<&Record>) -> Option<Record>) -> Result<Option<Record>> {
    let mut store = open_store(path, via_fs)?;
    let cur = load(store.as_mut())?;
    let Some(r) = decide(cur.record.as_ref()) else { return Ok(None) };
    save(store.as_mut(), &cur, &r)?;
    Ok(Some(r))
}

/// A fresh trial file (no record): both slots the filler. Durable when this returns: the
/// file's data and inode are synced, then its directory (the new entry), so that the raw writes
/// that follow find its blocks where FIBMAP says and a power cut does not lose the file.
pub fn create(path: &Path) -> Result<()> {
    create_with(path, None)
}

/// A new trial file holding `r` in copy 0 (syncflash, on a medium from before trials: the file
/// and its first record are one new file, written and synced before anything boots from it).
pub fn create_with(path: &Path, r: Option<&Record>) -> Result<()> {
    let p = path.display().to_string();
    let mut data = slot_bytes(r);
    data.extend_from_slice(&slot_bytes(None));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(path).ctx(&p)?;
    use std::io::Write;
    f.write_all(&data).ctx(&p)?;
    f.sync_all().ctx(&p)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir.display())
}

/// The trial file `liveinit trial` and mark-good work on: `file` (`--file`), else
/// [`FILE`] beside the image on the medium the state at `state_file` names (mounted privately
/// if the boot released it).
pub fn locate(file: Option<&Path>, state_file: &str) -> Result<crate::state::OnMedium> {
    if let Some(f) = file {
        return Ok(crate::state::OnMedium::at(f.to_path_buf()));
    }
    let st = crate::state::LiveState::load(state_file)?;
    st.on_medium(&st.image_dir().join(FILE), state_file)
}

/// A number as a `TRIAL_*` value: empty for 0 (none).
pub fn nonzero(v: u64) -> String {
    if v == 0 { String::new() } else { v.to_string() }
}

impl Current {
    /// The record as `TRIAL_*` shell assignments (`liveinit trial status`).
    pub fn to_shell(&self) -> String {
        let r = self.record.as_ref();
        let num = |f: fn(&Record) -> u64| r.map(|r| f(r).to_string()).unwrap_or_default();
        crate::cmdline::sh_assignments(&[
            ("TRIAL_STATUS", r.map_or("none", |r| r.status.name()).to_owned()),
            ("TRIAL_LEFT", num(|r| r.tries_left.into())),
            ("TRIAL_TRIES", num(|r| r.tries.into())),
            ("TRIAL_VERSION", num(|r| r.image.version)),
            ("TRIAL_SHA256", r.map(|r| crate::digest::hex(&r.image.sha256)).unwrap_or_default()),
            ("TRIAL_NET", r.map_or("", |r| if r.net { "1" } else { "" }).to_owned()),
            ("TRIAL_FAILED", nonzero(r.map_or(0, |r| r.failed_version))),
            ("TRIAL_FLOOR", nonzero(r.map_or(0, |r| r.floor))),
            ("TRIAL_SEQ", num(|r| r.seq.into())),
            ("TRIAL_WHY", self.why()),
        ])
    }
}

/// `liveinit trial start`: put `img` on trial in the file at `path`, unless the record is
/// already about it (an error with [`crate::error::Code::NoChange`]). What to say.
pub fn start(path: &Path, via_fs: bool, img: &Ident, s: Start, net: bool) -> Result<String> {
    let w = update(path, via_fs, |c| match c {
        Some(r) if r.image == *img => None,
        _ => Some(begin(c, img, s, net)),
    })?;
    match w {
        Some(_) => Ok(format!("trial: {} is on trial: {} tries to call mark-good\n", img.label(), s.tries)),
        None => Err(Error::new(path.display().to_string(), format!("already about {}; unchanged", img.label()))
            .code(crate::error::Code::NoChange)),
    }
}

/// mark-good's record update: the trial of the running image (the state `st`, read from
/// `state_file`) ends, in `file` or the medium's trial file. What to say; a running image that
/// was never checked or a medium without a trial file is nothing to mark, not an error (unless
/// `file` was named).
pub fn mark_good_running(st: &crate::state::LiveState, file: Option<&Path>, state_file: &str, via_fs: bool) -> Result<String> {
    let Some(img) = Ident::parse(&st.image_sha256, &st.image_version)? else {
        return Ok("mark-good: the running image was not checked (no image_sha256 in the state): never on trial\n".into());
    };
    if st.kernel.as_deref() == Some("loader") {
        // Its own kernel has not run yet (a fetched release on the loader's kernel): only a
        // boot on it proves the release (core/src/boot/kexec.rs).
        return Ok(format!(
            "mark-good: {} runs on the loader's kernel, not its own: not marked good; its trial goes on at its next boot, on its own kernel\n",
            img.label()
        ));
    }
    let loc = match locate(file, state_file) {
        Ok(l) => l,
        Err(e) if file.is_none() => return Ok(format!("mark-good: no trial state ({e}); nothing to mark\n")),
        Err(e) => return Err(e),
    };
    let Some(cur) = read(&loc.path)? else {
        return Ok(format!("mark-good: {}: missing; nothing to mark\n", loc.path.display()));
    };
    let (w, msg) = mark_good(cur.record.as_ref(), &img);
    if w.is_some() {
        update(&loc.path, via_fs, |c| mark_good(c, &img).0)?;
    }
    Ok(format!("mark-good: {msg}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u32) -> Record {
        Record {
            seq,
            status: Status::Trial,
            tries_left: 2,
            tries: 3,
            net: false,
            image: Ident { version: 2, sha256: [7; 32] },
            failed_version: 0,
            floor: 1,
        }
    }

    const ST3: Start = Start { tries: 3, keep: 0 };

    #[test]
    fn a_release_on_the_loaders_kernel_is_not_marked_good() {
        let st = crate::state::LiveState {
            image_sha256: "07".repeat(32),
            image_version: "2".into(),
            kernel: Some("loader".into()),
            ..Default::default()
        };
        // Nothing is read or written: the file named does not exist.
        let msg = mark_good_running(&st, Some(Path::new("/nonexistent/trial.state")), "/nonexistent/state", false).unwrap();
        assert!(msg.contains("runs on the loader's kernel, not its own: not marked good"), "{msg}");
    }

    fn slots(a: Option<&Record>, b: Option<&Record>) -> [Vec<u8>; 2] {
        [slot_bytes(a), slot_bytes(b)]
    }

    #[test]
    fn round_trip_and_layout() {
        let r = rec(9);
        let b = r.encode();
        assert_eq!(&b[..8], b"LRTRIAL\0");
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 9);
        assert_eq!(u32::from_le_bytes(b[80..84].try_into().unwrap()), crc32fast::hash(&b[..80]));
        assert_eq!(Record::decode(&b), Ok(r.clone()));
        assert_eq!(Record::decode(&slot_bytes(Some(&r))), Ok(r));
    }

    #[test]
    fn newest_valid_copy_wins() {
        let (a, b) = (rec(5), Record { tries_left: 1, ..rec(6) });
        let s = slots(Some(&a), Some(&b));
        let c = choose([&s[0], &s[1]]);
        assert_eq!(c.record, Some(b.clone()));
        assert_eq!(c.write_to, 0, "the next write goes over the older copy");
        let s = slots(Some(&b), Some(&a));
        let c = choose([&s[0], &s[1]]);
        assert_eq!((c.record, c.write_to), (Some(b), 1));
    }

    #[test]
    fn torn_copy_is_ignored() {
        let (a, b) = (rec(5), rec(6));
        let mut s = slots(Some(&a), Some(&b));
        // A write of copy 1 cut half-way: its second half still holds the old bytes.
        s[1][40] ^= 0xff;
        let c = choose([&s[0], &s[1]]);
        assert_eq!(c.record, Some(a));
        assert_eq!(c.write_to, 1, "the torn copy is the one rewritten");
        assert!(c.why().contains("copy 1: CRC mismatch"), "{}", c.why());
    }

    #[test]
    fn both_bad_is_no_record() {
        let mut s = slots(Some(&rec(5)), None);
        s[0][3] = b'x';
        let c = choose([&s[0], &s[1]]);
        assert_eq!(c.record, None);
        assert_eq!(c.write_to, 0);
        assert_eq!(c.why(), "copy 0: no record (bad magic); copy 1: no record (bad magic)");
        let (boot, w) = take(None, &rec(1).image, None);
        assert_eq!(boot, Boot::Plain("no trial record".into()));
        assert_eq!(w, None);
    }

    #[test]
    fn sequence_wraps() {
        assert!(newer(0, u32::MAX));
        assert!(!newer(u32::MAX, 0));
        let (a, b) = (rec(u32::MAX), rec(u32::MAX).next());
        assert_eq!(b.seq, 0);
        let s = slots(Some(&b), Some(&a));
        assert_eq!(choose([&s[0], &s[1]]).record, Some(b));
    }

    #[test]
    fn bad_fields_are_refused() {
        let mut r = rec(1);
        r.tries_left = 4;
        assert_eq!(Record::decode(&r.encode()), Err("more tries left than given"));
        let mut b = rec(1).encode();
        b[10] = 9;
        let crc = crc32fast::hash(&b[..80]);
        b[80..84].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::decode(&b), Err("unknown status"));
        assert_eq!(Record::decode(&b[..50]), Err("too short"));
    }

    #[test]
    fn tries_run_out_then_fallback_without_writes() {
        let img = Ident { version: 2, sha256: [7; 32] };
        let mut r = begin(Some(&Record { failed_version: 0, floor: 1, status: Status::Good, ..rec(10) }), &img, Start { tries: 3, keep: 1 }, false);
        let mut seen = vec![];
        for _ in 0..3 {
            let (b, w) = take(Some(&r), &img, None);
            let w = w.expect("each try is written");
            assert_eq!(w.seq, r.seq + 1, "a write carries the next sequence number");
            r = w;
            seen.push(b);
        }
        assert_eq!(seen, [Boot::Trial(2), Boot::Trial(1), Boot::Trial(0)]);
        let (b, w) = take(Some(&r), &img, None);
        let w = w.expect("the failure is recorded once");
        assert!(matches!(b, Boot::Fallback(ref s) if s.contains("version 2 failed its trial: 3 boots")), "{b:?}");
        assert_eq!((w.status, w.failed_version, w.floor), (Status::Failed, 2, 1));
        // Later boots: the same answer, nothing written.
        let (b2, w2) = take(Some(&w), &img, None);
        assert_eq!((b2, w2), (b, None));
        // The previous image boots plain.
        assert_eq!(take(Some(&w), &Ident { version: 1, sha256: [1; 32] }, None), (Boot::Plain(String::new()), None));
    }

    #[test]
    fn mark_good_ends_the_trial_and_raises_the_floor_once() {
        let img = Ident { version: 2, sha256: [7; 32] };
        let r = rec(4);
        let (w, _) = mark_good(Some(&r), &img);
        let w = w.unwrap();
        assert_eq!((w.status, w.floor, w.seq), (Status::Good, 2, 5));
        let (again, msg) = mark_good(Some(&w), &img);
        assert_eq!(again, None);
        assert!(msg.contains("already good"));
        assert_eq!(take(Some(&w), &img, None), (Boot::Plain(String::new()), None));
        assert_eq!(mark_good(None, &img).0, None);
    }

    #[test]
    fn a_fetched_image_raises_the_floor_only_once_on_the_flash() {
        let img = Ident { version: 2, sha256: [7; 32] };
        let net = Record { net: true, ..rec(4) };
        // Good while only in RAM: the floor stays (the flash's v1 must still boot offline).
        let (w, msg) = mark_good(Some(&net), &img);
        let w = w.unwrap();
        assert_eq!((w.status, w.floor, w.net), (Status::Good, 1, true));
        assert!(msg.contains("when syncflash writes it"), "{msg}");
        // syncflash writes it: nothing to write before the rotation; once it is whole on the
        // flash, the same record is the flash's and the floor rises.
        assert_eq!(pending(Some(&w), &img, ST3, true), None);
        let s = settled(Some(&w), &img).unwrap();
        assert_eq!((s.status, s.floor, s.net, s.seq), (Status::Good, 2, false, w.seq + 1));
        assert_eq!(settled(Some(&s), &img), None, "a second sync changes nothing");
        // Synced while still on trial: its tries go on, no floor yet; mark-good then raises it.
        let s = settled(Some(&net), &img).unwrap();
        assert_eq!((s.status, s.tries_left, s.floor, s.net), (Status::Trial, 2, 1, false));
        assert_eq!(mark_good(Some(&s), &img).0.unwrap().floor, 2);
        // Another image: a new trial, failed version and floor carried over; written by a box
        // that runs it, it is not the flash's until settled.
        let v3 = Ident { version: 3, sha256: [3; 32] };
        let s = pending(Some(&w), &v3, Start { tries: 4, keep: 1 }, false).unwrap();
        assert_eq!((s.status, s.tries_left, s.image, s.floor, s.net), (Status::Trial, 4, v3, 1, false));
        let s = pending(Some(&w), &v3, Start { tries: 4, keep: 1 }, true).unwrap();
        assert!(s.net);
        assert_eq!(mark_good(Some(&s), &v3).0.unwrap().floor, 1, "no floor before the flash holds it");
    }

    #[test]
    fn fetched_image_starts_its_trial_and_a_failed_version_is_not_retried() {
        let v3 = Ident { version: 3, sha256: [3; 32] };
        let old = Record { status: Status::Failed, failed_version: 3, ..rec(2) };
        let (b, w) = take(Some(&old), &v3, Some(ST3));
        assert!(matches!(b, Boot::Fallback(_)), "{b:?}");
        assert_eq!(w, None);
        let v4 = Ident { version: 4, sha256: [4; 32] };
        let (b, w) = take(Some(&old), &v4, Some(ST3));
        let w = w.unwrap();
        assert_eq!(b, Boot::Trial(2));
        assert_eq!((w.tries, w.tries_left, w.net, w.failed_version, w.seq), (3, 2, true, 3, 3));
    }

    #[test]
    fn a_failed_version_never_boots_untried_once_the_record_moved_on() {
        // Issue 18 item 3: v2 failed; a fetched v3 is now on trial. The flash's v2 must not
        // boot plain, on this boot or any later one.
        let (v1, v2, v3) = (Ident { version: 1, sha256: [1; 32] }, Ident { version: 2, sha256: [2; 32] }, Ident { version: 3, sha256: [3; 32] });
        let failed = Record { status: Status::Failed, image: v2, failed_version: 2, floor: 1, tries_left: 0, ..rec(7) };
        let (b, w) = take(Some(&failed), &v3, Some(Start { tries: 3, keep: 1 }));
        let on3 = w.expect("the fetched v3 begins its trial");
        assert_eq!(b, Boot::Trial(2));
        let (b, w) = take(Some(&on3), &v2, None);
        assert!(matches!(b, Boot::Fallback(ref s) if s.contains("not above version 2 that failed")), "{b:?}");
        assert_eq!(w, None, "the refusal writes nothing");
        assert_eq!(standing(Some(&on3), &v2), Standing::Failed);
        // v3 fails too: v2 is still below a failed version, v1 still good.
        let mut r = on3;
        while let (_, Some(n)) = take(Some(&r), &v3, None) {
            r = n;
        }
        assert_eq!((r.status, r.failed_version), (Status::Failed, 3));
        assert!(matches!(take(Some(&r), &v2, None).0, Boot::Fallback(_)));
        assert_eq!(take(Some(&r), &v1, None), (Boot::Plain(String::new()), None));
    }

    #[test]
    fn a_trial_begins_from_the_image_it_falls_back_to() {
        let (v1, v2, v3) = (Ident { version: 1, sha256: [1; 32] }, Ident { version: 2, sha256: [2; 32] }, Ident { version: 3, sha256: [3; 32] });
        // No record yet (a fresh trial file): the running v1 is what a failed v2 returns to, so
        // it must not read as failed once v2 has.
        let r = pending(None, &v2, Start { tries: 1, keep: 1 }, false).unwrap();
        assert_eq!((r.floor, r.failed_version), (1, 0));
        let (_, f) = take(Some(&r), &v2, None);
        let (b, f) = take(f.as_ref(), &v2, None);
        assert!(matches!(b, Boot::Fallback(_)), "{b:?}");
        let f = f.unwrap();
        assert_eq!(standing(Some(&f), &v1), Standing::Good);
        // A record with no floor (an older one): only the failed version itself is failed.
        let old = Record { status: Status::Failed, image: v2, failed_version: 2, floor: 0, ..rec(3) };
        assert_eq!(standing(Some(&old), &v1), Standing::Unknown);
        assert_eq!(standing(Some(&old), &v2), Standing::Failed);
        // A trial given up unfinished counts as failed: the record holds one trial only.
        let on2 = pending(None, &v2, Start { tries: 3, keep: 1 }, false).unwrap();
        let on3 = begin(Some(&on2), &v3, Start { tries: 3, keep: 1 }, true);
        assert_eq!(standing(Some(&on3), &v2), Standing::Failed);
        // rd.live.tries=0: a fetched image boots untried and nothing is written.
        assert!(matches!(take(Some(&on2), &v3, Some(Start { tries: 0, keep: 1 })), (Boot::Plain(_), None)));
    }

    #[test]
    fn ident_from_the_options_or_the_state() {
        let hex = "ab".repeat(32);
        assert_eq!(Ident::parse("", "").unwrap(), None);
        assert_eq!(Ident::parse(&hex, "").unwrap(), Some(Ident { version: 0, sha256: [0xab; 32] }));
        assert_eq!(Ident::parse(&hex, "7").unwrap().map(|i| i.version), Some(7));
        assert!(Ident::parse(&hex, "x").is_err());
        assert!(Ident::parse("abc", "1").is_err());
        assert_eq!(nonzero(0), "");
        assert_eq!(nonzero(3), "3");
    }
}
