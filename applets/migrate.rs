//! migrate — the rebootless install: mirror the live root (md raid1 over live-rw) onto a disk,
//! switch the array to that disk, grow it and its ext4 filesystem, and release the live stack.
//! The options are in `Args` (`migrate --help`); the steps, carried out by core/src/migration.rs:
//!
//! 1. Preflight, nothing written: TARGET must be an unused block device (not mounted, no
//!    holders, openable exclusively), not part of the live stack (medium, its disk, the loops,
//!    live-rw, the array), at least as big as the array; the array must be the live one from
//!    /run/live/state. A whole disk (unless --no-bootloader) also needs the kernel, initramfs
//!    and boot code the box booted with, read from the live medium now (core/src/install.rs).
//!    Without --yes, ask on a terminal; no terminal, no --yes: refuse.
//!    After the confirmation a whole disk is partitioned (FAT32 boot partition + root
//!    partition) and the boot partition written, nothing bootable yet; the root partition is the
//!    target from here on.
//! 2. Hot-add TARGET (md copies the data; writes meanwhile go to both), sync speed raised.
//! 3. Progress: one updating line on a terminal, else a line every 10 %.
//! 4. In sync: the root filesystem, the array and TARGET flushed (syncfs, fsync of both block
//!    devices: every byte md wrote to TARGET is on it), then live-rw failed and removed, one
//!    slot; `migrated=TARGET` recorded in /run/live/state at once. A whole disk is made
//!    bootable only now (boot sector, EFI directory, MBR code: the last writes), so a disk cut
//!    off earlier has no boot path at all.
//! 5. Unless --no-grow: array and ext4 grown to TARGET. A failing grow is reported (exit 1)
//!    after step 6: the system runs on TARGET all the same and `migrated=` stays recorded.
//! 6. Unless --keep-live: live-rw, overlay, loops, squashfs and medium released.
//! 7. TARGET (its root partition) holds a plain ext4 filesystem (no md metadata); a whole disk
//!    boots it by itself with root=UUID=..., a partition needs the disk's own boot loader.
//!
//! SIGINT/SIGTERM/SIGHUP during the copy: TARGET is removed from the array and the live system is
//! left as it was (exit 1); a rerun starts over. Exit codes: 0 ok, 1 refused or failed, 2 usage.

use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::install;
use crate::cli::mib;
use crate::migration::{self, model, say, Live, Options};
use crate::osarg;
use crate::raid;
use argh::FromArgs;
use std::io::IsTerminal;

pub const SUMMARY: &str = "install the running live system onto a disk without a reboot";

#[derive(FromArgs)]
/// Install the running live system onto TARGET without a reboot: md mirrors the live root onto
/// it, then the live stack (RAM overlay, loops, squashfs, medium) is released. TARGET ends up
/// holding a plain ext4 filesystem (no md metadata) that boots with root=UUID=... A whole disk
/// is partitioned and gets the live medium's kernel, initramfs and boot loaders (BIOS and UEFI)
/// so that it boots by itself. Everything on TARGET is overwritten. Exit codes: 0 done, 1 refused or failed, 2 usage.
struct Args {
    #[argh(switch, short = 'y')]
    /// do not ask for confirmation (required without a terminal)
    yes: bool,
    #[argh(option)]
    /// the live array (default: md from /run/live/state); anything else is refused
    md: Option<String>,
    #[argh(switch)]
    /// leave the array and the filesystem at the image's size
    no_grow: bool,
    #[argh(switch)]
    /// keep live-rw, the overlay, the loops and the medium (only switch the array)
    keep_live: bool,
    #[argh(switch)]
    /// a whole disk: no partitions and no boot loader, only the filesystem (as on a partition)
    no_bootloader: bool,
    #[argh(option)]
    /// cap the copy at this many KiB/s (default: as fast as the disks go)
    speed_max: Option<u64>,
    #[argh(positional)]
    /// the disk or partition to install onto
    target: String,
}

