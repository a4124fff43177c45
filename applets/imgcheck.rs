//! imgcheck — sha256sum-compatible hashing and checking, with CRC-32 and minisign signatures,
//! the dm-verity sidecars (core/src/veritytool.rs) and the delta block index
//! (core/src/delta.rs). Its options are documented once, in `Args` (`imgcheck --help`).
//!
//! Hashing prints `SHA256  NAME` exactly like `sha256sum` (`-` is stdin; a name with `\`, newline
//! or CR is escaped and the line starts with `\`). With `--crc32` the line is
//! `SHA256  CRC32  NAME` (CRC-32/IEEE as `cksum -a crc32b` prints it, 8 lowercase hex digits),
//! computed in the same pass; that form is not meant for `sha256sum -c`.
//!
//! Checking prints `NAME: OK`, `NAME: FAILED` or `NAME: FAILED open or read` per manifest line,
//! and the `WARNING: ...` summary on stderr, like `sha256sum -c`. The manifest is parsed
//! strictly (see core/src/manifest.rs); a malformed manifest is a verification failure. With a
//! public key the manifest is trusted only once its minisign signature verifies over the exact
//! bytes read.
//!
//! argh takes a lone `-` for an option; [`cli::parse_dash`] hands it through as a word that
//! means stdin.
//!
//! The writers, `--verity-format` (with `--salt`, `--uuid`) and `--make-index`, are the
//! publisher's: only the build with the `publisher` feature (build/publisher/liveroot) has them.
//! The binary in the initramfs and on the boxes checks sidecars and hashes, and writes neither.

use crate::cli;
use crate::digest::{hash_file, hex, input_size, progress_wanted, Hasher};
use crate::error::{Context, Error, Result};
use crate::manifest;
use crate::osarg;
use crate::progress::Progress;
use crate::verity;
use crate::fsutil::with_suffix;
use crate::veritytool;
use argh::FromArgs;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const SUMMARY: &str = "sha256sum-compatible image check with CRC-32 and minisign signatures";

#[derive(FromArgs)]
/// Print or check SHA-256 checksums like sha256sum. With no FILE, or when FILE is -, read stdin.
#[cfg_attr(feature = "publisher", doc = " Also: write or check the dm-verity sidecars of an image, or its delta block index.")]
#[cfg_attr(not(feature = "publisher"), doc = " Also: check the dm-verity sidecars of an image.")]
#[argh(note = "Exit status: 0 ok, 1 I/O failure, 2 usage, 3 verification failed.")]
struct Args {
    #[argh(switch)]
    /// also print the CRC-32 (IEEE): 'SHA256  CRC32  NAME'
    crc32: bool,
    #[argh(switch)]
    /// show bytes, rate and ETA on stderr (default: when stderr is a terminal and the input is
    /// over 64 MiB)
    progress: bool,
    #[argh(switch)]
    /// never show progress (wins over --progress)
    no_progress: bool,
    #[argh(option, short = 'c', arg_name = "MANIFEST")]
    /// check the files listed in MANIFEST (sha256sum format; - is stdin)
    check: Option<String>,
    #[argh(option, arg_name = "DIR")]
    /// names in MANIFEST are relative to DIR (default: current directory)
    dir: Option<String>,
    #[argh(switch)]
    /// do not print OK lines
    quiet: bool,
    #[argh(option, arg_name = "KEY")]
    /// trust MANIFEST only if signed by this minisign public key (base64)
    pubkey: Option<String>,
    #[argh(option, arg_name = "FILE")]
    /// the same, with the key read from a minisign.pub file
    pubkey_file: Option<String>,
    #[argh(option, arg_name = "SIGFILE")]
    /// the minisign signature of MANIFEST (default: MANIFEST.minisig)
    sig: Option<String>,
    #[argh(switch)]
    /// after the signature verifies, print N from the signed trusted comment 'version=N' and
    /// check no files
    print_version: bool,
    #[cfg(feature = "publisher")]
    #[argh(option, arg_name = "IMAGE")]
    /// write IMAGE.verity (dm-verity superblock + hash tree) and IMAGE.roothash, as
    /// 'veritysetup format' does (sha256, 4096-byte blocks, hash format 1); prints the root hash
    verity_format: Option<String>,
    #[cfg(feature = "publisher")]
    #[argh(option, arg_name = "HEX")]
    /// salt for --verity-format (default: 32 random bytes; - for none)
    salt: Option<String>,
    #[cfg(feature = "publisher")]
    #[argh(option, arg_name = "UUID")]
    /// uuid for --verity-format (default: random)
    uuid: Option<String>,
    #[argh(option, arg_name = "IMAGE")]
    /// check IMAGE and IMAGE.verity against the root hash, like 'veritysetup verify'
    verity_verify: Option<String>,
    #[argh(option, arg_name = "HEX")]
    /// the root hash for --verity-verify
    roothash: Option<String>,
    #[argh(option, arg_name = "F")]
    /// read it from F (default: IMAGE.roothash)
    roothash_file: Option<String>,
    #[cfg(feature = "publisher")]
    #[argh(option, arg_name = "IMAGE")]
    /// write IMAGE.zidx, the block index imgfetch --seed uses to download only what changed
    /// (list it in the signed SHA256SUMS)
    make_index: Option<String>,
    #[argh(positional, arg_name = "FILE")]
    /// files to hash (- is stdin)
    files: Vec<String>,
}

