//! `make release`'s refusals (mk/release.sh): each bad input stops with `release: object:
//! reason`, exit 1, before any long step, and leaves nothing behind: OUT is not made (or keeps
//! what it held) and no work directory is left beside it. A release that is made, booted and
//! updated is the QEMU scenarios' (tests/qemu/scenarios/debian-*.sh), on a real Debian root.

mod common;
use common::TempDir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = TempDir::new(&format!("release-{tag}"));
        for k in ["a", "b"] {
            let st = Command::new("minisign")
                .args(["-G", "-W", "-f", "-p"])
                .arg(dir.join(&format!("{k}.pub")))
                .arg("-s")
                .arg(dir.join(&format!("{k}.key")))
                .output()
                .expect("minisign (make deps installs it)");
            assert!(st.status.success(), "minisign -G: {st:?}");
        }
        Fixture { dir }
    }

    /// A root with etc/ and the kernels named (boot/vmlinuz-K with usr/lib/modules/K).
    fn root(&self, name: &str, kernels: &[&str]) -> PathBuf {
        let r = self.dir.join(name);
        std::fs::create_dir_all(r.join("etc")).expect("mkdir etc");
        std::fs::create_dir_all(r.join("boot")).expect("mkdir boot");
        for k in kernels {
            std::fs::write(r.join(format!("boot/vmlinuz-{k}")), b"not really a kernel").expect("vmlinuz");
            std::fs::create_dir_all(r.join(format!("usr/lib/modules/{k}/kernel"))).expect("modules");
        }
        r
    }

    /// Runs mk/release.sh with the test binary (as the box's build and the publisher's); (exit
    /// code, stderr).
    fn run(&self, vars: &[(&str, &str)]) -> (i32, String) {
        let (code, _, err) = self.run_both(vars);
        (code, err)
    }

    /// Runs mk/release.sh with the test binary; (exit code, stdout: the steps, stderr).
    fn run_both(&self, vars: &[(&str, &str)]) -> (i32, String, String) {
        let mut c = Command::new("bash");
        c.arg(top().join("mk/release.sh"))
            .env("LIVEROOT", env!("CARGO_BIN_EXE_liveroot"))
            .env("PUBLISHER", env!("CARGO_BIN_EXE_liveroot"))
            .env("KEY", self.dir.join("a.key"))
            .env("PUBKEY", self.dir.join("a.pub"))
            .env("VERSION", "3")
            .env("OUT", self.dir.join("out"))
            .env("SOURCE_DATE_EPOCH", "1700000000");
        for v in ["ROOTFS", "KVER", "MIN_VERSION", "ROOT_MIB", "MARK_GOOD", "PREVIOUS", "KEY_PASSWORD_FILE", "SB_KEY", "SB_CERT", "LABEL", "APPEND", "RECOVERY_HASH", "RECOVERY_HASH_FILE", "SETTINGS"] {
            c.env_remove(v);
        }
        for (k, v) in vars {
            c.env(k, v);
        }
        let o = c.output().expect("bash mk/release.sh");
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    }

    /// The refusal: exit 1, one `release: ` line holding `want`, nothing left behind.
    fn refused(&self, vars: &[(&str, &str)], want: &str) {
        let (code, err) = self.run(vars);
        assert_eq!(code, 1, "exit code; stderr: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("release: "), "not `release: ...`: {err}");
        assert!(last.contains(want), "expected {want:?} in: {err}");
        assert!(!self.dir.join("out").exists() || self.dir.join("out/keep").exists(), "OUT was made");
        let left: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".release."))
            .collect();
        assert!(left.is_empty(), "a work directory was left: {left:?}");
    }

    fn s(&self, name: &str) -> String {
        self.dir.path_str(name)
    }
}

#[test]
fn a_root_without_a_kernel_is_refused() {
    let f = Fixture::new("nokernel");
    let r = f.root("root", &[]);
    f.refused(&[("ROOTFS", r.to_str().unwrap_or(""))], "no kernel");
}

#[test]
fn several_kernels_need_kver_and_kver_must_exist() {
    let f = Fixture::new("several");
    let r = f.root("root", &["6.1.0-50-amd64", "6.1.0-57-amd64"]);
    let rs = r.to_str().unwrap_or("");
    f.refused(&[("ROOTFS", rs)], "several kernels (6.1.0-50-amd64 6.1.0-57-amd64): say which with KVER=");
    f.refused(&[("ROOTFS", rs), ("KVER", "6.1.0-99-amd64")], "no kernel 6.1.0-99-amd64");
}

