//! The CloudPe methods, as pure functions over the simulator's state and a request's
//! parameters. Every API-level outcome is an HTTP 200 JSON envelope.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::accounts::{Account, Accounts};

/// `result` for a session CloudPe does not accept (an inference: docs/cloudpe-api.md,
/// "Errors").
pub const RESULT_SESSION_INVALID: i64 = 702;
/// `result` for a missing resource.
pub const RESULT_NOT_FOUND: i64 = 5;
/// `result` for a generic failure (e.g. a bad parameter).
pub const RESULT_FAILURE: i64 = 1;

/// What the API knows.
#[derive(Debug, Clone, Default)]
pub struct ApiState {
    pub appid: String,
    pub session: String,
    pub accounts: Accounts,
    /// Successful `setaccountstatus` calls, in order.
    pub status_changes: Vec<(u64, i64)>,
    /// List in descending uid order when a request names no order. CloudPe documents no
    /// default order; this proves a client does not rely on one.
    pub descending_by_default: bool,
    /// The UTC offset (seconds east) of the billing history's times (see `usage.rs`).
    pub usage_utc_offset: i64,
    /// Methods (lower case) outside the session token's API list: answered with `result` 8202.
    pub denied_methods: std::collections::BTreeSet<String>,
    /// The platform's groups (`getgroups`) and the shape they are listed in.
    pub groups: crate::groups::Groups,
    /// Successful `setgroup` calls (uid, group), in order.
    pub group_changes: Vec<(u64, String)>,
    /// Which creation paths exist (the other answers HTTP 404).
    pub create_variant: crate::provision::CreateVariant,
    /// Users created through the API, in order (the password kept only as its shape).
    pub created: Vec<crate::provision::Created>,
}

/// The API methods the simulator serves.
pub const METHODS: &[(&str, &str)] = &[
    ("marketplace/app", "getchecksum"),
    ("billing/account", "getaccounts"),
    ("billing/account", "setaccountstatus"),
    ("billing/account", crate::usage::METHOD),
    ("billing/groupquota", crate::groups::GET_GROUPS),
    ("billing/account", crate::groups::SET_GROUP),
    ("system/admin", crate::groups::GET_USER_INFO),
    ("system/admin", crate::provision::CREATE_ACCOUNT),
    ("users/account", crate::provision::ADD_ACCOUNT),
];

fn failure(result: i64, error: String) -> Value {
    json!({"result": result, "error": error, "source": "JEL"})
}

type Params = BTreeMap<String, String>;

/// Answers `method` (lower case) with `params`: the JSON text of the reply.
pub fn call(state: &mut ApiState, method: &str, params: &Params) -> String {
    let session = params.get("session").map(String::as_str).unwrap_or("");
    let session_ok = !state.session.is_empty() && session == state.session;
    let appid_ok = params.get("appid").is_some_and(|a| *a == state.appid);
    // CloudPe echoes the rejected session in its error text; clients must scrub it.
    let rejected = || failure(RESULT_SESSION_INVALID, format!("session [{session}] is not valid"));
    match method {
        "getchecksum" if session_ok || appid_ok => {
            json!({"result": 0, "checksum": format!("{:016x}", state.accounts.len() as u64 * 0x9e37_79b9 + 0x5eed)})
                .to_string()
        }
        "getchecksum" => rejected().to_string(),
        _ if !session_ok => rejected().to_string(),
        _ if state.denied_methods.contains(method) => failure(
            crate::usage::RESULT_PERMISSION_DENIED,
            format!("Permission denied, required permissions: {method}"),
        )
        .to_string(),
        crate::usage::METHOD => crate::usage::billing_history(state, params).to_string(),
        "getaccounts" => get_accounts(state, params).unwrap_or_else(|e| failure(RESULT_FAILURE, e).to_string()),
        "setaccountstatus" => set_account_status(state, params).unwrap_or_else(|e| e).to_string(),
        crate::groups::GET_GROUPS => crate::groups::get_groups(state).to_string(),
        crate::groups::SET_GROUP => crate::groups::set_group(state, params).to_string(),
        crate::groups::GET_USER_INFO => crate::groups::get_user_info(state, params).to_string(),
        crate::provision::CREATE_ACCOUNT => {
            crate::provision::create(state, crate::provision::CREATE_ACCOUNT, params).to_string()
        }
        crate::provision::ADD_ACCOUNT => {
            crate::provision::create(state, crate::provision::ADD_ACCOUNT, params).to_string()
        }
        other => failure(1702, format!("method [{other}] not found")).to_string(),
    }
}

