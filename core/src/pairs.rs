//! Image *pairs* on a medium, and what makes one trusted.
//!
//! A pair is the image `NAME{S}` with its `SHA256SUMS{S}`, `SHA256SUMS.minisig{S}` and, when
//! published with dm-verity sidecars, `NAME.verity{S}` and `NAME.roothash{S}`, all with the same
//! suffix S: "" (primary), `.old`, `.new` (see syncflash). Manifests are copied byte for byte,
//! so they always name the files by their primary names.
//!
//! [`check_manifest`] decides everything that can be decided without reading the image: the
//! signature (when a key is given, a missing or bad one fails), the *binding* (the manifest lists
//! `NAME` exactly once with a digest: a signed manifest that lists other files never vouches for
//! this one), the signed version, and the sidecars (both listed or neither; `.roothash` is read
//! whole and must match its digest). The image itself is then checked either whole
//! ([`check_image`]) or block by block as it is read (dm-verity, from [`Trusted::roothash`]).

use crate::digest::{hash_file, Hasher};
use crate::error::{Context, Error, Result};
use crate::manifest::{self, INITRD, KERNEL, ROOTHASH, SIG, SUMS, UKI, VERITY};
use crate::progress::Progress;
use minisign_verify::PublicKey;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Checked in this order at boot: the primary, the image it replaced, one being written.
pub const SUFFIXES: [&str; 3] = ["", ".old", ".new"];
/// A root hash file is one line of hex; anything longer is not one.
const MAX_ROOTHASH: u64 = 1024;

/// The files of pair `sfx` of image `name` in `dir`.
#[derive(Debug, Clone)]
pub struct Pair {
    pub dir: PathBuf,
    pub name: String,
    pub sfx: String,
}

impl Pair {
    pub fn new(dir: impl Into<PathBuf>, name: &str, sfx: &str) -> Self {
        Pair { dir: dir.into(), name: name.to_owned(), sfx: sfx.to_owned() }
    }
    fn path(&self, base: &str) -> PathBuf {
        self.dir.join(format!("{base}{}", self.sfx))
    }
    pub fn image(&self) -> PathBuf {
        self.path(&self.name)
    }
    pub fn manifest(&self) -> PathBuf {
        self.path(SUMS)
    }
    pub fn sig(&self) -> PathBuf {
        self.path(SIG)
    }
    pub fn verity(&self) -> PathBuf {
        self.path(&format!("{}{VERITY}", self.name))
    }
    pub fn roothash(&self) -> PathBuf {
        self.path(&format!("{}{ROOTHASH}", self.name))
    }
    /// The release's own kernel and initramfs, when its manifest lists them.
    pub fn kernel(&self) -> PathBuf {
        self.path(KERNEL)
    }
    pub fn initrd(&self) -> PathBuf {
        self.path(INITRD)
    }
    /// The release's signed unified kernel image (Secure Boot), when its manifest lists one.
    pub fn uki(&self) -> PathBuf {
        self.path(UKI)
    }
    /// Every file of the pair under its own names, in the order a rotation renames them away:
    /// the manifest first (the pair stops being complete at once), the image last.
    pub fn files(&self) -> [PathBuf; 8] {
        [self.manifest(), self.sig(), self.roothash(), self.verity(), self.kernel(), self.initrd(), self.uki(), self.image()]
    }
    /// Where each file of the pair is: its own name, except for a pair caught half-way through
    /// a rotation. syncflash moves the primary to `.old` manifest first, and `.new` to the
    /// primary manifest last; either way, for a while the primary has no manifest and the pair
    /// being moved has some of its files under the primary names. While the primary lacks its
    /// manifest, each file missing under `.old` or `.new` is the primary's. Safe: the pair's
    /// manifest (and signature) vouch for every byte of whichever file is used. The manifest
    /// itself is never borrowed. Order as [`Pair::files`].
    pub fn resolved(&self) -> [PathBuf; 8] {
        let own = self.files();
        let prim = Pair::new(&self.dir, &self.name, "").files();
        if self.sfx.is_empty() || prim.first().is_none_or(|m| m.exists()) {
            return own;
        }
        let mut out = own.clone();
        for (i, (o, p)) in own.iter().zip(prim).enumerate().skip(1) {
            if !o.exists() && p.exists() {
                if let Some(slot) = out.get_mut(i) {
                    *slot = p;
                }
            }
        }
        out
    }
    /// The pair's files, where they are ([`Pair::resolved`]), as [`Files`] for [`check_files`].
    pub fn paths(&self) -> Files {
        let [manifest, sig, roothash, verity, kernel, initrd, uki, image] = self.resolved();
        Files { image, manifest, sig, verity, roothash, kernel, initrd, uki }
    }
    /// "primary", "old" or "new", as `/run/live/state` says `medium_pair`.
    pub fn label(&self) -> &str {
        label(&self.sfx)
    }
}

