//! `/proc/self/mountinfo`, parsed once, the way the kernel writes it (fs/proc_namespace.c):
//! `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`, with
//! space, tab, newline and backslash in paths written as `\ooo` octal escapes. Paths come back
//! as raw bytes (`OsString`): a mount point need not be UTF-8.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device number of the mounted filesystem, as `MAJ:MIN` says.
    pub dev: (u32, u32),
    /// Unescaped mount point.
    pub point: OsString,
    /// Per-mount options (`ro`, `rw`, `nosuid`, ...).
    pub options: String,
    pub fstype: String,
    /// Unescaped source (a device path, `tmpfs`, ...).
    pub source: OsString,
}

impl Mount {
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Undo the kernel's `\ooo` escapes; anything else (a lone backslash) stays as it is.
pub fn unescape(s: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let oct = s.get(i + 1..i + 4).filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            // Three octal digits can exceed a byte (\777); the kernel never writes those.
            Some(d) if d[0] <= b'3' => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// One line; `None` when it is not a mountinfo line. Bytes, not text: a mount point or source
/// may hold any byte but the escaped ones, and one that is not UTF-8 must cost nothing but itself.
pub fn parse_line(line: &[u8]) -> Option<Mount> {
    let mut f = line.split(|&b| b == b' ');
    let (_id, _parent, devno, _root, point, options) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    // Optional fields up to the lone "-".
    f.by_ref().find(|x| *x == b"-")?;
    let (fstype, source) = (f.next()?, f.next()?);
    let dev = crate::sys::sysfs::parse_devno(std::str::from_utf8(devno).ok()?)?;
    Some(Mount {
        dev,
        point: unescape(point),
        // The kernel writes these in ASCII; lossy keeps an odd one visible instead of failing.
        options: String::from_utf8_lossy(options).into_owned(),
        fstype: String::from_utf8_lossy(fstype).into_owned(),
        source: unescape(source),
    })
}

/// Every mount of this process's namespace, in mount order (later ones cover earlier ones).
pub fn parse(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// The current mounts (empty when /proc is not mounted).
pub fn read() -> Vec<Mount> {
    parse(&std::fs::read("/proc/self/mountinfo").unwrap_or_default())
}

/// The mount at exactly `dir` (the top one, when several are stacked there).
pub fn at(mounts: &[Mount], dir: &Path) -> Option<Mount> {
    let want = dir;
    mounts.iter().rev().find(|m| Path::new(&m.point) == want).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    const TEXT: &[u8] = b"\
22 1 0:21 / /proc rw,nosuid,nodev,noexec - proc proc rw
30 22 253:1 / /mnt/my\\040stick rw,relatime shared:7 - vfat /dev/vda1 rw,fmask=0022
31 22 7:0 / /run/live/squashfs ro,relatime master:2 shared:9 - squashfs /dev/loop0 ro
32 30 253:1 / /mnt/my\\040stick ro,relatime - vfat /dev/vda1 ro
33 22 0:40 / /a\\011b\\012c\\134d rw - tmpfs tmp\\040fs rw
";

    #[test]
    fn fields_and_escapes() {
        let m = parse(TEXT);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].point, "/proc");
        assert_eq!(m[1].point, "/mnt/my stick");
        assert_eq!((m[1].dev, m[1].fstype.as_str(), m[1].read_only()), ((253, 1), "vfat", false));
        assert_eq!(m[1].source, "/dev/vda1");
        // Optional fields before "-" are skipped, however many.
        assert_eq!((m[2].fstype.as_str(), m[2].read_only()), ("squashfs", true));
        assert_eq!(m[4].point, "/a\tb\nc\\d");
        assert_eq!(m[4].source, "tmp fs");
    }

    #[test]
    fn the_top_mount_at_a_path_with_a_space() {
        let m = parse(TEXT);
        let top = at(&m, Path::new("/mnt/my stick")).unwrap();
        assert!(top.read_only(), "the later (stacked) mount is the one in effect");
        assert!(at(&m, Path::new("/mnt/my\\040stick")).is_none());
        assert!(at(&m, Path::new("/mnt")).is_none());
    }

    #[test]
    fn a_mount_point_that_is_not_utf8_costs_only_itself() {
        // Latin-1 "clé" raw (the kernel escapes only space, tab, newline and backslash) and
        // escaped, among ordinary lines; before, one such byte made the whole table empty.
        let mut text = TEXT.to_vec();
        text.extend_from_slice(b"34 22 0:41 / /mnt/cl\xe9 ro,relatime - tmpfs caf\xe9 ro\n");
        text.extend_from_slice(b"35 22 0:42 / /mnt/x\\351y rw - tmpfs tmpfs rw,opt=\xff\n");
        let m = parse(&text);
        assert_eq!(m.len(), 7);
        assert_eq!(m[1].point, "/mnt/my stick");
        assert_eq!(m[5].point.as_bytes(), b"/mnt/cl\xe9");
        assert_eq!((m[5].dev, m[5].fstype.as_str(), m[5].read_only()), ((0, 41), "tmpfs", true));
        assert_eq!(m[5].source.as_bytes(), b"caf\xe9");
        assert_eq!(m[6].point.as_bytes(), b"/mnt/x\xe9y");
        assert!(at(&m, Path::new(OsStr::from_bytes(b"/mnt/cl\xe9"))).is_some_and(|t| t.read_only()));
    }

    #[test]
    fn odd_input() {
        assert_eq!(unescape(b"/x\\"), "/x\\");
        assert_eq!(unescape(b"\\0"), "\\0");
        assert_eq!(unescape(b"\\777"), "\\777");
        assert_eq!(unescape(b"\\101\\102"), "AB");
        assert_eq!(unescape(b"\\200").into_vec(), [0x80]);
        for bad in ["", "1 2 3", "1 2 x:y / /m rw - t s", "1 2 8:1 / /m rw no-dash t s", "1 2 8:1 / /m rw -"] {
            assert_eq!(parse_line(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
