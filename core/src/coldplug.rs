//! Coldplug: which kernel modules the present hardware asks for, as udev or mdev find them at
//! boot. Every device under /sys/devices that a driver could bind to has a `modalias` file
//! (`pci:v00008086d0000100Esv...`); depmod writes each module's patterns into `modules.alias`
//! (`alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000`). A device asks for every module one of
//! whose patterns matches its modalias.
//!
//! Matching is kmod's: a pattern with none of `*`, `?`, `[` is compared byte for byte; any other
//! is matched with fnmatch(3) without flags (so `/` and a leading `.` are ordinary characters and
//! `\` escapes the next character). This module only reads files; loading is the caller's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longest modalias read from sysfs; the kernel's own limit for a uevent variable is 2048.
const MAX_MODALIAS: u64 = 4096;
/// /sys/devices is a tree a dozen levels deep; the bounds stop a strange or fake tree.
const MAX_DEPTH: usize = 32;
const MAX_DIRS: usize = 200_000;

/// One `alias` line of modules.alias.
#[derive(Debug, Clone)]
struct Alias {
    pattern: String,
    /// Module name with `-` folded to `_` (the /sys/module spelling).
    module: String,
    /// The part before the first special character, which any match must start with.
    prefix: usize,
    /// Has `*`, `?` or `[`: matched with fnmatch rather than compared.
    wild: bool,
    /// Non-wildcard characters: a more specific pattern names the better driver.
    specific: usize,
}

/// The patterns of one modules.alias.
#[derive(Debug, Default)]
pub struct Aliases {
    list: Vec<Alias>,
}

/// `-` and `_` are the same in module names; the kernel and /sys/module use `_`.
pub fn norm(module: &str) -> String {
    module.replace('-', "_")
}

impl Aliases {
    /// Parse modules.alias text: `alias PATTERN MODULE` lines, `#` comments; anything else is
    /// ignored (a junk line must not cost the boot its drivers).
    pub fn parse(text: &str) -> Aliases {
        let mut list = Vec::new();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("alias") {
                continue;
            }
            let (Some(pattern), Some(module), None) = (w.next(), w.next(), w.next()) else { continue };
            let b = pattern.as_bytes();
            let wild = b.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
            let prefix = if wild { b.iter().position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\')).unwrap_or(b.len()) } else { b.len() };
            let specific = b.iter().filter(|c| !matches!(c, b'*' | b'?')).count();
            list.push(Alias { pattern: pattern.to_owned(), module: norm(module), prefix, wild, specific });
        }
        Aliases { list }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The modules whose patterns match `modalias`, the most specific pattern first (a driver
    /// for this very device before one for its whole class), each once.
    pub fn modules_for(&self, modalias: &str) -> Vec<String> {
        let s = modalias.as_bytes();
        let mut hits: Vec<(usize, &str)> = Vec::new();
        for a in &self.list {
            let p = a.pattern.as_bytes();
            if !s.starts_with(p.get(..a.prefix).unwrap_or(p)) {
                continue;
            }
            let hit = if a.wild { fnmatch(p, s) } else { p == s };
            if !hit {
                continue;
            }
            match hits.iter_mut().find(|(_, m)| *m == a.module) {
                Some(h) => h.0 = h.0.max(a.specific),
                None => hits.push((a.specific, &a.module)),
            }
        }
        // Stable: equally specific patterns keep the file's order.
        hits.sort_by_key(|h| std::cmp::Reverse(h.0));
        hits.into_iter().map(|(_, m)| m.to_owned()).collect()
    }
}

/// fnmatch(3) with flags 0 on bytes: `*`, `?`, `[...]` / `[!...]` / `[^...]` with ranges and
/// `[:class:]`, `\` escaping. `/` and `.` are not special. A `[` without its `]` is literal.
/// Compared with glibc's fnmatch on 800,000 random patterns and strings built from these
/// (same answers); it differs only on malformed `[:` inside brackets, which no alias has.
pub fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, string index it covers to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, si));
                continue;
            }
            Some(_) => {
                if let Some(&c) = s.get(si) {
                    if let Some(next) = one(p, pi, c) {
                        pi = next;
                        si += 1;
                        continue;
                    }
                }
            }
            None if si == s.len() => return true,
            None => {}
        }
        // Mismatch: let the last `*` swallow one more character, or fail.
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// Does the single-character item at `p[pi]` (not `*`) match `c`? The index after it if so.
fn one(p: &[u8], pi: usize, c: u8) -> Option<usize> {
    match *p.get(pi)? {
        b'?' => Some(pi + 1),
        b'\\' => {
            // A trailing backslash matches nothing (glibc).
            let e = *p.get(pi + 1)?;
            (e == c).then_some(pi + 2)
        }
        b'[' => match bracket(p, pi + 1, c) {
            Some((true, end)) => Some(end),
            Some((false, _)) => None,
            None => (c == b'[').then_some(pi + 1),
        },
        l => (l == c).then_some(pi + 1),
    }
}

