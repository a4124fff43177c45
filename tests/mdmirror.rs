//! mdmirror on the host: help, usage errors (exit 2) and the refusals that happen before md is
//! touched (exit 1, nothing created). The md paths themselves need a kernel with md and run in
//! QEMU: tests/qemu/mdmirror-check.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp dir with a `mdmirror` symlink to the binary under test.
struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(tag: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("mdmirror-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_liveroot"), dir.join("mdmirror")).unwrap();
        Env { dir }
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(self.dir.join("mdmirror")).args(args).output().unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code and stderr; stdout must be empty on failure.
fn fails(o: &Output) -> (i32, String) {
    assert!(o.stdout.is_empty(), "stdout on failure: {}", text(&o.stdout));
    (o.status.code().unwrap(), text(&o.stderr))
}

/// An md number no test machine uses, and which these tests must never create.
const MD: &str = "/dev/md213";

fn assert_untouched() {
    assert!(!Path::new(MD).exists(), "{MD} was created");
    assert!(!Path::new("/sys/block/md213").exists(), "md213 was created");
}

#[test]
fn help_everywhere() {
    let env = Env::new("help");
    let o = env.run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    for cmd in ["build", "add", "wait", "remove", "grow", "detail", "stop"] {
        assert!(out.contains(cmd), "top-level help lacks {cmd}: {out}");
        let o = env.run(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{cmd} --help");
        assert!(text(&o.stdout).starts_with(&format!("Usage: mdmirror {cmd}")), "{cmd}: {}", text(&o.stdout));
        assert!(o.stderr.is_empty());
    }
    assert!(text(&env.run(&["grow", "--help"]).stdout).contains("--raid-devices"));
    assert!(text(&env.run(&["wait", "--help"]).stdout).contains("--progress"));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new("usage");
    let cases: &[(&[&str], &str)] = &[
        (&[], "subcommand"),
        (&["frobnicate"], "Unrecognized"),
        (&["build", MD], "no member devices"),
        (&["build", MD, "missing", "missing"], "at least one member must be present"),
        (&["build", "/dev/sda", "missing", "/dev/loop0"], "'/dev/sda' is not an md device"),
        (&["detail", "md"], "not an md device"),
        (&["detail", "/dev/md/7"], "not an md device"),
        (&["add", MD], "Required positional"),
        (&["remove", MD, "a", "b"], "Unrecognized"),
        (&["grow", MD], "nothing to do"),
        (&["grow", MD, "--size", "1G"], "only 'max'"),
        (&["grow", MD, "--raid-devices", "0"], "at least 1"),
        (&["grow", MD, "--raid-devices", "two"], "raid-devices"),
        (&["wait", MD, "--bogus"], "Unrecognized"),
    ];
    for (args, want) in cases {
        let (code, err) = fails(&env.run(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("mdmirror: "), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
        assert!(!err.contains("os error"), "{err}");
    }
    assert_untouched();
}

#[test]
fn refusals_before_md_is_touched() {
    let env = Env::new("refuse");
    let file = env.dir.join("plain.img");
    std::fs::write(&file, vec![0u8; 4096]).unwrap();
    let f = file.to_str().unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["build", MD, "/nonexistent/dev", "missing"], "mdmirror: /nonexistent/dev: No such file or directory\n".into()),
        (vec!["build", MD, f, "missing"], format!("mdmirror: {f}: not a block device\n")),
        (vec!["detail", MD], format!("mdmirror: {MD}: no such array\n")),
        (vec!["add", "md213", "/dev/null"], format!("mdmirror: {MD}: no such array\n")),
        (vec!["remove", MD, "/dev/null"], format!("mdmirror: {MD}: no such array\n")),
        (vec!["wait", MD, "--progress"], format!("mdmirror: {MD}: no such array\n")),
        (vec!["grow", MD, "--size", "max"], format!("mdmirror: {MD}: no such array\n")),
        (vec!["stop", MD], format!("mdmirror: {MD}: no such array\n")),
    ];
    for (args, want) in cases {
        let (code, err) = fails(&env.run(&args));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert_eq!(err, want, "{args:?}");
    }
    assert_untouched();
}

/// A loop device over a small file, detached on drop (util-linux losetup).
struct Loop(String);

impl Loop {
    fn new(file: &Path) -> Loop {
        std::fs::write(file, vec![0u8; 1 << 20]).unwrap();
        let o = Command::new("losetup").args(["-f", "--show"]).arg(file).output().expect("losetup");
        assert!(o.status.success(), "losetup: {}", text(&o.stderr));
        Loop(text(&o.stdout).trim().to_owned())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn refuses_busy_or_repeated_members() {
    assert!(nix::unistd::Uid::effective().is_root(), "this test needs root (loop devices)");
    let env = Env::new("busy");
    let lo = Loop::new(&env.dir.join("member.img"));
    let dev = lo.0.as_str();

    let (code, err) = fails(&env.run(&["build", MD, dev, dev]));
    assert_eq!((code, err), (1, format!("mdmirror: {dev}: given twice\n")));

    // Hold the device exclusively, as a mount or another array would.
    use std::os::unix::fs::OpenOptionsExt;
    let held = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(dev).unwrap();
    let (code, err) = fails(&env.run(&["build", MD, dev, "missing"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&format!("mdmirror: {dev}: in use")), "{err}");
    drop(held);
    assert_untouched();
}
