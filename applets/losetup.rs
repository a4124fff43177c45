//! losetup — set up and control loop devices (util-linux compatible subset).
//!
//! The one applet not parsed by argh: util-linux's option forms (clustered short options with
//! values such as `-fP`, `-o512`, `--direct-io` with an optional `=on|off`, modes chosen by
//! option rather than by subcommand) are what scripts written for util-linux's losetup use, and
//! argh has no optional option values. Its usage text is `HELP`, the one place.
//! `-a` and `--list` print byte for byte what util-linux 2.38 prints (C locale).
//! Exit: 0 ok, 1 failure, 2 usage.

use crate::error::{Error, Result};
use crate::looplist::{self, check_loopdev, line, table, Col, COLS, DEFAULT_COLS};
use crate::sys::loopdev::{self, Setup};
use std::io::Write;

pub const SUMMARY: &str = "set up and control loop devices (util-linux compatible)";

const HELP: &str = "Usage:
 losetup [options] [<loopdev>]
 losetup [options] -f | <loopdev> <file>

Set up and control loop devices.

Options:
 -a, --all                     list all used devices
 -d, --detach <loopdev>...     detach one or more devices
 -D, --detach-all              detach all used devices
 -f, --find                    find first unused device
 -c, --set-capacity <loopdev>  resize the device
 -j, --associated <file>       list all devices associated with <file>

 -o, --offset <num>            start at offset <num> into file
     --sizelimit <num>         device is limited to <num> bytes of the file
 -b, --sector-size <num>       set the logical sector size to <num> (512..4096)
 -P, --partscan                create a partitioned loop device
 -r, --read-only               set up a read-only loop device
     --direct-io[=<on|off>]    open backing file with O_DIRECT
     --autoclear               detach automatically when the last user closes it
     --show                    print device name after setup (with -f)

 -l, --list                    list info about all or specified (default)
 -n, --noheadings              don't print headings for --list output
 -O, --output <cols>           specify columns to output for --list (+COLS appends)
     --output-all              output all columns
     --raw                     use raw --list output format
 -h, --help                    display this help

Sizes take K, M, G, T (KiB...) or KB, MB, GB (powers of 1000) suffixes.

Available output columns:
         NAME  loop device name
    AUTOCLEAR  autoclear flag set
    BACK-FILE  device backing file
     BACK-INO  backing file inode number
 BACK-MAJ:MIN  backing file major:minor device number
      MAJ:MIN  loop device major:minor number
       OFFSET  offset from the beginning
     PARTSCAN  partscan flag set
           RO  read-only device
    SIZELIMIT  size limit of the file in bytes
          DIO  access backing file with direct-io
      LOG-SEC  logical sector size in bytes

Exit status: 0 ok, 1 failure, 2 usage.
";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Act {
    All,
    Detach,
    DetachAll,
    Find,
    Capacity,
    Assoc,
}

