//! The one error type. `Display` is `object: reason`; `main` prefixes the applet name.
//!
//! Exit codes are the same in every applet:
//! 0 ok, 1 runtime failure, 2 usage, 3 verification failed, 4 network, 5 nothing to do
//! (imgfetch: already up to date).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Runtime failure (exit 1).
    Failure = 1,
    /// Bad command line (exit 2).
    Usage = 2,
    /// Checksum or signature did not verify (exit 3).
    Verify = 3,
    /// Network failure (exit 4).
    Network = 4,
    /// Nothing to do, e.g. already up to date (exit 5).
    NoChange = 5,
}

#[derive(Debug)]
pub struct Error {
    pub object: String,
    pub reason: String,
    pub code: Code,
    /// Set for `--help`: `reason` is printed on stdout and the exit status is 0.
    pub help: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error { object: object.into(), reason: reason.into(), code: Code::Failure, help: false }
    }
    pub fn usage(reason: impl Into<String>) -> Self {
        Error::new("", reason).code(Code::Usage)
    }
    pub fn verify(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::new(object, reason).code(Code::Verify)
    }
    pub fn network(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::new(object, reason).code(Code::Network)
    }
    pub fn help(text: impl Into<String>) -> Self {
        Error { help: true, ..Error::new("", text) }
    }
    /// An OS error on `object`, worded like strerror(3) without "(os error N)".
    pub fn sys(object: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::new(object, errno.desc())
    }
    pub fn io(object: impl Into<String>, e: &std::io::Error) -> Self {
        Error::new(object, io_reason(e))
    }
    /// A failure the applet already reported in its own words: `main` prints nothing, the
    /// exit status is `code`'s.
    pub fn reported(code: Code) -> Self {
        Error::new("", "").code(code)
    }
    pub fn is_reported(&self) -> bool {
        self.object.is_empty() && self.reason.is_empty() && !self.help
    }
    pub fn code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }
    pub fn exit_code(&self) -> i32 {
        if self.help { 0 } else { self.code as i32 }
    }
}

/// `std::io::Error` text without the "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_owned(),
        None => e.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.object.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.object, self.reason)
        }
    }
}

/// Attach the object an I/O or errno failure concerns.
pub trait Context<T> {
    fn ctx(self, object: impl fmt::Display) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(object.to_string(), &e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx(self, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(object.to_string(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_have_no_os_error_suffix() {
        let e = std::fs::File::open("/nonexistent/x").ctx("/nonexistent/x").unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/x: No such file or directory");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn codes() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::verify("a", "b").exit_code(), 3);
        assert_eq!(Error::network("a", "b").exit_code(), 4);
        assert_eq!(Error::help("h").exit_code(), 0);
        assert_eq!(Error::usage("bad").to_string(), "bad");
    }
}
