//! The CloudPe group of a product: its choices (the platform's group list) and ChangePackage.

use crate::api::{CloudPe, is_retryable};
use crate::config::{self, PRODUCT_GROUP_OPTION};
use crate::ops::{cloudpe_uid, settings};
use crate::transport::Platform;
use crate::wit::{AccountContext, AppSettings, Fact, LogLevel, ModuleError, OptionChoice, Outcome, RemoteError};

/// ChangePackage: puts the user in the group the product names, and reads it back to confirm.
/// A product naming no group changes nothing on CloudPe.
pub fn change_package(
    platform: &impl Platform,
    app: &AppSettings,
    request: &AccountContext,
) -> Result<Outcome, ModuleError> {
    let settings = settings(app)?;
    let uid = cloudpe_uid(&settings, &request.account)?;
    let Some(group) = config::product_group(&request.product) else {
        let message = format!(
            "the product names no CloudPe group (product option \"{PRODUCT_GROUP_OPTION}\"): nothing changed on CloudPe"
        );
        platform.log(LogLevel::Info, &format!("change-package: CloudPe user {uid}: {message}"));
        return Ok(Outcome { message, facts: vec![Fact::new("cloudpe-uid", uid.to_string())], changed_remote: false });
    };
    let api = CloudPe::new(&settings, platform);
    let moved = apply_group(&api, uid, group)?;
    let mut facts = vec![Fact::new("cloudpe-uid", uid.to_string()), Fact::new("cloudpe-group", group)];
    let (message, changed_remote) = match &moved {
        GroupMove::AlreadyThere => {
            (format!("CloudPe user {uid} is already in group {group:?}: nothing changed on CloudPe"), false)
        }
        GroupMove::Moved { from } => {
            facts.push(Fact::new("cloudpe-previous-group", from.as_str()));
            (format!("CloudPe user {uid} moved from group {from:?} to {group:?} (confirmed by reading it back)"), true)
        }
    };
    platform.log(LogLevel::Info, &format!("change-package: {message}"));
    Ok(Outcome { message, facts, changed_remote })
}

/// The choices of a product option filled from CloudPe. `CloudPe group` (any case): one choice
/// per group `getgroups` lists, value and label its name, in CloudPe's order (the provider's
/// own, which an alphabetical sort would lose).
pub fn option_choices(
    platform: &impl Platform,
    app: &AppSettings,
    option: &str,
) -> Result<Vec<OptionChoice>, ModuleError> {
    let settings = settings(app)?;
    if !option.trim().eq_ignore_ascii_case(PRODUCT_GROUP_OPTION) {
        let mut shown: String = option.chars().take(60).collect();
        if shown.len() < option.len() {
            shown.push('…');
        }
        return Err(ModuleError::Configuration(format!(
            "the module fills no product option {shown:?}: the options it knows are \"{PRODUCT_GROUP_OPTION}\""
        )));
    }
    let api = CloudPe::new(&settings, platform);
    let names = api.groups()?;
    platform.log(LogLevel::Info, &format!("option-choices: CloudPe lists {} groups", names.len()));
    Ok(names.into_iter().map(|name| OptionChoice { value: name.clone(), label: name }).collect())
}

/// What [`apply_group`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMove {
    /// The user was already in the group: nothing was sent.
    AlreadyThere,
    /// `setgroup` was sent and the user read back in the group.
    Moved {
        /// The group the user was in before ("" when CloudPe named none).
        from: String,
    },
}

