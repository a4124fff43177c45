//! The fuzz targets: the parsers that read what the outside hands us (kernel command line,
//! manifest, signature, HTTP head, kernel replies, sysfs, disk images), each with structure-aware
//! seeds built in code. Two drivers run them:
//!
//! - libFuzzer, coverage-guided (`make fuzz`, mk/fuzz.sh, the `fuzz/` crate): this module is built
//!   into it through the `fuzzing` feature. It runs on stable Rust (the `sancov-module` pass).
//! - the mutation loop below, without coverage feedback (inputs a parser still accepts join the
//!   corpus), every input under `catch_unwind` with overflow checks on: `cargo test` (and `make
//!   test`) runs each target for `FUZZ_SECONDS` (default 1) with a fixed seed (`FUZZ_SEED`,
//!   `FUZZ_TARGETS=a,b` to pick), then replays every file under `tests/fuzz/<target>/`, the
//!   regression inputs both drivers save crashes to. Commit a crash file with its fix.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fuzz target: `run` feeds one input to a parser and says whether it was accepted.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> bool,
    pub seeds: fn() -> Vec<Vec<u8>>,
}

const fn t(name: &'static str, run: fn(&[u8]) -> bool, seeds: fn() -> Vec<Vec<u8>>) -> Target {
    Target { name, run, seeds }
}

/// Every target. Adding one is one line: a name (also the directory under tests/fuzz/), a
/// function that feeds the bytes to the parser, and a function that returns valid inputs.
pub const TARGETS: &[Target] = &[
    t("cmdline", run_cmdline, seeds_cmdline),
    t("size", run_size, seeds_size),
    t("manifest", run_manifest, seeds_manifest),
    t("minisign", run_minisign, seeds_minisign),
    t("http-head", run_http_head, seeds_http_head),
    t("dm-targets", run_dm_targets, seeds_dm_targets),
    t("dm-names", run_dm_names, seeds_dm_names),
    t("dm-status", run_dm_status, seeds_dm_status),
    t("md-sysfs", run_md_sysfs, seeds_md_sysfs),
    t("probe", run_probe, seeds_probe),
    t("state", run_state, seeds_state),
    t("roothash", run_roothash, seeds_roothash),
    t("verity", run_verity, seeds_verity),
    t("syslinux", run_syslinux, seeds_syslinux),
    t("modalias", run_modalias, seeds_modalias),
    t("fat-names", run_fat_names, seeds_fat_names),
    t("trial", run_trial, seeds_trial),
    t("rollout", run_rollout, seeds_rollout),
    t("zidx", run_zidx, seeds_zidx),
    t("multipart", run_multipart, seeds_multipart),
    t("mountinfo", run_mountinfo, seeds_mountinfo),
    t("loader-entries", run_loader_entries, seeds_loader_entries),
    t("settings", run_settings, seeds_settings),
    t("password", run_password, seeds_password),
    t("efivar", run_efivar, seeds_efivar),
    // New targets here: t(NAME, run_NAME, seeds_NAME), NAME also the folder under tests/fuzz/.
];

/// The recovery hash (first line) and a password (the rest): parsed always, verified when the
/// hash asks for few rounds (a million rounds per input would stall the loop, not find bugs).
fn run_password(d: &[u8]) -> bool {
    let (line, pw) = match d.iter().position(|&b| b == b'\n') {
        Some(i) => (d.get(..i).unwrap_or(d), d.get(i + 1..).unwrap_or(&[])),
        None => (d, &[][..]),
    };
    match crate::password::Hash::parse(&text(line)) {
        Ok(h) => {
            if h.rounds <= 2000 {
                let _ = h.verify(pw);
            }
            true
        }
        Err(_) => false,
    }
}

