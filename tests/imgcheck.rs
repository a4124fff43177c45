//! imgcheck as a user runs it: through a symlink named `imgcheck`, compared with coreutils
//! `sha256sum`, signed with the real `minisign`.

mod common;
use common::{applet, TempDir};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch dir whose data/ is where imgcheck runs. Results stay raw `Output`s: manifests are
/// written from imgcheck's stdout byte for byte.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = TempDir::new(&format!("imgcheck-{name}"));
        fs::create_dir_all(dir.join("data")).unwrap();
        Env { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn put(&self, name: &str, content: &[u8]) {
        fs::write(self.data().join(name), content).unwrap();
    }

    /// Run imgcheck in data/.
    fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.data(), args, None)
    }

    fn run_in(&self, cwd: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run_cmd(applet("imgcheck").args(args).current_dir(cwd), stdin)
    }

    /// Run another program in data/.
    fn sh(&self, prog: &str, args: &[&str]) -> Output {
        run_cmd(Command::new(prog).args(args).current_dir(self.data()), None)
    }
}

fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Files with the names sha256sum treats specially.
const ODD: &[&str] = &["plain.img", "sp ace", "back\\slash", "new\nline", "cr\rname", "empty", "-dash", "uni\u{e9}"];

fn populate(e: &Env) {
    for (i, n) in ODD.iter().enumerate() {
        let content: Vec<u8> = if *n == "empty" { vec![] } else { (0..i * 1000 + 7).map(|j| (j * 31 + i) as u8).collect() };
        e.put(n, &content);
    }
    // Bigger than one read block, with an odd tail.
    e.put("big.img", &(0..(3 << 20) + 333).map(|j: u32| (j.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>());
}

fn names() -> Vec<&'static str> {
    let mut v: Vec<&str> = ODD.iter().map(|n| if *n == "-dash" { "./-dash" } else { *n }).collect();
    v.push("big.img");
    v
}

#[test]
fn help_and_usage_errors() {
    let e = Env::new("usage");
    let o = e.run(&["--help"]);
    assert_eq!(code(&o), 0);
    assert!(out(&o).starts_with("Usage: imgcheck"), "{}", out(&o));
    assert!(o.stderr.is_empty());
    for bad in [
        &["-x"][..],
        &["--bogus"],
        &["-c"],
        &["--dir", "x", "f"],
        &["--quiet", "f"],
        &["-c", "S", "extra"],
        &["-c", "S", "--crc32"],
        &["-c", "S", "--sig", "S.minisig"],
        &["-c", "S", "--print-version"],
        &["-c", "S", "--pubkey", "not-a-key"],
        &["-c", "S", "--pubkey", "a", "--pubkey-file", "b"],
        &["-c", "-", "--pubkey-file", "k.pub"],
    ] {
        let o = e.run(bad);
        assert_eq!(code(&o), 2, "{bad:?}: {}", err(&o));
        assert!(err(&o).starts_with("imgcheck: "), "{bad:?}: {}", err(&o));
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn output_is_byte_identical_to_sha256sum() {
    let e = Env::new("parity");
    populate(&e);
    let n = names();
    let ours = e.run(&n);
    let theirs = e.sh("sha256sum", &n);
    assert_eq!(code(&ours), 0, "{}", err(&ours));
    assert_eq!(code(&theirs), 0);
    assert_eq!(out(&ours), out(&theirs));
    assert!(out(&ours).contains("\\"), "escaped names expected: {}", out(&ours));

    // stdin, implicit and as `-`, piped.
    let data = fs::read(e.data().join("big.img")).unwrap();
    let want = run_cmd(Command::new("sha256sum").arg("-"), Some(&data));
    for args in [&[][..], &["-"]] {
        let o = e.run_in(&e.data(), args, Some(&data));
        assert_eq!((code(&o), out(&o)), (0, out(&want)), "{args:?}");
    }
    // stdin redirected from a file (takes the regular-file path).
    let f = fs::File::open(e.data().join("sp ace")).unwrap();
    let o = applet("imgcheck").stdin(f).output().unwrap();
    let w = Command::new("sha256sum").stdin(fs::File::open(e.data().join("sp ace")).unwrap()).output().unwrap();
    assert_eq!(out(&o), out(&w));

    // Errors: reported like sha256sum, the good files still printed, exit 1.
    let args = ["plain.img", "missing", ".", "sp ace"];
    let ours = e.run(&args);
    let theirs = e.sh("sha256sum", &args);
    assert_eq!(out(&ours), out(&theirs));
    assert_eq!(code(&ours), 1);
    assert_eq!(err(&ours), err(&theirs).replace("sha256sum:", "imgcheck:"));
}

#[test]
fn check_parity_both_ways() {
    let e = Env::new("check");
    populate(&e);
    let n = names();

    // sha256sum -c reads what we write.
    let ours = e.run(&n);
    fs::write(e.data().join("OURS"), &ours.stdout).unwrap();
    let o = e.sh("sha256sum", &["-c", "--strict", "OURS"]);
    assert_eq!(code(&o), 0, "{}{}", out(&o), err(&o));

    // We read what sha256sum writes (no "./" names: ours are flat by design).
    let mut flat = vec!["--"];
    flat.extend(n.iter().map(|s| s.trim_start_matches("./")));
    let sums = e.sh("sha256sum", &flat);
    fs::write(e.data().join("SUMS"), &sums.stdout).unwrap();
    let ours = e.run(&["-c", "SUMS"]);
    let theirs = e.sh("sha256sum", &["-c", "SUMS"]);
    assert_eq!(code(&ours), 0, "{}", err(&ours));
    assert_eq!(out(&ours), out(&theirs));
    assert!(out(&ours).contains("plain.img: OK\n"));
    assert!(e.run(&["-c", "SUMS", "--quiet"]).stdout.is_empty());

    // A changed file and a missing one: same lines, same warnings, both fail.
    e.put("plain.img", b"changed");
    fs::remove_file(e.data().join("sp ace")).unwrap();
    fs::remove_file(e.data().join("new\nline")).unwrap();
    let ours = e.run(&["-c", "SUMS"]);
    let theirs = e.sh("sha256sum", &["-c", "SUMS"]);
    assert_eq!(out(&ours), out(&theirs));
    assert!(out(&ours).contains("plain.img: FAILED\n") && out(&ours).contains("sp ace: FAILED open or read\n"));
    assert_eq!(err(&ours), err(&theirs).replace("sha256sum:", "imgcheck:"));
    assert!(err(&ours).ends_with("imgcheck: WARNING: 1 computed checksum did NOT match\n"), "{}", err(&ours));
    assert_eq!(code(&ours), 3);
    assert_ne!(code(&theirs), 0);
    let quiet = e.run(&["-c", "SUMS", "--quiet"]);
    assert_eq!(code(&quiet), 3);
    assert!(!out(&quiet).contains(": OK"));

    // Only a mismatch / only a missing file.
    let one = |line: &str| {
        fs::write(e.data().join("ONE"), line).unwrap();
        (e.run(&["-c", "ONE"]), e.sh("sha256sum", &["-c", "ONE"]))
    };
    let plain_line = String::from_utf8(sums.stdout.clone()).unwrap().lines().find(|l| l.ends_with(" plain.img")).unwrap().to_owned();
    let (o, t) = one(&format!("{plain_line}\n"));
    assert_eq!((code(&o), out(&o)), (3, out(&t)));
    assert_eq!(err(&o), "imgcheck: WARNING: 1 computed checksum did NOT match\n");
    let (o, t) = one(&format!("{}  gone\n", "0".repeat(64)));
    assert_eq!((code(&o), out(&o)), (3, out(&t)));
    assert_eq!(err(&o), err(&t).replace("sha256sum:", "imgcheck:"));
    assert_eq!(err(&o), "imgcheck: gone: No such file or directory\nimgcheck: WARNING: 1 listed file could not be read\n");
}

#[test]
fn check_dir_and_manifest_from_stdin() {
    let e = Env::new("dir");
    populate(&e);
    let sums = e.sh("sha256sum", &["plain.img", "big.img"]);
    fs::write(e.dir.join("SUMS"), &sums.stdout).unwrap();
    let data = e.data();
    let d = data.to_str().unwrap();
    // Names are relative to --dir, not to the manifest's directory nor... the cwd here (/).
    let o = e.run_in(Path::new("/"), &["-c", e.dir.join("SUMS").to_str().unwrap(), "--dir", d], None);
    assert_eq!((code(&o), out(&o).as_str()), (0, "plain.img: OK\nbig.img: OK\n"), "{}", err(&o));
    let o = e.run_in(e.dir.path(), &["-c", "SUMS"], None);
    assert_eq!(code(&o), 3, "cwd has no such files: {}", out(&o));
    let o = e.run_in(Path::new("/"), &["-c", "-", "--dir", d], Some(&sums.stdout));
    assert_eq!((code(&o), out(&o).as_str()), (0, "plain.img: OK\nbig.img: OK\n"));
}

#[test]
fn malformed_manifests_fail_verification_with_line_numbers() {
    let e = Env::new("strict");
    populate(&e);
    let good = out(&e.sh("sha256sum", &["plain.img"]));
    let h = &good[..64];
    let cases: &[(String, &str)] = &[
        (format!("{good}{h}  ../plain.img\n"), "SUMS:2: name contains '/'"),
        (format!("\n{h}  ..\n"), "SUMS:2: name is '.' or '..'"),
        (format!("{}  plain.img\n", &h[2..]), "SUMS:1: digest is not 64 hex digits"),
        (format!("{good}# c\n{good}"), "SUMS:3: duplicate name 'plain.img' (first on line 1)"),
        (format!("{good}{h}  {}\n", "x".repeat(5000)), "SUMS:2: line is longer than 4096 bytes"),
        ("garbage\n".to_string(), "SUMS:1: expected 'SHA256  NAME'"),
        ("\n".to_string(), "SUMS: no checksum lines"),
        ("\n".repeat((1 << 20) + 1), "SUMS: manifest is larger than 1 MiB"),
    ];
    for (text, msg) in cases {
        fs::write(e.data().join("SUMS"), text).unwrap();
        let o = e.run(&["-c", "SUMS"]);
        assert_eq!((code(&o), err(&o)), (3, format!("imgcheck: {msg}\n")));
        assert!(o.stdout.is_empty(), "nothing is checked from a bad manifest");
    }
    let o = e.run(&["-c", "NOPE"]);
    assert_eq!((code(&o), err(&o).as_str()), (1, "imgcheck: NOPE: No such file or directory\n"));
}

#[test]
fn crc32_in_the_same_pass() {
    let e = Env::new("crc");
    populate(&e);
    let n = ["big.img", "empty", "sp ace"];
    let o = e.run(&["--crc32", n[0], n[1], n[2]]);
    assert_eq!(code(&o), 0);
    let sha = out(&e.sh("sha256sum", &n));
    let py = "import sys,zlib\nfor f in sys.argv[1:]: print('%08x' % zlib.crc32(open(f,'rb').read()))";
    let mut args = vec!["-c", py];
    args.extend(n);
    let crcs = out(&e.sh("python3", &args));
    let want: String = sha
        .lines()
        .zip(crcs.lines())
        .map(|(s, c)| format!("{}  {c}  {}\n", &s[..64], &s[66..]))
        .collect();
    assert_eq!(out(&o), want);
    assert!(out(&o).contains("  00000000  empty\n"));
}

fn minisign(e: &Env, args: &[&str]) {
    let o = e.sh("minisign", args);
    assert!(o.status.success(), "minisign {args:?}: {}{}", out(&o), err(&o));
}

#[test]
fn minisign_signed_manifests() {
    let e = Env::new("sign");
    populate(&e);
    minisign(&e, &["-G", "-W", "-p", "../k.pub", "-s", "../k.key"]);
    minisign(&e, &["-G", "-W", "-p", "../other.pub", "-s", "../other.key"]);
    let sums = e.sh("sha256sum", &["plain.img", "big.img"]).stdout;
    fs::write(e.data().join("SHA256SUMS"), &sums).unwrap();
    minisign(&e, &["-S", "-m", "SHA256SUMS", "-t", "version=7", "-s", "../k.key"]);
    let key = "../k.pub";
    let b64 = fs::read_to_string(e.dir.join("k.pub")).unwrap().lines().nth(1).unwrap().to_owned();

    let ok = e.run(&["-c", "SHA256SUMS", "--pubkey-file", key]);
    assert_eq!((code(&ok), out(&ok).as_str()), (0, "plain.img: OK\nbig.img: OK\n"), "{}", err(&ok));
    let ok = e.run(&["-c", "SHA256SUMS", "--sig", "SHA256SUMS.minisig", "--pubkey", &b64]);
    assert_eq!(code(&ok), 0, "{}", err(&ok));
    let v = e.run(&["-c", "SHA256SUMS", "--pubkey-file", key, "--print-version"]);
    assert_eq!((code(&v), out(&v).as_str(), err(&v).as_str()), (0, "7\n", ""));

    let fails = |args: &[&str], want: &str| {
        let mut a = vec!["-c", "SHA256SUMS"];
        a.extend_from_slice(args);
        let o = e.run(&a);
        assert_eq!((code(&o), err(&o)), (3, format!("imgcheck: {want}\n")), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: no file is checked before the signature verifies");
    };
    let bad = "SHA256SUMS.minisig: signature verification failed";
    fails(&["--pubkey-file", "../other.pub"], &format!("{bad}: made with a different key"));
    let sig = fs::read_to_string(e.data().join("SHA256SUMS.minisig")).unwrap();

    // Trusted comment edited to a newer version.
    assert!(sig.contains("trusted comment: version=7\n"));
    fs::write(e.data().join("SHA256SUMS.minisig"), sig.replace("version=7", "version=8")).unwrap();
    fails(&["--pubkey-file", key], bad);
    fails(&["--pubkey-file", key, "--print-version"], bad);

    // Signature line changed.
    let mut lines: Vec<String> = sig.lines().map(str::to_owned).collect();
    let c = lines[1].remove(20);
    lines[1].insert(20, if c == 'Q' { 'R' } else { 'Q' });
    fs::write(e.data().join("SHA256SUMS.minisig"), lines.join("\n") + "\n").unwrap();
    fails(&["--pubkey-file", key], bad);

    // Manifest changed (a line appended that would verify) with the good signature.
    fs::write(e.data().join("SHA256SUMS.minisig"), &sig).unwrap();
    let mut more = sums.clone();
    more.extend_from_slice(&e.sh("sha256sum", &["empty"]).stdout);
    fs::write(e.data().join("SHA256SUMS"), &more).unwrap();
    fails(&["--pubkey-file", key], bad);
    fs::write(e.data().join("SHA256SUMS"), &sums).unwrap();
    assert_eq!(code(&e.run(&["-c", "SHA256SUMS", "--pubkey-file", key])), 0);

    // Not a signature; missing signature (an I/O failure, still nonzero).
    fs::write(e.data().join("junk.minisig"), "hello\n").unwrap();
    fails(&["--pubkey-file", key, "--sig", "junk.minisig"], "junk.minisig: not a minisign signature");
    let o = e.run(&["-c", "SHA256SUMS", "--pubkey-file", key, "--sig", "none.minisig"]);
    assert_eq!((code(&o), err(&o).as_str()), (1, "imgcheck: none.minisig: No such file or directory\n"));

    // A verified manifest whose files do not match still fails.
    e.put("big.img", b"replaced");
    let o = e.run(&["-c", "SHA256SUMS", "--pubkey-file", key]);
    assert_eq!((code(&o), out(&o).as_str()), (3, "plain.img: OK\nbig.img: FAILED\n"));

    // Legacy (-l) signatures verify too; a comment without version= has no version to print.
    minisign(&e, &["-S", "-l", "-m", "SHA256SUMS", "-t", "built today", "-s", "../k.key", "-x", "legacy.minisig"]);
    let o = e.run(&["-c", "SHA256SUMS", "--pubkey-file", key, "--sig", "legacy.minisig", "--quiet"]);
    assert_eq!((code(&o), out(&o).as_str()), (3, "big.img: FAILED\n"));
    let o = e.run(&["-c", "SHA256SUMS", "--pubkey-file", key, "--sig", "legacy.minisig", "--print-version"]);
    assert_eq!((code(&o), err(&o).as_str()), (3, "imgcheck: legacy.minisig: no version=N in trusted comment 'built today'\n"));
}

#[test]
fn progress_line_goes_to_stderr_only() {
    let e = Env::new("progress");
    let mut child = applet("imgcheck")
        .args(["--progress", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'a'; 1 << 20];
    // Not a terminal and no total: a line every 10 s, so only the final one within the pause.
    stdin.write_all(&chunk).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    stdin.write_all(&chunk).unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let want = run_cmd(Command::new("sha256sum").arg("-"), Some(&[chunk.clone(), chunk].concat()));
    assert_eq!((code(&o), out(&o)), (0, out(&want)));
    let s = err(&o);
    assert!(s.starts_with("-: 2.0M ") && s.ends_with("/s done\n") && s.lines().count() == 1, "{s:?}");
    assert!(!s.contains(['\r', '\x1b', '%']), "{s:?}");
    // Not a terminal: no progress unless asked.
    let o = e.run_in(e.dir.path(), &[], Some(&[0u8; 1000]));
    assert!(o.stderr.is_empty());
}

fn resident_bytes(path: &Path) -> u64 {
    let o = Command::new("fincore").args(["-b", "-n", "-o", "RES"]).arg(path).output().unwrap();
    assert!(o.status.success(), "fincore: {}", err(&o));
    out(&o).trim().parse().unwrap()
}

#[test]
fn page_cache_dropped_only_where_we_filled_it() {
    let e = Env::new("cache");
    let p = e.data().join("img");
    // Crosses a 64 MiB residency window and several 16 MiB drop steps; odd tail.
    let size = (72u64 << 20) + 5000;
    let mut f = fs::File::create(&p).unwrap();
    let block: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
    for _ in 0..size >> 20 {
        f.write_all(&block).unwrap();
    }
    f.write_all(&block[..5000]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let dd_nocache = |args: &[&str]| {
        let o = Command::new("dd").arg(format!("if={}", p.display())).args(["iflag=nocache", "of=/dev/null", "status=none"]).args(args).output().unwrap();
        assert!(o.status.success(), "dd: {}", err(&o));
    };
    // This machine's memory manager may take back the odd cached page at any time, so the
    // checks allow a little less, and read-ahead across a window edge a little more.
    const SLACK: u64 = 4 << 20;
    let mib = |b: u64| b as f64 / 1048576.0;

    // Cold file: read through, then dropped again.
    dd_nocache(&["count=0"]);
    assert_eq!(resident_bytes(&p), 0, "could not drop the test file from the page cache");
    let o = e.run(&["img"]);
    assert_eq!(code(&o), 0);
    let after = resident_bytes(&p);
    assert!(after <= SLACK, "cold file left {:.1} MiB cached", mib(after));

    // Warm file (e.g. the image the box runs from): left cached.
    fs::read(&p).unwrap();
    let before = resident_bytes(&p);
    assert!(before > size - SLACK, "could not cache the test file ({:.1} MiB)", mib(before));
    let o2 = e.run(&["img"]);
    assert_eq!(out(&o2), out(&o));
    let after = resident_bytes(&p);
    assert!(after + SLACK >= before, "warm file: {:.1} MiB cached before, {:.1} after", mib(before), mib(after));

    // Partly cached: only the 20 MiB hole we read in is dropped again.
    fs::read(&p).unwrap();
    dd_nocache(&["bs=1M", "skip=10", "count=20"]);
    let before = resident_bytes(&p);
    assert!(before < size - (16 << 20), "could not uncache the middle ({:.1} MiB cached)", mib(before));
    assert_eq!(code(&e.run(&["img"])), 0);
    let after = resident_bytes(&p);
    assert!(after + SLACK >= before && after <= before + SLACK, "hole: {:.1} MiB before, {:.1} after", mib(before), mib(after));
}

// --- dm-verity sidecars, side by side with Debian's veritysetup (package cryptsetup-bin) ---

const SALT: &str = "5eed00112233445566778899aabbccddeeff00112233445566778899aabbccdd";
const UUID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// Pseudo-random content, distinct per block, so a tree built from the wrong block differs.
fn content(len: usize, seed: u32) -> Vec<u8> {
    common::xorshift_bytes(len, seed.wrapping_mul(2654435761) | 1)
}

fn veritysetup(e: &Env, args: &[&str]) -> Output {
    let o = e.sh("veritysetup", args);
    assert_eq!(code(&o), 0, "veritysetup {args:?}: {}{}", out(&o), err(&o));
    o
}

fn cmp(e: &Env, a: &str, b: &str) {
    let o = e.sh("cmp", &[a, b]);
    assert_eq!(code(&o), 0, "cmp {a} {b}: {}{}", out(&o), err(&o));
}

#[test]
fn verity_sidecars_identical_to_veritysetup() {
    let e = Env::new("verity-parity");
    // One block; not a multiple of the block (the tail is not covered, as veritysetup does); two
    // levels (129 blocks, 20 MiB); three levels (16385 blocks).
    for (i, len) in [4096usize, 4096 * 3 + 1000, 129 * 4096, 20 << 20, 16385 * 4096].into_iter().enumerate() {
        let ours = format!("img{i}");
        let theirs = format!("ref{i}");
        let data = content(len, i as u32 + 1);
        e.put(&ours, &data);
        e.put(&theirs, &data);
        veritysetup(
            &e,
            &["format", &theirs, &format!("{theirs}.verity"), "--salt", SALT, "--uuid", UUID, "--root-hash-file", &format!("{theirs}.roothash")],
        );
        let o = e.run(&["--verity-format", &ours, "--salt", SALT, "--uuid", UUID]);
        assert_eq!(code(&o), 0, "{len}: {}", err(&o));
        cmp(&e, &format!("{ours}.verity"), &format!("{theirs}.verity"));
        cmp(&e, &format!("{ours}.roothash"), &format!("{theirs}.roothash"));
        let root = fs::read_to_string(e.data().join(format!("{theirs}.roothash"))).unwrap();
        assert_eq!(out(&o), format!("{root}\n"), "stdout is the root hash");
        if len % 4096 != 0 {
            assert!(err(&o).contains("are not covered by the tree"), "{}", err(&o));
        } else {
            assert!(o.stderr.is_empty(), "{}", err(&o));
            let v = e.run(&["--verity-verify", &ours]);
            assert_eq!((code(&v), out(&v)), (0, format!("{ours}: OK ({} blocks)\n", len / 4096)), "{}", err(&v));
        }
        // No temporary files left behind.
        let left: Vec<String> = fs::read_dir(e.data())
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn verity_defaults_random_salt_and_uuid_accepted_by_veritysetup() {
    let e = Env::new("verity-defaults");
    e.put("a.img", &content(300 * 4096, 9));
    let mut salts = Vec::new();
    for _ in 0..2 {
        let o = e.run(&["--verity-format", "a.img"]);
        assert_eq!(code(&o), 0, "{}", err(&o));
        let root = fs::read_to_string(e.data().join("a.img.roothash")).unwrap();
        assert_eq!(root.len(), 64);
        veritysetup(&e, &["verify", "a.img", "a.img.verity", &root]);
        let dump = out(&veritysetup(&e, &["dump", "a.img.verity"]));
        let salt = dump.lines().find(|l| l.starts_with("Salt:")).unwrap().split_whitespace().nth(1).unwrap().to_owned();
        assert_eq!(salt.len(), 64, "32 bytes of salt: {dump}");
        assert!(dump.contains("Hash algorithm:  \tsha256"), "{dump}");
        salts.push((salt, dump.lines().find(|l| l.starts_with("UUID:")).unwrap().to_owned()));
    }
    assert_ne!(salts[0].0, salts[1].0, "a fresh salt each time");
    assert_ne!(salts[0].1, salts[1].1, "a fresh uuid each time");
}

#[test]
fn verity_verify_names_the_bad_block() {
    let e = Env::new("verity-verify");
    let data = content(200 * 4096, 3);
    e.put("i.img", &data);
    let o = e.run(&["--verity-format", "i.img", "--salt", SALT, "--uuid", UUID]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let root = fs::read_to_string(e.data().join("i.img.roothash")).unwrap();
    let tree = fs::read(e.data().join("i.img.verity")).unwrap();
    let ok = e.run(&["--verity-verify", "i.img", "--roothash", &root]);
    assert_eq!(code(&ok), 0, "{}", err(&ok));
    e.put("rh", root.as_bytes());
    assert_eq!(code(&e.run(&["--verity-verify", "i.img", "--roothash-file", "rh"])), 0);

    let fails = |args: &[&str], want: &str| {
        let o = e.run(args);
        assert_eq!(code(&o), 3, "{args:?}: {}", err(&o));
        assert!(o.stdout.is_empty());
        assert_eq!(err(&o).lines().last().unwrap(), want, "{args:?}");
    };
    // One byte of data block 150 changed.
    let mut bad = data.clone();
    bad[150 * 4096 + 17] ^= 0x40;
    e.put("i.img", &bad);
    fails(&["--verity-verify", "i.img"], "imgcheck: i.img: data block 150 (bytes 614400-618495) does not match the hash tree");
    // veritysetup agrees that it is corrupt.
    assert_ne!(code(&e.sh("veritysetup", &["verify", "i.img", "i.img.verity", &root])), 0);
    e.put("i.img", &data);
    // A digest in level 0 (hash block 2, after the superblock and the top block) changed.
    let mut t = tree.clone();
    t[2 * 4096 + 40] ^= 1;
    e.put("i.img.verity", &t);
    fails(&["--verity-verify", "i.img"], "imgcheck: i.img.verity: hash block 2 (tree level 0) does not match the level above");
    // The top block changed, or another root hash.
    let mut t = tree.clone();
    t[4096 + 3] ^= 1;
    e.put("i.img.verity", &t);
    let root_msg = "imgcheck: i.img.verity: hash tree does not match the root hash (wrong root hash, or a corrupt tree)";
    fails(&["--verity-verify", "i.img"], root_msg);
    e.put("i.img.verity", &tree);
    let other = format!("{}{}", if root.starts_with('0') { "1" } else { "0" }, &root[1..]);
    fails(&["--verity-verify", "i.img", "--roothash", &other], root_msg);
    // A bad superblock, a foreign algorithm, a truncated tree, a grown image.
    let mut t = tree.clone();
    t[0] = b'X';
    e.put("i.img.verity", &t);
    fails(&["--verity-verify", "i.img"], "imgcheck: i.img.verity: no \"verity\" signature (not a veritysetup hash file)");
    let mut t = tree.clone();
    t[32..38].copy_from_slice(b"sha1\0\0");
    e.put("i.img.verity", &t);
    let o = e.run(&["--verity-verify", "i.img"]);
    assert_eq!(code(&o), 3);
    assert!(err(&o).contains("hash algorithm 'sha1' is not supported (only sha256"), "{}", err(&o));
    e.put("i.img.verity", &tree[..tree.len() - 4096]);
    let o = e.run(&["--verity-verify", "i.img"]);
    assert_eq!(code(&o), 3);
    assert!(err(&o).contains("the tree for 200 data blocks needs"), "{}", err(&o));
    e.put("i.img.verity", &tree);
    let mut grown = data.clone();
    grown.extend_from_slice(&[0u8; 4096]);
    e.put("i.img", &grown);
    let o = e.run(&["--verity-verify", "i.img"]);
    assert_eq!(code(&o), 3);
    assert!(err(&o).contains("the rest would be unverified"), "{}", err(&o));
    // A root hash file that is not hex.
    e.put("i.img", &data);
    e.put("i.img.roothash", b"not a hash\n");
    fails(&["--verity-verify", "i.img"], "imgcheck: i.img.roothash: not a root hash (one line of hex)");
}

#[test]
fn verity_usage_and_io_errors() {
    let e = Env::new("verity-usage");
    e.put("small", b"tiny");
    e.put("ok.img", &content(4096, 1));
    for bad in [
        &["--verity-format"][..],
        &["--verity-format", "ok.img", "--salt", "xyz"],
        &["--verity-format", "ok.img", "--salt", &"00".repeat(257)],
        &["--verity-format", "ok.img", "--uuid", "nope"],
        &["--verity-format", "ok.img", "extra"],
        &["--verity-format", "ok.img", "--verity-verify", "ok.img"],
        &["--verity-format", "ok.img", "-c", "S"],
        &["--salt", "00", "ok.img"],
        &["--roothash", "00"],
        &["--verity-verify", "ok.img", "--roothash", "00", "--roothash-file", "f"],
    ] {
        let o = e.run(bad);
        assert_eq!(code(&o), 2, "{bad:?}: {}", err(&o));
        assert!(err(&o).starts_with("imgcheck: "), "{bad:?}: {}", err(&o));
    }
    let o = e.run(&["--verity-format", "small"]);
    assert_eq!((code(&o), err(&o).as_str()), (1, "imgcheck: small: 4 bytes: smaller than one 4096-byte block\n"));
    let o = e.run(&["--verity-format", "missing"]);
    assert_eq!((code(&o), err(&o).as_str()), (1, "imgcheck: missing: No such file or directory\n"));
    assert!(!e.data().join("small.verity").exists() && !e.data().join("small.roothash").exists());
    let o = e.run(&["--verity-verify", "ok.img"]);
    assert_eq!((code(&o), err(&o).as_str()), (1, "imgcheck: ok.img.roothash: No such file or directory\n"));
    // An empty salt (`-`) is what `veritysetup --salt -` writes.
    let o = e.run(&["--verity-format", "ok.img", "--salt", "-", "--uuid", UUID]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    e.put("ref.img", &content(4096, 1));
    veritysetup(&e, &["format", "ref.img", "ref.img.verity", "--salt", "-", "--uuid", UUID]);
    cmp(&e, "ok.img.verity", "ref.img.verity");
}

#[test]
fn latin1_names_are_hashed_and_checked_exactly_as_sha256sum() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new("latin1");
    // "café" in Latin-1, inside a directory named the same way: not UTF-8 anywhere.
    let dir = env.data().join(OsStr::from_bytes(b"d\xe9p\xf4t"));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join(OsStr::from_bytes(b"caf\xe9"));
    fs::write(&file, b"latin-1 file name\n").unwrap();

    let ours = run_cmd(applet("imgcheck").arg(&file), None);
    let theirs = Command::new("sha256sum").arg(&file).output().unwrap();
    assert_eq!((ours.status.code(), theirs.status.code()), (Some(0), Some(0)), "{}", String::from_utf8_lossy(&ours.stderr));
    assert_eq!(ours.stdout, theirs.stdout, "imgcheck and sha256sum disagree on the name");

    // A manifest in that directory, checked from elsewhere with -c and --dir.
    let sums = run_cmd(applet("imgcheck").arg(OsStr::from_bytes(b"caf\xe9")).current_dir(&dir), None);
    assert_eq!(sums.status.code(), Some(0), "{}", String::from_utf8_lossy(&sums.stderr));
    let manifest = dir.join("SHA256SUMS");
    fs::write(&manifest, &sums.stdout).unwrap();
    let ours = run_cmd(applet("imgcheck").arg("-c").arg(&manifest).arg("--dir").arg(&dir).current_dir(env.data()), None);
    let theirs = Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&dir).output().unwrap();
    assert_eq!((ours.status.code(), theirs.status.code()), (Some(0), Some(0)), "{}", String::from_utf8_lossy(&ours.stderr));
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.stdout, b"caf\xe9: OK\n");
}