/// "primary", "old" or "new" for the suffix "", ".old", ".new".
pub fn label(sfx: &str) -> &str {
    match sfx.trim_start_matches('.') {
        "" => "primary",
        s => s,
    }
}

/// The files of a pair that does not follow the medium's naming (syncflash's source: a
/// `--manifest` and `--sig` given anywhere, sidecars and boot files beside the image). The
/// manifest always names the files by their primary names.
#[derive(Debug, Clone)]
pub struct Files {
    pub image: PathBuf,
    pub manifest: PathBuf,
    pub sig: PathBuf,
    pub verity: PathBuf,
    pub roothash: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub uki: PathBuf,
}

impl Files {
    /// A pair's files beside `image` in its directory, under their primary names (sidecars
    /// `IMAGE.verity`, `IMAGE.roothash`; `vmlinuz`, `initrd.img`, `liveroot.efi`).
    pub fn beside(image: &Path, manifest: PathBuf, sig: PathBuf) -> Files {
        let dir = image.parent().unwrap_or(Path::new("."));
        let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Files {
            image: image.to_path_buf(),
            manifest,
            sig,
            verity: dir.join(format!("{name}{VERITY}")),
            roothash: dir.join(format!("{name}{ROOTHASH}")),
            kernel: dir.join(KERNEL),
            initrd: dir.join(INITRD),
            uki: dir.join(UKI),
        }
    }
}

/// The digests a manifest lists for a release's kernel and initramfs, and its signed unified
/// kernel image when it has one (a release for Secure Boot: `make release SB_KEY=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootDigests {
    pub kernel: [u8; 32],
    pub initrd: [u8; 32],
    pub uki: Option<[u8; 32]>,
}

impl BootDigests {
    /// Each boot file the manifest lists: its name in the manifest and its digest.
    pub fn named(&self) -> Vec<(&'static str, [u8; 32])> {
        let mut v = vec![(KERNEL, self.kernel), (INITRD, self.initrd)];
        if let Some(u) = self.uki {
            v.push((UKI, u));
        }
        v
    }
    /// [`BootDigests::named`] with each file's path among `p`.
    pub fn listed<'a>(&self, p: &'a Files) -> Vec<(&'a Path, &'static str, [u8; 32])> {
        self.named()
            .into_iter()
            .map(|(n, d)| {
                let path = match n {
                    KERNEL => &p.kernel,
                    INITRD => &p.initrd,
                    _ => &p.uki,
                };
                (path.as_path(), n, d)
            })
            .collect()
    }
}

/// The boot files manifest `m` lists: the kernel and the initramfs, both or neither, and the
/// signed unified image only with them (the boot's kexec and the BIOS loader need them as files).
/// `shown` names the manifest in an error. The one rule for the medium's pairs and for imgfetch.
pub fn boot_listed(m: &manifest::Manifest, shown: &str) -> Result<Option<BootDigests>> {
    let uki = m.get(UKI.as_bytes()).map(|u| u.sha256);
    match (m.get(KERNEL.as_bytes()), m.get(INITRD.as_bytes())) {
        (None, None) if uki.is_some() => Err(Error::verify(shown, format!("lists {UKI} without {KERNEL} and {INITRD}"))),
        (None, None) => Ok(None),
        (Some(k), Some(i)) => Ok(Some(BootDigests { kernel: k.sha256, initrd: i.sha256, uki })),
        _ => Err(Error::verify(shown, format!("lists only one of {KERNEL} and {INITRD}"))),
    }
}

