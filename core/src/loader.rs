//! The stick's loader entries follow the release marked good: `liveinit mark-good` makes the
//! running release's own kernel and initramfs the ones syslinux and systemd-boot start, so that
//! a good release boots without a kexec from then on (core/src/boot/kexec.rs).
//!
//! Power-cut safety, step by step: (1) the release's files are written under names of their
//! own (`/boot/vmlinuz-N`, `/boot/initrd-N.img`; never over a file an entry names, see
//! [`name_for`]), each through a temporary name, fsynced, then renamed to a free name; (2) `boot/syslinux/syslinux.cfg`, then `loader/entries/liveroot.conf`, are each
//! rewritten whole under a temporary name, fsynced and renamed over the old one; (3) the files
//! neither entry
//! names any more are deleted. At every point each entry names a complete kernel and the
//! initramfs that belongs to it: the old pair until its rename, the new one after it. The
//! files are checked against the pair's signed manifest while they are copied.
//!
//! The rename over an existing name (syncflash never makes one: not atomic on FAT) is made only
//! for the two entry files, each smaller than a cluster and fsynced first under its temporary
//! name: vfat points the existing directory entry at the new file's cluster in one sector write.
//! The old file is held open across the rename and its durable sync, so that its cluster is
//! freed only after that (a flush later): cut before the entry's write, the entry still names
//! its old cluster, still allocated; cut after, it names the new file. Never a mix of two
//! releases: each entry names one release's kernel and initramfs together. Each sync is syncfs
//! and then the directory's fsync (flashsync::RealIo::sync_dir: on FAT a renamed file's entry
//! gets its first cluster and size only when the file's inode is written back, which the
//! directory's fsync alone does not do; with it alone the replay found, once mark-good had
//! returned, `/boot/vmlinuz-N` at cluster 0 and size 0 and both entries naming deleted files).
//! tests/qemu/scenarios/syncflash-flushpoints.sh replays every flush point of a mark-good that
//! makes v2 the loader's and checks this.
//!
//! Every change goes through [`flashsync::Io`](crate::flashsync::Io), as syncflash's do, so
//! that the model check (src/model.rs) fails or cuts each one in turn and checks the entries
//! after it.

use crate::error::{Context, Result};
use crate::flashsync::{Io, RealIo};
use crate::pairs::{self, BootDigests, Pair, SUFFIXES};
use minisign_verify::PublicKey;
use std::path::{Path, PathBuf};

pub const SYSLINUX_CFG: &str = "boot/syslinux/syslinux.cfg";
pub const SDBOOT_ENTRY: &str = "loader/entries/liveroot.conf";

/// The kernel and initramfs an entry file names (absolute on the medium: `/boot/vmlinuz`),
/// with the keywords of syslinux (`KERNEL`, `LINUX`, `INITRD`, any case) or systemd-boot
/// (`linux`, `initrd`).
pub fn named(cfg: &str) -> (Option<String>, Option<String>) {
    let (mut k, mut i) = (None, None);
    for line in cfg.lines() {
        let mut w = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (w.next(), w.next()) else { continue };
        match key.to_ascii_lowercase().as_str() {
            "kernel" | "linux" if k.is_none() => k = Some(val.to_owned()),
            "initrd" if i.is_none() => i = Some(val.to_owned()),
            _ => {}
        }
    }
    (k, i)
}

/// The EFI program a systemd-boot entry starts (`efi /EFI/Linux/liveroot.efi`: a signed unified
/// kernel image under Secure Boot), when it names one.
pub fn named_efi(cfg: &str) -> Option<String> {
    cfg.lines().find_map(|line| {
        let mut w = line.split_ascii_whitespace();
        match (w.next(), w.next()) {
            (Some(k), Some(v)) if k.eq_ignore_ascii_case("efi") => Some(v.to_owned()),
            _ => None,
        }
    })
}

/// `cfg` with its kernel and initramfs lines naming `kernel` and `initrd`, and its `efi` line
/// naming `efi` when given, every other byte as it was (the command line, the serial port,
/// comments).
pub fn renamed(cfg: &str, kernel: &str, initrd: &str, efi: Option<&str>) -> String {
    let mut out = String::with_capacity(cfg.len() + 32);
    for line in cfg.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        // ASCII whitespace only, as `named` splits words: a line it does not read as a kernel
        // line (indented with a vertical tab, say) is not rewritten as one either.
        let rest = body.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let (indent, rest) = body.split_at(body.len() - rest.len());
        let key = rest.split_ascii_whitespace().next().unwrap_or("");
        let with = match key.to_ascii_lowercase().as_str() {
            "kernel" | "linux" => Some(kernel),
            "initrd" => Some(initrd),
            "efi" => efi,
            _ => None,
        };
        match with {
            Some(p) => out.push_str(&format!("{indent}{key} {p}{ending}")),
            None => out.push_str(line),
        }
    }
    out
}

