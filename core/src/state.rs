//! `/run/live/state`: what the live boot set up, as `key=value` lines, for the applets that run
//! later in the booted system (migrate, syncflash) and for people at a console.
//!
//! Keys written by the live /init (values are plain text, one line each; a key missing means
//! "not applicable"):
//!
//! | key            | example                          | meaning |
//! |----------------|----------------------------------|---------|
//! | `medium`       | `/dev/vda1`                      | block device holding the live image |
//! | `medium_type`  | `ext4`                           | its filesystem type |
//! | `medium_spec`  | `LABEL=LIVE`                     | the `root=live:` spec it was found by |
//! | `medium_mount` | `/run/live/medium`               | where it is mounted (empty after rd.live.ram) |
//! | `image`        | `LiveOS/squashfs.img`            | the squashfs, relative to the medium root |
//! | `image_file`   | `/run/live/ram/squashfs.img`     | the file actually looped (medium, RAM copy or fetched) |
//! | `image_sha256` | `9f86d0...`                      | its SHA-256 from the verified SHA256SUMS (empty if unchecked) |
//! | `verified`     | `sig`, `sha256` or `no`          | how the image was checked before mounting |
//! | `squash_loop`  | `/dev/loop0`                     | loop device of the squashfs |
//! | `squash_mount` | `/run/live/squashfs`             | where the squashfs is mounted |
//! | `rootfs_image` | `LiveOS/rootfs.img`              | the ext4 image inside the squashfs |
//! | `rootfs_loop`  | `/dev/loop1`                     | its (read-only) loop device: the snapshot origin |
//! | `overlay_dir`  | `/run/live/overlay`              | tmpfs holding the COW file |
//! | `overlay_size` | `512`                            | COW size in MiB |
//! | `dm`           | `/dev/mapper/live-rw`            | the dm snapshot |
//! | `md`           | `/dev/md7`                       | the one-legged raid1 mounted as / |
//! | `booted`       | `local`, `ram` or `net`          | the medium's image (read through dm-verity, or, with a key and no sidecars, from a RAM copy verified as it was made: `image_file` says which), a RAM copy of it with the medium released (rd.live.ram), or fetched into RAM |
//! | `image_version`| `3`                              | `version=N` of the signature the image was verified with (empty if unsigned) |
//! | `fetched_from` | `http://10.0.2.100/img/`         | server directory a `net` image came from (empty otherwise) |
//! | `medium_pair`  | `primary`, `old` or `new`        | which pair on the medium verified at boot (syncflash's `.old`/`.new`; empty if unchecked) |
//! | `floor`        | `5`                              | highest signed version among the medium's pairs that verify, never below the initramfs minimum (`MIN_VERSION`): a fetched image had to be above it; when one booted, its version |
//! | `min_version`  | `6`                              | the minimum version built into the initramfs (`MIN_VERSION`, `/etc/liveroot/min-version`; 0: none): no pair below it boots |
//! | `pubkey`       | `/run/live/pubkey`               | the initramfs's public key, copied for the running system (empty: no key, checksums only) |
//! | `verity`       | `4f8b...`                        | dm-verity root hash the squashfs is mapped with (`/dev/mapper/live-base`; empty: not mapped) |
//! | `verity_dev`   | `/dev/mapper/live-base`          | the dm-verity device the squashfs is mounted from (migrate removes it with the live stack; empty: a loop) |
//! | `trial`        | `2`                              | the image is on trial (src/trial.rs): tries left after this boot (0: the last); absent when not on trial |
//! | `fallback_reason` | `version 2 failed its trial: 3 boots without mark-good` | why the previous pair booted instead of the primary; absent otherwise |
//! | `migrated`     | `/dev/sdb`                       | set by migrate once the system runs on that disk alone (before the grow) |
//!
//! Writers replace the file atomically (write a temporary file, rename), so readers never see a
//! half-written state.

use crate::error::{Context, Error, Result};
use std::path::Path;

pub const DEFAULT_PATH: &str = "/run/live/state";

/// A key is a lowercase identifier; a value is one line.
pub fn check(key: &str, value: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(Error::new(key, "invalid key (use a-z, 0-9 and _)"));
    }
    if value.contains('\n') || value.contains('\0') {
        return Err(Error::new(key, "value must be one line"));
    }
    Ok(())
}

/// All entries in file order. A missing file is an empty state.
pub fn load(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path.display().to_string(), &e)),
    };
    Ok(parse(&text))
}

/// The entries of a state file's text: `key=value` lines; blank lines, `#` comments and lines
/// without `=` are skipped.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn get(path: impl AsRef<Path>, key: &str) -> Result<Option<String>> {
    Ok(lookup_opt(&load(path)?, key).map(str::to_owned))
}

/// The value of `key` in loaded entries (the last one wins, as `set` would leave it).
pub fn lookup_opt<'a>(entries: &'a [(String, String)], key: &str) -> Option<&'a str> {
    entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Like [`lookup_opt`], with "" for a key that is not there (the state's "unset").
pub fn lookup<'a>(entries: &'a [(String, String)], key: &str) -> &'a str {
    lookup_opt(entries, key).unwrap_or("")
}

/// Set (or replace) entries, keeping the others in place; new keys go at the end.
pub fn set(path: impl AsRef<Path>, updates: &[(String, String)]) -> Result<()> {
    let p = path.as_ref();
    for (k, v) in updates {
        check(k, v)?;
    }
    let mut all = load(p)?;
    for (k, v) in updates {
        match all.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => all.push((k.clone(), v.clone())),
        }
    }
    let mut text = String::new();
    for (k, v) in &all {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('\n');
    }
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).ctx(dir.display())?;
    }
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).ctx(Path::new(&tmp).display())?;
    std::fs::rename(&tmp, p).ctx(p.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_replace() {
        let dir = std::env::temp_dir().join(format!("liveroot-state-{}", std::process::id()));
        let path = dir.join("sub/state");
        let p = path.to_str().unwrap();
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(load(p).unwrap(), vec![]);
        set(p, &[kv("medium", "/dev/vda1"), kv("booted", "local")]).unwrap();
        set(p, &[kv("booted", "ram"), kv("md", "/dev/md7"), kv("image", "a=b")]).unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), "medium=/dev/vda1\nbooted=ram\nmd=/dev/md7\nimage=a=b\n");
        assert_eq!(get(p, "image").unwrap().as_deref(), Some("a=b"));
        assert_eq!(get(p, "nope").unwrap(), None);
        assert!(set(p, &[kv("Bad-Key", "x")]).is_err());
        assert!(set(p, &[kv("k", "two\nlines")]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
