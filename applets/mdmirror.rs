//! mdmirror — superblock-less md raid1 ("build" mode) with plain md ioctls and sysfs: no mdadm,
//! no udev. Used to run the live root on a one-legged mirror and to migrate it onto a disk.
//!
//! ```text
//! mdmirror build MD DEV|missing...       raid1, one slot per argument, no superblock
//! mdmirror add MD DEV                    hot-add DEV into a free slot; recovery starts
//! mdmirror wait MD [--progress]          wait until every slot is in sync
//! mdmirror remove MD DEV                 fail and remove DEV (never the last in-sync member)
//! mdmirror grow MD [--raid-devices N] [--size max]
//! mdmirror detail MD                     like `mdadm --detail`
//! mdmirror stop MD
//! ```
//! MD is `mdN` or `/dev/mdN`. `add` never raises the slot count by itself: a full array is
//! refused and the caller (migrate) decides whether to `grow --raid-devices` first.
//! Exit codes: 0 ok, 1 failure, 2 usage.

use crate::error::{Context, Error, Result};
use crate::sys::md::{self, ArrayInfo, DiskInfo, Md};
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

/// "md7" or "/dev/md7" → ("md7", 7).
pub fn md_name(arg: &str) -> Result<(String, u32)> {
    let name = arg.strip_prefix("/dev/").unwrap_or(arg);
    match name.strip_prefix("md").map(str::parse::<u32>) {
        Some(Ok(n)) if n < (1 << 20) && !name[2..].starts_with('+') => Ok((name.to_owned(), n)),
        _ => Err(Error::usage(format!("'{arg}' is not an md device (expected mdN or /dev/mdN)"))),
    }
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// An existing array's node, opened (made with mknod when /dev has none).
pub fn open_existing(arg: &str) -> Result<Md> {
    let (name, minor) = md_name(arg)?;
    let path = format!("/dev/{name}");
    // Opening /dev/mdN would create an empty array; look in sysfs first.
    if !std::path::Path::new(&format!("/sys/block/{name}")).exists() {
        return Err(Error::new(path, "no such array"));
    }
    crate::fsutil::mknod_block(&path, md::MD_MAJOR, minor)?;
    Md::open(&path, &name, minor).ctx(&path)
}

pub fn path_of(md: &Md) -> String {
    format!("/dev/{}", md.name)
}

pub fn active_info(md: &Md) -> Result<ArrayInfo> {
    match md.array_info() {
        Ok(i) => Ok(i),
        Err(Errno::ENODEV) => Err(Error::new(path_of(md), "not active")),
        Err(e) => Err(Error::sys(path_of(md), e)),
    }
}

/// Refuse a device something else holds (mounted, in another array, under dm) before md
/// gets to see it: md's own error for that case is a bare EINVAL or EBUSY.
pub fn check_not_in_use(path: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            Err(Error::new(path, "in use (mounted, or held by another array or mapping)"))
        }
        Err(e) => Err(Error::io(path, &e)),
    }
}

/// Size of a block device in KiB.
pub fn dev_kib(major: u32, minor: u32) -> Result<u64> {
    Ok(crate::fsutil::block_size_bytes(major, minor)? / 1024)
}

