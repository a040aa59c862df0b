//! A billing-history reply read into hours: every number kept as the text CloudPe wrote (so an
//! amount is never a float), the rows of one hour summed exactly, and any row the module cannot
//! place or read failing the account rather than billing it wrong.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::decimal::Decimal;
use super::time;
use crate::wit::ModuleError;

/// One hour of an account's usage, summed over its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hour {
    /// Unix seconds (UTC), a whole hour.
    pub start: i64,
    pub cost: String,
    pub bonus: String,
    /// (name, value), the names those of the report (docs/cli.md, "usage").
    pub facts: Vec<(&'static str, String)>,
}

/// The body with every JSON number (outside strings) turned into a string of its own text:
/// serde_json (without `arbitrary_precision`, which would change every number of the workspace)
/// reads numbers as floats, and an amount must stay exact.
pub fn quote_numbers(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(body.len());
                out.extend_from_slice(&body[start..i]);
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < body.len() && matches!(body[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                out.push(b'"');
                out.extend_from_slice(&body[start..i]);
                out.push(b'"');
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

#[derive(Deserialize)]
struct History {
    array: Option<Vec<Row>>,
}

/// The members of a row the module reads; the others are ignored. Numbers arrive as their text
/// ([`quote_numbers`]).
#[derive(Deserialize)]
struct Row {
    #[serde(rename = "dateTime")]
    date_time: Option<String>,
    cost: Option<String>,
    #[serde(rename = "isBonus", default, deserialize_with = "flag")]
    is_bonus: bool,
    #[serde(rename = "resourceCost")]
    resource_cost: Option<String>,
    #[serde(rename = "storageCost")]
    storage_cost: Option<String>,
    #[serde(rename = "networkExtCost")]
    network_ext_cost: Option<String>,
}

/// `true`/`false`, or `1`/`0` (a number's text here); absent or `null` is false.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Option::<Flag>::deserialize(d)? {
        None => Ok(false),
        Some(Flag::Bool(b)) => Ok(b),
        Some(Flag::Text(t)) if t == "1" => Ok(true),
        Some(Flag::Text(t)) if t == "0" => Ok(false),
        Some(Flag::Text(t)) => Err(serde::de::Error::custom(format!("isBonus is {}", short(&t)))),
    }
}

/// A value quoted for an error, cut to 40 characters.
fn short(text: &str) -> String {
    match text.char_indices().nth(40) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

#[derive(Default)]
struct Sums {
    cost: Decimal,
    bonus: Decimal,
    resource: Option<Decimal>,
    storage: Option<Decimal>,
    traffic: Option<Decimal>,
    rows: u64,
}

/// The hours of `uid`'s window `[from, until)` in a billing-history reply `body` (already judged
/// by its envelope), `offset` the App's usage time zone.
pub fn hours(body: &[u8], uid: u64, from: i64, until: i64, offset: i64) -> Result<Vec<Hour>, ModuleError> {
    let unexpected = |what: String| {
        ModuleError::Unexpected(format!("CloudPe's billing history of user {uid} {what}: nothing of it is billed"))
    };
    let history: History = serde_json::from_slice(&quote_numbers(body))
        .map_err(|e| unexpected(format!("has an unexpected shape ({e})")))?;
    let rows = history.array.ok_or_else(|| unexpected("has no `array` of rows".to_string()))?;
    let mut by_hour: BTreeMap<i64, Sums> = BTreeMap::new();
    for row in rows {
        let when = row.date_time.ok_or_else(|| unexpected("has a row without a dateTime".to_string()))?;
        let start =
            time::parse(&when, offset).ok_or_else(|| unexpected(format!("has a row dated {}", short(&when))))?;
        if start % 3600 != 0 || start < from || start >= until {
            return Err(unexpected(format!(
                "has a row dated {} ({}), outside the hours asked for ({} to {}, the App's usage time zone)",
                short(&when),
                if start % 3600 != 0 { "not the start of an hour" } else { "outside the window" },
                time::format(from, offset),
                time::format(until, offset)
            )));
        }
        let amount = |name: &str, text: &Option<String>| -> Result<Option<Decimal>, ModuleError> {
            text.as_deref()
                .map(|t| {
                    Decimal::parse(t)
                        .ok_or_else(|| unexpected(format!("has a row of {when} whose {name} is {}", short(t))))
                })
                .transpose()
        };
        let cost =
            amount("cost", &row.cost)?.ok_or_else(|| unexpected(format!("has a row of {when} without a cost")))?;
        let (resource, storage, traffic) = (
            amount("resourceCost", &row.resource_cost)?,
            amount("storageCost", &row.storage_cost)?,
            amount("networkExtCost", &row.network_ext_cost)?,
        );
        let overflow = || unexpected(format!("sums to more than this module can hold at {when}"));
        let sums = by_hour.entry(start).or_default();
        sums.cost = sums.cost.checked_add(cost).ok_or_else(overflow)?;
        if row.is_bonus {
            sums.bonus = sums.bonus.checked_add(cost).ok_or_else(overflow)?;
        }
        for (sum, part) in [(&mut sums.resource, resource), (&mut sums.storage, storage), (&mut sums.traffic, traffic)]
        {
            if let Some(part) = part {
                *sum = Some(sum.unwrap_or_default().checked_add(part).ok_or_else(overflow)?);
            }
        }
        sums.rows += 1;
    }
    Ok(by_hour
        .into_iter()
        .map(|(start, s)| {
            let facts = [
                s.resource.map(|d| ("resource_cost", d.to_string())),
                s.storage.map(|d| ("storage_cost", d.to_string())),
                s.traffic.map(|d| ("traffic_cost", d.to_string())),
                Some(("rows", s.rows.to_string())),
            ];
            Hour {
                start,
                cost: s.cost.to_string(),
                bonus: s.bonus.to_string(),
                facts: facts.into_iter().flatten().collect(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: i64 = 1_796_472_000; // 2026-12-05 12:00:00 UTC
    const UNTIL: i64 = FROM + 24 * 3600;

    #[test]
    fn numbers_become_their_text_and_strings_stay() {
        let body = br#"{"result":0,"a":[1.10,-2e-3,{"s":"x\"1.5","n":null,"b":true}]}"#;
        assert_eq!(
            String::from_utf8(quote_numbers(body)).unwrap(),
            r#"{"result":"0","a":["1.10","-2e-3",{"s":"x\"1.5","n":null,"b":true}]}"#
        );
    }

    #[test]
    fn rows_of_one_hour_are_summed_exactly_with_the_bonus_apart() {
        let body = br#"{"result":0,"array":[
            {"dateTime":"2026-12-05 13:00:00","cost":0.1,"resourceCost":0.08,"storageCost":0.02,"isBonus":false,"nodeid":5},
            {"dateTime":"2026-12-05 13:00:00","cost":0.2,"networkExtCost":0.2,"isBonus":true},
            {"dateTime":"2026-12-05 12:00:00","cost":1.00000000000000000001}
        ]}"#;
        let hours = hours(body, 12, FROM, UNTIL, 0).unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!(
            (hours[0].start, hours[0].cost.as_str(), hours[0].bonus.as_str()),
            (FROM, "1.00000000000000000001", "0")
        );
        assert_eq!(hours[0].facts, vec![("rows", "1".to_string())]);
        assert_eq!((hours[1].start, hours[1].cost.as_str(), hours[1].bonus.as_str()), (FROM + 3600, "0.3", "0.2"));
        assert_eq!(
            hours[1].facts,
            vec![
                ("resource_cost", "0.08".to_string()),
                ("storage_cost", "0.02".to_string()),
                ("traffic_cost", "0.2".to_string()),
                ("rows", "2".to_string())
            ]
        );
    }

    #[test]
    fn the_time_zone_moves_the_hours() {
        let body = br#"{"result":0,"array":[{"dateTime":"2026-12-05 17:30:00","cost":1}]}"#;
        assert_eq!(hours(body, 12, FROM, UNTIL, 19_800).unwrap()[0].start, FROM);
        let error = hours(body, 12, FROM, UNTIL, 0).unwrap_err();
        assert!(matches!(&error, ModuleError::Unexpected(m) if m.contains("not the start of an hour")), "{error:?}");
    }

    #[test]
    fn a_row_that_cannot_be_placed_or_read_fails_the_account() {
        for (row, needle) in [
            (r#"{"dateTime":"2026-12-06 12:00:00","cost":1}"#, "outside the window"),
            (r#"{"dateTime":"2026-12-05 11:00:00","cost":1}"#, "outside the window"),
            (r#"{"dateTime":"05/12/2026 13:00","cost":1}"#, "\"05/12/2026 13:00\""),
            (r#"{"dateTime":"2026-12-05 13:00:00","cost":"1,5"}"#, "cost is \"1,5\""),
            (r#"{"dateTime":"2026-12-05 13:00:00","cost":1e400}"#, "cost is \"1e400\""),
            (r#"{"dateTime":"2026-12-05 13:00:00"}"#, "without a cost"),
            (r#"{"cost":1}"#, "without a dateTime"),
            (r#"{"dateTime":"2026-12-05 13:00:00","cost":1,"storageCost":"n/a"}"#, "storageCost is \"n/a\""),
        ] {
            let body = format!(r#"{{"result":0,"array":[{row}]}}"#);
            let error = hours(body.as_bytes(), 12, FROM, UNTIL, 0).unwrap_err();
            assert!(
                matches!(&error, ModuleError::Unexpected(m) if m.contains(needle) && m.contains("user 12")),
                "{row}: {error:?}"
            );
        }
        assert!(hours(br#"{"result":0}"#, 12, FROM, UNTIL, 0).is_err());
        assert_eq!(hours(br#"{"result":0,"array":[]}"#, 12, FROM, UNTIL, 0).unwrap(), []);
    }
}
