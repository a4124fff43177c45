//! `SHA256SUMS` manifests (the `sha256sum` format) parsed strictly, and their minisign signatures.
//!
//! Reusable by every applet that trusts an image: read the manifest with [`read`], check its
//! signature with [`verify_signature`] over the exact bytes read, then [`parse`] them.
//!
//! Accepted, like `sha256sum -c`: `HEX  NAME` and `HEX *NAME` lines, upper- or lowercase hex, a
//! leading `\` that marks an escaped name (`\\`, `\n`, `\r`), CRLF line ends, empty lines and
//! `#` comments. Rejected, with the line number, where `sha256sum` would warn and carry on: lines
//! over 4 KiB, NUL bytes, digests that are not 64 hex digits, the single-space (BSD reversed)
//! form, names that are empty, contain `/`, or are `.`/`..`, bad escapes and duplicate names.
//! Names are flat so a manifest can never point outside the directory it is checked in.
//! Every rejection is a verification failure (exit 3).

use crate::digest::parse_sha256;
use crate::error::{Context, Error, Result};
use minisign_verify::{PublicKey, Signature};
use std::io::Read;

/// The names a release's files go by, in its directory, on the server and on the medium.
pub const SUMS: &str = "SHA256SUMS";
/// A signature is named after what it signs plus this.
pub const SIG_SUFFIX: &str = ".minisig";
/// [`SUMS`] + [`SIG_SUFFIX`].
pub const SIG: &str = "SHA256SUMS.minisig";
/// The dm-verity sidecars of IMAGE: IMAGE + these (hash tree, root hash in hex).
pub const VERITY: &str = ".verity";
pub const ROOTHASH: &str = ".roothash";
/// A release's own kernel and initramfs (`make release`), listed beside its image: both or neither.
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";
/// A release's signed unified kernel image (`make release SB_KEY=`: its kernel, initramfs and
/// command line in one PE file the firmware checks under Secure Boot), listed with the two above.
pub const UKI: &str = "liveroot.efi";

/// A manifest lists a handful of images; anything bigger is not one of ours.
pub const MAX_SIZE: u64 = 1 << 20;
pub const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Raw bytes (names need not be UTF-8), unescaped, relative to the checking directory.
    pub name: Vec<u8>,
    pub sha256: [u8; 32],
    /// 1-based line number in the manifest.
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Read a manifest (or `-` for stdin), refusing more than [`MAX_SIZE`] bytes.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let shown = path.display().to_string();
    let src: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).ctx(&shown)?)
    };
    src.take(MAX_SIZE + 1).read_to_end(&mut data).ctx(&shown)?;
    if data.len() as u64 > MAX_SIZE {
        return Err(Error::verify(shown, "manifest is larger than 1 MiB"));
    }
    Ok(data)
}

/// Parse manifest `text`; `label` (its path) names it in errors as `label:LINE: reason`.
pub fn parse(label: &str, text: &[u8]) -> Result<Manifest> {
    if text.len() as u64 > MAX_SIZE {
        return Err(Error::verify(label, "manifest is larger than 1 MiB"));
    }
    let mut m = Manifest::default();
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if body.is_empty() && text.is_empty() {
        return Err(Error::verify(label, "no checksum lines"));
    }
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let bad = |reason: &str| Error::verify(format!("{label}:{n}"), reason);
        if raw.len() > MAX_LINE {
            return Err(bad("line is longer than 4096 bytes"));
        }
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(|b| *b == b' ' || *b == b'\t') || line[0] == b'#' {
            continue;
        }
        if line.contains(&0) {
            return Err(bad("NUL byte in line"));
        }
        let (escaped, line) = match line.strip_prefix(b"\\") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some(sp) = line.iter().position(|b| *b == b' ' || *b == b'\t') else {
            return Err(bad("expected 'SHA256  NAME'"));
        };
        let sha256 = parse_sha256(&line[..sp]).ok_or_else(|| bad("digest is not 64 hex digits"))?;
        let name = match &line[sp..] {
            [b' ', b' ' | b'*', name @ ..] => name,
            _ => return Err(bad("expected two spaces or ' *' between digest and name")),
        };
        let name = if escaped { unescape(name).ok_or_else(|| bad("bad escape in name"))? } else { name.to_vec() };
        if name.is_empty() {
            return Err(bad("missing name"));
        }
        if name.contains(&b'/') {
            return Err(bad("name contains '/'"));
        }
        if name == b"." || name == b".." {
            return Err(bad("name is '.' or '..'"));
        }
        if let Some(first) = m.get(&name) {
            let reason = format!("duplicate name '{}' (first on line {})", String::from_utf8_lossy(&name), first.line);
            return Err(bad(&reason));
        }
        m.entries.push(Entry { name, sha256, line: n });
    }
    if m.entries.is_empty() {
        return Err(Error::verify(label, "no checksum lines"));
    }
    Ok(m)
}

