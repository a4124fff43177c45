//! A FAT32 writer: makes the file system and puts a fixed set of files on it in one pass, so
//! `migrate` can make a boot partition from inside the live system (the guest has no mkfs.fat
//! and no mtools).
//!
//! Every file and directory is contiguous (syslinux's ldlinux.sys must be described by a short
//! list of extents, and contiguity makes the layout a pure function of the names and sizes: the
//! caller can ask [`FatBuilder::layout`] where a file will land, patch it, and then write).
//! Timestamps are fixed (1980-01-01 unless [`FatBuilder::set_time`]): the same input gives the
//! same bytes.
//!
//! Power cut: top-level names given to [`FatBuilder::hide_until_commit`] (e.g. `EFI`) are
//! written as if absent: their root-directory entries are zero (end of directory) and their
//! clusters free in both FATs. Their contents are on the disk already; the [`Written::commit`]
//! writes (FATs and FSInfo first, the root-directory sector last) link them in. UEFI firmware
//! boots `\EFI\BOOT\BOOTX64.EFI` from any FAT partition it sees, so that path must only appear
//! once the kernel, the initramfs and the boot entry are complete; before the commit the file
//! system is consistent (fsck-clean) and simply has no EFI directory. A cut during the commit
//! leaves at worst allocated clusters no directory names (fsck reclaims them), never a name
//! that points at free clusters.
//!
//! Use (what migrate does; ldlinux.sys must be patched for its final sectors before it is
//! written, and replacing a file by one of the same length keeps the layout):
//! ```text
//! let mut b = FatBuilder::new("BOOT", volume_id)?;
//! b.add_file("/boot/syslinux/ldlinux.sys", ldl.clone())?;   // ... and every other file
//! b.hide_until_commit("EFI");
//! let sectors = b.layout(size)?.sectors("/boot/syslinux/ldlinux.sys")...;
//! let sect1 = syslinux::patch_ldlinux(&mut ldl, sectors)?;
//! b.add_file("/boot/syslinux/ldlinux.sys", ldl.clone())?;
//! let mut w = b.write(&dev, offset, size, start_lba)?;
//! syslinux::boot_sector(&medium_vbr, &ldl, &mut w.vbr, sect1)?;
//! pwrite w.vbr at both w.vbr_at; fsync; pwrite each w.commit in order; fsync
//! ```


use crate::error::{Error, Result};
use std::os::unix::fs::FileExt;

const SECTOR: u64 = 512;
const RESERVED: u32 = 32;
const FSINFO_SECTOR: u64 = 1;
const BACKUP_SECTOR: u64 = 6;
/// FAT32 needs at least this many clusters, or drivers take it for FAT16.
const MIN_CLUSTERS: u64 = 65525;
/// The largest cluster count whose numbers stay below the reserved values 0x0FFFFFF7...
const MAX_CLUSTERS: u64 = 0x0FFF_FFF5 - 2;
const EOC: u32 = 0x0FFF_FFFF;
const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0F;

fn err(object: impl std::fmt::Display, reason: impl Into<String>) -> Error {
    Error::new(format!("fat: {object}"), reason)
}

enum Kind {
    Dir(Vec<usize>),
    File(Vec<u8>),
}

struct Node {
    name: String,
    kind: Kind,
}

/// The files of a FAT32 file system to be written.
pub struct FatBuilder {
    label: [u8; 11],
    has_label: bool,
    volume_id: u32,
    date: u16,
    time: u16,
    /// Index 0 is the root directory.
    nodes: Vec<Node>,
    hidden: Vec<String>,
}

/// Where each node lands, for a given partition size.
pub struct Layout {
    spc: u32,
    fat_sectors: u32,
    total_sectors: u32,
    clusters: u32,
    /// Per node: first cluster and cluster count (0, 0 for an empty file).
    place: Vec<(u32, u32)>,
    /// Per node: true when it lies under a hidden top-level name.
    hidden: Vec<bool>,
    /// One past the last allocated cluster.
    end: u32,
    paths: Vec<(String, usize)>,
    /// Per node: a file's 512-byte sectors, relative to the file system.
    sector_lists: Vec<Vec<u64>>,
}

/// What [`FatBuilder::write`] did, and what is left for the caller.
pub struct Written {
    layout: Layout,
    /// Writes (byte offset in the device, bytes) that make the hidden names appear. Write them
    /// in this order (FATs and FSInfo before the directory sector), after everything else is
    /// on the disk: fsync the device before the first one (a write cache may reorder).
    pub commit: Vec<(u64, Vec<u8>)>,
    /// The volume boot record as written (the BPB plus a stub that asks the BIOS for the next
    /// boot device); patch boot code into it and write it back at both `vbr_at` offsets.
    pub vbr: [u8; 512],
    /// Byte offsets in the device of the boot sector and its backup (sector 6).
    pub vbr_at: [u64; 2],
}

impl Written {
    /// The file's 512-byte sectors, relative to the start of the file system.
    pub fn sectors(&self, path: &str) -> Option<&[u64]> {
        self.layout.sectors_ref(path)
    }
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_uppercase() == b.to_uppercase()
}

