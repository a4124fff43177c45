//! liveinit: what the live /init needs that busybox sh cannot do well.
//!
//! ```text
//! liveinit cmdline [--file F] [--settings F]    shell assignments (LIVE_*) from /proc/cmdline
//!                                               (and a stick's LiveOS/settings, merged as at boot)
//! liveinit modprobe [-q] [-n] [--dir D] [--cmdline F] MODULE...
//!                                               load modules and their dependencies
//! liveinit coldplug [-n] [--settle MS] [--modules-dir D] [--sysfs D] [--cmdline F]
//!                                               load the drivers the present hardware asks for
//! liveinit find-medium SPEC [--wait S] [--all] [--coldplug]
//!                                               wait for LABEL=/UUID=/PARTUUID=/PARTLABEL=//dev/..
//! liveinit probe DEV|FILE...                    filesystem type, label, UUID (like blkid -p)
//! liveinit select-image DIR NAME [--pubkey-file F] [--min-version N] [--trial-state F]
//!          [--check auto|full|manifest|none] [--ram-to DIR [--minmem MIB] [--ram-unless-verity]] [--skip primary|old|new]...
//!                                               choose the pair that boots; IMG_* assignments
//! liveinit state set KEY=VALUE... | get KEY | show   [--file F]   /run/live/state
//! liveinit boot                                 the live boot /init runs: root at /sysroot, state
//! liveinit switch-root [--live] NEWROOT [INIT [ARG...]]
//!                                               move /dev /proc /sys /run, free the
//!                                               initramfs, chroot, exec INIT (/sbin/init)
//! liveinit mark-good [--state F] [--file F]     the running image is healthy: end its trial
//! liveinit trial take --sha256 HEX --version N [--start TRIES --keep V] [--peek] [--file F]
//!                                               before switch_root: count a try; TRIAL_* for eval
//! liveinit trial status [--file F]              the record, as TRIAL_* assignments
//! liveinit trial start --sha256 HEX --version N [--tries N] [--net] [--file F]
//! liveinit trial create FILE                    a fresh trial file (make flash, syncflash)
//! liveinit recovery [--hash-file F] [--always] [--check] [--restart]
//!                                               under Secure Boot, the recovery password before
//!                                               /init's shell; exit 0 = the shell may run
//! liveinit watchdog arm SECONDS [--dev D] | disarm [--dev D]
//!                                               start the hardware watchdog and leave it running
//!                                               across switch_root; stop it (mark-good does)
//! ```

use crate::osarg;
use crate::error::{Context, Error, Result};
use crate::probe;
#[path = "liveinit/args.rs"]
mod args;
use args::*;
use std::io::Write;

pub const SUMMARY: &str = "helpers for the live-boot /init (cmdline, modprobe, coldplug, find-medium, switch-root)";

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = crate::cli::parse(argv, "")?;
    match args.cmd {
        Cmd::Cmdline(a) => cmdline(a),
        Cmd::Modprobe(a) => modprobe(a),
        Cmd::Coldplug(a) => coldplug(a),
        Cmd::FindMedium(a) => find_medium(a),
        Cmd::Probe(a) => probe_cmd(a),
        Cmd::SelectImage(a) => select_image(a),
        Cmd::State(a) => state(a),
        Cmd::SwitchRoot(a) => switch_root(a),
        Cmd::Boot(a) => boot(a),
        Cmd::MarkGood(a) => mark_good(a),
        Cmd::Trial(a) => trial(a),
        Cmd::Watchdog(a) => watchdog(a),
        Cmd::Recovery(a) => recovery(a),
    }
}

