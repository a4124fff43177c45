//! syncflash on the host: help, usage, refusals, and the whole write/verify/rotate protocol on a
//! directory standing for the medium (plain directory, a small tmpfs for "no room", a FAT32 loop
//! mount read-only that syncflash remounts, and one forced read-only). The boot side and power
//! cuts run in QEMU: tests/qemu/scenarios/syncflash-*.sh.

mod common;

use common::HookLock;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    mounts: Vec<PathBuf>,
    loops: Vec<String>,
    /// Shared (no hook file) unless the test writes hooks.
    hooks: HookLock,
}

impl Env {
    /// A test that runs syncflash with no test hook.
    fn new(tag: &str) -> Env {
        Env::with(tag, HookLock::shared())
    }
    /// A test that writes the test-hook file (`env.hooks.set`).
    fn hooked(tag: &str) -> Env {
        Env::with(tag, HookLock::exclusive())
    }
    fn with(tag: &str, hooks: HookLock) -> Env {
        let dir = std::env::temp_dir().join(format!("syncflash-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("medium/LiveOS")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_liveroot"), dir.join("syncflash")).unwrap();
        Env { dir, mounts: Vec::new(), loops: Vec::new(), hooks }
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(self.dir.join("syncflash"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }
    fn p(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
    /// An image version: `size` bytes derived from `v`, with its manifest (and a fake signature).
    fn version(&self, v: u8, size: usize) -> (String, String) {
        let d = self.dir.join(format!("src/v{v}"));
        std::fs::create_dir_all(&d).unwrap();
        let data: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(v)).collect();
        std::fs::write(d.join("squashfs.img"), &data).unwrap();
        std::fs::write(d.join("SHA256SUMS"), format!("{}  squashfs.img\n", sha(&data))).unwrap();
        std::fs::write(d.join("SHA256SUMS.minisig"), format!("sig of v{v}\n")).unwrap();
        (d.join("squashfs.img").display().to_string(), d.join("SHA256SUMS").display().to_string())
    }
    /// Put version `v` on the medium under suffix `sfx`.
    fn place(&self, medium: &str, v: u8, sfx: &str) {
        for f in ["squashfs.img", "SHA256SUMS", "SHA256SUMS.minisig"] {
            std::fs::copy(self.dir.join(format!("src/v{v}/{f}")), format!("{medium}/LiveOS/{f}{sfx}")).unwrap();
        }
    }
    /// syncflash of version `v`, not put on trial (`--tries 0`): these tests are about the
    /// rotation; with a trial, a pair never marked good is not the one kept (see
    /// `the_last_good_pair_is_kept`).
    fn sync(&self, medium: &str, v: u8) -> Output {
        let (img, sums) = (self.p(&format!("src/v{v}/squashfs.img")), self.p(&format!("src/v{v}/SHA256SUMS")));
        self.run(&["--medium", medium, "--image", &img, "--manifest", &sums, "--tries", "0"])
    }
    fn mount(&mut self, args: &[&str], at: &Path) {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount").args(args).arg(at).output().unwrap();
        assert!(o.status.success(), "mount {args:?}: {}", text(&o.stderr));
        self.mounts.push(at.to_path_buf());
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg(m).status();
        }
        for l in &self.loops {
            let _ = Command::new("losetup").args(["-d", l]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sha(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    text(&o.stdout)[..64].to_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Names in MEDIUM/LiveOS, sorted, and the version each image file holds (by its last byte).
/// The trial file syncflash creates there is left out (the trial tests look at it).
fn listing(medium: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("{medium}/LiveOS"))
        .unwrap()
        .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != "trial.state"))
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let data = std::fs::read(e.path()).unwrap();
            let what = if name.starts_with("squashfs") {
                format!("img-v{}", data[0])
            } else if name.starts_with("SHA256SUMS.minisig") {
                text(&data).trim().replace("sig of ", "sig-")
            } else {
                format!("sums-{}", &text(&data)[..8])
            };
            format!("{name}={what}")
        })
        .collect();
    v.sort();
    v
}

fn sums_of(env: &Env, v: u8) -> String {
    format!("sums-{}", &std::fs::read_to_string(env.p(&format!("src/v{v}/SHA256SUMS"))).unwrap()[..8])
}

/// The expected listing: pairs (suffix, version).
fn expect(env: &Env, pairs: &[(&str, u8)]) -> Vec<String> {
    let mut v = Vec::new();
    for (sfx, ver) in pairs {
        v.push(format!("SHA256SUMS{sfx}={}", sums_of(env, *ver)));
        v.push(format!("SHA256SUMS.minisig{sfx}=sig-v{ver}"));
        v.push(format!("squashfs.img{sfx}=img-v{ver}"));
    }
    v.sort();
    v
}

fn fails(o: &Output) -> (i32, String) {
    (o.status.code().unwrap(), text(&o.stderr))
}

#[test]
fn help_and_usage() {
    let env = Env::new("help");
    let o = env.run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    assert!(out.starts_with("Usage: syncflash"), "{out}");
    for opt in ["--medium", "--image", "--manifest", "--sig", "--pubkey-file", "--dry-run", "--progress", ".old", "sidecars"] {
        assert!(out.contains(opt), "help lacks {opt}: {out}");
    }
    for args in [&["--image", "x"][..], &["--manifest", "y"], &["--bogus"], &["extra"]] {
        let (code, err) = fails(&env.run(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("syncflash: "), "{err}");
    }
}

#[test]
fn refusals_before_writing() {
    let env = Env::new("refuse");
    let medium = env.p("medium");
    let state = env.p("state");
    // No state at all: nothing fetched.
    let (code, err) = fails(&env.run(&["--state", &state]));
    assert_eq!(code, 1);
    assert_eq!(err, format!("syncflash: {state}: no fetched image recorded (image_file); give --image and --manifest\n"));

    env.version(1, 5000);
    env.version(2, 7000);
    env.place(&medium, 1, "");
    let before = listing(&medium);
    // An image that does not match its manifest: exit 3, the medium untouched.
    let (img1, _) = (env.p("src/v1/squashfs.img"), 0);
    let (code, err) = fails(&env.run(&["--medium", &medium, "--image", &img1, "--manifest", &env.p("src/v2/SHA256SUMS")]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("checksum mismatch") && err.contains("nothing written"), "{err}");
    assert_eq!(listing(&medium), before);
    // The medium missing.
    let (code, err) = fails(&env.sync(&env.p("nonexistent"), 2));
    assert_eq!(code, 1);
    assert!(err.contains("the medium is missing"), "{err}");
    // A manifest that names the image differently from the medium.
    let (code, err) = fails(&env.run(&[
        "--medium", &medium, "--dest", "LiveOS/other.img", "--image", &env.p("src/v2/squashfs.img"),
        "--manifest", &env.p("src/v2/SHA256SUMS"),
    ]));
    assert_eq!(code, 3, "{err}");
    assert_eq!(listing(&medium), before);
}

#[test]
fn write_rotate_and_nothing_to_do() {
    let env = Env::new("rotate");
    let medium = env.p("medium");
    for v in 1..=4 {
        env.version(v, 300_000 + v as usize * 1000);
    }
    env.place(&medium, 1, "");

    // Dry run: says what it would do, writes nothing.
    let (img, sums) = (env.p("src/v2/squashfs.img"), env.p("src/v2/SHA256SUMS"));
    let o = env.run(&["--medium", &medium, "--image", &img, "--manifest", &sums, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("would write"), "{}", text(&o.stdout));
    assert_eq!(listing(&medium), expect(&env, &[("", 1)]));

    // v2: primary v2, .old v1, no .new. The signature travelled with its manifest.
    let o = env.sync(&medium, 2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("now holds sha256"), "{}", text(&o.stdout));
    assert_eq!(listing(&medium), expect(&env, &[("", 2), (".old", 1)]));

    // Again: nothing to do, exit 5, nothing touched.
    let (code, err) = fails(&env.sync(&medium, 2));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("already holds this image"), "{err}");
    assert_eq!(listing(&medium), expect(&env, &[("", 2), (".old", 1)]));

    // v3: the stale .old (v1) goes once the primary verifies; one .old kept: v2.
    let o = env.sync(&medium, 3);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&medium), expect(&env, &[("", 3), (".old", 2)]));

    // Leftover .new files of an interrupted run (incomplete: no manifest) are removed.
    std::fs::write(format!("{medium}/LiveOS/squashfs.img.new"), b"half").unwrap();
    let o = env.sync(&medium, 4);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&medium), expect(&env, &[("", 4), (".old", 3)]));

    // A corrupted primary: the .old pair (good) is kept, the bad primary replaced.
    let p = format!("{medium}/LiveOS/squashfs.img");
    let mut data = std::fs::read(&p).unwrap();
    data[1000] ^= 0xff;
    std::fs::write(&p, &data).unwrap();
    let o = env.sync(&medium, 2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&medium), expect(&env, &[("", 2), (".old", 3)]));
}

