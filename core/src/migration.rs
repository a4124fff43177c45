//! The rebootless install (the migrate applet is its command line; `migrate --help` and the
//! applet's module doc say what it does step by step): the checks before anything is written,
//! the copy through md, the switch in an order [`switch_sequence`] alone decides, the grow and
//! the release of the live stack.
//!
//! What it knows of the live system comes from /run/live/state through [`live_state`] alone, as a
//! [`LiveState`].

use crate::cli::mib;
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::install;
use crate::mountinfo;
use crate::raid;
use crate::snapshot;
use crate::state::{self, LiveState};
use crate::sys::md::{self, Md};
use crate::sys::sysfs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a run was asked for, beyond its target.
#[derive(Debug, Default)]
pub struct Options {
    /// The live array as the user named it (checked against the state's).
    pub md: Option<String>,
    pub no_grow: bool,
    pub keep_live: bool,
    pub no_bootloader: bool,
    /// KiB/s.
    pub speed_max: Option<u64>,
}

/// The live system's record, /run/live/state (written by /init, `migrated=` added here).
fn live_state() -> Result<LiveState> {
    LiveState::load(state::DEFAULT_PATH)
}

/// What a whole disk needs to boot by itself (kernel, initramfs, boot loaders, layout); None
/// for a partition or with `no_bootloader`.
pub fn plan_install(target: &Path, o: &Options, live: &Live) -> Result<Option<install::Plan>> {
    let t = target.display().to_string();
    if sysfs::parent_disk(live.target).is_some() || o.no_bootloader {
        return Ok(None);
    }
    let md_path = raid::path_of(&live.md);
    let uuid = std::fs::File::open(&md_path)
        .ok()
        .and_then(|f| crate::probe::probe(&f).ok().flatten())
        .and_then(|f| f.uuid)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::new(&md_path, "its filesystem has no UUID for the boot entry; use --no-bootloader"))?;
    let signed = secure_boot()?;
    let files = install::gather(&live.state.medium_mount, &live.state.medium, &live.state.booted, signed)?;
    let layout = if signed { install::gpt_layout } else { install::layout };
    let parts = layout(live.target_bytes / 512).ok_or_else(|| {
        Error::new(&t, format!("too small: {}, the boot partition alone takes {} MiB", mib(live.target_bytes), install::BOOT_MIB))
    })?;
    if parts[1].sectors * 512 / 1024 < live.array_kib {
        return Err(Error::new(
            &t,
            format!(
                "too small: {} holds {} MiB of boot partition and {} of root; {} needs {} KiB (--no-bootloader: no boot partition)",
                mib(live.target_bytes),
                install::BOOT_MIB,
                mib(parts[1].sectors * 512),
                md_path,
                live.array_kib
            ),
        ));
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    Ok(Some(install::Plan {
        files,
        uuid,
        options: install::kept_options(&cmdline),
        disk_bytes: live.target_bytes,
        parts,
    }))
}

/// Whether the box booted with Secure Boot on. Then the disk must start the signed image and
/// the box's EFI variables must take the record of the install: efivarfs is mounted writable
/// here (or made so) before anything is written, and a refusal says why.
fn secure_boot() -> Result<bool> {
    let dir = Path::new(crate::efivar::EFIVARS);
    if !dir.parent().is_some_and(Path::is_dir) {
        return Ok(false);
    }
    crate::efivar::mount_rw(dir)?;
    Ok(crate::efivar::read(dir, crate::recovery::SECURE_BOOT_VAR)?.is_some_and(|v| v == [1]))
}

pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub fn warn(text: &str) {
    let _ = std::io::stderr().write_all(format!("migrate: warning: {text}\n").as_bytes());
}

/// What preflight found out.
pub struct Live {
    pub state: LiveState,
    pub md: Md,
    /// The live-rw member (major, minor) and its path.
    pub dm: (u32, u32),
    pub dm_path: String,
    pub target: (u32, u32),
    pub target_bytes: u64,
    pub array_kib: u64,
}

pub fn kname(dev: (u32, u32)) -> String {
    fsutil::kernel_name(dev.0, dev.1).unwrap_or_else(|_| format!("{}:{}", dev.0, dev.1))
}

