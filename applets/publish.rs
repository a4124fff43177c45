//! publish — the publisher's side: what mk/sign.sh asks the binary for, so that the trusted
//! comment is written by the same code that reads it.
//!
//! ```text
//! publish comment --version N [--rollout PCT|START+DURATION] [--expires UNIX|+SECONDS]
//! ```
//! `comment` prints the trusted comment for a release (src/rollout.rs, `TrustedComment`).
//! Exit: 0 ok, 1 failure, 2 usage.

use crate::error::{Error, Result};
use crate::rollout::{self, TrustedComment};
use argh::FromArgs;
use std::io::Write;

pub const SUMMARY: &str = "publisher tools: format a trusted comment";

#[derive(FromArgs)]
/// Publisher tools: the trusted comment, as the boxes read it.
/// Exit codes: 0 ok, 1 failure, 2 usage.
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Comment(CommentArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "comment")]
/// Print the trusted comment to sign a release with: version=N [rollout=R] [expires=T],
/// each checked as the boxes will read it.
/// Example: publish comment --version 7 --rollout 25 --expires +604800
struct CommentArgs {
    #[argh(option)]
    /// the release's version
    version: u64,
    #[argh(option)]
    /// PCT (0 to 100, two decimals) or START+DURATION (unix seconds)
    rollout: Option<String>,
    #[argh(option)]
    /// UNIXTIME, or +SECONDS from now, when boxes refuse the manifest
    expires: Option<String>,
}

pub fn run(argv: &[String]) -> Result<()> {
    let args: Args = crate::cli::parse(argv, "")?;
    match args.cmd {
        Cmd::Comment(a) => comment(&a),
    }
}

fn comment(a: &CommentArgs) -> Result<()> {
    let rollout = a.rollout.as_deref().map(rollout::parse_rollout).transpose().map_err(Error::usage)?;
    let expires = match a.expires.as_deref() {
        None => None,
        Some(e) => {
            let bad = || Error::usage(format!("--expires {e}: UNIXTIME or +SECONDS"));
            let (relative, digits) = e.strip_prefix('+').map_or((false, e), |d| (true, d));
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n: u64 = digits.parse().map_err(|_| bad())?;
            if relative {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                Some(now.checked_add(n).ok_or_else(bad)?)
            } else {
                Some(n)
            }
        }
    };
    let tc = TrustedComment { version: a.version, policy: rollout::Policy { rollout, expires } };
    let _ = std::io::stdout().write_all(format!("{tc}\n").as_bytes());
    Ok(())
}
