//! Superblock and partition-table probing, enough to find a live medium without blkid:
//! ext2/3/4, vfat, iso9660, squashfs, and the MBR/GPT tables that give partitions their PARTUUID.
//! Names and formats follow blkid's so `root=live:UUID=...` copied from blkid output matches.

use crate::sys::sysfs;
use std::fmt::Write as _;

/// Positional reads from a device, a file or (in tests) a byte buffer.
pub trait ReadAt {
    /// Fill `buf` from `off`; a short read (end of device) leaves the rest zero.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        buf.fill(0);
        let mut done = 0;
        while done < buf.len() {
            let at = off.checked_add(done as u64).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            match FileExt::read_at(self, &mut buf[done..], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        buf.fill(0);
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.len());
        let end = start.saturating_add(buf.len()).min(self.len());
        buf[..end - start].copy_from_slice(&self[start..end]);
        Ok(())
    }
}

/// What is on a device: a filesystem, or a partition table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// "ext4", "vfat", "iso9660", "squashfs", ... ; empty for a bare partition table.
    pub fstype: &'static str,
    pub label: Option<String>,
    pub uuid: Option<String>,
    pub table: Option<Table>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    Dos,
    Gpt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub kind: TableKind,
    /// PTUUID as blkid prints it: `xxxxxxxx` (dos) or the disk GUID (gpt).
    pub ptuuid: String,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The kernel's partition number (GPT: entry index + 1; MBR: slot 1-4).
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub partuuid: String,
    pub partlabel: Option<String>,
}

impl Table {
    pub fn name(&self) -> &'static str {
        match self.kind {
            TableKind::Dos => "dos",
            TableKind::Gpt => "gpt",
        }
    }
    /// PARTUUID of partition `n`: from the GPT entry, or `disksig-NN` on MBR (also for logical
    /// partitions, which the kernel numbers from 5).
    pub fn partuuid(&self, n: u32) -> Option<String> {
        match self.kind {
            TableKind::Dos => Some(format!("{}-{:02x}", self.ptuuid, n)),
            TableKind::Gpt => self.parts.iter().find(|p| p.number == n).map(|p| p.partuuid.clone()),
        }
    }
    pub fn part(&self, n: u32) -> Option<&Part> {
        self.parts.iter().find(|p| p.number == n)
    }
}

// Bytes past the end of `b` read as zero, as a short read of the device does: a probe never
// indexes out of bounds, whatever the offsets it computes from the medium.
fn byte(b: &[u8], o: usize) -> u8 {
    b.get(o).copied().unwrap_or(0)
}
fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([byte(b, o), byte(b, o.saturating_add(1))])
}
fn le32(b: &[u8], o: usize) -> u32 {
    (le16(b, o) as u32) | ((le16(b, o.saturating_add(2)) as u32) << 16)
}
fn le64(b: &[u8], o: usize) -> u64 {
    (le32(b, o) as u64) | ((le32(b, o.saturating_add(4)) as u64) << 32)
}
/// `b[from..to]`, or what of it exists.
fn slice(b: &[u8], from: usize, to: usize) -> &[u8] {
    b.get(from.min(b.len())..to.min(b.len())).unwrap_or(&[])
}

/// A fixed-size on-disk string: up to the first NUL, trailing spaces dropped; None if empty.
fn fixed_str(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]);
    let t = s.trim_end_matches(' ');
    (!t.is_empty()).then(|| t.to_owned())
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// 16 bytes in on-disk order as 8-4-4-4-12 (ext4, and the tail of a GUID).
fn uuid_be(b: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, r) in [(0, 4), (4, 6), (6, 8), (8, 10), (10, 16)].iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        hex(&mut s, slice(b, r.0, r.1));
    }
    s
}

