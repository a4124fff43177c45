//! migrate on the host: help, usage errors (exit 2) and the refusals that come before anything
//! is opened for writing (exit 1, one line on stderr, nothing on stdout). The migration itself
//! needs a live system and runs in QEMU: tests/qemu/scenarios/migrate*.sh.

mod common;
use common::{fails, run, run_applet_no_tty, Out, TempDir};
use std::process::Command;

/// migrate with stdin from /dev/null: it must never find a terminal to prompt on.
fn migrate(args: &[&str]) -> Out {
    run_applet_no_tty("migrate", args)
}

#[test]
fn help() {
    let o = migrate(&["--help"]);
    assert_eq!(o.code, 0);
    let out = &o.stdout;
    assert!(out.starts_with("Usage: migrate"), "{out}");
    for opt in ["--yes", "--md", "--no-grow", "--keep-live", "--speed-max", "TARGET", "overwritten"] {
        assert!(out.contains(opt), "help lacks {opt}: {out}");
    }
    assert!(o.stderr.is_empty());
}

#[test]
fn usage_errors() {
    for args in [&[][..], &["--yes"], &["/dev/vdb", "/dev/vdc"], &["--bogus", "/dev/vdb"], &["--speed-max", "fast", "/dev/vdb"]] {
        let (code, err) = fails(&migrate(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("migrate: ") && err.contains("Try 'migrate --help'"), "{args:?}: {err}");
    }
    let (code, err) = fails(&migrate(&["--speed-max", "0", "/dev/vdb"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--speed-max must be at least 1"), "{err}");
}

#[test]
fn refuses_what_is_not_a_block_device() {
    let env = TempDir::new("migrate-notblock");
    let missing = env.join("no-such-disk");
    let (code, err) = fails(&migrate(&["--yes", missing.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err, format!("migrate: {}: No such file or directory\n", missing.display()));

    let file = env.join("disk.img");
    std::fs::write(&file, vec![0u8; 4096]).unwrap();
    let (code, err) = fails(&migrate(&["--yes", file.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err, format!("migrate: {}: not a block device\n", file.display()));
    assert_eq!(std::fs::read(&file).unwrap(), vec![0u8; 4096], "the file was written to");

    let (code, err) = fails(&migrate(&["--yes", env.path().to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    assert!(err.ends_with(": not a block device\n"), "{err}");
}

/// A block device node (never opened: the state check comes first) on a host that was not
/// booted live: refused as "not a live system".
#[test]
fn refuses_outside_a_live_system() {
    assert!(
        !std::path::Path::new("/run/live/state").exists(),
        "this host has /run/live/state (a liveroot live system?): the test needs a host without it"
    );
    let env = TempDir::new("migrate-notlive");
    let node = env.join("disk");
    let node_s = node.to_str().unwrap();
    let st = run(Command::new("mknod").args([node_s, "b", "7", "250"]));
    assert!(st.code == 0, "mknod (tests run as root)");
    for args in [&["--yes", node_s][..], &["--yes", "--md", "/dev/md7", node_s], &[node_s]] {
        let (code, err) = fails(&migrate(args));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.starts_with("migrate: /run/live/state: ") && err.contains("not a live system"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