#[derive(Default, Debug)]
struct Opts {
    act: Option<Act>,
    /// Option letters/names that select an action, for the "mutually exclusive" message.
    act_opts: Vec<String>,
    detach: Vec<String>,
    capacity: Option<String>,
    assoc: Option<String>,
    offset: Option<u64>,
    sizelimit: Option<u64>,
    block_size: Option<u32>,
    read_only: bool,
    partscan: bool,
    autoclear: bool,
    dio: Option<bool>,
    show: bool,
    list: bool,
    noheadings: bool,
    raw: bool,
    output: Option<String>,
    output_all: bool,
    args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Arg {
    No,
    Req,
    Opt,
}

/// (long name, short letter or '\0', argument).
const LONGOPTS: &[(&str, char, Arg)] = &[
    ("all", 'a', Arg::No),
    ("set-capacity", 'c', Arg::Req),
    ("detach", 'd', Arg::Req),
    ("detach-all", 'D', Arg::No),
    ("find", 'f', Arg::No),
    ("help", 'h', Arg::No),
    ("associated", 'j', Arg::Req),
    ("list", 'l', Arg::No),
    ("sector-size", 'b', Arg::Req),
    ("noheadings", 'n', Arg::No),
    ("offset", 'o', Arg::Req),
    ("output", 'O', Arg::Req),
    ("output-all", '\0', Arg::No),
    ("sizelimit", '\0', Arg::Req),
    ("partscan", 'P', Arg::No),
    ("read-only", 'r', Arg::No),
    ("direct-io", '\0', Arg::Opt),
    ("raw", '\0', Arg::No),
    ("show", '\0', Arg::No),
    ("autoclear", '\0', Arg::No),
    ("verbose", 'v', Arg::No),
];

fn usage(msg: impl std::fmt::Display) -> Error {
    Error::usage(format!("{msg}\nTry 'losetup --help' for more information."))
}

fn size_arg(what: &str, v: &str) -> Result<u64> {
    crate::cli::parse_size(v).map_err(|e| usage(format!("{what}: {e}")))
}

/// getopt_long-style parsing: clusters (`-rf`), attached values (`-o512`, `--sizelimit=1M`),
/// unambiguous long prefixes, options after operands, `--`.
fn parse(argv: &[String]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut i = 1;
    let mut only_args = false;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if only_args || a == "-" || !a.starts_with('-') {
            o.args.push(a.clone());
            continue;
        }
        if a == "--" {
            only_args = true;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (long, None),
            };
            let hits: Vec<_> = LONGOPTS.iter().filter(|(n, _, _)| n.starts_with(name)).collect();
            let opt = match hits.iter().find(|(n, _, _)| *n == name) {
                Some(h) => *h,
                None if hits.len() == 1 => hits[0],
                None if hits.is_empty() => return Err(usage(format!("unrecognized option '--{name}'"))),
                None => return Err(usage(format!("option '--{name}' is ambiguous"))),
            };
            let (lname, short, kind) = *opt;
            let val = match kind {
                Arg::No if inline.is_some() => {
                    return Err(usage(format!("option '--{lname}' doesn't allow an argument")))
                }
                Arg::No | Arg::Opt => inline,
                Arg::Req => match inline {
                    Some(v) => Some(v),
                    None if i < argv.len() => {
                        i += 1;
                        Some(argv[i - 1].clone())
                    }
                    None => return Err(usage(format!("option '--{lname}' requires an argument"))),
                },
            };
            apply(&mut o, short, lname, val, &format!("--{lname}"))?;
            continue;
        }
        let body: Vec<char> = a[1..].chars().collect();
        let mut k = 0;
        while k < body.len() {
            let c = body[k];
            k += 1;
            let Some(&(lname, _, kind)) = LONGOPTS.iter().find(|(_, s, _)| *s == c && c != '\0') else {
                return Err(usage(format!("invalid option -- '{c}'")));
            };
            let val = if kind == Arg::Req {
                if k < body.len() {
                    let v: String = body[k..].iter().collect();
                    k = body.len();
                    Some(v)
                } else if i < argv.len() {
                    i += 1;
                    Some(argv[i - 1].clone())
                } else {
                    return Err(usage(format!("option requires an argument -- '{c}'")));
                }
            } else {
                None
            };
            apply(&mut o, c, lname, val, &format!("-{c}"))?;
        }
    }
    Ok(o)
}

fn set_act(o: &mut Opts, act: Act, spelled: &str) -> Result<()> {
    // util-linux's exclusion groups: at most one of -a -c -d -D -f -j.
    if o.act.is_some_and(|a| a != act) {
        return Err(usage(format!("mutually exclusive arguments: {} {spelled}", o.act_opts.join(" "))));
    }
    o.act = Some(act);
    if !o.act_opts.iter().any(|s| s == spelled) {
        o.act_opts.push(spelled.to_owned());
    }
    Ok(())
}