/// A GUID as stored by EFI: the first three fields are little-endian.
fn guid(b: &[u8]) -> String {
    let mut g = [0u8; 16];
    for (i, x) in g.iter_mut().enumerate() {
        *x = byte(b, i);
    }
    g[0..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    uuid_be(&g)
}

fn probe_ext(sb: &[u8]) -> Option<Found> {
    // sb is the 1024-byte superblock (device offset 1024).
    if le16(sb, 56) != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 92);
    let incompat = le32(sb, 96);
    let ro = le32(sb, 100);
    const JOURNAL_DEV: u32 = 0x8;
    if incompat & JOURNAL_DEV != 0 {
        return None; // an external journal, not a filesystem
    }
    const HAS_JOURNAL: u32 = 0x4;
    // What ext2/ext3 drivers understood: anything else means the filesystem needs ext4.
    let (old_incompat, old_ro) = if compat & HAS_JOURNAL != 0 {
        (0x2 | 0x4 | 0x10, 0x1 | 0x2 | 0x4) // filetype, recover, meta_bg; sparse, large_file, btree
    } else {
        (0x2 | 0x10, 0x1 | 0x2 | 0x4)
    };
    let fstype = if incompat & !old_incompat != 0 || ro & !old_ro != 0 {
        "ext4"
    } else if compat & HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let u = slice(sb, 104, 120);
    Some(Found {
        fstype,
        label: fixed_str(slice(sb, 120, 136)),
        uuid: u.iter().any(|&b| b != 0).then(|| uuid_be(u)),
        table: None,
    })
}

fn probe_squashfs(b: &[u8]) -> Option<Found> {
    (slice(b, 0, 4) == b"hsqs").then(|| Found { fstype: "squashfs", ..Found::default() })
}

/// ISO 9660 dates are "YYYYMMDDHHMMSScc" + a timezone byte; blkid turns one into the UUID.
fn iso_date(d: &[u8]) -> Option<String> {
    let digits = slice(d, 0, 16);
    if digits.len() != 16 || !digits.iter().all(u8::is_ascii_digit) || digits.iter().all(|&c| c == b'0') {
        return None;
    }
    let s = std::str::from_utf8(digits).ok()?;
    let f = |a: usize, z: usize| s.get(a..z).unwrap_or("");
    Some(format!("{}-{}-{}-{}-{}-{}-{}", f(0, 4), f(4, 6), f(6, 8), f(8, 10), f(10, 12), f(12, 14), f(14, 16)))
}

fn probe_iso(pvd: &[u8]) -> Option<Found> {
    // pvd is the 2048-byte sector at 32 KiB.
    if byte(pvd, 0) != 1 || slice(pvd, 1, 6) != b"CD001" {
        return None;
    }
    // blkid prefers the modification date (GRUB's choice), else the creation date.
    let uuid = iso_date(slice(pvd, 830, 847)).or_else(|| iso_date(slice(pvd, 813, 830)));
    Some(Found { fstype: "iso9660", label: fixed_str(slice(pvd, 40, 72)), uuid, table: None })
}

/// A FAT boot sector with a sane BIOS parameter block.
fn fat_geometry(b: &[u8]) -> Option<(u64, u64, u64, u64, u64, bool)> {
    if byte(b, 510) != 0x55 || byte(b, 511) != 0xAA || !(byte(b, 0) == 0xEB || byte(b, 0) == 0xE9) {
        return None;
    }
    let bps = le16(b, 11) as u64;
    let spc = byte(b, 13) as u64;
    let reserved = le16(b, 14) as u64;
    let nfats = byte(b, 16) as u64;
    let root_entries = le16(b, 17) as u64;
    let fat16_size = le16(b, 22) as u64;
    if !bps.is_power_of_two() || !(512..=4096).contains(&bps) || !spc.is_power_of_two() || reserved == 0 || !(1..=2).contains(&nfats) {
        return None;
    }
    let fat32 = fat16_size == 0;
    let fat_size = if fat32 { le32(b, 36) as u64 } else { fat16_size };
    if fat_size == 0 {
        return None;
    }
    Some((bps, spc, reserved, nfats * fat_size, root_entries, fat32))
}

/// The volume-label entry of a FAT root directory (attribute 0x08, not a long-name slot).
fn fat_root_label(dir: &[u8]) -> Option<String> {
    for e in dir.chunks_exact(32) {
        match byte(e, 0) {
            0 => break,
            0xE5 => continue,
            _ => {}
        }
        let attr = byte(e, 11);
        if attr & 0x0F == 0x0F || attr & 0x08 == 0 {
            continue;
        }
        return fixed_str(slice(e, 0, 11));
    }
    None
}

