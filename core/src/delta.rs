//! Delta download: rebuild a new image from the bytes a box already has (its local images, the
//! "seeds") and fetch only the rest with HTTP Range requests.
//!
//! The publisher writes a block index `NAME.zidx` (`imgcheck --make-index NAME`) and lists it in
//! the signed `SHA256SUMS`, so the index is as trusted as the image digest. Format (little
//! endian): `LRZIDX1\n`, block size (u32, a power of two, 1 KiB to 64 KiB), zero (u32), image
//! size (u64), then per block a 3-byte weak sum and the first 3 bytes of the block's SHA-256
//! (the last block zero-padded). Exactly `24 + 6 × blocks` bytes: 0.15 % of the image, which
//! is downloaded too, so it is kept as small as the matching allows (zsync's `.zsync` is about
//! the same size). Short sums are safe because nothing rests on them alone: a wrong block they
//! let through makes the whole-file SHA-256 fail, and then the image is downloaded in full.
//!
//! Squashfs moves unchanged data to other offsets when anything before it changes size, so the
//! seeds are scanned at every byte offset (as zsync does): the weak sum rolls one byte at a time,
//! and a seed position is a candidate only when the weak sums of the window there AND of the
//! window one block further match two consecutive blocks of the index (48 bits together: almost
//! no false candidates, so almost no SHA-256 is spent on them). Two 128 KiB bitmaps of the weak
//! sums turn away nearly every position before the hash table of pairs is probed. A candidate is
//! confirmed by its strong hash. After a match the scan jumps a block and first tries the next
//! block of the index there (runs of matching blocks, and the last block of a run).
//!
//! Every fetched block is checked against its strong hash as it arrives (a mismatch is tampering
//! with a signed index: refused, exit 3), and the assembled file is hashed whole against the
//! signed SHA-256 before it gets its name. Any doubt (no index, no Range, a part that does not
//! parse, a whole that does not match) is said on stderr, and imgfetch downloads in full (which
//! is then checked against the same digest: a server that tampers gets refused either way).

use crate::digest::Hasher;
use crate::error::{Code, Context, Error, Result};
use crate::http;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const SUFFIX: &str = ".zidx";
const MAGIC: &[u8; 8] = b"LRZIDX1\n";
const HEAD: usize = 24;
const ENTRY: usize = 6;
pub const BLOCK: usize = 4096;
/// Blocks an index may list: 16 GiB of image at the 4 KiB blocks `imgcheck --make-index`
/// writes (the index is then 24 MiB, and about 80 MiB of RAM once parsed and tabled). The cap
/// is fixed, not taken from the size a server claims: a claim of 70 GB with an endless index
/// took imgfetch to 403 MB resident before the digest refused it.
pub const MAX_BLOCKS: u64 = 4 << 20;
/// The largest index read, in bytes.
pub const MAX_INDEX: u64 = HEAD as u64 + MAX_BLOCKS * ENTRY as u64;
/// The largest image an index covers at [`BLOCK`]-byte blocks, for messages.
pub const MAX_IMAGE: u64 = MAX_BLOCKS * BLOCK as u64;
/// Rolling hash multiplier (odd); the weak sum is the top half of the 64-bit polynomial hash.
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
/// Ranges per multi-range request: its `Range:` line stays under nginx's 8 KiB header buffers.
const MAX_RANGES: usize = 200;
/// Bytes asked per request.
const MAX_BATCH: u64 = 16 << 20;

pub struct Index {
    pub bs: usize,
    pub size: u64,
    weak: Vec<u32>,
    strong: Vec<[u8; 3]>,
}

fn strong(block: &[u8], bs: usize) -> [u8; 3] {
    let mut h = Hasher::new(false);
    h.update(block);
    if block.len() < bs {
        h.update(&vec![0u8; bs - block.len()]);
    }
    let d = h.finish().sha256;
    [d[0], d[1], d[2]]
}

/// The polynomial hash of a window (zero-padded to `bs`).
fn roll_init(w: &[u8], bs: usize) -> u64 {
    let mut h = 0u64;
    for &b in w {
        h = h.wrapping_mul(MUL).wrapping_add(b as u64);
    }
    for _ in w.len()..bs {
        h = h.wrapping_mul(MUL);
    }
    h
}

