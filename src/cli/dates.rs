//! Days and times as the command line reads and prints them, in UTC.

/// `secs` since the epoch as `YYYY-MM-DD HH:MM` (UTC).
pub(super) fn utc(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// `YYYY-MM-DD` as the seconds since the epoch of that day's midnight, UTC.
pub(super) fn parse_day(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not a date as YYYY-MM-DD");
    let mut parts = s.splitn(3, '-').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (y, m, d) = match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => (y?, m?, d?),
        _ => return Err(bad()),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if s.len() != 10 || !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return Err(bad());
    }
    // Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (the
    // civil-from-days algorithm of Howard Hinnant, run backwards).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400)
}

/// A span of whole seconds in one of [`dvt::ops::gc::parse_span`]'s forms that says it
/// exactly: the biggest unit, but days and weeks only from two on (`24h`, `7d`).
pub(super) fn span(secs: u64) -> String {
    const UNITS: [(u64, char); 4] = [(7 * 86_400, 'w'), (86_400, 'd'), (3600, 'h'), (60, 'm')];
    match UNITS
        .iter()
        .find(|&&(unit, c)| secs > 0 && secs.is_multiple_of(unit) && (secs / unit >= 2 || "hm".contains(c)))
    {
        Some((unit, c)) => format!("{}{c}", secs / unit),
        None => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_day, span, utc};
    use dvt::ops::gc::parse_span;

    #[test]
    fn spans_read_and_print() {
        assert_eq!(parse_span("24h").map(|d| d.as_secs()), Ok(86_400));
        assert_eq!(parse_span("0").map(|d| d.as_secs()), Ok(0));
        assert_eq!(parse_span("90m").map(|d| d.as_secs()), Ok(5_400));
        assert_eq!(parse_span("2w").map(|d| d.as_secs()), Ok(1_209_600));
        for bad in ["", "h", "24", "-1h", "1.5h", "24 h", "1y", "99999999999999999w"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
        assert_eq!(span(86_400), "24h");
        assert_eq!(span(7 * 86_400), "7d");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(5_400), "90m");
        assert_eq!(span(1_209_600), "2w");
        assert_eq!(span(90), "90s");
        assert_eq!(span(0), "0s");
    }

    #[test]
    fn days_are_midnight_utc() {
        assert_eq!(parse_day("1970-01-01"), Ok(0));
        assert_eq!(parse_day("2000-03-01"), Ok(951_868_800));
        assert_eq!(parse_day("2026-12-04"), Ok(1_796_342_400));
        assert_eq!(parse_day("2024-02-29"), Ok(1_709_164_800));
        assert_eq!(utc(1_796_342_400 + 3_600 * 13 + 60 * 7), "2026-12-04 13:07");
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-5",
            "26-01-05",
            "2026-01",
            "yesterday",
            "2026-01-00",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}
