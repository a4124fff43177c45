//! `LiveOS/settings`: the few boot settings a stick carries outside the kernel command line.
//!
//! Under Secure Boot the kernel command line is part of the signed image (docs/trust.md), so what
//! differs per stick or per box — where to look for updates, how to reach the network, the box's
//! identity for phased rollouts — is read from this small text file beside the image pairs,
//! which a person edits with any text editor. It is not signed: only settings that an attacker
//! who writes it can at worst use to deny service (no update found, a later rollout, a slower
//! boot) are read from it, never one that could make the box run anything the release key did
//! not sign ([`ALLOWED`], each with its reason; [`refusal`] says why another key is not).
//!
//! The format: `KEY=VALUE` lines, as the words of the kernel command line (blanks around the
//! `=` and at the ends of a line are dropped; no quotes, no comment after a value), `#` comment
//! lines and blank lines. CR LF line ends and a UTF-8 byte order mark are accepted (editors on
//! other systems write them). At most [`MAX_BYTES`]: a larger file is ignored as a whole. A key
//! given twice: the last good line counts, as on the command line. Values are checked exactly
//! as on the command line ([`crate::cmdline::set_option`]).
//!
//! The kernel command line wins: a key it has is not taken from the file (under Secure Boot the
//! command line is the publisher's signed word; on BIOS it is the local admin's).
//!
//! Nothing here stops a boot: a line not allowed, a bad value, a file too large or not a file
//! are each one [`Note`] for the console, and the boot goes on with what the command line says.

use crate::cmdline::{self, Live};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The file's name, in the image's directory (`rd.live.dir`, default `LiveOS`).
pub const NAME: &str = "settings";

/// A larger file is ignored whole: the allowed settings fit in a few hundred bytes.
pub const MAX_BYTES: usize = 4096;

/// At most this many notes are shown for one file (a file of junk must not flood a serial
/// console); the rest are counted in one more line.
pub const MAX_NOTES: usize = 8;

/// The keys read from the file, and why each is harmless there.
pub const ALLOWED: [(&str, &str); 4] = [
    (
        "live.fetch",
        "where to look for a newer image: whatever it names must be signed by the key built into the initramfs and above the floor, so a wrong server means no update, never another image",
    ),
    ("live.fetch.timeout", "bounds the network phase (1 to 86400 s): at worst a slower boot or no update"),
    ("ip", "which interface gets DHCP: at worst no network, hence no update"),
    (
        "rd.live.machine_id",
        "this box's bucket in a phased rollout: it can move when a signed release reaches the box, never which release",
    ),
];

/// Whether `key` may be read from the file.
pub fn allowed(key: &str) -> bool {
    ALLOWED.iter().any(|(k, _)| *k == key)
}

/// Why `key` is not read from the file.
pub fn refusal(key: &str) -> &'static str {
    match key {
        "live.pubkey" => "it would trust another key than the one built into the initramfs",
        "live.fetch.allow-downgrade" => "it would accept an older signed release",
        "rd.live.check" => "it would lower the check of the image",
        "rd.break" | "rd.shell" => "it would open a shell before the system's own start-up",
        "init" => "it would start another program as init",
        "root" | "rd.live.dir" | "rd.live.squashimg" => "the image is found through the kernel command line, which found this file",
        "live.kexec" => "it marks a boot that came through a kexec, which takes no trial try",
        "rd.live.tries" => "it decides how many boots a new image gets to prove itself",
        "rd.live.watchdog" | "panic" => "it decides whether a hung or crashed image is reset",
        _ => "only live.fetch, live.fetch.timeout, ip and rd.live.machine_id are read from this file",
    }
}

/// A line of the file (or the file itself) that the boot ignores, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A key that is not in [`ALLOWED`].
    NotAllowed(String),
    /// An allowed key whose value does not check: the command line's message (`KEY=VALUE: why`).
    Bad(String),
    /// An allowed key the kernel command line sets too: that one counts.
    Shadowed(String),
    /// A line that is not `KEY=VALUE`.
    NoKey(String),
    /// Larger than [`MAX_BYTES`]: nothing of it is read.
    TooLarge,
    /// Not a regular file (a directory, a device, a FIFO, a symbolic link).
    NotAFile,
}

