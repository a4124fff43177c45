//! dist/kernel-hook, the script migrate installs so that the installed disk follows its kernel
//! packages, run as Debian runs it, in a private mount namespace: /boot and /etc/liveroot of the
//! namespace are directories of the test, the boot partition a directory that the `mount` the
//! hook calls binds (this host kernel has no vfat; tests/qemu/scenarios/debian-install.sh runs
//! it on a real FAT in a real Debian). Root only (unshare -m, mount --bind), as CI runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

struct Installed {
    dir: common::TempDir,
}

const SYS: &str = "# Written by liveroot.\nSERIAL 0 115200\nDEFAULT liveroot\nLABEL liveroot\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n  APPEND root=UUID=abc rw console=ttyS0,115200\n";
const SDB: &str = "# Written by liveroot.\r\ntitle liveroot (installed)\r\nlinux /boot/vmlinuz\r\ninitrd /boot/initrd.img\r\noptions root=UUID=abc rw\r\n";

impl Installed {
    /// An installed box as migrate leaves it: the boot partition with liveroot's kernel and
    /// initramfs and both entries; /boot of the root with the kernels named.
    fn new(tag: &str, kernels: &[&str]) -> Installed {
        let b = Installed { dir: common::TempDir::new(tag) };
        for d in ["boot", "etc", "shim", "part/boot/syslinux", "part/loader/entries"] {
            std::fs::create_dir_all(b.dir.join(d)).expect("mkdir");
        }
        for k in kernels {
            b.kernel(k);
        }
        std::fs::write(b.dir.join("part/boot/vmlinuz"), "liveroot kernel").expect("write");
        std::fs::write(b.dir.join("part/boot/initrd.img"), "liveroot initramfs").expect("write");
        std::fs::write(b.dir.join("part/boot/syslinux/syslinux.cfg"), SYS).expect("write");
        std::fs::write(b.dir.join("part/loader/entries/liveroot.conf"), SDB).expect("write");
        std::fs::write(b.dir.join("etc/installed"), "# Written by liveroot migrate.\nboot_uuid=ABCD-0123\n").expect("write");
        // findfs answers for the recorded id only; mount binds the partition directory.
        let shim = |name: &str, text: String| {
            let p = b.dir.join("shim").join(name);
            std::fs::write(&p, text).expect("shim");
            Command::new("chmod").arg("755").arg(&p).status().expect("chmod");
        };
        shim("findfs", "#!/bin/sh\n[ \"$1\" = UUID=ABCD-0123 ] && echo /dev/fakeboot\n".into());
        shim("mount", format!("#!/bin/sh\nfor a; do last=$a; done\nexec /bin/mount --bind {} \"$last\"\n", b.dir.join("part").display()));
        b
    }
    fn kernel(&self, k: &str) {
        std::fs::write(self.dir.join(&format!("boot/vmlinuz-{k}")), format!("kernel {k}")).expect("write");
        std::fs::write(self.dir.join(&format!("boot/initrd.img-{k}")), format!("initramfs {k}")).expect("write");
    }
    fn remove(&self, k: &str) {
        let _ = std::fs::remove_file(self.dir.join(&format!("boot/vmlinuz-{k}")));
        let _ = std::fs::remove_file(self.dir.join(&format!("boot/initrd.img-{k}")));
    }
    fn part(&self) -> PathBuf {
        self.dir.join("part")
    }
    /// The hook as Debian's run-parts starts it; (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_from(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/kernel-hook"), args)
    }
    /// The hook started from DIR (`postinst.d`, `prerm.d`): run-parts' $0 says which.
    fn run_in(&self, dir: &str, args: &[&str]) -> (i32, String, String) {
        let d = self.dir.join(dir);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/kernel-hook"), d.join("zz-liveroot")).expect("copy");
        self.run_from(d.join("zz-liveroot"), args)
    }
    fn run_from(&self, hook: PathBuf, args: &[&str]) -> (i32, String, String) {
        let script = format!(
            "set -e; mount --make-rprivate /; mount --bind {d}/boot /boot; mkdir -p /etc/liveroot; mount --bind {d}/etc /etc/liveroot; \
             mkdir -p /run; mount -t tmpfs tmpfs /run; set +e; PATH={d}/shim:$PATH sh {hook} \"$@\"",
            d = self.dir.path().display(),
            hook = hook.display()
        );
        let o = Command::new("unshare").args(["-m", "sh", "-c", &script, "kernel-hook"]).args(args).output().expect("unshare");
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    }
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.part().join("boot"))
            .expect("read_dir")
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    fn entry(&self, rel: &str) -> String {
        std::fs::read_to_string(self.part().join(rel)).expect("entry")
    }
}

/// Never skipped silently: CI runs as root, and a run without root fails saying why.
fn need_root() {
    assert!(nix::unistd::geteuid().is_root(), "tests/kernel_hook.rs needs root (unshare -m, mount --bind): run `make test` as root");
}

