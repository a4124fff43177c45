//! losetup against real loop devices (we run as root), checked through sysfs and against the
//! host's util-linux losetup. Other tests bind devices concurrently, so every test uses its
//! own backing files and compares only the devices bound to them.

mod common;
use common::{run, run_applet, Out, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn ours(args: &[&str]) -> Out {
    run_applet("losetup", args)
}

fn util_linux() -> &'static str {
    ["/usr/sbin/losetup", "/sbin/losetup", "/usr/bin/losetup", "/bin/losetup"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("util-linux losetup must be installed for these tests")
}

fn ul(args: &[&str]) -> Out {
    run(Command::new(util_linux()).env("LC_ALL", "C").args(args))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A scratch directory for backing files. On drop (also after a failed assertion) every loop
/// device whose backing file lies in it is detached, then the directory is removed.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        // Canonical, so it matches what the kernel reports as backing_file.
        let dir = TempDir::new(&format!("losetup-{tag}"));
        let canon = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(canon, dir.path(), "temp dir must be canonical");
        Scratch { dir }
    }
    fn file(&self, name: &str, size: u64) -> PathBuf {
        let p = self.dir.join(name);
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(size).unwrap();
        p
    }
    /// Devices bound to files in this directory, from sysfs.
    fn bound(&self) -> Vec<String> {
        let prefix = format!("{}/", self.dir.path().display());
        let mut v = Vec::new();
        for e in std::fs::read_dir("/sys/block").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loop") {
                continue;
            }
            if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
                if b.starts_with(&prefix) {
                    v.push(format!("/dev/{name}"));
                }
            }
        }
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for d in self.bound() {
            let _ = ul(&["-d", &d]);
        }
    }
}

fn sysfs(dev: &str, attr: &str) -> String {
    let n = dev.trim_start_matches("/dev/");
    std::fs::read_to_string(format!("/sys/block/{n}/{attr}"))
        .unwrap_or_else(|e| panic!("{n}/{attr}: {e}"))
        .trim_end()
        .to_owned()
}

fn is_bound(dev: &str) -> bool {
    let n = dev.trim_start_matches("/dev/");
    Path::new(&format!("/sys/block/{n}/loop/backing_file")).exists()
}

