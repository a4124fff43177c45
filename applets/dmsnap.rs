//! dmsnap — device-mapper snapshots and verity devices for the live root, without libdevmapper
//! or udev.
//!
//! Commands and options: the argh structs below, the one place (`dmsnap --help`,
//! `dmsnap COMMAND --help`).
//!
//! The table is `0 <origin sectors> snapshot <origin> <cow> <mode> <chunk>`. Mode: default `PO`
//! (persistent, overflow-tolerant: a full COW fails writes with EIO and keeps reads working, as
//! dracut's live-rw), `--persistent` is plain `P` (a full COW invalidates the snapshot),
//! `--transient` is `N`. The device uuid is `LIVEROOT-NAME`; `list` and `status` without a name
//! show only such devices. `--overlay-size/--overlay-dir` make a sparse `DIR/NAME.overlay` on a
//! loop device as the COW; the loop auto-clears when the snapshot goes away and `remove` deletes
//! the file. `/dev/mapper/NAME` is made with mknod (no udev).
//!
//! `verity` maps an image through dm-verity (src/dmverity.rs): every block read is checked
//! against the root hash; the hash file's superblock is checked against the data first. Files
//! go on read-only autoclear loops that leave with the device. Default on corruption: the read
//! fails with EIO (the reader never gets altered data, the box keeps running, and a restart on a
//! medium that stays corrupt would loop); restart/panic suit boxes with a watchdog or fallback.

use crate::cli::{parse, parse_size};
use crate::dmverity;
use crate::verity::{self as vt, OnCorruption};
use crate::error::{Context, Error, Result};
use crate::osarg;
use crate::snapshot::{self, Cow, UUID_PREFIX};
use crate::sys::dm::{self, Control, Target};
use argh::FromArgs;

pub const SUMMARY: &str = "create, inspect and remove device-mapper snapshots (the live root overlay)";


#[derive(FromArgs)]
/// Create, inspect and remove device-mapper snapshots without libdevmapper or udev.
/// Devices made by dmsnap carry the uuid LIVEROOT-NAME.
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Create(Create),
    Verity(Verity),
    Status(Status),
    Table(Table),
    List(List),
    Remove(Remove),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "create")]
#[argh(note = "The COW store is --cow DEV, or a sparse file DIR/NAME.overlay of --overlay-size \
(rounded up to 4 KiB) on a loop device that goes away with the snapshot.
Store modes: default PO (a full COW fails writes with EIO, reads keep working), --persistent P \
(a full COW invalidates the snapshot), --transient N.
The table is `0 <origin sectors> snapshot <origin> <cow> <mode> <chunk>`; the uuid LIVEROOT-NAME.")]
/// create snapshot NAME of --origin and /dev/mapper/NAME
struct Create {
    /// device name (at most 127 bytes, no '/')
    #[argh(positional)]
    name: String,
    /// origin block device (read through, never written)
    #[argh(option)]
    origin: String,
    /// block device to hold the changes
    #[argh(option)]
    cow: Option<String>,
    /// size of an overlay file to create as the COW store (e.g. 512M)
    #[argh(option)]
    overlay_size: Option<String>,
    /// directory for the overlay file (e.g. a tmpfs)
    #[argh(option)]
    overlay_dir: Option<String>,
    /// persistent store without overflow tolerance (P)
    #[argh(switch)]
    persistent: bool,
    /// transient store (N)
    #[argh(switch)]
    transient: bool,
    /// chunk size in 512-byte sectors, a power of two (default 8)
    #[argh(option, default = "8")]
    chunk: u64,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "verity")]
