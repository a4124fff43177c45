//! The console's echo, off while a password is typed (termios through nix, no unsafe here).

use crate::error::{Error, Result};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::os::fd::BorrowedFd;

/// Echo off on a terminal until dropped, when the settings it found are put back.
pub struct NoEcho<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> NoEcho<'a> {
    /// `Ok(None)` when `fd` is not a terminal (a pipe in tests: nothing to turn off).
    pub fn new(fd: BorrowedFd<'a>) -> Result<Option<NoEcho<'a>>> {
        let saved = match termios::tcgetattr(fd) {
            Ok(t) => t,
            Err(nix::errno::Errno::ENOTTY) | Err(nix::errno::Errno::EINVAL) => return Ok(None),
            Err(e) => return Err(Error::sys("console", e)),
        };
        let mut t = saved.clone();
        // Canonical mode stays: the line is read whole, with the line discipline's erase.
        t.local_flags.remove(LocalFlags::ECHO | LocalFlags::ECHOE | LocalFlags::ECHOK | LocalFlags::ECHONL);
        termios::tcsetattr(fd, SetArg::TCSAFLUSH, &t).map_err(|e| Error::sys("console", e))?;
        Ok(Some(NoEcho { fd, saved }))
    }
}

impl Drop for NoEcho<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSAFLUSH, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    #[test]
    fn a_pipe_is_not_a_terminal() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(super::NoEcho::new(r.as_fd()).unwrap().is_none());
    }
}
