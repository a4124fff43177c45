//! Kernel modules: modprobe (modules.dep order, parameters and the blacklist from the kernel
//! command line) and coldplug (the modules the present devices ask for by modalias), and the
//! wait for a boot device that loads drivers as devices appear. Used by `liveinit modprobe`,
//! `coldplug`, `find-medium` and the boot itself. Messages go to a `note` callback: the applet
//! prints them on stderr, the boot on the console and in the kernel log.

use crate::error::{Context, Error, Result};
use crate::probe;
use std::path::{Path, PathBuf};

/// `virtio_pci` for `kernel/drivers/virtio/virtio_pci.ko.xz`; dashes fold to underscores as the
/// kernel does for /sys/module names.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    crate::coldplug::norm(base.split(".ko").next().unwrap_or(base))
}

pub struct ModDb {
    dir: PathBuf,
    /// (name, path relative to dir, dependency paths in modules.dep order). A few dozen lookups
    /// in a few thousand lines: a linear search is cheaper in code than a hash map.
    deps: Vec<(String, String, Vec<String>)>,
    builtin: Vec<String>,
}

impl ModDb {
    pub fn load(dir: &Path) -> Result<ModDb> {
        let dep_file = dir.join("modules.dep");
        let text = std::fs::read_to_string(&dep_file).ctx(dep_file.display())?;
        let mut deps = Vec::new();
        for line in text.lines() {
            if let Some((m, d)) = line.split_once(':') {
                let list = d.split_whitespace().map(str::to_owned).collect();
                deps.push((module_name(m), m.to_owned(), list));
            }
        }
        let builtin = std::fs::read_to_string(dir.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .map(module_name)
            .collect();
        Ok(ModDb { dir: dir.to_owned(), deps, builtin })
    }

    /// Module files to load for `name`, dependencies first; empty when built in.
    pub fn plan(&self, name: &str, order: &mut Vec<String>) -> Option<()> {
        if self.builtin.iter().any(|b| b == name) {
            return Some(());
        }
        let (_, path, deps) = self.deps.iter().find(|(n, _, _)| n == name)?;
        // An initramfs often carries a modules.dep for more modules than it holds.
        if !self.dir.join(path).exists() {
            return None;
        }
        // depmod lists the full closure; loading it back to front satisfies every symbol.
        for d in deps.iter().rev() {
            if !order.contains(d) {
                let dn = module_name(d);
                if !self.builtin.contains(&dn) {
                    order.push(d.clone());
                }
            }
        }
        if !order.contains(path) {
            order.push(path.clone());
        }
        Some(())
    }
}

/// `MODULE.param=value` words of the kernel command line, per module.
pub fn module_params(cmdline: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut blacklist = Vec::new();
    for (k, v) in crate::cmdline::split(cmdline) {
        if k == "modprobe.blacklist" || k == "module_blacklist" {
            blacklist.extend(v.unwrap_or_default().split(',').map(crate::coldplug::norm));
            continue;
        }
        let Some((m, p)) = k.split_once('.') else { continue };
        let word = match &v {
            Some(v) if v.contains(' ') => format!("{p}=\"{v}\""),
            Some(v) => format!("{p}={v}"),
            None => p.to_owned(),
        };
        let m = crate::coldplug::norm(m);
        match params.iter_mut().find(|(n, _)| *n == m) {
            Some((_, e)) => {
                e.push(' ');
                e.push_str(&word);
            }
            None => params.push((m, word)),
        }
    }
    (params, blacklist)
}

/// The running kernel's release (`uname -r`); empty when it cannot be read.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn modules_dir(dir: Option<&Path>) -> Result<PathBuf> {
    Ok(match dir {
        Some(d) => d.to_owned(),
        None => {
            let u = nix::sys::utsname::uname().ctx("uname")?;
            Path::new("/lib/modules").join(u.release())
        }
    })
}

/// What `modprobe` is asked for.
#[derive(Default)]
pub struct Modprobe<'a> {
    /// Do not warn about modules that do not exist.
    pub quiet: bool,
    /// Only say what would be loaded (`insmod FILE PARAMS` lines, through `out`).
    pub dry_run: bool,
    pub dir: Option<&'a Path>,
    pub cmdline: Option<&'a Path>,
}

