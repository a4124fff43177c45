//! The disk layouts liveroot writes, in one place: the flash (`make flash`, [`write_flash`]) and
//! the disk `migrate` installs to.
//!
//! The flash: one MBR partition from 1 MiB to the end, type 0x0c (FAT32, LBA), active, FAT32
//! labelled LABEL, with the kernel, the initramfs, syslinux's files and systemd-boot at
//! `/EFI/BOOT/BOOTX64.EFI`, and `/LiveOS`; the MBR's code is syslinux's mbr.bin. What the other
//! tools rely on: the boot finds the partition by `LABEL=`, syncflash writes beside the image in
//! LiveOS, migrate reads [`KERNEL`], [`INITRD`], [`LDLINUX_SYS`], [`LDLINUX_C32`], [`MBR_BIN`]
//! and [`EFI_BOOT`] from it. (`syslinux --install` then adds ldlinux.sys and the partition's
//! boot code: mk/mkflash.sh.)
//!
//! The installed disk: what `migrate` puts around the root partition when its target is
//! a whole disk. One MBR table (what both firmwares boot): partition 1 a FAT32 boot partition
//! with the kernel and the initramfs the box booted with, syslinux for BIOS and systemd-boot for
//! UEFI (both taken from the live medium, nothing built here); partition 2 the root, which joins
//! the mirror. Both boot entries say `root=UUID=` of the root filesystem plus the running
//! kernel's own options, minus the live ones.
//!
//! Power cuts: until [`Prepared::commit`], the MBR's code is `int 18h` ("not bootable, try the
//! next device") and the EFI directory is not in the boot partition's root directory, so no
//! firmware starts anything from the disk. The commit is three single-sector writes (the boot
//! sector, the root directory sector that shows EFI, the MBR), each of which leaves either a
//! complete boot path or none.

use crate::error::{Context, Error, Result};
use crate::fat::FatBuilder;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The boot partition starts at 1 MiB and takes this much (two kernels and initramfs fit).
pub const BOOT_START: u64 = 2048;
pub const BOOT_MIB: u64 = 128;
const SECTOR: u64 = 512;
/// Partitions start and end on 1 MiB boundaries.
const ALIGN: u64 = 2048;
pub const BOOT_LABEL: &str = "BOOT";
pub const TYPE_ESP: u8 = 0xef;
/// FAT32 addressed by LBA: the flash's one partition.
pub const TYPE_FAT32_LBA: u8 = 0x0c;
pub const TYPE_LINUX: u8 = 0x83;
/// The MBR code until the commit: `int 18h`, which BIOSes take as "no boot here, next device".
const NOT_BOOTABLE: [u8; 2] = [0xcd, 0x18];

/// Where the medium keeps what the installed disk needs (the `make flash` layout).
pub const KERNEL: &str = "boot/vmlinuz";
pub const INITRD: &str = "boot/initrd.img";
pub const LDLINUX_SYS: &str = "boot/syslinux/ldlinux.sys";
pub const LDLINUX_C32: &str = "boot/syslinux/ldlinux.c32";
pub const MBR_BIN: &str = "boot/syslinux/mbr.bin";
pub const EFI_BOOT: &str = "EFI/BOOT/BOOTX64.EFI";

/// Where a Secure Boot medium keeps its signed unified image (`make flash SB_KEY=`).
pub const UKI: &str = "EFI/Linux/liveroot.efi";

/// What preflight read from the medium; held in memory, so the medium can go before the commit.
pub struct BootFiles {
    /// systemd-boot (signed, on a Secure Boot medium).
    pub efi: Vec<u8>,
    pub kernel_release: String,
    pub boot: Boot,
}

/// How the disk boots.
pub enum Boot {
    /// BIOS and UEFI, MBR: the kernel and initramfs with `root=UUID=` entries for syslinux and
    /// systemd-boot.
    Plain {
        kernel: Vec<u8>,
        initrd: Vec<u8>,
        ldlinux_sys: Vec<u8>,
        ldlinux_c32: Vec<u8>,
        mbr_code: [u8; 440],
        /// The medium partition's boot sector: syslinux's boot code.
        vbr: [u8; 512],
    },
    /// Secure Boot, UEFI only, GPT: the signed unified image the box booted, started by the
    /// signed systemd-boot; its sealed command line names the live medium, so the installed root
    /// is found through EFI variables ([`crate::efivar`]).
    Signed { uki: Vec<u8>, uki_path: String },
}

/// GPT partition types (the Discoverable Partitions Specification's names).
pub const GPT_ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
pub const GPT_ROOT_X86_64: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";

fn read_file(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| {
        Error::new(path.display().to_string(), format!("{}: no {what} to install", crate::error::io_reason(&e)))
    })?;
    let mut v = Vec::new();
    f.take(max.saturating_add(1)).read_to_end(&mut v).ctx(path.display())?;
    if v.len() as u64 > max {
        return Err(Error::new(path.display().to_string(), format!("bigger than {} MiB: not a {what}", max >> 20)));
    }
    if v.is_empty() {
        return Err(Error::new(path.display().to_string(), format!("empty: no {what} to install")));
    }
    Ok(v)
}

/// The release string in a bzImage's setup header ("6.1.0-56-amd64 (debian-kernel@...) ...").
pub fn bzimage_release(k: &[u8]) -> Option<String> {
    if k.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let p = u16::from_le_bytes([*k.get(0x20e)?, *k.get(0x20f)?]) as usize;
    let s = k.get(p.checked_add(0x200)?..)?;
    let end = s.iter().take(256).position(|&b| b == 0 || b == b' ')?;
    let r = std::str::from_utf8(s.get(..end)?).ok()?;
    (!r.is_empty()).then(|| r.to_owned())
}

/// The kernel and initramfs on the medium mounted at `m` that run here (`release`): candidates in
/// order, the first whose bzImage says `release`; none: the fixed names (the refusal then names
/// what they hold).
fn kernel_pair(m: &Path, release: &str) -> (String, String) {
    let mut cands: Vec<(String, String)> = Vec::new();
    if let Ok(cfg) = std::fs::read_to_string(m.join(crate::loader::SYSLINUX_CFG)) {
        if let (Some(k), Some(i)) = crate::loader::named(&cfg) {
            cands.push((k.trim_start_matches('/').to_owned(), i.trim_start_matches('/').to_owned()));
        }
    }
    cands.push((KERNEL.to_owned(), INITRD.to_owned()));
    for sfx in crate::pairs::SUFFIXES {
        cands.push((format!("LiveOS/vmlinuz{sfx}"), format!("LiveOS/initrd.img{sfx}")));
    }
    let head = |p: &Path| -> Option<Vec<u8>> {
        let mut v = vec![0u8; 0x10000];
        let n = std::fs::File::open(p).ok()?.read(&mut v).ok()?;
        v.truncate(n);
        Some(v)
    };
    cands
        .iter()
        .filter(|(k, i)| !k.split('/').any(|c| c == "..") && !i.split('/').any(|c| c == "..") && m.join(i).is_file())
        .find(|(k, _)| head(&m.join(k)).and_then(|h| bzimage_release(&h)).as_deref() == Some(release))
        .cloned()
        .unwrap_or_else(|| (KERNEL.to_owned(), INITRD.to_owned()))
}

