//! The one progress reporter (imgcheck, imgfetch, syncflash, mdmirror wait, migrate).
//!
//! One line format everywhere: `LABEL: 1.5M/2.0G  10% 3.4M/s ETA 1:02` (no total: no percent
//! and no ETA; no rate yet: no ETA), and `... done` instead of the ETA on the final line.
//! On a terminal the line is rewritten in place (`\r...\x1b[K`) at most every 500 ms. Elsewhere
//! (a serial console, a log) every line stays, so a new one is written only at each 10 % step
//! (every 10 s when there is no total), and the final line is the one that says 100 %.
//! Integer arithmetic only: float formatting would add ~10 KiB to the binary.

use crate::cli::size_str;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

const TTY_EVERY: Duration = Duration::from_millis(500);
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    label: String,
    total: Option<u64>,
    tty: bool,
    out: Box<dyn Write>,
    start: Instant,
    /// Bytes already there when this run began (a resumed download): not counted in the rate.
    from: u64,
    /// Terminal: no line before this. Log without a total: the next line's time.
    next: Instant,
    /// Log with a total: the last 10 % step written (0: none yet).
    step: u64,
    /// The last rate the caller gave; it is the final line's too.
    rate: Option<u64>,
    /// Terminal: a line is showing and has no newline yet.
    shown: bool,
}

impl Progress {
    /// `total` in bytes; `tty`: whether `out` is a terminal.
    pub fn new(label: &str, total: Option<u64>, tty: bool, out: Box<dyn Write>) -> Self {
        let now = Instant::now();
        let next = now + if tty { TTY_EVERY } else { LOG_EVERY };
        Progress { label: label.to_owned(), total, tty, out, start: now, from: 0, next, step: 0, rate: None, shown: false }
    }

    pub fn on_stderr(label: &str, total: Option<u64>) -> Self {
        Self::new(label, total, io::stderr().is_terminal(), Box::new(io::stderr()))
    }

    /// The run starts at `done` bytes (resuming): the measured rate counts only what follows.
    pub fn resumed_at(mut self, done: u64) -> Self {
        self.from = done;
        self
    }

    pub fn update(&mut self, done: u64) {
        self.tick(done, None, Instant::now());
    }

    /// `rate` in bytes/s, when the caller knows better than the average since start (md's
    /// sync_speed).
    pub fn update_with_rate(&mut self, done: u64, rate: u64) {
        self.tick(done, Some(rate), Instant::now());
    }

    /// The final line, always written (on a terminal it replaces the updating one).
    pub fn finish(&mut self, done: u64) {
        self.end(done, Instant::now());
    }

    fn end(&mut self, done: u64, now: Instant) {
        let line = self.line(done, now, true);
        let text = if self.tty { format!("\r{line}\x1b[K\n") } else { format!("{line}\n") };
        self.emit(&text);
        self.shown = false;
    }

    fn tick(&mut self, done: u64, rate: Option<u64>, now: Instant) {
        if rate.is_some() {
            self.rate = rate;
        }
        let total = self.total.filter(|&t| t > 0);
        let due = if self.tty {
            now >= self.next
        } else if let Some(t) = total {
            // 100 % is the final line's; a step is printed once, however many were skipped.
            let step = (u128::from(done) * 10 / u128::from(t)) as u64;
            if done < t && step > self.step {
                self.step = step;
                true
            } else {
                false
            }
        } else {
            now >= self.next
        };
        if !due {
            return;
        }
        self.next = now + if self.tty { TTY_EVERY } else { LOG_EVERY };
        let line = self.line(done, now, false);
        if self.tty {
            self.emit(&format!("\r{line}\x1b[K"));
            self.shown = true;
        } else {
            self.emit(&format!("{line}\n"));
        }
    }

    fn emit(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
        let _ = self.out.flush();
    }

    /// `LABEL: DONE[/TOTAL PCT%] RATE/s [ETA M:SS | done]`.
    fn line(&self, done: u64, now: Instant, last: bool) -> String {
        let rate = self.rate.unwrap_or_else(|| {
            let ms = (now.saturating_duration_since(self.start).as_millis() as u64).max(1);
            (u128::from(done.saturating_sub(self.from)) * 1000 / u128::from(ms)).min(u128::from(u64::MAX)) as u64
        });
        let mut s = format!("{}: {}", self.label, size_str(done));
        let total = self.total.filter(|&t| t > 0);
        if let Some(t) = total {
            let pct = u128::from(done.min(t)) * 100 / u128::from(t);
            s.push_str(&format!("/{} {pct:>3}%", size_str(t)));
        }
        s.push_str(&format!(" {}/s", size_str(rate)));
        if last {
            s.push_str(" done");
        } else if let Some(eta) = total.and_then(|t| t.saturating_sub(done).checked_div(rate)) {
            s.push_str(" ETA ");
            if eta >= 3600 {
                s.push_str(&format!("{}:{:02}:{:02}", eta / 3600, eta / 60 % 60, eta % 60));
            } else {
                s.push_str(&format!("{}:{:02}", eta / 60, eta % 60));
            }
        }
        s
    }
}

