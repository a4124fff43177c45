//! The kernel command line as the live /init sees it: split like the kernel does (double quotes
//! group words, `a="b c"` is `a` = `b c`), then the dracut-style live options turned into
//! validated settings and printed as shell assignments that are safe to `eval`.

use crate::error::{Error, Result};

/// Split a command line into `(key, value)` pairs the way the kernel's `next_arg` does.
/// A word without `=` has value `None`. Words after a lone `--` belong to init and are dropped.
pub fn split(line: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() && !quoted {
                break;
            }
            chars.next();
            if c == '"' {
                quoted = !quoted;
                continue;
            }
            word.push(c);
        }
        if word == "--" {
            break;
        }
        match word.split_once('=') {
            Some((k, v)) => out.push((k.to_owned(), Some(v.to_owned()))),
            None => out.push((word, None)),
        }
    }
    out
}

/// The live-boot settings, defaults filled in. Field order is output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// `root=live:SPEC`: `LABEL=x`, `UUID=x`, `PARTUUID=x`, `PARTLABEL=x` or `/dev/...`.
    pub root: String,
    pub dir: String,
    pub squashimg: String,
    /// MiB; `None`: the smaller of the origin size and half of RAM, decided at boot.
    pub overlay_size: Option<u64>,
    pub ram: bool,
    pub minmem: u64,
    /// `None`: check when SHA256SUMS is beside the image (or a public key is installed).
    pub check: Option<bool>,
    pub md: String,
    pub retry: u64,
    pub brk: bool,
    pub init: String,
    /// `live.fetch=http://HOST[:PORT]/PATH/`, or the URL of `root=live:http://...`.
    pub fetch: String,
    /// `root=live:http://...`: no local medium, the network image is the only one.
    pub netroot: bool,
    /// `live.fetch.timeout=SECONDS` for the whole network phase.
    pub fetch_timeout: u64,
    pub allow_downgrade: bool,
    /// `ip=dhcp` or `ip=IFACE:dhcp`: `Some("")` for the first interface.
    pub ip: Option<String>,
    /// `live.pubkey=BASE64`: weaker than a key baked into the initramfs.
    pub pubkey: String,
    /// A `root=` that is not `live:...` (`/dev/sdb`, `UUID=...`, `LABEL=...`): an installed
    /// system, booted as a plain root with no live stack. `root` is then empty.
    pub plain_root: String,
    /// `rootfstype=`, `rootflags=`, and `ro`/`rw` (default rw) for a plain root.
    pub root_fstype: String,
    pub root_flags: String,
    pub root_ro: bool,
    /// `rd.live.tries=N`: boots a new image gets to call `liveinit mark-good` (1 to 255); 0: new
    /// images boot untried (nothing written; a crash loop of one is not stopped).
    pub tries: u8,
    /// `rd.live.machine_id=ID`: this box's identity for phased rollouts (imgfetch --machine-id).
    pub machine_id: String,
    /// `rd.live.watchdog=S`: seconds an image on trial gets before the hardware watchdog resets
    /// the box, unless mark-good (or the OS's watchdog daemon) takes it over; 0: never armed.
    pub watchdog: u32,
    /// `panic=` as given (the kernel applied it); /init sets its own only when there is none.
    pub panic: Option<String>,
    /// `live.kexec=N`: this kernel was started by kexec from the loader's kernel, for release
    /// version N, whose trial take that boot already made (core/src/boot/kexec.rs).
    pub kexec: Option<u64>,
    /// `liveroot.stamps`: `liveroot-stamp STEP SECONDS` lines on the console at the boot's
    /// steps (core/src/stamp.rs), for `make bench`; off by default.
    pub stamps: bool,
}

/// `rd.live.tries=` default: a new image gets three boots to call mark-good.
pub const DEFAULT_TRIES: u8 = 3;

/// `rd.live.watchdog=` default: two minutes for an image on trial to come up and call mark-good.
pub const DEFAULT_WATCHDOG: u32 = 120;

