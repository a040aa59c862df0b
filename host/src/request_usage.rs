//! The request of a `usage` read (docs/cli.md, "usage"): the App, `usage_until` (the end of every
//! account's window, a closed hour) and the accounts, each with `usage_from`. The account rows
//! follow the sync's rules (`request.rs`, [`SyncRows`]): a bad row, or a bad window, becomes that
//! account's `error` row; only a bad App or `usage_until` fails the request as a whole.

use serde::Deserialize;
use serde_json::Value;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::request::{self, InvalidRow, RequestError, SyncRows, quote};

/// The longest window an account may ask for: 31 days of hours.
pub const MAX_WINDOW_HOURS: i64 = 744;

/// A usage read, ready for the module.
#[derive(Debug)]
pub struct UsageRequest {
    pub app: wit::AppSettings,
    /// `usage_until`, Unix seconds.
    pub until: i64,
    /// The valid accounts with the first hour of their window.
    pub queries: Vec<wit::UsageQuery>,
    /// `(index in the request, why)`, ascending.
    pub invalid: Vec<(usize, InvalidRow)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    app: wit::AppSettings,
    usage_until: Value,
    accounts: Vec<Value>,
}

/// Parses a usage request; `now` is the host clock (Unix seconds): `usage_until` may not be later
/// than the start of its hour (only closed hours are read).
pub fn parse(bytes: &[u8], now: i64) -> Result<UsageRequest, RequestError> {
    let raw: Raw = request::parse(bytes)?;
    let invalid = |problem: String| RequestError::Invalid { at: "usage_until: ".to_string(), problem };
    let until = match &raw.usage_until {
        Value::String(text) => parse_hour(text).map_err(invalid)?,
        other => return Err(invalid(format!("expected a time such as \"2026-12-06T12:00:00Z\", got {other}"))),
    };
    let current_hour = now - now.rem_euclid(3600);
    if until > current_hour {
        return Err(invalid(format!(
            "{} is later than the start of the current hour ({}): only closed hours can be billed",
            iso_hour(until),
            iso_hour(current_hour)
        )));
    }
    let mut out = UsageRequest { app: raw.app, until, queries: Vec::new(), invalid: Vec::new() };
    for (index, row) in raw.accounts.into_iter().enumerate() {
        match query(row, until) {
            Ok(query) => out.queries.push(query),
            Err(why) => out.invalid.push((index, why)),
        }
    }
    Ok(out)
}

/// One account row: the sync's row rules, then its `usage_from`.
fn query(row: Value, until: i64) -> Result<wit::UsageQuery, InvalidRow> {
    let (row, from) = match row {
        Value::Object(mut fields) => {
            let from = fields.remove("usage_from");
            (Value::Object(fields), Some(from))
        }
        other => (other, None),
    };
    let rows: SyncRows = serde_json::from_value(Value::Array(vec![row]))
        .map_err(|e| InvalidRow { account_id: None, problem: format!("the row cannot be read: {e}") })?;
    let account = rows.valid.into_iter().next().ok_or_else(|| rows.invalid[0].1.clone());
    let window = from.map(|from| window_start(from, until));
    match (account, window) {
        (Ok(account), Some(Ok(from))) => Ok(wit::UsageQuery { account, from }),
        (Ok(account), Some(Err(problem))) => Err(InvalidRow { account_id: Some(account.id), problem }),
        (Err(mut why), Some(Err(problem))) => {
            why.problem = format!("{}; {problem}", why.problem);
            Err(why)
        }
        (Err(why), _) => Err(why),
        (Ok(_), None) => unreachable!("an account is read only from an object"),
    }
}

