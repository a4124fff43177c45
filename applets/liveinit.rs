//! liveinit: what the live /init needs that busybox sh cannot do well.
//!
//! ```text
//! liveinit cmdline [--file F]                   shell assignments (LIVE_*) from /proc/cmdline
//! liveinit modprobe [-q] [-n] [--dir D] [--cmdline F] MODULE...
//!                                               load modules and their dependencies
//! liveinit coldplug [-n] [--settle MS] [--modules-dir D] [--sysfs D] [--cmdline F]
//!                                               load the drivers the present hardware asks for
//! liveinit find-medium SPEC [--wait S] [--all] [--coldplug]
//!                                               wait for LABEL=/UUID=/PARTUUID=/PARTLABEL=//dev/..
//! liveinit probe DEV|FILE...                    filesystem type, label, UUID (like blkid -p)
//! liveinit overlay-size ORIGIN [--size MIB]     COW size in MiB (default: min(origin, RAM/2))
//! liveinit ram-copy FILE... --to DIR [--minmem MIB] [--tmpfs]
//!                                               copy files into RAM if enough stays free
//! liveinit select-image DIR NAME [--pubkey-file F] [--min-version N] [--trial-state F]
//!          [--check auto|full|manifest|none] [--ram-to DIR [--minmem MIB] [--ram-unless-verity]] [--skip primary|old|new]...
//!                                               choose the pair that boots; IMG_* assignments
//! liveinit state set KEY=VALUE... | get KEY | show   [--file F]   /run/live/state
//! liveinit switch-root NEWROOT [INIT [ARG...]]  move /dev /proc /sys /run, free the
//!                                               initramfs, chroot, exec INIT (/sbin/init)
//! liveinit mark-good [--state F] [--file F]     the running image is healthy: end its trial
//! liveinit trial take --sha256 HEX --version N [--start TRIES --keep V] [--peek] [--file F]
//!                                               before switch_root: count a try; TRIAL_* for eval
//! liveinit trial status [--file F]              the record, as TRIAL_* assignments
//! liveinit trial start --sha256 HEX --version N [--tries N] [--net] [--file F]
//! liveinit trial create FILE                    a fresh trial file (make flash, syncflash)
//! liveinit watchdog arm SECONDS [--dev D] | disarm [--dev D]
//!                                               start the hardware watchdog and leave it running
//!                                               across switch_root; stop it (mark-good does)
//! ```

use crate::osarg;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use crate::error::{Context, Error, Result};
use crate::probe::{self, Found};
use argh::FromArgs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const SUMMARY: &str = "helpers for the live-boot /init (cmdline, modprobe, coldplug, find-medium, switch-root)";

#[derive(FromArgs)]
/// Helpers for the live-boot /init: everything busybox sh cannot do well.
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Cmdline(CmdlineArgs),
    Modprobe(ModprobeArgs),
    Coldplug(ColdplugArgs),
    FindMedium(FindArgs),
    Probe(ProbeArgs),
    OverlaySize(OverlayArgs),
    RamCopy(RamArgs),
    SelectImage(SelectArgs),
    State(StateArgs),
    SwitchRoot(SwitchArgs),
    MarkGood(MarkGoodArgs),
    Trial(TrialArgs),
    Watchdog(WatchdogArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "cmdline")]
/// Print the live-boot options of the kernel command line as shell assignments for eval:
/// LIVE_ROOT LIVE_DIR LIVE_SQUASHIMG LIVE_OVERLAY_SIZE LIVE_RAM LIVE_MINMEM LIVE_CHECK LIVE_MD
/// LIVE_RETRY LIVE_BREAK LIVE_INIT LIVE_FETCH LIVE_NETROOT LIVE_FETCH_TIMEOUT LIVE_FETCH_DOWNGRADE
/// LIVE_IP LIVE_IP_IFACE LIVE_PUBKEY LIVE_TRIES (rd.live.tries=N, default 3; 0: a new image
/// boots untried, nothing written). Every value is single-quoted.
struct CmdlineArgs {
    /// read this file instead of /proc/cmdline
    #[argh(option)]
    file: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "modprobe")]
/// Load modules with their dependencies (modules.dep), skipping built-in and loaded ones.
/// Parameters come from MODULE.param=value on the kernel command line. A module that does not
/// exist is skipped with a warning; a module that fails to load makes the exit status 1.
struct ModprobeArgs {
    /// do not warn about modules that do not exist
    #[argh(switch, short = 'q')]
    quiet: bool,
    /// print what would be loaded (insmod FILE PARAMS), load nothing
    #[argh(switch, short = 'n')]
    dry_run: bool,
    /// module directory (default /lib/modules/$(uname -r))
    #[argh(option)]
    dir: Option<String>,
    /// kernel command line to take parameters from (default /proc/cmdline)
    #[argh(option)]
    cmdline: Option<String>,
    /// module names (dashes and underscores are the same)
    #[argh(positional)]
    modules: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "coldplug")]
/// Load the modules the present hardware asks for, as udev does at boot: the modalias of every
/// device under /sys/devices matched against modules.alias (glob patterns, as modprobe matches
/// them), each module with its dependencies. Passes repeat while new devices appear (a USB
/// stick shows up only after its host controller's driver loads) until --settle ms have passed
/// since the last pass that loaded something. Built-in, loaded and blacklisted
/// (modprobe.blacklist=) modules are skipped; one that fails to load is a warning, not an error.
/// Prints "coldplug: loaded M... (N devices, K without a driver)".
struct ColdplugArgs {
    /// print the modules one pass would load, one a line, and load nothing
    #[argh(switch, short = 'n')]
    dry_run: bool,
    /// ms to wait for new devices after a pass that loaded something (default 2000, at most
    /// 600000)
    #[argh(option, default = "2000", from_str_fn(settle_ms))]
    settle: u64,
    /// module directory (default /lib/modules/$(uname -r))
    #[argh(option)]
    modules_dir: Option<String>,
    /// sysfs to read (default /sys): devices under DIR/devices, loaded modules in DIR/module
    #[argh(option)]
    sysfs: Option<String>,
    /// kernel command line to take parameters and the blacklist from (default /proc/cmdline)
    #[argh(option)]
    cmdline: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "find-medium")]
/// Wait for the block device named by SPEC (LABEL=, UUID=, PARTUUID=, PARTLABEL=, CDLABEL= or
/// /dev/...) and print its path. Exit 1 with a list of what was found on timeout.
struct FindArgs {
    /// also consider loop, dm, md and ram devices
    #[argh(switch)]
    all: bool,
    /// before each look, load the drivers new devices ask for (one coldplug pass)
    #[argh(switch)]
    coldplug: bool,
    /// seconds to wait (default 30, at most 86400: a day)
    #[argh(option, default = "30", from_str_fn(boot_wait))]
    wait: u64,
    /// the device to look for
    #[argh(positional)]
    spec: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "probe")]
/// Print the filesystem type, label and UUID (or partition table) of devices or image files.
struct ProbeArgs {
    /// block devices or regular files
    #[argh(positional)]
    devices: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "overlay-size")]
/// Print the snapshot overlay size in MiB: --size if given, else the smaller of the origin's
/// size and half of RAM.
struct OverlayArgs {
    /// requested size in MiB (rd.live.overlay.size)
    #[argh(option)]
    size: Option<String>,
    /// the snapshot origin (file or block device)
    #[argh(positional)]
    origin: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "ram-copy")]
