//! publish — the publisher's side: what mk/mkflash.sh and mk/sign.sh ask the binary for, so that
//! the disk layout and the trusted comment are written by the same code that reads them.
//!
//! ```text
//! publish flash --from DIR --label LABEL --mbr-code FILE [--append ARGS] [--time UNIX]
//!               [--size-mib N] [--uki PATH [--recovery-uki PATH]] OUT
//! publish uki --stub FILE --linux FILE --initrd FILE --osrel FILE --label LABEL [--append ARGS] OUT
//! publish cmdline [--label LABEL [--append ARGS]] IMAGE
//! publish comment --version N [--rollout PCT|START+DURATION] [--expires UNIX|+SECONDS]
//! publish settings FILE
//! ```
//! `flash` writes the flash image OUT (src/install.rs, `write_flash`): an MBR whose code is
//! FILE (syslinux's mbr.bin) and one FAT32 partition labelled LABEL holding every file under
//! DIR and the boot entries (syslinux, systemd-boot) for `root=live:LABEL=LABEL`, the consoles and
//! ARGS, written in name order with every timestamp at UNIX (default 0: 1980-01-01); the disk
//! identifier and volume id come from UNIX too, so the same inputs give the same bytes. Without
//! `--size-mib` the size leaves room for a second LiveOS. It prints the size, the label and the
//! command line. With `--uki PATH` (a file under DIR, e.g. /EFI/Linux/liveroot.efi) the
//! systemd-boot entry starts that unified kernel image instead of the kernel and initramfs, with
//! no command line of its own (the image carries it); syslinux's entry is unchanged. With
//! `--recovery-uki PATH` too, a second entry (loader/entries/liveroot-recovery.conf, "liveroot
//! recovery") starts that image; the default stays the first.
//! `uki` writes OUT: the EFI stub FILE (systemd's linuxx64.efi.stub) with the os-release, the
//! flash's command line (as `flash` makes it from LABEL and ARGS), the initramfs and the kernel
//! added as PE sections (core/src/pe.rs); the same inputs give the same bytes. Sign OUT next.
//! `cmdline` prints the command line a unified kernel image carries (its `.cmdline` section);
//! with `--label`, it must be the one `flash` makes from LABEL and ARGS, or an error (mk/mkflash.sh
//! checks a signed release's image so).
//! `comment` prints the trusted comment for a release (src/rollout.rs, `TrustedComment`).
//! `settings` checks FILE as the boot reads a stick's LiveOS/settings (core/src/settings.rs),
//! strictly: a key the boot would not take from it, a bad value, a file too large is an error
//! `FILE: KEY: reason`; it prints the keys the file sets.
//! Exit: 0 ok, 1 failure, 2 usage.
//!
//! Built only with the `publisher` feature (Cargo.toml): build/publisher/liveroot has it, the
//! binary in the initramfs does not.
#![cfg(feature = "publisher")]

use crate::error::{Context, Error, Result};
use crate::install::{self, Flash};
use crate::osarg;
use crate::rollout::{self, TrustedComment};
use argh::FromArgs;
use std::io::Write;
use std::path::Path;

pub const SUMMARY: &str = "publisher tools: write a flash image, format a trusted comment";

#[derive(FromArgs)]
/// Publisher tools: the flash image and the trusted comment, as the boot reads them.
/// Exit codes: 0 ok, 1 failure, 2 usage.
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Flash(FlashArgs),
    Uki(UkiArgs),
    Cmdline(CmdlineArgs),
    Comment(CommentArgs),
    Settings(SettingsArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "flash")]
/// Write a whole-disk flash image: MBR, one FAT32 partition from 1 MiB with every file of
/// DIR and the boot entries. Prints the size, the label and the command line.
/// Example: publish flash --from stage --label LIVE --mbr-code mbr.bin --time 1700000000 flash.img
struct FlashArgs {
    #[argh(option)]
    /// the files of the partition, as they are to appear
    from: String,
    #[argh(option)]
    /// FAT label, what root=live:LABEL= names (A-Z 0-9 _ -, 1 to 11)
    label: String,
    #[argh(option)]
    /// the MBR's boot code (syslinux's mbr.bin; the first 440 bytes count)
    mbr_code: String,
    #[argh(option, default = "String::new()")]
    /// appended last to the kernel command line of both boot entries
    append: String,
    #[argh(option, default = "0")]
    /// every timestamp, and the seed of the disk identifier (default 0)
    time: i64,
    #[argh(option)]
    /// the image size (default: room for the files and a second LiveOS, at least 64)
    size_mib: Option<u64>,
    #[argh(option)]
    /// a unified kernel image under DIR (/EFI/Linux/NAME.efi) the systemd-boot entry starts
    uki: Option<String>,
    #[argh(option)]
    /// with --uki: a second image under DIR, the recovery entry's (liveroot-recovery.conf)
    recovery_uki: Option<String>,
    #[argh(positional)]
    /// the image to write
    out: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "cmdline")]