/// The top 24 bits of the polynomial hash (its best mixed).
fn weak(h: u64) -> u32 {
    (h >> 40) as u32
}

/// The index of the file at `path` (`imgcheck --make-index`).
pub fn make(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    let mut f = File::open(path).ctx(&name)?;
    let size = f.metadata().ctx(&name)?.len();
    let bs = BLOCK;
    // Clients refuse a bigger index (MAX_BLOCKS): better no index than one nobody can use.
    if size.div_ceil(bs as u64) > MAX_BLOCKS {
        return Err(Error::new(&name, format!("{size} bytes: too large for a block index (at most {} GiB)", MAX_IMAGE >> 30)));
    }
    let mut out = Vec::with_capacity(HEAD + (size / bs as u64) as usize * ENTRY + ENTRY);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(bs as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    let mut buf = vec![0u8; bs];
    let mut left = size;
    while left > 0 {
        let n = left.min(bs as u64) as usize;
        let b = buf.get_mut(..n).unwrap_or_default();
        f.read_exact(b).ctx(&name)?;
        out.extend_from_slice(weak(roll_init(b, bs)).to_le_bytes().get(..3).unwrap_or_default());
        out.extend_from_slice(&strong(b, bs));
        left -= n as u64;
    }
    Ok(out)
}

/// Parse an index strictly: magic, block size, size, and exactly one entry per block.
pub fn parse(data: &[u8]) -> std::result::Result<Index, String> {
    let head = data.get(..HEAD).ok_or("shorter than its header")?;
    if head.get(..8) != Some(&MAGIC[..]) {
        return Err("not a block index (bad magic)".into());
    }
    let u32_at = |i: usize| head.get(i..i + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).unwrap_or(u32::MAX);
    let bs = u32_at(8);
    if !bs.is_power_of_two() || !(1024..=65536).contains(&bs) || u32_at(12) != 0 {
        return Err(format!("bad block size {bs}"));
    }
    let size = head.get(16..24).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(u64::MAX);
    let blocks = size.div_ceil(bs as u64);
    if blocks > MAX_BLOCKS {
        return Err(format!("image size {size} too large ({blocks} blocks, at most {MAX_BLOCKS})"));
    }
    let want = blocks.checked_mul(ENTRY as u64).and_then(|n| n.checked_add(HEAD as u64));
    if want != Some(data.len() as u64) {
        return Err(format!("{} bytes for {blocks} blocks", data.len()));
    }
    let body = data.get(HEAD..).unwrap_or_default();
    let mut weak = Vec::with_capacity(blocks as usize);
    let mut strong = Vec::with_capacity(blocks as usize);
    for e in body.chunks_exact(ENTRY) {
        weak.push(u32::from_le_bytes([e[0], e[1], e[2], 0]));
        strong.push([e[3], e[4], e[5]]);
    }
    Ok(Index { bs: bs as usize, size, weak, strong })
}

/// What the seeds gave: which blocks are in NAME.part already.
pub struct Plan {
    pub have: Vec<bool>,
    pub reused: u64,
    /// Matched blocks found at a block-aligned seed offset (what a 4 KiB-aligned scheme reuses).
    pub aligned: u64,
}

fn bit(map: &[u64], w: u32) -> bool {
    let i = (w >> 4) as usize;
    map.get(i >> 6).is_some_and(|m| m >> (i & 63) & 1 == 1)
}

/// Scan every seed at every byte offset; write each block found into `out` at its place.
pub fn scan(idx: &Index, seeds: &[&Path], out: &File, out_name: &str) -> Result<Plan> {
    let bs = idx.bs;
    let n = idx.weak.len();
    let whole = (idx.size / bs as u64) as usize; // blocks that are not a short tail
    let mut plan = Plan { have: vec![false; n], reused: 0, aligned: 0 };
    // Pairs (weak[i], weak[i+1]) of whole blocks in an open-addressing table (block + 1, 0 for
    // empty), and the two bitmap prefilters in front of it.
    let pairs = whole.saturating_sub(1);
    let key_of = |i: usize| (idx.weak[i] as u64) << 24 | idx.weak[i + 1] as u64;
    let bits = (pairs.max(1) * 2).next_power_of_two().trailing_zeros();
    let mask = (1usize << bits) - 1;
    let slot = |k: u64| (k.wrapping_mul(MUL) >> (64 - bits)) as usize;
    let mut table = vec![0u32; mask + 1];
    let (mut m1, mut m2) = (vec![0u64; 1 << 14], vec![0u64; 1 << 14]);
    for i in 0..pairs {
        let mut s = slot(key_of(i));
        while table[s] != 0 {
            s = (s + 1) & mask;
        }
        table[s] = i as u32 + 1;
        let (x, y) = ((idx.weak[i] >> 4) as usize, (idx.weak[i + 1] >> 4) as usize);
        m1[x >> 6] |= 1 << (x & 63);
        m2[y >> 6] |= 1 << (y & 63);
    }
    let mut pow = 1u64; // MUL^bs, to take the leaving byte out
    for _ in 0..bs {
        pow = pow.wrapping_mul(MUL);
    }
    const CHUNK: usize = 8 << 20;
    let mut buf = vec![0u8; CHUNK + 2 * bs];
    for seed in seeds {
        let sname = seed.display().to_string();
        let mut f = match File::open(seed) {
            Ok(f) => f,
            Err(e) => {
                warn(&format!("{sname}: {}: not used as a seed", crate::error::io_reason(&e)));
                continue;
            }
        };
        let (mut len, mut base, mut eof) = (0usize, 0u64, false);
        let mut p = 0usize; // window 1 at buf[p..p+bs], window 2 at buf[p+bs..p+2bs]
        let (mut h1, mut h2) = (0u64, 0u64);
        let mut fresh = true; // hashes to be computed at p
        let mut next: Option<usize> = None; // the index block expected at p after a match
        loop {
            if p + 2 * bs > len && !eof {
                // Keep the unscanned tail, refill behind it.
                buf.copy_within(p..len, 0);
                base += p as u64;
                len -= p;
                p = 0;
                while len < buf.len() {
                    let r = f.read(&mut buf[len..]).ctx(&sname)?;
                    if r == 0 {
                        eof = true;
                        break;
                    }
                    len += r;
                }
            }
            if p + bs > len {
                break;
            }
            let two = p + 2 * bs <= len;
            if fresh {
                h1 = roll_init(&buf[p..p + bs], bs);
                if two {
                    h2 = roll_init(&buf[p + bs..p + 2 * bs], bs);
                }
                fresh = false;
            }
            let (w1, w2) = (weak(h1), weak(h2));
            let mut hit = None;
            if let Some(j) = next.take() {
                if j < whole && idx.weak[j] == w1 && !plan.have[j] && strong(&buf[p..p + bs], bs) == idx.strong[j] {
                    hit = Some(j);
                }
            }
            if hit.is_none() && two && bit(&m1, w1) && bit(&m2, w2) {
                let key = (w1 as u64) << 24 | w2 as u64;
                let mut s: Option<[u8; 3]> = None;
                let mut t = slot(key);
                while let Some(i) = table[t].checked_sub(1).map(|i| i as usize) {
                    t = (t + 1) & mask;
                    if key_of(i) != key || plan.have[i] {
                        continue;
                    }
                    let st = *s.get_or_insert_with(|| strong(&buf[p..p + bs], bs));
                    if st == idx.strong[i] {
                        hit = Some(i);
                        break;
                    }
                }
            }
            if let Some(j) = hit {
                write_block(out, out_name, &buf[p..p + bs], j, bs)?;
                plan.have[j] = true;
                plan.reused += 1;
                plan.aligned += (base + p as u64).is_multiple_of(bs as u64) as u64;
            }
            if let Some(i) = hit {
                // Jump a block: window 2 becomes window 1, the expected block is the next one.
                p += bs;
                if two && p + 2 * bs <= len {
                    h1 = h2;
                    h2 = roll_init(&buf[p + bs..p + 2 * bs], bs);
                } else {
                    fresh = true;
                }
                next = Some(i + 1);
                continue;
            }
            // Roll both windows one byte.
            if p + 2 * bs < len {
                let (o1, i1, i2) = (buf[p] as u64, buf[p + bs] as u64, buf[p + 2 * bs] as u64);
                h1 = h1.wrapping_mul(MUL).wrapping_add(i1).wrapping_sub(o1.wrapping_mul(pow));
                h2 = h2.wrapping_mul(MUL).wrapping_add(i2).wrapping_sub(i1.wrapping_mul(pow));
                p += 1;
            } else if !eof {
                p += 1;
                fresh = true;
            } else if p + bs < len {
                let (o1, i1) = (buf[p] as u64, buf[p + bs] as u64);
                h1 = h1.wrapping_mul(MUL).wrapping_add(i1).wrapping_sub(o1.wrapping_mul(pow));
                p += 1;
            } else {
                break;
            }
        }
    }
    Ok(plan)
}

fn write_block(out: &File, name: &str, data: &[u8], i: usize, bs: usize) -> Result<()> {
    out.write_all_at(data, i as u64 * bs as u64).ctx(name)
}

fn warn(msg: &str) {
    let _ = std::io::stderr().write_all(format!("imgfetch: {msg}\n").as_bytes());
}

/// The byte ranges (inclusive) of the blocks still missing, adjacent blocks merged.
pub fn missing(idx: &Index, have: &[bool]) -> Vec<(u64, u64)> {
    let bs = idx.bs as u64;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, h) in have.iter().enumerate() {
        if *h {
            continue;
        }
        let a = i as u64 * bs;
        let b = (a + bs).min(idx.size) - 1;
        match out.last_mut() {
            Some(l) if l.1 + 1 == a && b - l.0 < MAX_BATCH => l.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

/// Take the bytes `first..=last` of the image from `r` and store every missing block they cover
/// whole, each checked against the signed index. Returns the blocks stored.
#[allow(clippy::too_many_arguments)]
fn take_part(idx: &Index, have: &mut [bool], r: &mut impl Read, first: u64, last: u64, out: &File, name: &str, url: &str) -> Result<u64> {
    let bs = idx.bs as u64;
    let io = |e: std::io::Error| Error::network(url, crate::error::io_reason(&e));
    let mut pos = first;
    let mut stored = 0;
    let mut buf = vec![0u8; idx.bs];
    // Up to the first block boundary: not a whole block, skipped.
    let skip = (bs - first % bs) % bs;
    if skip > 0 {
        let n = skip.min(last + 1 - first);
        r.read_exact(buf.get_mut(..n as usize).unwrap_or_default()).map_err(io)?;
        pos += n;
    }
    while pos <= last {
        let i = (pos / bs) as usize;
        let blen = bs.min(idx.size - pos);
        let n = blen.min(last + 1 - pos) as usize;
        let b = buf.get_mut(..n).unwrap_or_default();
        r.read_exact(b).map_err(io)?;
        pos += n as u64;
        if n as u64 == blen && have.get(i) == Some(&false) {
            if idx.strong.get(i) != Some(&strong(b, idx.bs)) {
                return Err(Error::verify(url, format!("block {i} (bytes {}-{}) does not match the signed index: refused", i as u64 * bs, i as u64 * bs + blen - 1)));
            }
            write_block(out, name, b, i, idx.bs)?;
            have[i] = true;
            stored += 1;
        }
    }
    Ok(stored)
}

fn range_spec(rs: &[(u64, u64)]) -> String {
    let mut s = String::from("bytes=");
    for (k, (a, b)) in rs.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        s.push_str(&format!("{a}-{b}"));
    }
    s
}

/// One request for `rs`; stores what comes back. `multi`: several ranges at once, answered as
/// multipart/byteranges (or a single 206). Err with reason "no multi-range" when the server
/// answers a multi-range request whole or refuses it.
fn request(client: &http::Client, url: &str, idx: &Index, have: &mut [bool], rs: &[(u64, u64)], out: &File, name: &str) -> Result<u64> {
    let mut r = client.request_spec("GET", url, &range_spec(rs))?;
    if r.status == 200 || (r.status == 416 && rs.len() > 1) {
        return Err(Error::new(url, if rs.len() > 1 { "no multi-range" } else { "no Range support" }));
    }
    if r.status != 206 {
        return Err(Error::network(url, format!("HTTP {} {}", r.status, r.reason)));
    }
    let asked: u64 = rs.iter().map(|(a, b)| b + 1 - a).sum();
    let ct = r.header("content-type").unwrap_or_default().to_owned();
    if let Some(boundary) = http::byteranges_boundary(&ct) {
        // Parts and their data together may not exceed what was asked, plus headers.
        let cap = asked + 512 * (rs.len() as u64 + 2);
        r.limit(cap);
        let mut parts = http::Parts::new(BufReader::with_capacity(64 << 10, r), &boundary);
        let mut stored = 0;
        let mut count = 0;
        while let Some((a, b, total)) = parts.next().map_err(|why| Error::network(url, why))? {
            count += 1;
            if total != idx.size || count > rs.len() {
                return Err(Error::network(url, format!("unexpected part bytes {a}-{b}/{total}")));
            }
            stored += take_part(idx, have, parts.data(), a, b, out, name, url)?;
        }
        return Ok(stored);
    }
    let cr = r.header("content-range").unwrap_or_default().to_owned();
    let (a, b, total) = http::parse_content_range(&cr).ok_or_else(|| Error::network(url, format!("bad Content-Range '{cr}'")))?;
    if total != idx.size || r.content_length() != Some(b + 1 - a) {
        return Err(Error::network(url, format!("Content-Range '{cr}' does not fit the request")));
    }
    take_part(idx, have, &mut r, a, b, out, name, url)
}

pub enum Outcome {
    /// NAME.part holds the image; the hasher has seen all of it, and it matched.
    Done(Hasher),
    /// Nothing to trust: download in full (the reason was said on stderr).
    Full,
}

/// Build `part` from the seeds and ranged requests to `url`. Verification failures (a fetched
/// block that is not the signed one) are errors; everything else that goes wrong is `Full`.
pub fn fetch(client: &http::Client, url: &str, idx: &Index, seeds: &[&Path], part: &Path, want: &[u8; 32]) -> Result<Outcome> {
    let name = part.display().to_string();
    let full = |why: &str| {
        warn(&format!("delta: {why}; downloading in full"));
        Ok(Outcome::Full)
    };
    let out = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(part).ctx(&name)?;
    out.set_len(idx.size).ctx(&name)?;
    let t = std::time::Instant::now();
    let mut plan = scan(idx, seeds, &out, &name)?;
    let blocks = plan.have.len() as u64;
    let mut todo = missing(idx, &plan.have);
    let fetch_bytes: u64 = todo.iter().map(|(a, b)| b + 1 - a).sum();
    warn(&format!(
        "delta: {} of {} blocks from the seeds ({} at aligned offsets) in {} ms; fetching {} in {} ranges",
        plan.reused,
        blocks,
        plan.aligned,
        t.elapsed().as_millis(),
        crate::cli::size_str(fetch_bytes),
        todo.len()
    ));
    let mut multi = true;
    let mut failures = 0;
    while !todo.is_empty() {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for &(a, b) in &todo {
            if !batch.is_empty() && (batch.len() >= if multi { MAX_RANGES } else { 1 } || bytes + (b + 1 - a) > MAX_BATCH) {
                break;
            }
            batch.push((a, b));
            bytes += b + 1 - a;
        }
        match request(client, url, idx, &mut plan.have, &batch, &out, &name) {
            Ok(0) => failures += 1,
            Ok(_) => failures = 0,
            Err(e) if e.code == Code::Verify => return Err(e),
            Err(e) if e.reason == "no multi-range" => {
                warn(&format!("{url}: the server answers several ranges with the whole file; one range per request"));
                multi = false;
            }
            Err(e) if e.reason == "no Range support" => return full(&format!("{url}: no Range support")),
            Err(e) => {
                warn(&e.to_string());
                failures += 1;
            }
        }
        if failures > 3 {
            return full("requests keep failing");
        }
        todo = missing(idx, &plan.have);
    }
    // The whole file, checked here against the signed digest (a mismatch: download in full) and
    // again by the caller, exactly as a full download's.
    out.sync_all().ctx(&name)?;
    let mut h = Hasher::new(false);
    crate::digest::hash_file(&out, &mut h, None).ctx(&name)?;
    if &h.clone().finish().sha256 != want {
        // A block a short sum let through that is not the signed one (a seed's chance match, or
        // a server that forged one): no reason to trust any of it.
        return full("the assembled image does not match the signed SHA-256");
    }
    Ok(Outcome::Done(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, data: &[u8]) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("liveroot-delta-{}-{name}", std::process::id()));
        std::fs::write(&d, data).unwrap();
        d
    }

    use crate::fat::tests::noise as pseudo;

    #[test]
    fn index_round_trip_and_strict() {
        let p = tmp("idx", &pseudo(3 * BLOCK + 100, 1));
        let data = make(&p).unwrap();
        assert_eq!(data.len(), HEAD + 4 * ENTRY);
        let idx = parse(&data).unwrap();
        assert_eq!((idx.bs, idx.size, idx.weak.len()), (BLOCK, 3 * BLOCK as u64 + 100, 4));
        assert!(parse(&data[..data.len() - 1]).is_err());
        let mut bad = data.clone();
        bad[0] ^= 1;
        assert!(parse(&bad).is_err());
        let mut bad = data.clone();
        bad[9] = 0x30; // block size 0x3010
        assert!(parse(&bad).is_err());
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn index_over_the_block_cap_is_refused_by_its_header() {
        // The header alone says too many blocks: refused whatever follows, and the cap is the
        // 24 MiB imgfetch reads at most.
        let head = |bs: u32, size: u64| [&MAGIC[..], &bs.to_le_bytes(), &[0; 4], &size.to_le_bytes()].concat();
        let why = |d: Vec<u8>| parse(&d).err().unwrap_or_default();
        assert!(why(head(1024, 1 << 63)).contains("too large"));
        assert!(why(head(4096, MAX_IMAGE + 1)).contains("too large"));
        assert!(why(head(4096, MAX_IMAGE)).contains("bytes for"), "at the cap it is the length that is wrong");
        assert_eq!((MAX_INDEX, MAX_IMAGE), (24 * (1 << 20) + 24, 16 << 30));
    }

    #[test]
    fn rolling_equals_fresh() {
        let d = pseudo(3 * BLOCK, 2);
        let mut pow = 1u64;
        for _ in 0..BLOCK {
            pow = pow.wrapping_mul(MUL);
        }
        let mut h = roll_init(&d[..BLOCK], BLOCK);
        for p in 0..2 * BLOCK {
            h = h.wrapping_mul(MUL).wrapping_add(d[p + BLOCK] as u64).wrapping_sub((d[p] as u64).wrapping_mul(pow));
            assert_eq!(h, roll_init(&d[p + 1..p + 1 + BLOCK], BLOCK));
        }
    }

    #[test]
    fn shifted_data_is_found() {
        // v2 = 1000 bytes inserted in the middle of v1, and one block changed.
        let v1 = pseudo(64 * BLOCK, 3);
        let mut v2 = v1[..20 * BLOCK + 7].to_vec();
        v2.extend_from_slice(&pseudo(1000, 4));
        v2.extend_from_slice(&v1[20 * BLOCK + 7..]);
        let n = v2.len();
        v2[n / 2] ^= 0xff;
        let (s, t) = (tmp("seed", &v1), tmp("new", &v2));
        let idx = parse(&make(&t).unwrap()).unwrap();
        let part = std::env::temp_dir().join(format!("liveroot-delta-{}-part", std::process::id()));
        let out = File::create(&part).unwrap();
        out.set_len(idx.size).unwrap();
        let plan = scan(&idx, &[&s], &out, "part").unwrap();
        let missing_blocks = plan.have.iter().filter(|h| !**h).count();
        // The block with the insertion, the changed one, the short tail, and at most a neighbour each.
        assert!(missing_blocks <= 6, "{missing_blocks} missing");
        let got = std::fs::read(&part).unwrap();
        for (i, h) in plan.have.iter().enumerate() {
            if *h {
                assert_eq!(got[i * BLOCK..(i + 1) * BLOCK], v2[i * BLOCK..(i + 1) * BLOCK], "block {i}");
            }
        }
        assert!(missing(&idx, &plan.have).len() <= 4);
        for f in [s, t, part] {
            std::fs::remove_file(f).unwrap();
        }
    }
}
