//! Groups and user info: `billing/groupquota/rest/getgroups`, `billing/account/rest/setgroup` and
//! `system/admin/rest/getuserinfo` (docs/cloudpe-api.md, "Groups and the capability probe").
//!
//! These are medium-confidence facts (a client wrapper's declarations, no documented reply), so
//! the reply shape of the group list is a switch ([`GroupsShape`]). A call missing a parameter
//! is answered with an error naming it and changes nothing, which is what lets the module's
//! capability probe call a write method without any effect.

use serde_json::{Value, json};

use crate::api::{ApiState, RESULT_FAILURE, RESULT_NOT_FOUND};

/// The group list's method.
pub const GET_GROUPS: &str = "getgroups";
/// The method moving one user to a group.
pub const SET_GROUP: &str = "setgroup";
/// The method reading one user by login (email).
pub const GET_USER_INFO: &str = "getuserinfo";

/// How `getgroups` lists the groups (its reply shape is not documented).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupsShape {
    /// `"array": [{"name": "trial"}, ...]`, the shape of a user's `group` member.
    #[default]
    Objects,
    /// `"array": ["trial", ...]`.
    Names,
}

impl std::str::FromStr for GroupsShape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "objects" => Ok(GroupsShape::Objects),
            "names" => Ok(GroupsShape::Names),
            other => Err(format!("unknown groups shape {other:?}: use objects or names")),
        }
    }
}

/// The platform's groups and how they are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    /// In the order `getgroups` lists them.
    pub names: Vec<String>,
    pub shape: GroupsShape,
}

impl Default for Groups {
    /// `default` (every new account's), then VAP's basic group types and a provider's own one.
    fn default() -> Self {
        let names = ["default", "trial", "beta", "billing", "premium"].map(String::from).to_vec();
        Groups { names, shape: GroupsShape::default() }
    }
}

fn failure(result: i64, error: String) -> Value {
    json!({"result": result, "error": error, "source": "JEL"})
}

/// `getgroups`: every group, in the configured shape. Takes no parameters.
pub fn get_groups(state: &ApiState) -> Value {
    let array: Vec<Value> = match state.groups.shape {
        GroupsShape::Objects => state.groups.names.iter().map(|name| json!({"name": name})).collect(),
        GroupsShape::Names => state.groups.names.iter().map(|name| json!(name)).collect(),
    };
    json!({"result": 0, "array": array})
}

/// `setgroup` (`uid`, `groupName`): moves the user. A missing or malformed parameter, an unknown
/// user (`result` 5) or an unknown group is an error naming it, and changes nothing; setting the
/// group the user already has succeeds (and is recorded like any other call).
pub fn set_group(state: &mut ApiState, params: &crate::Params) -> Value {
    let uid = match params.get("uid").map(|v| v.trim()) {
        None | Some("") => return failure(RESULT_FAILURE, "parameter [uid] is required".into()),
        Some(v) => match v.parse::<u64>() {
            Ok(uid) => uid,
            Err(_) => return failure(RESULT_FAILURE, format!("parameter [uid] must be a number, got [{v}]")),
        },
    };
    let group = match params.get("groupName").map(|v| v.trim()) {
        None | Some("") => return failure(RESULT_FAILURE, "parameter [groupName] is required".into()),
        Some(name) => name.to_string(),
    };
    if !state.groups.names.contains(&group) {
        return failure(RESULT_FAILURE, format!("group [{group}] not found"));
    }
    let Some(account) = state.accounts.get_mut(&uid) else {
        return failure(RESULT_NOT_FOUND, format!("user with uid [{uid}] not found"));
    };
    account.group = group.clone();
    state.group_changes.push((uid, group));
    json!({"result": 0})
}

