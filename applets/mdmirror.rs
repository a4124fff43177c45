//! mdmirror — superblock-less md raid1 ("build" mode) with plain md ioctls and sysfs: no mdadm,
//! no udev. Used to run the live root on a one-legged mirror and to migrate it onto a disk.
//!
//! Commands and options: the argh structs below, the one place (`mdmirror --help`,
//! `mdmirror COMMAND --help`).
//! MD is `mdN` or `/dev/mdN`. `add` never raises the slot count by itself: a full array is
//! refused and the caller (migrate) decides whether to `grow --raid-devices` first.
//! Exit codes: 0 ok, 1 failure, 2 usage.

use crate::error::{Context, Error, Result};
use crate::raid::{self, active_info, grow_to_max, hot_add, open_existing, path_of, remove_member, set_raid_disks};
use crate::sys::md::{self, DiskInfo};
use argh::FromArgs;
use nix::errno::Errno;
use std::io::Write;

pub const SUMMARY: &str = "superblock-less md raid1: build, add, wait, remove, grow, detail, stop";

#[derive(FromArgs)]
/// Manage superblock-less md raid1 arrays ("build" mode) without mdadm or udev.
/// MD is mdN or /dev/mdN. Exit codes: 0 ok, 1 failure, 2 usage.
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Build(BuildArgs),
    Add(AddArgs),
    Wait(WaitArgs),
    Remove(RemoveArgs),
    Grow(GrowArgs),
    Detail(DetailArgs),
    Stop(StopArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "build")]
/// Build a raid1 without superblock: one slot per DEV argument, `missing` leaves a slot empty.
/// The array's bytes are the members' bytes (data offset 0).
/// Example: mdmirror build /dev/md7 /dev/mapper/live-rw missing
struct BuildArgs {
    #[argh(positional)]
    /// the array, mdN or /dev/mdN
    md: String,
    #[argh(positional, greedy)]
    /// members in slot order; `missing` for an empty slot
    devs: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
/// Hot-add DEV to a free slot of a running array; recovery copies the data onto it.
/// DEV must be at least as big as the array. A full array is refused: grow
/// --raid-devices first.
struct AddArgs {
    #[argh(positional)]
    /// the array
    md: String,
    #[argh(positional)]
    /// the block device to add
    dev: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "wait")]
/// Wait until recovery/resync is over and every slot holds an in-sync member.
struct WaitArgs {
    #[argh(positional)]
    /// the array
    md: String,
    #[argh(switch)]
    /// show percent, speed and time left
    progress: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "remove")]
/// Mark DEV faulty and remove it from the array. Refuses the last in-sync member.
struct RemoveArgs {
    #[argh(positional)]
    /// the array
    md: String,
    #[argh(positional)]
    /// the member (device path, or its kernel name such as loop0)
    dev: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "grow")]
/// Change the number of slots and/or grow the array to its smallest member.
struct GrowArgs {
    #[argh(positional)]
    /// the array
    md: String,
    #[argh(option)]
    /// new number of slots
    raid_devices: Option<u32>,
    #[argh(option)]
    /// only `max`: use the whole of the smallest member
    size: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "detail")]
/// Show the array like `mdadm --detail`.
struct DetailArgs {
    #[argh(positional)]
    /// the array
    md: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "stop")]
/// Stop the array (refused while it is mounted or open).
struct StopArgs {
    #[argh(positional)]
    /// the array
    md: String,
}

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = crate::cli::parse(argv, "")?;
    match args.cmd {
        Cmd::Build(a) => build(&a),
        Cmd::Add(a) => add(&a),
        Cmd::Wait(a) => wait(&a),
        Cmd::Remove(a) => remove(&a),
        Cmd::Grow(a) => grow(&a),
        Cmd::Detail(a) => detail(&a),
        Cmd::Stop(a) => stop(&a),
    }
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn build(a: &BuildArgs) -> Result<()> {
    let devs: Vec<Option<std::path::PathBuf>> = a.devs.iter().map(|d| (d != "missing").then(|| crate::osarg::path(d))).collect();
    say(&format!("{}\n", raid::build(&a.md, &devs)?));
    Ok(())
}

fn add(a: &AddArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    let path = path_of(&md);
    let dev = crate::osarg::path(&a.dev);
    hot_add(&md, &dev)?;
    say(&format!("{path}: added {}; recovery runs in the background ('mdmirror wait {path}')\n", dev.display()));
    Ok(())
}

fn wait(a: &WaitArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    active_info(&md)?;
    let mut report = raid::SyncReport::on_stdout();
    raid::wait_sync(
        &md,
        |d| {
            std::thread::sleep(d);
            Ok(())
        },
        |p| {
            if a.progress {
                report.update(&md.name, p);
            }
        },
    )?;
    if a.progress {
        let n = md::members(&md.name)?.iter().filter(|m| m.slot.is_some() && m.has("in_sync")).count();
        report.finish();
        say(&format!("{}: in sync ({n} slots)\n", md.name));
    }
    Ok(())
}

