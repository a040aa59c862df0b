//! What the host prints on stdout: one JSON object per run, and the process exit code.
//!
//! ```json
//! {"ok": true, "operation": "suspend", "module": {"name": "CloudPe", "version": "0.3.0"},
//!  "outcome": {...}, "logs": [{"level": "info", "source": "module", "message": "..."}], "meter": {...}}
//! {"ok": false, "operation": "suspend", "error": {"kind": "not-found", "message": "...", "code": null}, "logs": [...]}
//! ```
//!
//! The report is typed ([`Report`], its [`Body`]); `build.rs` makes it from a run's typed result,
//! `stdout.rs` prints it (a sync's decisions as they come), and everything is written by
//! [`json::JsonObject`], through the one formatter that scrubs every string.

pub mod build;
pub mod json;
pub mod stdout;
pub mod usage;

use serde::Serialize;
use serde::ser::Serializer;

use crate::bindings::hostbill::provisioning::types as wit;
use crate::runtime::ComponentMetadata;
use crate::sandbox::limits::NamedLimit;
use crate::sandbox::{LogRecord, Meter};
use crate::scrub::Scrubber;
use json::JsonObject;

/// The process exit code: distinguishes success, operation failure, bad input and a module the
/// host had to stop or refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The operation succeeded (for `sync`: every account got a decision, some may be errors).
    Success = 0,
    /// The module ran and reported a failure (or a connection check failed).
    OperationFailed = 1,
    /// The command line or the JSON request is invalid; nothing ran.
    BadInput = 2,
    /// The component was refused (missing, not a compatible hosting module) or stopped (trap,
    /// deadline, memory limit, a request outside the App's endpoint, a contract violation).
    ModuleFault = 3,
}

/// The kind of a failure, as printed in `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    // Reported by the module.
    Configuration,
    NotFound,
    Authentication,
    RemoteApi,
    Transport,
    Unexpected,
    // Reported by the host.
    /// The module targets a contract older than the operation (e.g. `usage` on a 2.2 module).
    Unsupported,
    ConnectionCheckFailed,
    BadInput,
    ModuleRefused,
    ModuleTrapped,
    EgressDenied,
}

impl ErrorKind {
    /// The exit code of a run that ended in this error: the one place exit codes are decided.
    pub fn exit(self) -> Exit {
        use ErrorKind::*;
        match self {
            Configuration
            | NotFound
            | Authentication
            | RemoteApi
            | Transport
            | Unexpected
            | ConnectionCheckFailed
            | Unsupported => Exit::OperationFailed,
            BadInput => Exit::BadInput,
            ModuleRefused | ModuleTrapped | EgressDenied => Exit::ModuleFault,
        }
    }
}

/// `error` of a report.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub kind: ErrorKind,
    pub message: String,
    /// The remote API's result code, for `remote-api` errors.
    pub code: Option<i64>,
    /// The host limit that stopped the module, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<NamedLimit>,
}

impl ErrorReport {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorReport { kind, message: message.into(), code: None, limit: None }
    }

    /// The same error, naming the limit behind it.
    pub fn with_limit(mut self, limit: Option<NamedLimit>) -> Self {
        self.limit = limit;
        self
    }
}

impl From<wit::ModuleError> for ErrorReport {
    fn from(e: wit::ModuleError) -> Self {
        use wit::ModuleError as E;
        match e {
            E::Configuration(m) => ErrorReport::new(ErrorKind::Configuration, m),
            E::NotFound(m) => ErrorReport::new(ErrorKind::NotFound, m),
            E::Authentication(m) => ErrorReport::new(ErrorKind::Authentication, m),
            E::RemoteApi(r) => {
                ErrorReport { kind: ErrorKind::RemoteApi, message: r.message, code: Some(r.code), limit: None }
            }
            E::Transport(m) => ErrorReport::new(ErrorKind::Transport, m),
            E::Unexpected(m) => ErrorReport::new(ErrorKind::Unexpected, m),
        }
    }
}

/// Name and version of the module that ran.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleRef {
    pub name: String,
    pub version: String,
}

impl From<&wit::ModuleInfo> for ModuleRef {
    fn from(info: &wit::ModuleInfo) -> Self {
        ModuleRef { name: info.name.clone(), version: info.version.clone() }
    }
}

