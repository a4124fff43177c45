//! Re-installs syslinux (BIOS) on a new FAT file system from the copy already installed on the
//! medium: the medium's `ldlinux.sys` and its partition's boot sector carry everything; only
//! the sector numbers differ. This is what syslinux's own installer (libinstaller/syslxmod.c
//! `syslinux_patch`, fs.c `syslinux_make_bootsect`) does with its built-in copy, redone on
//! bytes we read from the medium, so the live system needs no syslinux binary.
//!
//! ldlinux.sys as installed: the loader image (whole 512-byte sectors), then two ADV sectors.
//! Inside the image, at a dword-aligned offset, the patch area:
//! `magic u32 = 0x3EB202FE, instance u32, data_sectors u16, adv_sectors u16, dwords u32,
//! checksum u32, maxtransfer u16, epaoffset u16`; at `epaoffset` the extended patch area:
//! `advptroffset, diroffset, dirlen, subvoloffset, subvollen, secptroffset, secptrcnt,
//! sect1ptr0, sect1ptr1, raidpatch` (u16 each; the last three are offsets into the boot
//! sector). Sector numbers are relative to the file system (the installer maps the file with
//! libfat, which reads relative to `--offset`); the boot code adds the BPB's hidden sectors.
//!
//! Everything here comes from the medium and is untrusted: offsets are checked against the
//! buffers, arithmetic is checked, nothing panics.


use crate::error::{Error, Result};

const MAGIC: u32 = 0x3EB2_02FE;
const SECTOR: usize = 512;
/// Two ADV copies follow the loader image in the file.
const ADV_BYTES: usize = 2 * SECTOR;
/// `syslinux_extent`: lba u64, len u16, packed.
const EXTENT: usize = 10;
/// ldlinux.sys is loaded at 0x8000; extents may not cross a 64 KiB boundary in memory.
const LOAD_ADDR: u64 = 0x8000;
/// The boot sector bytes that are syslinux's (fs.c: FAT_bsHead, FAT_bsCode): the jump and OEM
/// name, and from the end of the FAT32 extended BPB up to the 0x55AA signature.
const HEAD: std::ops::Range<usize> = 0..11;
const CODE: std::ops::Range<usize> = 90..510;

fn err(object: &str, reason: impl Into<String>) -> Error {
    Error::new(format!("syslinux: {object}"), reason)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?)?.try_into().ok().map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)?.try_into().ok().map(u32::from_le_bytes)
}

fn put(b: &mut [u8], at: usize, v: &[u8]) -> Option<()> {
    b.get_mut(at..at.checked_add(v.len())?)?.copy_from_slice(v);
    Some(())
}

/// The parts of ldlinux.sys the patching needs, all bounds-checked.
struct Areas {
    /// Length of the loader image (the file without its two ADV sectors).
    image_len: usize,
    patch: usize,
    epa: usize,
}

impl Areas {
    fn find(file: &[u8]) -> Result<Areas> {
        let obj = "ldlinux.sys";
        if !file.len().is_multiple_of(SECTOR) || file.len() <= ADV_BYTES {
            return Err(err(obj, format!("{} bytes, not whole sectors of an installed copy", file.len())));
        }
        let image_len = file.len() - ADV_BYTES;
        let image = file.get(..image_len).unwrap_or(&[]);
        let patch = (0..image_len / 4)
            .map(|i| i * 4)
            .find(|&at| u32_at(image, at) == Some(MAGIC))
            .ok_or_else(|| err(obj, "no syslinux patch area (magic not found)"))?;
        let epa = u16_at(image, patch + 22).map(usize::from).ok_or_else(|| err(obj, "patch area cut off"))?;
        if epa.checked_add(20).is_none_or(|end| end > image_len) {
            return Err(err(obj, "extended patch area outside the file (version not supported)"));
        }
        Ok(Areas { image_len, patch, epa })
    }

    fn field(&self, file: &[u8], n: usize) -> usize {
        u16_at(file, self.epa + 2 * n).map_or(usize::MAX, usize::from)
    }
}

