//! The trial take before an image boots (`liveinit trial take`, and the boot itself): one try
//! counted on the medium's trial file for the image that boots, or the reason it must not boot.
//! It fails closed: a try that cannot be written is a fallback (an uncounted try could repeat
//! forever), and so is a fetched image whose trial must begin without a file to count it in.

use crate::error::Error;
use crate::trial::{self, Boot, Ident, Start};
use std::path::Path;

/// The answer of a take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Tries left after this boot; `None`: not on trial.
    pub left: Option<u8>,
    /// Why the image must not boot (the previous one boots); `None`: boot it.
    pub fallback: Option<String>,
    /// The highest version that failed a trial (0: none).
    pub failed: u64,
    /// The highest version marked good (0: none).
    pub floor: u64,
    /// What to say about it (without the `trial: ` prefix); empty: nothing.
    pub note: String,
}

impl Taken {
    /// `TRIAL_*` shell assignments for the old /init's eval (`liveinit trial take`).
    pub fn to_shell(&self) -> String {
        crate::cmdline::sh_assignments(&[
            ("TRIAL", self.left.map(|n| n.to_string()).unwrap_or_default()),
            ("TRIAL_FALLBACK", self.fallback.clone().unwrap_or_default()),
            ("TRIAL_FAILED", trial::nonzero(self.failed)),
            ("TRIAL_FLOOR", trial::nonzero(self.floor)),
        ])
    }
}

/// Take (or with `peek`, decide without writing) a try of `img` in the trial file `file` (an
/// error: none could be found). `start`: a fetched image, whose trial begins here.
pub fn take(file: Result<&Path, &Error>, img: Option<&Ident>, start: Option<Start>, peek: bool, via_fs: bool) -> Taken {
    // A fetched image's trial that must begin needs somewhere to count its tries; without it
    // the image does not boot (it would boot untried at every boot, a crash loop for ever).
    let must_count = |why: String| match start {
        Some(s) if s.tries > 0 => {
            Boot::Fallback(format!("{why}: a fetched image's tries cannot be counted; it does not boot untried (rd.live.tries=0 allows that)"))
        }
        Some(_) => Boot::Plain(format!("{}: rd.live.tries=0: boots untried ({why})", img.map(|i| i.label()).unwrap_or_default())),
        None => Boot::Plain(why),
    };
    let (boot, cur) = match (file, img) {
        (_, None) => (Boot::Plain("the image is unchecked: no trial".into()), None),
        (Err(e), _) => (must_count(format!("no trial state: {e}")), None),
        (Ok(path), Some(img)) => match trial::read(path) {
            Ok(None) => (must_count(format!("{}: missing, no trial state (a flash from before trials)", path.display())), None),
            Err(e) => (must_count(format!("no trial state: {e}")), None),
            Ok(Some(cur)) => {
                let (boot, w) = trial::take(cur.record.as_ref(), img, start);
                // A fresh file has no record in either copy: normal. Anything else is news.
                let boot = match boot {
                    Boot::Plain(why) if cur.bad.iter().any(|b| b.is_some_and(|b| !b.starts_with("no record"))) && cur.record.is_none() => {
                        Boot::Plain(format!("{why}: {}", cur.why()))
                    }
                    b => b,
                };
                let mut rec = cur.record.clone();
                let boot = match w {
                    None => boot,
                    Some(w) if peek => {
                        rec = Some(w);
                        boot
                    }
                    Some(_) => match trial::update(path, via_fs, |c| trial::take(c, img, start).1) {
                        Ok(w) => {
                            rec = w.or(rec);
                            boot
                        }
                        Err(e) => Boot::Fallback(match boot {
                            Boot::Fallback(why) => format!("{why} (not recorded: {e})"),
                            _ => format!("cannot count the try on the flash ({e}): a try not counted could repeat forever"),
                        }),
                    },
                };
                (boot, rec)
            }
        },
    };
    let failed = cur.as_ref().map_or(0, |r| r.failed_version);
    let floor = cur.as_ref().map_or(0, |r| r.floor);
    let label = img.map(|i| i.label()).unwrap_or_default();
    let (left, fallback, note) = match boot {
        Boot::Plain(why) => (None, None, why),
        Boot::Trial(n) => {
            let tries = cur.as_ref().map_or(0, |r| r.tries);
            (Some(n), None, format!("{label} is on trial: try {} of {tries}, {n} left after this boot", tries.saturating_sub(n)))
        }
        Boot::Fallback(why) => (None, Some(why.clone()), why),
    };
    Taken { left, fallback, failed, floor, note }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(v: u64) -> Ident {
        Ident { version: v, sha256: [v as u8; 32] }
    }

    #[test]
    fn unchecked_images_are_never_on_trial() {
        let t = take(Ok(Path::new("/nonexistent/trial.state")), None, None, false, false);
        assert_eq!((t.left, t.fallback.as_deref()), (None, None));
    }

    #[test]
    fn a_fetched_image_without_a_trial_file_does_not_boot_untried() {
        let e = Error::new("/run/live/state", "no medium");
        let t = take(Err(&e), Some(&img(2)), Some(Start { tries: 3, keep: 1 }), false, false);
        assert!(t.fallback.unwrap().ends_with("does not boot untried (rd.live.tries=0 allows that)"));
        let t = take(Ok(Path::new("/nonexistent/trial.state")), Some(&img(2)), Some(Start { tries: 3, keep: 1 }), false, false);
        assert!(t.fallback.is_some());
        // rd.live.tries=0: untried, said so.
        let t = take(Err(&e), Some(&img(2)), Some(Start { tries: 0, keep: 1 }), false, false);
        assert_eq!(t.fallback, None);
        assert!(t.note.contains("rd.live.tries=0: boots untried"), "{}", t.note);
        // A medium's image without a file: a plain boot.
        let t = take(Err(&e), Some(&img(2)), None, false, false);
        assert_eq!((t.left, t.fallback.as_deref()), (None, None));
    }

    #[test]
    fn peek_then_take_on_a_real_file() {
        let dir = std::env::temp_dir().join(format!("boot-take-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("trial.state");
        trial::create(&f).unwrap();
        let start = Some(Start { tries: 2, keep: 1 });
        let peek = take(Ok(&f), Some(&img(2)), start, true, true);
        assert_eq!(peek.left, Some(1));
        assert!(trial::read(&f).unwrap().unwrap().record.is_none(), "a peek writes nothing");
        let t = take(Ok(&f), Some(&img(2)), start, false, true);
        assert_eq!(t.left, Some(1));
        assert_eq!(t.note, "version 2 is on trial: try 1 of 2, 1 left after this boot");
        let t = take(Ok(&f), Some(&img(2)), start, false, true);
        assert_eq!(t.left, Some(0));
        let t = take(Ok(&f), Some(&img(2)), start, false, true);
        assert_eq!(t.fallback.as_deref(), Some("version 2 failed its trial: 2 boots without mark-good"));
        assert_eq!(t.failed, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