impl Default for Live {
    fn default() -> Self {
        Live {
            root: String::new(),
            dir: "LiveOS".into(),
            squashimg: "squashfs.img".into(),
            overlay_size: None,
            ram: false,
            minmem: 256,
            check: None,
            md: "md7".into(),
            retry: 30,
            brk: false,
            init: String::new(),
            fetch: String::new(),
            netroot: false,
            fetch_timeout: 20,
            allow_downgrade: false,
            ip: None,
            pubkey: String::new(),
            plain_root: String::new(),
            root_fstype: String::new(),
            root_flags: String::new(),
            root_ro: false,
            tries: DEFAULT_TRIES,
            machine_id: String::new(),
            watchdog: DEFAULT_WATCHDOG,
            panic: None,
            kexec: None,
            stamps: false,
        }
    }
}

fn bad(key: &str, val: &str, why: &str) -> Error {
    Error::new(format!("{key}={val}"), why)
}

fn number(key: &str, val: Option<&str>, what: &str) -> Result<u64> {
    let v = val.unwrap_or("");
    let digits = v.strip_suffix("M").or_else(|| v.strip_suffix("MiB")).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(key, v, &format!("not {what}")));
    }
    digits.parse().map_err(|_| bad(key, v, "number too large"))
}

/// Seconds within `min..=max`; a number too large for u64 is out of range too.
fn seconds(key: &str, val: Option<&str>, min: u64, max: u64) -> Result<u64> {
    let v = val.unwrap_or("");
    let range = || bad(key, v, &format!("expected {min} to {max} seconds"));
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(key, v, "not a number of seconds"));
    }
    v.parse().ok().filter(|n| (min..=max).contains(n)).ok_or_else(range)
}

/// Boolean options: bare word or `=1|yes|on` is true, `=0|no|off` is false.
fn flag(key: &str, val: Option<&str>) -> Result<bool> {
    match val {
        None | Some("1") | Some("yes") | Some("on") | Some("true") => Ok(true),
        Some("0") | Some("no") | Some("off") | Some("false") => Ok(false),
        Some(v) => Err(bad(key, v, "expected 0 or 1")),
    }
}

fn tries(key: &str, val: Option<&str>) -> Result<u8> {
    let n = number(key, val, "a number of tries")?;
    u8::try_from(n).map_err(|_| bad(key, val.unwrap_or(""), "expected 0 (untried) to 255"))
}

/// `rd.live.tries` alone, checked as [`parse`] checks it (the last one counts; absent: the
/// default), for a running system that needs only this option of its command line.
pub fn tries_of(line: &str) -> Result<u8> {
    match split(line).into_iter().rev().find(|(k, _)| k == "rd.live.tries") {
        Some((k, v)) => tries(&k, v.as_deref()),
        None => Ok(DEFAULT_TRIES),
    }
}

/// A path below the medium root or inside the image: relative, no `..`.
fn rel_path(key: &str, val: Option<&str>) -> Result<String> {
    let v = val.unwrap_or("");
    let t = v.trim_matches('/');
    if t.is_empty() || t.split('/').any(|c| c == "..") {
        return Err(bad(key, v, "expected a path relative to the medium, without '..'"));
    }
    Ok(t.to_owned())
}

/// Interpret the live options. Unknown words are ignored (they belong to the kernel or init).
pub fn parse(line: &str) -> Result<Live> {
    let mut l = Live::default();
    let mut root: Option<String> = None;
    for (k, v) in split(line) {
        if k == "root" {
            root = Some(v.unwrap_or_default());
            continue;
        }
        set_option(&mut l, &k, v.as_deref())?;
    }
    finish(l, root)
}