/// A long name FAT can store: what Windows and Linux accept in a directory entry.
fn check_name(name: &str) -> Result<()> {
    let bad = |r: &str| Err(err(format!("{name:?}"), r.to_owned()));
    if name.is_empty() || name == "." || name == ".." {
        return bad("not a file name");
    }
    if name.encode_utf16().count() > 255 {
        return bad("name longer than 255 characters");
    }
    if name.chars().any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c)) {
        return bad("character not allowed in a FAT name");
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return bad("name ends with a dot or a space");
    }
    Ok(())
}

/// Characters allowed in a short (8.3) name or the volume label besides A-Z and 0-9.
const SHORT_EXTRA: &[u8] = b"!#$%&'()-@^_`{}~";

fn short_ok(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || SHORT_EXTRA.contains(&b)
}

/// `name` as an exact 8.3 entry, when it is one (upper case, valid characters, 8 + 3).
fn exact_short(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || base.contains('.') {
        return None;
    }
    if !base.bytes().chain(ext.bytes()).all(short_ok) || (name.contains('.') && ext.is_empty()) {
        return None;
    }
    let mut s = [b' '; 11];
    s[..base.len()].copy_from_slice(base.as_bytes());
    s[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(s)
}

fn short_chars(s: &str) -> Vec<u8> {
    s.chars()
        .filter(|&c| c != ' ' && c != '.')
        .map(|c| {
            let u = c.to_ascii_uppercase();
            if u.is_ascii() && short_ok(u as u8) { u as u8 } else { b'_' }
        })
        .collect()
}

/// The 8.3 alias of a long name: BASE~N.EXT with the first free N, as Windows makes them.
fn alias(name: &str, taken: &[[u8; 11]]) -> Option<[u8; 11]> {
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) if !b.is_empty() => (b, e),
        _ => (name, ""),
    };
    // Only the case differs: the upper-case spelling is the alias, as Windows does it.
    if let Some(s) = exact_short(&name.to_ascii_uppercase()).filter(|s| !taken.contains(s)) {
        return Some(s);
    }
    let base = short_chars(base);
    let ext = short_chars(ext);
    let ext = ext.get(..ext.len().min(3)).unwrap_or(&[]);
    for n in 1u32..1_000_000 {
        let tail = format!("~{n}");
        let keep = 8usize.saturating_sub(tail.len()).min(base.len());
        let mut s = [b' '; 11];
        let mut head: Vec<u8> = base.get(..keep).unwrap_or(&[]).to_vec();
        if head.is_empty() {
            head.push(b'_');
        }
        head.extend_from_slice(tail.as_bytes());
        for (d, b) in s.iter_mut().zip(head.iter().take(8)) {
            *d = *b;
        }
        for (d, b) in s.iter_mut().skip(8).zip(ext.iter()) {
            *d = *b;
        }
        if !taken.contains(&s) {
            return Some(s);
        }
    }
    None
}

fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl FatBuilder {
    /// `label`: up to 11 characters, upper case A-Z, digits, space and `!#$%&'()-@^_`{}~`
    /// (what blkid will report, so `root=live:LABEL=` must match it exactly); "" for none.
    pub fn new(label: &str, volume_id: u32) -> Result<Self> {
        let bad = |r: &str| Err(err(format!("label {label:?}"), r.to_owned()));
        if label.len() > 11 {
            return bad("longer than 11 characters");
        }
        if label.starts_with(' ') {
            return bad("starts with a space");
        }
        if !label.bytes().all(|b| b == b' ' || short_ok(b)) {
            return bad("only A-Z, 0-9, space and !#$%&'()-@^_`{}~ are allowed");
        }
        let mut l = *b"NO NAME    ";
        let has_label = !label.trim_end().is_empty();
        if has_label {
            l = [b' '; 11];
            l[..label.len()].copy_from_slice(label.as_bytes());
        }
        Ok(FatBuilder {
            label: l,
            has_label,
            volume_id,
            date: 0x21, // 1980-01-01
            time: 0,
            nodes: vec![Node { name: String::new(), kind: Kind::Dir(Vec::new()) }],
            hidden: Vec::new(),
        })
    }

    /// Every timestamp, as seconds since 1970 (UTC); outside 1980..2107 it is clamped.
    pub fn set_time(&mut self, unix: i64) {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400) as u32;
        let (y, m, d) = civil(days);
        if y < 1980 {
            (self.date, self.time) = (0x21, 0);
        } else if y > 2107 {
            (self.date, self.time) = ((127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29);
        } else {
            self.date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
            self.time = (((secs / 3600) as u16) << 11) | ((((secs / 60) % 60) as u16) << 5) | ((secs % 60) / 2) as u16;
        }
    }

    /// Adds (or replaces) the file at `path` ("/boot/syslinux/ldlinux.sys"); parent
    /// directories come by themselves. Names are case-preserving and compared without case.
    pub fn add_file(&mut self, path: &str, data: Vec<u8>) -> Result<()> {
        let parts = components(path);
        let Some((last, dirs)) = parts.split_last() else {
            return Err(err(format!("{path:?}"), "not a file path"));
        };
        if u32::try_from(data.len()).is_err() {
            return Err(err(path, "larger than 4 GiB - 1, FAT cannot hold it"));
        }
        for p in &parts {
            check_name(p)?;
        }
        let mut dir = 0usize;
        for d in dirs {
            dir = match self.child(dir, d) {
                Some(i) => match self.nodes.get(i).map(|n| &n.kind) {
                    Some(Kind::Dir(_)) => i,
                    _ => return Err(err(path, format!("{d} is a file"))),
                },
                None => self.push(dir, d, Kind::Dir(Vec::new())),
            };
        }
        match self.child(dir, last) {
            Some(i) => match self.nodes.get_mut(i) {
                Some(Node { kind: k @ Kind::File(_), .. }) => *k = Kind::File(data),
                _ => return Err(err(path, "is a directory")),
            },
            None => {
                self.push(dir, last, Kind::File(data));
            }
        }
        Ok(())
    }

    /// Writes the root-directory entry of `top_level_name` (a file or directory) as free, and
    /// its clusters as free, until the caller writes [`Written::commit`].
    pub fn hide_until_commit(&mut self, top_level_name: &str) {
        self.hidden.push(top_level_name.to_owned());
    }

    fn child(&self, dir: usize, name: &str) -> Option<usize> {
        match self.nodes.get(dir).map(|n| &n.kind) {
            Some(Kind::Dir(c)) => c.iter().copied().find(|&i| self.nodes.get(i).is_some_and(|n| same_name(&n.name, name))),
            _ => None,
        }
    }

    fn push(&mut self, dir: usize, name: &str, kind: Kind) -> usize {
        let i = self.nodes.len();
        self.nodes.push(Node { name: name.to_owned(), kind });
        if let Some(Node { kind: Kind::Dir(c), .. }) = self.nodes.get_mut(dir) {
            c.push(i);
        }
        i
    }

    fn children(&self, i: usize) -> &[usize] {
        match self.nodes.get(i).map(|n| &n.kind) {
            Some(Kind::Dir(c)) => c,
            _ => &[],
        }
    }

    fn is_hidden_top(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| self.hidden.iter().any(|h| same_name(h, &n.name)))
    }

    /// A directory's children, visible ones first: hidden entries go last, so that writing
    /// them as zero (end of directory) hides nothing else.
    fn ordered(&self, dir: usize) -> Vec<usize> {
        let c = self.children(dir);
        let top = dir == 0;
        let mut v: Vec<usize> = c.iter().copied().filter(|&i| !(top && self.is_hidden_top(i))).collect();
        v.extend(c.iter().copied().filter(|&i| top && self.is_hidden_top(i)));
        v
    }

    /// The 32-byte entries of directory `dir`, given where every node lies. With `hide`, the
    /// hidden top-level entries are left out (zero).
    fn dir_entries(&self, dir: usize, place: &[(u32, u32)], hide: &[bool], with_hidden: bool) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let stamp = |e: &mut [u8; 32], cluster: u32, size: u32| {
            e[14..16].copy_from_slice(&self.time.to_le_bytes());
            e[16..18].copy_from_slice(&self.date.to_le_bytes());
            e[18..20].copy_from_slice(&self.date.to_le_bytes());
            e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
            e[22..24].copy_from_slice(&self.time.to_le_bytes());
            e[24..26].copy_from_slice(&self.date.to_le_bytes());
            e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
            e[28..32].copy_from_slice(&size.to_le_bytes());
        };
        let first = |i: usize| place.get(i).map_or(0, |p| p.0);
        if dir == 0 {
            if self.has_label {
                let mut e = [0u8; 32];
                e[..11].copy_from_slice(&self.label);
                e[11] = ATTR_VOLUME;
                stamp(&mut e, 0, 0);
                out.extend_from_slice(&e);
            }
        } else {
            for (n, c) in [(".", first(dir)), ("..", self.parent_cluster(dir, place))] {
                let mut e = [0u8; 32];
                e[..11].copy_from_slice(b"           ");
                e[..n.len()].copy_from_slice(n.as_bytes());
                e[11] = ATTR_DIR;
                stamp(&mut e, c, 0);
                out.extend_from_slice(&e);
            }
        }
        let mut taken: Vec<[u8; 11]> = Vec::new();
        // Exact 8.3 names first claim their spelling, so an alias never takes it.
        for &i in self.children(dir) {
            if let Some(s) = self.nodes.get(i).and_then(|n| exact_short(&n.name)) {
                taken.push(s);
            }
        }
        for i in self.ordered(dir) {
            let Some(node) = self.nodes.get(i) else { continue };
            if !with_hidden && hide.get(i).copied().unwrap_or(false) {
                continue;
            }
            let (short, long) = match exact_short(&node.name) {
                Some(s) => (s, false),
                None => {
                    let s = alias(&node.name, &taken).ok_or_else(|| err(&node.name, "no free 8.3 alias"))?;
                    taken.push(s);
                    (s, true)
                }
            };
            if long {
                let units: Vec<u16> = node.name.encode_utf16().collect();
                let n = units.len().div_ceil(13);
                let sum = lfn_checksum(&short);
                for seq in (1..=n).rev() {
                    let mut e = [0u8; 32];
                    e[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
                    e[11] = ATTR_LFN;
                    e[13] = sum;
                    let slots = (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2));
                    for (k, off) in slots.enumerate() {
                        let at = (seq - 1) * 13 + k;
                        let u = match units.get(at) {
                            Some(&u) => u,
                            None if at == units.len() => 0,
                            None => 0xFFFF,
                        };
                        e[off..off + 2].copy_from_slice(&u.to_le_bytes());
                    }
                    out.extend_from_slice(&e);
                }
            }
            let mut e = [0u8; 32];
            e[..11].copy_from_slice(&short);
            let (attr, size) = match &node.kind {
                Kind::Dir(_) => (ATTR_DIR, 0),
                Kind::File(d) => (ATTR_ARCHIVE, d.len() as u32),
            };
            e[11] = attr;
            stamp(&mut e, first(i), size);
            out.extend_from_slice(&e);
        }
        Ok(out)
    }

    fn parent_cluster(&self, dir: usize, place: &[(u32, u32)]) -> u32 {
        let parent = (0..self.nodes.len()).find(|&p| self.children(p).contains(&dir)).unwrap_or(0);
        // ".." of a directory in the root says 0, not the root's cluster.
        if parent == 0 { 0 } else { place.get(parent).map_or(0, |p| p.0) }
    }

    /// Where everything lands on a partition of `size` bytes. The same files (by name and
    /// length) give the same layout, so data may be replaced after this with the same length.
    pub fn layout(&self, size: u64) -> Result<Layout> {
        let total = size / SECTOR;
        let total_sectors = u32::try_from(total).map_err(|_| err(format!("size {size}"), "larger than 2 TiB, FAT32 cannot address it"))?;
        let mut spc = 8u32;
        let geometry = |spc: u32| {
            let spc64 = u64::from(spc);
            let avail = total.saturating_sub(u64::from(RESERVED));
            // Upper bound of the FAT size: entries for every cluster the space could hold.
            let fat = ((avail / spc64 + 2) * 4).div_ceil(SECTOR);
            let clusters = avail.saturating_sub(2 * fat) / spc64;
            (fat, clusters)
        };
        while spc > 1 && geometry(spc).1 < MIN_CLUSTERS {
            spc /= 2;
        }
        while spc < 128 && geometry(spc).1 > MAX_CLUSTERS {
            spc *= 2;
        }
        let (fat, clusters) = geometry(spc);
        if clusters < MIN_CLUSTERS {
            return Err(err(format!("size {size}"), format!("too small for FAT32 (at least {} MiB)", (MIN_CLUSTERS + 1100) / 2048 + 1)));
        }
        let csize = u64::from(spc) * SECTOR;
        let n = self.nodes.len();
        let mut place = vec![(0u32, 0u32); n];
        let mut hidden = vec![false; n];
        // Allocation order: visible nodes breadth first, then the hidden subtrees, so the
        // FAT sectors the commit rewrites are together at the end.
        let mut order = vec![0usize];
        let mut tops: Vec<usize> = Vec::new();
        let mut k = 0;
        while let Some(&i) = order.get(k) {
            for c in self.ordered(i) {
                if i == 0 && self.is_hidden_top(c) {
                    tops.push(c);
                } else {
                    order.push(c);
                }
            }
            k += 1;
        }
        for t in tops {
            let start = order.len();
            order.push(t);
            let mut k = start;
            while let Some(&i) = order.get(k) {
                if let Some(h) = hidden.get_mut(i) {
                    *h = true;
                }
                order.extend(self.ordered(i));
                k += 1;
            }
        }
        let mut next: u64 = 2;
        for &i in &order {
            let bytes = match self.nodes.get(i).map(|n| &n.kind) {
                Some(Kind::File(d)) => d.len() as u64,
                Some(Kind::Dir(_)) => {
                    let e = self.dir_entries(i, &place, &hidden, true)?;
                    (e.len() as u64).max(1)
                }
                None => 0,
            };
            let count = bytes.div_ceil(csize);
            if count > 0 {
                let first = u32::try_from(next).map_err(|_| err(format!("size {size}"), "too many clusters"))?;
                place[i] = (first, count as u32);
                next += count;
            }
        }
        if next > clusters + 2 {
            let need = (next - 2) * csize + u64::from(RESERVED) * SECTOR + 2 * fat * SECTOR;
            return Err(err(format!("size {size}"), format!("too small for the files (about {} MiB needed)", need.div_ceil(1 << 20))));
        }
        let mut paths = Vec::new();
        self.collect_paths(0, String::new(), &mut paths);
        let data_sector = u64::from(RESERVED) + 2 * fat;
        let sector_lists = self
            .nodes
            .iter()
            .zip(&place)
            .map(|(node, &(first, _))| match &node.kind {
                Kind::File(d) if first >= 2 => {
                    let base = data_sector + (u64::from(first) - 2) * u64::from(spc);
                    (base..base + (d.len() as u64).div_ceil(SECTOR)).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        Ok(Layout { spc, fat_sectors: fat as u32, total_sectors, clusters: clusters as u32, place, hidden, end: next as u32, paths, sector_lists })
    }

    fn collect_paths(&self, dir: usize, prefix: String, out: &mut Vec<(String, usize)>) {
        for &c in self.children(dir) {
            let Some(node) = self.nodes.get(c) else { continue };
            let p = format!("{prefix}/{}", node.name);
            out.push((p.clone(), c));
            self.collect_paths(c, p, out);
        }
    }

    /// Makes the file system on `dev` at byte `offset`, `size` bytes long, with every file.
    /// `hidden_sectors` is the partition's first LBA (the BPB field boot code adds to its
    /// sector numbers).
    pub fn write(&self, dev: &std::fs::File, offset: u64, size: u64, hidden_sectors: u32) -> Result<Written> {
        let l = self.layout(size)?;
        let put = |at: u64, data: &[u8]| -> Result<()> {
            let pos = offset.checked_add(at).ok_or_else(|| err("offset", "too large"))?;
            dev.write_all_at(data, pos).map_err(|e| err("device", crate::error::io_reason(&e)))
        };
        let spc = u64::from(l.spc);
        let csize = spc * SECTOR;
        let fat_start = u64::from(RESERVED) * SECTOR;
        let fat_bytes = u64::from(l.fat_sectors) * SECTOR;
        let data_start = fat_start + 2 * fat_bytes;
        let cluster_at = |c: u32| data_start + (u64::from(c) - 2) * csize;

        // FAT contents up to the last allocated cluster, without and with the hidden nodes.
        let mut fat_final = vec![0u32; l.end as usize];
        if let Some(f) = fat_final.get_mut(0) {
            *f = 0x0FFF_FFF8;
        }
        if let Some(f) = fat_final.get_mut(1) {
            *f = EOC;
        }
        let mut fat_pre = fat_final.clone();
        for (i, &(first, count)) in l.place.iter().enumerate() {
            for c in first..first.saturating_add(count) {
                let v = if c + 1 == first + count { EOC } else { c + 1 };
                if let Some(f) = fat_final.get_mut(c as usize) {
                    *f = v;
                }
                if !l.hidden.get(i).copied().unwrap_or(false) {
                    if let Some(f) = fat_pre.get_mut(c as usize) {
                        *f = v;
                    }
                }
            }
        }
        let bytes = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (pre, fin) = (bytes(&fat_pre), bytes(&fat_final));
        let used = |v: &[u32]| v.iter().skip(2).filter(|&&x| x != 0).count() as u32;

        // Reserved area: zero, then boot sector, FSInfo and their backups.
        put(0, &vec![0u8; fat_start as usize])?;
        let vbr = self.vbr(&l, hidden_sectors);
        let fsinfo = |free: u32| {
            let mut s = [0u8; 512];
            s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
            s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
            s[488..492].copy_from_slice(&free.to_le_bytes());
            let hint = if l.end < l.clusters + 2 { l.end } else { 0xFFFF_FFFF };
            s[492..496].copy_from_slice(&hint.to_le_bytes());
            s[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
            s
        };
        let fs_pre = fsinfo(l.clusters - used(&fat_pre));
        let fs_fin = fsinfo(l.clusters - used(&fat_final));
        for base in [0, BACKUP_SECTOR * SECTOR] {
            put(base, &vbr)?;
            put(base + FSINFO_SECTOR * SECTOR, &fs_pre)?;
        }

        // Both FATs: the used head, then zeros.
        let zeros = vec![0u8; 1 << 20];
        for copy in 0..2u64 {
            let start = fat_start + copy * fat_bytes;
            put(start, &pre)?;
            let mut at = pre.len() as u64;
            while at < fat_bytes {
                let n = (fat_bytes - at).min(zeros.len() as u64) as usize;
                put(start + at, zeros.get(..n).unwrap_or(&[]))?;
                at += n as u64;
            }
        }

        // Directories and files, each cluster-padded.
        let mut root_pre = Vec::new();
        let mut root_fin = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let (first, count) = l.place.get(i).copied().unwrap_or((0, 0));
            if count == 0 {
                continue;
            }
            let span = u64::from(count) * csize;
            match &node.kind {
                Kind::Dir(_) => {
                    let mut data = self.dir_entries(i, &l.place, &l.hidden, i != 0)?;
                    data.resize(span as usize, 0);
                    if i == 0 {
                        root_fin = self.dir_entries(0, &l.place, &l.hidden, true)?;
                        root_fin.resize(data.len(), 0);
                        root_pre = data.clone();
                    }
                    put(cluster_at(first), &data)?;
                }
                Kind::File(d) => {
                    // The last cluster's tail is zeroed: the same files give the same bytes.
                    put(cluster_at(first), d)?;
                    let tail = span - d.len() as u64;
                    put(cluster_at(first) + d.len() as u64, zeros.get(..tail as usize).unwrap_or(&[]))?;
                }
            }
        }

        // The commit: changed FAT sectors (both copies), FSInfo (both), then the root's
        // changed sectors, last.
        let mut commit = Vec::new();
        let sec = SECTOR as usize;
        for (k, (a, b)) in pre.chunks(sec).zip(fin.chunks(sec)).enumerate() {
            if a != b {
                for copy in 0..2u64 {
                    commit.push((offset + fat_start + copy * fat_bytes + (k * sec) as u64, b.to_vec()));
                }
            }
        }
        if !commit.is_empty() {
            for base in [0, BACKUP_SECTOR * SECTOR] {
                commit.push((offset + base + FSINFO_SECTOR * SECTOR, fs_fin.to_vec()));
            }
        }
        let root_at = cluster_at(l.place.first().map_or(2, |p| p.0));
        for (k, (a, b)) in root_pre.chunks(sec).zip(root_fin.chunks(sec)).enumerate() {
            if a != b {
                commit.push((offset + root_at + (k * sec) as u64, b.to_vec()));
            }
        }
        Ok(Written { layout: l, commit, vbr, vbr_at: [offset, offset + BACKUP_SECTOR * SECTOR] })
    }

    fn vbr(&self, l: &Layout, hidden_sectors: u32) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
        b[3..11].copy_from_slice(b"LIVEROOT");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = l.spc as u8;
        b[14..16].copy_from_slice(&(RESERVED as u16).to_le_bytes());
        b[16] = 2;
        b[21] = 0xF8;
        b[24..26].copy_from_slice(&63u16.to_le_bytes());
        b[26..28].copy_from_slice(&255u16.to_le_bytes());
        b[28..32].copy_from_slice(&hidden_sectors.to_le_bytes());
        b[32..36].copy_from_slice(&l.total_sectors.to_le_bytes());
        b[36..40].copy_from_slice(&l.fat_sectors.to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes());
        b[48..50].copy_from_slice(&(FSINFO_SECTOR as u16).to_le_bytes());
        b[50..52].copy_from_slice(&(BACKUP_SECTOR as u16).to_le_bytes());
        b[64] = 0x80;
        b[66] = 0x29;
        b[67..71].copy_from_slice(&self.volume_id.to_le_bytes());
        b[71..82].copy_from_slice(&self.label);
        b[82..90].copy_from_slice(b"FAT32   ");
        // Without boot code: INT 18h hands over to the next boot device, then halt.
        b[90..95].copy_from_slice(&[0xCD, 0x18, 0xF4, 0xEB, 0xFD]);
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }
}

impl Layout {
    fn node(&self, path: &str) -> Option<usize> {
        let want = components(path).join("/");
        self.paths.iter().find(|(p, _)| components(p).join("/") == want).map(|&(_, i)| i)
    }

    /// The file's 512-byte sectors, relative to the start of the file system.
    pub fn sectors(&self, path: &str) -> Option<&[u64]> {
        self.sectors_ref(path)
    }

    fn sectors_ref(&self, path: &str) -> Option<&[u64]> {
        let i = self.node(path)?;
        self.sector_lists.get(i).map(Vec::as_slice)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    pub(crate) fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("liveroot-fat-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    pub(crate) fn sh(cmd: &mut Command) -> (bool, String) {
        let o = cmd.env("LC_ALL", "C.UTF-8").env("MTOOLS_SKIP_CHECK", "1").output().unwrap();
        let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&o.stderr));
        (o.status.success(), s)
    }

    /// fsck.fat on the partition bytes (it has no offset option): exit 0 and nothing but its
    /// usual chatter.
    pub(crate) fn fsck_clean(img: &Path, offset: u64, size: u64) -> String {
        let part = img.with_extension("part");
        let all = std::fs::read(img).unwrap();
        std::fs::write(&part, &all[offset as usize..(offset + size) as usize]).unwrap();
        let (ok, out) = sh(Command::new("fsck.fat").arg("-n").arg("-v").arg(&part));
        let _ = std::fs::remove_file(&part);
        assert!(ok, "fsck.fat failed:\n{out}");
        let heads = ["fsck.fat ", "Checking ", "Boot sector contents:", "System ID ", "Media byte ", "First FAT starts ", "Root directory start", "Data area starts "];
        let counts = ["bytes per", "reserved sectors", "FATs, 32 bit", "data clusters", "hidden sectors", "sectors total", "sectors/track"];
        for line in out.lines() {
            let t = line.trim_start();
            let usual = heads.iter().any(|h| line.starts_with(h))
                || t.starts_with(|c: char| c.is_ascii_digit()) && counts.iter().any(|c| t.contains(c))
                || line.starts_with(&part.display().to_string()) && line.contains(" files, ");
            assert!(usual, "fsck.fat complained: {line:?}\n{out}");
        }
        out
    }

    fn files() -> Vec<(&'static str, Vec<u8>)> {
        let mut v = vec![
            ("/boot/vmlinuz", noise(700_001, 1)),
            ("/boot/initrd.img", noise(1_500_000, 2)),
            ("/boot/syslinux/ldlinux.sys", noise(60 * 1024, 3)),
            ("/boot/syslinux/syslinux.cfg", b"DEFAULT x\n".to_vec()),
            ("/loader/entries/liveroot.conf", b"linux /boot/vmlinuz\n".to_vec()),
            ("/loader/loader.conf", b"default liveroot.conf\n".to_vec()),
            ("/EFI/BOOT/BOOTX64.EFI", noise(100_000, 4)),
            ("/LiveOS/squashfs.img", noise(3 << 20, 5)),
            ("/LiveOS/SHA256SUMS", b"abc  squashfs.img\n".to_vec()),
            ("/empty", Vec::new()),
            ("/A name with spaces and more than 26 characters.txt", b"long".to_vec()),
            ("/gr\u{fc}n.txt", b"umlaut".to_vec()),
            ("/long_name_1.txt", b"1".to_vec()),
            ("/long_name_2.txt", b"2".to_vec()),
        ];
        for i in 0..80 {
            // Enough entries for a directory of several clusters.
            v.push((Box::leak(format!("/many/file number {i}.data").into_boxed_str()), noise(i * 37, i as u64 + 9)));
        }
        v
    }

    const OFF: u64 = 2048 * 512;
    const SIZE: u64 = 64 << 20;

    fn build(dir: &Path, hide: bool) -> (PathBuf, Written) {
        let img = dir.join("disk.img");
        let f = std::fs::OpenOptions::new().create(true).write(true).read(true).truncate(true).open(&img).unwrap();
        f.set_len(OFF + SIZE + (1 << 20)).unwrap();
        let mut b = FatBuilder::new("LIVE", 0x1234_abcd).unwrap();
        for (p, d) in files() {
            b.add_file(p, d).unwrap();
        }
        if hide {
            b.hide_until_commit("EFI");
        }
        let w = b.write(&f, OFF, SIZE, 2048).unwrap();
        (img, w)
    }

    fn mtype(img: &Path, path: &str) -> Vec<u8> {
        let o = Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@{OFF}", img.display()))
            .arg(format!("::{path}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "mtype {path}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    #[test]
    fn fsck_clean_and_mtools_reads_every_file_back() {
        let dir = tmpdir("mtools");
        let (img, w) = build(&dir, false);
        assert!(w.commit.is_empty());
        let out = fsck_clean(&img, OFF, SIZE);
        assert!(out.contains("LIVE"), "{out}");
        for (p, d) in files() {
            assert!(mtype(&img, p) == d, "{p} differs when read back by mtools");
        }
        let (ok, list) = sh(Command::new("mdir").arg("-i").arg(format!("{}@@{OFF}", img.display())).arg("::/"));
        assert!(ok, "{list}");
        assert!(list.contains("Volume in drive : is LIVE"), "{list}");
        assert!(list.contains("A name with spaces and more than 26 characters.txt"), "{list}");
        assert!(list.contains("gr\u{fc}n.txt"), "{list}");
        // What find-medium and root=UUID= see.
        let (ok, id) = sh(Command::new("blkid").args(["-p", "-o", "export", "-O", &OFF.to_string()]).arg(&img));
        assert!(ok && id.contains("\nLABEL=LIVE\n") && id.contains("\nUUID=1234-ABCD\n") && id.contains("\nTYPE=vfat\n"), "{id}");
        // The sector lists say where the bytes are.
        let all = std::fs::read(&img).unwrap();
        let secs = w.sectors("/boot/syslinux/ldlinux.sys").unwrap();
        let data: Vec<u8> = secs.iter().flat_map(|&s| all[(OFF + s * 512) as usize..(OFF + s * 512 + 512) as usize].to_vec()).collect();
        assert_eq!(&data[..60 * 1024], &files()[2].1[..]);
        assert_eq!(secs.len(), 120);
        // The BPB knows where the partition starts.
        assert_eq!(&all[(OFF + 28) as usize..(OFF + 32) as usize], &2048u32.to_le_bytes());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hidden_name_appears_only_with_the_commit() {
        let dir = tmpdir("hide");
        let (img, w) = build(&dir, true);
        assert!(!w.commit.is_empty());
        fsck_clean(&img, OFF, SIZE);
        let spec = format!("{}@@{OFF}", img.display());
        let (ok, list) = sh(Command::new("mdir").arg("-i").arg(&spec).arg("::/"));
        assert!(ok && !list.contains("EFI") && list.contains("LiveOS"), "{list}");
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        // The directory sector comes last.
        let root = w.commit.last().unwrap().0;
        assert!(w.commit.iter().all(|(o, _)| *o <= root));
        for (o, d) in &w.commit {
            f.write_all_at(d, *o).unwrap();
        }
        fsck_clean(&img, OFF, SIZE);
        let (ok, list) = sh(Command::new("mdir").arg("-i").arg(&spec).arg("::/"));
        assert!(ok && list.contains("EFI"), "{list}");
        assert!(mtype(&img, "/EFI/BOOT/BOOTX64.EFI") == noise(100_000, 4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn same_input_same_bytes() {
        let (a, b) = (tmpdir("repro-a"), tmpdir("repro-b"));
        let (ia, _) = build(&a, false);
        let (ib, _) = build(&b, false);
        assert!(std::fs::read(ia).unwrap() == std::fs::read(ib).unwrap());
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    #[test]
    fn refusals_name_the_object() {
        let e = |r: Result<FatBuilder>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e(FatBuilder::new("TWELVE CHARS", 1)), "fat: label \"TWELVE CHARS\": longer than 11 characters");
        assert!(e(FatBuilder::new("live", 1)).starts_with("fat: label \"live\": only A-Z"));
        let mut b = FatBuilder::new("LIVE", 1).unwrap();
        assert_eq!(b.add_file("/a/b:c", vec![]).unwrap_err().to_string(), "fat: \"b:c\": character not allowed in a FAT name");
        b.add_file("/a/b", vec![1]).unwrap();
        assert_eq!(b.add_file("/a/B/c", vec![]).unwrap_err().to_string(), "fat: /a/B/c: B is a file");
        assert_eq!(b.add_file("/A", vec![]).unwrap_err().to_string(), "fat: /A: is a directory");
        let small = b.layout(20 << 20).err().unwrap().to_string();
        assert!(small.starts_with("fat: size 20971520: too small for FAT32"), "{small}");
        b.add_file("/big", vec![0; 40 << 20]).unwrap();
        let full = b.layout(40 << 20).err().unwrap().to_string();
        assert!(full.starts_with("fat: size 41943040: too small for the files"), "{full}");
        assert!(b.layout(3 << 40).err().unwrap().to_string().contains("larger than 2 TiB"));
        // Replacing keeps the layout (what migrate relies on to patch ldlinux.sys).
        let before = b.layout(64 << 20).unwrap().sectors("/a/b").unwrap().to_vec();
        b.add_file("/a/b", vec![2]).unwrap();
        assert_eq!(b.layout(64 << 20).unwrap().sectors("/a/b").unwrap(), &before[..]);
    }

    #[test]
    fn short_names_and_checksums() {
        assert_eq!(exact_short("LDLINUX.SYS"), Some(*b"LDLINUX SYS"));
        assert_eq!(exact_short("ldlinux.sys"), None);
        assert_eq!(alias("ldlinux.sys", &[]), Some(*b"LDLINUX SYS"));
        assert_eq!(alias("liveroot.conf", &[]), Some(*b"LIVERO~1CON"));
        assert_eq!(alias("liveroot.conf", &[*b"LIVERO~1CON"]), Some(*b"LIVERO~2CON"));
        assert_eq!(alias(".hidden", &[]), Some(*b"HIDDEN~1   "));
        // The checksum Microsoft's specification gives for "NAME    EXT" style names.
        assert_eq!(lfn_checksum(b"LIVERO~1CON"), {
            let mut s = 0u8;
            for b in b"LIVERO~1CON" {
                s = (if s & 1 != 0 { 0x80u8 } else { 0 }).wrapping_add(s >> 1).wrapping_add(*b);
            }
            s
        });
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        let mut b = FatBuilder::new("", 0).unwrap();
        b.set_time(1_700_000_000); // 2023-11-14 22:13:20
        assert_eq!(b.date, ((2023 - 1980) << 9) | (11 << 5) | 14);
        assert_eq!(b.time, (22 << 11) | (13 << 5) | 10);
    }

    /// Any path, label or size: an answer, never a panic.
    #[test]
    fn any_names_no_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: Vec<char> = "aZ./~ .:*\\\u{0}\u{1f}é€\u{10348}-_~1LDLINUX.SYS".chars().collect();
        for _ in 0..300 {
            let mut b = match FatBuilder::new(&(0..next() % 14).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect::<String>(), 7) {
                Ok(b) => b,
                Err(e) => {
                    assert!(e.to_string().starts_with("fat: label"));
                    FatBuilder::new("X", 7).unwrap()
                }
            };
            for _ in 0..next() % 20 {
                let p: String = (0..next() % 40).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
                if let Err(e) = b.add_file(&p, vec![0; (next() % 3000) as usize]) {
                    assert!(e.to_string().starts_with("fat: "), "{e}");
                }
                if next() % 5 == 0 {
                    b.hide_until_commit(&p);
                }
            }
            for size in [0, 1 << 20, 40 << 20, next() % (3 << 40)] {
                if let Ok(l) = b.layout(size) {
                    let _ = l.sectors("/x");
                }
            }
        }
    }
}
