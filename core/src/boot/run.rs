//! The system side of the boot: [`Real`] (the [`Env`] of [`choose`]) and the steps around it:
//! the command line, modules, the medium, the snapshot, md and the state file.

use super::{choose, plan, take, Chosen, Env, Inputs, Mounted, Rescue};
use crate::cmdline::Live;
use crate::error::{Context, Error, Result};
use crate::fsutil::kmsg;
use crate::select::{self, Check, Options, Ram, Selected};
use crate::state::LiveState;
use crate::sys::loopdev;
use crate::trial::{Ident, Start};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const L: &str = "/run/live";
const MEDIUM: &str = "/run/live/medium";
const SQUASHFS: &str = "/run/live/squashfs";
const OVERLAY: &str = "/run/live/overlay";
const RAMDIR: &str = "/run/live/ram";
const LOCAL_RAM: &str = "/run/live/ram/local";
const SYSROOT: &str = "/sysroot";
const BUILTIN_KEY: &str = "/etc/liveroot/pubkey";
const RUN_KEY: &str = "/run/live/pubkey";
const MIN_VERSION_FILE: &str = "/etc/liveroot/min-version";
const FETCH_CACHE: &str = "/run/live/fetch.cache";
const VERITY_NAME: &str = "live-base";
const SNAPSHOT_NAME: &str = "live-rw";
/// Made when rd.break is on the command line: /init offers its shell before switch_root.
pub const BREAK_FILE: &str = "/run/live/rd.break";

/// A line on the console (stderr is the console under /init).
fn say(line: &str) {
    let _ = std::io::stderr().write_all(format!("liveroot: {line}\n").as_bytes());
}


/// With liveroot.stamps: the stamp of `step` on the console (core/src/stamp.rs).
fn stamp(live: &Live, step: &str) {
    if let (true, Some(t)) = (live.stamps, crate::stamp::now()) {
        eprintln_line(&crate::stamp::line(step, t));
    }
}

fn mounted(dir: &str) -> bool {
    crate::fsutil::is_mountpoint(Path::new(dir))
}

fn mount(dev: &str, dir: &str, fstype: &str, flags: nix::mount::MsFlags, data: Option<&str>) -> Result<()> {
    std::fs::create_dir_all(dir).ctx(dir)?;
    nix::mount::mount(Some(dev), dir, Some(fstype), flags, data).ctx(format!("{dev} on {dir} ({fstype})"))
}

/// Mount `dev` read-only or as `flags` at `dir` with the type probe finds; an unknown one is
/// tried as each type the kernel has, as mount -t auto does.
fn mount_probed(dev: &str, dir: &str, flags: nix::mount::MsFlags, data: Option<&str>) -> Result<String> {
    let found = crate::probe::open_probe(Path::new(dev)).ok().flatten().map(|f| f.fstype).filter(|t| !t.is_empty());
    if let Some(t) = found {
        return mount(dev, dir, t, flags, data).map(|()| t.to_owned());
    }
    let types = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    for t in types.lines().filter(|l| !l.starts_with("nodev")).map(str::trim) {
        if mount(dev, dir, t, flags, data).is_ok() {
            return Ok("auto".to_owned());
        }
    }
    Err(Error::new(dev, format!("cannot mount on {dir}: unknown filesystem")))
}

/// The system the boot runs on.
struct Real<'a> {
    live: &'a Live,
    key: Option<minisign_verify::PublicKey>,
    key_file: Option<String>,
    min_version: u64,
    plan: plan::SelectPlan,
    /// The medium's image directory and name, the medium's mount point.
    dir: PathBuf,
    name: String,
    medium_mount: Option<String>,
}

