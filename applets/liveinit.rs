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
//! liveinit select-image DIR NAME [--pubkey-file F] [--min-version N] [--trial-state F]
//!          [--check auto|full|manifest|none] [--ram-to DIR [--minmem MIB] [--ram-unless-verity]] [--skip primary|old|new]...
//!                                               choose the pair that boots; IMG_* assignments
//! liveinit state set KEY=VALUE... | get KEY | show   [--file F]   /run/live/state
//! liveinit boot                                 the live boot /init runs: root at /sysroot, state
//! liveinit switch-root [--live] NEWROOT [INIT [ARG...]]
//!                                               move /dev /proc /sys /run, free the
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
use crate::error::{Context, Error, Result};
use crate::probe;
use argh::FromArgs;
use std::io::Write;

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
    SelectImage(SelectArgs),
    State(StateArgs),
    SwitchRoot(SwitchArgs),
    MarkGood(MarkGoodArgs),
    Trial(TrialArgs),
    Watchdog(WatchdogArgs),
    Boot(BootArgs),
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
    /// the live boot's last step: panic= default, the watchdog for an image on trial, init=
    /// from the kernel command line (liveinit boot's root)
    #[argh(switch)]
    live: bool,
    /// the new root, a mount point
    #[argh(positional)]
    newroot: String,
    /// init program inside NEWROOT, then its arguments
    #[argh(positional, greedy)]
    init: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "boot")]
/// The live boot, as /init runs it: the kernel command line, modules, the medium, the image
/// pair and its trial, a newer image fetched, dm-verity or a loop, the snapshot, md, the root
/// mounted at /sysroot and /run/live/state written (rd.break: /run/live/rd.break too). A failing
/// step prints one line `liveroot: STEP: object: reason` on the console and in the kernel log
/// and exits non-zero: 1, 3 (verification failed) or 4 (network root unreachable).
struct BootArgs {}

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
    #[argh(option, default = "crate::watchdog::DEV.to_owned()")]
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
        Cmd::SelectImage(a) => select_image(a),
        Cmd::State(a) => state(a),
        Cmd::SwitchRoot(a) => switch_root(a),
        Cmd::Boot(a) => boot(a),
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

// ---- modprobe / coldplug / find-medium ---------------------------------------------------------

use crate::modprobe;

fn modprobe(a: ModprobeArgs) -> Result<()> {
    if a.modules.is_empty() {
        return Err(Error::usage("modprobe: no module named\nTry 'liveinit modprobe --help' for more information."));
    }
    let (dir, cmdline) = (a.dir.as_deref().map(osarg::path), a.cmdline.as_deref().map(osarg::path));
    let o = modprobe::Modprobe { quiet: a.quiet, dry_run: a.dry_run, dir: dir.as_deref(), cmdline: cmdline.as_deref() };
    modprobe::modprobe(&a.modules, &o, &mut |w| warn(w), &mut |t| out(t))
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
    let p = |o: &Option<String>| o.as_deref().map(osarg::path);
    let mut plug = modprobe::Plug::new(p(&a.modules_dir).as_deref(), p(&a.sysfs).as_deref(), p(&a.cmdline).as_deref())?;
    if a.dry_run {
        let s: String = plug.pass(true, &mut |w| warn(w)).iter().map(|m| format!("{m}\n")).collect();
        out(&s);
        return Ok(());
    }
    let line = modprobe::coldplug(&mut plug, a.settle, &mut |w| warn(w));
    out(&format!("{line}\n"));
    Ok(())
}

fn find_medium(a: FindArgs) -> Result<()> {
    let dev = modprobe::find_medium(&a.spec, a.wait, a.all, a.coldplug, &mut |n| warn(n))?;
    out(&format!("{dev}\n"));
    Ok(())
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
            Ok(found) => out(&probe::line(&d, found.as_ref())),
        }
    }
    failed.map_or(Ok(()), Err)
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
    let good_floor = a.trial_state.as_deref().map_or(0, |f| {
        crate::select::good_floor(&osarg::path(f), &mut |e| {
            let _ = std::io::stderr().write_all(format!("select-image: {e}: no floor from it\n").as_bytes());
        })
    });
    let o = Options { key: key.as_ref(), min_version: a.min_version, good_floor, check, ram, skip: a.skip };
    let s = select(&osarg::path(&a.dir), &a.name, &o, &mut |e| {
        let _ = std::io::stderr().write_all(format!("select-image: {e}\n").as_bytes());
    })?;
    out(&s.to_shell());
    Ok(())
}

