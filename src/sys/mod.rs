//! The kernel layer: every ioctl and every `unsafe` block lives here, each with a `// SAFETY:`
//! comment. Structs are hand-written `#[repr(C)]` with compile-time size checks. This layer
//! returns errors and never prints.
#![allow(unsafe_code)]
pub mod dm;
pub mod ext4;
pub mod fibmap;
pub mod loopdev;
pub mod md;
pub mod module;
pub mod pagecache;
pub mod random;