fn probe_vfat(dev: &dyn ReadAt, b: &[u8]) -> Option<Found> {
    let (bps, spc, reserved, fats, root_entries, fat32) = fat_geometry(b)?;
    let (serial_at, label_at) = if fat32 { (67, 71) } else { (39, 43) };
    // Extended boot signature 0x29 says serial and label are present.
    let ext = byte(b, serial_at - 1) == 0x29;
    let serial = le32(b, serial_at);
    let boot_label = if ext { fixed_str(slice(b, label_at, label_at + 11)) } else { None }.filter(|l| l != "NO NAME");
    // Geometry comes from the medium: a sum that does not fit means no root directory to read.
    let root = if fat32 {
        let cluster = le32(b, 44) as u64;
        cluster
            .saturating_sub(2)
            .checked_mul(spc)
            .and_then(|c| c.checked_add(reserved)?.checked_add(fats)?.checked_mul(bps))
            .zip(spc.checked_mul(bps))
    } else {
        reserved.checked_add(fats).and_then(|s| s.checked_mul(bps)).zip(root_entries.checked_mul(32))
    };
    let root_label = root.and_then(|(root_off, root_len)| {
        let mut dir = vec![0u8; root_len.min(64 * 1024) as usize];
        dev.read_at(root_off, &mut dir).ok().and_then(|()| fat_root_label(&dir))
    });
    Some(Found {
        fstype: "vfat",
        label: root_label.or(boot_label),
        uuid: ext.then(|| format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF)),
        table: None,
    })
}

/// `sizeof(gpt_header)` up to the entry-array CRC, and `sizeof(gpt_entry)`, as the kernel has them.
const GPT_HEADER_MIN: usize = 92;
const GPT_ENTRY: usize = 128;
/// The entry array is read whole to check its CRC: 128 entries is the usual 16 KiB; allow 8 MiB.
const GPT_ENTRIES_MAX: usize = 8 << 20;

/// The GPT header at LBA 1 for `sector`-byte sectors, checked as block/partitions/efi.c
/// (`is_gpt_valid`) does: signature, header size within [92, sector], header CRC32 with its own
/// field zeroed, `my_lba` = 1, usable range ordered, entry size exactly 128, the entry array's
/// CRC32 over `count * 128` bytes. Bounds against the device's last LBA are not checked: a
/// `ReadAt` has no size (reads past the end are zeros, which then fail the entry CRC).
///
/// A primary header that fails is "no GPT", as for the kernel: it looks at the alternate header
/// (at the last LBA) only when booted with `gpt` (force_gpt), which /init never passes.
fn probe_gpt(dev: &dyn ReadAt, sector: u64) -> Option<Table> {
    let mut h = vec![0u8; usize::try_from(sector).ok()?];
    dev.read_at(sector, &mut h).ok()?;
    if slice(&h, 0, 8) != b"EFI PART" {
        return None;
    }
    let hsize = le32(&h, 12) as usize;
    if !(GPT_HEADER_MIN..=h.len()).contains(&hsize) {
        return None;
    }
    let mut zeroed = slice(&h, 0, hsize).to_vec();
    zeroed.get_mut(16..20)?.fill(0);
    if crc32fast::hash(&zeroed) != le32(&h, 16) {
        return None;
    }
    let (my_lba, first_usable, last_usable) = (le64(&h, 24), le64(&h, 40), le64(&h, 48));
    if my_lba != 1 || last_usable < first_usable {
        return None;
    }
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80) as usize;
    if le32(&h, 84) as usize != GPT_ENTRY {
        return None;
    }
    let len = count.checked_mul(GPT_ENTRY).filter(|&l| l <= GPT_ENTRIES_MAX)?;
    let mut t = vec![0u8; len];
    dev.read_at(entries_lba.checked_mul(sector)?, &mut t).ok()?;
    if crc32fast::hash(&t) != le32(&h, 88) {
        return None;
    }
    let mut parts = Vec::new();
    for (i, e) in t.chunks_exact(GPT_ENTRY).enumerate() {
        if slice(e, 0, 16).iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        // An entry whose range is reversed or does not fit in bytes is no partition.
        let Some((start, size)) = last
            .checked_sub(first)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| Some((first.checked_mul(sector)?, n.checked_mul(sector)?)))
        else {
            continue;
        };
        let name: Vec<u16> = slice(e, 56, 128).chunks_exact(2).map(|c| le16(c, 0)).take_while(|&c| c != 0).collect();
        let name = String::from_utf16_lossy(&name);
        parts.push(Part {
            number: u32::try_from(i).ok()?.checked_add(1)?,
            start,
            size,
            partuuid: guid(slice(e, 16, 32)),
            partlabel: (!name.is_empty()).then_some(name),
        });
    }
    Some(Table { kind: TableKind::Gpt, ptuuid: guid(slice(&h, 56, 72)), parts })
}