fn sha256_of(p: &Path) -> Option<[u8; 32]> {
    pairs::file_sha256(p, None).ok()
}

/// A path an entry names, on the medium mounted at `root` (never outside it).
fn on(root: &Path, named: &str) -> Option<PathBuf> {
    let rel = named.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    Some(root.join(rel))
}

/// The temporary name `p` is written under first.
fn tmp_of(p: &Path) -> PathBuf {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    p.with_file_name(format!(".{name}.tmp"))
}

/// A temporary name left by a run the power cut: written anew, never appended to.
fn clear(io: &mut dyn Io, p: &Path) -> Result<()> {
    if p.exists() {
        io.remove(p)?;
    }
    Ok(())
}

/// Copy `from` to `to` through `to`'s temporary name, checking its digest as it goes; fsync.
/// `to` is a free name (see [`name_for`]) or one that no entry names, removed first: a
/// multi-cluster file is never renamed over (not atomic on FAT).
fn put_checked(io: &mut dyn Io, from: &Path, to: &Path, want: &[u8; 32]) -> Result<()> {
    let dir = to.parent().unwrap_or(Path::new("/"));
    let tmp = tmp_of(to);
    clear(io, &tmp)?;
    if let Err(e) = io.copy(from, &tmp, false, false, Some(want)) {
        if tmp.exists() {
            let _ = io.remove(&tmp);
        }
        return Err(e);
    }
    if to.exists() {
        io.remove(to)?;
        io.sync_dir(dir)?;
    }
    io.rename(&tmp, to)?;
    io.sync_dir(dir)
}

/// An entry file rewritten whole: under its temporary name, fsynced, renamed over the old one.
fn put_small(io: &mut dyn Io, path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = tmp_of(path);
    clear(io, &tmp)?;
    io.write_small(&tmp, data)?;
    // The file replaced is held open across the rename: vfat frees an unlinked file's clusters
    // only when its last user closes it, so its cluster is freed only once the entry names the
    // new one on the card. Closed at once, the free landed in the same flush as the entry's
    // update, and a card writing back out of order could keep the free without the update: the
    // entry naming a cluster the FAT says is free, which the next file written may take
    // (found by the replay's reordered states). Reading is no change to the medium: not an Io.
    let replaced = std::fs::File::open(path).ok();
    io.replace(&tmp, path)?;
    io.sync_dir(dir)?;
    drop(replaced);
    io.sync_dir(dir)
}

/// Where the release's boot file `base` (`vmlinuz-N`) goes: its own name, unless an entry names
/// it and it holds other bytes (two releases with one version: unsigned ones are all version 0),
/// then a name with the digest in it. Replacing a file an entry names would make that entry
/// name one release's kernel and another's initramfs until the entry is rewritten.
fn name_for(root: &Path, dir: &str, base: &str, ext: &str, want: &[u8; 32], named: &[String]) -> String {
    let own = format!("{dir}/{base}{ext}");
    let held = on(root, &own).and_then(|p| sha256_of(&p));
    if held.is_none() || held.as_ref() == Some(want) || !named.contains(&own) {
        return own;
    }
    let hex = crate::digest::hex(want);
    format!("{dir}/{base}-{}{ext}", hex.get(..16).unwrap_or(&hex))
}

/// The pair in `dir` (image `name`) whose image is `sha256`, when it lists boot files.
fn running_pair(dir: &Path, name: &str, sha256: &[u8; 32], key: Option<&PublicKey>) -> Option<(Pair, BootDigests, u64)> {
    SUFFIXES.iter().find_map(|s| {
        let p = Pair::new(dir, name, s);
        let t = pairs::check_manifest(&p, key).ok()?;
        (t.sha256 == *sha256).then_some(())?;
        Some((p, t.boot?, t.version.unwrap_or(0)))
    })
}

