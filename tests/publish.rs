//! publish, what mk/mkflash.sh and mk/sign.sh call: the trusted comment as the boxes parse it,
//! and the flash's refusals (usage: exit 2; files that do not fit: exit 1, no image left). The
//! flash itself is read back in core/src/install.rs's tests and booted by the flash-* scenarios.

mod common;
use common::{fails, run_applet, TempDir};

#[test]
fn comment() {
    let o = run_applet("publish", &["comment", "--version", "7", "--rollout", "12.50", "--expires", "1800000000"]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "version=7 rollout=12.5 expires=1800000000\n", ""));
    assert_eq!(run_applet("publish", &["comment", "--version", "3"]).stdout, "version=3\n");
    let rel = run_applet("publish", &["comment", "--version", "3", "--expires", "+60"]).stdout;
    let at: u64 = rel.trim().strip_prefix("version=3 expires=").and_then(|t| t.parse().ok()).unwrap_or(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!((now + 55..=now + 65).contains(&at), "{rel}");
    for (args, why) in [
        (&["comment", "--version", "3", "--rollout", "101"][..], "publish: bad rollout=101 (PCT or START+DURATION)"),
        (&["comment", "--version", "3", "--expires", "++5"], "publish: --expires ++5: UNIXTIME or +SECONDS"),
        (&["comment", "--version", "x"], "publish: Error parsing option '--version'"),
    ] {
        let (code, err) = fails(&run_applet("publish", args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with(why), "{args:?}: {err}");
    }
}

#[test]
fn flash_refusals() {
    let t = TempDir::new("publish-flash");
    let stage = t.join("stage");
    std::fs::create_dir_all(stage.join("LiveOS")).unwrap();
    std::fs::write(stage.join("LiveOS/squashfs.img"), vec![0u8; 70 << 20]).unwrap();
    std::fs::write(t.join("mbr.bin"), [0u8; 440]).unwrap();
    let (s, m, out) = (t.path_str("stage"), t.path_str("mbr.bin"), t.path_str("out.img"));
    let flash = |extra: &[&str]| {
        let mut a = vec!["flash", "--from", &s, "--mbr-code", &m];
        a.extend_from_slice(extra);
        a.push(&out);
        run_applet("publish", &a)
    };
    for label in ["li.ve", "TOOLONGLABEL", ""] {
        let (code, err) = fails(&flash(&["--label", label]));
        assert_eq!(code, 2, "{label}: {err}");
    }
    let (code, err) = fails(&flash(&["--label", "LIVE", "--size-mib", "64"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&format!("publish: {out}: 64 MiB: too small for the files (about ")), "{err}");
    assert!(!t.join("out.img").exists(), "a refused flash left {out}");
    let (code, err) = fails(&flash(&["--label", "LIVE", "--append", "a\nb"]));
    assert_eq!((code, err.as_str()), (2, "publish: --append: must be one line\n"));
}

#[test]
fn uki_and_flash_uki() {
    let t = TempDir::new("publish-uki");
    for (n, d) in [("stub", &b"ELF not PE"[..]), ("vmlinuz", b"MZkernel"), ("initrd", b"cpio"), ("osrel", b"ID=liveroot\n")] {
        std::fs::write(t.join(n), d).unwrap();
    }
    let p = |n: &str| t.path_str(n);
    let (stub, k, i, o, out) = (p("stub"), p("vmlinuz"), p("initrd"), p("osrel"), p("uki.efi"));
    let uki = |stub: &str| {
        run_applet("publish", &["uki", "--stub", stub, "--linux", &k, "--initrd", &i, "--osrel", &o, "--label", "LIVE", "--append", "x=1", &out])
    };
    let (code, err) = fails(&uki(&stub));
    assert_eq!((code, err.as_str()), (1, format!("publish: {stub}: not a PE image (no MZ signature)\n").as_str()));
    assert!(!t.join("uki.efi").exists());
    // systemd's stub where make deps installed it: the image is written, with the flash's line.
    let real = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
    if std::path::Path::new(real).exists() {
        let r = uki(real);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.ends_with("cmdline: root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 x=1\n"), "{}", r.stdout);
        let img = std::fs::read(t.join("uki.efi")).unwrap();
        assert!(img.windows(50).any(|w| w == &b"root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 x=1"[..50]));
        // cmdline reads the sealed line back, and with --label holds it to the flash's.
        let c = run_applet("publish", &["cmdline", &out]);
        assert_eq!((c.code, c.stdout.as_str()), (0, "root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 x=1\n"), "{}", c.stderr);
        assert_eq!(run_applet("publish", &["cmdline", "--label", "LIVE", "--append", "x=1", &out]).code, 0);
        let (code, err) = fails(&run_applet("publish", &["cmdline", "--label", "BOX", "--append", "x=1", &out]));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("its sealed command line is 'root=live:LABEL=LIVE console=tty0 console=ttyS0,115200 x=1', not this flash's 'root=live:LABEL=BOX console=tty0 console=ttyS0,115200 x=1'"), "{err}");
    }
    let (code, err) = fails(&run_applet("publish", &["cmdline", &stub]));
    assert_eq!((code, err.as_str()), (1, format!("publish: {stub}: no .cmdline section: not a unified kernel image\n").as_str()));
    // flash --uki names a file of the tree.
    std::fs::create_dir_all(t.join("stage/LiveOS")).unwrap();
    std::fs::write(t.join("mbr.bin"), [0u8; 440]).unwrap();
    let (s, m, img) = (p("stage"), p("mbr.bin"), p("flash.img"));
    let r = run_applet("publish", &["flash", "--from", &s, "--label", "LIVE", "--mbr-code", &m, "--uki", "/EFI/Linux/liveroot.efi", &img]);
    let (code, err) = fails(&r);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("EFI/Linux/liveroot.efi: missing (--uki names a file of the tree)"), "{err}");
    assert!(!t.join("flash.img").exists());
    // --recovery-uki: only with --uki, and a file of the tree too.
    std::fs::create_dir_all(t.join("stage/EFI/Linux")).unwrap();
    std::fs::write(t.join("stage/EFI/Linux/liveroot.efi"), b"MZ").unwrap();
    let flash = |extra: &[&str]| {
        let mut a = vec!["flash", "--from", &s, "--label", "LIVE", "--mbr-code", &m];
        a.extend_from_slice(extra);
        a.push(&img);
        run_applet("publish", &a)
    };
    let (code, err) = fails(&flash(&["--recovery-uki", "/EFI/Linux/liveroot-recovery.efi"]));
    assert_eq!((code, err.as_str()), (2, "publish: --recovery-uki: needs --uki\n"));
    let (code, err) = fails(&flash(&["--uki", "/EFI/Linux/liveroot.efi", "--recovery-uki", "/EFI/Linux/liveroot-recovery.efi"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("EFI/Linux/liveroot-recovery.efi: missing (--recovery-uki names a file of the tree)"), "{err}");
    assert!(!t.join("flash.img").exists());
}

#[test]
fn settings_checked_as_the_boot_reads_them() {
    let t = TempDir::new("publish-settings");
    let f = t.path_str("settings");
    std::fs::write(&f, "# fleet A\nlive.fetch=http://img.example/a/\nrd.live.machine_id=box-7\n").unwrap();
    let o = run_applet("publish", &["settings", &f]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, format!("{f}: live.fetch, rd.live.machine_id\n").as_str(), ""));
    for (text, why) in [
        ("live.fetch=http://a/\nlive.pubkey=RWQx\n", "live.pubkey: not allowed here (it would trust another key than the one built into the initramfs)"),
        ("live.fetch.allow-downgrade\n", "live.fetch.allow-downgrade: not allowed here (it would accept an older signed release)"),
        ("live.fetch=ftp://a/\n", "live.fetch=ftp://a/: expected http://HOST[:PORT]/PATH/"),
    ] {
        std::fs::write(&f, text).unwrap();
        let (code, err) = fails(&run_applet("publish", &["settings", &f]));
        assert_eq!((code, err), (1, format!("publish: {f}: {why}\n")), "{text}");
    }
    std::fs::write(&f, vec![b'#'; 5000]).unwrap();
    assert_eq!(fails(&run_applet("publish", &["settings", &f])), (1, format!("publish: {f}: larger than 4096 bytes\n")));
}