#[test]
fn interrupted_rotation_is_finished() {
    let env = Env::new("resume");
    let medium = env.p("medium");
    for v in 1..=3 {
        env.version(v, 200_000 + v as usize);
    }
    // Cut between the renames: primary half gone (manifest moved), .old incomplete, .new whole.
    env.place(&medium, 1, ".old");
    std::fs::remove_file(format!("{medium}/LiveOS/squashfs.img.old")).unwrap();
    env.place(&medium, 1, "");
    std::fs::remove_file(format!("{medium}/LiveOS/SHA256SUMS")).unwrap();
    std::fs::remove_file(format!("{medium}/LiveOS/SHA256SUMS.minisig")).unwrap();
    env.place(&medium, 2, ".new");
    let o = env.sync(&medium, 3);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // v1 is whole, split between its new manifest under .old and the rest under the primary
    // names (pairs::Pair::resolved): it is the keeper, its move is finished, and v3 goes
    // straight under the primary names; the untried v2 under .new goes.
    assert_eq!(listing(&medium), expect(&env, &[("", 3), (".old", 1)]));
}

#[test]
fn from_the_state_and_the_step_hook() {
    let env = Env::hooked("state");
    let medium = env.p("medium");
    env.version(1, 4096);
    env.version(2, 8192);
    env.place(&medium, 1, "");
    let state = env.p("state");
    std::fs::write(
        &state,
        format!("medium=/dev/null\nmedium_mount={medium}\nimage=LiveOS/squashfs.img\nimage_file={}\nmedium_pair=primary\n", env.p("src/v2/squashfs.img")),
    )
    .unwrap();
    env.hooks.set("syncflash=none\n", 0o644);
    let o = env.run(&["--state", &state]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&medium), expect(&env, &[("", 2), (".old", 1)]));
    let steps: Vec<String> = text(&o.stderr).lines().filter_map(|l| l.strip_prefix("syncflash-step ").map(str::to_owned)).collect();
    assert_eq!(
        steps,
        [
            "preflight", "remount-rw", "delete", "write-image", "write-half", "write-sidecars", "write-manifest", "verify",
            "old-manifest", "old-sig", "old-roothash", "old-verity", "old-kernel", "old-initrd", "old-uki", "old-image", "new-image",
            "new-uki", "new-initrd", "new-kernel", "new-verity", "new-roothash", "new-sig", "new-manifest"
        ]
    );
    assert!(std::fs::read_to_string(&state).unwrap().contains("medium_pair=primary\n"));
    // Without the file, no step lines.
    env.hooks.clear();
    let o = env.run(&["--state", &state]);
    assert_eq!(o.status.code(), Some(5));
    assert!(!text(&o.stderr).contains("syncflash-step"));
}