/// Devices util-linux reports for `file`.
fn ul_assoc(file: &Path) -> Vec<String> {
    let o = ul(&["-j", s(file)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.stdout.lines().map(|l| l.split(": ").next().unwrap().to_owned()).collect()
}

/// One device as util-linux sees it, column name → value.
fn ul_fields(dev: &str) -> std::collections::HashMap<String, String> {
    let cols = "NAME,BACK-FILE,OFFSET,SIZELIMIT,RO,AUTOCLEAR,DIO,LOG-SEC,PARTSCAN";
    let o = ul(&["-l", "-n", "--raw", "-O", cols, dev]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let vals: Vec<&str> = o.stdout.trim_end().split(' ').collect();
    cols.split(',').map(String::from).zip(vals.into_iter().map(String::from)).collect()
}

fn attach_show(args: &[&str]) -> String {
    let mut a = vec!["--show"];
    a.extend_from_slice(args);
    let o = ours(&a);
    assert_eq!(o.code, 0, "losetup {args:?}: {}", o.stderr);
    let dev = o.stdout.trim_end().to_owned();
    assert!(o.stdout.ends_with('\n') && o.stdout.lines().count() == 1, "{:?}", o.stdout);
    let n = dev.strip_prefix("/dev/loop").unwrap_or_else(|| panic!("not a loop device: {dev:?}"));
    assert!(n.parse::<u32>().is_ok(), "{dev:?}");
    dev
}

/// Bind to an explicit device: take a free one and retry when another test wins the race.
fn attach_explicit(args: &[&str], file: &Path, hold: bool) -> (String, Option<std::fs::File>) {
    for _ in 0..50 {
        let f = ours(&["-f"]);
        assert_eq!(f.code, 0, "{}", f.stderr);
        let dev = f.stdout.trim_end().to_owned();
        let held = if hold { Some(std::fs::File::open(&dev).unwrap()) } else { None };
        let mut a: Vec<&str> = args.to_vec();
        a.push(&dev);
        a.push(s(file));
        let o = ours(&a);
        if o.code == 0 {
            let want = if args.contains(&"--show") { format!("{dev}\n") } else { String::new() };
            assert_eq!(o.stdout, want);
            return (dev, held);
        }
        assert_eq!(o.stderr, format!("losetup: {dev}: Device or resource busy\n"));
    }
    panic!("no device could be bound");
}

#[test]
fn attach_find_show_and_detach() {
    let sc = Scratch::new("basic");
    let img = sc.file("disk.img", 1 << 20);
    let dev = attach_show(&["-f", s(&img)]);
    assert_eq!(sysfs(&dev, "loop/backing_file"), s(&img));
    assert_eq!(sysfs(&dev, "ro"), "0");
    assert_eq!(sysfs(&dev, "size"), "2048");
    let f = ul_fields(&dev);
    assert_eq!(f["BACK-FILE"], s(&img));
    assert_eq!((f["OFFSET"].as_str(), f["SIZELIMIT"].as_str(), f["RO"].as_str()), ("0", "0", "0"));
    assert_eq!((f["AUTOCLEAR"].as_str(), f["DIO"].as_str(), f["PARTSCAN"].as_str()), ("0", "0", "0"));
    assert_eq!(f["LOG-SEC"], "512");
    assert_eq!(ul_assoc(&img), std::slice::from_ref(&dev));

    let o = ours(&["-d", &dev]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
    wait_unbound(&img);

    // Without --show nothing is printed, and long options work.
    let o = ours(&["--find", s(&img)]);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
    let devs = ul_assoc(&img);
    assert_eq!(devs.len(), 1);
    let o = ours(&["--detach", &devs[0]]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    wait_unbound(&img);
}

#[test]
fn every_setup_option() {
    let sc = Scratch::new("opts");
    let img = sc.file("opts.img", 4 << 20);
    let dev = attach_show(&["-r", "-o", "4096", "--sizelimit=1M", "-b", "4096", "-P", "--direct-io=on", "-f", s(&img)]);
    assert_eq!(sysfs(&dev, "ro"), "1");
    assert_eq!(sysfs(&dev, "loop/offset"), "4096");
    assert_eq!(sysfs(&dev, "loop/sizelimit"), "1048576");
    assert_eq!(sysfs(&dev, "loop/partscan"), "1");
    assert_eq!(sysfs(&dev, "loop/dio"), "1");
    assert_eq!(sysfs(&dev, "queue/logical_block_size"), "4096");
    assert_eq!(sysfs(&dev, "size"), "2048");
    let f = ul_fields(&dev);
    assert_eq!(f["OFFSET"], "4096");
    assert_eq!(f["SIZELIMIT"], "1048576");
    assert_eq!((f["RO"].as_str(), f["DIO"].as_str(), f["PARTSCAN"].as_str()), ("1", "1", "1"));
    assert_eq!(f["LOG-SEC"], "4096");

    // getopt spellings: clusters, attached values, long forms with '='.
    let dev2 = attach_show(&["-rf", "-o512", "--sizelimit", "64K", "--direct-io", s(&img)]);
    assert_eq!(sysfs(&dev2, "ro"), "1");
    assert_eq!(sysfs(&dev2, "loop/offset"), "512");
    assert_eq!(sysfs(&dev2, "loop/sizelimit"), "65536");
    assert_eq!(sysfs(&dev2, "loop/dio"), "1");
    let dev3 = attach_show(&["--read-only", "--offset=1KiB", "--sector-size=1024", "--partscan", "--find", s(&img)]);
    assert_eq!(sysfs(&dev3, "ro"), "1");
    assert_eq!(sysfs(&dev3, "loop/offset"), "1024");
    assert_eq!(sysfs(&dev3, "queue/logical_block_size"), "1024");
    assert_eq!(sysfs(&dev3, "loop/partscan"), "1");
    assert_eq!(sysfs(&dev3, "loop/dio"), "0");

    // Change direct I/O on a bound device.
    let o = ours(&["--direct-io=off", &dev]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(sysfs(&dev, "loop/dio"), "0");

    let o = ours(&["-d", &dev, &dev2, &dev3]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    wait_unbound(&img);
}

#[test]
fn explicit_device_and_autoclear() {
    let sc = Scratch::new("explicit");
    let img = sc.file("e.img", 1 << 20);
    let (dev, _) = attach_explicit(&[], &img, false);
    assert_eq!(sysfs(&dev, "loop/backing_file"), s(&img));
    assert_eq!(sysfs(&dev, "loop/autoclear"), "0");
    assert_eq!(ours(&["-d", &dev]).code, 0);

    // --autoclear while someone holds the device: set, and the last close unbinds it.
    let (dev, held) = attach_explicit(&["--autoclear", "--show"], &img, true);
    assert_eq!(sysfs(&dev, "loop/autoclear"), "1");
    assert_eq!(ul_fields(&dev)["AUTOCLEAR"], "1");
    drop(held);
    wait_unbound(&img);

    // With nobody holding it, the device goes away once losetup exits.
    let o = ours(&["--autoclear", "-f", s(&img)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    wait_unbound(&img);
}

/// After a detach the device may stay bound until a concurrent opener (another test probing
/// a free device) closes it: the kernel then unbinds at last close.
fn wait_unbound(img: &Path) {
    for _ in 0..100 {
        if ul_assoc(img).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} still bound: {:?}", img.display(), ul_assoc(img));
}

/// Lines of `text` that mention one of `devs` as their device (first field).
fn only(text: &str, devs: &[String], sep: char) -> Vec<String> {
    text.lines()
        .filter(|l| devs.iter().any(|d| l.split(sep).next() == Some(d.as_str()) || l.starts_with(&format!("{d}:"))))
        .map(String::from)
        .collect()
}

#[test]
fn output_is_identical_to_util_linux() {
    let sc = Scratch::new("parity");
    let a = sc.file("a.img", 1 << 20);
    let odd = sc.file("name with space\\and\tback.img", 1 << 20);
    let long = sc.file(&format!("{}.img", "x".repeat(80)), 1 << 20);
    let gone = sc.file("gone.img", 1 << 20);
    let a1 = attach_show(&["-f", s(&a)]);
    let a2 = attach_show(&["-f", "-r", "-o", "512", "--sizelimit", "64K", s(&a)]);
    let b = attach_show(&["-f", "-P", s(&odd)]);
    let c = attach_show(&["-f", "-b", "4096", s(&long)]);
    let d = attach_show(&["-f", s(&gone)]);
    std::fs::remove_file(&gone).unwrap();
    let devs = vec![a1.clone(), a2.clone(), b.clone(), c.clone(), d.clone()];
    assert_eq!(sysfs(&d, "loop/backing_file"), format!("{} (deleted)", gone.display()));

    // Whole-system listings: others' devices come and go, so compare our lines only.
    let (x, y) = (ours(&["-a"]), ul(&["-a"]));
    assert_eq!((x.code, y.code), (0, 0));
    assert_eq!(only(&x.stdout, &devs, ':'), only(&y.stdout, &devs, ':'));
    assert_eq!(only(&x.stdout, &devs, ':').len(), 5, "{}", x.stdout);
    for args in [&["-l", "--raw"][..], &["--raw"], &["-l", "-n", "--raw", "--output-all"]] {
        let (x, y) = (ours(args), ul(args));
        assert_eq!((x.code, x.stderr.as_str()), (0, ""), "{args:?}");
        assert_eq!(only(&x.stdout, &devs, ' '), only(&y.stdout, &devs, ' '), "{args:?}");
        assert_eq!(only(&x.stdout, &devs, ' ').len(), 5, "{args:?}");
        assert_eq!(x.stdout.lines().next().filter(|_| !args.contains(&"-n")), y.stdout.lines().next().filter(|_| !args.contains(&"-n")));
    }

    // Filtered and single-device views do not depend on other devices: whole output.
    let a_s = s(&a);
    let cases: Vec<Vec<&str>> = vec![
        vec!["-j", a_s],
        vec!["--associated", a_s, "-o", "512"],
        vec!["-l", "-j", a_s],
        vec!["--list", "--noheadings", "-j", a_s],
        vec!["-l", "--raw", "-j", a_s],
        vec!["-l", "-O", "NAME,BACK-FILE,OFFSET", "-j", a_s],
        vec!["-l", "--output", "+MAJ:MIN,BACK-MAJ:MIN,BACK-INO,PARTSCAN", "-j", a_s],
        vec!["-l", "--output-all", "-j", a_s],
        vec!["-l", "-j", s(&odd)],
        vec!["-l", "--raw", "-j", s(&odd)],
        vec!["-j", s(&odd)],
        vec!["-l", "-j", s(&long)],
        vec!["-j", s(&long)],
        vec![&a2],
        vec![&b],
        vec![&c],
        vec![&d],
        vec!["-l", &d],
        vec!["-l", "--raw", &d],
        vec!["-l", "--output-all", &b],
        vec!["-l", "-n", "-O", "name,ro,back-file", &a2],
    ];
    for args in &cases {
        let (x, y) = (ours(args), ul(args));
        assert_eq!(y.code, 0, "util-linux {args:?}: {}", y.stderr);
        assert_eq!((x.code, x.stderr.as_str()), (0, ""), "{args:?}");
        assert!(!x.stdout.is_empty(), "{args:?}");
        assert_eq!(x.stdout, y.stdout, "losetup {args:?}");
    }
    assert_eq!(ours(&["-j", a_s]).stdout.lines().count(), 2);
    assert_eq!(ours(&["-j", a_s, "-o", "512"]).stdout.lines().count(), 1);
    // No match: no output at all, not even a header.
    let none = sc.file("unused.img", 4096);
    for args in [&["-j", s(&none)][..], &["-l", "-j", s(&none)]] {
        let (x, y) = (ours(args), ul(args));
        assert_eq!((x.code, x.stdout.as_str()), (0, ""));
        assert_eq!(y.stdout, "");
    }
}

#[test]
fn concurrent_finds_get_distinct_devices() {
    let sc = Scratch::new("race");
    let img = sc.file("race.img", 1 << 20);
    let img_s = s(&img).to_owned();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let f = img_s.clone();
            std::thread::spawn(move || ours(&["-f", "--show", &f]))
        })
        .collect();
    let mut devs: Vec<String> = threads
        .into_iter()
        .map(|t| {
            let o = t.join().unwrap();
            assert_eq!((o.code, o.stderr.as_str()), (0, ""));
            o.stdout.trim_end().to_owned()
        })
        .collect();
    for d in &devs {
        assert_eq!(sysfs(d, "loop/backing_file"), img_s);
    }
    devs.sort();
    devs.dedup();
    assert_eq!(devs.len(), 8, "{devs:?}");
    let mut bound = ul_assoc(&img);
    bound.sort();
    assert_eq!(bound, devs);
}

#[test]
fn bad_input_fails_cleanly_and_leaves_nothing_bound() {
    let sc = Scratch::new("bad");
    let img = sc.file("ok.img", 1 << 20);
    let missing = sc.dir.join("missing.img");
    let dir = sc.dir.join("adir");
    std::fs::create_dir(&dir).unwrap();

    let o = ours(&["-f", "--show", s(&missing)]);
    assert_eq!((o.code, o.stdout.as_str()), (1, ""));
    assert_eq!(o.stderr, format!("losetup: {}: No such file or directory\n", missing.display()));
    for args in [&["-f", s(&dir)][..], &["-r", "-f", s(&dir)]] {
        let o = ours(args);
        assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{args:?}");
        assert_eq!(o.stderr, format!("losetup: {}: Is a directory\n", dir.display()));
    }
    for args in [
        &["-o", "-1", "-f", s(&img)][..],
        &["-o", "abc", "-f", s(&img)],
        &["--sizelimit=1Q", "-f", s(&img)],
        &["-b", "1000", "-f", s(&img)],
        &["--direct-io=maybe", "-f", s(&img)],
        &["--bogus", "-f", s(&img)],
        &["-f", s(&img), "extra"],
        &["-a", "-d", "/dev/loop0"],
        &["-r", "/dev/loop0"],
    ] {
        let o = ours(args);
        assert_eq!((o.code, o.stdout.as_str()), (2, ""), "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("losetup: ") && o.stderr.contains("Try 'losetup --help'"), "{}", o.stderr);
    }
    assert!(ours(&["-o", "-1", "-f", s(&img)]).stderr.contains("'-1'"));

    // A busy device keeps its binding; the second file is not bound anywhere.
    let other = sc.file("other.img", 1 << 20);
    let dev = attach_show(&["-f", s(&img)]);
    let o = ours(&[&dev, s(&other)]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("losetup: {dev}: Device or resource busy\n"));
    assert_eq!(sysfs(&dev, "loop/backing_file"), s(&img));
    assert!(ul_assoc(&other).is_empty());

    // -d of something unbound or not a loop device. The node points at a loop minor no
    // test uses; opening it may create the (unbound) device.
    let minor = (200..1000).find(|m| !Path::new(&format!("/sys/block/loop{m}")).exists()).unwrap();
    let node = sc.dir.join("loopnode");
    let st = run(Command::new("mknod").arg(&node).args(["b", "7", &minor.to_string()]));
    assert_eq!(st.code, 0, "{}", st.stderr);
    let o = ours(&["-d", s(&node)]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("losetup: {}: detach failed: No such device or address\n", node.display()));
    let o = ours(&["-d", s(&img)]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("losetup: {}: not a loop device\n", img.display()));
    // One bad device among several: the good ones are still detached, exit 1.
    let o = ours(&["-d", s(&node), &dev]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("detach failed"), "{}", o.stderr);

    wait_unbound(&img);
    assert!(ul_assoc(&other).is_empty());
    assert!(sc.bound().is_empty(), "{:?}", sc.bound());
}

#[test]
fn read_only_filesystem_gives_read_only_device() {
    let sc = Scratch::new("rofs");
    let mnt = sc.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = run(Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs", s(&mnt)]));
    assert_eq!(m.code, 0, "{}", m.stderr);
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = run(Command::new("umount").arg(&self.0));
        }
    }
    let _umount = Umount(mnt.clone());
    let img = mnt.join("ro.img");
    std::fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    let m = run(Command::new("mount").args(["-o", "remount,ro", s(&mnt)]));
    assert_eq!(m.code, 0, "{}", m.stderr);
    // Declared after the mount guard so its devices are detached before the unmount.
    let _cleanup = Scratch { dir: TempDir(mnt.clone()) };

    // Like util-linux: no -r, but the file cannot be opened for writing → read-only, silently.
    let o = ours(&["-f", "--show", s(&img)]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    let dev = o.stdout.trim_end().to_owned();
    assert_eq!(sysfs(&dev, "ro"), "1");
    assert_eq!(ul_fields(&dev)["RO"], "1");
    assert_eq!(ours(&["-d", &dev]).code, 0);
    wait_unbound(&img);
}

#[test]
fn find_help_show_one_and_capacity() {
    let o = ours(&["--help"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert!(o.stdout.starts_with("Usage:\n losetup"), "{}", o.stdout);

    let o = ours(&["-f"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert!(o.stdout.starts_with("/dev/loop") && o.stdout.ends_with('\n'), "{:?}", o.stdout);

    let sc = Scratch::new("cap");
    let img = sc.file("cap.img", 1 << 20);
    let dev = attach_show(&["-f", s(&img)]);
    assert_eq!(sysfs(&dev, "size"), "2048");
    std::fs::OpenOptions::new().write(true).open(&img).unwrap().set_len(2 << 20).unwrap();
    let o = ours(&["-c", &dev]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(sysfs(&dev, "size"), "4096");
    let o = ours(&["--set-capacity", &dev]);
    assert_eq!(o.code, 0);

    let (x, y) = (ours(&[&dev]), ul(&[&dev]));
    assert_eq!((x.code, x.stdout.as_str()), (0, y.stdout.as_str()));
    assert_eq!(ours(&["-d", &dev]).code, 0);
    // An unbound device cannot be shown.
    let o = ours(&[&dev]);
    if !is_bound(&dev) {
        assert_eq!(o.code, 1);
        assert_eq!(o.stderr, format!("losetup: {dev}: No such device or address\n"));
    }
}

#[test]
fn warns_about_partial_sectors() {
    let sc = Scratch::new("warn");
    let img = sc.file("odd.img", (1 << 20) + 100);
    let o = ours(&["-f", s(&img)]);
    assert_eq!(o.code, 0);
    assert_eq!(
        o.stderr,
        format!(
            "losetup: {}: Warning: file does not fit into a 512-byte sector; the end of the file will be ignored.\n",
            img.display()
        )
    );
    assert_eq!(ul_assoc(&img).len(), 1);
}

#[test]
fn non_ascii_size_suffix_is_a_usage_error() {
    // `-o 1é` used to split the suffix inside the UTF-8 sequence: a panic (SIGILL in the
    // size build, exit code -1 here), not a message.
    for off in ["1é", "0x1é", "1Kü"] {
        let (code, err) = common::fails(&ours(&["-f", "-o", off, "/nonexistent"]));
        assert_eq!(code, 2, "{off}: {err}");
        assert!(err.contains(&format!("invalid size '{off}'")), "{off}: {err}");
    }
}

#[test]
fn non_utf8_file_name_is_passed_through_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let sc = Scratch::new("latin1");
    // "café.img" in Latin-1, as a FAT stick written on an old system may name it.
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.img");
    let img = sc.dir.path().join(name);
    std::fs::File::create(&img).unwrap().set_len(1 << 20).unwrap();
    let o = run(common::applet("losetup").args(["-f", "--show"]).arg(&img));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let dev = o.stdout.trim().to_owned();
    let back = std::fs::read(format!("/sys/block/{}/loop/backing_file", dev.trim_start_matches("/dev/"))).unwrap();
    assert_eq!(back.strip_suffix(b"\n").unwrap_or(&back), img.as_os_str().as_bytes(), "the kernel got another name");
    let o = run(common::applet("losetup").arg("-j").arg(&img));
    assert_eq!((o.code, o.stdout.starts_with(&format!("{dev}: "))), (0, true), "{} {}", o.stdout, o.stderr);
    assert_eq!(ours(&["-d", &dev]).code, 0);
}
