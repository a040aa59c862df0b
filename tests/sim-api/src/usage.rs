//! `getaccountbillinghistorybyperiodinner` (docs/cloudpe-api.md, "Usage"): a user's billing
//! history in hourly buckets, from a deterministic pseudo-random history (a pure function of the
//! uid and the hour, so any window of any user is served without storing it), and the same
//! history summed per hour as the oracle tests compare the module's report with ([`expected`]).
//!
//! The history's shape: users whose uid ends in 3 never use anything; the others have rows in
//! most hours (about one hour in seven is empty), uids divisible by 4 have 1 to 3 rows per hour
//! (one per node), uids divisible by 5 have a bonus row per hour besides. Costs are micro-units
//! (six decimals), printed as Java prints doubles would be, small ones with an exponent
//! (`123E-6`), so a client must read the number's text, not a float.
//!
//! The time zone of `starttime`, `endtime` and `dateTime` is the state's `usage_utc_offset`
//! (CloudPe does not document it).

use serde_json::{Value, json};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::api::{ApiState, RESULT_FAILURE, RESULT_NOT_FOUND};

/// The method's name.
pub const METHOD: &str = "getaccountbillinghistorybyperiodinner";

/// `result` for a method outside the token's API list.
pub const RESULT_PERMISSION_DENIED: i64 = 8202;

/// One row of the history, in micro-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRow {
    pub start: i64,
    pub resource: u64,
    pub storage: u64,
    pub traffic: u64,
    pub bonus: bool,
    pub node: u64,
}