/// Undo sha256sum's name escaping; `None` for an escape it never writes.
fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match it.next()? {
            b'\\' => b'\\',
            b'n' => b'\n',
            b'r' => b'\r',
            _ => return None,
        });
    }
    Some(out)
}

/// A name as sha256sum writes it: `(true, escaped)` when it has `\`, newline or CR.
pub fn escape(name: &[u8]) -> (bool, Vec<u8>) {
    if !name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r')) {
        return (false, name.to_vec());
    }
    let mut out = Vec::with_capacity(name.len() + 4);
    for &b in name {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    (true, out)
}

/// A name for an error message, shell-quoted only when needed, as coreutils quotes it
/// (`'sp ace'`, `"it's"`, `'new'$'\n''line'`), so a hostile name cannot forge log lines.
pub fn quote_name(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    let ctrl = |c: char| (c as u32) < 0x20 || c == '\x7f';
    let special = |i: usize, c: char| {
        ctrl(c) || " !\"$&'()*;<=>[\\^`|:?".contains(c) || (i == 0 && (c == '#' || c == '~'))
    };
    if !s.is_empty() && s != "{" && s != "}" && !s.char_indices().any(|(i, c)| special(i, c)) {
        return s.into_owned();
    }
    if s.contains('\'') && !s.chars().any(|c| ctrl(c) || "$`\\\"!".contains(c)) {
        return format!("\"{s}\"");
    }
    // Printable runs in '...', a quote as \', control characters as $'\n' or $'\ooo'.
    let mut out = String::from("'");
    let (mut single, mut dollar) = (true, false);
    for c in s.chars() {
        if ctrl(c) {
            if single {
                out.push('\'');
                single = false;
            }
            if !dollar {
                out.push_str("$'");
                dollar = true;
            }
            match c {
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\x0b' => out.push_str("\\v"),
                '\x0c' => out.push_str("\\f"),
                '\r' => out.push_str("\\r"),
                _ => out.push_str(&format!("\\{:03o}", c as u32)),
            }
            continue;
        }
        if dollar {
            out.push('\'');
            dollar = false;
        }
        if c == '\'' {
            if single {
                out.push('\'');
                single = false;
            }
            out.push_str("\\'");
        } else {
            if !single {
                out.push('\'');
                single = true;
            }
            out.push(c);
        }
    }
    if single || dollar {
        out.push('\'');
    }
    out
}

/// A minisign public key given as its base64 line (as `minisign -P` takes it).
pub fn pubkey_from_base64(b64: &str) -> Result<PublicKey> {
    PublicKey::from_base64(b64.trim()).map_err(|_| Error::usage(format!("--pubkey: '{b64}' is not a minisign public key")))
}

/// A minisign public key file (`minisign.pub`: comment line + base64 line, or the base64 alone).
pub fn pubkey_from_file(path: &std::path::Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path).ctx(path.display())?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let b64 = match lines.as_slice() {
        [key] => Some(*key),
        [comment, key] if comment.starts_with("untrusted comment:") => Some(*key),
        _ => None,
    };
    b64.and_then(|k| PublicKey::from_base64(k).ok()).ok_or_else(|| Error::new(path.display().to_string(), "not a minisign public key"))
}

