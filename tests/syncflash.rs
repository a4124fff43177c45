//! syncflash on the host: help, usage, refusals, and the whole write/verify/rotate protocol on a
//! directory standing for the medium (plain directory, a small tmpfs for "no room", a FAT32 loop
//! mount read-only that syncflash remounts, and one forced read-only). The boot side and power
//! cuts run in QEMU: tests/qemu/scenarios/syncflash-*.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    mounts: Vec<PathBuf>,
    loops: Vec<String>,
}

impl Env {
    fn new(tag: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("syncflash-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("medium/LiveOS")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_liveroot"), dir.join("syncflash")).unwrap();
        Env { dir, mounts: Vec::new(), loops: Vec::new() }
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(self.dir.join("syncflash"));
        c.args(args).env_remove("LIVEROOT_SYNCFLASH_PAUSE_AT");
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
    fn sync(&self, medium: &str, v: u8) -> Output {
        let (img, sums) = (self.p(&format!("src/v{v}/squashfs.img")), self.p(&format!("src/v{v}/SHA256SUMS")));
        self.run(&["--medium", medium, "--image", &img, "--manifest", &sums])
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
fn listing(medium: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("{medium}/LiveOS"))
        .unwrap()
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
    for opt in ["--medium", "--image", "--manifest", "--sig", "--dry-run", "--progress", ".old"] {
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
    assert!(err.contains("does not match") && err.contains("nothing written"), "{err}");
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
    // The only complete pair (.new, v2) was the keeper: it is now .old.
    assert_eq!(listing(&medium), expect(&env, &[("", 3), (".old", 2)]));
}

#[test]
fn from_the_state_and_the_step_hook() {
    let env = Env::new("state");
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
    let o = env.run_env(&["--state", &state], &[("LIVEROOT_SYNCFLASH_PAUSE_AT", "none")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&medium), expect(&env, &[("", 2), (".old", 1)]));
    let steps: Vec<String> = text(&o.stderr).lines().filter_map(|l| l.strip_prefix("syncflash-step ").map(str::to_owned)).collect();
    assert_eq!(
        steps,
        [
            "preflight", "remount-rw", "delete", "write-image", "write-half", "write-manifest", "verify", "old-manifest",
            "old-sig", "old-image", "new-image", "new-sig", "new-manifest"
        ]
    );
    assert!(std::fs::read_to_string(&state).unwrap().contains("medium_pair=primary\n"));
    // Without the variable, no step lines.
    let o = env.run(&["--state", &state]);
    assert_eq!(o.status.code(), Some(5));
    assert!(!text(&o.stderr).contains("syncflash-step"));
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
    let mnt = env.dir.join("fat");
    let m = mnt.display().to_string();
    env.mount(&["-t", fstype, &dev], &mnt);
    std::fs::create_dir_all(format!("{m}/LiveOS")).unwrap();
    env.place(&m, 1, "");
    assert!(Command::new("mount").args(["-o", "remount,ro", &m]).status().unwrap().success());

    let o = env.sync(&m, 2);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(listing(&m), expect(&env, &[("", 2), (".old", 1)]));
    let ro = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(ro.lines().any(|l| l.split(' ').nth(1) == Some(m.as_str()) && l.split(' ').nth(3).unwrap().starts_with("ro")), "not read-only again");

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
