//! A test-only 2.4 hosting module (the core and `lifecycle`, nothing else) whose lifecycle
//! answers do what the App's custom setting `mode` says, for the host's answer checks
//! (`host/src/sandbox/answer.rs`): `zero-id` (Create links remote id 0), `propose-other` (a
//! proposed link for an account not asked about), `propose-twice` and `drift-twice` (one account
//! twice in a list), `propose-uid-zero`, `many-capabilities` (65), `many-choices` (1001),
//! `probe-fails` (the probe answers an error), `leak-token` (the session token in every string
//! it answers). Any other mode answers well-formed values. It never makes a request.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: r#"
        package test:hostile-lifecycle;

        world hostile-lifecycle {
            include hostbill:provisioning/hosting-module-core@2.4.0;
            export hostbill:provisioning/lifecycle@2.4.0;
        }
    "#,
    path: "../../../wit/since_v2.4.0",
    world: "test:hostile-lifecycle/hostile-lifecycle",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "hostbill:provisioning/types@2.4.0": generate,
        "hostbill:provisioning/log@2.4.0": generate,
        "hostbill:provisioning/budget@2.4.0": generate,
        "hostbill:provisioning/module@2.4.0": generate,
        "hostbill:provisioning/lifecycle@2.4.0": generate,
    },
});

use exports::hostbill::provisioning::{lifecycle, module};
use hostbill::provisioning::types::*;

struct HostileLifecycle;

fn mode(app: &AppSettings) -> &str {
    app.custom.iter().find(|s| s.name == "mode").map_or("", |s| s.value.as_str())
}

/// `text`, with the session token appended in mode `leak-token`.
fn said(app: &AppSettings, text: &str) -> String {
    match mode(app) {
        "leak-token" => format!("{text} (token {})", app.field2.clone().unwrap_or_default()),
        _ => text.to_string(),
    }
}

fn outcome(app: &AppSettings, message: &str) -> Outcome {
    Outcome { message: said(app, message), facts: vec![], changed_remote: false }
}

fn capability(app: &AppSettings, i: usize) -> Capability {
    Capability {
        name: format!("capability {i}"),
        method: format!("test/rest/method{i}"),
        state: CapabilityState::Allowed,
        detail: said(app, "answered"),
    }
}

impl module::Guest for HostileLifecycle {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "hostile-lifecycle".into(),
            version: "0.0.1".into(),
            description: "breaks the lifecycle contract on purpose".into(),
            app_fields: vec![AppFieldUsage {
                field: AppField::Field2,
                label: "Session".into(),
                description: "secret".into(),
                required: true,
                secret: true,
            }],
            endpoint_field: AppField::StatusUrl,
        }
    }

    fn test_connection(app: AppSettings) -> Result<ConnectionReport, ModuleError> {
        Ok(ConnectionReport { checks: vec![Check { name: "login".into(), passed: true, detail: said(&app, "ok") }] })
    }

    fn create(app: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        Ok(outcome(&app, "module.create (never called on a 2.4 module)"))
    }

    fn suspend(app: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        Ok(outcome(&app, "suspended"))
    }

    fn unsuspend(app: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        Ok(outcome(&app, "unsuspended"))
    }

    fn terminate(app: AppSettings, _: Account) -> Result<Outcome, ModuleError> {
        Ok(outcome(&app, "terminated"))
    }

    fn sync(_: AppSettings, _: Vec<Account>, _: SyncOptions) -> Result<SyncReport, ModuleError> {
        Ok(SyncReport { decisions: vec![], requests: 0 })
    }
}

impl lifecycle::Guest for HostileLifecycle {
    fn create_account(app: AppSettings, request: AccountContext) -> Result<CreateOutcome, ModuleError> {
        let remote_id = if mode(&app) == "zero-id" { 0 } else { 4242 };
        let message = format!("linked account {} ({:?})", request.account.id, request.client_email);
        Ok(CreateOutcome { outcome: outcome(&app, &message), remote_id, source: LinkSource::ByEmail })
    }

    fn change_package(app: AppSettings, _: AccountContext) -> Result<Outcome, ModuleError> {
        Ok(outcome(&app, "moved"))
    }

    fn option_choices(app: AppSettings, name: String) -> Result<Vec<OptionChoice>, ModuleError> {
        let count = if mode(&app) == "many-choices" { 1001 } else { 2 };
        Ok((0..count).map(|i| OptionChoice { value: format!("{name} {i}"), label: said(&app, "choice") }).collect())
    }

    fn capabilities(app: AppSettings) -> Result<Vec<Capability>, ModuleError> {
        match mode(&app) {
            "probe-fails" => {
                Err(ModuleError::RemoteApi(RemoteError { code: 8202, message: said(&app, "probe refused") }))
            }
            "many-capabilities" => Ok((0..65).map(|i| capability(&app, i)).collect()),
            _ => Ok(vec![capability(&app, 0)]),
        }
    }

    fn review(app: AppSettings, accounts: Vec<AccountContext>, _: SyncOptions) -> Result<LinkReview, ModuleError> {
        let first = accounts.first().map_or(1, |a| a.account.id);
        let link = |account_id, uid| ProposedLink { account_id, uid, email: said(&app, "a@x.io") };
        let drift =
            |account_id| GroupDrift { account_id, uid: 7, expected: "premium".into(), actual: said(&app, "default") };
        let (proposed_links, group_drift) = match mode(&app) {
            "propose-other" => (vec![link(999_999, 7)], vec![]),
            "propose-twice" => (vec![link(first, 7), link(first, 8)], vec![]),
            "propose-uid-zero" => (vec![link(first, 0)], vec![]),
            "drift-twice" => (vec![], vec![drift(first), drift(first)]),
            _ => (vec![link(first, 7)], vec![drift(first)]),
        };
        let reconciliation = Reconciliation {
            without_id: vec![],
            missing_remote: vec![],
            shared_users: vec![],
            unlinked_users: vec![],
            email_differences: vec![],
            remote_users: 1,
            requests: 0,
        };
        Ok(LinkReview { reconciliation, proposed_links, group_drift })
    }
}

export!(HostileLifecycle);