/// Print the kernel command line a unified kernel image carries (its .cmdline section).
/// Example: publish cmdline liveroot.efi
struct CmdlineArgs {
    #[argh(option)]
    /// check the line is the flash's for this label (and --append), as publish flash makes it
    label: Option<String>,
    #[argh(option, default = "String::new()")]
    /// with --label: the flash's APPEND
    append: String,
    #[argh(positional)]
    /// the unified kernel image
    image: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "uki")]
/// Write a unified kernel image: the EFI stub with .osrel, .cmdline (the flash's command line
/// for LABEL and ARGS), .initrd and .linux added as sections. Sign it afterwards (sbsign).
/// Example: publish uki --stub linuxx64.efi.stub --linux vmlinuz --initrd initrd.img --osrel os-release --label LIVE liveroot.efi
struct UkiArgs {
    #[argh(option)]
    /// systemd's EFI stub (linuxx64.efi.stub)
    stub: String,
    #[argh(option)]
    /// the kernel (bzImage with its EFI stub)
    linux: String,
    #[argh(option)]
    /// the initramfs
    initrd: String,
    #[argh(option)]
    /// the os-release text for .osrel
    osrel: String,
    #[argh(option)]
    /// FAT label, what root=live:LABEL= names
    label: String,
    #[argh(option, default = "String::new()")]
    /// appended last to the command line
    append: String,
    #[argh(positional)]
    /// the image to write
    out: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "comment")]
/// Print the trusted comment to sign a release with: version=N [rollout=R] [expires=T],
/// each checked as the boxes will read it.
/// Example: publish comment --version 7 --rollout 25 --expires +604800
struct CommentArgs {
    #[argh(option)]
    /// the release's version
    version: u64,
    #[argh(option)]
    /// PCT (0 to 100, two decimals) or START+DURATION (unix seconds)
    rollout: Option<String>,
    #[argh(option)]
    /// UNIXTIME, or +SECONDS from now, when boxes refuse the manifest
    expires: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "settings")]
/// Check a LiveOS/settings file as the boot will read it: only live.fetch, live.fetch.timeout,
/// ip and rd.live.machine_id, each value as on the kernel command line. Prints the keys it sets.
/// Example: publish settings stick.settings
struct SettingsArgs {
    #[argh(positional)]
    /// the settings file
    file: String,
}

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = crate::cli::parse(argv, "")?;
    match args.cmd {
        Cmd::Flash(a) => flash(&a),
        Cmd::Uki(a) => uki(&a),
        Cmd::Cmdline(a) => cmdline(&a),
        Cmd::Comment(a) => comment(&a),
        Cmd::Settings(a) => settings(&a),
    }
}

fn settings(a: &SettingsArgs) -> Result<()> {
    use crate::settings;
    let text = match settings::read(&osarg::path(&a.file))? {
        None => return Err(Error::new(&a.file, "no such file")),
        Some(Err(note)) => return Err(Error::new(&a.file, note.to_string())),
        Some(Ok(t)) => t,
    };
    let used = settings::check(&text).map_err(|n| Error::new(&a.file, n.to_string()))?;
    let _ = std::io::stdout().write_all(format!("{}: {}\n", a.file, if used.is_empty() { "no settings".to_owned() } else { used.join(", ") }).as_bytes());
    Ok(())
}

fn comment(a: &CommentArgs) -> Result<()> {
    let rollout = a.rollout.as_deref().map(rollout::parse_rollout).transpose().map_err(Error::usage)?;
    let expires = match a.expires.as_deref() {
        None => None,
        Some(e) => {
            let bad = || Error::usage(format!("--expires {e}: UNIXTIME or +SECONDS"));
            let (relative, digits) = e.strip_prefix('+').map_or((false, e), |d| (true, d));
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u64 = digits.parse().map_err(|_| bad())?;
            if relative {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                Some(now.checked_add(n).ok_or_else(bad)?)
            } else {
                Some(n)
            }
        }
    };
    let tc = TrustedComment { version: a.version, policy: rollout::Policy { rollout, expires } };
    let _ = std::io::stdout().write_all(format!("{tc}\n").as_bytes());
    Ok(())
}

/// The boot matches the label exactly and FAT stores it upper case: only what survives both.
fn check_label(l: &str) -> Result<()> {
    if l.is_empty() || l.len() > 11 || !l.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Err(Error::usage(format!("--label {l}: 1 to 11 of A-Z, 0-9, _ and -")));
    }
    Ok(())
}

