//! imgcheck — sha256sum-compatible hashing and checking, with CRC-32 and minisign signatures.
//!
//! ```text
//! imgcheck [--crc32] [--progress|--no-progress] [FILE...]
//! imgcheck -c MANIFEST [--dir DIR] [--quiet] [--progress|--no-progress]
//!          [--pubkey KEY | --pubkey-file FILE] [--sig MANIFEST.minisig] [--print-version]
//! imgcheck --verity-format IMAGE [--salt HEX] [--uuid UUID]
//! imgcheck --verity-verify IMAGE [--roothash HEX | --roothash-file FILE]
//! imgcheck --make-index IMAGE
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
//! `--verity-format` writes the dm-verity sidecars `IMAGE.verity` (superblock + hash tree) and
//! `IMAGE.roothash` (hex, no newline) byte-identical to `veritysetup format IMAGE IMAGE.verity
//! --root-hash-file IMAGE.roothash` with the same salt and uuid (defaults: 32 random bytes, a
//! random uuid, as veritysetup); each file appears under its name only complete and fsynced.
//! `--verity-verify` checks tree and data against the root hash offline, like `veritysetup
//! verify`, naming the first block that does not match.
//!
//! Exit: 0 ok, 1 I/O failure, 2 usage, 3 verification failed (mismatch, missing listed file,
//! malformed manifest, bad signature, verity mismatch).

use crate::digest::{hash_file, hex, input_size, progress_wanted, Hasher};
use crate::error::{Context, Error, Result};
use crate::manifest;
use crate::osarg;
use crate::progress::Progress;
use std::ffi::{OsStr, OsString};
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
  --verity-format IMAGE
                      write IMAGE.verity (dm-verity superblock + hash tree) and
                      IMAGE.roothash, as 'veritysetup format' does (sha256, 4096-byte
                      blocks, hash format 1); prints the root hash
  --salt HEX          salt for --verity-format (default: 32 random bytes; - for none)
  --uuid UUID         uuid for --verity-format (default: random)
  --verity-verify IMAGE
                      check IMAGE and IMAGE.verity against the root hash, like
                      'veritysetup verify'
  --roothash HEX      the root hash for --verity-verify
  --roothash-file F   read it from F (default: IMAGE.roothash)
  --make-index IMAGE  write IMAGE.zidx, the block index imgfetch --seed uses to download
                      only what changed (list it in the signed SHA256SUMS)
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
    verity_format: Option<String>,
    verity_verify: Option<String>,
    salt: Option<String>,
    uuid: Option<String>,
    roothash: Option<String>,
    roothash_file: Option<String>,
    make_index: Option<String>,
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
            "--verity-format" => a.verity_format = Some(value(&arg)?),
            "--verity-verify" => a.verity_verify = Some(value(&arg)?),
            "--make-index" => a.make_index = Some(value(&arg)?),
            "--salt" => a.salt = Some(value(&arg)?),
            "--uuid" => a.uuid = Some(value(&arg)?),
            "--roothash" => a.roothash = Some(value(&arg)?),
            "--roothash-file" => a.roothash_file = Some(value(&arg)?),
            _ => return Err(usage(&format!("unrecognized option '{arg}'"))),
        }
    }
    let keyed = a.pubkey.is_some() || a.pubkey_file.is_some();
    if a.make_index.is_some() {
        let others = a.check.is_some() || !a.files.is_empty() || a.crc32 || keyed || a.sig.is_some() || a.print_version;
        if others || a.verity_format.is_some() || a.verity_verify.is_some() || a.salt.is_some() || a.uuid.is_some() || a.roothash.is_some() || a.roothash_file.is_some() {
            return Err(usage("--make-index takes one IMAGE and no other mode"));
        }
        return Ok(a);
    }
    let verity = a.verity_format.is_some() || a.verity_verify.is_some();
    if verity {
        let others = a.check.is_some() || !a.files.is_empty() || a.crc32 || keyed || a.sig.is_some() || a.print_version;
        if others || (a.verity_format.is_some() && a.verity_verify.is_some()) {
            return Err(usage("--verity-format and --verity-verify take one IMAGE and no other mode"));
        }
    }
    if a.verity_format.is_none() && (a.salt.is_some() || a.uuid.is_some()) {
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
    Ok(a)
}

