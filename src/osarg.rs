//! Command-line arguments that are not UTF-8 (a file name in Latin-1 on a FAT stick, say) pass
//! through the applets' `String` arguments without loss: `main` turns each argument into a
//! `String` with [`encode`], which maps every byte that is not part of valid UTF-8 to one
//! private-use character, and an applet turns a path argument back into the exact bytes with
//! [`path`] before it reaches a system call. argh only parses `&str`, hence the round trip.
//!
//! The escape characters are U+10FF00..=U+10FFFF (plane 16 private use). A valid UTF-8 argument
//! that itself contains one of them has that character's bytes escaped too, so decoding is
//! exact for every input.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

const BASE: u32 = 0x10FF00;

fn escaped(b: u8) -> char {
    // BASE + 0xFF is U+10FFFF, the last valid scalar value: never fails.
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// An argument as the applets see it (plain text when it is plain UTF-8).
pub fn encode(arg: &OsStr) -> String {
    let mut out = String::new();
    for chunk in arg.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if (BASE..=BASE + 0xFF).contains(&u32::from(c)) {
                let mut buf = [0; 4];
                c.encode_utf8(&mut buf).bytes().for_each(|b| out.push(escaped(b)));
            } else {
                out.push(c);
            }
        }
        chunk.invalid().iter().for_each(|&b| out.push(escaped(b)));
    }
    out
}

/// The original bytes of an argument made by [`encode`].
pub fn decode(arg: &str) -> OsString {
    let mut out = Vec::with_capacity(arg.len());
    for c in arg.chars() {
        match u32::from(c).checked_sub(BASE) {
            Some(b) if b <= 0xFF => out.push(b as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    OsString::from_vec(out)
}

/// A path argument, exactly as it was given.
pub fn path(arg: &str) -> PathBuf {
    PathBuf::from(decode(arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases: [&[u8]; 7] = [
            b"plain/path",
            b"caf\xc3\xa9",
            b"latin1 caf\xe9",
            b"\xff\xfe\x00?",
            "pua \u{10FF41}\u{10FFFF} x".as_bytes(),
            b"\xf4\x8f\xbc",
            b"",
        ];
        for c in cases {
            let e = encode(OsStr::from_bytes(c));
            assert_eq!(decode(&e).as_bytes(), c, "{c:?} -> {e:?}");
        }
        assert_eq!(encode(OsStr::new("/dev/vda1")), "/dev/vda1");
    }

    #[test]
    fn ascii_options_stay_ascii() {
        // argh sees exactly the option words: only non-UTF-8 bytes are escaped.
        let e = encode(OsStr::from_bytes(b"--to=\xe9t\xe9"));
        assert!(e.starts_with("--to="));
        assert_eq!(path(&e).as_os_str().as_bytes(), b"--to=\xe9t\xe9");
    }
}
