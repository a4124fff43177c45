//! Command-line helpers shared by the applets: argh with util-linux spellings, numbers with
//! size suffixes, human-readable sizes.

use crate::error::{Error, Result};

/// Parse `argv` (argv[0] = applet name) with argh, after [`normalize`].
///
/// `short_with_value` lists the short options that take a value (e.g. "ob" for `-o N -b N`),
/// so that clusters like `-rf` split into `-r -f` and `-o512` into `-o 512`.
pub fn parse<T: argh::FromArgs>(argv: &[String], short_with_value: &str) -> Result<T> {
    parse_last_wins(argv, short_with_value, &[])
}

/// [`parse`], where each of the `last_wins` options (long names taking a value) may be given
/// more than once and the last one counts, as with getopt: argh refuses a repeated option, and
/// scripts that add to a command line an option it already has rely on this (a test harness's
/// `--stall-timeout 2`, a wrapper's `"$@" --timeout N`).
pub fn parse_last_wins<T: argh::FromArgs>(argv: &[String], short_with_value: &str, last_wins: &[&str]) -> Result<T> {
    let name = argv.first().map(String::as_str).unwrap_or("liveroot");
    let args = last_only(normalize(argv.get(1..).unwrap_or(&[]), short_with_value), last_wins);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    T::from_args(&[name], &refs).map_err(|e| match e.status {
        Ok(()) => Error::help(e.output),
        Err(()) => Error::usage(format!(
            "{}\nTry '{name} --help' for more information.",
            e.output.trim_end()
        )),
    })
}

/// Rewrite getopt-style spellings into the one-token-per-option form argh accepts:
/// `--opt=value` → `--opt value`, `-abc` → `-a -b -c`, `-ovalue` → `-o value`.
/// Everything after `--` is left alone.
pub fn normalize(args: &[String], short_with_value: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for a in args {
        if rest || a == "-" || !a.starts_with('-') {
            out.push(a.clone());
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a.clone());
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((k, v)) => {
                    out.push(format!("--{k}"));
                    out.push(v.to_owned());
                }
                None => out.push(a.clone()),
            }
            continue;
        }
        // A negative number such as `-1` is a value, not a cluster.
        if a[1..].starts_with(|c: char| c.is_ascii_digit()) {
            out.push(a.clone());
            continue;
        }
        let body = &a[1..];
        for (i, c) in body.char_indices() {
            out.push(format!("-{c}"));
            if short_with_value.contains(c) {
                let tail = &body[i + c.len_utf8()..];
                if !tail.is_empty() {
                    out.push(tail.to_owned());
                }
                break;
            }
        }
    }
    out
}

/// A lone `-` (stdin, or "none" as a value) as argh is given it: argh takes any word starting
/// with `-` for an option. U+10FF2D is the escape of the byte `-` that the binary's `osarg`
/// makes, which no encoded argument holds by itself, and which `osarg::path` turns back into
/// `-`.
pub const DASH: &str = "\u{10FF2D}";

/// [`parse_last_wins`] for an applet where `-` is a word (stdin): each `-` reaches its
/// strings as [`DASH`], which [`undash`] turns back.
pub fn parse_dash<T: argh::FromArgs>(argv: &[String], short_with_value: &str, last_wins: &[&str]) -> Result<T> {
    let argv: Vec<String> = argv.iter().enumerate().map(|(i, a)| if i > 0 && a == "-" { DASH.to_owned() } else { a.clone() }).collect();
    parse_last_wins(&argv, short_with_value, last_wins)
}

pub fn undash(s: &mut String) {
    if s == DASH {
        "-".clone_into(s);
    }
}

/// Drop every `OPT VALUE` pair of the `opts` but the last one of each (before `--`; the input
/// is [`normalize`]d, so a value is always the next word).
fn last_only(args: Vec<String>, opts: &[&str]) -> Vec<String> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut drop = vec![false; args.len()];
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut i = 0;
    while i < end {
        let a = args[i].as_str();
        if opts.contains(&a) && i + 1 < end {
            if let Some(&(_, prev)) = seen.iter().find(|(o, _)| *o == a) {
                drop[prev] = true;
                drop[prev + 1] = true;
            }
            seen.retain(|(o, _)| *o != a);
            seen.push((a, i));
            i += 2;
        } else {
            i += 1;
        }
    }
    args.into_iter().zip(drop).filter(|(_, d)| !d).map(|(a, _)| a).collect()
}

