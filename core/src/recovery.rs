//! The recovery gate: whether /init's shell needs a password (Secure Boot), and asking for it.
//!
//! Under Secure Boot the kernel, the initramfs and the command line are the signed image's, so a
//! shell in the initramfs is the one way around everything the signature guards (the minisign
//! key, the version floor, the image checks). /init asks `liveinit recovery` before every shell
//! it offers (rd.break, `liveroot.recovery`, the rescue shell of a failed boot).
//!
//! When is a boot "under Secure Boot"? Either of two signs is enough:
//! - the firmware's `SecureBoot` EFI variable (efivarfs) says 1: the firmware checked the image,
//!   whatever kernel this is;
//! - the kernel is in lockdown (`/sys/kernel/security/lockdown` not `[none]`): Debian's kernel
//!   locks itself down when the firmware says Secure Boot, and a publisher who put `lockdown=` in
//!   a signed command line asked for the same closed box.
//!
//! Each alone can miss: a kernel without efivarfs, or one built without lockdown-on-Secure-Boot.
//! Taking either errs towards asking. An EFI boot whose variable cannot be read (efivarfs there
//! but the read fails) asks too; a BIOS boot, or UEFI with Secure Boot off and no lockdown, is
//! not asked: /init's shells stay as they were.

use crate::error::{Error, Result};
use crate::password::{Hash, MAX_PASSWORD};
use std::io::BufRead;
use std::path::Path;

/// Where /init's recovery hash is baked (mk/mkinitramfs.sh RECOVERY_HASH=).
pub const HASH_FILE: &str = "/etc/liveroot/recovery.hash";
/// efivarfs, and the variable the firmware sets to 1 when it enforces Secure Boot (UEFI spec:
/// the global variable GUID).
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
pub const SECURE_BOOT_VAR: &str = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// securityfs's lockdown file: `[none] integrity confidentiality`, the bracketed one in force.
pub const LOCKDOWN: &str = "/sys/kernel/security/lockdown";
/// Tries per `liveinit recovery`.
pub const TRIES: u32 = 3;
/// After a wrong password (milliseconds).
pub const DELAY_MS: u64 = 2000;

/// The efivarfs bytes of `SecureBoot`: four bytes of attributes, then the value.
pub fn secure_boot_var(bytes: &[u8]) -> bool {
    bytes.len() == 5 && bytes.last() == Some(&1)
}

/// The mode in force in the lockdown file's text (the bracketed word).
pub fn lockdown_mode(text: &str) -> Option<&str> {
    text.split_whitespace().find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
}

/// What was found about the boot: the SecureBoot variable (`Ok(None)`: absent, `Err`: there
/// but unreadable, `Ok(Some(bytes))`), the lockdown file's text if any.
pub struct Signs {
    pub efi: bool,
    pub secure_boot: std::result::Result<Option<Vec<u8>>, String>,
    pub lockdown: Option<String>,
}

/// Why a password is needed, or `None` when the boot is not under Secure Boot.
pub fn needed(s: &Signs) -> Option<String> {
    match &s.secure_boot {
        Ok(Some(b)) if secure_boot_var(b) => return Some("Secure Boot is on (EFI variable SecureBoot = 1)".into()),
        Err(e) if s.efi => return Some(format!("cannot tell whether Secure Boot is on ({SECURE_BOOT_VAR}: {e})")),
        _ => {}
    }
    match s.lockdown.as_deref().and_then(lockdown_mode) {
        Some(m) if m != "none" => Some(format!("the kernel is in lockdown ({m})")),
        _ => None,
    }
}

/// Read the signs from `efivars` and `lockdown`, mounting efivarfs and securityfs read-only
/// first when `mount` and they are not there yet (the initramfs mounts neither).
pub fn probe(efivars: &Path, lockdown: &Path, mount: bool) -> Signs {
    if mount && !Path::new("/sys/kernel").is_dir() {
        // /init's rescue can come before sysfs is mounted: without it every sign would read
        // "no", and the shell would open under Secure Boot.
        mount_once("sysfs", Path::new("/sys"));
    }
    let efi = efivars.parent().is_some_and(|p| p.is_dir());
    if mount {
        if efi {
            mount_once("efivarfs", efivars);
        }
        if let Some(p) = lockdown.parent() {
            mount_once("securityfs", p);
        }
    }
    let secure_boot = match std::fs::read(efivars.join(SECURE_BOOT_VAR)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::io_reason(&e)),
    };
    Signs { efi, secure_boot, lockdown: std::fs::read_to_string(lockdown).ok() }
}

fn mount_once(fstype: &str, dir: &Path) {
    use nix::mount::MsFlags;
    if !dir.is_dir() || crate::fsutil::is_mountpoint(dir) {
        return;
    }
    let f = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let _ = nix::mount::mount(Some(fstype), dir, Some(fstype), f, None::<&str>);
}

/// The hash baked into the initramfs. The error says why there is no shell.
pub fn load_hash(path: &Path) -> Result<Hash> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                path.display().to_string(),
                "no recovery password was set when this initramfs was made (RECOVERY_HASH=): no shell under Secure Boot",
            ))
        }
        Err(e) => return Err(Error::io(path.display().to_string(), &e)),
    };
    let text = String::from_utf8(text).map_err(|_| Error::new(path.display().to_string(), "not text"))?;
    Hash::parse(&text).map_err(|r| Error::new(path.display().to_string(), r))
}