/// Read and check everything the disk will need, from the mounted medium and its partition.
/// Any miss: the reason, and `--no-bootloader` as the way out.
/// `booted` is the state's booted= (local, ram, net).
pub fn gather(medium_mount: &str, medium_dev: &str, booted: &str, signed: bool) -> Result<BootFiles> {
    let way_out = "use --no-bootloader to install the filesystem only";
    if medium_mount.is_empty() || !crate::fsutil::is_mountpoint(Path::new(medium_mount)) {
        let what = match booted {
            "ram" => "the medium was released (rd.live.ram)".to_owned(),
            _ if medium_dev.is_empty() => "no live medium (a network boot)".to_owned(),
            _ if medium_mount.is_empty() => format!("{medium_dev} is not mounted"),
            _ => format!("{medium_mount} is not mounted (the medium was released)"),
        };
        return Err(Error::new(
            "boot files",
            format!("{what}: the kernel, initramfs and boot code to install are not reachable; {way_out}"),
        ));
    }
    let m = PathBuf::from(medium_mount);
    let get = |rel: &str, max: u64, what: &str| {
        read_file(&m.join(rel), max, what).map_err(|e| Error::new(e.object, format!("{}; {way_out}", e.reason)))
    };
    // The kernel this system runs, with the initramfs that belongs to it: the loader's (as its
    // entry names them: mark-good may have switched it to /boot/vmlinuz-N), else a pair's own
    // (a release started by kexec: core/src/boot/kexec.rs), else the flash's fixed names.
    let running = crate::modprobe::kernel_release();
    if signed {
        return gather_signed(&m, &running, way_out);
    }
    let (krel, irel) = kernel_pair(&m, &running);
    let kernel = get(&krel, 256 << 20, "kernel")?;
    let initrd = get(&irel, 1 << 30, "initramfs")?;
    let ldlinux_sys = get(LDLINUX_SYS, 1 << 20, "syslinux loader (BIOS boot code)")?;
    let ldlinux_c32 = get(LDLINUX_C32, 4 << 20, "syslinux module (BIOS boot code)")?;
    let mbr = get(MBR_BIN, 512, "master boot record code")?;
    let efi = get(EFI_BOOT, 64 << 20, "UEFI boot loader")?;
    let kpath = m.join(&krel).display().to_string();
    let release = bzimage_release(&kernel)
        .ok_or_else(|| Error::new(&kpath, format!("not a Linux kernel image (no bzImage header); {way_out}")))?;
    if release != running {
        return Err(Error::new(
            &kpath,
            format!("is kernel {release}, but {running} is running: the disk would boot another kernel than this system's; {way_out}"),
        ));
    }
    let mut mbr_code = [0u8; 440];
    let n = mbr.len().min(440);
    mbr_code[..n].copy_from_slice(&mbr[..n]);
    let mut vbr = [0u8; 512];
    std::fs::File::open(medium_dev)
        .and_then(|f| f.read_exact_at(&mut vbr, 0))
        .map_err(|e| Error::new(medium_dev, format!("cannot read its boot sector: {}; {way_out}", crate::error::io_reason(&e))))?;
    // The boot code must re-target here, before anything is written.
    let mut probe_sys = ldlinux_sys.clone();
    let sectors: Vec<u64> = (0..probe_sys.len().div_ceil(512) as u64).map(|i| 100_000 + i).collect();
    let sect1 = crate::syslinux::patch_ldlinux(&mut probe_sys, &sectors)
        .map_err(|e| Error::new(m.join(LDLINUX_SYS).display().to_string(), format!("{}; {way_out}", e.reason)))?;
    let mut probe_vbr = vbr;
    crate::syslinux::boot_sector(&vbr, &probe_sys, &mut probe_vbr, sect1)
        .map_err(|e| Error::new(medium_dev, format!("{}; {way_out}", e.reason)))?;
    Ok(BootFiles { efi, kernel_release: release, boot: Boot::Plain { kernel, initrd, ldlinux_sys, ldlinux_c32, mbr_code, vbr } })
}

/// A Secure Boot medium's signed loader and the signed unified image that runs here: the one
/// the medium's entry starts (mark-good may have switched it to liveroot-N.efi), else the
/// medium's first, else a pair's own (a release started by kexec), the first whose kernel is
/// the running one. Nothing is re-signed here: the box holds no key.
fn gather_signed(m: &Path, running: &str, way_out: &str) -> Result<BootFiles> {
    let get = |rel: &str, max: u64, what: &str| {
        read_file(&m.join(rel), max, what).map_err(|e| Error::new(e.object, format!("{}; {way_out}", e.reason)))
    };
    let efi = get(EFI_BOOT, 64 << 20, "UEFI boot loader")?;
    let mut cands: Vec<String> = Vec::new();
    if let Some(e) = std::fs::read_to_string(m.join(crate::loader::SDBOOT_ENTRY)).ok().as_deref().and_then(crate::loader::named_efi) {
        cands.push(e.trim_start_matches('/').to_owned());
    }
    cands.push(UKI.to_owned());
    for sfx in crate::pairs::SUFFIXES {
        cands.push(format!("LiveOS/{}{sfx}", crate::manifest::UKI));
    }
    let mut seen = Vec::new();
    for c in cands.iter().filter(|c| !c.split('/').any(|x| x == "..")) {
        let Ok(img) = read_file(&m.join(c), 1 << 30, "unified kernel image") else { continue };
        let release = crate::pe::section_data(&img, ".linux").and_then(bzimage_release);
        if release.as_deref() == Some(running) {
            return Ok(BootFiles { efi, kernel_release: running.to_owned(), boot: Boot::Signed { uki: img, uki_path: format!("/{c}") } });
        }
        seen.push(format!("/{c} ({})", release.as_deref().unwrap_or("no kernel inside")));
    }
    let what = if seen.is_empty() { format!("no signed image (/{UKI}) on the medium") } else { format!("no signed image of kernel {running}: {}", seen.join(", ")) };
    Err(Error::new(
        m.display().to_string(),
        format!("{what}; under Secure Boot the disk can only start the medium's signed image; {way_out}"),
    ))
}

/// The kernel options the installed system keeps: everything but root=, the live ones and what
/// a boot loader adds by itself.
pub fn kept_options(cmdline: &str) -> Vec<String> {
    let drop_key = |k: &str| {
        matches!(k, "root" | "rootfstype" | "rootflags" | "ro" | "rw" | "BOOT_IMAGE" | "initrd" | "ip" | "rd.break" | "rd.shell")
            || k.starts_with("rd.live.")
            || k.starts_with("live.")
    };
    crate::cmdline::split(cmdline)
        .into_iter()
        .filter(|(k, _)| !drop_key(k))
        .map(|(k, v)| match v {
            Some(v) if v.contains(char::is_whitespace) => format!("{k}=\"{v}\""),
            Some(v) => format!("{k}={v}"),
            None => k,
        })
        .collect()
}

/// The serial line syslinux should talk on: `console=ttyS1,57600` → "1 57600".
fn serial_for(options: &[String]) -> Option<String> {
    options.iter().rev().find_map(|o| {
        let rest = o.strip_prefix("console=ttyS")?;
        let (port, speed) = rest.split_once(',').unwrap_or((rest, "115200"));
        let port: u8 = port.parse().ok()?;
        let digits = speed.find(|c: char| !c.is_ascii_digit()).unwrap_or(speed.len());
        let speed: u32 = speed.get(..digits)?.parse().ok()?;
        Some(format!("{port} {speed}"))
    })
}