/// One live option `k[=val]` onto `l`, checked as [`parse`] checks it; on an error `l` is left
/// as it was. `root=` is not one of these (it decides the rest: [`parse`]); an unknown key is
/// ignored. LiveOS/settings (core/src/settings.rs) sets its allowed keys through this too.
pub fn set_option(l: &mut Live, k: &str, val: Option<&str>) -> Result<()> {
    match k {
        "rd.live.dir" => l.dir = rel_path(k, val)?,
        "rd.live.squashimg" => l.squashimg = rel_path(k, val)?,
        "rd.live.overlay.size" => {
            let n = number(k, val, "a size in MiB")?;
            if n == 0 {
                return Err(bad(k, val.unwrap_or(""), "must be at least 1 MiB"));
            }
            l.overlay_size = Some(n);
        }
        "rd.live.ram" => l.ram = flag(k, val)?,
        "rd.minmem" => l.minmem = number(k, val, "a size in MiB")?,
        "rd.live.check" => l.check = Some(flag(k, val)?),
        "live.md" => {
            let v = val.unwrap_or("");
            let name = v.strip_prefix("/dev/").unwrap_or(v);
            let ok = name.strip_prefix("md").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err(bad(k, v, "expected mdN, e.g. md7"));
            }
            l.md = name.to_owned();
        }
        // Both end up in deadlines (find-medium --wait, /init's date arithmetic).
        "rd.retry" => l.retry = seconds(k, val, 0, crate::cli::MAX_BOOT_WAIT)?,
        // liveroot.recovery: the word of the signed recovery entry (make flash RECOVERY_HASH=
        // with SB_KEY): rd.break's shell, which /init puts behind the recovery password.
        "rd.break" | "liveroot.recovery" => l.brk = true,
        "rd.shell" => l.brk = flag(k, val)?,
        "init" => {
            let v = val.unwrap_or("");
            if !v.starts_with('/') {
                return Err(bad(k, v, "expected an absolute path"));
            }
            l.init = v.to_owned();
        }
        "live.fetch" => l.fetch = http_url(k, val)?,
        "live.fetch.timeout" => {
            l.fetch_timeout = seconds(k, val, 1, crate::cli::MAX_BOOT_WAIT)?;
        }
        "live.fetch.allow-downgrade" => l.allow_downgrade = flag(k, val)?,
        "live.pubkey" => l.pubkey = val.unwrap_or("").to_owned(),
        "rd.live.machine_id" => {
            let v = val.unwrap_or("");
            if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(k, v, "expected 1 to 128 printable characters"));
            }
            l.machine_id = v.to_owned();
        }
        "ip" => {
            let v = val.unwrap_or("");
            let iface = match v.strip_suffix(":dhcp") {
                Some(i) if !i.is_empty() && !i.contains([':', '/']) => i,
                _ if v == "dhcp" => "",
                _ => return Err(bad(k, v, "only ip=dhcp or ip=IFACE:dhcp are supported")),
            };
            l.ip = Some(iface.to_owned());
        }
        "rd.live.tries" => l.tries = tries(k, val)?,
        "rd.live.watchdog" => {
            let n = number(k, val, "a number of seconds")?;
            l.watchdog = u32::try_from(n).ok().filter(|n| *n <= 65535).ok_or_else(|| bad(k, val.unwrap_or(""), "expected 0 (off) to 65535 seconds"))?;
        }
        "panic" => l.panic = Some(val.unwrap_or("").to_owned()),
        "live.kexec" => l.kexec = Some(number(k, val, "a release version")?),
        "liveroot.stamps" => l.stamps = flag(k, val)?,
        "rootfstype" => l.root_fstype = val.unwrap_or("").to_owned(),
        "rootflags" => l.root_flags = val.unwrap_or("").to_owned(),
        "ro" if val.is_none() => l.root_ro = true,
        "rw" if val.is_none() => l.root_ro = false,
        // dracut's marker for live media; the root= form already says it.
        "rd.live.image" => {}
        _ => {}
    }
    Ok(())
}

/// The rest of [`parse`]: `root=` and what it implies.
fn finish(mut l: Live, root: Option<String>) -> Result<Live> {
    let Some(root) = root else {
        return Err(Error::new("root", "no root= on the kernel command line (root=live:... or a device)"));
    };
    let Some(spec) = root.strip_prefix("live:") else {
        if root.is_empty() {
            return Err(bad("root", &root, "expected a device: root=/dev/..., UUID=..., LABEL=..., or root=live:..."));
        }
        l.plain_root = root;
        return Ok(l);
    };
    if spec.starts_with("http://") || spec.starts_with("https://") {
        l.fetch = http_url("root", Some(&root[5..]))?;
        l.netroot = true;
        return Ok(l);
    }
    l.root = normalize_spec(spec).map_err(|why| bad("root", &root, &why))?;
    Ok(l)
}

