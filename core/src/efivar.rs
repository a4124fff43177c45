//! EFI variables through efivarfs, for the one decision a signed command line cannot carry: which
//! root an installed disk boots (docs/install.md, "Secure Boot").
//!
//! A unified image's command line is sealed by the publisher, so it says `root=live:LABEL=...`
//! on every box. A disk that `migrate` installed under Secure Boot is found another way:
//! systemd-boot (and systemd's stub) sets `LoaderDevicePartUUID` to the GPT partition it was
//! started from, and migrate records in the box's own non-volatile variable
//! [`INSTALLED_VAR`] which ESP it installed and which root partition belongs to it. The boot
//! takes the installed root only when the loader came from that very ESP: a stick carrying a
//! copy of the signed loader and image (they are public) and a root partition of its own is
//! not booted as "installed", because only code that ran as root on this box can write the
//! variable, and the partition GUIDs are random per install.

use crate::error::{Error, Result};
use std::path::Path;

pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// systemd's boot loader interface: the partition (GPT unique GUID) the loader was started from.
pub const LOADER_DEVICE_PART_UUID: &str = "LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
/// liveroot's own vendor GUID (random, fixed here for good).
pub const LIVEROOT_GUID: &str = "6c697665-726f-4f74-a9d1-3c0e5b8f2a47";
/// The installed disk of this box: `esp=GUID` and `root=GUID` lines.
pub const INSTALLED_VAR: &str = "LiverootInstalled-6c697665-726f-4f74-a9d1-3c0e5b8f2a47";
/// Non-volatile, boot services and runtime access: a variable the OS can read back and the
/// firmware keeps across power-offs.
pub const ATTRS_NV_BS_RT: u32 = 0x7;
/// No variable here is bigger; anything bigger is not ours.
const MAX: usize = 1024;

/// efivarfs at `dir`, writable: mounted when it is not (the sample OS and a bare initramfs mount
/// nothing there), remounted read-write when it is read-only.
pub fn mount_rw(dir: &Path) -> Result<()> {
    use nix::mount::MsFlags;
    let obj = dir.display().to_string();
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !crate::fsutil::is_mountpoint(dir) {
        // A module in Debian's kernel: the initramfs loads it on UEFI, a system without the
        // module tree (the sample OS) keeps it from there.
        let m = crate::modprobe::Modprobe { quiet: true, ..Default::default() };
        let _ = crate::modprobe::modprobe(&["efivarfs".to_owned()], &m, &mut |_| {}, &mut |_| {});
        return nix::mount::mount(Some("efivarfs"), dir, Some("efivarfs"), flags, None::<&str>)
            .map_err(|e| Error::new(&obj, format!("cannot mount efivarfs: {}", e.desc())));
    }
    if crate::mountinfo::at(&crate::mountinfo::read(), dir).is_some_and(|m| m.read_only()) {
        nix::mount::mount(None::<&str>, dir, None::<&str>, flags | MsFlags::MS_REMOUNT, None::<&str>)
            .map_err(|e| Error::new(&obj, format!("read-only, and cannot be remounted read-write: {}", e.desc())))?;
    }
    Ok(())
}

/// The variable's value without its 4 attribute bytes; None when it does not exist.
pub fn read(dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let p = dir.join(name);
    let f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::new(p.display().to_string(), crate::error::io_reason(&e))),
    };
    let mut v = Vec::new();
    f.take(MAX as u64 + 5).read_to_end(&mut v).map_err(|e| Error::new(p.display().to_string(), crate::error::io_reason(&e)))?;
    if v.len() > MAX + 4 {
        return Err(Error::new(p.display().to_string(), format!("longer than {MAX} bytes: not a variable liveroot reads")));
    }
    Ok(Some(v.get(4..).unwrap_or_default().to_vec()))
}

/// Set the variable (created, or replaced whole): one write of the attributes and the value,
/// as efivarfs wants it. An existing variable file is immutable (efivarfs' guard against a
/// stray `rm`): the flag is cleared first, as `chattr -i` would.
pub fn write(dir: &Path, name: &str, attrs: u32, value: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let p = dir.join(name);
    let obj = p.display().to_string();
    if let Ok(f) = std::fs::File::open(&p) {
        crate::sys::fsflags::clear_immutable(f.as_raw_fd()).map_err(|e| Error::new(&obj, format!("cannot clear its immutable flag: {}", e.desc())))?;
    }
    let mut buf = attrs.to_le_bytes().to_vec();
    buf.extend_from_slice(value);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&p).map_err(|e| Error::new(&obj, crate::error::io_reason(&e)))?;
    f.write_all(&buf).map_err(|e| Error::new(&obj, format!("the firmware did not take it: {}", crate::error::io_reason(&e))))
}