/// Make the release running from pair `image` (`LiveOS/squashfs.img`, relative to the medium
/// mounted at `root`) the loader's, every change through `io`. What it did, in one line; None,
/// with nothing written (and the medium not remounted), when there is nothing to switch. The
/// medium is made writable (`io.remount`) just before the first write, and read-only again.
pub fn adopt(root: &Path, image: &str, sha256: &[u8; 32], key: Option<&PublicKey>, io: &mut dyn Io) -> Result<Option<String>> {
    let img = root.join(image.trim_start_matches('/'));
    let dir = img.parent().unwrap_or(root).to_path_buf();
    let name = img.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some((pair, boot, version)) = running_pair(&dir, &name, sha256, key) else {
        return Ok(None);
    };
    let entries: Vec<(PathBuf, String)> = [SYSLINUX_CFG, SDBOOT_ENTRY]
        .iter()
        .map(|e| root.join(e))
        .filter(|p| p.is_file())
        .map(|p| std::fs::read_to_string(&p).map(|t| (p.clone(), t)).ctx(p.display()))
        .collect::<Result<_>>()?;
    if entries.is_empty() {
        return Ok(None);
    }
    let digest = |n: Option<String>| n.and_then(|n| on(root, &n)).and_then(|p| sha256_of(&p));
    // An entry that starts a signed unified image (Secure Boot) follows a release that has one;
    // a release without one cannot be started by that firmware at all, and the entry stays.
    let current = |cfg: &str| -> bool {
        if let Some(e) = named_efi(cfg) {
            return boot.uki.is_none() || digest(Some(e)) == boot.uki;
        }
        let (k, i) = named(cfg);
        digest(k) == Some(boot.kernel) && digest(i) == Some(boot.initrd)
    };
    if entries.iter().all(|(_, t)| current(t)) {
        return Ok(None);
    }
    let old: Vec<String> = entries.iter().flat_map(|(_, t)| {
        let (k, i) = named(t);
        [k, i, named_efi(t)].into_iter().flatten()
    }).collect();
    let kname = name_for(root, "/boot", &format!("vmlinuz-{version}"), "", &boot.kernel, &old);
    let iname = name_for(root, "/boot", &format!("initrd-{version}"), ".img", &boot.initrd, &old);
    // The release's unified image goes beside the one the entry starts now.
    let uname = match (boot.uki, entries.iter().find_map(|(_, t)| named_efi(t))) {
        (Some(u), Some(e)) => {
            let dir = e.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty()).unwrap_or("/EFI/Linux");
            Some(name_for(root, dir, &format!("liveroot-{version}"), ".efi", &u, &old))
        }
        _ => None,
    };
    let names = Names { kernel: &kname, initrd: &iname, uki: uname.as_deref() };
    let remounted = io.remount(false)?;
    let r = switch(root, &pair.paths(), &boot, &entries, &names, &old, io);
    if remounted {
        let _ = io.remount(true);
    }
    r?;
    let also = uname.map(|u| format!(", {u}")).unwrap_or_default();
    Ok(Some(format!("loader: version {version}'s kernel and initramfs are the loader's now ({kname}, {iname}{also})")))
}

/// Where [`switch`] puts the release's boot files on the medium.
struct Names<'a> {
    kernel: &'a str,
    initrd: &'a str,
    /// The signed unified image, when the release has one and an entry starts one.
    uki: Option<&'a str>,
}