/// Every device the live system runs on, with what it is: the array and everything under it
/// (live-rw, the loops), the medium, and the disks those sit on.
fn live_devices(st: &LiveState, md_dev: (u32, u32)) -> Vec<((u32, u32), String)> {
    let mut out: Vec<((u32, u32), String)> = Vec::new();
    let mut todo = vec![(md_dev, format!("the live array {}", kname(md_dev)))];
    for (dev, what) in [(&st.medium, "the live medium"), (&st.squash_loop, "the squashfs loop"), (&st.rootfs_loop, "the root image loop")] {
        if let Ok(d) = fsutil::block_dev(dev) {
            todo.push((d, format!("{what} {dev}")));
        }
    }
    while let Some((d, what)) = todo.pop() {
        if out.iter().any(|(x, _)| *x == d) {
            continue;
        }
        for s in sysfs::slaves(d) {
            if let Some(sd) = sysfs::devno_of_name(&s) {
                todo.push((sd, format!("{s}, under {what}")));
            }
        }
        if let Some(p) = sysfs::parent_disk(d) {
            todo.push((p, format!("the disk holding {what}")));
        }
        out.push((d, what));
    }
    out
}

/// Mount points of a device, with their filesystem types.
fn mounts_of(dev: (u32, u32)) -> Vec<(String, String)> {
    mountinfo::read()
        .into_iter()
        .filter(|m| m.dev == dev)
        .map(|m| (m.point.to_string_lossy().into_owned(), m.fstype))
        .collect()
}

/// Step 1, nothing written: TARGET against the live stack, its mounts, holders and openers, and
/// its size; the array against the state.
pub fn preflight(tp: &Path, o: &Options) -> Result<Live> {
    let shown = tp.display().to_string();
    let t = shown.as_str();
    let target = fsutil::block_dev(tp)?;
    let st = live_state()?;
    if st.md.is_empty() {
        return Err(Error::new(
            state::DEFAULT_PATH,
            "no live array recorded: not a live system (migrate runs in a system booted by the liveroot initramfs)",
        ));
    }
    if let Some(to) = st.migrated.as_deref().filter(|m| !m.is_empty()) {
        return Err(Error::new(&st.md, format!("already migrated to {to}; reboot into it")));
    }
    let live_md = st.md.as_str();
    if let Some(m) = &o.md {
        let (name, _) = raid::md_name(m)?;
        let (live_name, _) = raid::md_name(live_md)?;
        if name != live_name {
            return Err(Error::new(m.as_str(), format!("not the live array (that is {live_md})")));
        }
    }
    let md = raid::open_existing(live_md)?;
    let info = raid::active_info(&md)?;
    let md_path = raid::path_of(&md);
    let dm_path = st.dm.clone();
    let dm = fsutil::block_dev(&dm_path)
        .map_err(|e| Error::new(&md_path, format!("its live member is gone ({e}); not a live array")))?;
    let members = md::members(&md.name)?;
    if !members.iter().any(|m| (m.major, m.minor) == dm) {
        return Err(Error::new(&md_path, format!("{dm_path} is not a member: not the live array")));
    }
    if let Some(other) = members.iter().find(|m| (m.major, m.minor) != dm) {
        let hint = if (other.major, other.minor) == target {
            "a migration to it was interrupted".to_owned()
        } else {
            format!("/dev/{} is already a member", other.name)
        };
        return Err(Error::new(
            &md_path,
            format!("{hint}; remove it first ('mdmirror remove {md_path} /dev/{}')", other.name),
        ));
    }
    if info.level != 1 {
        return Err(Error::new(&md_path, "not a raid1"));
    }

    // The target against the live stack, mounts, holders and exclusive openers.
    let md_dev = (md::MD_MAJOR, md.minor);
    for (d, what) in live_devices(&st, md_dev) {
        if d == target {
            return Err(Error::new(t, format!("is {what}; refusing to overwrite the running system")));
        }
    }
    let mut whole = vec![target];
    whole.extend(sysfs::partitions(target));
    for d in &whole {
        let it = if *d == target { String::new() } else { format!("its partition /dev/{} ", kname(*d)) };
        if let Some((mp, _)) = mounts_of(*d).first() {
            return Err(Error::new(t, format!("{it}is mounted on {mp}; unmount it first")));
        }
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        if swaps.lines().skip(1).any(|l| l.split_whitespace().next() == Some(&format!("/dev/{}", kname(*d)))) {
            return Err(Error::new(t, format!("{it}is in use as swap")));
        }
        let holders = sysfs::holders(*d);
        if !holders.is_empty() {
            return Err(Error::new(t, format!("{it}is held by {}", holders.join(", "))));
        }
    }
    raid::check_not_in_use(tp)?;
    let target_bytes = fsutil::block_size_bytes(target.0, target.1)?;
    let array_kib: u64 = md::attr(&md.name, "component_size")?.parse().unwrap_or(0);
    if target_bytes / 1024 < array_kib {
        return Err(Error::new(
            t,
            format!("too small: {} KiB, {md_path} needs {array_kib} KiB", target_bytes / 1024),
        ));
    }
    Ok(Live { state: st, md, dm, dm_path, target, target_bytes, array_kib })
}