/// The installer's extents: runs of consecutive sectors, each loaded to memory without
/// crossing a 64 KiB boundary and shorter than 64 KiB (generate_extents in syslxmod.c).
fn extents(sectors: &[u64]) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let mut addr = LOAD_ADDR;
    let (mut base, mut lba, mut len) = (addr, 0u64, 0u64);
    for &s in sectors {
        if len > 0 {
            let xbytes = (len + 1) * SECTOR as u64;
            if Some(s) == lba.checked_add(len) && xbytes < 65536 && (addr ^ (base + xbytes - 1)) & 0xFFFF_0000 == 0 {
                len += 1;
                addr += SECTOR as u64;
                continue;
            }
            out.push((lba, len as u16));
        }
        base = addr;
        lba = s;
        len = 1;
        addr += SECTOR as u64;
    }
    if len > 0 {
        out.push((lba, len as u16));
    }
    out
}

/// Re-targets installed ldlinux.sys bytes (`image`: the whole file, ADV included) at
/// `sectors`, the file's 512-byte sectors on the new file system, relative to its start (as
/// [`crate::fat::Written::sectors`] gives them). Rewrites the extents, the ADV pointers, the
/// sizes and the checksum; the directory field stays (same /boot/syslinux path). Returns the
/// first sector, which the boot sector points at ([`boot_sector`]).
pub fn patch_ldlinux(image: &mut [u8], sectors: &[u64]) -> Result<u64> {
    let obj = "ldlinux.sys";
    let a = Areas::find(image)?;
    let dw = a.image_len / 4;
    // An installed copy checks out: its dwords sum to the magic.
    let sum = (0..dw).filter_map(|i| u32_at(image, i * 4)).fold(0u32, u32::wrapping_add);
    if sum != MAGIC {
        return Err(err(obj, "checksum wrong: not an installed ldlinux.sys"));
    }
    let nsect = a.image_len / SECTOR + 2;
    if sectors.len() < nsect {
        return Err(err(obj, format!("{} sectors given, the file has {nsect}", sectors.len())));
    }
    let first = *sectors.first().ok_or_else(|| err(obj, "no sectors"))?;
    let body = sectors.get(1..nsect - 2).unwrap_or(&[]);
    let adv = [sectors.get(nsect - 2).copied(), sectors.get(nsect - 1).copied()];
    let ex = extents(body);
    let (secptr, nptrs) = (a.field(image, 5), a.field(image, 6));
    if ex.len() > nptrs {
        return Err(err(obj, format!("{} extents do not fit the {nptrs} slots (file too fragmented)", ex.len())));
    }
    let ex_end = nptrs.checked_mul(EXTENT).and_then(|n| n.checked_add(secptr));
    let advptr = a.field(image, 0);
    if ex_end.is_none_or(|e| e > a.image_len) || advptr.checked_add(16).is_none_or(|e| e > a.image_len) {
        return Err(err(obj, "extent or ADV pointer table outside the file"));
    }
    let bad = || err(obj, "patch area outside the file");
    for k in 0..nptrs {
        let (lba, len) = ex.get(k).copied().unwrap_or((0, 0));
        let mut e = [0u8; EXTENT];
        e[..8].copy_from_slice(&lba.to_le_bytes());
        e[8..].copy_from_slice(&len.to_le_bytes());
        put(image, secptr + k * EXTENT, &e).ok_or_else(bad)?;
    }
    for (k, s) in adv.iter().enumerate() {
        put(image, advptr + 8 * k, &s.unwrap_or(0).to_le_bytes()).ok_or_else(bad)?;
    }
    let p = a.patch;
    put(image, p + 8, &((nsect - 2) as u16).to_le_bytes()).ok_or_else(bad)?;
    put(image, p + 10, &2u16.to_le_bytes()).ok_or_else(bad)?;
    put(image, p + 12, &(dw as u32).to_le_bytes()).ok_or_else(bad)?;
    put(image, p + 16, &0u32.to_le_bytes()).ok_or_else(bad)?;
    let sum = (0..dw).filter_map(|i| u32_at(image, i * 4)).fold(0u32, u32::wrapping_add);
    put(image, p + 16, &MAGIC.wrapping_sub(sum).to_le_bytes()).ok_or_else(bad)?;
    Ok(first)
}