fn apply(o: &mut Opts, short: char, long: &str, val: Option<String>, spelled: &str) -> Result<()> {
    let v = val.unwrap_or_default();
    match (short, long) {
        ('a', _) => set_act(o, Act::All, spelled)?,
        ('c', _) => {
            set_act(o, Act::Capacity, spelled)?;
            o.capacity = Some(v);
        }
        ('d', _) => {
            set_act(o, Act::Detach, spelled)?;
            o.detach.push(v);
        }
        ('D', _) => set_act(o, Act::DetachAll, spelled)?,
        ('f', _) => set_act(o, Act::Find, spelled)?,
        ('h', _) => return Err(Error::help(HELP)),
        ('j', _) => {
            set_act(o, Act::Assoc, spelled)?;
            o.assoc = Some(v);
        }
        ('l', _) => o.list = true,
        ('b', _) => {
            let n = size_arg("sector size", &v)?;
            if !matches!(n, 512 | 1024 | 2048 | 4096) {
                return Err(usage(format!("sector size: '{v}' is not 512, 1024, 2048 or 4096")));
            }
            o.block_size = Some(n as u32);
        }
        ('n', _) => o.noheadings = true,
        ('o', _) => o.offset = Some(size_arg("offset", &v)?),
        ('O', _) => {
            o.output = Some(v);
            o.list = true;
        }
        ('P', _) => o.partscan = true,
        ('r', _) => o.read_only = true,
        ('v', _) => {}
        (_, "output-all") => o.output_all = true,
        (_, "sizelimit") => o.sizelimit = Some(size_arg("sizelimit", &v)?),
        (_, "direct-io") => {
            o.dio = Some(match v.as_str() {
                "" | "on" => true,
                "off" => false,
                _ => return Err(usage(format!("--direct-io: '{v}' is not 'on' or 'off'"))),
            })
        }
        (_, "raw") => o.raw = true,
        (_, "show") => o.show = true,
        (_, "autoclear") => o.autoclear = true,
        _ => return Err(usage(format!("unrecognized option '{spelled}'"))),
    }
    Ok(())
}

fn parse_columns(spec: &str) -> Result<Vec<Col>> {
    looplist::parse_columns(spec).map_err(usage)
}

enum Mode {
    Create { dev: Option<String>, file: String },
    FindFree,
    Detach(Vec<String>),
    DetachAll,
    Capacity(String),
    ShowAll { file: Option<String> },
    ShowOne(String),
    SetDio(String, bool),
    SetBlockSize(String, u32),
}

/// Turn the options into one action, with util-linux's rules for what implies what.
fn mode(o: &mut Opts) -> Result<Mode> {
    let nargs = o.args.len();
    let only_one = |o: &Opts| -> Result<String> {
        match o.args.as_slice() {
            [d] => Ok(d.clone()),
            _ => Err(usage("unexpected arguments")),
        }
    };
    let mut m = match o.act {
        Some(Act::Find) if nargs > 0 => {
            if nargs > 1 {
                return Err(usage("unexpected arguments"));
            }
            Mode::Create { dev: None, file: o.args[0].clone() }
        }
        Some(Act::Find) => Mode::FindFree,
        Some(Act::Detach) => {
            let mut v = std::mem::take(&mut o.detach);
            v.append(&mut o.args);
            Mode::Detach(v)
        }
        Some(act) => {
            if nargs > 0 {
                return Err(usage("unexpected arguments"));
            }
            match act {
                Act::DetachAll => Mode::DetachAll,
                Act::Capacity => Mode::Capacity(o.capacity.take().unwrap_or_default()),
                Act::Assoc => Mode::ShowAll { file: o.assoc.clone() },
                _ => Mode::ShowAll { file: None },
            }
        }
        None if nargs == 0 => {
            // Bare `losetup`, `losetup -l`, `losetup --raw`: list everything.
            o.list = true;
            Mode::ShowAll { file: None }
        }
        None if nargs == 1 => {
            let dev = only_one(o)?;
            if let Some(on) = o.dio.take() {
                Mode::SetDio(dev, on)
            } else if let Some(bs) = o.block_size.take() {
                Mode::SetBlockSize(dev, bs)
            } else {
                Mode::ShowOne(dev)
            }
        }
        None if nargs == 2 => Mode::Create { dev: Some(o.args[0].clone()), file: o.args[1].clone() },
        None => return Err(usage("unexpected arguments")),
    };
    let creating = matches!(m, Mode::Create { .. });
    if !creating
        && (o.sizelimit.is_some() || o.read_only || o.partscan || o.autoclear || o.show || o.dio.is_some())
    {
        return Err(usage("the options --{sizelimit,partscan,read-only,direct-io,autoclear,show} are allowed during loop device setup only"));
    }
    if o.block_size.is_some() && !creating {
        return Err(usage("the option --sector-size is not allowed in this context"));
    }
    if o.offset.is_some() && !creating && !matches!(m, Mode::ShowAll { file: Some(_) }) {
        return Err(usage("the option --offset is not allowed in this context"));
    }
    // -l/-O only make sense when showing; --raw and -n alone are ignored elsewhere, as in
    // util-linux.
    if o.output_all {
        o.list = true;
    }
    if o.list && !matches!(m, Mode::ShowAll { .. } | Mode::ShowOne(_)) {
        return Err(usage("--list and --output only go with showing devices"));
    }
    if let Mode::Detach(ref v) = m {
        if v.is_empty() {
            m = Mode::DetachAll;
        }
    }
    Ok(m)
}