/// Plain http only: the image is trusted through its signature, and TLS is too big to carry.
fn http_url(key: &str, val: Option<&str>) -> Result<String> {
    let v = val.unwrap_or("");
    if v.starts_with("https://") {
        return Err(bad(key, v, "https is not supported; use http:// (the image is signed)"));
    }
    match v.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !v.contains(char::is_whitespace) => Ok(v.to_owned()),
        _ => Err(bad(key, v, "expected http://HOST[:PORT]/PATH/")),
    }
}

/// Accept the spellings dracut accepts; CDLABEL is a LABEL.
pub fn normalize_spec(spec: &str) -> std::result::Result<String, String> {
    if let Some(x) = spec.strip_prefix("CDLABEL=") {
        return normalize_spec(&format!("LABEL={x}"));
    }
    if spec.contains("://") {
        return Err("only http:// network images are supported".into());
    }
    let ok = ["LABEL=", "UUID=", "PARTUUID=", "PARTLABEL="]
        .iter()
        .any(|p| spec.strip_prefix(p).is_some_and(|v| !v.is_empty()))
        || (spec.starts_with("/dev/") && spec.len() > 5);
    if !ok {
        return Err("expected root=live:LABEL=..., UUID=..., PARTUUID=... or /dev/...".into());
    }
    Ok(spec.to_owned())
}

/// Quote for POSIX sh: single quotes, each `'` written as `'\''`. Nothing inside single quotes is
/// special to sh, so the value comes back byte for byte.
pub fn sh_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        if c == '\'' {
            q.push_str("'\\''");
        } else {
            q.push(c);
        }
    }
    q.push('\'');
    q
}

/// `NAME='value'` lines for `eval`, one per pair, each value through [`sh_quote`]: what /init
/// reads from `liveinit cmdline`, `find-image` and `trial`.
pub fn sh_assignments<V: AsRef<str>>(vars: &[(&str, V)]) -> String {
    vars.iter().map(|(k, v)| format!("{k}={}\n", sh_quote(v.as_ref()))).collect()
}

impl Live {
    /// `NAME='value'` lines for `eval`.
    pub fn to_shell(&self) -> String {
        let b = |x: bool| if x { "1" } else { "0" }.to_owned();
        let vars: [(&str, String); 26] = [
            ("LIVE_ROOT", self.root.clone()),
            ("LIVE_DIR", self.dir.clone()),
            ("LIVE_SQUASHIMG", self.squashimg.clone()),
            ("LIVE_OVERLAY_SIZE", self.overlay_size.map(|n| n.to_string()).unwrap_or_default()),
            ("LIVE_RAM", b(self.ram)),
            ("LIVE_MINMEM", self.minmem.to_string()),
            ("LIVE_CHECK", self.check.map(b).unwrap_or_default()),
            ("LIVE_MD", self.md.clone()),
            ("LIVE_RETRY", self.retry.to_string()),
            ("LIVE_BREAK", b(self.brk)),
            ("LIVE_INIT", self.init.clone()),
            ("LIVE_FETCH", self.fetch.clone()),
            ("LIVE_NETROOT", b(self.netroot)),
            ("LIVE_FETCH_TIMEOUT", self.fetch_timeout.to_string()),
            ("LIVE_FETCH_DOWNGRADE", b(self.allow_downgrade)),
            ("LIVE_IP", if self.ip.is_some() { "dhcp" } else { "" }.to_owned()),
            ("LIVE_IP_IFACE", self.ip.clone().unwrap_or_default()),
            ("LIVE_PUBKEY", self.pubkey.clone()),
            ("LIVE_WATCHDOG", self.watchdog.to_string()),
            ("LIVE_PANIC", self.panic.clone().unwrap_or_default()),
            ("ROOT_PLAIN", self.plain_root.clone()),
            ("ROOT_FSTYPE", self.root_fstype.clone()),
            ("ROOT_FLAGS", self.root_flags.clone()),
            ("ROOT_MODE", if self.root_ro { "ro" } else { "rw" }.to_owned()),
            ("LIVE_TRIES", self.tries.to_string()),
            ("LIVE_MACHINE_ID", self.machine_id.clone()),
        ];
        sh_assignments(&vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_owned(), v.map(str::to_owned))
    }

