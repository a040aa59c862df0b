//! What the host prints on stdout: one JSON object per run, and the process exit code.
//!
//! ```json
//! {"ok": true, "operation": "suspend", "module": {"name": "CloudPe", "version": "0.1.0"},
//!  "outcome": {...}, "logs": [{"level": "info", "source": "module", "message": "..."}]}
//! {"ok": false, "operation": "suspend", "error": {"kind": "not-found", "message": "...", "code": null}, "logs": [...]}
//! ```

pub mod build;
pub mod stream;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::request::InvalidRow;
use crate::sandbox::LogRecord;
use crate::sandbox::limits::NamedLimit;
use crate::scrub::Scrubber;

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
    /// deadline, memory limit, a request outside the App's endpoint).
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
            Configuration | NotFound | Authentication | RemoteApi | Transport | Unexpected | ConnectionCheckFailed => {
                Exit::OperationFailed
            }
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

/// The decisions of a sync, kept as the module returned them and serialised straight to stdout
/// (a 100,000-account sync never exists as a JSON tree in memory).
#[derive(Debug, Clone)]
pub struct Decisions {
    pub report: wit::SyncReport,
    /// A dry run labels changes `would-change`, so they cannot be applied by mistake.
    pub dry_run: bool,
    /// `unchanged` decisions are printed with their facts (without: `--omit-unchanged-facts`).
    pub unchanged_facts: bool,
    /// Rows the host could not read, by their place in the request (ascending); each is printed
    /// there as an `error` decision of kind `bad-input`, between the module's decisions.
    pub invalid: Vec<(usize, InvalidRow)>,
}

/// The whole output of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub operation: &'static str,
    pub module: Option<ModuleRef>,
    /// Operation-specific fields (`outcome`, `checks`, `summary`, `info`, `dry_run`).
    pub payload: Map<String, Value>,
    pub decisions: Option<Decisions>,
    pub error: Option<ErrorReport>,
    pub logs: Vec<LogRecord>,
    /// What the run used: wall time, requests, bytes received, peak module memory.
    pub meter: Option<Meter>,
    /// A streamed sync's decisions, already on stdout: the report ends with
    /// [`stream::DecisionStream::finish`] instead of being written whole.
    pub stream: Option<stream::SharedStream>,
}

/// The `meter` of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Meter {
    pub wall_ms: u64,
    pub requests: u64,
    pub bytes_received: u64,
    pub peak_memory_bytes: u64,
}

impl Report {
    pub fn new(operation: &'static str) -> Self {
        Report {
            operation,
            module: None,
            payload: Map::new(),
            decisions: None,
            error: None,
            logs: Vec::new(),
            meter: None,
            stream: None,
        }
    }

    pub fn failed(operation: &'static str, error: ErrorReport) -> Self {
        Report { error: Some(error), ..Report::new(operation) }
    }

    /// The exit code of this run: success without an error, else its kind's code.
    pub fn exit(&self) -> Exit {
        self.error.as_ref().map_or(Exit::Success, |e| e.kind.exit())
    }

    /// Writes the JSON report to `out`, with every secret removed.
    pub fn write(&self, scrubber: &Scrubber, pretty: bool, out: impl std::io::Write) -> std::io::Result<()> {
        let rendered = Rendered { report: self, scrubber, tail: false };
        if pretty { serde_json::to_writer_pretty(out, &rendered) } else { serde_json::to_writer(out, &rendered) }
            .map_err(std::io::Error::other)
    }

    /// The length of the JSON report, if it is at most `max_bytes` (counted, not kept).
    pub fn size(&self, scrubber: &Scrubber, pretty: bool, max_bytes: usize) -> Option<usize> {
        let mut counter = Counter { count: 0, max: max_bytes };
        self.write(scrubber, pretty, &mut counter).ok().map(|()| counter.count)
    }

    /// What a streamed report ends with (see [`stream::DecisionStream::finish`]).
    fn rendered_tail<'a>(&'a self, scrubber: &'a Scrubber) -> impl Serialize + 'a {
        Rendered { report: self, scrubber, tail: true }
    }

