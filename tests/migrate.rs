//! migrate on the host: help, usage errors (exit 2) and the refusals that come before anything
//! is opened for writing (exit 1, one line on stderr, nothing on stdout). The migration itself
//! needs a live system and runs in QEMU: tests/qemu/scenarios/migrate*.sh.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A temp dir with a `migrate` symlink to the binary under test.
struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(tag: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("migrate-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_liveroot"), dir.join("migrate")).unwrap();
        Env { dir }
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(self.dir.join("migrate")).args(args).stdin(std::process::Stdio::null()).output().unwrap()
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

/// Exit code and stderr of a failed run; stdout must be empty and stderr one line.
fn fails(o: &Output) -> (i32, String) {
    assert!(o.stdout.is_empty(), "stdout on failure: {}", text(&o.stdout));
    (o.status.code().unwrap(), text(&o.stderr))
}

#[test]
fn help() {
    let env = Env::new("help");
    let o = env.run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    assert!(out.starts_with("Usage: migrate"), "{out}");
    for opt in ["--yes", "--md", "--no-grow", "--keep-live", "--speed-max", "TARGET", "overwritten"] {
        assert!(out.contains(opt), "help lacks {opt}: {out}");
    }
    assert!(o.stderr.is_empty());
}

#[test]
fn usage_errors() {
    let env = Env::new("usage");
    for args in [&[][..], &["--yes"], &["/dev/vdb", "/dev/vdc"], &["--bogus", "/dev/vdb"], &["--speed-max", "fast", "/dev/vdb"]] {
        let (code, err) = fails(&env.run(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("migrate: ") && err.contains("Try 'migrate --help'"), "{args:?}: {err}");
    }
    let (code, err) = fails(&env.run(&["--speed-max", "0", "/dev/vdb"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--speed-max must be at least 1"), "{err}");
}

#[test]
fn refuses_what_is_not_a_block_device() {
    let env = Env::new("notblock");
    let missing = env.dir.join("no-such-disk");
    let (code, err) = fails(&env.run(&["--yes", missing.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err, format!("migrate: {}: No such file or directory\n", missing.display()));

    let file = env.dir.join("disk.img");
    std::fs::write(&file, vec![0u8; 4096]).unwrap();
    let (code, err) = fails(&env.run(&["--yes", file.to_str().unwrap()]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err, format!("migrate: {}: not a block device\n", file.display()));
    assert_eq!(std::fs::read(&file).unwrap(), vec![0u8; 4096], "the file was written to");

    let (code, err) = fails(&env.run(&["--yes", env.dir.to_str().unwrap()]));
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
    let env = Env::new("notlive");
    let node = env.dir.join("disk");
    let node_s = node.to_str().unwrap();
    let st = Command::new("mknod").args([node_s, "b", "7", "250"]).status().unwrap();
    assert!(st.success(), "mknod (tests run as root)");
    for args in [&["--yes", node_s][..], &["--yes", "--md", "/dev/md7", node_s], &[node_s]] {
        let (code, err) = fails(&env.run(args));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.starts_with("migrate: /run/live/state: ") && err.contains("not a live system"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