/// Builds the new boot sector: syslinux's jump, OEM name and boot code from `installed_vbr`
/// (the medium partition's sector 0), the BPB of `new_vbr`, and the pointer to ldlinux.sys's
/// first sector (`sect1`, from [`patch_ldlinux`]) where `ldlinux`'s patch area says.
pub fn boot_sector(installed_vbr: &[u8; 512], ldlinux: &[u8], new_vbr: &mut [u8; 512], sect1: u64) -> Result<()> {
    if installed_vbr.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return Err(err("boot sector", "no 0x55AA signature"));
    }
    if installed_vbr.get(82..90) != Some(&b"FAT32   "[..]) {
        return Err(err("boot sector", "not a FAT32 boot sector"));
    }
    if new_vbr.get(82..90) != Some(&b"FAT32   "[..]) {
        return Err(err("new boot sector", "not a FAT32 boot sector"));
    }
    let a = Areas::find(ldlinux)?;
    let (lo, hi) = (a.field(ldlinux, 7), a.field(ldlinux, 8));
    // The pointer must lie in the code syslinux owns, never in the BPB.
    let inside = |at: usize| at >= CODE.start && at.checked_add(4).is_some_and(|e| e <= CODE.end);
    if !inside(lo) || !inside(hi) || lo.abs_diff(hi) < 4 {
        return Err(err("ldlinux.sys", "sector pointer offsets outside the boot code (version not supported)"));
    }
    let mut out = *new_vbr;
    out[HEAD].copy_from_slice(&installed_vbr[HEAD]);
    out[CODE].copy_from_slice(&installed_vbr[CODE]);
    let bad = || err("boot sector", "pointer outside the sector");
    put(&mut out, lo, &(sect1 as u32).to_le_bytes()).ok_or_else(bad)?;
    put(&mut out, hi, &((sect1 >> 32) as u32).to_le_bytes()).ok_or_else(bad)?;
    *new_vbr = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fat::tests::{noise, sh, tmpdir};
    use crate::fat::FatBuilder;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const OFF: u64 = 2048 * 512;

    fn spec(img: &Path) -> String {
        format!("{}@@{OFF}", img.display())
    }

    fn sector0(img: &Path) -> [u8; 512] {
        let mut b = [0u8; 512];
        std::fs::File::open(img).unwrap().read_exact_at(&mut b, OFF).unwrap();
        b
    }

    fn mtype(img: &Path, path: &str) -> Vec<u8> {
        let o = Command::new("mtype").env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(spec(img)).arg(format!("::{path}")).output().unwrap();
        assert!(o.status.success(), "mtype {path}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    fn mtools(tool: &str, img: &Path, args: &[&str]) -> String {
        let (ok, out) = sh(Command::new(tool).arg("-i").arg(spec(img)).args(args));
        assert!(ok, "{tool} {args:?}: {out}");
        out
    }

    /// The file's sectors (relative to the file system) from mshowfat's cluster ranges.
    fn sectors_of(img: &Path, path: &str) -> Vec<u64> {
        let bpb = sector0(img);
        let le16 = |at: usize| u64::from(u16::from_le_bytes([bpb[at], bpb[at + 1]]));
        let fatsz = u64::from(u32::from_le_bytes(bpb[36..40].try_into().unwrap()));
        let (spc, reserved, nfats) = (u64::from(bpb[13]), le16(14), u64::from(bpb[16]));
        let data = reserved + nfats * fatsz;
        let out = mtools("mshowfat", img, &[&format!("::{path}")]);
        let mut v = Vec::new();
        for r in out.split('<').skip(1) {
            let r = r.split('>').next().unwrap();
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            for c in a.trim().parse::<u64>().unwrap()..=b.trim().parse::<u64>().unwrap() {
                v.extend((0..spc).map(|k| data + (c - 2) * spc + k));
            }
        }
        v
    }

    struct Installed {
        img: PathBuf,
        before: [u8; 512],
        after: [u8; 512],
        ldlinux: Vec<u8>,
        sectors: Vec<u64>,
    }

    /// mkfs.fat + Debian's `syslinux --install`, the way `make flash` makes the medium.
    /// `fragment`: leave a hole of a few clusters in front, so ldlinux.sys is split.
    fn install(dir: &Path, name: &str, size_kib: u64, fragment: bool) -> Installed {
        let img = dir.join(name);
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(OFF + size_kib * 1024).unwrap();
        drop(f);
        let (ok, out) = sh(Command::new("mkfs.fat").args(["-F", "32", "-n", "LIVE", "-i", "1234ABCD", "--offset", "2048"]).arg(&img).arg(size_kib.to_string()));
        assert!(ok, "mkfs.fat: {out}");
        mtools("mmd", &img, &["::/boot", "::/boot/syslinux"]);
        if fragment {
            let (a, b) = (dir.join("a"), dir.join("b"));
            std::fs::write(&a, noise(9000, 1)).unwrap();
            std::fs::write(&b, noise(3000, 2)).unwrap();
            mtools("mcopy", &img, &[a.to_str().unwrap(), "::/a"]);
            mtools("mcopy", &img, &[b.to_str().unwrap(), "::/b"]);
            mtools("mdel", &img, &["::/a"]);
            // mtools allocates after FSInfo's next-free hint: point it at the hole.
            let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
            f.write_all_at(&2u32.to_le_bytes(), OFF + 512 + 492).unwrap();
        }
        let before = sector0(&img);
        let (ok, out) = sh(Command::new("syslinux").args(["--install", "--offset", &OFF.to_string(), "--directory", "/boot/syslinux"]).arg(&img));
        assert!(ok, "syslinux: {out}");
        let ldlinux = mtype(&img, "/boot/syslinux/ldlinux.sys");
        let sectors = sectors_of(&img, "/boot/syslinux/ldlinux.sys");
        Installed { after: sector0(&img), img, before, ldlinux, sectors }
    }

    /// Our re-targeting gives what Debian's installer gives, byte for byte: A's installed
    /// copy moved to B's sectors is B's ldlinux.sys, and A's boot code on B's BPB is B's boot
    /// sector (all 512 bytes: the installer also only replaces the code and the pointer).
    #[test]
    fn retargeted_copy_equals_the_real_installers() {
        let dir = tmpdir("syslinux");
        let a = install(&dir, "a.img", 70_000, false);
        for (b, frag) in [(install(&dir, "b.img", 300_000, false), false), (install(&dir, "c.img", 80_000, true), true)] {
            assert_ne!(a.sectors, b.sectors);
            assert!(a.ldlinux != b.ldlinux && a.after != b.after, "the layouts must differ for this to prove anything");
            if frag {
                assert!(b.sectors.windows(2).any(|w| w[1] != w[0] + 1), "c.img was meant to be fragmented: {:?}", b.sectors);
            }
            let mut ldl = a.ldlinux.clone();
            let first = patch_ldlinux(&mut ldl, &b.sectors).unwrap();
            assert_eq!(first, b.sectors[0]);
            assert!(ldl == b.ldlinux, "re-targeted ldlinux.sys differs from the installer's");
            let mut vbr = b.before;
            boot_sector(&a.after, &a.ldlinux, &mut vbr, first).unwrap();
            let diff: Vec<usize> = (0..512).filter(|&i| vbr[i] != b.after[i]).collect();
            assert!(diff.is_empty(), "boot sector differs at {diff:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refusals() {
        let e = |r: Result<u64>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e(patch_ldlinux(&mut [0u8; 100], &[1])), "syslinux: ldlinux.sys: 100 bytes, not whole sectors of an installed copy");
        assert_eq!(e(patch_ldlinux(&mut [0u8; 4096], &[1; 8])), "syslinux: ldlinux.sys: no syslinux patch area (magic not found)");
        let mut f = vec![0u8; 4096];
        f[64..68].copy_from_slice(&MAGIC.to_le_bytes());
        f[86..88].copy_from_slice(&3070u16.to_le_bytes());
        assert!(e(patch_ldlinux(&mut f, &[1; 8])).contains("extended patch area outside the file"));
        f[86..88].copy_from_slice(&200u16.to_le_bytes());
        assert!(e(patch_ldlinux(&mut f.clone(), &[1; 8])).contains("checksum wrong"));
        let mut vbr = [0u8; 512];
        assert!(boot_sector(&[0u8; 512], &f, &mut vbr, 5).unwrap_err().to_string().contains("no 0x55AA"));
    }

    #[test]
    fn extents_split_at_gaps_and_64k() {
        // 200 consecutive sectors: extents stay below 64 KiB (127 sectors). The installer also tests
        // for a 64 KiB memory boundary, but on the new sector alone, which never crosses one.
        let s: Vec<u64> = (1000..1200).collect();
        assert_eq!(extents(&s), vec![(1000, 127), (1127, 73)]);
        assert_eq!(extents(&[5, 6, 9]), vec![(5, 2), (9, 1)]);
        assert!(extents(&[]).is_empty());
    }

    /// SeaBIOS mirrors the screen on the serial port with cursor moves between the characters.
    fn strip_escapes(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            if c == '\u{1b}' {
                if it.peek() == Some(&'[') {
                    it.next();
                    for d in it.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                continue;
            }
            out.push(c);
        }
        out
    }

    fn build_top(targets: &[&str]) -> PathBuf {
        // The workspace root, one up from this crate: its Makefile builds the kernel and image.
        let top = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let (ok, out) = sh(Command::new("make").arg("-s").arg("-C").arg(top).args(targets));
        assert!(ok, "make {targets:?}: {out}");
        top.join("build")
    }

    /// A whole disk made only by our code: syslinux's MBR, one active FAT32 partition at
    /// sector 2048 written by FatBuilder, ldlinux.sys and the boot sector re-targeted from
    /// `a`'s installed copy.
    /// `/EFI` is hidden until the commit; `commit` says whether to write it.
    fn make_disk(dir: &Path, a: &Installed, files: Vec<(String, Vec<u8>)>, append: &str, commit: bool) -> PathBuf {
        let disk = dir.join("disk.img");
        let size: u64 = 96 << 20;
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&disk).unwrap();
        f.set_len(OFF + size).unwrap();
        let mut b = FatBuilder::new("LIVE", 0x5eed).unwrap();
        // The kernel first, so ldlinux.sys lands elsewhere than on the medium.
        for (p, d) in files {
            b.add_file(&p, d).unwrap();
        }
        b.add_file("/boot/syslinux/ldlinux.sys", a.ldlinux.clone()).unwrap();
        b.add_file("/boot/syslinux/ldlinux.c32", mtype(&a.img, "/boot/syslinux/ldlinux.c32")).unwrap();
        let cfg = format!("SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nLABEL linux\n  LINUX /boot/vmlinuz\n  {append}\n");
        b.add_file("/boot/syslinux/syslinux.cfg", cfg.into_bytes()).unwrap();
        b.add_file("/EFI/BOOT/BOOTX64.EFI", noise(50_000, 3)).unwrap();
        b.hide_until_commit("EFI");
        let mut ldl = a.ldlinux.clone();
        let sectors = b.layout(size).unwrap().sectors("/boot/syslinux/ldlinux.sys").unwrap().to_vec();
        assert_ne!(sectors, a.sectors);
        let first = patch_ldlinux(&mut ldl, &sectors).unwrap();
        b.add_file("/boot/syslinux/ldlinux.sys", ldl.clone()).unwrap();
        let mut w = b.write(&f, OFF, size, 2048).unwrap();
        boot_sector(&a.after, &ldl, &mut w.vbr, first).unwrap();
        for at in w.vbr_at {
            f.write_all_at(&w.vbr, at).unwrap();
        }
        let mut mbr = std::fs::read("/usr/lib/syslinux/mbr/mbr.bin").unwrap();
        mbr.resize(512, 0);
        let mut entry = [0u8; 16];
        entry[0] = 0x80;
        entry[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        entry[4] = 0x0C;
        entry[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        entry[8..12].copy_from_slice(&2048u32.to_le_bytes());
        entry[12..16].copy_from_slice(&((size / 512) as u32).to_le_bytes());
        mbr[446..462].copy_from_slice(&entry);
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        f.write_all_at(&mbr, 0).unwrap();
        if commit {
            for (at, d) in &w.commit {
                f.write_all_at(d, *at).unwrap();
            }
        }
        drop(f);
        crate::fat::tests::fsck_clean(&disk, OFF, size);
        disk
    }

    /// Boots `disk` (IDE, SeaBIOS, no -kernel) until the serial log shows every marker or
    /// `secs` pass; returns the log without escape sequences.
    fn boot(disk: &Path, markers: &[&str], secs: u64) -> String {
        let serial = disk.with_extension("serial");
        let _ = std::fs::remove_file(&serial);
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-nodefaults", "-display", "none", "-no-reboot", "-m", "768", "-vga", "std"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=ide", disk.display()))
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut log = String::new();
        while std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(500));
            log = strip_escapes(&String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()));
            if markers.iter().all(|m| log.contains(m)) || child.try_wait().ok().flatten().is_some() {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        log
    }

    /// syslinux loads from a FAT it never installed: it reads its config (SERIAL: it speaks on
    /// ttyS0), loads the kernel from our FAT, and the kernel starts (its first line).
    #[test]
    fn seabios_boots_our_fat_with_syslinux() {
        let dir = tmpdir("seabios");
        let a = install(&dir, "a.img", 70_000, false);
        let build = build_top(&["kernel"]);
        let files = vec![("/boot/vmlinuz".to_owned(), std::fs::read(build.join("kernel/vmlinuz")).unwrap())];
        let disk = make_disk(&dir, &a, files, "APPEND console=ttyS0 panic=-1", true);
        let log = boot(&disk, &["Linux version"], 300);
        assert!(log.contains("Loading /boot/vmlinuz... ok"), "syslinux did not run from our FAT:\n{log}");
        assert!(log.contains("Linux version"), "the kernel did not start from our FAT:\n{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The whole flash made by our code boots the live system: Linux's vfat driver finds
    /// the partition by label, reads the long-named LiveOS files (verity sidecars included)
    /// and /init reaches the real init. The EFI directory is left uncommitted: what a power
    /// cut leaves behind mounts fine.
    #[test]
    fn our_fat_flash_boots_the_live_system() {
        let dir = tmpdir("liveboot");
        let a = install(&dir, "a.img", 70_000, false);
        let build = build_top(&["kernel", "image", "initramfs"]);
        let mut files = vec![
            ("/boot/vmlinuz".to_owned(), std::fs::read(build.join("kernel/vmlinuz")).unwrap()),
            ("/boot/initrd.img".to_owned(), std::fs::read(build.join("initramfs.cpio.gz")).unwrap()),
        ];
        let live = dir.join("live");
        std::fs::create_dir_all(&live).unwrap();
        let fat = build.join("live-flash-fat.img");
        let (ok, out) = sh(Command::new("mcopy").arg("-s").arg("-i").arg(&fat).arg("::/LiveOS").arg(&live));
        assert!(ok, "mcopy: {out}");
        for e in std::fs::read_dir(live.join("LiveOS")).unwrap() {
            let e = e.unwrap();
            files.push((format!("/LiveOS/{}", e.file_name().to_string_lossy()), std::fs::read(e.path()).unwrap()));
        }
        assert!(files.iter().any(|(p, _)| p.ends_with("squashfs.img.verity")), "{:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
        let disk = make_disk(&dir, &a, files, "INITRD /boot/initrd.img\n  APPEND root=live:LABEL=LIVE console=ttyS0 panic=-1 loglevel=4 liveroot.stamps", false);
        let log = boot(&disk, &["liveroot-stamp init-exec"], 420);
        assert!(log.contains("liveroot-stamp init-exec"), "the live system did not come up from our FAT:\n{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