/// Check the minisign signature `sig` (text of `sig_label`) over `data`; return the signed
/// ("trusted") comment. Prehashed signatures (minisign's default) and legacy ones (`minisign -l`)
/// are both accepted, as `minisign -V` does. Any mismatch — other key, changed data, changed
/// signature or trusted comment — is a verification failure naming `sig_label`.
pub fn verify_signature(data: &[u8], sig: &[u8], sig_label: &str, key: &PublicKey) -> Result<String> {
    let text = std::str::from_utf8(sig).map_err(|_| Error::verify(sig_label, "not a minisign signature"))?;
    let sig = Signature::decode(text).map_err(|e| {
        Error::verify(
            sig_label,
            match e {
                minisign_verify::Error::UnsupportedAlgorithm => "unsupported signature algorithm",
                _ => "not a minisign signature",
            },
        )
    })?;
    key.verify(data, &sig, true).map_err(|e| {
        Error::verify(
            sig_label,
            match e {
                minisign_verify::Error::UnexpectedKeyId => "signature verification failed: made with a different key",
                _ => "signature verification failed",
            },
        )
    })?;
    Ok(sig.trusted_comment().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn err(text: &str) -> String {
        parse("SUMS", text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn accepts_what_sha256sum_writes() {
        let text = format!("{H}  a.img\n\n# comment\n{}  B\r\n{H} *bin\n\\{H}  x\\\\y\\nz\n", H.to_uppercase());
        let m = parse("SUMS", text.as_bytes()).unwrap();
        let names: Vec<&[u8]> = m.entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"a.img"[..], b"B", b"bin", b"x\\y\nz"]);
        assert_eq!(m.entries[3].line, 6);
        assert_eq!(m.entries[0].sha256, parse_sha256(H.as_bytes()).unwrap());
        assert!(m.get(b"bin").is_some());
        // A backslash in an unescaped line is literal, as in sha256sum.
        assert_eq!(parse("S", format!("{H}  a\\b").as_bytes()).unwrap().entries[0].name, b"a\\b");
    }

    #[test]
    fn rejects_each_rule_with_its_line() {
        assert_eq!(err(&format!("{H}  ok\n{H}  dir/x\n")), "SUMS:2: name contains '/'");
        assert_eq!(err(&format!("{H}  /etc/passwd\n")), "SUMS:1: name contains '/'");
        assert_eq!(err(&format!("\n{H}  ..\n")), "SUMS:2: name is '.' or '..'");
        assert_eq!(err(&format!("{H}  .\n")), "SUMS:1: name is '.' or '..'");
        assert_eq!(err(&format!("{}  x\n", &H[1..])), "SUMS:1: digest is not 64 hex digits");
        assert_eq!(err(&format!("{}g  x\n", &H[1..])), "SUMS:1: digest is not 64 hex digits");
        assert_eq!(err(&format!("{H}0  x\n")), "SUMS:1: digest is not 64 hex digits");
        assert_eq!(err(&format!("{H}  a\n{H}  b\n{H}  a\n")), "SUMS:3: duplicate name 'a' (first on line 1)");
        assert_eq!(err(&format!("{H}  {}\n", "n".repeat(MAX_LINE))), "SUMS:1: line is longer than 4096 bytes");
        assert_eq!(err(&format!("{H} x\n")), "SUMS:1: expected two spaces or ' *' between digest and name");
        assert_eq!(err(&format!("{H}  \n")), "SUMS:1: missing name");
        assert_eq!(err(&format!("{H}\n")), "SUMS:1: expected 'SHA256  NAME'");
        assert_eq!(err(&format!("\\{H}  a\\q\n")), "SUMS:1: bad escape in name");
        assert_eq!(err(&format!("{H}  a\0b\n")), "SUMS:1: NUL byte in line");
        assert_eq!(err("SHA256 (x) = 00\n"), "SUMS:1: digest is not 64 hex digits");
        assert_eq!(err(""), "SUMS: no checksum lines");
        assert_eq!(err("\n# only a comment\n"), "SUMS: no checksum lines");
        let big = vec![b'\n'; MAX_SIZE as usize + 1];
        assert_eq!(parse("SUMS", &big).unwrap_err().to_string(), "SUMS: manifest is larger than 1 MiB");
        assert_eq!(parse("SUMS", b"x").unwrap_err().exit_code(), 3);
    }

    #[test]
    fn line_of_exactly_the_limit_is_fine() {
        let name = "n".repeat(MAX_LINE - 66);
        assert!(parse("S", format!("{H}  {name}").as_bytes()).is_ok());
    }

    #[test]
    fn escape_round_trips() {
        assert_eq!(escape(b"plain name"), (false, b"plain name".to_vec()));
        let (esc, e) = escape(b"a\\b\nc\rd");
        assert!(esc);
        assert_eq!(e, b"a\\\\b\\nc\\rd");
        assert_eq!(unescape(&e).unwrap(), b"a\\b\nc\rd");
        assert_eq!(unescape(b"trailing\\"), None);
    }

    #[test]
    fn names_quoted_like_coreutils() {
        // Expected strings are what `sha256sum -- NAME` (coreutils 9.1) prints for a missing NAME.
        let cases: &[(&[u8], &str)] = &[
            (b"plain.img", "plain.img"),
            (b"a,b+c@d%e]f{g}h~i#j", "a,b+c@d%e]f{g}h~i#j"),
            (b"sp ace", "'sp ace'"),
            (b"a=b", "'a=b'"),
            (b"a:b", "'a:b'"),
            (b"#a", "'#a'"),
            (b"~a", "'~a'"),
            (b"{", "'{'"),
            (b"it's", "\"it's\""),
            (b"it's $x", "'it'\\''s $x'"),
            (b"a'b!", "'a'\\''b!'"),
            (b"a\\b", "'a\\b'"),
            (b"new\nline", "'new'$'\\n''line'"),
            (b"a\n\nb", "'a'$'\\n\\n''b'"),
            (b"\tb", "''$'\\t''b'"),
            (b"x\x01y", "'x'$'\\001''y'"),
            (b"a\x7fb", "'a'$'\\177''b'"),
            (b"", "''"),
        ];
        for (name, want) in cases {
            assert_eq!(quote_name(name), *want, "{:?}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn names() {
        assert_eq!(SIG, format!("{SUMS}{SIG_SUFFIX}"));
    }

    #[test]
    fn versions() {
        assert_eq!(crate::rollout::version("version=3"), Some(3));
        assert_eq!(crate::rollout::version("timestamp:1\tversion=12 file:x"), Some(12));
        assert_eq!(crate::rollout::version("version=x"), None);
        assert_eq!(crate::rollout::version("version=-1"), None);
        assert_eq!(crate::rollout::version("nothing"), None);
    }

    // Fixtures made once with the real minisign 0.11 (see tests/fixtures/README).
    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}{name}")).unwrap()
    }

    #[test]
    fn minisign_vectors() {
        let key = pubkey_from_file(format!("{FIX}minisign.pub").as_ref()).unwrap();
        let data = fixture("SHA256SUMS");
        for sig in ["SHA256SUMS.minisig", "SHA256SUMS.legacy.minisig"] {
            let tc = verify_signature(&data, &fixture(sig), sig, &key).unwrap();
            assert_eq!(crate::rollout::version(&tc), Some(3), "{sig}: {tc}");
        }
        assert!(parse("SHA256SUMS", &data).is_ok());

        // The same key as a bare base64 line.
        let b64 = String::from_utf8(fixture("minisign.pub")).unwrap();
        let k2 = pubkey_from_base64(b64.lines().nth(1).unwrap()).unwrap();
        assert_eq!(k2, key);
        assert_eq!(pubkey_from_base64("nope").unwrap_err().exit_code(), 2);

        let sig = fixture("SHA256SUMS.minisig");
        let fail = |data: &[u8], sig: &[u8], key: &PublicKey| verify_signature(data, sig, "S.minisig", key).unwrap_err();

        // Tampered manifest: one digit changed.
        let mut d2 = data.clone();
        d2[0] = if d2[0] == b'0' { b'1' } else { b'0' };
        let e = fail(&d2, &sig, &key);
        assert_eq!((e.to_string().as_str(), e.exit_code()), ("S.minisig: signature verification failed", 3));

        // Trusted comment edited to claim a newer version.
        let edited = String::from_utf8(sig.clone()).unwrap().replace("version=3", "version=9");
        assert_ne!(edited.as_bytes(), sig.as_slice());
        assert_eq!(fail(&data, edited.as_bytes(), &key).to_string(), "S.minisig: signature verification failed");

        // Signature bytes changed (last base64 char of the signature line, kept decodable).
        let text = String::from_utf8(sig.clone()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let l = &mut lines[1];
        let c = l.pop().unwrap();
        l.push(if c == 'A' { 'B' } else { 'A' });
        let tampered = lines.join("\n") + "\n";
        assert_eq!(fail(&data, tampered.as_bytes(), &key).exit_code(), 3);

        // A different key.
        let other = pubkey_from_file(format!("{FIX}other.pub").as_ref()).unwrap();
        assert_eq!(
            fail(&data, &sig, &other).to_string(),
            "S.minisig: signature verification failed: made with a different key"
        );

        // Not a signature at all.
        assert_eq!(fail(&data, b"hello\n", &key).to_string(), "S.minisig: not a minisign signature");
    }
}