    #[test]
    fn split_like_the_kernel() {
        assert_eq!(
            split("  quiet a=\"b c\" \"d=e f\" x= y==z -- init args"),
            vec![kv("quiet", None), kv("a", Some("b c")), kv("d", Some("e f")), kv("x", Some("")), kv("y", Some("=z"))]
        );
        assert_eq!(split("root=live:LABEL=LIVE\n"), vec![kv("root", Some("live:LABEL=LIVE"))]);
        assert_eq!(split(""), vec![]);
    }

    #[test]
    fn defaults() {
        let l = parse("BOOT_IMAGE=/vmlinuz root=live:LABEL=LIVE rd.live.image quiet").unwrap();
        assert_eq!(l, Live { root: "LABEL=LIVE".into(), ..Live::default() });
        assert_eq!(l.dir, "LiveOS");
        assert_eq!(l.squashimg, "squashfs.img");
        assert_eq!(l.minmem, 256);
        assert_eq!(l.retry, 30);
        assert_eq!(l.md, "md7");
        assert_eq!(l.check, None);
        assert_eq!(l.overlay_size, None);
    }

    #[test]
    fn all_options() {
        let l = parse(
            "root=live:CDLABEL=\"MY LIVE\" rd.live.dir=/boot/live/ rd.live.squashimg=fs.img \
             rd.live.overlay.size=512 rd.live.ram rd.minmem=100 rd.live.check=0 live.md=/dev/md3 \
             rd.retry=5 rd.break=pre-pivot init=/bin/sh",
        )
        .unwrap();
        assert_eq!(l.root, "LABEL=MY LIVE");
        assert_eq!(l.dir, "boot/live");
        assert_eq!(l.squashimg, "fs.img");
        assert_eq!(l.overlay_size, Some(512));
        assert!(l.ram);
        assert_eq!(l.minmem, 100);
        assert_eq!(l.check, Some(false));
        assert_eq!(l.md, "md3");
        assert_eq!(l.retry, 5);
        assert!(l.brk);
        assert_eq!(l.init, "/bin/sh");
        // Last one wins, as in dracut.
        assert!(!parse("root=live:/dev/sr0 rd.live.ram rd.live.ram=0").unwrap().ram);
        assert!(parse("root=live:/dev/sr0 rd.shell").unwrap().brk);
        assert!(parse("root=live:/dev/sr0 liveroot.recovery").unwrap().brk);
        assert!(!parse("root=live:/dev/sr0").unwrap().stamps, "stamps only when asked");
        assert!(parse("root=live:/dev/sr0 liveroot.stamps").unwrap().stamps);
        assert!(!parse("root=live:/dev/sr0 liveroot.stamps liveroot.stamps=0").unwrap().stamps);
        assert!(parse("root=/dev/sda1 liveroot.stamps=1").unwrap().stamps, "a plain root too");
        assert_eq!(parse("root=live:UUID=ab-cd rd.live.overlay.size=64M").unwrap().overlay_size, Some(64));
    }