#[argh(note = "FILEs are attached to read-only loops that go away with the device; block devices are used as they are. The hash file's veritysetup superblock is checked against the data (sha256, hash type 1, block sizes 512..4096, data blocks x block size = the data file's size, tree fits) before anything is made; the root hash must come from somewhere trusted (a signed manifest).
On a block that does not verify: eio (default) fails that read, restart reboots, panic halts.
Table: `0 <sectors> verity 1 <data> <hash> <dbs> <hbs> <blocks> <hash start> sha256 <root> <salt>`, loaded read-only; the uuid LIVEROOT-NAME. Exit 3 when the superblock does not fit.")]
/// map NAME through dm-verity: every block read is checked against the root hash
struct Verity {
    /// device name (at most 127 bytes, no '/')
    #[argh(positional)]
    name: String,
    /// the image (a file or a block device)
    #[argh(option)]
    data: String,
    /// its hash tree with the veritysetup superblock (IMAGE.verity)
    #[argh(option)]
    hash: String,
    /// the root hash, hex
    #[argh(option)]
    roothash: Option<String>,
    /// a file holding the root hash (IMAGE.roothash)
    #[argh(option)]
    roothash_file: Option<String>,
    /// what a block that fails verification does: eio (default), restart or panic
    #[argh(option, default = "OnCorruption::Eio")]
    on_corruption: OnCorruption,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
#[argh(note = "Without NAME: every snapshot made by dmsnap (uuid LIVEROOT-*). \
Exit status is 0 even for Overflow/Invalid; scripts can test the words or use --raw.")]
/// show how full snapshots are, and Overflow/Invalid/Merge failed states
struct Status {
    /// device name
    #[argh(positional)]
    name: Option<String>,
    /// print the kernel's status lines as `dmsetup status` does
    #[argh(switch)]
    raw: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "table")]
/// print the live table of NAME as `dmsetup table NAME` does
struct Table {
    /// device name
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
/// list devices made by dmsnap as `NAME<TAB>(MAJOR:MINOR)`, like `dmsetup ls`
struct List {
    /// list every device-mapper device
    #[argh(switch)]
    all: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "remove")]
#[argh(note = "Only devices made by dmsnap (uuid LIVEROOT-NAME) are removed. \
If dmsnap made the overlay (the COW loop backs a file named NAME.overlay), the loop is \
detached and the file deleted. A busy device is retried for about a second.")]
/// remove snapshot NAME, /dev/mapper/NAME and the overlay dmsnap made
struct Remove {
    /// device name
    #[argh(positional)]
    name: String,
}

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = parse(argv, "")?;
    match args.cmd {
        Cmd::Create(c) => create(c),
        Cmd::Verity(v) => verity(v),
        Cmd::Status(s) => status(s),
        Cmd::Table(t) => table(t),
        Cmd::List(l) => list(l),
        Cmd::Remove(r) => remove(r),
    }
}

fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

fn create(c: Create) -> Result<()> {
    dm::check_name(&c.name).map_err(|e| Error::usage(e.to_string()))?;
    if c.persistent && c.transient {
        return Err(Error::usage("--persistent and --transient exclude each other"));
    }
    let mode = if c.transient { "N" } else if c.persistent { "P" } else { "PO" };
    if c.chunk == 0 || !c.chunk.is_power_of_two() || c.chunk > 1 << 21 {
        return Err(Error::usage(format!("--chunk {}: must be a power of two up to 2097152 sectors", c.chunk)));
    }
    let cow = match (&c.cow, &c.overlay_size, &c.overlay_dir) {
        (Some(d), None, None) => Cow::Device(osarg::path(d)),
        (None, Some(size), Some(dir)) => {
            let bytes = parse_size(size).map_err(|e| Error::usage(format!("--overlay-size: {e}")))?;
            if bytes == 0 {
                return Err(Error::usage("--overlay-size must be greater than 0"));
            }
            let bytes = bytes.checked_next_multiple_of(4096).ok_or_else(|| Error::usage("--overlay-size is too large"))?;
            Cow::Overlay { bytes, dir: osarg::path(dir) }
        }
        (Some(_), _, _) => return Err(Error::usage("--cow excludes --overlay-size and --overlay-dir")),
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(Error::usage("--overlay-size and --overlay-dir go together"))
        }
        (None, None, None) => return Err(Error::usage("need --cow DEV or --overlay-size SIZE --overlay-dir DIR")),
    };

    snapshot::create(&c.name, &osarg::path(&c.origin), &cow, mode, c.chunk)
}

