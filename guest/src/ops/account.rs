//! Create, Suspend, Unsuspend and Terminate for one HostBill account.

use super::{account_facts, cloudpe_uid, settings};
use crate::api::{CloudPe, RemoteAccount, is_retryable};
use crate::config::TerminatePolicy;
use crate::status;
use crate::transport::Platform;
use crate::wit::{Account, AppSettings, Fact, HostbillStatus, LogLevel, ModuleError, Outcome, RemoteError};

/// Create: CloudPe users are created by hand, so this verifies that the client's CloudPe user
/// exists and is usable, and reports its state. It changes nothing on CloudPe.
pub fn create(platform: &impl Platform, app: &AppSettings, account: &Account) -> Result<Outcome, ModuleError> {
    let settings = settings(app)?;
    let uid = cloudpe_uid(&settings, account)?;
    let api = CloudPe::new(&settings, platform);
    let remote = api.find_account(uid)?.ok_or_else(|| {
        ModuleError::NotFound(format!("CloudPe has no user with uid {uid} (client #{})", account.client_id))
    })?;
    linkable(platform, &remote)
}

/// Whether CloudPe user `remote` may be linked to a new account (not being destroyed or deleted,
/// a known status), with its facts and the status HostBill should record.
pub(super) fn linkable(platform: &impl Platform, remote: &RemoteAccount) -> Result<Outcome, ModuleError> {
    let uid = remote.uid;
    let facts = account_facts(remote);
    let state = remote.status.ok_or_else(|| {
        ModuleError::Unexpected(format!(
            "CloudPe returned user {uid} without a status: cannot tell whether it is usable"
        ))
    })?;
    match status::hostbill_status(state, remote.is_enabled) {
        Some(HostbillStatus::Terminated) => Err(ModuleError::NotFound(format!(
            "CloudPe user {uid} is {}: it cannot be linked to a new account",
            status::describe(state)
        ))),
        None => Err(ModuleError::Unexpected(format!(
            "CloudPe user {uid} has status {}, which this module does not know",
            status::describe(state)
        ))),
        Some(now) => {
            let message = format!(
                "CloudPe user {uid} exists ({}); linked without changes, so HostBill should record it as {}",
                describe_state(state, remote.is_enabled),
                now.as_str()
            );
            platform.log(LogLevel::Info, &format!("create: {message}"));
            Ok(Outcome { message, facts, changed_remote: false })
        }
    }
}

/// Suspend: deactivates the CloudPe user (status 2), which stops its environments.
pub fn suspend(platform: &impl Platform, app: &AppSettings, account: &Account) -> Result<Outcome, ModuleError> {
    set_status(platform, app, account, status::INACTIVE, "suspend")
}

/// Unsuspend: activates the CloudPe user (status 1), which wakes its environments up.
pub fn unsuspend(platform: &impl Platform, app: &AppSettings, account: &Account) -> Result<Outcome, ModuleError> {
    set_status(platform, app, account, status::ACTIVE, "unsuspend")
}

/// Terminate: follows the App's explicit policy. By default it makes no API call and says so.
pub fn terminate(platform: &impl Platform, app: &AppSettings, account: &Account) -> Result<Outcome, ModuleError> {
    let settings = settings(app)?;
    match settings.terminate_policy {
        TerminatePolicy::LeaveUntouched => {
            let who = match cloudpe_uid(&settings, account) {
                Ok(uid) => format!("CloudPe user {uid}"),
                Err(_) => format!("the CloudPe user of client #{}", account.client_id),
            };
            let mut message = format!(
                "terminate policy \"none\": {who} was left unchanged (no API call made); remove it on CloudPe by hand if required"
            );
            if cfg!(feature = "test-variant") {
                message.push_str(" [test variant]");
            }
            platform.log(LogLevel::Info, &format!("terminate: {message}"));
            Ok(Outcome { message, facts: vec![Fact::new("terminate-policy", "none")], changed_remote: false })
        }
        TerminatePolicy::Deactivate => {
            let mut outcome = set_status(platform, app, account, status::INACTIVE, "terminate")?;
            outcome.message = format!("terminate policy \"deactivate\": {}", outcome.message);
            outcome.facts.push(Fact::new("terminate-policy", "deactivate"));
            Ok(outcome)
        }
    }
}