/// The whole output of one run.
#[derive(Debug)]
pub struct Report {
    pub operation: &'static str,
    pub module: Option<ModuleRef>,
    /// What the operation answered.
    pub body: Option<Body>,
    /// The one origin the module may reach (the App's endpoint as the host read it).
    pub endpoint: Option<String>,
    pub warnings: Vec<String>,
    /// The App's call log, when the module keeps one.
    pub calls: Vec<Call>,
    /// Call records left out past the log bounds.
    pub calls_dropped: usize,
    pub error: Option<ErrorReport>,
    pub logs: Vec<LogRecord>,
    /// What the run used: wall time, requests, bytes received, peak module memory.
    pub meter: Meter,
}

/// What an operation answered: the report's members between `module` and `warnings`.
#[derive(Debug)]
pub enum Body {
    Outcome(Outcome),
    /// A 2.4 module's `create`: the outcome and the remote account the HostBill account is linked to.
    Created {
        outcome: Outcome,
        link: Link,
    },
    /// A connection test's checks, and a 2.4 module's capabilities (when its probe ran and answered).
    Checks {
        checks: Vec<Check>,
        capabilities: Option<Vec<Capability>>,
    },
    /// `option-choices`.
    Choices(Vec<Choice>),
    Sync {
        dry_run: bool,
        summary: Summary,
    },
    /// `info`, and after `install` / `rollback` the files now active.
    Info {
        info: Box<Info>,
        active: Option<Active>,
    },
    /// `precompile`: where the compiled component came from, and the module's info.
    Compile {
        compiled: Compiled,
        info: Box<Info>,
    },
    Reconciliation(Reconciliation),
    /// A usage read's `summary` (its rows were written as they came: `usage.rs`).
    Usage(UsageSummary),
}

impl Body {
    /// Writes the body's members.
    fn write<W: std::io::Write>(&self, out: &mut JsonObject<W>) -> std::io::Result<()> {
        match self {
            Body::Outcome(outcome) => out.member("outcome", outcome),
            Body::Created { outcome, link } => {
                out.member("outcome", outcome)?;
                out.member("link", link)
            }
            Body::Checks { checks, capabilities } => {
                out.member("checks", checks)?;
                capabilities.as_ref().map_or(Ok(()), |c| out.member("capabilities", c))
            }
            Body::Choices(choices) => out.member("choices", choices),
            Body::Sync { dry_run, summary } => {
                out.member("dry_run", dry_run)?;
                out.member("summary", summary)
            }
            Body::Info { info, active } => {
                out.member("info", info)?;
                active.as_ref().map_or(Ok(()), |active| out.member("active", active))
            }
            Body::Compile { compiled, info } => {
                out.member("compiled", compiled)?;
                out.member("info", info)
            }
            Body::Reconciliation(r) => out.member("reconciliation", r),
            Body::Usage(summary) => out.member("summary", summary),
        }
    }
}

/// Facts, printed as one object (`{"name": "value", ...}`).
pub struct FactMap<'a>(pub &'a [wit::Fact]);

impl Serialize for FactMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|f| (&f.name, &f.value)))
    }
}

fn fact_map<S: Serializer>(facts: &[wit::Fact], s: S) -> Result<S::Ok, S::Error> {
    FactMap(facts).serialize(s)
}

/// `outcome` of an account operation.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub message: String,
    #[serde(serialize_with = "fact_map")]
    pub facts: Vec<wit::Fact>,
    pub changed_remote: bool,
}

/// One of `checks` of a connection test.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// `link` of a 2.4 module's `create`: the remote account, and how it was found.
#[derive(Debug, Serialize)]
pub struct Link {
    pub remote_id: u64,
    /// `existing`, `by-email` or `provisioned`.
    pub source: &'static str,
}

/// One of `capabilities` of a connection test.
#[derive(Debug, Serialize)]
pub struct Capability {
    pub name: String,
    pub method: String,
    /// `allowed`, `denied`, `unknown` or `not-probed`.
    pub state: &'static str,
    pub detail: String,
}

/// One of `choices` of `option-choices`.
#[derive(Debug, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// A sync's `summary`: counts per decision (the host's `error` decisions for rows it could not
/// read included), requests, time and the host's peak memory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub accounts: usize,
    pub unchanged: usize,
    pub change: usize,
    pub skipped: usize,
    pub error: usize,
    pub requests: u32,
    pub elapsed_ms: u64,
    pub peak_rss_kib: u64,
}