/// A UTF-16LE string as systemd writes its variables (NUL-terminated); None when it is not.
pub fn utf16(v: &[u8]) -> Option<String> {
    let units: Vec<u16> = v.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0).collect();
    String::from_utf16(&units).ok()
}

/// A GUID in its text form (8-4-4-4-12 hex digits), lowercased; None when it is not one.
pub fn guid(s: &str) -> Option<String> {
    let s = s.trim();
    let groups: Vec<&str> = s.split('-').collect();
    let ok = groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| s.to_ascii_lowercase())
}

/// A GUID's text form from its 16 bytes as GPT stores them (the first three fields little-endian).
pub fn guid_text(b: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10..].iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// The 16 GPT bytes of a GUID's text form; None when it is not one.
pub fn guid_bytes(s: &str) -> Option<[u8; 16]> {
    let g = guid(s)?;
    let hex: String = g.chars().filter(|c| *c != '-').collect();
    let mut raw = [0u8; 16];
    for (i, r) in raw.iter_mut().enumerate() {
        *r = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut b = raw;
    b[0..4].copy_from_slice(&[raw[3], raw[2], raw[1], raw[0]]);
    b[4..6].copy_from_slice(&[raw[5], raw[4]]);
    b[6..8].copy_from_slice(&[raw[7], raw[6]]);
    Some(b)
}

/// A random (version 4) GUID in GPT byte order.
pub fn random_guid() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    crate::sys::random::fill(&mut b)?;
    // Version 4 in the high nibble of the third field (stored little-endian: byte 7), variant 10.
    b[7] = (b[7] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b)
}

/// What [`INSTALLED_VAR`] says: the installed disk's ESP and root partition (GPT unique GUIDs),
/// and the SHA-256 of the key file on that root ([`KEY_FILE`]).
///
/// Why the key: partition GUIDs are no secret (any user of the box can list them, and they are
/// on the disk), so a stick made to carry the same GUIDs beside the public signed loader and
/// image would otherwise get its own root booted as this box's. The key file is readable by
/// root only and its digest says nothing about it; a root without it is not booted.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    pub esp: String,
    pub root: String,
    /// Hex SHA-256 of the key file's bytes.
    pub key: String,
}

/// The installed root's key file (mode 0600), relative to the root.
pub const KEY_FILE: &str = "etc/liveroot/installed-key";
/// Its size: 32 random bytes.
pub const KEY_BYTES: usize = 32;

impl Installed {
    pub fn to_bytes(&self) -> Vec<u8> {
        format!("esp={}\nroot={}\nkey={}\n", self.esp, self.root, self.key).into_bytes()
    }

    /// All three lines; anything else: None (a variable that is not ours is ignored).
    pub fn parse(v: &[u8]) -> Option<Installed> {
        if v.len() > MAX {
            return None;
        }
        let text = std::str::from_utf8(v).ok()?;
        let (mut esp, mut root, mut key) = (None, None, None);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("esp", g)) => esp = Some(guid(g)?),
                Some(("root", g)) => root = Some(guid(g)?),
                Some(("key", k)) if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) => key = Some(k.to_ascii_lowercase()),
                _ if line.trim().is_empty() => {}
                _ => return None,
            }
        }
        Some(Installed { esp: esp?, root: root?, key: key? })
    }

    /// Whether `key` (the root's key file) is the one recorded.
    pub fn key_matches(&self, key: &[u8]) -> bool {
        use sha2::Digest;
        key.len() == KEY_BYTES && crate::digest::hex(&sha2::Sha256::digest(key)) == self.key
    }
}

/// The installed record to boot: when the loader's partition is the recorded ESP; None otherwise
/// (a live boot, a stick, another disk, no record).
pub fn installed_root(loader_part: Option<&[u8]>, record: Option<&[u8]>) -> Option<Installed> {
    let loader = guid(&utf16(loader_part?)?)?;
    let rec = Installed::parse(record?)?;
    (loader == rec.esp).then_some(rec)
}

/// The key file under `root`, as the boot reads it: a regular file of [`KEY_BYTES`] bytes, not
/// followed through a link.
pub fn read_key(root: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let p = root.join(KEY_FILE);
    let obj = p.display().to_string();
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&p).map_err(|e| Error::new(&obj, crate::error::io_reason(&e)))?;
    if !f.metadata().map_err(|e| Error::new(&obj, crate::error::io_reason(&e)))?.is_file() {
        return Err(Error::new(&obj, "not a regular file"));
    }
    let mut v = Vec::new();
    f.take(KEY_BYTES as u64 + 1).read_to_end(&mut v).map_err(|e| Error::new(&obj, crate::error::io_reason(&e)))?;
    Ok(v)
}