impl UsageRow {
    pub fn cost(&self) -> u64 {
        self.resource + self.storage + self.traffic
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The rows of `uid`'s hour starting at `start` (Unix seconds, a whole hour).
pub fn rows(uid: u64, start: i64) -> Vec<UsageRow> {
    let seed = mix(uid.wrapping_mul(1_000_003) ^ (start as u64));
    if uid % 10 == 3 || seed.is_multiple_of(7) {
        return Vec::new();
    }
    let nodes = if uid.is_multiple_of(4) { 1 + seed % 3 } else { 1 };
    let mut out: Vec<UsageRow> = (0..nodes)
        .map(|n| {
            let r = mix(seed ^ n);
            UsageRow {
                start,
                resource: r % 90_000,
                storage: (r >> 20) % 20_000,
                traffic: if (r >> 40).is_multiple_of(3) { (r >> 44) % 5_000 } else { 0 },
                bonus: false,
                node: 100 + n,
            }
        })
        .collect();
    if uid.is_multiple_of(5) {
        let r = mix(seed ^ 0xb0);
        out.push(UsageRow { start, resource: r % 7_000, storage: 0, traffic: 0, bonus: true, node: 100 });
    }
    out
}

/// Every row of `uid` in the hours `[from, until)`.
pub fn history(uid: u64, from: i64, until: i64) -> Vec<UsageRow> {
    (from.div_euclid(3600)..until.div_euclid(3600)).flat_map(|h| rows(uid, h * 3600)).collect()
}

/// Micro-units as a plain decimal, trailing zeros dropped (`0.0123`, `0`): how the module and the
/// host print amounts.
pub fn decimal(micro: u64) -> String {
    let text = format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Micro-units as CloudPe's JSON would print the double: an exponent for small amounts.
fn json_number(micro: u64) -> String {
    if micro > 0 && micro < 1000 {
        format!("{micro}E-6")
    } else {
        format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
    }
}

/// What one hour of a user's usage sums to: the oracle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedHour {
    /// Unix seconds.
    pub start: i64,
    pub cost: String,
    pub bonus: String,
    pub resource_cost: String,
    pub storage_cost: String,
    pub traffic_cost: String,
    pub rows: usize,
}

/// The hours of `[from, until)` in which `uid` used anything, ascending, summed.
pub fn expected(uid: u64, from: i64, until: i64) -> Vec<ExpectedHour> {
    (from.div_euclid(3600)..until.div_euclid(3600))
        .filter_map(|h| {
            let rows = rows(uid, h * 3600);
            (!rows.is_empty()).then(|| ExpectedHour {
                start: h * 3600,
                cost: decimal(rows.iter().map(UsageRow::cost).sum()),
                bonus: decimal(rows.iter().filter(|r| r.bonus).map(UsageRow::cost).sum()),
                resource_cost: decimal(rows.iter().map(|r| r.resource).sum()),
                storage_cost: decimal(rows.iter().map(|r| r.storage).sum()),
                traffic_cost: decimal(rows.iter().map(|r| r.traffic).sum()),
                rows: rows.len(),
            })
        })
        .collect()
}

/// Answers the method: the history of `uid` between `starttime` and `endtime` (both included,
/// read in the state's time zone), hour by hour.
pub fn billing_history(state: &ApiState, params: &crate::Params) -> Value {
    let failure = |result: i64, error: String| json!({"result": result, "error": error, "source": "JEL"});
    let offset = state.usage_utc_offset;
    let uid = match params.get("uid").map(|v| v.trim().parse::<u64>()) {
        Some(Ok(uid)) => uid,
        _ => return failure(RESULT_FAILURE, "parameter [uid] is required".into()),
    };
    let time = |name: &str| match params.get(name) {
        Some(v) => parse_time(v, offset)
            .ok_or_else(|| failure(RESULT_FAILURE, format!("parameter [{name}] is not a date: [{v}]"))),
        None => Err(failure(RESULT_FAILURE, format!("parameter [{name}] is required"))),
    };
    let (start, end) = match (time("starttime"), time("endtime")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if params.get("period").map(String::as_str) != Some("HOUR") {
        return failure(RESULT_FAILURE, "this simulator serves period [HOUR] only".into());
    }
    if state.accounts.get(&uid).is_none() {
        return failure(RESULT_NOT_FOUND, format!("user with uid [{uid}] not found"));
    }
    let first = start.div_euclid(3600) + i64::from(start.rem_euclid(3600) != 0);
    let array: Vec<Value> = (first..=end.div_euclid(3600))
        .flat_map(|h| rows(uid, h * 3600))
        .map(|r| {
            let cost = json_number(r.cost());
            serde_json::from_str(&format!(
                r#"{{"dateTime":"{}","cost":{cost},"appid":"env-{uid}-{node}","nodeid":{node},"nodeCount":1,"type":"NODE","count":1,
                "usedCloudletsAmount":{ua},"fixedCloudletsAmount":1,"fixedCloudletsCost":0,"flexibleCloudletsAmount":{ua},"flexibleCloudletsCost":0,
                "usedStorageAmount":1.5,"storageCost":{storage},"billNetworkExtAmount":0,"networkExtCost":{traffic},"resourceCost":{resource},
                "hostGroupDisplayName":"Default","group":"default","isBonus":{bonus},"isPaid":true,"isWithdrawn":true}}"#,
                format_time(r.start, offset),
                node = r.node,
                ua = r.resource % 16,
                storage = json_number(r.storage),
                traffic = json_number(r.traffic),
                resource = json_number(r.resource),
                bonus = r.bonus,
            ))
            .expect("a valid row")
        })
        .collect();
    json!({"result": 0, "array": array})
}

/// CloudPe's `yyyy-MM-dd HH:mm:ss`.
const CLOUDPE: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `yyyy-MM-dd HH:mm:ss` of a Unix time, on a wall clock `offset` seconds east of UTC (the bare
/// number past what the calendar holds).
pub fn format_time(unix: i64, offset: i64) -> String {
    let shown = || {
        let offset = UtcOffset::from_whole_seconds(i32::try_from(offset).ok()?).ok()?;
        OffsetDateTime::from_unix_timestamp(unix).ok()?.checked_to_offset(offset)?.format(CLOUDPE).ok()
    };
    shown().unwrap_or_else(|| unix.to_string())
}

/// The Unix time of `yyyy-MM-dd HH:mm:ss` on a wall clock `offset` seconds east of UTC.
pub fn parse_time(text: &str, offset: i64) -> Option<i64> {
    let offset = UtcOffset::from_whole_seconds(i32::try_from(offset).ok()?).ok()?;
    Some(PrimitiveDateTime::parse(text, CLOUDPE).ok()?.assume_offset(offset).unix_timestamp())
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (the host's report).
pub fn iso(unix: i64) -> String {
    format_time(unix, 0).replace(' ', "T") + "Z"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Account;

    const T: i64 = 1_796_558_400; // 2026-12-06 12:00:00 UTC

    fn state(offset: i64) -> ApiState {
        ApiState {
            session: "tok".into(),
            accounts: [(12, Account::new(12, 1)), (20, Account::new(20, 1))].into_iter().collect(),
            usage_utc_offset: offset,
            ..ApiState::default()
        }
    }

    fn params(uid: &str, start: &str, end: &str) -> crate::Params {
        [("uid", uid), ("starttime", start), ("endtime", end), ("period", "HOUR"), ("session", "tok")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hours_are_served_in_the_zone_and_summed_by_the_oracle() {
        assert_eq!(format_time(T, 0), "2026-12-06 12:00:00");
        assert_eq!(parse_time("2026-12-06 17:30:00", 19_800), Some(T));
        for (offset, start, end) in
            [(0, "2026-12-05 12:00:00", "2026-12-06 11:59:59"), (19_800, "2026-12-05 17:30:00", "2026-12-06 17:29:59")]
        {
            let v = billing_history(&state(offset), &params("20", start, end));
            assert_eq!(v["result"], 0, "{v}");
            let rows = v["array"].as_array().unwrap();
            let expected = expected(20, T - 86_400, T);
            assert_eq!(rows.len(), expected.iter().map(|h| h.rows).sum::<usize>());
            assert_eq!(rows[0]["dateTime"], format_time(expected[0].start, offset));
            assert!(rows.iter().any(|r| r["isBonus"] == true), "uid 20 has bonus rows");
        }
        let v = billing_history(&state(0), &params("99", "2026-12-05 12:00:00", "2026-12-06 11:59:59"));
        assert_eq!(v["result"], RESULT_NOT_FOUND);
    }

    #[test]
    fn the_history_has_every_shape_a_client_must_handle() {
        let day = |uid| expected(uid, T - 86_400, T);
        assert!(day(13).is_empty(), "uids ending in 3 use nothing");
        assert!(day(11).iter().all(|h| h.rows == 1 && h.bonus == "0"));
        assert!(day(11).len() < 24 && day(11).len() > 12, "some hours are empty");
        assert!(day(16).iter().any(|h| h.rows > 1), "several rows in an hour");
        assert!(day(15).iter().all(|h| h.bonus != "0"), "bonus rows");
        assert_eq!(decimal(1_234_500), "1.2345");
        assert_eq!(decimal(0), "0");
        assert_eq!(json_number(12), "12E-6");
        assert_eq!(expected(12, T - 86_400, T), expected(12, T - 86_400, T));
    }
}
