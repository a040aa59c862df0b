//! CloudPe's billing-history times (`yyyy-MM-dd HH:mm:ss`, in the App's usage time zone) and
//! Unix seconds, without a calendar crate: the proleptic Gregorian day count.

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

/// `yyyy-MM-dd HH:mm:ss` of a Unix time shifted by `offset` seconds (the wall clock there).
pub fn format(unix: i64, offset: i64) -> String {
    let local = unix + offset;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The Unix time of `yyyy-MM-dd HH:mm:ss` read as a wall clock `offset` seconds east of UTC.
pub fn parse(text: &str, offset: i64) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &text[range];
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_any_offset() {
        assert_eq!(format(0, 0), "1970-01-01 00:00:00");
        // 2026-12-06T12:00:00Z
        let t = 1_796_558_400;
        assert_eq!(format(t, 0), "2026-12-06 12:00:00");
        assert_eq!(format(t, 19_800), "2026-12-06 17:30:00");
        assert_eq!(format(t, -10_800), "2026-12-06 09:00:00");
        for offset in [0, 19_800, -10_800] {
            for unix in [t, t - 1, 951_782_400 /* 2000-02-29 */, 4_107_542_400] {
                assert_eq!(parse(&format(unix, offset), offset), Some(unix), "{unix} {offset}");
            }
        }
        for bad in ["2026-02-30 00:00:00", "2026-12-06T12:00:00", "2026-12-06 24:00:00", "2026-1-06 12:00:00", "x"] {
            assert_eq!(parse(bad, 0), None, "{bad}");
        }
    }
}