/// The longest wait in seconds an option may ask for: a week. Bounded so that a deadline (now +
/// wait) cannot overflow the clock, which panicked (SIGILL in the release build).
pub const MAX_SECONDS: u64 = 7 * 86_400;
/// The longest wait for a device at boot (`find-medium --wait`, `rd.retry=`): a day.
pub const MAX_BOOT_WAIT: u64 = 86_400;

/// An interval: `30`, `30s`, `15m`, `6h`, `1d` → seconds (at least 1; None when not one).
pub fn parse_interval(v: &str) -> Option<u64> {
    let (n, unit) = match v.strip_suffix(['s', 'm', 'h', 'd']) {
        Some(n) => (n, v.get(n.len()..)?),
        None => (v, "s"),
    };
    let mul = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 1,
    };
    let n: u64 = Some(n).filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()?;
    n.checked_mul(mul).filter(|&s| s > 0)
}

/// Parse a size like util-linux does: a decimal number (or 0x hex) with an optional suffix
/// K, M, G, T, P, E (powers of 1024, also KiB/MiB/...) or KB, MB, GB... (powers of 1000).
/// A bare number is bytes. Negative numbers and overflow are errors.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let bad = || format!("invalid size '{s}'");
    if t.is_empty() || t.starts_with('-') || t.starts_with('+') {
        return Err(bad());
    }
    let (num, suffix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let end = h.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(h.len());
        let n = u64::from_str_radix(&h[..end], 16).map_err(|_| bad())?;
        (n, &h[end..])
    } else {
        let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n = t[..end].parse::<u64>().map_err(|_| bad())?;
        (n, &t[end..])
    };
    let suffix = suffix.trim_start();
    let mult: u64 = if suffix.is_empty() {
        1
    } else {
        let up = suffix.to_ascii_uppercase();
        // By char, not byte: a non-ASCII first letter (`1é`) must be an error, not a split
        // inside a UTF-8 sequence.
        let mut chars = up.chars();
        let letter = chars.next().ok_or_else(bad)?;
        let exp = "KMGTPE".find(letter).ok_or_else(bad)? as u32 + 1;
        match chars.as_str() {
            "" | "IB" => 1024u64.pow(exp),
            "B" => 1000u64.pow(exp),
            _ => return Err(bad()),
        }
    };
    num.checked_mul(mult).ok_or_else(|| format!("size '{s}' is too large"))
}

/// `17B`, `1.5K`, `1023.9M`, `2.0G`: binary units with one decimal, integers only (truncated,
/// so a size is never shown larger than it is). Every human-readable size the applets print.
pub fn size_str(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T", "P", "E"];
    let mut u = 0;
    while u + 1 < units.len() && n >> (10 * u) >= 1024 {
        u += 1;
    }
    let Some(unit) = units.get(u).filter(|_| u > 0) else {
        return format!("{n}B");
    };
    let tenths = ((n as u128 * 10) >> (10 * u)) as u64;
    format!("{}.{}{unit}", tenths / 10, tenths % 10)
}

/// `format!("{x:.1}")`, without core's float formatting (9,632 bytes of the binary, for three
/// numbers in reports): the exact value of the f64 times ten, rounded half to even as core rounds
/// it. For a finite `x` from 0 up to 2^100, which every caller's percentage, seconds and rate is;
/// anything else (negative, NaN, infinite, larger) prints as 0.0.
pub fn fixed1(x: f64) -> String {
    let bits = x.to_bits();
    let exp = (bits >> 52) as i32;
    if exp >= 1023 + 100 {
        // The sign bit, NaN, infinities, 2^100 and above.
        return "0.0".to_owned();
    }
    let frac = bits & ((1 << 52) - 1);
    // x = m * 2^e exactly; ten times it is t * 2^e, with t below 2^57.
    let (m, e) = if exp == 0 { (frac, -1074) } else { (frac | 1 << 52, exp - 1075) };
    let t = u128::from(m) * 10;
    let q = if e >= 0 {
        // e <= 47: below 2^104.
        t << e
    } else if e <= -58 {
        // t * 2^e is below a half.
        0
    } else {
        let s = e.unsigned_abs();
        let (q, rem, half) = (t >> s, t & ((1 << s) - 1), 1u128 << (s - 1));
        q + u128::from(rem > half || (rem == half && q & 1 == 1))
    };
    format!("{}.{}", q / 10, q % 10)
}

