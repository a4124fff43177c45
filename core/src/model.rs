//! The model check of "never lose the last good image" (issue 18; the invariant is stated in
//! src/flashsync.rs): a search over every sequence of operations on a box up to a depth, each
//! operation done whole, or failed at one of its steps, or cut (the power lost) at one of them,
//! every state reached checked.
//!
//! A state is the medium's files (`LiveOS/`: real signed pairs, made with minisign, and the real
//! trial file; the loader's `boot/` and its two entry files), what runs, and the version the
//! server offers next. The operations are the real code on
//! a file medium: syncflash's rotation ([`flashsync::sync`], its writes through a fault-injecting
//! [`Io`]), /init's choice of what boots ([`boot`]: select-image, the trial take, the fetch of a
//! newer image, as initramfs-skel/init does them), `liveinit mark-good` ([`trial::mark_good`],
//! then [`loader::adopt`] for a release that runs on its own kernel, as the applet does).
//! A crash or a hang of what runs is the next power-on coming before mark-good: the search
//! covers it by booting again from any state.
//!
//! Each state reached must hold a pair that verifies, has not failed its trial and is at or
//! above the floor ([`safe`]), and from it, with every image on trial crashing, /init must come
//! to an image known to work (marked good, or any image while no record exists) within tries+2
//! power-ons, never to the rescue shell ([`live`]). The loader's entries each name one release's
//! kernel and initramfs, both there, and a pair /init may boot that brings its own has them whole
//! (its kexec reads them) ([`safe`]).

use crate::error::{Error, Result};
use crate::flashsync::{self, Io, Job, Source};
use crate::loader;
use crate::pairs::{self, Files, Pair, SUFFIXES};
use crate::select::{self, Check, Options};
use crate::trial::{self, Boot, Ident, Record, Standing, Start};
use minisign_verify::PublicKey;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "squashfs.img";
const TRIES: u8 = 2;
/// Versions the server can offer: v1 is on the medium at the start.
const TOP: u64 = 5;
/// The kernel and initramfs the flash was made with (the loader's at the start).
const FLASH_BOOT: (&[u8], &[u8]) = (b"kernel of the flash", b"initrd of the flash");

/// Releases that bring their own kernel and initramfs (listed in their signed manifest): v2
/// only, which the loader switches to from the flash's files (the switch from one release's
/// files to another's is loader.rs's test, cut at every write). Each more version with its own
/// kernel costs the search much: at depth 6, none 11549 states in 166 s; v2 and v4 32590 in
/// 392 s; v2 and v3 (a second switch within reach) 43633 in 598 s; all of 2..=5 47647 in 666 s.
fn has_boot(v: u64) -> bool {
    v == 2
}

fn boot_files(v: u64) -> (Vec<u8>, Vec<u8>) {
    (format!("kernel v{v}").into_bytes(), format!("initrd v{v}").into_bytes())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = crate::digest::Hasher::new(false);
    h.update(data);
    h.finish().sha256
}