/// [`adopt`]'s writes, in the order its module comment argues for.
fn switch(root: &Path, from: &pairs::Files, boot: &BootDigests, entries: &[(PathBuf, String)], names: &Names, old: &[String], io: &mut dyn Io) -> Result<()> {
    let bootdir = root.join("boot");
    if !bootdir.is_dir() {
        io.create_dir(&bootdir)?;
    }
    let mut files = vec![(&from.kernel, names.kernel, boot.kernel), (&from.initrd, names.initrd, boot.initrd)];
    if let (Some(u), Some(want)) = (names.uki, boot.uki) {
        files.push((&from.uki, u, want));
    }
    let mut dirs = vec![bootdir.clone()];
    for (src, to, want) in files {
        let dest = root.join(to.trim_start_matches('/'));
        if let Some(d) = dest.parent() {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
        if sha256_of(&dest).as_ref() != Some(&want) {
            put_checked(io, src, &dest, &want)?;
        }
    }
    for (p, text) in entries {
        let new = renamed(text, names.kernel, names.initrd, names.uki);
        if new != *text {
            put_small(io, p, new.as_bytes())?;
        }
    }
    // Only now, with no entry naming them: the files the entries started before (only in the
    // directories the release's files went to: never a file elsewhere an entry happened to name).
    let mut changed = Vec::new();
    for o in old {
        if o != names.kernel && o != names.initrd && Some(o.as_str()) != names.uki {
            if let Some(p) = on(root, o) {
                if let Some(d) = dirs.iter().find(|d| p.parent() == Some(d.as_path())) {
                    if p.is_file() {
                        let _ = io.remove(&p);
                        changed.push(d.clone());
                    }
                }
            }
        }
    }
    for d in dirs.iter().filter(|d| **d == bootdir || changed.contains(d)) {
        io.sync_dir(d)?;
    }
    Ok(())
}

/// mark-good's last step: the running image, once its trial record says it is good, becomes the
/// loader's ([`adopt`]) on the medium the state names, remounted read-write for it and back.
pub fn adopt_running(st: &crate::state::LiveState, state_file: &str) -> Result<Option<String>> {
    // Only a release that brings its own kernel and runs on it can become the loader's.
    if st.kernel.as_deref() != Some("own") {
        return Ok(None);
    }
    let Some(img) = crate::trial::Ident::parse(&st.image_sha256, &st.image_version)? else {
        return Ok(None);
    };
    // The record's mount (a medium the boot released is mounted privately for it) is undone
    // before the medium is mounted again below: the same file system twice on one mount point
    // is EBUSY.
    let good = {
        let Ok(loc) = crate::trial::locate(None, state_file) else {
            return Ok(None);
        };
        crate::trial::read(&loc.path)?
            .and_then(|c| c.record)
            .is_some_and(|r| r.image == img && r.status == crate::trial::Status::Good)
    };
    if !good {
        return Ok(None);
    }
    let key = match st.pubkey.as_str() {
        "" => None,
        k => Some(crate::manifest::pubkey_from_file(Path::new(k))?),
    };
    let medium = st.on_medium(Path::new(""), state_file)?;
    let mut io = RealIo { root: medium.path.clone(), step: |_| {} };
    let r = adopt(&medium.path, st.image(), &img.sha256, key.as_ref(), &mut io);
    drop(medium);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: &str = "# Written by liveroot.\nSERIAL 0 115200\nPROMPT 0\nTIMEOUT 10\nDEFAULT liveroot\nLABEL liveroot\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND root=live:LABEL=LIVE quiet\n";
    const SDB: &str = "# Written by liveroot.\ntitle liveroot\nlinux /boot/vmlinuz\ninitrd /boot/initrd.img\noptions root=live:LABEL=LIVE quiet\n";

    #[test]
    fn entries_name_their_files_and_are_renamed_in_place() {
        assert_eq!(named(SYS), (Some("/boot/vmlinuz".into()), Some("/boot/initrd.img".into())));
        assert_eq!(named(SDB), (Some("/boot/vmlinuz".into()), Some("/boot/initrd.img".into())));
        let s = renamed(SYS, "/boot/vmlinuz-2", "/boot/initrd-2.img", None);
        assert_eq!(s, SYS.replace("/boot/vmlinuz\n", "/boot/vmlinuz-2\n").replace("/boot/initrd.img\n", "/boot/initrd-2.img\n"));
        let d = renamed(&SDB.replace('\n', "\r\n"), "/boot/vmlinuz-2", "/boot/initrd-2.img", None);
        assert!(d.contains("linux /boot/vmlinuz-2\r\ninitrd /boot/initrd-2.img\r\noptions root=live:LABEL=LIVE quiet\r\n"), "{d}");
        assert_eq!(on(Path::new("/m"), "/../etc/passwd"), None);
    }

    /// The real writes, counting the remounts and the writes before the first one; with `cut`,
    /// the power goes at that write (it and every one after fail).
    struct Counting {
        real: RealIo,
        remounts: usize,
        early: usize,
        refuse: bool,
        n: usize,
        cut: Option<usize>,
    }

    impl Counting {
        fn new(root: &Path, refuse: bool) -> Counting {
            Counting { real: RealIo { root: root.to_path_buf(), step: |_| {} }, remounts: 0, early: 0, refuse, n: 0, cut: None }
        }
        fn wrote(&mut self) -> Result<()> {
            if self.remounts == 0 {
                self.early += 1;
            }
            self.n += 1;
            match self.cut {
                Some(c) if self.n > c => Err(crate::error::Error::new("test", "power cut")),
                _ => Ok(()),
            }
        }
    }

    impl Io for Counting {
        fn remove(&mut self, p: &Path) -> Result<()> {
            self.wrote()?;
            self.real.remove(p)
        }
        fn rename(&mut self, from: &Path, to: &Path) -> Result<()> {
            self.wrote()?;
            self.real.rename(from, to)
        }
        fn replace(&mut self, from: &Path, to: &Path) -> Result<()> {
            self.wrote()?;
            self.real.replace(from, to)
        }
        fn create_dir(&mut self, p: &Path) -> Result<()> {
            self.wrote()?;
            self.real.create_dir(p)
        }
        fn copy(&mut self, from: &Path, to: &Path, progress: bool, hook: bool, want: Option<&[u8; 32]>) -> Result<()> {
            self.wrote()?;
            self.real.copy(from, to, progress, hook, want)
        }
        fn write_small(&mut self, p: &Path, data: &[u8]) -> Result<()> {
            self.wrote()?;
            self.real.write_small(p, data)
        }
        fn sync_dir(&mut self, dir: &Path) -> Result<()> {
            self.wrote()?;
            self.real.sync_dir(dir)
        }
        fn trial_create(&mut self, file: &Path, r: &crate::trial::Record) -> Result<()> {
            self.wrote()?;
            self.real.trial_create(file, r)
        }
        fn trial_update(&mut self, file: &Path, decide: &dyn Fn(Option<&crate::trial::Record>) -> Option<crate::trial::Record>) -> Result<Option<crate::trial::Record>> {
            self.wrote()?;
            self.real.trial_update(file, decide)
        }
        fn remount(&mut self, ro: bool) -> Result<bool> {
            if self.refuse {
                return Err(crate::error::Error::new("medium", "must not be made writable"));
            }
            if !ro {
                self.remounts += 1;
            }
            Ok(true)
        }
    }

    fn sha(b: &[u8]) -> [u8; 32] {
        let mut h = crate::digest::Hasher::new(false);
        h.update(b);
        h.finish().sha256
    }

    /// A Secure Boot stick: syslinux boots the plain files, systemd-boot's entry the signed
    /// unified image; a release that has one becomes both entries', power cut or not.
    #[test]
    fn a_signed_release_s_unified_image_becomes_the_efi_entry_s() {
        const UKI_ENTRY: &str = "# Written by liveroot.\ntitle liveroot\nefi /EFI/Linux/liveroot.efi\n";
        let (img, k, i, u) = (b"image two".as_slice(), b"kernel two".as_slice(), b"initrd two".as_slice(), b"uki two".as_slice());
        let setup = |tag: &str, with_uki: bool| -> PathBuf {
            let root = std::env::temp_dir().join(format!("liveroot-loader-uki-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for d in ["boot/syslinux", "loader/entries", "LiveOS", "EFI/Linux"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            std::fs::write(root.join(SYSLINUX_CFG), SYS).unwrap();
            std::fs::write(root.join(SDBOOT_ENTRY), UKI_ENTRY).unwrap();
            std::fs::write(root.join("boot/vmlinuz"), b"kernel one").unwrap();
            std::fs::write(root.join("boot/initrd.img"), b"initrd one").unwrap();
            std::fs::write(root.join("EFI/Linux/liveroot.efi"), b"uki one").unwrap();
            std::fs::write(root.join("EFI/Linux/liveroot-recovery.efi"), b"recovery").unwrap();
            std::fs::write(root.join("LiveOS/squashfs.img"), img).unwrap();
            std::fs::write(root.join("LiveOS/vmlinuz"), k).unwrap();
            std::fs::write(root.join("LiveOS/initrd.img"), i).unwrap();
            let mut sums = format!("{}  squashfs.img\n{}  vmlinuz\n{}  initrd.img\n", crate::digest::hex(&sha(img)), crate::digest::hex(&sha(k)), crate::digest::hex(&sha(i)));
            if with_uki {
                std::fs::write(root.join("LiveOS/liveroot.efi"), u).unwrap();
                sums.push_str(&format!("{}  liveroot.efi\n", crate::digest::hex(&sha(u))));
            }
            std::fs::write(root.join("LiveOS/SHA256SUMS"), sums).unwrap();
            root
        };
        let root = setup("signed", true);
        let mut io = Counting::new(&root, false);
        let msg = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut io).unwrap().unwrap_or_default();
        assert!(msg.contains("/EFI/Linux/liveroot-0.efi"), "{msg}");
        assert_eq!(std::fs::read(root.join("EFI/Linux/liveroot-0.efi")).unwrap(), u);
        let e = std::fs::read_to_string(root.join(SDBOOT_ENTRY)).unwrap();
        assert_eq!(e, UKI_ENTRY.replace("liveroot.efi", "liveroot-0.efi"), "only the efi line changes");
        assert_eq!(named(&std::fs::read_to_string(root.join(SYSLINUX_CFG)).unwrap()), (Some("/boot/vmlinuz-0".into()), Some("/boot/initrd-0.img".into())));
        assert!(!root.join("EFI/Linux/liveroot.efi").exists(), "the image no entry starts any more goes");
        assert!(root.join("EFI/Linux/liveroot-recovery.efi").exists(), "a file no entry it read named stays");
        assert_eq!(adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut Counting::new(&root, true)).unwrap(), None, "then nothing to do");

        // Cut at every write: the efi entry starts the old image or the new one, whole.
        for cut in 0.. {
            let root = setup(&format!("cut{cut}"), true);
            let mut io = Counting::new(&root, false);
            io.cut = Some(cut);
            let done = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut io).is_ok();
            let t = std::fs::read_to_string(root.join(SDBOOT_ENTRY)).unwrap();
            let started = named_efi(&t).and_then(|n| std::fs::read(root.join(n.trim_start_matches('/'))).ok());
            assert!(started.as_deref() == Some(b"uki one".as_slice()) || started.as_deref() == Some(u), "cut {cut}: the entry starts {started:?}");
            let _ = std::fs::remove_dir_all(&root);
            if done {
                break;
            }
        }

        // A release with no unified image: syslinux follows it, the efi entry stays as it is.
        let root = setup("unsigned", false);
        let msg = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut Counting::new(&root, false)).unwrap().unwrap_or_default();
        assert!(!msg.contains(".efi"), "{msg}");
        assert_eq!(std::fs::read_to_string(root.join(SDBOOT_ENTRY)).unwrap(), UKI_ENTRY);
        assert_eq!(std::fs::read(root.join("EFI/Linux/liveroot.efi")).unwrap(), b"uki one");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_good_release_becomes_the_loaders_once_and_old_files_go() {
        let root = std::env::temp_dir().join(format!("liveroot-loader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["boot/syslinux", "loader/entries", "LiveOS"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join(SYSLINUX_CFG), SYS).unwrap();
        std::fs::write(root.join(SDBOOT_ENTRY), SDB).unwrap();
        std::fs::write(root.join("boot/vmlinuz"), b"kernel one").unwrap();
        std::fs::write(root.join("boot/initrd.img"), b"initrd one").unwrap();
        let (img, k, i) = (b"image two".as_slice(), b"kernel two".as_slice(), b"initrd two".as_slice());
        std::fs::write(root.join("LiveOS/squashfs.img"), img).unwrap();
        std::fs::write(root.join("LiveOS/vmlinuz"), k).unwrap();
        std::fs::write(root.join("LiveOS/initrd.img"), i).unwrap();
        let sums = format!(
            "{}  squashfs.img\n{}  vmlinuz\n{}  initrd.img\n",
            crate::digest::hex(&sha(img)),
            crate::digest::hex(&sha(k)),
            crate::digest::hex(&sha(i))
        );
        std::fs::write(root.join("LiveOS/SHA256SUMS"), sums).unwrap();
        let mut io = Counting::new(&root, false);
        let msg = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut io).unwrap().unwrap_or_default();
        assert!(msg.contains("the loader's now"), "{msg}");
        assert_eq!((io.remounts, io.early), (1, 0), "made writable once, before writing");
        assert_eq!(std::fs::read(root.join("boot/vmlinuz-0")).unwrap(), k);
        assert_eq!(std::fs::read(root.join("boot/initrd-0.img")).unwrap(), i);
        assert!(!root.join("boot/vmlinuz").exists() && !root.join("boot/initrd.img").exists(), "the old files go");
        for e in [SYSLINUX_CFG, SDBOOT_ENTRY] {
            let t = std::fs::read_to_string(root.join(e)).unwrap();
            assert_eq!(named(&t), (Some("/boot/vmlinuz-0".into()), Some("/boot/initrd-0.img".into())));
            assert!(t.contains("root=live:LABEL=LIVE quiet"));
        }
        let again = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut Counting::new(&root, true)).unwrap();
        assert_eq!(again, None, "nothing to switch, nothing made writable");
        // A pair whose kernel does not match its manifest changes nothing.
        std::fs::write(root.join("LiveOS/vmlinuz"), b"kernel evil").unwrap();
        std::fs::write(root.join(SYSLINUX_CFG), SYS).unwrap();
        std::fs::remove_file(root.join("boot/vmlinuz-0")).unwrap();
        assert!(adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut Counting::new(&root, false)).is_err());
        assert_eq!(std::fs::read_to_string(root.join(SYSLINUX_CFG)).unwrap(), SYS);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A medium whose loader runs release "one" (version 0, unsigned, files `vmlinuz-0` and
    /// `initrd-0.img`), and a pair of release "two" with that version too.
    fn two_releases_of_one_version(root: &Path) {
        let _ = std::fs::remove_dir_all(root);
        for d in ["boot/syslinux", "loader/entries", "LiveOS"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let one = (SYS.replace("/boot/vmlinuz\n", "/boot/vmlinuz-0\n").replace("/boot/initrd.img\n", "/boot/initrd-0.img\n"), SDB.replace("/boot/vmlinuz\n", "/boot/vmlinuz-0\n").replace("/boot/initrd.img\n", "/boot/initrd-0.img\n"));
        std::fs::write(root.join(SYSLINUX_CFG), one.0).unwrap();
        std::fs::write(root.join(SDBOOT_ENTRY), one.1).unwrap();
        std::fs::write(root.join("boot/vmlinuz-0"), b"kernel one").unwrap();
        std::fs::write(root.join("boot/initrd-0.img"), b"initrd one").unwrap();
        for (n, b) in [("squashfs.img", &b"image two"[..]), ("vmlinuz", b"kernel two"), ("initrd.img", b"initrd two")] {
            std::fs::write(root.join("LiveOS").join(n), b).unwrap();
        }
        let sums = format!(
            "{}  squashfs.img\n{}  vmlinuz\n{}  initrd.img\n",
            crate::digest::hex(&sha(b"image two")),
            crate::digest::hex(&sha(b"kernel two")),
            crate::digest::hex(&sha(b"initrd two"))
        );
        std::fs::write(root.join("LiveOS/SHA256SUMS"), sums).unwrap();
    }

    #[test]
    fn a_power_cut_never_leaves_an_entry_naming_two_releases_files() {
        // Before, `vmlinuz-0` was rewritten in place under the entries: a cut between it and
        // `initrd-0.img` left them naming release two's kernel and release one's initramfs.
        let root = std::env::temp_dir().join(format!("liveroot-loader-cut-{}", std::process::id()));
        let release = |k: &[u8], i: &[u8]| matches!((k, i), (b"kernel one", b"initrd one") | (b"kernel two", b"initrd two"));
        let mut whole = None;
        for cut in 0.. {
            two_releases_of_one_version(&root);
            let mut io = Counting::new(&root, false);
            io.cut = Some(cut);
            let r = adopt(&root, "LiveOS/squashfs.img", &sha(b"image two"), None, &mut io);
            for e in [SYSLINUX_CFG, SDBOOT_ENTRY] {
                let (k, i) = named(&std::fs::read_to_string(root.join(e)).unwrap());
                let read = |n: Option<String>| std::fs::read(root.join(n.unwrap_or_default().trim_start_matches('/'))).unwrap_or_default();
                assert!(release(&read(k.clone()), &read(i.clone())), "cut at write {cut}: {e} names {k:?} and {i:?}, not one release's");
            }
            if r.is_ok() {
                whole = Some(cut);
                break;
            }
        }
        assert!(whole.is_some_and(|n| n > 4), "{whole:?}");
        let t = std::fs::read_to_string(root.join(SYSLINUX_CFG)).unwrap();
        let (k, _) = named(&t);
        assert!(k.is_some_and(|k| k.starts_with("/boot/vmlinuz-0-")), "{t}");
        assert!(!root.join("boot/vmlinuz-0").exists(), "release one's files go once no entry names them");
        let _ = std::fs::remove_dir_all(&root);
    }
}