/// Copy files into DIR (rd.live.ram), refusing when less than --minmem MiB of RAM would stay
/// available.
struct RamArgs {
    /// destination directory
    #[argh(option)]
    to: String,
    /// how many MiB of RAM must stay available (default 256)
    #[argh(option, default = "256")]
    minmem: u64,
    /// mount a tmpfs of the needed size on DIR first (unless it is a mount point)
    #[argh(switch)]
    tmpfs: bool,
    /// files to copy
    #[argh(positional)]
    files: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "select-image")]
/// Choose the image pair that boots among DIR/NAME, NAME.old, NAME.new (with their SHA256SUMS,
/// .minisig, .verity, .roothash of the same suffix) and print shell assignments for eval:
/// IMG_FILE IMG_PAIR (primary|old|new) IMG_SHA256 (the digest the manifest binds) IMG_VERSION
/// IMG_VERIFIED (sig|sha256|no) IMG_ROOTHASH IMG_VERITY (dm-verity root hash and hash tree file,
/// when listed and the image was not read whole) IMG_FLOOR (highest signed version among the
/// pairs that verify, never below --min-version) IMG_RAM (1 when IMG_FILE is a RAM copy).
/// One line on stderr per refused pair; exit 3 when none passes.
struct SelectArgs {
    /// minisign public key: manifests must be signed by it
    #[argh(option)]
    pubkey_file: Option<String>,
    /// refuse a signed version below N (the minimum built into the initramfs; default 0)
    #[argh(option, default = "0")]
    min_version: u64,
    /// the trial state (LiveOS/trial.state): refuse a signed version below the highest one
    /// marked good (the floor rises at mark-good only)
    #[argh(option)]
    trial_state: Option<String>,
    /// auto (dm-verity when the sidecars are listed, else hash whole), full, manifest, none
    #[argh(option, default = "String::from(\"auto\")")]
    check: String,
    /// copy the chosen image (and its small files) into DIR, a tmpfs, hashing what is written
    #[argh(option)]
    ram_to: Option<String>,
    /// with --ram-to: how many MiB of RAM must stay available (default 256)
    #[argh(option, default = "256")]
    minmem: u64,
    /// with --ram-to: copy only a pair without dm-verity sidecars
    #[argh(switch)]
    ram_unless_verity: bool,
    /// do not try this pair (primary, old or new; repeatable)
    #[argh(option)]
    skip: Vec<String>,
    /// the directory on the medium (e.g. /run/live/medium/LiveOS)
    #[argh(positional)]
    dir: String,
    /// the image name (e.g. squashfs.img)
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "state")]
/// Read or update the live-boot state file (key=value lines, default /run/live/state).
struct StateArgs {
    /// state file
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    file: String,
    /// set KEY=VALUE..., get KEY, or show
    #[argh(positional)]
    action: String,
    /// KEY=VALUE pairs (set) or KEY (get)
    #[argh(positional, greedy)]
    args: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "switch-root")]
/// Make NEWROOT (a mount point) the root and exec INIT (default /sbin/init) as PID 1: moves
/// /dev /proc /sys /run into it and deletes the initramfs contents first.
struct SwitchArgs {
    /// the new root, a mount point
    #[argh(positional)]
    newroot: String,
    /// init program inside NEWROOT, then its arguments
    #[argh(positional, greedy)]
    init: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "mark-good")]
/// The running image is healthy: end its trial (src/trial.rs), so the next boots are plain boots,
/// and raise the anti-rollback floor to its version. Idempotent: exit 0 with nothing written when
/// it is already good or not on trial. The image is the one /run/live/state names (image_sha256,
/// image_version); the record is LiveOS/trial.state on the medium, written in place through the
/// block device. Exit 1 when the record cannot be written.
struct MarkGoodArgs {
    /// the live state file (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    state: String,
    /// the trial file (default: on the medium the state names, beside the image)
    #[argh(option)]
    file: Option<String>,
    /// write through the file system instead of the block device (a file not on a block
    /// device; it rewrites the directory entry too)
    #[argh(switch)]
    via_fs: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "trial")]
/// The trial state of a new image (LiveOS/trial.state): take a try at boot, show, start, create.
struct TrialArgs {
    #[argh(subcommand)]
    cmd: TrialCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum TrialCmd {
    Take(TakeArgs),
    Status(TrialStatusArgs),
    Start(StartArgs),
    Create(CreateArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "take")]
/// Before switch_root: the image that is about to boot (--sha256, --version: IMG_SHA256 and
/// IMG_VERSION of select-image). On trial with tries left: one is taken (written to the flash).
/// None left, or it failed before: do not boot it. Prints for eval: TRIAL (tries left after this
/// boot; empty: not on trial), TRIAL_FALLBACK (why not to boot it; empty: boot it), TRIAL_FAILED
/// (the highest version that failed a trial), TRIAL_FLOOR (highest version marked good).
/// A try that cannot be written is a fallback: an uncounted try could loop forever. So is a
/// fetched image whose trial must begin (--start 1 or more) without a trial file to count it
/// in (none on the medium, or unreadable): /init creates the file first where it can.
/// --peek: the same decision and output, nothing written (the device is not even opened).
struct TakeArgs {
    /// the image's SHA-256 (empty: unchecked, never on trial)
    #[argh(option)]
    sha256: String,
    /// its signed version (empty: 0)
    #[argh(option, default = "String::new()")]
    version: String,
    /// a fetched image: begin its trial with this many tries if the record is not about it
    /// (0: it boots untried, nothing written: rd.live.tries=0)
    #[argh(option)]
    start: Option<u8>,
    /// with --start: the signed version of the medium's pair the trial falls back to; the
    /// floor rises to it (default 0: none)
    #[argh(option, default = "0")]
    keep: u64,
    /// the trial file (default: on the medium the state names)
    #[argh(option)]
    file: Option<String>,
    /// the live state file, to find the medium (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    state: String,
    /// write through the file system instead of the block device
    #[argh(switch)]
    via_fs: bool,
    /// decide and print as a take would, but write nothing
    #[argh(switch)]
    peek: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
/// Print the record as TRIAL_STATUS (trial, good, failed or none) TRIAL_LEFT TRIAL_TRIES
/// TRIAL_VERSION TRIAL_SHA256 TRIAL_NET TRIAL_FAILED TRIAL_FLOOR TRIAL_SEQ TRIAL_WHY (why a copy
/// was ignored).
struct TrialStatusArgs {
    /// the trial file (default: on the medium the state names)
    #[argh(option)]
    file: Option<String>,
    /// the live state file, to find the medium (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    state: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "start")]
/// Put an image on trial (after syncflash wrote it as the primary): --tries boots to come up
/// and call mark-good. The failed version and the floor are kept. Exit 5 when the record is
/// already about this image (its trial goes on, or it is already good).
struct StartArgs {
    /// the image's SHA-256
    #[argh(option)]
    sha256: String,
    /// its signed version (empty: 0)
    #[argh(option, default = "String::new()")]
    version: String,
    /// tries (default 3)
    #[argh(option, default = "crate::cmdline::DEFAULT_TRIES")]
    tries: u8,
    /// the image came from the network
    #[argh(switch)]
    net: bool,
    /// the signed version of the pair the trial falls back to; the floor rises to it
    /// (default 0: none)
    #[argh(option, default = "0")]
    keep: u64,
    /// the trial file (default: on the medium the state names)
    #[argh(option)]
    file: Option<String>,
    /// the live state file, to find the medium (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    state: String,
    /// write through the file system instead of the block device
    #[argh(switch)]
    via_fs: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "watchdog")]
/// The hardware watchdog that ends a hang of an image on trial in a reset (rd.live.watchdog=S).
/// arm SECONDS: start it and close it without the magic character, so it keeps running across
/// switch_root until mark-good stops it or the OS's watchdog daemon opens it (exit 5: none).
/// disarm: stop it (exit 0 when there is none or the OS's daemon holds it; 1 when it cannot be
/// stopped, e.g. nowayout).
struct WatchdogArgs {
    /// arm or disarm
    #[argh(positional)]
    action: String,
    /// arm: seconds until the reset (1 or more; the driver may round)
    #[argh(positional)]
    seconds: Option<u32>,
    /// the device (default /dev/watchdog)
    #[argh(option, default = "WATCHDOG_DEV.to_owned()")]
    dev: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "create")]
/// Create a fresh trial file (8 KiB, no record; it must not exist). Written once through the
/// file system, e.g. on the flash image by make flash; boots only ever overwrite it in place.
struct CreateArgs {
    /// the file (on the medium: LiveOS/trial.state)
    #[argh(positional)]
    file: String,
}

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = crate::cli::parse(argv, "")?;
    match args.cmd {
        Cmd::Cmdline(a) => cmdline(a),
        Cmd::Modprobe(a) => modprobe(a),
        Cmd::Coldplug(a) => coldplug(a),
        Cmd::FindMedium(a) => find_medium(a),
        Cmd::Probe(a) => probe_cmd(a),
        Cmd::OverlaySize(a) => overlay_size(a),
        Cmd::RamCopy(a) => ram_copy(a),
        Cmd::SelectImage(a) => select_image(a),
        Cmd::State(a) => state(a),
        Cmd::SwitchRoot(a) => switch_root_or_rescue(a),
        Cmd::MarkGood(a) => mark_good(a),
        Cmd::Trial(a) => trial(a),
        Cmd::Watchdog(a) => watchdog(a),
    }
}

