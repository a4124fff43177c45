//! The stick's loader entries follow the release marked good: `liveinit mark-good` makes the
//! running release's own kernel and initramfs the ones syslinux and systemd-boot start, so that
//! a good release boots without a kexec from then on (core/src/boot/kexec.rs).
//!
//! Power-cut safety, step by step: (1) the release's files are written under names of their
//! own (`/boot/vmlinuz-N`, `/boot/initrd-N.img`), each through a temporary name, fsynced, then
//! renamed; (2) `boot/syslinux/syslinux.cfg`, then `loader/entries/liveroot.conf`, are each
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
//! and then the directory's fsync (see [`sync_dir`]). tests/qemu/scenarios/syncflash-flushpoints.sh
//! replays every flush point of a mark-good that makes v2 the loader's and checks this.

use crate::digest::Hasher;
use crate::error::{Context, Error, Result};
use crate::pairs::{self, BootDigests, Pair, SUFFIXES};
use minisign_verify::PublicKey;
use std::io::{Read, Write};
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

/// `cfg` with its kernel and initramfs lines naming `kernel` and `initrd`, every other byte
/// as it was (the command line, the serial port, comments).
pub fn renamed(cfg: &str, kernel: &str, initrd: &str) -> String {
    let mut out = String::with_capacity(cfg.len() + 32);
    for line in cfg.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent_len = body.len() - body.trim_start().len();
        let (indent, rest) = body.split_at(indent_len);
        let key = rest.split_ascii_whitespace().next().unwrap_or("");
        let with = match key.to_ascii_lowercase().as_str() {
            "kernel" | "linux" => Some(kernel),
            "initrd" => Some(initrd),
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
    let mut f = std::fs::File::open(p).ok()?;
    let mut h = Hasher::new(false);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        let chunk = buf.get(..n)?;
        if chunk.is_empty() {
            break;
        }
        h.update(chunk);
    }
    Some(h.finish().sha256)
}

/// A path an entry names, on the medium mounted at `root` (never outside it).
fn on(root: &Path, named: &str) -> Option<PathBuf> {
    let rel = named.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    Some(root.join(rel))
}

/// Copy `from` to `to` through `to`'s temporary name, checking its digest as it goes; fsync.
fn put_checked(from: &Path, to: &Path, want: &[u8; 32]) -> Result<()> {
    let dir = to.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(".{}.tmp", to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    let mut src = std::fs::File::open(from).ctx(from.display())?;
    let mut dst = std::fs::File::create(&tmp).ctx(tmp.display())?;
    let mut h = Hasher::new(false);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).ctx(from.display())?;
        let Some(chunk) = buf.get(..n) else { break };
        if chunk.is_empty() {
            break;
        }
        h.update(chunk);
        dst.write_all(chunk).ctx(tmp.display())?;
    }
    if &h.finish().sha256 != want {
        drop(dst);
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::verify(from.display().to_string(), "checksum mismatch with the signed manifest; the loader keeps its files"));
    }
    dst.sync_all().ctx(tmp.display())?;
    drop(dst);
    std::fs::rename(&tmp, to).ctx(to.display())?;
    sync_dir(dir)
}

fn put_small(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    let mut f = std::fs::File::create(&tmp).ctx(tmp.display())?;
    f.write_all(data).and_then(|()| f.sync_all()).ctx(tmp.display())?;
    drop(f);
    // The file replaced is held open across the rename: vfat frees an unlinked file's clusters
    // only when its last user closes it, so its cluster is freed only once the entry names the
    // new one on the card. Closed at once, the free landed in the same flush as the entry's
    // update, and a card writing back out of order could keep the free without the update: the
    // entry naming a cluster the FAT says is free, which the next file written may take.
    let replaced = std::fs::File::open(path).ok();
    std::fs::rename(&tmp, path).ctx(path.display())?;
    sync_dir(dir)?;
    drop(replaced);
    sync_dir(dir)
}

