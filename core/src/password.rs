//! The recovery password: SHA-512 crypt hashes (`$6$[rounds=N$]salt$hash`, what `openssl passwd
//! -6` and `mkpasswd -m sha-512` print), checked as Ulrich Drepper's "Unix crypt using SHA-256 and
//! SHA-512" specification describes them. Written from that text; the vectors below are the
//! specification's own and ones made with `openssl passwd -6`.
//!
//! Bounds: the specification allows up to 999,999,999 rounds, about a quarter of an hour of
//! hashing on a fast machine; a boot console must answer within seconds, so a hash of more than
//! [`MAX_ROUNDS`] rounds is refused when it is read (at `make flash`/`make release`, and at boot),
//! never run. Below 1000 the specification raises the count to 1000, as here. The password is
//! at most [`MAX_PASSWORD`] bytes (its own square is hashed once). Nothing here panics: every
//! index is checked, every count bounded.

use crate::sha512::Sha512;

/// The most rounds a hash may ask for. The default (5000) takes about 5 ms; the largest,
/// 1,000,000, about 0.7 s on this project's test machine (release build; the SHA-512 is the small
/// one of src/sha512.rs), so a few seconds on a slow box. passlib's default (656,000) fits.
pub const MAX_ROUNDS: u64 = 1_000_000;
/// The specification's floor: fewer rounds count as this many.
pub const MIN_ROUNDS: u64 = 1000;
/// The rounds when the hash names none.
pub const DEFAULT_ROUNDS: u64 = 5000;
/// The longest password checked (bytes).
pub const MAX_PASSWORD: usize = 1024;
/// The salt's bytes beyond this many are not used (the specification's limit).
const SALT_MAX: usize = 16;
/// The encoded hash: 64 bytes in 86 characters.
const HASH_LEN: usize = 86;
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A parsed `$6$` hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash {
    /// Effective rounds (at least [`MIN_ROUNDS`], at most [`MAX_ROUNDS`]).
    pub rounds: u64,
    /// Whether the text named its rounds (`rounds=N$`): the output says them again.
    pub explicit_rounds: bool,
    /// At most 16 bytes.
    pub salt: Vec<u8>,
    /// The 86 characters of the hash.
    pub hash: [u8; HASH_LEN],
}

impl Hash {
    /// Parse `$6$[rounds=N$]salt$hash`; trailing white space (a newline from `echo`) is ignored.
    /// The error is the reason, for `object: reason`.
    pub fn parse(text: &str) -> Result<Hash, String> {
        let t = text.trim_end();
        let rest = t.strip_prefix("$6$").ok_or("not a SHA-512 crypt hash (expected $6$..., as openssl passwd -6 prints)")?;
        let (rounds, explicit_rounds, rest) = match rest.strip_prefix("rounds=") {
            None => (DEFAULT_ROUNDS, false, rest),
            Some(r) => {
                let (n, after) = r.split_once('$').ok_or("rounds=N is not followed by $")?;
                if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("rounds={n}: expected a number"));
                }
                let n: u64 = n.parse().map_err(|_| format!("rounds={n}: expected a number"))?;
                if n > MAX_ROUNDS {
                    return Err(format!("rounds={n}: more than {MAX_ROUNDS} (the check must end in seconds at the console)"));
                }
                (n.max(MIN_ROUNDS), true, after)
            }
        };
        let (salt, hash) = rest.rsplit_once('$').ok_or("no hash after the salt (expected $6$salt$hash)")?;
        if salt.contains('$') {
            return Err("a $ in the salt".into());
        }
        if let Some(b) = salt.bytes().find(|b| !b.is_ascii_graphic()) {
            return Err(format!("the salt holds byte {b:#04x} (expected printable characters)"));
        }
        if hash.len() != HASH_LEN || !hash.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(format!("the hash is not {HASH_LEN} characters of ./0-9A-Za-z"));
        }
        let mut h = [0u8; HASH_LEN];
        h.copy_from_slice(hash.as_bytes());
        let salt = salt.as_bytes();
        Ok(Hash { rounds, explicit_rounds, salt: salt.get(..SALT_MAX).unwrap_or(salt).to_vec(), hash: h })
    }

    /// Whether `password` hashes to this, compared in constant time (every byte looked at, no
    /// early exit). A password longer than [`MAX_PASSWORD`] is hashed no further and fails.
    pub fn verify(&self, password: &[u8]) -> bool {
        if password.len() > MAX_PASSWORD {
            return false;
        }
        let got = encode(&sha512_crypt(password, &self.salt, self.rounds));
        let mut diff = 0u8;
        for (a, b) in got.iter().zip(self.hash.iter()) {
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }
}