pub fn run(argv: &[String]) -> Result<()> {
    let mut o = parse(argv)?;
    let m = mode(&mut o)?;
    let cols = if let Some(spec) = &o.output {
        parse_columns(spec)?
    } else if o.output_all {
        COLS.iter().map(|c| c.0).collect()
    } else {
        DEFAULT_COLS.to_vec()
    };
    match m {
        Mode::Create { dev, file } => create(&o, dev, &file),
        Mode::FindFree => {
            let dev = loopdev::find_free()?;
            out(&format!("{dev}\n"));
            Ok(())
        }
        Mode::Detach(devs) => for_each(devs.iter().map(String::as_str), |d| {
            check_loopdev(d)?;
            loopdev::detach(d).map_err(|e| named(d, "detach failed", e))
        }),
        Mode::DetachAll => {
            let names: Vec<String> = loopdev::list_bound_unsorted()?.into_iter().map(|i| i.name).collect();
            for_each(names.iter().map(String::as_str), |d| {
                loopdev::detach(d).map_err(|e| named(d, "detach failed", e))
            })
        }
        Mode::Capacity(d) => {
            check_loopdev(&d)?;
            loopdev::set_capacity(&d).map_err(|e| named(&d, "set capacity failed", e))
        }
        Mode::SetDio(d, on) => {
            check_loopdev(&d)?;
            loopdev::set_direct_io(&d, on).map_err(|e| named(&d, "set direct io failed", e))
        }
        Mode::SetBlockSize(d, bs) => {
            check_loopdev(&d)?;
            loopdev::set_block_size(&d, bs).map_err(|e| named(&d, "set logical block size failed", e))
        }
        Mode::ShowOne(d) => {
            check_loopdev(&d)?;
            let mut i = loopdev::info(&d)?;
            // util-linux names the device the way the user did.
            i.name = d;
            let text = if o.list { table(&[i], &cols, o.raw, o.noheadings) } else { line(&i) };
            out(&text);
            Ok(())
        }
        Mode::ShowAll { file } => {
            let mut all = loopdev::list_bound_unsorted()?;
            if let Some(f) = &file {
                let off = o.offset;
                all.retain(|i| loopdev::uses_file(i, &crate::osarg::path(f), off));
            }
            let text =
                if o.list { table(&all, &cols, o.raw, o.noheadings) } else { all.iter().map(line).collect() };
            out(&text);
            Ok(())
        }
    }
}

/// `dev: what: reason` for failures of a single step (util-linux wording).
fn named(dev: &str, what: &str, e: Error) -> Error {
    let reason = if e.object == dev { e.reason } else { e.to_string() };
    Error::new(dev, format!("{what}: {reason}"))
}