/// Signed pairs v1..=TOP, made once: (public key, directory of vN/).
struct Fixtures {
    key: PublicKey,
    dir: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static F: std::sync::OnceLock<Fixtures> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("liveroot-model-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("model dir");
        let (p, s) = (dir.join("k.pub"), dir.join("k.sec"));
        let o = Command::new("minisign").args(["-G", "-W", "-f", "-p"]).arg(&p).arg("-s").arg(&s).output().expect("minisign (make deps installs it)");
        assert!(o.status.success(), "minisign -G: {}", String::from_utf8_lossy(&o.stderr));
        for v in 1..=TOP {
            let d = dir.join(format!("v{v}"));
            std::fs::create_dir_all(&d).expect("vN dir");
            let img: Vec<u8> = (0..4096u32).map(|i| (i as u8).wrapping_mul(7).wrapping_add(v as u8)).collect();
            std::fs::write(d.join(NAME), &img).expect("image");
            let mut sums = format!("{}  {NAME}\n", crate::digest::hex(&sha256(&img)));
            if has_boot(v) {
                let (k, i) = boot_files(v);
                std::fs::write(d.join("vmlinuz"), &k).expect("kernel");
                std::fs::write(d.join("initrd.img"), &i).expect("initrd");
                sums.push_str(&format!("{}  vmlinuz\n{}  initrd.img\n", crate::digest::hex(&sha256(&k)), crate::digest::hex(&sha256(&i))));
            }
            std::fs::write(d.join("SHA256SUMS"), sums).expect("sums");
            let o = Command::new("minisign")
                .args(["-S", "-W", "-s"])
                .arg(&s)
                .arg("-m")
                .arg(d.join("SHA256SUMS"))
                .args(["-t", &format!("version={v}")])
                .output()
                .expect("minisign -S");
            assert!(o.status.success(), "minisign -S: {}", String::from_utf8_lossy(&o.stderr));
        }
        let key = crate::manifest::pubkey_from_file(&p).expect("model key");
        Fixtures { key, dir }
    })
}

fn source_files(v: u64) -> Files {
    let d = fixtures().dir.join(format!("v{v}"));
    Files::beside(&d.join(NAME), d.join("SHA256SUMS"), d.join("SHA256SUMS.minisig"))
}

fn ident_of(v: u64) -> Ident {
    static IDS: std::sync::OnceLock<Vec<Ident>> = std::sync::OnceLock::new();
    let ids = IDS.get_or_init(|| {
        (1..=TOP)
            .map(|v| {
                let t = pairs::check_files(&source_files(v), NAME, Some(&fixtures().key)).expect("fixture verifies");
                Ident { version: v, sha256: t.sha256 }
            })
            .collect()
    });
    ids.get((v as usize).wrapping_sub(1)).copied().unwrap_or(Ident { version: v, sha256: [0; 32] })
}

