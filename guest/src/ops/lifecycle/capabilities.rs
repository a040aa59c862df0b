//! The capability probe: which optional CloudPe methods the token may call. Writes nothing.
//!
//! CloudPe checks a method against the session token's API list before it reads the method's
//! parameters (a method outside the list answers `result` 8202 whatever is sent). So each
//! optional method is called in a way that cannot change anything: the reads as they are (the
//! billing history without a user, the user info of a login that cannot exist), the writes
//! (`setgroup`, the creation calls) **without** the parameters that name what to change. Any
//! answer but 8202 then shows the token passes the permission check; for a write it does not
//! show that a real call would succeed, and each capability's detail says so.
//!
//! What each answer means: `result` 8202 → denied (the detail names the permission to allow);
//! HTTP 404, or CloudPe's "method not found" (1702) → unknown on this platform; a rejected
//! session (702) → the whole probe fails with an authentication error, as Test Connection's
//! checks do; a transport failure → that capability is `not-probed`, saying why, except when
//! the first probe cannot connect at all: then CloudPe is unreachable and the whole probe fails
//! with that transport error (nothing more is sent).

use crate::api::{ApiMethod, CALL_ATTEMPTS, CloudPe, RetryPolicy};
use crate::config::Settings;
use crate::envelope::{self, RESULT_METHOD_NOT_FOUND, RESULT_PERMISSION_DENIED, RESULT_SESSION_INVALID};
use crate::inferred;
use crate::ops::settings;
use crate::transport::Platform;
use crate::wit::{AppSettings, Capability, CapabilityState, LogLevel, ModuleError};

/// A login no CloudPe user can have (`.invalid` is reserved, RFC 2606): `getuserinfo` for it
/// finds nobody.
pub const PROBE_LOGIN: &str = "capability-probe@invalid.invalid";

/// Probes every optional method (billing history, group list, set group, create account, user
/// info) and says, for each, whether the token may call it.
pub fn capabilities(platform: &impl Platform, app: &AppSettings) -> Result<Vec<Capability>, ModuleError> {
    let settings = settings(app)?;
    let probe = Probe { settings: &settings, platform };
    let mut found = Vec::new();

    let history = probe.ask(ApiMethod::GetBillingHistory, &[])?;
    if let Answer::NoReply { error, reached: false } = &history {
        return Err(error.clone());
    }
    found.push(judge(
        "billing history",
        ApiMethod::GetBillingHistory,
        history,
        "read without a uid",
        |code| match code {
            0 => "it answered with success (no user named, nothing read)".into(),
            _ => "the token passes the permission check (the usage import reads each user's history with it)".into(),
        },
    ));

    let groups = probe.ask(ApiMethod::GetGroups, &[])?;
    found.push(judge("group list", ApiMethod::GetGroups, groups, "listed", |code| match code {
        0 => "the token may list the groups (the product option \"CloudPe group\" is filled from it)".into(),
        _ => {
            "not refused, but it failed: the product option \"CloudPe group\" cannot be filled until it succeeds".into()
        }
    }));

    let set_group = probe.ask(ApiMethod::SetGroup, &[])?;
    found.push(judge("set group", ApiMethod::SetGroup, set_group, "called without uid or groupName", |code| {
        match code {
            0 => "SUSPICIOUS: CloudPe accepted it with success although nothing was named; check on CloudPe that no user \
                  changed group"
                .into(),
            _ => "the token passes the permission check; this does not prove that a real move would succeed".into(),
        }
    }));

    let mut created_by: Option<ApiMethod> = None;
    for variant in inferred::CREATE_VARIANTS {
        let method = ApiMethod::CreateAccount(variant);
        if let Some(earlier) = created_by {
            found.push(Capability {
                name: "create account".into(),
                method: method.rest_path(),
                state: CapabilityState::NotProbed,
                detail: format!("not called: {} is allowed and is the one used", earlier.rest_path()),
            });
            continue;
        }
        let answer = probe.ask(method, &[])?;
        let capability = judge(
            "create account",
            method,
            answer,
            "called without email or password",
            |code| {
                match code {
            0 => "SUSPICIOUS: CloudPe accepted it with success although no email or password was sent; check on CloudPe \
                  that no user was created"
                .into(),
            _ => "the token passes the permission check; this does not prove that a real creation would succeed".into(),
        }
            },
        );
        if capability.state == CapabilityState::Allowed {
            created_by = Some(method);
        }
        found.push(capability);
    }

    let user_info = probe.ask(ApiMethod::GetUserInfo, &[("login", PROBE_LOGIN.to_string())])?;
    found.push(judge(
        "user info",
        ApiMethod::GetUserInfo,
        user_info,
        &format!("asked for login {PROBE_LOGIN}, which no user can have"),
        |code| match code {
            0 => "SUSPICIOUS: CloudPe found a user for a login that cannot exist".into(),
            _ => "it found nobody, as expected: the token may read users by login".into(),
        },
    ));

    for capability in &found {
        platform.log(
            LogLevel::Info,
            &format!(
                "capabilities: {} ({}): {}: {}",
                capability.name,
                capability.method,
                state_name(capability.state),
                capability.detail
            ),
        );
    }
    Ok(found)
}

