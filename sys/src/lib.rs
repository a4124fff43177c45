//! liveroot-sys, the kernel layer: every ioctl and every `unsafe` block of liveroot lives here, each with a `// SAFETY:`
//! comment. Structs are hand-written `#[repr(C)]` with compile-time size checks. This layer
//! returns errors and never prints.
#![allow(unsafe_code)]
// The one error type sits at the bottom so that this layer can return it; the layers above
// re-export it. Nothing here depends on anything above.
pub mod error;

pub mod blk;
pub mod dm;
pub mod ext4;
pub mod fibmap;
pub mod fsflags;
pub mod kexec;
pub mod loopdev;
pub mod md;
pub mod module;
pub mod pagecache;
pub mod random;
pub mod sysfs;
pub mod tty;
pub mod watchdog;

use nix::errno::Errno;

/// A NUL-terminated string in a fixed kernel buffer (a name in dm_ioctl, loop_info64), lossily
/// as text; a buffer with no NUL is taken whole.
pub fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes)).into_owned()
}
use std::marker::PhantomData;
use std::os::fd::RawFd;

/// An ioctl request number bound to the one argument type the kernel reads or writes through
/// its pointer. [`ioctl_ptr`] takes only a `&mut T` of that type, so pairing a request with
/// the wrong struct (and letting the kernel copy the wrong number of bytes) does not compile.
pub struct Req<T> {
    pub nr: u32,
    arg: PhantomData<fn(&mut T)>,
}

impl<T> Req<T> {
    /// `nr` must be the request that takes a pointer to exactly a `T`; this is the one place
    /// where that pairing is asserted, next to each request's definition.
    pub const fn new(nr: u32) -> Self {
        Req { nr, arg: PhantomData }
    }
}

impl<T> Clone for Req<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Req<T> {}

/// A request that takes its argument by value (an fd, a dev_t, a flag) or none: no memory is
/// passed, so any integer is safe.
#[derive(Clone, Copy)]
pub struct ValReq(pub u32);

/// The ioctl `req` with a pointer to `arg`.
pub fn ioctl_ptr<T>(fd: RawFd, req: Req<T>, arg: &mut T) -> Result<i32, Errno> {
    // SAFETY: `req` was declared (Req::new) as taking a pointer to exactly a `T`, whose layout
    // is asserted in its module; `arg` is a live, exclusive borrow for the whole call, so the
    // kernel reads or writes only that `T`. A bad fd gives EBADF, not undefined behaviour.
    let r = unsafe { libc::ioctl(fd, req.nr as _, arg as *mut T) };
    Errno::result(r)
}

/// The ioctl `req` with an integer argument.
pub fn ioctl_val(fd: RawFd, req: ValReq, arg: libc::c_ulong) -> Result<i32, Errno> {
    // SAFETY: ValReq requests take their argument by value and dereference no user memory;
    // the value is a full unsigned long so no register bits are left undefined.
    let r = unsafe { libc::ioctl(fd, req.0 as _, arg) };
    Errno::result(r)
}