    #[test]
    fn network_options() {
        let l = parse("root=live:LABEL=LIVE live.fetch=http://10.0.2.100/img/ ip=eth0:dhcp live.fetch.timeout=9 live.fetch.allow-downgrade live.pubkey=RWQx").unwrap();
        assert_eq!((l.fetch.as_str(), l.netroot, l.fetch_timeout, l.allow_downgrade), ("http://10.0.2.100/img/", false, 9, true));
        assert_eq!((l.ip.as_deref(), l.pubkey.as_str()), (Some("eth0"), "RWQx"));
        let s = l.to_shell();
        assert!(s.contains("LIVE_IP='dhcp'\nLIVE_IP_IFACE='eth0'\n"), "{s}");
        let n = parse("root=live:http://h:8080/live/ ip=dhcp").unwrap();
        assert_eq!((n.root.as_str(), n.fetch.as_str(), n.netroot, n.ip.as_deref()), ("", "http://h:8080/live/", true, Some("")));
        assert_eq!(parse("root=live:LABEL=x").unwrap().fetch_timeout, 20);
        assert_eq!(parse("root=live:LABEL=x").unwrap().tries, 3);
        assert_eq!(parse("root=live:LABEL=x rd.live.tries=7").unwrap().tries, 7);
        // 0: new images boot untried (trial.rs reads Start { tries: 0 } so).
        assert_eq!(parse("root=live:LABEL=x rd.live.tries=0").unwrap().tries, 0);
        // The running system's reader (syncflash) says what the boot said, without a root=.
        assert_eq!(tries_of("quiet").unwrap(), DEFAULT_TRIES);
        assert_eq!(tries_of("rd.live.tries=1 rd.live.tries=0").unwrap(), 0);
        for bad in ["256", "x", "", "-1"] {
            let line = format!("root=live:LABEL=x rd.live.tries={bad}");
            assert_eq!(tries_of(&line).unwrap_err().to_string(), parse(&line).unwrap_err().to_string(), "{bad:?}");
        }
        assert!(parse("root=live:LABEL=x rd.live.tries=0").unwrap().to_shell().contains("LIVE_TRIES='0'\n"));
        for bad in ["256", "x", "", "-1"] {
            assert!(parse(&format!("root=live:LABEL=x rd.live.tries={bad}")).is_err(), "rd.live.tries={bad}");
        }
        let d = parse("root=live:LABEL=x").unwrap();
        assert_eq!((d.watchdog, d.panic.as_deref()), (120, None));
        assert!(d.to_shell().contains("LIVE_WATCHDOG='120'\nLIVE_PANIC=''\n"));
        let w = parse("root=live:LABEL=x rd.live.watchdog=0 panic=-1").unwrap();
        assert_eq!((w.watchdog, w.panic.as_deref()), (0, Some("-1")));
        assert!(w.to_shell().contains("LIVE_WATCHDOG='0'\nLIVE_PANIC='-1'\n"));
        assert_eq!(parse("root=live:LABEL=x rd.live.watchdog=65535").unwrap().watchdog, 65535);
        // A panic= inside another option's quoted value is not the kernel's.
        assert_eq!(parse("root=live:LABEL=x \"init=/bin/x panic=5\"").unwrap().panic, None);
        for bad in ["65536", "-1", "x", ""] {
            assert!(parse(&format!("root=live:LABEL=x rd.live.watchdog={bad}")).is_err(), "rd.live.watchdog={bad}");
        }
    }