/// What a pair's manifest (and signature) vouch for.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The image's SHA-256 as listed.
    pub sha256: [u8; 32],
    /// `version=N` from the signed trusted comment (`None` unsigned or unversioned).
    pub version: Option<u64>,
    pub signed: bool,
    /// The dm-verity root hash, when the sidecars are listed (read from `.roothash`, which
    /// matched its listed digest).
    pub roothash: Option<Vec<u8>>,
    /// The listed digest of the `.verity` hash tree file, when listed.
    pub verity_sha256: Option<[u8; 32]>,
    /// The release's kernel and initramfs, when listed (both or neither).
    pub boot: Option<BootDigests>,
    /// The manifest and signature bytes that were checked (syncflash copies exactly these).
    pub manifest: Vec<u8>,
    pub sig: Option<Vec<u8>>,
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// Check pair `p`'s manifest: signature (required when `key` is given), binding of the image
/// name, version, sidecars. Reads only the small files.
pub fn check_manifest(p: &Pair, key: Option<&PublicKey>) -> Result<Trusted> {
    check_files(&p.paths(), &p.name, key)
}

/// [`check_manifest`] for files named anyhow; `name` is the image's name in the manifest.
pub fn check_files(p: &Files, name: &str, key: Option<&PublicKey>) -> Result<Trusted> {
    let mpath = show(&p.manifest);
    if !p.image.exists() {
        return Err(Error::new(show(&p.image), "missing"));
    }
    if !p.manifest.exists() {
        return Err(Error::verify(&mpath, "missing"));
    }
    let data = manifest::read(&p.manifest)?;
    let (sig, version, signed) = match key {
        Some(k) => {
            let spath = show(&p.sig);
            if !p.sig.exists() {
                return Err(Error::verify(&spath, "missing (a public key is installed: the manifest must be signed)"));
            }
            let sig = manifest::read(&p.sig)?;
            let comment = manifest::verify_signature(&data, &sig, &spath, k)?;
            (Some(sig), crate::rollout::version(&comment), true)
        }
        None => (std::fs::read(&p.sig).ok(), None, false),
    };
    let m = manifest::parse(&mpath, &data)?;
    // parse() refuses a name listed twice (`NAME` and `*NAME` alike) and digests that are not
    // 64 hex digits, so one entry here is the only one and it has a digest.
    let e = m.get(name.as_bytes()).ok_or_else(|| {
        Error::verify(&mpath, format!("does not list {name}: the image is not covered by it"))
    })?;
    let sha256 = e.sha256;
    let v_name = format!("{name}{VERITY}");
    let r_name = format!("{name}{ROOTHASH}");
    let (v, r) = (m.get(v_name.as_bytes()), m.get(r_name.as_bytes()));
    let (roothash, verity_sha256) = match (v, r) {
        (None, None) => (None, None),
        (Some(v), Some(r)) => (Some(read_roothash(&p.roothash, &r.sha256)?), Some(v.sha256)),
        _ => {
            return Err(Error::verify(&mpath, format!("lists only one of {v_name} and {r_name}")));
        }
    };
    let boot = boot_listed(&m, &mpath)?;
    Ok(Trusted { sha256, version, signed, roothash, verity_sha256, boot, manifest: data, sig })
}