/// "QEMU HARDDISK" from sysfs (model, else vendor, else serial).
pub fn model(dev: (u32, u32)) -> String {
    let disk = sysfs::parent_disk(dev).unwrap_or(dev);
    let k = kname(disk);
    let attr = |f: &str| fsutil::read_attr(format!("/sys/class/block/{k}/{f}")).ok().filter(|v| !v.trim().is_empty());
    match (attr("device/model"), attr("serial").or_else(|| attr("device/serial"))) {
        (Some(m), Some(s)) => format!("{}, serial {}", m.trim(), s.trim()),
        (Some(m), None) => m.trim().to_owned(),
        (None, Some(s)) => format!("serial {}", s.trim()),
        (None, None) => "unknown model".to_owned(),
    }
}

/// The array's sync speed limits, restored on every way out of the copy.
struct Speed {
    name: String,
    min: String,
    max: String,
}

impl Speed {
    fn raise(name: &str, cap: Option<u64>) -> Result<Speed> {
        // "1000 (system)": the value follows the system-wide default; "system" restores that.
        let keep = |v: String| if v.contains("system") { "system".to_owned() } else { v };
        let s = Speed {
            name: name.to_owned(),
            min: keep(md::attr(name, "sync_speed_min")?),
            max: keep(md::attr(name, "sync_speed_max")?),
        };
        // A high minimum keeps md from yielding to the writes the live system makes meanwhile.
        let max = cap.unwrap_or(4_000_000).to_string();
        md::set_attr(name, "sync_speed_max", &max)?;
        md::set_attr(name, "sync_speed_min", &max)?;
        Ok(s)
    }
}

impl Drop for Speed {
    fn drop(&mut self) {
        let _ = md::set_attr(&self.name, "sync_speed_min", &self.min);
        let _ = md::set_attr(&self.name, "sync_speed_max", &self.max);
    }
}

/// The signals that stop migrate: blocked from the first write on, read by the copy loop.
pub fn stop_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        mask.add(s);
    }
    mask
}

/// Step 2 and 3: TARGET hot-added and copied onto by md, until in sync or a signal.
pub fn copy(o: &Options, live: &Live, tp: &std::path::Path) -> Result<()> {
    use nix::sys::signal::Signal;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let shown = tp.display().to_string();
    let t = shown.as_str();
    let md = &live.md;
    let name = md.name.clone();
    let path = raid::path_of(md);

    // Signals become readable events from here on, so an interrupt always gets cleaned up.
    let mask = stop_signals();
    mask.thread_block().ctx("signals")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ctx("signalfd")?;

    let raised = raid::set_raid_disks(md, 2)?;
    let undo = |why: Error| -> Error {
        let mut msg = why.reason.clone();
        match raid::remove_member(md, tp) {
            Ok(()) => {}
            Err(e) if e.reason.starts_with("not a member") => {}
            Err(e) => msg.push_str(&format!("; could not take {t} out again: {e}")),
        }
        if let Some(old) = raised {
            if let Err(e) = raid::set_raid_disks(md, old) {
                msg.push_str(&format!("; raid devices not restored: {e}"));
            }
        }
        Error::new(why.object, msg)
    };
    let speed = Speed::raise(&name, o.speed_max).map_err(&undo)?;
    raid::hot_add(md, tp).map_err(&undo)?;
    let tdev = fsutil::block_dev(tp)?;
    say(&format!(
        "migrate: {path}: copying {} onto {t} ({}); the live system keeps running\n",
        mib(live.array_kib * 1024),
        mib(fsutil::block_size_bytes(tdev.0, tdev.1).unwrap_or(live.target_bytes))
    ));

    let mut report = raid::SyncReport::on_stdout();
    let start = Instant::now();
    let result = raid::wait_sync(
        md,
        |d| {
            let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&sfd), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, u16::try_from(d.as_millis()).unwrap_or(u16::MAX));
            match sfd.read_signal() {
                Ok(Some(si)) => {
                    let sig = Signal::try_from(si.ssi_signo as i32).map(|s| s.as_str()).unwrap_or("a signal");
                    Err(Error::new(
                        t,
                        format!("interrupted by {sig}: removed from {path}; the live system is as it was (run migrate again to start over)"),
                    ))
                }
                _ => Ok(()),
            }
        },
        |p| {
            report.update(&name, p);
        },
    );
    if result.is_ok() {
        report.finish();
    }
    drop(report);
    drop(speed);
    if let Err(e) = result {
        return Err(undo(e));
    }
    let secs = start.elapsed().as_secs_f64();
    say(&format!(
        "migrate: {path}: {t} in sync after {} s ({} MiB/s)\n",
        crate::cli::fixed1(secs),
        crate::cli::fixed1((live.array_kib as f64 / 1024.0) / secs.max(0.001))
    ));
    Ok(())
}