/// A successful `getaccounts` reply. It is serialised straight from the stored accounts: going
/// through a `serde_json::Value` tree first made a 1,000-account page cost about three times as
/// much, simulator time that a benchmark would have charged to the client.
#[derive(Serialize)]
struct AccountsPage<'a> {
    result: i64,
    #[serde(rename = "totalCount")]
    total_count: usize,
    array: Vec<&'a Account>,
}

impl AccountsPage<'_> {
    fn json(self) -> String {
        serde_json::to_string(&self).expect("accounts serialise")
    }
}

fn number(params: &Params, name: &str) -> Result<Option<u64>, String> {
    match params.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| format!("parameter [{name}] must be a number, got [{v}]")),
    }
}

fn get_accounts(state: &ApiState, params: &Params) -> Result<String, String> {
    let filter = match params.get("filterField").map(|f| f.as_str()) {
        None | Some("") => None,
        Some(f @ ("uid" | "email" | "group")) => Some((f, params.get("filterValue").cloned().unwrap_or_default())),
        Some(other) => return Err(format!("unknown filterField [{other}]")),
    };
    // Undocumented in VAP; a substring match is the cautious assumption (a uid 12 lookup also
    // returns 120, 312, ...; an email lookup of bob@x.io also returns ANN.BOB@x.io.evil).
    let email_needle = filter.as_ref().filter(|(f, _)| *f == "email").map(|(_, v)| v.to_lowercase());
    let matches = |a: &Account| match &filter {
        None => true,
        Some(("uid", v)) => a.uid.to_string().contains(v.as_str()),
        Some(("email", _)) => a.email.to_lowercase().contains(email_needle.as_deref().unwrap_or_default()),
        Some((_, v)) => a.group.contains(v.as_str()),
    };
    let descending = match params.get("orderDirection").map(|d| d.to_ascii_uppercase()).as_deref() {
        None | Some("") => state.descending_by_default,
        Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => return Err(format!("orderDirection must be ASC or DESC, got [{other}]")),
    };
    let by_email = match params.get("orderField").map(String::as_str) {
        None | Some("") | Some("uid") => false,
        Some("email") => true,
        Some(other) => return Err(format!("unknown orderField [{other}]")),
    };
    if filter.is_none() && !by_email && !descending {
        // The whole list in uid order: a page without collecting a million references first.
        let start = number(params, "startRow")?.unwrap_or(0) as usize;
        let count = match number(params, "resultCount")? {
            None | Some(0) => usize::MAX,
            Some(n) => n as usize,
        };
        let array: Vec<&Account> = state.accounts.page(start, count).collect();
        return Ok(AccountsPage { result: 0, total_count: state.accounts.len(), array }.json());
    }
    let mut found: Vec<&Account> = state.accounts.values().filter(|a| matches(a)).collect();
    if by_email {
        found.sort_by(|a, b| a.email.cmp(&b.email));
    }
    if descending {
        found.reverse();
    }
    let total = found.len();
    let start = number(params, "startRow")?.unwrap_or(0) as usize;
    let count = match number(params, "resultCount")? {
        None | Some(0) => usize::MAX,
        Some(n) => n as usize,
    };
    let array: Vec<&Account> = found.into_iter().skip(start).take(count).collect();
    Ok(AccountsPage { result: 0, total_count: total, array }.json())
}