impl Drop for Progress {
    /// Unfinished (an error ends the work): the terminal's line is erased, so the error message
    /// starts on a clean line.
    fn drop(&mut self) {
        if self.shown {
            self.emit("\r\x1b[K");
        }
    }
}

/// What a reporter wrote, for tests.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Clone, Default)]
pub struct Buf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

#[cfg(any(test, feature = "fuzzing"))]
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Buf {
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.borrow_mut())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;


    fn at(p: &Progress, ms: u64) -> Instant {
        p.start + Duration::from_millis(ms)
    }

    const M: u64 = 1 << 20;

    #[test]
    fn one_line_format() {
        let p = Progress::new("img", Some(100 * M), false, Box::new(Buf::default()));
        // 25 MiB in 5 s: 5 MiB/s, 75 MiB to go: 15 s.
        assert_eq!(p.line(25 * M, at(&p, 5000), false), "img: 25.0M/100.0M  25% 5.0M/s ETA 0:15");
        assert_eq!(p.line(100 * M, at(&p, 20000), true), "img: 100.0M/100.0M 100% 5.0M/s done");
        // Nothing done yet: no rate, no ETA.
        assert_eq!(p.line(0, at(&p, 1000), false), "img: 0B/100.0M   0% 0B/s");
        let q = Progress::new("pipe", None, false, Box::new(Buf::default()));
        assert_eq!(q.line(3 * M, at(&q, 1000), false), "pipe: 3.0M 3.0M/s");
        // A caller's rate wins; ETAs of an hour and more get hours.
        let mut r = Progress::new("md7 recover", Some(8 << 30), false, Box::new(Buf::default()));
        r.rate = Some(M);
        assert_eq!(r.line(1 << 30, at(&r, 1), false), "md7 recover: 1.0G/8.0G  12% 1.0M/s ETA 1:59:28");
        // Resumed at 50 MiB: only what came after counts in the rate.
        let s = Progress::new("img", Some(100 * M), false, Box::new(Buf::default())).resumed_at(50 * M);
        assert_eq!(s.line(60 * M, at(&s, 2000), false), "img: 60.0M/100.0M  60% 5.0M/s ETA 0:08");
    }

    #[test]
    fn log_lines_at_each_10_percent_then_the_final_one() {
        let b = Buf::default();
        let mut p = Progress::new("img", Some(1000), false, Box::new(b.clone()));
        for done in (0..1000).step_by(7) {
            p.tick(done, None, at(&p, done));
        }
        p.end(1000, at(&p, 1000));
        let out = b.take();
        let pcts: Vec<&str> = out.lines().map(|l| l.split_whitespace().nth(2).unwrap()).collect();
        assert_eq!(pcts, ["10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "100%"], "{out}");
        assert!(out.lines().all(|l| l.starts_with("img: ")), "{out}");
        assert!(out.lines().take(9).all(|l| l.contains(" ETA ")), "{out}");
        assert!(out.ends_with(" 100% 1000B/s done\n"), "{out:?}");
        assert!(!out.contains(['\r', '\x1b']), "{out:?}");
        // A jump over several steps writes one line.
        let mut q = Progress::new("img", Some(1000), false, Box::new(b.clone()));
        q.tick(350, None, at(&q, 1));
        q.tick(399, None, at(&q, 2));
        q.tick(999, None, at(&q, 3));
        q.tick(1000, None, at(&q, 4));
        assert_eq!(b.take().lines().count(), 2);
    }

    #[test]
    fn log_lines_every_10_s_without_a_total() {
        let b = Buf::default();
        let mut p = Progress::new("pipe", None, false, Box::new(b.clone()));
        for s in 0..=25 {
            p.tick(s * M, None, at(&p, s * 1000));
        }
        assert_eq!(b.take(), "pipe: 10.0M 1.0M/s\npipe: 20.0M 1.0M/s\n");
    }

    #[test]
    fn terminal_line_rewritten_at_most_every_500_ms() {
        let b = Buf::default();
        let mut p = Progress::new("img", Some(1000), true, Box::new(b.clone()));
        p.tick(100, None, at(&p, 100));
        assert_eq!(b.take(), "", "nothing before 500 ms");
        p.tick(500, None, at(&p, 500));
        assert_eq!(b.take(), "\rimg: 500B/1000B  50% 1000B/s ETA 0:00\x1b[K");
        p.tick(600, None, at(&p, 900));
        assert_eq!(b.take(), "");
        p.tick(1000, None, at(&p, 1000));
        assert!(b.take().starts_with("\rimg: 1000B/1000B 100%"));
        p.end(1000, at(&p, 1000));
        let end = b.take();
        assert!(end.starts_with("\rimg: 1000B/1000B 100% ") && end.ends_with(" done\x1b[K\n"), "{end:?}");
        // Dropped unfinished: the line is erased for the error that follows.
        let mut q = Progress::new("img", Some(1000), true, Box::new(b.clone()));
        q.tick(500, None, at(&q, 600));
        drop(q);
        assert!(b.take().ends_with("\x1b[K\r\x1b[K"));
    }
}
