//! dm-verity sidecars: the veritysetup superblock, the hash tree, offline verification and the
//! sanity check that turns a superblock into a `verity` table.
//!
//! Layout written by `veritysetup format DATA HASHFILE` (cryptsetup 2.x defaults), which this
//! module reproduces byte for byte:
//! - hash block 0: the 512-byte superblock, zero-padded to the hash block size;
//! - from hash block 1 (`hash_start`): the tree, the level nearest the root first; level 0
//!   (the digests of the data blocks) last;
//! - hash type 1: each digest is `H(salt || block)`; digests are packed in hash blocks (32 bytes
//!   each for SHA-256, already a power of two), the rest of a level's last block is zeros;
//! - the root hash is `H(salt || top level block)`, or `H(salt || data block 0)` when the data is
//!   one block (no levels; the hash file is then the superblock alone);
//! - data that is not a multiple of the data block size is hashed up to the last whole block
//!   (veritysetup does the same): the tail is not covered, and [`table_params`] refuses such an
//!   image for mapping.
//!
//! The kernel never reads the superblock: everything goes into the table. So the superblock is
//! input to check, never to trust; the root hash comes from the signed manifest.
//!
//! No I/O here: callers read files and feed bytes.

use crate::digest::hex;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

/// Size of the on-disk superblock.
pub const SB_SIZE: usize = 512;
pub const MAGIC: &[u8; 8] = b"verity\0\0";
/// The only algorithm accepted: liveroot hashes with SHA-256 only (the manifest, the root hash
/// it signs and the offline check all use it), it is veritysetup's and systemd's default, and
/// refusing the rest keeps a crafted superblock from choosing a weak or absent hash.
pub const ALGORITHM: &str = "sha256";
pub const DIGEST_SIZE: usize = 32;
/// The superblock's salt field is 256 bytes.
pub const MAX_SALT: usize = 256;
/// veritysetup's defaults.
pub const DEFAULT_BLOCK: u32 = 4096;
pub const DEFAULT_SALT: usize = 32;
/// cryptsetup refuses more levels than this.
const MAX_LEVELS: usize = 63;

/// The fields of a veritysetup superblock (little-endian on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub version: u32,
    /// 0 = Chrome OS (salt after the data, no digest padding), 1 = normal.
    pub hash_type: u32,
    pub uuid: [u8; 16],
    /// Up to 31 bytes, from a NUL-padded 32-byte field.
    pub algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub salt: Vec<u8>,
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

/// Parse the 512-byte superblock at the start of `b`. Structural checks only (magic, version,
/// salt size, a printable algorithm name); what may be mapped is [`table_params`]'s decision.
pub fn parse_superblock(b: &[u8]) -> Result<Superblock> {
    let bad = |why: &str| Error::verify("verity superblock", why.to_owned());
    let b = b.get(..SB_SIZE).ok_or_else(|| bad("shorter than 512 bytes"))?;
    if b.get(..8) != Some(&MAGIC[..]) {
        return Err(bad("no \"verity\" signature (not a veritysetup hash file)"));
    }
    let version = le32(b, 8).ok_or_else(|| bad("truncated"))?;
    if version != 1 {
        return Err(bad(&format!("unsupported superblock version {version} (only 1)")));
    }
    let hash_type = le32(b, 12).ok_or_else(|| bad("truncated"))?;
    let uuid: [u8; 16] = b.get(16..32).and_then(|u| u.try_into().ok()).ok_or_else(|| bad("truncated"))?;
    let alg = b.get(32..64).ok_or_else(|| bad("truncated"))?;
    let end = alg.iter().position(|&c| c == 0).unwrap_or(alg.len());
    let alg = alg.get(..end).unwrap_or_default();
    if alg.is_empty() || !alg.iter().all(|c| c.is_ascii_graphic()) {
        return Err(bad("algorithm name is empty or not printable"));
    }
    let algorithm = String::from_utf8_lossy(alg).into_owned();
    let data_block_size = le32(b, 64).ok_or_else(|| bad("truncated"))?;
    let hash_block_size = le32(b, 68).ok_or_else(|| bad("truncated"))?;
    let data_blocks = le64(b, 72).ok_or_else(|| bad("truncated"))?;
    let salt_size = usize::from(le16(b, 80).ok_or_else(|| bad("truncated"))?);
    if salt_size > MAX_SALT {
        return Err(bad(&format!("salt size {salt_size} is over {MAX_SALT} bytes")));
    }
    let salt = b.get(88..88 + salt_size).ok_or_else(|| bad("truncated"))?.to_vec();
    Ok(Superblock { version, hash_type, uuid, algorithm, data_block_size, hash_block_size, data_blocks, salt })
}

impl Superblock {
    /// A superblock for `veritysetup format`'s defaults (sha256, 4096/4096, hash type 1).
    pub fn new(data_blocks: u64, salt: &[u8], uuid: [u8; 16]) -> Self {
        Superblock {
            version: 1,
            hash_type: 1,
            uuid,
            algorithm: ALGORITHM.to_owned(),
            data_block_size: DEFAULT_BLOCK,
            hash_block_size: DEFAULT_BLOCK,
            data_blocks,
            salt: salt.to_vec(),
        }
    }