/// Read a `.roothash` file, check it against its listed digest, and decode its hex line.
fn read_roothash(path: &Path, listed: &[u8; 32]) -> Result<Vec<u8>> {
    let label = show(path);
    let mut data = Vec::new();
    if !path.exists() {
        return Err(Error::verify(&label, "listed in the manifest but missing"));
    }
    File::open(path).ctx(&label)?.take(MAX_ROOTHASH + 1).read_to_end(&mut data).ctx(&label)?;
    if data.len() as u64 > MAX_ROOTHASH {
        return Err(Error::verify(&label, "larger than 1 KiB: not a root hash"));
    }
    let mut h = Hasher::new(false);
    h.update(&data);
    if &h.finish().sha256 != listed {
        return Err(Error::verify(&label, "checksum mismatch"));
    }
    parse_roothash(&data).ok_or_else(|| Error::verify(&label, "not a root hash (one line of hex)"))
}

/// One line of an even number (2..=128) of hex digits, as `veritysetup` prints a root hash.
pub fn parse_roothash(data: &[u8]) -> Option<Vec<u8>> {
    let line = data.strip_suffix(b"\n").unwrap_or(data);
    if line.is_empty() || line.len() > 128 {
        return None;
    }
    crate::digest::parse_hex(line)
}

/// Hash the whole image and compare with the manifest's digest.
pub fn check_image(p: &Pair, t: &Trusted, progress: Option<&mut Progress>) -> Result<()> {
    check_image_file(&p.paths(), t, progress)
}

/// [`check_image`] for files named anyhow.
pub fn check_image_file(p: &Files, t: &Trusted, progress: Option<&mut Progress>) -> Result<()> {
    let ipath = show(&p.image);
    if file_sha256(&p.image, progress).ctx(&ipath)? != t.sha256 {
        return Err(Error::verify(&ipath, format!("checksum mismatch with {}, image refused", show(&p.manifest))));
    }
    Ok(())
}

/// Hash the whole `.verity` hash tree file against its listed digest (nothing to do when the
/// manifest lists no sidecars). A boot through dm-verity need not read it whole; a copy
/// (syncflash) checks it all, so that what it keeps is what was signed.
pub fn check_verity_file(p: &Files, t: &Trusted) -> Result<()> {
    let Some(want) = t.verity_sha256 else { return Ok(()) };
    let vpath = show(&p.verity);
    if !p.verity.exists() {
        return Err(Error::verify(&vpath, "listed in the manifest but missing"));
    }
    if file_sha256(&p.verity, None).ctx(&vpath)? != want {
        return Err(Error::verify(&vpath, format!("checksum mismatch with {}", show(&p.manifest))));
    }
    Ok(())
}

/// Hash the release's kernel and initramfs against their listed digests (nothing to do when the
/// manifest lists none). Both are small; a copy (syncflash, imgfetch) checks them whole.
pub fn check_boot_files(p: &Files, t: &Trusted) -> Result<()> {
    let Some(b) = t.boot else { return Ok(()) };
    for (path, _, want) in b.listed(p) {
        let label = show(path);
        if !path.exists() {
            return Err(Error::verify(&label, "listed in the manifest but missing"));
        }
        if file_sha256(path, None).ctx(&label)? != want {
            return Err(Error::verify(&label, format!("checksum mismatch with {}", show(&p.manifest))));
        }
    }
    Ok(())
}

/// The SHA-256 of the file at `p`, read whole.
pub fn file_sha256(p: &Path, progress: Option<&mut Progress>) -> std::io::Result<[u8; 32]> {
    let f = File::open(p)?;
    let mut h = Hasher::new(false);
    hash_file(&f, &mut h, progress)?;
    Ok(h.finish().sha256)
}