pub fn run(argv: &[String]) -> Result<()> {
    let a = parse_args(argv)?;
    if let Some(img) = &a.make_index {
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
    if let Some(img) = &a.verity_format {
        return verity_format(&osarg::path(img), a.salt.as_deref(), a.uuid.as_deref());
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
        let res = open_input(name).and_then(|f| digest(&f, &label, a.crc32, a.progress));
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
                None => with_suffix(&path, ".minisig"),
            };
            let sig_shown = sig_path.display().to_string();
            let sig = std::fs::read(&sig_path).ctx(&sig_shown)?;
            let tc = manifest::verify_signature(&data, &sig, &sig_shown, &key)?;
            if a.print_version && manifest::version(&tc).is_none() {
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
        let v = comment.as_deref().and_then(manifest::version).unwrap_or(0);
        let mut out = std::io::stdout().lock();
        return out.write_all(format!("{v}\n").as_bytes()).and_then(|_| out.flush()).ctx("standard output");
    }
    let dir = osarg::path(a.dir.as_deref().unwrap_or("."));
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

/// Read until `buf` is full or the input ends; the count read.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Write `data` to `path` so that the name only ever holds the complete file: a temporary name
/// in the same directory, fsync, rename, fsync of the directory.
fn write_durably(p: &Path, data: &[u8]) -> Result<()> {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut base = OsString::from(".");
    base.push(p.file_name().unwrap_or_default());
    base.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(base);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)?;
        File::open(&dir)?.sync_all()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(p.display().to_string(), &e));
    }
    Ok(())
}

fn verity_format(path: &Path, salt: Option<&str>, uuid: Option<&str>) -> Result<()> {
    use crate::verity::{self, Superblock, TreeBuilder};
    let salt = match salt {
        Some("-") => Vec::new(),
        Some(h) => match verity::parse_hex(h) {
            Some(s) if s.len() <= verity::MAX_SALT => s,
            _ => return Err(usage(&format!("--salt '{h}': expected up to 256 bytes of hex, or -"))),
        },
        None => {
            let mut s = vec![0u8; verity::DEFAULT_SALT];
            crate::sys::random::fill(&mut s)?;
            s
        }
    };
    let uuid = match uuid {
        Some(u) => verity::parse_uuid(u).ok_or_else(|| usage(&format!("--uuid '{u}': expected 8-4-4-4-12 hex digits")))?,
        None => {
            let mut r = [0u8; 16];
            crate::sys::random::fill(&mut r)?;
            verity::uuid_from_random(r)
        }
    };
    let image = path.display().to_string();
    let image = image.as_str();
    let mut f = File::open(path).ctx(image)?;
    let size = input_size(&f).ok_or_else(|| Error::new(image, "not a regular file or block device"))?;
    let bs = u64::from(verity::DEFAULT_BLOCK);
    let blocks = size / bs;
    if blocks == 0 {
        return Err(Error::new(image, format!("{size} bytes: smaller than one {bs}-byte block")));
    }
    if size % bs != 0 {
        warn(&format!(
            "{image}: the last {} bytes are not a whole {bs}-byte block and are not covered by the tree \
             (as with veritysetup); dm-verity will refuse to map it: pad the image to {bs} bytes",
            size % bs
        ));
    }
    let mut b = TreeBuilder::new(&salt, verity::DEFAULT_BLOCK, verity::DEFAULT_BLOCK, blocks)?;
    {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        use std::os::fd::AsRawFd;
        let _ = posix_fadvise(f.as_raw_fd(), 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    }
    let mut buf = vec![0u8; VERITY_READ];
    loop {
        let want = usize::try_from(b.wanted()).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            break;
        }
        let n = read_full(&mut f, buf.get_mut(..want).unwrap_or_default()).ctx(image)?;
        if n == 0 {
            return Err(Error::new(image, "file shrank while it was hashed"));
        }
        b.update(buf.get(..n).unwrap_or_default());
    }
    let tree = b.finish()?;
    let sb = Superblock::new(blocks, &salt, uuid);
    let root = hex(&tree.root);
    // The tree first, the root hash last: a publisher that sees .roothash sees a complete pair.
    write_durably(&with_suffix(path, ".verity"), &verity::hash_file(&sb, &tree))?;
    write_durably(&with_suffix(path, ".roothash"), root.as_bytes())?;
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{root}\n").as_bytes()).and_then(|_| out.flush()).ctx("standard output")
}