/// A bracket expression starting after its `[` at `p[i]`: (matches `c`, index after `]`), or
/// None when it has no closing `]` (then the `[` is an ordinary character).
fn bracket(p: &[u8], mut i: usize, c: u8) -> Option<(bool, usize)> {
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    // An unknown [:class:] before a matching item makes glibc's fnmatch fail.
    let mut invalid = false;
    loop {
        let mut lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate && !invalid, i + 1));
        }
        first = false;
        if lo == b'[' && p.get(i + 1) == Some(&b':') {
            // [:class:], a name of letters a-y as glibc reads it; anything else in the name
            // makes the `[` an ordinary character.
            let rest = p.get(i + 2..)?;
            let end = rest.iter().position(|c| !(b'a'..=b'y').contains(c)).unwrap_or(rest.len());
            if rest.get(end..end + 2) == Some(b":]") {
                let name = rest.get(..end)?;
                // glibc stops at the first item that matches: a bad class after it is not seen.
                if !hit {
                    match class(name, c) {
                        Some(h) => hit = h,
                        None => invalid = true,
                    }
                }
                i += 2 + end + 2;
                continue;
            }
        }
        if lo == b'\\' {
            i += 1;
            lo = *p.get(i)?;
        }
        i += 1;
        // A range lo-hi, unless the `-` is last before the `]`.
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&h| h != b']') {
            let mut hi = *p.get(i + 1)?;
            i += 2;
            if hi == b'\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            hit |= lo <= c && c <= hi;
        } else {
            hit |= lo == c;
        }
    }
}

fn class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// A device that a driver could bind to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its directory under /sys/devices.
    pub path: PathBuf,
    pub modalias: String,
    /// A driver is bound (the directory has a `driver` link).
    pub bound: bool,
}