fn probe_table(dev: &dyn ReadAt, mbr: &[u8]) -> Option<Table> {
    if byte(mbr, 510) != 0x55 || byte(mbr, 511) != 0xAA {
        return None;
    }
    let slots: Vec<&[u8]> = (0..4).map(|i| slice(mbr, 446 + 16 * i, 462 + 16 * i)).collect();
    if slots.iter().any(|s| byte(s, 0) != 0 && byte(s, 0) != 0x80) {
        return None;
    }
    if slots.iter().any(|s| byte(s, 4) == 0xEE) {
        // Protective MBR: the GPT header is at LBA 1, whose size we do not know for an image.
        return [512u64, 4096].iter().find_map(|&ss| probe_gpt(dev, ss));
    }
    let sig = le32(mbr, 440);
    let ptuuid = format!("{sig:08x}");
    let parts = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| byte(s, 4) != 0)
        .map(|(i, s)| Part {
            number: i as u32 + 1,
            start: le32(s, 8) as u64 * 512,
            size: le32(s, 12) as u64 * 512,
            partuuid: format!("{ptuuid}-{:02x}", i + 1),
            partlabel: None,
        })
        .collect::<Vec<_>>();
    if parts.is_empty() {
        return None;
    }
    Some(Table { kind: TableKind::Dos, ptuuid, parts })
}

/// Identify what is on `dev`. `None`: nothing we recognise.
pub fn probe(dev: &dyn ReadAt) -> std::io::Result<Option<Found>> {
    let mut head = vec![0u8; 4096];
    dev.read_at(0, &mut head)?;
    if let Some(f) = probe_squashfs(&head).or_else(|| probe_ext(slice(&head, 1024, 2048))) {
        return Ok(Some(f));
    }
    let mut pvd = vec![0u8; 2048];
    dev.read_at(32768, &mut pvd)?;
    if let Some(f) = probe_iso(&pvd).or_else(|| probe_vfat(dev, &head)) {
        return Ok(Some(f));
    }
    Ok(probe_table(dev, &head).map(|t| Found { table: Some(t), ..Found::default() }))
}

/// Read only the partition table (for a partition's PARTUUID, probe its parent disk).
pub fn table(dev: &dyn ReadAt) -> std::io::Result<Option<Table>> {
    let mut head = vec![0u8; 512];
    dev.read_at(0, &mut head)?;
    Ok(probe_table(dev, &head))
}

/// A value for a `KEY=value` listing: double-quoted when it has spaces or quotes.
pub fn show_value(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b',' && b != b'(' && b != b')') {
        v.to_owned()
    } else {
        let mut s = String::from("\"");
        for c in v.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    }
}

impl Found {
    /// `ext4 LABEL=LIVE UUID=...` or `gpt PTUUID=...`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.table {
            let _ = write!(s, "{} PTUUID={}", t.name(), t.ptuuid);
            return s;
        }
        s.push_str(self.fstype);
        if let Some(l) = &self.label {
            let _ = write!(s, " LABEL={}", show_value(l));
        }
        if let Some(u) = &self.uuid {
            let _ = write!(s, " UUID={u}");
        }
        s
    }

    /// Does `LABEL=x` / `UUID=x` match? (PARTUUID/PARTLABEL need the table of the parent.)
    pub fn matches(&self, spec: &str) -> bool {
        if let Some(l) = spec.strip_prefix("LABEL=") {
            return self.label.as_deref() == Some(l);
        }
        if let Some(u) = spec.strip_prefix("UUID=") {
            return self.uuid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u));
        }
        false
    }
}