/// The state as the host's report spells it.
fn state_name(state: CapabilityState) -> &'static str {
    match state {
        CapabilityState::Allowed => "allowed",
        CapabilityState::Denied => "denied",
        CapabilityState::Unknown => "unknown",
        CapabilityState::NotProbed => "not-probed",
    }
}

/// What one probe call got.
#[derive(Debug)]
enum Answer {
    /// HTTP 200 with this `result`; `error` is the module's reading of a non-zero one (its
    /// message scrubbed, naming the permission for 8202).
    Result { code: i64, error: Option<ModuleError> },
    /// HTTP 404: no such path on this platform.
    NoSuchPath,
    /// No usable answer (transport failure, another HTTP status, not an envelope), and whether
    /// any attempt connected to CloudPe.
    NoReply { error: ModuleError, reached: bool },
}

struct Probe<'a, P: Platform> {
    settings: &'a Settings,
    platform: &'a P,
}

impl<P: Platform> Probe<'_, P> {
    /// Calls `method` with `params` (retrying transport failures, like any single call). A
    /// client of its own per call: a denied method must not stop the next probe. A rejected
    /// session fails the whole probe.
    fn ask(&self, method: ApiMethod, params: &[(&str, String)]) -> Result<Answer, ModuleError> {
        let api = CloudPe::new(self.settings, self.platform);
        let request = api.request(method, params);
        let read = api
            .fetch_all_read(
                method,
                std::slice::from_ref(&request),
                1,
                RetryPolicy::attempts(CALL_ATTEMPTS),
                |_, response| {
                    let code = match &response {
                        Ok(r) if r.status == 404 => return Ok(Answer::NoSuchPath),
                        Ok(r) if r.status == 200 => envelope::result_code(&r.body),
                        _ => None,
                    };
                    let judged = api.judged(method, response);
                    match (code, judged) {
                        (Some(code), Ok(_)) => Ok(Answer::Result { code, error: None }),
                        (Some(code), Err(error)) => Ok(Answer::Result { code, error: Some(error) }),
                        (None, Ok(_)) => {
                            Err(ModuleError::Transport(format!("CloudPe's reply to {} has no `result`", method.name())))
                        }
                        (None, Err(error)) => Err(error),
                    }
                },
            )
            .pop()
            .expect("one result per request");
        match read {
            Ok(Answer::Result { code: RESULT_SESSION_INVALID, error: Some(error) }) => Err(error),
            Ok(answer) => Ok(answer),
            Err(error @ ModuleError::Authentication(_)) => Err(error),
            // Unreachable after every attempt: the client's own verdict says so.
            Err(error) => Ok(Answer::NoReply { error: api.halted().unwrap_or(error), reached: api.reached() }),
        }
    }
}