    #[test]
    fn bad_values() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            e("root=live:LABEL=x rd.live.overlay.size=abc"),
            "rd.live.overlay.size=abc: not a size in MiB"
        );
        assert!(e("root=live:LABEL=x rd.live.overlay.size=0").contains("at least 1 MiB"));
        assert!(e("root=live:LABEL=x rd.live.overlay.size=-5").contains("not a size"));
        assert!(e("root=live:LABEL=x rd.retry=soon").contains("rd.retry=soon: not a number"));
        assert!(e("root=live:LABEL=x live.md=sda").contains("expected mdN"));
        assert!(e("root=live:LABEL=x rd.live.ram=maybe").contains("expected 0 or 1"));
        assert!(e("root=live:LABEL=x rd.live.dir=../etc").contains("without '..'"));
        assert!(e("root=live:LABEL=x init=sbin/init").contains("absolute"));
        assert!(e("quiet").contains("no root= on the kernel command line"));
        // Not live: a plain root, with its mount options; no live settings apply.
        let p = parse("root=UUID=ab-cd rootfstype=ext4 rootflags=noatime,data=journal ro quiet").unwrap();
        assert_eq!((p.root.as_str(), p.plain_root.as_str()), ("", "UUID=ab-cd"));
        assert_eq!((p.root_fstype.as_str(), p.root_flags.as_str(), p.root_ro), ("ext4", "noatime,data=journal", true));
        assert!(!parse("root=/dev/sda1 ro rw").unwrap().root_ro, "the last of ro/rw wins");
        let sh = parse("root=\"/dev/disk/by-label/my disk\" rootflags=\"a b\"").unwrap().to_shell();
        assert!(sh.contains("ROOT_PLAIN='/dev/disk/by-label/my disk'\n") && sh.contains("ROOT_FLAGS='a b'\n"), "{sh}");
        assert!(e("root=").contains("expected a device"));
        assert!(e("root=live:ftp://x/y.img").contains("network images"));
        assert!(e("root=live:LABEL=x live.fetch=https://h/").contains("https is not supported"));
        assert!(e("root=live:LABEL=x live.fetch=h/").contains("expected http://"));
        assert!(e("root=live:LABEL=x live.fetch.timeout=0").contains("expected 1 to 86400 seconds"));
        // Deadlines are computed from these: a huge one overflowed the clock (a panic) at boot.
        assert!(e("root=live:LABEL=x rd.retry=18446744073709551615").contains("expected 0 to 86400 seconds"));
        assert!(e("root=live:LABEL=x rd.retry=99999999999999999999999").contains("expected 0 to 86400 seconds"));
        assert!(e("root=live:LABEL=x live.fetch.timeout=86401").contains("expected 1 to 86400 seconds"));
        assert!(e("root=live:LABEL=x rd.live.machine_id=").contains("1 to 128 printable"));
        assert!(e("root=live:LABEL=x rd.live.machine_id=a\u{1}b").contains("1 to 128 printable"));
        assert!(parse("root=live:LABEL=x rd.live.machine_id=box-7").unwrap().to_shell().contains("LIVE_MACHINE_ID='box-7'\n"));
        assert!(e("root=live:LABEL=x ip=10.0.2.15::10.0.2.2").contains("only ip=dhcp"));
        assert!(e("root=live:LABEL=").contains("expected"));
    }

    #[test]
    fn quoting_round_trips_through_sh_rules() {
        // A minimal reader of sh single-quoted words, to prove the encoding is reversible.
        fn unquote(q: &str) -> String {
            let mut out = String::new();
            let mut it = q.chars();
            while let Some(c) = it.next() {
                match c {
                    '\'' => {
                        for d in it.by_ref() {
                            if d == '\'' {
                                break;
                            }
                            out.push(d);
                        }
                    }
                    '\\' => out.push(it.next().unwrap()),
                    _ => panic!("unquoted {c:?} in {q}"),
                }
            }
            out
        }
        for s in ["", "plain", "a'b", "'", "''", "$(reboot)", "`id`", "\"x\"", "a\nb", "\\", "$HOME ${X} *;|&"] {
            let q = sh_quote(s);
            assert!(q.starts_with('\'') && q.ends_with('\''));
            assert_eq!(unquote(&q), s);
        }
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_assignments(&[("A", "x y"), ("B_2", "it's"), ("C", "")]), "A='x y'\nB_2='it'\\''s'\nC=''\n");
    }

    #[test]
    fn shell_output() {
        let l = parse("root=live:LABEL=\"it's $(x)\" rd.live.overlay.size=8").unwrap();
        let s = l.to_shell();
        assert!(s.starts_with("LIVE_ROOT='LABEL=it'\\''s $(x)'\n"));
        assert!(s.contains("LIVE_OVERLAY_SIZE='8'\n"));
        assert!(s.contains("LIVE_CHECK=''\n"));
        assert!(s.contains("LIVE_INIT=''\n"));
        assert!(s.contains("LIVE_PUBKEY=''\n"));
        assert!(s.ends_with("ROOT_PLAIN=''\nROOT_FSTYPE=''\nROOT_FLAGS=''\nROOT_MODE='rw'\nLIVE_TRIES='3'\nLIVE_MACHINE_ID=''\n"));
    }
}
