//! md raid1 operations on a running superblock-less array ("build" mode): what mdmirror and
//! migrate both do, over the ioctls and sysfs attributes of `sys::md`. Nothing here prints but
//! [`SyncReport`] (their progress line); errors name the device.

use crate::error::{Context, Error, Result};
use crate::progress::Progress;
use crate::sys::md::{self, ArrayInfo, DiskInfo, Md};
use nix::errno::Errno;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// "md7" or "/dev/md7" → ("md7", 7).
pub fn md_name(arg: &str) -> Result<(String, u32)> {
    let name = arg.strip_prefix("/dev/").unwrap_or(arg);
    match name.strip_prefix("md").map(str::parse::<u32>) {
        Some(Ok(n)) if n < (1 << 20) && !name[2..].starts_with('+') => Ok((name.to_owned(), n)),
        _ => Err(Error::usage(format!("'{arg}' is not an md device (expected mdN or /dev/mdN)"))),
    }
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
pub fn check_not_in_use(file: impl AsRef<Path>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = file.as_ref();
    let path = file.display().to_string();
    match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(file) {
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

/// Hot-add `dev` into a free slot of a running raid1 (HOT_ADD_DISK, never the SYNC flag: md
/// copies the data onto it). Refuses a full array, a member, a too-small or busy device.
pub fn hot_add(md: &Md, file: impl AsRef<Path>) -> Result<()> {
    let file = file.as_ref();
    let dev = file.display().to_string();
    let dev = dev.as_str();
    let path = path_of(md);
    let info = active_info(md)?;
    if info.level != 1 {
        return Err(Error::new(path, "not a raid1"));
    }
    let (ma, mi) = crate::fsutil::block_dev(file)?;
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
    check_not_in_use(file)?;
    md.hot_add(ma, mi).map_err(|e| match e {
        Errno::ENOSPC => Error::new(dev, format!("too small for {path}")),
        Errno::EINVAL => Error::new(dev, format!("{path} refused it (in use, gone, or unusable)")),
        Errno::EROFS => Error::new(path.as_str(), "read-only array"),
        e => Error::new(dev, format!("cannot add to {path}: {}", e.desc())),
    })
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

/// A member named by device path, or by kernel name when its node is gone.
pub fn find_member(md: &Md, file: impl AsRef<Path>) -> Result<md::Member> {
    let file = file.as_ref();
    let dev = file.display().to_string();
    let members = md::members(&md.name)?;
    let found = match crate::fsutil::block_dev(file) {
        Ok(devno) => members.into_iter().find(|m| (m.major, m.minor) == devno),
        Err(e) => {
            let base = file.file_name().unwrap_or(file.as_os_str());
            match members.into_iter().find(|m| base == m.name.as_str()) {
                Some(m) => Some(m),
                None => return Err(e),
            }
        }
    };
    found.ok_or_else(|| Error::new(dev, format!("not a member of {}", path_of(md))))
}

/// Fail (unless already faulty) and remove member `dev`; never the last in-sync one.
pub fn remove_member(md: &Md, file: impl AsRef<Path>) -> Result<()> {
    use std::time::Duration;
    let file = file.as_ref();
    let dev = file.display().to_string();
    let dev = dev.as_str();
    let path = path_of(md);
    active_info(md)?;
    let m = find_member(md, file)?;
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


/// Where a recovery stands, as md reports it (`sync_completed` in sectors, `sync_speed`).
pub struct SyncProgress {
    pub action: String,
    pub done: u64,
    pub total: u64,
    pub speed_kib: u64,
}

/// Wait until every slot of `md` holds an in-sync member. Between looks `pause` waits about
/// half a second (and may end the wait with its error: a signal, say); `report` sees each
/// progress md reports.
pub fn wait_sync(md: &Md, mut pause: impl FnMut(Duration) -> Result<()>, mut report: impl FnMut(&SyncProgress)) -> Result<()> {
    let name = md.name.as_str();
    let mut idle_since = None;
    while !sync_done(name, &mut idle_since)? {
        // Progress is for show: an attribute that cannot be read now is skipped, not fatal.
        let action = md::attr(name, "sync_action").unwrap_or_default();
        if let Some((done, total)) = md::attr(name, "sync_completed").ok().and_then(|s| md::parse_sync_completed(&s)) {
            let speed_kib = md::attr(name, "sync_speed").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            report(&SyncProgress { action, done, total, speed_kib });
        }
        pause(Duration::from_millis(500))?;
    }
    Ok(())
}

/// A recovery's progress through the one reporter: label `md7 recover`, md's sectors as bytes,
/// md's own `sync_speed` as the rate. The reporter is made at the first report, when the size
/// is known.
pub struct SyncReport {
    out: Option<(bool, Box<dyn std::io::Write>)>,
    bar: Option<(u64, Progress)>,
}

impl SyncReport {
    pub fn new(tty: bool, out: Box<dyn std::io::Write>) -> Self {
        SyncReport { out: Some((tty, out)), bar: None }
    }

    pub fn on_stdout() -> Self {
        use std::io::IsTerminal;
        Self::new(std::io::stdout().is_terminal(), Box::new(std::io::stdout()))
    }

    pub fn update(&mut self, name: &str, p: &SyncProgress) {
        let total = p.total.saturating_mul(512);
        if let Some((tty, out)) = self.out.take() {
            self.bar = Some((total, Progress::new(&format!("{name} {}", p.action), Some(total), tty, out)));
        }
        if let Some((_, bar)) = self.bar.as_mut() {
            bar.update_with_rate(p.done.saturating_mul(512), p.speed_kib.saturating_mul(1024));
        }
    }

    /// The final 100 % line (none when md never reported progress: nothing was copied).
    pub fn finish(&mut self) {
        if let Some((total, bar)) = self.bar.as_mut() {
            bar.finish(*total);
        }
    }
}

/// Build the superblock-less raid1 `md` from `devs` (a slot each; `missing` leaves one empty)
/// and start it; the summary line. On failure the array is stopped again.
pub fn build(md_arg: &str, devs: &[Option<PathBuf>]) -> Result<String> {
    let (name, minor) = md_name(md_arg)?;
    let path = format!("/dev/{name}");
    if devs.is_empty() {
        return Err(Error::usage("build: no member devices given\nTry 'mdmirror build --help' for more information."));
    }
    // (slot, path, major, minor) for the present members; checked before md is touched.
    let mut present = Vec::new();
    for (slot, dev) in devs.iter().enumerate() {
        let Some(dev) = dev else { continue };
        let shown = dev.display().to_string();
        let (ma, mi) = crate::fsutil::block_dev(dev)?;
        if present.iter().any(|(_, _, a, b): &(usize, String, u32, u32)| (*a, *b) == (ma, mi)) {
            return Err(Error::new(shown, "given twice"));
        }
        if ma == md::MD_MAJOR && mi == minor {
            return Err(Error::new(shown, "is the array itself"));
        }
        check_not_in_use(dev)?;
        present.push((slot, shown, ma, mi));
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
    let n = devs.len() as i32;
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
        for (slot, dev, ma, mi) in &present {
            let (slot, ma, mi) = (*slot, *ma, *mi);
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
    Ok(format!("{path}: raid1 built, {n} slots, {} present ({}), {kib} KiB", present.len(), devs.iter().map(|d| d.as_ref().map_or("missing".to_owned(), |d| d.display().to_string())).collect::<Vec<_>>().join(" ")))
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
    fn sync_progress_in_bytes_with_md_speed() {
        let b = crate::progress::Buf::default();
        let mut r = SyncReport::new(false, Box::new(b.clone()));
        let at = |done| SyncProgress { action: "recover".into(), done, total: 65536, speed_kib: 2048 };
        for done in (0..65536).step_by(1000) {
            r.update("md7", &at(done));
        }
        r.finish();
        let out = b.take();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 10, "{out}");
        // 7000 sectors of 65536: 3.4 MiB of 32 MiB at md's 2 MiB/s, 14 s to go.
        assert_eq!(lines.first(), Some(&"md7 recover: 3.4M/32.0M  10% 2.0M/s ETA 0:14"), "{out}");
        assert_eq!(lines.last(), Some(&"md7 recover: 32.0M/32.0M 100% 2.0M/s done"), "{out}");
        // No progress seen: no final line either.
        SyncReport::new(false, Box::new(b.clone())).finish();
        assert_eq!(b.take(), "");
    }
}
