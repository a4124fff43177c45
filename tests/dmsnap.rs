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
    for sub in ["create", "verity", "status", "table", "list", "remove"] {
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

/// `dmsnap verity` refuses a bad command line (exit 2) and a superblock that does not fit the
/// data (exit 3) before it touches device-mapper or attaches a loop.
#[test]
fn verity_refuses_before_touching_the_kernel() {
    let e = TempDir::new("dmsnap-verity");
    let img = e.path_str("v.img");
    std::fs::write(&img, (0..200 * 4096u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect::<Vec<u8>>()).unwrap();
    let o = run_applet("imgcheck", &["--verity-format", &img]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (tree, rh) = (format!("{img}.verity"), format!("{img}.roothash"));
    let root = std::fs::read_to_string(&rh).unwrap();
    for bad in [
        &["verity", "v", "--data", &img, "--hash", &tree][..],
        &["verity", "v", "--data", &img, "--hash", &tree, "--roothash", &root, "--roothash-file", &rh],
        &["verity", "v", "--data", &img, "--hash", &tree, "--roothash", "xyz"],
        &["verity", "v", "--data", &img, "--hash", &tree, "--roothash", &root, "--on-corruption", "ignore"],
        &["verity", "a/b", "--data", &img, "--hash", &tree, "--roothash", &root],
        &["verity", "v", "--hash", &tree, "--roothash", &root],
    ] {
        let (rc, out, err) = dmsnap(bad);
        assert_eq!(rc, 2, "{bad:?}: {err}");
        assert!(out.is_empty() && err.starts_with("dmsnap: "), "{bad:?}: {err}");
    }
    let refuse = |args: &[&str], want: &str| {
        let (rc, _, err) = dmsnap(args);
        assert_eq!(rc, 3, "{args:?}: {err}");
        assert!(err.starts_with("dmsnap: ") && err.contains(want), "{args:?}: {err} lacks {want}");
    };
    // Another root hash: the top block of the tree does not hash to it.
    let other = format!("{}{}", if root.starts_with('0') { "1" } else { "0" }, &root[1..]);
    refuse(&["verity", "v", "--data", &img, "--hash", &tree, "--roothash", &other], "hash tree does not match the root hash");
    refuse(&["verity", "v", "--data", &img, "--hash", &tree, "--roothash", &root[..62]], "root hash is 31 bytes");
    // The image as the hash file: no superblock.
    refuse(&["verity", "v", "--data", &img, "--hash", &img, "--roothash-file", &rh], "no \"verity\" signature");
    // A grown image.
    let grown = e.path_str("grown.img");
    let mut g = std::fs::read(&img).unwrap();
    g.extend_from_slice(&[0; 512]);
    std::fs::write(&grown, g).unwrap();
    refuse(&["verity", "v", "--data", &grown, "--hash", &tree, "--roothash-file", &rh], "the rest would be unverified");
    // A salt size over 256 in the superblock.
    let bad_sb = e.path_str("bad.verity");
    let mut t = std::fs::read(&tree).unwrap();
    t[80..82].copy_from_slice(&300u16.to_le_bytes());
    std::fs::write(&bad_sb, t).unwrap();
    refuse(&["verity", "v", "--data", &img, "--hash", &bad_sb, "--roothash-file", &rh], "salt size 300");
    let (rc, _, err) = dmsnap(&["verity", "v", "--data", &e.path_str("missing"), "--hash", &tree, "--roothash-file", &rh]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.ends_with("/missing: No such file or directory\n"), "{err}");
}