    /// The JSON report as text (tests and small reports).
    #[cfg(test)]
    pub fn render(&self, scrubber: &Scrubber) -> String {
        let mut out = Vec::new();
        self.write(scrubber, false, &mut out).expect("writing to memory");
        String::from_utf8(out).expect("JSON is UTF-8")
    }
}

/// Counts bytes written and fails past `max`.
struct Counter {
    count: usize,
    max: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.count += buf.len();
        if self.count > self.max { Err(std::io::Error::other("report too large")) } else { Ok(buf.len()) }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A report bound to its scrubber, for serialisation.
struct Rendered<'a> {
    report: &'a Report,
    scrubber: &'a Scrubber,
    /// Only what a streamed report writes at its end: no `operation`, `module` or `decisions`.
    tail: bool,
}

/// A string serialised with secrets removed.
struct Clean<'a>(&'a str, &'a Scrubber);

impl Serialize for Clean<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.1.text(self.0))
    }
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (r, scrub) = (self.report, self.scrubber);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("ok", &r.error.is_none())?;
        if !self.tail {
            map.serialize_entry("operation", r.operation)?;
        }
        if let Some(module) = r.module.as_ref().filter(|_| !self.tail) {
            map.serialize_entry(
                "module",
                &serde_json::json!({"name": Clean(&module.name, scrub), "version": Clean(&module.version, scrub)}),
            )?;
        }
        for (key, value) in &r.payload {
            let mut value = value.clone();
            scrub.json(&mut value);
            map.serialize_entry(key, &value)?;
        }
        if let Some(decisions) = r.decisions.as_ref().filter(|_| !self.tail) {
            map.serialize_entry("decisions", &DecisionList { decisions, scrub })?;
        }
        if let Some(error) = &r.error {
            map.serialize_entry("error", &CleanError(error, scrub))?;
        }
        map.serialize_entry("logs", &LogList(&r.logs, scrub))?;
        map.serialize_entry("meter", &r.meter.unwrap_or_default())?;
        map.end()
    }
}

struct CleanError<'a>(&'a ErrorReport, &'a Scrubber);

impl Serialize for CleanError<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("kind", &self.0.kind)?;
        map.serialize_entry("message", &Clean(&self.0.message, self.1))?;
        map.serialize_entry("code", &self.0.code)?;
        if let Some(limit) = &self.0.limit {
            map.serialize_entry("limit", limit)?;
        }
        map.end()
    }
}

struct LogList<'a>(&'a [LogRecord], &'a Scrubber);

impl Serialize for LogList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for record in self.0 {
            seq.serialize_element(&serde_json::json!({
                "level": record.level, "source": record.source, "message": Clean(&record.message, self.1),
            }))?;
        }
        seq.end()
    }
}

struct DecisionList<'a> {
    decisions: &'a Decisions,
    scrub: &'a Scrubber,
}

struct Facts<'a>(&'a [wit::Fact], &'a Scrubber);

impl Serialize for Facts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for fact in self.0 {
            map.serialize_entry(&Clean(&fact.name, self.1), &Clean(&fact.value, self.1))?;
        }
        map.end()
    }
}

impl Serialize for DecisionList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let scrub = self.scrub;
        let change = if self.decisions.dry_run { "would-change" } else { "change" };
        let unchanged_facts = self.decisions.unchanged_facts;
        let decided = &self.decisions.report.decisions;
        let mut seq = s.serialize_seq(Some(decided.len() + self.decisions.invalid.len()))?;
        let mut invalid = self.decisions.invalid.iter().peekable();
        let mut place = 0;
        for d in decided {
            while let Some((index, row)) = invalid.next_if(|(index, _)| *index <= place) {
                seq.serialize_element(&InvalidOut { index: *index, row, scrub })?;
                place += 1;
            }
            seq.serialize_element(&DecisionOut { d, change, unchanged_facts, scrub })?;
            place += 1;
        }
        for (index, row) in invalid {
            seq.serialize_element(&InvalidOut { index: *index, row, scrub })?;
        }
        seq.end()
    }
}