/// Reads for --verity-format and --verity-verify: whole data blocks, large enough that the
/// syscalls vanish next to SHA-256.
const VERITY_READ: usize = 1 << 20;

/// `path` with `suffix` appended to its last component, bytes kept.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn verity_verify(ipath: &Path, roothash: Option<&str>, roothash_file: Option<&Path>) -> Result<()> {
    use crate::verity::{self, Mismatch, Verifier};
    use std::io::{Read, Seek, SeekFrom};
    let root = match (roothash, roothash_file) {
        (Some(h), _) => verity::parse_hex(h).ok_or_else(|| usage(&format!("--roothash '{h}': not hex")))?,
        (None, f) => {
            let file = f.map_or_else(|| with_suffix(ipath, ".roothash"), Path::to_path_buf);
            let path = file.display().to_string();
            let mut data = Vec::new();
            File::open(&file).ctx(&path)?.take(1025).read_to_end(&mut data).ctx(&path)?;
            crate::pairs::parse_roothash(&data).ok_or_else(|| Error::verify(&path, "not a root hash (one line of hex)"))?
        }
    };
    let hfile = with_suffix(ipath, ".verity");
    let hpath = hfile.display().to_string();
    let image = ipath.display().to_string();
    let image = image.as_str();
    let mut hf = File::open(&hfile).ctx(&hpath)?;
    let hash_size = input_size(&hf).ok_or_else(|| Error::new(&hpath, "not a regular file or block device"))?;
    let mut sbb = [0u8; verity::SB_SIZE];
    let n = read_full(&mut hf, &mut sbb).ctx(&hpath)?;
    let sb = verity::parse_superblock(sbb.get(..n).unwrap_or_default()).map_err(|e| Error::verify(&hpath, e.reason))?;
    let mut f = File::open(ipath).ctx(image)?;
    let size = input_size(&f).ok_or_else(|| Error::new(image, "not a regular file or block device"))?;
    let exact = f.metadata().map(|m| m.is_file()).unwrap_or(true);
    let p = verity::table_params(&hpath, &sb, size, exact, hash_size, &root)?;
    let start = p.hash_start.saturating_mul(u64::from(p.hash_block_size));
    let len = p.geometry.end.saturating_mul(u64::from(p.hash_block_size)).saturating_sub(start);
    let mut tree = vec![0u8; usize::try_from(len).map_err(|_| Error::new(&hpath, "hash tree too large for memory"))?];
    hf.seek(SeekFrom::Start(start)).ctx(&hpath)?;
    if read_full(&mut hf, &mut tree).ctx(&hpath)? != tree.len() {
        return Err(Error::verify(&hpath, "shorter than its hash tree"));
    }
    let dbs = u64::from(p.data_block_size);
    let explain = |m: Mismatch| match m {
        Mismatch::Root if p.geometry.levels.is_empty() => {
            Error::verify(image, "data block 0 does not match the root hash")
        }
        Mismatch::Root => Error::verify(&hpath, "hash tree does not match the root hash (wrong root hash, or a corrupt tree)"),
        Mismatch::HashBlock { level, index } => {
            Error::verify(&hpath, format!("hash block {index} (tree level {level}) does not match the level above"))
        }
        Mismatch::DataBlock(i) => Error::verify(
            image,
            format!("data block {i} (bytes {}-{}) does not match the hash tree", i * dbs, (i + 1) * dbs - 1),
        ),
    };
    let mut v = Verifier::new(&p, &tree).map_err(explain)?;
    let mut buf = vec![0u8; VERITY_READ];
    loop {
        let want = usize::try_from(v.wanted()).unwrap_or(usize::MAX).min(buf.len());
        if want == 0 {
            break;
        }
        let n = read_full(&mut f, buf.get_mut(..want).unwrap_or_default()).ctx(image)?;
        if n == 0 {
            return Err(Error::verify(image, "shorter than the tree says"));
        }
        v.update(buf.get(..n).unwrap_or_default()).map_err(explain)?;
    }
    let blocks = v.finish().map_err(|_| Error::verify(image, "shorter than the tree says"))?;
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{image}: OK ({blocks} blocks)\n").as_bytes()).and_then(|_| out.flush()).ctx("standard output")
}