impl Env for Real<'_> {
    fn select(&mut self, skip: &[String]) -> Result<Selected> {
        let good_floor = {
            let f = self.dir.join(crate::trial::FILE);
            if f.exists() {
                match crate::trial::read(&f) {
                    Ok(cur) => cur.and_then(|c| c.record).map_or(0, |r| r.floor),
                    Err(e) => {
                        say(&format!("verify: {e}: no floor from it"));
                        0
                    }
                }
            } else {
                0
            }
        };
        let ram = match self.plan.ram {
            plan::RamCopy::No => None,
            r => Some(Ram { dir: PathBuf::from(LOCAL_RAM), minmem: self.live.minmem, unless_verity: r == plan::RamCopy::UnlessVerity }),
        };
        let o = Options { key: self.key.as_ref(), min_version: self.min_version, good_floor, check: self.plan.check, ram, skip: skip.to_vec() };
        let r = select::select(&self.dir, &self.name, &o, &mut |e| say(&format!("verify: {e}")));
        stamp(self.live, "verified");
        r
    }

    fn take(&mut self, img: &Ident, start: Option<Start>, peek: bool) -> take::Taken {
        // After a kexec the loader's kernel took this boot's try already (kexec.rs).
        let peek = peek || self.live.kexec.is_some();
        let file = self.dir.join(crate::trial::FILE);
        let t = take::take(Ok(&file), Some(img), start, peek, false);
        if !peek && !t.note.is_empty() {
            say(&format!("trial: {}", t.note));
        }
        t
    }

    fn fetch(&mut self, above: Option<u64>, local: Option<&Selected>) -> std::result::Result<(PathBuf, String), String> {
        let r = self.fetch_newer(above, local);
        let (res, log) = match r {
            Ok((p, last, log)) => (Ok((p, last)), log),
            Err((why, log)) => (Err(why), log),
        };
        kmsg(6, &format!("fetch: {log}"));
        res
    }

    fn check_fetched(&mut self, file: &Path) -> Result<Selected> {
        let dir = file.parent().unwrap_or(Path::new("/"));
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let o = Options { key: self.key.as_ref(), min_version: self.min_version, good_floor: 0, check: Check::Manifest, ram: None, skip: Vec::new() };
        select::select(dir, &name, &o, &mut |_| {})
    }

    fn mount(&mut self, file: &Path, verity: Option<(&[u8], &Path)>) -> std::result::Result<Mounted, String> {
        let mut m = Mounted::default();
        let r = mount_image(file, verity, &mut m);
        if r.is_err() {
            self.unmount(&m);
        }
        stamp(self.live, "image");
        r.map(|()| m)
    }

    fn unmount(&mut self, m: &Mounted) {
        if !m.rootfs_loop.is_empty() {
            let _ = loopdev::detach(&m.rootfs_loop);
        }
        if mounted(SQUASHFS) {
            let _ = nix::mount::umount(SQUASHFS);
        }
        if let Some(v) = &m.verity_name {
            let _ = crate::snapshot::remove(v);
        }
    }

    fn fetched_kernel_ok(&mut self, file: &Path, m: &Mounted) -> std::result::Result<(), String> {
        let dir = file.parent().unwrap_or(Path::new("/"));
        let files = crate::pairs::Files::beside(file, dir.join("SHA256SUMS"), dir.join("SHA256SUMS.minisig"));
        let t = crate::pairs::check_files(&files, &file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), self.key.as_ref())
            .map_err(|e| e.to_string())?;
        let running = super::kexec::running_release();
        let kver = crate::modprobe::kernel_release();
        let listed = t.boot.is_some();
        let needs_look = listed && !(t.version.is_some() && t.version == running);
        let has = needs_look && root_has_modules(&m.rootfs_loop, &kver);
        super::kexec::fetched_runs_here(listed, t.version, running, has, &kver)
    }

    fn discard_fetched(&mut self, file: &Path) {
        let dir = file.parent().unwrap_or(Path::new("/"));
        let p = crate::pairs::Files::beside(file, dir.join(crate::manifest::SUMS), dir.join(crate::manifest::SIG));
        for f in [p.verity, p.roothash, p.kernel, p.initrd, p.uki, p.image, p.manifest, p.sig] {
            let _ = std::fs::remove_file(f);
        }
    }

    fn trial_file(&mut self, tries: u8) {
        let file = self.dir.join(crate::trial::FILE);
        let Some(mnt) = self.medium_mount.clone() else { return };
        if !plan::create_trial_file(file.exists(), tries) {
            return;
        }
        use nix::mount::MsFlags;
        let remount = |ro: bool| {
            let f = MsFlags::MS_REMOUNT | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
            nix::mount::mount(None::<&str>, mnt.as_str(), None::<&str>, f, None::<&str>)
        };
        if let Err(e) = remount(false) {
            say(&format!("trial: {}: missing, and the medium cannot be written ({}) to create it", file.display(), e.desc()));
            return;
        }
        match crate::trial::create(&file) {
            Ok(()) => {
                say(&format!("trial: created {} (the medium had none) to count the tries of a fetched image", file.display()));
                kmsg(6, &format!("trial: created {}", file.display()));
            }
            Err(e) => {
                say(&format!("trial: cannot create {}: {e}", file.display()));
                let _ = std::fs::remove_file(&file);
            }
        }
        if remount(true).is_err() {
            say(&format!("trial: {mnt}: cannot remount read-only; it stays read-write"));
        }
    }

    fn free_ram_copy(&mut self, s: &Selected) {
        if s.in_ram {
            let _ = std::fs::remove_file(&s.file);
        }
    }

    fn release_local_ram(&mut self) {
        if mounted(LOCAL_RAM) {
            let _ = nix::mount::umount(LOCAL_RAM);
        }
    }

    fn say(&mut self, line: &str) {
        say(line);
    }

    fn log(&mut self, line: &str) {
        kmsg(6, line);
    }
}

