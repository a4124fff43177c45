//! imgcheck — sha256sum-compatible hashing and checking, with CRC-32 and minisign signatures.
//!
//! ```text
//! imgcheck [--crc32] [--progress|--no-progress] [FILE...]
//! imgcheck -c MANIFEST [--dir DIR] [--quiet] [--progress|--no-progress]
//!          [--pubkey KEY | --pubkey-file FILE] [--sig MANIFEST.minisig] [--print-version]
//! ```
//!
//! Hashing prints `SHA256  NAME` exactly like `sha256sum` (`-` is stdin; a name with `\`, newline
//! or CR is escaped and the line starts with `\`). With `--crc32` the line is
//! `SHA256  CRC32  NAME` (CRC-32/IEEE as `cksum -a crc32b` prints it, 8 lowercase hex digits),
//! computed in the same pass; that form is not meant for `sha256sum -c`.
//!
//! Checking prints `NAME: OK`, `NAME: FAILED` or `NAME: FAILED open or read` per manifest line,
//! and the `WARNING: ...` summary on stderr, like `sha256sum -c`. Names are relative to `--dir`
//! (default: the current directory, as sha256sum). The manifest is parsed strictly (see
//! src/manifest.rs); a malformed manifest is a verification failure.
//!
//! With a public key the manifest is trusted only once its minisign signature (default
//! `MANIFEST.minisig`) verifies over the exact bytes read. `--print-version` then prints the `N`
//! of `version=N` from the signed trusted comment and checks no files.
//!
//! Exit: 0 ok, 1 I/O failure, 2 usage, 3 verification failed (mismatch, missing listed file,
//! malformed manifest, bad signature).

use crate::digest::{hash_file, hex, input_size, Hasher, Progress};
use crate::error::{Context, Error, Result};
use crate::manifest;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const SUMMARY: &str = "sha256sum-compatible image check with CRC-32 and minisign signatures";

const HELP: &str = "Usage: imgcheck [--crc32] [--progress|--no-progress] [FILE...]
       imgcheck -c MANIFEST [--dir DIR] [--quiet]
                [--pubkey KEY | --pubkey-file FILE] [--sig SIGFILE] [--print-version]

Print or check SHA-256 checksums like sha256sum. With no FILE, or when FILE is -, read stdin.

  --crc32             also print the CRC-32 (IEEE): 'SHA256  CRC32  NAME'
  --progress          show bytes, rate and ETA on stderr (default: when stderr is a
                      terminal and the input is over 64 MiB)
  --no-progress       never show progress
  -c, --check MANIFEST
                      check the files listed in MANIFEST (sha256sum format; - is stdin)
  --dir DIR           names in MANIFEST are relative to DIR (default: current directory)
  --quiet             do not print OK lines
  --pubkey KEY        trust MANIFEST only if signed by this minisign public key (base64)
  --pubkey-file FILE  the same, with the key read from a minisign.pub file
  --sig SIGFILE       the minisign signature of MANIFEST (default: MANIFEST.minisig)
  --print-version     after the signature verifies, print N from the signed trusted
                      comment 'version=N' and check no files
  -h, --help          show this help

Exit status: 0 ok, 1 I/O failure, 2 usage, 3 verification failed.
";

#[derive(Default)]
struct Args {
    crc32: bool,
    progress: Option<bool>,
    check: Option<String>,
    dir: Option<String>,
    quiet: bool,
    pubkey: Option<String>,
    pubkey_file: Option<String>,
    sig: Option<String>,
    print_version: bool,
    files: Vec<String>,
}

fn usage(msg: &str) -> Error {
    Error::usage(format!("{msg}\nTry 'imgcheck --help' for more information."))
}