fn out(text: &str) {
    let mut o = std::io::stdout();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

fn warn(text: &str) {
    let _ = std::io::stderr().write_all(format!("liveinit: {text}\n").as_bytes());
}

// ---- cmdline ---------------------------------------------------------------------------------

fn cmdline(a: CmdlineArgs) -> Result<()> {
    let path = osarg::path(a.file.as_deref().unwrap_or("/proc/cmdline"));
    let line = std::fs::read_to_string(&path).ctx(path.display())?;
    let mut live = crate::cmdline::parse(&line)?;
    if let Some(s) = a.settings.as_deref() {
        let path = osarg::path(s);
        let m = match crate::settings::read(&path)? {
            None => return Err(Error::new(s, "no such file")),
            Some(Ok(text)) => crate::settings::merge(&mut live, &line, &text),
            Some(Err(note)) => crate::settings::Merged { notes: vec![note], ..Default::default() },
        };
        for l in m.lines() {
            warn(&format!("{s}: {l}"));
        }
    }
    out(&live.to_shell());
    Ok(())
}

// ---- modprobe / coldplug / find-medium ---------------------------------------------------------

use crate::modprobe;

fn modprobe(a: ModprobeArgs) -> Result<()> {
    if a.modules.is_empty() {
        return Err(Error::usage("modprobe: no module named\nTry 'liveinit modprobe --help' for more information."));
    }
    let (dir, cmdline) = (a.dir.as_deref().map(osarg::path), a.cmdline.as_deref().map(osarg::path));
    let o = modprobe::Modprobe { quiet: a.quiet, dry_run: a.dry_run, dir: dir.as_deref(), cmdline: cmdline.as_deref() };
    modprobe::modprobe(&a.modules, &o, &mut |w| warn(w), &mut |t| out(t))
}

fn coldplug(a: ColdplugArgs) -> Result<()> {
    let p = |o: &Option<String>| o.as_deref().map(osarg::path);
    let mut plug = modprobe::Plug::new(p(&a.modules_dir).as_deref(), p(&a.sysfs).as_deref(), p(&a.cmdline).as_deref())?;
    if a.dry_run {
        let s: String = plug.pass(true, &mut |w| warn(w)).iter().map(|m| format!("{m}\n")).collect();
        out(&s);
        return Ok(());
    }
    let line = modprobe::coldplug(&mut plug, a.settle, &mut |w| warn(w));
    out(&format!("{line}\n"));
    Ok(())
}

fn find_medium(a: FindArgs) -> Result<()> {
    let dev = modprobe::find_medium(&a.spec, a.wait, a.all, a.coldplug, &mut |n| warn(n))?;
    out(&format!("{dev}\n"));
    Ok(())
}

fn probe_cmd(a: ProbeArgs) -> Result<()> {
    if a.devices.is_empty() {
        return Err(Error::usage("probe: no device named\nTry 'liveinit probe --help' for more information."));
    }
    let mut failed = None;
    for d in a.devices.iter().map(|d| osarg::path(d)) {
        match probe::open_probe(&d) {
            Err(e) => {
                if let Some(prev) = failed.replace(Error::io(d.display().to_string(), &e)) {
                    warn(&prev.to_string());
                }
            }
            Ok(found) => out(&probe::line(&d, found.as_ref())),
        }
    }
    failed.map_or(Ok(()), Err)
}

// ---- select-image ----------------------------------------------------------------------------

fn select_image(a: SelectArgs) -> Result<()> {
    use crate::select::{select, Check, Options, Ram};
    let check = Check::parse(&a.check)
        .ok_or_else(|| Error::usage(format!("select-image: --check {}: expected auto, full, manifest or none", a.check)))?;
    let key = a.pubkey_file.as_deref().map(|f| crate::manifest::pubkey_from_file(&crate::osarg::path(f))).transpose()?;
    if a.name.is_empty() || a.name.contains('/') {
        return Err(Error::usage(format!("select-image: '{}': expected a file name", a.name)));
    }
    let ram = a.ram_to.map(|d| Ram { dir: osarg::path(&d), minmem: a.minmem, unless_verity: a.ram_unless_verity });
    if let Some(bad) = a.skip.iter().find(|s| !["primary", "old", "new"].contains(&s.as_str())) {
        return Err(Error::usage(format!("select-image: --skip {bad}: expected primary, old or new")));
    }
    let good_floor = a.trial_state.as_deref().map_or(0, |f| {
        crate::select::good_floor(&osarg::path(f), &mut |e| {
            let _ = std::io::stderr().write_all(format!("select-image: {e}: no floor from it\n").as_bytes());
        })
    });
    let o = Options { key: key.as_ref(), min_version: a.min_version, good_floor, check, ram, skip: a.skip };
    let s = select(&osarg::path(&a.dir), &a.name, &o, &mut |e| {
        let _ = std::io::stderr().write_all(format!("select-image: {e}\n").as_bytes());
    })?;
    out(&s.to_shell());
    Ok(())
}

// ---- state -----------------------------------------------------------------------------------

fn state(a: StateArgs) -> Result<()> {
    out(&crate::state::command(&osarg::path(&a.file), &a.action, &a.args)?);
    Ok(())
}

// ---- trial / mark-good -----------------------------------------------------------------------

use crate::state::LiveState;
use crate::trial::{self, Ident};

fn trial(a: TrialArgs) -> Result<()> {
    match a.cmd {
        TrialCmd::Take(a) => trial_take(a),
        TrialCmd::Status(a) => trial_status(a),
        TrialCmd::Start(a) => trial_start(a),
        TrialCmd::Create(a) => trial::create(&osarg::path(&a.file)),
    }
}

fn trial_take(a: TakeArgs) -> Result<()> {
    let img = Ident::parse(&a.sha256, &a.version)?;
    let start = a.start.map(|tries| trial::Start { tries, keep: a.keep });
    let loc = trial::locate(a.file.as_deref().map(osarg::path).as_deref(), &a.state);
    let t = crate::boot::take::take(loc.as_ref().map(|l| l.path.as_path()), img.as_ref(), start, a.peek, a.via_fs);
    if !t.note.is_empty() {
        warn(&format!("trial: {}", t.note));
    }
    out(&t.to_shell());
    Ok(())
}

fn trial_status(a: TrialStatusArgs) -> Result<()> {
    let loc = trial::locate(a.file.as_deref().map(osarg::path).as_deref(), &a.state)?;
    let cur = trial::read(&loc.path)?.ok_or_else(|| Error::new(loc.path.display().to_string(), "No such file or directory"))?;
    out(&cur.to_shell());
    Ok(())
}

fn trial_start(a: StartArgs) -> Result<()> {
    let img = Ident::parse(&a.sha256, &a.version)?.ok_or_else(|| Error::usage("trial start: --sha256 is required"))?;
    if a.tries == 0 {
        return Err(Error::usage("trial start: --tries 0: a trial needs at least one try"));
    }
    let loc = trial::locate(a.file.as_deref().map(osarg::path).as_deref(), &a.state)?;
    out(&trial::start(&loc.path, a.via_fs, &img, trial::Start { tries: a.tries, keep: a.keep }, a.net)?);
    Ok(())
}

/// The trial ends (when there is one about the running image), then the watchdog /init armed
/// for it is stopped.
fn mark_good(a: MarkGoodArgs) -> Result<()> {
    let path = osarg::path(&a.state);
    let st = LiveState::load(&path)?;
    let file = a.file.as_deref().map(osarg::path);
    out(&trial::mark_good_running(&st, file.as_deref(), &a.state, a.via_fs)?);
    crate::watchdog::disarm_armed(&path, &st, &mut |n| warn(n))?;
    // A good release with its own kernel becomes the loader's (no kexec from then on); when
    // that fails the box still boots it, through a kexec: a warning, not a failed mark-good.
    if a.file.is_none() {
        match crate::loader::adopt_running(&st, &a.state) {
            Ok(Some(line)) => out(&format!("mark-good: {line}\n")),
            Ok(None) => {}
            Err(e) => warn(&format!("mark-good: {e}; the loader keeps its files (this release boots through a kexec)")),
        }
    }
    Ok(())
}

// ---- watchdog / switch-root / boot ------------------------------------------------------------

fn watchdog(a: WatchdogArgs) -> Result<()> {
    match (a.action.as_str(), a.seconds) {
        ("arm", Some(s)) => {
            let t = crate::watchdog::arm(&a.dev, s, &mut |n| warn(n))?;
            out(&format!("{t}\n"));
            Ok(())
        }
        ("disarm", None) => crate::watchdog::disarm(&a.dev, &mut |n| warn(n)),
        _ => Err(Error::usage("watchdog: expected arm SECONDS or disarm")),
    }
}

fn switch_root(a: SwitchArgs) -> Result<()> {
    if a.live {
        if !a.init.is_empty() {
            return Err(Error::usage("switch-root --live: init= comes from the kernel command line"));
        }
        return crate::boot::switch_root_live(&osarg::path(&a.newroot));
    }
    let init: Vec<std::ffi::OsString> = a.init.iter().map(|s| osarg::decode(s)).collect();
    crate::switchroot::switch_root_or_rescue(&osarg::path(&a.newroot), &init)
}

fn boot(a: BootArgs) -> Result<()> {
    // The boot said its one line on the console and in the kernel log: the error is only the
    // exit code.
    crate::boot::boot(a.init_start).map_err(|r| Error::reported(r.code))
}

// ---- recovery ----------------------------------------------------------------------------------

/// The gate before /init's shell (core/src/recovery.rs). Every message is `liveinit: recovery:
/// reason`. With --restart, a refusal that no password can undo (no hash baked in) restarts the
/// machine after Enter on the console or 10 minutes: /init's rescue then has nothing to offer.
fn recovery(a: RecoveryArgs) -> Result<()> {
    let r = gate(&a);
    if let (true, Err(e)) = (a.restart, &r) {
        if e.exit_code() == 1 {
            warn(&e.to_string().trim_start_matches("liveinit: ").to_owned());
            warn("recovery: no shell (said above); Enter, or 10 minutes, restarts the machine");
            wait_line(600);
            nix::unistd::sync();
            let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
        }
    }
    r
}

/// Until a line is typed on stdin, or `secs` seconds pass (or stdin closes).
fn wait_line(secs: u64) {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero()) {
        let mut fds = [nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            _ => {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                return;
            }
        }
    }
}

