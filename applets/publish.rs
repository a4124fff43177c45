//! publish — the publisher's side: what mk/mkflash.sh and mk/sign.sh ask the binary for, so that
//! the disk layout and the trusted comment are written by the same code that reads them.
//!
//! ```text
//! publish flash --from DIR --label LABEL --mbr-code FILE [--append ARGS] [--time UNIX]
//!               [--size-mib N] OUT
//! publish comment --version N [--rollout PCT|START+DURATION] [--expires UNIX|+SECONDS]
//! ```
//! `flash` writes the flash image OUT (src/install.rs, `write_flash`): an MBR whose code is
//! FILE (syslinux's mbr.bin) and one FAT32 partition labelled LABEL holding every file under
//! DIR and the boot entries (syslinux, systemd-boot) for `root=live:LABEL=LABEL`, the consoles and
//! ARGS, written in name order with every timestamp at UNIX (default 0: 1980-01-01); the disk
//! identifier and volume id come from UNIX too, so the same inputs give the same bytes. Without
//! `--size-mib` the size leaves room for a second LiveOS. It prints the size, the label and the
//! command line.
//! `comment` prints the trusted comment for a release (src/rollout.rs, `TrustedComment`).
//! Exit: 0 ok, 1 failure, 2 usage.

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
    Comment(CommentArgs),
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

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = crate::cli::parse(argv, "")?;
    match args.cmd {
        Cmd::Flash(a) => flash(&a),
        Cmd::Comment(a) => comment(&a),
    }
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

fn flash(a: &FlashArgs) -> Result<()> {
    // The boot matches the label exactly and FAT stores it upper case: only what survives both.
    let l = &a.label;
    if l.is_empty() || l.len() > 11 || !l.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Err(Error::usage(format!("--label {l}: 1 to 11 of A-Z, 0-9, _ and -")));
    }
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
    for (path, data) in install::flash_configs(&cmdline) {
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
