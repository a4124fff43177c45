//! What losetup shows of bound loop devices, byte for byte as util-linux 2.38 does in the C
//! locale: the `-a` line and the `--list` table (libsmartcols' layout and escapes), its columns,
//! and the checks around a device or a backing file.

use crate::error::{Error, Result};
use crate::sys::loopdev::{self, Info, Setup};
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Col {
    Name,
    AutoClear,
    BackFile,
    BackIno,
    BackMajMin,
    MajMin,
    Offset,
    PartScan,
    Ro,
    SizeLimit,
    Dio,
    LogSec,
}

/// (column, header, right-aligned), in util-linux's --output-all order.
pub const COLS: [(Col, &str, bool); 12] = [
    (Col::Name, "NAME", false),
    (Col::AutoClear, "AUTOCLEAR", true),
    (Col::BackFile, "BACK-FILE", false),
    (Col::BackIno, "BACK-INO", true),
    (Col::BackMajMin, "BACK-MAJ:MIN", false),
    (Col::MajMin, "MAJ:MIN", false),
    (Col::Offset, "OFFSET", true),
    (Col::PartScan, "PARTSCAN", true),
    (Col::Ro, "RO", true),
    (Col::SizeLimit, "SIZELIMIT", true),
    (Col::Dio, "DIO", true),
    (Col::LogSec, "LOG-SEC", true),
];

pub const DEFAULT_COLS: [Col; 8] =
    [Col::Name, Col::SizeLimit, Col::Offset, Col::AutoClear, Col::Ro, Col::BackFile, Col::Dio, Col::LogSec];

/// `-O` columns: a list of names (any case), or `+LIST` after the default ones. Err: the
/// unknown name.
pub fn parse_columns(spec: &str) -> std::result::Result<Vec<Col>, String> {
    let (mut cols, spec) = match spec.strip_prefix('+') {
        Some(rest) => (DEFAULT_COLS.to_vec(), rest),
        None => (Vec::new(), spec),
    };
    for name in spec.split(',') {
        let Some(&(c, _, _)) = COLS.iter().find(|(_, h, _)| h.eq_ignore_ascii_case(name)) else {
            return Err(format!("unknown column: {name}"));
        };
        cols.push(c);
    }
    Ok(cols)
}

/// Whether `d` is a loop device node.
pub fn check_loopdev(d: &str) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::metadata(d) {
        Ok(md) if md.file_type().is_block_device() && nix::sys::stat::major(md.rdev()) as u32 == loopdev::LOOP_MAJOR => {
            Ok(())
        }
        Ok(_) => Err(Error::new(d, "not a loop device")),
        Err(e) => Err(Error::io(d, &e)),
    }
}

/// A device smaller than a sector, or with a partial last sector, surprises people later.
pub fn size_warning(file: &Path, s: &Setup) -> Option<Error> {
    let Ok(md) = std::fs::metadata(file) else { return None };
    let size = if s.sizelimit > 0 {
        s.sizelimit
    } else if md.is_file() {
        md.len().saturating_sub(s.offset)
    } else {
        return None;
    };
    let why = if size < 512 {
        "Warning: file is smaller than 512 bytes; the loop device may be useless or invisible for system tools."
    } else if size % 512 != 0 {
        "Warning: file does not fit into a 512-byte sector; the end of the file will be ignored."
    } else {
        return None;
    };
    Some(Error::new(file.display().to_string(), why))
}

/// util-linux `losetup -a` line.
pub fn line(i: &Info) -> String {
    let mut s = if i.back_dev == 0 && i.back_ino == 0 {
        format!("{}: []: ({})", i.name, i.back_file)
    } else {
        format!("{}: [{:04}]:{} ({})", i.name, i.back_dev, i.back_ino, i.back_file)
    };
    if i.offset != 0 {
        s.push_str(&format!(", offset {}", i.offset));
    }
    if i.sizelimit != 0 {
        s.push_str(&format!(", sizelimit {}", i.sizelimit));
    }
    s.push('\n');
    s
}

fn cell(i: &Info, c: Col) -> String {
    let b = |f: bool| if f { "1" } else { "0" }.to_owned();
    match c {
        Col::Name => i.name.clone(),
        Col::AutoClear => b(i.autoclear),
        Col::BackFile => i.back_file.clone(),
        Col::BackIno if i.back_ino != 0 => i.back_ino.to_string(),
        Col::BackMajMin if i.back_dev != 0 => {
            let (ma, mi) = (nix::sys::stat::major(i.back_dev), nix::sys::stat::minor(i.back_dev));
            format!("{ma:>8}:{mi:<3}")
        }
        Col::MajMin => i.maj_min.map(|(ma, mi)| format!("{ma:>3}:{mi:<3}")).unwrap_or_default(),
        Col::Offset => i.offset.to_string(),
        Col::PartScan => b(i.partscan),
        Col::Ro => b(i.read_only),
        Col::SizeLimit => i.sizelimit.to_string(),
        Col::Dio => b(i.direct_io),
        Col::LogSec => i.log_sec.to_string(),
        Col::BackIno | Col::BackMajMin => String::new(),
    }
}