fn set_status(
    platform: &impl Platform,
    app: &AppSettings,
    account: &Account,
    target: i64,
    operation: &str,
) -> Result<Outcome, ModuleError> {
    let settings = settings(app)?;
    let uid = cloudpe_uid(&settings, account)?;
    let api = CloudPe::new(&settings, platform);
    let written = api.set_account_status(uid, target).map_err(|e| match e {
        ModuleError::NotFound(_) => {
            ModuleError::NotFound(format!("CloudPe has no user with uid {uid} (client #{})", account.client_id))
        }
        other => other,
    });
    let mut reply_lost = false;
    if let Err(error) = written {
        if !is_retryable(&error) || !api.reached() {
            // Refused, or never reached CloudPe (no attempt could connect): certainly not applied.
            return Err(error);
        }
        // The write may have been applied and only its reply lost: what CloudPe holds now says.
        check_write(&api, uid, target, &error)?;
        reply_lost = true;
        platform.log(LogLevel::Warn, &format!("{operation}: setaccountstatus failed ({}), but CloudPe user {uid} has the status: applied (reply lost)", error.message()));
    }
    let effect =
        if target == status::INACTIVE { "its environments are stopped" } else { "its environments are started" };
    let mut message = format!("CloudPe user {uid} set to status {}: {effect}", status::describe(target));
    let mut facts =
        vec![Fact::new("cloudpe-uid", uid.to_string()), Fact::new("cloudpe-status", status::describe(target))];
    if reply_lost {
        message.push_str(" (applied, reply lost: confirmed by reading the user back)");
        facts.push(Fact::new("write", "applied (reply lost)"));
    }
    platform.log(LogLevel::Info, &format!("{operation}: {message}"));
    Ok(Outcome { message, facts, changed_remote: true })
}

/// After a `setaccountstatus` whose reply was lost (timeout, reset, 5xx), reads the user back:
/// `Ok` when it has the `target` status (the write was applied), otherwise the write's error,
/// of the same kind, saying that it was not applied or that this could not be told.
fn check_write<P: Platform>(
    api: &CloudPe<'_, P>,
    uid: u64,
    target: i64,
    error: &ModuleError,
) -> Result<(), ModuleError> {
    let wanted = status::describe(target);
    let explained = |message: String| match error {
        ModuleError::RemoteApi(RemoteError { code, .. }) => {
            ModuleError::RemoteApi(RemoteError { code: *code, message })
        }
        _ => ModuleError::Transport(message),
    };
    let cause = match error {
        ModuleError::RemoteApi(RemoteError { message, .. }) => message.as_str(),
        ModuleError::Transport(message) => message.as_str(),
        other => return Err(other.clone()),
    };
    match api.find_account(uid) {
        Ok(Some(remote)) if remote.status == Some(target) => Ok(()),
        Ok(Some(remote)) => Err(explained(format!(
            "not applied: CloudPe user {uid} still has status {} after setting it to {wanted} failed ({cause})",
            remote.status.map_or_else(|| "none".into(), status::describe)
        ))),
        Ok(None) => Err(ModuleError::NotFound(format!(
            "CloudPe has no user with uid {uid}: setting it to {wanted} failed ({cause})"
        ))),
        Err(read) => Err(explained(format!(
            "unknown whether CloudPe user {uid} was set to {wanted}: the write failed ({cause}) and reading it back failed too ({})",
            read.message()
        ))),
    }
}