/// Control characters of the file never reach the console as they are; long text is cut.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(96).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().nth(96).is_some() {
        out.push_str("...");
    }
    out
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::NotAllowed(k) => write!(f, "{}: not allowed here ({})", shown(k), refusal(k)),
            Note::Bad(e) => write!(f, "{}", shown(e)),
            Note::Shadowed(k) => write!(f, "{}: set on the kernel command line, which wins", shown(k)),
            Note::NoKey(l) => write!(f, "{}: not KEY=VALUE", shown(l)),
            Note::TooLarge => write!(f, "larger than {MAX_BYTES} bytes"),
            Note::NotAFile => write!(f, "not a regular file"),
        }
    }
}

/// A `KEY=VALUE` line of the file (`None`: no `=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Option<String>,
}

/// The lines of the file that say something, in order; `Err` when it is too large.
pub fn entries(text: &[u8]) -> std::result::Result<Vec<Entry>, Note> {
    if text.len() > MAX_BYTES {
        return Err(Note::TooLarge);
    }
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_owned())),
            None => (line, None),
        };
        out.push(Entry { key: key.to_owned(), value });
    }
    Ok(out)
}

/// What [`merge`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// The keys taken from the file, in the order first taken.
    pub used: Vec<String>,
    /// One per line (or file) ignored.
    pub notes: Vec<Note>,
}

impl Merged {
    /// The console lines, without the `liveinit: DIR/settings: ` prefix: at most [`MAX_NOTES`]
    /// notes (each saying it is ignored) and a count of the rest, then the keys taken, if any.
    pub fn lines(&self) -> Vec<String> {
        let line = |n: &Note| match n {
            Note::NotAllowed(_) => n.to_string(),
            _ => format!("{n}; ignored"),
        };
        let mut v: Vec<String> = self.notes.iter().take(MAX_NOTES).map(line).collect();
        let more = self.notes.len().saturating_sub(MAX_NOTES);
        if more > 0 {
            v.push(format!("{more} more line(s) ignored"));
        }
        if !self.used.is_empty() {
            v.push(format!("using {}", self.used.join(", ")));
        }
        v
    }
}

/// The file's settings onto `live`, parsed from the kernel command line `line`: each allowed
/// key the command line does not have, checked as on the command line.
pub fn merge(live: &mut Live, line: &str, text: &[u8]) -> Merged {
    let mut m = Merged::default();
    let entries = match entries(text) {
        Ok(e) => e,
        Err(n) => {
            m.notes.push(n);
            return m;
        }
    };
    let on_cmdline: Vec<String> = cmdline::split(line).into_iter().map(|(k, _)| k).collect();
    for e in entries {
        if e.key.is_empty() {
            m.notes.push(Note::NoKey(format!("={}", e.value.unwrap_or_default())));
            continue;
        }
        if !allowed(&e.key) {
            m.notes.push(Note::NotAllowed(e.key));
            continue;
        }
        if on_cmdline.contains(&e.key) {
            m.notes.push(Note::Shadowed(e.key));
            continue;
        }
        match cmdline::set_option(live, &e.key, e.value.as_deref()) {
            Ok(()) if !m.used.contains(&e.key) => m.used.push(e.key),
            Ok(()) => {}
            Err(err) => m.notes.push(Note::Bad(err.to_string())),
        }
    }
    m
}

/// For the publisher (`liveroot publish settings`, `make flash SETTINGS=`): the file as the boot
/// will read it, strictly: the first line the boot would ignore is an error `KEY: reason`.
/// The keys it sets, in order.
pub fn check(text: &[u8]) -> std::result::Result<Vec<String>, Note> {
    let mut live = Live::default();
    let m = merge(&mut live, "", text);
    match m.notes.into_iter().next() {
        Some(n) => Err(n),
        None => Ok(m.used),
    }
}

