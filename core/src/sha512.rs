//! SHA-512 (FIPS 180-4), written small. Its one user is the recovery password's SHA-512 crypt
//! (src/password.rs): a few thousand blocks at a console prompt. The sha2 crate's SHA-512, built
//! at the opt-level 3 its SHA-256 needs for imgcheck, is unrolled and has an AVX2 variant besides:
//! about 20 KiB of the binary in the initramfs, against about 1 KiB here. The test holds it to
//! FIPS 180-4's examples and to the sha2 crate on every length up to three blocks.

/// The round constants (FIPS 180-4 4.2.3).
const K: [u64; 80] = [
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc, 0x3956c25bf348b538,
    0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118, 0xd807aa98a3030242, 0x12835b0145706fbe,
    0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2, 0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235,
    0xc19bf174cf692694, 0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5, 0x983e5152ee66dfab,
    0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4, 0xc6e00bf33da88fc2, 0xd5a79147930aa725,
    0x06ca6351e003826f, 0x142929670a0e6e70, 0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df, 0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30, 0xd192e819d6ef5218,
    0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8, 0x19a4c116b8d2d0c8, 0x1e376c085141ab53,
    0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8, 0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3, 0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b, 0xca273eceea26619c,
    0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178, 0x06f067aa72176fba, 0x0a637dc5a2c898a6,
    0x113f9804bef90dae, 0x1b710b35131c471b, 0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c, 0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
];

/// The initial hash value (FIPS 180-4 5.3.5).
const H0: [u64; 8] = [
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1, 0x510e527fade682d1,
    0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
];

/// A SHA-512 in progress: `update` any number of times, then `finalize`.
#[derive(Clone)]
pub struct Sha512 {
    h: [u64; 8],
    block: [u8; 128],
    /// Bytes of `block` filled, below 128 between calls.
    used: usize,
    /// Bytes hashed in all.
    len: u128,
}

impl Default for Sha512 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha512 {
    pub fn new() -> Sha512 {
        Sha512 { h: H0, block: [0; 128], used: 0, len: 0 }
    }

    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        let mut data = data.as_ref();
        self.len = self.len.wrapping_add(data.len() as u128);
        while !data.is_empty() {
            // used < 128: a block is compressed as soon as it is full.
            let free = &mut self.block[self.used..];
            let (now, rest) = data.split_at(free.len().min(data.len()));
            free[..now.len()].copy_from_slice(now);
            data = rest;
            self.used += now.len();
            if self.used == self.block.len() {
                compress(&mut self.h, &self.block);
                self.used = 0;
            }
        }
    }

    pub fn chain_update(mut self, data: impl AsRef<[u8]>) -> Sha512 {
        self.update(data);
        self
    }

    /// The digest: a 1 bit, zeros up to 16 bytes before a block's end, the length in bits.
    pub fn finalize(mut self) -> [u8; 64] {
        let bits = self.len.wrapping_mul(8);
        self.update([0x80]);
        let pad = (self.block.len() + 112 - self.used) % self.block.len();
        self.update(&[0u8; 128][..pad]);
        self.update(bits.to_be_bytes());
        let mut out = [0u8; 64];
        for (o, x) in out.chunks_exact_mut(8).zip(self.h) {
            o.copy_from_slice(&x.to_be_bytes());
        }
        out
    }
}

/// One 128-byte block into the state (FIPS 180-4 6.4.2).
fn compress(h: &mut [u64; 8], block: &[u8; 128]) {
    let mut w = [0u64; 80];
    for (wi, c) in w.iter_mut().zip(block.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        *wi = u64::from_be_bytes(b);
    }
    for i in 16..80 {
        let (x, y) = (w[i - 15], w[i - 2]);
        let s0 = x.rotate_right(1) ^ x.rotate_right(8) ^ (x >> 7);
        let s1 = y.rotate_right(19) ^ y.rotate_right(61) ^ (y >> 6);
        w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
    }
    let mut v = *h;
    for (k, wi) in K.iter().zip(w) {
        let [a, b, c, d, e, f, g, hh] = v;
        let s1 = e.rotate_right(14) ^ e.rotate_right(18) ^ e.rotate_right(41);
        let ch = (e & f) ^ (!e & g);
        let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(wi);
        let s0 = a.rotate_right(28) ^ a.rotate_right(34) ^ a.rotate_right(39);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        v = [t1.wrapping_add(s0).wrapping_add(maj), a, b, c, d.wrapping_add(t1), e, f, g];
    }
    for (x, y) in h.iter_mut().zip(v) {
        *x = x.wrapping_add(y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_180_examples() {
        let abc = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        assert_eq!(hex(&Sha512::new().chain_update(b"abc").finalize()), abc);
        let two = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
        assert_eq!(hex(&Sha512::new().chain_update(two).finalize()), "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
        assert_eq!(hex(&Sha512::new().finalize()), "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
        let mut m = Sha512::new();
        for _ in 0..1000 {
            m.update([b'a'; 1000]);
        }
        assert_eq!(hex(&m.finalize()), "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
    }

    /// Every length up to three blocks, fed whole and in uneven pieces, against the sha2 crate.
    #[test]
    fn as_the_sha2_crate() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 131 + 7) as u8).collect();
        for n in 0..=data.len() {
            let want = sha2::Sha512::digest(&data[..n]);
            assert_eq!(Sha512::new().chain_update(&data[..n]).finalize()[..], want[..], "{n}");
            let mut s = Sha512::new();
            for piece in data[..n].chunks(n % 37 + 1) {
                s.update(piece);
            }
            assert_eq!(s.finalize()[..], want[..], "{n} in pieces");
        }
    }
}