/// `getuserinfo` (`login` = email, matched exactly, in any case): the user's uid, email, status
/// and group; an unknown login is `result` 5.
pub fn get_user_info(state: &ApiState, params: &crate::Params) -> Value {
    let login = match params.get("login").map(|v| v.trim()) {
        None | Some("") => return failure(RESULT_FAILURE, "parameter [login] is required".into()),
        Some(login) => login,
    };
    match state.accounts.values().find(|a| a.email.eq_ignore_ascii_case(login)) {
        Some(a) => json!({
            "result": 0,
            "uid": a.uid,
            "email": a.email,
            "login": a.email,
            "status": a.status,
            "group": {"name": a.group},
        }),
        None => failure(RESULT_NOT_FOUND, format!("user [{login}] not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Account;
    use crate::faults::{FaultKind, FaultRule, take};
    use crate::{Reply, respond};

    fn state() -> ApiState {
        let mut accounts: crate::Accounts = [12, 120].into_iter().map(|uid| (uid, Account::new(uid, 1))).collect();
        accounts.get_mut(&12).unwrap().email = "Ann@Example.com".into();
        ApiState { appid: "cluster".into(), session: "tok".into(), accounts, ..ApiState::default() }
    }

    fn params(pairs: &[(&str, &str)]) -> crate::Params {
        let mut p: crate::Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        p.entry("appid".into()).or_insert("cluster".into());
        p.entry("session".into()).or_insert("tok".into());
        p
    }

    fn call(state: &mut ApiState, method: &str, pairs: &[(&str, &str)]) -> Value {
        serde_json::from_str(&crate::call(state, method, &params(pairs))).expect("JSON")
    }

    fn groups_of(s: &ApiState) -> Vec<(u64, String)> {
        s.accounts.values().map(|a| (a.uid, a.group.clone())).collect()
    }

    #[test]
    fn the_group_list_comes_in_either_shape() {
        let mut s = state();
        let v = call(&mut s, GET_GROUPS, &[]);
        assert_eq!(v["result"], 0);
        assert_eq!(v["array"][0], json!({"name": "default"}));
        assert_eq!(v["array"].as_array().unwrap().len(), 5);
        assert!(v["array"].as_array().unwrap().contains(&json!({"name": "premium"})));
        s.groups.shape = GroupsShape::Names;
        let v = call(&mut s, GET_GROUPS, &[]);
        assert_eq!(v["array"], json!(["default", "trial", "beta", "billing", "premium"]));
        assert_eq!("names".parse::<GroupsShape>(), Ok(GroupsShape::Names));
        assert!("list".parse::<GroupsShape>().unwrap_err().contains("\"list\""));
    }

    #[test]
    fn setgroup_moves_the_user_and_an_unchanged_group_is_fine() {
        let mut s = state();
        assert_eq!(call(&mut s, SET_GROUP, &[("uid", "12"), ("groupName", "premium")]), json!({"result": 0}));
        assert_eq!(s.accounts[&12].group, "premium");
        assert_eq!(s.accounts[&120].group, "default");
        assert_eq!(call(&mut s, SET_GROUP, &[("uid", "12"), ("groupName", "premium")]), json!({"result": 0}));
        assert_eq!(s.group_changes, [(12, "premium".to_string()), (12, "premium".to_string())]);
        let v = call(&mut s, "getaccounts", &[("filterField", "uid"), ("filterValue", "12")]);
        assert_eq!(v["array"][0]["group"], json!({"name": "premium"}), "getaccounts shows the new group");
    }

    #[test]
    fn setgroup_refuses_an_unknown_user_or_group_and_changes_nothing() {
        let mut s = state();
        let before = groups_of(&s);
        let v = call(&mut s, SET_GROUP, &[("uid", "99"), ("groupName", "beta")]);
        assert_eq!(v, json!({"result": 5, "error": "user with uid [99] not found", "source": "JEL"}));
        let v = call(&mut s, SET_GROUP, &[("uid", "12"), ("groupName", "gold")]);
        assert_eq!(v["result"], 1);
        assert_eq!(v["error"], "group [gold] not found");
        assert_eq!(groups_of(&s), before);
        assert!(s.group_changes.is_empty());
    }

    #[test]
    fn setgroup_without_a_parameter_names_it_and_is_not_a_permission_error() {
        let mut s = state();
        let before = groups_of(&s);
        for (pairs, missing) in [
            (&[][..], "[uid]"),
            (&[("groupName", "beta")][..], "[uid]"),
            (&[("uid", "12")][..], "[groupName]"),
            (&[("uid", "12"), ("groupName", " ")][..], "[groupName]"),
            (&[("uid", "x12"), ("groupName", "beta")][..], "[uid]"),
        ] {
            let v = call(&mut s, SET_GROUP, pairs);
            assert_eq!(v["result"], 1, "{pairs:?}: {v}");
            assert!(v["error"].as_str().unwrap().contains(missing), "{pairs:?}: {v}");
        }
        assert_eq!(groups_of(&s), before);
        assert!(s.group_changes.is_empty());
    }

    #[test]
    fn getuserinfo_finds_the_exact_login_in_any_case() {
        let mut s = state();
        let v = call(&mut s, GET_USER_INFO, &[("login", "ann@example.COM")]);
        assert_eq!((v["result"].as_i64(), v["uid"].as_u64()), (Some(0), Some(12)), "{v}");
        assert_eq!(v["group"], json!({"name": "default"}));
        // Not a substring match: a part of an email is no login.
        let v = call(&mut s, GET_USER_INFO, &[("login", "ann@example")]);
        assert_eq!(v["result"], 5);
        assert!(v["error"].as_str().unwrap().contains("[ann@example]"));
        let v = call(&mut s, GET_USER_INFO, &[]);
        assert_eq!(v["result"], 1);
        assert!(v["error"].as_str().unwrap().contains("[login]"));
    }

    #[test]
    fn each_method_can_be_denied_and_needs_the_session() {
        for method in [GET_GROUPS, SET_GROUP, GET_USER_INFO] {
            let mut s = state();
            s.denied_methods.insert(method.to_string());
            let v = call(&mut s, method, &[("uid", "12"), ("groupName", "beta"), ("login", "ann@example.com")]);
            assert_eq!(v["result"], 8202, "{method}: {v}");
            assert!(v["error"].as_str().unwrap().contains(method));
            let v = call(&mut s, method, &[("session", "bad"), ("uid", "12"), ("groupName", "beta")]);
            assert_eq!(v["result"], 702, "{method}: {v}");
            assert!(s.group_changes.is_empty() && s.accounts[&12].group == "default");
            assert_eq!(crate::route(&format!("/1.0/{}/rest/{method}", service(method))), Some(method));
        }
    }

    fn service(method: &str) -> &'static str {
        crate::METHODS.iter().find(|(_, m)| *m == method).unwrap().0
    }

    #[test]
    fn a_setgroup_applied_whose_reply_is_lost() {
        let mut s = state();
        let mut rules = vec![FaultRule::new(FaultKind::Http500.after_applying()).method(SET_GROUP).times(1)];
        let p = params(&[("uid", "12"), ("groupName", "beta")]);
        let fault = take(&mut rules, SET_GROUP, &p);
        assert!(matches!(respond(&mut s, SET_GROUP, &p, fault), Reply::Http { status: 500, .. }));
        assert_eq!(s.accounts[&12].group, "beta");
        assert_eq!(s.group_changes, [(12, "beta".to_string())]);
        // A fault that does not apply first: the reply is lost and nothing changed.
        let mut rules = vec![FaultRule::new(FaultKind::Reset).method(SET_GROUP).uid(12)];
        let p = params(&[("uid", "12"), ("groupName", "premium")]);
        let fault = take(&mut rules, SET_GROUP, &p);
        assert!(matches!(respond(&mut s, SET_GROUP, &p, fault), Reply::Transport(_)));
        assert_eq!(s.accounts[&12].group, "beta");
    }
}