/// The squashfs at SQUASHFS (through dm-verity, else a loop) and the rootfs inside it on a loop;
/// what was set up is recorded in `m` as it is, so that a failure can be undone.
fn mount_image(file: &Path, verity: Option<(&[u8], &Path)>, m: &mut Mounted) -> std::result::Result<(), String> {
    let ro = loopdev::Setup { read_only: true, ..loopdev::Setup::default() };
    let mut sq_loop = None;
    match verity {
        Some((root, hash)) => {
            let uuid = crate::snapshot::uuid(VERITY_NAME, false);
            crate::dmverity::create(VERITY_NAME, &uuid, file, hash, root, crate::verity::OnCorruption::Eio).map_err(|e| format!("verity: {e}"))?;
            m.verity_name = Some(VERITY_NAME.to_owned());
            m.squash_dev = crate::snapshot::mapper_path(VERITY_NAME);
        }
        None => {
            let dev = loopdev::attach(file, &ro).map_err(|e| format!("loop-squashfs: {e}"))?;
            m.squash_dev = dev.clone();
            sq_loop = Some(dev);
        }
    }
    if let Err(e) = mount(&m.squash_dev, SQUASHFS, "squashfs", nix::mount::MsFlags::MS_RDONLY, None) {
        if let Some(d) = &sq_loop {
            let _ = loopdev::detach(d);
        }
        return Err(format!("mount-squashfs: {e}"));
    }
    // Autoclear: the mount holds it, so this only marks it; it goes with the mount.
    if let Some(d) = &sq_loop {
        loopdev::detach(d).map_err(|e| format!("loop-squashfs: {e}"))?;
    }
    let img = plan::rootfs_image(|n| Path::new(SQUASHFS).join(n).is_file())
        .ok_or_else(|| format!("loop-rootfs: {SQUASHFS}/{}: not in {}", plan::ROOTFS_NAMES[0], file.display()))?;
    m.rootfs_image = img;
    m.rootfs_loop = loopdev::attach(&Path::new(SQUASHFS).join(img), &ro).map_err(|e| format!("loop-rootfs: {e}"))?;
    Ok(())
}

/// Whether the ext4 root on `loopdev` has `lib/modules/KVER` (mounted read-only for a look).
fn root_has_modules(loopdev: &str, kver: &str) -> bool {
    const PEEK: &str = "/run/live/peek";
    if loopdev.is_empty() || kver.is_empty() || std::fs::create_dir_all(PEEK).is_err() {
        return false;
    }
    use nix::mount::MsFlags;
    if mount(loopdev, PEEK, "ext4", MsFlags::MS_RDONLY, Some("noload")).is_err() {
        return false;
    }
    let has = ["usr/lib/modules", "lib/modules"].iter().any(|d| Path::new(PEEK).join(d).join(kver).join("modules.dep").is_file());
    let _ = nix::mount::umount(PEEK);
    has
}

/// The chosen local pair's own kernel (kexec.rs): started here when it is another release's;
/// returns when this kernel boots it.
/// Returns the state's `kernel=`: for an image with its own kernel, `own` or `loader`.
fn kexec_if_other_release(live: &Live, line: &str, c: &super::Chosen, name: &str, key: Option<&minisign_verify::PublicKey>) -> std::result::Result<Option<String>, Rescue> {
    use super::kexec::{self, Decision};
    if live.netroot {
        return Ok(None);
    }
    let running = kexec::running_release();
    let kver = crate::modprobe::kernel_release();
    kexec::kexeced_runs_here(live.kexec, c.version, &kver, || root_has_modules(&c.mounted.rootfs_loop, &kver)).map_err(|why| Rescue::new("kexec", why))?;
    let which = |t: &crate::pairs::Trusted| {
        t.boot.map(|_| if t.version.is_some() && t.version == running { "own" } else { "loader" }.to_owned())
    };
    if c.fetched {
        let dir = c.file.parent().unwrap_or(Path::new("/"));
        let files = crate::pairs::Files::beside(&c.file, dir.join("SHA256SUMS"), dir.join("SHA256SUMS.minisig"));
        let fname = c.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        return Ok(crate::pairs::check_files(&files, &fname, key).ok().and_then(|t| which(&t)));
    }
    let sfx = match c.pair.as_str() {
        "old" => ".old",
        "new" => ".new",
        _ => "",
    };
    let dir = c.file.parent().unwrap_or(Path::new("/"));
    let pair = crate::pairs::Pair::new(dir, name, sfx);
    let Ok(t) = crate::pairs::check_manifest(&pair, key) else { return Ok(None) };
    match kexec::decide(t.boot.is_some(), t.version, running, live.kexec.is_some()) {
        Decision::Stay(why) => {
            kmsg(6, &format!("kernel: {why}"));
            Ok(which(&t))
        }
        Decision::StayAfterKexec => {
            say(&format!("kernel: version {} is not this initramfs's release, but this boot came through a kexec already: booting on this kernel", t.version.unwrap_or(0)));
            Ok(which(&t))
        }
        Decision::Kexec => {
            let Some(boot) = t.boot else { return Ok(which(&t)) };
            let v = t.version.unwrap_or(0);
            say(&format!("kernel: version {v} brings its own kernel: starting it (kexec)"));
            let paths = pair.paths();
            let err = match kexec::start(&paths.kernel, &paths.initrd, &boot, &kexec::cmdline(line, v)) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            say(&err);
            kmsg(3, &err);
            if c.trial.is_some() {
                // Its root must not run on this kernel's modules: the try is spent, and after
                // the last one the previous release boots.
                return Err(Rescue::new("kexec", format!("{err}; rebooting (the try is spent)")));
            }
            say("kernel: booting it on this kernel instead (a release marked good whose boot files did not reach /boot)");
            Ok(which(&t))
        }
    }
}