/// Bytes of RAM the kernel would hand out now (0 when /proc says nothing).
fn mem_available() -> u64 {
    fsutil::mem_available().unwrap_or(0)
}

fn used_bytes(dir: &str) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| (s.blocks() - s.blocks_free()) * s.fragment_size())
        .unwrap_or(0)
}

/// The steps of the switch, in an order that [`switch_sequence`] alone decides (and its test
/// checks without md).
pub trait SwitchOps {
    /// Push everything md wrote to TARGET onto it: the root filesystem, md, TARGET.
    fn flush(&mut self) -> Result<()>;
    /// Fail and remove live-rw, one slot.
    fn drop_live(&mut self) -> Result<()>;
    /// `migrated=TARGET` into the state.
    fn record(&mut self) -> Result<()>;
    /// Make a whole disk bootable (its last writes).
    fn boot(&mut self) -> Result<()>;
    fn grow(&mut self) -> Result<()>;
    fn release(&mut self);
}

/// live-rw leaves only after a flush; the state says `migrated=` as soon as it has left, so a
/// grow that fails (the system already runs on TARGET alone) leaves the record. A whole disk
/// becomes bootable only once its root is complete and on it, and before the grow (a failed
/// grow leaves a smaller, working filesystem). The live stack is released even after a failure:
/// nothing uses it any more. Err: failed before the switch (nothing changed for the user);
/// Ok(Some(e)): switched, but the boot code or the grow failed.
pub fn switch_sequence(ops: &mut dyn SwitchOps, boot: bool, grow: bool, release: bool) -> Result<Option<Error>> {
    ops.flush()?;
    ops.drop_live()?;
    ops.record()?;
    let booted = if boot { ops.boot().err() } else { None };
    let grown = if grow { ops.grow().err() } else { None };
    if release {
        ops.release();
    }
    Ok(booted.or(grown))
}

struct RealSwitch<'a> {
    pub live: &'a Live,
    pub target: &'a str,
    pub target_path: &'a std::path::Path,
    pub prepared: Option<&'a install::Prepared>,
}

impl SwitchOps for RealSwitch<'_> {
    fn flush(&mut self) -> Result<()> {
        let md = &self.live.md;
        let path = raid::path_of(md);
        // Dirty pages of the root filesystem reach TARGET only through md: write them first.
        for (mp, _) in mounts_of((md::MD_MAJOR, md.minor)) {
            let d = std::fs::File::open(&mp).ctx(&mp)?;
            nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)).ctx(&mp)?;
        }
        // fsync of a block device writes its cache and sends a cache flush: md passes it to
        // every member; TARGET's own then covers what md wrote there without the page cache.
        for (file, dev) in [(std::path::Path::new(&path), path.as_str()), (self.target_path, self.target)] {
            let f = std::fs::File::open(file).ctx(dev)?;
            f.sync_all().map_err(|e| Error::new(dev, format!("cannot flush: {}; live-rw kept", crate::error::io_reason(&e))))?;
        }
        say(&format!("migrate: {path}: flushed to {}\n", self.target));
        Ok(())
    }
    fn drop_live(&mut self) -> Result<()> {
        let md = &self.live.md;
        raid::remove_member(md, &self.live.dm_path)?;
        raid::set_raid_disks(md, 1)?;
        say(&format!("migrate: {}: runs on {} alone; {} removed from it\n", raid::path_of(md), self.target, self.live.dm_path));
        Ok(())
    }
    fn record(&mut self) -> Result<()> {
        state::set(state::DEFAULT_PATH, &[("migrated".to_owned(), self.target.to_owned())])
    }
    fn boot(&mut self) -> Result<()> {
        let Some(p) = self.prepared else { return Ok(()) };
        p.commit(Path::new(crate::efivar::EFIVARS), Path::new("/")).map_err(|e| {
            Error::new(
                e.object,
                format!("{}; the system runs on {} all the same, but the disk does not boot by itself", e.reason, p.root_part),
            )
        })
    }
    fn grow(&mut self) -> Result<()> {
        grow(&self.live.md, self.target).map_err(|e| {
            Error::new(
                e.object,
                format!(
                    "{}; {} runs on {} all the same (migrated={} recorded): grow it later (resize2fs)",
                    e.reason,
                    raid::path_of(&self.live.md),
                    self.target,
                    self.target
                ),
            )
        })
    }
    fn release(&mut self) {
        release(self.live);
    }
}