/// The writers' options ([`Args::writers`]).
#[derive(Default)]
struct Writers<'a> {
    verity_format: Option<&'a str>,
    salt: Option<&'a str>,
    uuid: Option<&'a str>,
    make_index: Option<&'a str>,
}

impl Args {
    /// The writers' options as given; all `None` in a build without them, where the code that
    /// runs them is then never reached and left out.
    fn writers(&self) -> Writers<'_> {
        #[cfg(feature = "publisher")]
        let w = Writers {
            verity_format: self.verity_format.as_deref(),
            salt: self.salt.as_deref(),
            uuid: self.uuid.as_deref(),
            make_index: self.make_index.as_deref(),
        };
        #[cfg(not(feature = "publisher"))]
        let w = Writers::default();
        w
    }

    /// None: progress when stderr is a terminal and the input is large.
    fn progress(&self) -> Option<bool> {
        match (self.progress, self.no_progress) {
            (_, true) => Some(false),
            (true, false) => Some(true),
            (false, false) => None,
        }
    }
}

/// The options given a value, each of which may be repeated (the last counts), as the
/// hand-written parser this replaced allowed.
const LAST_WINS: &[&str] = &[
    "-c", "--check", "--dir", "--pubkey", "--pubkey-file", "--sig", "--verity-format", "--salt", "--uuid", "--verity-verify",
    "--roothash", "--roothash-file", "--make-index",
];

fn usage(msg: &str) -> Error {
    Error::usage(format!("{msg}\nTry 'imgcheck --help' for more information."))
}

/// The rules between the modes that argh cannot state.
fn check_args(a: &Args) -> Result<()> {
    let keyed = a.pubkey.is_some() || a.pubkey_file.is_some();
    let w = a.writers();
    if w.make_index.is_some() {
        let others = a.check.is_some() || !a.files.is_empty() || a.crc32 || keyed || a.sig.is_some() || a.print_version;
        if others || w.verity_format.is_some() || a.verity_verify.is_some() || w.salt.is_some() || w.uuid.is_some() || a.roothash.is_some() || a.roothash_file.is_some() {
            return Err(usage("--make-index takes one IMAGE and no other mode"));
        }
        return Ok(());
    }
    let verity = w.verity_format.is_some() || a.verity_verify.is_some();
    if verity {
        let others = a.check.is_some() || !a.files.is_empty() || a.crc32 || keyed || a.sig.is_some() || a.print_version;
        if others || (w.verity_format.is_some() && a.verity_verify.is_some()) {
            return Err(usage("--verity-format and --verity-verify take one IMAGE and no other mode"));
        }
    }
    if w.verity_format.is_none() && (w.salt.is_some() || w.uuid.is_some()) {
        return Err(usage("--salt and --uuid need --verity-format"));
    }
    if a.verity_verify.is_none() && (a.roothash.is_some() || a.roothash_file.is_some()) {
        return Err(usage("--roothash and --roothash-file need --verity-verify"));
    }
    if a.roothash.is_some() && a.roothash_file.is_some() {
        return Err(usage("--roothash and --roothash-file are exclusive"));
    }
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
    Ok(())
}

pub fn run(argv: &[String]) -> Result<()> {
    let mut a: Args = cli::parse_dash(argv, "c", LAST_WINS)?;
    let words = [&mut a.check, &mut a.dir, &mut a.pubkey, &mut a.pubkey_file, &mut a.sig, &mut a.verity_verify, &mut a.roothash, &mut a.roothash_file];
    words.into_iter().flatten().chain(&mut a.files).for_each(cli::undash);
    #[cfg(feature = "publisher")]
    [&mut a.verity_format, &mut a.salt, &mut a.uuid, &mut a.make_index].into_iter().flatten().for_each(cli::undash);
    check_args(&a)?;
    let w = a.writers();
    if let Some(img) = w.make_index {
        // Under a temporary name, fsynced, then renamed: a publisher never uploads half an index.
        let img = osarg::path(img);
        let data = crate::delta::make(&img)?;
        let mut dest = img.as_os_str().to_owned();
        dest.push(crate::delta::SUFFIX);
        let mut tmp = dest.clone();
        tmp.push(".tmp");
        let (dest, tmp) = (std::path::PathBuf::from(dest), std::path::PathBuf::from(tmp));
        let mut f = File::create(&tmp).ctx(tmp.display())?;
        f.write_all(&data).and_then(|_| f.sync_all()).ctx(tmp.display())?;
        return std::fs::rename(&tmp, &dest).ctx(dest.display());
    }
    if let Some(img) = w.verity_format {
        return verity_format(&osarg::path(img), w.salt, w.uuid);
    }
    if let Some(img) = &a.verity_verify {
        return verity_verify(&osarg::path(img), a.roothash.as_deref(), a.roothash_file.as_deref().map(osarg::path).as_deref());
    }
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
        File::open(osarg::path(name))
    }
}