/// `cmd` run to its end, or killed after 30 s (a test hook pausing it) and reported.
fn bounded(cmd: &mut Command) -> Output {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("still running after 30 s (paused?): {}", text(&o.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_environment_sets_no_test_hook() {
    // The kernel passes unknown NAME=value command-line words into /init's environment: the
    // variables the hooks once read must neither announce a step nor pause.
    let env = Env::new("envhook");
    let medium = env.p("medium");
    env.version(1, 4096);
    env.version(2, 8192);
    env.place(&medium, 1, "");
    let (img, sums) = (env.p("src/v2/squashfs.img"), env.p("src/v2/SHA256SUMS"));
    let o = bounded(
        Command::new(env.dir.join("syncflash"))
            .args(["--medium", &medium, "--image", &img, "--manifest", &sums])
            .env("LIVEROOT_SYNCFLASH_PAUSE_AT", "preflight")
            .env("LIVEROOT_TRIAL_PAUSE_AT", "write,written"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("-step "), "{}", text(&o.stderr));
    assert_eq!(listing(&medium), expect(&env, &[("", 2), (".old", 1)]));
}

#[test]
fn a_hook_file_not_locked_down_to_root_is_ignored() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::hooked("badhook");
    let medium = env.p("medium");
    env.version(1, 4096);
    env.version(2, 8192);
    env.place(&medium, 1, "");
    let sync = || {
        let (img, sums) = (env.p("src/v2/squashfs.img"), env.p("src/v2/SHA256SUMS"));
        let o = bounded(Command::new(env.dir.join("syncflash")).args(["--medium", &medium, "--image", &img, "--manifest", &sums]));
        std::fs::remove_dir_all(format!("{medium}/LiveOS")).unwrap();
        std::fs::create_dir(format!("{medium}/LiveOS")).unwrap();
        env.place(&medium, 1, "");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("syncflash-step"), "{}", text(&o.stderr));
        // Said once (the file is read once), among syncflash's own lines.
        text(&o.stderr).lines().filter(|l| l.contains("test hooks")).collect::<Vec<_>>().join("\n")
    };
    let hooks = common::HOOK_FILE;
    let warning = |why: &str| format!("liveroot: warning: {hooks}: {why}: test hooks ignored");
    // Writable by others, or by the group.
    env.hooks.set("syncflash=preflight\n", 0o666);
    assert_eq!(sync(), warning("mode 666: writable by group or others"));
    env.hooks.set("syncflash=preflight\n", 0o620);
    assert_eq!(sync(), warning("mode 620: writable by group or others"));
    // Owned by someone else.
    env.hooks.set("syncflash=preflight\n", 0o644);
    std::os::unix::fs::chown(hooks, Some(65534), Some(65534)).unwrap();
    assert_eq!(sync(), warning("owned by uid 65534, not root"));
    // A symbolic link, even to a good file.
    env.hooks.clear();
    let target = env.p("hooks");
    std::fs::write(&target, "syncflash=preflight\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&target, hooks).unwrap();
    assert_eq!(sync(), warning("a symbolic link"));
}

fn losetup(env: &mut Env, file: &str) -> String {
    let o = Command::new("losetup").args(["-f", "--show", file]).output().unwrap();
    assert!(o.status.success(), "losetup: {}", text(&o.stderr));
    let dev = text(&o.stdout).trim().to_owned();
    env.loops.push(dev.clone());
    dev
}

#[test]
fn read_only_mount_is_remounted_and_forced_read_only_refused() {
    let mut env = Env::new("fat");
    let img = env.p("fat.img");
    // FAT32 when this kernel has vfat (the QEMU scenarios always use it), else ext4.
    let vfat = std::fs::read_to_string("/proc/filesystems").unwrap().contains("\tvfat\n")
        || Command::new("modprobe").arg("vfat").status().is_ok_and(|s| s.success());
    let fstype = if vfat { "vfat" } else { "ext4" };
    eprintln!("medium filesystem: {fstype}");
    let o = if vfat {
        Command::new("mkfs.vfat").args(["-F", "32", "-n", "LIVE", "-C", &img, "40000"]).output().unwrap()
    } else {
        Command::new("mkfs.ext4").args(["-q", "-F", "-L", "LIVE", &img, "40M"]).output().unwrap()
    };
    assert!(o.status.success(), "mkfs: {}", text(&o.stderr));
    env.version(1, 1 << 20);
    env.version(2, 3 << 20);
    let dev = losetup(&mut env, &img);
    // A space in the mount point: mountinfo writes it as \040, and syncflash must still see the
    // read-only mount there (else the write fails with EROFS).
    let mnt = env.dir.join("my stick");
    let m = mnt.display().to_string();
    env.mount(&["-t", fstype, &dev], &mnt);
    std::fs::create_dir_all(format!("{m}/LiveOS")).unwrap();
    env.place(&m, 1, "");
    assert!(Command::new("mount").args(["-o", "remount,ro", &m]).status().unwrap().success());

    let o = env.sync(&m, 2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&m), expect(&env, &[("", 2), (".old", 1)]));
    let ro = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let escaped = m.replace(' ', "\\040");
    assert!(ro.lines().any(|l| l.split(' ').nth(1) == Some(escaped.as_str()) && l.split(' ').nth(3).unwrap().starts_with("ro")), "not read-only again");

    // The device forced read-only: the remount fails, nothing written.
    assert!(Command::new("blockdev").args(["--setro", &dev]).status().unwrap().success());
    env.version(3, 2 << 20);
    let (code, err) = fails(&env.sync(&m, 3));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot remount read-write") && err.contains("nothing written"), "{err}");
    assert_eq!(listing(&m), expect(&env, &[("", 2), (".old", 1)]));
    let _ = Command::new("blockdev").args(["--setrw", &dev]).status();
}

#[test]
fn no_room_beside_the_current_image() {
    let mut env = Env::new("room");
    let mnt = env.dir.join("small");
    env.mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"], &mnt);
    let m = mnt.display().to_string();
    std::fs::create_dir_all(format!("{m}/LiveOS")).unwrap();
    env.version(1, 2 << 20);
    env.version(2, (2 << 20) + 4096);
    env.place(&m, 1, "");
    let before = listing(&m);
    let (code, err) = fails(&env.sync(&m, 2));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no room for the new image beside the current one") && err.contains("nothing written"), "{err}");
    assert_eq!(listing(&m), before);
}

#[test]
fn names_sharing_data_are_not_deleted() {
    // A FAT rename cut by a power loss can leave two names on one cluster chain; a hard link on
    // ext4 gives the same picture to FIBMAP: squashfs.img (doomed: its pair has no manifest) on
    // the blocks of squashfs.img.old (the keeper).
    let mut env = Env::new("shared");
    let img = env.p("ext4.img");
    let o = Command::new("mkfs.ext4").args(["-q", "-F", &img, "16M"]).output().unwrap();
    assert!(o.status.success(), "mkfs: {}", text(&o.stderr));
    let dev = losetup(&mut env, &img);
    let mnt = env.dir.join("ext4");
    let m = mnt.display().to_string();
    env.mount(&["-t", "ext4", &dev], &mnt);
    std::fs::create_dir_all(format!("{m}/LiveOS")).unwrap();
    env.version(1, 1 << 20);
    env.version(2, 1 << 20);
    env.place(&m, 1, ".old");
    std::fs::hard_link(format!("{m}/LiveOS/squashfs.img.old"), format!("{m}/LiveOS/squashfs.img")).unwrap();
    let before = listing(&m);
    let (code, err) = fails(&env.sync(&m, 2));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("shares its data with") && err.contains("squashfs.img.old") && err.contains("nothing written"), "{err}");
    assert_eq!(listing(&m), before);
}

#[test]
fn state_vouched_image_is_checked_on_read_back() {
    // The state says the booted image is v2 (verified at boot), but the file now holds other
    // bytes: no pre-pass, so the read-back catches it; the primary stays, no .new is left.
    let env = Env::new("vouch");
    let medium = env.p("medium");
    env.version(1, 100_000);
    env.version(2, 100_000);
    env.place(&medium, 1, "");
    let img = env.p("src/v2/squashfs.img");
    let want = std::fs::read_to_string(env.p("src/v2/SHA256SUMS")).unwrap()[..64].to_owned();
    let state = env.p("state");
    std::fs::write(&state, format!("medium_mount={medium}\nimage_file={img}\nverified=sha256\nimage_sha256={want}\n")).unwrap();
    std::fs::copy(env.p("src/v1/squashfs.img"), &img).unwrap();
    let before = listing(&medium);
    let (code, err) = fails(&env.run(&["--state", &state]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("read back does not match the manifest"), "{err}");
    assert_eq!(listing(&medium), before);
    // A state digest that is not the manifest's: refused before writing.
    std::fs::write(&state, format!("medium_mount={medium}\nimage_file={img}\nverified=sha256\nimage_sha256={}\n", "0".repeat(64))).unwrap();
    let (code, err) = fails(&env.run(&["--state", &state]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nothing written"), "{err}");
    assert_eq!(listing(&medium), before);
}

// Signatures, dm-verity sidecars and FIBMAP failing closed. These pairs live in src/TAG/ and
// are compared by content, all five files of a pair included.

impl Env {
    /// A minisign key pair made here with the real minisign (no password): (public, secret).
    fn key(&self, tag: &str) -> (String, String) {
        let (p, s) = (self.p(&format!("{tag}.pub")), self.p(&format!("{tag}.sec")));
        let o = Command::new("minisign").args(["-G", "-W", "-f", "-p", &p, "-s", &s]).output().unwrap();
        assert!(o.status.success(), "minisign -G: {}", text(&o.stderr));
        (p, s)
    }
    /// src/TAG/: an image of `size` bytes derived from `v`; with `sidecars`, a stand-in
    /// squashfs.img.verity and .roothash listed in the manifest (syncflash only copies and
    /// checksums them); signed with `version=v` by the secret key `signer`, or unsigned.
    fn make(&self, tag: &str, v: u8, size: usize, sidecars: bool, signer: Option<&str>) {
        let d = self.dir.join(format!("src/{tag}"));
        std::fs::create_dir_all(&d).unwrap();
        let data: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(17).wrapping_add(v)).collect();
        std::fs::write(d.join("squashfs.img"), &data).unwrap();
        let mut sums = format!("{}  squashfs.img\n", sha(&data));
        if sidecars {
            let tree: Vec<u8> = (0..8192 + v as usize).map(|i| (i as u8) ^ v).collect();
            let root = format!("{}\n", sha(&tree));
            std::fs::write(d.join("squashfs.img.verity"), &tree).unwrap();
            std::fs::write(d.join("squashfs.img.roothash"), &root).unwrap();
            sums.push_str(&format!("{}  squashfs.img.verity\n{}  squashfs.img.roothash\n", sha(&tree), sha(root.as_bytes())));
        }
        std::fs::write(d.join("SHA256SUMS"), sums).unwrap();
        if let Some(sec) = signer {
            let m = d.join("SHA256SUMS").display().to_string();
            let o = Command::new("minisign").args(["-S", "-W", "-s", sec, "-m", &m, "-t", &format!("version={v}")]).output().unwrap();
            assert!(o.status.success(), "minisign -S: {}", text(&o.stderr));
        }
    }
    /// Every file of src/TAG on the medium under suffix `sfx`.
    fn place_tag(&self, medium: &str, tag: &str, sfx: &str) {
        for (name, _) in contents(&self.dir.join(format!("src/{tag}"))) {
            std::fs::copy(self.dir.join(format!("src/{tag}/{name}")), format!("{medium}/LiveOS/{name}{sfx}")).unwrap();
        }
    }
    fn sync_tag(&self, medium: &str, tag: &str, extra: &[&str]) -> Output {
        let (img, sums) = (self.p(&format!("src/{tag}/squashfs.img")), self.p(&format!("src/{tag}/SHA256SUMS")));
        let mut args = vec!["--medium", medium, "--image", &img, "--manifest", &sums, "--tries", "0"];
        args.extend_from_slice(extra);
        self.run(&args)
    }
    /// What the medium should hold: the files of src/TAG under each suffix.
    fn expect_tags(&self, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .flat_map(|(sfx, tag)| {
                contents(&self.dir.join(format!("src/{tag}"))).into_iter().map(move |(n, h)| (format!("{n}{sfx}"), h))
            })
            .collect();
        v.sort();
        v
    }
}

/// (name, sha256) of every file in DIR (or DIR/LiveOS for a medium), sorted; the trial file
/// left out.
fn contents(dir: &Path) -> Vec<(String, String)> {
    let d = if dir.join("LiveOS").is_dir() { dir.join("LiveOS") } else { dir.to_path_buf() };
    let mut v: Vec<(String, String)> = std::fs::read_dir(d)
        .unwrap()
        .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != "trial.state"))
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), sha(&std::fs::read(e.path()).unwrap()))
        })
        .collect();
    v.sort();
    v
}

