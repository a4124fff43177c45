//! liveroot-core: the formats, the policies and the operations of liveroot, as a library. It
//! prints nothing an applet did not ask for and parses no command line of its own; the binary's
//! applets parse arguments, call in here and print. Every `unsafe` lives one layer down, in
//! liveroot-sys (re-exported as `sys`), which cannot call back up: Cargo builds the layers as
//! separate crates, so an upward call does not compile.
#![deny(unsafe_code)]

pub use liveroot_sys as sys;
pub use liveroot_sys::error;

pub mod boot;
pub mod civil;
pub mod cli;
pub mod cmdline;
pub mod coldplug;
pub mod delta;
pub mod digest;
pub mod efivar;
pub mod dmverity;
pub mod fat;
pub mod fetch;
pub mod flashsync;
pub mod fsutil;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod http;
pub mod install;
pub mod loader;
pub mod looplist;
pub mod manifest;
pub mod migration;
pub mod modprobe;
#[cfg(test)]
pub mod model;
pub mod mountinfo;
pub mod pairs;
pub mod password;
pub mod pe;
pub mod progress;
pub mod probe;
pub mod raid;
pub mod recovery;
pub mod ramcopy;
pub mod rollout;
pub mod select;
pub mod settings;
mod sha512;
pub mod snapshot;
pub mod stamp;
pub mod state;
pub mod switchroot;
pub mod syslinux;
pub mod testhook;
pub mod trial;
pub mod verity;
pub mod veritytool;
pub mod watchdog;