// By hand: argh would take a lone `-` (stdin) for an option.
fn parse_args(argv: &[String]) -> Result<Args> {
    let args = crate::cli::normalize(argv.get(1..).unwrap_or(&[]), "c");
    let mut a = Args::default();
    let mut it = args.into_iter();
    let mut rest = false;
    while let Some(arg) = it.next() {
        if rest || arg == "-" || !arg.starts_with('-') {
            a.files.push(arg);
            continue;
        }
        let mut value = |opt: &str| it.next().ok_or_else(|| usage(&format!("option '{opt}' requires an argument")));
        match arg.as_str() {
            "--" => rest = true,
            "-h" | "--help" => return Err(Error::help(HELP)),
            "--crc32" => a.crc32 = true,
            "--progress" => a.progress = Some(true),
            "--no-progress" => a.progress = Some(false),
            "-c" | "--check" => a.check = Some(value(&arg)?),
            "--dir" => a.dir = Some(value(&arg)?),
            "--quiet" => a.quiet = true,
            "--pubkey" => a.pubkey = Some(value(&arg)?),
            "--pubkey-file" => a.pubkey_file = Some(value(&arg)?),
            "--sig" => a.sig = Some(value(&arg)?),
            "--print-version" => a.print_version = true,
            _ => return Err(usage(&format!("unrecognized option '{arg}'"))),
        }
    }
    let keyed = a.pubkey.is_some() || a.pubkey_file.is_some();
    if a.check.is_none() {
        let check_only = [
            (a.dir.is_some(), "--dir"),
            (a.quiet, "--quiet"),
            (keyed, "--pubkey"),
            (a.sig.is_some(), "--sig"),
            (a.print_version, "--print-version"),
        ];
        if let Some((_, opt)) = check_only.iter().find(|(set, _)| *set) {
            return Err(usage(&format!("{opt} needs -c MANIFEST")));
        }
    } else {
        if !a.files.is_empty() {
            return Err(usage("-c takes one MANIFEST and no FILE operands"));
        }
        if a.crc32 {
            return Err(usage("--crc32 is for printing, not for -c"));
        }
    }
    if a.pubkey.is_some() && a.pubkey_file.is_some() {
        return Err(usage("--pubkey and --pubkey-file are exclusive"));
    }
    if a.check.as_deref() == Some("-") && keyed && a.sig.is_none() {
        return Err(usage("a manifest read from stdin needs --sig"));
    }
    if (a.sig.is_some() || a.print_version) && !keyed {
        return Err(usage("--sig and --print-version need --pubkey or --pubkey-file"));
    }
    Ok(a)
}

pub fn run(argv: &[String]) -> Result<()> {
    let a = parse_args(argv)?;
    match &a.check {
        Some(m) => check(&a, m),
        None => print_sums(&a),
    }
}

/// `imgcheck: MSG` on stderr in one write, for problems that do not stop the run.
fn warn(msg: &str) {
    let _ = std::io::stderr().write_all(format!("imgcheck: {msg}\n").as_bytes());
}

fn open_input(name: &str) -> std::io::Result<File> {
    if name == "-" {
        // A duplicate of fd 0, so a redirected file gets the same fast path as a named one.
        Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?))
    } else {
        File::open(name)
    }
}

fn digest(file: &File, label: &str, crc32: bool, progress: Option<bool>) -> std::io::Result<crate::digest::Digests> {
    let size = input_size(file);
    let mut p = match progress {
        Some(true) => Some(Progress::new(label, size)),
        Some(false) => None,
        None => Progress::wanted(size).then(|| Progress::new(label, size)),
    };
    let mut h = Hasher::new(crc32);
    hash_file(file, &mut h, p.as_mut())?;
    Ok(h.finish())
}