fn seeds_password() -> Vec<Vec<u8>> {
    [
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.\nthe minimum number is still observed",
        "$6$rounds=1000$$GMD1/FEr/OrKov0xfxT.FS3qfyZ0QenNY9v/5g7pxwyMFjR6B3P9RJ0jNNhMkr2Zh.vbhcRqyqtqVTZx.tNH81\n",
        "$6$rounds=2000$abc$BjdW5R0NP9fAZAFlFqXrEpllwtM50YkZmk7oKsPrMdCJkXlJm4V8SAdiyjiqKEFw6wYk6Nu6kDKM2wR0UTs9s0\nhello",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn text(d: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(d)
}

fn run_cmdline(d: &[u8]) -> bool {
    let s = text(d);
    let _ = crate::cmdline::split(&s);
    let _ = crate::cmdline::normalize_spec(&s);
    crate::cmdline::parse(&s).map(|l| l.to_shell()).is_ok()
}

fn seeds_cmdline() -> Vec<Vec<u8>> {
    [
        "BOOT_IMAGE=/vmlinuz root=live:LABEL=LIVE rd.live.image quiet",
        "root=live:UUID=ab-cd rd.live.dir=live rd.live.squashimg=squashfs.img rd.live.ram=1 rd.minmem=512 rd.live.overlay.size=64M rd.live.check live.md=md7 rd.retry=30 rd.shell=0 init=/sbin/init",
        "root=live:LABEL=\"it's $(x)\" rd.live.overlay.size=8 -- single",
        "root=live:LABEL=LIVE live.fetch=http://10.0.2.100/img/ ip=eth0:dhcp live.fetch.timeout=9 live.fetch.allow-downgrade live.pubkey=RWQx",
        "root=live:http://h:8080/live/ ip=dhcp",
        "root=live:CDLABEL=x rd.break console=ttyS0",
        "root=live:PARTUUID=0badcafe-02 rd.live.overlay.size=99999999999999999999999M",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// The two EFI variables the installed boot reads (core/src/efivar.rs): the bytes split at the
/// first 0xff into LoaderDevicePartUUID's value and LiverootInstalled's.
fn run_efivar(d: &[u8]) -> bool {
    let (a, b) = match d.iter().position(|&x| x == 0xff) {
        Some(i) => (d.get(..i).unwrap_or(d), d.get(i + 1..).unwrap_or(&[])),
        None => (d, &[][..]),
    };
    let _ = crate::efivar::utf16(a);
    if let Some(r) = crate::efivar::Installed::parse(b) {
        assert_eq!(crate::efivar::Installed::parse(&r.to_bytes()).as_ref(), Some(&r), "a parsed record writes back the same");
        let _ = r.key_matches(a);
    }
    crate::efivar::installed_root(Some(a), Some(b)).is_some()
}

fn seeds_efivar() -> Vec<Vec<u8>> {
    let guid = "a85ef7cd-7428-4401-8ef9-258cb4b8f528";
    let loader: Vec<u8> = guid.to_uppercase().encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
    let rec = format!("esp={guid}\nroot=1453df1e-7628-443c-a7e7-cbdb8b965a13\nkey={}\n", "0f".repeat(32));
    let mut one = loader.clone();
    one.push(0xff);
    one.extend_from_slice(rec.as_bytes());
    let mut other = loader;
    other.push(0xff);
    other.extend_from_slice(b"esp=x\nroot=\n\0garbage");
    vec![one, other]
}

fn run_settings(d: &[u8]) -> bool {
    let mut live = crate::cmdline::Live::default();
    let m = crate::settings::merge(&mut live, "root=live:LABEL=LIVE ip=dhcp", d);
    let _ = m.lines();
    let _ = live.to_shell();
    crate::settings::check(d).is_ok()
}

fn seeds_settings() -> Vec<Vec<u8>> {
    [
        "# this stick\nlive.fetch=http://10.0.2.100/img/\nlive.fetch.timeout=60\nip=eth0:dhcp\nrd.live.machine_id=box-7\n",
        "\u{feff}live.fetch = http://h:8080/live/\r\nrd.live.machine_id=a\r\n",
        "live.pubkey=RWQx\nrd.break\ninit=/bin/sh\n=x\nlive.fetch.timeout=99999999999999999999\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn run_size(d: &[u8]) -> bool {
    let s = text(d);
    let args: Vec<String> = s.split(' ').map(str::to_owned).collect();
    let _ = crate::cli::normalize(&args, "ob");
    crate::cli::parse_size(&s).map(crate::cli::size_str).is_ok()
}

fn seeds_size() -> Vec<Vec<u8>> {
    ["512", "1K", "1KiB", "1KB", "2M", "3g", "0x200", "7E", "-o512 --sizelimit=1M -rf"].iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn run_manifest(d: &[u8]) -> bool {
    match crate::manifest::parse("SUMS", d) {
        Ok(m) => {
            for e in &m.entries {
                let _ = crate::manifest::quote_name(&e.name);
                let _ = crate::manifest::escape(&e.name);
            }
            true
        }
        Err(_) => false,
    }
}

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIX}{name}")).unwrap_or_default()
}

/// The fixture manifest and key, read once (the minisign target runs them thousands of times).
fn signed() -> &'static (Vec<u8>, Option<minisign_verify::PublicKey>) {
    static S: std::sync::OnceLock<(Vec<u8>, Option<minisign_verify::PublicKey>)> = std::sync::OnceLock::new();
    S.get_or_init(|| (fixture("SHA256SUMS"), crate::manifest::pubkey_from_file(format!("{FIX}minisign.pub").as_ref()).ok()))
}

fn seeds_manifest() -> Vec<Vec<u8>> {
    let h = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    vec![
        fixture("SHA256SUMS"),
        format!("{h}  a.img\n{h} *B\r\n# comment\n\n\\{h}  x\\\\y\\nz\n").into_bytes(),
        format!("{h}  squashfs.img\n{h}  squashfs.img.verity\n{h}  squashfs.img.roothash\n").into_bytes(),
    ]
}

/// The input is a signature file, checked over the fixture manifest with the fixture key; and,
/// as text, a public key.
fn run_minisign(d: &[u8]) -> bool {
    let _ = crate::manifest::pubkey_from_base64(&text(d));
    let (data, Some(k)) = signed() else { return false };
    match crate::manifest::verify_signature(data, d, "S.minisig", k) {
        Ok(tc) => {
            let _ = crate::rollout::version(&tc);
            true
        }
        Err(_) => {
            let _ = crate::rollout::version(&text(d));
            false
        }
    }
}

fn seeds_minisign() -> Vec<Vec<u8>> {
    let pubkey = fixture("minisign.pub");
    let line = text(&pubkey).lines().nth(1).unwrap_or("").as_bytes().to_vec();
    vec![fixture("SHA256SUMS.minisig"), fixture("SHA256SUMS.legacy.minisig"), line]
}

fn run_http_head(d: &[u8]) -> bool {
    let _ = crate::http::parse_url(&text(d));
    match crate::http::parse_head(d) {
        Ok(h) => {
            if let Some(l) = h.header("location") {
                let _ = crate::http::parse_url(l);
            }
            true
        }
        Err(_) => false,
    }
}

fn seeds_http_head() -> Vec<Vec<u8>> {
    [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nAccept-Ranges: bytes\r\n\r\nhello",
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-2/9\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n",
        "HTTP/1.0 302 Found\r\nLocation: http://[::1]:8080/x/y\r\ncontent-length: 0, 0\r\n\r\n",
        "HTTP/1.1 301 Moved\r\nLocation: /other\r\nTransfer-Encoding: identity\r\n\r\n",
        "http://10.0.2.100:8080/img/SHA256SUMS",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// First 4 bytes: the target count the kernel reports; the rest: the reply.
fn run_dm_targets(d: &[u8]) -> bool {
    let count = u32::from_le_bytes([0, 1, 2, 3].map(|i| d.get(i).copied().unwrap_or(0)));
    crate::sys::dm::decode_targets(d.get(4..).unwrap_or(&[]), count)
        .map(|ts| ts.iter().map(|t| t.to_string().len()).sum::<usize>())
        .is_some()
}

fn seeds_dm_targets() -> Vec<Vec<u8>> {
    let mut b = vec![0u8; 200];
    for (i, (at, next, kind, params)) in
        [(0usize, 48u32, "linear", "7:0 0"), (48, 104, "snapshot", "7:0 7:1 P 8"), (104, 0, "zero", "x")].iter().enumerate()
    {
        b[*at..at + 8].copy_from_slice(&(i as u64 * 10).to_ne_bytes());
        b[at + 8..at + 16].copy_from_slice(&10u64.to_ne_bytes());
        b[at + 20..at + 24].copy_from_slice(&next.to_ne_bytes());
        b[at + 24..at + 24 + kind.len()].copy_from_slice(kind.as_bytes());
        b[at + 40..at + 40 + params.len()].copy_from_slice(params.as_bytes());
    }
    let with = |n: u32, b: &[u8]| [&n.to_le_bytes()[..], b].concat();
    vec![with(3, &b), with(1, &b[..60])]
}

fn run_dm_names(d: &[u8]) -> bool {
    crate::sys::dm::decode_names(d).is_some()
}

fn seeds_dm_names() -> Vec<Vec<u8>> {
    let mut b = vec![0u8; 64];
    let rec = |b: &mut Vec<u8>, at: usize, dev: u64, next: u32, name: &str| {
        b[at..at + 8].copy_from_slice(&dev.to_ne_bytes());
        b[at + 8..at + 12].copy_from_slice(&next.to_ne_bytes());
        b[at + 12..at + 12 + name.len()].copy_from_slice(name.as_bytes());
        b[at + 24..at + 28].copy_from_slice(&7u32.to_ne_bytes());
    };
    rec(&mut b, 0, crate::sys::sysfs::encode_dev(254, 0), 32, "live-rw");
    rec(&mut b, 32, crate::sys::sysfs::encode_dev(254, 1), 0, "other");
    vec![b, vec![0u8; 16]]
}

fn run_dm_status(d: &[u8]) -> bool {
    crate::snapshot::describe("live-rw", &text(d)).contains(" used (")
}

fn seeds_dm_status() -> Vec<Vec<u8>> {
    ["25600/1048576 80", "Overflow", "Invalid", "Merge failed", "0/0 0", "18446744073709551615/1 1"].iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// md sysfs values: `sync_completed` (with the progress line built from it) and `dev`.
fn run_md_sysfs(d: &[u8]) -> bool {
    let s = text(d);
    let mut ok = false;
    if let Some((done, total)) = crate::sys::md::parse_sync_completed(&s) {
        let out = crate::progress::Buf::default();
        let mut r = crate::raid::SyncReport::new(done % 2 == 0, Box::new(out.clone()));
        r.update("md7", &crate::raid::SyncProgress { action: "recover".into(), done, total, speed_kib: done % 1_000_000 });
        r.finish();
        ok = true;
    }
    ok | crate::fsutil::parse_devno(&s).is_some()
}

fn seeds_md_sysfs() -> Vec<Vec<u8>> {
    ["8448 / 65536\n", "none\n", "delayed\n", "253:0\n", "18446744073709551615 / 1", "0 / 0"].iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Probe the image as is, its partition table, and the same with its GPT CRCs recomputed so
/// that mutated tables get past the checksums to the arithmetic behind them.
fn run_probe(d: &[u8]) -> bool {
    let v = d.to_vec();
    let found = match crate::probe::probe(&v) {
        Ok(Some(f)) => {
            let _ = (f.describe(), f.matches("LABEL=LIVE"), f.matches("UUID=1234-ABCD"));
            true
        }
        _ => false,
    };
    let _ = crate::probe::table(&v);
    for sector in [512, 4096] {
        if v.get(sector..sector + 8) != Some(b"EFI PART") {
            continue;
        }
        let mut w = v.clone();
        crate::probe::fix_gpt_crcs(&mut w, sector);
        if let Ok(Some(t)) = crate::probe::table(&w) {
            let _ = (t.partuuid(1), t.part(3), t.name());
        }
    }
    found
}

fn put(d: &mut [u8], at: usize, b: &[u8]) {
    if let Some(x) = d.get_mut(at..at + b.len()) {
        x.copy_from_slice(b);
    }
}

fn seeds_probe() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // ext4: superblock at 1024.
    let mut d = vec![0u8; 4096];
    put(&mut d, 1024 + 56, &0xEF53u16.to_le_bytes());
    put(&mut d, 1024 + 92, &0x4u32.to_le_bytes());
    put(&mut d, 1024 + 96, &0x42u32.to_le_bytes());
    put(&mut d, 1024 + 104, &[0x11; 16]);
    put(&mut d, 1024 + 120, b"LIVE");
    out.push(d);
    // vfat: FAT16 with a label in the root directory, and FAT32.
    let mut d = vec![0u8; 12 * 1024];
    d[0] = 0xEB;
    put(&mut d, 11, &512u16.to_le_bytes());
    d[13] = 4;
    put(&mut d, 14, &1u16.to_le_bytes());
    d[16] = 2;
    put(&mut d, 17, &512u16.to_le_bytes());
    put(&mut d, 22, &8u16.to_le_bytes());
    d[38] = 0x29;
    put(&mut d, 43, b"BOOTLABEL  ");
    put(&mut d, 510, &[0x55, 0xAA]);
    put(&mut d, 17 * 512, b"ROOT LABEL ");
    d[17 * 512 + 11] = 0x08;
    out.push(d.clone());
    put(&mut d, 22, &0u16.to_le_bytes());
    put(&mut d, 36, &4u32.to_le_bytes());
    put(&mut d, 44, &2u32.to_le_bytes());
    d[66] = 0x29;
    put(&mut d, 71, b"FAT32LABEL ");
    out.push(d);
    // iso9660: primary volume descriptor at 32 KiB.
    let mut d = vec![0u8; 34 * 1024];
    d[32768] = 1;
    put(&mut d, 32769, b"CD001");
    put(&mut d, 32768 + 40, b"LIVE CD                         ");
    put(&mut d, 32768 + 813, b"2024010203040506");
    out.push(d);
    // squashfs.
    let mut d = vec![0u8; 1024];
    put(&mut d, 0, b"hsqs");
    out.push(d);
    // MBR with two partitions.
    let mut d = vec![0u8; 512];
    put(&mut d, 440, &0x0badcafeu32.to_le_bytes());
    for (slot, start) in [(0usize, 2048u32), (1, 4096)] {
        d[446 + 16 * slot + 4] = 0x83;
        put(&mut d, 446 + 16 * slot + 8, &start.to_le_bytes());
        put(&mut d, 446 + 16 * slot + 12, &100u32.to_le_bytes());
    }
    put(&mut d, 510, &[0x55, 0xAA]);
    out.push(d);
    // GPT, 512-byte sectors; a small one (4 entries) so mutations land in the structures.
    let g = crate::probe::sample_gpt();
    let mut small = g.get(..2048).unwrap_or(&[]).to_vec();
    put(&mut small, 512 + 80, &4u32.to_le_bytes());
    small.extend_from_slice(&[0u8; 512]);
    put(&mut small, 1024, &[1]);
    put(&mut small, 1024 + 32, &34u64.to_le_bytes());
    put(&mut small, 1024 + 40, &43u64.to_le_bytes());
    crate::probe::fix_gpt_crcs(&mut small, 512);
    out.push(small);
    out.push(g);
    out
}

/// /proc/self/mountinfo as bytes: a mount point may hold any byte but NUL and '/' runs.
fn run_mountinfo(d: &[u8]) -> bool {
    let m = crate::mountinfo::parse(d);
    for x in &m {
        let _ = x.read_only();
        let _ = crate::mountinfo::at(&m, std::path::Path::new(&x.point));
    }
    !m.is_empty()
}

fn seeds_mountinfo() -> Vec<Vec<u8>> {
    let mut odd = b"36 35 98:0 / /mnt/odd\\351\\040dir rw,noatime master:1 - ext4 /dev/vda1 rw\n".to_vec();
    odd.extend_from_slice(b"37 35 0:5 / /run/x\xe9 ro shared:2 - tmpfs tmpfs ro,size=1k\n");
    vec![b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n25 22 0:21 / /run rw,nosuid - tmpfs tmpfs rw,mode=755\n".to_vec(), odd]
}

/// A loader entry file (syslinux.cfg, a systemd-boot entry): what it names, and the file
/// renamed to another release's files (mark-good), which must name exactly those, change no line
/// but the ones `named` reads as kernel or initramfs lines, and stay as it is when renamed again.
fn run_loader_entries(d: &[u8]) -> bool {
    use crate::loader::{named, named_efi, renamed};
    let cfg = text(d);
    let (k, i) = named(&cfg);
    let e = named_efi(&cfg);
    let (nk, ni, ne) = ("/boot/vmlinuz-7", "/boot/initrd-7.img", "/EFI/Linux/liveroot-7.efi");
    let out = renamed(&cfg, nk, ni, Some(ne));
    let (ak, ai) = named(&out);
    let ae = named_efi(&out);
    assert!(ae.as_deref().is_none_or(|a| a == ne) && (e.is_none() || ae.is_some()), "efi {e:?} renamed to {ae:?}");
    assert!(ak.as_deref().is_none_or(|a| a == nk) && (k.is_none() || ak.is_some()), "kernel {k:?} renamed to {ak:?}");
    assert!(ai.as_deref().is_none_or(|a| a == ni) && (i.is_none() || ai.is_some()), "initrd {i:?} renamed to {ai:?}");
    let (before, after): (Vec<&str>, Vec<&str>) = (cfg.split_inclusive('\n').collect(), out.split_inclusive('\n').collect());
    assert_eq!(before.len(), after.len(), "lines added or lost");
    for (a, b) in before.iter().zip(&after) {
        let key = a.split_ascii_whitespace().next().unwrap_or("").to_ascii_lowercase();
        assert!(a == b || ["kernel", "linux", "initrd", "efi"].contains(&key.as_str()), "{a:?} became {b:?}");
    }
    assert_eq!(renamed(&out, nk, ni, Some(ne)), out, "renaming twice changed it again");
    k.is_some() && i.is_some()
}

fn seeds_loader_entries() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = crate::install::configs("liveroot", "root=live:LABEL=LIVE quiet initrd=\\x", Some("0 115200"))
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    out.push(b"title liveroot\r\nlinux /boot/vmlinuz-3\r\ninitrd /boot/initrd-3.img\r\noptions quiet\r\n".to_vec());
    out.push(b"DEFAULT a\nLABEL a\n\tLINUX /a\n\tINITRD /a.img\nLABEL b\n  kernel /b\n  initrd /b.img\n# KERNEL /c\ninitrd".to_vec());
    out
}

fn run_state(d: &[u8]) -> bool {
    let s = text(d);
    let kv = crate::state::parse(&s);
    for (k, v) in &kv {
        let _ = crate::state::check(k, v);
    }
    !kv.is_empty()
}

fn seeds_state() -> Vec<Vec<u8>> {
    vec![b"medium=/dev/vda1\nbooted=ram\nmd=/dev/md7\nimage=a=b\n# c\n\nversion=5\nfloor=3\n".to_vec()]
}

/// The two copies of a trial file, as read from the medium: each half is one copy.
/// The trusted comment's rollout/expiry words, the gate at every instant they name, and the
/// validators cache (read from the medium).
fn run_rollout(d: &[u8]) -> bool {
    let c = crate::rollout::Cache::parse(d);
    if let Some(c) = &c {
        let _ = crate::rollout::Cache::parse(c.text().as_bytes());
        let _ = c.applies("u", c.above, c.until);
    }
    let p = crate::rollout::parse(&text(d));
    if let Ok(p) = &p {
        let b = crate::rollout::bucket(d, p.expires.unwrap_or(0));
        if let Some(r) = p.rollout {
            for now in [0, 1, p.expires.unwrap_or(0), u64::MAX] {
                if let Err(Some(t)) = crate::rollout::gate(r, b, now) {
                    let _ = crate::rollout::utc(t);
                }
            }
        }
        let _ = p.expires.map(crate::rollout::utc);
    }
    p.is_ok() || c.is_some()
}

fn seeds_rollout() -> Vec<Vec<u8>> {
    let c = crate::rollout::Cache { url: "http://h/x/squashfs.img".into(), above: 2, version: 2, waiting: true, until: 1_800_000_000, etag: Some("\"5f-1a2b\"".into()), modified: Some("Sat, 28 Nov 2026 14:00:00 GMT".into()) };
    ["version=3", "version=3 rollout=12.5 expires=1800000000", "version=2,rollout=100%", "rollout=1764300000+86400 expires=1764400000", "rollout=0"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([c.text().into_bytes()])
        .collect()
}

fn run_trial(d: &[u8]) -> bool {
    let half = d.len() / 2;
    let (a, b) = (d.get(..half).unwrap_or(&[]), d.get(half..).unwrap_or(&[]));
    let c = crate::trial::choose([a, b]);
    let _ = c.why();
    let img = crate::trial::Ident { version: 2, sha256: [2; 32] };
    if let Some(r) = &c.record {
        let _ = crate::trial::take(Some(r), &img, Some(crate::trial::Start { tries: 3, keep: 1 }));
        let _ = crate::trial::standing(Some(r), &img);
        let _ = crate::trial::take(Some(r), &r.image, None);
        let _ = crate::trial::mark_good(Some(r), &r.image);
    }
    c.record.is_some()
}

fn seeds_trial() -> Vec<Vec<u8>> {
    use crate::trial::{slot_bytes, Ident, Record, Status};
    let r = |seq: u32, status: Status, left: u8| Record {
        seq,
        status,
        tries_left: left,
        tries: 3,
        net: seq % 2 == 1,
        image: Ident { version: 2, sha256: [2; 32] },
        failed_version: 1,
        floor: u64::MAX,
    };
    let pair = |a: Option<&Record>, b: Option<&Record>| {
        let mut v = slot_bytes(a);
        v.extend_from_slice(&slot_bytes(b));
        v
    };
    let (t, g, f) = (r(u32::MAX, Status::Trial, 1), r(0, Status::Good, 0), r(7, Status::Failed, 0));
    vec![pair(Some(&t), Some(&g)), pair(Some(&f), None), pair(None, Some(&t)), t.encode().to_vec()]
}

fn run_roothash(d: &[u8]) -> bool {
    crate::pairs::parse_roothash(d).is_some()
}

fn seeds_roothash() -> Vec<Vec<u8>> {
    vec![b"4392712ba01368efdf14b05c76f9e4df0d53664630b5d48632ed17a137f39076\n".to_vec(), b"00".to_vec()]
}

/// A block index (`NAME.zidx`): parsed strictly, and the missing ranges of a parsed one.
fn run_zidx(d: &[u8]) -> bool {
    match crate::delta::parse(d) {
        Ok(idx) => {
            let have: Vec<bool> = (0..(idx.size.div_ceil(idx.bs as u64)).min(1 << 16)).map(|i| i % 3 == 0).collect();
            crate::delta::missing(&idx, &have);
            true
        }
        Err(_) => false,
    }
}

fn seeds_zidx() -> Vec<Vec<u8>> {
    let mut v = b"LRZIDX1\n".to_vec();
    v.extend_from_slice(&4096u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&9000u64.to_le_bytes());
    for i in 0..3u8 {
        v.extend_from_slice(&[i; 6]);
    }
    let mut empty = v.get(..16).unwrap_or_default().to_vec();
    empty.extend_from_slice(&0u64.to_le_bytes());
    vec![v, empty]
}

/// A multipart/byteranges body with the boundary `B`: every part's range is read and its data
/// taken (bounded), as delta.rs does.
fn run_multipart(d: &[u8]) -> bool {
    use std::io::Read;
    let mut p = crate::http::Parts::new(d, "B");
    let mut n = 0;
    loop {
        match p.next() {
            Ok(Some((a, b, _))) => {
                n += 1;
                let mut sink = Vec::new();
                if p.data().take((b - a + 1).min(1 << 20)).read_to_end(&mut sink).is_err() || n > 64 {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

fn seeds_multipart() -> Vec<Vec<u8>> {
    vec![
        b"\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-3/10\r\n\r\nabcd\r\n--B\r\nContent-Range: bytes 8-9/10\r\n\r\nij\r\n--B--\r\n".to_vec(),
        b"--B\r\nContent-Range: bytes 5-5/6\r\n\r\nx\r\n--B--\r\n".to_vec(),
    ]
}

/// modules.alias text; every line is also tried as a modalias against the parsed patterns and
/// as a pattern against the others (fnmatch on hostile patterns: backtracking, brackets).
fn run_modalias(d: &[u8]) -> bool {
    let s = text(d);
    let a = crate::coldplug::Aliases::parse(&s);
    let lines: Vec<&str> = s.lines().take(64).collect();
    let mut hits = 0;
    for l in &lines {
        hits += a.modules_for(l).len();
        let w = l.split_whitespace().nth(1).unwrap_or(l);
        for m in &lines {
            let _ = crate::coldplug::fnmatch(w.as_bytes(), m.as_bytes());
        }
    }
    let mut st = crate::coldplug::State::default();
    let devs: Vec<_> = lines
        .iter()
        .map(|l| crate::coldplug::Device { path: std::path::PathBuf::from("/x"), modalias: (*l).to_owned(), bound: false })
        .collect();
    let _ = st.wanted(&devs, &a);
    hits > 0
}

fn seeds_modalias() -> Vec<Vec<u8>> {
    [
        "# Aliases extracted from modules themselves.\nalias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\npci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n",
        "alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage\nusb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\n",
        "alias usb:v04CEp0002d026[0-9A-B]dc*dsc*dp*ic*isc*ip*in* usb_storage\nusb:v04CEp0002d026Adc00dsc00dp00ic08isc06ip50in00\n",
        "alias usb:v13FDp3940d0[!3-9]*dc*dsc*dp*ic*isc*ip*in* uas\nusb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip62in00\n",
        "alias x[[:xdigit:]]\\* m\nxF*\nalias fs-vfat vfat\nfs-vfat\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// A hash device's first 512 bytes as the superblock; what follows it feeds the sanity checks
/// that build the table: data size, exactness, hash size and a root hash, all from the input.
fn run_verity(d: &[u8]) -> bool {
    let Ok(sb) = crate::verity::parse_superblock(d) else { return false };
    let word = |at: usize| d.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let root = d.get(536..).unwrap_or(&[]);
    let ok = crate::verity::table_params("fuzz", &sb, word(512), word(528) & 1 == 1, word(520), root)
        .map(|p| (p.table("/dev/a", "/dev/b", crate::verity::OnCorruption::Eio), p.sectors()))
        .is_ok();
    let _ = crate::verity::geometry(sb.data_blocks, sb.hash_block_size, word(528) >> 1);
    ok
}

fn seeds_verity() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (blocks, salt) in [(1u64, &[0xab_u8; 32][..]), (129, &[][..]), (16385, &[7; 256][..])] {
        let sb = crate::verity::Superblock::new(blocks, salt, [0x4c; 16]);
        let mut v = sb.to_bytes().to_vec();
        let data = blocks * 4096;
        v.extend_from_slice(&data.to_le_bytes());
        v.extend_from_slice(&(1u64 << 30).to_le_bytes());
        v.extend_from_slice(&(2u64 | 1).to_le_bytes());
        v.extend_from_slice(&[0x5a; 32]);
        out.push(v);
    }
    out
}

/// Input lines: the label, then paths (a leading `!` hides the name until the commit).
fn run_fat_names(d: &[u8]) -> bool {
    let s = text(d);
    let mut lines = s.split('\n');
    let Ok(mut b) = crate::fat::FatBuilder::new(lines.next().unwrap_or(""), 1) else { return false };
    let mut ok = true;
    for (i, l) in lines.enumerate().take(200) {
        match l.strip_prefix('!') {
            Some(h) => b.hide_until_commit(h),
            None => ok &= b.add_file(l, vec![7; i * 300]).is_ok(),
        }
    }
    ok && b.layout(40 << 20).is_ok_and(|l| l.sectors("/boot/syslinux/ldlinux.sys").is_some())
}

fn seeds_fat_names() -> Vec<Vec<u8>> {
    [
        "LIVE\n/boot/syslinux/ldlinux.sys\n/boot/vmlinuz\n/loader/entries/liveroot.conf\n/EFI/BOOT/BOOTX64.EFI\n!EFI",
        "\n/boot/syslinux/ldlinux.sys\n/A long name with many many characters.and.dots\n/gr\u{fc}n/\u{20ac}.txt",
        "NO NAME\n/boot/syslinux/LDLINUX.SYS\n/boot/syslinux/ldlinux.c32\n/long_name_1.txt\n/long_name_2.txt\n/LONG_N~1.TXT",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Input: the medium's boot sector (512 bytes), 5 bytes that make the new sector list (first
/// sector, and a gap every N sectors), then the installed ldlinux.sys.
fn run_syslinux(d: &[u8]) -> bool {
    let mut vbr = [0u8; 512];
    for (v, b) in vbr.iter_mut().zip(d) {
        *v = *b;
    }
    let first = d.get(512..516).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
    let every = d.get(516).copied().unwrap_or(0).max(1) as u64;
    let mut ldl = d.get(517..).unwrap_or(&[]).to_vec();
    let n = (ldl.len() / 512).min(4096) as u64;
    let sectors: Vec<u64> = (0..n).map(|k| u64::from(first) + k + k / every).collect();
    let Ok(sect1) = crate::syslinux::patch_ldlinux(&mut ldl, &sectors) else { return false };
    // The new BPB: the medium's, as a same-sized copy would have.
    let mut new = vbr;
    crate::syslinux::boot_sector(&vbr, &ldl, &mut new, sect1).is_ok()
}

/// A made-up installed copy (the real ldlinux.sys is not ours to commit): the patch area, the
/// extended patch area and a checksum that adds up, as syslinux's installer leaves them.
fn seeds_syslinux() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (sectors, every) in [(8usize, 200u8), (40, 3), (130, 1)] {
        let mut vbr = vec![0u8; 512];
        vbr[82..90].copy_from_slice(b"FAT32   ");
        vbr[510] = 0x55;
        vbr[511] = 0xAA;
        let mut f = vec![0u8; sectors * 512 + 1024];
        let w16 = |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
        f[0x200..0x204].copy_from_slice(&0x3EB2_02FEu32.to_le_bytes());
        w16(&mut f, 0x216, 0x300);
        for (k, v) in [0x400u16, 0x420, 64, 0x460, 32, 0x500, 60, 0x1F0, 0x1F4, 0x1F8].iter().enumerate() {
            w16(&mut f, 0x300 + 2 * k, *v);
        }
        f[0x420..0x430].copy_from_slice(b"/boot/syslinux/\0");
        let image = sectors * 512;
        let sum = f[..image].chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).fold(0u32, u32::wrapping_add);
        f[0x210..0x214].copy_from_slice(&0x3EB2_02FEu32.wrapping_sub(sum).to_le_bytes());
        let mut v = vbr;
        v.extend_from_slice(&(2048 + sectors as u32 * 7).to_le_bytes());
        v.push(every);
        v.extend_from_slice(&f);
        out.push(v);
    }
    out
}

/// splitmix64: small, fast, and the same sequence for the same seed on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const INTERESTING: &[u64] = &[
    0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fff_ffff, 0x8000_0000,
    0xffff_ffff, 0x1_0000_0000, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, u64::MAX, u64::MAX - 1,
];

/// Byte strings that mean something to one parser or another.
const TOKENS: &[&[u8]] = &[
    b"\r\n", b"\r\n\r\n", b"\n", b"=", b"\"", b" ", b"  ", b" *", b":", b"/", b",", b"-", b"--", b"0x", b"\\",
    b"\xc3\xa9", b"\xf0\x9f\x92\xa9", b"\xff", b"\0", b"99999999999999999999", b"18446744073709551616", b"-1",
    b"KiB", b"E", b"live:", b"http://", b"Content-Length: ", b"HTTP/1.1 ", b"100", b"Location: ", b"EFI PART",
    b"hsqs", b"CD001", b"untrusted comment: ", b"trusted comment: ", b"version=",
];

/// An offset in `d`: anywhere, or (half the time) one of the non-zero bytes of the seed it
/// came from (`hot`), so that mutations of a mostly-zero disk image land in its structures.
fn offset(r: &mut Rng, d: &[u8], hot: &[u32]) -> usize {
    if !hot.is_empty() && r.chance(2) {
        let i = hot[r.below(hot.len())] as usize;
        if i < d.len() {
            return i;
        }
    }
    r.below(d.len())
}

/// Where a seed's non-zero bytes are.
fn hot(d: &[u8]) -> Vec<u32> {
    d.iter().enumerate().filter(|(_, &b)| b != 0).map(|(i, _)| i as u32).collect()
}

fn mutate(r: &mut Rng, d: &mut Vec<u8>, hot: &[u32], corpus: &[Vec<u8>], max_len: usize) {
    if d.is_empty() {
        d.push(r.next() as u8);
    }
    match r.below(10) {
        0 => {
            let at = offset(r, d, hot);
            d[at] ^= 1 << r.below(8);
        }
        1 => {
            let at = offset(r, d, hot);
            d[at] = r.next() as u8;
        }
        2 | 3 => {
            // An interesting number, 1/2/4/8 bytes, little- or big-endian, maybe off by one.
            let mut v = INTERESTING[r.below(INTERESTING.len())];
            if r.chance(4) {
                v = (d.len() as u64).wrapping_add(r.below(3) as u64).wrapping_sub(1);
            }
            let w = [1usize, 2, 4, 8][r.below(4)];
            let bytes = if r.chance(2) { v.to_le_bytes() } else { v.to_be_bytes() };
            let bytes = if r.chance(2) { &bytes[..w] } else { &bytes[8 - w..] };
            // On-disk and in-kernel fields are aligned to their size: mostly write there.
            let at = offset(r, d, hot);
            let at = if r.chance(4) { at } else { at & !(w - 1) };
            for (i, b) in bytes.iter().enumerate() {
                if let Some(x) = d.get_mut(at + i) {
                    *x = *b;
                }
            }
        }
        4 => {
            let tok = TOKENS[r.below(TOKENS.len())];
            let at = r.below(d.len() + 1);
            if r.chance(2) {
                d.splice(at..at, tok.iter().copied());
            } else {
                let end = (at + tok.len()).min(d.len());
                d.splice(at..end, tok.iter().copied());
            }
        }
        5 => {
            // Delete a chunk.
            let at = r.below(d.len());
            let n = 1 + r.below((d.len() - at).min(64));
            d.drain(at..at + n);
        }
        6 => {
            // Duplicate a chunk somewhere else.
            let at = r.below(d.len());
            let n = 1 + r.below((d.len() - at).min(64));
            let chunk: Vec<u8> = d[at..at + n].to_vec();
            let to = r.below(d.len() + 1);
            d.splice(to..to, chunk);
        }
        7 => {
            // Splice: our head, another input's tail.
            let other = &corpus[r.below(corpus.len())];
            let a = r.below(d.len() + 1);
            let b = r.below(other.len() + 1);
            d.truncate(a);
            d.extend_from_slice(&other[b..]);
        }
        8 => {
            let n = r.below(d.len() + 1);
            d.truncate(n);
        }
        _ => {
            let n = 1 + r.below(256);
            let fill = if r.chance(2) { 0 } else { r.next() as u8 };
            d.extend(std::iter::repeat_n(fill, n));
        }
    }
    d.truncate(max_len);
}

thread_local! {
    /// Set while a fuzz input runs: its panic message goes here instead of stderr.
    static CAUGHT: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// Run one input; `Err(message)` if it panicked.
fn run_caught(t: &Target, d: &[u8]) -> Result<bool, String> {
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let r = panic::catch_unwind(AssertUnwindSafe(|| (t.run)(d)));
    let msg = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
    r.map_err(|_| msg.unwrap_or_else(|| "panic".to_owned()))
}

/// Route panics of fuzz inputs (on this thread) into `CAUGHT`; other panics print as usual.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let quiet = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        *slot = Some(info.to_string());
                        true
                    }
                    None => false,
                }
            });
            if !quiet {
                default(info);
            }
        }));
    });
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz").join(target)
}

fn save_crash(target: &str, d: &[u8]) -> PathBuf {
    use sha2::{Digest, Sha256};
    let dir = corpus_dir(target);
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("crash-{}", crate::digest::hex(&Sha256::digest(d)[..8]));
    let p = dir.join(name);
    let _ = std::fs::write(&p, d);
    p
}

/// The files under `tests/fuzz/<target>/`.
fn saved(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.path(), std::fs::read(e.path()).ok()?)))
        .collect();
    out.sort();
    out
}