/// Recompute both GPT CRCs of a disk image with `sector`-byte sectors (tests, and the fuzzer,
/// which uses it to get mutated tables past the CRC checks: it must take any bytes).
#[cfg(any(test, feature = "fuzzing"))]
pub fn fix_gpt_crcs(d: &mut [u8], sector: usize) {
    let h = sector;
    if d.len() < h + GPT_HEADER_MIN {
        return;
    }
    let count = le32(d, h + 80) as usize;
    let esize = le32(d, h + 84) as usize;
    let at = (le64(d, h + 72) as usize).saturating_mul(sector);
    let ents = slice(d, at, at.saturating_add(count.saturating_mul(esize).min(GPT_ENTRIES_MAX)));
    let ecrc = crc32fast::hash(ents);
    d[h + 88..h + 92].copy_from_slice(&ecrc.to_le_bytes());
    d[h + 16..h + 20].fill(0);
    let hsize = (le32(d, h + 12) as usize).clamp(GPT_HEADER_MIN, sector).min(d.len() - h);
    let crc = crc32fast::hash(&d[h..h + hsize]);
    d[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
}

/// A 64 KiB disk: protective MBR, GPT (512-byte sectors, 128 entries) with one partition in
/// slot 3 (LBAs 34..=43, label "live"), CRCs right.
#[cfg(any(test, feature = "fuzzing"))]
pub fn sample_gpt() -> Vec<u8> {
    let mut g = vec![0u8; 64 * 1024];
    g[446 + 4] = 0xEE;
    g[510] = 0x55;
    g[511] = 0xAA;
    let h = &mut g[512..1024];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&127u64.to_le_bytes());
    h[40..48].copy_from_slice(&34u64.to_le_bytes());
    h[48..56].copy_from_slice(&94u64.to_le_bytes());
    let disk = [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
    h[56..72].copy_from_slice(&disk);
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    let e = &mut g[1024 + 2 * 128..1024 + 3 * 128];
    e[0] = 1;
    e[16..32].copy_from_slice(&disk);
    e[16] = 0x34;
    e[32..40].copy_from_slice(&34u64.to_le_bytes());
    e[40..48].copy_from_slice(&43u64.to_le_bytes());
    for (i, c) in "live".encode_utf16().enumerate() {
        e[56 + 2 * i..58 + 2 * i].copy_from_slice(&c.to_le_bytes());
    }
    fix_gpt_crcs(&mut g, 512);
    g
}

// --- The system's block devices: what find-medium and probe look through. ---

pub struct Candidate {
    pub name: String,
    pub found: Option<Found>,
    pub partuuid: Option<String>,
    pub partlabel: Option<String>,
}

impl Candidate {
    pub fn matches(&self, spec: &str) -> bool {
        if let Some(u) = spec.strip_prefix("PARTUUID=") {
            return self.partuuid.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(u));
        }
        if let Some(l) = spec.strip_prefix("PARTLABEL=") {
            return self.partlabel.as_deref() == Some(l);
        }
        self.found.as_ref().is_some_and(|f| f.matches(spec))
    }

    /// `vda1 (ext4, LABEL=LIVE, UUID=..., PARTUUID=...)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = match &self.found {
            Some(f) => f.describe().split(' ').map(str::to_owned).collect(),
            None => vec!["unknown".into()],
        };
        if let Some(p) = &self.partuuid {
            parts.push(format!("PARTUUID={p}"));
        }
        format!("{} ({})", self.name, parts.join(", "))
    }
}

/// Block devices a medium can be on. Loop, dm and md devices are what we build, not media.
pub fn is_media_name(name: &str) -> bool {
    !["loop", "ram", "zram", "dm-", "md", "nbd"].iter().any(|p| name.starts_with(p))
}

pub fn open_probe(path: &std::path::Path) -> std::io::Result<Option<Found>> {
    let f = std::fs::File::open(path)?;
    probe(&f)
}

pub fn open_table(path: &str) -> Option<Table> {
    let f = std::fs::File::open(path).ok()?;
    table(&f).ok().flatten()
}