struct DecisionOut<'a> {
    d: &'a wit::AccountDecision,
    change: &'static str,
    unchanged_facts: bool,
    scrub: &'a Scrubber,
}

impl Serialize for DecisionOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let scrub = self.scrub;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("account_id", &self.d.account_id)?;
        match &self.d.decision {
            wit::Decision::Unchanged(facts) => {
                map.serialize_entry("decision", "unchanged")?;
                if self.unchanged_facts {
                    map.serialize_entry("facts", &Facts(facts, scrub))?;
                }
            }
            wit::Decision::Change(c) => {
                map.serialize_entry("decision", self.change)?;
                map.serialize_entry("from", c.from.hostbill_name())?;
                map.serialize_entry("to", c.to.hostbill_name())?;
                map.serialize_entry("facts", &Facts(&c.facts, scrub))?;
            }
            wit::Decision::Skipped(reason) => {
                map.serialize_entry("decision", "skipped")?;
                map.serialize_entry("reason", &Clean(reason, scrub))?;
            }
            wit::Decision::Failed(e) => {
                map.serialize_entry("decision", "error")?;
                map.serialize_entry("error", &CleanError(&ErrorReport::from(e.clone()), scrub))?;
            }
        }
        map.end()
    }
}

/// The `error` decision of a row the host could not read.
struct InvalidOut<'a> {
    index: usize,
    row: &'a InvalidRow,
    scrub: &'a Scrubber,
}

impl Serialize for InvalidOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let error = ErrorReport::new(
            ErrorKind::BadInput,
            format!(
                "account row {} of the request is not valid: {}; HostBill left unchanged",
                self.index + 1,
                self.row.problem
            ),
        );
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("account_id", &self.row.account_id)?;
        map.serialize_entry("decision", "error")?;
        map.serialize_entry("error", &CleanError(&error, self.scrub))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_removed_from_every_part_of_a_report() {
        let secret = "tok-5e3a-secret";
        let scrub = Scrubber::new([secret]);
        let mut report = Report::new("sync");
        report.module = Some(ModuleRef { name: format!("m {secret}"), version: "1".into() });
        report.payload.insert("summary".into(), serde_json::json!({"note": format!("x{secret}x")}));
        report.decisions = Some(Decisions {
            report: wit::SyncReport {
                decisions: vec![
                    wit::AccountDecision {
                        account_id: 1,
                        decision: wit::Decision::Change(wit::StatusChange {
                            from: wit::HostbillStatus::Active,
                            to: wit::HostbillStatus::Suspended,
                            facts: vec![wit::Fact { name: secret.into(), value: format!("v={secret}") }],
                        }),
                    },
                    wit::AccountDecision { account_id: 2, decision: wit::Decision::Skipped(secret.into()) },
                    wit::AccountDecision {
                        account_id: 3,
                        decision: wit::Decision::Failed(wit::ModuleError::Transport(secret.into())),
                    },
                ],
                requests: 1,
            },
            dry_run: true,
            unchanged_facts: true,
            invalid: vec![(1, InvalidRow { account_id: Some(9), problem: format!("status {secret:?}") })],
        });
        report.error = Some(ErrorReport::new(ErrorKind::Transport, secret));
        report.logs.push(LogRecord { level: "info", source: crate::sandbox::Source::Module, message: secret.into() });
        let text = report.render(&scrub);
        assert!(!text.contains(secret), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["decisions"][0]["decision"], "would-change");
        assert_eq!(v["decisions"][0]["to"], "Suspended");
        assert_eq!(v["decisions"][1]["account_id"], 9, "the invalid row keeps its place");
        assert_eq!(v["decisions"][1]["error"]["kind"], "bad-input");
        assert_eq!(v["decisions"][3]["error"]["kind"], "transport");
        assert_eq!(v["ok"], false);
    }
}
