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
//! | `kernel` | `own` | an image with its own kernel: `own` when it runs on it, `loader` when on the loader's (mark-good waits for `own`); absent otherwise |
//! | `fallback_reason` | `version 2 failed its trial: 3 boots without mark-good` | why the previous pair booted instead of the primary; absent otherwise |
//! | `settings`     | `live.fetch,rd.live.machine_id`  | the keys taken from the medium's `LiveOS/settings` (core/src/settings.rs), comma-separated; empty: the file gave none; absent: no file |
//! | `migrated`     | `/dev/sdb`                       | set by migrate once the system runs on that disk alone (before the grow) |
//!
//! Writers replace the file atomically (write a temporary file, rename), so readers never see a
//! half-written state.

use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};

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

/// `liveinit state ACTION ARGS` on the state at `file`: `set KEY=VALUE...`, `get KEY` (a key
/// not there is an error), `show`. What it prints.
pub fn command(file: &Path, action: &str, args: &[String]) -> Result<String> {
    match action {
        "set" => {
            let mut kv = Vec::new();
            for x in args {
                let (k, v) = x.split_once('=').ok_or_else(|| Error::usage(format!("state set: '{x}': expected KEY=VALUE")))?;
                kv.push((k.to_owned(), v.to_owned()));
            }
            if kv.is_empty() {
                return Err(Error::usage("state set: expected KEY=VALUE..."));
            }
            set(file, &kv).map(|()| String::new())
        }
        "get" => {
            let [key] = args else {
                return Err(Error::usage("state get: expected one KEY"));
            };
            match get(file, key)? {
                Some(v) => Ok(format!("{v}\n")),
                None => Err(Error::new(format!("{}: {key}", file.display()), "no such key")),
            }
        }
        "show" => Ok(load(file)?.iter().map(|(k, v)| format!("{k}={v}\n")).collect()),
        other => Err(Error::usage(format!("state: unknown action '{other}' (set, get, show)"))),
    }
}

/// The state the live boot writes, typed: one field per key of the table above. `to_entries`
/// gives the keys in the order the boot has always written them; a field that is `None` is
/// left out (the keys a boot that did not use them never had: `trial`, `fallback_reason`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    pub medium: String,
    pub medium_type: String,
    pub medium_spec: String,
    pub medium_mount: String,
    pub image: String,
    pub image_file: String,
    pub image_sha256: String,
    pub verified: String,
    pub squash_loop: String,
    pub squash_mount: String,
    pub rootfs_image: String,
    pub rootfs_loop: String,
    pub overlay_dir: String,
    pub overlay_size: String,
    pub dm: String,
    pub md: String,
    pub booted: String,
    pub image_version: String,
    pub fetched_from: String,
    pub medium_pair: String,
    pub floor: String,
    pub min_version: String,
    pub pubkey: String,
    pub verity: String,
    pub verity_dev: String,
    pub trial: Option<String>,
    pub fallback_reason: Option<String>,
    pub watchdog: Option<String>,
    pub watchdog_dev: Option<String>,
    pub migrated: Option<String>,
    /// For an image that brings its own kernel: `own` when it runs on it, `loader` when on the
    /// loader's (a fetched image before syncflash): mark-good waits for `own`.
    pub kernel: Option<String>,
    /// The keys taken from `LiveOS/settings`, comma-separated (`None`: no such file).
    pub settings: Option<String>,
}

/// The image path when the state names none (a state from before `image=`).
pub const DEFAULT_IMAGE: &str = "LiveOS/squashfs.img";

impl LiveState {
    /// The state at `path` (a missing file is an empty state).
    pub fn load(path: impl AsRef<Path>) -> Result<LiveState> {
        Ok(LiveState::from_entries(&load(path)?))
    }

    pub fn from_entries(e: &[(String, String)]) -> LiveState {
        let s = |k: &str| lookup(e, k).to_owned();
        let o = |k: &str| lookup_opt(e, k).map(str::to_owned);
        LiveState {
            medium: s("medium"),
            medium_type: s("medium_type"),
            medium_spec: s("medium_spec"),
            medium_mount: s("medium_mount"),
            image: s("image"),
            image_file: s("image_file"),
            image_sha256: s("image_sha256"),
            verified: s("verified"),
            squash_loop: s("squash_loop"),
            squash_mount: s("squash_mount"),
            rootfs_image: s("rootfs_image"),
            rootfs_loop: s("rootfs_loop"),
            overlay_dir: s("overlay_dir"),
            overlay_size: s("overlay_size"),
            dm: s("dm"),
            md: s("md"),
            booted: s("booted"),
            image_version: s("image_version"),
            fetched_from: s("fetched_from"),
            medium_pair: s("medium_pair"),
            floor: s("floor"),
            min_version: s("min_version"),
            pubkey: s("pubkey"),
            verity: s("verity"),
            verity_dev: s("verity_dev"),
            trial: o("trial"),
            fallback_reason: o("fallback_reason"),
            watchdog: o("watchdog"),
            watchdog_dev: o("watchdog_dev"),
            migrated: o("migrated"),
            kernel: o("kernel"),
            settings: o("settings"),
        }
    }