/// Steps 4 to 6 with TARGET in sync: only now may live-rw go; then the boot code, the grow, the
/// release. Err: nothing switched; Ok(Some(e)): switched, but the boot code or the grow failed.
pub fn switch(o: &Options, live: &Live, tp: &std::path::Path, prepared: Option<&install::Prepared>) -> Result<Option<Error>> {
    let shown = tp.display().to_string();
    switch_sequence(&mut RealSwitch { live, target: &shown, target_path: tp, prepared }, prepared.is_some(), !o.no_grow, !o.keep_live)
}

/// Grow the array to the target and its ext4 filesystem to the array.
fn grow(md: &Md, t: &str) -> Result<()> {
    let path = raid::path_of(md);
    match raid::grow_to_max(md)? {
        Ok((old, new)) => say(&format!("migrate: {path}: grown {} -> {} MiB\n", old >> 10, new >> 10)),
        Err(cur) => say(&format!("migrate: {path}: already {} MiB ({t} has no more room)\n", cur >> 10)),
    }
    let md_dev = (md::MD_MAJOR, md.minor);
    let Some((mp, fstype)) = mounts_of(md_dev).into_iter().next() else {
        warn(&format!("{path} is not mounted: filesystem not grown"));
        return Ok(());
    };
    if !matches!(fstype.as_str(), "ext4" | "ext3" | "ext2") {
        warn(&format!("{mp}: {fstype}, not ext4: filesystem not grown"));
        return Ok(());
    }
    let sv = nix::sys::statvfs::statvfs(mp.as_str()).ctx(&mp)?;
    let bsize = sv.block_size().max(1024);
    let before = sv.blocks() * sv.fragment_size();
    let bytes = fsutil::block_size_bytes(md_dev.0, md_dev.1)?;
    let dir = std::fs::File::open(&mp).ctx(&mp)?;
    crate::sys::ext4::resize(&dir, bytes / bsize)
        .map_err(|e| Error::new(mp.as_str(), format!("cannot grow the filesystem online: {}", e.desc())))?;
    let after = nix::sys::statvfs::statvfs(mp.as_str()).map(|s| s.blocks() * s.fragment_size()).unwrap_or(0);
    say(&format!("migrate: {mp}: {fstype} grown {} -> {}\n", mib(before), mib(after)));
    Ok(())
}