fn medium_contents(medium: &str) -> Vec<(String, String)> {
    contents(Path::new(medium))
}

#[test]
fn with_a_key_only_signed_pairs_are_kept() {
    let env = Env::new("keyed");
    let medium = env.p("medium");
    let (key, sec) = env.key("k");
    let (_, other) = env.key("o");
    env.make("v0", 0, 50_000, false, Some(&sec));
    env.make("v1-other", 1, 60_000, false, Some(&other));
    env.make("v2", 2, 70_000, false, Some(&sec));
    env.make("v3-unsigned", 3, 40_000, false, None);
    env.make("v4", 4, 45_000, true, Some(&sec));
    env.place_tag(&medium, "v0", ".old");
    env.place_tag(&medium, "v1-other", "");

    // Without a key the primary (checksums fine) would be kept.
    let o = env.sync_tag(&medium, "v2", &["--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("keeping the current image"), "{}", text(&o.stdout));

    // With the key its signature (another key's) does not verify: the signed .old is kept.
    let o = env.sync_tag(&medium, "v2", &["--pubkey-file", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("primary pair not kept") && out.contains("made with a different key"), "{out}");
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "v2"), (".old", "v0")]));

    // A source that is unsigned, or signed by another key: exit 3, nothing written.
    let before = medium_contents(&medium);
    let (code, err) = fails(&env.sync_tag(&medium, "v3-unsigned", &["--pubkey-file", &key]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("SHA256SUMS.minisig: missing") && err.contains("nothing written"), "{err}");
    let (code, err) = fails(&env.sync_tag(&medium, "v1-other", &["--pubkey-file", &key]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("signature verification failed") && err.contains("nothing written"), "{err}");
    assert_eq!(medium_contents(&medium), before);

    // The primary loses its signature: with the key from the state (as the boot records it),
    // it is not kept; the signed .old (v0) is.
    std::fs::remove_file(format!("{medium}/LiveOS/SHA256SUMS.minisig")).unwrap();
    let state = env.p("state");
    let v4 = env.p("src/v4/squashfs.img");
    std::fs::write(&state, format!("medium_mount={medium}\nimage_file={v4}\npubkey={key}\n")).unwrap();
    let o = env.run(&["--state", &state]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("primary pair not kept"), "{}", text(&o.stdout));
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "v4"), (".old", "v0")]));

    // A recorded key that cannot be read is a refusal, not "no key".
    std::fs::write(&state, format!("medium_mount={medium}\nimage_file={}\npubkey=/nonexistent.pub\n", env.p("src/v2/squashfs.img"))).unwrap();
    let before = medium_contents(&medium);
    let (code, err) = fails(&env.run(&["--state", &state]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent.pub") && err.contains("nothing written"), "{err}");
    assert_eq!(medium_contents(&medium), before);

    // Only unsigned pairs on the medium: none is kept, the new one is written alone.
    let lone = env.p("lone");
    std::fs::create_dir_all(format!("{lone}/LiveOS")).unwrap();
    env.place_tag(&lone, "v3-unsigned", "");
    let o = env.sync_tag(&lone, "v2", &["--pubkey-file", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(medium_contents(&lone), env.expect_tags(&[("", "v2")]));
}

#[test]
fn sidecars_travel_with_their_pair() {
    let env = Env::new("sidecars");
    let medium = env.p("medium");
    env.make("s1", 1, 80_000, true, None);
    env.make("s2", 2, 90_000, true, None);
    env.make("p3", 3, 85_000, false, None);
    env.make("s4", 4, 70_000, true, None);
    env.place_tag(&medium, "s1", "");
    for (tag, want) in [("s2", [("", "s2"), (".old", "s1")]), ("p3", [("", "p3"), (".old", "s2")]), ("s4", [("", "s4"), (".old", "p3")])] {
        let o = env.sync_tag(&medium, tag, &[]);
        assert_eq!(o.status.code(), Some(0), "{tag}: {}", text(&o.stderr));
        assert_eq!(medium_contents(&medium), env.expect_tags(&want), "after {tag}");
    }
    let (code, err) = fails(&env.sync_tag(&medium, "s4", &[]));
    assert_eq!(code, 5, "{err}");

    // The primary's hash tree no longer matches its manifest: not kept, the .old (p3) is.
    let tree = format!("{medium}/LiveOS/squashfs.img.verity");
    let mut t = std::fs::read(&tree).unwrap();
    t[100] ^= 1;
    std::fs::write(&tree, t).unwrap();
    let o = env.sync_tag(&medium, "s2", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("squashfs.img.verity: checksum mismatch"), "{}", text(&o.stdout));
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "s2"), (".old", "p3")]));

    // An interrupted rotation with sidecars: the primary lost its manifest, .new is whole.
    let m2 = env.p("m2");
    std::fs::create_dir_all(format!("{m2}/LiveOS")).unwrap();
    env.place_tag(&m2, "s1", "");
    std::fs::remove_file(format!("{m2}/LiveOS/SHA256SUMS")).unwrap();
    env.place_tag(&m2, "s2", ".new");
    let o = env.sync_tag(&m2, "s4", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The keeper (.new, s2) is not renamed: s4 goes straight under the primary names.
    assert_eq!(medium_contents(&m2), env.expect_tags(&[("", "s4"), (".new", "s2")]));
}