    /// The 512 bytes veritysetup writes (salt and algorithm truncated to their fields).
    pub fn to_bytes(&self) -> [u8; SB_SIZE] {
        let mut b = [0u8; SB_SIZE];
        let mut put = |at: usize, v: &[u8]| {
            if let Some(dst) = b.get_mut(at..at + v.len()) {
                dst.copy_from_slice(v);
            }
        };
        put(0, MAGIC);
        put(8, &self.version.to_le_bytes());
        put(12, &self.hash_type.to_le_bytes());
        put(16, &self.uuid);
        let alg = self.algorithm.as_bytes();
        put(32, alg.get(..alg.len().min(31)).unwrap_or_default());
        put(64, &self.data_block_size.to_le_bytes());
        put(68, &self.hash_block_size.to_le_bytes());
        put(72, &self.data_blocks.to_le_bytes());
        let salt = self.salt.get(..self.salt.len().min(MAX_SALT)).unwrap_or_default();
        put(80, &(salt.len() as u16).to_le_bytes());
        put(88, salt);
        b
    }

    #[cfg(test)]
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }
}

/// `12345678-1234-1234-1234-123456789abc`, as uuid_unparse writes it.
#[cfg(test)]
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex(u);
    let s = |a: usize, b: usize| h.get(a..b).unwrap_or_default();
    format!("{}-{}-{}-{}-{}", s(0, 8), s(8, 12), s(12, 16), s(16, 20), s(20, 32))
}

/// Parse a uuid in the 8-4-4-4-12 form (either case), as uuid_parse accepts it.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut digits = Vec::with_capacity(32);
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
        } else {
            digits.push(c);
        }
    }
    parse_hex(std::str::from_utf8(&digits).ok()?)?.try_into().ok()
}

/// Hex (either case, even length, possibly empty) to bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    crate::digest::parse_hex(s.as_bytes())
}

/// A random uuid (version 4, RFC 4122 variant) from 16 random bytes, as uuid_generate makes.
pub fn uuid_from_random(mut r: [u8; 16]) -> [u8; 16] {
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    r
}

/// Where each tree level lives in the hash file, in hash blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub data_blocks: u64,
    pub hash_block_size: u32,
    /// Digests per hash block.
    pub per_block: u64,
    /// (first hash block, number of blocks) per level; index 0 hashes the data.
    pub levels: Vec<(u64, u64)>,
    /// The first hash block after the tree: the hash file needs `end * hash_block_size` bytes.
    pub end: u64,
}

/// The tree's shape for `data_blocks` blocks, starting at hash block `hash_start`; None when it
/// does not fit in 64 bits or in cryptsetup's 63 levels.
pub fn geometry(data_blocks: u64, hash_block_size: u32, hash_start: u64) -> Option<Geometry> {
    if data_blocks == 0 || !hash_block_size.is_power_of_two() || (hash_block_size as usize) < 2 * DIGEST_SIZE {
        return None;
    }
    let per_block = u64::from(hash_block_size) / DIGEST_SIZE as u64;
    let bits = per_block.trailing_zeros();
    let mut n = 0u32;
    while bits * n < 64 && (data_blocks - 1) >> (bits * n) != 0 {
        n += 1;
    }
    let n = n as usize;
    if n > MAX_LEVELS {
        return None;
    }
    // Nested ceilings equal the ceiling of the whole division, and never shift past 63 bits.
    let mut sizes = Vec::with_capacity(n);
    let mut below = data_blocks;
    for _ in 0..n {
        below = below.div_ceil(per_block);
        sizes.push(below);
    }
    let mut levels = vec![(0u64, 0u64); n];
    let mut pos = hash_start;
    for (i, size) in sizes.iter().enumerate().rev() {
        if let Some(l) = levels.get_mut(i) {
            *l = (pos, *size);
        }
        pos = pos.checked_add(*size)?;
    }
    pos.checked_mul(u64::from(hash_block_size))?;
    Some(Geometry { data_blocks, hash_block_size, per_block, levels, end: pos })
}

/// SHA-256 with the salt already absorbed: each block's digest starts from a clone of it.
#[derive(Clone)]
pub struct Salted(Sha256);

impl Salted {
    pub fn new(salt: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(salt);
        Salted(h)
    }
    /// `H(salt || block)`: hash type 1.
    pub fn digest(&self, block: &[u8]) -> [u8; DIGEST_SIZE] {
        let mut h = self.0.clone();
        h.update(block);
        h.finalize().into()
    }
}

/// Builds the tree from the data fed to it in pieces of any size. Holds level 0 in memory
/// (32 bytes per data block: 8 MiB per GiB of 4 KiB blocks), which the upper levels need anyway.
pub struct TreeBuilder {
    salted: Salted,
    data_block: usize,
    geo: Geometry,
    /// Level-0 digests, packed.
    digests: Vec<u8>,
    partial: Vec<u8>,
    blocks: u64,
}

/// A finished tree: `area` is the hash file from `hash_start` on (top level first, each level
/// padded to whole hash blocks).
pub struct Tree {
    pub area: Vec<u8>,
    pub root: [u8; DIGEST_SIZE],
}

impl TreeBuilder {
    pub fn new(salt: &[u8], data_block_size: u32, hash_block_size: u32, data_blocks: u64) -> Result<Self> {
        let geo = geometry(data_blocks, hash_block_size, 1)
            .ok_or_else(|| Error::new("verity", format!("cannot make a hash tree for {data_blocks} data blocks")))?;
        if !block_size_ok(data_block_size) {
            return Err(Error::new("verity", format!("data block size {data_block_size} is not a power of two in 512..4096")));
        }
        let cap = usize::try_from(data_blocks.saturating_mul(DIGEST_SIZE as u64)).unwrap_or(0);
        Ok(TreeBuilder {
            salted: Salted::new(salt),
            data_block: data_block_size as usize,
            geo,
            digests: Vec::with_capacity(cap),
            partial: Vec::new(),
            blocks: 0,
        })
    }

