//! A release runs on its own kernel. The boot loader always starts the kernel and initramfs in
//! the medium's `/boot` (the last release marked good, or the flashed one); when the pair the
//! boot chose is another release with its own `vmlinuz` and `initrd.img`, this kernel loads
//! them (checked against that pair's signed manifest, copied into RAM first so that the medium
//! cannot change them after the check) and starts them with kexec, with the same command line
//! and `live.kexec=N`. That boot then takes no trial try of its own (this one took it), never
//! kexecs again, and reboots instead of stopping in a shell when it fails.
//!
//! Why kexec and not the loader: a kernel that panics, hangs or lacks the disk's driver must
//! send the box back to the previous release by itself under any firmware. syslinux keeps no
//! state, systemd-boot's counting exists under UEFI only; a kexec from the good kernel's
//! initramfs counts the try in liveroot's own trial record (the same one, the same rules,
//! power-cut-safe) before the new kernel runs, so a new kernel that never reaches /init spends a
//! try like any failed boot, and `tries + 2` power-ons later the previous pair boots. mark-good
//! then makes the release's boot files the loader's (`liveinit mark-good`), so that a good
//! release boots directly from then on. Under Secure Boot the kernel checks a kexec'd kernel's
//! signature against the firmware's keys: a release signed for it loads (issue "Secure Boot").
//!
//! A fetched image (in RAM) with another kernel: a kexec would lose RAM, so it boots on the
//! running kernel only when its root carries that kernel's modules (a Debian root after a kernel
//! update keeps the previous kernel's package), else the local image boots; syncflash then
//! writes it with its kernel, and the next boot kexecs into it.

use crate::pairs::BootDigests;

/// The release version this initramfs belongs to (`make release` writes it; none: the project's
/// own initramfs, which belongs to no release).
pub const RELEASE_FILE: &str = "/etc/liveroot/release";
/// Where the chosen pair's boot files are copied (and checked) before they are loaded.
const STAGE: &str = "/run/live/kexec";

/// What to do with the chosen local pair's boot files.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Boot on the running kernel; the reason, for the kernel log.
    Stay(&'static str),
    /// Start the pair's own kernel and initramfs.
    Kexec,
    /// The pair is another release, but this boot already came through a kexec: never twice.
    StayAfterKexec,
}

/// `listed`: the pair's manifest lists boot files; `version`: its signed version; `running`:
/// this initramfs's release; `kexeced`: `live.kexec=` on the command line.
pub fn decide(listed: bool, version: Option<u64>, running: Option<u64>, kexeced: bool) -> Decision {
    if !listed {
        return Decision::Stay("the image brings no kernel of its own");
    }
    if version.is_some() && version == running {
        return Decision::Stay("the running kernel and initramfs are the image's own");
    }
    if kexeced {
        return Decision::StayAfterKexec;
    }
    Decision::Kexec
}

/// A fetched image (in RAM, which a kexec would lose): boots on the running kernel unless it
/// brings another one and its root has no modules for the running kernel. Err: why not.
pub fn fetched_runs_here(listed: bool, version: Option<u64>, running: Option<u64>, has_modules: bool, kver: &str) -> Result<(), String> {
    if !listed || (version.is_some() && version == running) || has_modules {
        return Ok(());
    }
    Err(format!(
        "version {} brings its own kernel and its root has no modules for the running kernel {kver}: it can boot only from the flash (syncflash, from a system that fetched it)",
        version.unwrap_or(0)
    ))
}

/// A boot that came through a kexec for release `kexec_for` chose `chosen` (its verification
/// or its trial turned the choice to another pair since the loader's kernel made it): that
/// release boots on this kernel only when its root has this kernel's modules
/// (`has_modules`, asked only then); Err: why not, and the boot reboots (the next power-on starts
/// from the loader's kernel, the try already counted).
pub fn kexeced_runs_here(kexec_for: Option<u64>, chosen: Option<u64>, kver: &str, has_modules: impl FnOnce() -> bool) -> Result<(), String> {
    let Some(n) = kexec_for else { return Ok(()) };
    if chosen == Some(n) || has_modules() {
        return Ok(());
    }
    let which = chosen.map_or_else(|| "an unsigned image".to_owned(), |v| format!("version {v}"));
    Err(format!(
        "this kernel ({kver}) was started for version {n}, but this boot chose {which}, whose root has no modules for it: rebooting"
    ))
}

/// The release version in this initramfs ([`RELEASE_FILE`]: `version=N`).
pub fn running_release() -> Option<u64> {
    let text = std::fs::read_to_string(RELEASE_FILE).ok()?;
    text.lines().find_map(|l| l.trim().strip_prefix("version=")).and_then(|v| v.trim().parse().ok())
}