/// syslinux.cfg and the systemd-boot files for `options` (root= first): one entry titled
/// `title`, the same command line for both firmwares. The flash and the installed disk both.
pub fn configs(title: &str, options: &str, serial: Option<&str>) -> Vec<(&'static str, Vec<u8>)> {
    let mut sys = String::from("# Written by liveroot.\n");
    if let Some(s) = serial {
        sys.push_str(&format!("SERIAL {s}\n"));
    }
    sys.push_str(&format!(
        "PROMPT 0\nTIMEOUT 10\nDEFAULT liveroot\nLABEL liveroot\n  KERNEL /{KERNEL}\n  INITRD /{INITRD}\n  APPEND {options}\n"
    ));
    let loader = "default liveroot.conf\ntimeout 0\n".to_owned();
    let entry = format!("# Written by liveroot.\ntitle {title}\nlinux /{KERNEL}\ninitrd /{INITRD}\noptions {options}\n");
    vec![
        ("boot/syslinux/syslinux.cfg", sys.into_bytes()),
        ("loader/loader.conf", loader.into_bytes()),
        ("loader/entries/liveroot.conf", entry.into_bytes()),
    ]
}

/// The flash's kernel command line: the medium by its label, the consoles, then `append`.
pub fn flash_cmdline(label: &str, append: &str) -> String {
    let mut c = format!("root=live:LABEL={label} console=tty0 console=ttyS0,115200");
    if !append.is_empty() {
        c.push(' ');
        c.push_str(append);
    }
    c
}

/// The flash's boot entries for `cmdline` ([`configs`], syslinux on the first serial port).
pub fn flash_configs(cmdline: &str) -> Vec<(String, Vec<u8>)> {
    configs("liveroot", cmdline, Some("0 115200")).into_iter().map(|(p, d)| (format!("/{p}"), d)).collect()
}

/// [`flash_configs`] for a Secure Boot flash: syslinux's entry as it is (BIOS checks nothing),
/// and the systemd-boot entry starting the signed unified kernel image `uki` (an absolute path
/// on the FAT), which carries `cmdline` itself: the entry has no `options` line, and under
/// Secure Boot systemd's stub ignores any it were given. With `recovery` (a second signed image
/// whose command line adds `liveroot.recovery`), a second entry [`RECOVERY_ENTRY`] starts it;
/// loader.conf's default stays the first.
pub fn flash_configs_uki(cmdline: &str, uki: &str, recovery: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut c = flash_configs(cmdline);
    for (p, d) in &mut c {
        if p.trim_start_matches('/') == crate::loader::SDBOOT_ENTRY {
            *d = format!("# Written by liveroot. The command line is the image's own (signed).\ntitle liveroot\nefi {uki}\n").into_bytes();
        }
    }
    if let Some(r) = recovery {
        let text = format!(
            "# Written by liveroot. A shell for the recovery password (the image's own command line ends in liveroot.recovery).\ntitle liveroot recovery\nefi {r}\n"
        );
        c.push((format!("/{RECOVERY_ENTRY}"), text.into_bytes()));
    }
    c
}

/// The systemd-boot entry of the signed recovery image (Secure Boot flash).
pub const RECOVERY_ENTRY: &str = "loader/entries/liveroot-recovery.conf";

/// One MBR partition entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    pub start: u64,
    pub sectors: u64,
    pub kind: u8,
}

/// The two partitions on a disk of `disk_sectors`: boot, then root up to the last whole MiB
/// (MBR addresses at most 2 TiB: beyond that the root stops there).
pub fn layout(disk_sectors: u64) -> Option<[Part; 2]> {
    let boot = Part { start: BOOT_START, sectors: BOOT_MIB * 2048, kind: TYPE_ESP };
    let root_start = boot.start + boot.sectors;
    let end = (disk_sectors.min(u64::from(u32::MAX)) / ALIGN) * ALIGN;
    let root = Part { start: root_start, sectors: end.checked_sub(root_start)?, kind: TYPE_LINUX };
    (root.sectors >= ALIGN).then_some([boot, root])
}

/// CHS of an LBA for the legacy fields (255 heads, 63 sectors; past cylinder 1023 the maximum).
fn chs(lba: u64) -> [u8; 3] {
    let c = lba / (255 * 63);
    if c > 1023 {
        return [254, 0xff, 0xff];
    }
    let h = (lba / 63) % 255;
    let s = lba % 63 + 1;
    [h as u8, (s as u8) | (((c >> 2) & 0xc0) as u8), (c & 0xff) as u8]
}