#[test]
fn a_kernel_where_fedora_and_arch_install_it_is_found() {
    // usr/lib/modules/KVER/vmlinuz, no /boot/vmlinuz-KVER: the kernel is taken (the refusal is
    // the size check's, which comes after the kernel's; the step line names the kernel found);
    // two such kernels need KVER= like two in /boot.
    let f = Fixture::new("usrkernel");
    let r = f.root("root", &[]);
    let k = "6.8.9-300.fc40.x86_64";
    std::fs::create_dir_all(r.join(format!("usr/lib/modules/{k}/kernel"))).expect("modules");
    std::fs::write(r.join(format!("usr/lib/modules/{k}/vmlinuz")), b"not really a kernel").expect("vmlinuz");
    std::fs::write(r.join("etc/big"), vec![0x5a; 40 << 20]).expect("big");
    let rs = r.to_str().unwrap_or("");
    let (code, steps, err) = f.run_both(&[("ROOTFS", rs), ("ROOT_MIB", "32")]);
    assert_eq!(code, 1, "{err}");
    assert!(steps.contains(&format!("kernel {k} (/usr/lib/modules/{k}/vmlinuz)")), "the kernel was not found where Fedora puts it: {steps}{err}");
    assert!(err.lines().last().unwrap_or("").contains("does not fit in ROOT_MIB=32 MiB"), "{err}");
    std::fs::create_dir_all(r.join("usr/lib/modules/6.9.1-arch1-1/kernel")).expect("modules");
    std::fs::write(r.join("usr/lib/modules/6.9.1-arch1-1/vmlinuz"), b"x").expect("vmlinuz");
    f.refused(&[("ROOTFS", rs)], "several kernels (6.8.9-300.fc40.x86_64 6.9.1-arch1-1): say which with KVER=");
}

#[test]
fn a_kernel_without_its_modules_is_not_a_kernel_of_the_root() {
    let f = Fixture::new("nomods");
    let r = f.root("root", &[]);
    std::fs::write(r.join("boot/vmlinuz-6.1.0-50-amd64"), b"x").expect("vmlinuz");
    f.refused(&[("ROOTFS", r.to_str().unwrap_or(""))], "no kernel");
}

#[test]
fn a_link_out_of_the_root_never_reaches_the_build_machine() {
    // lib/modules -> /elsewhere/modules (an absolute link, as in a root unpacked on another
    // machine) must not make the build machine's own modules the root's.
    let f = Fixture::new("abslink");
    let r = f.root("root", &[]);
    let outside = f.dir.join("host/modules/6.1.0-50-amd64/kernel");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::create_dir_all(r.join("lib")).expect("lib");
    std::os::unix::fs::symlink(f.dir.join("host/modules"), r.join("lib/modules")).expect("symlink");
    std::fs::write(r.join("boot/vmlinuz-6.1.0-50-amd64"), b"x").expect("vmlinuz");
    f.refused(&[("ROOTFS", r.to_str().unwrap_or(""))], "no kernel");
    // The same kernel with its modules inside the root is taken: the refusal is the link's.
    // (It gets as far as the size check, which comes after the kernel's.)
    std::fs::create_dir_all(r.join("usr/lib/modules/6.1.0-50-amd64")).expect("modules");
    std::fs::write(r.join("etc/big"), vec![0x5a; 20 << 20]).expect("big");
    f.refused(&[("ROOTFS", r.to_str().unwrap_or("")), ("ROOT_MIB", "16")], "does not fit");
}

#[test]
fn a_file_that_is_not_a_tarball_is_refused() {
    let f = Fixture::new("notar");
    let t = f.dir.join("root.tar.gz");
    std::fs::write(&t, common::xorshift_bytes(4096, 7)).expect("write");
    f.refused(&[("ROOTFS", t.to_str().unwrap_or(""))], "not a tar archive");
}

#[test]
fn a_key_that_does_not_match_the_public_key_is_refused() {
    let f = Fixture::new("keys");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    let other = f.s("b.pub");
    f.refused(&[("ROOTFS", r.to_str().unwrap_or("")), ("PUBKEY", &other)], "does not match");
}

#[test]
fn an_encrypted_key_without_its_password_is_refused_without_asking() {
    let f = Fixture::new("enckey");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    let (k, p) = (f.s("enc.key"), f.s("enc.pub"));
    let mut g = Command::new("minisign")
        .args(["-G", "-f", "-p", &p, "-s", &k])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("minisign -G");
    use std::io::Write;
    g.stdin.take().expect("stdin").write_all(b"pw\npw\n").expect("password");
    assert!(g.wait().expect("wait").success());
    f.refused(&[("ROOTFS", r.to_str().unwrap_or("")), ("KEY", &k), ("PUBKEY", &p)], "KEY_PASSWORD_FILE=");
    // With its password in a file, it signs: the run gets past the key to the size check.
    std::fs::write(f.dir.join("pw"), b"pw\n").expect("pw");
    std::fs::write(r.join("etc/big"), vec![0x5a; 20 << 20]).expect("big");
    let pw = f.s("pw");
    let vars = [("ROOTFS", r.to_str().unwrap_or("")), ("KEY", &k), ("PUBKEY", &p), ("KEY_PASSWORD_FILE", &pw), ("ROOT_MIB", "16")];
    f.refused(&vars, "does not fit");
}

