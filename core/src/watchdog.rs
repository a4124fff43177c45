//! The hardware watchdog that ends a hang of an image on trial in a reset (rd.live.watchdog=S):
//! armed by the boot and left running across switch_root, stopped by mark-good. Messages go to
//! `note` (the applet's stderr, the boot's console).

use crate::error::{Context, Error, Result};
use crate::sys::watchdog::Watchdog;
use nix::errno::Errno;
use std::path::Path;


pub const DEV: &str = "/dev/watchdog";


/// Start the watchdog with a `secs` timeout and close it without the magic character, so it
/// keeps running; the timeout the driver took. Exit 5 (NoChange) when there is none.
pub fn arm(dev: &str, secs: u32, note: &mut dyn FnMut(&str)) -> Result<u32> {
    let secs = libc::c_int::try_from(secs).ok().filter(|s| *s > 0).ok_or_else(|| Error::usage("watchdog arm: SECONDS: expected 1 or more"))?;
    let w = match Watchdog::open(Path::new(dev)) {
        Err(Errno::ENOENT | Errno::ENODEV | Errno::ENXIO) => {
            return Err(Error::new(dev, "no watchdog; not armed").code(crate::error::Code::NoChange));
        }
        r => r.ctx(dev)?,
    };
    // Opening started it with the driver's default: a failure from here on stops it again, so a
    // refused timeout never leaves a timer the caller does not know about.
    let armed = w.set_timeout(secs).ctx(format!("{dev}: timeout {secs} s")).and_then(|t| w.keepalive().ctx(dev).map(|()| t));
    match armed {
        Ok(t) => {
            w.leave_running();
            note(&format!("watchdog: {dev} armed: a reset in {t} s unless mark-good or a watchdog daemon takes it over"));
            Ok(u32::try_from(t).unwrap_or(0))
        }
        Err(e) => {
            let _ = w.disable();
            let _ = w.magic_close();
            Err(e)
        }
    }
}

/// Stop it (nothing when there is none or the OS's daemon holds it).
pub fn disarm(dev: &str, note: &mut dyn FnMut(&str)) -> Result<()> {
    let w = match Watchdog::open(Path::new(dev)) {
        Err(Errno::ENOENT | Errno::ENODEV | Errno::ENXIO) => {
            note(&format!("watchdog: {dev}: no watchdog; nothing to disarm"));
            return Ok(());
        }
        Err(Errno::EBUSY) => {
            note(&format!("watchdog: {dev}: busy: the OS's watchdog daemon holds it; left to it"));
            return Ok(());
        }
        r => r.ctx(dev)?,
    };
    // Either one stops it; DISABLECARD is the one that says when it cannot (nowayout: EBUSY).
    let stopped = w.disable();
    w.magic_close().ctx(dev)?;
    match stopped {
        Ok(()) => {
            note(&format!("watchdog: {dev} disarmed"));
            Ok(())
        }
        Err(Errno::EBUSY) => Err(Error::new(dev, "the driver refuses to stop (nowayout): it resets the box unless the OS feeds it")),
        Err(e) => Err(Error::sys(format!("{dev}: stop"), e)),
    }
}

/// mark-good's part: disarm the watchdog /init armed for this trial (`watchdog=` and
/// `watchdog_dev=` in the state), then drop those keys so a second mark-good leaves the device
/// alone. Without them nothing is touched: opening a watchdog starts it.
pub fn disarm_armed(path: &Path, st: &crate::state::LiveState, note: &mut dyn FnMut(&str)) -> Result<()> {
    if st.watchdog.as_deref().unwrap_or_default().is_empty() {
        return Ok(());
    }
    let dev = match st.watchdog_dev.as_deref().unwrap_or_default() {
        "" => DEV,
        d => d,
    };
    disarm(dev, note)?;
    crate::state::set(path, &[("watchdog".into(), String::new()), ("watchdog_dev".into(), String::new())])
}

