//! liveinit's command line: one argh struct per subcommand, with the help texts `--help` prints
//! (and man/liveroot-liveinit.8 follows, tests/man.rs checks).

use argh::FromArgs;

#[derive(FromArgs)]
/// Helpers for the live-boot /init: everything busybox sh cannot do well.
pub struct Args {
    #[argh(subcommand)]
    pub cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum Cmd {
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
    Recovery(RecoveryArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "cmdline")]
/// Print the live-boot options of the kernel command line as shell assignments for eval:
/// LIVE_ROOT LIVE_DIR LIVE_SQUASHIMG LIVE_OVERLAY_SIZE LIVE_RAM LIVE_MINMEM LIVE_CHECK LIVE_MD
/// LIVE_RETRY LIVE_BREAK LIVE_INIT LIVE_FETCH LIVE_NETROOT LIVE_FETCH_TIMEOUT LIVE_FETCH_DOWNGRADE
/// LIVE_IP LIVE_IP_IFACE LIVE_PUBKEY LIVE_TRIES (rd.live.tries=N, default 3; 0: a new image
/// boots untried, nothing written). Every value is single-quoted. With --settings, a stick's
/// LiveOS/settings merged in as the boot does (the command line wins; ignored lines on stderr).
pub struct CmdlineArgs {
    /// read this file instead of /proc/cmdline
    #[argh(option)]
    pub file: Option<String>,
    /// merge this LiveOS/settings file as the boot does
    #[argh(option)]
    pub settings: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "modprobe")]
/// Load modules with their dependencies (modules.dep), skipping built-in and loaded ones.
/// Parameters come from MODULE.param=value on the kernel command line. A module that does not
/// exist is skipped with a warning; a module that fails to load makes the exit status 1.
pub struct ModprobeArgs {
    /// do not warn about modules that do not exist
    #[argh(switch, short = 'q')]
    pub quiet: bool,
    /// print what would be loaded (insmod FILE PARAMS), load nothing
    #[argh(switch, short = 'n')]
    pub dry_run: bool,
    /// module directory (default /lib/modules/$(uname -r))
    #[argh(option)]
    pub dir: Option<String>,
    /// kernel command line to take parameters from (default /proc/cmdline)
    #[argh(option)]
    pub cmdline: Option<String>,
    /// module names (dashes and underscores are the same)
    #[argh(positional)]
    pub modules: Vec<String>,
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
pub struct ColdplugArgs {
    /// print the modules one pass would load, one a line, and load nothing
    #[argh(switch, short = 'n')]
    pub dry_run: bool,
    /// ms to wait for new devices after a pass that loaded something (default 2000, at most
    /// 600000)
    #[argh(option, default = "2000", from_str_fn(settle_ms))]
    pub settle: u64,
    /// module directory (default /lib/modules/$(uname -r))
    #[argh(option)]
    pub modules_dir: Option<String>,
    /// sysfs to read (default /sys): devices under DIR/devices, loaded modules in DIR/module
    #[argh(option)]
    pub sysfs: Option<String>,
    /// kernel command line to take parameters and the blacklist from (default /proc/cmdline)
    #[argh(option)]
    pub cmdline: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "find-medium")]
/// Wait for the block device named by SPEC (LABEL=, UUID=, PARTUUID=, PARTLABEL=, CDLABEL= or
/// /dev/...) and print its path. Exit 1 with a list of what was found on timeout.
pub struct FindArgs {
    /// also consider loop, dm, md and ram devices
    #[argh(switch)]
    pub all: bool,
    /// before each look, load the drivers new devices ask for (one coldplug pass)
    #[argh(switch)]
    pub coldplug: bool,
    /// seconds to wait (default 30, at most 86400: a day)
    #[argh(option, default = "30", from_str_fn(boot_wait))]
    pub wait: u64,
    /// the device to look for
    #[argh(positional)]
    pub spec: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "probe")]
/// Print the filesystem type, label and UUID (or partition table) of devices or image files.
pub struct ProbeArgs {
    /// block devices or regular files
    #[argh(positional)]
    pub devices: Vec<String>,
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
pub struct SelectArgs {
    /// minisign public key: manifests must be signed by it
    #[argh(option)]
    pub pubkey_file: Option<String>,
    /// refuse a signed version below N (the minimum built into the initramfs; default 0)
    #[argh(option, default = "0")]
    pub min_version: u64,
    /// the trial state (LiveOS/trial.state): refuse a signed version below the highest one
    /// marked good (the floor rises at mark-good only)
    #[argh(option)]
    pub trial_state: Option<String>,
    /// auto (dm-verity when the sidecars are listed, else hash whole), full, manifest, none
    #[argh(option, default = "String::from(\"auto\")")]
    pub check: String,
    /// copy the chosen image (and its small files) into DIR, a tmpfs, hashing what is written
    #[argh(option)]
    pub ram_to: Option<String>,
    /// with --ram-to: how many MiB of RAM must stay available (default 256)
    #[argh(option, default = "256")]
    pub minmem: u64,
    /// with --ram-to: copy only a pair without dm-verity sidecars
    #[argh(switch)]
    pub ram_unless_verity: bool,
    /// do not try this pair (primary, old or new; repeatable)
    #[argh(option)]
    pub skip: Vec<String>,
    /// the directory on the medium (e.g. /run/live/medium/LiveOS)
    #[argh(positional)]
    pub dir: String,
    /// the image name (e.g. squashfs.img)
    #[argh(positional)]
    pub name: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "state")]