fn out(text: &str) {
    let mut o = std::io::stdout();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

fn warn(text: &str) {
    let _ = std::io::stderr().write_all(format!("liveinit: {text}\n").as_bytes());
}

// ---- cmdline ---------------------------------------------------------------------------------

fn cmdline(a: CmdlineArgs) -> Result<()> {
    let path = osarg::path(a.file.as_deref().unwrap_or("/proc/cmdline"));
    let line = std::fs::read_to_string(&path).ctx(path.display())?;
    let live = crate::cmdline::parse(&line)?;
    out(&live.to_shell());
    Ok(())
}

// ---- modprobe --------------------------------------------------------------------------------

/// `virtio_pci` for `kernel/drivers/virtio/virtio_pci.ko.xz`; dashes fold to underscores as the
/// kernel does for /sys/module names.
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    crate::coldplug::norm(base.split(".ko").next().unwrap_or(base))
}

struct ModDb {
    dir: PathBuf,
    /// (name, path relative to dir, dependency paths in modules.dep order). A few dozen lookups
    /// in a few thousand lines: a linear search is cheaper in code than a hash map.
    deps: Vec<(String, String, Vec<String>)>,
    builtin: Vec<String>,
}

impl ModDb {
    fn load(dir: &Path) -> Result<ModDb> {
        let dep_file = dir.join("modules.dep");
        let text = std::fs::read_to_string(&dep_file).ctx(dep_file.display())?;
        let mut deps = Vec::new();
        for line in text.lines() {
            if let Some((m, d)) = line.split_once(':') {
                let list = d.split_whitespace().map(str::to_owned).collect();
                deps.push((module_name(m), m.to_owned(), list));
            }
        }
        let builtin = std::fs::read_to_string(dir.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .map(module_name)
            .collect();
        Ok(ModDb { dir: dir.to_owned(), deps, builtin })
    }

    /// Module files to load for `name`, dependencies first; empty when built in.
    fn plan(&self, name: &str, order: &mut Vec<String>) -> Option<()> {
        if self.builtin.iter().any(|b| b == name) {
            return Some(());
        }
        let (_, path, deps) = self.deps.iter().find(|(n, _, _)| n == name)?;
        // An initramfs often carries a modules.dep for more modules than it holds.
        if !self.dir.join(path).exists() {
            return None;
        }
        // depmod lists the full closure; loading it back to front satisfies every symbol.
        for d in deps.iter().rev() {
            if !order.contains(d) {
                let dn = module_name(d);
                if !self.builtin.contains(&dn) {
                    order.push(d.clone());
                }
            }
        }
        if !order.contains(path) {
            order.push(path.clone());
        }
        Some(())
    }
}

/// `MODULE.param=value` words of the kernel command line, per module.
fn module_params(cmdline: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut blacklist = Vec::new();
    for (k, v) in crate::cmdline::split(cmdline) {
        if k == "modprobe.blacklist" || k == "module_blacklist" {
            blacklist.extend(v.unwrap_or_default().split(',').map(crate::coldplug::norm));
            continue;
        }
        let Some((m, p)) = k.split_once('.') else { continue };
        let word = match &v {
            Some(v) if v.contains(' ') => format!("{p}=\"{v}\""),
            Some(v) => format!("{p}={v}"),
            None => p.to_owned(),
        };
        let m = crate::coldplug::norm(m);
        match params.iter_mut().find(|(n, _)| *n == m) {
            Some((_, e)) => {
                e.push(' ');
                e.push_str(&word);
            }
            None => params.push((m, word)),
        }
    }
    (params, blacklist)
}

fn modules_dir(dir: Option<&str>) -> Result<PathBuf> {
    Ok(match dir {
        Some(d) => osarg::path(d),
        None => {
            let u = nix::sys::utsname::uname().ctx("uname")?;
            Path::new("/lib/modules").join(u.release())
        }
    })
}

fn modprobe(a: ModprobeArgs) -> Result<()> {
    if a.modules.is_empty() {
        return Err(Error::usage("modprobe: no module named\nTry 'liveinit modprobe --help' for more information."));
    }
    let dir = modules_dir(a.dir.as_deref())?;
    let db = ModDb::load(&dir)?;
    let cmdline_path = a.cmdline.as_deref().unwrap_or("/proc/cmdline");
    let (params, blacklist) = module_params(&std::fs::read_to_string(cmdline_path).unwrap_or_default());
    let mut order = Vec::new();
    for m in &a.modules {
        let name = crate::coldplug::norm(m);
        if blacklist.contains(&name) {
            warn(&format!("modprobe: {m}: blacklisted on the kernel command line (skipped)"));
            continue;
        }
        if db.plan(&name, &mut order).is_none() && !a.quiet {
            warn(&format!("modprobe: {m}: not found in {} (skipped)", dir.display()));
        }
    }
    let mut failed: Option<Error> = None;
    for rel in &order {
        let name = module_name(rel);
        let file = db.dir.join(rel);
        let p = params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("");
        if a.dry_run {
            out(&format!("insmod {}{}{}\n", file.display(), if p.is_empty() { "" } else { " " }, p));
            continue;
        }
        if Path::new("/sys/module").join(&name).exists() {
            continue;
        }
        if let Err(e) = load_module(&file, p) {
            if let Some(prev) = failed.replace(e) {
                warn(&format!("modprobe: {prev}"));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

fn load_module(file: &Path, params: &str) -> Result<()> {
    let f = std::fs::File::open(file).ctx(file.display())?;
    let name = file.to_string_lossy();
    let compressed = [".xz", ".zst", ".gz"].iter().any(|s| name.ends_with(s));
    let flags = if compressed { crate::sys::module::MODULE_INIT_COMPRESSED_FILE } else { 0 };
    match crate::sys::module::finit_module(&f, params, flags) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(nix::errno::Errno::EINVAL) if compressed => {
            Err(Error::new(name, "compressed module, and this kernel cannot decompress modules"))
        }
        Err(e) => Err(Error::sys(name, e)),
    }
}

// ---- coldplug --------------------------------------------------------------------------------

/// Coldplug over the modprobe machinery: modules.alias picks the modules, ModDb orders their
/// dependencies, load_module loads them.
struct Plug {
    aliases: crate::coldplug::Aliases,
    db: ModDb,
    params: Vec<(String, String)>,
    blacklist: Vec<String>,
    sysfs: PathBuf,
    state: crate::coldplug::State,
    loaded: Vec<String>,
    failed: Vec<String>,
    devices: usize,
    unbound: usize,
}

impl Plug {
    fn new(dir: Option<&str>, sysfs: Option<&str>, cmdline: Option<&str>) -> Result<Plug> {
        let dir = modules_dir(dir)?;
        let db = ModDb::load(&dir)?;
        let file = dir.join("modules.alias");
        let aliases = crate::coldplug::Aliases::parse(&std::fs::read_to_string(&file).ctx(file.display())?);
        let (params, blacklist) = module_params(&std::fs::read_to_string(osarg::path(cmdline.unwrap_or("/proc/cmdline"))).unwrap_or_default());
        let sysfs = osarg::path(sysfs.unwrap_or("/sys"));
        let state = crate::coldplug::State::default();
        Ok(Plug { aliases, db, params, blacklist, sysfs, state, loaded: Vec::new(), failed: Vec::new(), devices: 0, unbound: 0 })
    }

    fn is_loaded(&self, name: &str) -> bool {
        self.sysfs.join("module").join(name).exists()
    }

    /// One pass over the devices not seen before: the modules loaded (with `dry_run`: that
    /// would be), in order. Failures are warnings.
    fn pass(&mut self, dry_run: bool) -> Vec<String> {
        let devices = crate::coldplug::scan(&self.sysfs.join("devices"));
        self.devices = devices.len();
        self.unbound = devices.iter().filter(|d| !d.bound).count();
        // Decided before loading: a module another one pulls in as a dependency in this pass
        // (usb-storage under uas) is still reported as loaded here.
        let todo: Vec<String> = self
            .state
            .wanted(&devices, &self.aliases)
            .into_iter()
            .filter(|m| !self.db.builtin.contains(m) && !self.blacklist.contains(m) && !self.is_loaded(m))
            .collect();
        let mut now = Vec::new();
        for m in todo {
            let mut order = Vec::new();
            // Listed in modules.alias but not in this tree: nothing to load, as with no alias.
            if self.db.plan(&m, &mut order).is_none() {
                continue;
            }
            if !dry_run {
                let failed = order.iter().find_map(|rel| {
                    let name = module_name(rel);
                    if self.is_loaded(&name) {
                        return None;
                    }
                    let p = self.params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str());
                    load_module(&self.db.dir.join(rel), p).err()
                });
                if let Some(e) = failed {
                    warn(&format!("coldplug: {m}: {e}"));
                    self.failed.push(m);
                    continue;
                }
            }
            now.push(m);
        }
        self.loaded.extend(now.iter().cloned());
        now
    }

    fn counts(&self) -> String {
        format!("({} devices, {} without a driver)", self.devices, self.unbound)
    }

    fn loaded_list(&self) -> String {
        if self.loaded.is_empty() { "none".to_owned() } else { self.loaded.join(" ") }
    }
}

/// `--settle MS`: at most ten minutes (a pass that loads drivers is followed by this much).
fn settle_ms(v: &str) -> std::result::Result<u64, String> {
    v.parse().ok().filter(|&n| n <= 600_000).ok_or_else(|| format!("'{v}': expected 0 to 600000 ms (at most ten minutes)"))
}

/// `--wait S`: at most [`crate::cli::MAX_BOOT_WAIT`] (the bound `rd.retry=` has too), so that
/// the deadline cannot overflow the clock.
fn boot_wait(v: &str) -> std::result::Result<u64, String> {
    let max = crate::cli::MAX_BOOT_WAIT;
    v.parse().ok().filter(|&n| n <= max).ok_or_else(|| format!("'{v}': expected 0 to {max} seconds (at most a day)"))
}

fn coldplug(a: ColdplugArgs) -> Result<()> {
    use std::time::{Duration, Instant};
    let mut plug = Plug::new(a.modules_dir.as_deref(), a.sysfs.as_deref(), a.cmdline.as_deref())?;
    if a.dry_run {
        let s: String = plug.pass(true).iter().map(|m| format!("{m}\n")).collect();
        out(&s);
        return Ok(());
    }
    let settle = Duration::from_millis(a.settle);
    let mut last_load: Option<Instant> = None;
    loop {
        if !plug.pass(false).is_empty() {
            last_load = Some(Instant::now());
        }
        match last_load {
            Some(t) if t.elapsed() < settle => std::thread::sleep(Duration::from_millis(100)),
            _ => break,
        }
    }
    let what = match (plug.loaded.is_empty(), plug.failed.is_empty()) {
        (true, true) => "nothing to load".to_owned(),
        (_, true) => format!("loaded {}", plug.loaded_list()),
        _ => format!("loaded {}; failed: {}", plug.loaded_list(), plug.failed.join(" ")),
    };
    out(&format!("coldplug: {what} {}\n", plug.counts()));
    Ok(())
}

// ---- find-medium / probe ---------------------------------------------------------------------

fn find_medium(a: FindArgs) -> Result<()> {
    let spec = crate::cmdline::normalize_spec(&a.spec).map_err(|why| Error::usage(format!("{}: {why}", a.spec)))?;
    let start = std::time::Instant::now();
    // Checked even though --wait is bounded: an overflowing deadline is a panic.
    let deadline = start.checked_add(std::time::Duration::from_secs(a.wait)).ok_or_else(|| Error::usage(format!("--wait {}: too long", a.wait)))?;
    // Unknown hardware or no modules.alias: say so once and keep looking for the device.
    let mut plug = match a.coldplug.then(|| Plug::new(None, None, None)) {
        Some(Err(e)) => {
            warn(&format!("coldplug: {e}"));
            None
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let mut note_at = 5;
    loop {
        if let Some(p) = plug.as_mut() {
            let now = p.pass(false);
            if !now.is_empty() {
                warn(&format!("coldplug: loaded {} {}", now.join(" "), p.counts()));
            }
        }
        if spec.starts_with("/dev/") {
            if let Some(p) = probe::find_path(&spec) {
                out(&format!("{p}\n"));
                return Ok(());
            }
        }
        let cands = probe::scan(a.all);
        let hits: Vec<&probe::Candidate> = cands.iter().filter(|c| c.matches(&spec)).collect();
        if let Some(first) = hits.first() {
            if hits.len() > 1 {
                let others: Vec<&str> = hits[1..].iter().map(|c| c.name.as_str()).collect();
                warn(&format!("{spec}: also on {}; using {}", others.join(", "), first.name));
            }
            out(&format!("/dev/{}\n", first.name));
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            let list: Vec<String> = cands.iter().map(probe::Candidate::describe).collect();
            let found = if list.is_empty() { "no block devices".to_owned() } else { list.join(", ") };
            let drivers = plug.as_ref().map(|p| format!("; drivers loaded: {}", p.loaded_list())).unwrap_or_default();
            return Err(Error::new(spec, format!("not found after {} s; found: {found}{drivers}", a.wait)));
        }
        let waited = start.elapsed().as_secs();
        if waited >= note_at {
            let drivers = plug.as_ref().map(|p| format!("; drivers loaded: {}", p.loaded_list())).unwrap_or_default();
            warn(&format!("find-medium: waiting for {spec} ({waited} s of {}{drivers})", a.wait));
            note_at = waited + 5;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn probe_cmd(a: ProbeArgs) -> Result<()> {
    if a.devices.is_empty() {
        return Err(Error::usage("probe: no device named\nTry 'liveinit probe --help' for more information."));
    }
    let mut failed = None;
    for d in a.devices.iter().map(|d| osarg::path(d)) {
        match probe::open_probe(&d) {
            Err(e) => {
                if let Some(prev) = failed.replace(Error::io(d.display().to_string(), &e)) {
                    warn(&prev.to_string());
                }
            }
            Ok(found) => out(&probe_line(&d, found.as_ref())),
        }
    }
    failed.map_or(Ok(()), Err)
}

fn probe_line(path: &Path, found: Option<&Found>) -> String {
    let dev = path.display();
    let mut s = format!("{dev}: {}", found.map(Found::describe).unwrap_or_else(|| "unknown".into()));
    // A partition of a block device: add what its disk's table says about it.
    let kname = crate::fsutil::block_dev(path).ok().and_then(|(ma, mi)| crate::fsutil::kernel_name(ma, mi).ok());
    if let Some((disk, n)) = kname.as_deref().and_then(crate::sys::sysfs::partition_of) {
        if let Some(t) = crate::sys::sysfs::dev_node(&disk).ok().and_then(|p| probe::open_table(&p)) {
            if let Some(u) = t.partuuid(n) {
                s.push_str(&format!(" PARTUUID={u}"));
            }
            if let Some(l) = t.part(n).and_then(|p| p.partlabel.clone()) {
                s.push_str(&format!(" PARTLABEL={}", probe::show_value(&l)));
            }
        }
    }
    s.push('\n');
    if let Some(t) = found.and_then(|f| f.table.as_ref()) {
        for p in &t.parts {
            s.push_str(&format!("{dev}: part {} start={} size={} PARTUUID={}", p.number, p.start, p.size, p.partuuid));
            if let Some(l) = &p.partlabel {
                s.push_str(&format!(" PARTLABEL={}", probe::show_value(l)));
            }
            s.push('\n');
        }
    }
    s
}

// ---- overlay-size / ram-copy -----------------------------------------------------------------

use crate::ramcopy::{file_size, meminfo, MIB};


fn overlay_size(a: OverlayArgs) -> Result<()> {
    let origin = file_size(osarg::path(&a.origin))?;
    let mib = match a.size.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => return Err(Error::usage(format!("--size {s}: expected a number of MiB"))),
        },
        None => origin.div_ceil(MIB).min(meminfo("MemTotal")? / 2 / MIB).max(1),
    };
    out(&format!("{mib}\n"));
    Ok(())
}

fn ram_copy(a: RamArgs) -> Result<()> {
    if a.files.is_empty() {
        return Err(Error::usage("ram-copy: no file named\nTry 'liveinit ram-copy --help' for more information."));
    }
    let files: Vec<PathBuf> = a.files.iter().map(|f| osarg::path(f)).collect();
    let to = osarg::path(&a.to);
    let mut total = 0u64;
    for f in &files {
        total = total.saturating_add(file_size(f)?);
    }
    let first = files.first().map(|f| f.display().to_string()).unwrap_or_default();
    crate::ramcopy::check_mem(&first, total, a.minmem)?;
    std::fs::create_dir_all(&to).ctx(to.display())?;
    if a.tmpfs {
        crate::ramcopy::mount_tmpfs(&to, total + MIB)?;
    }
    for f in &files {
        let name = f.file_name().ok_or_else(|| Error::new(f.display().to_string(), "not a file name"))?;
        let dest = to.join(name);
        std::fs::copy(f, &dest).ctx(dest.display())?;
    }
    Ok(())
}

// ---- select-image ----------------------------------------------------------------------------

fn select_image(a: SelectArgs) -> Result<()> {
    use crate::select::{select, Check, Options, Ram};
    let check = Check::parse(&a.check)
        .ok_or_else(|| Error::usage(format!("select-image: --check {}: expected auto, full, manifest or none", a.check)))?;
    let key = a.pubkey_file.as_deref().map(|f| crate::manifest::pubkey_from_file(&crate::osarg::path(f))).transpose()?;
    if a.name.is_empty() || a.name.contains('/') {
        return Err(Error::usage(format!("select-image: '{}': expected a file name", a.name)));
    }
    let ram = a.ram_to.map(|d| Ram { dir: osarg::path(&d), minmem: a.minmem, unless_verity: a.ram_unless_verity });
    if let Some(bad) = a.skip.iter().find(|s| !["primary", "old", "new"].contains(&s.as_str())) {
        return Err(Error::usage(format!("select-image: --skip {bad}: expected primary, old or new")));
    }
    let good_floor = match a.trial_state.as_deref().map(osarg::path) {
        // A missing or unreadable record lowers nothing: it cannot be trusted more than the
        // pairs beside it, and refusing to boot over it would brick the box.
        Some(f) => match crate::trial::read(&f) {
            Ok(cur) => cur.and_then(|c| c.record).map_or(0, |r| r.floor),
            Err(e) => {
                let _ = std::io::stderr().write_all(format!("select-image: {e}: no floor from it\n").as_bytes());
                0
            }
        },
        None => 0,
    };
    let o = Options { key: key.as_ref(), min_version: a.min_version, good_floor, check, ram, skip: a.skip };
    let s = select(&osarg::path(&a.dir), &a.name, &o, &mut |e| {
        let _ = std::io::stderr().write_all(format!("select-image: {e}\n").as_bytes());
    })?;
    out(&s.to_shell());
    Ok(())
}

// ---- state -----------------------------------------------------------------------------------

fn state(a: StateArgs) -> Result<()> {
    use crate::state;
    let file = osarg::path(&a.file);
    match a.action.as_str() {
        "set" => {
            let mut kv = Vec::new();
            for x in &a.args {
                let (k, v) = x.split_once('=').ok_or_else(|| Error::usage(format!("state set: '{x}': expected KEY=VALUE")))?;
                kv.push((k.to_owned(), v.to_owned()));
            }
            if kv.is_empty() {
                return Err(Error::usage("state set: expected KEY=VALUE..."));
            }
            state::set(&file, &kv)
        }
        "get" => {
            let [key] = a.args.as_slice() else {
                return Err(Error::usage("state get: expected one KEY"));
            };
            match state::get(&file, key)? {
                Some(v) => {
                    out(&format!("{v}\n"));
                    Ok(())
                }
                None => Err(Error::new(format!("{}: {key}", file.display()), "no such key")),
            }
        }
        "show" => {
            let s: String = state::load(&file)?.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            out(&s);
            Ok(())
        }
        other => Err(Error::usage(format!("state: unknown action '{other}' (set, get, show)"))),
    }
}

// ---- trial / mark-good -----------------------------------------------------------------------

use crate::trial::{self, Boot, Ident};

/// Where the medium is mounted when the boot released it (rd.live.ram, a fetched image).
const TRIAL_MOUNT: &str = "/run/live/trial-medium";

/// The trial file and, when the medium had to be mounted for it, that mount (undone on drop).
struct Located {
    path: PathBuf,
    mounted: bool,
}

impl Drop for Located {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount(TRIAL_MOUNT);
        }
    }
}

/// `--file`, else `trial.state` beside the image on the medium the state file names (mounted
/// read-only at TRIAL_MOUNT if the boot released it).
fn locate(file: Option<&str>, state_file: &str) -> Result<Located> {
    if let Some(f) = file {
        return Ok(Located { path: osarg::path(f), mounted: false });
    }
    let st = crate::state::load(osarg::path(state_file))?;
    let get = |k: &str| crate::state::lookup(&st, k).to_owned();
    let image = get("image");
    let image = if image.is_empty() { "LiveOS/squashfs.img".to_owned() } else { image };
    let rel = Path::new(image.trim_start_matches('/')).parent().map(Path::to_path_buf).unwrap_or_default().join(trial::FILE);
    let mnt = get("medium_mount");
    if !mnt.is_empty() {
        return Ok(Located { path: Path::new(&mnt).join(rel), mounted: false });
    }
    let dev = get("medium");
    if dev.is_empty() {
        return Err(Error::new(state_file, "no medium recorded (a network-only boot has no trial state); give --file"));
    }
    std::fs::create_dir_all(TRIAL_MOUNT).ctx(TRIAL_MOUNT)?;
    let ty = get("medium_type");
    let ty = if ty.is_empty() || ty == "auto" { "vfat".to_owned() } else { ty };
    nix::mount::mount(Some(dev.as_str()), TRIAL_MOUNT, Some(ty.as_str()), nix::mount::MsFlags::MS_RDONLY, None::<&str>)
        .ctx(format!("{dev} on {TRIAL_MOUNT}"))?;
    Ok(Located { path: Path::new(TRIAL_MOUNT).join(rel), mounted: true })
}

fn ident(sha256: &str, version: &str) -> Result<Option<Ident>> {
    let version = match version {
        "" => 0,
        v => v.parse().map_err(|_| Error::usage(format!("trial: --version {v}: expected a number")))?,
    };
    if sha256.is_empty() {
        return Ok(None);
    }
    let sha256 = crate::digest::parse_sha256(sha256.as_bytes())
        .ok_or_else(|| Error::usage(format!("trial: --sha256 {sha256}: expected 64 hex digits")))?;
    Ok(Some(Ident { version, sha256 }))
}

fn nonzero(v: u64) -> String {
    if v == 0 { String::new() } else { v.to_string() }
}

fn trial(a: TrialArgs) -> Result<()> {
    match a.cmd {
        TrialCmd::Take(a) => trial_take(a),
        TrialCmd::Status(a) => trial_status(a),
        TrialCmd::Start(a) => trial_start(a),
        TrialCmd::Create(a) => trial::create(&osarg::path(&a.file)),
    }
}

fn trial_take(a: TakeArgs) -> Result<()> {
    let img = ident(&a.sha256, &a.version)?;
    let start = a.start.map(|tries| trial::Start { tries, keep: a.keep });
    // A fetched image's trial that must begin needs somewhere to count its tries; without it
    // the image does not boot (it would boot untried at every boot, a crash loop for ever).
    let must_count = |why: String| match start {
        Some(s) if s.tries > 0 => {
            Boot::Fallback(format!("{why}: a fetched image's tries cannot be counted; it does not boot untried (rd.live.tries=0 allows that)"))
        }
        Some(_) => Boot::Plain(format!("{}: rd.live.tries=0: boots untried ({why})", img.map(|i| i.label()).unwrap_or_default())),
        None => Boot::Plain(why),
    };
    let loc = locate(a.file.as_deref(), &a.state);
    let (boot, cur) = match (&loc, img) {
        (_, None) => (Boot::Plain("the image is unchecked: no trial".into()), None),
        (Err(e), _) => (must_count(format!("no trial state: {e}")), None),
        (Ok(l), Some(img)) => match trial::read(&l.path) {
            Ok(None) => (must_count(format!("{}: missing, no trial state (a flash from before trials)", l.path.display())), None),
            Err(e) => (must_count(format!("no trial state: {e}")), None),
            Ok(Some(cur)) => {
                let (boot, w) = trial::take(cur.record.as_ref(), &img, start);
                // A fresh file has no record in either copy: normal. Anything else is news.
                let boot = match boot {
                    Boot::Plain(why) if cur.bad.iter().any(|b| b.is_some_and(|b| !b.starts_with("no record"))) && cur.record.is_none() => {
                        Boot::Plain(format!("{why}: {}", cur.why()))
                    }
                    b => b,
                };
                let mut rec = cur.record.clone();
                let boot = match w {
                    None => boot,
                    Some(w) if a.peek => {
                        rec = Some(w);
                        boot
                    }
                    Some(_) => match trial::update(&l.path, a.via_fs, |c| trial::take(c, &img, start).1) {
                        Ok(w) => {
                            rec = w.or(rec);
                            boot
                        }
                        Err(e) => Boot::Fallback(match boot {
                            Boot::Fallback(why) => format!("{why} (not recorded: {e})"),
                            _ => format!("cannot count the try on the flash ({e}): a try not counted could repeat forever"),
                        }),
                    },
                };
                (boot, rec)
            }
        },
    };
    let l = img.map(|i| i.label()).unwrap_or_default();
    let (left, fallback) = match &boot {
        Boot::Plain(why) => {
            if !why.is_empty() {
                warn(&format!("trial: {why}"));
            }
            (String::new(), String::new())
        }
        Boot::Trial(n) => {
            let tries = cur.as_ref().map_or(0, |r| r.tries);
            warn(&format!("trial: {l} is on trial: try {} of {tries}, {n} left after this boot", tries.saturating_sub(*n)));
            (n.to_string(), String::new())
        }
        Boot::Fallback(why) => {
            warn(&format!("trial: {why}"));
            (String::new(), why.clone())
        }
    };
    out(&crate::cmdline::sh_assignments(&[
        ("TRIAL", left),
        ("TRIAL_FALLBACK", fallback),
        ("TRIAL_FAILED", nonzero(cur.as_ref().map_or(0, |r| r.failed_version))),
        ("TRIAL_FLOOR", nonzero(cur.as_ref().map_or(0, |r| r.floor))),
    ]));
    Ok(())
}

fn trial_status(a: TrialStatusArgs) -> Result<()> {
    let loc = locate(a.file.as_deref(), &a.state)?;
    let cur = trial::read(&loc.path)?.ok_or_else(|| Error::new(loc.path.display().to_string(), "No such file or directory"))?;
    let r = cur.record.as_ref();
    let num = |f: fn(&trial::Record) -> u64| r.map(|r| f(r).to_string()).unwrap_or_default();
    out(&crate::cmdline::sh_assignments(&[
        ("TRIAL_STATUS", r.map_or("none", |r| r.status.name()).to_owned()),
        ("TRIAL_LEFT", num(|r| r.tries_left.into())),
        ("TRIAL_TRIES", num(|r| r.tries.into())),
        ("TRIAL_VERSION", num(|r| r.image.version)),
        ("TRIAL_SHA256", r.map(|r| crate::digest::hex(&r.image.sha256)).unwrap_or_default()),
        ("TRIAL_NET", r.map_or("", |r| if r.net { "1" } else { "" }).to_owned()),
        ("TRIAL_FAILED", nonzero(r.map_or(0, |r| r.failed_version))),
        ("TRIAL_FLOOR", nonzero(r.map_or(0, |r| r.floor))),
        ("TRIAL_SEQ", num(|r| r.seq.into())),
        ("TRIAL_WHY", cur.why()),
    ]));
    Ok(())
}

fn trial_start(a: StartArgs) -> Result<()> {
    let img = ident(&a.sha256, &a.version)?.ok_or_else(|| Error::usage("trial start: --sha256 is required"))?;
    if a.tries == 0 {
        return Err(Error::usage("trial start: --tries 0: a trial needs at least one try"));
    }
    let loc = locate(a.file.as_deref(), &a.state)?;
    let w = trial::update(&loc.path, a.via_fs, |c| match c {
        Some(r) if r.image == img => None,
        _ => Some(trial::begin(c, &img, trial::Start { tries: a.tries, keep: a.keep }, a.net)),
    })?;
    match w {
        Some(_) => {
            out(&format!("trial: {} is on trial: {} tries to call mark-good\n", img.label(), a.tries));
            Ok(())
        }
        None => Err(Error::new(loc.path.display().to_string(), format!("already about {}; unchanged", img.label())).code(crate::error::Code::NoChange)),
    }
}

/// The trial ends (when there is one about the running image), then the watchdog /init armed
/// for it is stopped.
fn mark_good(a: MarkGoodArgs) -> Result<()> {
    let path = osarg::path(&a.state);
    let st = crate::state::load(&path)?;
    mark_good_record(&a, &st)?;
    watchdog_disarm_armed(&path, &st)
}

fn mark_good_record(a: &MarkGoodArgs, st: &[(String, String)]) -> Result<()> {
    let img = ident(crate::state::lookup(st, "image_sha256"), crate::state::lookup(st, "image_version"))?;
    let Some(img) = img else {
        out("mark-good: the running image was not checked (no image_sha256 in the state): never on trial\n");
        return Ok(());
    };
    let loc = match locate(a.file.as_deref(), &a.state) {
        Ok(l) => l,
        Err(e) if a.file.is_none() => {
            out(&format!("mark-good: no trial state ({e}); nothing to mark\n"));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let Some(cur) = trial::read(&loc.path)? else {
        out(&format!("mark-good: {}: missing; nothing to mark\n", loc.path.display()));
        return Ok(());
    };
    let (w, msg) = trial::mark_good(cur.record.as_ref(), &img);
    if w.is_some() {
        trial::update(&loc.path, a.via_fs, |c| trial::mark_good(c, &img).0)?;
    }
    out(&format!("mark-good: {msg}\n"));
    Ok(())
}

// ---- watchdog -------------------------------------------------------------------------------

use crate::sys::watchdog::Watchdog;
use nix::errno::Errno;

const WATCHDOG_DEV: &str = "/dev/watchdog";

fn watchdog(a: WatchdogArgs) -> Result<()> {
    match (a.action.as_str(), a.seconds) {
        ("arm", Some(s)) => watchdog_arm(&a.dev, s),
        ("disarm", None) => watchdog_disarm(&a.dev),
        _ => Err(Error::usage("watchdog: expected arm SECONDS or disarm")),
    }
}

fn watchdog_arm(dev: &str, secs: u32) -> Result<()> {
    let secs = libc::c_int::try_from(secs).ok().filter(|s| *s > 0).ok_or_else(|| Error::usage("watchdog arm: SECONDS: expected 1 or more"))?;
    let w = match Watchdog::open(Path::new(dev)) {
        Err(Errno::ENOENT | Errno::ENODEV | Errno::ENXIO) => {
            return Err(Error::new(dev, "no watchdog; not armed").code(crate::error::Code::NoChange));
        }
        r => r.ctx(dev)?,
    };
    // Opening started it with the driver's default: a failure from here on stops it again, so a
    // refused timeout never leaves a timer the caller does not know about.
    let armed = w.set_timeout(secs).ctx(format!("{dev}: timeout {secs} s")).and_then(|t| w.keepalive().ctx(dev).map(|()| t));
    match armed {
        Ok(t) => {
            w.leave_running();
            warn(&format!("watchdog: {dev} armed: a reset in {t} s unless mark-good or a watchdog daemon takes it over"));
            out(&format!("{t}\n"));
            Ok(())
        }
        Err(e) => {
            let _ = w.disable();
            let _ = w.magic_close();
            Err(e)
        }
    }
}

fn watchdog_disarm(dev: &str) -> Result<()> {
    let w = match Watchdog::open(Path::new(dev)) {
        Err(Errno::ENOENT | Errno::ENODEV | Errno::ENXIO) => {
            warn(&format!("watchdog: {dev}: no watchdog; nothing to disarm"));
            return Ok(());
        }
        Err(Errno::EBUSY) => {
            warn(&format!("watchdog: {dev}: busy: the OS's watchdog daemon holds it; left to it"));
            return Ok(());
        }
        r => r.ctx(dev)?,
    };
    // Either one stops it; DISABLECARD is the one that says when it cannot (nowayout: EBUSY).
    let stopped = w.disable();
    w.magic_close().ctx(dev)?;
    match stopped {
        Ok(()) => {
            warn(&format!("watchdog: {dev} disarmed"));
            Ok(())
        }
        Err(Errno::EBUSY) => Err(Error::new(dev, "the driver refuses to stop (nowayout): it resets the box unless the OS feeds it")),
        Err(e) => Err(Error::sys(format!("{dev}: stop"), e)),
    }
}

/// mark-good's part: disarm the watchdog /init armed for this trial (`watchdog=` and
/// `watchdog_dev=` in the state), then drop those keys so a second mark-good leaves the device
/// alone. Without them nothing is touched: opening a watchdog starts it.
fn watchdog_disarm_armed(path: &Path, st: &[(String, String)]) -> Result<()> {
    if crate::state::lookup(st, "watchdog").is_empty() {
        return Ok(());
    }
    let dev = match crate::state::lookup(st, "watchdog_dev") {
        "" => WATCHDOG_DEV,
        d => d,
    };
    watchdog_disarm(dev)?;
    crate::state::set(path, &[("watchdog".into(), String::new()), ("watchdog_dev".into(), String::new())])
}

// ---- switch-root -----------------------------------------------------------------------------

use crate::fsutil::is_mountpoint;

/// Resolve `path` as if `root` were `/`: absolute symlinks restart at `root`, `..` stops there.
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    // Names and `..`, last first (a stack); components() already drops `.` and empty names.
    let names = |p: &Path| -> Vec<OsString> {
        p.components()
            .rev()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect()
    };
    let mut todo = names(path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let here = done.iter().fold(root.to_path_buf(), |p, c| p.join(c)).join(&c);
        let md = std::fs::symlink_metadata(&here).ok()?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(&here).ok()?;
            if target.has_root() {
                done.clear();
            }
            todo.extend(names(&target));
        } else {
            done.push(c);
        }
    }
    Some(done.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Delete everything below `dir` that is on device `dev`; other filesystems (the new root, the
/// moved mounts) are not entered. Best effort: the initramfs is going away anyway.
fn delete_tree(dir: &Path, dev: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.dev() != dev {
            continue;
        }
        if md.is_dir() {
            delete_tree(&p, dev);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

fn switch_root(a: &SwitchArgs) -> Result<std::convert::Infallible> {
    use nix::mount::{mount, MsFlags};
    use std::ffi::CString;
    let newroot = std::fs::canonicalize(osarg::path(&a.newroot)).ctx(osarg::path(&a.newroot).display())?;
    let nr = newroot.display().to_string();
    if newroot == Path::new("/") || !is_mountpoint(&newroot) {
        return Err(Error::new(&nr, "not a mount point"));
    }
    let argv: Vec<OsString> =
        if a.init.is_empty() { vec![OsString::from("/sbin/init")] } else { a.init.iter().map(|s| osarg::decode(s)).collect() };
    let init_path = Path::new(argv.first().map_or("/sbin/init".as_ref(), OsString::as_os_str));
    let init = init_path.display().to_string();
    if !init_path.has_root() {
        return Err(Error::usage(format!("switch-root: {init}: init must be an absolute path")));
    }
    let shown = format!("{nr}{init}");
    let real = resolve_in_root(&newroot, init_path).ok_or_else(|| Error::new(&shown, "No such file or directory"))?;
    let md = std::fs::metadata(&real).ctx(&shown)?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(Error::new(&shown, "not an executable file"));
    }
    if nix::unistd::getpid().as_raw() != 1 {
        return Err(Error::new(&nr, "refusing to switch root: not running as PID 1 (it deletes the initramfs)"));
    }
    let fs = nix::sys::statfs::statfs("/").ctx("/")?;
    let magic = fs.filesystem_type().0 as i64;
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        return Err(Error::new("/", "refusing to switch root: / is not an initramfs (ramfs or tmpfs)"));
    }
    for m in ["/dev", "/proc", "/sys", "/run"] {
        let target = newroot.join(&m[1..]);
        if is_mountpoint(Path::new(m)) && target.is_dir() && !is_mountpoint(&target) {
            mount(Some(m), &target, None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx(format!("move {m}"))?;
        }
    }
    nix::unistd::chdir(&newroot).ctx(&nr)?;
    let rootdev = std::fs::symlink_metadata("/").ctx("/")?.dev();
    delete_tree(Path::new("/"), rootdev);
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx(format!("move {nr} to /"))?;
    nix::unistd::chroot(".").ctx(&nr)?;
    nix::unistd::chdir("/").ctx("/")?;
    let argv: Vec<CString> = argv
        .into_iter()
        .map(|s| CString::new(s.into_vec()).map_err(|_| Error::usage("switch-root: argument with a NUL byte")))
        .collect::<Result<_>>()?;
    let Err(e) = nix::unistd::execv(&argv[0], &argv);
    Err(Error::sys(init, e))
}

/// PID 1 must never exit (the kernel panics): on failure say why on the console and in the
/// kernel log, then keep a shell running.
fn switch_root_or_rescue(a: SwitchArgs) -> Result<()> {
    let err = match switch_root(&a) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if nix::unistd::getpid().as_raw() != 1 {
        return Err(err);
    }
    let line = format!("liveroot: switch-root: {err}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let _ = std::fs::OpenOptions::new().write(true).open("/dev/kmsg").and_then(|mut k| k.write_all(format!("<3>{line}").as_bytes()));
    loop {
        let _ = std::process::Command::new("/bin/sh").status();
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/fs/nls/nls_iso8859-1.ko"), "nls_iso8859_1");
        assert_eq!(module_name("kernel/drivers/md/dm-snapshot.ko.xz"), "dm_snapshot");
        assert_eq!(module_name("loop"), "loop");
    }

    #[test]
    fn params_from_cmdline() {
        let (p, b) = module_params("quiet loop.max_loop=8 dm-mod.x=\"a b\" raid1.flag modprobe.blacklist=floppy,pc-spkr");
        let get = |m: &str| p.iter().find(|(n, _)| n == m).map(|(_, v)| v.as_str());
        assert_eq!(get("loop"), Some("max_loop=8"));
        assert_eq!(get("dm_mod"), Some("x=\"a b\""));
        assert_eq!(get("raid1"), Some("flag"));
        assert!(b.contains(&"pc_spkr".to_owned()) && b.contains(&"floppy".to_owned()));
    }

    #[test]
    fn plan_orders_dependencies_first() {
        let mut deps = Vec::new();
        let mut add = |m: &str, d: &[&str]| {
            deps.push((module_name(m), m.to_owned(), d.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
        };
        add("v/virtio_pci.ko", &["v/legacy.ko", "v/modern.ko", "v/virtio.ko", "v/virtio_ring.ko"]);
        add("v/virtio_blk.ko", &["v/virtio.ko", "v/virtio_ring.ko"]);
        let dir = std::env::temp_dir().join(format!("liveinit-plan-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("v")).unwrap();
        for f in ["legacy", "modern", "virtio", "virtio_pci", "virtio_blk"] {
            std::fs::write(dir.join(format!("v/{f}.ko")), "").unwrap();
        }
        let db = ModDb { dir: dir.clone(), deps, builtin: vec!["virtio_ring".to_owned()] };
        let mut order = Vec::new();
        db.plan("virtio_pci", &mut order).unwrap();
        db.plan("virtio_blk", &mut order).unwrap();
        assert_eq!(order, ["v/virtio.ko", "v/modern.ko", "v/legacy.ko", "v/virtio_pci.ko", "v/virtio_blk.ko"]);
        assert!(db.plan("nope", &mut order).is_none());
        assert!(db.plan("virtio_ring", &mut order).is_some());
        std::fs::remove_file(dir.join("v/virtio_blk.ko")).unwrap();
        assert!(db.plan("virtio_blk", &mut Vec::new()).is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn resolve_symlinks_inside_root() {
        let root = std::env::temp_dir().join(format!("liveinit-resolve-{}", std::process::id()));
        std::fs::create_dir_all(root.join("lib/systemd")).unwrap();
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::write(root.join("lib/systemd/systemd"), "").unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", root.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("../lib/systemd/../systemd/systemd", root.join("sbin/rel")).unwrap();
        std::os::unix::fs::symlink("/../../../sbin/loop", root.join("sbin/loop")).unwrap();
        let want = root.join("lib/systemd/systemd");
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/init")).unwrap(), want);
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/rel")).unwrap(), want);
        assert_eq!(resolve_in_root(&root, Path::new("/../../sbin/./init")).unwrap(), want);
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/loop")), None);
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/missing")), None);
        std::fs::remove_dir_all(root).unwrap();
    }

}