/// The file's bytes, at most [`MAX_BYTES`] + 1 of them (more is too large: [`entries`] says
/// so); `Ok(None)` when there is no file. Opened without following a symbolic link and without
/// blocking (a FIFO on an ext4 medium must not hang the boot), then only a regular file is read.
pub fn read(path: &Path) -> Result<Option<std::result::Result<Vec<u8>, Note>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW on a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Some(Err(Note::NotAFile))),
        Err(e) => return Err(Error::io(path.display().to_string(), &e)),
    };
    let md = f.metadata().map_err(|e| Error::io(path.display().to_string(), &e))?;
    if !md.is_file() {
        return Ok(Some(Err(Note::NotAFile)));
    }
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    f.take(limit).read_to_end(&mut buf).map_err(|e| Error::io(path.display().to_string(), &e))?;
    Ok(Some(Ok(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        cmdline::parse("root=live:LABEL=LIVE").unwrap()
    }

    #[test]
    fn the_allowed_settings_are_taken() {
        let mut l = live();
        let text = b"\xef\xbb\xbf# this stick's settings\r\n\r\nlive.fetch = http://10.0.2.100/img/\r\n  ip=eth1:dhcp\nlive.fetch.timeout=45\nrd.live.machine_id=box-7\n";
        let m = merge(&mut l, "root=live:LABEL=LIVE", text);
        assert_eq!(m.notes, vec![]);
        assert_eq!(m.used, vec!["live.fetch", "ip", "live.fetch.timeout", "rd.live.machine_id"]);
        assert_eq!((l.fetch.as_str(), l.ip.as_deref(), l.fetch_timeout, l.machine_id.as_str()), ("http://10.0.2.100/img/", Some("eth1"), 45, "box-7"));
        assert_eq!(m.lines(), vec!["using live.fetch, ip, live.fetch.timeout, rd.live.machine_id"]);
        // The rest is as the command line says.
        assert_eq!(Live { fetch: String::new(), ip: None, fetch_timeout: 20, machine_id: String::new(), ..l }, live());
    }

    #[test]
    fn nothing_that_weakens_a_check() {
        for k in ["live.pubkey", "live.fetch.allow-downgrade", "rd.live.check", "rd.break", "rd.shell", "init", "root", "rd.live.dir", "rd.live.squashimg", "live.kexec", "rd.live.tries", "rd.live.watchdog", "panic", "rd.live.ram", "LIVE.FETCH", "live.fetch "] {
            assert!(!allowed(k), "{k}");
        }
        let mut l = live();
        let text = "live.pubkey=RWQxyz\nrd.break\nrd.live.check=0\ninit=/bin/sh\nlive.fetch.allow-downgrade=1\nrd.live.tries=0\nrd.live.dir=evil\nroot=live:LABEL=EVIL\n";
        let m = merge(&mut l, "root=live:LABEL=LIVE", text.as_bytes());
        assert_eq!(l, live(), "nothing of it taken");
        assert_eq!(m.used, Vec::<String>::new());
        assert_eq!(m.notes.len(), 8);
        assert_eq!(m.notes[0].to_string(), "live.pubkey: not allowed here (it would trust another key than the one built into the initramfs)");
        assert_eq!(m.notes[1].to_string(), "rd.break: not allowed here (it would open a shell before the system's own start-up)");
        assert!(m.notes.iter().all(|n| matches!(n, Note::NotAllowed(_))));
        assert_eq!(Note::NotAllowed("rd.live.ram".into()).to_string(), "rd.live.ram: not allowed here (only live.fetch, live.fetch.timeout, ip and rd.live.machine_id are read from this file)");
    }

    #[test]
    fn the_command_line_wins() {
        let line = "root=live:LABEL=LIVE live.fetch=http://signed.example/img/ ip=dhcp";
        let mut l = cmdline::parse(line).unwrap();
        let m = merge(&mut l, line, b"live.fetch=http://other/\nip=eth1:dhcp\nrd.live.machine_id=b\n");
        assert_eq!((l.fetch.as_str(), l.ip.as_deref(), l.machine_id.as_str()), ("http://signed.example/img/", Some(""), "b"));
        assert_eq!(m.used, vec!["rd.live.machine_id"]);
        assert_eq!(m.notes, vec![Note::Shadowed("live.fetch".into()), Note::Shadowed("ip".into())]);
        assert_eq!(m.lines()[0], "live.fetch: set on the kernel command line, which wins; ignored");
    }

    #[test]
    fn a_bad_value_is_ignored_and_the_boot_goes_on() {
        let mut l = live();
        let m = merge(&mut l, "", b"live.fetch=http://a/\nlive.fetch=https://b/\nlive.fetch.timeout=0\nip\n=x\nrd.live.machine_id=a b\nlive.fetch.timeout=99999999999999999999999\n");
        assert_eq!(l.fetch, "http://a/", "the good line before the bad one stays");
        assert_eq!(l.fetch_timeout, 20);
        assert_eq!(m.used, vec!["live.fetch"]);
        let shown = m.lines();
        assert_eq!(
            shown,
            vec![
                "live.fetch=https://b/: https is not supported; use http:// (the image is signed); ignored",
                "live.fetch.timeout=0: expected 1 to 86400 seconds; ignored",
                "ip=: only ip=dhcp or ip=IFACE:dhcp are supported; ignored",
                "=x: not KEY=VALUE; ignored",
                "rd.live.machine_id=a b: expected 1 to 128 printable characters; ignored",
                "live.fetch.timeout=99999999999999999999999: expected 1 to 86400 seconds; ignored",
                "using live.fetch",
            ]
        );
    }

    #[test]
    fn too_large_junk_and_control_characters() {
        let big = vec![b'#'; MAX_BYTES + 1];
        assert_eq!(entries(&big), Err(Note::TooLarge));
        assert_eq!(entries(&big[..MAX_BYTES]), Ok(vec![]));
        let mut l = live();
        let m = merge(&mut l, "", &big);
        assert_eq!((m.notes, l), (vec![Note::TooLarge], live()));
        // Not UTF-8, escapes for the console, a flood of lines: shown harmlessly, bounded.
        let mut l = live();
        let m = merge(&mut l, "", b"\x1b[2Jx\xff=1\nrd.live.machine_id=\x07\n");
        assert_eq!(m.notes[0].to_string(), "?[2Jx\u{fffd}: not allowed here (only live.fetch, live.fetch.timeout, ip and rd.live.machine_id are read from this file)");
        assert_eq!(m.lines()[1], "rd.live.machine_id=?: expected 1 to 128 printable characters; ignored");
        let junk = "x\n".repeat(100);
        let m = merge(&mut live(), "", junk.as_bytes());
        let lines = m.lines();
        assert_eq!(lines.len(), MAX_NOTES + 1);
        assert_eq!(lines[MAX_NOTES], "92 more line(s) ignored");
        let long = format!("{}=1", "k".repeat(500));
        assert_eq!(merge(&mut live(), "", long.as_bytes()).notes[0].to_string().len(), 96 + 3 + ": not allowed here ()".len() + refusal("k").len());
    }

    #[test]
    fn the_publishers_check_is_strict() {
        assert_eq!(check(b"# fleet A\nlive.fetch=http://img.example/a/\nrd.live.machine_id=x\n"), Ok(vec!["live.fetch".to_owned(), "rd.live.machine_id".to_owned()]));
        assert_eq!(check(b""), Ok(vec![]));
        assert_eq!(check(b"live.fetch=http://a/\nrd.break\n"), Err(Note::NotAllowed("rd.break".into())));
        assert_eq!(check(b"ip=10.0.0.1\n").unwrap_err().to_string(), "ip=10.0.0.1: only ip=dhcp or ip=IFACE:dhcp are supported");
        assert_eq!(check(&[b'#'; MAX_BYTES + 1]).unwrap_err().to_string(), "larger than 4096 bytes");
    }

    #[test]
    fn read_is_bounded_and_reads_files_only() {
        let d = std::env::temp_dir().join(format!("liveroot-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(read(&d.join("settings")).unwrap(), None);
        std::fs::write(d.join("settings"), "ip=dhcp\n").unwrap();
        assert_eq!(read(&d.join("settings")).unwrap(), Some(Ok(b"ip=dhcp\n".to_vec())));
        std::fs::write(d.join("big"), vec![b'#'; 100_000]).unwrap();
        assert_eq!(read(&d.join("big")).unwrap().unwrap().unwrap().len(), MAX_BYTES + 1);
        std::fs::create_dir(d.join("dir")).unwrap();
        assert_eq!(read(&d.join("dir")).unwrap(), Some(Err(Note::NotAFile)));
        std::os::unix::fs::symlink("settings", d.join("link")).unwrap();
        assert_eq!(read(&d.join("link")).unwrap(), Some(Err(Note::NotAFile)));
        nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(read(&d.join("fifo")).unwrap(), Some(Err(Note::NotAFile)), "a FIFO without a writer must not block");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