fn describe_state(state: i64, is_enabled: Option<bool>) -> String {
    let login = if is_enabled == Some(false) { "login locked" } else { "login enabled" };
    format!("status {}, {login}", status::describe(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{FakeCloudPe, SESSION, app};
    use crate::transport::HttpMethod;
    use crate::wit::{AppSetting, CustomField};

    fn account(uid: &str) -> Account {
        Account {
            id: 1,
            client_id: 7,
            status: HostbillStatus::Active,
            custom_fields: vec![CustomField { code: "cloudpeid".into(), value: uid.into() }],
        }
    }

    #[test]
    fn suspend_and_unsuspend_post_the_status() {
        let cloud = FakeCloudPe::new(&[(12, 1, Some(true)), (120, 1, None)]);
        let out = suspend(&cloud, &app(), &account("12")).unwrap();
        assert!(out.changed_remote);
        assert!(out.message.contains("2 (inactive)"), "{}", out.message);
        unsuspend(&cloud, &app(), &account("12")).unwrap();
        assert_eq!(cloud.writes(), vec![(12, 2), (12, 1)]);
        let requests = cloud.requests.borrow();
        assert_eq!(requests[0].method, HttpMethod::Post);
        assert_eq!(requests[0].path_and_query, "/1.0/billing/account/rest/setaccountstatus");
        let body = requests[0].form_body.as_deref().unwrap();
        assert!(body.contains("uid=12") && body.contains("status=2") && body.contains("appid=cluster"), "{body}");
    }

    #[test]
    fn a_write_whose_replies_were_lost_is_read_back() {
        // Applied every time, answered with HTTP 500 every time (3 attempts): the read-back
        // shows status 2, so the suspend succeeded.
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.lose_write_replies(3);
        let out = suspend(&cloud, &app(), &account("12")).unwrap();
        assert!(out.message.contains("applied, reply lost"), "{}", out.message);
        assert!(out.facts.iter().any(|f| f.name == "write" && f.value == "applied (reply lost)"));
        // Nothing answers (HTTP 502 everywhere): the write and its check both fail, and say so.
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.fail_all_with(502);
        let e = suspend(&cloud, &app(), &account("12")).unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.starts_with("unknown whether")), "{e:?}");
        // Unreachable: never sent, so not read back.
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.unreachable();
        let e = suspend(&cloud, &app(), &account("12")).unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("connection refused")), "{e:?}");
        assert_eq!(cloud.requests.borrow().len(), 3, "three attempts of the write, none connected: no read-back");
    }

    #[test]
    fn suspend_of_an_unknown_user_is_not_found() {
        let cloud = FakeCloudPe::new(&[(120, 1, None)]);
        let e = suspend(&cloud, &app(), &account("12")).unwrap_err();
        assert!(matches!(&e, ModuleError::NotFound(m) if m.contains("uid 12") && m.contains("client #7")), "{e:?}");
    }

    #[test]
    fn missing_id_fails_before_any_request() {
        let cloud = FakeCloudPe::new(&[]);
        let e = suspend(&cloud, &app(), &account("")).unwrap_err();
        assert!(matches!(e, ModuleError::Configuration(_)));
        assert!(cloud.requests.borrow().is_empty());
    }

    #[test]
    fn create_checks_the_exact_user_and_reports_its_state() {
        let cloud = FakeCloudPe::new(&[(120, 2, None), (12, 1, Some(false))]);
        let out = create(&cloud, &app(), &account("12")).unwrap();
        assert!(!out.changed_remote);
        assert!(out.message.contains("login locked") && out.message.contains("Suspended"), "{}", out.message);
        assert!(out.facts.iter().any(|f| f.name == "cloudpe-uid" && f.value == "12"));
        // only the decoy exists: not found, not the decoy's state
        let cloud = FakeCloudPe::new(&[(120, 1, None)]);
        assert!(matches!(create(&cloud, &app(), &account("12")), Err(ModuleError::NotFound(_))));
        let cloud = FakeCloudPe::new(&[(12, 4, None)]);
        assert!(
            matches!(create(&cloud, &app(), &account("12")), Err(ModuleError::NotFound(m)) if m.contains("deleted"))
        );
        assert!(cloud.writes().is_empty());
    }

    #[test]
    fn terminate_policy_is_explicit() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        let out = terminate(&cloud, &app(), &account("12")).unwrap();
        assert!(out.message.contains("no API call made"), "{}", out.message);
        assert!(cloud.requests.borrow().is_empty());
        let mut deactivate = app();
        deactivate.custom = vec![AppSetting { name: "On terminate".into(), value: "deactivate".into() }];
        let out = terminate(&cloud, &deactivate, &account("12")).unwrap();
        assert!(out.changed_remote && out.message.starts_with("terminate policy \"deactivate\""), "{}", out.message);
        assert_eq!(cloud.writes(), vec![(12, 2)]);
    }

    #[test]
    fn a_rejected_session_is_reported_without_the_token() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        let mut bad = app();
        bad.field2 = Some("wrong-session-value".into());
        let e = suspend(&cloud, &bad, &account("12")).unwrap_err();
        assert!(matches!(&e, ModuleError::Authentication(m) if !m.contains("wrong-session-value")), "{e:?}");
        let logs = cloud.logs.borrow();
        assert!(!logs.is_empty());
        assert!(logs.iter().all(|(_, m)| !m.contains("wrong-session-value") && !m.contains(SESSION)));
    }
}