fn run_quiet(prog: &str, args: &[&str]) -> bool {
    Command::new(prog).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

impl Real<'_> {
    /// Bring up the network (ip=[IFACE:]dhcp, default the first interface), then imgfetch the
    /// image into RAM, all within live.fetch.timeout: the path, imgfetch's last line and its
    /// whole log; or why not and the log.
    fn fetch_newer(&mut self, above: Option<u64>, local: Option<&Selected>) -> std::result::Result<(PathBuf, String, String), (String, String)> {
        let fail = |why: String| Err((why.clone(), format!("imgfetch: {why}")));
        let Some(key) = self.key_file.clone() else {
            return fail("no public key (make initramfs PUBKEY=file): network images must be signed".into());
        };
        let live = self.live;
        let start = Instant::now();
        let end = start + Duration::from_secs(live.fetch_timeout);
        coldplug_logged(1000);
        run_quiet("ip", &["link", "set", "lo", "up"]);
        let want = live.ip.clone().unwrap_or_default();
        let mut ifc = None;
        let wait_end = Instant::now() + Duration::from_millis(plan::IFACE_WAIT_MS);
        while ifc.is_none() {
            ifc = std::fs::read_dir("/sys/class/net").ok().and_then(|rd| {
                let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                names.into_iter().find(|n| n != "lo" && (want.is_empty() || *n == want))
            });
            if ifc.is_some() || Instant::now() >= wait_end {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let shown = if want.is_empty() { "network".to_owned() } else { want.clone() };
        let Some(ifc) = ifc.filter(|i| run_quiet("ip", &["link", "set", i, "up"])) else {
            return fail(format!("{shown}: no such interface"));
        };
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let tries = plan::dhcp_tries(left).to_string();
        if !run_quiet("udhcpc", &["-i", &ifc, "-s", "/etc/udhcpc.script", "-f", "-q", "-n", "-t", &tries, "-T", "1"]) {
            return fail(format!("{ifc}: no DHCP lease"));
        }
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        if left == 0 {
            return fail(format!("{}: timed out (live.fetch.timeout={})", live.fetch, live.fetch_timeout));
        }
        let _ = std::fs::create_dir_all(RAMDIR);
        let seeds = match local {
            Some(s) => vec![s.file.display().to_string(), format!("{}/{}.old", self.dir.display(), self.name)],
            None => Vec::new(),
        };
        let seeds = seeds.into_iter().filter(|s| Path::new(s).is_file()).collect();
        let a = plan::FetchArgs {
            pubkey: key,
            to: RAMDIR.into(),
            left,
            above,
            min_version: self.min_version,
            cache: (!live.netroot).then(|| FETCH_CACHE.to_owned()),
            seeds,
        };
        // imgfetch runs as its own process: the network-facing parser's failures (out of memory
        // included) end that process, not the boot, and its stderr is the fetch's log.
        let out = Command::new("/proc/self/exe").arg0("imgfetch").args(plan::imgfetch_argv(live, &a)).stdin(Stdio::null()).output();
        let out = match out {
            Ok(o) => o,
            Err(e) => return fail(format!("cannot run: {}", crate::error::io_reason(&e))),
        };
        let err = String::from_utf8_lossy(&out.stderr);
        let log = err.lines().collect::<Vec<_>>().join(" ");
        let last = err.lines().last().unwrap_or_default();
        let last = last.strip_prefix("imgfetch: ").unwrap_or(last).to_owned();
        let path = out.stdout.split(|&b| b == b'\n').next().unwrap_or_default();
        if out.status.success() && !path.is_empty() {
            use std::os::unix::ffi::OsStrExt;
            return Ok((PathBuf::from(std::ffi::OsStr::from_bytes(path)), last, log));
        }
        let why = if last.is_empty() { format!("imgfetch failed ({})", out.status) } else { last };
        Err((why, log))
    }
}

/// Load the drivers the present hardware asks for; what on the console and in the kernel log.
fn coldplug_logged(settle: u64) {
    let mut lines = Vec::new();
    let mut warn = |l: &str| lines.push(format!("liveinit: {l}"));
    let summary = match crate::modprobe::Plug::new(None, None, None) {
        Ok(mut p) => crate::modprobe::coldplug(&mut p, settle, &mut warn),
        Err(e) => format!("liveinit: coldplug: {e}\nliveroot: coldplug failed"),
    };
    lines.push(summary);
    for l in &lines {
        let _ = std::io::stderr().write_all(format!("{l}\n").as_bytes());
        kmsg(6, l.strip_prefix("liveinit: ").unwrap_or(l));
    }
}

fn modprobe(names: &[&str]) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let r = crate::modprobe::modprobe(&names, &crate::modprobe::Modprobe::default(), &mut |w| eprintln_line(&format!("liveinit: {w}")), &mut |_| {});
    if let Err(e) = r {
        eprintln_line(&format!("liveinit: modprobe: {e}"));
        kmsg(6, "modules: some modules failed to load; continuing");
    }
}

fn eprintln_line(l: &str) {
    let _ = std::io::stderr().write_all(format!("{l}\n").as_bytes());
}

/// Wait for `spec` (loading drivers as devices appear), saying what happens.
fn find_device(spec: &str, wait: u64, step: &str) -> std::result::Result<String, Rescue> {
    crate::modprobe::find_medium(spec, wait, false, true, &mut |n| {
        eprintln_line(&format!("liveinit: {n}"));
        if let Some(c) = n.strip_prefix("coldplug: ") {
            kmsg(6, &format!("coldplug: {c}"));
        }
    })
    .map_err(|e| Rescue::from_error(step, &e))
}

/// `liveinit boot`: the whole boot up to a root mounted at /sysroot and /run/live/state
/// written. On failure one line `liveroot: STEP: object: reason` on the console and in the
/// kernel log, and the error's code. `init_start`: /init's start, the first stamp.
pub fn boot(init_start: Option<f64>) -> std::result::Result<(), Rescue> {
    let r = boot_inner(init_start);
    if let Err(e) = &r {
        say(&e.line);
        kmsg(3, &e.line);
        // A boot that came through a kexec (or a kexec that failed on trial) must not stop in a
        // shell: the box has to get back to the loader's kernel, whose next take counts this.
        let kexeced = std::fs::read_to_string("/proc/cmdline").is_ok_and(|l| l.split_ascii_whitespace().any(|w| w.starts_with("live.kexec=")));
        if kexeced || e.line.starts_with("kexec: ") {
            say("rebooting in 10 s: the next boot counts this one as a failed try");
            std::thread::sleep(Duration::from_secs(10));
            nix::unistd::sync();
            let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
        }
    }
    r
}

fn boot_inner(init_start: Option<f64>) -> std::result::Result<(), Rescue> {
    for d in [MEDIUM, SQUASHFS, OVERLAY, SYSROOT] {
        std::fs::create_dir_all(d).map_err(|e| Rescue::new("mount", format!("{d}: {}", crate::error::io_reason(&e))))?;
    }
    let line = std::fs::read_to_string("/proc/cmdline").map_err(|e| Rescue::new("cmdline", format!("/proc/cmdline: {}", crate::error::io_reason(&e))))?;
    let mut live = crate::cmdline::parse(&line).map_err(|e| Rescue::from_error("cmdline", &e))?;
    if let (true, Some(t)) = (live.stamps, init_start) {
        eprintln_line(&crate::stamp::line("init-start", t));
    }
    let mut installed = None;
    if live.plain_root.is_empty() && !live.netroot {
        if let Some(r) = installed_root() {
            say(&format!(
                "installed: the loader came from this box's installed disk ({}): root PARTUUID={}",
                crate::efivar::INSTALLED_VAR.split('-').next().unwrap_or_default(),
                r.root
            ));
            live.plain_root = format!("PARTUUID={}", r.root);
            live.root_ro = false;
            installed = Some(r);
        }
    }
    if !live.plain_root.is_empty() {
        plain_root(&live)?;
        if let Some(r) = installed {
            // The root must hold the key the record names: GUIDs alone are no secret.
            let ok = crate::efivar::read_key(Path::new(SYSROOT)).map(|k| r.key_matches(&k));
            if !matches!(ok, Ok(true)) {
                let _ = nix::mount::umount(SYSROOT);
                let why = match ok {
                    Err(e) => format!("{e}"),
                    Ok(_) => format!("/{} is not the key this box recorded", crate::efivar::KEY_FILE),
                };
                return Err(Rescue::new("installed", format!("PARTUUID={}: {why}: not this box's installed root; not booted", r.root)));
            }
        }
        return Ok(());
    }
    let key_file = match plan::key(Path::new(BUILTIN_KEY).is_file(), &live.pubkey) {
        plan::Key::Builtin => Some(BUILTIN_KEY.to_owned()),
        plan::Key::Cmdline => {
            say("warning: trusting live.pubkey= from the kernel command line, which is weaker than a key built into the initramfs");
            std::fs::write(RUN_KEY, format!("{}\n", live.pubkey)).map_err(|e| Rescue::new("verify", format!("{RUN_KEY}: {}", crate::error::io_reason(&e))))?;
            Some(RUN_KEY.to_owned())
        }
        plan::Key::None => None,
    };
    let mut mods: Vec<&str> = plan::MODULES.to_vec();
    mods.extend(plan::MODULES_OPTIONAL);
    modprobe(&mods);
    stamp(&live, "modules");
    let key = key_file
        .as_deref()
        .map(|f| crate::manifest::pubkey_from_file(Path::new(f)))
        .transpose()
        .map_err(|e| Rescue::from_error("verify", &e))?;
    let min_version = std::fs::read_to_string(MIN_VERSION_FILE).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);

    let image = format!("{}/{}", live.dir, live.squashimg);
    let mut st = LiveState { medium_spec: live.root.clone(), image: image.clone(), ..LiveState::default() };
    let (mut dir, mut name, mut medium_mount) = (PathBuf::new(), String::new(), None);
    let mut check = false;
    if !live.netroot {
        let medium = find_device(&live.root, live.retry, "find-medium")?;
        let fstype = mount_probed(&medium, MEDIUM, nix::mount::MsFlags::MS_RDONLY, None).map_err(|e| Rescue::from_error("mount-medium", &e))?;
        kmsg(6, &format!("medium {medium} ({fstype}, {})", live.root));
        let src = Path::new(MEDIUM).join(&image);
        if !["", ".old", ".new"].iter().any(|s| Path::new(&format!("{}{s}", src.display())).is_file()) {
            return Err(Rescue::new("find-medium", format!("{}: no image on {medium} ({})", src.display(), live.root)));
        }
        dir = src.parent().map(Path::to_path_buf).unwrap_or_default();
        name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Before anything reads the network settings (the fetch, in choose below).
        st.settings = read_settings(&mut live, &line, &dir);
        let has_sums = std::fs::read_dir(&dir).map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("SHA256SUMS"))).unwrap_or(false);
        let (c, ignored) = plan::check(live.check, has_sums, key.is_some());
        if ignored {
            say("verify: rd.live.check=0 ignored: a public key is installed");
        }
        check = c;
        stamp(&live, "medium");
        medium_mount = Some(MEDIUM.to_owned());
        st.medium = medium;
        st.medium_type = fstype;
        st.medium_mount = MEDIUM.to_owned();
    }
    // dm-verity needs the dm-verity target (loaded above) and this binary's dmsnap: always here.
    let sp = plan::select_plan(check, true, live.ram, key.is_some());
    let mut env = Real { live: &live, key, key_file: key_file.clone(), min_version, plan: sp, dir: dir.clone(), name: name.clone(), medium_mount };
    if !live.netroot && dir.join("fetch.cache").is_file() {
        // The boot never writes fetch.cache: imgfetch updates a copy in RAM.
        let _ = std::fs::copy(dir.join("fetch.cache"), FETCH_CACHE);
    }
    let inputs = Inputs { live: &live, image: (!live.netroot).then(|| format!("{}/{name}", dir.display())), min_version, ram: live.ram };
    let c = choose(&mut env, &inputs)?;
    st.kernel = kexec_if_other_release(&live, &line, &c, &name, env.key.as_ref())?;
    // rd.live.ram: the medium is released once the trial record is written (the image is in RAM).
    if live.ram && !live.netroot {
        if nix::mount::umount(MEDIUM).is_err() {
            kmsg(6, &format!("ram-copy: cannot unmount {MEDIUM}; leaving it mounted"));
        }
        if !mounted(MEDIUM) {
            st.medium_mount.clear();
        }
    }
    stack(&live, &c, &mut st)?;
    stamp(&live, "root");
    finish_state(&live, &c, key_file.as_deref(), min_version, &mut st)?;
    stamp(&live, "state");
    if live.brk {
        let _ = std::fs::write(BREAK_FILE, "");
    }
    Ok(())
}

