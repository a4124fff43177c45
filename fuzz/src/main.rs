//! libFuzzer driver for the targets in liveroot-core's fuzz module (core/src/fuzz.rs): the same
//! `run` functions the in-tree mutation fuzzer and `cargo test`'s regression replay use, here with
//! coverage feedback. `FUZZ_TARGET=NAME` picks the target; when `FUZZ_SEEDS_TO=DIR` names an
//! empty directory, the target's structure-aware seeds are written there first, so libFuzzer
//! starts from valid inputs (run it with DIR as its first corpus directory). `make fuzz` does
//! both for every target.
#![no_main]

use liveroot_core::fuzz::{Target, TARGETS};
use std::sync::OnceLock;

static TARGET: OnceLock<&'static Target> = OnceLock::new();

fn pick() -> &'static Target {
    let name = std::env::var("FUZZ_TARGET").unwrap_or_default();
    match TARGETS.iter().find(|t| t.name == name) {
        Some(t) => t,
        None => {
            let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
            eprintln!("liveroot-fuzz: FUZZ_TARGET={name:?}: no such target; one of: {}", names.join(" "));
            std::process::exit(2);
        }
    }
}

fn write_seeds(t: &Target, dir: &std::path::Path) {
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true);
    if !empty {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("liveroot-fuzz: {}: {e}", dir.display());
        std::process::exit(1);
    }
    for (i, s) in (t.seeds)().iter().enumerate() {
        let p = dir.join(format!("seed-{i}"));
        if let Err(e) = std::fs::write(&p, s) {
            eprintln!("liveroot-fuzz: {}: {e}", p.display());
            std::process::exit(1);
        }
    }
}

libfuzzer_sys::fuzz_target!(
    init: {
        let t = pick();
        if let Some(dir) = std::env::var_os("FUZZ_SEEDS_TO") {
            write_seeds(t, std::path::Path::new(&dir));
        }
        let _ = TARGET.set(t);
    },
    |data: &[u8]| {
        if let Some(t) = TARGET.get() {
            let _ = (t.run)(data);
        }
    }
);