fn build(a: &BuildArgs) -> Result<()> {
    let (name, minor) = md_name(&a.md)?;
    let path = format!("/dev/{name}");
    if a.devs.is_empty() {
        return Err(Error::usage("build: no member devices given\nTry 'mdmirror build --help' for more information."));
    }
    // (slot, path, major, minor) for the present members; checked before md is touched.
    let mut present = Vec::new();
    for (slot, dev) in a.devs.iter().enumerate() {
        if dev == "missing" {
            continue;
        }
        let (ma, mi) = crate::fsutil::block_dev(dev)?;
        if present.iter().any(|&(_, _, a, b): &(usize, &String, u32, u32)| (a, b) == (ma, mi)) {
            return Err(Error::new(dev.as_str(), "given twice"));
        }
        if ma == md::MD_MAJOR && mi == minor {
            return Err(Error::new(dev.as_str(), "is the array itself"));
        }
        check_not_in_use(dev)?;
        present.push((slot, dev, ma, mi));
    }
    if present.is_empty() {
        return Err(Error::usage("build: at least one member must be present (not 'missing')"));
    }
    let sys = format!("/sys/block/{name}/md/array_state");
    if let Ok(state) = crate::fsutil::read_attr(&sys) {
        if state != "clear" && state != "inactive" {
            return Err(Error::new(path, format!("already in use (array state {state})")));
        }
    }
    // EEXIST (already created) and a missing file (old kernels: create-on-open) are both fine.
    let _ = md::new_array(&name);
    crate::fsutil::mknod_block(&path, md::MD_MAJOR, minor)?;
    let md = Md::open(&path, &name, minor).ctx(&path)?;
    if md.array_info().is_ok() {
        return Err(Error::new(path, "already active"));
    }
    let n = a.devs.len() as i32;
    let info = ArrayInfo {
        level: 1,
        raid_disks: n,
        nr_disks: present.len() as i32,
        md_minor: minor as i32,
        not_persistent: 1,
        active_disks: present.len() as i32,
        working_disks: present.len() as i32,
        failed_disks: n - present.len() as i32,
        ..ArrayInfo::default()
    };
    let result = (|| -> Result<()> {
        md.set_array_info(&info).map_err(|e| Error::new(path.as_str(), format!("cannot set up raid1: {}", e.desc())))?;
        for &(slot, dev, ma, mi) in &present {
            let disk = DiskInfo {
                number: slot as i32,
                major: ma as i32,
                minor: mi as i32,
                raid_disk: slot as i32,
                state: md::DISK_ACTIVE | md::DISK_SYNC,
            };
            md.add_new_disk(&disk).map_err(|e| match e {
                Errno::EBUSY => Error::new(dev.as_str(), "in use (mounted, or held by another array or mapping)"),
                e => Error::new(dev.as_str(), format!("cannot add to {path}: {}", e.desc())),
            })?;
        }
        md.run().map_err(|e| Error::new(path.as_str(), format!("cannot start the array: {}", e.desc())))
    })();
    if let Err(e) = result {
        // Leave nothing half-made behind.
        let _ = md.stop();
        return Err(e);
    }
    let kib = crate::fsutil::block_size_bytes(md::MD_MAJOR, minor).map(|b| b / 1024).unwrap_or(0);
    say(&format!(
        "{path}: raid1 built, {n} slots, {} present ({}), {kib} KiB\n",
        present.len(),
        a.devs.join(" ")
    ));
    Ok(())
}

fn add(a: &AddArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    let path = path_of(&md);
    hot_add(&md, &a.dev)?;
    say(&format!("{path}: added {}; recovery runs in the background ('mdmirror wait {path}')\n", a.dev));
    Ok(())
}

/// Hot-add `dev` into a free slot of a running raid1 (HOT_ADD_DISK, never the SYNC flag: md
/// copies the data onto it). Refuses a full array, a member, a too-small or busy device.
pub fn hot_add(md: &Md, dev: &str) -> Result<()> {
    let path = path_of(md);
    let info = active_info(md)?;
    if info.level != 1 {
        return Err(Error::new(path, "not a raid1"));
    }
    let (ma, mi) = crate::fsutil::block_dev(dev)?;
    if md::members(&md.name)?.iter().any(|m| (m.major, m.minor) == (ma, mi)) {
        return Err(Error::new(dev, format!("already a member of {path}")));
    }
    if info.working_disks >= info.raid_disks {
        return Err(Error::new(
            path.as_str(),
            format!(
                "no free slot (all {} raid devices in use); run 'mdmirror grow {path} --raid-devices {}' first",
                info.raid_disks,
                info.raid_disks + 1
            ),
        ));
    }
    let need: u64 = md::attr(&md.name, "component_size")?.parse().unwrap_or(0);
    let have = dev_kib(ma, mi)?;
    if have < need {
        return Err(Error::new(dev, format!("too small: {have} KiB, {path} needs {need} KiB")));
    }
    check_not_in_use(dev)?;
    md.hot_add(ma, mi).map_err(|e| match e {
        Errno::ENOSPC => Error::new(dev, format!("too small for {path}")),
        Errno::EINVAL => Error::new(dev, format!("{path} refused it (in use, gone, or unusable)")),
        Errno::EROFS => Error::new(path.as_str(), "read-only array"),
        e => Error::new(dev, format!("cannot add to {path}: {}", e.desc())),
    })
}

/// One progress line: "md7: recover 42.5% (13.6/32.0 MiB) 4.2 MiB/s ETA 0:00:05".
pub fn progress_line(name: &str, action: &str, done: u64, total: u64, speed_kib: u64) -> String {
    let pct = done as f64 * 100.0 / total as f64;
    let mib = |sectors: u64| sectors as f64 / 2048.0;
    let eta = match (total.saturating_sub(done) / 2).checked_div(speed_kib) {
        _ if done >= total => "0:00:00".to_owned(),
        Some(s) => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        None => "?".to_owned(),
    };
    format!(
        "{name}: {action} {pct:.1}% ({:.1}/{:.1} MiB) {:.1} MiB/s ETA {eta}",
        mib(done),
        mib(total),
        speed_kib as f64 / 1024.0
    )
}