/// The medium's LiveOS/settings (core/src/settings.rs) merged into `live` under the kernel
/// command line `line`, each line it ignores said on the console; the keys it gave, for the
/// state (`None`: no file). Never a reason to stop: the boot goes on as the command line says.
fn read_settings(live: &mut Live, line: &str, dir: &Path) -> Option<String> {
    use crate::settings::{self, Merged};
    let shown = dir.strip_prefix(MEDIUM).unwrap_or(dir).join(settings::NAME).display().to_string();
    let m = match settings::read(&dir.join(settings::NAME)) {
        Ok(None) => return None,
        Ok(Some(Ok(text))) => settings::merge(live, line, &text),
        Ok(Some(Err(note))) => Merged { notes: vec![note], ..Merged::default() },
        Err(e) => {
            eprintln_line(&format!("liveinit: {e}; ignored"));
            kmsg(6, &format!("settings: {e}; ignored"));
            Merged::default()
        }
    };
    for l in m.lines() {
        eprintln_line(&format!("liveinit: {shown}: {l}"));
        kmsg(6, &format!("settings: {shown}: {l}"));
    }
    Some(m.used.join(","))
}

/// The writable snapshot with its COW in RAM, wrapped in md, mounted at /sysroot.
fn stack(live: &Live, c: &Chosen, st: &mut LiveState) -> std::result::Result<(), Rescue> {
    let base = &c.mounted.rootfs_loop;
    let origin = crate::ramcopy::file_size(base).map_err(|e| Rescue::from_error("overlay", &e))?;
    let mem = crate::ramcopy::meminfo("MemTotal").map_err(|e| Rescue::from_error("overlay", &e))?;
    let size = plan::overlay_mib(live.overlay_size, origin, mem);
    let opts = format!("size={}k,mode=0700", plan::overlay_tmpfs_kib(size));
    use nix::mount::MsFlags;
    mount("tmpfs", OVERLAY, "tmpfs", MsFlags::empty(), Some(&opts)).map_err(|_| Rescue::new("overlay", format!("{OVERLAY}: cannot mount a {size} MiB tmpfs")))?;
    let cow = crate::snapshot::Cow::Overlay { bytes: size.saturating_mul(1024 * 1024), dir: PathBuf::from(OVERLAY) };
    crate::snapshot::create(SNAPSHOT_NAME, Path::new(base), &cow, "PO", 8).map_err(|e| Rescue::from_error("snapshot", &e))?;
    loopdev::detach(base).map_err(|e| Rescue::from_error("loop-rootfs", &e))?;
    let md = format!("/dev/{}", live.md);
    let dm = crate::snapshot::mapper_path(SNAPSHOT_NAME);
    let built = crate::raid::build(&md, &[Some(PathBuf::from(&dm)), None]).map_err(|e| Rescue::from_error("mirror", &e))?;
    eprintln_line(&built);
    mount(&md, SYSROOT, "ext4", MsFlags::empty(), None).map_err(|e| Rescue::from_error("mount-root", &e))?;
    st.squash_loop = c.mounted.squash_dev.clone();
    st.squash_mount = SQUASHFS.to_owned();
    st.rootfs_image = c.mounted.rootfs_image.to_owned();
    st.rootfs_loop = base.clone();
    st.overlay_dir = OVERLAY.to_owned();
    st.overlay_size = size.to_string();
    st.dm = dm;
    st.md = md;
    Ok(())
}

