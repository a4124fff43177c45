//! The multicall binary as users meet it: through symlinks, `liveroot APPLET`, --list, --install.

mod common;
use common::{applet, TempDir};
use std::path::PathBuf;
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_liveroot"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    common::run(cmd).parts()
}

fn applets() -> Vec<String> {
    let (code, out, _) = run(Command::new(bin()).arg("--list"));
    assert_eq!(code, 0);
    out.lines().map(str::to_owned).collect()
}

#[test]
fn list_is_sorted_and_has_the_applets() {
    let list = applets();
    let mut sorted = list.clone();
    sorted.sort();
    assert_eq!(list, sorted);
    for want in ["imgcheck", "losetup"] {
        assert!(list.iter().any(|a| a == want), "{want} missing from --list: {list:?}");
    }
}

#[test]
fn unknown_applet_exits_127() {
    let (code, out, err) = run(Command::new(bin()).arg("frobnicate"));
    assert_eq!(code, 127);
    assert_eq!(out, "");
    assert_eq!(err, "liveroot: unknown applet 'frobnicate'\n");

    // The same through a link with a name that is not an applet.
    let (code, _, err) = run(&mut applet("frob"));
    assert_eq!(code, 127);
    assert_eq!(err, "liveroot: unknown applet 'frob'\n");
}

#[test]
fn install_makes_links_that_dispatch_and_help_works_everywhere() {
    let t = TempDir::new("mc-install");
    let d = t.path();
    let (code, _, err) = run(Command::new(bin()).arg("--install").arg(d));
    assert_eq!(code, 0, "{err}");
    for a in applets() {
        let link = d.join(&a);
        assert_eq!(std::fs::read_link(&link).unwrap(), bin().canonicalize().unwrap());
        // --help through the link: stdout, exit 0, and it names the applet.
        let (code, out, err) = run(Command::new(&link).arg("--help"));
        assert_eq!(code, 0, "{a} --help: {err}");
        assert!(out.contains(&a), "{a} --help does not name the applet: {out}");
        assert_eq!(err, "");
        // The same help via `liveroot APPLET --help`.
        let (code2, out2, _) = run(Command::new(bin()).args([&a, "--help"]));
        assert_eq!((code2, &out2), (0, &out));
        // An unknown option is a usage error: exit 2 and one message naming the applet.
        let (code, out, err) = run(Command::new(&link).arg("--no-such-option"));
        assert_eq!(code, 2, "{a} --no-such-option: {err}");
        assert_eq!(out, "");
        assert!(err.starts_with(&format!("{a}: ")), "{a}: stderr was {err:?}");
        assert!(!err.contains("os error"), "{err}");
    }
}

#[test]
fn bare_liveroot_prints_usage() {
    let (code, out, _) = run(&mut Command::new(bin()));
    assert_eq!(code, 2);
    assert!(out.starts_with("Usage: liveroot APPLET"));
    let (code, out, _) = run(Command::new(bin()).arg("--help"));
    assert_eq!(code, 0);
    for a in applets() {
        assert!(out.contains(&format!("  {a}")), "help lacks {a}");
    }
}
