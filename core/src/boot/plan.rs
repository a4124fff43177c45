//! The decisions of the live boot, as pure functions of the kernel command line and what the
//! boot found (a key, manifests, a trial record, a failed step). Each one is a unit test below;
//! `boot.rs` carries them out. Nothing here touches the system.

use crate::cmdline::Live;
use crate::select::Check;

/// Modules the boot needs that no device asks for (missing ones are reported, not fatal). The
/// hardware's drivers (disk, USB, MMC, NIC controllers) come by modalias (coldplug).
pub const MODULES: [&str; 11] =
    ["loop", "squashfs", "dm-snapshot", "dm-verity", "raid1", "ext4", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859_1", "nls_utf8"];
/// Also loaded when present: CD images.
pub const MODULES_OPTIONAL: [&str; 1] = ["isofs"];

/// The ext4 image inside the squashfs: dracut's name, then the older one.
pub const ROOTFS_NAMES: [&str; 2] = ["LiveOS/rootfs.img", "LiveOS/ext3fs.img"];

/// `panic=` default: a kernel panic reboots after this many seconds.
pub const PANIC_DEFAULT: u32 = 10;

/// How long the boot waits for the network interface to appear.
pub const IFACE_WAIT_MS: u64 = 10_000;

/// Whether the medium's image is verified, and whether `rd.live.check=0` is being ignored
/// (a public key is installed: nothing unsigned boots). Default: check when a SHA256SUMS is
/// beside the image or a key is installed.
pub fn check(live_check: Option<bool>, has_sums: bool, has_key: bool) -> (bool, bool) {
    let check = live_check.unwrap_or(has_sums || has_key);
    match (has_key, check) {
        (true, false) => (true, true),
        _ => (check, false),
    }
}

/// The RAM copy select-image makes of the chosen pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamCopy {
    No,
    /// Always (rd.live.ram).
    Always,
    /// With a key and no dm-verity sidecars: only a copy hashed as it was written can be
    /// trusted (a re-read from the medium could differ).
    UnlessVerity,
}

/// How select-image checks the medium's pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectPlan {
    pub check: Check,
    pub ram: RamCopy,
}

/// `check`: from [`check`]; `verity_ok`: dm-verity sidecars can be used; `ram`: rd.live.ram.
pub fn select_plan(check: bool, verity_ok: bool, ram: bool, has_key: bool) -> SelectPlan {
    let check = match (check, verity_ok) {
        (false, _) => Check::None,
        (true, true) => Check::Auto,
        (true, false) => Check::Full,
    };
    let ram = match (ram, has_key, verity_ok) {
        (true, _, _) => RamCopy::Always,
        (false, true, true) => RamCopy::UnlessVerity,
        (false, true, false) => RamCopy::Always,
        (false, false, _) => RamCopy::No,
    };
    SelectPlan { check, ram }
}

/// The version a fetched image must be above: the floor, and never a version that failed its
/// trial (only a higher one is fetched again).
pub fn fetch_above(floor: u64, trial_failed: u64) -> u64 {
    floor.max(trial_failed)
}

/// Whether the boot fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    No,
    /// One trial at a time: a local image on trial is not replaced by a fetched one.
    SkipOnTrial,
    Yes,
}

pub fn fetch(live: &Live, local_on_trial: bool) -> Fetch {
    match (live.fetch.is_empty(), local_on_trial) {
        (true, _) => Fetch::No,
        (false, true) => Fetch::SkipOnTrial,
        (false, false) => Fetch::Yes,
    }
}

/// What a failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The boot cannot continue: the rescue shell.
    Rescue,
    /// Boot the local image (after a failed fetch), or the next pair (after a mapping that
    /// does not verify).
    Next,
}

/// A fetch (or the fetched image's check, mount or trial) failed: a network root has nothing
/// else to boot; otherwise the local image boots.
pub fn fetch_failed(netroot: bool) -> OnFailure {
    if netroot { OnFailure::Rescue } else { OnFailure::Next }
}