/// Ask up to `tries` times: `prompt` before each line, `wrong` after each wrong one (the delay
/// goes there). A line longer than the longest password counts as wrong. `Ok(true)`: granted;
/// `Ok(false)`: every try wrong, or the console closed.
pub fn ask(hash: &Hash, input: &mut dyn BufRead, tries: u32, prompt: &mut dyn FnMut(), wrong: &mut dyn FnMut(u32)) -> Result<bool> {
    let limit = u64::try_from(MAX_PASSWORD).unwrap_or(u64::MAX).saturating_add(2);
    for n in 1..=tries {
        prompt();
        let mut line = Vec::new();
        let got = std::io::Read::take(&mut *input, limit).read_until(b'\n', &mut line).map_err(|e| Error::io("console", &e))?;
        if got == 0 {
            return Ok(false);
        }
        let long = !line.ends_with(b"\n") && got as u64 >= limit;
        if long {
            // The rest of that line is not the next try.
            let mut rest = Vec::new();
            let _ = std::io::Read::take(&mut *input, 1 << 20).read_until(b'\n', &mut rest);
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let ok = !long && hash.verify(&line);
        line.iter_mut().for_each(|b| *b = 0);
        if ok {
            return Ok(true);
        }
        wrong(n);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/";

    fn signs(efi: bool, sb: std::result::Result<Option<&[u8]>, &str>, lockdown: Option<&str>) -> Signs {
        Signs { efi, secure_boot: sb.map(|o| o.map(<[u8]>::to_vec)).map_err(str::to_owned), lockdown: lockdown.map(str::to_owned) }
    }

    #[test]
    fn when_a_password_is_needed() {
        let none = Some("[none] integrity confidentiality\n");
        let integ = Some("none [integrity] confidentiality\n");
        assert_eq!(needed(&signs(false, Ok(None), None)), None, "BIOS");
        assert_eq!(needed(&signs(false, Ok(None), none)), None, "BIOS, lockdown off");
        assert_eq!(needed(&signs(true, Ok(Some(&[6, 0, 0, 0, 0])), none)), None, "UEFI, Secure Boot off");
        assert_eq!(needed(&signs(true, Ok(None), none)), None, "UEFI without the variable (old firmware)");
        assert!(needed(&signs(true, Ok(Some(&[6, 0, 0, 0, 1])), none)).unwrap().contains("Secure Boot is on"));
        assert!(needed(&signs(true, Ok(Some(&[6, 0, 0, 0, 1])), None)).is_some(), "no securityfs");
        assert!(needed(&signs(false, Ok(None), integ)).unwrap().contains("lockdown (integrity)"));
        assert!(needed(&signs(true, Ok(Some(&[6, 0, 0, 0, 0])), integ)).is_some(), "lockdown= on a signed line");
        assert!(needed(&signs(true, Err("Input/output error"), none)).unwrap().contains("cannot tell"));
        assert_eq!(needed(&signs(true, Ok(Some(&[1])), None)), None, "a variable too short is not a yes");
        assert_eq!(lockdown_mode("none integrity [confidentiality]"), Some("confidentiality"));
        assert_eq!(lockdown_mode("garbage"), None);
    }

    #[test]
    fn three_tries() {
        let h = Hash::parse(HELLO).unwrap();
        let run = |input: &[u8]| {
            let (mut prompts, mut wrongs) = (0, Vec::new());
            let r = ask(&h, &mut &input[..], TRIES, &mut || prompts += 1, &mut |n| wrongs.push(n)).unwrap();
            (r, prompts, wrongs)
        };
        assert_eq!(run(b"hello\n"), (true, 1, vec![]));
        assert_eq!(run(b"hello\r\n"), (true, 1, vec![]), "a serial console's CR");
        assert_eq!(run(b"x\nhello\n"), (true, 2, vec![1]));
        assert_eq!(run(b"x\ny\nz\nhello\n"), (false, 3, vec![1, 2, 3]));
        assert_eq!(run(b"x\n"), (false, 2, vec![1]), "end of input");
        assert_eq!(run(b""), (false, 1, vec![]));
        let mut long = vec![b'a'; 5000];
        long.extend_from_slice(b"\nhello\n");
        assert_eq!(run(&long), (true, 2, vec![1]), "an overlong line is one wrong try");
    }

    #[test]
    fn the_hash_file() {
        let d = std::env::temp_dir().join(format!("liveroot-recovery-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let e = load_hash(&d.join("none")).unwrap_err().to_string();
        assert!(e.contains("no recovery password was set"), "{e}");
        std::fs::write(d.join("bad"), "$1$x$y\n").unwrap();
        assert!(load_hash(&d.join("bad")).unwrap_err().to_string().contains("not a SHA-512 crypt hash"));
        std::fs::write(d.join("ok"), format!("{HELLO}\n")).unwrap();
        assert!(load_hash(&d.join("ok")).unwrap().verify(b"hello"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