fn gate(a: &RecoveryArgs) -> Result<()> {
    use crate::recovery as r;
    let fail = |e: Error| Error::new("recovery", e.to_string()).code(e.code);
    let hash_path = osarg::path(&a.hash_file);
    if a.check {
        return r::load_hash(&hash_path).map(drop).map_err(fail);
    }
    let why = if a.always {
        "asked to (--always)".to_owned()
    } else {
        let mount = a.efivars.is_none() && a.lockdown.is_none();
        let efivars = osarg::path(a.efivars.as_deref().unwrap_or(r::EFIVARS));
        let lockdown = osarg::path(a.lockdown.as_deref().unwrap_or(r::LOCKDOWN));
        match r::needed(&r::probe(&efivars, &lockdown, mount)) {
            None => return Ok(()),
            Some(why) => why,
        }
    };
    let hash = r::load_hash(&hash_path).map_err(|e| fail(Error::new(why.clone(), e.to_string())))?;
    warn(&format!("recovery: {why}: the shell needs the recovery password"));
    let stdin = std::io::stdin();
    let echo = {
        use std::os::fd::AsFd;
        crate::sys::tty::NoEcho::new(stdin.as_fd()).map_err(fail)?
    };
    let mut input = stdin.lock();
    let granted = r::ask(
        &hash,
        &mut input,
        r::TRIES,
        &mut || {
            let _ = std::io::stderr().write_all(b"password: ");
        },
        &mut |n| {
            let _ = std::io::stderr().write_all(b"\n");
            warn(&format!("recovery: wrong password ({n} of {})", r::TRIES));
            std::thread::sleep(std::time::Duration::from_millis(r::DELAY_MS));
        },
    )
    .map_err(fail)?;
    drop(echo);
    if !granted {
        return Err(Error::verify("recovery", format!("no shell: the password was not given ({} tries)", r::TRIES)));
    }
    let _ = std::io::stderr().write_all(b"\n");
    warn("recovery: password accepted");
    Ok(())
}