/// Tools and state for the booted system (migrate, syncflash read /run/live/state).
fn finish_state(live: &Live, c: &Chosen, key_file: Option<&str>, min_version: u64, st: &mut LiveState) -> std::result::Result<(), Rescue> {
    let bin = format!("{L}/bin");
    let installed = std::fs::create_dir_all(&bin).is_ok()
        && std::fs::copy("/proc/self/exe", format!("{bin}/liveroot")).is_ok()
        && run_quiet(&format!("{bin}/liveroot"), &["--install", &bin]);
    if !installed {
        kmsg(6, &format!("state: cannot install liveroot into {bin}"));
    }
    // The running system's copy of the key (syncflash checks signatures with it).
    let mut pubkey = String::new();
    if let Some(k) = key_file {
        if k == RUN_KEY || std::fs::copy(k, RUN_KEY).is_ok() {
            pubkey = RUN_KEY.to_owned();
        } else {
            kmsg(6, &format!("state: cannot copy the public key to {RUN_KEY}"));
        }
    }
    st.image_file = c.file.display().to_string();
    st.image_sha256 = c.sha256.as_ref().map(|s| crate::digest::hex(s)).unwrap_or_default();
    st.verified = c.verified.to_owned();
    st.booted = plan::booted(c.fetched, live.ram).to_owned();
    st.image_version = c.version.map(|v| v.to_string()).unwrap_or_default();
    st.fetched_from = if c.fetched { live.fetch.clone() } else { String::new() };
    st.medium_pair = c.pair.clone();
    st.floor = c.floor.to_string();
    st.min_version = min_version.to_string();
    st.pubkey = pubkey;
    st.verity = c.roothash.as_deref().map(crate::digest::hex).unwrap_or_default();
    st.verity_dev = c.mounted.verity_name.as_deref().map(crate::snapshot::mapper_path).unwrap_or_default();
    st.trial = c.trial.map(|t| t.to_string());
    st.fallback_reason = c.fallback.clone();
    st.save(crate::state::DEFAULT_PATH).map_err(|e| Rescue::from_error("state", &e))
}

