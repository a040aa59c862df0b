//! Conversions between the generated WIT types and [`crate::model`].

use super::wit;
use crate::model::*;

impl From<wit::AppSettings> for AppSettings {
    fn from(a: wit::AppSettings) -> Self {
        AppSettings {
            host: a.host,
            ip: a.ip,
            username: a.username,
            password: a.password,
            secure: a.secure,
            status_url: a.status_url,
            field1: a.field1,
            field2: a.field2,
            custom: a.custom.into_iter().map(|s| (s.name, s.value)).collect(),
        }
    }
}

impl From<wit::HostbillStatus> for HostbillStatus {
    fn from(s: wit::HostbillStatus) -> Self {
        match s {
            wit::HostbillStatus::Pending => HostbillStatus::Pending,
            wit::HostbillStatus::Active => HostbillStatus::Active,
            wit::HostbillStatus::Suspended => HostbillStatus::Suspended,
            wit::HostbillStatus::Terminated => HostbillStatus::Terminated,
            wit::HostbillStatus::Cancelled => HostbillStatus::Cancelled,
            wit::HostbillStatus::Fraud => HostbillStatus::Fraud,
        }
    }
}

impl From<HostbillStatus> for wit::HostbillStatus {
    fn from(s: HostbillStatus) -> Self {
        match s {
            HostbillStatus::Pending => wit::HostbillStatus::Pending,
            HostbillStatus::Active => wit::HostbillStatus::Active,
            HostbillStatus::Suspended => wit::HostbillStatus::Suspended,
            HostbillStatus::Terminated => wit::HostbillStatus::Terminated,
            HostbillStatus::Cancelled => wit::HostbillStatus::Cancelled,
            HostbillStatus::Fraud => wit::HostbillStatus::Fraud,
        }
    }
}

impl From<wit::SyncOptions> for SyncOptions {
    fn from(o: wit::SyncOptions) -> Self {
        SyncOptions {
            max_concurrency: o.max_concurrency,
            page_size: o.page_size,
            max_attempts: o.max_attempts,
            strategy: match o.strategy {
                wit::SyncStrategy::Auto => SyncStrategy::Auto,
                wit::SyncStrategy::PageAll => SyncStrategy::PageAll,
                wit::SyncStrategy::ExactLookups => SyncStrategy::ExactLookups,
            },
        }
    }
}

impl From<wit::Account> for Account {
    fn from(a: wit::Account) -> Self {
        Account {
            id: a.id,
            client_id: a.client_id,
            status: a.status.into(),
            custom_fields: a.custom_fields.into_iter().map(|f| CustomField { code: f.code, value: f.value }).collect(),
        }
    }
}

impl From<AppField> for wit::AppField {
    fn from(f: AppField) -> Self {
        match f {
            AppField::Host => wit::AppField::Host,
            AppField::Ip => wit::AppField::Ip,
            AppField::Username => wit::AppField::Username,
            AppField::Password => wit::AppField::Password,
            AppField::StatusUrl => wit::AppField::StatusUrl,
            AppField::Field1 => wit::AppField::Field1,
            AppField::Field2 => wit::AppField::Field2,
            AppField::Custom(name) => wit::AppField::Custom(name.to_string()),
        }
    }
}

impl From<ModuleInfo> for wit::ModuleInfo {
    fn from(i: ModuleInfo) -> Self {
        wit::ModuleInfo {
            name: i.name.into(),
            version: i.version.into(),
            description: i.description.into(),
            app_fields: i
                .app_fields
                .into_iter()
                .map(|u| wit::AppFieldUsage {
                    field: u.field.into(),
                    label: u.label.into(),
                    description: u.description.into(),
                    required: u.required,
                    secret: u.secret,
                })
                .collect(),
            endpoint_field: i.endpoint_field.into(),
        }
    }
}

fn facts(facts: Vec<Fact>) -> Vec<wit::Fact> {
    facts.into_iter().map(|f| wit::Fact { name: f.name, value: f.value }).collect()
}

impl From<Outcome> for wit::Outcome {
    fn from(o: Outcome) -> Self {
        wit::Outcome { message: o.message, facts: facts(o.facts), changed_remote: o.changed_remote }
    }
}

impl From<Check> for wit::Check {
    fn from(c: Check) -> Self {
        wit::Check { name: c.name, passed: c.passed, detail: c.detail }
    }
}

impl From<ModuleError> for wit::ModuleError {
    fn from(e: ModuleError) -> Self {
        match e {
            ModuleError::Configuration(m) => wit::ModuleError::Configuration(m),
            ModuleError::NotFound(m) => wit::ModuleError::NotFound(m),
            ModuleError::Authentication(m) => wit::ModuleError::Authentication(m),
            ModuleError::RemoteApi { code, message } => wit::ModuleError::RemoteApi(wit::RemoteError { code, message }),
            ModuleError::Transport(m) => wit::ModuleError::Transport(m),
            ModuleError::Unexpected(m) => wit::ModuleError::Unexpected(m),
        }
    }
}

impl From<SyncReport> for wit::SyncReport {
    fn from(r: SyncReport) -> Self {
        wit::SyncReport {
            decisions: r
                .decisions
                .into_iter()
                .map(|d| wit::AccountDecision {
                    account_id: d.account_id,
                    decision: match d.decision {
                        Decision::Unchanged(f) => wit::Decision::Unchanged(facts(f)),
                        Decision::Change { from, to, facts: f } => wit::Decision::Change(wit::StatusChange {
                            from: from.into(),
                            to: to.into(),
                            facts: facts(f),
                        }),
                        Decision::Skipped(why) => wit::Decision::Skipped(why),
                        Decision::Failed(e) => wit::Decision::Failed(e.into()),
                    },
                })
                .collect(),
            requests: r.requests,
        }
    }
}

impl From<wit::ClientAccount> for ClientAccount {
    fn from(c: wit::ClientAccount) -> Self {
        ClientAccount { account: c.account.into(), client_email: c.client_email }
    }
}

impl From<Reconciliation> for wit::Reconciliation {
    fn from(r: Reconciliation) -> Self {
        wit::Reconciliation {
            without_id: r
                .without_id
                .into_iter()
                .map(|i| wit::AccountIssue { account_id: i.account_id, detail: i.detail })
                .collect(),
            missing_remote: r
                .missing_remote
                .into_iter()
                .map(|(account_id, uid)| wit::MissingUser { account_id, uid })
                .collect(),
            shared_users: r
                .shared_users
                .into_iter()
                .map(|(uid, account_ids)| wit::SharedUser { uid, account_ids })
                .collect(),
            unlinked_users: r.unlinked_users.into_iter().map(|(uid, email)| wit::RemoteUser { uid, email }).collect(),
            email_differences: r
                .email_differences
                .into_iter()
                .map(|d| wit::EmailDifference {
                    account_id: d.account_id,
                    uid: d.uid,
                    hostbill_email: d.hostbill_email,
                    remote_email: d.remote_email,
                })
                .collect(),
            remote_users: r.remote_users,
            requests: r.requests,
        }
    }
}