/// A Secure Boot pair (a self-signed certificate, as a publisher makes a db key) under `dir`:
/// (key, cert); `encrypted` with a password.
fn sb_pair(dir: &Path, tag: &str, encrypted: bool) -> (String, String) {
    let (k, c) = (dir.join(format!("{tag}.key")), dir.join(format!("{tag}.pem")));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-x509", "-newkey", "rsa:2048", "-subj", "/CN=liveroot test db/", "-days", "3650", "-keyout"])
        .arg(&k)
        .arg("-out")
        .arg(&c);
    if encrypted {
        cmd.args(["-passout", "pass:pw"]);
    } else {
        cmd.arg("-noenc");
    }
    let o = cmd.output().expect("openssl (make deps installs it)");
    assert!(o.status.success(), "openssl req: {}", String::from_utf8_lossy(&o.stderr));
    (k.to_string_lossy().into_owned(), c.to_string_lossy().into_owned())
}

#[test]
fn secure_boot_inputs_are_checked_before_anything_is_made() {
    let f = Fixture::new("sb");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    let rs = r.to_str().unwrap_or("");
    let (k, c) = sb_pair(f.dir.path(), "db", false);
    let (k2, c2) = sb_pair(f.dir.path(), "other", false);
    let (ke, _) = sb_pair(f.dir.path(), "enc", true);
    f.refused(&[("ROOTFS", rs), ("SB_KEY", &k)], "SB_CERT missing (give both or neither)");
    f.refused(&[("ROOTFS", rs), ("SB_CERT", &c)], "SB_KEY missing (give both or neither)");
    f.refused(&[("ROOTFS", rs), ("SB_KEY", &k), ("SB_CERT", &c2)], &format!("{k}: not the key of {c2}"));
    f.refused(&[("ROOTFS", rs), ("SB_KEY", &ke), ("SB_CERT", &c)], "encrypted (SB_KEY must be an unencrypted PEM key");
    f.refused(&[("ROOTFS", rs), ("SB_KEY", &c), ("SB_CERT", &c)], "not a PEM private key");
    f.refused(&[("ROOTFS", rs), ("SB_KEY", &k2), ("SB_CERT", &k2)], "not a PEM certificate");
    // The command line is sealed only in a Secure Boot release; the label must be a FAT label.
    f.refused(&[("ROOTFS", rs), ("LABEL", "LIVE")], "only with SB_KEY");
    f.refused(&[("ROOTFS", rs), ("APPEND", "quiet")], "only with SB_KEY");
    f.refused(&[("ROOTFS", rs), ("SB_KEY", &k), ("SB_CERT", &c), ("LABEL", "live")], "LABEL=live: 1 to 11 of A-Z");
    // A good pair gets the run past every check to the kernel's (this one is not a real kernel).
    let (code, err) = f.run(&[("ROOTFS", rs), ("SB_KEY", &k), ("SB_CERT", &c), ("LABEL", "BOX")]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("SB_KEY") && !err.contains("LABEL"), "the pair and the label were refused: {err}");
}

#[test]
fn out_must_be_new_or_empty_and_is_left_as_it_was() {
    let f = Fixture::new("outfull");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    std::fs::create_dir_all(f.dir.join("out")).expect("out");
    std::fs::write(f.dir.join("out/keep"), b"mine").expect("keep");
    f.refused(&[("ROOTFS", r.to_str().unwrap_or(""))], "exists and is not empty");
    assert_eq!(std::fs::read(f.dir.join("out/keep")).expect("keep"), b"mine");
}

#[test]
fn versions_are_numbers_and_min_version_not_above_version() {
    let f = Fixture::new("versions");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    let rs = r.to_str().unwrap_or("");
    f.refused(&[("ROOTFS", rs), ("VERSION", "1.2")], "VERSION=1.2: not a number");
    f.refused(&[("ROOTFS", rs), ("MIN_VERSION", "4")], "MIN_VERSION=4: above VERSION=3");
}

#[test]
fn a_root_too_big_for_root_mib_is_refused_before_the_long_steps() {
    let f = Fixture::new("toobig");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    std::fs::write(r.join("etc/big"), vec![0x5a; 40 << 20]).expect("big");
    f.refused(&[("ROOTFS", r.to_str().unwrap_or("")), ("ROOT_MIB", "32")], "does not fit in ROOT_MIB=32 MiB");
}

#[test]
fn previous_must_be_a_release_of_this_key_below_version() {
    let f = Fixture::new("previous");
    let r = f.root("root", &["6.1.0-50-amd64"]);
    let prev = f.dir.join("prev");
    std::fs::create_dir_all(&prev).expect("prev");
    std::fs::write(prev.join("SHA256SUMS"), b"").expect("sums");
    let st = Command::new("minisign")
        .args(["-S", "-s", &f.s("a.key"), "-t", "version=5", "-m"])
        .arg(prev.join("SHA256SUMS"))
        .output()
        .expect("minisign -S");
    assert!(st.status.success());
    let (rs, ps) = (r.to_str().unwrap_or(""), prev.to_str().unwrap_or(""));
    f.refused(&[("ROOTFS", rs), ("PREVIOUS", ps)], "VERSION=3: not above");
    f.refused(&[("ROOTFS", rs), ("PREVIOUS", ps), ("VERSION", "6"), ("PUBKEY", &f.s("b.pub")), ("KEY", &f.s("b.key"))], "no SHA256SUMS signed with");
}