/// `$6$[rounds=N$]salt$hash` for `password`, as crypt(3) prints it. `rounds` is clamped to
/// [`MIN_ROUNDS`]..=[`MAX_ROUNDS`]; the salt is cut to 16 bytes.
pub fn crypt(password: &[u8], salt: &[u8], rounds: Option<u64>) -> String {
    let salt = salt.get(..SALT_MAX).unwrap_or(salt);
    let r = rounds.unwrap_or(DEFAULT_ROUNDS).clamp(MIN_ROUNDS, MAX_ROUNDS);
    let pw = password.get(..MAX_PASSWORD).unwrap_or(password);
    let h = encode(&sha512_crypt(pw, salt, r));
    let prefix = rounds.map_or(String::new(), |_| format!("rounds={r}$"));
    format!("$6${prefix}{}${}", String::from_utf8_lossy(salt), String::from_utf8_lossy(&h))
}

/// `len` bytes of `digest` repeated (steps 16 and 20 of the specification: the P and S
/// sequences).
fn repeat(digest: &[u8], len: usize) -> Vec<u8> {
    digest.iter().copied().cycle().take(len).collect()
}

/// The 64 bytes of the final digest, steps 1 to 21 of the specification.
fn sha512_crypt(p: &[u8], s: &[u8], rounds: u64) -> [u8; 64] {
    // Digest B: password, salt, password.
    let b = Sha512::new().chain_update(p).chain_update(s).chain_update(p).finalize();
    // Digest A: password, salt, then B for each whole 64 bytes of the password's length and
    // the first (length mod 64) bytes of B, then B or the password for each bit of the length.
    let mut a = Sha512::new().chain_update(p).chain_update(s);
    let mut n = p.len();
    while n > 64 {
        a.update(b);
        n -= 64;
    }
    a.update(b.get(..n).unwrap_or(&b));
    let mut bits = p.len();
    while bits > 0 {
        if bits & 1 == 1 {
            a.update(b);
        } else {
            a.update(p);
        }
        bits >>= 1;
    }
    let mut c = a.finalize();
    // DP: the password once per byte of its length; P: that digest cut to the length.
    let mut dp = Sha512::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let pseq = repeat(&dp.finalize(), p.len());
    // DS: the salt 16 + A[0] times; S: that digest cut to the salt's length.
    let mut ds = Sha512::new();
    for _ in 0..16 + usize::from(c[0]) {
        ds.update(s);
    }
    let sseq = repeat(&ds.finalize(), s.len());
    // The rounds.
    for i in 0..rounds {
        let mut h = Sha512::new();
        if i & 1 == 1 {
            h.update(&pseq);
        } else {
            h.update(c);
        }
        if i % 3 != 0 {
            h.update(&sseq);
        }
        if i % 7 != 0 {
            h.update(&pseq);
        }
        if i & 1 == 1 {
            h.update(c);
        } else {
            h.update(&pseq);
        }
        c = h.finalize();
    }
    c
}

