//! Plain Rust mirrors of the WIT types, so the CloudPe logic never touches generated bindings and
//! runs natively under `cargo test`. `component.rs` converts between these and the bindings.

/// HostBill's App (server) record, as the host passes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSettings {
    pub host: Option<String>,
    pub ip: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub secure: bool,
    pub status_url: Option<String>,
    pub field1: Option<String>,
    pub field2: Option<String>,
    /// Custom App settings (HostBill's serialized `custom` column): (name, value).
    pub custom: Vec<(String, String)>,
}

/// Where a setting lives in the App record (see [`AppSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppField {
    Host,
    Ip,
    Username,
    Password,
    StatusUrl,
    Field1,
    Field2,
    /// A custom App setting, by the name HostBill stores it under.
    Custom(&'static str),
}

impl AppSettings {
    /// The trimmed, non-empty value of `field`, if any.
    pub fn get(&self, field: AppField) -> Option<&str> {
        let value = match field {
            AppField::Host => &self.host,
            AppField::Ip => &self.ip,
            AppField::Username => &self.username,
            AppField::Password => &self.password,
            AppField::StatusUrl => &self.status_url,
            AppField::Field1 => &self.field1,
            AppField::Field2 => &self.field2,
            AppField::Custom(name) => {
                let value = self.custom.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
                return value.map(str::trim).filter(|v| !v.is_empty());
            }
        };
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

/// HostBill's account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostbillStatus {
    Pending,
    Active,
    Suspended,
    Terminated,
    Cancelled,
    Fraud,
}

impl HostbillStatus {
    /// The status as HostBill spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostbillStatus::Pending => "Pending",
            HostbillStatus::Active => "Active",
            HostbillStatus::Suspended => "Suspended",
            HostbillStatus::Terminated => "Terminated",
            HostbillStatus::Cancelled => "Cancelled",
            HostbillStatus::Fraud => "Fraud",
        }
    }
}

/// A client custom field (code and value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub code: String,
    pub value: String,
}

/// One HostBill account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: u64,
    pub client_id: u64,
    pub status: HostbillStatus,
    pub custom_fields: Vec<CustomField>,
}

/// How the module uses one App field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFieldUsage {
    pub field: AppField,
    pub label: &'static str,
    pub description: &'static str,
    pub required: bool,
    pub secret: bool,
}

/// The module's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub app_fields: Vec<AppFieldUsage>,
    pub endpoint_field: AppField,
}

/// A named remote fact behind an outcome or decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

impl Fact {
    pub fn new(name: &str, value: impl Into<String>) -> Fact {
        Fact { name: name.to_string(), value: value.into() }
    }
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub message: String,
    pub facts: Vec<Fact>,
    pub changed_remote: bool,
}

/// One check of a connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Why an operation failed. Messages are written for the HostBill admin and never carry the
/// session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleError {
    Configuration(String),
    NotFound(String),
    Authentication(String),
    RemoteApi { code: i64, message: String },
    Transport(String),
    Unexpected(String),
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModuleError::Configuration(m)
            | ModuleError::NotFound(m)
            | ModuleError::Authentication(m)
            | ModuleError::Transport(m)
            | ModuleError::Unexpected(m) => f.write_str(m),
            ModuleError::RemoteApi { code, message } => {
                write!(f, "{message} (CloudPe result {code})")
            }
        }
    }
}

/// How a sync reads CloudPe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStrategy {
    /// Exact lookups for a few accounts, paging for many (decided by request count).
    Auto,
    PageAll,
    ExactLookups,
}

/// Sync knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    pub max_concurrency: u32,
    pub page_size: u32,
    pub max_attempts: u32,
    pub strategy: SyncStrategy,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { max_concurrency: 8, page_size: 1000, max_attempts: 3, strategy: SyncStrategy::Auto }
    }
}

/// The sync's verdict on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Unchanged(Vec<Fact>),
    Change { from: HostbillStatus, to: HostbillStatus, facts: Vec<Fact> },
    Skipped(String),
    Failed(ModuleError),
}

/// A decision for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDecision {
    pub account_id: u64,
    pub decision: Decision,
}

/// What a whole sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub decisions: Vec<AccountDecision>,
    pub requests: u32,
}

/// An account with its client's email, for a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAccount {
    pub account: Account,
    pub client_email: Option<String>,
}

/// An account and what is wrong with its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIssue {
    pub account_id: u64,
    pub detail: String,
}

/// A linked account whose client's email differs from the CloudPe user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDifference {
    pub account_id: u64,
    pub uid: u64,
    pub hostbill_email: String,
    pub remote_email: String,
}

/// What a reconciliation found (see the WIT `reconciliation` record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    pub without_id: Vec<AccountIssue>,
    /// (account id, uid) of accounts linked to a user CloudPe does not have.
    pub missing_remote: Vec<(u64, u64)>,
    /// Users linked from two or more accounts, with those accounts.
    pub shared_users: Vec<(u64, Vec<u64>)>,
    /// Users no account is linked to, with their email.
    pub unlinked_users: Vec<(u64, Option<String>)>,
    pub email_differences: Vec<EmailDifference>,
    pub remote_users: u64,
    pub requests: u32,
}

/// Log levels of the host's log interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}