#[test]
fn the_newest_kernel_with_its_initramfs_becomes_the_one_both_entries_start() {
    need_root();
    let b = Installed::new("khook-new", &["6.1.0-50-amd64", "6.1.0-9-amd64", "6.1.0-57-amd64"]);
    // A kernel without its initramfs (initramfs-tools not run yet) is not taken.
    std::fs::write(b.dir.join("boot/vmlinuz-6.1.0-99-amd64"), "no initramfs").expect("write");
    let (code, out, err) = b.run(&["6.1.0-57-amd64", "/boot/vmlinuz-6.1.0-57-amd64"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("liveroot: boot partition UUID=ABCD-0123 starts 6.1.0-57-amd64"), "{out}");
    assert_eq!(b.files(), ["initrd.img-6.1.0-57-amd64", "vmlinuz-6.1.0-57-amd64"], "liveroot's pair goes once no entry names it");
    assert_eq!(std::fs::read_to_string(b.part().join("boot/vmlinuz-6.1.0-57-amd64")).expect("read"), "kernel 6.1.0-57-amd64");
    assert_eq!(
        b.entry("boot/syslinux/syslinux.cfg"),
        SYS.replace("/boot/vmlinuz\n", "/boot/vmlinuz-6.1.0-57-amd64\n").replace("/boot/initrd.img\n", "/boot/initrd.img-6.1.0-57-amd64\n"),
        "only the kernel and initramfs lines change"
    );
    assert_eq!(
        b.entry("loader/entries/liveroot.conf"),
        SDB.replace("/boot/vmlinuz\r", "/boot/vmlinuz-6.1.0-57-amd64\r").replace("/boot/initrd.img\r", "/boot/initrd.img-6.1.0-57-amd64\r"),
        "CRLF lines keep their CR"
    );
    let leftovers: Vec<_> = walk(&b.part()).into_iter().filter(|p| p.ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Run again (postrm's remove then purge, update-initramfs): nothing changes.
    let before = walk(&b.part()).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect::<Vec<_>>();
    assert_eq!(b.run(&["6.1.0-50-amd64"]).0, 0);
    let after = walk(&b.part()).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect::<Vec<_>>();
    assert_eq!(before, after, "a second run wrote something");

    // The old kernel package removed: the entries keep the newest.
    b.remove("6.1.0-50-amd64");
    assert_eq!(b.run(&["6.1.0-50-amd64"]).0, 0);
    assert_eq!(b.files(), ["initrd.img-6.1.0-57-amd64", "vmlinuz-6.1.0-57-amd64"]);
    // The newest removed: the next newest boots (sort -V or linux-version: 9 below 50).
    b.remove("6.1.0-57-amd64");
    let (code, out, _) = b.run(&["6.1.0-57-amd64"]);
    assert_eq!(code, 0);
    assert!(out.contains("starts 6.1.0-9-amd64"), "{out}");
    assert_eq!(b.files(), ["initrd.img-6.1.0-9-amd64", "vmlinuz-6.1.0-9-amd64"]);
    assert!(b.entry("loader/entries/liveroot.conf").contains("linux /boot/vmlinuz-6.1.0-9-amd64\r\n"));
}

#[test]
fn without_its_boot_partition_the_hook_fails_loudly_and_changes_nothing() {
    need_root();
    let b = Installed::new("khook-miss", &["6.1.0-57-amd64"]);
    std::fs::write(b.dir.join("etc/installed"), "boot_uuid=FFFF-0000\n").expect("write");
    let (code, _, err) = b.run(&["6.1.0-57-amd64"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("liveroot: boot partition UUID=FFFF-0000: not found; the entries were not changed"), "{err}");
    assert_eq!(b.entry("boot/syslinux/syslinux.cfg"), SYS);
    std::fs::remove_file(b.dir.join("etc/installed")).expect("rm");
    let (code, _, err) = b.run(&["6.1.0-57-amd64"]);
    assert_eq!(code, 1);
    assert!(err.contains("/etc/liveroot/installed: no boot_uuid="), "{err}");
    assert_eq!(b.files(), ["initrd.img", "vmlinuz"]);
}

/// A disk installed under Secure Boot: the entries keep starting the signed image whatever
/// kernel package comes, and the package of the image's own kernel cannot be removed.
#[test]
fn a_secure_boot_disk_keeps_its_signed_image_and_its_kernel_package() {
    need_root();
    let b = Installed::new("khook-sb", &["6.1.0-50-amd64", "6.1.0-57-amd64"]);
    std::fs::write(b.dir.join("etc/installed"), "boot_uuid=ABCD-0123\nsigned=/EFI/Linux/liveroot.efi\nkernel=6.1.0-50-amd64\n").expect("write");
    let before = walk(&b.part()).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect::<Vec<_>>();
    let (code, out, err) = b.run_in("postinst.d", &["6.1.0-57-amd64", "/boot/vmlinuz-6.1.0-57-amd64"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("keeps starting the signed image /EFI/Linux/liveroot.efi (kernel 6.1.0-50-amd64); kernel 6.1.0-57-amd64 boots here only inside an image signed"), "{out}");
    let after = walk(&b.part()).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect::<Vec<_>>();
    assert_eq!(before, after, "the boot partition was changed");
    let (code, _, err) = b.run_in("prerm.d", &["6.1.0-50-amd64", "/boot/vmlinuz-6.1.0-50-amd64"]);
    assert_eq!(code, 1, "the image's kernel package went: {err}");
    assert!(err.contains("kernel 6.1.0-50-amd64: the signed image /EFI/Linux/liveroot.efi on the boot partition starts it; its package stays"), "{err}");
    assert_eq!(b.run_in("prerm.d", &["6.1.0-57-amd64"]).0, 0, "another kernel's package may go");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