/// A usage report's `summary`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct UsageSummary {
    pub accounts: usize,
    pub read: usize,
    pub skipped: usize,
    /// The module's `failed` results and the host's `error` rows together.
    pub errors: usize,
    /// Hours with usage, over every read account.
    pub hours: usize,
    /// Exact decimal sums over every hour written.
    pub cost: String,
    pub bonus: String,
    pub requests: u32,
}

/// `info`: the module, its contract, its component file and what it may do.
#[derive(Debug, Serialize)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub description: String,
    pub wit_package: String,
    pub host_supports: String,
    pub endpoint_field: String,
    pub app_fields: Vec<AppFieldUse>,
    pub component: Component,
    pub permissions: Permissions,
}

/// One App field the module reads.
#[derive(Debug, Serialize)]
pub struct AppFieldUse {
    pub field: String,
    pub label: String,
    pub description: String,
    pub required: bool,
    pub secret: bool,
}

/// The component file behind `info`, and the one it replaced.
#[derive(Debug, Serialize)]
pub struct Component {
    pub file: String,
    pub signature: Signature,
    pub metadata: ComponentMetadata,
    pub previous: Option<PreviousComponent>,
}

/// Whether a component's signature was verified.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Signature {
    Verified { verified: bool, key_id: String },
    Unverified { verified: bool, why: String, allowed_by: &'static str },
}

/// The component kept as `<file>.previous`.
#[derive(Debug, Serialize)]
pub struct PreviousComponent {
    pub file: String,
    pub metadata: ComponentMetadata,
}

/// What the module is allowed to do, in the terms an operator decides on.
#[derive(Debug, Serialize)]
pub struct Permissions {
    pub network: String,
    pub reads: Vec<String>,
    pub secret: Vec<String>,
    pub limits: PermissionLimits,
}

/// The limits a module runs under, as `info` prints them.
#[derive(Debug, Serialize)]
pub struct PermissionLimits {
    pub memory: String,
    pub deadline: String,
    pub response: String,
    pub connections: usize,
    pub host_resources: usize,
    pub request: String,
    pub report: String,
}

/// `active` after `install` or `rollback`.
#[derive(Debug, Serialize)]
pub struct Active {
    pub file: String,
    pub previous: String,
}

/// `compiled` of `precompile`.
#[derive(Debug, Serialize)]
pub struct Compiled {
    pub source: String,
}

/// One record of the App's call log.
#[derive(Debug, Serialize)]
pub struct Call {
    pub method: String,
    #[serde(serialize_with = "fact_map")]
    pub params: Vec<wit::Fact>,
    pub http_status: Option<u16>,
    pub duration_ms: u32,
    pub result: Option<i64>,
    pub reply: String,
}

/// `reconciliation`: counts, then each list; a 2.4 module's review adds `proposed_links` and
/// `group_drift` (and their counts), which an older module's report has not.
#[derive(Debug, Serialize)]
pub struct Reconciliation {
    pub counts: ReconciliationCounts,
    pub without_id: Vec<AccountIssue>,
    pub missing_remote: Vec<MissingRemote>,
    pub shared_users: Vec<SharedUser>,
    pub unlinked_users: Vec<UnlinkedUser>,
    pub email_differences: Vec<EmailDifference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed_links: Option<Vec<ProposedLink>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_drift: Option<Vec<GroupDrift>>,
    pub requests: u32,
}

#[derive(Debug, Serialize)]
pub struct ReconciliationCounts {
    pub accounts: usize,
    pub without_id: usize,
    pub missing_remote: usize,
    pub shared_users: usize,
    pub unlinked_users: usize,
    pub email_differences: usize,
    pub remote_users: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed_links: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_drift: Option<usize>,
}

/// An account without a remote id and the one remote user whose email is exactly its client's.
#[derive(Debug, Serialize)]
pub struct ProposedLink {
    pub account_id: u64,
    pub uid: u64,
    pub email: String,
}

/// A linked account whose remote group is not the one its product names.
#[derive(Debug, Serialize)]
pub struct GroupDrift {
    pub account_id: u64,
    pub uid: u64,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Serialize)]
