//! CloudPe's billing-history times (`yyyy-MM-dd HH:mm:ss`, in the App's usage time zone) and
//! Unix seconds. The calendar is the `time` crate's; its format-description parser and formatter
//! are not linked into the component (they made it 64 KiB larger), the fixed layout is read here.

use time::{Date, Month, OffsetDateTime, UtcOffset};

/// `yyyy-MM-dd HH:mm:ss` of a Unix time shifted by `offset` seconds (the wall clock there); the
/// bare number for a time past what the calendar holds (beyond year 9999).
pub fn format(unix: i64, offset: i64) -> String {
    let local = || {
        let offset = UtcOffset::from_whole_seconds(i32::try_from(offset).ok()?).ok()?;
        OffsetDateTime::from_unix_timestamp(unix).ok()?.checked_to_offset(offset)
    };
    match local() {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => unix.to_string(),
    }
}

/// The Unix time of `yyyy-MM-dd HH:mm:ss` read as a wall clock `offset` seconds east of UTC.
pub fn parse(text: &str, offset: i64) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u16> {
        let part = &text[range];
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let small = |range| num(range).and_then(|n| u8::try_from(n).ok());
    let month = Month::try_from(small(5..7)?).ok()?;
    let date = Date::from_calendar_date(i32::from(num(0..4)?), month, small(8..10)?).ok()?;
    let time = date.with_hms(small(11..13)?, small(14..16)?, small(17..19)?).ok()?;
    let offset = UtcOffset::from_whole_seconds(i32::try_from(offset).ok()?).ok()?;
    Some(time.assume_offset(offset).unix_timestamp())
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
        for bad in [
            "2026-02-30 00:00:00",
            "2026-12-06T12:00:00",
            "2026-12-06 24:00:00",
            "2026-1-06 12:00:00",
            "+2026-12-06 12:00:00",
            "2026-12-06 12:00:00 ",
            "x",
        ] {
            assert_eq!(parse(bad, 0), None, "{bad}");
        }
    }
}