/// The local pair did not mount. Only a dm-verity mapping can fail for this pair alone (its
/// image and hash tree disagree, found only when blocks are read): the next pair is tried.
/// Anything else would fail the same for every pair.
pub fn mount_failed(through_verity: bool, netroot: bool) -> OnFailure {
    if through_verity && !netroot { OnFailure::Next } else { OnFailure::Rescue }
}

/// Size in KiB of the tmpfs that holds a COW store of `size_mib`: the store, dm-snapshot's
/// exception metadata (one 16-byte entry per 4 KiB chunk, rounded up: 1/64) and 8 MiB of room.
pub fn overlay_tmpfs_kib(size_mib: u64) -> u64 {
    size_mib.saturating_add(size_mib / 64).saturating_add(8).saturating_mul(1024)
}

/// The COW size in MiB: rd.live.overlay.size, else the smaller of the origin and half of RAM.
pub fn overlay_mib(requested: Option<u64>, origin_bytes: u64, mem_total_bytes: u64) -> u64 {
    let mib = 1024 * 1024;
    match requested.filter(|&n| n > 0) {
        Some(n) => n,
        None => origin_bytes.div_ceil(mib).min(mem_total_bytes / 2 / mib).max(1),
    }
}

/// udhcpc's discover count (`-t`, one a second with `-T 1`) for `left` seconds of the budget:
/// half of it, so the download keeps the other half; at least one.
pub fn dhcp_tries(left: u64) -> u64 {
    if left > 2 { left / 2 } else { 1 }
}

/// The ext4 image inside the squashfs, by [`ROOTFS_NAMES`] order.
pub fn rootfs_image(exists: impl Fn(&str) -> bool) -> Option<&'static str> {
    ROOTFS_NAMES.into_iter().find(|n| exists(n))
}

/// Seconds to arm the hardware watchdog with: only for an image on trial (a good image has
/// nothing that would stop the timer), when rd.live.watchdog is not 0 and a watchdog exists.
pub fn watchdog(trial: Option<u8>, secs: u32, has_device: bool) -> Option<u32> {
    (trial.is_some() && secs > 0 && has_device).then_some(secs)
}

/// The `panic=` the boot sets: a live boot reboots after a panic unless the command line says
/// otherwise; a plain root is left as the kernel has it.
pub fn panic(given: Option<&str>, live_boot: bool) -> Option<u32> {
    (given.is_none() && live_boot).then_some(PANIC_DEFAULT)
}

/// A fetched image's trial is about to begin: the trial file is created first where the medium
/// has none, unless rd.live.tries=0 (untried boots, nothing written).
pub fn create_trial_file(exists: bool, tries: u8) -> bool {
    !exists && tries > 0
}

/// Where the public key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    None,
    /// Built into the initramfs (make initramfs PUBKEY=).
    Builtin,
    /// live.pubkey= on the command line, used only when none is built in (with a warning).
    Cmdline,
}

pub fn key(builtin: bool, cmdline: &str) -> Key {
    match (builtin, cmdline.is_empty()) {
        (true, _) => Key::Builtin,
        (false, false) => Key::Cmdline,
        (false, true) => Key::None,
    }
}

/// `booted=` in the state: `net` for a fetched image, `ram` for rd.live.ram (the medium is
/// released), else `local` (a RAM copy forced by the key is still the medium's image).
pub fn booted(fetched: bool, ram: bool) -> &'static str {
    match (fetched, ram) {
        (true, _) => "net",
        (false, true) => "ram",
        (false, false) => "local",
    }
}

/// What imgfetch is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchArgs {
    pub pubkey: String,
    pub to: String,
    /// Seconds left of live.fetch.timeout.
    pub left: u64,
    /// The floor ([`fetch_above`]); `None` for a network root (no local image to be above).
    pub above: Option<u64>,
    pub min_version: u64,
    /// The validators of the last manifest that needed nothing (`None`: network root).
    pub cache: Option<String>,
    /// Local images that seed a delta download: the local candidate and the previous pair.
    pub seeds: Vec<String>,
}