/// Puts CloudPe user `uid` in `group` and confirms it by reading the user back; a lost reply is
/// read back, never guessed. Shared by ChangePackage and provisioning.
///
/// The user is read first: already in the group, nothing is sent. Otherwise `setgroup` is sent
/// once; after a retryable failure (a lost reply, a 5xx, CloudPe's internal error) the user is
/// read back, and the move counts as done only if it shows the group. A user not in the group
/// after CloudPe answered the move with success is an `unexpected` error naming both groups.
pub(super) fn apply_group(
    api: &crate::api::CloudPe<'_, impl Platform>,
    uid: u64,
    group: &str,
) -> Result<GroupMove, ModuleError> {
    let no_user = || ModuleError::NotFound(format!("CloudPe has no user with uid {uid}"));
    let before = api.find_account(uid)?.ok_or_else(no_user)?;
    let from = before.group().unwrap_or("").to_string();
    if from == group {
        return Ok(GroupMove::AlreadyThere);
    }
    let written = api.set_group(uid, group);
    if let Err(error) = &written
        && !is_retryable(error)
    {
        return Err(error.clone());
    }
    let after = match api.find_account(uid) {
        Ok(Some(after)) => after,
        Ok(None) => {
            return Err(ModuleError::NotFound(format!(
                "CloudPe has no user with uid {uid} any more: it was removed while being moved to group {group:?}"
            )));
        }
        Err(read) => {
            let what = match &written {
                Ok(()) => "CloudPe accepted the move".to_string(),
                Err(error) => format!("the move failed ({})", error.message()),
            };
            return Err(same_kind(
                written.as_ref().err().unwrap_or(&read),
                format!(
                    "unknown whether CloudPe user {uid} is in group {group:?}: {what}, and reading it back failed ({})",
                    read.message()
                ),
            ));
        }
    };
    let now = after.group().unwrap_or("");
    match written {
        _ if now == group => {
            if let Err(error) = &written {
                api.platform_log(
                    LogLevel::Warn,
                    &format!(
                        "setgroup failed ({}), but CloudPe user {uid} is in group {group:?}: applied (reply lost)",
                        error.message()
                    ),
                );
            }
            Ok(GroupMove::Moved { from })
        }
        Ok(()) => Err(ModuleError::Unexpected(format!(
            "CloudPe accepted moving user {uid} to group {group:?}, but reading it back shows group {now:?} (it was in {from:?})"
        ))),
        Err(error) => Err(same_kind(
            &error,
            format!(
                "not applied: CloudPe user {uid} is still in group {now:?} after moving it to {group:?} failed ({})",
                error.message()
            ),
        )),
    }
}

/// An error of the same kind (and CloudPe code) as `error`, with `message`.
fn same_kind(error: &ModuleError, message: String) -> ModuleError {
    match error {
        ModuleError::RemoteApi(RemoteError { code, .. }) => {
            ModuleError::RemoteApi(RemoteError { code: *code, message })
        }
        ModuleError::Configuration(_) => ModuleError::Configuration(message),
        ModuleError::NotFound(_) => ModuleError::NotFound(message),
        ModuleError::Authentication(_) => ModuleError::Authentication(message),
        ModuleError::Transport(_) => ModuleError::Transport(message),
        ModuleError::Unexpected(_) => ModuleError::Unexpected(message),
    }
}

#[cfg(test)]
mod tests {
    use cloudpe_sim_api::{FaultKind, FaultRule, GroupsShape};

    use super::*;
    use crate::ops::testing::{FakeCloudPe, app};
    use crate::wit::{Account, AppSetting, CustomField, HostbillStatus};

    fn request(uid: &str, group: Option<&str>) -> AccountContext {
        AccountContext {
            account: Account {
                id: 1,
                client_id: 7,
                status: HostbillStatus::Active,
                custom_fields: vec![CustomField { code: "cloudpeid".into(), value: uid.into() }],
            },
            client_email: Some("user12@example.com".into()),
            product: group
                .map(|g| vec![AppSetting { name: "cloudpe group".into(), value: format!(" {g} ") }])
                .unwrap_or_default(),
        }
    }