/// Run `f` on every device; report each failure, return the last one (so the exit code is 1).
fn for_each<'a>(devs: impl Iterator<Item = &'a str>, f: impl Fn(&str) -> Result<()>) -> Result<()> {
    let mut last = None;
    for d in devs {
        if let Err(e) = f(d) {
            if let Some(prev) = last.replace(e) {
                err(&prev);
            }
        }
    }
    last.map_or(Ok(()), Err)
}

fn err(e: &Error) {
    let _ = std::io::stderr().write_all(format!("losetup: {e}\n").as_bytes());
}

fn out(text: &str) {
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(text.as_bytes());
    let _ = so.flush();
}

fn create(o: &Opts, dev: Option<String>, file: &str) -> Result<()> {
    let setup = Setup {
        offset: o.offset.unwrap_or(0),
        sizelimit: o.sizelimit.unwrap_or(0),
        read_only: o.read_only,
        autoclear: o.autoclear,
        partscan: o.partscan,
        direct_io: o.dio.unwrap_or(false),
        block_size: o.block_size.unwrap_or(0),
    };
    let path = crate::osarg::path(file);
    let name = match dev {
        Some(d) => {
            loopdev::attach_to(&d, &path, &setup)?;
            d
        }
        None => loopdev::attach(&path, &setup)?,
    };
    if o.show {
        out(&format!("{name}\n"));
    }
    if let Some(w) = looplist::size_warning(&path, &setup) {
        err(&w);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("losetup").chain(a.iter().copied()).map(String::from).collect()
    }

    #[test]
    fn parses_util_linux_spellings() {
        let o = parse(&args(&["-rf", "--show", "img"])).unwrap();
        assert!(o.read_only && o.show && o.act == Some(Act::Find));
        assert_eq!(o.args, ["img"]);
        let o = parse(&args(&["--sizelimit=1M", "-o512", "--direct-io", "-f", "x"])).unwrap();
        assert_eq!((o.sizelimit, o.offset, o.dio), (Some(1 << 20), Some(512), Some(true)));
        let o = parse(&args(&["--direct-io=off", "/dev/loop0"])).unwrap();
        assert_eq!(o.dio, Some(false));
        let o = parse(&args(&["--sh", "-f", "--off", "4K", "x"])).unwrap();
        assert!(o.show);
        assert_eq!(o.offset, Some(4096));
        assert_eq!(parse(&args(&["-o", "-1"])).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&args(&["-o", "abc"])).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&args(&["-b", "1000"])).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&args(&["--direct-io=maybe"])).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&args(&["-a", "-d", "x"])).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&args(&["--d"])).unwrap_err().exit_code(), 2);
        assert!(parse(&args(&["--help"])).unwrap_err().help);
        let o = parse(&args(&["-d", "/dev/loop1", "/dev/loop2"])).unwrap();
        assert_eq!(o.detach, ["/dev/loop1"]);
        assert_eq!(o.args, ["/dev/loop2"]);
    }

    #[test]
    fn modes() {
        let mut o = parse(&args(&["-r", "/dev/loop0"])).unwrap();
        assert_eq!(mode(&mut o).err().map(|e| e.exit_code()), Some(2));
        let mut o = parse(&args(&["/dev/loop0", "f"])).unwrap();
        assert!(matches!(mode(&mut o), Ok(Mode::Create { dev: Some(_), .. })));
        let mut o = parse(&args(&[])).unwrap();
        assert!(matches!(mode(&mut o), Ok(Mode::ShowAll { file: None })));
        assert!(o.list);
        let mut o = parse(&args(&["-j", "f", "-o", "512"])).unwrap();
        assert!(matches!(mode(&mut o), Ok(Mode::ShowAll { file: Some(_) })));
        let mut o = parse(&args(&["-a", "-o", "512"])).unwrap();
        assert!(mode(&mut o).is_err());
    }
}