/// The capability `name` of `method` from its probe's `answer`: `sent` says how it was called,
/// `meaning` what an answer other than 8202 (with its `result` code) proves.
fn judge(name: &str, method: ApiMethod, answer: Answer, sent: &str, meaning: impl FnOnce(i64) -> String) -> Capability {
    let (state, detail) = match answer {
        Answer::NoSuchPath => {
            (CapabilityState::Unknown, format!("{sent}: HTTP 404, this platform does not know {}", method.rest_path()))
        }
        Answer::Result { code: RESULT_METHOD_NOT_FOUND, error } => (
            CapabilityState::Unknown,
            format!("{sent}: CloudPe does not know the method ({})", error.map(|e| e.message()).unwrap_or_default()),
        ),
        Answer::Result { code: RESULT_PERMISSION_DENIED, error } => {
            let text = error.map(|e| e.message()).unwrap_or_default();
            (CapabilityState::Denied, format!("{sent}: {text}"))
        }
        Answer::Result { code: 0, .. } => (CapabilityState::Allowed, format!("{sent}: result 0: {}", meaning(0))),
        Answer::Result { code, error } => {
            let said = error.map(|e| e.message()).unwrap_or_default();
            (CapabilityState::Allowed, format!("{sent}: answered \"{said}\": {}", meaning(code)))
        }
        Answer::NoReply { error, .. } => {
            (CapabilityState::NotProbed, format!("could not be probed: {}", error.message()))
        }
    };
    Capability { name: name.to_string(), method: method.rest_path(), state, detail }
}

#[cfg(test)]
mod tests {
    use cloudpe_sim_api::{FaultKind, FaultRule};

    use super::*;
    use crate::ops::testing::{FakeCloudPe, app};

    const CREATE: &str = "/1.0/system/admin/rest/createaccount";
    const ADD: &str = "/1.0/users/account/rest/addaccount";

    fn cloud() -> FakeCloudPe {
        FakeCloudPe::new(&[(12, 1, None), (13, 2, Some(false))])
    }

    /// (name, method, state) of each capability, and its detail.
    fn probe(cloud: &FakeCloudPe) -> Vec<(String, String, CapabilityState, String)> {
        capabilities(cloud, &app()).unwrap().into_iter().map(|c| (c.name, c.method, c.state, c.detail)).collect()
    }