/// The specification's encoding: the bytes taken three at a time in its fixed order, each
/// group written as four characters, low 6 bits first; the last byte alone as two.
fn encode(d: &[u8; 64]) -> [u8; HASH_LEN] {
    const ORDER: [(usize, usize, usize); 21] = [
        (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
        (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
        (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
    ];
    let mut out = [0u8; HASH_LEN];
    let mut k = 0;
    let mut put = |w: u32, n: usize| {
        let mut w = w;
        for _ in 0..n {
            if let Some(o) = out.get_mut(k) {
                *o = ALPHABET[(w & 0x3f) as usize];
            }
            k += 1;
            w >>= 6;
        }
    };
    for (x, y, z) in ORDER {
        put((u32::from(d[x]) << 16) | (u32::from(d[y]) << 8) | u32::from(d[z]), 4);
    }
    put(u32::from(d[63]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's SHA-512 vectors (salt, password, expected), typed in; the one with
    /// rounds=10 shows the floor of 1000.
    const SPEC: &[(&str, &str, &str)] = &[
        ("$6$saltstring", "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
        ("$6$rounds=10000$saltstringsaltstring", "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
        ("$6$rounds=5000$toolongsaltstring", "This is just a test", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"),
        ("$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"),
        ("$6$rounds=77777$short", "we have a short salt string but not a short password", "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"),
        ("$6$rounds=123456$asaltof16chars..", "a short string", "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"),
        ("$6$rounds=10$roundstoolow", "the minimum number is still observed", "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."),
    ];

    fn split_setting(s: &str) -> (Vec<u8>, Option<u64>) {
        let r = s.strip_prefix("$6$").unwrap();
        match r.strip_prefix("rounds=") {
            Some(x) => {
                let (n, salt) = x.split_once('$').unwrap();
                (salt.as_bytes().to_vec(), Some(n.parse().unwrap()))
            }
            None => (r.as_bytes().to_vec(), None),
        }
    }

    #[test]
    fn the_specification_s_vectors() {
        for (setting, pw, want) in SPEC {
            let (salt, rounds) = split_setting(setting);
            assert_eq!(crypt(pw.as_bytes(), &salt, rounds), *want, "{setting}");
            let h = Hash::parse(want).unwrap();
            assert!(h.verify(pw.as_bytes()), "{want}");
            assert!(!h.verify(format!("{pw}x").as_bytes()), "{want}");
        }
    }

    #[test]
    fn openssl_s_hashes() {
        // `openssl passwd -6 -salt SALT PASSWORD` on Debian 12 (OpenSSL 3.0); the empty password
        // by Python's crypt.crypt (libxcrypt): openssl takes an empty argument as none.
        let fixed = [
            ("hello", "$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/"),
            ("hello", "$6$rounds=2000$abc$BjdW5R0NP9fAZAFlFqXrEpllwtM50YkZmk7oKsPrMdCJkXlJm4V8SAdiyjiqKEFw6wYk6Nu6kDKM2wR0UTs9s0"),
            ("", "$6$x$QSmr1Bx2g4O6BzKvdkgOcyU6H91X6I/XBv5pSalMhSPkwdH6Beo3F455xZJg0v//bxVK5F4OE5k1.0xuR26MK0"),
        ];
        for (pw, h) in fixed {
            assert!(Hash::parse(h).unwrap().verify(pw.as_bytes()), "{h}");
            assert!(!Hash::parse(h).unwrap().verify(b"hellO"), "{h}");
        }
        // And made now, when openssl is here: passwords of every length class (0, < 64, 64,
        // > 64, > 128 bytes: the loops of digest A), salts short and long.
        let have = std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !have {
            eprintln!("openssl missing: only the fixed vectors checked");
            return;
        }
        let long = "z".repeat(200);
        let pws = ["a", "correct horse battery staple", &"p".repeat(64), &"q".repeat(65), &long, "sp ace\u{e9}"];
        for (i, pw) in pws.iter().enumerate() {
            let salt = ["s", "saltsalt", "0123456789abcdef", "./AZaz09"][i % 4];
            let out = std::process::Command::new("openssl").args(["passwd", "-6", "-salt", salt, pw]).output().unwrap();
            assert!(out.status.success(), "openssl passwd -6 -salt {salt}");
            let h = String::from_utf8(out.stdout).unwrap();
            assert_eq!(crypt(pw.as_bytes(), salt.as_bytes(), None), h.trim_end(), "password {pw:?}");
            assert!(Hash::parse(&h).unwrap().verify(pw.as_bytes()));
        }
    }

    #[test]
    fn refusals() {
        let good = "$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/";
        assert!(Hash::parse(&format!("{good}\n")).is_ok(), "a trailing newline is fine");
        let h86 = &good[12..];
        for bad in [
            "",
            "hello",
            "$5$abc$xyz",
            "$1$abc$xyz",
            "$6$abcdefgh",
            "$6$abcdefgh$short",
            &format!("$6$abcdefgh${h86}x"),
            &format!("$6$abcdefgh${}!", &h86[..85]),
            &format!("$6$rounds=1000001$abc${h86}"),
            &format!("$6$rounds=99999999999999999999$abc${h86}"),
            &format!("$6$rounds=$abc${h86}"),
            &format!("$6$rounds=-5$abc${h86}"),
            &format!("$6$rounds=1000"),
            &format!("$6$a b${h86}"),
            &format!("$6$a$b${h86}"),
        ] {
            assert!(Hash::parse(bad).is_err(), "{bad:?} accepted");
        }
        let top = Hash::parse(&format!("$6$rounds=1000000$abc${h86}")).unwrap();
        assert_eq!(top.rounds, MAX_ROUNDS);
        assert_eq!(Hash::parse(&format!("$6$rounds=1$abc${h86}")).unwrap().rounds, MIN_ROUNDS);
        // Salt cut to 16, as crypt(3) does.
        assert_eq!(Hash::parse(&format!("$6$0123456789abcdefXYZ${h86}")).unwrap().salt, b"0123456789abcdef");
        // Too long a password is not hashed at all.
        let h = Hash::parse(good).unwrap();
        assert!(!h.verify(&vec![b'a'; MAX_PASSWORD + 1]));
    }
}