/// The root of a disk `migrate` installed under Secure Boot, when the loader was started from
/// that disk's ESP: the signed image's sealed line names the live medium on every box, so the
/// box's own record decides (core/src/efivar.rs says why that is safe). None on BIOS, on a
/// stick, without a record. efivarfs is mounted read-only for the look and unmounted after, so
/// the booted system mounts it as it wants.
fn installed_root() -> Option<crate::efivar::Installed> {
    let dir = Path::new(crate::efivar::EFIVARS);
    if !dir.parent().is_some_and(Path::is_dir) {
        return None;
    }
    let m = crate::modprobe::Modprobe { quiet: true, ..Default::default() };
    let _ = crate::modprobe::modprobe(&["efivarfs".to_owned()], &m, &mut |_| {}, &mut |_| {});
    use nix::mount::MsFlags;
    let ours = !crate::fsutil::is_mountpoint(dir)
        && nix::mount::mount(Some("efivarfs"), dir, Some("efivarfs"), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>).is_ok();
    let loader = crate::efivar::read(dir, crate::efivar::LOADER_DEVICE_PART_UUID).ok().flatten();
    let record = crate::efivar::read(dir, crate::efivar::INSTALLED_VAR).ok().flatten();
    if ours {
        let _ = nix::mount::umount(dir);
    }
    crate::efivar::installed_root(loader.as_deref(), record.as_deref())
}