fn verity(v: Verity) -> Result<()> {
    dm::check_name(&v.name).map_err(|e| Error::usage(e.to_string()))?;
    let root = match (&v.roothash, &v.roothash_file) {
        (Some(h), None) => vt::parse_hex(h).ok_or_else(|| Error::usage(format!("--roothash '{h}': not hex")))?,
        (None, Some(f)) => {
            use std::io::Read;
            let mut data = Vec::new();
            let (file, f) = (osarg::path(f), osarg::path(f).display().to_string());
            std::fs::File::open(&file).ctx(&f)?.take(1025).read_to_end(&mut data).ctx(&f)?;
            crate::pairs::parse_roothash(&data).ok_or_else(|| Error::verify(f, "not a root hash (one line of hex)"))?
        }
        _ => return Err(Error::usage("need one of --roothash HEX or --roothash-file FILE")),
    };
    let uuid = snapshot::uuid(&v.name, false);
    dmverity::create(&v.name, &uuid, &osarg::path(&v.data), &osarg::path(&v.hash), &root, v.on_corruption).map(|_| ())
}

/// Our devices (uuid LIVEROOT-...) or all, as (name, major, minor).
fn devices(ctl: &Control, all: bool) -> Result<Vec<(String, u32, u32)>> {
    let mut v = ctl.list()?;
    if !all {
        let mut ours = Vec::with_capacity(v.len());
        for d in v {
            // A device may vanish between LIST and STATUS; skip it then.
            if let Some(i) = ctl.info(&d.0)? {
                if i.uuid.starts_with(UUID_PREFIX) {
                    ours.push(d);
                }
            }
        }
        v = ours;
    }
    Ok(v)
}

fn list(l: List) -> Result<()> {
    let ctl = Control::open()?;
    let s: String = devices(&ctl, l.all)?.iter().map(|(n, ma, mi)| format!("{n}\t({ma}:{mi})\n")).collect();
    out(&s);
    Ok(())
}

fn table(t: Table) -> Result<()> {
    dm::check_name(&t.name).map_err(|e| Error::usage(e.to_string()))?;
    let ctl = Control::open()?;
    let s: String = ctl.targets(&t.name, true)?.iter().map(|t| format!("{t}\n")).collect();
    out(&s);
    Ok(())
}


fn status(s: Status) -> Result<()> {
    let ctl = Control::open()?;
    let names: Vec<String> = match &s.name {
        Some(n) => {
            dm::check_name(n).map_err(|e| Error::usage(e.to_string()))?;
            vec![n.clone()]
        }
        None => devices(&ctl, false)?.into_iter().map(|d| d.0).collect(),
    };
    let mut text = String::new();
    for n in &names {
        let targets = ctl.targets(n, false)?;
        if s.raw {
            for t in &targets {
                // `dmsetup status` prefixes the name only when listing several devices.
                if s.name.is_none() {
                    text.push_str(n);
                    text.push_str(": ");
                }
                text.push_str(&format!("{t}\n"));
            }
            continue;
        }
        let ours: Vec<&Target> = targets.iter().filter(|t| t.kind == "snapshot" || t.kind == "verity").collect();
        if ours.is_empty() {
            if s.name.is_some() {
                return Err(Error::new(n, "not a snapshot or verity device"));
            }
            continue;
        }
        for t in ours {
            if t.kind == "verity" {
                text.push_str(&dmverity::describe(n, &t.params));
            } else {
                text.push_str(&snapshot::describe(n, &t.params));
            }
        }
    }
    out(&text);
    Ok(())
}

fn remove(r: Remove) -> Result<()> {
    dm::check_name(&r.name).map_err(|e| Error::usage(e.to_string()))?;
    snapshot::remove(&r.name)
}