fn remove(a: &RemoveArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    let dev = crate::osarg::path(&a.dev);
    remove_member(&md, &dev)?;
    say(&format!("{}: removed {}\n", path_of(&md), dev.display()));
    Ok(())
}

fn grow(a: &GrowArgs) -> Result<()> {
    let size_max = match a.size.as_deref() {
        None => false,
        Some("max") => true,
        Some(s) => return Err(Error::usage(format!("grow: --size takes only 'max', not '{s}'"))),
    };
    if a.raid_devices.is_none() && !size_max {
        return Err(Error::usage("grow: nothing to do (give --raid-devices N and/or --size max)"));
    }
    if a.raid_devices == Some(0) {
        return Err(Error::usage("grow: --raid-devices must be at least 1"));
    }
    let md = open_existing(&a.md)?;
    let path = path_of(&md);
    if let Some(n) = a.raid_devices {
        let n = n as i32;
        match set_raid_disks(&md, n)? {
            None => say(&format!("{path}: already {n} raid devices\n")),
            Some(old) => say(&format!("{path}: raid devices {old} -> {n}\n")),
        }
    }
    if size_max {
        match grow_to_max(&md)? {
            Err(cur) => say(&format!("{path}: already at maximum size ({cur} KiB)\n")),
            Ok((cur, target)) => say(&format!("{path}: size {cur} KiB -> {target} KiB\n")),
        }
    }
    Ok(())
}

fn stop(a: &StopArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    let path = path_of(&md);
    active_info(&md)?;
    md.stop().map_err(|e| match e {
        Errno::EBUSY => Error::new(path.as_str(), "in use (mounted or held open); not stopped"),
        e => Error::sys(path.as_str(), e),
    })?;
    say(&format!("{path}: stopped\n"));
    Ok(())
}

/// mdadm's size annotation: " (32.00 MiB 33.55 MB)", nothing below 5000 KiB.
fn size_note(kib: u64) -> String {
    let bytes = kib * 1024;
    let two = |v: u64| format!("{}.{:02}", v / 100, v % 100);
    if bytes < 5000 * 1024 {
        String::new()
    } else if bytes < 2 << 30 {
        let mib = (bytes * 200 / (1 << 20)).div_ceil(2);
        let mb = (bytes / 5000).div_ceil(2);
        format!(" ({} MiB {} MB)", two(mib), two(mb))
    } else {
        let gib = (bytes / (1 << 20) * 200 / 1024).div_ceil(2);
        let gb = (bytes / 5_000_000).div_ceil(2);
        format!(" ({} GiB {} GB)", two(gib), two(gb))
    }
}

/// ctime(3)-style UTC time: "Wed Nov 25 20:02:12 2026".
fn ctime_utc(t: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, m, d, hh, mm, ss) = crate::civil::from_unix(t);
    // 1970-01-01 was a Thursday.
    let wday = DAYS.get((t / 86_400 % 7) as usize).copied().unwrap_or("?");
    let mon = MONTHS.get(m.wrapping_sub(1) as usize).copied().unwrap_or("?");
    format!("{wday} {mon} {d:2} {hh:02}:{mm:02}:{ss:02} {y}")
}