/// `N MiB`, rounded up: what a size needs or is, in the unit the refusals and reports use.
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalize_clusters_and_equals() {
        assert_eq!(normalize(&v(&["-rf", "--show", "img"]), "ob"), v(&["-r", "-f", "--show", "img"]));
        assert_eq!(normalize(&v(&["--sizelimit=1M", "-o512"]), "ob"), v(&["--sizelimit", "1M", "-o", "512"]));
        assert_eq!(normalize(&v(&["-ro", "4096", "f"]), "ob"), v(&["-r", "-o", "4096", "f"]));
        assert_eq!(normalize(&v(&["-o", "-1"]), "ob"), v(&["-o", "-1"]));
        assert_eq!(normalize(&v(&["--", "-rf"]), "ob"), v(&["--", "-rf"]));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("3g"), Ok(3 << 30));
        assert_eq!(parse_size("0x200"), Ok(512));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("abc").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999E").is_err());
        // Non-ASCII suffixes: these split a UTF-8 sequence (a panic, SIGILL) before.
        assert!(parse_size("1é").is_err());
        assert!(parse_size("1 é").is_err());
        assert!(parse_size("0x1é").is_err());
        assert!(parse_size("1Ké").is_err());
        assert!(parse_size("1\u{1F4A9}").is_err());
    }

    #[test]
    fn normalize_non_ascii_clusters() {
        assert_eq!(normalize(&v(&["-é", "-oé"]), "ob"), v(&["-é", "-o", "é"]));
        assert_eq!(normalize(&v(&["--é=ü"]), "ob"), v(&["--é", "ü"]));
    }

    #[test]
    fn the_last_of_a_repeated_option_wins() {
        let o = ["--to", "--timeout"];
        assert_eq!(last_only(v(&["--to", "a", "x", "--to", "b", "--timeout", "1"]), &o), v(&["x", "--to", "b", "--timeout", "1"]));
        // A value that looks like the option is a value; after `--` nothing is an option.
        assert_eq!(last_only(v(&["--to", "--to", "--to", "c"]), &o), v(&["--to", "c"]));
        assert_eq!(last_only(v(&["--to", "a", "--", "--to", "b"]), &o), v(&["--to", "a", "--", "--to", "b"]));
        assert_eq!(last_only(v(&["--seed", "a", "--seed", "b"]), &o), v(&["--seed", "a", "--seed", "b"]));
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30"), Some(30));
        assert_eq!(parse_interval("30s"), Some(30));
        assert_eq!(parse_interval("15m"), Some(900));
        assert_eq!(parse_interval("6h"), Some(21_600));
        assert_eq!(parse_interval("1d"), Some(86_400));
        for bad in ["", "0", "0s", "s", "1x", "-1", "1.5h", "18446744073709551615d", "1é"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }

    #[test]
    fn size_strings() {
        assert_eq!(size_str(0), "0B");
        assert_eq!(size_str(1023), "1023B");
        assert_eq!(size_str(1536), "1.5K");
        assert_eq!(size_str(64 << 20), "64.0M");
        assert_eq!(size_str((1 << 30) - 1), "1023.9M");
        assert_eq!(size_str(u64::MAX), "15.9E");
        assert_eq!(mib(0), "0 MiB");
        assert_eq!(mib(1), "1 MiB");
        assert_eq!(mib(128 << 20), "128 MiB");
        assert_eq!(mib(u64::MAX), "17592186044416 MiB");
    }

    /// fixed1 prints what `{:.1}` prints: exact ties (half to even), values near them, tiny and
    /// huge ones, and a million random f64s of the range.
    #[test]
    fn fixed1_is_core_s_one_decimal() {
        let check = |x: f64| assert_eq!(fixed1(x), format!("{x:.1}"), "{x:e}");
        for k in 0..20_000u32 {
            let x = f64::from(k) / 20.0;
            for y in [x, f64::from(k) / 4.0, f64::from(k) * 0.05, f64::from(k) / 3.0] {
                check(y);
                check(f64::from_bits(y.to_bits() + 1));
                check(f64::from_bits(y.to_bits().saturating_sub(1)));
            }
        }
        for x in [0.0, f64::MIN_POSITIVE, 1e-320, 0.05, 0.15, 0.25, 0.35, 0.45, 99.95, 1e15, 1.8446744073709552e21, 2f64.powi(99), 2f64.powi(100) - 2f64.powi(47)] {
            check(x);
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = f64::from_bits(s >> 1);
            if x < 2f64.powi(100) {
                check(x);
            }
        }
        for x in [-1.0, -0.0, f64::NAN, f64::INFINITY, 2f64.powi(100), f64::MAX] {
            assert_eq!(fixed1(x), "0.0");
        }
    }
}