/// The MBR: `code` (440 bytes), a disk signature, the partitions (four at most; more are not
/// written), 0x55AA. `active`: partition 1 gets the boot flag (what mbr.bin looks for).
pub fn mbr(code: &[u8; 440], signature: u32, parts: &[Part], active: bool) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[..440].copy_from_slice(code);
    s[440..444].copy_from_slice(&signature.to_le_bytes());
    for (i, p) in parts.iter().take(4).enumerate() {
        let e = &mut s[446 + 16 * i..462 + 16 * i];
        e[0] = if active && i == 0 { 0x80 } else { 0 };
        e[1..4].copy_from_slice(&chs(p.start));
        e[4] = p.kind;
        e[5..8].copy_from_slice(&chs(p.start + p.sectors - 1));
        e[8..12].copy_from_slice(&(p.start as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(p.sectors as u32).to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

/// The flash's one partition on a disk of `disk_sectors`: 1 MiB to the end (at most what MBR
/// addresses).
pub fn flash_layout(disk_sectors: u64) -> Option<Part> {
    let end = disk_sectors.min(u64::from(u32::MAX));
    let sectors = end.checked_sub(BOOT_START).filter(|&n| n >= ALIGN)?;
    Some(Part { start: BOOT_START, sectors, kind: TYPE_FAT32_LBA })
}

/// The flash's disk identifier and FAT volume id, from its timestamp: the same epoch gives the
/// same ids.
pub fn flash_id(time: i64) -> u32 {
    (time ^ 0x4c49_5645) as u32
}

/// What goes on a flash ([`write_flash`]).
pub struct Flash {
    /// FAT label, what `root=live:LABEL=` names.
    pub label: String,
    /// The MBR's disk identifier and the FAT volume id.
    pub id: u32,
    /// Every timestamp in the file system (seconds since 1970).
    pub time: i64,
    /// The MBR's boot code (syslinux's mbr.bin).
    pub mbr_code: [u8; 440],
    /// (path in the file system, contents), written in this order.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The default flash size, MiB: the 1 MiB before the partition, the files, room for syncflash to
/// write a second LiveOS beside the first, 5% for the file system and 8 MiB spare; at least 64
/// (FAT32 needs 65525 clusters).
pub fn flash_default_mib(files: &[(String, Vec<u8>)]) -> u64 {
    let sum = |live: bool| -> u64 {
        files.iter().filter(|(p, _)| p.trim_start_matches('/').starts_with("LiveOS/") == live).map(|(_, d)| d.len() as u64).sum()
    };
    let (boot, live) = (sum(false), sum(true));
    let mib = boot.saturating_add(live.saturating_mul(2)).saturating_mul(105) / 100 / (1 << 20) + 1 + 8;
    mib.max(64)
}

/// Write the flash image `out` (created, `mib` MiB): the MBR and the FAT32 partition with every
/// file. The same [`Flash`] gives the same bytes.
pub fn write_flash(out: &Path, flash: &Flash, mib: u64) -> Result<()> {
    let o = out.display().to_string();
    let bytes = mib.checked_mul(1 << 20).ok_or_else(|| Error::new(&o, format!("{mib} MiB: too large")))?;
    let part = flash_layout(bytes / SECTOR).ok_or_else(|| Error::new(&o, format!("{mib} MiB: too small for a partition")))?;
    let mut fat = FatBuilder::new(&flash.label, flash.id)?;
    fat.set_time(flash.time);
    for (path, data) in &flash.files {
        fat.add_file(path, data.clone())?;
    }
    let size = part.sectors * SECTOR;
    // Refuse before creating anything: the error says how much the files need.
    fat.layout(size).map_err(|e| Error::new(&o, format!("{mib} MiB: {}", e.reason)))?;
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(out).ctx(&o)?;
    f.set_len(bytes).ctx(&o)?;
    // The boot sector keeps the stub that hands over to the next boot device until
    // `syslinux --install` puts its code there.
    fat.write(&f, part.start * SECTOR, size, part.start as u32)?;
    write_at(&f, &o, &mbr(&flash.mbr_code, flash.id, &[part], true), 0)?;
    f.sync_all().ctx(&o)
}

/// What a whole-disk install needs, gathered before anything is written.
pub struct Plan {
    pub files: BootFiles,
    /// The root filesystem's UUID, for `root=UUID=`.
    pub uuid: String,
    /// The running kernel's options the entries keep ([`kept_options`]).
    pub options: Vec<String>,
    pub disk_bytes: u64,
    /// From [`layout`] of the disk's size ([`gpt_layout`] for a signed install).
    pub parts: [Part; 2],
}

/// The disk after [`prepare`]: partitioned, boot partition written, nothing bootable yet.
pub struct Prepared {
    pub disk: String,
    pub boot_part: String,
    pub root_part: String,
    pub root_bytes: u64,
    /// The boot partition's FAT volume id as blkid and findfs show it (`UUID=XXXX-XXXX`).
    pub boot_uuid: String,
    /// A signed install: the ESP and the root partition the box's variable will name.
    pub installed: Option<crate::efivar::Installed>,
    /// The MBR with syslinux's code (a plain install).
    mbr_final: Option<[u8; 512]>,
    /// The boot sector with syslinux's code, and where it goes (the sector and its backup).
    vbr_final: Option<([u8; 512], [u64; 2])>,
    commit: Vec<(u64, Vec<u8>)>,
}

fn write_at(f: &std::fs::File, obj: &str, data: &[u8], off: u64) -> Result<()> {
    f.write_all_at(data, off).map_err(|e| Error::new(obj, format!("write at byte {off}: {}", crate::error::io_reason(&e))))
}

/// Sysfs name of partition `n` of `disk` (vdb1, nvme0n1p1, mmcblk0p1).
fn part_name(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) { format!("{disk}p{n}") } else { format!("{disk}{n}") }
}

/// The two partitions of a signed (GPT) install on a disk of `disk_sectors`: the ESP, then the
/// root up to the last whole MiB before the backup table (33 sectors at the end).
pub fn gpt_layout(disk_sectors: u64) -> Option<[Part; 2]> {
    let boot = Part { start: BOOT_START, sectors: BOOT_MIB * 2048, kind: TYPE_ESP };
    let root_start = boot.start + boot.sectors;
    let end = (disk_sectors.checked_sub(GPT_SECTORS + 1)? / ALIGN) * ALIGN;
    let root = Part { start: root_start, sectors: end.checked_sub(root_start)?, kind: TYPE_LINUX };
    (root.sectors >= ALIGN).then_some([boot, root])
}

/// One GPT's entry array: 128 entries of 128 bytes (32 sectors), as every tool writes it.
const GPT_ENTRIES: u32 = 128;
/// The entry array and the header.
const GPT_SECTORS: u64 = 33;

/// A GPT partition: where, its type, its unique GUID and its name.
pub struct GptPart<'a> {
    pub part: Part,
    pub kind: [u8; 16],
    pub uuid: [u8; 16],
    pub name: &'a str,
}

/// The protective MBR and both GPT copies for `parts` on a disk of `disk_sectors`: (sectors 0-33,
/// the last 33 sectors). The UEFI specification's layout: entries at LBA 2, backup header at the
/// last LBA with its entries just before it.
pub fn gpt(disk_sectors: u64, disk_guid: [u8; 16], parts: &[GptPart]) -> Option<(Vec<u8>, Vec<u8>)> {
    let last = disk_sectors.checked_sub(1)?;
    let first_usable = 2 + GPT_SECTORS - 1;
    let last_usable = last.checked_sub(GPT_SECTORS)?;
    let mut entries = vec![0u8; GPT_ENTRIES as usize * 128];
    for (i, p) in parts.iter().enumerate().take(GPT_ENTRIES as usize) {
        let e = &mut entries[i * 128..(i + 1) * 128];
        let end = p.part.start.checked_add(p.part.sectors)?.checked_sub(1)?;
        if p.part.start < first_usable || end > last_usable {
            return None;
        }
        e[0..16].copy_from_slice(&p.kind);
        e[16..32].copy_from_slice(&p.uuid);
        e[32..40].copy_from_slice(&p.part.start.to_le_bytes());
        e[40..48].copy_from_slice(&end.to_le_bytes());
        for (j, u) in p.name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
        }
    }
    let entries_crc = crc32fast::hash(&entries);
    let header = |mine: u64, alt: u64, entries_at: u64| -> [u8; 512] {
        let mut h = [0u8; 512];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&mine.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid);
        h[72..80].copy_from_slice(&entries_at.to_le_bytes());
        h[80..84].copy_from_slice(&GPT_ENTRIES.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    // The protective MBR: one 0xEE partition over the disk (at most what 32 bits say).
    let mut pmbr = [0u8; 512];
    {
        let e = &mut pmbr[446..462];
        e[1..4].copy_from_slice(&[0, 2, 0]);
        e[4] = 0xee;
        e[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        e[8..12].copy_from_slice(&1u32.to_le_bytes());
        e[12..16].copy_from_slice(&(last.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    }
    pmbr[510] = 0x55;
    pmbr[511] = 0xaa;
    let mut head = pmbr.to_vec();
    head.extend_from_slice(&header(1, last, 2));
    head.extend_from_slice(&entries);
    let mut tail = entries;
    tail.extend_from_slice(&header(last, 1, last - GPT_SECTORS + 1));
    Some((head, tail))
}

/// Partition the disk, write the boot partition (EFI hidden, no boot code in the MBR) and wait
/// for the kernel's partition devices. A signed install gets GPT (UEFI only: the box runs
/// Secure Boot, and systemd-boot names its partition only on GPT), a plain one MBR.
pub fn prepare(disk_path: &Path, disk_kname: &str, plan: &Plan) -> Result<Prepared> {
    let Plan { files, uuid: root_uuid, options, disk_bytes: bytes, parts } = plan;
    let (bytes, parts) = (*bytes, *parts);
    let disk = disk_path.display().to_string();
    let f = std::fs::OpenOptions::new().read(true).write(true).open(disk_path).ctx(&disk)?;
    let uuid_hex: String = root_uuid.chars().filter(char::is_ascii_hexdigit).collect();
    let signature = u32::from_str_radix(uuid_hex.get(..8).unwrap_or("4c495645"), 16).unwrap_or(0x4c49_5645);

    // Old boot code and partition tables go first (a GPT at both ends, anything before 1 MiB).
    let zero = vec![0u8; (ALIGN * SECTOR) as usize];
    write_at(&f, &disk, &zero, 0)?;
    if bytes > 64 * SECTOR {
        write_at(&f, &disk, &zero[..(34 * SECTOR) as usize], bytes - 34 * SECTOR)?;
    }
    let mut installed = None;
    match &files.boot {
        Boot::Plain { .. } => {
            let mut stub = [0u8; 440];
            stub[..2].copy_from_slice(&NOT_BOOTABLE);
            write_at(&f, &disk, &mbr(&stub, signature, &parts, false), 0)?;
        }
        Boot::Signed { .. } => {
            let (esp, root) = (crate::efivar::random_guid()?, crate::efivar::random_guid()?);
            let guid = |t: &str| crate::efivar::guid_bytes(t).ok_or_else(|| Error::new(t, "not a GUID"));
            let gp = [
                GptPart { part: parts[0], kind: guid(GPT_ESP)?, uuid: esp, name: "EFI System Partition" },
                GptPart { part: parts[1], kind: guid(GPT_ROOT_X86_64)?, uuid: root, name: "liveroot root" },
            ];
            let (head, tail) = gpt(bytes / SECTOR, crate::efivar::random_guid()?, &gp)
                .ok_or_else(|| Error::new(&disk, "the partitions do not fit a GPT on this disk"))?;
            write_at(&f, &disk, &tail, (bytes / SECTOR - GPT_SECTORS) * SECTOR)?;
            write_at(&f, &disk, &head, 0)?;
            // The key's digest is filled in at the commit, when the key is written to the root.
            installed = Some(crate::efivar::Installed { esp: crate::efivar::guid_text(&esp), root: crate::efivar::guid_text(&root), key: String::new() });
        }
    }
    f.sync_all().ctx(&disk)?;
    crate::sys::blk::reread_partitions(&f).map_err(|e| {
        Error::new(&disk, format!("the kernel cannot re-read its partition table: {} (a partition in use?)", e.desc()))
    })?;
    drop(f);
    let (bname, rname) = (part_name(disk_kname, 1), part_name(disk_kname, 2));
    let mut tries = 0;
    while !(crate::sys::sysfs::is_block_name(&bname) && crate::sys::sysfs::is_block_name(&rname)) {
        tries += 1;
        if tries > 50 {
            return Err(Error::new(&disk, format!("partitions {bname} and {rname} did not appear after the table was written")));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let boot_part = crate::sys::sysfs::dev_node(&bname)?;
    let root_part = crate::sys::sysfs::dev_node(&rname)?;

    // The boot partition, EFI hidden until the commit.
    let volume_id = u32::from_str_radix(uuid_hex.get(8..16).unwrap_or("0"), 16).unwrap_or(0);
    let mut fat = FatBuilder::new(BOOT_LABEL, volume_id)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    fat.set_time(i64::try_from(now).unwrap_or(0));
    fat.add_file(EFI_BOOT, files.efi.clone())?;
    let bsize = parts[0].sectors * SECTOR;
    let root_bytes = parts[1].sectors * SECTOR;
    let boot_uuid = fat_uuid(volume_id);
    let bf = std::fs::OpenOptions::new().read(true).write(true).open(&boot_part).ctx(&boot_part)?;
    match &files.boot {
        Boot::Signed { uki, .. } => {
            fat.add_file(UKI, uki.clone())?;
            for (path, data) in signed_configs() {
                fat.add_file(path, data)?;
            }
            fat.hide_until_commit("EFI");
            let written = fat.write(&bf, 0, bsize, BOOT_START as u32)?;
            bf.sync_all().ctx(&boot_part)?;
            Ok(Prepared { disk, boot_part, root_part, root_bytes, boot_uuid, installed, mbr_final: None, vbr_final: None, commit: written.commit.clone() })
        }
        Boot::Plain { kernel, initrd, ldlinux_sys, ldlinux_c32, mbr_code, vbr: medium_vbr } => {
            let mut opts = vec![format!("root=UUID={root_uuid}"), "rw".to_owned()];
            opts.extend(options.iter().cloned());
            let options_line = opts.join(" ");
            let serial = serial_for(options);
            fat.add_file(KERNEL, kernel.clone())?;
            fat.add_file(INITRD, initrd.clone())?;
            fat.add_file(LDLINUX_SYS, ldlinux_sys.clone())?;
            fat.add_file(LDLINUX_C32, ldlinux_c32.clone())?;
            fat.add_file(MBR_BIN, mbr_code.to_vec())?;
            for (path, data) in configs("liveroot (installed)", &options_line, serial.as_deref()) {
                fat.add_file(path, data)?;
            }
            fat.hide_until_commit("EFI");
            // syslinux finds its loader by sector: patch the copy for where it will land
            // (placement depends only on names and sizes, so the patched bytes land there too).
            let sectors = fat
                .layout(bsize)?
                .sectors(LDLINUX_SYS)
                .ok_or_else(|| Error::new(&boot_part, "ldlinux.sys: not laid out"))?
                .to_vec();
            let mut sys = ldlinux_sys.clone();
            let sect1 = crate::syslinux::patch_ldlinux(&mut sys, &sectors)?;
            fat.add_file(LDLINUX_SYS, sys.clone())?;
            let written = fat.write(&bf, 0, bsize, BOOT_START as u32)?;
            if written.sectors(LDLINUX_SYS) != Some(&sectors[..]) {
                return Err(Error::new(&boot_part, "ldlinux.sys landed elsewhere than laid out"));
            }
            let mut vbr = written.vbr;
            crate::syslinux::boot_sector(medium_vbr, &sys, &mut vbr, sect1)?;
            bf.sync_all().ctx(&boot_part)?;
            Ok(Prepared {
                disk,
                boot_part,
                root_part,
                root_bytes,
                boot_uuid,
                installed,
                mbr_final: Some(mbr(mbr_code, signature, &parts, true)),
                vbr_final: Some((vbr, written.vbr_at)),
                commit: written.commit.clone(),
            })
        }
    }
}

/// systemd-boot's files on a signed install: one entry starting the signed image, whose
/// command line is its own (no `options`: under Secure Boot the stub would ignore them).
pub fn signed_configs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("loader/loader.conf", b"default liveroot.conf\ntimeout 0\n".to_vec()),
        (
            crate::loader::SDBOOT_ENTRY,
            format!("# Written by liveroot migrate. The command line is the image's own (signed); the root is found through the EFI variable {}.\ntitle liveroot (installed)\nefi /{UKI}\n", crate::efivar::INSTALLED_VAR).into_bytes(),
        ),
    ]
}

/// A FAT volume id as blkid prints it: the high half first.
pub fn fat_uuid(id: u32) -> String {
    format!("{:04X}-{:04X}", id >> 16, id & 0xffff)
}

/// The hook that keeps the installed disk's boot partition on the newest kernel package
/// (dist/kernel-hook says how), and where Debian runs it.
const KERNEL_HOOK: &str = include_str!("../../dist/kernel-hook");
const HOOKS: [(&str, &str); 3] = [
    ("etc/kernel", "etc/kernel/postinst.d/zz-liveroot"),
    ("etc/kernel", "etc/kernel/postrm.d/zz-liveroot"),
    ("etc/initramfs-tools", "etc/initramfs/post-update.d/zz-liveroot"),
];
pub const INSTALLED_CONF: &str = "etc/liveroot/installed";

/// After the install, on the root mounted at `root`: the kernel hook where the distribution
/// runs such hooks (Debian's /etc/kernel, initramfs-tools' post-update.d), and the boot
/// partition's identity for it. Nothing when the root has no /etc/kernel (no kernel packages
/// to follow). Each file written under a temporary name, fsynced, renamed. The paths written.
/// `signed`: a Secure Boot install's image and the kernel inside it; the hook then switches
/// nothing (the firmware starts only signed images) and refuses the removal of that kernel's
/// package, whose modules the image needs.
pub fn kernel_hooks(root: &Path, boot_uuid: &str, signed: Option<(&str, String)>) -> Result<Vec<String>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !root.join("etc/kernel").is_dir() {
        return Ok(Vec::new());
    }
    let put = |rel: &str, data: &[u8], mode: u32| -> Result<()> {
        let to = root.join(rel);
        let dir = to.parent().unwrap_or(root);
        std::fs::create_dir_all(dir).ctx(dir.display())?;
        let tmp = dir.join(".liveroot.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).ctx(tmp.display())?;
        f.write_all(data).and_then(|()| f.sync_all()).ctx(tmp.display())?;
        std::fs::rename(&tmp, &to).ctx(to.display())?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).ctx(dir.display())
    };
    // The identity first: a hook that runs finds it.
    let mut conf = format!("# Written by liveroot migrate: the boot partition the kernel hook keeps up to date.\nboot_uuid={boot_uuid}\n");
    if let Some((uki, kernel)) = &signed {
        conf.push_str(&format!("# Secure Boot: the firmware starts only the signed image, whose kernel's package must stay.\nsigned=/{uki}\nkernel={kernel}\n"));
    }
    put(INSTALLED_CONF, conf.as_bytes(), 0o644)?;
    let mut done = vec![format!("/{INSTALLED_CONF}")];
    let guard = signed.is_some().then_some(("etc/kernel", "etc/kernel/prerm.d/zz-liveroot"));
    for (when, path) in HOOKS.into_iter().chain(guard) {
        if root.join(when).is_dir() {
            put(path, KERNEL_HOOK.as_bytes(), 0o755)?;
            done.push(format!("/{path}"));
        }
    }
    Ok(done)
}

impl Prepared {
    /// Make the disk bootable. Plain: the boot sector's code, then EFI shown, then the MBR's
    /// code. Signed: a new key in the running root (`root`, which is the disk's by now), the
    /// box's variable naming this disk's ESP, root and key (`efivars`: efivarfs, mounted
    /// writable), then EFI shown. Each step leaves a whole boot path or none.
    pub fn commit(&self, efivars: &Path, root: &Path) -> Result<()> {
        let bf = std::fs::OpenOptions::new().write(true).open(&self.boot_part).ctx(&self.boot_part)?;
        if let Some((vbr, at)) = &self.vbr_final {
            for a in at {
                write_at(&bf, &self.boot_part, vbr, *a)?;
            }
            bf.sync_all().ctx(&self.boot_part)?;
        }
        if let Some(i) = &self.installed {
            let rec = crate::efivar::Installed { key: crate::efivar::new_key(root)?, ..i.clone() };
            crate::efivar::write(efivars, crate::efivar::INSTALLED_VAR, crate::efivar::ATTRS_NV_BS_RT, &rec.to_bytes())?;
        }
        for (off, data) in &self.commit {
            write_at(&bf, &self.boot_part, data, *off)?;
        }
        bf.sync_all().ctx(&self.boot_part)?;
        drop(bf);
        if let Some(m) = &self.mbr_final {
            let d = std::fs::OpenOptions::new().write(true).open(&self.disk).ctx(&self.disk)?;
            write_at(&d, &self.disk, m, 0)?;
            d.sync_all().ctx(&self.disk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_options_are_dropped_others_kept() {
        let k = kept_options(
            "BOOT_IMAGE=/boot/vmlinuz initrd=/boot/initrd.img root=live:LABEL=LIVE rd.live.ram=1 live.fetch=http://x/ \
             console=tty0 console=ttyS0,115200 quiet ro panic=10 ip=dhcp rd.retry=20 foo=\"a b\" liveroot.x=1",
        );
        assert_eq!(k, ["console=tty0", "console=ttyS0,115200", "quiet", "panic=10", "rd.retry=20", "foo=\"a b\"", "liveroot.x=1"]);
        assert_eq!(serial_for(&k).as_deref(), Some("0 115200"));
        assert_eq!(serial_for(&["console=ttyS1,57600n8".to_owned()]).as_deref(), Some("1 57600"));
        assert_eq!(serial_for(&["console=tty0".to_owned()]), None);
    }

    #[test]
    fn entries_carry_the_same_options() {
        let c = configs("liveroot (installed)", "root=UUID=1234 rw console=ttyS0,115200", Some("0 115200"));
        let text: Vec<String> = c.iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
        assert!(text[0].contains("SERIAL 0 115200\n"));
        assert!(text[0].contains("  APPEND root=UUID=1234 rw console=ttyS0,115200\n"));
        assert!(text[0].contains("  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n"));
        assert!(text[2].contains("\noptions root=UUID=1234 rw console=ttyS0,115200\n"));
        assert!(text[2].contains("\nlinux /boot/vmlinuz\ninitrd /boot/initrd.img\n"));
    }

    #[test]
    fn kernel_hooks_go_where_the_distribution_runs_them() {
        let root = std::env::temp_dir().join(format!("liveroot-hooks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        assert!(kernel_hooks(&root, "ABCD-0123", None).unwrap().is_empty(), "no /etc/kernel: nothing written");
        assert!(!root.join(INSTALLED_CONF).exists());
        std::fs::create_dir_all(root.join("etc/kernel/postinst.d")).unwrap();
        std::fs::create_dir_all(root.join("etc/initramfs-tools")).unwrap();
        let w = kernel_hooks(&root, "ABCD-0123", None).unwrap();
        assert_eq!(w.len(), 4, "{w:?}");
        use std::os::unix::fs::PermissionsExt;
        for (_, p) in HOOKS {
            let m = std::fs::metadata(root.join(p)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o755, "{p}");
            assert_eq!(std::fs::read_to_string(root.join(p)).unwrap(), KERNEL_HOOK);
        }
        assert!(std::fs::read_to_string(root.join(INSTALLED_CONF)).unwrap().contains("\nboot_uuid=ABCD-0123\n"));
        assert_eq!(fat_uuid(0x1a2b_3c4d), "1A2B-3C4D");
        assert!(!root.join("etc/kernel/prerm.d/zz-liveroot").exists(), "no guard on a plain install");
        // A Secure Boot install: the image and its kernel recorded, the removal guard added.
        let w = kernel_hooks(&root, "ABCD-0123", Some((UKI, "6.1.0-50-amd64".to_owned()))).unwrap();
        assert_eq!(w.len(), 5, "{w:?}");
        let conf = std::fs::read_to_string(root.join(INSTALLED_CONF)).unwrap();
        assert!(conf.contains("\nsigned=/EFI/Linux/liveroot.efi\nkernel=6.1.0-50-amd64\n"), "{conf}");
        assert_eq!(std::fs::read_to_string(root.join("etc/kernel/prerm.d/zz-liveroot")).unwrap(), KERNEL_HOOK);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_secure_boot_entry_starts_the_image() {
        let c = flash_configs_uki("root=live:LABEL=LIVE x", "/EFI/Linux/liveroot.efi", None);
        let plain = flash_configs("root=live:LABEL=LIVE x");
        assert_eq!(c.len(), plain.len());
        for ((p, d), (q, e)) in c.iter().zip(&plain) {
            assert_eq!(p, q);
            if p == "/loader/entries/liveroot.conf" {
                let t = String::from_utf8(d.clone()).unwrap();
                assert!(t.lines().any(|l| l == "efi /EFI/Linux/liveroot.efi"), "{t}");
                assert!(!t.contains("options") && !t.contains("linux ") && !t.contains("initrd"), "{t}");
            } else {
                assert_eq!(d, e, "{p}");
            }
        }
    }

    #[test]
    fn the_recovery_entry_starts_its_own_image() {
        let c = flash_configs_uki("root=live:LABEL=LIVE x", "/EFI/Linux/liveroot.efi", Some("/EFI/Linux/liveroot-recovery.efi"));
        let plain = flash_configs_uki("root=live:LABEL=LIVE x", "/EFI/Linux/liveroot.efi", None);
        assert_eq!(&c[..plain.len()], &plain[..], "the other files are unchanged");
        assert_eq!(c.len(), plain.len() + 1);
        let (p, d) = c.last().unwrap();
        assert_eq!(p, "/loader/entries/liveroot-recovery.conf");
        let t = String::from_utf8(d.clone()).unwrap();
        assert!(t.lines().any(|l| l == "title liveroot recovery") && t.lines().any(|l| l == "efi /EFI/Linux/liveroot-recovery.efi"), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("options") || l.starts_with("linux")), "{t}");
        let loader = c.iter().find(|(p, _)| p == "/loader/loader.conf").unwrap();
        assert!(String::from_utf8_lossy(&loader.1).lines().any(|l| l == "default liveroot.conf"));
    }

    #[test]
    fn layout_and_mbr_bytes() {
        assert_eq!(layout(100 * 2048), None, "100 MiB holds no 128 MiB boot partition");
        let p = layout(1024 * 2048 + 7).unwrap();
        assert_eq!(p[0], Part { start: 2048, sectors: 128 * 2048, kind: 0xef });
        assert_eq!(p[1], Part { start: 129 * 2048, sectors: (1024 - 129) * 2048, kind: 0x83 });
        let code = [0x90u8; 440];
        let m = mbr(&code, 0xdead_beef, &p, true);
        assert_eq!(&m[440..444], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(m[446], 0x80);
        assert_eq!(m[462], 0);
        assert_eq!(m[450], 0xef);
        assert_eq!(u32::from_le_bytes(m[454..458].try_into().unwrap()), 2048);
        assert_eq!(u32::from_le_bytes(m[470..474].try_into().unwrap()), 129 * 2048);
        assert_eq!(u32::from_le_bytes(m[474..478].try_into().unwrap()), (1024 - 129) * 2048);
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        // sfdisk reads it back as we meant it
        assert_eq!(chs(2048), [32, 33, 0]);
        assert_eq!(mbr(&code, 1, &p, false)[446], 0);
        // Past 2 TiB the root stops at the last sector MBR can address.
        let big = layout(8 << 31).unwrap();
        assert!(big[1].start + big[1].sectors <= u64::from(u32::MAX));
    }

    /// The signed install's GPT as util-linux reads it back: both copies valid (sfdisk checks
    /// the CRCs and the backup), the ESP and the root with their types and GUIDs, the root
    /// ending on a MiB boundary before the backup table.
    #[test]
    fn gpt_as_sfdisk_reads_it() {
        assert_eq!(gpt_layout(200 * 2048), Some([
            Part { start: 2048, sectors: 128 * 2048, kind: TYPE_ESP },
            Part { start: 129 * 2048, sectors: (199 - 129) * 2048, kind: TYPE_LINUX },
        ]), "the last MiB holds the backup table");
        assert_eq!(gpt_layout(130 * 2048), None);
        let sectors = 1024 * 2048 + 5;
        let parts = gpt_layout(sectors).unwrap();
        let (esp, root, disk) = ([0x11u8; 16], [0x22u8; 16], [0x33u8; 16]);
        let g = |t| crate::efivar::guid_bytes(t).unwrap();
        let gp = [
            GptPart { part: parts[0], kind: g(GPT_ESP), uuid: esp, name: "EFI System Partition" },
            GptPart { part: parts[1], kind: g(GPT_ROOT_X86_64), uuid: root, name: "liveroot root" },
        ];
        let (head, tail) = gpt(sectors, disk, &gp).unwrap();
        assert_eq!((head.len(), tail.len()), (34 * 512, 33 * 512));
        let f = std::env::temp_dir().join(format!("liveroot-gpt-{}", std::process::id()));
        let file = std::fs::File::create(&f).unwrap();
        file.set_len(sectors * 512).unwrap();
        file.write_all_at(&head, 0).unwrap();
        file.write_all_at(&tail, (sectors - 33) * 512).unwrap();
        let run = |args: &[&str]| {
            let o = std::process::Command::new("sfdisk").args(args).arg(&f).output().unwrap();
            (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
        };
        let (ok, v) = run(&["--verify"]);
        assert!(ok && !v.to_lowercase().contains("corrupt") && !v.to_lowercase().contains("mismatch"), "{v}");
        let (_, d) = run(&["-d"]);
        assert!(d.contains("label: gpt"), "{d}");
        assert!(d.contains("start=        2048, size=      262144, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=11111111-1111-1111-1111-111111111111, name=\"EFI System Partition\""), "{d}");
        assert!(d.contains(&format!("start=      264192, size=     {}, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=22222222-2222-2222-2222-222222222222, name=\"liveroot root\"", (1023 - 129) * 2048)), "{d}");
        assert!(d.contains("label-id: 33333333-3333-3333-3333-333333333333"), "{d}");
        // A partition past the last usable sector is refused, not written.
        let over = [GptPart { part: Part { start: 2048, sectors: sectors, kind: TYPE_LINUX }, kind: g(GPT_ROOT_X86_64), uuid: root, name: "x" }];
        assert!(gpt(sectors, disk, &over).is_none());
        let _ = std::fs::remove_file(&f);
    }

    /// The flash the way mk/mkflash.sh asks for it: the layout sfdisk and blkid read back, the
    /// file system fsck-clean, the same bytes for the same input, and a refusal when the files
    /// do not fit.
    #[test]
    fn flash_image() {
        let dir = std::env::temp_dir().join(format!("liveroot-flash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = vec![
            ("/boot/vmlinuz".to_owned(), vec![1u8; 300_000]),
            ("/LiveOS/squashfs.img".to_owned(), vec![2u8; 3 << 20]),
            ("/LiveOS/SHA256SUMS".to_owned(), b"x  squashfs.img\n".to_vec()),
        ];
        assert_eq!(flash_default_mib(&files), 64, "small inputs get the FAT32 minimum");
        assert_eq!(flash_default_mib(&[("/LiveOS/a".to_owned(), vec![0; 100 << 20])]), 210 + 1 + 8);
        let flash = Flash { label: "LIVE".into(), id: flash_id(1_700_000_000), time: 1_700_000_000, mbr_code: [0x90; 440], files };
        let (a, b) = (dir.join("a.img"), dir.join("b.img"));
        write_flash(&a, &flash, 64).unwrap();
        write_flash(&b, &flash, 64).unwrap();
        let img = std::fs::read(&a).unwrap();
        assert!(img == std::fs::read(&b).unwrap(), "the same input gave other bytes");
        assert_eq!(img.len(), 64 << 20);
        assert_eq!(&img[..440], &[0x90; 440][..]);
        assert_eq!(img[440..444], flash_id(1_700_000_000).to_le_bytes());
        let run = |c: &mut std::process::Command| {
            let o = c.output().unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        };
        let table = run(std::process::Command::new("sfdisk").arg("-d").arg(&a));
        assert!(table.contains("start=        2048, size=      129024, type=c, bootable"), "{table}");
        let id = run(std::process::Command::new("blkid").args(["-p", "-o", "export", "-O", "1048576"]).arg(&a));
        assert!(id.contains("\nLABEL=LIVE\n") && id.contains("\nTYPE=vfat\n"), "{id}");
        crate::fat::tests::fsck_clean(&a, 1 << 20, 129_024 * 512);
        let e = write_flash(&dir.join("c.img"), &Flash { files: vec![("/LiveOS/big".into(), vec![0; 70 << 20])], ..flash }, 64).unwrap_err();
        assert!(e.to_string().contains("64 MiB: too small for the files (about"), "{e}");
        assert!(!dir.join("c.img").exists(), "a refused flash leaves no file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bzimage_release_is_read_from_the_header() {
        let mut k = vec![0u8; 0x400];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        k[0x300..0x31a].copy_from_slice(b"6.1.0-56-amd64 (debian) #1");
        assert_eq!(bzimage_release(&k).as_deref(), Some("6.1.0-56-amd64"));
        k[0x20e..0x210].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert_eq!(bzimage_release(&k), None);
        assert_eq!(bzimage_release(b"short"), None);
    }

    fn fake_kernel(release: &str) -> Vec<u8> {
        let mut k = vec![0u8; 0x5000];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x20e..0x210].copy_from_slice(&0x42c0u16.to_le_bytes());
        k[0x44c0..0x44c0 + release.len() + 1].copy_from_slice(format!("{release} ").as_bytes());
        k
    }

    #[test]
    fn the_signed_image_of_the_running_kernel_is_found() {
        let m = std::env::temp_dir().join(format!("liveroot-suki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&m);
        for d in ["EFI/BOOT", "EFI/Linux", "loader/entries", "LiveOS"] {
            std::fs::create_dir_all(m.join(d)).unwrap();
        }
        let img = |rel: &str| crate::pe::uki(&crate::pe::tests::stub(0), b"ID=debian\n", b"root=live:LABEL=LIVE", &fake_kernel(rel), b"initrd").unwrap();
        let e = gather_signed(&m, "6.1.0-50-amd64", "way out").err().unwrap();
        assert!(e.to_string().contains("EFI/BOOT/BOOTX64.EFI"), "{e}");
        std::fs::write(m.join(EFI_BOOT), b"signed systemd-boot").unwrap();
        let e = gather_signed(&m, "6.1.0-50-amd64", "way out").err().unwrap();
        assert!(e.to_string().contains("no signed image (/EFI/Linux/liveroot.efi) on the medium; under Secure Boot"), "{e}");
        std::fs::write(m.join(UKI), img("6.1.0-50-amd64")).unwrap();
        std::fs::write(m.join("EFI/Linux/liveroot-2.efi"), img("6.1.0-57-amd64")).unwrap();
        std::fs::write(m.join("LiveOS/liveroot.efi.new"), img("6.1.0-60-amd64")).unwrap();
        let path = |rel: &str| match gather_signed(&m, rel, "w").map(|f| f.boot) {
            Ok(Boot::Signed { uki_path, uki }) => {
                assert_eq!(crate::pe::section_data(&uki, ".linux").and_then(bzimage_release).as_deref(), Some(rel));
                uki_path
            }
            Ok(Boot::Plain { .. }) => panic!("plain"),
            Err(e) => e.to_string(),
        };
        assert_eq!(path("6.1.0-50-amd64"), "/EFI/Linux/liveroot.efi");
        assert_eq!(path("6.1.0-60-amd64"), "/LiveOS/liveroot.efi.new", "a fetched release started by kexec");
        // mark-good switched the entry: the entry's image comes first.
        std::fs::write(m.join(crate::loader::SDBOOT_ENTRY), "title liveroot\nefi /EFI/Linux/liveroot-2.efi\n").unwrap();
        assert_eq!(path("6.1.0-57-amd64"), "/EFI/Linux/liveroot-2.efi");
        let e = path("6.1.0-99-amd64");
        assert!(e.contains("no signed image of kernel 6.1.0-99-amd64: /EFI/Linux/liveroot-2.efi (6.1.0-57-amd64), /EFI/Linux/liveroot.efi (6.1.0-50-amd64)"), "{e}");
        let _ = std::fs::remove_dir_all(&m);
    }

    #[test]
    fn the_running_kernel_is_found_where_the_loader_or_a_pair_keeps_it() {
        let m = std::env::temp_dir().join(format!("liveroot-kpair-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&m);
        for d in ["boot/syslinux", "LiveOS"] {
            std::fs::create_dir_all(m.join(d)).unwrap();
        }
        std::fs::write(m.join("boot/vmlinuz"), fake_kernel("6.1.0-50-amd64")).unwrap();
        std::fs::write(m.join("boot/initrd.img"), b"i1").unwrap();
        std::fs::write(m.join("LiveOS/vmlinuz.new"), fake_kernel("6.1.0-57-amd64")).unwrap();
        std::fs::write(m.join("LiveOS/initrd.img.new"), b"i2").unwrap();
        assert_eq!(kernel_pair(&m, "6.1.0-50-amd64"), ("boot/vmlinuz".into(), "boot/initrd.img".into()));
        assert_eq!(kernel_pair(&m, "6.1.0-57-amd64"), ("LiveOS/vmlinuz.new".into(), "LiveOS/initrd.img.new".into()));
        // mark-good switched the loader: the entry names the files.
        std::fs::rename(m.join("LiveOS/vmlinuz.new"), m.join("boot/vmlinuz-2")).unwrap();
        std::fs::rename(m.join("LiveOS/initrd.img.new"), m.join("boot/initrd-2.img")).unwrap();
        std::fs::write(m.join("boot/syslinux/syslinux.cfg"), "LABEL l\n  KERNEL /boot/vmlinuz-2\n  INITRD /boot/initrd-2.img\n").unwrap();
        assert_eq!(kernel_pair(&m, "6.1.0-57-amd64"), ("boot/vmlinuz-2".into(), "boot/initrd-2.img".into()));
        assert_eq!(kernel_pair(&m, "6.1.0-99-amd64"), (KERNEL.into(), INITRD.into()), "none: the fixed names, which the refusal names");
        let _ = std::fs::remove_dir_all(&m);
    }
}