/// Read or update the live-boot state file (key=value lines, default /run/live/state).
pub struct StateArgs {
    /// state file
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    pub file: String,
    /// set KEY=VALUE..., get KEY, or show
    #[argh(positional)]
    pub action: String,
    /// KEY=VALUE pairs (set) or KEY (get)
    #[argh(positional, greedy)]
    pub args: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "switch-root")]
/// Make NEWROOT (a mount point) the root and exec INIT (default /sbin/init) as PID 1: moves
/// /dev /proc /sys /run into it and deletes the initramfs contents first.
pub struct SwitchArgs {
    /// the live boot's last step: panic= default, the watchdog for an image on trial, init=
    /// from the kernel command line (liveinit boot's root)
    #[argh(switch)]
    pub live: bool,
    /// the new root, a mount point
    #[argh(positional)]
    pub newroot: String,
    /// init program inside NEWROOT, then its arguments
    #[argh(positional, greedy)]
    pub init: Vec<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "boot")]
/// The live boot, as /init runs it: the kernel command line, modules, the medium, the image
/// pair and its trial, a newer image fetched, dm-verity or a loop, the snapshot, md, the root
/// mounted at /sysroot and /run/live/state written (rd.break: /run/live/rd.break too). A failing
/// step prints one line `liveroot: STEP: object: reason` on the console and in the kernel log
/// and exits non-zero: 1, 3 (verification failed) or 4 (network root unreachable). With
/// liveroot.stamps on the kernel command line, a line `liveroot-stamp STEP SECONDS` (seconds
/// since the kernel started) at each step: init-start, modules, medium, verified, image, root,
/// state; `switch-root --live` adds init-exec.
pub struct BootArgs {
    /// when /init started (its /proc/uptime), printed as the init-start stamp
    #[argh(option, from_str_fn(stamp_secs))]
    pub init_start: Option<f64>,
}

fn stamp_secs(s: &str) -> Result<f64, String> {
    crate::stamp::parse_secs(s).ok_or_else(|| format!("{s}: expected seconds, e.g. 1.25"))
}

#[derive(FromArgs)]
#[argh(subcommand, name = "recovery")]
/// Before /init gives a shell (rd.break, liveroot.recovery, a failed boot): under Secure Boot
/// (the EFI variable SecureBoot is 1, or the kernel is in lockdown) ask for the recovery
/// password on the console, echo off, 3 tries 2 s apart, checked against the SHA-512 crypt hash
/// ($6$...) baked into the initramfs. Not under Secure Boot: exit 0 at once, nothing asked.
/// Exit: 0 the shell may run (password right, or not needed); 1 no shell: no hash file (no
/// password was set: none under Secure Boot, by design), a malformed one, or no console;
/// 2 usage; 3 the password was wrong 3 times (or the console closed).
pub struct RecoveryArgs {
    /// the hash file (default /etc/liveroot/recovery.hash)
    #[argh(option, default = "crate::recovery::HASH_FILE.to_owned()")]
    pub hash_file: String,
    /// ask even when the boot is not under Secure Boot
    #[argh(switch)]
    pub always: bool,
    /// only check that the hash file holds one well-formed $6$ hash (make flash, make release)
    #[argh(switch)]
    pub check: bool,
    /// when no shell may run at all (exit 1), restart the machine after Enter or 10 minutes
    #[argh(switch)]
    pub restart: bool,
    /// efivarfs (default /sys/firmware/efi/efivars, mounted read-only if it is not)
    #[argh(option)]
    pub efivars: Option<String>,
    /// the lockdown file (default /sys/kernel/security/lockdown, securityfs mounted if it is not)
    #[argh(option)]
    pub lockdown: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "mark-good")]
/// The running image is healthy: end its trial (src/trial.rs), so the next boots are plain boots,
/// and raise the anti-rollback floor to its version. Idempotent: exit 0 with nothing written when
/// it is already good or not on trial. The image is the one /run/live/state names (image_sha256,
/// image_version); the record is LiveOS/trial.state on the medium, written in place through the
/// block device. Exit 1 when the record cannot be written.
pub struct MarkGoodArgs {
    /// the live state file (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    pub state: String,
    /// the trial file (default: on the medium the state names, beside the image)
    #[argh(option)]
    pub file: Option<String>,
    /// write through the file system instead of the block device (a file not on a block
    /// device; it rewrites the directory entry too)
    #[argh(switch)]
    pub via_fs: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "trial")]
