//! dmsnap as a user runs it, for everything decided before device-mapper is touched: help,
//! usage errors and refusals of bad origins/overlay dirs. The dm paths themselves are proven
//! in QEMU by tests/qemu/dmsnap-check.sh (this host may have no device-mapper).

mod common;
use common::{run, run_applet, TempDir};
use std::process::Command;

fn dmsnap(args: &[&str]) -> (i32, String, String) {
    run_applet("dmsnap", args).parts()
}

/// Loop-device tests run one at a time: `losetup -f` answers are only true while nobody else
/// attaches.
static LOOPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A read-only loop device over a 1 MiB file (root: real loop devices), detached on drop.
struct Loop {
    dev: String,
}

impl Loop {
    fn new(e: &TempDir) -> Loop {
        let img = e.path_str("origin-backing.img");
        std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
        let o = run(Command::new("losetup").args(["-f", "--show", "-r", &img]));
        assert!(o.code == 0, "losetup: {}", o.stderr);
        Loop { dev: o.stdout.trim().to_owned() }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
fn help_for_applet_and_every_subcommand() {
    let (rc, out, err) = dmsnap(&["--help"]);
    assert_eq!((rc, err.as_str()), (0, ""));
    for sub in ["create", "status", "table", "list", "remove"] {
        assert!(out.contains(&format!("  {sub} ")), "top help lacks {sub}: {out}");
        let (rc, out, err) = dmsnap(&[sub, "--help"]);
        assert_eq!(rc, 0, "{sub} --help: {err}");
        assert!(out.starts_with(&format!("Usage: dmsnap {sub}")), "{sub}: {out}");
        assert!(err.is_empty());
    }
    let (_, out, _) = dmsnap(&["create", "--help"]);
    for opt in ["--origin", "--cow", "--overlay-size", "--overlay-dir", "--persistent", "--transient", "--chunk"] {
        assert!(out.contains(opt), "create --help lacks {opt}");
    }
    assert!(out.contains("PO"), "create --help should document the default store mode");
}

#[test]
fn usage_errors_exit_2() {
    let e = TempDir::new("dmsnap-usage");
    let dir = e.path_str("");
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["create"],
        &["create", "x"],
        &["create", "x", "--origin", "/dev/null"],
        &["create", "x", "--origin", "/dev/null", "--cow", "/dev/null", "--overlay-size", "1M"],
        &["create", "x", "--origin", "/dev/null", "--overlay-size", "1M"],
        &["create", "x", "--origin", "/dev/null", "--overlay-dir", &dir],
        &["create", "x", "--origin", "/dev/null", "--overlay-size", "0", "--overlay-dir", &dir],
        &["create", "x", "--origin", "/dev/null", "--overlay-size", "lots", "--overlay-dir", &dir],
        &["create", "x", "--origin", "/dev/null", "--cow", "/dev/null", "--persistent", "--transient"],
        &["create", "x", "--origin", "/dev/null", "--cow", "/dev/null", "--chunk", "12"],
        &["create", "x", "--origin", "/dev/null", "--cow", "/dev/null", "--chunk", "0"],
        &["create", "a/b", "--origin", "/dev/null", "--cow", "/dev/null"],
        &["table"],
        &["table", "a/b"],
        &["remove"],
        &["list", "extra"],
    ];
    for args in cases {
        let (rc, out, err) = dmsnap(args);
        assert_eq!(rc, 2, "{args:?}: expected usage error, got rc {rc}, stderr {err}");
        assert!(out.is_empty(), "{args:?}: stdout {out}");
        assert!(err.starts_with("dmsnap: "), "{args:?}: {err}");
        assert!(!err.contains("os error"), "{args:?}: {err}");
    }
    let (_, _, err) = dmsnap(&["create", "x", "--origin", "/dev/null", "--overlay-size", "0", "--overlay-dir", &dir]);
    assert_eq!(err, "dmsnap: --overlay-size must be greater than 0\n");
    let (_, _, err) = dmsnap(&["create", "x", "--origin", "/dev/null", "--cow", "/dev/null", "--persistent", "--transient"]);
    assert_eq!(err, "dmsnap: --persistent and --transient exclude each other\n");
    let long = "n".repeat(128);
    let (_, _, err) = dmsnap(&["create", &long, "--origin", "/dev/null", "--cow", "/dev/null"]);
    assert!(err.contains("longer than 127 bytes"), "{err}");
}

#[test]
fn refuses_missing_or_non_block_origin() {
    let e = TempDir::new("dmsnap-origin");
    let missing = e.path_str("no-such-origin");
    let (rc, out, err) = dmsnap(&["create", "t", "--origin", &missing, "--overlay-size", "1M", "--overlay-dir", &e.path_str("")]);
    assert_eq!(rc, 1);
    assert!(out.is_empty());
    assert_eq!(err, format!("dmsnap: {missing}: No such file or directory\n"));

    let file = e.path_str("origin.img");
    std::fs::write(&file, vec![0u8; 4096]).unwrap();
    let (rc, _, err) = dmsnap(&["create", "t", "--origin", &file, "--overlay-size", "1M", "--overlay-dir", &e.path_str("")]);
    assert_eq!(rc, 1);
    assert_eq!(err, format!("dmsnap: {file}: not a block device\n"));
    // Nothing was made before the refusal.
    assert!(!std::path::Path::new(&e.path_str("t.overlay")).exists());
}

#[test]
fn refuses_bad_cow_and_overlay_dir() {
    let _serial = LOOPS.lock().unwrap_or_else(|p| p.into_inner());
    let e = TempDir::new("dmsnap-cow");
    let lo = Loop::new(&e);
    let dev = lo.dev.clone();
    let file = e.path_str("cow.img");
    std::fs::write(&file, b"x").unwrap();
    let (rc, _, err) = dmsnap(&["create", "t", "--origin", &dev, "--cow", &file]);
    assert_eq!((rc, err), (1, format!("dmsnap: {file}: not a block device\n")));

    let (rc, _, err) = dmsnap(&["create", "t", "--origin", &dev, "--cow", &dev]);
    assert_eq!((rc, err.as_str()), (2, "dmsnap: --cow and --origin are the same device\n"));

    let (rc, _, err) = dmsnap(&["create", "t", "--origin", &dev, "--overlay-size", "1M", "--overlay-dir", &file]);
    assert_eq!((rc, err), (1, format!("dmsnap: {file}: not a directory\n")));

    let nodir = e.path_str("nodir");
    let (rc, _, err) = dmsnap(&["create", "t", "--origin", &dev, "--overlay-size", "1M", "--overlay-dir", &nodir]);
    assert_eq!((rc, err), (1, format!("dmsnap: {nodir}: No such file or directory\n")));
    assert!(!std::path::Path::new(&nodir).exists());
}

#[test]
fn refuses_empty_origin() {
    let _serial = LOOPS.lock().unwrap_or_else(|p| p.into_inner());
    let e = TempDir::new("dmsnap-empty");
    // An unbound loop device is a block device of 0 sectors.
    let free = run(Command::new("losetup").arg("-f")).stdout.trim().to_owned();
    assert!(free.starts_with("/dev/loop"), "losetup -f said {free:?}");
    let (rc, _, err) = dmsnap(&["create", "t", "--origin", &free, "--overlay-size", "1M", "--overlay-dir", &e.path_str("")]);
    assert_eq!((rc, err), (1, format!("dmsnap: {free}: origin is empty (0 sectors)\n")));
}

#[test]
fn multicall_name_works_too() {
    let o = run(Command::new(env!("CARGO_BIN_EXE_liveroot")).args(["dmsnap", "table", "--help"]));
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("Usage: dmsnap table"));
}