/// The highest signed version among the pairs of `name` in `dir` whose manifest verifies with
/// `key`, and never below `min`: the floor a fetched image must rise above.
pub fn floor(dir: &Path, name: &str, key: &PublicKey, min: u64) -> u64 {
    SUFFIXES
        .iter()
        .filter_map(|s| check_manifest(&Pair::new(dir, name, s), Some(key)).ok())
        .filter_map(|t| t.version)
        .fold(min, u64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("liveroot-pairs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sha_hex(data: &[u8]) -> String {
        let mut h = Hasher::new(false);
        h.update(data);
        crate::digest::hex(&h.finish().sha256)
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

    fn fixture_key() -> PublicKey {
        manifest::pubkey_from_file(format!("{FIXTURES}/minisign.pub").as_ref()).unwrap()
    }

    #[test]
    fn signed_manifest_that_does_not_list_the_image_is_refused() {
        // The fixture manifest is signed (version=3) and lists abc.txt and empty.txt only.
        let d = tmpdir("unlisted");
        for f in ["SHA256SUMS", "SHA256SUMS.minisig"] {
            std::fs::copy(format!("{FIXTURES}/{f}"), d.join(f)).unwrap();
        }
        std::fs::write(d.join("squashfs.img"), b"anything").unwrap();
        let e = check_manifest(&Pair::new(&d, "squashfs.img", ""), Some(&fixture_key())).unwrap_err();
        assert!(e.to_string().contains("does not list squashfs.img"), "{e}");
        // The same manifest binds abc.txt, with its signed version.
        std::fs::write(d.join("abc.txt"), b"abc").unwrap();
        let p = Pair::new(&d, "abc.txt", "");
        let t = check_manifest(&p, Some(&fixture_key())).unwrap();
        assert_eq!((t.version, t.signed), (Some(3), true));
        check_image(&p, &t, None).unwrap();
        std::fs::write(d.join("abc.txt"), b"abd").unwrap();
        assert!(check_image(&p, &t, None).unwrap_err().to_string().contains("checksum mismatch"));
        assert_eq!(floor(&d, "abc.txt", &fixture_key(), 0), 3);
        assert_eq!(floor(&d, "abc.txt", &fixture_key(), 9), 9);
        assert_eq!(floor(&d, "squashfs.img", &fixture_key(), 0), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_or_foreign_signature_fails_with_a_key() {
        let d = tmpdir("nosig");
        std::fs::copy(format!("{FIXTURES}/SHA256SUMS"), d.join("SHA256SUMS.old")).unwrap();
        std::fs::write(d.join("abc.txt.old"), b"abc").unwrap();
        let p = Pair::new(&d, "abc.txt", ".old");
        assert!(check_manifest(&p, Some(&fixture_key())).unwrap_err().to_string().contains("SHA256SUMS.minisig.old: missing"));
        // Without a key the checksum is all there is.
        let t = check_manifest(&p, None).unwrap();
        assert_eq!((t.signed, t.version), (false, None));
        check_image(&p, &t, None).unwrap();
        let other = manifest::pubkey_from_file(format!("{FIXTURES}/other.pub").as_ref()).unwrap();
        std::fs::copy(format!("{FIXTURES}/SHA256SUMS.minisig"), d.join("SHA256SUMS.minisig.old")).unwrap();
        assert!(check_manifest(&p, Some(&other)).is_err());
        assert!(check_manifest(&p, Some(&fixture_key())).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_unified_image_is_listed_with_the_kernel_and_initramfs_and_checked_with_them() {
        let d = tmpdir("uki");
        for (f, b) in [("i.img", b"img".as_slice()), ("vmlinuz", b"k"), ("initrd.img", b"i"), ("liveroot.efi", b"u")] {
            std::fs::write(d.join(f), b).unwrap();
        }
        let p = Pair::new(&d, "i.img", "");
        let line = |f: &str, b: &[u8]| format!("{}  {f}\n", sha_hex(b));
        std::fs::write(d.join("SHA256SUMS"), line("i.img", b"img") + &line("liveroot.efi", b"u")).unwrap();
        let e = check_manifest(&p, None).unwrap_err().to_string();
        assert!(e.contains("lists liveroot.efi without vmlinuz and initrd.img"), "{e}");
        let all = line("i.img", b"img") + &line("vmlinuz", b"k") + &line("initrd.img", b"i") + &line("liveroot.efi", b"u");
        std::fs::write(d.join("SHA256SUMS"), &all).unwrap();
        let t = check_manifest(&p, None).unwrap();
        assert!(t.boot.is_some_and(|b| b.uki.is_some()));
        check_boot_files(&p.paths(), &t).unwrap();
        std::fs::write(d.join("liveroot.efi"), b"v").unwrap();
        let e = check_boot_files(&p.paths(), &t).unwrap_err().to_string();
        assert!(e.contains("liveroot.efi: checksum mismatch"), "{e}");
        std::fs::remove_file(d.join("liveroot.efi")).unwrap();
        assert!(check_boot_files(&p.paths(), &t).unwrap_err().to_string().contains("listed in the manifest but missing"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sidecars_both_or_neither_and_roothash_bound() {
        let d = tmpdir("sidecars");
        let root = b"4392ae7f3f3f7b1a5d9c0c6e1c2a2a6f0e3d1b5c7a9e8f6d4c2b0a1e3f5d7c9b\n";
        std::fs::write(d.join("i.img"), b"img").unwrap();
        std::fs::write(d.join("i.img.roothash"), root).unwrap();
        std::fs::write(d.join("i.img.verity"), b"tree").unwrap();
        let p = Pair::new(&d, "i.img", "");
        let both = format!(
            "{}  i.img\n{}  i.img.verity\n{}  i.img.roothash\n",
            sha_hex(b"img"),
            sha_hex(b"tree"),
            sha_hex(root)
        );
        std::fs::write(d.join("SHA256SUMS"), &both).unwrap();
        let t = check_manifest(&p, None).unwrap();
        assert_eq!(t.roothash.as_deref().map(|r| r.len()), Some(32));
        assert_eq!(t.verity_sha256, Some(crate::digest::parse_sha256(sha_hex(b"tree").as_bytes()).unwrap()));
        // A root hash other than the listed one.
        std::fs::write(d.join("i.img.roothash"), b"00\n").unwrap();
        assert!(check_manifest(&p, None).unwrap_err().to_string().contains("i.img.roothash: checksum mismatch"));
        // Only one sidecar listed.
        std::fs::write(d.join("SHA256SUMS"), format!("{}  i.img\n{}  i.img.verity\n", sha_hex(b"img"), sha_hex(b"tree"))).unwrap();
        assert!(check_manifest(&p, None).unwrap_err().to_string().contains("lists only one"));
        // The hash tree is checked whole against its listed digest; a listed sidecar missing
        // is a verification failure.
        std::fs::write(d.join("SHA256SUMS"), &both).unwrap();
        std::fs::write(d.join("i.img.roothash"), root).unwrap();
        let t = check_manifest(&p, None).unwrap();
        check_verity_file(&p.paths(), &t).unwrap();
        std::fs::write(d.join("i.img.verity"), b"tref").unwrap();
        assert!(check_verity_file(&p.paths(), &t).unwrap_err().to_string().contains("i.img.verity: checksum mismatch"));
        std::fs::remove_file(d.join("i.img.verity")).unwrap();
        let e = check_verity_file(&p.paths(), &t).unwrap_err();
        assert_eq!((e.to_string().contains("listed in the manifest but missing"), e.exit_code()), (true, 3), "{e}");
        std::fs::remove_file(d.join("i.img.roothash")).unwrap();
        let e = check_manifest(&p, None).unwrap_err();
        assert_eq!((e.to_string().contains("i.img.roothash: listed in the manifest but missing"), e.exit_code()), (true, 3), "{e}");
        // Sidecars on the medium but not listed: not trusted, not used.
        std::fs::write(d.join("SHA256SUMS"), format!("{}  i.img\n", sha_hex(b"img"))).unwrap();
        assert!(check_manifest(&p, None).unwrap().roothash.is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn roothash_lines() {
        assert_eq!(parse_roothash(b"00ff\n"), Some(vec![0, 255]));
        assert_eq!(parse_roothash(b"00FF"), Some(vec![0, 255]));
        for bad in [&b""[..], b"\n", b"0", b"0g", b"+1", b"00\n\n", b"00 ", "é0".as_bytes()] {
            assert_eq!(parse_roothash(bad), None, "{bad:?}");
        }
        assert_eq!(parse_roothash(&[b'a'; 130]), None);
    }
}