/// Node a user knows the device by: /dev/mapper/NAME for dm, else /dev/KERNELNAME.
fn dev_path(major: u32, minor: u32) -> String {
    let Ok(k) = crate::fsutil::kernel_name(major, minor) else { return format!("{major}:{minor}") };
    if k.starts_with("dm-") {
        if let Ok(n) = crate::fsutil::read_attr(format!("/sys/block/{k}/dm/name")) {
            let p = format!("/dev/mapper/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    format!("/dev/{k}")
}

fn disk_state(d: &DiskInfo, raid_disks: i32) -> String {
    let mut s = Vec::new();
    if d.state & md::DISK_FAULTY != 0 {
        s.push("faulty");
    }
    if d.state & md::DISK_ACTIVE != 0 {
        s.push("active");
    }
    if d.state & md::DISK_SYNC != 0 {
        s.push("sync");
    }
    if d.state & md::DISK_WRITEMOSTLY != 0 {
        s.push("writemostly");
    }
    if d.state & (md::DISK_FAULTY | md::DISK_ACTIVE | md::DISK_SYNC | md::DISK_REMOVED) == 0 {
        s.push("spare");
        if (0..raid_disks).contains(&d.raid_disk) {
            s.push("rebuilding");
        }
    }
    s.join(" ")
}

fn row(number: &str, major: i32, minor: i32, slot: &str, state: &str, dev: &str) -> String {
    let line = format!("{number:>8}{major:>8}{minor:>9}{slot:>9}      {state}   {dev}");
    format!("{}\n", line.trim_end())
}

fn detail(a: &DetailArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    let path = path_of(&md);
    let info = active_info(&md)?;
    let disks = md.disks(&info).ctx(&path)?;
    let name = md.name.as_str();
    let attr = |k: &str| md::attr(name, k).unwrap_or_default();
    let array_kib = crate::fsutil::block_size_bytes(md::MD_MAJOR, md.minor).map(|b| b / 1024).unwrap_or(0);
    let dev_kib: u64 = attr("component_size").parse().unwrap_or(info.size.max(0) as u64);
    let level = attr("level");
    let in_sync = disks.iter().filter(|d| d.state & md::DISK_SYNC != 0 && d.state & md::DISK_FAULTY == 0).count();
    let degraded: u64 = attr("degraded").parse().unwrap_or(0);
    let action = attr("sync_action");
    let mut state = String::from(if info.state & md::ARRAY_CLEAN != 0 { "clean" } else { "active" });
    if in_sync == 0 {
        state.push_str(", FAILED");
    } else if degraded > 0 {
        state.push_str(", degraded");
    }
    let (doing, status) = match action.as_str() {
        "recover" => (", recovering", "Rebuild Status"),
        "resync" => (", resyncing", "Resync Status"),
        "check" => (", checking", "Check Status"),
        "repair" => (", repairing", "Repair Status"),
        "reshape" => (", reshaping", "Reshape Status"),
        _ => ("", ""),
    };
    state.push_str(doing);
    let kv = |k: &str, v: &str| format!("{k:>18} : {v}\n");
    let mut o = format!("{path}:\n");
    o += &kv("Version", "");
    o += &kv("Creation Time", &ctime_utc(u64::from(info.ctime)));
    o += &kv("Raid Level", if level.is_empty() { "raid1" } else { &level });
    o += &kv("Array Size", &format!("{array_kib}{}", size_note(array_kib)));
    o += &kv("Used Dev Size", &format!("{dev_kib}{}", size_note(dev_kib)));
    o += &kv("Raid Devices", &info.raid_disks.to_string());
    o += &kv("Total Devices", &info.nr_disks.to_string());
    o += "\n";
    o += &kv("State", &state);
    o += &kv("Active Devices", &info.active_disks.to_string());
    o += &kv("Working Devices", &info.working_disks.to_string());
    o += &kv("Failed Devices", &info.failed_disks.to_string());
    o += &kv("Spare Devices", &info.spare_disks.to_string());
    let policy = attr("consistency_policy");
    if !policy.is_empty() {
        o += "\n";
        o += &kv("Consistency Policy", &policy);
    }
    if let Some((done, total)) = md::parse_sync_completed(&attr("sync_completed")) {
        if !status.is_empty() {
            o += "\n";
            o += &kv(status, &format!("{}% complete", done * 100 / total));
        }
    }
    o += "\n    Number   Major   Minor   RaidDevice State\n";
    let slotted = |d: &DiskInfo| d.state & md::DISK_FAULTY == 0 && (0..info.raid_disks).contains(&d.raid_disk);
    for slot in 0..info.raid_disks {
        match disks.iter().find(|d| slotted(d) && d.raid_disk == slot) {
            Some(d) => {
                let st = disk_state(d, info.raid_disks);
                o += &row(&d.number.to_string(), d.major, d.minor, &slot.to_string(), &st, &dev_path(d.major as u32, d.minor as u32));
            }
            None => o += &row("-", 0, 0, &slot.to_string(), "removed", ""),
        }
    }
    let rest: Vec<&DiskInfo> = disks.iter().filter(|d| !slotted(d)).collect();
    if !rest.is_empty() {
        o += "\n";
        for d in rest {
            let st = disk_state(d, info.raid_disks);
            o += &row(&d.number.to_string(), d.major, d.minor, "-", &st, &dev_path(d.major as u32, d.minor as u32));
        }
    }
    say(&o);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn mdadm_size_notes() {
        assert_eq!(size_note(32768), " (32.00 MiB 33.55 MB)");
        assert_eq!(size_note(98304), " (96.00 MiB 100.66 MB)");
        assert_eq!(size_note(4096), "");
        assert_eq!(size_note(4 << 20), " (4.00 GiB 4.29 GB)");
    }

    #[test]
    fn ctime() {
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_utc(1_795_636_932), "Wed Nov 25 20:02:12 2026");
        assert_eq!(ctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn disk_states_like_mdadm() {
        let d = |raid_disk, state| DiskInfo { number: 0, major: 7, minor: 0, raid_disk, state };
        assert_eq!(disk_state(&d(0, md::DISK_ACTIVE | md::DISK_SYNC), 2), "active sync");
        assert_eq!(disk_state(&d(1, 0), 2), "spare rebuilding");
        assert_eq!(disk_state(&d(-1, 0), 2), "spare");
        assert_eq!(disk_state(&d(0, md::DISK_FAULTY), 2), "faulty");
    }

    #[test]
    fn rows_like_mdadm() {
        assert_eq!(
            row("0", 7, 0, "0", "active sync", "/dev/loop0"),
            "       0       7        0        0      active sync   /dev/loop0\n"
        );
        assert_eq!(row("-", 0, 0, "1", "removed", ""), "       -       0        0        1      removed\n");
    }
}