#[test]
fn source_sidecars_must_match() {
    let env = Env::new("badsidecar");
    let medium = env.p("medium");
    env.make("p1", 1, 30_000, false, None);
    env.make("s2", 2, 30_000, true, None);
    env.place_tag(&medium, "p1", "");
    let before = medium_contents(&medium);
    let src = |f: &str| env.p(&format!("src/s2/{f}"));
    let saved = |f: &str| std::fs::read(src(f)).unwrap();
    let (tree, root) = (saved("squashfs.img.verity"), saved("squashfs.img.roothash"));

    let mut bad = tree.clone();
    bad[4000] ^= 0x80;
    std::fs::write(src("squashfs.img.verity"), &bad).unwrap();
    let (code, err) = fails(&env.sync_tag(&medium, "s2", &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("squashfs.img.verity: checksum mismatch") && err.contains("nothing written"), "{err}");
    std::fs::write(src("squashfs.img.verity"), &tree).unwrap();

    std::fs::write(src("squashfs.img.roothash"), "00\n").unwrap();
    let (code, err) = fails(&env.sync_tag(&medium, "s2", &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("squashfs.img.roothash: checksum mismatch") && err.contains("nothing written"), "{err}");

    for f in ["squashfs.img.roothash", "squashfs.img.verity"] {
        std::fs::write(src("squashfs.img.roothash"), &root).unwrap();
        std::fs::write(src("squashfs.img.verity"), &tree).unwrap();
        std::fs::remove_file(src(f)).unwrap();
        let (code, err) = fails(&env.sync_tag(&medium, "s2", &[]));
        assert_eq!(code, 3, "{f}: {err}");
        assert!(err.contains(&format!("{f}: listed in the manifest but missing")) && err.contains("nothing written"), "{err}");
    }
    assert_eq!(medium_contents(&medium), before);
    std::fs::write(src("squashfs.img.roothash"), &root).unwrap();
    std::fs::write(src("squashfs.img.verity"), &tree).unwrap();
    let o = env.sync_tag(&medium, "s2", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "s2"), (".old", "p1")]));
}

