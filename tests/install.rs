//! `make install` and `make deb` as a packager runs them: mk/install.sh into a DESTDIR, and the
//! package mk/deb.sh builds from the same staging, listed by dpkg-deb. With the test binary
//! (every applet: it is built with the `publisher` feature) as both the box's build and the
//! publisher's, so that no static build is needed (the Makefile targets only add
//! `$(BUILD)/liveroot` and `$(BUILD)/publisher/liveroot`).

mod common;
use common::TempDir;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_liveroot"))
}

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn applets() -> Vec<String> {
    let out = Command::new(bin())
        .arg("--list")
        .output()
        .expect("liveroot --list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn man_pages() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(top().join("man"))
        .expect("man/")
        .map(|e| {
            e.expect("man/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| f.ends_with(".8"))
        .collect();
    v.sort();
    v
}

const TOOLS: [&str; 4] = ["sign", "mkflash", "mkinitramfs", "kernel"];

/// What PREFIX must hold after an install (paths relative to PREFIX, without the leading /).
fn expected(man_suffix: &str) -> Vec<(String, &'static str)> {
    let mut v = vec![("sbin/liveroot".to_owned(), "file"), ("lib/liveroot/publisher/liveroot".to_owned(), "file")];
    for a in applets() {
        v.push((format!("lib/liveroot/bin/{a}"), "link"));
    }
    for t in TOOLS {
        v.push((format!("bin/liveroot-{t}"), "file"));
        v.push((format!("lib/liveroot/mk/{t}.sh"), "file"));
    }
    v.push(("lib/liveroot/mk/recovery-hash.sh".to_owned(), "file"));
    v.push(("lib/liveroot/mk/sb.sh".to_owned(), "file"));
    v.push(("lib/liveroot/initramfs-skel/init".to_owned(), "file"));
    for m in man_pages() {
        v.push((format!("share/man/man8/{m}{man_suffix}"), "file"));
    }
    v.push(("share/doc/liveroot/README.md".to_owned(), "file"));
    v
}

#[test]
fn make_install_puts_every_file_in_place() {
    let t = TempDir::new("install");
    let out = Command::new(top().join("mk/install.sh"))
        .env("DESTDIR", t.path())
        .env("PREFIX", "/usr/local")
        .env("LIVEROOT", bin())
        .env("PUBLISHER", bin())
        .output()
        .expect("run mk/install.sh");
    assert!(
        out.status.success(),
        "mk/install.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = t.join("usr/local");
    for (p, kind) in expected("") {
        let path = prefix.join(&p);
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{p}: {e}"));
        match kind {
            "link" => {
                // Relative, so that it holds wherever DESTDIR is unpacked, and it dispatches.
                assert_eq!(
                    std::fs::read_link(&path).unwrap(),
                    Path::new("../../../sbin/liveroot"),
                    "{p}"
                );
                let o = Command::new(&path).arg("--help").output().unwrap();
                assert!(o.status.success(), "{p} --help");
            }
            _ => assert!(meta.is_file(), "{p}: not a file"),
        }
    }
    // Nothing of liveroot's shadows the system's tools: no applet name in sbin or bin.
    for dir in ["sbin", "bin"] {
        for e in std::fs::read_dir(prefix.join(dir)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name == "liveroot" || name.starts_with("liveroot-"),
                "{dir}/{name}"
            );
        }
    }
    // The wrappers are valid sh and name the installed paths, not DESTDIR.
    for tool in TOOLS {
        let w = prefix.join(format!("bin/liveroot-{tool}"));
        let text = std::fs::read_to_string(&w).unwrap();
        assert!(
            text.contains(&format!("/usr/local/lib/liveroot/mk/{tool}.sh")),
            "{text}"
        );
        assert!(
            !text.contains(&t.path().display().to_string()),
            "{tool}: DESTDIR leaked: {text}"
        );
        assert!(
            Command::new("sh")
                .arg("-n")
                .arg(&w)
                .status()
                .unwrap()
                .success(),
            "sh -n {}",
            w.display()
        );
    }
}

/// The box's build lacks `publish`: its link goes to the publisher's build, which runs it. A
/// script that hides `publish` from the test binary's --list stands in for the box's build.
#[test]
fn an_applet_only_the_publisher_s_build_has_links_to_it() {
    let t = TempDir::new("install-split");
    let stub = t.join("box-liveroot");
    let script = format!("#!/bin/sh\nif [ \"$1\" = --list ]; then \"{0}\" --list | grep -vx publish; exit; fi\nexec \"{0}\" \"$@\"\n", bin().display());
    std::fs::write(&stub, script).unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(top().join("mk/install.sh"))
        .env("DESTDIR", t.join("root"))
        .env("PREFIX", "/usr")
        .env("LIVEROOT", &stub)
        .env("PUBLISHER", bin())
        .output()
        .expect("run mk/install.sh");
    assert!(out.status.success(), "mk/install.sh: {}", String::from_utf8_lossy(&out.stderr));
    let links = t.join("root/usr/lib/liveroot/bin");
    assert_eq!(std::fs::read_link(links.join("publish")).unwrap(), Path::new("../publisher/liveroot"));
    assert_eq!(std::fs::read_link(links.join("imgcheck")).unwrap(), Path::new("../../../sbin/liveroot"));
    let o = Command::new(links.join("publish")).args(["comment", "--version", "3"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "version=3\n");
    let wrapper = std::fs::read_to_string(t.join("root/usr/bin/liveroot-mkflash")).unwrap();
    assert!(wrapper.contains("PUBLISHER:-/usr/lib/liveroot/publisher/liveroot"), "{wrapper}");
}

#[test]
fn make_deb_builds_a_package_of_the_same() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("SKIP: no dpkg-deb");
        return;
    }
    let t = TempDir::new("deb");
    let out = Command::new(top().join("mk/deb.sh"))
        .env("OUT", t.path())
        .env("LIVEROOT", bin())
        .env("PUBLISHER", bin())
        .env("DEB_VERSION", "0.1.0")
        .env("DEB_COMPRESS", "none")
        .output()
        .expect("run mk/deb.sh");
    assert!(
        out.status.success(),
        "mk/deb.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = t.join("liveroot_0.1.0_amd64.deb");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        deb.display().to_string()
    );

    let field = |f: &str| {
        let o = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(field("Package"), "liveroot");
    assert_eq!(field("Version"), "0.1.0");
    assert_eq!(field("Architecture"), "amd64");
    assert!(field("Maintainer").contains('@'));
    assert!(field("Recommends").contains("squashfs-tools"));
    assert!(field("Description").starts_with("boot Linux from a live image"));

    let o = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(o.status.success());
    let listing = String::from_utf8_lossy(&o.stdout);
    let mut entries = BTreeSet::new();
    for line in listing.lines() {
        // -rwxr-xr-x root/root 825144 2026-12-07 05:11 ./usr/sbin/liveroot[ -> target]
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols.len() >= 6, "{line}");
        assert_eq!(cols[1], "root/root", "{line}");
        entries.insert(
            cols[5]
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned(),
        );
    }
    for (p, _) in expected(".gz") {
        assert!(
            entries.contains(&format!("usr/{p}")),
            "usr/{p} missing from the package:\n{listing}"
        );
    }
    assert!(entries.contains("usr/share/doc/liveroot/copyright"));
    assert!(
        !entries.iter().any(|e| e.starts_with("usr/local")),
        "{listing}"
    );
}