/// What runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Run {
    Off,
    Rescue,
    /// A pair of the medium (`primary`, `old`, `new`), of this version.
    Medium(String, u64),
    /// Fetched into RAM.
    Fetched(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct St {
    /// By path on the medium (`LiveOS/squashfs.img`, `boot/vmlinuz`).
    files: BTreeMap<String, Vec<u8>>,
    run: Run,
    /// What runs, runs on its own kernel (the state's `kernel=own`): a medium pair that brings
    /// one, booted through the loader or a kexec. A fetched image runs on the loader's: it is
    /// above every version on the medium, so above the loader's too.
    own: bool,
    /// The version the server offers next (or a publisher hands to syncflash).
    next: u64,
}

/// A medium to run the operations in, on tmpfs when there is one, and what it holds (so that
/// loading the next state writes only what differs). Its directories are made once and stay.
struct Scratch(PathBuf, std::cell::RefCell<BTreeMap<String, Vec<u8>>>);

const DIRS: [&str; 4] = ["LiveOS", "boot/syslinux", "loader/entries", "boot"];

impl Scratch {
    fn new() -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let d = base.join(format!("liveroot-model-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&d);
        for sub in DIRS {
            std::fs::create_dir_all(d.join(sub)).expect("scratch");
        }
        Scratch(d, Default::default())
    }
    /// The pairs' directory.
    fn dir(&self) -> PathBuf {
        self.0.join("LiveOS")
    }
    fn load(&self, files: &BTreeMap<String, Vec<u8>>) {
        let mut on = self.1.borrow_mut();
        for n in on.keys().filter(|n| !files.contains_key(*n)) {
            std::fs::remove_file(self.0.join(n)).expect("clear scratch");
        }
        for (n, b) in files.iter().filter(|(n, b)| on.get(*n) != Some(b)) {
            // A new inode each time, as the state's file would be: nothing of the last one stays.
            let p = self.0.join(n);
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, b).expect("state file");
        }
        *on = files.clone();
    }
    fn save(&self) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, rel: &Path, m: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(root.join(rel)).expect("scratch").flatten() {
                let r = rel.join(e.file_name());
                if e.file_type().expect("file type").is_dir() {
                    walk(root, &r, m);
                } else {
                    m.insert(r.to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read state"));
                }
            }
        }
        let mut m = BTreeMap::new();
        walk(&self.0, Path::new(""), &mut m);
        *self.1.borrow_mut() = m.clone();
        m
    }
    fn trial_file(&self) -> PathBuf {
        self.dir().join(trial::FILE)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The writes, counted; the one numbered `at` fails (and with `cut`, every one after it too:
/// the power is gone, no clean-up runs).
struct Faulty {
    n: usize,
    at: Option<usize>,
    cut: bool,
    dead: bool,
}

impl Faulty {
    fn new(at: Option<usize>, cut: bool) -> Faulty {
        Faulty { n: 0, at, cut, dead: false }
    }
    fn tick(&mut self) -> Result<()> {
        if self.dead {
            return Err(Error::new("model", "the power is off"));
        }
        let i = self.n;
        self.n += 1;
        if Some(i) == self.at {
            self.dead = self.cut;
            return Err(Error::new("model", if self.cut { "power cut here" } else { "injected failure" }));
        }
        Ok(())
    }
    fn ctx<T>(r: std::io::Result<T>, p: &Path) -> Result<T> {
        r.map_err(|e| Error::io(p.display().to_string(), &e))
    }
}

impl Io for Faulty {
    fn remove(&mut self, p: &Path) -> Result<()> {
        self.tick()?;
        Faulty::ctx(std::fs::remove_file(p), p)
    }
    fn rename(&mut self, from: &Path, to: &Path) -> Result<()> {
        self.tick()?;
        Faulty::ctx(std::fs::rename(from, to), to)
    }
    /// tmpfs renames over a name atomically; FAT does not, and is not modelled here: the entry
    /// files' one-cluster argument (src/loader.rs) is the QEMU flush-point scenario's business.
    fn replace(&mut self, from: &Path, to: &Path) -> Result<()> {
        self.tick()?;
        Faulty::ctx(std::fs::rename(from, to), to)
    }
    fn create_dir(&mut self, p: &Path) -> Result<()> {
        self.tick()?;
        Faulty::ctx(std::fs::create_dir_all(p), p)
    }
    fn copy(&mut self, from: &Path, to: &Path, _: bool, _: bool, want: Option<&[u8; 32]>) -> Result<()> {
        let data = Faulty::ctx(std::fs::read(from), from)?;
        if want.is_some_and(|w| *w != sha256(&data)) {
            return Err(Error::verify(from.display().to_string(), "checksum mismatch with the signed manifest"));
        }
        self.write_small(to, &data)
    }
    fn write_small(&mut self, p: &Path, data: &[u8]) -> Result<()> {
        use std::io::Write;
        self.tick()?;
        let mut f = Faulty::ctx(std::fs::OpenOptions::new().write(true).create_new(true).open(p), p)?;
        Faulty::ctx(f.write_all(data), p)
    }
    fn sync_dir(&mut self, _: &Path) -> Result<()> {
        self.tick()
    }
    fn trial_create(&mut self, file: &Path, r: &Record) -> Result<()> {
        self.tick()?;
        trial::create_with(file, Some(r))
    }
    fn trial_update(&mut self, file: &Path, decide: &dyn Fn(Option<&Record>) -> Option<Record>) -> Result<Option<Record>> {
        self.tick()?;
        trial::update(file, true, decide)
    }
    fn read_back(&mut self) -> Result<()> {
        self.tick()
    }
    fn remount(&mut self, _: bool) -> Result<bool> {
        Ok(false)
    }
    /// tmpfs cannot say; no two names share blocks here (a FAT rename cut half-way is the
    /// syncflash tests' and the QEMU scenarios' business).
    fn first_block(&mut self, _: &Path) -> std::result::Result<Option<u32>, String> {
        Ok(None)
    }
}

fn record(dir: &Path) -> Option<Record> {
    trial::read(&dir.join(trial::FILE)).ok().flatten().and_then(|c| c.record)
}

/// A take's record written, as `liveinit trial take` does: a write that fails makes the image
/// one not to boot.
fn write_take(dir: &Path, io: &mut Faulty, decide: impl Fn(Option<&Record>) -> Option<Record>) -> Result<()> {
    let file = dir.join(trial::FILE);
    if !file.exists() {
        return Ok(());
    }
    if decide(record(dir).as_ref()).is_none() {
        return Ok(());
    }
    io.trial_update(&file, &decide).map(|_| ())
}

/// One power-on, as initramfs-skel/init decides it (`fetch`: the server offers that version).
/// Err: the power was cut at a write.
fn boot(dir: &Path, mut fetch: Option<u64>, io: &mut Faulty) -> std::result::Result<Run, ()> {
    let f = fixtures();
    let mut skip: Vec<String> = Vec::new();
    loop {
        let rec = record(dir);
        let o = Options { key: Some(&f.key), min_version: 0, good_floor: rec.as_ref().map_or(0, |r| r.floor), check: Check::Full, ram: None, skip: skip.clone() };
        let Ok(sel) = select::select(dir, NAME, &o, &mut |_| {}) else { return Ok(Run::Rescue) };
        let id = Ident { version: sel.version.unwrap_or(0), sha256: sel.sha256.unwrap_or([0; 32]) };
        // 1. Asked without writing; a fallback is recorded (a used-up trial fails) and skipped.
        let (peek, _) = trial::take(rec.as_ref(), &id, None);
        if let Boot::Fallback(_) = peek {
            if write_take(dir, io, |c| trial::take(c, &id, None).1).is_err() && io.dead {
                return Err(());
            }
            skip.push(sel.pair.clone());
            continue;
        }
        // 2. A newer image, unless the local one is still on trial (one trial at a time); once
        // a boot, the first time it gets here.
        if let Some(v) = fetch.take().filter(|_| !matches!(peek, Boot::Trial(_))) {
            let above = sel.floor.max(rec.as_ref().map_or(0, |r| r.failed_version));
            if v > above {
                let fid = ident_of(v);
                let s = Start { tries: TRIES, keep: id.version };
                let file = dir.join(trial::FILE);
                let (b, w) = trial::take(rec.as_ref(), &fid, Some(s));
                let recorded = match (&b, w) {
                    (Boot::Fallback(_), _) => false,
                    (_, None) => true,
                    // A medium without the file gets it, with this record (item 4 of the issue).
                    (_, Some(w)) if !file.exists() => io.trial_create(&file, &w).is_ok(),
                    (_, Some(_)) => io.trial_update(&file, &|c| trial::take(c, &fid, Some(s)).1).is_ok(),
                };
                if io.dead {
                    return Err(());
                }
                if recorded {
                    return Ok(Run::Fetched(v));
                }
            }
        }
        // 3. The local image takes its try.
        let (b, _) = trial::take(record(dir).as_ref(), &id, None);
        let wrote = write_take(dir, io, |c| trial::take(c, &id, None).1);
        if io.dead {
            return Err(());
        }
        if wrote.is_err() || matches!(b, Boot::Fallback(_)) {
            skip.push(sel.pair.clone());
            continue;
        }
        return Ok(Run::Medium(sel.pair, id.version));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Boot,
    BootFetch,
    Sync,
    MarkGood,
}

fn running_ident(run: &Run) -> Option<Ident> {
    match run {
        Run::Medium(_, v) | Run::Fetched(v) => Some(ident_of(*v)),
        _ => None,
    }
}

/// Apply `op` to `st` with the fault (`at`, `cut`); None when the op does not apply. The
/// second value: how many writes it made (to enumerate the faults).
fn apply(st: &St, op: Op, at: Option<usize>, cut: bool, sc: &Scratch) -> Option<(St, usize)> {
    let f = fixtures();
    sc.load(&st.files);
    let dir = sc.dir();
    let dir = dir.as_path();
    let mut io = Faulty::new(at, cut);
    let mut next = st.next;
    let mut own = st.own;
    let run = match op {
        Op::Boot | Op::BootFetch => {
            let offer = (op == Op::BootFetch && st.next <= TOP).then_some(st.next);
            if op == Op::BootFetch && offer.is_none() {
                return None;
            }
            let r = match boot(dir, offer, &mut io) {
                Ok(r) => {
                    if let Run::Fetched(v) = r {
                        next = v + 1;
                    }
                    r
                }
                Err(()) => Run::Off,
            };
            own = matches!(r, Run::Medium(_, v) if has_boot(v));
            r
        }
        Op::MarkGood => {
            let id = running_ident(&st.run)?;
            let file = sc.trial_file();
            if file.exists() && trial::mark_good(record(dir).as_ref(), &id).0.is_some() {
                let _ = io.trial_update(&file, &|c| trial::mark_good(c, &id).0);
            }
            // loader::adopt_running: a release on its own kernel whose record says good; a
            // failure is a warning there (the release still boots, through a kexec).
            let good = record(dir).is_some_and(|r| r.image == id && r.status == trial::Status::Good);
            if own && good && !io.dead {
                let _ = loader::adopt(&sc.0, &format!("LiveOS/{NAME}"), &id.sha256, Some(&f.key), &mut io);
            }
            if io.dead { Run::Off } else { st.run.clone() }
        }
        Op::Sync => {
            let (v, booted) = match &st.run {
                Run::Fetched(v) => (*v, String::new()),
                Run::Medium(p, _) if st.next <= TOP => (st.next, p.clone()),
                _ => return None,
            };
            let src = flashsync::read_source(source_files(v), NAME, Some(&f.key), None).expect("fixture source");
            let src = Source { cache: None, ..src };
            let job = Job {
                key: Some(&f.key),
                dir: dir.to_path_buf(),
                name: NAME.to_owned(),
                booted: booted.clone(),
                running: running_ident(&st.run),
                trial_file: sc.trial_file(),
                tries: TRIES,
                min_version: 0,
                allow_downgrade: false,
                dry_run: false,
                progress: false,
            };
            let r = flashsync::sync(&job, &src, &mut io);
            if io.dead {
                Run::Off
            } else {
                match (&r, &st.run) {
                    // Still on the kernel it was fetched under.
                    (Ok(true), Run::Fetched(v)) => Run::Medium("primary".into(), *v),
                    (Ok(true), Run::Medium(p, w)) => {
                        next = v + 1;
                        Run::Medium(if p == "primary" { "old".into() } else { p.clone() }, *w)
                    }
                    _ => st.run.clone(),
                }
            }
        }
    };
    if matches!(run, Run::Off | Run::Rescue) {
        own = false;
    }
    Some((St { files: sc.save(), run, next, own }, io.n))
}

/// On the medium at `root`: a pair that verifies, has not failed and is at or above the floor;
/// each loader entry names one release's kernel and initramfs, both there; and each pair /init
/// may boot that brings its own kernel has it whole (a kexec starts it).
fn safe(root: &Path) -> std::result::Result<(), String> {
    let f = fixtures();
    let dir = root.join("LiveOS");
    let rec = record(&dir);
    let floor = rec.as_ref().map_or(0, |r| r.floor);
    let mut kept = false;
    for sfx in SUFFIXES {
        let p = Pair::new(&dir, NAME, sfx);
        let Ok(t) = pairs::check_manifest(&p, Some(&f.key)) else { continue };
        if pairs::check_image(&p, &t, None).is_err() {
            continue;
        }
        let id = Ident { version: t.version.unwrap_or(0), sha256: t.sha256 };
        // select boots any pair that verifies and is at or above the floor (the ones before it
        // skipped as fallbacks): its boot files must be whole then.
        if id.version >= floor {
            if let Err(e) = pairs::check_boot_files(&p.paths(), &t) {
                return Err(format!("the {} pair (v{}) may boot, but its own kernel is not whole: {e}", p.label(), id.version));
            }
        }
        kept |= id.version >= floor && trial::standing(rec.as_ref(), &id) != Standing::Failed;
    }
    if !kept {
        return Err(format!("no verified pair that has not failed at or above floor {floor}"));
    }
    entries_whole(root)
}

/// Whose kernel and initramfs these are: the flash's, or release N's.
fn release_of(k: &[u8; 32], i: &[u8; 32]) -> Option<String> {
    if (*k, *i) == (sha256(FLASH_BOOT.0), sha256(FLASH_BOOT.1)) {
        return Some("the flash's".into());
    }
    (1..=TOP).filter(|v| has_boot(*v)).find_map(|v| {
        let (bk, bi) = boot_files(v);
        ((*k, *i) == (sha256(&bk), sha256(&bi))).then(|| format!("v{v}'s"))
    })
}

/// Each entry file there names a kernel and an initramfs that are there and belong to one
/// release together.
fn entries_whole(root: &Path) -> std::result::Result<(), String> {
    for e in [loader::SYSLINUX_CFG, loader::SDBOOT_ENTRY] {
        let Ok(text) = std::fs::read_to_string(root.join(e)) else { continue };
        let (Some(k), Some(i)) = loader::named(&text) else {
            return Err(format!("{e} names no kernel or no initramfs:\n{text}"));
        };
        let digest = |n: &str| std::fs::read(root.join(n.trim_start_matches('/'))).map(|b| sha256(&b)).map_err(|_| format!("{e} names {n}, which is not there"));
        let (dk, di) = (digest(&k)?, digest(&i)?);
        if release_of(&dk, &di).is_none() {
            return Err(format!("{e} names {k} and {i}, which are not one release's kernel and initramfs"));
        }
    }
    Ok(())
}

/// With every image on trial crashing, /init reaches an image known to work within tries+2
/// power-ons.
fn live(files: &BTreeMap<String, Vec<u8>>, sc: &Scratch) -> std::result::Result<(), String> {
    sc.load(files);
    let dir = sc.dir();
    let dir = dir.as_path();
    for n in 1..=(TRIES as usize + 2) {
        let rec = record(dir);
        match boot(dir, None, &mut Faulty::new(None, false)) {
            Ok(Run::Rescue) => return Err(format!("power-on {n}: no image boots (rescue shell)")),
            Ok(Run::Medium(p, v)) => {
                let st = trial::standing(record(dir).as_ref(), &ident_of(v));
                if st == Standing::Good || (st == Standing::Unknown && rec.is_none()) {
                    return Ok(());
                }
                let _ = p;
            }
            other => return Err(format!("power-on {n}: {other:?}")),
        }
    }
    Err(format!("no image known to work after {} power-ons", TRIES as usize + 2))
}

fn describe(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut s = String::new();
    for (n, b) in files {
        let base = n.rsplit('/').next().unwrap_or(n);
        if base == trial::FILE {
            let c = trial::choose([b.get(..trial::SLOT).unwrap_or(&[]), b.get(trial::SLOT..).unwrap_or(&[])]);
            s.push_str(&format!("{n}: {:?}\n", c.record.map(|r| (r.status, r.image.version, r.tries_left, r.failed_version, r.floor))));
        } else if base.starts_with(NAME) {
            let v = (1..=TOP).find(|v| std::fs::read(source_files(*v).image).ok().as_deref() == Some(b));
            s.push_str(&format!("{n}: v{}\n", v.unwrap_or(0)));
        } else if n == loader::SYSLINUX_CFG || n == loader::SDBOOT_ENTRY {
            s.push_str(&format!("{n}: {:?}\n", loader::named(&String::from_utf8_lossy(b))));
        } else if b.len() < 32 && b.is_ascii() {
            s.push_str(&format!("{n}: {:?}\n", String::from_utf8_lossy(b)));
        } else {
            s.push_str(&format!("{n}: {} bytes\n", b.len()));
        }
    }
    s
}

/// Breadth-first over distinct states, every op whole, failed at each write, cut at each write.
fn explore(start: St, depth: usize) -> (usize, usize) {
    let sc = Scratch::new();
    let lc = Scratch::new();
    let mut seen: HashSet<St> = HashSet::new();
    let mut queue = VecDeque::from([(start.clone(), 0usize, Vec::<String>::new())]);
    seen.insert(start);
    let mut transitions = 0;
    while let Some((st, d, path)) = queue.pop_front() {
        if d == depth {
            continue;
        }
        for op in [Op::Boot, Op::BootFetch, Op::Sync, Op::MarkGood] {
            let Some((_, writes)) = apply(&st, op, None, false, &sc) else { continue };
            let faults = std::iter::once((None, false)).chain((0..writes).flat_map(|k| [(Some(k), false), (Some(k), true)]));
            for (at, cut) in faults {
                let Some((next, _)) = apply(&st, op, at, cut, &sc) else { continue };
                transitions += 1;
                if seen.contains(&next) {
                    // Checked when first reached.
                    continue;
                }
                let step = format!("{op:?}{}", at.map_or(String::new(), |k| format!(" {} at write {k}", if cut { "cut" } else { "failed" })));
                let check = safe(&sc.0).and_then(|()| live(&next.files, &lc));
                if let Err(why) = check {
                    panic!(
                        "invariant broken after {:?} then {step}: {why}\nstate before:\n{}run {:?}\nstate after:\n{}run {:?}",
                        path,
                        describe(&st.files),
                        st.run,
                        describe(&next.files),
                        next.run
                    );
                }
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(format!("{step} -> [{}] {:?}", describe(&next.files).trim_end().replace('\n', "; "), next.run));
                    queue.push_back((next, d + 1, p));
                }
            }
        }
    }
    (seen.len(), transitions)
}

/// The medium `make flash` makes: v1, an empty trial file, the flash's kernel and initramfs in
/// `boot/` and the loader's entries naming them; and one made with stock tools (no trial file).
fn first_states() -> Vec<St> {
    let sc = Scratch::new();
    let src = source_files(1);
    for (from, to) in [(&src.image, NAME), (&src.manifest, "SHA256SUMS"), (&src.sig, "SHA256SUMS.minisig")] {
        std::fs::copy(from, sc.dir().join(to)).expect("v1");
    }
    std::fs::write(sc.0.join(crate::install::KERNEL), FLASH_BOOT.0).expect("kernel");
    std::fs::write(sc.0.join(crate::install::INITRD), FLASH_BOOT.1).expect("initrd");
    for (p, b) in crate::install::configs("liveroot", "root=live:LABEL=LIVE quiet", None) {
        if p == loader::SYSLINUX_CFG || p == loader::SDBOOT_ENTRY {
            std::fs::write(sc.0.join(p), b).expect("entry");
        }
    }
    let bare = St { files: sc.save(), run: Run::Off, next: 2, own: false };
    trial::create(&sc.trial_file()).expect("trial file");
    vec![St { files: sc.save(), run: Run::Off, next: 2, own: false }, bare]
}

#[test]
fn never_lose_the_last_good_image() {
    let depth = std::env::var("MODEL_DEPTH").ok().and_then(|d| d.parse().ok()).unwrap_or(6);
    // One thread per first state (the searches share nothing).
    let total = std::thread::scope(|sc| {
        let runs: Vec<_> = first_states().into_iter().map(|s| sc.spawn(move || explore(s, depth))).collect();
        runs.into_iter().map(|r| r.join().expect("a search panicked")).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    println!("model check: depth {depth}: {} distinct states, {} transitions checked", total.0, total.1);
    assert!(depth < 6 || total.0 > 1000, "the search reached only {} states", total.0);
}