#[test]
fn no_fibmap_fails_closed() {
    // tmpfs has no FIBMAP: whether a file to delete shares the keeper's data cannot be told.
    let mut env = Env::new("nofibmap");
    let mnt = env.dir.join("tmpfs");
    env.mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &mnt);
    let m = mnt.display().to_string();
    std::fs::create_dir_all(format!("{m}/LiveOS")).unwrap();
    env.make("p1", 1, 100_000, false, None);
    env.make("p2", 2, 100_000, false, None);
    env.place_tag(&m, "p1", "");
    std::fs::write(format!("{m}/LiveOS/squashfs.img.new"), b"leftover of a cut run").unwrap();
    let before = medium_contents(&m);
    let (code, err) = fails(&env.sync_tag(&m, "p2", &[]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("FIBMAP cannot tell where its data lies") && err.contains("nothing written"), "{err}");
    assert_eq!(medium_contents(&m), before);
    // Nothing to delete: nothing to decide, the sync goes ahead.
    std::fs::remove_file(format!("{m}/LiveOS/squashfs.img.new")).unwrap();
    let o = env.sync_tag(&m, "p2", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(medium_contents(&m), env.expect_tags(&[("", "p2"), (".old", "p1")]));
}

#[test]
fn killed_at_any_step_a_signed_pair_with_sidecars_remains() {
    // syncflash killed at each step (the state a power cut leaves when every earlier step
    // reached the card; QEMU's syncflash-powercut covers the card side): a dry run then still
    // finds a good pair, the old or the new one, and the next run finishes cleanly.
    use std::io::BufRead;
    let env = Env::hooked("killed");
    let (key, sec) = env.key("k");
    env.make("s0", 0, 20_000, true, Some(&sec));
    env.make("s1", 1, 200_000, true, Some(&sec));
    env.make("s2", 2, 210_000, true, Some(&sec));
    env.make("s3", 3, 190_000, true, Some(&sec));
    let steps = [
        "preflight", "delete", "write-image", "write-half", "write-sidecars", "write-manifest", "verify", "old-manifest",
        "old-sig", "old-roothash", "old-verity", "old-image", "new-image", "new-verity", "new-roothash", "new-sig",
        "new-manifest",
    ];
    for (i, at) in steps.iter().enumerate() {
        let medium = env.p(&format!("m{i}"));
        std::fs::create_dir_all(format!("{medium}/LiveOS")).unwrap();
        env.place_tag(&medium, "s1", "");
        env.place_tag(&medium, "s0", ".old");
        let (img, sums) = (env.p("src/s2/squashfs.img"), env.p("src/s2/SHA256SUMS"));
        env.hooks.set(&format!("syncflash={at}\n"), 0o600);
        let mut child = Command::new(env.dir.join("syncflash"))
            .args(["--medium", &medium, "--image", &img, "--manifest", &sums, "--pubkey-file", &key])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let reached = std::io::BufReader::new(child.stderr.take().unwrap())
            .lines()
            .map_while(|l| l.ok())
            .any(|l| l == format!("syncflash-step {at}"));
        assert!(reached, "step {at} never announced");
        child.kill().unwrap();
        child.wait().unwrap();
        env.hooks.clear();

        let o = env.sync_tag(&medium, "s3", &["--pubkey-file", &key, "--dry-run"]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "after {at}: {}", text(&o.stderr));
        let kept = out.lines().find(|l| l.contains("keeping the")).unwrap_or_else(|| panic!("after {at}: {out}"));
        assert!(!kept.contains("no verified image"), "killed at {at}: {out}");
        let o = env.sync_tag(&medium, "s3", &["--pubkey-file", &key]);
        assert_eq!(o.status.code(), Some(0), "after {at}: {}", text(&o.stderr));
        let now = medium_contents(&medium);
        assert!(
            now == env.expect_tags(&[("", "s3"), (".old", "s1")]) || now == env.expect_tags(&[("", "s3"), (".old", "s2")]),
            "killed at {at}, then synced: {now:?}"
        );
    }
}

#[test]
fn latin1_medium_and_source_paths_are_used_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new("latin1");
    env.version(1, 200_000);
    // A medium mounted at ".../clé" and a source in ".../café", both Latin-1 (not UTF-8).
    let medium = env.dir.join(OsStr::from_bytes(b"cl\xe9"));
    std::fs::create_dir_all(medium.join("LiveOS")).unwrap();
    let src = env.dir.join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::rename(env.dir.join("src/v1"), &src).unwrap();
    let o = Command::new(env.dir.join("syncflash"))
        .arg("--medium")
        .arg(&medium)
        .arg("--image")
        .arg(src.join("squashfs.img"))
        .arg("--manifest")
        .arg(src.join("SHA256SUMS"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in ["squashfs.img", "SHA256SUMS", "SHA256SUMS.minisig"] {
        assert_eq!(std::fs::read(medium.join("LiveOS").join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn the_validators_cache_follows_the_version_written() {
    // imgfetch's --cache beside the state (/run/live/fetch.cache at boot) goes to the medium's
    // LiveOS/fetch.cache, where /init reads it, only when it was decided against the version
    // written; else the medium's is removed. Never a failure.
    let env = Env::new("cache");
    let medium = env.p("medium");
    let (key, sec) = env.key("k");
    for v in 1..=4 {
        env.make(&format!("v{v}"), v, 30_000 + v as usize, false, Some(&sec));
    }
    env.place_tag(&medium, "v1", "");
    let on_medium = format!("{medium}/LiveOS/fetch.cache");
    let in_run = env.p("fetch.cache");
    let cache = |above: u8, etag: &str| {
        format!(
            "# imgfetch: validators of the last manifest that needed nothing (not trusted: a 304 only skips)\n\
             url=http://10.0.2.100/ok/squashfs.img\nabove={above}\nversion={above}\nwaiting=0\nuntil=0\netag={etag}\n"
        )
    };
    // The medium's, about v1, longer than what replaces it: rewritten in place to the exact bytes.
    std::fs::write(&on_medium, cache(1, &format!("\"{}\"", "o".repeat(200)))).unwrap();
    std::fs::write(&in_run, cache(2, "\"v2-etag\"")).unwrap();
    let state = env.p("state");
    let put_state = |tag: &str| {
        std::fs::write(&state, format!("medium_mount={medium}\nimage_file={}\npubkey={key}\n", env.p(&format!("src/{tag}/squashfs.img"))))
            .unwrap()
    };
    put_state("v2");
    let o = env.run(&["--state", &state, "--dry-run"]);
    assert!(text(&o.stdout).contains(&format!("would write {on_medium} (the server's validators for this version)")), "{}", text(&o.stdout));
    let o = env.run(&["--state", &state, "--tries", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!("{on_medium}: the server's validators for this version")), "{}", text(&o.stdout));
    assert_eq!(std::fs::read_to_string(&on_medium).unwrap(), cache(2, "\"v2-etag\""));
    let mut want = env.expect_tags(&[("", "v2"), (".old", "v1")]);
    want.push(("fetch.cache".into(), sha(cache(2, "\"v2-etag\"").as_bytes())));
    want.sort();
    assert_eq!(medium_contents(&medium), want);

    // v3 while the cache beside the state is still about v2: the medium's (about v2) goes.
    put_state("v3");
    let o = env.run(&["--state", &state, "--dry-run"]);
    assert!(text(&o.stdout).contains(&format!("would delete {on_medium} (about another version)")), "{}", text(&o.stdout));
    let o = env.run(&["--state", &state, "--tries", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!("{on_medium}: removed")), "{}", text(&o.stdout));
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "v3"), (".old", "v2")]));

    // A torn cache beside the state is no cache; a medium path that cannot take the file
    // (a directory) costs a warning, the image is written all the same.
    std::fs::write(&in_run, &cache(4, "\"v4-etag\"")[..90]).unwrap();
    std::fs::create_dir(&on_medium).unwrap();
    put_state("v4");
    let o = env.run(&["--state", &state]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(&format!("syncflash: warning: {on_medium}: ")), "{}", text(&o.stderr));
    std::fs::remove_dir(&on_medium).unwrap();
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "v4"), (".old", "v3")]));
}

// ---- which pair is kept: the trial record decides (issue 18) ----------------------------------