// ---- state -----------------------------------------------------------------------------------

fn state(a: StateArgs) -> Result<()> {
    out(&crate::state::command(&osarg::path(&a.file), &a.action, &a.args)?);
    Ok(())
}

// ---- trial / mark-good -----------------------------------------------------------------------

use crate::state::LiveState;
use crate::trial::{self, Ident};

fn trial(a: TrialArgs) -> Result<()> {
    match a.cmd {
        TrialCmd::Take(a) => trial_take(a),
        TrialCmd::Status(a) => trial_status(a),
        TrialCmd::Start(a) => trial_start(a),
        TrialCmd::Create(a) => trial::create(&osarg::path(&a.file)),
    }
}

fn trial_take(a: TakeArgs) -> Result<()> {
    let img = Ident::parse(&a.sha256, &a.version)?;
    let start = a.start.map(|tries| trial::Start { tries, keep: a.keep });
    let loc = trial::locate(a.file.as_deref().map(osarg::path).as_deref(), &a.state);
    let t = crate::boot::take::take(loc.as_ref().map(|l| l.path.as_path()), img.as_ref(), start, a.peek, a.via_fs);
    if !t.note.is_empty() {
        warn(&format!("trial: {}", t.note));
    }
    out(&t.to_shell());
    Ok(())
}

fn trial_status(a: TrialStatusArgs) -> Result<()> {
    let loc = trial::locate(a.file.as_deref().map(osarg::path).as_deref(), &a.state)?;
    let cur = trial::read(&loc.path)?.ok_or_else(|| Error::new(loc.path.display().to_string(), "No such file or directory"))?;
    out(&cur.to_shell());
    Ok(())
}

fn trial_start(a: StartArgs) -> Result<()> {
    let img = Ident::parse(&a.sha256, &a.version)?.ok_or_else(|| Error::usage("trial start: --sha256 is required"))?;
    if a.tries == 0 {
        return Err(Error::usage("trial start: --tries 0: a trial needs at least one try"));
    }
    let loc = trial::locate(a.file.as_deref().map(osarg::path).as_deref(), &a.state)?;
    out(&trial::start(&loc.path, a.via_fs, &img, trial::Start { tries: a.tries, keep: a.keep }, a.net)?);
    Ok(())
}

/// The trial ends (when there is one about the running image), then the watchdog /init armed
/// for it is stopped.
fn mark_good(a: MarkGoodArgs) -> Result<()> {
    let path = osarg::path(&a.state);
    let st = LiveState::load(&path)?;
    let file = a.file.as_deref().map(osarg::path);
    out(&trial::mark_good_running(&st, file.as_deref(), &a.state, a.via_fs)?);
    crate::watchdog::disarm_armed(&path, &st, &mut |n| warn(n))
}

// ---- watchdog / switch-root / boot ------------------------------------------------------------

fn watchdog(a: WatchdogArgs) -> Result<()> {
    match (a.action.as_str(), a.seconds) {
        ("arm", Some(s)) => {
            let t = crate::watchdog::arm(&a.dev, s, &mut |n| warn(n))?;
            out(&format!("{t}\n"));
            Ok(())
        }
        ("disarm", None) => crate::watchdog::disarm(&a.dev, &mut |n| warn(n)),
        _ => Err(Error::usage("watchdog: expected arm SECONDS or disarm")),
    }
}

fn switch_root(a: SwitchArgs) -> Result<()> {
    if a.live {
        if !a.init.is_empty() {
            return Err(Error::usage("switch-root --live: init= comes from the kernel command line"));
        }
        return crate::boot::switch_root_live(&osarg::path(&a.newroot));
    }
    let init: Vec<std::ffi::OsString> = a.init.iter().map(|s| osarg::decode(s)).collect();
    crate::switchroot::switch_root_or_rescue(&osarg::path(&a.newroot), &init)
}

fn boot(_: BootArgs) -> Result<()> {
    // The boot said its one line on the console and in the kernel log: the error is only the
    // exit code.
    crate::boot::boot().map_err(|r| Error::reported(r.code))
}