/// A row's `usage_from` (missing: `None`): a whole hour before `until`, at most
/// [`MAX_WINDOW_HOURS`] before it.
fn window_start(from: Option<Value>, until: i64) -> Result<i64, String> {
    let from = match from {
        Some(Value::String(text)) => parse_hour(&text).map_err(|e| format!("usage_from {e}"))?,
        Some(other) => {
            return Err(format!(
                "usage_from is {}, not a time such as \"2026-12-05T12:00:00Z\"",
                quote(&other.to_string())
            ));
        }
        None => return Err("missing field `usage_from`".to_string()),
    };
    if from >= until {
        return Err(format!("usage_from {} is not before usage_until {}", iso_hour(from), iso_hour(until)));
    }
    if until - from > MAX_WINDOW_HOURS * 3600 {
        return Err(format!(
            "usage_from {} is {} hours before usage_until; a window is at most {MAX_WINDOW_HOURS} hours (31 days)",
            iso_hour(from),
            (until - from) / 3600
        ));
    }
    Ok(from)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, read and written by the `time` crate.
const ISO_UTC: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// `YYYY-MM-DDTHH:00:00Z` as Unix seconds; the error says what is wrong (quoting the value).
pub fn parse_hour(text: &str) -> Result<i64, String> {
    let b = text.as_bytes();
    let digit_at = |i: usize| b[i].is_ascii_digit();
    let shaped = b.len() == 20
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18].into_iter().all(digit_at);
    if !shaped {
        return Err(format!("{} is not a UTC time such as \"2026-12-06T12:00:00Z\"", quote(text)));
    }
    let time = PrimitiveDateTime::parse(text, ISO_UTC)
        .ok()
        .filter(|t| (1970..=9999).contains(&t.year()))
        .ok_or_else(|| format!("{} is not a valid date and hour", quote(text)))?;
    if time.minute() != 0 || time.second() != 0 {
        return Err(format!("{} is not a whole hour (minutes and seconds must be 00)", quote(text)));
    }
    Ok(time.assume_utc().unix_timestamp())
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (the bare number past what the calendar holds).
pub fn iso_hour(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(ISO_UTC).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTIL: i64 = 1_796_558_400; // 2026-12-06T12:00:00Z

    fn request(until: &str, accounts: &str) -> Vec<u8> {
        format!(r#"{{"app":{{"status_url":"https://x"}},"usage_until":{until},"accounts":[{accounts}]}}"#).into_bytes()
    }

    #[test]
    fn hours_are_read_and_written_in_utc() {
        assert_eq!(parse_hour("2026-12-06T12:00:00Z"), Ok(UNTIL));
        assert_eq!(iso_hour(UNTIL), "2026-12-06T12:00:00Z");
        assert_eq!(parse_hour("2024-02-29T00:00:00Z").map(iso_hour).as_deref(), Ok("2024-02-29T00:00:00Z"));
        for (bad, needle) in [
            ("2026-12-06T12:30:00Z", "not a whole hour"),
            ("2026-12-06 12:00:00", "not a UTC time"),
            ("2026-12-06T12:00:00+01:00", "not a UTC time"),
            ("2025-02-29T00:00:00Z", "not a valid date"),
            ("2026-12-06T24:00:00Z", "not a valid date"),
        ] {
            let e = parse_hour(bad).unwrap_err();
            assert!(e.contains(needle) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_window_or_row_is_that_accounts_error_and_the_others_run() {
        let rows = r#"{"id":1,"client_id":2,"status":"Active","custom_fields":{"cloudpeid":"12"},"usage_from":"2026-12-05T12:00:00Z"},
            {"id":2,"client_id":2,"status":"Active","usage_from":"2026-12-06T12:00:00Z"},
            {"id":3,"client_id":2,"status":"Active","usage_from":"2026-11-01T00:00:00Z"},
            {"id":4,"client_id":2,"status":"Active"},
            {"id":5,"client_id":2,"status":"Gone","usage_from":"2026-12-05T12:30:00Z"},
            {"id":6,"client_id":2,"status":"Active","usage_from":12},
            "x",
            {"id":8,"client_id":2,"status":"Pending","usage_from":"2026-11-05T12:00:00Z"}"#;
        let r = parse(&request("\"2026-12-06T12:00:00Z\"", rows), UNTIL + 10).unwrap();
        assert_eq!(r.until, UNTIL);
        assert_eq!(
            r.queries.iter().map(|q| (q.account.id, q.from)).collect::<Vec<_>>(),
            [(1, UNTIL - 86_400), (8, UNTIL - 744 * 3600)]
        );
        let problems: Vec<(usize, Option<u64>, &str)> =
            r.invalid.iter().map(|(i, row)| (*i, row.account_id, row.problem.as_str())).collect();
        assert_eq!(problems.len(), 6);
        assert!(problems[0].2.contains("is not before usage_until"), "{problems:?}");
        assert!(problems[1].2.contains("at most 744 hours"), "{problems:?}");
        assert_eq!(problems[2], (3, Some(4), "missing field `usage_from`"));
        assert!(problems[3].2.contains("status") && problems[3].2.contains("not a whole hour"), "{problems:?}");
        assert!(problems[4].2.contains("usage_from is \"12\""), "{problems:?}");
        assert_eq!((problems[5].0, problems[5].1), (6, None));
    }

    #[test]
    fn usage_until_must_be_a_closed_hour() {
        let e = parse(&request("\"2026-12-06T12:00:00Z\"", ""), UNTIL - 1).unwrap_err().to_string();
        assert!(e.starts_with("usage_until: ") && e.contains("only closed hours"), "{e}");
        assert!(parse(&request("\"2026-12-06T12:00:00Z\"", ""), UNTIL).is_ok(), "the hour just closed");
        let e = parse(&request("\"2026-12-06T12:15:00Z\"", ""), UNTIL * 2).unwrap_err().to_string();
        assert!(e.contains("not a whole hour"), "{e}");
        let e = parse(&request("1796558400", ""), UNTIL * 2).unwrap_err().to_string();
        assert!(e.contains("expected a time"), "{e}");
        let e = parse(br#"{"app":{},"accounts":[]}"#, UNTIL).unwrap_err().to_string();
        assert!(e.contains("usage_until"), "{e}");
    }
}