    /// Bytes still wanted (data past the last whole block is not part of the tree).
    pub fn wanted(&self) -> u64 {
        (self.geo.data_blocks - self.blocks)
            .saturating_mul(self.data_block as u64)
            .saturating_sub(self.partial.len() as u64)
    }

    /// Feed data; anything beyond [`TreeBuilder::wanted`] is ignored.
    pub fn update(&mut self, mut data: &[u8]) {
        let want = usize::try_from(self.wanted()).unwrap_or(usize::MAX);
        data = data.get(..data.len().min(want)).unwrap_or_default();
        if !self.partial.is_empty() {
            let take = (self.data_block - self.partial.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.partial.extend_from_slice(head);
            data = rest;
            if self.partial.len() == self.data_block {
                let d = self.salted.digest(&self.partial);
                self.digests.extend_from_slice(&d);
                self.blocks += 1;
                self.partial.clear();
            }
        }
        // Whole blocks straight from the caller's buffer: no copy on the fast path.
        let mut chunks = data.chunks_exact(self.data_block);
        for block in &mut chunks {
            let d = self.salted.digest(block);
            self.digests.extend_from_slice(&d);
            self.blocks += 1;
        }
        self.partial.extend_from_slice(chunks.remainder());
    }

    /// The tree, once every data block was fed.
    pub fn finish(self) -> Result<Tree> {
        if self.blocks != self.geo.data_blocks {
            return Err(Error::new(
                "verity",
                format!("data ended after {} of {} blocks", self.blocks, self.geo.data_blocks),
            ));
        }
        let hbs = self.geo.hash_block_size as usize;
        if self.geo.levels.is_empty() {
            let root: [u8; DIGEST_SIZE] = self.digests.get(..DIGEST_SIZE).and_then(|d| d.try_into().ok()).unwrap_or_default();
            return Ok(Tree { area: Vec::new(), root });
        }
        // Level by level upwards; each level padded to whole hash blocks.
        let mut levels: Vec<Vec<u8>> = Vec::with_capacity(self.geo.levels.len());
        let mut cur = self.digests;
        loop {
            cur.resize(cur.len().div_ceil(hbs) * hbs, 0);
            if cur.len() == hbs && levels.len() + 1 == self.geo.levels.len() {
                levels.push(cur);
                break;
            }
            let mut up = Vec::with_capacity(cur.len() / hbs * DIGEST_SIZE);
            for block in cur.chunks(hbs) {
                up.extend_from_slice(&self.salted.digest(block));
            }
            levels.push(cur);
            if levels.len() >= self.geo.levels.len() {
                return Err(Error::new("verity", "hash tree has more levels than its geometry"));
            }
            cur = up;
        }
        let top = levels.last().map(|l| self.salted.digest(l)).unwrap_or_default();
        let area: Vec<u8> = levels.into_iter().rev().flatten().collect();
        Ok(Tree { area, root: top })
    }
}

/// Block sizes the kernel accepts for a 4 KiB-page box: a power of two from 512 to 4096.
pub fn block_size_ok(n: u32) -> bool {
    n.is_power_of_two() && (512..=4096).contains(&n)
}

/// The whole hash file for `tree` under superblock `sb`: the superblock padded to a hash block,
/// then the tree.
pub fn hash_file(sb: &Superblock, tree: &Tree) -> Vec<u8> {
    let mut out = Vec::with_capacity(sb.hash_block_size as usize + tree.area.len());
    out.extend_from_slice(&sb.to_bytes());
    out.resize((sb.hash_block_size as usize).max(SB_SIZE), 0);
    out.extend_from_slice(&tree.area);
    out
}

/// What the table needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    /// In hash blocks: the tree starts after the superblock's block.
    pub hash_start: u64,
    pub root_hash: Vec<u8>,
    pub salt: Vec<u8>,
    pub geometry: Geometry,
}

/// What a verity device does when a block does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorruption {
    /// The read fails with EIO (no option: the kernel's default).
    #[default]
    Eio,
    Restart,
    Panic,
}

impl std::str::FromStr for OnCorruption {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "eio" => Ok(OnCorruption::Eio),
            "restart" => Ok(OnCorruption::Restart),
            "panic" => Ok(OnCorruption::Panic),
            _ => Err(format!("'{s}': expected eio, restart or panic")),
        }
    }
}

/// Which block the root hash is computed over: the top hash block, or (a one-block image) the
/// data block itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Top {
    /// (byte offset in the hash file, length)
    Hash(u64, usize),
    /// (byte offset in the data, length)
    Data(u64, usize),
}

impl Params {
    /// Where the block under the root hash lives; checking it costs one block read and tells a
    /// wrong root hash or a foreign tree before a device is made.
    pub fn top(&self) -> Top {
        match self.geometry.levels.last() {
            Some(&(top, _)) => Top::Hash(top.saturating_mul(u64::from(self.hash_block_size)), self.hash_block_size as usize),
            None => Top::Data(0, self.data_block_size as usize),
        }
    }