pub struct AccountIssue {
    pub account_id: u64,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct MissingRemote {
    pub account_id: u64,
    pub uid: u64,
}

#[derive(Debug, Serialize)]
pub struct SharedUser {
    pub uid: u64,
    pub account_ids: Vec<u64>,
}

#[derive(Debug, Serialize)]
pub struct UnlinkedUser {
    pub uid: u64,
    pub email: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct EmailDifference {
    pub account_id: u64,
    pub uid: u64,
    pub hostbill_email: String,
    pub remote_email: String,
}

impl Report {
    pub fn new(operation: &'static str) -> Self {
        Report {
            operation,
            module: None,
            body: None,
            endpoint: None,
            warnings: Vec::new(),
            calls: Vec::new(),
            calls_dropped: 0,
            error: None,
            logs: Vec::new(),
            meter: Meter::default(),
        }
    }

    pub fn failed(operation: &'static str, error: ErrorReport) -> Self {
        Report { error: Some(error), ..Report::new(operation) }
    }

    /// The exit code of this run: success without an error, else its kind's code.
    pub fn exit(&self) -> Exit {
        self.error.as_ref().map_or(Exit::Success, |e| e.kind.exit())
    }

    /// Writes the members that lead a report: `operation` and `module`.
    pub(super) fn write_head<W: std::io::Write>(&self, out: &mut JsonObject<W>) -> std::io::Result<()> {
        out.member("operation", &self.operation)?;
        self.module.as_ref().map_or(Ok(()), |module| out.member("module", module))
    }

    /// Writes the members that end a report, from `ok` to `meter` (a streamed sync writes its
    /// decisions before them).
    pub(super) fn write_tail<W: std::io::Write>(&self, out: &mut JsonObject<W>) -> std::io::Result<()> {
        out.member("ok", &self.error.is_none())?;
        if let Some(body) = &self.body {
            body.write(out)?;
        }
        if let Some(endpoint) = &self.endpoint {
            out.member("endpoint", endpoint)?;
        }
        if !self.warnings.is_empty() {
            out.member("warnings", &self.warnings)?;
        }
        if !self.calls.is_empty() {
            out.member("calls", &self.calls)?;
        }
        if self.calls_dropped > 0 {
            out.member("calls_dropped", &self.calls_dropped)?;
        }
        if let Some(error) = &self.error {
            out.member("error", error)?;
        }
        out.member("logs", &self.logs)?;
        out.member("meter", &self.meter)
    }

    /// Writes the whole report (without decisions) to `out`, scrubbed.
    pub fn write(&self, scrubber: &Scrubber, out: impl std::io::Write) -> std::io::Result<()> {
        let mut object = JsonObject::new(out, scrubber.clone());
        self.write_head(&mut object)?;
        self.write_tail(&mut object)?;
        object.close().map(drop)
    }