pub struct Report {
    pub execs: u64,
    pub accepted: u64,
    pub crash: Option<(PathBuf, String)>,
}

/// Mutate and run `t` for `budget`; stop at the first crash.
pub fn fuzz(t: &Target, budget: Duration, seed: u64) -> Report {
    install_hook();
    let mut r = Rng(seed ^ t.name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let mut corpus = (t.seeds)();
    corpus.extend(saved(t.name).into_iter().map(|(_, d)| d));
    corpus.retain(|d| !d.is_empty());
    if corpus.is_empty() {
        corpus.push(vec![0]);
    }
    let base = corpus.len();
    // Each input remembers the hot bytes of the seed it descends from.
    let mut hots: Vec<std::rc::Rc<Vec<u32>>> = corpus.iter().map(|d| std::rc::Rc::new(hot(d))).collect();
    let max_len = corpus.iter().map(Vec::len).max().unwrap_or(0).saturating_mul(2).clamp(4096, 1 << 20);
    let mut rep = Report { execs: 0, accepted: 0, crash: None };
    let end = Instant::now() + budget;
    // Seeds as they are first.
    let mut queue: Vec<(Vec<u8>, std::rc::Rc<Vec<u32>>)> = corpus.iter().cloned().zip(hots.iter().cloned()).collect();
    while Instant::now() < end {
        let (d, h) = match queue.pop() {
            Some(x) => x,
            None => {
                // Half the time a seed: accepted mutants must not crowd out the valid inputs.
                let pick = if r.chance(2) { r.below(base) } else { r.below(corpus.len()) };
                let mut d = corpus[pick].clone();
                let h = hots[pick].clone();
                for _ in 0..1 + r.below(4) {
                    mutate(&mut r, &mut d, &h, &corpus, max_len);
                }
                (d, h)
            }
        };
        rep.execs += 1;
        match run_caught(t, &d) {
            Ok(true) => {
                rep.accepted += 1;
                // Keep some accepted mutants: a bounded pool that replaces at random.
                if corpus.len() < base + 256 {
                    corpus.push(d);
                    hots.push(h);
                } else if r.chance(8) {
                    let i = base + r.below(256);
                    corpus[i] = d;
                    hots[i] = h;
                }
            }
            Ok(false) => {}
            Err(msg) => {
                let p = save_crash(t.name, &d);
                rep.crash = Some((p, msg));
                break;
            }
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_u64(name: &str) -> Option<u64> {
        std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
    }

    /// Every target for `FUZZ_SECONDS` (default 1) each, with `FUZZ_SEED` (default fixed).
    #[test]
    fn fuzz_targets() {
        let secs = std::env::var("FUZZ_SECONDS").ok().and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(1.0);
        let seed = env_u64("FUZZ_SEED").unwrap_or(0x11fe_2007);
        let only = std::env::var("FUZZ_TARGETS").unwrap_or_default();
        let only: Vec<&str> = only.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if let Some(bad) = only.iter().find(|n| !TARGETS.iter().any(|t| t.name == **n)) {
            panic!("FUZZ_TARGETS: no target '{bad}'");
        }
        eprintln!("fuzz: seed {seed}, {secs} s per target");
        let mut crashes = Vec::new();
        for t in TARGETS.iter().filter(|t| only.is_empty() || only.contains(&t.name)) {
            let start = Instant::now();
            let rep = fuzz(t, Duration::from_secs_f64(secs), seed);
            eprintln!(
                "fuzz: {:<11} {:>10} inputs ({} accepted) in {:.1} s",
                t.name,
                rep.execs,
                rep.accepted,
                start.elapsed().as_secs_f64()
            );
            if let Some((p, msg)) = rep.crash {
                eprintln!("fuzz: {} CRASHED: {msg}\nfuzz: input saved as {}", t.name, p.display());
                crashes.push(format!("{}: {}", t.name, p.display()));
            }
        }
        assert!(crashes.is_empty(), "fuzz crashes (inputs saved; replay with cargo test fuzz::tests::regressions):\n{}", crashes.join("\n"));
    }

    /// Every saved input under tests/fuzz/<target>/ through its target: found crashes stay fixed.
    #[test]
    fn regressions() {
        install_hook();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz");
        let mut failed = Vec::new();
        let mut n = 0;
        for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if !dir.path().is_dir() {
                continue;
            }
            let Some(t) = TARGETS.iter().find(|t| t.name == name) else {
                failed.push(format!("{}: no fuzz target named '{name}'", dir.path().display()));
                continue;
            };
            for (p, d) in saved(t.name) {
                n += 1;
                if let Err(msg) = run_caught(t, &d) {
                    failed.push(format!("{}: {msg}", p.display()));
                }
            }
        }
        eprintln!("fuzz: {n} regression inputs replayed");
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    #[test]
    fn seeds_are_accepted() {
        // A seed its parser refuses teaches the fuzzer nothing about the valid format.
        for t in TARGETS {
            let seeds = (t.seeds)();
            let ok = seeds.iter().filter(|d| (t.run)(d)).count();
            assert!(ok > 0, "{}: no seed is accepted", t.name);
        }
    }

    #[test]
    fn mutations_stay_in_bounds() {
        let corpus = [vec![1u8, 2, 3], vec![]];
        let mut r = Rng(1);
        for i in 0..20_000 {
            let mut d = corpus[i % 2].clone();
            mutate(&mut r, &mut d, &[1, 70], &corpus[..1], 64);
            assert!(d.len() <= 64);
        }
    }
}