/// A new key: written under `root` (temporary name, fsync, rename, the directory fsynced: on
/// the disk before the record names it), its record digest returned.
pub fn new_key(root: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; KEY_BYTES];
    crate::sys::random::fill(&mut key)?;
    let to = root.join(KEY_FILE);
    let dir = to.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| Error::new(dir.display().to_string(), crate::error::io_reason(&e)))?;
    let tmp = dir.join(".installed-key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let obj = tmp.display().to_string();
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(|e| Error::new(&obj, crate::error::io_reason(&e)))?;
    f.write_all(&key).and_then(|()| f.sync_all()).map_err(|e| Error::new(&obj, crate::error::io_reason(&e)))?;
    std::fs::rename(&tmp, &to).map_err(|e| Error::new(to.display().to_string(), crate::error::io_reason(&e)))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::new(dir.display().to_string(), crate::error::io_reason(&e)))?;
    Ok(crate::digest::hex(&sha2::Sha256::digest(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn guids_round_trip_in_gpt_order() {
        // The ESP type GUID and its bytes as the UEFI specification prints them.
        let b = guid_bytes("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").unwrap();
        assert_eq!(b, [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b]);
        assert_eq!(guid_text(&b), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(guid("not-a-guid"), None);
        assert_eq!(guid("c12a7328-f81f-11d2-ba4b-00a0c93ec93"), None);
        let r = random_guid().unwrap();
        assert!(guid_text(&r).chars().nth(14) == Some('4'), "{}", guid_text(&r));
        assert_ne!(r, random_guid().unwrap());
    }

    #[test]
    fn the_installed_root_needs_the_loader_on_the_recorded_esp() {
        let rec = Installed {
            esp: "11111111-2222-4333-8444-555555555555".into(),
            root: "66666666-7777-4888-9999-aaaaaaaaaaaa".into(),
            key: "ab".repeat(32),
        };
        let bytes = rec.to_bytes();
        assert_eq!(Installed::parse(&bytes), Some(rec.clone()));
        // systemd writes the GUID upper-case, NUL-terminated.
        let loader = utf16z("11111111-2222-4333-8444-555555555555".to_uppercase().as_str());
        assert_eq!(installed_root(Some(&loader), Some(&bytes)), Some(rec.clone()));
        let short = format!("esp={}\nroot={}\nkey=abcd\n", rec.esp, rec.root);
        assert_eq!(Installed::parse(short.as_bytes()), None, "a key that is no SHA-256");
        let other = utf16z("11111111-2222-4333-8444-555555555556");
        assert_eq!(installed_root(Some(&other), Some(&bytes)), None, "another ESP (a stick): not installed");
        assert_eq!(installed_root(None, Some(&bytes)), None, "no loader variable (an MBR stick, BIOS)");
        assert_eq!(installed_root(Some(&loader), None), None, "no record: nothing was installed here");
        assert_eq!(Installed::parse(b"esp=11111111-2222-4333-8444-555555555555\nroot=66666666-7777-4888-9999-aaaaaaaaaaaa\n"), None, "no key line");
        assert_eq!(Installed::parse(b"esp=x\nroot=y\n"), None);
        assert_eq!(Installed::parse(b"esp=11111111-2222-4333-8444-555555555555\nroot=66666666-7777-4888-9999-aaaaaaaaaaaa\nextra=1\n"), None);
    }

    #[test]
    fn the_key_on_the_root_must_be_the_recorded_one() {
        let d = std::env::temp_dir().join(format!("liveroot-efikey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert!(read_key(&d).is_err(), "no key file");
        let digest = new_key(&d).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        let rec = Installed { esp: "11111111-2222-4333-8444-555555555555".into(), root: "66666666-7777-4888-9999-aaaaaaaaaaaa".into(), key: digest };
        let key = read_key(&d).unwrap();
        assert!(rec.key_matches(&key));
        let mut other = key.clone();
        other[0] ^= 1;
        assert!(!rec.key_matches(&other), "another key");
        assert!(!rec.key_matches(&key[..31]), "a short key");
        let again = new_key(&d).unwrap();
        assert_ne!(again, rec.key, "a new install, a new key");
        std::fs::remove_file(d.join(KEY_FILE)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join(KEY_FILE)).unwrap();
        assert!(read_key(&d).is_err(), "a link is not followed");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn variables_are_read_without_their_attributes() {
        let d = std::env::temp_dir().join(format!("liveroot-efivar-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(read(&d, INSTALLED_VAR).unwrap(), None);
        write(&d, INSTALLED_VAR, ATTRS_NV_BS_RT, b"esp=a\n").unwrap();
        assert_eq!(std::fs::read(d.join(INSTALLED_VAR)).unwrap(), b"\x07\0\0\0esp=a\n");
        assert_eq!(read(&d, INSTALLED_VAR).unwrap().unwrap(), b"esp=a\n");
        std::fs::write(d.join("Big-x"), vec![0u8; 4000]).unwrap();
        assert!(read(&d, "Big-x").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