    fn state_of<'a>(
        found: &'a [(String, String, CapabilityState, String)],
        method: &str,
    ) -> (CapabilityState, &'a str) {
        let c = found.iter().find(|c| c.1 == method).unwrap_or_else(|| panic!("{method} in {found:?}"));
        (c.2, c.3.as_str())
    }

    #[test]
    fn every_optional_method_is_listed_once_in_order() {
        let found = probe(&cloud());
        let listed: Vec<(&str, &str)> = found.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect();
        assert_eq!(
            listed,
            [
                ("billing history", "billing/account/rest/getaccountbillinghistorybyperiodinner"),
                ("group list", "billing/groupquota/rest/getgroups"),
                ("set group", "billing/account/rest/setgroup"),
                ("create account", "system/admin/rest/createaccount"),
                ("create account", "users/account/rest/addaccount"),
                ("user info", "system/admin/rest/getuserinfo"),
            ]
        );
    }

    #[test]
    fn methods_the_token_may_call_are_allowed_and_say_what_that_proves() {
        let cloud = cloud();
        cloud.answer(CREATE, 200, r#"{"result":1,"error":"parameter [email] is required"}"#);
        let found = probe(&cloud);
        let (state, detail) = state_of(&found, "billing/account/rest/getaccountbillinghistorybyperiodinner");
        assert_eq!(state, CapabilityState::Allowed, "{detail}");
        assert!(detail.contains("parameter [uid] is required") && detail.contains("permission check"), "{detail}");
        let (state, detail) = state_of(&found, "billing/groupquota/rest/getgroups");
        assert_eq!((state, detail.contains("result 0")), (CapabilityState::Allowed, true), "{detail}");
        let (state, detail) = state_of(&found, "billing/account/rest/setgroup");
        assert_eq!(state, CapabilityState::Allowed, "{detail}");
        assert!(
            detail.starts_with("called without uid or groupName: answered \"")
                && detail.contains("parameter [uid] is required")
                && detail.ends_with("this does not prove that a real move would succeed"),
            "{detail}"
        );
        let (state, detail) = state_of(&found, "system/admin/rest/createaccount");
        assert_eq!(state, CapabilityState::Allowed, "{detail}");
        assert!(detail.contains("does not prove that a real creation would succeed"), "{detail}");
        let (state, detail) = state_of(&found, "users/account/rest/addaccount");
        assert_eq!(state, CapabilityState::NotProbed);
        assert_eq!(detail, "not called: system/admin/rest/createaccount is allowed and is the one used");
        assert!(cloud.requests.borrow().iter().all(|r| r.path_and_query != ADD), "the later variant is never called");
        let (state, detail) = state_of(&found, "system/admin/rest/getuserinfo");
        assert_eq!(state, CapabilityState::Allowed, "{detail}");
        assert!(detail.contains(PROBE_LOGIN) && detail.contains("found nobody"), "{detail}");
        assert_eq!(cloud.logs.borrow().iter().filter(|(_, m)| m.starts_with("capabilities: ")).count(), 6);
    }

    #[test]
    fn a_method_outside_the_tokens_list_is_denied_naming_the_permission() {
        for (method, path, permission) in [
            (
                "getaccountbillinghistorybyperiodinner",
                "billing/account/rest/getaccountbillinghistorybyperiodinner",
                "billing.Account.GetAccountBillingHistoryByPeriodInner",
            ),
            ("getgroups", "billing/groupquota/rest/getgroups", "billing.GroupQuota.GetGroups"),
            ("setgroup", "billing/account/rest/setgroup", "billing.Account.SetGroup"),
            ("getuserinfo", "system/admin/rest/getuserinfo", "system.Admin.GetUserInfo"),
        ] {
            let cloud = cloud();
            cloud.deny(method);
            let found = probe(&cloud);
            let (state, detail) = state_of(&found, path);
            assert_eq!(state, CapabilityState::Denied, "{method}: {detail}");
            assert!(detail.contains(&format!("allow {permission} ({method})")) && detail.contains("8202"), "{detail}");
            let denied = found.iter().filter(|c| c.2 == CapabilityState::Denied).count();
            assert_eq!(denied, 1, "only {method} is denied; the probes after it still ran: {found:?}");
        }
    }

    #[test]
    fn a_denied_creation_variant_moves_on_to_the_next() {
        let cloud = cloud();
        cloud.answer(
            CREATE,
            200,
            r#"{"result":8202,"error":"Permission denied, required permissions: createaccount"}"#,
        );
        cloud.answer(ADD, 200, r#"{"result":1,"error":"parameter [email] is required"}"#);
        let found = probe(&cloud);
        let (state, detail) = state_of(&found, "system/admin/rest/createaccount");
        assert_eq!(state, CapabilityState::Denied);
        assert!(detail.contains("allow system.Admin.CreateAccount (createaccount)"), "{detail}");
        assert_eq!(state_of(&found, "users/account/rest/addaccount").0, CapabilityState::Allowed);
    }

    #[test]
    fn a_method_this_platform_does_not_know_is_unknown() {
        // A platform with neither creation call: HTTP 404 for both, so both are tried.
        let cloud = cloud();
        cloud.answer(CREATE, 404, "404 Not Found");
        cloud.answer(ADD, 404, "404 Not Found");
        let found = probe(&cloud);
        for path in ["system/admin/rest/createaccount", "users/account/rest/addaccount"] {
            let (state, detail) = state_of(&found, path);
            assert_eq!(state, CapabilityState::Unknown, "{detail}");
            assert!(detail.contains("HTTP 404") && detail.contains(path), "{detail}");
        }
        // CloudPe's own "method not found" means the same.
        let cloud = super::tests::cloud();
        cloud.answer("/1.0/system/admin/rest/getuserinfo", 200, r#"{"result":1702,"error":"method not found"}"#);
        assert_eq!(state_of(&probe(&cloud), "system/admin/rest/getuserinfo").0, CapabilityState::Unknown);
    }

    #[test]
    fn a_write_answered_with_success_is_reported_as_suspicious() {
        let cloud = cloud();
        cloud.fault(FaultRule::new(FaultKind::ApiError { result: 0, error: String::new() }).method("setgroup"));
        let found = probe(&cloud);
        let (state, detail) = state_of(&found, "billing/account/rest/setgroup");
        assert_eq!(state, CapabilityState::Allowed);
        assert!(detail.contains("SUSPICIOUS") && detail.contains("no user changed group"), "{detail}");
    }

    #[test]
    fn a_rejected_session_fails_the_whole_probe_without_the_token() {
        let cloud = cloud();
        let mut bad = app();
        bad.field2 = Some("rejected-session-token".into());
        let e = capabilities(&cloud, &bad).unwrap_err();
        assert!(
            matches!(&e, ModuleError::Authentication(m) if m.contains("rejected the session token") && !m.contains("rejected-session-token")),
            "{e:?}"
        );
        assert_eq!(cloud.requests.borrow().len(), 1, "nothing more is sent");
    }

    #[test]
    fn transport_failures_leave_one_capability_unprobed_or_fail_the_whole_probe() {
        let cloud = cloud();
        cloud.fault(FaultRule::new(FaultKind::Reset).method("getgroups"));
        let found = probe(&cloud);
        let (state, detail) = state_of(&found, "billing/groupquota/rest/getgroups");
        assert_eq!(state, CapabilityState::NotProbed);
        assert!(detail.starts_with("could not be probed: ") && detail.contains("connection reset"), "{detail}");
        assert_eq!(state_of(&found, "billing/account/rest/setgroup").0, CapabilityState::Allowed);
        // Nothing connects: CloudPe is unreachable, and the probe says so once.
        let cloud = super::tests::cloud();
        cloud.unreachable();
        let e = capabilities(&cloud, &app()).unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("unreachable")), "{e:?}");
        assert_eq!(cloud.requests.borrow().len(), CALL_ATTEMPTS as usize, "only the first probe was tried");
    }

    #[test]
    fn bad_settings_are_a_configuration_error_before_any_request() {
        let cloud = cloud();
        let mut bad = app();
        bad.status_url = Some("api.example.com".into());
        assert!(matches!(capabilities(&cloud, &bad), Err(ModuleError::Configuration(_))));
        assert!(cloud.requests.borrow().is_empty());
    }

    #[test]
    fn no_probe_writes_or_names_what_a_write_would_change() {
        for create in [None, Some(r#"{"result":0}"#)] {
            let cloud = cloud();
            cloud.put_in_group(13, "beta");
            if let Some(body) = create {
                cloud.answer(CREATE, 200, body);
            }
            let before = cloud.users();
            let found = probe(&cloud);
            assert_eq!(found.len(), 6);
            assert_eq!(cloud.users(), before, "users, statuses and groups unchanged");
            assert!(cloud.group_changes().is_empty() && cloud.writes().is_empty());
            for request in cloud.requests.borrow().iter() {
                let body = request.form_body.as_deref().unwrap_or("");
                let names: Vec<String> =
                    form_urlencoded::parse(body.as_bytes()).map(|(name, _)| name.into_owned()).collect();
                for forbidden in ["uid", "email", "password", "groupName", "name"] {
                    assert!(!names.iter().any(|n| n == forbidden), "{forbidden} sent to {}", request.path_and_query);
                }
                let is_read = ["getaccountbillinghistorybyperiodinner", "getgroups", "getuserinfo"]
                    .iter()
                    .any(|m| request.path_and_query.ends_with(m));
                if !is_read {
                    assert_eq!(names, ["appid", "session"], "{}", request.path_and_query);
                }
            }
        }
    }
}