/// Make the renames and deletions in `dir` durable: syncfs, then the directory's fsync. On FAT a
/// renamed file's directory entry gets its first cluster and size only when the file's inode is
/// written back, which the directory's fsync does not do (syncfs does, with no cache flush; the
/// fsync that follows flushes: fat_file_fsync). With the fsync alone the replay of every flush
/// point (tests/qemu/scenarios/syncflash-flushpoints.sh) found, once mark-good had returned,
/// `/boot/vmlinuz-N` and `/boot/initrd-N.img` at cluster 0 and size 0, and syslinux.cfg and the
/// systemd-boot entry still naming `/boot/vmlinuz` and `/boot/initrd.img`, already deleted: the
/// stick unbootable until a later writeback and flush (FAT's remount and umount flush nothing).
/// The same order as syncflash's (flashsync::RealIo::sync_dir).
fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).ctx(dir.display())?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)).ctx(dir.display())?;
    d.sync_all().ctx(dir.display())
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
/// mounted at `root`) the loader's. What it did, in one line; None, with nothing written (and
/// `writable` not called), when there is nothing to switch. `writable` makes the medium
/// writable, just before the first write.
pub fn adopt(root: &Path, image: &str, sha256: &[u8; 32], key: Option<&PublicKey>, writable: &mut dyn FnMut() -> Result<()>) -> Result<Option<String>> {
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
    let current = |cfg: &str| -> bool {
        let (k, i) = named(cfg);
        let d = |n: Option<String>| n.and_then(|n| on(root, &n)).and_then(|p| sha256_of(&p));
        d(k) == Some(boot.kernel) && d(i) == Some(boot.initrd)
    };
    if entries.iter().all(|(_, t)| current(t)) {
        return Ok(None);
    }
    writable()?;
    let (kname, iname) = (format!("/boot/vmlinuz-{version}"), format!("/boot/initrd-{version}.img"));
    let paths = pair.paths();
    let bootdir = root.join("boot");
    std::fs::create_dir_all(&bootdir).ctx(bootdir.display())?;
    for (from, to, want) in [(&paths.kernel, &kname, &boot.kernel), (&paths.initrd, &iname, &boot.initrd)] {
        let dest = root.join(to.trim_start_matches('/'));
        if sha256_of(&dest).as_ref() != Some(want) {
            put_checked(from, &dest, want)?;
        }
    }
    let mut old = Vec::new();
    for (p, text) in &entries {
        let (k, i) = named(text);
        old.extend([k, i].into_iter().flatten());
        let new = renamed(text, &kname, &iname);
        if new != *text {
            put_small(p, new.as_bytes())?;
        }
    }
    // Only now, with no entry naming them: the files the entries started before.
    for o in old {
        if o != kname && o != iname {
            if let Some(p) = on(root, &o) {
                if p.starts_with(&bootdir) && p.is_file() {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
    sync_dir(&bootdir)?;
    Ok(Some(format!("loader: version {version}'s kernel and initramfs are the loader's now ({kname}, {iname})")))
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
    let root = medium.path.clone();
    let mut rw = false;
    let r = adopt(&root, st.image(), &img.sha256, key.as_ref(), &mut || {
        rw = crate::flashsync::remount(&root, false)?;
        Ok(())
    });
    if rw {
        let _ = crate::flashsync::remount(&root, true);
    }
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
        let s = renamed(SYS, "/boot/vmlinuz-2", "/boot/initrd-2.img");
        assert_eq!(s, SYS.replace("/boot/vmlinuz\n", "/boot/vmlinuz-2\n").replace("/boot/initrd.img\n", "/boot/initrd-2.img\n"));
        let d = renamed(&SDB.replace('\n', "\r\n"), "/boot/vmlinuz-2", "/boot/initrd-2.img");
        assert!(d.contains("linux /boot/vmlinuz-2\r\ninitrd /boot/initrd-2.img\r\noptions root=live:LABEL=LIVE quiet\r\n"), "{d}");
        assert_eq!(on(Path::new("/m"), "/../etc/passwd"), None);
    }

    fn sha(b: &[u8]) -> [u8; 32] {
        let mut h = Hasher::new(false);
        h.update(b);
        h.finish().sha256
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
        let mut asked = 0;
        let msg = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut || {
            asked += 1;
            Ok(())
        })
        .unwrap()
        .unwrap_or_default();
        assert!(msg.contains("the loader's now"), "{msg}");
        assert_eq!(asked, 1, "made writable once, before writing");
        assert_eq!(std::fs::read(root.join("boot/vmlinuz-0")).unwrap(), k);
        assert_eq!(std::fs::read(root.join("boot/initrd-0.img")).unwrap(), i);
        assert!(!root.join("boot/vmlinuz").exists() && !root.join("boot/initrd.img").exists(), "the old files go");
        for e in [SYSLINUX_CFG, SDBOOT_ENTRY] {
            let t = std::fs::read_to_string(root.join(e)).unwrap();
            assert_eq!(named(&t), (Some("/boot/vmlinuz-0".into()), Some("/boot/initrd-0.img".into())));
            assert!(t.contains("root=live:LABEL=LIVE quiet"));
        }
        let again = adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut || Err(Error::new("medium", "must not be made writable"))).unwrap();
        assert_eq!(again, None, "nothing to switch, nothing made writable");
        // A pair whose kernel does not match its manifest changes nothing.
        std::fs::write(root.join("LiveOS/vmlinuz"), b"kernel evil").unwrap();
        std::fs::write(root.join(SYSLINUX_CFG), SYS).unwrap();
        std::fs::remove_file(root.join("boot/vmlinuz-0")).unwrap();
        assert!(adopt(&root, "LiveOS/squashfs.img", &sha(img), None, &mut || Ok(())).is_err());
        assert_eq!(std::fs::read_to_string(root.join(SYSLINUX_CFG)).unwrap(), SYS);
        let _ = std::fs::remove_dir_all(&root);
    }
}