/// One look at a recovering array: Ok(true) when recovery is over and every slot holds an
/// in-sync member; an error when it is frozen or will not start (`idle_since` tracks that).
pub fn sync_done(name: &str, idle_since: &mut Option<std::time::Instant>) -> Result<bool> {
    use std::time::{Duration, Instant};
    let path = format!("/dev/{name}");
    let action = md::attr(name, "sync_action")?;
    let degraded: u64 = md::attr(name, "degraded")?.parse().unwrap_or(0);
    let members = md::members(name)?;
    let working = members.iter().filter(|m| !m.has("faulty"));
    let slots_in_sync = working.clone().filter(|m| m.slot.is_some()).all(|m| m.has("in_sync"));
    if action == "idle" && degraded == 0 && slots_in_sync {
        return Ok(true);
    }
    if action == "frozen" {
        return Err(Error::new(path, "recovery is frozen (sync_action)"));
    }
    if action == "idle" && degraded > 0 {
        if !working.clone().any(|m| !m.has("in_sync")) {
            return Err(Error::new(path, "degraded, and no spare to recover onto (add a disk first)"));
        }
        let state = md::attr(name, "array_state")?;
        if state == "readonly" || state == "read-auto" {
            return Err(Error::new(path, format!("array is {state}: recovery cannot start")));
        }
        // The md thread picks a new spare up within moments; a long idle spell means it won't.
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() > Duration::from_secs(30) {
            return Err(Error::new(path, "recovery does not start"));
        }
    } else {
        *idle_since = None;
    }
    Ok(false)
}

