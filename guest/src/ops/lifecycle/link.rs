//! Create: link the account's CloudPe user (the client's id, or the client's email), or create it.
//!
//! The order is fixed, so that retrying a Create never makes a second user: the client's id if
//! it has one; else the client's email looked up (a substring filter: only exact, trimmed,
//! case-insensitive matches count); only when no user has the email, and the App's On create is
//! `provision`, a user is created, by a call sent once, then read back by email.

use super::groups::{GroupMove, apply_group};
use crate::api::{CloudPe, CreateReply, RemoteAccount};
use crate::config::{self, OnCreate, Settings};
use crate::inferred::{CREATE_VARIANTS, DUPLICATE_EMAIL_WORDS};
use crate::ops::{account, account_facts, id_value, quote, settings};
use crate::transport::Platform;
use crate::wit::{AccountContext, AppSettings, CreateOutcome, Fact, LinkSource, LogLevel, ModuleError, RemoteError};

/// Create, contract 2.4.0: verifies the user the client names, or finds it by the client's
/// email, or (App setting "On create" = provision) creates it.
pub fn create_account(
    platform: &impl Platform,
    app: &AppSettings,
    request: &AccountContext,
) -> Result<CreateOutcome, ModuleError> {
    let settings = settings(app)?;
    let client = request.account.client_id;
    if id_value(&settings, &request.account).is_some() {
        // The client names its user: verified as before 2.4.0 (a malformed id is an error, never
        // a reason to link someone else by email).
        let mut outcome = account::create(platform, app, &request.account)?;
        let uid = crate::ops::cloudpe_uid(&settings, &request.account)?;
        expect_group(&mut outcome, request);
        outcome.facts.push(Fact::new(LINK_FACT, "existing"));
        return Ok(CreateOutcome { outcome, remote_id: uid, source: LinkSource::Existing });
    }
    let email = request.client_email.as_deref().map(str::trim).unwrap_or("");
    if email.is_empty() {
        return Err(ModuleError::Configuration(format!(
            "client #{client} has no CloudPe id (`{}`) and no email to link by: set the client's email, or its `{}` custom field to the CloudPe user id",
            settings.id_field_code, settings.id_field_code
        )));
    }
    if email.len() > MAX_EMAIL_LEN || !email.contains('@') {
        return Err(ModuleError::Configuration(format!(
            "client #{client}'s email {} is not an email address: nothing was linked",
            quote(email)
        )));
    }
    let api = CloudPe::new(&settings, platform);
    match the_one(api.find_by_email(email)?, email)? {
        Some(remote) => link_found(platform, &api, &settings, request, &remote),
        None if settings.on_create == OnCreate::Link => Err(ModuleError::NotFound(format!(
            "no CloudPe user has the email {email} (client #{client}): create it on CloudPe, or set the App's On create to provision"
        ))),
        None => provision(platform, &api, request, email),
    }
}

/// The longest email address (RFC 5321's path limit, less its brackets).
const MAX_EMAIL_LEN: usize = 254;

/// The fact naming how the account was linked: `existing`, `by-email` or `provisioned`.
pub const LINK_FACT: &str = "cloudpe-link";
/// The fact naming the group the product expects when the user is in another one.
pub const EXPECTED_GROUP_FACT: &str = "cloudpe-group-expected";

