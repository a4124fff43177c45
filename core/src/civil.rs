//! Calendar dates of unix times in UTC (no time zone database in the initramfs): one
//! conversion for every message that shows a time.

/// Seconds since 1970-01-01 00:00:00 UTC as (year, month 1-12, day 1-31, hour, minute, second).
/// Howard Hinnant's civil-from-days in 400-year eras of 146097 days from 0000-03-01; unsigned
/// throughout, so every u64 has an answer.
pub fn from_unix(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(from_unix(1_795_824_000 + 3_723), (2026, 11, 28, 1, 2, 3));
        let _ = from_unix(u64::MAX);
    }
}