/// libsmartcols' human encoding in the C locale: control bytes, bytes ≥ 0x80 and a `\`
/// starting `\x` become `\xHH`. Returns the text and its width in cells.
fn safe(s: &str) -> (String, usize) {
    let b = s.as_bytes();
    let mut o = String::with_capacity(b.len());
    let mut w = 0;
    for (k, &c) in b.iter().enumerate() {
        if !(0x20..0x7f).contains(&c) || (c == b'\\' && b.get(k + 1) == Some(&b'x')) {
            o.push_str(&format!("\\x{c:02x}"));
            w += 4;
        } else {
            o.push(c as char);
            w += 1;
        }
    }
    (o, w)
}

/// libsmartcols' --raw encoding: blanks, `\` and anything unprintable as `\xHH`.
fn raw_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c <= b' ' || c >= 0x7f || c == b'\\' {
            o.push_str(&format!("\\x{c:02x}"));
        } else {
            o.push(c as char);
        }
    }
    o
}

/// The `--list` table, laid out as libsmartcols does for a non-terminal: each column as wide
/// as its widest cell or header, right-aligned numbers, no padding after a left-aligned last
/// column, nothing at all when there are no rows.
pub fn table(rows: &[Info], cols: &[Col], raw: bool, noheadings: bool) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let meta: Vec<(&str, bool)> =
        cols.iter().map(|c| COLS.iter().find(|m| m.0 == *c).map(|m| (m.1, m.2)).unwrap_or(("", false))).collect();
    let mut grid: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if !noheadings {
        grid.push(meta.iter().map(|m| m.0.to_owned()).collect());
    }
    grid.extend(rows.iter().map(|r| cols.iter().map(|&c| cell(r, c)).collect::<Vec<_>>()));
    let mut s = String::new();
    if raw {
        for row in &grid {
            let cells: Vec<String> = row.iter().map(|c| raw_escape(c)).collect();
            s.push_str(&cells.join(" "));
            s.push('\n');
        }
        return s;
    }
    let enc: Vec<Vec<(String, usize)>> = grid.iter().map(|r| r.iter().map(|c| safe(c)).collect()).collect();
    let mut width: Vec<usize> = meta.iter().map(|m| m.0.len()).collect();
    for r in &enc {
        for (k, c) in r.iter().enumerate() {
            width[k] = width[k].max(c.1);
        }
    }
    let last = cols.len().saturating_sub(1);
    for r in &enc {
        for (k, (text, w)) in r.iter().enumerate() {
            let pad = width[k] - w;
            let right = meta[k].1;
            if right && !text.is_empty() {
                s.extend(std::iter::repeat_n(' ', pad));
            }
            s.push_str(text);
            if k == last {
                break;
            }
            if !right || text.is_empty() {
                s.extend(std::iter::repeat_n(' ', pad));
            }
            s.push(' ');
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(parse_columns("name,back-file").unwrap(), [Col::Name, Col::BackFile]);
        assert_eq!(parse_columns("+MAJ:MIN").unwrap().len(), 9);
        assert_eq!(parse_columns("NAME,BOGUS").unwrap_err(), "unknown column: BOGUS");
    }

    fn info(name: &str, file: &str, off: u64) -> Info {
        Info {
            name: name.into(),
            back_file: file.into(),
            offset: off,
            log_sec: 512,
            back_dev: 65024,
            back_ino: 10011043,
            maj_min: Some((7, 0)),
            ..Default::default()
        }
    }

    #[test]
    fn table_layout_matches_libsmartcols() {
        let rows = [info("/dev/loop1", "/tmp/lx/img with space", 512), info("/dev/loop0", "/tmp/lx/img1", 0)];
        let t = table(&rows, &DEFAULT_COLS, false, false);
        assert_eq!(
            t,
            "NAME       SIZELIMIT OFFSET AUTOCLEAR RO BACK-FILE              DIO LOG-SEC\n\
             /dev/loop1         0    512         0  0 /tmp/lx/img with space   0     512\n\
             /dev/loop0         0      0         0  0 /tmp/lx/img1             0     512\n"
        );
        let t = table(&rows[..1], &[Col::Name, Col::BackMajMin], true, true);
        assert_eq!(t, "/dev/loop1 \\x20\\x20\\x20\\x20\\x20254:0\\x20\\x20\n");
        let t = table(&rows[..1], &[Col::Name, Col::MajMin], false, false);
        assert_eq!(t, "NAME       MAJ:MIN\n/dev/loop1   7:0  \n");
        assert_eq!(table(&[], &DEFAULT_COLS, false, false), "");
        assert_eq!(safe("a\\xb\n\u{e9}").0, "a\\x5cxb\\x0a\\xc3\\xa9");
        assert_eq!(raw_escape("a b\\c\t"), "a\\x20b\\x5cc\\x09");
    }

    #[test]
    fn a_line() {
        let mut i = info("/dev/loop1", "/x", 512);
        i.sizelimit = 1048576;
        assert_eq!(line(&i), "/dev/loop1: [65024]:10011043 (/x), offset 512, sizelimit 1048576\n");
        i.back_dev = 0;
        i.back_ino = 0;
        i.offset = 0;
        assert_eq!(line(&i), "/dev/loop1: []: (/x), sizelimit 1048576\n");
    }
}
