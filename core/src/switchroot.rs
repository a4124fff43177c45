//! switch_root for the live /init: move /dev /proc /sys /run into the new root, delete the
//! initramfs, chroot, exec init. PID 1 must never exit: on failure the rescue shell runs.

use crate::error::{Context, Error, Result};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsutil::is_mountpoint;

/// Resolve `path` as if `root` were `/`: absolute symlinks restart at `root`, `..` stops there.
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    // Names and `..`, last first (a stack); components() already drops `.` and empty names.
    let names = |p: &Path| -> Vec<OsString> {
        p.components()
            .rev()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect()
    };
    let mut todo = names(path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let here = done.iter().fold(root.to_path_buf(), |p, c| p.join(c)).join(&c);
        let md = std::fs::symlink_metadata(&here).ok()?;
        if md.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(&here).ok()?;
            if target.has_root() {
                done.clear();
            }
            todo.extend(names(&target));
        } else {
            done.push(c);
        }
    }
    Some(done.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Delete everything below `dir` that is on device `dev`; other filesystems (the new root, the
/// moved mounts) are not entered. Best effort: the initramfs is going away anyway.
fn delete_tree(dir: &Path, dev: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.dev() != dev {
            continue;
        }
        if md.is_dir() {
            delete_tree(&p, dev);
            let _ = std::fs::remove_dir(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Make `newroot` (a mount point) the root and exec `init` (default /sbin/init, then its
/// arguments) as PID 1.
pub fn switch_root(newroot: &Path, init: &[OsString]) -> Result<std::convert::Infallible> {
    use nix::mount::{mount, MsFlags};
    use std::ffi::CString;
    let newroot = std::fs::canonicalize(newroot).ctx(newroot.display())?;
    let nr = newroot.display().to_string();
    if newroot == Path::new("/") || !is_mountpoint(&newroot) {
        return Err(Error::new(&nr, "not a mount point"));
    }
    let argv: Vec<OsString> =
        if init.is_empty() { vec![OsString::from("/sbin/init")] } else { init.to_vec() };
    let init_path = Path::new(argv.first().map_or("/sbin/init".as_ref(), OsString::as_os_str));
    let init = init_path.display().to_string();
    if !init_path.has_root() {
        return Err(Error::usage(format!("switch-root: {init}: init must be an absolute path")));
    }
    let shown = format!("{nr}{init}");
    let real = resolve_in_root(&newroot, init_path).ok_or_else(|| Error::new(&shown, "No such file or directory"))?;
    let md = std::fs::metadata(&real).ctx(&shown)?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(Error::new(&shown, "not an executable file"));
    }
    if nix::unistd::getpid().as_raw() != 1 {
        return Err(Error::new(&nr, "refusing to switch root: not running as PID 1 (it deletes the initramfs)"));
    }
    let fs = nix::sys::statfs::statfs("/").ctx("/")?;
    let magic = fs.filesystem_type().0 as i64;
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        return Err(Error::new("/", "refusing to switch root: / is not an initramfs (ramfs or tmpfs)"));
    }
    for m in ["/dev", "/proc", "/sys", "/run"] {
        let target = newroot.join(&m[1..]);
        if is_mountpoint(Path::new(m)) && target.is_dir() && !is_mountpoint(&target) {
            mount(Some(m), &target, None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx(format!("move {m}"))?;
        }
    }
    nix::unistd::chdir(&newroot).ctx(&nr)?;
    let rootdev = std::fs::symlink_metadata("/").ctx("/")?.dev();
    delete_tree(Path::new("/"), rootdev);
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx(format!("move {nr} to /"))?;
    nix::unistd::chroot(".").ctx(&nr)?;
    nix::unistd::chdir("/").ctx("/")?;
    let argv: Vec<CString> = argv
        .into_iter()
        .map(|s| CString::new(s.into_vec()).map_err(|_| Error::usage("switch-root: argument with a NUL byte")))
        .collect::<Result<_>>()?;
    let Err(e) = nix::unistd::execv(&argv[0], &argv);
    Err(Error::sys(init, e))
}

/// PID 1 must never exit (the kernel panics): on failure say why on the console and in the
/// kernel log, then keep a shell running.
pub fn switch_root_or_rescue(newroot: &Path, init: &[OsString]) -> Result<()> {
    let err = match switch_root(newroot, init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if nix::unistd::getpid().as_raw() != 1 {
        return Err(err);
    }
    let line = format!("switch-root: {err}");
    let _ = std::io::stderr().write_all(format!("liveroot: {line}\n").as_bytes());
    crate::fsutil::kmsg(3, &line);
    loop {
        let _ = std::process::Command::new("/bin/sh").status();
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_symlinks_inside_root() {
        let root = std::env::temp_dir().join(format!("liveinit-resolve-{}", std::process::id()));
        std::fs::create_dir_all(root.join("lib/systemd")).unwrap();
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::write(root.join("lib/systemd/systemd"), "").unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", root.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("../lib/systemd/../systemd/systemd", root.join("sbin/rel")).unwrap();
        std::os::unix::fs::symlink("/../../../sbin/loop", root.join("sbin/loop")).unwrap();
        let want = root.join("lib/systemd/systemd");
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/init")).unwrap(), want);
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/rel")).unwrap(), want);
        assert_eq!(resolve_in_root(&root, Path::new("/../../sbin/./init")).unwrap(), want);
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/loop")), None);
        assert_eq!(resolve_in_root(&root, Path::new("/sbin/missing")), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
