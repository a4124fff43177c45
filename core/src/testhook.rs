//! Test hooks: the pause points the power-cut tests use, compiled into the shipped binary.
//!
//! A hook comes from a root-owned file only, never from the environment: the kernel passes
//! unknown `NAME=value` command-line words into /init's environment, so a variable would let a
//! boot-loader word stall a boot. The file is the first of [`FILES`] that exists:
//! `/run/liveroot/test-hooks` (on a running system /run is a root-only tmpfs) or
//! `/etc/liveroot/test-hooks` (for the boot: /init mounts a fresh /run before anything runs, so
//! the tests put this one in an extra initramfs archive; whoever can write the initramfs
//! controls /init already). It must be a regular file owned by root and not writable by group or
//! others, else it is ignored with a warning. Its lines are `KIND=STEP[,STEP]`, e.g.
//! `syncflash=write-half` or `trial=write,written`; blank lines and `#` comments are skipped.
//! Read once per process; without the file nothing is read or printed.
//!
//! A hook only announces steps and pauses: it never makes a step skip or fail.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::OnceLock;
use std::time::Duration;

/// Where hooks are read from, the first that exists.
pub const FILES: [&str; 2] = ["/run/liveroot/test-hooks", "/etc/liveroot/test-hooks"];

/// A step of `kind` (`syncflash`, `trial`). When the hook file has a `KIND=` line: say
/// `KIND-step STEP` on stderr; at a step that line lists, also on /dev/console if `console`
/// (at boot /init keeps stderr in a file), then sleep: an hour at the last step listed (the
/// power-cut tests kill there), 10 s at an earlier one (the host copies the flash).
pub fn pause_point(kind: &str, step: &str, console: bool) {
    let Some(at) = hooks().and_then(|text| steps(text, kind)) else { return };
    let line = format!("{kind}-step {step}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let Some(pos) = at.iter().position(|s| *s == step) else { return };
    if console {
        if let Ok(mut c) = std::fs::OpenOptions::new().write(true).open("/dev/console") {
            let _ = c.write_all(line.as_bytes());
        }
    }
    let last = pos.saturating_add(1) == at.len();
    std::thread::sleep(Duration::from_secs(if last { 3600 } else { 10 }));
}

/// The steps a `KIND=STEP[,STEP]` line of `text` lists; None when no line is about `kind`.
fn steps<'a>(text: &'a str, kind: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(kind)?.strip_prefix('='))
        .map(|v| v.split(',').map(str::trim).collect())
}

/// The hook file's text, read once; None without a usable file.
fn hooks() -> Option<&'static str> {
    static TEXT: OnceLock<Option<String>> = OnceLock::new();
    TEXT.get_or_init(|| {
        for path in FILES {
            match read(path) {
                Ok(Some(text)) => return Some(text),
                Ok(None) => continue,
                Err(why) => {
                    let msg = format!("liveroot: warning: {path}: {why}: test hooks ignored\n");
                    let _ = std::io::stderr().write_all(msg.as_bytes());
                    return None;
                }
            }
        }
        None
    })
    .as_deref()
}

/// `path`'s text if it exists and may be trusted; Ok(None) when it does not exist.
fn read(path: &str) -> Result<Option<String>, String> {
    // O_NOFOLLOW: a symbolic link is refused (ELOOP), not followed to a file someone else owns.
    // O_NONBLOCK: a FIFO there cannot hang the open (the type is checked below).
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("a symbolic link".into()),
        Err(e) => return Err(crate::error::io_reason(&e)),
    };
    // fstat of what was opened, so the file checked is the file read.
    let m = file.metadata().map_err(|e| crate::error::io_reason(&e))?;
    check(m.is_file(), m.uid(), m.mode())?;
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).map_err(|e| crate::error::io_reason(&e))?;
    Ok(Some(text))
}

/// A hook file must be a regular file, owned by root, not writable by group or others.
fn check(regular: bool, uid: u32, mode: u32) -> Result<(), String> {
    if !regular {
        return Err("not a regular file".into());
    }
    if uid != 0 {
        return Err(format!("owned by uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        return Err(format!("mode {:03o}: writable by group or others", mode & 0o777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_steps_of_one_kind() {
        let text = "# power cut\n\nsyncflash=write-half\n trial = x\ntrial=write, written\n";
        assert_eq!(steps(text, "syncflash"), Some(vec!["write-half"]));
        assert_eq!(steps(text, "trial"), Some(vec!["write", "written"]));
        assert_eq!(steps(text, "sync"), None, "a prefix of a kind is not the kind");
        assert_eq!(steps("syncflash=\n", "syncflash"), Some(vec![""]), "announce only");
        assert_eq!(steps("", "trial"), None);
    }

    #[test]
    fn only_a_root_owned_file_not_writable_by_others() {
        assert_eq!(check(true, 0, 0o100644), Ok(()));
        assert_eq!(check(true, 0, 0o100600), Ok(()));
        assert_eq!(check(true, 0, 0o100664), Err("mode 664: writable by group or others".into()));
        assert_eq!(check(true, 0, 0o100646), Err("mode 646: writable by group or others".into()));
        assert_eq!(check(true, 1000, 0o100644), Err("owned by uid 1000, not root".into()));
        assert_eq!(check(false, 0, 0o40755), Err("not a regular file".into()));
    }
}
