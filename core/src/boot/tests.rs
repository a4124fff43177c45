//! [`choose`] driven by a fake system: pairs that select-image passes or refuses, a trial
//! record per image, a fetch that works or not, mounts that fail. Each test is one path of the
//! old /init's retry loop.

use super::*;
use crate::cmdline::Live;
use crate::error::Error;

#[derive(Default)]
struct Fake {
    /// The medium's pairs in select order: (pair, version, verity, refused).
    pairs: Vec<(&'static str, u64, bool, bool)>,
    /// Versions the trial record would not boot (fallback), and versions on trial.
    failing: Vec<u64>,
    on_trial: Vec<u64>,
    failed_version: u64,
    /// Pairs whose mount fails.
    bad_mount: Vec<&'static str>,
    /// The fetch: Some(version) fetched, None: fails.
    fetch: Option<Option<u64>>,
    fetched_trial_fails: bool,
    /// What happened, in order.
    log: Vec<String>,
    takes: Vec<(u64, bool, bool)>,
}

fn sel(pair: &str, version: u64, verity: bool) -> Selected {
    Selected {
        file: PathBuf::from(format!("/m/LiveOS/squashfs.img{}", if pair == "primary" { String::new() } else { format!(".{pair}") })),
        pair: pair.to_owned(),
        sha256: Some([version as u8; 32]),
        version: Some(version),
        verified: "sig",
        roothash: verity.then(|| vec![1, 2]),
        verity: verity.then(|| PathBuf::from("/m/x.verity")),
        floor: 5,
        in_ram: false,
    }
}

impl Env for Fake {
    fn fetched_kernel_ok(&mut self, _file: &Path, _m: &Mounted) -> Result<(), String> {
        Ok(())
    }
    fn select(&mut self, skip: &[String]) -> crate::error::Result<Selected> {
        for &(p, v, verity, refused) in &self.pairs {
            if skip.iter().any(|s| s == p) {
                continue;
            }
            if refused {
                self.log.push(format!("refused {p}"));
                continue;
            }
            return Ok(sel(p, v, verity));
        }
        Err(Error::verify("/m/LiveOS/squashfs.img", "no image pair left to try"))
    }
    fn take(&mut self, img: &Ident, start: Option<Start>, peek: bool) -> Taken {
        self.takes.push((img.version, start.is_some(), peek));
        let fails = if start.is_some() { self.fetched_trial_fails } else { self.failing.contains(&img.version) };
        let fallback = fails.then(|| format!("version {} failed its trial", img.version));
        let left = (!fails && (start.is_some() || self.on_trial.contains(&img.version))).then_some(1);
        Taken { left, fallback, failed: self.failed_version, floor: 0, note: String::new() }
    }
    fn fetch(&mut self, above: Option<u64>, _: Option<&Selected>) -> Result<(PathBuf, String), String> {
        self.log.push(format!("fetch above {above:?}"));
        match self.fetch {
            Some(Some(_)) => Ok((PathBuf::from("/run/live/ram/squashfs.img"), "fetched".into())),
            _ => Err("http://h/: timed out".into()),
        }
    }
    fn check_fetched(&mut self, _: &Path) -> crate::error::Result<Selected> {
        let v = self.fetch.flatten().unwrap_or(0);
        Ok(Selected { verified: "sig", roothash: None, verity: None, ..sel("primary", v, false) })
    }
    fn mount(&mut self, file: &Path, verity: Option<(&[u8], &Path)>) -> Result<Mounted, String> {
        let f = file.display().to_string();
        if self.bad_mount.iter().any(|p| (*p == "primary" && f.ends_with(".img")) || f.ends_with(&format!(".{p}"))) && !f.starts_with("/run") {
            self.log.push(format!("mount failed {f}"));
            return Err(format!("{}: {f}: does not verify through dm-verity", if verity.is_some() { "verity" } else { "loop-squashfs" }));
        }
        self.log.push(format!("mounted {f}"));
        Ok(Mounted { squash_dev: "/dev/loop0".into(), verity_name: None, rootfs_image: "LiveOS/rootfs.img", rootfs_loop: "/dev/loop1".into() })
    }
    fn unmount(&mut self, _: &Mounted) {
        self.log.push("unmounted".into());
    }
    fn discard_fetched(&mut self, _: &Path) {
        self.log.push("discarded".into());
    }
    fn trial_file(&mut self, tries: u8) {
        self.log.push(format!("trial file {tries}"));
    }
    fn free_ram_copy(&mut self, _: &Selected) {}
    fn release_local_ram(&mut self) {}
    fn say(&mut self, line: &str) {
        self.log.push(format!("say {line}"));
    }
    fn log(&mut self, _: &str) {}
}

fn run(f: &mut Fake, live: &Live) -> Result<Chosen, Rescue> {
    let i = Inputs { live, image: (!live.netroot).then(|| "/m/LiveOS/squashfs.img".into()), min_version: 0, ram: false };
    choose(f, &i)
}

fn said(f: &Fake, what: &str) -> bool {
    f.log.iter().any(|l| l.starts_with("say ") && l.contains(what))
}

#[test]
fn plain_boot_takes_one_real_try_after_a_peek() {
    let mut f = Fake { pairs: vec![("primary", 5, true, false)], on_trial: vec![5], ..Fake::default() };
    let c = run(&mut f, &Live::default()).unwrap();
    assert_eq!((c.pair.as_str(), c.trial, c.fetched), ("primary", Some(1), false));
    assert_eq!(f.takes, [(5, false, true), (5, false, false)]);
}

#[test]
fn a_failed_trial_boots_the_previous_pair_with_the_reason() {
    let mut f = Fake { pairs: vec![("primary", 6, true, false), ("old", 5, true, false)], failing: vec![6], ..Fake::default() };
    let c = run(&mut f, &Live::default()).unwrap();
    assert_eq!(c.pair, "old");
    assert_eq!(c.fallback.as_deref(), Some("version 6 failed its trial"));
    assert!(said(&f, "trial: /m/LiveOS/squashfs.img (primary): version 6 failed its trial; booting the previous image"));
    assert!(said(&f, "verify: /m/LiveOS/squashfs.img refused; booting the old image /m/LiveOS/squashfs.img.old"));
    // The failing pair's real take records the failure; the old pair is peeked, then taken.
    assert_eq!(f.takes, [(6, false, true), (6, false, false), (5, false, true), (5, false, false)]);
}

#[test]
fn a_verity_mapping_that_fails_tries_the_next_pair() {
    let mut f = Fake { pairs: vec![("primary", 6, true, false), ("old", 5, true, false)], bad_mount: vec!["primary"], ..Fake::default() };
    let c = run(&mut f, &Live::default()).unwrap();
    assert_eq!(c.pair, "old");
    assert!(said(&f, "verity: /m/LiveOS/squashfs.img: does not verify through dm-verity; trying the next pair"));
}

#[test]
fn a_loop_mount_failure_rescues() {
    let mut f = Fake { pairs: vec![("primary", 6, false, false), ("old", 5, false, false)], bad_mount: vec!["primary"], ..Fake::default() };
    let e = run(&mut f, &Live::default()).unwrap_err();
    assert!(e.line.starts_with("loop-squashfs: "), "{}", e.line);
}

#[test]
fn no_pair_left_rescues_at_verify() {
    let mut f = Fake { pairs: vec![("primary", 6, false, true)], ..Fake::default() };
    let e = run(&mut f, &Live::default()).unwrap_err();
    assert_eq!(e.line, "verify: /m/LiveOS/squashfs.img: no image pair left to try");
    assert_eq!(e.code, crate::error::Code::Verify);
}

fn fetching() -> Live {
    Live { fetch: "http://h/".into(), ..Live::default() }
}

#[test]
fn no_fetch_while_the_local_image_is_on_trial() {
    let mut f = Fake { pairs: vec![("primary", 5, true, false)], on_trial: vec![5], fetch: Some(Some(6)), ..Fake::default() };
    let c = run(&mut f, &fetching()).unwrap();
    assert!(!c.fetched);
    assert!(said(&f, "fetch: skipped: the local image is on trial"));
    assert!(!f.log.iter().any(|l| l.starts_with("fetch above")));
}

#[test]
fn fetched_image_boots_on_trial_and_raises_the_floor() {
    let mut f = Fake { pairs: vec![("primary", 5, true, false)], fetch: Some(Some(7)), ..Fake::default() };
    let c = run(&mut f, &fetching()).unwrap();
    assert!(c.fetched);
    assert_eq!((c.version, c.floor, c.trial, c.verified), (Some(7), 7, Some(1), "sig"));
    assert!(f.log.contains(&"trial file 3".to_owned()));
    // The local pair is only peeked: one trial, the fetched image's.
    assert_eq!(f.takes, [(5, false, true), (7, true, false)]);
    assert!(f.log.contains(&"fetch above Some(5)".to_owned()));
}

#[test]
fn the_fetch_floor_rises_above_a_failed_version() {
    let mut f = Fake { pairs: vec![("primary", 5, true, false)], failed_version: 8, fetch: Some(None), ..Fake::default() };
    run(&mut f, &fetching()).unwrap();
    assert!(f.log.contains(&"fetch above Some(8)".to_owned()));
}

#[test]
fn a_failed_fetch_boots_the_local_image() {
    let mut f = Fake { pairs: vec![("primary", 5, true, false)], fetch: Some(None), ..Fake::default() };
    let c = run(&mut f, &fetching()).unwrap();
    assert!(!c.fetched);
    assert!(said(&f, "fetch: http://h/: timed out; booting the local image"));
}

#[test]
fn a_fetched_image_whose_trial_fails_is_discarded_and_the_local_one_boots() {
    let mut f = Fake { pairs: vec![("primary", 5, true, false)], fetch: Some(Some(7)), fetched_trial_fails: true, ..Fake::default() };
    let c = run(&mut f, &fetching()).unwrap();
    assert!(!c.fetched);
    assert_eq!(c.fallback.as_deref(), Some("version 7 failed its trial"));
    assert!(f.log.contains(&"unmounted".to_owned()) && f.log.contains(&"discarded".to_owned()));
    assert!(said(&f, "fetch: http://h/: trial: version 7 failed its trial; booting the local image"));
}

#[test]
fn a_network_root_rescues_when_the_fetch_fails() {
    let mut f = Fake { fetch: Some(None), ..Fake::default() };
    let live = Live { netroot: true, ..fetching() };
    let e = run(&mut f, &live).unwrap_err();
    assert_eq!(e.line, "fetch: http://h/: timed out");
    assert_eq!(e.code, crate::error::Code::Network);
}

#[test]
fn a_network_root_boots_untried_above_nothing() {
    let mut f = Fake { fetch: Some(Some(2)), ..Fake::default() };
    let live = Live { netroot: true, ..fetching() };
    let c = run(&mut f, &live).unwrap();
    assert!(c.fetched && c.trial.is_none());
    assert!(f.takes.is_empty());
    assert!(f.log.contains(&"fetch above None".to_owned()));
}