/// Every device under `devices` (normally /sys/devices) with a non-empty `modalias`, in path
/// order. Symlinks are never followed (sysfs is full of loops through them).
pub fn scan(devices: &Path) -> Vec<Device> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![(devices.to_path_buf(), 0usize)];
    let mut dirs = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        dirs += 1;
        if dirs > MAX_DIRS {
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut modalias = None;
        let mut bound = false;
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name();
            if ft.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((e.path(), depth + 1));
                }
            } else if name == "driver" {
                bound = true;
            } else if name == "modalias" && ft.is_file() {
                let mut text = String::new();
                let read = std::fs::File::open(e.path()).and_then(|f| f.take(MAX_MODALIAS).read_to_string(&mut text));
                if read.is_ok() {
                    modalias = Some(text.trim().to_owned());
                }
            }
        }
        if let Some(m) = modalias.filter(|m| !m.is_empty()) {
            out.push(Device { path: dir, modalias: m, bound });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What coldplug has done so far: each modalias is looked up once, each module tried once.
#[derive(Debug, Default)]
pub struct State {
    seen: BTreeSet<String>,
    tried: BTreeSet<String>,
}

impl State {
    /// The modules the devices not seen before ask for, in load order, minus those tried
    /// already (they are now marked tried: a module that failed is not retried every round).
    pub fn wanted(&mut self, devices: &[Device], aliases: &Aliases) -> Vec<String> {
        let mut out = Vec::new();
        for d in devices {
            if !self.seen.insert(d.modalias.clone()) {
                continue;
            }
            for m in aliases.modules_for(&d.modalias) {
                if self.tried.insert(m.clone()) {
                    out.push(m);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        let t: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything/at:all", true),
            ("a*", "a", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbcd", false),
            ("a*b*c", "aXbYbZc", true),
            ("*a*a*a*", "aaa", true),
            ("*a*a*a*", "aa", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("?", "", false),
            // No FNM_PATHNAME / FNM_PERIOD: / and leading dots are ordinary.
            ("a*b", "a/x/b", true),
            ("a?b", "a/b", true),
            ("*x", ".x", true),
            ("[abc]", "b", true),
            ("[abc]", "d", false),
            ("[!abc]", "d", true),
            ("[!abc]", "a", false),
            ("[^abc]", "d", true),
            ("[0-2]", "1", true),
            ("[0-2]", "3", false),
            ("[0-9A-B]", "B", true),
            ("[0-9A-B]", "C", false),
            ("[]a]", "]", true),
            ("[!]a]", "]", false),
            ("[a-]", "-", true),
            ("[[:xdigit:]]", "F", true),
            ("[[:digit:]]x", "ax", false),
            ("[[:foo:]a]", "a", false),
            ("[![:foo:]]", "a", false),
            ("[a[:foo:]]", "a", true),
            ("[ab", "[ab", true),
            ("[ab", "a", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("a\\", "a\\", false),
            ("[\\]]", "]", true),
        ];
        for &(p, s, want) in t {
            assert_eq!(fnmatch(p.as_bytes(), s.as_bytes()), want, "fnmatch({p:?}, {s:?})");
        }
    }

    /// Lines from Debian's 6.1.0 amd64 modules.alias and modaliases read in QEMU guests.
    const REAL: &str = "# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias scsi:t-0x00* sd_mod
alias block-major-8-* sd_mod
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:v00008086d00001000sv*sd*bc*sc*i* e1000
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* uas
alias usb:v13FDp3940d0[0-2]*dc*dsc*dp*ic*isc*ip*in* uas
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
alias usb:v1645p0007d013[0-3]dc*dsc*dp*ic*isc*ip*in* usb_storage
alias pci:v*d*sv*sd*bc01sc01i* ata_generic
alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix
alias fs-vfat vfat
";

    #[test]
    fn real_aliases() {
        let a = Aliases::parse(REAL);
        assert_eq!(a.len(), 14);
        let m = |s: &str| a.modules_for(s);
        assert_eq!(m("pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"), ["e1000"]);
        assert_eq!(m("pci:v00008086d0000100Fsv00001AF4sd00001100bc02sc00i00"), Vec::<String>::new());
        assert_eq!(m("pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30"), ["xhci_pci"]);
        assert_eq!(m("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"), ["usb_storage"]);
        assert_eq!(m("usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00"), ["uas", "usb_storage"]);
        assert_eq!(m("usb:v13FDp3940d0350dc00dsc00dp00ic08isc06ip50in00"), ["usb_storage"]);
        assert_eq!(m("usb:v1645p0007d0133dc00dsc00dp00ic08isc06ip62in00"), ["usb_storage", "uas"]);
        assert_eq!(m("usb:v1645p0007d0134dc00dsc00dp00ic08isc06ip62in00"), ["uas"]);
        assert_eq!(m("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"), ["virtio_pci"]);
        assert_eq!(m("virtio:d00000002v00001AF4"), ["virtio_blk"]);
        assert_eq!(m("scsi:t-0x00"), ["sd_mod"]);
        assert_eq!(m("scsi:t-0x05"), Vec::<String>::new());
        // The PIIX IDE function: the driver for this device before the one for every IDE class.
        assert_eq!(m("pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80"), ["ata_piix", "ata_generic"]);
        assert_eq!(m("fs-vfat"), ["vfat"]);
        assert_eq!(m("fs-vfatx"), Vec::<String>::new());
    }

    #[test]
    fn literal_patterns_are_compared_not_globbed() {
        // kmod looks a pattern without * ? [ up by its bytes: a backslash there is itself.
        let a = Aliases::parse("alias x\\y lit\nalias x\\y* glob\n");
        assert_eq!(a.modules_for("x\\y"), ["lit"]);
        assert_eq!(a.modules_for("xyz"), ["glob"]);
    }

    #[test]
    fn dash_and_underscore_are_one_name() {
        let a = Aliases::parse("alias usb:a* usb-storage\nalias usb:ab* usb_storage\n");
        assert_eq!(a.modules_for("usb:abc"), ["usb_storage"]);
        assert_eq!(norm("nls_iso8859-1"), "nls_iso8859_1");
    }

    #[test]
    fn junk_is_ignored() {
        let a = Aliases::parse("alias\nalias onlypattern\nalias a b c\n  # alias x y\naliasx p m\n\0\u{fffd}\nalias [ m\nalias \\ n\n");
        assert_eq!(a.len(), 2);
        assert_eq!(a.modules_for("["), ["m"]);
        assert_eq!(a.modules_for("\\"), ["n"]);
        assert!(a.modules_for("").is_empty());
    }

    #[test]
    fn each_modalias_and_module_once() {
        let a = Aliases::parse(REAL);
        let dev = |m: &str| Device { path: PathBuf::from("/x"), modalias: m.to_owned(), bound: false };
        let mut s = State::default();
        let virtio = dev("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00");
        assert_eq!(s.wanted(&[virtio.clone(), dev("pci:v00001AF4d00001000sv0sd0bc02sc00i00")], &a), ["virtio_pci"]);
        assert!(s.wanted(std::slice::from_ref(&virtio), &a).is_empty());
        assert_eq!(s.wanted(&[virtio, dev("virtio:d00000002v00001AF4"), dev("nothing:at:all")], &a), ["virtio_blk"]);
    }

    #[test]
    fn scan_reads_modalias_without_following_links() {
        let root = std::env::temp_dir().join(format!("coldplug-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let d = root.join("pci0000:00/0000:00:04.0");
        std::fs::create_dir_all(d.join("usb1/1-1/1-1:1.0")).unwrap();
        std::fs::write(d.join("modalias"), "pci:v1\n").unwrap();
        std::os::unix::fs::symlink("../../../bus/pci/drivers/xhci_hcd", d.join("driver")).unwrap();
        std::fs::write(d.join("usb1/1-1/1-1:1.0/modalias"), "usb:v2\n").unwrap();
        std::fs::write(d.join("usb1/1-1/modalias"), "\n").unwrap();
        // A loop through a link, as sysfs has everywhere.
        std::os::unix::fs::symlink(&root, d.join("usb1/subsystem")).unwrap();
        let got = scan(&root);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Device { path: d.clone(), modalias: "pci:v1".into(), bound: true });
        assert_eq!(got[1].modalias, "usb:v2");
        assert!(!got[1].bound);
        assert!(scan(&root.join("missing")).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
