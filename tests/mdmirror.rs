//! mdmirror on the host: help, usage errors (exit 2) and the refusals that happen before md is
//! touched (exit 1, nothing created). The md paths themselves need a kernel with md and run in
//! QEMU: tests/qemu/mdmirror-check.sh.

mod common;
use common::{fails, run, run_applet, Out, TempDir};
use std::path::Path;
use std::process::Command;

fn mdmirror(args: &[&str]) -> Out {
    run_applet("mdmirror", args)
}

/// An md number no test machine uses, and which these tests must never create.
const MD: &str = "/dev/md213";

fn assert_untouched() {
    assert!(!Path::new(MD).exists(), "{MD} was created");
    assert!(!Path::new("/sys/block/md213").exists(), "md213 was created");
}

#[test]
fn help_everywhere() {
    let o = mdmirror(&["--help"]);
    assert_eq!(o.code, 0);
    let out = o.stdout;
    for cmd in ["build", "add", "wait", "remove", "grow", "detail", "stop"] {
        assert!(out.contains(cmd), "top-level help lacks {cmd}: {out}");
        let o = mdmirror(&[cmd, "--help"]);
        assert_eq!(o.code, 0, "{cmd} --help");
        assert!(o.stdout.starts_with(&format!("Usage: mdmirror {cmd}")), "{cmd}: {}", o.stdout);
        assert!(o.stderr.is_empty());
    }
    assert!(mdmirror(&["grow", "--help"]).stdout.contains("--raid-devices"));
    assert!(mdmirror(&["wait", "--help"]).stdout.contains("--progress"));
}

#[test]
fn usage_errors_exit_2() {
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
        let (code, err) = fails(&mdmirror(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("mdmirror: "), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err}");
        assert!(!err.contains("os error"), "{err}");
    }
    assert_untouched();
}

#[test]
fn refusals_before_md_is_touched() {
    let env = TempDir::new("mdmirror-refuse");
    let file = env.join("plain.img");
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
        let (code, err) = fails(&mdmirror(&args));
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
        let o = run(Command::new("losetup").args(["-f", "--show"]).arg(file));
        assert!(o.code == 0, "losetup: {}", o.stderr);
        Loop(o.stdout.trim().to_owned())
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
    let env = TempDir::new("mdmirror-busy");
    let lo = Loop::new(&env.join("member.img"));
    let dev = lo.0.as_str();

    let (code, err) = fails(&mdmirror(&["build", MD, dev, dev]));
    assert_eq!((code, err), (1, format!("mdmirror: {dev}: given twice\n")));

    // Hold the device exclusively, as a mount or another array would.
    use std::os::unix::fs::OpenOptionsExt;
    let held = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(dev).unwrap();
    let (code, err) = fails(&mdmirror(&["build", MD, dev, "missing"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&format!("mdmirror: {dev}: in use")), "{err}");
    drop(held);
    assert_untouched();
}
