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