    /// The JSON report as text (tests and small reports).
    #[cfg(test)]
    pub fn render(&self, scrubber: &Scrubber) -> String {
        let mut out = Vec::new();
        self.write(scrubber, &mut out).expect("writing to memory");
        String::from_utf8(out).expect("JSON is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn secrets_are_removed_from_every_part_of_a_report() {
        let secret = "tok-5e3a-secret";
        let scrub = Scrubber::new([secret]);
        let mut report = Report::new("suspend");
        report.module = Some(ModuleRef { name: format!("m {secret}"), version: "1".into() });
        report.body = Some(Body::Outcome(Outcome {
            message: format!("x{secret}x"),
            facts: vec![wit::Fact { name: secret.into(), value: format!("v={secret}") }],
            changed_remote: true,
        }));
        report.warnings.push(secret.into());
        report.calls.push(Call {
            method: "m".into(),
            params: vec![wit::Fact { name: "session".into(), value: secret.into() }],
            http_status: Some(200),
            duration_ms: 1,
            result: Some(0),
            reply: format!("{{\"session\":\"{secret}\"}}"),
        });
        report.error = Some(ErrorReport::new(ErrorKind::Transport, secret));
        report.logs.push(LogRecord { level: "info", source: crate::sandbox::Source::Module, message: secret.into() });
        let text = report.render(&scrub);
        assert!(!text.contains(secret), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["operation"], "suspend");
        assert_eq!(v["outcome"]["facts"]["[REDACTED]"], "v=[REDACTED]");
        assert_eq!(v["outcome"]["changed_remote"], true);
        assert_eq!(v["error"]["kind"], "transport");
        assert_eq!(v["error"]["code"], Value::Null);
        assert!(v["error"].get("limit").is_none());
        assert_eq!(v["calls"][0]["params"]["session"], "[REDACTED]");
        assert_eq!(v["meter"]["wall_ms"], 0);
    }

    #[test]
    fn the_lifecycle_members_have_the_documented_shapes_and_are_scrubbed() {
        let secret = "tok-lifecycle-secret";
        let scrub = Scrubber::new([secret]);
        let outcome = || Outcome { message: format!("linked {secret}"), facts: vec![], changed_remote: false };
        let mut created = Report::new("create");
        created.body = Some(Body::Created { outcome: outcome(), link: Link { remote_id: 1005, source: "by-email" } });
        let v: Value = serde_json::from_str(&created.render(&scrub)).unwrap();
        assert_eq!(v["link"], serde_json::json!({"remote_id": 1005, "source": "by-email"}));
        assert_eq!(v["outcome"]["message"], "linked [REDACTED]");

        let mut tested = Report::new("test-connection");
        tested.body = Some(Body::Checks {
            checks: vec![Check { name: "login".into(), passed: true, detail: "ok".into() }],
            capabilities: Some(vec![Capability {
                name: "group list".into(),
                method: "billing/groupquota/rest/getgroups".into(),
                state: "denied",
                detail: format!("8202 for {secret}"),
            }]),
        });
        let text = tested.render(&scrub);
        assert!(!text.contains(secret), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["capabilities"],
            serde_json::json!([{"name": "group list", "method": "billing/groupquota/rest/getgroups",
                                "state": "denied", "detail": "8202 for [REDACTED]"}])
        );
        tested.body = Some(Body::Checks { checks: vec![], capabilities: None });
        let v: Value = serde_json::from_str(&tested.render(&scrub)).unwrap();
        assert!(v.get("capabilities").is_none(), "no probe, no member: {v}");

        let mut choices = Report::new("option-choices");
        choices.body = Some(Body::Choices(vec![Choice { value: "premium".into(), label: "Premium".into() }]));
        let v: Value = serde_json::from_str(&choices.render(&scrub)).unwrap();
        assert_eq!(v["choices"], serde_json::json!([{"value": "premium", "label": "Premium"}]));

        let counts = |links, drift| ReconciliationCounts {
            accounts: 2,
            without_id: 1,
            missing_remote: 0,
            shared_users: 0,
            unlinked_users: 0,
            email_differences: 0,
            remote_users: 3,
            proposed_links: links,
            group_drift: drift,
        };
        let reconciliation = |links: Option<Vec<ProposedLink>>, drift: Option<Vec<GroupDrift>>| Reconciliation {
            counts: counts(links.as_ref().map(Vec::len), drift.as_ref().map(Vec::len)),
            without_id: vec![],
            missing_remote: vec![],
            shared_users: vec![],
            unlinked_users: vec![],
            email_differences: vec![],
            proposed_links: links,
            group_drift: drift,
            requests: 1,
        };
        let mut reviewed = Report::new("reconcile");
        reviewed.body = Some(Body::Reconciliation(reconciliation(
            Some(vec![ProposedLink { account_id: 1, uid: 12, email: "ann@x.io".into() }]),
            Some(vec![GroupDrift { account_id: 2, uid: 13, expected: "premium".into(), actual: "default".into() }]),
        )));
        let v: Value = serde_json::from_str(&reviewed.render(&scrub)).unwrap();
        let r = &v["reconciliation"];
        assert_eq!((r["counts"]["proposed_links"].clone(), r["counts"]["group_drift"].clone()), (1.into(), 1.into()));
        assert_eq!(r["proposed_links"], serde_json::json!([{"account_id": 1, "uid": 12, "email": "ann@x.io"}]));
        assert_eq!(
            r["group_drift"],
            serde_json::json!([{"account_id": 2, "uid": 13, "expected": "premium", "actual": "default"}])
        );
        reviewed.body = Some(Body::Reconciliation(reconciliation(None, None)));
        let v: Value = serde_json::from_str(&reviewed.render(&scrub)).unwrap();
        let r = &v["reconciliation"];
        assert!(r.get("proposed_links").is_none() && r["counts"].get("group_drift").is_none(), "an older module: {r}");
    }
}
