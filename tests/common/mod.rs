//! Helpers shared by the integration tests: run the real binary under an applet's name,
//! scratch directories that clean up after themselves.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A `Command` for the built binary, invoked through a symlink named `name` (as the
/// initramfs links do), so argv[0] dispatch is what is tested.
pub fn applet(name: &str) -> Command {
    let mut c = Command::new(applet_path(name));
    c.env("LC_ALL", "C");
    c
}

/// The path of the symlink `applet` runs, for callers that hand it to a shell.
pub fn applet_path(name: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_liveroot"));
    let dir = std::env::temp_dir().join(format!("liveroot-links-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let link = dir.join(name);
    if std::fs::read_link(&link).ok().as_deref() != Some(bin) {
        // Tests run in parallel threads: make the link under a private name, then rename it
        // into place atomically.
        let tmp = dir.join(format!(".{name}.{}", unique()));
        std::os::unix::fs::symlink(bin, &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    }
    link
}

/// Exit code, stdout and stderr of a finished command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Out {
    let o = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl Out {
    /// The three parts, for tests that destructure them.
    pub fn parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }
}

/// Exit code and stderr of a failed run; a failure must print nothing on stdout.
pub fn fails(o: &Out) -> (i32, String) {
    assert!(o.stdout.is_empty(), "stdout on failure: {}", o.stdout);
    (o.code, o.stderr.clone())
}

/// `applet(name)` with `args`, run to completion.
pub fn run_applet(name: &str, args: &[&str]) -> Out {
    run(applet(name).args(args))
}

/// `run_applet` with stdin explicitly /dev/null, for applets that must see no terminal
/// (so that they never prompt).
pub fn run_applet_no_tty(name: &str, args: &[&str]) -> Out {
    run(applet(name).args(args).stdin(Stdio::null()))
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A fresh directory under the system temp dir, removed (recursively) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("liveroot-{tag}-{}", unique()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// `join(name)` as a string, for argument lists.
    pub fn path_str(&self, name: &str) -> String {
        self.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes (xorshift32 from `state`, which must not be 0): test images whose blocks
/// all differ, the same on every run.
pub fn xorshift_bytes(len: usize, mut state: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// The machine-wide test-hook file (src/testhook.rs): syncflash and the raw trial writes read
/// it, so while one test has it written no other may run them.
pub const HOOK_FILE: &str = "/run/liveroot/test-hooks";

/// A hold on HOOK_FILE across threads and processes (flock on a lock file beside it): shared
/// by tests that run syncflash with no hook, exclusive by a test that writes hooks; the
/// exclusive hold removes the file when dropped, panics included.
pub struct HookLock {
    _lock: Option<nix::fcntl::Flock<std::fs::File>>,
    exclusive: bool,
}

impl HookLock {
    fn take(exclusive: bool) -> HookLock {
        use nix::fcntl::{Flock, FlockArg};
        let file = std::fs::create_dir_all("/run/liveroot").and_then(|_| std::fs::File::create("/run/liveroot/test-hooks.lock"));
        let f = match file {
            Ok(f) => f,
            // Not root: no one this test trusts can have written hooks (the binary ignores a
            // file not owned by root), and this test cannot.
            Err(_) if !exclusive => return HookLock { _lock: None, exclusive },
            Err(e) => panic!("/run/liveroot/test-hooks.lock: {e} (hook tests need root)"),
        };
        let how = if exclusive { FlockArg::LockExclusive } else { FlockArg::LockShared };
        let lock = Flock::lock(f, how).map_err(|(_, e)| e).unwrap();
        let h = HookLock { _lock: Some(lock), exclusive };
        // A file left by a test killed before its clean-up would pause every run.
        if exclusive {
            h.clear();
        }
        h
    }
    /// No hook file while held.
    pub fn shared() -> HookLock {
        Self::take(false)
    }
    /// The hook file is this test's to write (`set`) while held.
    pub fn exclusive() -> HookLock {
        Self::take(true)
    }
    /// Write HOOK_FILE with `text` and permission bits `mode`.
    pub fn set(&self, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        assert!(self.exclusive, "hooks written under a shared lock");
        std::fs::write(HOOK_FILE, text).unwrap();
        std::fs::set_permissions(HOOK_FILE, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    /// Remove HOOK_FILE.
    pub fn clear(&self) {
        assert!(self.exclusive, "hooks removed under a shared lock");
        match std::fs::remove_file(HOOK_FILE) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{HOOK_FILE}: {e}"),
            _ => {}
        }
    }
}

impl Drop for HookLock {
    fn drop(&mut self) {
        if self.exclusive {
            let _ = std::fs::remove_file(HOOK_FILE);
        }
    }
}