fn print_sums(a: &Args) -> Result<()> {
    let stdin = ["-".to_owned()];
    let files = if a.files.is_empty() { &stdin[..] } else { &a.files[..] };
    let mut out = std::io::stdout().lock();
    let mut last_err: Option<Error> = None;
    for name in files {
        let res = open_input(name).and_then(|f| digest(&f, name, a.crc32, a.progress));
        let d = match res {
            Ok(d) => d,
            Err(e) => {
                // Reported in order; the last one becomes the exit status, as sha256sum exits 1.
                if let Some(prev) = last_err.replace(Error::io(manifest::quote_name(name.as_bytes()), &e)) {
                    warn(&prev.to_string());
                }
                continue;
            }
        };
        let (escaped, ename) = manifest::escape(name.as_bytes());
        let mut line = Vec::with_capacity(80 + ename.len());
        if escaped {
            line.push(b'\\');
        }
        line.extend_from_slice(hex(&d.sha256).as_bytes());
        line.extend_from_slice(b"  ");
        if let Some(c) = d.crc32 {
            line.extend_from_slice(hex(&c.to_be_bytes()).as_bytes());
            line.extend_from_slice(b"  ");
        }
        line.extend_from_slice(&ename);
        line.push(b'\n');
        out.write_all(&line).ctx("standard output")?;
    }
    out.flush().ctx("standard output")?;
    last_err.map_or(Ok(()), Err)
}

/// The manifest's text, trusted: its signature checked first when a key is given.
fn load_manifest(a: &Args, path: &str) -> Result<(manifest::Manifest, Option<String>)> {
    let key = match (&a.pubkey, &a.pubkey_file) {
        (Some(k), _) => Some(manifest::pubkey_from_base64(k)?),
        (None, Some(f)) => Some(manifest::pubkey_from_file(f)?),
        (None, None) => None,
    };
    let data = manifest::read(path)?;
    let comment = match key {
        Some(key) => {
            let sig_path = a.sig.clone().unwrap_or_else(|| format!("{path}.minisig"));
            let sig = std::fs::read(&sig_path).ctx(&sig_path)?;
            let tc = manifest::verify_signature(&data, &sig, &sig_path, &key)?;
            if a.print_version && manifest::version(&tc).is_none() {
                return Err(Error::verify(sig_path, format!("no version=N in trusted comment '{tc}'")));
            }
            Some(tc)
        }
        None => None,
    };
    let label = if path == "-" { "standard input" } else { path };
    Ok((manifest::parse(label, &data)?, comment))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn check(a: &Args, path: &str) -> Result<()> {
    let (m, comment) = load_manifest(a, path)?;
    if a.print_version {
        let v = comment.as_deref().and_then(manifest::version).unwrap_or(0);
        let mut out = std::io::stdout().lock();
        return out.write_all(format!("{v}\n").as_bytes()).and_then(|_| out.flush()).ctx("standard output");
    }
    let dir = PathBuf::from(a.dir.as_deref().unwrap_or("."));
    let (mut unread, mut mismatched) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for e in &m.entries {
        let shown = String::from_utf8_lossy(&e.name).into_owned();
        let file: PathBuf = dir.join(Path::new(OsStr::from_bytes(&e.name)));
        let res = File::open(&file).and_then(|f| digest(&f, &shown, false, a.progress));
        let verdict: &[u8] = match res {
            Ok(d) if d.sha256 == e.sha256 => b": OK\n",
            Ok(_) => {
                mismatched += 1;
                b": FAILED\n"
            }
            Err(err) => {
                unread += 1;
                warn(&Error::io(manifest::quote_name(&e.name), &err).to_string());
                b": FAILED open or read\n"
            }
        };
        if a.quiet && verdict == b": OK\n" {
            continue;
        }
        // sha256sum -c escapes a name only when it holds a newline.
        let mut line = Vec::new();
        if e.name.contains(&b'\n') {
            line.push(b'\\');
            line.extend_from_slice(&manifest::escape(&e.name).1);
        } else {
            line.extend_from_slice(&e.name);
        }
        line.extend_from_slice(verdict);
        out.write_all(&line).ctx("standard output")?;
    }
    out.flush().ctx("standard output")?;
    if unread == 0 && mismatched == 0 {
        return Ok(());
    }
    let mut msgs = Vec::new();
    if unread > 0 {
        msgs.push(format!("WARNING: {} could not be read", plural(unread, "listed file", "listed files")));
    }
    if mismatched > 0 {
        msgs.push(format!("WARNING: {} did NOT match", plural(mismatched, "computed checksum", "computed checksums")));
    }
    let last = msgs.pop().unwrap_or_default();
    for msg in msgs {
        warn(&msg);
    }
    Err(Error::verify("", last))
}