fn set_account_status(state: &mut ApiState, params: &Params) -> Result<Value, Value> {
    let required = |name: &str| {
        number(params, name)
            .map_err(|e| failure(RESULT_FAILURE, e))?
            .ok_or_else(|| failure(RESULT_FAILURE, format!("parameter [{name}] is required")))
    };
    let uid = required("uid")?;
    let status = required("status")? as i64;
    if !(1..=4).contains(&status) {
        return Err(failure(RESULT_FAILURE, format!("invalid status [{status}]")));
    }
    let account = state
        .accounts
        .get_mut(&uid)
        .ok_or_else(|| failure(RESULT_NOT_FOUND, format!("user with uid [{uid}] not found")))?;
    account.status = status; // setting the current status again succeeds: idempotent
    state.status_changes.push((uid, status));
    Ok(json!({"result": 0}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply as a JSON value.
    fn call(state: &mut ApiState, method: &str, params: &Params) -> Value {
        serde_json::from_str(&super::call(state, method, params)).expect("the simulator answers JSON")
    }

    fn state() -> ApiState {
        let accounts = [12, 120, 312, 13].into_iter().map(|uid| (uid, Account::new(uid, 1))).collect();
        ApiState { appid: "cluster".into(), session: "tok".into(), accounts, ..ApiState::default() }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut p: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        p.entry("appid".into()).or_insert("cluster".into());
        p.entry("session".into()).or_insert("tok".into());
        p
    }

    fn uids(v: &Value) -> Vec<u64> {
        v["array"].as_array().unwrap().iter().map(|a| a["uid"].as_u64().unwrap()).collect()
    }

    #[test]
    fn uid_filter_is_a_substring_match() {
        let v = call(&mut state(), "getaccounts", &params(&[("filterField", "uid"), ("filterValue", "12")]));
        assert_eq!(v["result"], 0);
        assert_eq!(uids(&v), [12, 120, 312]);
        assert_eq!(v["totalCount"], 3);
    }

    #[test]
    fn paging_keeps_the_total() {
        let mut s = state();
        let v = call(&mut s, "getaccounts", &params(&[("startRow", "1"), ("resultCount", "2")]));
        assert_eq!(uids(&v), [13, 120]);
        assert_eq!(v["totalCount"], 4);
        let v = call(&mut s, "getaccounts", &params(&[("orderDirection", "DESC"), ("resultCount", "1")]));
        assert_eq!(uids(&v), [312]);
        let v = call(&mut s, "getaccounts", &params(&[("startRow", "x")]));
        assert_eq!(v["result"], 1);
        assert!(v["error"].as_str().unwrap().contains("startRow"));
    }

    #[test]
    fn a_list_that_names_no_order_can_come_newest_first() {
        let mut s = ApiState { descending_by_default: true, ..state() };
        let v = call(&mut s, "getaccounts", &params(&[("resultCount", "2")]));
        assert_eq!(uids(&v), [312, 120]);
        assert_eq!(v["totalCount"], 4);
        let v = call(&mut s, "getaccounts", &params(&[("filterField", "uid"), ("filterValue", "12")]));
        assert_eq!(uids(&v), [312, 120, 12]);
        let v = call(&mut s, "getaccounts", &params(&[("orderDirection", "ASC"), ("resultCount", "1")]));
        assert_eq!(uids(&v), [12]);
    }

    #[test]
    fn checksum_accepts_appid_or_session_but_admin_calls_need_the_session() {
        let mut s = state();
        let v = call(&mut s, "getchecksum", &params(&[("session", "bad")]));
        assert_eq!(v["result"], 0);
        let v = call(&mut s, "getchecksum", &params(&[("session", "bad"), ("appid", "x")]));
        assert_eq!(v["result"], 702);
        let v = call(&mut s, "getaccounts", &params(&[("session", "bad-one")]));
        assert_eq!(v["result"], 702);
        assert_eq!(v["error"], "session [bad-one] is not valid");
        assert_eq!(
            call(&mut s, "setaccountstatus", &params(&[("session", ""), ("uid", "12"), ("status", "2")]))["result"],
            702
        );
        assert!(s.status_changes.is_empty());
    }

    #[test]
    fn set_status_is_idempotent_and_validated() {
        let mut s = state();
        for _ in 0..2 {
            assert_eq!(
                call(&mut s, "setaccountstatus", &params(&[("uid", "12"), ("status", "2")])),
                json!({"result": 0})
            );
        }
        assert_eq!(s.accounts[&12].status, 2);
        assert_eq!(s.status_changes, [(12, 2), (12, 2)]);
        assert_eq!(call(&mut s, "setaccountstatus", &params(&[("uid", "99"), ("status", "2")]))["result"], 5);
        let v = call(&mut s, "setaccountstatus", &params(&[("uid", "12"), ("status", "7")]));
        assert_eq!(v["result"], 1);
        let v = call(&mut s, "setaccountstatus", &params(&[("status", "1")]));
        assert!(v["error"].as_str().unwrap().contains("[uid]"));
        assert_eq!(s.status_changes.len(), 2);
    }

    #[test]
    fn email_and_group_filters_match_substrings() {
        let mut s = state();
        s.accounts.get_mut(&13).unwrap().group = "resellers".into();
        let v = call(&mut s, "getaccounts", &params(&[("filterField", "group"), ("filterValue", "resell")]));
        assert_eq!(uids(&v), [13]);
        let v = call(&mut s, "getaccounts", &params(&[("filterField", "email"), ("filterValue", "user12")]));
        assert_eq!(uids(&v), [12, 120]);
        let v = call(&mut s, "getaccounts", &params(&[("filterField", "uid"), ("filterValue", "999")]));
        assert_eq!(v, json!({"result": 0, "totalCount": 0, "array": []}));
    }

    #[test]
    fn the_email_filter_ignores_case_and_lists_decoys_too() {
        let mut s = state();
        for (uid, email) in [(12, "bob@x.io"), (120, "ann.bob@x.io.evil"), (312, "BOB@X.IO.attacker")] {
            s.accounts.get_mut(&uid).unwrap().email = email.into();
        }
        for needle in ["bob@x.io", "BOB@x.IO"] {
            let v = call(&mut s, "getaccounts", &params(&[("filterField", "email"), ("filterValue", needle)]));
            assert_eq!(uids(&v), [12, 120, 312], "{needle}");
            assert_eq!(v["totalCount"], 3);
        }
        let v = call(&mut s, "getaccounts", &params(&[("filterField", "email"), ("filterValue", "ANN.bob")]));
        assert_eq!(uids(&v), [120]);
    }

    #[test]
    fn accounts_are_served_in_the_api_shape_without_nulls() {
        let mut s = state();
        s.accounts.get_mut(&13).unwrap().is_enabled = None;
        s.accounts.get_mut(&13).unwrap().status = 7;
        let v = call(&mut s, "getaccounts", &params(&[("filterField", "uid"), ("filterValue", "13")]));
        let account = &v["array"][0];
        assert_eq!(account["uid"], 13);
        assert_eq!(account["status"], 7, "unknown status values are served as stored");
        assert_eq!(account["group"], json!({"name": "default"}));
        assert!(account["createdOn"].is_string());
        assert!(account.get("isEnabled").is_none(), "{account}");
        assert!(!v.to_string().contains("null"), "{v}");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn a_missing_session_is_rejected_with_empty_brackets() {
        let mut s = state();
        let mut p = params(&[]);
        p.remove("session");
        let v = call(&mut s, "getaccounts", &p);
        assert_eq!(v, json!({"result": 702, "error": "session [] is not valid", "source": "JEL"}));
        let v = call(&mut s, "getchecksum", &p);
        assert_eq!(v["result"], 0, "getchecksum accepts the appid alone");
        assert!(v["checksum"].as_str().unwrap().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn bad_parameters_are_named() {
        let mut s = state();
        let v = call(&mut s, "setaccountstatus", &params(&[("uid", "12")]));
        assert_eq!(v["result"], 1);
        assert!(v["error"].as_str().unwrap().contains("[status]"), "{v}");
        let v = call(&mut s, "setaccountstatus", &params(&[("uid", "12"), ("status", "-1")]));
        assert_eq!(v["result"], 1);
        let v = call(&mut s, "setaccountstatus", &params(&[("uid", "99"), ("status", "1")]));
        assert_eq!(v, json!({"result": 5, "error": "user with uid [99] not found", "source": "JEL"}));
        let v = call(&mut s, "getaccounts", &params(&[("resultCount", "ten")]));
        assert!(v["error"].as_str().unwrap().contains("resultCount"), "{v}");
        assert!(s.status_changes.is_empty());
    }
}