/// Load `modules` and their dependencies. A module that does not exist is a warning (through
/// `warn`); the last one that fails to load is the error (the others are warnings).
pub fn modprobe(modules: &[String], a: &Modprobe, warn: &mut dyn FnMut(&str), out: &mut dyn FnMut(&str)) -> Result<()> {
    let dir = modules_dir(a.dir)?;
    let db = ModDb::load(&dir)?;
    let cmdline_path = a.cmdline.unwrap_or(Path::new("/proc/cmdline"));
    let (params, blacklist) = module_params(&std::fs::read_to_string(cmdline_path).unwrap_or_default());
    let mut order = Vec::new();
    for m in modules {
        let name = crate::coldplug::norm(m);
        if blacklist.contains(&name) {
            warn(&format!("modprobe: {m}: blacklisted on the kernel command line (skipped)"));
            continue;
        }
        if db.plan(&name, &mut order).is_none() && !a.quiet {
            warn(&format!("modprobe: {m}: not found in {} (skipped)", dir.display()));
        }
    }
    let mut failed: Option<Error> = None;
    for rel in &order {
        let name = module_name(rel);
        let file = db.dir.join(rel);
        let p = params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("");
        if a.dry_run {
            out(&format!("insmod {}{}{}\n", file.display(), if p.is_empty() { "" } else { " " }, p));
            continue;
        }
        if Path::new("/sys/module").join(&name).exists() {
            continue;
        }
        if let Err(e) = load_module(&file, p) {
            if let Some(prev) = failed.replace(e) {
                warn(&format!("modprobe: {prev}"));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

pub fn load_module(file: &Path, params: &str) -> Result<()> {
    let f = std::fs::File::open(file).ctx(file.display())?;
    let name = file.to_string_lossy();
    let compressed = [".xz", ".zst", ".gz"].iter().any(|s| name.ends_with(s));
    let flags = if compressed { crate::sys::module::MODULE_INIT_COMPRESSED_FILE } else { 0 };
    match crate::sys::module::finit_module(&f, params, flags) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(nix::errno::Errno::EINVAL) if compressed => {
            Err(Error::new(name, "compressed module, and this kernel cannot decompress modules"))
        }
        Err(e) => Err(Error::sys(name, e)),
    }
}


// ---- coldplug --------------------------------------------------------------------------------

/// Coldplug over the modprobe machinery: modules.alias picks the modules, ModDb orders their
/// dependencies, load_module loads them.
pub struct Plug {
    aliases: crate::coldplug::Aliases,
    db: ModDb,
    params: Vec<(String, String)>,
    blacklist: Vec<String>,
    sysfs: PathBuf,
    state: crate::coldplug::State,
    pub loaded: Vec<String>,
    pub failed: Vec<String>,
    devices: usize,
    unbound: usize,
}

impl Plug {
    pub fn new(dir: Option<&Path>, sysfs: Option<&Path>, cmdline: Option<&Path>) -> Result<Plug> {
        let dir = modules_dir(dir)?;
        let db = ModDb::load(&dir)?;
        let file = dir.join("modules.alias");
        let aliases = crate::coldplug::Aliases::parse(&std::fs::read_to_string(&file).ctx(file.display())?);
        let (params, blacklist) = module_params(&std::fs::read_to_string(cmdline.unwrap_or(Path::new("/proc/cmdline"))).unwrap_or_default());
        let sysfs = sysfs.unwrap_or(Path::new("/sys")).to_owned();
        let state = crate::coldplug::State::default();
        Ok(Plug { aliases, db, params, blacklist, sysfs, state, loaded: Vec::new(), failed: Vec::new(), devices: 0, unbound: 0 })
    }

    fn is_loaded(&self, name: &str) -> bool {
        self.sysfs.join("module").join(name).exists()
    }

    /// One pass over the devices not seen before: the modules loaded (with `dry_run`: that
    /// would be), in order. Failures are warnings.
    pub fn pass(&mut self, dry_run: bool, warn: &mut dyn FnMut(&str)) -> Vec<String> {
        let devices = crate::coldplug::scan(&self.sysfs.join("devices"));
        self.devices = devices.len();
        self.unbound = devices.iter().filter(|d| !d.bound).count();
        // Decided before loading: a module another one pulls in as a dependency in this pass
        // (usb-storage under uas) is still reported as loaded here.
        let todo: Vec<String> = self
            .state
            .wanted(&devices, &self.aliases)
            .into_iter()
            .filter(|m| !self.db.builtin.contains(m) && !self.blacklist.contains(m) && !self.is_loaded(m))
            .collect();
        let mut now = Vec::new();
        for m in todo {
            let mut order = Vec::new();
            // Listed in modules.alias but not in this tree: nothing to load, as with no alias.
            if self.db.plan(&m, &mut order).is_none() {
                continue;
            }
            if !dry_run {
                let failed = order.iter().find_map(|rel| {
                    let name = module_name(rel);
                    if self.is_loaded(&name) {
                        return None;
                    }
                    let p = self.params.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str());
                    load_module(&self.db.dir.join(rel), p).err()
                });
                if let Some(e) = failed {
                    warn(&format!("coldplug: {m}: {e}"));
                    self.failed.push(m);
                    continue;
                }
            }
            now.push(m);
        }
        self.loaded.extend(now.iter().cloned());
        now
    }

    pub fn counts(&self) -> String {
        format!("({} devices, {} without a driver)", self.devices, self.unbound)
    }

    pub fn loaded_list(&self) -> String {
        if self.loaded.is_empty() { "none".to_owned() } else { self.loaded.join(" ") }
    }
}

/// Coldplug passes until `settle` ms passed since the last pass that loaded something; the
/// summary line `coldplug: loaded M... (N devices, K without a driver)`.
pub fn coldplug(plug: &mut Plug, settle_ms: u64, warn: &mut dyn FnMut(&str)) -> String {
    use std::time::{Duration, Instant};
    let settle = Duration::from_millis(settle_ms);
    let mut last_load: Option<Instant> = None;
    loop {
        if !plug.pass(false, warn).is_empty() {
            last_load = Some(Instant::now());
        }
        match last_load {
            Some(t) if t.elapsed() < settle => std::thread::sleep(Duration::from_millis(100)),
            _ => break,
        }
    }
    let what = match (plug.loaded.is_empty(), plug.failed.is_empty()) {
        (true, true) => "nothing to load".to_owned(),
        (_, true) => format!("loaded {}", plug.loaded_list()),
        _ => format!("loaded {}; failed: {}", plug.loaded_list(), plug.failed.join(" ")),
    };
    format!("coldplug: {what} {}", plug.counts())
}

/// Wait up to `wait` s for the block device `spec` names and return its path; with `coldplug`,
/// load the drivers new devices ask for before each look (a USB stick shows up only once its
/// host controller's driver is loaded). What it loads and waits for goes to `note`.
pub fn find_medium(spec: &str, wait: u64, all: bool, coldplug: bool, note: &mut dyn FnMut(&str)) -> Result<String> {
    let a = (wait, all, coldplug);
    let spec = crate::cmdline::normalize_spec(spec).map_err(|why| Error::usage(format!("{spec}: {why}")))?;
    let start = std::time::Instant::now();
    // Checked even though --wait is bounded: an overflowing deadline is a panic.
    let deadline = start.checked_add(std::time::Duration::from_secs(a.0)).ok_or_else(|| Error::usage(format!("--wait {}: too long", a.0)))?;
    // Unknown hardware or no modules.alias: say so once and keep looking for the device.
    let mut plug = match a.2.then(|| Plug::new(None, None, None)) {
        Some(Err(e)) => {
            note(&format!("coldplug: {e}"));
            None
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let mut note_at = 5;
    loop {
        // Drivers loaded by this pass: their devices (the virtio disk behind virtio_pci) are
        // there when the load returns, so the next pass comes at once, not after a sleep.
        let mut loaded = false;
        if let Some(p) = plug.as_mut() {
            let now = p.pass(false, note);
            loaded = !now.is_empty();
            if !now.is_empty() {
                note(&format!("coldplug: loaded {} {}", now.join(" "), p.counts()));
            }
        }
        if spec.starts_with("/dev/") {
            if let Some(p) = probe::find_path(&spec) {
                return Ok(p);
            }
        }
        let cands = probe::scan(a.1);
        let hits: Vec<&probe::Candidate> = cands.iter().filter(|c| c.matches(&spec)).collect();
        if let Some(first) = hits.first() {
            if hits.len() > 1 {
                let others: Vec<&str> = hits[1..].iter().map(|c| c.name.as_str()).collect();
                note(&format!("{spec}: also on {}; using {}", others.join(", "), first.name));
            }
            return Ok(format!("/dev/{}", first.name));
        }
        if std::time::Instant::now() >= deadline {
            let list: Vec<String> = cands.iter().map(probe::Candidate::describe).collect();
            let found = if list.is_empty() { "no block devices".to_owned() } else { list.join(", ") };
            let drivers = plug.as_ref().map(|p| format!("; drivers loaded: {}", p.loaded_list())).unwrap_or_default();
            return Err(Error::new(spec, format!("not found after {} s; found: {found}{drivers}", a.0)));
        }
        let waited = start.elapsed().as_secs();
        if waited >= note_at {
            let drivers = plug.as_ref().map(|p| format!("; drivers loaded: {}", p.loaded_list())).unwrap_or_default();
            note(&format!("find-medium: waiting for {spec} ({waited} s of {}{drivers})", a.0));
            note_at = waited + 5;
        }
        if !loaded {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/fs/nls/nls_iso8859-1.ko"), "nls_iso8859_1");
        assert_eq!(module_name("kernel/drivers/md/dm-snapshot.ko.xz"), "dm_snapshot");
        assert_eq!(module_name("loop"), "loop");
    }

    #[test]
    fn params_from_cmdline() {
        let (p, b) = module_params("quiet loop.max_loop=8 dm-mod.x=\"a b\" raid1.flag modprobe.blacklist=floppy,pc-spkr");
        let get = |m: &str| p.iter().find(|(n, _)| n == m).map(|(_, v)| v.as_str());
        assert_eq!(get("loop"), Some("max_loop=8"));
        assert_eq!(get("dm_mod"), Some("x=\"a b\""));
        assert_eq!(get("raid1"), Some("flag"));
        assert!(b.contains(&"pc_spkr".to_owned()) && b.contains(&"floppy".to_owned()));
    }

    #[test]
    fn plan_orders_dependencies_first() {
        let mut deps = Vec::new();
        let mut add = |m: &str, d: &[&str]| {
            deps.push((module_name(m), m.to_owned(), d.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
        };
        add("v/virtio_pci.ko", &["v/legacy.ko", "v/modern.ko", "v/virtio.ko", "v/virtio_ring.ko"]);
        add("v/virtio_blk.ko", &["v/virtio.ko", "v/virtio_ring.ko"]);
        let dir = std::env::temp_dir().join(format!("liveinit-plan-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("v")).unwrap();
        for f in ["legacy", "modern", "virtio", "virtio_pci", "virtio_blk"] {
            std::fs::write(dir.join(format!("v/{f}.ko")), "").unwrap();
        }
        let db = ModDb { dir: dir.clone(), deps, builtin: vec!["virtio_ring".to_owned()] };
        let mut order = Vec::new();
        db.plan("virtio_pci", &mut order).unwrap();
        db.plan("virtio_blk", &mut order).unwrap();
        assert_eq!(order, ["v/virtio.ko", "v/modern.ko", "v/legacy.ko", "v/virtio_pci.ko", "v/virtio_blk.ko"]);
        assert!(db.plan("nope", &mut order).is_none());
        assert!(db.plan("virtio_ring", &mut order).is_some());
        std::fs::remove_file(dir.join("v/virtio_blk.ko")).unwrap();
        assert!(db.plan("virtio_blk", &mut Vec::new()).is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

}