/// What `liveinit probe` says about `path`: its filesystem (or `unknown`), what its disk's table
/// says about it when it is a partition, and its own partitions (`part N ...` lines).
pub fn line(path: &std::path::Path, found: Option<&Found>) -> String {
    let dev = path.display();
    let mut s = format!("{dev}: {}", found.map(Found::describe).unwrap_or_else(|| "unknown".into()));
    // A partition of a block device: add what its disk's table says about it.
    let kname = crate::fsutil::block_dev(path).ok().and_then(|(ma, mi)| crate::fsutil::kernel_name(ma, mi).ok());
    if let Some((disk, n)) = kname.as_deref().and_then(sysfs::partition_of) {
        if let Some(t) = sysfs::dev_node(&disk).ok().and_then(|p| open_table(&p)) {
            if let Some(u) = t.partuuid(n) {
                s.push_str(&format!(" PARTUUID={u}"));
            }
            if let Some(l) = t.part(n).and_then(|p| p.partlabel.clone()) {
                s.push_str(&format!(" PARTLABEL={}", show_value(&l)));
            }
        }
    }
    s.push('\n');
    if let Some(t) = found.and_then(|f| f.table.as_ref()) {
        for p in &t.parts {
            s.push_str(&format!("{dev}: part {} start={} size={} PARTUUID={}", p.number, p.start, p.size, p.partuuid));
            if let Some(l) = &p.partlabel {
                s.push_str(&format!(" PARTLABEL={}", show_value(l)));
            }
            s.push('\n');
        }
    }
    s
}

/// Probe every media-like block device, with PARTUUID/PARTLABEL from the parent's table.
pub fn scan(all: bool) -> Vec<Candidate> {
    let mut names = sysfs::block_names();
    names.retain(|n| all || is_media_name(n));
    let mut tables: Vec<(String, Option<Table>)> = Vec::new();
    let mut out = Vec::new();
    for name in names {
        let Ok(path) = sysfs::dev_node(&name) else { continue };
        let found = open_probe(std::path::Path::new(&path)).ok().flatten();
        let (mut partuuid, mut partlabel) = (None, None);
        if let Some((disk, n)) = sysfs::partition_of(&name) {
            if !tables.iter().any(|(d, _)| *d == disk) {
                let t = sysfs::dev_node(&disk).ok().and_then(|p| open_table(&p));
                tables.push((disk.clone(), t));
            }
            if let Some((_, Some(t))) = tables.iter().find(|(d, _)| *d == disk) {
                partuuid = t.partuuid(n);
                partlabel = t.part(n).and_then(|p| p.partlabel.clone());
            }
        }
        out.push(Candidate { name, found, partuuid, partlabel });
    }
    out
}