/// imgfetch's arguments for `live` and `a`.
pub fn imgfetch_argv(live: &Live, a: &FetchArgs) -> Vec<String> {
    let mut v: Vec<String> = ["--pubkey-file", &a.pubkey, "--to", &a.to, "--timeout", &a.left.to_string(), "--stall-timeout", "10", "--retries", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut opt = |k: &str, val: String| {
        v.push(k.to_owned());
        v.push(val);
    };
    if let Some(above) = a.above {
        opt("--newer-than", above.to_string());
    }
    opt("--min-version", a.min_version.to_string());
    if live.allow_downgrade {
        v.push("--allow-downgrade".into());
    }
    let mut opt = |k: &str, val: String| {
        v.push(k.to_owned());
        v.push(val);
    };
    if !live.machine_id.is_empty() {
        opt("--machine-id", live.machine_id.clone());
    }
    if let Some(c) = &a.cache {
        opt("--cache", c.clone());
    }
    let mut seen: Vec<&String> = Vec::new();
    for s in &a.seeds {
        if !s.is_empty() && !seen.contains(&s) {
            seen.push(s);
        }
    }
    for s in seen {
        v.push("--seed".into());
        v.push(s.clone());
    }
    v.push(live.fetch.clone());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_defaults_to_sums_or_key() {
        assert_eq!(check(None, false, false), (false, false));
        assert_eq!(check(None, true, false), (true, false));
        assert_eq!(check(None, false, true), (true, false));
        assert_eq!(check(Some(false), true, false), (false, false));
        assert_eq!(check(Some(true), false, false), (true, false));
    }

    #[test]
    fn check_off_is_ignored_with_a_key() {
        assert_eq!(check(Some(false), false, true), (true, true));
        assert_eq!(check(Some(false), true, true), (true, true));
    }

    #[test]
    fn ram_copy_when() {
        assert_eq!(select_plan(true, true, true, false), SelectPlan { check: Check::Auto, ram: RamCopy::Always });
        assert_eq!(select_plan(true, true, false, true), SelectPlan { check: Check::Auto, ram: RamCopy::UnlessVerity });
        assert_eq!(select_plan(true, false, false, true), SelectPlan { check: Check::Full, ram: RamCopy::Always });
        assert_eq!(select_plan(true, true, false, false), SelectPlan { check: Check::Auto, ram: RamCopy::No });
        assert_eq!(select_plan(false, true, false, false), SelectPlan { check: Check::None, ram: RamCopy::No });
        assert_eq!(select_plan(false, true, true, false).ram, RamCopy::Always);
    }

    #[test]
    fn fetch_floor_after_a_failed_trial() {
        assert_eq!(fetch_above(3, 0), 3);
        assert_eq!(fetch_above(3, 5), 5);
        assert_eq!(fetch_above(6, 5), 6);
    }

    #[test]
    fn one_trial_at_a_time() {
        let mut l = Live::default();
        assert_eq!(fetch(&l, false), Fetch::No);
        assert_eq!(fetch(&l, true), Fetch::No);
        l.fetch = "http://h/p/".into();
        assert_eq!(fetch(&l, false), Fetch::Yes);
        assert_eq!(fetch(&l, true), Fetch::SkipOnTrial);
    }

    #[test]
    fn netroot_failure_rescues_else_local() {
        assert_eq!(fetch_failed(true), OnFailure::Rescue);
        assert_eq!(fetch_failed(false), OnFailure::Next);
    }

    #[test]
    fn only_a_verity_mapping_failure_tries_the_next_pair() {
        assert_eq!(mount_failed(true, false), OnFailure::Next);
        assert_eq!(mount_failed(false, false), OnFailure::Rescue);
        assert_eq!(mount_failed(true, true), OnFailure::Rescue);
    }

    #[test]
    fn overlay_sizes() {
        assert_eq!(overlay_tmpfs_kib(512), (512 + 8 + 8) * 1024);
        assert_eq!(overlay_tmpfs_kib(1), 9 * 1024);
        assert_eq!(overlay_tmpfs_kib(u64::MAX), u64::MAX);
        let mib = 1 << 20;
        assert_eq!(overlay_mib(Some(100), 10 * mib, 1 << 40), 100);
        assert_eq!(overlay_mib(None, 10 * mib + 1, 1 << 40), 11);
        assert_eq!(overlay_mib(None, 1 << 40, 1024 * mib), 512);
        assert_eq!(overlay_mib(Some(0), 0, 0), 1);
    }

    #[test]
    fn dhcp_gets_half_the_budget() {
        assert_eq!(dhcp_tries(20), 10);
        assert_eq!(dhcp_tries(3), 1);
        assert_eq!(dhcp_tries(2), 1);
        assert_eq!(dhcp_tries(0), 1);
    }

    #[test]
    fn rootfs_or_ext3fs() {
        assert_eq!(rootfs_image(|_| true), Some("LiveOS/rootfs.img"));
        assert_eq!(rootfs_image(|n| n.ends_with("ext3fs.img")), Some("LiveOS/ext3fs.img"));
        assert_eq!(rootfs_image(|_| false), None);
    }

    #[test]
    fn watchdog_only_on_trial() {
        assert_eq!(watchdog(Some(2), 120, true), Some(120));
        assert_eq!(watchdog(Some(0), 30, true), Some(30));
        assert_eq!(watchdog(None, 120, true), None);
        assert_eq!(watchdog(Some(2), 0, true), None);
        assert_eq!(watchdog(Some(2), 120, false), None);
    }

    #[test]
    fn panic_default_ten() {
        assert_eq!(panic(None, true), Some(10));
        assert_eq!(panic(Some("-1"), true), None);
        assert_eq!(panic(None, false), None);
    }

    #[test]
    fn trial_file_created_once() {
        assert!(create_trial_file(false, 3));
        assert!(!create_trial_file(true, 3));
        assert!(!create_trial_file(false, 0));
    }

    #[test]
    fn key_from_cmdline_only_without_builtin() {
        assert_eq!(key(true, "RWQ..."), Key::Builtin);
        assert_eq!(key(false, "RWQ..."), Key::Cmdline);
        assert_eq!(key(false, ""), Key::None);
    }

    #[test]
    fn booted_kinds() {
        assert_eq!(booted(true, true), "net");
        assert_eq!(booted(false, true), "ram");
        assert_eq!(booted(false, false), "local");
    }

    #[test]
    fn imgfetch_arguments() {
        let mut l = Live { fetch: "http://h/p/".into(), ..Live::default() };
        let a = FetchArgs {
            pubkey: "/k".into(),
            to: "/run/live/ram".into(),
            left: 17,
            above: Some(4),
            min_version: 2,
            cache: Some("/run/live/fetch.cache".into()),
            seeds: vec!["/m/s.img".into(), "/m/s.img".into(), "/m/s.img.old".into(), String::new()],
        };
        assert_eq!(
            imgfetch_argv(&l, &a).join(" "),
            "--pubkey-file /k --to /run/live/ram --timeout 17 --stall-timeout 10 --retries 2 --newer-than 4 --min-version 2 \
             --cache /run/live/fetch.cache --seed /m/s.img --seed /m/s.img.old http://h/p/"
        );
        l.allow_downgrade = true;
        l.machine_id = "box".into();
        let a = FetchArgs { above: None, cache: None, seeds: vec![], ..a };
        assert_eq!(
            imgfetch_argv(&l, &a).join(" "),
            "--pubkey-file /k --to /run/live/ram --timeout 17 --stall-timeout 10 --retries 2 --min-version 2 --allow-downgrade \
             --machine-id box http://h/p/"
        );
    }
}