/// A root= that is not live: (a disk a live system was migrated onto, or any installed system):
/// load the drivers, wait for the device, mount it at /sysroot. No live stack, no state.
fn plain_root(live: &Live) -> std::result::Result<(), Rescue> {
    modprobe(&["ext4"]);
    let dev = find_device(&live.plain_root, live.retry, "find-root")?;
    let fstype = match live.root_fstype.as_str() {
        "" => crate::probe::open_probe(Path::new(&dev)).ok().flatten().map(|f| f.fstype).filter(|t| !t.is_empty()).unwrap_or("auto").to_owned(),
        t => t.to_owned(),
    };
    // busybox mount: it turns ro/rw, noatime and the like in rootflags= into mount flags.
    let mut opts = if live.root_ro { "ro" } else { "rw" }.to_owned();
    if !live.root_flags.is_empty() {
        opts = format!("{opts},{}", live.root_flags);
    }
    let ok = Command::new("mount").args(["-t", &fstype, "-o", &opts, &dev, SYSROOT]).status().is_ok_and(|s| s.success());
    if !ok {
        return Err(Rescue::new("mount-root", format!("{dev}: cannot mount on {SYSROOT} ({fstype}, {opts})")));
    }
    kmsg(6, &format!("root {dev} ({fstype}, {})", live.plain_root));
    stamp(live, "root");
    Ok(())
}

/// `liveinit switch-root --live NEWROOT`: the boot's last step. The panic= default and, for an
/// image on trial, the hardware watchdog (left running across switch_root; mark-good stops it,
/// or the OS's watchdog daemon takes it over; a hang before that resets the box, which spends
/// the try); then init= from the command line (default /sbin/init).
pub fn switch_root_live(newroot: &Path) -> Result<()> {
    let line = std::fs::read_to_string("/proc/cmdline").ctx("/proc/cmdline")?;
    let live = crate::cmdline::parse(&line).unwrap_or_default();
    stamp(&live, "init-exec");
    let state_path = Path::new(crate::state::DEFAULT_PATH);
    let live_boot = state_path.is_file();
    if let Some(p) = plan::panic(live.panic.as_deref(), live_boot) {
        let _ = std::fs::write("/proc/sys/kernel/panic", format!("{p}\n"));
    }
    let mut st = LiveState::load(state_path).unwrap_or_default();
    let trial = st.trial.as_deref().and_then(|t| t.parse().ok());
    let dev = crate::watchdog::DEV;
    if let Some(secs) = plan::watchdog(trial, live.watchdog, Path::new(dev).exists()) {
        match crate::watchdog::arm(dev, secs, &mut |n| eprintln_line(&format!("liveinit: {n}"))) {
            Ok(t) => {
                st.watchdog = Some(t.to_string());
                st.watchdog_dev = Some(dev.to_owned());
                if let Err(e) = crate::state::set(state_path, &[("watchdog".into(), t.to_string()), ("watchdog_dev".into(), dev.to_owned())]) {
                    eprintln_line(&format!("liveinit: {e}"));
                }
            }
            Err(e) => {
                eprintln_line(&format!("liveinit: {e}"));
                say("watchdog: not armed; a hang of this image needs a power cycle");
            }
        }
    }
    let init: Vec<std::ffi::OsString> = if live.init.is_empty() { Vec::new() } else { vec![live.init.clone().into()] };
    crate::switchroot::switch_root_or_rescue(newroot, &init)
}