    /// Whether `block` (read from [`Params::top`]) hashes to the root hash.
    pub fn top_matches(&self, block: &[u8]) -> bool {
        Salted::new(&self.salt).digest(block)[..] == self.root_hash[..]
    }

    /// 512-byte sectors the device maps.
    pub fn sectors(&self) -> u64 {
        // table_params checked that the product fits.
        self.data_blocks.saturating_mul(u64::from(self.data_block_size)) / 512
    }

    /// The `verity` target's parameters, `dmsetup table`-style (devices as MAJOR:MINOR).
    pub fn table(&self, data_dev: &str, hash_dev: &str, on: OnCorruption) -> String {
        let salt = if self.salt.is_empty() { "-".to_owned() } else { hex(&self.salt) };
        let mut s = format!(
            "1 {data_dev} {hash_dev} {} {} {} {} {ALGORITHM} {} {salt}",
            self.data_block_size,
            self.hash_block_size,
            self.data_blocks,
            self.hash_start,
            hex(&self.root_hash)
        );
        match on {
            OnCorruption::Eio => {}
            OnCorruption::Restart => s.push_str(" 1 restart_on_corruption"),
            OnCorruption::Panic => s.push_str(" 1 panic_on_corruption"),
        }
        s
    }
}

/// Check a parsed superblock against the data it is meant to cover and the signed root hash,
/// and refuse anything that does not fit. `data_size` is the image's size in bytes; with
/// `exact` (a regular file) it must equal the covered size, else (a block device) it may be
/// larger. `hash_size` is the hash file's size. Errors name `label` (the hash file).
pub fn table_params(label: &str, sb: &Superblock, data_size: u64, exact: bool, hash_size: u64, root_hash: &[u8]) -> Result<Params> {
    let no = |why: String| Err(Error::verify(label, why));
    if sb.hash_type != 1 {
        return no(format!("hash type {} is not supported (only 1, veritysetup's default)", sb.hash_type));
    }
    if sb.algorithm != ALGORITHM {
        return no(format!(
            "hash algorithm '{}' is not supported (only sha256: the root hash is signed as SHA-256 and \
             liveroot verifies nothing else)",
            sb.algorithm
        ));
    }
    for (what, n) in [("data", sb.data_block_size), ("hash", sb.hash_block_size)] {
        if !block_size_ok(n) {
            return no(format!("{what} block size {n} is not a power of two from 512 to 4096"));
        }
    }
    if sb.salt.len() > MAX_SALT {
        return no(format!("salt of {} bytes is over {MAX_SALT}", sb.salt.len()));
    }
    if root_hash.len() != DIGEST_SIZE {
        return no(format!("root hash is {} bytes, sha256 needs {DIGEST_SIZE}", root_hash.len()));
    }
    if sb.data_blocks == 0 {
        return no("the superblock covers no data blocks".to_owned());
    }
    let covered = match sb.data_blocks.checked_mul(u64::from(sb.data_block_size)) {
        Some(c) => c,
        None => return no(format!("{} data blocks overflow 64 bits", sb.data_blocks)),
    };
    if covered > data_size {
        return no(format!(
            "the tree covers {covered} bytes ({} blocks of {}) but the data is only {data_size} bytes",
            sb.data_blocks, sb.data_block_size
        ));
    }
    if exact && covered != data_size {
        return no(format!(
            "the tree covers {covered} bytes ({} blocks of {}) but the data is {data_size} bytes: \
             the rest would be unverified (pad the image to whole blocks)",
            sb.data_blocks, sb.data_block_size
        ));
    }
    // The superblock sits in the first hash block(s); the tree follows.
    let hash_start = (SB_SIZE as u64).div_ceil(u64::from(sb.hash_block_size));
    let geo = match geometry(sb.data_blocks, sb.hash_block_size, hash_start) {
        Some(g) => g,
        None => return no(format!("no hash tree fits {} data blocks", sb.data_blocks)),
    };
    let need = geo.end.saturating_mul(u64::from(sb.hash_block_size));
    if hash_size < need {
        return no(format!("is {hash_size} bytes, the tree for {} data blocks needs {need}", sb.data_blocks));
    }
    Ok(Params {
        data_block_size: sb.data_block_size,
        hash_block_size: sb.hash_block_size,
        data_blocks: sb.data_blocks,
        hash_start,
        root_hash: root_hash.to_vec(),
        salt: sb.salt.clone(),
        geometry: geo,
    })
}

/// Where offline verification found a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The top of the tree (or the single data block) does not give the root hash.
    Root,
    /// Hash block `index` (absolute, in the hash file) at `level` does not match its parent, or
    /// its unused tail is not zero.
    HashBlock { level: usize, index: u64 },
    /// Data block `index` does not match level 0.
    DataBlock(u64),
}

/// Offline verification, top down as the kernel reads: the stored tree against the root hash
/// and itself, then the data against level 0. `tree` holds the hash file from `hash_start` to
/// the tree's end.
pub struct Verifier<'a> {
    p: &'a Params,
    salted: Salted,
    tree: &'a [u8],
    blocks: u64,
    partial: Vec<u8>,
}

