//! CloudPe's billing-history times (`yyyy-MM-dd HH:mm:ss`, in the App's usage time zone) and
//! Unix seconds, through the `time` crate.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset, format_description::BorrowedFormatItem};

const CLOUDPE: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `yyyy-MM-dd HH:mm:ss` of a Unix time shifted by `offset` seconds (the wall clock there); the
/// bare number for a time past what the calendar holds (beyond year 9999).
pub fn format(unix: i64, offset: i64) -> String {
    let shown = || {
        let offset = UtcOffset::from_whole_seconds(i32::try_from(offset).ok()?).ok()?;
        OffsetDateTime::from_unix_timestamp(unix).ok()?.checked_to_offset(offset)?.format(CLOUDPE).ok()
    };
    shown().unwrap_or_else(|| unix.to_string())
}

/// The Unix time of `yyyy-MM-dd HH:mm:ss` read as a wall clock `offset` seconds east of UTC
/// (`[year]` would take a sign too: `+2026-…` is refused first).
pub fn parse(text: &str, offset: i64) -> Option<i64> {
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let offset = UtcOffset::from_whole_seconds(i32::try_from(offset).ok()?).ok()?;
    Some(PrimitiveDateTime::parse(text, CLOUDPE).ok()?.assume_offset(offset).unix_timestamp())
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