fn digest(file: &File, label: &str, crc32: bool, progress: Option<bool>) -> std::io::Result<crate::digest::Digests> {
    let size = input_size(file);
    let mut p = match progress {
        Some(true) => Some(Progress::on_stderr(label, size)),
        Some(false) => None,
        None => progress_wanted(size).then(|| Progress::on_stderr(label, size)),
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
        let raw = osarg::decode(name);
        let label = Path::new(&raw).display().to_string();
        let res = open_input(name).and_then(|f| digest(&f, &label, a.crc32, a.progress()));
        let d = match res {
            Ok(d) => d,
            Err(e) => {
                // Reported in order; the last one becomes the exit status, as sha256sum exits 1.
                if let Some(prev) = last_err.replace(Error::io(manifest::quote_name(raw.as_bytes()), &e)) {
                    warn(&prev.to_string());
                }
                continue;
            }
        };
        let (escaped, ename) = manifest::escape(raw.as_bytes());
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
        (None, Some(f)) => Some(manifest::pubkey_from_file(&osarg::path(f))?),
        (None, None) => None,
    };
    let path = osarg::path(path);
    let shown = path.display().to_string();
    let data = manifest::read(&path)?;
    let comment = match key {
        Some(key) => {
            let sig_path = match &a.sig {
                Some(s) => osarg::path(s),
                None => with_suffix(&path, manifest::SIG_SUFFIX),
            };
            let sig_shown = sig_path.display().to_string();
            let sig = std::fs::read(&sig_path).ctx(&sig_shown)?;
            let tc = manifest::verify_signature(&data, &sig, &sig_shown, &key)?;
            if a.print_version && crate::rollout::version(&tc).is_none() {
                return Err(Error::verify(sig_shown, format!("no version=N in trusted comment '{tc}'")));
            }
            Some(tc)
        }
        None => None,
    };
    let label = if shown == "-" { "standard input" } else { &shown };
    Ok((manifest::parse(label, &data)?, comment))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn check(a: &Args, path: &str) -> Result<()> {
    let (m, comment) = load_manifest(a, path)?;
    if a.print_version {
        let v = comment.as_deref().and_then(crate::rollout::version).unwrap_or(0);
        let mut out = std::io::stdout().lock();
        return out.write_all(format!("{v}\n").as_bytes()).and_then(|_| out.flush()).ctx("standard output");
    }
    let dir = osarg::path(a.dir.as_deref().unwrap_or("."));
    let (mut unread, mut mismatched) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for e in &m.entries {
        let shown = String::from_utf8_lossy(&e.name).into_owned();
        let file: PathBuf = dir.join(Path::new(OsStr::from_bytes(&e.name)));
        let res = File::open(&file).and_then(|f| digest(&f, &shown, false, a.progress()));
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


fn out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).ctx("standard output")
}

fn verity_format(path: &Path, salt: Option<&str>, uuid: Option<&str>) -> Result<()> {
    let salt = match salt {
        Some("-") => Vec::new(),
        Some(h) => match verity::parse_hex(h) {
            Some(s) if s.len() <= verity::MAX_SALT => s,
            _ => return Err(usage(&format!("--salt '{h}': expected up to 256 bytes of hex, or -"))),
        },
        None => veritytool::random_salt()?,
    };
    let uuid = match uuid {
        Some(u) => verity::parse_uuid(u).ok_or_else(|| usage(&format!("--uuid '{u}': expected 8-4-4-4-12 hex digits")))?,
        None => veritytool::random_uuid()?,
    };
    let root = veritytool::format(path, &salt, uuid, warn)?;
    out(&format!("{root}\n"))
}

fn verity_verify(image: &Path, roothash: Option<&str>, roothash_file: Option<&Path>) -> Result<()> {
    let root = match roothash {
        Some(h) => verity::parse_hex(h).ok_or_else(|| usage(&format!("--roothash '{h}': not hex")))?,
        None => veritytool::read_roothash(image, roothash_file)?,
    };
    let blocks = veritytool::verify(image, &root)?;
    out(&format!("{}: OK ({blocks} blocks)\n", image.display()))
}