impl<'a> Verifier<'a> {
    /// Check the tree itself; Ok when it hangs together under the root hash.
    pub fn new(p: &'a Params, tree: &'a [u8]) -> std::result::Result<Self, Mismatch> {
        let salted = Salted::new(&p.salt);
        let hbs = p.hash_block_size as usize;
        let v = Verifier { p, salted, tree, blocks: 0, partial: Vec::new() };
        let levels = &p.geometry.levels;
        if let Some(&(top, _)) = levels.last() {
            let blk = v.hash_block(top).ok_or(Mismatch::Root)?;
            if v.salted.digest(blk) != *p.root_hash {
                return Err(Mismatch::Root);
            }
        }
        for (lvl, &(start, count)) in levels.iter().enumerate() {
            // Digests this level holds: one per block below it.
            let below = if lvl == 0 { p.data_blocks } else { levels.get(lvl - 1).map_or(0, |l| l.1) };
            // The level's unused tail must be zero, as veritysetup verify demands.
            let used = below.saturating_mul(DIGEST_SIZE as u64);
            for i in 0..count {
                let idx = start + i;
                let blk = v.hash_block(idx).ok_or(Mismatch::HashBlock { level: lvl, index: idx })?;
                let from = used.saturating_sub(i * hbs as u64).min(hbs as u64) as usize;
                if blk.get(from..).is_some_and(|t| t.iter().any(|&b| b != 0)) {
                    return Err(Mismatch::HashBlock { level: lvl, index: idx });
                }
            }
            if lvl == 0 {
                continue;
            }
            let (cstart, ccount) = levels.get(lvl - 1).copied().unwrap_or_default();
            for i in 0..ccount {
                let child = v.hash_block(cstart + i).ok_or(Mismatch::HashBlock { level: lvl - 1, index: cstart + i })?;
                if Some(&v.salted.digest(child)[..]) != v.stored_digest(lvl, i) {
                    return Err(Mismatch::HashBlock { level: lvl - 1, index: cstart + i });
                }
            }
        }
        Ok(v)
    }

    fn hash_block(&self, index: u64) -> Option<&[u8]> {
        let hbs = self.p.hash_block_size as u64;
        let off = usize::try_from(index.checked_sub(self.p.hash_start)?.checked_mul(hbs)?).ok()?;
        self.tree.get(off..off.checked_add(hbs as usize)?)
    }

    /// Digest number `i` stored at `level`.
    fn stored_digest(&self, level: usize, i: u64) -> Option<&[u8]> {
        let &(start, _) = self.p.geometry.levels.get(level)?;
        let per = self.p.geometry.per_block;
        let blk = self.hash_block(start.checked_add(i / per)?)?;
        let at = (i % per) as usize * DIGEST_SIZE;
        blk.get(at..at + DIGEST_SIZE)
    }

    /// Bytes of data still wanted.
    pub fn wanted(&self) -> u64 {
        (self.p.data_blocks - self.blocks.min(self.p.data_blocks))
            .saturating_mul(u64::from(self.p.data_block_size))
            .saturating_sub(self.partial.len() as u64)
    }

    fn check_block(&mut self, block: &[u8]) -> std::result::Result<(), Mismatch> {
        let d = self.salted.digest(block);
        let ok = if self.p.geometry.levels.is_empty() {
            d[..] == self.p.root_hash[..]
        } else {
            self.stored_digest(0, self.blocks) == Some(&d[..])
        };
        if !ok {
            return Err(if self.p.geometry.levels.is_empty() { Mismatch::Root } else { Mismatch::DataBlock(self.blocks) });
        }
        self.blocks += 1;
        Ok(())
    }

