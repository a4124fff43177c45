//! liveinit through a symlink named like the applet, as the /init script calls it.
//! Probe results are compared with blkid/sfdisk on images made by the real mkfs tools.

mod common;
use common::{applet_path, run, run_applet, Out, TempDir};
use std::path::Path;
use std::process::Command;

fn li(args: &[&str]) -> Out {
    run_applet("liveinit", args)
}

fn sh(cmd: &str, args: &[&str]) -> Out {
    let o = run(Command::new(cmd).args(args));
    assert!(o.code == 0, "{cmd} {args:?}: {}", o.stderr);
    o
}

/// A tool the test needs must be there: `make test` installs it (Makefile APT_PKGS), so a
/// missing one is a broken set-up, never a part of the test quietly left out.
fn need(tool: &str) {
    let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is not installed (make deps installs it)");
}

/// blkid's view: KEY=value pairs of `blkid -p -o export`.
fn blkid(file: &str) -> Vec<(String, String)> {
    let o = sh("blkid", &["-p", "-o", "export", file]);
    o.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("\\ ", " ")))
        .filter(|(k, _)| ["TYPE", "LABEL", "UUID", "PTTYPE", "PTUUID"].contains(&k.as_str()))
        .collect()
}

/// Our `probe` line parsed into the same pairs.
fn ours(file: &str) -> Vec<(String, String)> {
    let o = li(&["probe", file]);
    assert!(o.code == 0, "{}", o.stderr);
    let first = o.stdout.lines().next().unwrap().to_owned();
    let rest = first.strip_prefix(&format!("{file}: ")).unwrap();
    let (ty, mut kv) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut out = vec![];
    if ty == "gpt" || ty == "dos" {
        out.push(("PTTYPE".to_owned(), ty.to_owned()));
    } else {
        out.push(("TYPE".to_owned(), ty.to_owned()));
    }
    while !kv.is_empty() {
        let (k, v) = kv.split_once('=').unwrap();
        let (val, tail) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"').unwrap();
            (q[..end].to_owned(), q[end + 1..].trim_start())
        } else {
            let (a, b) = v.split_once(' ').unwrap_or((v, ""));
            (a.to_owned(), b)
        };
        out.push((k.to_owned(), val));
        kv = tail;
    }
    out
}

fn same_as_blkid(file: &str) {
    let mut a = blkid(file);
    let mut b = ours(file);
    a.sort();
    b.sort();
    assert_eq!(b, a, "probe vs blkid -p on {file}");
}

#[test]
fn probe_matches_blkid_on_real_filesystems() {
    let t = TempDir::new("liveinit-probe");
    let img = |name: &str, mib: u64| {
        let f = std::fs::File::create(t.join(name)).unwrap();
        f.set_len(mib << 20).unwrap();
        t.path_str(name)
    };
    let e4 = img("e4", 8);
    sh("mke2fs", &["-q", "-F", "-t", "ext4", "-L", "LIVE", "-U", "0f0e0d0c-0b0a-0908-0706-050403020100", &e4]);
    same_as_blkid(&e4);
    assert_eq!(li(&["probe", &e4]).stdout, format!("{e4}: ext4 LABEL=LIVE UUID=0f0e0d0c-0b0a-0908-0706-050403020100\n"));
    let e3 = img("e3", 8);
    sh("mke2fs", &["-q", "-F", "-t", "ext3", "-L", "with space", &e3]);
    same_as_blkid(&e3);
    let e2 = img("e2", 8);
    sh("mke2fs", &["-q", "-F", "-t", "ext2", &e2]);
    same_as_blkid(&e2);

    let f16 = img("f16", 16);
    sh("mkfs.vfat", &["-n", "LIVE", "-i", "1234ABCD", &f16]);
    same_as_blkid(&f16);
    assert!(li(&["probe", &f16]).stdout.contains("vfat LABEL=LIVE UUID=1234-ABCD"));
    let f32 = img("f32", 40);
    sh("mkfs.vfat", &["-F", "32", "-n", "BIG LIVE", "-i", "deadbeef", &f32]);
    same_as_blkid(&f32);
    let f12 = img("f12", 2);
    sh("mkfs.vfat", &["-F", "12", &f12]);
    same_as_blkid(&f12);

    std::fs::create_dir_all(t.join("tree/LiveOS")).unwrap();
    std::fs::write(t.join("tree/LiveOS/x"), "x").unwrap();
    let sq = t.path_str("sq");
    sh("mksquashfs", &[&t.path_str("tree"), &sq, "-quiet", "-noappend"]);
    same_as_blkid(&sq);

    need("xorriso");
    let iso = t.path_str("iso");
    sh("xorriso", &["-as", "mkisofs", "-quiet", "-V", "LIVE CD", "-o", &iso, &t.path_str("tree")]);
    same_as_blkid(&iso);

    // Nothing recognisable, and a missing file.
    let zero = img("zero", 1);
    assert_eq!(li(&["probe", &zero]).stdout, format!("{zero}: unknown\n"));
    let o = li(&["probe", "/nonexistent/dev"]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, "liveinit: /nonexistent/dev: No such file or directory\n");
}

#[test]
fn probe_partition_tables_like_sfdisk() {
    need("sfdisk");
    let t = TempDir::new("liveinit-pt");
    for (label, script) in [
        ("gpt", "label: gpt\nsize=4M, type=L, name=\"live part\"\nsize=4M\n"),
        ("dos", "label: dos\nlabel-id: 0x0badcafe\nsize=4M, type=83\nsize=4M, type=c\n"),
    ] {
        let img = t.path_str(label);
        std::fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
        let mut c = Command::new("sfdisk").args(["-q", &img]).stdin(std::process::Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success());
        same_as_blkid(&img);
        let out = li(&["probe", &img]).stdout;
        for n in ["1", "2"] {
            // sfdisk --part-uuid only knows GPT; an MBR PARTUUID is the disk signature + number.
            let u = if label == "gpt" {
                sh("sfdisk", &["--part-uuid", &img, n]).stdout.trim().to_ascii_lowercase()
            } else {
                format!("0badcafe-0{n}")
            };
            assert!(out.contains(&format!("part {n} start=")), "{out}");
            assert!(out.contains(&format!("PARTUUID={u}")), "{u} not in {out}");
        }
        if label == "gpt" {
            assert!(out.contains("PARTLABEL=\"live part\""), "{out}");
        } else {
            assert!(out.contains("PARTUUID=0badcafe-02"), "{out}");
        }
    }
}