/// The command line for the kexec'd kernel: this one's, without what the loader added for itself
/// (`BOOT_IMAGE=`, `initrd=`) and any earlier `live.kexec=`, with `live.kexec=VERSION`, and
/// `panic=10` unless a `panic=` is there: a new kernel that panics must reboot into the good one.
pub fn cmdline(current: &str, version: u64) -> String {
    let mut words: Vec<&str> = current
        .split_ascii_whitespace()
        .filter(|w| !w.starts_with("BOOT_IMAGE=") && !w.starts_with("initrd=") && !w.starts_with("live.kexec="))
        .collect();
    let has_panic = words.iter().any(|w| w.starts_with("panic="));
    let tail = format!("live.kexec={version}");
    words.push(&tail);
    let mut line = words.join(" ");
    if !has_panic {
        line.push_str(" panic=10");
    }
    line
}

/// Copy `kernel` and `initrd` into RAM, hashing them; load them if they are what `want` lists,
/// then start them. Returns only on failure: `STEP: object: reason`.
pub fn start(kernel: &std::path::Path, initrd: &std::path::Path, want: &BootDigests, line: &str) -> Result<std::convert::Infallible, String> {
    let _ = std::fs::create_dir_all(STAGE);
    let mut staged = Vec::new();
    for (from, digest, name) in [(kernel, &want.kernel, "vmlinuz"), (initrd, &want.initrd, "initrd.img")] {
        let to = std::path::Path::new(STAGE).join(name);
        // Checked as copied: what is loaded is the very bytes hashed, whatever the medium does later.
        let got = crate::ramcopy::copy_hashed(from, &to).map_err(|e| format!("kexec: {e}"))?;
        if &got.sha256 != digest {
            let _ = std::fs::remove_file(&to);
            return Err(format!("kexec: {}: checksum mismatch with the signed manifest, not started", from.display()));
        }
        staged.push(to);
    }
    let open = |p: &std::path::PathBuf| std::fs::File::open(p).map_err(|e| format!("kexec: {}: {}", p.display(), crate::error::io_reason(&e)));
    let (k, i) = match staged.as_slice() {
        [k, i] => (open(k)?, open(i)?),
        _ => return Err("kexec: staging failed".into()),
    };
    crate::sys::kexec::load(&k, &i, line).map_err(|e| format!("kexec: {}: the kernel refused to load it ({e})", kernel.display()))?;
    drop((k, i));
    for p in &staged {
        let _ = std::fs::remove_file(p);
    }
    nix::unistd::sync();
    Err(format!("kexec: {}: {}", kernel.display(), crate::sys::kexec::exec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_release_with_its_own_kernel_is_kexeced_and_never_twice() {
        assert_eq!(decide(false, Some(2), Some(1), false), Decision::Stay("the image brings no kernel of its own"));
        assert_eq!(decide(true, Some(2), Some(2), false), Decision::Stay("the running kernel and initramfs are the image's own"));
        assert_eq!(decide(true, Some(2), Some(1), false), Decision::Kexec);
        assert_eq!(decide(true, Some(1), Some(2), false), Decision::Kexec, "a fallback to an older release runs its kernel too");
        assert_eq!(decide(true, Some(2), None, false), Decision::Kexec, "the project's own initramfs belongs to no release");
        assert_eq!(decide(true, Some(2), Some(1), true), Decision::StayAfterKexec);
        assert_eq!(decide(true, None, None, false), Decision::Kexec, "unsigned: no version to compare");
    }

    #[test]
    fn a_fetched_release_boots_here_only_with_this_kernels_modules() {
        assert!(fetched_runs_here(false, Some(2), Some(1), false, "k").is_ok());
        assert!(fetched_runs_here(true, Some(2), Some(2), false, "k").is_ok());
        assert!(fetched_runs_here(true, Some(2), Some(1), true, "k").is_ok());
        let e = fetched_runs_here(true, Some(2), Some(1), false, "6.1.0-50-amd64").unwrap_err();
        assert!(e.contains("version 2 brings its own kernel") && e.contains("6.1.0-50-amd64"), "{e}");
    }

    #[test]
    fn a_kexeced_boot_runs_another_release_only_with_this_kernels_modules() {
        let never = || -> bool { panic!("the modules were looked at without need") };
        assert!(kexeced_runs_here(None, Some(1), "k", never).is_ok(), "not a kexec'd boot");
        assert!(kexeced_runs_here(Some(2), Some(2), "k", never).is_ok(), "the release it was started for");
        assert!(kexeced_runs_here(Some(2), Some(1), "k", || true).is_ok());
        let e = kexeced_runs_here(Some(2), Some(1), "6.1.0-57-amd64", || false).unwrap_err();
        assert!(e.contains("started for version 2") && e.contains("chose version 1") && e.contains("rebooting"), "{e}");
        assert!(kexeced_runs_here(Some(2), None, "k", || false).unwrap_err().contains("an unsigned image"));
    }

    #[test]
    fn the_kexec_command_line_keeps_the_users_words_and_marks_the_version() {
        let l = cmdline("BOOT_IMAGE=/boot/vmlinuz root=live:LABEL=LIVE console=ttyS0 quiet initrd=\\boot\\initrd.img", 7);
        assert_eq!(l, "root=live:LABEL=LIVE console=ttyS0 quiet live.kexec=7 panic=10");
        assert_eq!(cmdline("root=live:LABEL=LIVE panic=-1 live.kexec=3", 4), "root=live:LABEL=LIVE panic=-1 live.kexec=4");
    }
}