    fn fact<'a>(outcome: &'a Outcome, name: &str) -> Option<&'a str> {
        outcome.facts.iter().find(|f| f.name == name).map(|f| f.value.as_str())
    }

    fn setgroup_bodies(cloud: &FakeCloudPe) -> Vec<String> {
        let requests = cloud.requests.borrow();
        requests
            .iter()
            .filter(|r| r.path_and_query == "/1.0/billing/account/rest/setgroup")
            .map(|r| r.form_body.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_package_change_moves_the_user_and_reads_it_back() {
        let cloud = FakeCloudPe::new(&[(12, 1, None), (120, 1, None)]);
        let out = change_package(&cloud, &app(), &request("12", Some("premium"))).unwrap();
        assert!(out.changed_remote);
        assert_eq!(
            out.message,
            "CloudPe user 12 moved from group \"default\" to \"premium\" (confirmed by reading it back)"
        );
        assert_eq!(fact(&out, "cloudpe-uid"), Some("12"));
        assert_eq!(fact(&out, "cloudpe-group"), Some("premium"));
        assert_eq!(fact(&out, "cloudpe-previous-group"), Some("default"));
        assert_eq!(cloud.group_changes(), [(12, "premium".to_string())]);
        assert_eq!(cloud.group_of(120), "default", "the decoy is left alone");
        let bodies = setgroup_bodies(&cloud);
        assert_eq!(bodies.len(), 1);
        for part in ["uid=12", "groupName=premium", "resetBalance=false", "resetBonus=false"] {
            assert!(bodies[0].split('&').any(|p| p == part), "{part} in {}", bodies[0]);
        }
        // Read, move, read back.
        let paths: Vec<String> = cloud.requests.borrow().iter().map(|r| r.path_and_query.clone()).collect();
        assert_eq!(paths.iter().filter(|p| p.ends_with("/getaccounts")).count(), 2, "{paths:?}");
        assert!(cloud.logs.borrow().iter().any(|(l, m)| *l == LogLevel::Info && m.starts_with("change-package: ")));
    }

    #[test]
    fn a_user_already_in_the_group_is_not_written() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.put_in_group(12, "premium");
        let out = change_package(&cloud, &app(), &request("12", Some("premium"))).unwrap();
        assert!(!out.changed_remote);
        assert!(out.message.contains("already in group \"premium\""), "{}", out.message);
        assert_eq!(fact(&out, "cloudpe-previous-group"), None);
        assert!(setgroup_bodies(&cloud).is_empty());
    }

    #[test]
    fn a_product_without_a_group_changes_nothing() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        for product in [request("12", None), request("12", Some("  "))] {
            let out = change_package(&cloud, &app(), &product).unwrap();
            assert!(!out.changed_remote);
            assert!(out.message.starts_with("the product names no CloudPe group"), "{}", out.message);
            assert!(out.message.ends_with("nothing changed on CloudPe"), "{}", out.message);
        }
        assert!(cloud.requests.borrow().is_empty());
    }

    #[test]
    fn bad_input_fails_before_any_write() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        let e = change_package(&cloud, &app(), &request("abc", Some("premium"))).unwrap_err();
        assert!(matches!(&e, ModuleError::Configuration(m) if m.contains("client #7")), "{e:?}");
        assert!(cloud.requests.borrow().is_empty());
        let e = change_package(&cloud, &app(), &request("13", Some("premium"))).unwrap_err();
        assert_eq!(e, ModuleError::NotFound("CloudPe has no user with uid 13".into()));
        assert!(setgroup_bodies(&cloud).is_empty());
    }

    #[test]
    fn an_unknown_group_is_named_and_nothing_changes() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        let e = change_package(&cloud, &app(), &request("12", Some("gold"))).unwrap_err();
        assert!(
            matches!(&e, ModuleError::RemoteApi(RemoteError { code: 1, message }) if message.contains("group [gold] not found")),
            "{e:?}"
        );
        assert_eq!(cloud.group_of(12), "default");
        assert!(cloud.group_changes().is_empty());
    }

    #[test]
    fn a_denied_setgroup_names_the_permission() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.deny("setgroup");
        let e = change_package(&cloud, &app(), &request("12", Some("premium"))).unwrap_err();
        assert!(
            matches!(&e, ModuleError::RemoteApi(RemoteError { code: 8202, message })
                if message.contains("CloudPe denied setgroup: allow billing.Account.SetGroup (setgroup)")),
            "{e:?}"
        );
        assert_eq!(cloud.group_of(12), "default");
    }

    #[test]
    fn a_lost_reply_is_read_back_and_the_move_found_applied() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.fault(FaultRule::new(FaultKind::Http500.after_applying()).method("setgroup").times(1));
        let out = change_package(&cloud, &app(), &request("12", Some("beta"))).unwrap();
        assert!(out.changed_remote);
        assert_eq!(fact(&out, "cloudpe-previous-group"), Some("default"));
        assert_eq!(setgroup_bodies(&cloud).len(), 1, "sent once: the read-back settles it");
        assert!(
            cloud.logs.borrow().iter().any(|(l, m)| *l == LogLevel::Warn && m.contains("applied (reply lost)")),
            "{:?}",
            cloud.logs.borrow()
        );
    }

    #[test]
    fn a_lost_reply_of_a_move_not_applied_is_an_error_saying_so() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.fault(FaultRule::new(FaultKind::Reset).method("setgroup"));
        let e = change_package(&cloud, &app(), &request("12", Some("beta"))).unwrap_err();
        assert!(
            matches!(&e, ModuleError::Transport(m)
                if m.starts_with("not applied: CloudPe user 12 is still in group \"default\" after moving it to \"beta\" failed")),
            "{e:?}"
        );
        assert_eq!(setgroup_bodies(&cloud).len(), 1, "never sent again");
        assert!(cloud.group_changes().is_empty());
        // A proxy's 502 after CloudPe did the work: applied.
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.fault(FaultRule::new(FaultKind::Html502.after_applying()).method("setgroup"));
        assert!(change_package(&cloud, &app(), &request("12", Some("beta"))).unwrap().changed_remote);
    }

    /// The simulated CloudPe whose user reads fail (HTTP 502) once `reads_ok` have passed.
    struct ReadsFailLater {
        cloud: FakeCloudPe,
        reads_ok: std::cell::Cell<u32>,
    }

    impl Platform for ReadsFailLater {
        fn send(
            &self,
            request: &crate::transport::HttpRequest,
        ) -> Result<crate::transport::HttpResponse, crate::transport::TransportError> {
            if request.path_and_query.ends_with("/getaccounts") {
                if self.reads_ok.get() == 0 {
                    return Ok(crate::transport::HttpResponse { status: 502, body: b"Bad Gateway".to_vec() });
                }
                self.reads_ok.set(self.reads_ok.get() - 1);
            }
            self.cloud.send(request)
        }
        fn sleep(&self, _: std::time::Duration) {}
        fn random_u64(&self) -> u64 {
            4
        }
        fn log(&self, level: LogLevel, message: &str) {
            self.cloud.log(level, message);
        }
    }

    #[test]
    fn a_move_whose_read_back_fails_is_reported_as_unknown() {
        for lost in [false, true] {
            let platform = ReadsFailLater { cloud: FakeCloudPe::new(&[(12, 1, None)]), reads_ok: 1.into() };
            if lost {
                platform.cloud.fault(FaultRule::new(FaultKind::Http500.after_applying()).method("setgroup"));
            }
            let e = change_package(&platform, &app(), &request("12", Some("beta"))).unwrap_err();
            let ModuleError::Transport(m) = &e else { panic!("{e:?}") };
            assert!(m.starts_with("unknown whether CloudPe user 12 is in group \"beta\": "), "{m}");
            assert!(
                m.contains(if lost {
                    "the move failed (CloudPe answered HTTP 500"
                } else {
                    "CloudPe accepted the move"
                }),
                "{m}"
            );
            assert!(m.contains("reading it back failed (CloudPe answered HTTP 502"), "{m}");
            assert_eq!(platform.cloud.group_changes().len(), 1, "sent once, whatever the read-back");
        }
    }

    #[test]
    fn an_accepted_move_the_read_back_does_not_show_is_unexpected() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        // CloudPe answers success without moving the user.
        cloud.fault(FaultRule::new(FaultKind::ApiError { result: 0, error: String::new() }).method("setgroup"));
        let e = change_package(&cloud, &app(), &request("12", Some("premium"))).unwrap_err();
        assert_eq!(
            e,
            ModuleError::Unexpected(
                "CloudPe accepted moving user 12 to group \"premium\", but reading it back shows group \"default\" (it was in \"default\")".into()
            )
        );
    }

    #[test]
    fn the_group_option_lists_cloudpes_groups_in_either_shape() {
        for shape in [GroupsShape::Objects, GroupsShape::Names] {
            let cloud = FakeCloudPe::new(&[]);
            cloud.set_groups_shape(shape);
            cloud.set_groups(&["trial", "beta", "", "trial", "premium"]);
            let choices = option_choices(&cloud, &app(), " CLOUDPE GROUP ").unwrap();
            let values: Vec<(&str, &str)> = choices.iter().map(|c| (c.value.as_str(), c.label.as_str())).collect();
            assert_eq!(values, [("trial", "trial"), ("beta", "beta"), ("premium", "premium")], "{shape:?}");
            assert!(cloud.users().is_empty() && cloud.group_changes().is_empty());
        }
    }

    #[test]
    fn a_group_list_element_of_another_shape_is_shown_in_the_error() {
        let cloud = FakeCloudPe::new(&[]);
        cloud.answer(
            "/1.0/billing/groupquota/rest/getgroups",
            200,
            r#"{"result":0,"array":[{"name":"trial"},{"id":4,"title":"gold"}]}"#,
        );
        let e = option_choices(&cloud, &app(), "CloudPe group").unwrap_err();
        assert!(
            matches!(&e, ModuleError::Unexpected(m) if m.contains(r#"{"id":4,"title":"gold"}"#) && m.contains("getgroups")),
            "{e:?}"
        );
        let cloud = FakeCloudPe::new(&[]);
        cloud.answer("/1.0/billing/groupquota/rest/getgroups", 200, r#"{"result":0}"#);
        let e = option_choices(&cloud, &app(), "CloudPe group").unwrap_err();
        assert!(matches!(&e, ModuleError::Unexpected(m) if m.contains("no `array`")), "{e:?}");
    }

    #[test]
    fn other_options_are_refused_by_name() {
        let cloud = FakeCloudPe::new(&[]);
        let e = option_choices(&cloud, &app(), "Disk size").unwrap_err();
        assert_eq!(
            e,
            ModuleError::Configuration(
                "the module fills no product option \"Disk size\": the options it knows are \"CloudPe group\"".into()
            )
        );
        assert!(cloud.requests.borrow().is_empty());
        cloud.deny("getgroups");
        let e = option_choices(&cloud, &app(), "CloudPe group").unwrap_err();
        assert!(e.message().contains("allow billing.GroupQuota.GetGroups (getgroups)"), "{e:?}");
    }
}