/// `/dev/NAME`: present as a block device, or creatable from sysfs.
pub fn find_path(spec: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::metadata(spec).is_ok_and(|m| m.file_type().is_block_device()) {
        return Some(spec.to_owned());
    }
    let name = spec.strip_prefix("/dev/")?;
    if sysfs::is_block_name(name) {
        return sysfs::dev_node(name).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext_image(compat: u32, incompat: u32, ro: u32) -> Vec<u8> {
        let mut d = vec![0u8; 64 * 1024];
        let sb = &mut d[1024..2048];
        sb[56..58].copy_from_slice(&0xEF53u16.to_le_bytes());
        sb[92..96].copy_from_slice(&compat.to_le_bytes());
        sb[96..100].copy_from_slice(&incompat.to_le_bytes());
        sb[100..104].copy_from_slice(&ro.to_le_bytes());
        for (i, b) in sb[104..120].iter_mut().enumerate() {
            *b = 0x10 * (i as u8 % 16) + i as u8 % 16;
        }
        sb[120..124].copy_from_slice(b"LIVE");
        d
    }

    #[test]
    fn ext_flavours() {
        let f = probe(&ext_image(0x4, 0x2 | 0x40, 0x1)).unwrap().unwrap();
        assert_eq!(f.fstype, "ext4");
        assert_eq!(f.label.as_deref(), Some("LIVE"));
        assert_eq!(f.uuid.as_deref(), Some("00112233-4455-6677-8899-aabbccddeeff"));
        assert_eq!(probe(&ext_image(0x4, 0x2, 0x1)).unwrap().unwrap().fstype, "ext3");
        assert_eq!(probe(&ext_image(0, 0x2, 0x3)).unwrap().unwrap().fstype, "ext2");
        assert_eq!(probe(&ext_image(0, 0x2 | 0x80, 0)).unwrap().unwrap().fstype, "ext4");
        assert_eq!(probe(&ext_image(0, 0x8, 0)).unwrap(), None);
        assert!(f.matches("LABEL=LIVE") && !f.matches("LABEL=live"));
        assert!(f.matches("UUID=00112233-4455-6677-8899-AABBCCDDEEFF"));
        assert_eq!(f.describe(), "ext4 LABEL=LIVE UUID=00112233-4455-6677-8899-aabbccddeeff");
    }

    fn fat16(label_in_root: bool) -> Vec<u8> {
        let mut d = vec![0u8; 64 * 1024];
        d[0] = 0xEB;
        d[11..13].copy_from_slice(&512u16.to_le_bytes());
        d[13] = 4;
        d[14..16].copy_from_slice(&1u16.to_le_bytes());
        d[16] = 2;
        d[17..19].copy_from_slice(&512u16.to_le_bytes());
        d[22..24].copy_from_slice(&8u16.to_le_bytes());
        d[38] = 0x29;
        d[39..43].copy_from_slice(&0x1234ABCDu32.to_le_bytes());
        d[43..54].copy_from_slice(b"BOOTLABEL  ");
        d[510] = 0x55;
        d[511] = 0xAA;
        if label_in_root {
            let root = (1 + 2 * 8) * 512;
            d[root..root + 11].copy_from_slice(b"ROOT LABEL ");
            d[root + 11] = 0x08;
        }
        d
    }

    #[test]
    fn vfat_labels_and_serial() {
        let f = probe(&fat16(false)).unwrap().unwrap();
        assert_eq!((f.fstype, f.label.as_deref(), f.uuid.as_deref()), ("vfat", Some("BOOTLABEL"), Some("1234-ABCD")));
        let f = probe(&fat16(true)).unwrap().unwrap();
        assert_eq!(f.label.as_deref(), Some("ROOT LABEL"));
        assert_eq!(f.describe(), "vfat LABEL=\"ROOT LABEL\" UUID=1234-ABCD");
        let mut d = fat16(false);
        d[43..54].copy_from_slice(b"NO NAME    ");
        assert_eq!(probe(&d).unwrap().unwrap().label, None);
    }

    #[test]
    fn iso_and_squashfs() {
        let mut d = vec![0u8; 40 * 1024];
        let p = &mut d[32768..34816];
        p[0] = 1;
        p[1..6].copy_from_slice(b"CD001");
        p[40..72].copy_from_slice(b"LIVE CD                         ");
        p[813..829].copy_from_slice(b"2024010203040506");
        let f = probe(&d).unwrap().unwrap();
        assert_eq!(f.fstype, "iso9660");
        assert_eq!(f.label.as_deref(), Some("LIVE CD"));
        assert_eq!(f.uuid.as_deref(), Some("2024-01-02-03-04-05-06"));
        d[32768 + 830..32768 + 846].copy_from_slice(b"2025010203040599");
        assert_eq!(probe(&d).unwrap().unwrap().uuid.as_deref(), Some("2025-01-02-03-04-05-99"));

        let mut s = vec![0u8; 4096];
        s[0..4].copy_from_slice(b"hsqs");
        assert_eq!(probe(&s).unwrap().unwrap().describe(), "squashfs");
        assert_eq!(probe(&vec![0u8; 100]).unwrap(), None);
    }

    #[test]
    fn mbr_and_gpt() {
        let mut d = vec![0u8; 64 * 1024];
        d[440..444].copy_from_slice(&0x0badcafeu32.to_le_bytes());
        d[446 + 16 + 4] = 0x83;
        d[446 + 16 + 8..446 + 16 + 12].copy_from_slice(&2048u32.to_le_bytes());
        d[446 + 16 + 12..446 + 16 + 16].copy_from_slice(&100u32.to_le_bytes());
        d[510] = 0x55;
        d[511] = 0xAA;
        let t = probe(&d).unwrap().unwrap().table.unwrap();
        assert_eq!(t.kind, TableKind::Dos);
        assert_eq!(t.ptuuid, "0badcafe");
        assert_eq!(t.parts.len(), 1);
        assert_eq!((t.parts[0].number, t.parts[0].start, t.parts[0].size), (2, 2048 * 512, 100 * 512));
        assert_eq!(t.partuuid(2).as_deref(), Some("0badcafe-02"));
        assert_eq!(t.partuuid(5).as_deref(), Some("0badcafe-05"));

        let t = table(&sample_gpt()).unwrap().unwrap();
        assert_eq!(t.kind, TableKind::Gpt);
        assert_eq!(t.ptuuid, "00112233-4455-6677-8899-aabbccddeeff");
        let p = t.part(3).unwrap();
        assert_eq!(p.partuuid, "00112234-4455-6677-8899-aabbccddeeff");
        assert_eq!((p.start, p.size, p.partlabel.as_deref()), (34 * 512, 10 * 512, Some("live")));
        assert_eq!(t.partuuid(1), None);
    }

    fn put64(d: &mut [u8], at: usize, v: u64) {
        d[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(d: &mut [u8], at: usize, v: u32) {
        d[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn gpt_crcs_checked_like_the_kernel() {
        let good = sample_gpt();
        assert!(table(&good).unwrap().is_some());
        // One bit of the header, not its CRC: refused.
        let mut d = good.clone();
        d[512 + 56] ^= 1;
        assert_eq!(table(&d).unwrap(), None);
        // One bit of an entry: the entry-array CRC fails, the header is fine: refused.
        let mut d = good.clone();
        d[1024 + 2 * 128 + 60] ^= 1;
        assert_eq!(table(&d).unwrap(), None);
        // Header size out of [92, sector], my_lba not 1, entry size not 128: refused even with
        // the CRCs recomputed.
        for (at, v) in [(12usize, 91u32), (12, 513), (24, 2), (84, 256)] {
            let mut d = good.clone();
            put32(&mut d, 512 + at, v);
            fix_gpt_crcs(&mut d, 512);
            assert_eq!(table(&d).unwrap(), None, "field at {at} = {v}");
        }
        // A header of 92 bytes (the minimum) with junk after it: the CRC covers only 92.
        let mut d = good.clone();
        put32(&mut d, 512 + 12, 92);
        fix_gpt_crcs(&mut d, 512);
        d[512 + 200] = 0xAB;
        assert!(table(&d).unwrap().is_some());
    }

    #[test]
    fn gpt_crafted_numbers_do_not_overflow() {
        let good = sample_gpt();
        // The entry array's LBA times the sector size overflows: no table (was a panic).
        let mut d = good.clone();
        put64(&mut d, 512 + 72, u64::MAX / 3);
        fix_gpt_crcs(&mut d, 512);
        assert_eq!(table(&d).unwrap(), None);
        // A huge entry count is refused before anything is allocated.
        let mut d = good.clone();
        put32(&mut d, 512 + 80, u32::MAX);
        fix_gpt_crcs(&mut d, 512);
        assert_eq!(table(&d).unwrap(), None);
        // Entries whose LBAs overflow or are reversed are skipped, the others stay.
        let mut d = good.clone();
        let e = 1024;
        d[e] = 1;
        d[e + 16] = 0x77;
        put64(&mut d, e + 32, u64::MAX);
        put64(&mut d, e + 40, u64::MAX);
        let e = 1024 + 128;
        d[e] = 1;
        put64(&mut d, e + 32, 100);
        put64(&mut d, e + 40, 99);
        fix_gpt_crcs(&mut d, 512);
        let t = table(&d).unwrap().unwrap();
        assert_eq!(t.parts.iter().map(|p| p.number).collect::<Vec<_>>(), [3]);
        // A FAT32 boot sector whose root cluster times its geometry overflows: still vfat.
        let mut f = vec![0u8; 4096];
        f[0] = 0xEB;
        f[11..13].copy_from_slice(&4096u16.to_le_bytes());
        f[13] = 128;
        f[14..16].copy_from_slice(&0xFFFFu16.to_le_bytes());
        f[16] = 2;
        put32(&mut f, 36, u32::MAX);
        put32(&mut f, 44, u32::MAX);
        f[510] = 0x55;
        f[511] = 0xAA;
        assert_eq!(probe(&f).unwrap().unwrap().fstype, "vfat");
        // Offsets past u64/usize in the readers themselves.
        let mut b = [1u8; 8];
        ReadAt::read_at(&vec![5u8; 4], u64::MAX, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
    }

    #[test]
    fn value_quoting() {
        assert_eq!(show_value("LIVE"), "LIVE");
        assert_eq!(show_value("A B"), "\"A B\"");
        assert_eq!(show_value(""), "\"\"");
        assert_eq!(show_value("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn media_names() {
        assert!(is_media_name("vda1") && is_media_name("sr0") && is_media_name("mmcblk0p1"));
        assert!(!is_media_name("loop0") && !is_media_name("dm-0") && !is_media_name("md7"));
    }
}