/// The one exact match, none, or an error naming every uid when several users have the email.
fn the_one(mut found: Vec<RemoteAccount>, email: &str) -> Result<Option<RemoteAccount>, ModuleError> {
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(ModuleError::Configuration(format!(
            "{n} CloudPe users have the email {email} (uids {}): nothing was linked; set the client's CloudPe id to the right one by hand",
            found.iter().map(|u| u.uid.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Links the user found by the client's email, after the same checks as a client's own id. With
/// On create = link, nothing is written: a user outside the product's group is only reported.
/// With provision, the user is put in the product's group, as a created one is (so a Create
/// retried after its group step failed finishes the job).
fn link_found<P: Platform>(
    platform: &P,
    api: &CloudPe<'_, P>,
    settings: &Settings,
    request: &AccountContext,
    remote: &RemoteAccount,
) -> Result<CreateOutcome, ModuleError> {
    let uid = remote.uid;
    let mut outcome = account::linkable(platform, remote)?;
    let email = remote.email().unwrap_or_default();
    outcome.message = format!("linked by the client's email {email}: {}", outcome.message);
    if settings.on_create == OnCreate::Provision
        && let Some(group) = config::product_group(&request.product)
    {
        let moved = apply_group(api, uid, group).map_err(|e| {
            with_message(
                &e,
                format!(
                    "CloudPe user {uid} has the client's email {email} but was not put in the product's CloudPe group {group} ({}): nothing was linked; retrying Create links it and sets the group",
                    e.message()
                ),
            )
        })?;
        note_group(&mut outcome, group, &moved);
    } else {
        expect_group(&mut outcome, request);
    }
    outcome.facts.push(Fact::new(LINK_FACT, "by-email"));
    api.platform_log(LogLevel::Info, &format!("create: {}", outcome.message));
    Ok(CreateOutcome { outcome, remote_id: uid, source: LinkSource::ByEmail })
}

/// When the product names a group the user is not in: says so in the message and a fact,
/// changing nothing (the admin runs ChangePackage).
fn expect_group(outcome: &mut crate::wit::Outcome, request: &AccountContext) {
    let Some(expected) = config::product_group(&request.product) else { return };
    let actual = outcome.facts.iter().find(|f| f.name == "cloudpe-group").map(|f| f.value.as_str()).unwrap_or("");
    if actual.trim() != expected {
        let actual = if actual.is_empty() { "no group" } else { actual };
        outcome.message.push_str(&format!(
            "; the user is in {actual}, not in the product's CloudPe group {expected}: nothing was changed (run Change Package to move it)"
        ));
        outcome.facts.push(Fact::new(EXPECTED_GROUP_FACT, expected));
    }
}

/// Creates the user (no user has `email`), reads its uid back by email, and puts it in the
/// product's group.
fn provision<P: Platform>(
    platform: &P,
    api: &CloudPe<'_, P>,
    request: &AccountContext,
    email: &str,
) -> Result<CreateOutcome, ModuleError> {
    let client = request.account.client_id;
    let password = password::generate(|| platform.random_u64());
    let mut how = None;
    for variant in CREATE_VARIANTS {
        let method = variant.path.1;
        match api.create_user(variant, email, password.reveal()) {
            CreateReply::NoSuchPath => {
                api.platform_log(
                    LogLevel::Info,
                    &format!("create: CloudPe has no {}/rest/{method} (HTTP 404); trying the next way", variant.path.0),
                );
            }
            CreateReply::Created => {
                how = Some(Created::Now);
                break;
            }
            CreateReply::Failed { error, .. } if is_duplicate(&error) => {
                how = Some(Created::Before(error));
                break;
            }
            CreateReply::Failed { error, maybe_applied: true } => {
                how = Some(Created::Unknown(error));
                break;
            }
            CreateReply::Failed { error, maybe_applied: false } => {
                return Err(with_message(
                    &error,
                    format!("CloudPe did not create a user for {email} (client #{client}): {}", error.message()),
                ));
            }
        }
    }
    drop(password);
    let Some(how) = how else {
        let paths: Vec<String> = CREATE_VARIANTS.iter().map(|v| format!("{}/rest/{}", v.path.0, v.path.1)).collect();
        return Err(ModuleError::Configuration(format!(
            "CloudPe knows none of the ways to create a user ({}: HTTP 404): create the user for {email} on CloudPe, then retry Create (it links by email)",
            paths.join(", ")
        )));
    };
    let found = api.find_by_email(email).and_then(|found| the_one(found, email));
    let remote = match (&how, found) {
        (_, Ok(Some(remote))) => remote,
        (Created::Now, Ok(None)) => {
            return Err(ModuleError::Unexpected(format!(
                "CloudPe accepted the creation of a user for {email} (client #{client}) but lists no user with that email: retry Create (it looks the email up first, so it never makes a second user)"
            )));
        }
        (Created::Before(error), Ok(None)) => {
            return Err(with_message(
                error,
                format!(
                    "CloudPe says a user with the email {email} exists ({}), but lists none: nothing was linked; check the user on CloudPe",
                    error.message()
                ),
            ));
        }
        (Created::Unknown(error), Ok(None)) => {
            return Err(with_message(
                error,
                format!(
                    "unknown whether CloudPe created the user for {email} (client #{client}): the create call failed ({}) and no user has the email; retry Create (it looks the email up first, so it never makes a second user)",
                    error.message()
                ),
            ));
        }
        (Created::Unknown(error), Err(lookup)) => {
            return Err(with_message(
                error,
                format!(
                    "unknown whether CloudPe created the user for {email} (client #{client}): the create call failed ({}) and looking the email up failed too ({}); retry Create (it looks the email up first, so it never makes a second user)",
                    error.message(),
                    lookup.message()
                ),
            ));
        }
        (_, Err(lookup)) => {
            return Err(with_message(
                &lookup,
                format!(
                    "a CloudPe user for {email} exists, but reading it back failed ({}): retry Create (it links it by email)",
                    lookup.message()
                ),
            ));
        }
    };
    let uid = remote.uid;
    let origin = match how {
        Created::Now => "created",
        Created::Before(_) => "already existed (created meanwhile; adopted)",
        Created::Unknown(_) => "created by this try, whose reply was lost (found by email)",
    };
    let mut outcome = crate::wit::Outcome {
        message: format!("CloudPe user {uid} {origin} for {email}"),
        facts: account_facts(&remote),
        changed_remote: !matches!(how, Created::Before(_)),
    };
    if let Some(group) = config::product_group(&request.product) {
        let moved = apply_group(api, uid, group).map_err(|e| {
            with_message(
                &e,
                format!(
                    "CloudPe user {uid} was created for {email} but not put in the product's CloudPe group {group} ({}): retrying Create links it and sets the group",
                    e.message()
                ),
            )
        })?;
        note_group(&mut outcome, group, &moved);
    }
    outcome.facts.push(Fact::new(LINK_FACT, "provisioned"));
    api.platform_log(LogLevel::Info, &format!("create: {}", outcome.message));
    Ok(CreateOutcome { outcome, remote_id: uid, source: LinkSource::Provisioned })
}

/// How a creation ended, when it may have made the user.
enum Created {
    /// Answered `result` 0.
    Now,
    /// Refused: the email is taken (by a user made meanwhile, or by an earlier try).
    Before(ModuleError),
    /// Failed in a way that may have reached CloudPe (a lost reply).
    Unknown(ModuleError),
}

/// Whether CloudPe's refusal says the email is taken.
fn is_duplicate(error: &ModuleError) -> bool {
    let ModuleError::RemoteApi(RemoteError { message, .. }) = error else { return false };
    let message = message.to_ascii_lowercase();
    DUPLICATE_EMAIL_WORDS.iter().any(|words| message.contains(words))
}

/// The group step in the message and the facts.
fn note_group(outcome: &mut crate::wit::Outcome, group: &str, moved: &GroupMove) {
    match moved {
        GroupMove::AlreadyThere => outcome.message.push_str(&format!("; already in CloudPe group {group}")),
        GroupMove::Moved { from } => {
            let from = if from.is_empty() { "no group" } else { from.as_str() };
            outcome.message.push_str(&format!("; moved from {from} to CloudPe group {group}"));
            outcome.changed_remote = true;
        }
    }
    outcome.facts.retain(|f| f.name != "cloudpe-group");
    outcome.facts.push(Fact::new("cloudpe-group", group));
}

/// `error`'s kind with another message (a transport failure stays one, so HostBill may retry).
fn with_message(error: &ModuleError, message: String) -> ModuleError {
    match error {
        ModuleError::Configuration(_) => ModuleError::Configuration(message),
        ModuleError::NotFound(_) => ModuleError::NotFound(message),
        ModuleError::Authentication(_) => ModuleError::Authentication(message),
        ModuleError::RemoteApi(RemoteError { code, .. }) => {
            ModuleError::RemoteApi(RemoteError { code: *code, message })
        }
        ModuleError::Transport(_) => ModuleError::Transport(message),
        ModuleError::Unexpected(_) => ModuleError::Unexpected(message),
    }
}

/// The password of a created user: random, strong, never kept, logged or returned.
mod password {
    /// Characters of each class (no look-alikes: I, O, l, 0, 1), and symbols a form field and
    /// a URL-encoded body carry safely.
    const CLASSES: [&[u8]; 4] = [b"ABCDEFGHJKLMNPQRSTUVWXYZ", b"abcdefghijkmnopqrstuvwxyz", b"23456789", b"!#%+-=._"];
    /// Characters in a password.
    pub const LENGTH: usize = 24;

    /// A password no `Debug` or `Display` shows.
    pub struct Password(String);

    impl Password {
        /// The password itself: only for the create call's body.
        pub fn reveal(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Debug for Password {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Password(********)")
        }
    }

    /// [`LENGTH`] characters, at least one of each class, the rest from all of them, shuffled,
    /// each drawn from `random` (the host's `wasi:random`, a CSPRNG).
    pub fn generate(mut random: impl FnMut() -> u64) -> Password {
        let all: Vec<u8> = CLASSES.concat();
        let mut pick = |set: &[u8]| set[(random() % set.len() as u64) as usize];
        let mut chars: Vec<u8> = CLASSES.iter().map(|class| pick(class)).collect();
        while chars.len() < LENGTH {
            chars.push(pick(&all));
        }
        for i in (1..chars.len()).rev() {
            let j = (random() % (i as u64 + 1)) as usize;
            chars.swap(i, j);
        }
        Password(chars.into_iter().map(char::from).collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_password_has_every_class_and_differs_each_time() {
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let mut random = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let p = generate(&mut random);
                let text = p.reveal();
                assert_eq!(text.len(), LENGTH);
                for class in CLASSES {
                    assert!(text.bytes().any(|b| class.contains(&b)), "{class:?} missing");
                }
                assert!(text.bytes().all(|b| CLASSES.concat().contains(&b)));
                assert!(seen.insert(text.to_string()), "a password came twice");
                assert_eq!(format!("{p:?}"), "Password(********)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cloudpe_sim_api::{Account, CreateVariant, FaultKind, FaultRule};

    use super::*;
    use crate::ops::testing::{FakeCloudPe, SESSION, app};
    use crate::wit::{Account as HostbillAccount, AppSetting, CustomField, HostbillStatus};

    /// CloudPe with `bob@x.io` (12), its decoys (120, 312) and carol (13), all active.
    fn cloud() -> FakeCloudPe {
        let cloud = FakeCloudPe::new(&[]);
        for (uid, email) in
            [(12, "bob@x.io"), (120, "ann.bob@x.io.evil"), (312, "BOB@x.io.attacker"), (13, "carol@x.io")]
        {
            cloud.add_user(Account { email: email.into(), ..Account::new(uid, 1) });
        }
        cloud
    }

    fn request(id: &str, email: Option<&str>, group: Option<&str>) -> AccountContext {
        AccountContext {
            account: HostbillAccount {
                id: 1,
                client_id: 7,
                status: HostbillStatus::Pending,
                custom_fields: vec![CustomField { code: "cloudpeid".into(), value: id.into() }],
            },
            client_email: email.map(str::to_string),
            product: group.map(|g| AppSetting { name: "CloudPe group".into(), value: g.into() }).into_iter().collect(),
        }
    }

    fn provisioning() -> AppSettings {
        let mut a = app();
        a.custom = vec![
            AppSetting { name: "On create".into(), value: "provision".into() },
            AppSetting { name: "Call log".into(), value: "on".into() },
        ];
        a
    }

    fn fact<'a>(outcome: &'a CreateOutcome, name: &str) -> Option<&'a str> {
        outcome.outcome.facts.iter().find(|f| f.name == name).map(|f| f.value.as_str())
    }

    fn paths(cloud: &FakeCloudPe) -> Vec<String> {
        cloud.requests.borrow().iter().map(|r| r.path_and_query.rsplit('/').next().unwrap().to_string()).collect()
    }

    #[test]
    fn the_one_exact_email_is_linked_whatever_its_case_and_spaces_and_decoys_are_not() {
        for email in ["bob@x.io", " Bob@X.IO ", "BOB@x.io\t"] {
            let cloud = cloud();
            let out = create_account(&cloud, &app(), &request("", Some(email), None)).unwrap();
            assert_eq!((out.remote_id, out.source), (12, LinkSource::ByEmail), "{email}");
            assert_eq!(fact(&out, LINK_FACT), Some("by-email"));
            assert_eq!(fact(&out, "cloudpe-email"), Some("bob@x.io"));
            assert!(!out.outcome.changed_remote);
            assert!(out.outcome.message.contains("linked by the client's email bob@x.io"), "{}", out.outcome.message);
            assert_eq!(paths(&cloud), ["getaccounts"], "one lookup, no write");
            assert!(cloud.created().is_empty() && cloud.writes().is_empty());
        }
    }

    #[test]
    fn the_exact_match_is_found_beyond_the_first_page_of_decoys() {
        let cloud = FakeCloudPe::new(&[]);
        for uid in 1..=150 {
            cloud.add_user(Account { email: format!("x{uid}.bob@x.io.evil"), ..Account::new(uid, 1) });
        }
        cloud.add_user(Account { email: "Bob@x.io".into(), ..Account::new(500, 1) });
        let out = create_account(&cloud, &app(), &request("", Some("bob@x.io"), None)).unwrap();
        assert_eq!((out.remote_id, out.source), (500, LinkSource::ByEmail));
        assert_eq!(paths(&cloud), ["getaccounts", "getaccounts"], "two pages of 100 matches");
    }

    #[test]
    fn only_decoys_or_no_user_is_not_found_and_nothing_is_linked_or_created() {
        let cloud = cloud();
        for email in ["ob@x.io", "bob@x.i", "b@x.io", "dan@x.io"] {
            let e = create_account(&cloud, &app(), &request("", Some(email), None)).unwrap_err();
            assert!(
                matches!(&e, ModuleError::NotFound(m) if m.contains(&format!("no CloudPe user has the email {email}"))
                    && m.contains("create it on CloudPe, or set the App's On create to provision")),
                "{email}: {e:?}"
            );
        }
        assert!(cloud.created().is_empty() && cloud.user_count() == 4);
    }

    #[test]
    fn several_exact_matches_are_refused_by_uid_in_either_mode() {
        let cloud = cloud();
        // Emails are unique on CloudPe; a platform that holds two anyway gets no guess.
        cloud.add_user(Account { email: " BOB@x.io".into(), ..Account::new(14, 1) });
        for settings in [app(), provisioning()] {
            let e = create_account(&cloud, &settings, &request("", Some("bob@x.io"), Some("premium"))).unwrap_err();
            assert!(
                matches!(&e, ModuleError::Configuration(m) if m.contains("2 CloudPe users have the email bob@x.io (uids 12, 14)")
                    && m.contains("nothing was linked")),
                "{e:?}"
            );
        }
        assert!(cloud.created().is_empty() && cloud.group_changes().is_empty());
    }

    #[test]
    fn no_email_and_no_id_is_a_configuration_error_naming_the_client() {
        let cloud = cloud();
        for email in [None, Some(""), Some("   ")] {
            let e = create_account(&cloud, &provisioning(), &request(" ", email, None)).unwrap_err();
            assert!(
                matches!(&e, ModuleError::Configuration(m) if m.contains("client #7") && m.contains("no email to link by")),
                "{e:?}"
            );
        }
        assert!(cloud.requests.borrow().is_empty());
        let huge = format!("{}@x.io", "a".repeat(300));
        for bad in ["bob.x.io", huge.as_str()] {
            let e = create_account(&cloud, &provisioning(), &request("", Some(bad), None)).unwrap_err();
            assert!(
                matches!(&e, ModuleError::Configuration(m) if m.contains("client #7's email") && m.contains("not an email address") && m.len() < 200),
                "{e:?}"
            );
        }
        assert!(cloud.requests.borrow().is_empty());
    }

    #[test]
    fn a_client_id_is_verified_as_before_and_never_replaced_by_the_email() {
        let cloud = cloud();
        let out = create_account(&cloud, &app(), &request("13", Some("bob@x.io"), None)).unwrap();
        assert_eq!((out.remote_id, out.source), (13, LinkSource::Existing));
        assert_eq!(fact(&out, LINK_FACT), Some("existing"));
        let e = create_account(&cloud, &provisioning(), &request("abc", Some("bob@x.io"), None)).unwrap_err();
        assert!(matches!(&e, ModuleError::Configuration(m) if m.contains("\"abc\"")), "{e:?}");
        let e = create_account(&cloud, &provisioning(), &request("99", Some("nobody@x.io"), None)).unwrap_err();
        assert!(matches!(&e, ModuleError::NotFound(m) if m.contains("uid 99")), "{e:?}");
        assert!(cloud.created().is_empty());
    }

    #[test]
    fn a_deleted_or_destroyed_user_found_by_email_cannot_be_linked() {
        for status in [3, 4] {
            let cloud = cloud();
            cloud.add_user(Account { email: "gone@x.io".into(), ..Account::new(15, status) });
            let e = create_account(&cloud, &provisioning(), &request("", Some("gone@x.io"), None)).unwrap_err();
            assert!(matches!(&e, ModuleError::NotFound(m) if m.contains("cannot be linked")), "{e:?}");
            assert!(cloud.created().is_empty(), "found, so never created");
        }
    }

    #[test]
    fn linking_outside_the_products_group_says_so_and_changes_nothing() {
        let cloud = cloud();
        let out = create_account(&cloud, &app(), &request("", Some("bob@x.io"), Some("premium"))).unwrap();
        assert!(
            out.outcome.message.contains("in default, not in the product's CloudPe group premium"),
            "{}",
            out.outcome.message
        );
        assert_eq!(fact(&out, EXPECTED_GROUP_FACT), Some("premium"));
        assert!(cloud.group_changes().is_empty() && !out.outcome.changed_remote);
        cloud.put_in_group(12, "premium");
        let out = create_account(&cloud, &app(), &request("", Some("bob@x.io"), Some("premium"))).unwrap();
        assert_eq!(fact(&out, EXPECTED_GROUP_FACT), None);
        let out = create_account(&cloud, &app(), &request("12", None, Some("trial"))).unwrap();
        assert_eq!(fact(&out, EXPECTED_GROUP_FACT), Some("trial"), "the client's own id too");
    }

    #[test]
    fn provisioning_creates_once_reads_the_uid_back_and_sets_the_group() {
        let cloud = cloud();
        let out = create_account(&cloud, &provisioning(), &request("", Some(" Dan@x.io "), Some("premium"))).unwrap();
        assert_eq!((out.remote_id, out.source), (313, LinkSource::Provisioned));
        assert!(out.outcome.changed_remote);
        assert_eq!(fact(&out, LINK_FACT), Some("provisioned"));
        assert_eq!(fact(&out, "cloudpe-group"), Some("premium"));
        assert!(out.outcome.message.contains("CloudPe user 313 created for Dan@x.io"), "{}", out.outcome.message);
        let created = cloud.created();
        assert_eq!(created.len(), 1);
        assert_eq!((created[0].uid, created[0].email.as_str(), created[0].method), (313, "Dan@x.io", "createaccount"));
        assert_eq!(cloud.user(313).unwrap().status, 1, "autoActive=true");
        assert_eq!(cloud.group_changes(), [(313, "premium".to_string())]);
        assert_eq!(
            paths(&cloud),
            ["getaccounts", "createaccount", "getaccounts", "getaccounts", "setgroup", "getaccounts"]
        );
        // Strong: 24 characters, every class, barely a repeat; two creations, two passwords.
        let p = created[0].password;
        assert!(p.length >= 20 && p.upper > 0 && p.lower > 0 && p.digits > 0 && p.symbols > 0, "{p:?}");
        assert!(p.distinct >= 12, "{p:?}");
        create_account(&cloud, &provisioning(), &request("", Some("eve@x.io"), None)).unwrap();
        assert_ne!(cloud.created()[1].password.fingerprint, p.fingerprint);
    }

    #[test]
    fn a_lost_reply_is_found_by_email_and_a_retried_create_makes_no_second_user() {
        let cloud = cloud();
        cloud.fault(FaultRule::new(FaultKind::Timeout.after_applying()).method("createaccount").times(1));
        let out = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap();
        assert_eq!((out.remote_id, out.source), (313, LinkSource::Provisioned));
        assert!(out.outcome.message.contains("whose reply was lost"), "{}", out.outcome.message);
        // HostBill retries the Create (it never saw the answer): the user is linked by email.
        let again = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap();
        assert_eq!((again.remote_id, again.source), (313, LinkSource::ByEmail));
        assert_eq!((cloud.created().len(), cloud.user_count()), (1, 5));
    }

    #[test]
    fn a_failure_that_created_nothing_is_unknown_and_a_retry_creates_exactly_one() {
        let cloud = cloud();
        cloud.fault(FaultRule::new(FaultKind::Html502).method("createaccount").times(1));
        let e = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap_err();
        assert!(
            matches!(&e, ModuleError::Transport(m) if m.starts_with("unknown whether CloudPe created the user for dan@x.io")
                && m.contains("retry Create (it looks the email up first, so it never makes a second user)")),
            "{e:?}"
        );
        assert_eq!(paths(&cloud).iter().filter(|p| *p == "createaccount").count(), 1, "sent once, not retried");
        assert!(cloud.created().is_empty());
        let out = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap();
        assert_eq!(out.source, LinkSource::Provisioned);
        assert_eq!((cloud.created().len(), cloud.user_count()), (1, 5));
    }

    #[test]
    fn an_email_taken_meanwhile_is_adopted() {
        let cloud = cloud();
        // The user appears between the lookup and the create: CloudPe answers "already exists".
        let taken = FaultKind::ApiError { result: 1, error: "user with email [dan@x.io] already exists".into() };
        cloud.fault(FaultRule::new(taken.after_applying()).method("createaccount"));
        let out = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap();
        assert_eq!((out.remote_id, out.source), (313, LinkSource::Provisioned));
        assert!(out.outcome.message.contains("already existed"), "{}", out.outcome.message);
        assert_eq!(cloud.user_count(), 5);
    }

    #[test]
    fn a_platform_without_createaccount_uses_addaccount() {
        let cloud = cloud();
        cloud.set_create_variant(CreateVariant::Users);
        let out = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap();
        assert_eq!(out.remote_id, 313);
        assert_eq!(cloud.created()[0].method, "addaccount");
        assert_eq!(paths(&cloud)[..3], ["getaccounts", "createaccount", "addaccount"]);
        assert!(cloud.logs.borrow().iter().any(|(_, m)| m.contains("system/admin/rest/createaccount (HTTP 404)")));
    }

    #[test]
    fn a_denied_create_names_the_method_and_creates_nothing() {
        let cloud = cloud();
        cloud.set_create_variant(CreateVariant::Both);
        cloud.deny("createaccount");
        let e = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap_err();
        assert!(e.message().contains("createaccount") && e.message().contains("dan@x.io"), "{e:?}");
        assert!(cloud.created().is_empty());
        assert!(!paths(&cloud).contains(&"addaccount".to_string()), "a refusal is not a 404: no other way is tried");
    }

    #[test]
    fn a_failed_group_step_names_the_user_and_a_retry_links_it_and_sets_the_group() {
        let cloud = cloud();
        cloud.deny("setgroup");
        let e = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), Some("premium"))).unwrap_err();
        let m = e.message();
        assert!(
            m.contains("CloudPe user 313 was created for dan@x.io but not put in the product's CloudPe group premium"),
            "{m}"
        );
        assert!(m.contains("retrying Create links it and sets the group"), "{m}");
        cloud.allow("setgroup");
        let out = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), Some("premium"))).unwrap();
        assert_eq!((out.remote_id, out.source), (313, LinkSource::ByEmail));
        assert_eq!(fact(&out, "cloudpe-group"), Some("premium"));
        assert_eq!(cloud.group_changes(), [(313, "premium".to_string())]);
        assert_eq!(cloud.created().len(), 1);
    }

    /// The password a fresh [`cloud`] gets from the first provisioning (its random numbers start
    /// from the same seed each time).
    fn first_password() -> String {
        let cloud = cloud();
        create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap();
        let body = cloud
            .requests
            .borrow()
            .iter()
            .find(|r| r.path_and_query.ends_with("createaccount"))
            .unwrap()
            .form_body
            .clone()
            .unwrap();
        form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "password").unwrap().1.into_owned()
    }

    #[test]
    fn a_password_cloudpe_echoes_in_its_answer_is_removed_from_the_error_and_the_call_log() {
        let password = first_password();
        let cloud = cloud();
        let echo = format!(r#"{{"result":1,"error":"password [{password}] is not accepted for dan@x.io"}}"#);
        cloud.answer("/1.0/system/admin/rest/createaccount", 200, &echo);
        let e = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), None)).unwrap_err();
        let sent = cloud
            .requests
            .borrow()
            .iter()
            .find(|r| r.path_and_query.ends_with("createaccount"))
            .unwrap()
            .form_body
            .clone()
            .unwrap();
        assert!(
            sent.contains(&format!(
                "password={}",
                form_urlencoded::byte_serialize(password.as_bytes()).collect::<String>()
            )),
            "the same password was sent: {sent}"
        );
        assert!(e.message().contains("is not accepted") && e.message().contains("[REDACTED]"), "{e:?}");
        let mut seen = cloud.calls.borrow().clone();
        assert!(seen.iter().any(|c| c.starts_with("createaccount") && c.contains("[REDACTED]")), "{seen:?}");
        seen.extend(cloud.logs.borrow().iter().map(|(_, m)| m.clone()));
        seen.push(e.message());
        for text in &seen {
            assert!(!text.contains(&password), "{text}");
        }
    }

    #[test]
    fn the_password_is_never_logged_recorded_or_returned() {
        let cloud = cloud();
        cloud.deny("setgroup");
        let e = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), Some("premium"))).unwrap_err();
        let body = cloud
            .requests
            .borrow()
            .iter()
            .find(|r| r.path_and_query.ends_with("createaccount"))
            .unwrap()
            .form_body
            .clone()
            .unwrap();
        let password: String =
            form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "password").unwrap().1.into_owned();
        assert_eq!(password.len(), 24);
        let calls = cloud.calls.borrow().clone();
        let create_call =
            calls.iter().find(|c| c.starts_with("createaccount")).expect("the call log records the create");
        assert!(create_call.contains("password=********") && create_call.contains("email=dan@x.io"), "{create_call}");
        assert!(
            create_call.contains("\"activationKey\": \"********\"")
                || create_call.contains("activationKey\":\"********"),
            "{create_call}"
        );
        let mut seen: Vec<String> = calls;
        seen.extend(cloud.logs.borrow().iter().map(|(_, m)| m.clone()));
        seen.push(e.message());
        cloud.allow("setgroup");
        let out = create_account(&cloud, &provisioning(), &request("", Some("dan@x.io"), Some("premium"))).unwrap();
        seen.push(format!("{out:?}"));
        seen.extend(cloud.calls.borrow().iter().cloned());
        for text in &seen {
            assert!(!text.contains(&password) && !text.contains(SESSION), "{text}");
        }
    }
}
