//! The contract's types, generated from `wit/` by wit-bindgen: the CloudPe logic uses them as its
//! model (no mirror, no conversion), so a change to the contract reaches only the code that uses
//! what changed. The bindings compile on every target; their imports panic if called off wasm32,
//! which the native tests never do (they go through [`crate::transport::Platform`]).

wit_bindgen::generate!({
    path: "../wit/since_v2.4.0",
    world: "hostbill:provisioning/hosting-module",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
    additional_derives: [PartialEq, Eq],
    additional_type_attributes: {
        "hostbill:provisioning/types@2.4.0/app-settings": [#[derive(Default)]],
        "hostbill:provisioning/types@2.4.0/reconciliation": [#[derive(Default)]],
    },
    default_bindings_module: "crate::wit",
    // An import's arguments are borrowed: a streamed sync hands out thousands of decisions whose
    // fact names are constants and whose values already live in the accounts read; owning each
    // as a `String` cost two allocations per fact.
    ownership: Borrowing { duplicate_if_necessary: true },
});

pub use hostbill::provisioning::log::Level as LogLevel;
pub use hostbill::provisioning::types::*;

// The types `sync-output.emit` takes exist twice: `…Param<'a>` (borrowed, to hand out) and
// `…Result` (owned, for everything else, which keeps the contract's names here).
pub use hostbill::provisioning::types::{
    AccountDecisionResult as AccountDecision, DecisionResult as Decision, FactResult as Fact,
    ModuleErrorResult as ModuleError, RemoteErrorResult as RemoteError, StatusChangeResult as StatusChange,
};

impl AppSettings {
    /// The trimmed, non-empty value of `field`, if any.
    pub fn get(&self, field: &AppField) -> Option<&str> {
        let value = match field {
            AppField::Host => self.host.as_deref(),
            AppField::Ip => self.ip.as_deref(),
            AppField::Username => self.username.as_deref(),
            AppField::Password => self.password.as_deref(),
            AppField::StatusUrl => self.status_url.as_deref(),
            AppField::Field1 => self.field1.as_deref(),
            AppField::Field2 => self.field2.as_deref(),
            AppField::Custom(name) => self.custom.iter().find(|s| s.name == *name).map(|s| s.value.as_str()),
        };
        value.map(str::trim).filter(|v| !v.is_empty())
    }
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

impl Fact {
    pub fn new(name: &str, value: impl Into<String>) -> Fact {
        Fact { name: name.to_string(), value: value.into() }
    }
}

impl ModuleError {
    /// The message for the admin (what HostBill shows). wit-bindgen's `Display` of this type is
    /// its `Debug` form, so every message is built with this instead.
    pub fn message(&self) -> String {
        match self {
            ModuleError::Configuration(m)
            | ModuleError::NotFound(m)
            | ModuleError::Authentication(m)
            | ModuleError::Transport(m)
            | ModuleError::Unexpected(m) => m.clone(),
            ModuleError::RemoteApi(RemoteError { code, message }) => format!("{message} (CloudPe result {code})"),
        }
    }

    /// The same error, borrowed, to hand to the host.
    pub fn borrowed(&self) -> ModuleErrorParam<'_> {
        match self {
            ModuleError::Configuration(m) => ModuleErrorParam::Configuration(m),
            ModuleError::NotFound(m) => ModuleErrorParam::NotFound(m),
            ModuleError::Authentication(m) => ModuleErrorParam::Authentication(m),
            ModuleError::RemoteApi(RemoteError { code, message }) => {
                ModuleErrorParam::RemoteApi(RemoteErrorParam { code: *code, message })
            }
            ModuleError::Transport(m) => ModuleErrorParam::Transport(m),
            ModuleError::Unexpected(m) => ModuleErrorParam::Unexpected(m),
        }
    }
}

impl ModuleErrorParam<'_> {
    /// The same error, owned (named apart from `ToOwned::to_owned`, which would copy the borrow).
    pub fn owned(&self) -> ModuleError {
        match *self {
            ModuleErrorParam::Configuration(m) => ModuleError::Configuration(m.to_string()),
            ModuleErrorParam::NotFound(m) => ModuleError::NotFound(m.to_string()),
            ModuleErrorParam::Authentication(m) => ModuleError::Authentication(m.to_string()),
            ModuleErrorParam::RemoteApi(RemoteErrorParam { code, message }) => {
                ModuleError::RemoteApi(RemoteError { code, message: message.to_string() })
            }
            ModuleErrorParam::Transport(m) => ModuleError::Transport(m.to_string()),
            ModuleErrorParam::Unexpected(m) => ModuleError::Unexpected(m.to_string()),
        }
    }
}

impl AccountDecisionParam<'_> {
    /// The same decision, owned (named apart from `ToOwned::to_owned`, which would copy the borrow).
    pub fn owned(&self) -> AccountDecision {
        let facts = |facts: &[FactParam<'_>]| facts.iter().map(|f| Fact::new(f.name, f.value)).collect();
        let decision = match &self.decision {
            DecisionParam::Unchanged(f) => Decision::Unchanged(facts(f)),
            DecisionParam::Change(c) => {
                Decision::Change(StatusChange { from: c.from, to: c.to, facts: facts(c.facts) })
            }
            DecisionParam::Skipped(m) => Decision::Skipped(m.to_string()),
            DecisionParam::Failed(e) => Decision::Failed(e.owned()),
        };
        AccountDecision { account_id: self.account_id, decision }
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { max_concurrency: 8, page_size: 1000, max_attempts: 3, strategy: SyncStrategy::Auto }
    }
}