fn cmdline_file(t: &TempDir, text: &str) -> String {
    let f = t.path_str("cmdline");
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn cmdline_defaults_and_errors() {
    let t = TempDir::new("liveinit-cmdline");
    let f = cmdline_file(&t, "BOOT_IMAGE=/vmlinuz root=live:LABEL=LIVE rd.live.image quiet\n");
    let o = li(&["cmdline", "--file", &f]);
    assert!(o.code == 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "LIVE_ROOT='LABEL=LIVE'\nLIVE_DIR='LiveOS'\nLIVE_SQUASHIMG='squashfs.img'\nLIVE_OVERLAY_SIZE=''\n\
         LIVE_RAM='0'\nLIVE_MINMEM='256'\nLIVE_CHECK=''\nLIVE_MD='md7'\nLIVE_RETRY='30'\nLIVE_BREAK='0'\nLIVE_INIT=''\n\
         LIVE_FETCH=''\nLIVE_NETROOT='0'\nLIVE_FETCH_TIMEOUT='20'\nLIVE_FETCH_DOWNGRADE='0'\nLIVE_IP=''\n\
         LIVE_IP_IFACE=''\nLIVE_PUBKEY=''\nLIVE_WATCHDOG='120'\nLIVE_PANIC=''\nROOT_PLAIN=''\nROOT_FSTYPE=''\nROOT_FLAGS=''\nROOT_MODE='rw'\nLIVE_TRIES='3'\nLIVE_MACHINE_ID=''\n"
    );
    let f = cmdline_file(&t, "root=live:LABEL=LIVE rd.live.overlay.size=abc");
    let o = li(&["cmdline", "--file", &f]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, "liveinit: rd.live.overlay.size=abc: not a size in MiB\n");
    assert_eq!(o.stdout, "");
    let f = cmdline_file(&t, "quiet");
    assert!(li(&["cmdline", "--file", &f]).stderr.contains("no root= on the kernel command line"));
    assert!(li(&["cmdline", "--help"]).code == 0);
}

#[test]
fn cmdline_with_a_settings_file() {
    let t = TempDir::new("liveinit-cmdline-settings");
    let f = cmdline_file(&t, "root=live:LABEL=LIVE ip=dhcp\n");
    let s = t.path_str("settings");
    std::fs::write(&s, "# box 7\r\nlive.fetch=http://10.0.2.100/img/\r\nip=eth1:dhcp\r\nlive.pubkey=RWQx\r\nrd.live.machine_id=box-7\r\n").unwrap();
    let o = li(&["cmdline", "--file", &f, "--settings", &s]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for want in ["LIVE_FETCH='http://10.0.2.100/img/'\n", "LIVE_IP_IFACE=''\n", "LIVE_PUBKEY=''\n", "LIVE_MACHINE_ID='box-7'\n"] {
        assert!(o.stdout.contains(want), "{want} in {}", o.stdout);
    }
    assert_eq!(
        o.stderr,
        format!(
            "liveinit: {s}: ip: set on the kernel command line, which wins; ignored\n\
             liveinit: {s}: live.pubkey: not allowed here (it would trust another key than the one built into the initramfs)\n\
             liveinit: {s}: using live.fetch, rd.live.machine_id\n"
        )
    );
    let o = li(&["cmdline", "--file", &f, "--settings", &t.path_str("none")]);
    assert_eq!((o.code, o.stdout.as_str()), (1, ""));
    assert!(o.stderr.ends_with("none: no such file\n"), "{}", o.stderr);
}

#[test]
fn cmdline_eval_in_a_real_shell_is_literal() {
    let t = TempDir::new("liveinit-inject");
    let marker = t.path_str("pwned");
    // Everything a hostile or careless command line can hold: command substitution, backticks,
    // single quotes, semicolons, globs, a newline inside double quotes, variables.
    let root = format!("LABEL=$(touch {marker})`touch {marker}`'x';touch {marker}*\\$HOME");
    let init = format!("/bin/it's\n$(touch {marker})");
    let f = cmdline_file(&t, &format!("root=live:\"{root}\" init=\"{init}\" rd.live.dir=\"a b'c\"\n"));
    let script = format!(
        "eval \"$({} cmdline --file {f})\" || exit 9; printf '%s|%s|%s' \"$LIVE_ROOT\" \"$LIVE_INIT\" \"$LIVE_DIR\"",
        applet_path("liveinit").to_str().unwrap()
    );
    need("busybox");
    let shells = ["sh", "busybox"];
    for shell in shells {
        let args: Vec<&str> = if shell == "busybox" { vec!["sh", "-c", &script] } else { vec!["-c", &script] };
        let o = run(Command::new(shell).args(&args));
        assert!(o.code == 0, "{shell}: {}", o.stderr);
        assert_eq!(o.stdout, format!("{root}|{init}|a b'c"), "{shell}");
        assert!(!Path::new(&marker).exists(), "{shell} ran an injected command");
    }
}

#[test]
fn find_medium_times_out_with_a_listing() {
    let o = li(&["find-medium", "LABEL=NO-SUCH-LABEL-7f3a", "--wait", "1"]);
    assert_eq!(o.code, 1);
    let e = o.stderr;
    assert!(e.starts_with("liveinit: LABEL=NO-SUCH-LABEL-7f3a: not found after 1 s; found: "), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert_eq!(o.stdout, "");
    let o = li(&["find-medium", "FOO=bar", "--wait", "0"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let o = li(&["find-medium", "/dev/no-such-disk", "--wait", "0"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("/dev/no-such-disk: not found after 0 s"));
}

#[test]
fn huge_waits_are_usage_errors_not_panics() {
    for args in [
        &["find-medium", "LABEL=NO-SUCH-LABEL-7f3a", "--wait", "18446744073709551615"][..],
        &["find-medium", "LABEL=NO-SUCH-LABEL-7f3a", "--wait", "86401"],
        &["coldplug", "--settle", "18446744073709551615"],
    ] {
        let o = li(args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains("at most"), "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    }
    // The same bound for the kernel's rd.retry (find-medium --wait at boot), refused by cmdline.
    let t = TempDir::new("liveinit-cmdline-huge");
    for (word, why) in [
        ("rd.retry=18446744073709551615", "expected 0 to 86400 seconds"),
        ("rd.retry=86401", "expected 0 to 86400 seconds"),
        ("live.fetch.timeout=18446744073709551615", "expected 1 to 86400 seconds"),
        ("rd.retry=99999999999999999999999", "expected 0 to 86400 seconds"),
    ] {
        let f = cmdline_file(&t, &format!("root=live:LABEL=LIVE {word}\n"));
        let o = li(&["cmdline", "--file", &f]);
        assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{word}: {}", o.stderr);
        assert_eq!(o.stderr, format!("liveinit: {word}: {why}\n"));
    }
}

#[test]
fn find_medium_says_what_it_waits_for() {
    let o = li(&["find-medium", "LABEL=NO-SUCH-LABEL-7f3a", "--wait", "6"]);
    assert_eq!(o.code, 1);
    let mut lines = o.stderr.lines();
    assert_eq!(lines.next(), Some("liveinit: find-medium: waiting for LABEL=NO-SUCH-LABEL-7f3a (5 s of 6)"), "{}", o.stderr);
    assert!(lines.next().is_some_and(|l| l.starts_with("liveinit: LABEL=NO-SUCH-LABEL-7f3a: not found after 6 s")), "{}", o.stderr);
    assert_eq!(lines.next(), None);
}

/// A loop device, detached at the end.
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A real block device: a loop device holding ext4. (Partitions of loop devices do not show up
/// on every host, so PARTUUID lookups through sysfs are left to the QEMU boot; the table parsing
/// itself is compared with sfdisk above.)
#[test]
fn find_medium_on_a_loop_device() {
    let t = TempDir::new("liveinit-findloop");
    let img = t.path_str("disk");
    std::fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let label = format!("LT{}", std::process::id() % 100000);
    sh("mke2fs", &["-q", "-F", "-t", "ext4", "-L", &label, &img]);
    let fsuuid = sh("blkid", &["-p", "-s", "UUID", "-o", "value", &img]).stdout.trim().to_owned();
    let dev = sh("losetup", &["-f", "--show", &img]).stdout.trim().to_owned();
    let _guard = Loop(dev.clone());

    for spec in [format!("LABEL={label}"), format!("UUID={}", fsuuid.to_uppercase()), dev.clone()] {
        let o = li(&["find-medium", "--all", &spec, "--wait", "5"]);
        assert!(o.code == 0, "{spec}: {}", o.stderr);
        assert_eq!(o.stdout, format!("{dev}\n"), "{spec}");
    }
    // Without --all, loop devices are not media.
    let o = li(&["find-medium", &format!("LABEL={label}"), "--wait", "0"]);
    assert_eq!(o.code, 1);
    let name = dev.strip_prefix("/dev/").unwrap();
    assert!(!o.stderr.contains(&format!(" {name} (")), "{}", o.stderr);
    // With --all the listing names it.
    let o = li(&["find-medium", "--all", "LABEL=NO-SUCH-LABEL-7f3a", "--wait", "0"]);
    assert!(o.stderr.contains(&format!("{name} (ext4, LABEL={label}, UUID={fsuuid})")), "{}", o.stderr);
    let o = li(&["probe", &dev]);
    assert_eq!(o.stdout, format!("{dev}: ext4 LABEL={label} UUID={fsuuid}\n"));
}

#[test]
fn modprobe_resolves_dependencies_from_modules_dep() {
    let t = TempDir::new("liveinit-modprobe");
    let d = t.join("mods");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("modules.dep"),
        "kernel/drivers/md/dm-snapshot.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n\
         kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko\n\
         kernel/drivers/md/dm-mod.ko:\n\
         kernel/fs/nls/nls_iso8859-1.ko.xz:\n\
         kernel/drivers/md/raid1.ko: kernel/drivers/md/md-mod.ko\n\
         kernel/drivers/md/md-mod.ko:\n\
         kernel/drivers/md/absent.ko:\n",
    )
    .unwrap();
    for m in ["md/dm-snapshot.ko", "md/dm-bufio.ko", "md/dm-mod.ko", "md/raid1.ko", "md/md-mod.ko"] {
        std::fs::create_dir_all(d.join("kernel/drivers/md")).unwrap();
        std::fs::write(d.join("kernel/drivers").join(m), "").unwrap();
    }
    std::fs::create_dir_all(d.join("kernel/fs/nls")).unwrap();
    std::fs::write(d.join("kernel/fs/nls/nls_iso8859-1.ko.xz"), "").unwrap();
    std::fs::write(d.join("modules.builtin"), "kernel/drivers/md/md-mod.ko\nkernel/fs/ext4/ext4.ko\n").unwrap();
    let cl = cmdline_file(&t, "quiet dm_mod.major=250 raid1.x=\"a b\" modprobe.blacklist=bad-mod\n");
    let ds = d.to_str().unwrap();
    let o = li(&[
        "modprobe", "-n", "--dir", ds, "--cmdline", &cl, "dm-snapshot", "nls_iso8859_1", "raid1", "ext4", "bad_mod", "nosuch", "absent",
    ]);
    assert!(o.code == 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        format!(
            "insmod {ds}/kernel/drivers/md/dm-mod.ko major=250\ninsmod {ds}/kernel/drivers/md/dm-bufio.ko\n\
             insmod {ds}/kernel/drivers/md/dm-snapshot.ko\ninsmod {ds}/kernel/fs/nls/nls_iso8859-1.ko.xz\n\
             insmod {ds}/kernel/drivers/md/raid1.ko x=\"a b\"\n"
        )
    );
    let e = o.stderr;
    assert!(e.contains("liveinit: modprobe: bad_mod: blacklisted"), "{e}");
    assert!(e.contains(&format!("liveinit: modprobe: nosuch: not found in {ds} (skipped)")), "{e}");
    assert!(e.contains(&format!("liveinit: modprobe: absent: not found in {ds} (skipped)")), "{e}");
    assert!(!e.contains("ext4"), "{e}");
    let o = li(&["modprobe", "-q", "-n", "--dir", ds, "nosuch"]);
    assert!(o.code == 0);
    assert_eq!(o.stderr, "");
    let o = li(&["modprobe", "--dir", "/nonexistent", "loop"]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, "liveinit: /nonexistent/modules.dep: No such file or directory\n");
}

/// A module tree and a sysfs as a QEMU guest with a USB stick on qemu-xhci shows them, after
/// every stage has appeared (controller, stick, its SCSI disk).
fn coldplug_tree(t: &TempDir) -> (String, String) {
    let d = t.join("mods");
    let mods = [
        ("kernel/drivers/usb/host/xhci-pci.ko.xz", "kernel/drivers/usb/host/xhci-hcd.ko.xz kernel/drivers/usb/core/usbcore.ko.xz"),
        ("kernel/drivers/usb/host/xhci-hcd.ko.xz", "kernel/drivers/usb/core/usbcore.ko.xz"),
        ("kernel/drivers/usb/core/usbcore.ko.xz", ""),
        ("kernel/drivers/usb/storage/usb-storage.ko.xz", "kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/usb/core/usbcore.ko.xz"),
        ("kernel/drivers/usb/storage/uas.ko.xz", "kernel/drivers/usb/storage/usb-storage.ko.xz kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/usb/core/usbcore.ko.xz"),
        ("kernel/drivers/scsi/scsi_mod.ko.xz", ""),
        ("kernel/drivers/scsi/sd_mod.ko.xz", "kernel/drivers/scsi/scsi_mod.ko.xz"),
        ("kernel/drivers/virtio/virtio_pci.ko.xz", ""),
        ("kernel/drivers/ata/ata_piix.ko.xz", ""),
        ("kernel/drivers/ata/ata_generic.ko.xz", ""),
    ];
    let mut dep = String::new();
    for (m, deps) in mods {
        let f = d.join(m);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, "").unwrap();
        dep.push_str(&format!("{m}: {deps}\n"));
    }
    std::fs::write(d.join("modules.dep"), dep).unwrap();
    std::fs::write(d.join("modules.builtin"), "kernel/drivers/block/virtio_blk.ko\n").unwrap();
    // Lines as depmod writes them for Debian's 6.1 kernel; "gone" is listed but not in the tree.
    std::fs::write(
        d.join("modules.alias"),
        "# Aliases extracted from modules themselves.\n\
         alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci\n\
         alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* uas\n\
         alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* uas\n\
         alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage\n\
         alias scsi:t-0x00* sd_mod\n\
         alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n\
         alias virtio:d00000002v* virtio_blk\n\
         alias pci:v*d*sv*sd*bc01sc01i* ata_generic\n\
         alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix\n\
         alias acpi:PNP0501:* gone\n\
         alias fs-vfat vfat\n",
    )
    .unwrap();
    let s = t.join("sys");
    let pci = s.join("devices/pci0000:00");
    let dev = |rel: &str, alias: &str, bound: bool| {
        let p = pci.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("modalias"), format!("{alias}\n")).unwrap();
        if bound {
            std::os::unix::fs::symlink("../../bus/pci/drivers/x", p.join("driver")).unwrap();
        }
    };
    dev("0000:00:00.0", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00", false);
    dev("0000:00:01.1", "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", true);
    dev("0000:00:04.0", "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30", false);
    dev("0000:00:04.0/usb1/1-1/1-1:1.0", "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", false);
    dev("0000:00:04.0/usb1/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0", "scsi:t-0x00", false);
    dev("0000:00:05.0", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", false);
    dev("0000:00:05.0/virtio0", "virtio:d00000002v00001AF4", false);
    dev("0000:00:06.0", "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00", false);
    let pnp = s.join("devices/pnp0/00:04");
    std::fs::create_dir_all(&pnp).unwrap();
    std::fs::write(pnp.join("modalias"), "acpi:PNP0501:\n").unwrap();
    // sysfs links everywhere, loops included: never followed.
    std::os::unix::fs::symlink("../../..", pci.join("0000:00:04.0/usb1/subsystem")).unwrap();
    std::os::unix::fs::symlink("../devices/pci0000:00/0000:00:05.0", s.join("devices/pci0000:00/link")).unwrap();
    // ata_piix is loaded already.
    std::fs::create_dir_all(s.join("module/ata_piix")).unwrap();
    (d.to_str().unwrap().to_owned(), s.to_str().unwrap().to_owned())
}

#[test]
fn coldplug_picks_modules_by_modalias() {
    let t = TempDir::new("liveinit-coldplug");
    let (mods, sys) = coldplug_tree(&t);
    let cl = cmdline_file(&t, "quiet modprobe.blacklist=ata-generic\n");
    let o = li(&["coldplug", "-n", "--modules-dir", &mods, "--sysfs", &sys, "--cmdline", &cl]);
    assert!(o.code == 0, "{}", o.stderr);
    // Path order; the stick's uas and usb-storage in modules.alias order; not: ata_piix
    // (loaded), ata_generic (blacklisted), virtio_blk (built in), gone (not in the tree), the
    // host bridge and the display (no alias).
    assert_eq!(o.stdout, "xhci_pci\nuas\nusb_storage\nsd_mod\nvirtio_pci\n");
    assert_eq!(o.stderr, "");

    // Without the blacklist, the generic IDE driver comes too.
    let none = cmdline_file(&t, "quiet\n");
    let o = li(&["coldplug", "--dry-run", "--modules-dir", &mods, "--sysfs", &sys, "--cmdline", &none]);
    assert_eq!(o.stdout, "ata_generic\nxhci_pci\nuas\nusb_storage\nsd_mod\nvirtio_pci\n");

    // Everything loaded already: nothing to do, and the counts.
    for m in ["xhci_pci", "uas", "usb_storage", "sd_mod", "virtio_pci", "ata_generic"] {
        std::fs::create_dir_all(Path::new(&sys).join("module").join(m)).unwrap();
    }
    let o = li(&["coldplug", "--settle", "0", "--modules-dir", &mods, "--sysfs", &sys, "--cmdline", &none]);
    assert!(o.code == 0, "{}", o.stderr);
    assert_eq!(o.stdout, "coldplug: nothing to load (9 devices, 8 without a driver)\n");

    let o = li(&["coldplug", "--modules-dir", "/nonexistent", "--sysfs", &sys]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, "liveinit: /nonexistent/modules.dep: No such file or directory\n");
    std::fs::remove_file(Path::new(&mods).join("modules.alias")).unwrap();
    let o = li(&["coldplug", "--modules-dir", &mods, "--sysfs", &sys]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("liveinit: {mods}/modules.alias: No such file or directory\n"));
}

/// A module the kernel refuses (these are empty files) is a warning naming it; the boot goes on.
#[test]
fn coldplug_load_failure_is_a_warning() {
    let t = TempDir::new("liveinit-coldplug-fail");
    let (mods, sys) = coldplug_tree(&t);
    let none = cmdline_file(&t, "quiet\n");
    for m in ["uas", "usb_storage", "sd_mod", "virtio_pci", "ata_generic"] {
        std::fs::create_dir_all(Path::new(&sys).join("module").join(m)).unwrap();
    }
    // xhci_pci's dependencies are "loaded": only xhci-pci.ko itself reaches finit_module.
    for m in ["usbcore", "xhci_hcd"] {
        std::fs::create_dir_all(Path::new(&sys).join("module").join(m)).unwrap();
    }
    let o = li(&["coldplug", "--settle", "0", "--modules-dir", &mods, "--sysfs", &sys, "--cmdline", &none]);
    assert!(o.code == 0, "{}", o.stderr);
    assert!(o.stderr.starts_with(&format!("liveinit: coldplug: xhci_pci: {mods}/kernel/drivers/usb/host/xhci-pci.ko.xz: ")), "{}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert_eq!(o.stdout, "coldplug: loaded none; failed: xhci_pci (9 devices, 8 without a driver)\n");
}

#[test]
fn state_file() {
    let t = TempDir::new("liveinit-state");
    let f = t.path_str("run/live/state");
    let o = li(&["state", "--file", &f, "set", "medium=/dev/vda1", "booted=local", "image=LiveOS/a=b.img"]);
    assert!(o.code == 0, "{}", o.stderr);
    assert!(li(&["state", "--file", &f, "set", "booted=ram"]).code == 0);
    assert_eq!(li(&["state", "--file", &f, "get", "booted"]).stdout, "ram\n");
    assert_eq!(li(&["state", "--file", &f, "get", "image"]).stdout, "LiveOS/a=b.img\n");
    assert_eq!(li(&["state", "--file", &f, "show"]).stdout, "medium=/dev/vda1\nbooted=ram\nimage=LiveOS/a=b.img\n");
    let o = li(&["state", "--file", &f, "get", "md"]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("liveinit: {f}: md: no such key\n"));
    assert_eq!(li(&["state", "--file", &f, "set", "novalue"]).code, 2);
    assert_eq!(li(&["state", "--file", &f, "set", "Bad=1"]).code, 1);
}

/// `watchdog arm|disarm`: the arguments, a machine without a watchdog, a device that is not one;
/// mark-good disarms only what /init recorded in the state, then forgets it.
#[test]
fn watchdog_arm_disarm_and_mark_good() {
    let t = TempDir::new("watchdog");
    let none = t.path_str("no-watchdog");
    for bad in [&["watchdog", "arm", "0", "--dev", &none][..], &["watchdog", "arm", "x"], &["watchdog", "arm"], &["watchdog", "kick"], &["watchdog", "disarm", "5"]] {
        let o = li(bad);
        assert_eq!(o.code, 2, "{bad:?}: {}", o.stderr);
    }
    let o = li(&["watchdog", "arm", "30", "--dev", &none]);
    assert_eq!(o.code, 5, "no watchdog: nothing armed, nothing to do: {}", o.stderr);
    assert!(o.stderr.contains("no watchdog; not armed"), "{}", o.stderr);
    assert_eq!(o.stdout, "");
    let o = li(&["watchdog", "disarm", "--dev", &none]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("no watchdog; nothing to disarm"), "{}", o.stderr);
    // A character device that is not a watchdog: the stop ioctl is refused, and that is a failure.
    let o = li(&["watchdog", "disarm", "--dev", "/dev/null"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("/dev/null: stop: "), "{}", o.stderr);

    // mark-good: the state says /init armed a watchdog that is not there (any more): exit 0, and
    // the keys are cleared so that the next call does not open anything.
    let f = t.path_str("trial.state");
    assert_eq!(li(&["trial", "create", &f]).code, 0);
    assert_eq!(li(&["trial", "start", "--file", &f, "--sha256", V3, "--version", "3", "--via-fs"]).code, 0);
    let st = t.path_str("state");
    std::fs::write(&st, format!("image_sha256={V3}\nimage_version=3\nwatchdog=30\nwatchdog_dev={none}\n")).unwrap();
    let o = li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("marked good"), "{}", o.stdout);
    assert!(o.stderr.contains("no watchdog; nothing to disarm"), "{}", o.stderr);
    let s = std::fs::read_to_string(&st).unwrap();
    assert!(s.contains("\nwatchdog=\nwatchdog_dev=\n"), "{s}");
    let o = li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "already good, nothing armed: {}", o.stderr);
    // A watchdog that cannot be stopped: the trial is over, but mark-good says the box will reset.
    std::fs::write(&st, format!("image_sha256={V3}\nimage_version=3\nwatchdog=30\nwatchdog_dev=/dev/null\n")).unwrap();
    let o = li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout.contains("already good") && o.stderr.contains("/dev/null: stop: "), "{} / {}", o.stdout, o.stderr);
}

#[test]
fn switch_root_refuses_before_touching_anything() {
    let t = TempDir::new("liveinit-switch");
    let nr = t.path_str("newroot");
    std::fs::create_dir_all(&nr).unwrap();
    let o = li(&["switch-root", &nr]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("liveinit: {nr}: not a mount point\n"));

    // A real mount point (we run as root), without and then with an init.
    sh("mount", &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &nr]);
    struct Umount(String);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(nr.clone());
    let o = li(&["switch-root", &nr]);
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, format!("liveinit: {nr}/sbin/init: No such file or directory\n"));
    std::fs::create_dir_all(t.join("newroot/sbin")).unwrap();
    std::fs::write(t.join("newroot/sbin/init"), "#!/bin/sh\n").unwrap();
    let o = li(&["switch-root", &nr]);
    assert!(o.stderr.ends_with("/sbin/init: not an executable file\n"), "{}", o.stderr);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.join("newroot/sbin/init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = li(&["switch-root", &nr, "/sbin/init", "--log-level=debug"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("not running as PID 1"), "{}", o.stderr);
    assert!(t.join("newroot/sbin/init").exists());
    assert_eq!(li(&["switch-root", &nr, "sbin/init"]).code, 2);
}

#[test]
fn init_script_is_posix_sh() {
    let init = concat!(env!("CARGO_MANIFEST_DIR"), "/initramfs-skel/init");
    sh("sh", &["-n", init]);
    need("busybox");
    sh("busybox", &["sh", "-n", init]);
    let text = std::fs::read_to_string(init).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"));
    use std::os::unix::fs::PermissionsExt;
    assert!(std::fs::metadata(init).unwrap().permissions().mode() & 0o111 != 0, "init must be executable");
    // Every liveinit subcommand the script calls exists (its --help succeeds).
    for w in text.split("liveinit ").skip(1) {
        let sub = w.split_whitespace().next().unwrap();
        if sub.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !sub.is_empty() {
            let o = li(&[sub, "--help"]);
            assert!(o.code == 0, "liveinit {sub} --help: {}", o.stderr);
        }
    }
}

/// /init decides nothing (issue 19): mounts, `liveinit boot`, rd.break, the rescue shell and
/// switch_root, within 100 lines of code; no eval, nothing read back from an applet (the one
/// `read` takes its start time from /proc/uptime for the boot's init-start stamp).
#[test]
fn init_script_only_mounts_boots_and_switches() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/initramfs-skel/init")).unwrap();
    let code: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(code.len() <= 100, "{} lines of code", code.len());
    const UPTIME: &str = "read -r up _ </proc/uptime";
    for bad in ["eval", "tail -n", "${why", "sed ", "read "] {
        assert!(!code.iter().any(|l| l.contains(bad) && *l != UPTIME), "/init uses {bad}");
    }
    assert!(code.contains(&UPTIME));
    assert!(code.contains(&"liveinit boot ${up:+--init-start \"$up\"} || rescue"));
    assert!(code.contains(&"exec liveinit switch-root --live /sysroot"));
}


// ---- select-image ----------------------------------------------------------------------------

/// A medium directory with minisign keys made here (key: trusted, other: not).
struct Medium {
    t: TempDir,
}

impl Medium {
    fn new(tag: &str) -> Medium {
        let t = TempDir::new(&format!("select-{tag}"));
        std::fs::create_dir_all(t.join("m")).unwrap();
        for k in ["key", "other"] {
            let o = run(Command::new("minisign").args(["-G", "-W", "-f", "-p"]).arg(t.join(&format!("{k}.pub"))).arg("-s").arg(t.join(&format!("{k}.sec"))));
            assert!(o.code == 0, "minisign -G: {}", o.stderr);
        }
        Medium { t }
    }
    fn m(&self, f: &str) -> String {
        self.t.path_str(&format!("m/{f}"))
    }
    fn put(&self, f: &str, data: &[u8]) {
        std::fs::write(self.m(f), data).unwrap();
    }
    /// SHA256SUMS{sfx} with `lines`, signed by `key` as version=`v` (None: unsigned).
    fn manifest(&self, sfx: &str, lines: &str, sign: Option<(&str, u32)>) {
        self.put(&format!("SHA256SUMS{sfx}"), lines.as_bytes());
        let sig = self.m(&format!("SHA256SUMS.minisig{sfx}"));
        let _ = std::fs::remove_file(&sig);
        if let Some((key, v)) = sign {
            let o = run(Command::new("minisign")
                .args(["-S", "-W", "-s"])
                .arg(self.t.join(&format!("{key}.sec")))
                .args(["-m", &self.m(&format!("SHA256SUMS{sfx}")), "-x", &sig, "-t", &format!("version={v}")]));
            assert!(o.code == 0, "minisign -S: {}", o.stderr);
        }
    }
    fn select(&self, extra: &[&str]) -> Out {
        let key = self.t.path_str("key.pub");
        let dir = self.t.path_str("m");
        let mut args = vec!["select-image", dir.as_str(), "squashfs.img", "--pubkey-file", key.as_str()];
        args.extend_from_slice(extra);
        li(&args)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let o = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    let mut o = o;
    o.stdin.take().unwrap().write_all(data).unwrap();
    let out = o.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

/// The value of `KEY='...'` in select-image's output (values here hold no quotes).
fn var(out: &str, key: &str) -> String {
    let line = out.lines().find(|l| l.starts_with(&format!("{key}="))).unwrap_or_else(|| panic!("no {key} in {out}"));
    line.split_once('=').unwrap().1.trim_matches('\'').to_owned()
}

#[test]
fn select_image_binds_the_image_to_its_signed_manifest() {
    let m = Medium::new("bind");
    let img = b"the image".to_vec();
    m.put("squashfs.img", &img);
    m.put("other.img", b"other");
    // Signed, valid, but it lists another file only: it vouches for nothing here.
    m.manifest("", &format!("{}  other.img\n", sha256_hex(b"other")), Some(("key", 4)));
    let o = m.select(&[]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stdout.is_empty());
    assert!(o.stderr.contains(&format!("select-image: {}: does not list squashfs.img", m.m("SHA256SUMS"))), "{}", o.stderr);
    assert!(o.stderr.lines().last().unwrap().starts_with(&format!("liveinit: {}: does not list", m.m("SHA256SUMS"))), "{}", o.stderr);

    // Listed in binary mode (`*name`): accepted, hashed whole, the bound digest printed.
    m.manifest("", &format!("{} *squashfs.img\n", sha256_hex(&img)), Some(("key", 4)));
    let o = m.select(&[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(var(&o.stdout, "IMG_FILE"), m.m("squashfs.img"));
    assert_eq!(var(&o.stdout, "IMG_PAIR"), "primary");
    assert_eq!(var(&o.stdout, "IMG_SHA256"), sha256_hex(&img));
    assert_eq!(var(&o.stdout, "IMG_VERSION"), "4");
    assert_eq!(var(&o.stdout, "IMG_VERIFIED"), "sig");
    assert_eq!(var(&o.stdout, "IMG_ROOTHASH"), "");
    assert_eq!(var(&o.stdout, "IMG_FLOOR"), "4");

    // The bytes differ from the listed digest: refused.
    m.put("squashfs.img", b"the imagf");
    let o = m.select(&[]);
    assert_eq!(o.code, 3);
    assert!(o.stderr.contains("checksum mismatch"), "{}", o.stderr);

    // Without a key: the checksum binds it, nothing is signed.
    m.put("squashfs.img", &img);
    let dir = m.t.path_str("m");
    let o = li(&["select-image", &dir, "squashfs.img"]);
    assert_eq!((o.code, var(&o.stdout, "IMG_VERIFIED"), var(&o.stdout, "IMG_VERSION")), (0, "sha256".into(), "".into()), "{}", o.stderr);
}

#[test]
fn select_image_falls_back_to_old_and_keeps_the_floor() {
    let m = Medium::new("floor");
    let (new, old) = (b"image v9".to_vec(), b"image v5".to_vec());
    m.put("squashfs.img", &new);
    m.put("squashfs.img.old", &old);
    m.manifest(".old", &format!("{}  squashfs.img\n", sha256_hex(&old)), Some(("key", 5)));
    // A cut mid-rotation: the primary manifest is gone; .old (v5) boots and the floor is 5.
    let o = m.select(&[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(var(&o.stdout, "IMG_PAIR"), "old");
    assert_eq!(var(&o.stdout, "IMG_FILE"), m.m("squashfs.img.old"));
    assert_eq!(var(&o.stdout, "IMG_FLOOR"), "5");
    assert!(o.stderr.contains(&format!("select-image: {}: missing", m.m("SHA256SUMS"))), "{}", o.stderr);
    // The initramfs says 3 at least: the floor stays the medium's 5.
    assert_eq!(var(&m.select(&["--min-version", "3"]).stdout, "IMG_FLOOR"), "5");
    // It says 6: v5 is refused, with the reason.
    let o = m.select(&["--min-version", "6"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("version 5 is below the minimum 6 built into the initramfs"), "{}", o.stderr);

    // The primary signed by a foreign key (v9): refused, .old boots, v9 does not raise the floor.
    m.manifest("", &format!("{}  squashfs.img\n", sha256_hex(&new)), Some(("other", 9)));
    let o = m.select(&[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!((var(&o.stdout, "IMG_PAIR"), var(&o.stdout, "IMG_FLOOR")), ("old".into(), "5".into()));
    assert!(o.stderr.contains("signature"), "{}", o.stderr);
    // Signed by the key (v9): the primary boots, floor 9.
    m.manifest("", &format!("{}  squashfs.img\n", sha256_hex(&new)), Some(("key", 9)));
    let o = m.select(&[]);
    assert_eq!((var(&o.stdout, "IMG_PAIR"), var(&o.stdout, "IMG_FLOOR")), ("primary".into(), "9".into()));
    // /init found the primary failing later (its dm-verity mapping): the next pair, same floor.
    let o = m.select(&["--skip", "primary"]);
    assert_eq!((var(&o.stdout, "IMG_PAIR"), var(&o.stdout, "IMG_FLOOR")), ("old".into(), "9".into()));
    let o = m.select(&["--skip", "primary", "--skip", "old"]);
    assert!(o.code == 3 && o.stderr.contains("squashfs.img.new: missing"), "{}", o.stderr);
    assert_eq!(m.select(&["--skip", "x"]).code, 2);
    // An unsigned primary with a key installed: refused.
    m.manifest("", &format!("{}  squashfs.img\n", sha256_hex(&new)), None);
    let o = m.select(&[]);
    assert_eq!(var(&o.stdout, "IMG_PAIR"), "old");
    assert!(o.stderr.contains("SHA256SUMS.minisig: missing"), "{}", o.stderr);
}

#[test]
fn select_image_with_verity_sidecars_does_not_read_the_image() {
    let m = Medium::new("verity");
    // A fifo: any read of the image would block forever.
    let o = run(Command::new("mkfifo").arg(m.m("squashfs.img")));
    assert!(o.code == 0, "{}", o.stderr);
    let root = "4f8b3c4c1d2e5a6b7c8d9e0f11223344556677889900aabbccddeeff00112233\n";
    m.put("squashfs.img.roothash", root.as_bytes());
    m.put("squashfs.img.verity", b"hash tree");
    let lines = format!(
        "{}  squashfs.img\n{}  squashfs.img.verity\n{}  squashfs.img.roothash\n",
        "ab".repeat(32),
        sha256_hex(b"hash tree"),
        sha256_hex(root.as_bytes())
    );
    m.manifest("", &lines, Some(("key", 7)));
    let key = m.t.path_str("key.pub");
    let dir = m.t.path_str("m");
    let mut child = common::applet("liveinit")
        .args(["select-image", &dir, "squashfs.img", "--pubkey-file", &key])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("select-image read the image although sidecars are listed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(var(&out, "IMG_ROOTHASH"), root.trim());
    assert_eq!(var(&out, "IMG_VERITY"), m.m("squashfs.img.verity"));
    assert_eq!(var(&out, "IMG_VERIFIED"), "sig");
    assert_eq!(var(&out, "IMG_SHA256"), "ab".repeat(32));
    // A root hash that is not the signed one: refused before anything is mapped.
    m.put("squashfs.img.roothash", b"00\n");
    let o = m.select(&["--check", "manifest"]);
    assert_eq!(o.code, 3);
    assert!(o.stderr.contains("squashfs.img.roothash: checksum mismatch"), "{}", o.stderr);
}

#[test]
fn select_image_ram_copy_is_hashed_as_written() {
    let m = Medium::new("ram");
    let img: Vec<u8> = (0..(2 << 20) + 3).map(|i| (i * 13 % 251) as u8).collect();
    m.put("squashfs.img", &img);
    m.manifest("", &format!("{}  squashfs.img\n", sha256_hex(&img)), Some(("key", 2)));
    let ram = m.t.path_str("ram");
    std::fs::create_dir_all(&ram).unwrap();
    struct Umount(String);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    // A tmpfs too small for the pair: refused, nothing left in it.
    sh("mount", &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &ram]);
    let u = Umount(ram.clone());
    let o = m.select(&["--ram-to", &ram, "--minmem", "0"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("does not fit in"), "{}", o.stderr);
    assert_eq!(std::fs::read_dir(&ram).unwrap().count(), 0);
    // More free RAM asked than there is: refused.
    drop(u);
    let o = m.select(&["--ram-to", &ram, "--minmem", "999999999"]);
    assert!(o.code == 3 && o.stderr.contains("must stay free"), "{}", o.stderr);

    // Room enough: copied, hashed as written, IMG_FILE in RAM, the small files beside it.
    sh("mount", &["-t", "tmpfs", "-o", "size=16m", "tmpfs", &ram]);
    let _u = Umount(ram.clone());
    let o = m.select(&["--ram-to", &ram, "--minmem", "0"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(var(&o.stdout, "IMG_FILE"), format!("{ram}/squashfs.img"));
    assert_eq!(var(&o.stdout, "IMG_RAM"), "1");
    assert_eq!(var(&o.stdout, "IMG_VERIFIED"), "sig");
    assert_eq!(std::fs::read(format!("{ram}/squashfs.img")).unwrap(), img);
    assert!(std::path::Path::new(&format!("{ram}/SHA256SUMS.minisig")).exists());

    // The medium's bytes differ from the signed digest: refused, the copy removed.
    let mut bad = img.clone();
    bad[1 << 20] ^= 1;
    m.put("squashfs.img", &bad);
    let o = m.select(&["--ram-to", &ram, "--minmem", "0"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("checksum mismatch") && o.stderr.contains("as copied to RAM"), "{}", o.stderr);
    assert!(!std::path::Path::new(&format!("{ram}/squashfs.img")).exists());

    // A directory that is not a mount point gets a tmpfs sized to what RAM can spare, not to the
    // pair: a larger .old or an image fetched later must fit beside it.
    m.put("squashfs.img", &img);
    let fresh = m.t.path_str("fresh");
    let o = m.select(&["--ram-to", &fresh, "--minmem", "0"]);
    let _f = Umount(fresh.clone());
    assert_eq!(o.code, 0, "{}", o.stderr);
    let df = sh("stat", &["-f", "-c", "%T %b %S", &fresh]).stdout;
    let w: Vec<&str> = df.split_whitespace().collect();
    assert_eq!(w[0], "tmpfs", "{df}");
    let size: u64 = w[1].parse::<u64>().unwrap() * w[2].parse::<u64>().unwrap();
    assert!(size > 64 << 20, "tmpfs sized to the pair: {df}");
}

#[test]
fn select_image_output_evaluates_in_sh() {
    // A medium directory with a quote and a space in its name comes back byte for byte.
    let m = Medium::new("quote");
    let dir = m.t.join("it's a dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("squashfs.img"), b"img").unwrap();
    std::fs::write(dir.join("SHA256SUMS"), format!("{}  squashfs.img\n", sha256_hex(b"img"))).unwrap();
    let li = applet_path("liveinit");
    let script = r#"eval "$("$0" select-image "$1" squashfs.img)" && printf '%s|%s|%s' "$IMG_FILE" "$IMG_PAIR" "$IMG_FLOOR""#;
    let o = run(Command::new("sh").args(["-c", script]).arg(&li).arg(&dir));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, format!("{}|primary|0", dir.join("squashfs.img").display()));
}

#[test]
fn latin1_file_names_reach_the_system_calls() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new("liveinit-latin1");
    // "café.img" in Latin-1: not UTF-8.
    let img = t.path().join(OsStr::from_bytes(b"caf\xe9.img"));
    std::fs::File::create(&img).unwrap().set_len(8 << 20).unwrap();
    let o = run(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-L", "LIVE", "-U", "0f0e0d0c-0b0a-0908-0706-050403020100"]).arg(&img));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(Command::new(applet_path("liveinit")).arg("probe").arg(&img));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, format!("{}: ext4 LABEL=LIVE UUID=0f0e0d0c-0b0a-0908-0706-050403020100\n", img.display()));

    let state = t.path().join(OsStr::from_bytes(b"\xe9tat"));
    let o = run(Command::new(applet_path("liveinit")).args(["state", "set", "--file"]).arg(&state).arg("k=v"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "k=v\n");
}

// ---- trial state (src/trial.rs) ------------------------------------------------------------------

const V2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const V3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fn take(file: &str, sha: &str, version: &str, extra: &[&str]) -> Out {
    let mut a = vec!["trial", "take", "--file", file, "--sha256", sha, "--version", version];
    a.extend_from_slice(extra);
    let o = li(&a);
    assert_eq!(o.code, 0, "{}", o.stderr);
    o
}

/// A plain file written through the file system (--via-fs): the decisions of a whole trial.
#[test]
fn trial_counts_tries_then_falls_back_and_remembers_the_failed_version() {
    let t = TempDir::new("trial-flow");
    let f = t.path_str("trial.state");
    assert_eq!(li(&["trial", "create", &f]).code, 0);
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 8192);
    assert_ne!(li(&["trial", "create", &f]).code, 0, "create never overwrites");
    // No record yet: a plain boot, and it says why.
    let o = take(&f, V2, "2", &["--via-fs"]);
    assert_eq!(var(&o.stdout, "TRIAL"), "");
    assert_eq!(var(&o.stdout, "TRIAL_FALLBACK"), "");
    assert!(o.stderr.contains("no trial record"), "{}", o.stderr);

    // v2 on trial, falling back to v1 (--keep: the floor rises to it, so v1 never reads as failed).
    let o = li(&["trial", "start", "--file", &f, "--sha256", V2, "--version", "2", "--tries", "2", "--keep", "1", "--via-fs"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = li(&["trial", "start", "--file", &f, "--sha256", V2, "--version", "2", "--via-fs"]);
    assert_eq!(o.code, 5, "a second start of the same image leaves its trial alone: {}", o.stderr);
    assert_eq!(var(&take(&f, V2, "2", &["--via-fs"]).stdout, "TRIAL"), "1");
    assert_eq!(var(&take(&f, V2, "2", &["--via-fs"]).stdout, "TRIAL"), "0");
    // Tries used up: fall back, remember version 2.
    let o = take(&f, V2, "2", &["--via-fs"]);
    assert_eq!(var(&o.stdout, "TRIAL"), "");
    assert_eq!(var(&o.stdout, "TRIAL_FALLBACK"), "version 2 failed its trial: 2 boots without mark-good");
    assert_eq!(var(&o.stdout, "TRIAL_FAILED"), "2");
    // Later boots: the same answer and no write at all (not even --via-fs could write: read-only).
    let before = std::fs::read(&f).unwrap();
    let mut p = std::fs::metadata(&f).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o444);
    std::fs::set_permissions(&f, p).unwrap();
    let o = take(&f, V2, "2", &["--via-fs"]);
    assert_eq!(var(&o.stdout, "TRIAL_FALLBACK"), "version 2 failed its trial: 2 boots without mark-good");
    assert_eq!(std::fs::read(&f).unwrap(), before);
    // The previous image boots plain, spending nothing.
    let o = take(&f, V3.replace('3', "1").as_str(), "1", &[]);
    assert_eq!((var(&o.stdout, "TRIAL"), var(&o.stdout, "TRIAL_FALLBACK")), (String::new(), String::new()));
    assert_eq!(std::fs::read(&f).unwrap(), before);
    let mut p = std::fs::metadata(&f).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
    std::fs::set_permissions(&f, p).unwrap();
    // A fetched image: the failed version is not tried again, a higher one starts its trial.
    let o = take(&f, V2, "2", &["--start", "3", "--via-fs"]);
    assert!(!var(&o.stdout, "TRIAL_FALLBACK").is_empty());
    let o = take(&f, V3, "3", &["--start", "3", "--via-fs"]);
    assert_eq!(var(&o.stdout, "TRIAL"), "2");
    let o = li(&["trial", "status", "--file", &f]);
    assert_eq!(var(&o.stdout, "TRIAL_STATUS"), "trial");
    assert_eq!(var(&o.stdout, "TRIAL_NET"), "1");
    assert_eq!(var(&o.stdout, "TRIAL_FAILED"), "2");
    assert_eq!(var(&o.stdout, "TRIAL_VERSION"), "3");

    // mark-good reads the running image from the state; idempotent.
    let st = t.path_str("state");
    std::fs::write(&st, format!("image_sha256={V3}\nimage_version=3\n")).unwrap();
    let o = li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // Fetched (in RAM only): no floor until syncflash writes it, the flash's image must still boot.
    assert_eq!(o.stdout, "mark-good: version 3 marked good; the trial is over (the floor rises when syncflash writes it)\n");
    let before = std::fs::read(&f).unwrap();
    let o = li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "mark-good: version 3 is already good\n"));
    assert_eq!(std::fs::read(&f).unwrap(), before, "an image already good: nothing written");
    let o = take(&f, V3, "3", &[]);
    assert_eq!((var(&o.stdout, "TRIAL"), var(&o.stdout, "TRIAL_FLOOR")), (String::new(), "1".to_owned()), "still the kept v1");
}

/// `trial take --peek`: the answer a take would give, the file's bytes untouched (not even a
/// read-only file is opened for writing: the peek must work on a medium mounted read-only).
#[test]
fn trial_peek_decides_as_take_and_writes_nothing() {
    let t = TempDir::new("trial-peek");
    let f = t.path_str("trial.state");
    assert_eq!(li(&["trial", "create", &f]).code, 0);
    let o = li(&["trial", "start", "--file", &f, "--sha256", V2, "--version", "2", "--tries", "1", "--keep", "1", "--via-fs"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let ro = |mode: u32| {
        let mut p = std::fs::metadata(&f).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, mode);
        std::fs::set_permissions(&f, p).unwrap();
    };
    // On trial, one try left: the peek says so, the take then takes it.
    let before = std::fs::read(&f).unwrap();
    ro(0o444);
    let peek = take(&f, V2, "2", &["--peek", "--via-fs"]);
    assert_eq!(std::fs::read(&f).unwrap(), before, "a peek writes nothing");
    assert_eq!(var(&peek.stdout, "TRIAL"), "0");
    ro(0o644);
    let real = take(&f, V2, "2", &["--via-fs"]);
    assert_eq!(peek.stdout, real.stdout, "the same answer");
    assert_ne!(std::fs::read(&f).unwrap(), before, "the take wrote its try");
    // Tries used up: the peek says fallback, and the failure is recorded only by the take.
    let before = std::fs::read(&f).unwrap();
    let peek = take(&f, V2, "2", &["--peek", "--via-fs"]);
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!(var(&peek.stdout, "TRIAL_FALLBACK"), "version 2 failed its trial: 1 boots without mark-good");
    assert_eq!(var(&peek.stdout, "TRIAL_FAILED"), "2", "as the take will record it");
    assert_eq!(var(&li(&["trial", "status", "--file", &f]).stdout, "TRIAL_STATUS"), "trial");
    let real = take(&f, V2, "2", &["--via-fs"]);
    assert_eq!(peek.stdout, real.stdout);
    assert_eq!(var(&li(&["trial", "status", "--file", &f]).stdout, "TRIAL_STATUS"), "failed");
    // A fetched image whose trial would begin: nothing written by the peek.
    let before = std::fs::read(&f).unwrap();
    let peek = take(&f, V3, "3", &["--start", "2", "--keep", "1", "--peek", "--via-fs"]);
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!((var(&peek.stdout, "TRIAL"), var(&peek.stdout, "TRIAL_FALLBACK")), ("1".to_owned(), String::new()));
    assert!(li(&["trial", "take", "--help"]).stdout.contains("nothing written"));
}

/// A medium without LiveOS/trial.state (made by hand or before trials): a local image boots
/// plain as before; a fetched image whose trial must begin does not boot untried, unless
/// rd.live.tries=0 (--start 0) asks for that. Nothing is created by the take.
#[test]
fn trial_take_without_a_trial_file() {
    let t = TempDir::new("trial-nofile");
    let f = t.path_str("trial.state");
    let o = take(&f, V2, "2", &[]);
    assert_eq!((var(&o.stdout, "TRIAL"), var(&o.stdout, "TRIAL_FALLBACK")), (String::new(), String::new()));
    assert!(o.stderr.contains("a flash from before trials"), "{}", o.stderr);
    for extra in [&["--start", "2", "--keep", "1"][..], &["--start", "2", "--peek"][..]] {
        let o = take(&f, V2, "2", extra);
        let fb = var(&o.stdout, "TRIAL_FALLBACK");
        assert!(fb.contains("missing") && fb.contains("does not boot untried (rd.live.tries=0 allows that)"), "{extra:?}: {fb}");
        assert_eq!(var(&o.stdout, "TRIAL"), "");
    }
    let o = take(&f, V2, "2", &["--start", "0"]);
    assert_eq!(var(&o.stdout, "TRIAL_FALLBACK"), "", "{}", o.stderr);
    assert!(o.stderr.contains("version 2: rd.live.tries=0: boots untried"), "{}", o.stderr);
    assert!(!Path::new(&f).exists(), "a take never creates the file");
    // A file that is not a trial file (wrong size) is no place to count tries either.
    std::fs::write(&f, b"short").unwrap();
    assert!(!var(&take(&f, V2, "2", &["--start", "3"]).stdout, "TRIAL_FALLBACK").is_empty());
    assert_eq!(var(&take(&f, V2, "2", &[]).stdout, "TRIAL_FALLBACK"), "");
}

#[test]
fn cmdline_tries_zero_means_untried() {
    let t = TempDir::new("liveinit-tries0");
    let f = cmdline_file(&t, "root=live:LABEL=LIVE rd.live.tries=0");
    let o = li(&["cmdline", "--file", &f]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(var(&o.stdout, "LIVE_TRIES"), "0");
    let f = cmdline_file(&t, "root=live:LABEL=LIVE rd.live.tries=256");
    assert_eq!(li(&["cmdline", "--file", &f]).stderr, "liveinit: rd.live.tries=256: expected 0 (untried) to 255\n");
    assert!(li(&["cmdline", "--help"]).stdout.contains("0: a new image boots untried"));
}

/// A torn copy is ignored (the other one wins); both torn: no record, a plain boot that says why.
#[test]
fn trial_torn_copies() {
    let t = TempDir::new("trial-torn");
    let f = t.path_str("trial.state");
    li(&["trial", "create", &f]);
    li(&["trial", "start", "--file", &f, "--sha256", V2, "--version", "2", "--via-fs"]); // seq 1, copy 0
    take(&f, V2, "2", &["--via-fs"]); // seq 2, copy 1: 2 left
    let seq = |f: &str| var(&li(&["trial", "status", "--file", f]).stdout, "TRIAL_SEQ");
    assert_eq!(seq(&f), "2");
    let mut b = std::fs::read(&f).unwrap();
    b[4096 + 40] ^= 0x55; // copy 1 cut mid-write
    std::fs::write(&f, &b).unwrap();
    let o = li(&["trial", "status", "--file", &f]);
    assert_eq!((var(&o.stdout, "TRIAL_SEQ"), var(&o.stdout, "TRIAL_LEFT")), ("1".to_owned(), "3".to_owned()));
    assert_eq!(var(&o.stdout, "TRIAL_WHY"), "copy 1: CRC mismatch (a write cut short?)");
    // The next write goes over the torn copy, not over the one that is still good.
    assert_eq!(var(&take(&f, V2, "2", &["--via-fs"]).stdout, "TRIAL"), "2");
    let b2 = std::fs::read(&f).unwrap();
    assert_eq!(b2[..4096], b[..4096], "copy 0 untouched");
    b[10] ^= 0x55;
    let mut both = b2.clone();
    both[10] ^= 0x55;
    both[4096 + 40] ^= 0x55;
    std::fs::write(&f, &both).unwrap();
    let o = take(&f, V2, "2", &["--via-fs"]);
    assert_eq!((var(&o.stdout, "TRIAL"), var(&o.stdout, "TRIAL_FALLBACK")), (String::new(), String::new()));
    assert!(o.stderr.contains("copy 0: CRC mismatch") && o.stderr.contains("no trial record"), "{}", o.stderr);
    assert_eq!(var(&li(&["trial", "status", "--file", &f]).stdout, "TRIAL_STATUS"), "none");
}

/// The raw path, as at boot: the file on a file system mounted read-only on a loop device; a
/// try is one sector written through the device at the file's place, nothing else changes (the
/// host has no vfat: ext4 here; FAT32 is the QEMU scenarios').
#[test]
fn trial_writes_one_sector_through_the_device_under_a_read_only_mount() {
    need("mkfs.ext4");
    let t = TempDir::new("trial-raw");
    let img = t.path_str("medium.img");
    sh("truncate", &["-s", "16M", &img]);
    sh("mkfs.ext4", &["-q", "-F", "-b", "1024", &img]);
    let dev = sh("losetup", &["-f", "--show", &img]).stdout.trim().to_owned();
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.1).status();
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let mnt = t.path_str("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _c = Cleanup(dev.clone(), mnt.clone());
    sh("mount", &[&dev, &mnt]);
    std::fs::create_dir(format!("{mnt}/LiveOS")).unwrap();
    let f = format!("{mnt}/LiveOS/trial.state");
    assert_eq!(li(&["trial", "create", &f]).code, 0);
    sh("mount", &["-o", "remount,ro", &mnt]);
    let st = t.path_str("state");
    std::fs::write(&st, format!("medium_mount={mnt}\nimage=LiveOS/squashfs.img\nimage_sha256={V2}\nimage_version=2\n")).unwrap();
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    let snap = || {
        sh("sync", &[]);
        std::fs::read(&img).unwrap()
    };

    // Located through the state, as mark-good and /init find it.
    let o = li(&["trial", "start", "--state", &st, "--sha256", V2, "--version", "2"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let before = snap();
    // The environment names no test hook (at boot it holds the kernel command line's unknown
    // words): no step is announced (and none pauses; the hook is a root-owned file).
    let take = ["trial", "take", "--state", &st, "--sha256", V2, "--version", "2"];
    let o = run(common::applet("liveinit").args(take).env("LIVEROOT_TRIAL_PAUSE_AT", "none"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!o.stderr.contains("trial-step"), "{}", o.stderr);
    assert_eq!(var(&o.stdout, "TRIAL"), "2");
    let after = snap();
    let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
    let (lo, hi) = (*changed.first().unwrap(), *changed.last().unwrap());
    assert_eq!(lo / 512, hi / 512, "one sector changed, bytes {lo}..{hi}");
    // That sector is the file's second copy, as the file system reads it now.
    let file = std::fs::read(&f).unwrap();
    let sector = lo / 512 * 512;
    assert_eq!(after[sector..sector + 512], file[4096..4096 + 512]);
    assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), mtime, "no metadata write");
    let o = li(&["trial", "status", "--state", &st]);
    assert_eq!((var(&o.stdout, "TRIAL_LEFT"), var(&o.stdout, "TRIAL_SEQ")), ("2".to_owned(), "2".to_owned()));

    // mark-good: written once; the next call and the boots after it write nothing.
    let o = li(&["mark-good", "--state", &st]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "mark-good: version 2 marked good; the trial is over (floor 2)\n"), "{}", o.stderr);
    let good = snap();
    assert_ne!(good, after);
    assert_eq!(li(&["mark-good", "--state", &st]).stdout, "mark-good: version 2 is already good\n");
    let o = li(&["trial", "take", "--state", &st, "--sha256", V2, "--version", "2"]);
    assert_eq!((var(&o.stdout, "TRIAL"), var(&o.stdout, "TRIAL_FALLBACK")), (String::new(), String::new()));
    assert!(snap() == good, "after mark-good a boot writes nothing");
}

/// The anti-rollback floor rises at mark-good, not when an image arrives: the pair a trial falls
/// back to still boots, and once the new one is good an older pair is a rollback.
#[test]
fn select_image_floor_rises_only_at_mark_good() {
    let m = Medium::new("goodfloor");
    let (v2, v1) = (b"image v2".to_vec(), b"image v1".to_vec());
    m.put("squashfs.img", &v2);
    m.put("squashfs.img.old", &v1);
    m.manifest("", &format!("{}  squashfs.img\n", sha256_hex(&v2)), Some(("key", 2)));
    m.manifest(".old", &format!("{}  squashfs.img\n", sha256_hex(&v1)), Some(("key", 1)));
    let f = m.m("trial.state");
    assert_eq!(li(&["trial", "create", &f]).code, 0);
    let (s2, s1) = (sha256_hex(&v2), sha256_hex(&v1));
    // v1 was good (floor 1); v2 arrives on trial: the floor stays 1.
    let st = m.t.path_str("state");
    std::fs::write(&st, format!("image_sha256={s1}\nimage_version=1\n")).unwrap();
    assert_eq!(li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]).code, 0);
    assert_eq!(li(&["trial", "start", "--file", &f, "--sha256", &s2, "--version", "2", "--via-fs"]).code, 0);
    // v2 fails a later check: .old (v1) must still boot.
    let o = m.select(&["--trial-state", &f, "--skip", "primary"]);
    assert_eq!((o.code, var(&o.stdout, "IMG_PAIR")), (0, "old".into()), "{}", o.stderr);
    // v2 marked good: floor 2; v1 is now a rollback, refused with the reason.
    std::fs::write(&st, format!("image_sha256={s2}\nimage_version=2\n")).unwrap();
    assert_eq!(li(&["mark-good", "--state", &st, "--file", &f, "--via-fs"]).code, 0);
    let o = m.select(&["--trial-state", &f]);
    assert_eq!((o.code, var(&o.stdout, "IMG_PAIR"), var(&o.stdout, "IMG_FLOOR")), (0, "primary".into(), "2".into()));
    let o = m.select(&["--trial-state", &f, "--skip", "primary"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("version 1 is below version 2 marked good: rollback refused"), "{}", o.stderr);
    // Without the record (or with a damaged one) nothing is refused for it: it cannot brick.
    let o = m.select(&["--skip", "primary"]);
    assert_eq!((o.code, var(&o.stdout, "IMG_PAIR")), (0, "old".into()), "{}", o.stderr);
    std::fs::write(&f, vec![0u8; 8192]).unwrap();
    let o = m.select(&["--trial-state", &f, "--skip", "primary"]);
    assert_eq!((o.code, var(&o.stdout, "IMG_PAIR")), (0, "old".into()), "{}", o.stderr);
}

// ---- recovery ----------------------------------------------------------------------------------

/// `liveinit recovery` with INPUT on stdin (a pipe: no terminal, nothing to turn off).
fn recovery(args: &[&str], input: &str) -> Out {
    use std::io::Write;
    let mut c = common::applet("liveinit");
    c.arg("recovery").args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let o = child.wait_with_output().unwrap();
    Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() }
}

#[test]
fn recovery_asks_only_under_secure_boot() {
    need("openssl");
    let d = TempDir::new("recovery");
    let hash = sh("openssl", &["passwd", "-6", "-salt", "rec0very", "s3cret pass"]).stdout;
    std::fs::write(d.join("hash"), &hash).unwrap();
    std::fs::create_dir_all(d.join("efivars")).unwrap();
    let var = d.join("efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c");
    let lockdown = d.path_str("lockdown");
    std::fs::write(&lockdown, "[none] integrity confidentiality\n").unwrap();
    let (hf, ev) = (d.path_str("hash"), d.path_str("efivars"));
    let at = |extra: &[&str], input: &str| {
        let mut a = vec!["--hash-file", hf.as_str(), "--efivars", ev.as_str(), "--lockdown", lockdown.as_str()];
        a.extend_from_slice(extra);
        recovery(&a, input)
    };
    // Not under Secure Boot (BIOS-like: no variable; then UEFI with it off): nothing asked.
    let o = at(&[], "");
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");
    std::fs::write(&var, [6, 0, 0, 0, 0]).unwrap();
    assert_eq!(at(&[], "").code, 0);
    // Secure Boot on: the password, one wrong try first.
    std::fs::write(&var, [6, 0, 0, 0, 1]).unwrap();
    let o = at(&[], "wrong\ns3cret pass\n");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("liveinit: recovery: Secure Boot is on"), "{}", o.stderr);
    assert!(o.stderr.contains("password: ") && o.stderr.contains("liveinit: recovery: wrong password (1 of 3)"), "{}", o.stderr);
    assert!(o.stderr.contains("liveinit: recovery: password accepted"), "{}", o.stderr);
    assert!(!o.stderr.contains("s3cret") && o.stdout.is_empty(), "{o:?}");
    // Three wrong: 3, no shell.
    let o = at(&[], "a\nb\nc\ns3cret pass\n");
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.ends_with("liveinit: recovery: no shell: the password was not given (3 tries)\n"), "{}", o.stderr);
    // The console closed: no shell.
    assert_eq!(at(&[], "").code, 3);
    // Lockdown alone is enough.
    std::fs::remove_file(&var).unwrap();
    std::fs::write(&lockdown, "none [integrity] confidentiality\n").unwrap();
    let o = at(&[], "s3cret pass\n");
    assert!(o.code == 0 && o.stderr.contains("the kernel is in lockdown (integrity)"), "{o:?}");
    // No hash baked in: no shell under Secure Boot, 1.
    std::fs::remove_file(d.join("hash")).unwrap();
    let o = at(&[], "s3cret pass\n");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.starts_with("liveinit: recovery: the kernel is in lockdown (integrity): ") && o.stderr.contains("no recovery password was set"), "{}", o.stderr);
}

#[test]
fn recovery_check_and_always() {
    need("openssl");
    let d = TempDir::new("recovery-check");
    let hash = sh("openssl", &["passwd", "-6", "-salt", "rounds=2000$xyz", "pw"]).stdout;
    std::fs::write(d.join("ok"), &hash).unwrap();
    let ok = d.path_str("ok");
    assert_eq!(recovery(&["--check", "--hash-file", &ok], "").code, 0);
    let o = recovery(&["--always", "--hash-file", &ok], "pw\n");
    assert_eq!(o.code, 0, "{o:?}");
    for (bad, why) in [
        ("$1$abc$def\n", "not a SHA-512 crypt hash"),
        ("$6$rounds=5000000$abc$x\n", "rounds=5000000: more than 1000000"),
        ("$6$abc$tooshort\n", "the hash is not 86 characters"),
    ] {
        std::fs::write(d.join("bad"), bad).unwrap();
        let o = recovery(&["--check", "--hash-file", &d.path_str("bad")], "");
        assert_eq!(o.code, 1, "{bad}: {o:?}");
        assert!(o.stderr.starts_with("liveinit: recovery: ") && o.stderr.contains(why), "{bad}: {}", o.stderr);
    }
    assert_eq!(recovery(&["--bogus"], "").code, 2);
}