/// Take the live stack apart, bottom to top. Each step that fails is reported and skipped: the
/// system already runs on the target, so a leftover costs memory, not data.
fn release(live: &Live) {
    use nix::mount::{umount2, MntFlags};
    let mem0 = mem_available();
    let overlay_dir = live.state.overlay_dir.clone();
    let overlay_used = if overlay_dir.is_empty() { 0 } else { used_bytes(&overlay_dir) };
    let dm_name = live.dm_path.rsplit('/').next().unwrap_or("live-rw").to_owned();
    let _ = live.dm;
    if let Err(e) = snapshot::remove(&dm_name) {
        warn(&format!("{e}"));
    }
    let unmount = |dir: &str| {
        if dir.is_empty() || !std::path::Path::new(dir).exists() {
            return;
        }
        if mountinfo::at(&mountinfo::read(), std::path::Path::new(dir)).is_some() {
            if let Err(e) = umount2(dir, MntFlags::empty()) {
                warn(&format!("{dir}: cannot unmount: {}", e.desc()));
            }
        }
    };
    unmount(&overlay_dir);
    // The root image loop lets go when live-rw does, the squashfs loop at the unmount (both were
    // set to autoclear by /init); detach them here only if they are still bound.
    unmount(&live.state.squash_mount);
    // The squashfs came through dm-verity: the mapping holds the image's loops (and so the
    // medium) until it goes.
    if let Some(v) = live.state.verity_dev.strip_prefix("/dev/mapper/").filter(|v| !v.is_empty()) {
        if let Err(e) = snapshot::remove(v) {
            warn(&format!("{e}"));
        }
    }
    for dev in [live.state.rootfs_loop.as_str(), live.state.squash_loop.as_str()] {
        if dev.is_empty() {
            continue;
        }
        for _ in 0..20 {
            if crate::sys::loopdev::info(dev).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if crate::sys::loopdev::info(dev).is_ok() {
            if let Err(e) = crate::sys::loopdev::detach(dev) {
                warn(&format!("{e}"));
            }
        }
    }
    unmount(&live.state.medium_mount);
    let freed = mem_available().saturating_sub(mem0);
    say(&format!(
        "migrate: live stack released (live-rw, overlay, loops, squashfs, verity, medium): {} of RAM back \
         (the overlay held {})\n",
        mib(freed),
        mib(overlay_used)
    ));
}

#[cfg(test)]
mod tests {
    use super::{switch_sequence, SwitchOps};
    use crate::error::{Error, Result};

    /// Records the calls; `fail` names the step that fails.
    struct Log {
        calls: Vec<&'static str>,
        fail: &'static str,
    }

    impl Log {
        fn step(&mut self, name: &'static str) -> Result<()> {
            self.calls.push(name);
            if self.fail == name { Err(Error::new("x", format!("{name} failed"))) } else { Ok(()) }
        }
    }

    impl SwitchOps for Log {
        fn flush(&mut self) -> Result<()> {
            self.step("flush")
        }
        fn drop_live(&mut self) -> Result<()> {
            self.step("drop_live")
        }
        fn record(&mut self) -> Result<()> {
            self.step("record")
        }
        fn boot(&mut self) -> Result<()> {
            self.step("boot")
        }
        fn grow(&mut self) -> Result<()> {
            self.step("grow")
        }
        fn release(&mut self) {
            self.calls.push("release");
        }
    }

    fn run(fail: &'static str, grow: bool, release: bool) -> (Vec<&'static str>, Result<Option<Error>>) {
        let mut l = Log { calls: Vec::new(), fail };
        let r = switch_sequence(&mut l, false, grow, release);
        (l.calls, r)
    }

    #[test]
    fn a_disk_becomes_bootable_after_the_switch_and_before_the_grow() {
        let mut l = Log { calls: Vec::new(), fail: "" };
        assert!(matches!(switch_sequence(&mut l, true, true, true), Ok(None)));
        assert_eq!(l.calls, ["flush", "drop_live", "record", "boot", "grow", "release"]);
        // Flush fails: never bootable.
        let mut l = Log { calls: Vec::new(), fail: "flush" };
        assert!(switch_sequence(&mut l, true, true, true).is_err());
        assert_eq!(l.calls, ["flush"]);
        // The boot code fails: reported, the grow and the release still happen.
        let mut l = Log { calls: Vec::new(), fail: "boot" };
        assert_eq!(switch_sequence(&mut l, true, true, true).unwrap().unwrap().reason, "boot failed");
        assert_eq!(l.calls, ["flush", "drop_live", "record", "boot", "grow", "release"]);
    }

    #[test]
    fn flush_before_live_rw_leaves_record_before_grow() {
        let (calls, r) = run("", true, true);
        assert!(matches!(r, Ok(None)));
        assert_eq!(calls, ["flush", "drop_live", "record", "grow", "release"]);
        // A failing grow: the record is already there, the stack released, the failure returned.
        let (calls, r) = run("grow", true, true);
        assert_eq!(r.unwrap().unwrap().reason, "grow failed");
        assert_eq!(calls, ["flush", "drop_live", "record", "grow", "release"]);
        // A failing flush: live-rw stays in the array, nothing recorded.
        let (calls, r) = run("flush", true, true);
        assert!(r.is_err());
        assert_eq!(calls, ["flush"]);
        let (calls, _) = run("", false, false);
        assert_eq!(calls, ["flush", "drop_live", "record"]);
    }
}