fn uki(a: &UkiArgs) -> Result<()> {
    check_label(&a.label)?;
    if a.append.contains(['\n', '\r']) {
        return Err(Error::usage("--append: must be one line"));
    }
    let read = |p: &str| std::fs::read(osarg::path(p)).ctx(p);
    let (stub, linux, initrd, osrel) = (read(&a.stub)?, read(&a.linux)?, read(&a.initrd)?, read(&a.osrel)?);
    let cmdline = install::flash_cmdline(&a.label, &a.append);
    let img = crate::pe::uki(&stub, &osrel, cmdline.as_bytes(), &linux, &initrd).map_err(|r| Error::new(&a.stub, r))?;
    std::fs::write(osarg::path(&a.out), &img).ctx(&a.out)?;
    let _ = std::io::stdout().write_all(format!("{} bytes, cmdline: {cmdline}\n", img.len()).as_bytes());
    Ok(())
}

fn cmdline(a: &CmdlineArgs) -> Result<()> {
    let img = std::fs::read(osarg::path(&a.image)).ctx(&a.image)?;
    let line = crate::pe::section_data(&img, ".cmdline").ok_or_else(|| Error::new(&a.image, "no .cmdline section: not a unified kernel image"))?;
    let line = line.strip_suffix(b"\0").unwrap_or(line);
    if let Some(l) = &a.label {
        let want = install::flash_cmdline(l, &a.append);
        if line != want.as_bytes() {
            return Err(Error::new(&a.image, format!("its sealed command line is '{}', not this flash's '{want}'", String::from_utf8_lossy(line))));
        }
    }
    let _ = std::io::stdout().write_all(&[line, b"\n"].concat());
    Ok(())
}

fn flash(a: &FlashArgs) -> Result<()> {
    let l = &a.label;
    check_label(l)?;
    let code = std::fs::read(osarg::path(&a.mbr_code)).ctx(&a.mbr_code)?;
    let mut mbr_code = [0u8; 440];
    let n = code.len().min(440);
    mbr_code[..n].copy_from_slice(&code[..n]);
    if a.append.contains(['\n', '\r']) {
        return Err(Error::usage("--append: must be one line"));
    }
    let mut files = Vec::new();
    let from = osarg::path(&a.from);
    collect(&from, "", &mut files)?;
    let cmdline = install::flash_cmdline(l, &a.append);
    let in_tree = |u: &str, opt: &str| {
        if files.iter().any(|(p, _)| p == u) {
            Ok(())
        } else {
            Err(Error::new(from.join(u.trim_start_matches('/')).display().to_string(), format!("missing ({opt} names a file of the tree)")))
        }
    };
    let configs = match (&a.uki, &a.recovery_uki) {
        (None, None) => install::flash_configs(&cmdline),
        (None, Some(_)) => return Err(Error::usage("--recovery-uki: needs --uki")),
        (Some(u), r) => {
            in_tree(u, "--uki")?;
            if let Some(r) = r {
                in_tree(r, "--recovery-uki")?;
            }
            install::flash_configs_uki(&cmdline, u, r.as_deref())
        }
    };
    for (path, data) in configs {
        if files.iter().any(|(p, _)| p.eq_ignore_ascii_case(&path)) {
            return Err(Error::new(from.join(path.trim_start_matches('/')).display().to_string(), "is written here; remove it from the tree"));
        }
        files.push((path, data));
    }
    let flash = Flash { label: l.clone(), id: install::flash_id(a.time), time: a.time, mbr_code, files };
    let mib = a.size_mib.unwrap_or_else(|| install::flash_default_mib(&flash.files));
    install::write_flash(&osarg::path(&a.out), &flash, mib)?;
    let _ = std::io::stdout().write_all(format!("{mib} MiB, label {l}, cmdline: {cmdline}\n").as_bytes());
    Ok(())
}

/// Every regular file under `dir`, as ("/rel/path", contents), in name order.
fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir).ctx(dir.display())?.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>().ctx(dir.display())?;
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let name = n.to_str().ok_or_else(|| Error::new(p.display().to_string(), "not a UTF-8 name (FAT names are text)"))?;
        let r = format!("{rel}/{name}");
        let md = std::fs::metadata(&p).ctx(p.display())?;
        if md.is_dir() {
            collect(&p, &r, out)?;
        } else if md.is_file() {
            out.push((r, std::fs::read(&p).ctx(p.display())?));
        } else {
            return Err(Error::new(p.display().to_string(), "not a regular file or directory"));
        }
    }
    Ok(())
}
