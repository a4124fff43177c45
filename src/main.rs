//! liveroot: one static binary, busybox-style. The applet is chosen by basename(argv[0]), or by
//! argv[1] when called as `liveroot`.
#![deny(unsafe_code)]

// The core library's modules under the names the applets use (`crate::trial`, ...).
pub(crate) use liveroot_core::{
    boot, civil, cli, cmdline, delta, digest, dmverity, efivar, error, fetch, flashsync, fsutil, install, loader, looplist, manifest, migration, modprobe, pairs, progress, probe, raid, recovery, rollout, select, settings, snapshot, stamp, state, switchroot, sys, testhook, trial, verity, veritytool, watchdog,
};
// Only the publisher's applet builds unified kernel images.
#[cfg(feature = "publisher")]
pub(crate) use liveroot_core::pe;
mod osarg;

use std::io::Write;

/// One entry of the generated dispatch table.
pub struct Applet {
    pub name: &'static str,
    pub run: fn(&[String]) -> error::Result<()>,
    pub summary: &'static str,
}

mod applets {
    include!(concat!(env!("OUT_DIR"), "/applets.rs"));
}

const MULTICALL_HELP: &str = "Usage: liveroot APPLET [ARGS...]
       liveroot --list
       liveroot --install DIR

Boot Linux from a live image and move it onto disk without a reboot.
Each applet also runs when liveroot is invoked through a link of its name.

Exit codes (all applets): 0 ok, 1 failure, 2 usage, 3 verification failed,
4 network failure, 5 nothing to do.
";

fn find(name: &str) -> Option<&'static Applet> {
    applets::APPLETS.iter().find(|a| a.name == name)
}

fn say(stream: &mut dyn Write, text: &str) {
    // One write, so lines from concurrent processes do not interleave.
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.flush();
}

fn multicall(argv: &[String]) -> i32 {
    match argv.get(1).map(String::as_str) {
        None | Some("--help") | Some("-h") => {
            let mut s = String::from(MULTICALL_HELP);
            s.push_str("\nApplets:\n");
            for a in applets::APPLETS {
                s.push_str(&format!("  {:<10} {}\n", a.name, a.summary));
            }
            say(&mut std::io::stdout(), &s);
            if argv.len() < 2 { 2 } else { 0 }
        }
        Some("--list") => {
            let s: String = applets::APPLETS.iter().map(|a| format!("{}\n", a.name)).collect();
            say(&mut std::io::stdout(), &s);
            0
        }
        Some("--install") => match argv.get(2) {
            Some(dir) => install(dir),
            None => {
                say(&mut std::io::stderr(), "liveroot: --install needs a directory\n");
                2
            }
        },
        Some(_) => run(&argv[1..]),
    }
}

/// Make one symlink per applet in `dir`, pointing at this binary.
fn install(dir: &str) -> i32 {
    let target = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            say(&mut std::io::stderr(), &format!("liveroot: /proc/self/exe: {}\n", error::io_reason(&e)));
            return 1;
        }
    };
    for a in applets::APPLETS {
        let link = std::path::Path::new(dir).join(a.name);
        let _ = std::fs::remove_file(&link);
        if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
            say(&mut std::io::stderr(), &format!("liveroot: {}: {}\n", link.display(), error::io_reason(&e)));
            return 1;
        }
    }
    0
}

fn run(argv: &[String]) -> i32 {
    let name = argv[0].rsplit('/').next().unwrap_or(&argv[0]);
    let Some(applet) = find(name) else {
        say(&mut std::io::stderr(), &format!("liveroot: unknown applet '{name}'\n"));
        return 127;
    };
    let mut args = argv.to_vec();
    args[0] = applet.name.to_owned();
    match (applet.run)(&args) {
        Ok(()) => 0,
        Err(e) if e.help => {
            say(&mut std::io::stdout(), &e.reason);
            0
        }
        Err(e) if e.is_reported() => e.exit_code(),
        Err(e) => {
            say(&mut std::io::stderr(), &format!("{}: {e}\n", applet.name));
            e.exit_code()
        }
    }
}

fn main() {
    // Lossless: a non-UTF-8 argument survives as escapes that osarg::path() undoes.
    let argv: Vec<String> = std::env::args_os().map(|a| osarg::encode(&a)).collect();
    let base = argv.first().and_then(|a| a.rsplit('/').next()).unwrap_or("liveroot");
    let code = if base == "liveroot" || base.is_empty() { multicall(&argv) } else { run(&argv) };
    std::process::exit(code);
}