    pub fn to_entries(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            ("medium", &self.medium),
            ("medium_type", &self.medium_type),
            ("medium_spec", &self.medium_spec),
            ("medium_mount", &self.medium_mount),
            ("image", &self.image),
            ("image_file", &self.image_file),
            ("image_sha256", &self.image_sha256),
            ("verified", &self.verified),
            ("squash_loop", &self.squash_loop),
            ("squash_mount", &self.squash_mount),
            ("rootfs_image", &self.rootfs_image),
            ("rootfs_loop", &self.rootfs_loop),
            ("overlay_dir", &self.overlay_dir),
            ("overlay_size", &self.overlay_size),
            ("dm", &self.dm),
            ("md", &self.md),
            ("booted", &self.booted),
            ("image_version", &self.image_version),
            ("fetched_from", &self.fetched_from),
            ("medium_pair", &self.medium_pair),
            ("floor", &self.floor),
            ("min_version", &self.min_version),
            ("pubkey", &self.pubkey),
            ("verity", &self.verity),
            ("verity_dev", &self.verity_dev),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let opt = [
            ("trial", &self.trial),
            ("fallback_reason", &self.fallback_reason),
            ("watchdog", &self.watchdog),
            ("watchdog_dev", &self.watchdog_dev),
            ("migrated", &self.migrated),
            ("kernel", &self.kernel),
            ("settings", &self.settings),
        ];
        v.extend(opt.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone()))));
        v
    }

    /// Write it (merged into what the file holds: keys set later by others are kept).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        set(path, &self.to_entries())
    }

    /// The image path relative to the medium root.
    pub fn image(&self) -> &str {
        if self.image.is_empty() { DEFAULT_IMAGE } else { &self.image }
    }

    /// The image's directory on the medium, relative to its root (`LiveOS`).
    pub fn image_dir(&self) -> PathBuf {
        Path::new(self.image().trim_start_matches('/')).parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// `path` (relative to the medium root) on the medium this state names: where the boot
    /// keeps it mounted, else mounted privately (read-only, at [`PRIVATE_MOUNT`]) for as long
    /// as the returned [`OnMedium`] lives. `state_file` names the state in errors.
    pub fn on_medium(&self, rel: &Path, state_file: &str) -> Result<OnMedium> {
        if !self.medium_mount.is_empty() {
            return Ok(OnMedium { path: Path::new(&self.medium_mount).join(rel), mounted: false });
        }
        if self.medium.is_empty() {
            return Err(Error::new(state_file, "no medium recorded (a network-only boot has no trial state); give --file"));
        }
        std::fs::create_dir_all(PRIVATE_MOUNT).ctx(PRIVATE_MOUNT)?;
        let ty = match self.medium_type.as_str() {
            "" | "auto" => "vfat",
            t => t,
        };
        nix::mount::mount(Some(self.medium.as_str()), PRIVATE_MOUNT, Some(ty), nix::mount::MsFlags::MS_RDONLY, None::<&str>)
            .ctx(format!("{} on {PRIVATE_MOUNT}", self.medium))?;
        Ok(OnMedium { path: Path::new(PRIVATE_MOUNT).join(rel), mounted: true })
    }
}

/// Where the medium is mounted when the boot released it (rd.live.ram, a fetched image).
pub const PRIVATE_MOUNT: &str = "/run/live/trial-medium";

/// A path on the medium and, when the medium had to be mounted for it, that mount (undone on
/// drop).
pub struct OnMedium {
    pub path: PathBuf,
    mounted: bool,
}

impl OnMedium {
    /// A path given as it is (nothing mounted for it).
    pub fn at(path: PathBuf) -> OnMedium {
        OnMedium { path, mounted: false }
    }
}

impl Drop for OnMedium {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount(PRIVATE_MOUNT);
        }
    }
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

    #[test]
    fn live_state_round_trip() {
        let text = "medium=/dev/vda\nbooted=local\nimage=LiveOS/x.img\ntrial=2\nwatchdog=120\n";
        let st = LiveState::from_entries(&parse(text));
        assert_eq!(st.medium, "/dev/vda");
        assert_eq!(st.trial.as_deref(), Some("2"));
        assert_eq!(st.fallback_reason, None);
        assert_eq!(st.image_dir(), Path::new("LiveOS"));
        assert_eq!(LiveState::default().image(), DEFAULT_IMAGE);
        let e = st.to_entries();
        assert_eq!(e[0], ("medium".to_owned(), "/dev/vda".to_owned()));
        assert_eq!(e.len(), 25 + 2);
        assert_eq!(LiveState::from_entries(&e), st);
    }

    #[test]
    fn command_set_get_show() {
        let dir = std::env::temp_dir().join(format!("liveroot-state-cmd-{}", std::process::id()));
        let f = dir.join("state");
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command(&f, "set", &a(&["md=/dev/md7", "dm=x"])).unwrap(), "");
        assert_eq!(command(&f, "get", &a(&["md"])).unwrap(), "/dev/md7\n");
        assert_eq!(command(&f, "show", &[]).unwrap(), "md=/dev/md7\ndm=x\n");
        assert!(command(&f, "get", &a(&["nope"])).unwrap_err().to_string().ends_with("nope: no such key"));
        assert!(command(&f, "set", &a(&["novalue"])).is_err());
        assert!(command(&f, "set", &[]).is_err());
        assert!(command(&f, "get", &[]).is_err());
        assert!(command(&f, "frob", &[]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