fn wait(a: &WaitArgs) -> Result<()> {
    use std::io::IsTerminal;
    use std::time::{Duration, Instant};
    let md = open_existing(&a.md)?;
    active_info(&md)?;
    let name = md.name.clone();
    let tty = a.progress && std::io::stdout().is_terminal();
    let mut last: Option<(Instant, f64)> = None;
    let mut idle_since: Option<Instant> = None;
    let mut shown = false;
    loop {
        if sync_done(&name, &mut idle_since)? {
            break;
        }
        let action = md::attr(&name, "sync_action")?;
        if a.progress {
            if let Some((done, total)) = md::parse_sync_completed(&md::attr(&name, "sync_completed")?) {
                let speed = md::attr(&name, "sync_speed")?.parse().unwrap_or(0);
                let line = progress_line(&name, &action, done, total, speed);
                let pct = done as f64 * 100.0 / total as f64;
                if tty {
                    say(&format!("\r{line}\x1b[K"));
                    shown = true;
                } else if last.is_none_or(|(t, p)| pct >= p + 5.0 || t.elapsed() >= Duration::from_secs(10)) {
                    say(&format!("{line}\n"));
                    last = Some((Instant::now(), pct));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if a.progress {
        let n = md::members(&name)?.iter().filter(|m| m.slot.is_some() && m.has("in_sync")).count();
        let line = format!("{name}: in sync ({n} slots)");
        say(&if shown { format!("\r{line}\x1b[K\n") } else { format!("{line}\n") });
    }
    Ok(())
}

/// A member named by device path, or by kernel name when its node is gone.
fn find_member(md: &Md, dev: &str) -> Result<md::Member> {
    let members = md::members(&md.name)?;
    let found = match crate::fsutil::block_dev(dev) {
        Ok(devno) => members.into_iter().find(|m| (m.major, m.minor) == devno),
        Err(e) => {
            let base = dev.rsplit('/').next().unwrap_or(dev);
            match members.into_iter().find(|m| m.name == base) {
                Some(m) => Some(m),
                None => return Err(e),
            }
        }
    };
    found.ok_or_else(|| Error::new(dev, format!("not a member of {}", path_of(md))))
}

fn remove(a: &RemoveArgs) -> Result<()> {
    let md = open_existing(&a.md)?;
    remove_member(&md, &a.dev)?;
    say(&format!("{}: removed {}\n", path_of(&md), a.dev));
    Ok(())
}

/// Fail (unless already faulty) and remove member `dev`; never the last in-sync one.
pub fn remove_member(md: &Md, dev: &str) -> Result<()> {
    use std::time::Duration;
    let path = path_of(md);
    active_info(md)?;
    let m = find_member(md, dev)?;
    if !m.has("faulty") {
        let in_sync = md::members(&md.name)?.iter().filter(|x| !x.has("faulty") && x.has("in_sync")).count();
        if m.has("in_sync") && in_sync <= 1 {
            return Err(Error::new(
                dev,
                format!(
                    "refusing to remove the last in-sync member of {path}: failing it breaks the \
                     array and every write fails (add a disk and 'mdmirror wait' first)"
                ),
            ));
        }
        md.set_faulty(m.major, m.minor).map_err(|e| Error::new(dev, format!("cannot mark faulty: {}", e.desc())))?;
    }
    // Pending I/O on the failed member keeps it busy for a moment.
    let mut tries = 0;
    loop {
        match md.hot_remove(m.major, m.minor) {
            Ok(()) => return Ok(()),
            Err(Errno::EBUSY) if tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(Error::new(dev, format!("marked faulty but not removed: {}", e.desc()))),
        }
    }
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

/// A freshly built array is auto-read-only until its first write (md-mod start_ro=1), and md
/// refuses reshapes with EROFS then. HOT_ADD_DISK switches such an array to read-write by
/// itself; this does the same for the other changes.
pub fn make_writable(md: &Md) -> Result<()> {
    if md::attr(&md.name, "array_state")? == "read-auto" {
        md::set_attr(&md.name, "array_state", "active")?;
    }
    Ok(())
}

/// Set the number of slots; Some(old) when it changed, None when it already was `n`.
pub fn set_raid_disks(md: &Md, n: i32) -> Result<Option<i32>> {
    let path = path_of(md);
    let info = active_info(md)?;
    make_writable(md)?;
    if n == info.raid_disks {
        return Ok(None);
    }
    let action = md::attr(&md.name, "sync_action")?;
    if action != "idle" {
        return Err(Error::new(path, format!("busy ({action} running); wait for it first")));
    }
    let slotted = md::members(&md.name)?.iter().filter(|m| m.slot.is_some()).count() as i32;
    if slotted > n {
        return Err(Error::new(
            path,
            format!("{slotted} members hold slots, {n} slots cannot take them; remove members first"),
        ));
    }
    let new = ArrayInfo { raid_disks: n, ..info };
    md.set_array_info(&new).map_err(|e| match e {
        Errno::EBUSY => Error::new(path.as_str(), "busy (recovery running?); try again after 'mdmirror wait'"),
        Errno::EROFS => Error::new(path.as_str(), "read-only array"),
        e => Error::new(path.as_str(), format!("cannot change raid devices: {}", e.desc())),
    })?;
    Ok(Some(info.raid_disks))
}

/// Grow the array to its smallest member: Ok((old, new)) KiB, or Err(current) when it
/// already is that big.
pub fn grow_to_max(md: &Md) -> Result<std::result::Result<(u64, u64), u64>> {
    let path = path_of(md);
    active_info(md)?;
    make_writable(md)?;
    let members = md::members(&md.name)?;
    let mut target = u64::MAX;
    for m in &members {
        target = target.min(dev_kib(m.major, m.minor)?);
    }
    let cur: u64 = md::attr(&md.name, "component_size")?.parse().unwrap_or(0);
    if members.is_empty() || target <= cur {
        return Ok(Err(cur));
    }
    // md only grows into space each member has recorded as usable; 0 means "the whole device"
    // for slotted members of a build array, members without a slot need the number.
    for m in &members {
        let attr = format!("dev-{}/size", m.name);
        if md::set_attr(&md.name, &attr, "0").is_err() {
            md::set_attr(&md.name, &attr, &dev_kib(m.major, m.minor)?.to_string())?;
        }
    }
    md::set_attr(&md.name, "component_size", &target.to_string())
        .map_err(|e| Error::new(path.as_str(), format!("cannot grow to {target} KiB: {}", e.reason)))?;
    Ok(Ok((cur, target)))
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
    let days = t / 86400;
    let secs = t % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {y}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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
    fn md_names() {
        assert_eq!(md_name("md7").unwrap(), ("md7".to_owned(), 7));
        assert_eq!(md_name("/dev/md127").unwrap(), ("md127".to_owned(), 127));
        for bad in ["md", "sda", "/dev/mdx", "md-1", "md+1", "/dev/md/7", "7"] {
            assert_eq!(md_name(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

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

    #[test]
    fn progress_text() {
        assert_eq!(
            progress_line("md7", "recover", 16384, 65536, 2048),
            "md7: recover 25.0% (8.0/32.0 MiB) 2.0 MiB/s ETA 0:00:12"
        );
        assert!(progress_line("md7", "recover", 0, 65536, 0).ends_with("ETA ?"));
    }
}