pub fn run(argv: &[String]) -> Result<()> {
    let a: Args = crate::cli::parse(argv, "")?;
    if a.speed_max == Some(0) {
        return Err(Error::usage("--speed-max must be at least 1 KiB/s"));
    }
    let o = Options { md: a.md.clone(), no_grow: a.no_grow, keep_live: a.keep_live, no_bootloader: a.no_bootloader, speed_max: a.speed_max };
    let disk = osarg::path(&a.target);
    let live = migration::preflight(&disk, &o)?;
    let plan = migration::plan_install(&disk, &o, &live)?;
    if !a.yes {
        confirm(&a.target, &live)?;
    }
    // From the first write on, a signal is only noticed (the copy loop reads it): a partly
    // written boot partition is never left by a signal mid-write.
    migration::stop_signals().thread_block().ctx("signals")?;
    let prepared = match &plan {
        Some(p) => {
            let pr = install::prepare(&disk, &migration::kname(live.target), p)?;
            let what = match &p.files.boot {
                install::Boot::Signed { uki_path, .. } => {
                    format!("GPT: {} EFI system partition (the signed image {uki_path}, kernel {}, systemd-boot)", pr.boot_part, p.files.kernel_release)
                }
                install::Boot::Plain { .. } => format!("{} boot (FAT32: kernel {}, syslinux, systemd-boot)", pr.boot_part, p.files.kernel_release),
            };
            say(&format!(
                "migrate: {}: partitioned: {what}, {} root ({}); not bootable until the end\n",
                pr.disk, pr.root_part, mib(pr.root_bytes)
            ));
            Some(pr)
        }
        None => None,
    };
    let tp = prepared.as_ref().map_or(disk.clone(), |p| std::path::PathBuf::from(&p.root_part));
    migration::copy(&o, &live, &tp).map_err(|e| match &prepared {
        Some(p) => Error::new(e.object, format!("{}; {} is partitioned but boots nothing", e.reason, p.disk)),
        None => e,
    })?;
    switch_over(&o, &live, &tp, prepared.as_ref())
}

fn confirm(t: &str, live: &Live) -> Result<()> {
    let what = format!("{t} ({}, {})", mib(live.target_bytes), model(live.target));
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            t,
            format!("no terminal to ask on; refusing to overwrite {what} without --yes"),
        ));
    }
    say(&format!(
        "migrate: everything on {what} will be overwritten by the running system ({}).\nContinue? [y/N] ",
        raid::path_of(&live.md)
    ));
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ctx("stdin")?;
    match line.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
        _ => Err(Error::new(t, "not confirmed; nothing written")),
    }
}

fn switch_over(o: &Options, live: &Live, tp: &std::path::Path, prepared: Option<&install::Prepared>) -> Result<()> {
    let shown = tp.display().to_string();
    let t = shown.as_str();
    let path = raid::path_of(&live.md);
    let grow_failed = migration::switch(o, live, tp, prepared)?;
    // The installed system's kernel packages keep its boot partition up to date from now on.
    if let Some(p) = prepared {
        let signed = p.installed.as_ref().map(|_| (install::UKI, crate::modprobe::kernel_release()));
        match install::kernel_hooks(std::path::Path::new("/"), &p.boot_uuid, signed) {
            Ok(w) if !w.is_empty() => say(&format!("migrate: kernel packages update {} (UUID={}): {}\n", p.boot_part, p.boot_uuid, w.join(" "))),
            Ok(_) => {}
            Err(e) => crate::migration::warn(&format!("{e}; kernel packages will not update {} (the disk boots its kernel as installed)", p.boot_part)),
        }
    }

    // 7. What the user has now.
    let f = std::fs::File::open(tp).ok().and_then(|f| crate::probe::probe(&f).ok().flatten());
    let (fstype, uuid, label) = match &f {
        Some(f) => (f.fstype, f.uuid.clone().unwrap_or_default(), f.label.clone().unwrap_or_default()),
        None => ("unknown", String::new(), String::new()),
    };
    let root = if uuid.is_empty() { t.to_owned() } else { format!("UUID={uuid}") };
    let how = match prepared {
        Some(p) if grow_failed.is_none() && p.installed.is_some() => format!(
            "migrate: {} boots by itself under Secure Boot (UEFI: systemd-boot and the signed image, on {}); \
             the image finds its root through this box's EFI variable {}: the disk boots in this box only\n",
            p.disk, p.boot_part, crate::efivar::INSTALLED_VAR
        ),
        Some(p) if grow_failed.is_none() => format!(
            "migrate: {} boots by itself (BIOS: syslinux, UEFI: systemd-boot; kernel and initramfs on {}) with root={root}\n",
            p.disk, p.boot_part
        ),
        Some(p) => format!("migrate: {}: see the error below\n", p.disk),
        None if crate::sys::sysfs::parent_disk(fsutil::block_dev(tp).unwrap_or((0, 0))).is_some() => format!(
            "migrate: {t} is a partition: the disk's own boot loader must point at it (root={root});\n\
             migrate: the liveroot initramfs mounts any root= that is not live:\n"
        ),
        None => format!(
            "migrate: no boot loader installed (--no-bootloader): point one at root={root}\n\
             migrate: (the liveroot initramfs mounts any root= that is not live:)\n"
        ),
    };
    say(&format!(
        "migrate: {}. {t} holds a plain {fstype} filesystem (no md metadata): UUID={uuid} LABEL={label}\n\
         migrate: until the next boot / stays on {path}\n{how}",
        if grow_failed.is_none() { "done" } else { "switched, not grown" }
    ));
    grow_failed.map_or(Ok(()), Err)
}

