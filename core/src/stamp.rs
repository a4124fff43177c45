//! Boot-time stamps: `liveroot-stamp STEP SECONDS` lines on the console, SECONDS being the time
//! since the kernel started (CLOCK_BOOTTIME, the clock of /proc/uptime), printed only when the
//! kernel command line has `liveroot.stamps` ([`crate::cmdline::Live::stamps`]). `make bench`
//! (mk/bench.sh) asks for them and turns them into its per-step table. The steps of a live boot,
//! in order: `init-start` (/init's first line), `modules`, `medium` (found and mounted),
//! `verified`, `image` (squashfs and rootfs mounted), `root` (/sysroot mounted), `state`
//! (/run/live/state written), `init-exec` (switch-root begins) and, from the sample OS,
//! `real-init`. A step done again (the next pair after a refusal) stamps again: the last counts.

/// Seconds since the kernel started, as /proc/uptime counts them; `None` if the clock fails.
pub fn now() -> Option<f64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    Some(t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// The stamp line for `step` at `secs` (milliseconds: /proc/uptime gives hundredths).
pub fn line(step: &str, secs: f64) -> String {
    format!("liveroot-stamp {step} {secs:.3}")
}

/// A stamp time given on a command line (/init's `read up _ </proc/uptime`): a plain decimal.
pub fn parse_secs(s: &str) -> Option<f64> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.bytes().filter(|&b| b == b'.').count() <= 1;
    ok.then(|| s.parse().ok()).flatten().filter(|v: &f64| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_the_bench_reads_them() {
        assert_eq!(line("modules", 1.5), "liveroot-stamp modules 1.500");
        assert_eq!(line("init-start", 0.0004), "liveroot-stamp init-start 0.000");
        assert!(now().is_some_and(|t| t > 0.0));
        assert_eq!(parse_secs("12.34"), Some(12.34));
        assert_eq!(parse_secs("7"), Some(7.0));
        for bad in ["", "1.2.3", "-1", "1e9", "inf", "nan", "1 2"] {
            assert_eq!(parse_secs(bad), None, "{bad:?}");
        }
    }
}