    /// Feed data in pieces of any size; stops at the first block that does not match.
    pub fn update(&mut self, mut data: &[u8]) -> std::result::Result<(), Mismatch> {
        let dbs = self.p.data_block_size as usize;
        let want = usize::try_from(self.wanted()).unwrap_or(usize::MAX);
        data = data.get(..data.len().min(want)).unwrap_or_default();
        if !self.partial.is_empty() {
            let take = (dbs - self.partial.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.partial.extend_from_slice(head);
            data = rest;
            if self.partial.len() == dbs {
                let block = std::mem::take(&mut self.partial);
                self.check_block(&block)?;
            }
        }
        let mut chunks = data.chunks_exact(dbs);
        for block in &mut chunks {
            self.check_block(block)?;
        }
        self.partial.extend_from_slice(chunks.remainder());
        Ok(())
    }

    /// Every data block seen and matched.
    pub fn finish(&self) -> std::result::Result<u64, u64> {
        if self.blocks == self.p.data_blocks { Ok(self.blocks) } else { Err(self.blocks) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "12345678-1234-1234-1234-123456789abc";

    fn data(n: usize) -> Vec<u8> {
        // Deterministic, block-distinct content.
        (0..n).map(|i| ((i * 2654435761usize) >> 13) as u8 ^ (i / 4096) as u8).collect()
    }

    fn build(d: &[u8], salt: &[u8], piece: usize) -> (Superblock, Tree) {
        let blocks = d.len() as u64 / 4096;
        let mut b = TreeBuilder::new(salt, 4096, 4096, blocks).unwrap();
        for p in d.chunks(piece) {
            b.update(p);
        }
        let sb = Superblock::new(blocks, salt, parse_uuid(UUID).unwrap());
        (sb, b.finish().unwrap())
    }

    fn sha(b: &[u8]) -> String {
        hex(&Sha256::digest(b))
    }

    #[test]
    fn superblock_layout_matches_veritysetup() {
        // Header of `veritysetup format --salt 00112233 --uuid 12345678-...` over 129 blocks
        // (od -t x1 of its hash file).
        let sb = Superblock::new(129, &[0, 0x11, 0x22, 0x33], parse_uuid(UUID).unwrap());
        let b = sb.to_bytes();
        let mut want = [0u8; 512];
        want[..16].copy_from_slice(&[0x76, 0x65, 0x72, 0x69, 0x74, 0x79, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        want[16..32].copy_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
        want[32..38].copy_from_slice(b"sha256");
        want[64..80].copy_from_slice(&[0, 0x10, 0, 0, 0, 0x10, 0, 0, 0x81, 0, 0, 0, 0, 0, 0, 0]);
        want[80..92].copy_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33]);
        assert_eq!(b, want);
        assert_eq!(parse_superblock(&b).unwrap(), sb);
        assert_eq!(sb.uuid_string(), UUID);
    }

    #[test]
    fn superblock_refusals() {
        let good = Superblock::new(1, &[1; 32], [7; 16]).to_bytes();
        assert!(parse_superblock(&good[..511]).unwrap_err().to_string().contains("shorter than 512"));
        let mut b = good;
        b[0] = b'V';
        assert!(parse_superblock(&b).unwrap_err().to_string().contains("signature"));
        let mut b = good;
        b[8] = 2;
        assert!(parse_superblock(&b).unwrap_err().to_string().contains("version 2"));
        let mut b = good;
        b[80..82].copy_from_slice(&257u16.to_le_bytes());
        let e = parse_superblock(&b).unwrap_err();
        assert!(e.to_string().contains("salt size 257"), "{e}");
        assert_eq!(e.exit_code(), 3);
        let mut b = good;
        b[32..64].fill(0);
        assert!(parse_superblock(&b).is_err());
        // 256 is the largest salt and fits exactly before the padding.
        let sb = Superblock::new(1, &[9; 256], [0; 16]);
        assert_eq!(parse_superblock(&sb.to_bytes()).unwrap().salt, vec![9; 256]);
    }

    #[test]
    fn superblock_parser_never_panics() {
        // A cheap mutation loop; the fuzz target drives the same function harder.
        let base = Superblock::new(129, &[3; 32], [1; 16]).to_bytes();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for round in 0..20000 {
            let mut b = base.to_vec();
            for _ in 0..(round % 8 + 1) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x % 512) as usize;
                b[at] = (x >> 32) as u8;
            }
            b.truncate((x % 600) as usize);
            let _ = parse_superblock(&b);
        }
    }

    #[test]
    fn uuids_and_hex() {
        assert_eq!(parse_uuid("12345678-1234-1234-1234-123456789ABC"), parse_uuid(UUID));
        assert!(parse_uuid("12345678-1234-1234-1234-123456789ab").is_none());
        assert!(parse_uuid("12345678+1234-1234-1234-123456789abc").is_none());
        assert!(parse_uuid("1234567g-1234-1234-1234-123456789abc").is_none());
        let u = uuid_from_random([0xff; 16]);
        assert_eq!(format_uuid(&u), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(parse_hex(""), Some(vec![]));
        assert_eq!(parse_hex("0aFf"), Some(vec![10, 255]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("é1"), None);
    }

    #[test]
    fn geometry_like_cryptsetup() {
        let g = geometry(1, 4096, 1).unwrap();
        assert!(g.levels.is_empty());
        assert_eq!(g.end, 1);
        let g = geometry(128, 4096, 1).unwrap();
        assert_eq!((g.levels.clone(), g.end), (vec![(1, 1)], 2));
        // 129 blocks: level 1 (1 block) first, then level 0 (2 blocks): a 16 KiB hash file.
        let g = geometry(129, 4096, 1).unwrap();
        assert_eq!((g.levels.clone(), g.end), (vec![(2, 2), (1, 1)], 4));
        let g = geometry(16385, 4096, 1).unwrap();
        assert_eq!(g.levels, vec![(4, 129), (2, 2), (1, 1)]);
        // 1 GiB: 262144 blocks → 2048 + 16 + 1 hash blocks.
        let g = geometry(262144, 4096, 1).unwrap();
        assert_eq!(g.levels, vec![(18, 2048), (2, 16), (1, 1)]);
        assert_eq!(g.end, 2066);
        // 512-byte hash blocks: 16 digests each.
        assert_eq!(geometry(17, 512, 1).unwrap().levels, vec![(2, 2), (1, 1)]);
        assert!(geometry(0, 4096, 1).is_none());
        assert!(geometry(1 << 40, 4096, 1).is_some());
        assert!(geometry(u64::MAX, 4096, 1).is_none(), "the hash file would pass 2^64 bytes");
        assert!(geometry(u64::MAX, 4096, u64::MAX).is_none());
        assert!(geometry(10, 3000, 1).is_none());
    }

    #[test]
    fn known_answers_from_veritysetup() {
        // `veritysetup format --salt 00112233 --uuid 1234...` on these contents; root hashes
        // and hash files' SHA-256 recorded from Debian 12's veritysetup 2.6.1.
        let salt = [0, 0x11, 0x22, 0x33];
        let (sb, t) = build(&vec![0u8; 4096], &salt, 4096);
        assert_eq!(hex(&t.root), ROOT_ZERO_1);
        assert_eq!(sha(&hash_file(&sb, &t)), FILE_ZERO_1);
        let d = vec![0xa5u8; 129 * 4096];
        let (sb, t) = build(&d, &salt, 4096);
        assert_eq!(hex(&t.root), ROOT_A5_129);
        assert_eq!(sha(&hash_file(&sb, &t)), FILE_A5_129);
        assert_eq!(hash_file(&sb, &t).len(), 16384);
    }

    #[test]
    fn known_answers_other_block_sizes() {
        // veritysetup format --data-block-size 512 --hash-block-size 512 (40 blocks of 0xa5), and
        // the default 4096 data blocks with --hash-block-size 1024 (300 blocks of 0x5a).
        let salt = [0, 0x11, 0x22, 0x33];
        let uuid = parse_uuid(UUID).unwrap();
        for (dbs, hbs, n, byte, root, file, len) in [
            (512u32, 512u32, 40u64, 0xa5u8, "a6a4f7f8f19275bc4f353d6f3c143356b7797d3af34515eab8078687c41507ff",
             "52b797d2b3f2165561a0a93119977fa3caff1419340e67716f960f25ad1d4f5f", 2560usize),
            (4096, 1024, 300, 0x5a, "6d610bba9a514e3703cb0a213d77aa4cde21dd719217470d957a7ef082b1b9b8",
             "97fdf5c8644d6094c211df0b493a194c417242820156fc9e131e0360a5342de1", 12288),
        ] {
            let d = vec![byte; n as usize * dbs as usize];
            let mut b = TreeBuilder::new(&salt, dbs, hbs, n).unwrap();
            b.update(&d);
            let t = b.finish().unwrap();
            let sb = Superblock { data_block_size: dbs, hash_block_size: hbs, ..Superblock::new(n, &salt, uuid) };
            let f = hash_file(&sb, &t);
            assert_eq!((hex(&t.root).as_str(), sha(&f).as_str(), f.len()), (root, file, len), "{dbs}/{hbs}");
            // And the table check and offline verification accept them.
            let p = table_params("x", &sb, d.len() as u64, true, f.len() as u64, &t.root).unwrap();
            let tree = &f[(p.hash_start * u64::from(hbs)) as usize..];
            assert_eq!(verify_all(&p, tree, &d), Ok(n));
        }
    }

    const ROOT_ZERO_1: &str = "7ec8dda1b53ca958f13d08bcb7f8320234bed38c694eaebd9bd43bbfbf4d742f";
    const FILE_ZERO_1: &str = "e0426349cdc6448701681b3e9ed9d1d35c57c16787811e4b434ae3fb0c540e45";
    const ROOT_A5_129: &str = "144ec404f64adabf3abd24426ee16af18b098d8f7fe1d1853ee067238b997c73";
    const FILE_A5_129: &str = "f2fabd2fbb2571e7994adbb304bd3d0f8ad726829d0a874a99583ca97767e4aa";

    #[test]
    fn piece_size_does_not_matter() {
        let d = data(300 * 4096);
        let (_, a) = build(&d, b"salt", 4096);
        let (_, b) = build(&d, b"salt", 1000);
        let (_, c) = build(&d, b"salt", 128 << 10);
        assert_eq!((a.root, &a.area), (b.root, &b.area));
        assert_eq!((a.root, &a.area), (c.root, &c.area));
        // The salt goes in: another salt, another tree.
        let (_, e) = build(&d, b"Salt", 4096);
        assert_ne!(a.root, e.root);
        // Data past the covered blocks is ignored.
        let mut b = TreeBuilder::new(b"salt", 4096, 4096, 300).unwrap();
        b.update(&d);
        b.update(b"tail");
        assert_eq!(b.finish().unwrap().root, a.root);
        let mut b = TreeBuilder::new(b"salt", 4096, 4096, 301).unwrap();
        b.update(&d);
        assert!(b.finish().is_err());
    }

    fn params_for(sb: &Superblock, t: &Tree, size: u64) -> Params {
        let hash_size = hash_file(sb, t).len() as u64;
        table_params("x.verity", sb, size, true, hash_size, &t.root).unwrap()
    }

    fn verify_all(p: &Params, tree: &[u8], d: &[u8]) -> std::result::Result<u64, Mismatch> {
        let mut v = Verifier::new(p, tree)?;
        for piece in d.chunks(777) {
            v.update(piece)?;
        }
        Ok(v.finish().unwrap())
    }

    #[test]
    fn verify_names_what_is_wrong() {
        for blocks in [1usize, 2, 129, 16385] {
            let d = data(blocks * 4096);
            let (sb, t) = build(&d, b"salty", 128 << 10);
            let p = params_for(&sb, &t, d.len() as u64);
            assert_eq!(verify_all(&p, &t.area, &d), Ok(blocks as u64), "{blocks}");
            // One bit of the last data block.
            let mut bad = d.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let want = if blocks == 1 { Mismatch::Root } else { Mismatch::DataBlock(blocks as u64 - 1) };
            assert_eq!(verify_all(&p, &t.area, &bad), Err(want));
            if blocks > 1 {
                // A level-0 digest changed: its block no longer matches level 1.
                let mut tree = t.area.clone();
                let l0 = p.geometry.levels[0].0;
                tree[((l0 - 1) * 4096) as usize] ^= 1;
                let want = if p.geometry.levels.len() == 1 { Mismatch::Root } else { Mismatch::HashBlock { level: 0, index: l0 } };
                assert_eq!(verify_all(&p, &tree, &d), Err(want));
                // The top block changed: the root no longer matches.
                let mut tree = t.area.clone();
                tree[5] ^= 0x80;
                assert_eq!(verify_all(&p, &tree, &d), Err(Mismatch::Root));
                // Another root hash.
                let mut p2 = p.clone();
                p2.root_hash[0] ^= 1;
                assert_eq!(verify_all(&p2, &t.area, &d), Err(Mismatch::Root));
                // Non-zero padding after the last digest of the top block.
                let mut tree = t.area.clone();
                tree[4095] = 1;
                assert!(verify_all(&p, &tree, &d).is_err());
                // A truncated tree is refused, not read past its end.
                assert!(verify_all(&p, &t.area[..t.area.len() - 1], &d).is_err());
            }
        }
    }

    #[test]
    fn table_params_refusals() {
        let d = data(129 * 4096);
        let (sb, t) = build(&d, &[0xab; 32], 4096);
        let hs = hash_file(&sb, &t).len() as u64;
        let size = d.len() as u64;
        let p = table_params("x.verity", &sb, size, true, hs, &t.root).unwrap();
        assert_eq!((p.hash_start, p.sectors(), p.data_blocks), (1, 129 * 8, 129));
        let tbl = p.table("7:0", "7:1", OnCorruption::Eio);
        assert_eq!(tbl, format!("1 7:0 7:1 4096 4096 129 1 sha256 {} {}", hex(&t.root), "ab".repeat(32)));
        assert!(p.table("7:0", "7:1", OnCorruption::Restart).ends_with(" 1 restart_on_corruption"));
        assert!(p.table("7:0", "7:1", OnCorruption::Panic).ends_with(" 1 panic_on_corruption"));
        let mut nosalt = p.clone();
        nosalt.salt.clear();
        assert!(nosalt.table("a", "b", OnCorruption::Eio).ends_with(" -"));

        let refuse = |sb: &Superblock, size: u64, exact: bool, hs: u64, root: &[u8], want: &str| {
            let e = table_params("x.verity", sb, size, exact, hs, root).unwrap_err();
            assert_eq!(e.exit_code(), 3);
            assert!(e.to_string().starts_with("x.verity: "), "{e}");
            assert!(e.to_string().contains(want), "{e} lacks {want}");
        };
        let mut s = sb.clone();
        s.algorithm = "sha1".into();
        refuse(&s, size, true, hs, &t.root, "'sha1' is not supported (only sha256");
        let mut s = sb.clone();
        s.hash_type = 0;
        refuse(&s, size, true, hs, &t.root, "hash type 0");
        for bs in [0u32, 256, 3000, 8192, 1 << 31] {
            let mut s = sb.clone();
            s.data_block_size = bs;
            refuse(&s, size, true, hs, &t.root, &format!("data block size {bs}"));
            let mut s = sb.clone();
            s.hash_block_size = bs;
            refuse(&s, size, true, hs, &t.root, &format!("hash block size {bs}"));
        }
        refuse(&sb, size + 4096, true, hs, &t.root, "the rest would be unverified");
        refuse(&sb, size + 1, true, hs, &t.root, "the rest would be unverified");
        assert!(table_params("x.verity", &sb, size + 4096, false, hs, &t.root).is_ok(), "a bigger device is fine");
        refuse(&sb, size - 1, false, hs, &t.root, "the data is only");
        refuse(&sb, size, true, hs - 1, &t.root, "needs 16384");
        refuse(&sb, size, true, hs, &t.root[..31], "root hash is 31 bytes");
        refuse(&sb, size, true, hs, &[0; 64], "root hash is 64 bytes");
        let mut s = sb.clone();
        s.data_blocks = u64::MAX;
        refuse(&s, size, true, hs, &t.root, "overflow");
        let mut s = sb.clone();
        s.data_blocks = 0;
        refuse(&s, size, true, hs, &t.root, "no data blocks");
        let mut s = sb.clone();
        s.salt = vec![0; 257];
        refuse(&s, size, true, hs, &t.root, "salt of 257");
        // 512-byte blocks: the superblock fills hash block 0, the tree starts at 1.
        let mut s = sb.clone();
        s.data_block_size = 512;
        s.hash_block_size = 512;
        s.data_blocks = 129 * 8;
        assert_eq!(table_params("x", &s, size, true, 1 << 20, &t.root).unwrap().hash_start, 1);
    }

    #[test]
    fn top_block_checks_the_root_hash() {
        let d = data(129 * 4096);
        let (sb, t) = build(&d, b"s", 4096);
        let file = hash_file(&sb, &t);
        let p = params_for(&sb, &t, d.len() as u64);
        assert_eq!(p.top(), Top::Hash(4096, 4096));
        assert!(p.top_matches(&file[4096..8192]));
        assert!(!p.top_matches(&file[8192..12288]));
        let mut wrong = p.clone();
        wrong.root_hash[31] ^= 1;
        assert!(!wrong.top_matches(&file[4096..8192]));
        let one = data(4096);
        let (sb, t) = build(&one, b"s", 4096);
        let p = params_for(&sb, &t, 4096);
        assert_eq!(p.top(), Top::Data(0, 4096));
        assert!(p.top_matches(&one));
    }

    #[test]
    fn corruption_policy_words() {
        assert_eq!("eio".parse(), Ok(OnCorruption::Eio));
        assert_eq!("restart".parse(), Ok(OnCorruption::Restart));
        assert_eq!("panic".parse(), Ok(OnCorruption::Panic));
        assert!("ignore".parse::<OnCorruption>().is_err());
        assert_eq!(OnCorruption::default(), OnCorruption::Eio);
    }
}