/// The trial state of a new image (LiveOS/trial.state): take a try at boot, show, start, create.
pub struct TrialArgs {
    #[argh(subcommand)]
    pub cmd: TrialCmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum TrialCmd {
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
pub struct TakeArgs {
    /// the image's SHA-256 (empty: unchecked, never on trial)
    #[argh(option)]
    pub sha256: String,
    /// its signed version (empty: 0)
    #[argh(option, default = "String::new()")]
    pub version: String,
    /// a fetched image: begin its trial with this many tries if the record is not about it
    /// (0: it boots untried, nothing written: rd.live.tries=0)
    #[argh(option)]
    pub start: Option<u8>,
    /// with --start: the signed version of the medium's pair the trial falls back to; the
    /// floor rises to it (default 0: none)
    #[argh(option, default = "0")]
    pub keep: u64,
    /// the trial file (default: on the medium the state names)
    #[argh(option)]
    pub file: Option<String>,
    /// the live state file, to find the medium (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    pub state: String,
    /// write through the file system instead of the block device
    #[argh(switch)]
    pub via_fs: bool,
    /// decide and print as a take would, but write nothing
    #[argh(switch)]
    pub peek: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "status")]
/// Print the record as TRIAL_STATUS (trial, good, failed or none) TRIAL_LEFT TRIAL_TRIES
/// TRIAL_VERSION TRIAL_SHA256 TRIAL_NET TRIAL_FAILED TRIAL_FLOOR TRIAL_SEQ TRIAL_WHY (why a copy
/// was ignored).
pub struct TrialStatusArgs {
    /// the trial file (default: on the medium the state names)
    #[argh(option)]
    pub file: Option<String>,
    /// the live state file, to find the medium (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    pub state: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "start")]
/// Put an image on trial (after syncflash wrote it as the primary): --tries boots to come up
/// and call mark-good. The failed version and the floor are kept. Exit 5 when the record is
/// already about this image (its trial goes on, or it is already good).
pub struct StartArgs {
    /// the image's SHA-256
    #[argh(option)]
    pub sha256: String,
    /// its signed version (empty: 0)
    #[argh(option, default = "String::new()")]
    pub version: String,
    /// tries (default 3)
    #[argh(option, default = "crate::cmdline::DEFAULT_TRIES")]
    pub tries: u8,
    /// the image came from the network
    #[argh(switch)]
    pub net: bool,
    /// the signed version of the pair the trial falls back to; the floor rises to it
    /// (default 0: none)
    #[argh(option, default = "0")]
    pub keep: u64,
    /// the trial file (default: on the medium the state names)
    #[argh(option)]
    pub file: Option<String>,
    /// the live state file, to find the medium (default /run/live/state)
    #[argh(option, default = "crate::state::DEFAULT_PATH.to_owned()")]
    pub state: String,
    /// write through the file system instead of the block device
    #[argh(switch)]
    pub via_fs: bool,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "watchdog")]
/// The hardware watchdog that ends a hang of an image on trial in a reset (rd.live.watchdog=S).
/// arm SECONDS: start it and close it without the magic character, so it keeps running across
/// switch_root until mark-good stops it or the OS's watchdog daemon opens it (exit 5: none).
/// disarm: stop it (exit 0 when there is none or the OS's daemon holds it; 1 when it cannot be
/// stopped, e.g. nowayout).
pub struct WatchdogArgs {
    /// arm or disarm
    #[argh(positional)]
    pub action: String,
    /// arm: seconds until the reset (1 or more; the driver may round)
    #[argh(positional)]
    pub seconds: Option<u32>,
    /// the device (default /dev/watchdog)
    #[argh(option, default = "crate::watchdog::DEV.to_owned()")]
    pub dev: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "create")]
/// Create a fresh trial file (8 KiB, no record; it must not exist). Written once through the
/// file system, e.g. on the flash image by make flash; boots only ever overwrite it in place.
pub struct CreateArgs {
    /// the file (on the medium: LiveOS/trial.state)
    #[argh(positional)]
    pub file: String,
}

/// `--settle MS`: at most ten minutes (a pass that loads drivers is followed by this much).
pub fn settle_ms(v: &str) -> std::result::Result<u64, String> {
    v.parse().ok().filter(|&n| n <= 600_000).ok_or_else(|| format!("'{v}': expected 0 to 600000 ms (at most ten minutes)"))
}

/// `--wait S`: at most [`crate::cli::MAX_BOOT_WAIT`] (the bound `rd.retry=` has too), so that
/// the deadline cannot overflow the clock.
pub fn boot_wait(v: &str) -> std::result::Result<u64, String> {
    let max = crate::cli::MAX_BOOT_WAIT;
    v.parse().ok().filter(|&n| n <= max).ok_or_else(|| format!("'{v}': expected 0 to {max} seconds (at most a day)"))
}