impl Env {
    /// `liveinit trial ARGS` on the medium's trial file, through the file system (a test file
    /// on the host's root file system, whose device the kernel does not let us write).
    fn trial(&self, medium: &str, args: &[&str]) -> String {
        let file = format!("{medium}/LiveOS/trial.state");
        let mut c = Command::new(env!("CARGO_BIN_EXE_liveroot"));
        c.args(["liveinit", "trial"]).args(args).args(["--file", &file, "--via-fs"]);
        let o = c.output().unwrap();
        assert!(o.status.success() || o.status.code() == Some(5), "trial {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }
    /// syncflash of src/TAG, put on trial as a box does (3 tries: the host's command line has no
    /// rd.live.tries).
    fn sync_trial(&self, medium: &str, tag: &str, extra: &[&str]) -> Output {
        let (img, sums) = (self.p(&format!("src/{tag}/squashfs.img")), self.p(&format!("src/{tag}/SHA256SUMS")));
        let mut args = vec!["--medium", medium, "--image", &img, "--manifest", &sums];
        args.extend_from_slice(extra);
        self.run(&args)
    }
    /// The SHA-256 of src/TAG's image, as its manifest binds it.
    fn img_sha(&self, tag: &str) -> String {
        sha(&std::fs::read(self.p(&format!("src/{tag}/squashfs.img"))).unwrap())
    }
    /// The record, as `liveinit trial status` prints it.
    fn status(&self, medium: &str) -> String {
        let file = format!("{medium}/LiveOS/trial.state");
        let o = Command::new(env!("CARGO_BIN_EXE_liveroot")).args(["liveinit", "trial", "status", "--file", &file]).output().unwrap();
        text(&o.stdout)
    }
}

/// A signed medium: v1 under .old, v2 the primary, v2's trial used up and recorded as failed
/// (what the boots leave when v2 never called mark-good; the box then runs v1).
fn failed_v2(env: &Env, key_sec: &str) -> String {
    let medium = env.p("medium");
    for v in 1..=3 {
        env.make(&format!("s{v}"), v, 40_000 + v as usize, false, Some(key_sec));
    }
    env.place_tag(&medium, "s1", ".old");
    env.place_tag(&medium, "s2", "");
    let file = format!("{medium}/LiveOS/trial.state");
    let o = Command::new(env!("CARGO_BIN_EXE_liveroot")).args(["liveinit", "trial", "create", &file]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s2 = env.img_sha("s2");
    env.trial(&medium, &["start", "--sha256", &s2, "--version", "2", "--tries", "1", "--keep", "1"]);
    env.trial(&medium, &["take", "--sha256", &s2, "--version", "2"]);
    let out = env.trial(&medium, &["take", "--sha256", &s2, "--version", "2"]);
    assert!(out.contains("TRIAL_FALLBACK='version 2 failed its trial"), "{out}");
    assert!(env.status(&medium).contains("TRIAL_STATUS='failed'"), "{}", env.status(&medium));
    medium
}

#[test]
fn the_pair_that_failed_its_trial_is_never_the_one_kept() {
    // Issue 18 item 1: syncflash kept the failed primary v2 and deleted v1, the image the box
    // had fallen back to; a cut or the next failure then left no image to trust.
    let env = Env::new("keepgood");
    let (key, sec) = env.key("k");
    let medium = failed_v2(&env, &sec);
    let state = env.p("state");
    std::fs::write(&state, format!("medium_mount={medium}\nmedium_pair=old\nimage=LiveOS/squashfs.img\n")).unwrap();
    let o = env.sync_trial(&medium, "s3", &["--pubkey-file", &key, "--state", &state, "--dry-run"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.contains("primary pair not kept: version 2 failed its trial"), "{out}");
    assert!(out.contains(&format!("keeping the fallback {medium}/LiveOS/squashfs.img.old")), "{out}");
    assert!(out.contains(&format!("would delete {medium}/LiveOS/squashfs.img\n")), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("syncflash: would delete") && l.ends_with(".old")), "{out}");
    // The failed v2 itself is not written again (it was: "already holds this image", exit 5).
    let (code, err) = fails(&env.sync_trial(&medium, "s2", &["--pubkey-file", &key, "--state", &state]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("version 2 failed its trial on this box; nothing written"), "{err}");
    let o = env.sync_trial(&medium, "s3", &["--pubkey-file", &key, "--state", &state]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "s3"), (".old", "s1")]));
    // v3 is on trial now, falling back to v1; v2 stays failed.
    let st = env.status(&medium);
    assert!(st.contains("TRIAL_STATUS='trial'") && st.contains("TRIAL_VERSION='3'") && st.contains("TRIAL_FAILED='2'"), "{st}");
    assert!(st.contains("TRIAL_FLOOR='1'"), "{st}");
}

#[test]
fn a_downgrade_below_the_good_floor_is_refused_unless_asked_for() {
    // Issue 18 item 9: syncflash wrote a version below the floor without a word.
    let env = Env::new("downgrade");
    let (key, sec) = env.key("k");
    let medium = env.p("medium");
    for v in 1..=3 {
        env.make(&format!("s{v}"), v, 30_000 + v as usize, false, Some(&sec));
    }
    env.place_tag(&medium, "s3", "");
    let file = format!("{medium}/LiveOS/trial.state");
    Command::new(env!("CARGO_BIN_EXE_liveroot")).args(["liveinit", "trial", "create", &file]).output().unwrap();
    let s3 = env.img_sha("s3");
    env.trial(&medium, &["start", "--sha256", &s3, "--version", "3", "--tries", "2"]);
    let mg = env.p("mg-state");
    std::fs::write(&mg, format!("image_sha256={s3}\nimage_version=3\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_liveroot"))
        .args(["liveinit", "mark-good", "--state", &mg, "--file", &file, "--via-fs"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(env.status(&medium).contains("TRIAL_FLOOR='3'"), "{}", env.status(&medium));
    let before = medium_contents(&medium);
    let (code, err) = fails(&env.sync_trial(&medium, "s2", &["--pubkey-file", &key]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("version 2 is below version 3 marked good: a downgrade (--allow-downgrade writes it); nothing written"), "{err}");
    assert_eq!(medium_contents(&medium), before);
    // Below the minimum built into the initramfs: never, downgrade allowed or not.
    let st = env.p("state");
    std::fs::write(&st, "min_version=3\n").unwrap();
    let (code, err) = fails(&env.sync_trial(&medium, "s2", &["--pubkey-file", &key, "--state", &st, "--allow-downgrade"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("version 2 is below the minimum 3 built into the initramfs"), "{err}");
    // Asked for: written, on trial, and the floor lowered to it (else the boot would refuse it
    // as a rollback).
    let o = env.sync_trial(&medium, "s2", &["--pubkey-file", &key, "--allow-downgrade"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("the floor is lowered from 3 to 2"), "{}", text(&o.stdout));
    assert_eq!(medium_contents(&medium), env.expect_tags(&[("", "s2"), (".old", "s3")]));
    let st = env.status(&medium);
    assert!(st.contains("TRIAL_STATUS='trial'") && st.contains("TRIAL_VERSION='2'") && st.contains("TRIAL_FLOOR='2'"), "{st}");
}

#[test]
fn the_only_pair_left_on_trial_is_not_given_up() {
    // The medium holds v2 alone, on trial: writing v3 would begin v3's trial and end v2's
    // unfinished, leaving no image known to work. Refused, nothing written.
    let env = Env::new("onlytrial");
    let (key, sec) = env.key("k");
    let medium = env.p("medium");
    for v in 2..=3 {
        env.make(&format!("s{v}"), v, 30_000 + v as usize, false, Some(&sec));
    }
    env.place_tag(&medium, "s2", "");
    let file = format!("{medium}/LiveOS/trial.state");
    Command::new(env!("CARGO_BIN_EXE_liveroot")).args(["liveinit", "trial", "create", &file]).output().unwrap();
    env.trial(&medium, &["start", "--sha256", &env.img_sha("s2"), "--version", "2", "--tries", "2"]);
    let before = medium_contents(&medium);
    let (code, err) = fails(&env.sync_trial(&medium, "s3", &["--pubkey-file", &key]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("version 2 is on trial and the only image to keep"), "{err}");
    assert_eq!(medium_contents(&medium), before);
}

#[test]
fn a_latin1_mount_point_does_not_hide_the_read_only_medium() {
    // One mount point that is not UTF-8 anywhere in the table (a tmpfs at ".../odd\xe9") must not
    // blind syncflash to the others: the read-only medium is still seen and remounted read-write
    // (before, the whole table read as empty and the write failed with EROFS). All in a private
    // mount namespace, so that no other process on the host sees these mounts; they go with it.
    let env = Env::new("latin1-mount");
    env.version(1, 200_000);
    env.version(2, 300_000);
    let (img, sums) = (env.p("src/v2/squashfs.img"), env.p("src/v2/SHA256SUMS"));
    let script = r#"set -e
odd=$(printf '%s/odd\351' "$1")
mkdir "$odd"
mount -t tmpfs odd "$odd"
mount -t tmpfs medium "$2"
mkdir "$2/LiveOS"
cp "$1"/src/v1/* "$2/LiveOS/"
mount -o remount,ro "$2"
grep -q "$(printf '/odd\351 ')" /proc/self/mountinfo
"$3" --medium "$2" --image "$4" --manifest "$5" >&2
cat "$2/LiveOS/SHA256SUMS""#;
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh", &env.p(""), &env.p("medium"), &env.p("syncflash"), &img, &sums])
        .env_remove("LIVEROOT_SYNCFLASH_PAUSE_AT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), std::fs::read_to_string(&sums).unwrap(), "the medium does not hold v2");
}

#[test]
fn any_single_failed_syscall_of_a_rotation_leaves_a_pair_that_boots() {
    // Issue 18 item 2: from the state a cut during the renames leaves (a complete .new, a
    // primary, an .old), the old keep-new rotation renamed .new to .old manifest first, and a
    // second rename failing (strace -e inject) left SHA256SUMS.old, SHA256SUMS.minisig.new and
    // squashfs.img.new: no complete pair, select-image exit 3. Here each rename, unlink, write
    // and fsync of a syncflash run fails in turn (the real binary, real syscalls), in that
    // state and in the ordinary one; after each, the boot's own choice (select-image) finds a
    // signed pair.
    let env = Env::new("inject");
    let (key, sec) = env.key("k");
    for v in 1..=4 {
        env.make(&format!("s{v}"), v, 20_000 + v as usize, false, Some(&sec));
    }
    let classes = [
        ("rename", "rename,renameat,renameat2"),
        ("unlink", "unlink,unlinkat"),
        ("write", "write,pwrite64"),
        ("fsync", "fsync,fdatasync,syncfs"),
    ];
    let mut failed = 0;
    let layouts = [("split", vec![("s3", ".new")]), ("three", vec![("s1", ".old"), ("s2", ""), ("s3", ".new")]), ("plain", vec![("s1", ".old"), ("s2", "")])];
    for (layout, pairs) in layouts {
        for (class, calls) in classes {
            for when in 1.. {
                let medium = env.p(&format!("m-{layout}-{class}-{when}"));
                std::fs::create_dir_all(format!("{medium}/LiveOS")).unwrap();
                for (tag, sfx) in &pairs {
                    env.place_tag(&medium, tag, sfx);
                }
                if layout == "split" {
                    // A cut after old-manifest and old-sig: s2's manifest and signature under
                    // .old, its image still the primary, s3 whole under .new.
                    let l = format!("{medium}/LiveOS");
                    std::fs::copy(env.p("src/s2/SHA256SUMS"), format!("{l}/SHA256SUMS.old")).unwrap();
                    std::fs::copy(env.p("src/s2/SHA256SUMS.minisig"), format!("{l}/SHA256SUMS.minisig.old")).unwrap();
                    std::fs::copy(env.p("src/s2/squashfs.img"), format!("{l}/squashfs.img")).unwrap();
                }
                let (img, sums) = (env.p("src/s4/squashfs.img"), env.p("src/s4/SHA256SUMS"));
                let log = format!("{medium}.strace");
                let o = Command::new("strace")
                    .args(["-f", "-qq", "-o", &log, "-e", &format!("trace={calls}"), "-e"])
                    .arg(format!("inject={calls}:error=EIO:when={when}"))
                    .arg(env.dir.join("syncflash"))
                    .args(["--medium", &medium, "--image", &img, "--manifest", &sums, "--pubkey-file", &key, "--tries", "0"])
                    .output()
                    .expect("strace (make deps installs it)");
                let code = o.status.code();
                let sel = Command::new(env!("CARGO_BIN_EXE_liveroot"))
                    .args(["liveinit", "select-image", &format!("{medium}/LiveOS"), "squashfs.img", "--pubkey-file", &key])
                    .output()
                    .unwrap();
                assert!(
                    sel.status.success(),
                    "{layout}: {class} #{when} failed (syncflash exit {code:?}: {}): no pair boots: {}\n{:?}",
                    text(&o.stderr),
                    text(&sel.stderr),
                    medium_contents(&medium)
                );
                if !std::fs::read_to_string(&log).unwrap_or_default().contains("(INJECTED)") {
                    // The run did not reach a call number `when`: every one of them was tried.
                    assert!(when > 1, "{layout}: {class}: no such call in a run");
                    assert_eq!(code, Some(0), "{layout}: {class}: a run without a failure: {}", text(&o.stderr));
                    break;
                }
                failed += 1;
            }
        }
    }
    assert!(failed > 20, "only {failed} injected failures");
}

/// rd.live.tries=0 (here --tries 0) asks for untried boots: syncflash writes no trial and says so
/// (it used to read 0 as "3" from the command line, and to begin a trial of 0 tries from
/// --tries 0: a record whose first boot is already a fallback).
#[test]
fn zero_tries_writes_no_trial() {
    let env = Env::new("tries0");
    let medium = env.p("medium");
    env.version(1, 200_000);
    env.version(2, 201_000);
    env.place(&medium, 1, "");
    let f = format!("{medium}/LiveOS/trial.state");
    let o = Command::new(env!("CARGO_BIN_EXE_liveroot")).args(["liveinit", "trial", "create", &f]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let before = std::fs::read(&f).unwrap();
    let (img, sums) = (env.p("src/v2/squashfs.img"), env.p("src/v2/SHA256SUMS"));
    let o = env.run(&["--medium", &medium, "--image", &img, "--manifest", &sums, "--tries", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("the new image boots untried; no trial written"), "{}", text(&o.stdout));
    assert!(!text(&o.stderr).contains("trial"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(&f).unwrap(), before, "the trial file is untouched");
}
