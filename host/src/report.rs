//! What the host prints on stdout: one JSON object per run, and the process exit code.
//!
//! ```json
//! {"ok": true, "operation": "suspend", "module": {"name": "CloudPe", "version": "0.1.0"},
//!  "outcome": {...}, "logs": [{"level": "info", "source": "module", "message": "..."}]}
//! {"ok": false, "operation": "suspend", "error": {"kind": "not-found", "message": "...", "code": null}, "logs": [...]}
//! ```

use serde::Serialize;
use serde_json::{Map, Value};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::sandbox::LogRecord;
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

/// `error` of a report.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub kind: ErrorKind,
    pub message: String,
    /// The remote API's result code, for `remote-api` errors.
    pub code: Option<i64>,
}

impl ErrorReport {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorReport { kind, message: message.into(), code: None }
    }
}

impl From<wit::ModuleError> for ErrorReport {
    fn from(e: wit::ModuleError) -> Self {
        use wit::ModuleError as E;
        match e {
            E::Configuration(m) => ErrorReport::new(ErrorKind::Configuration, m),
            E::NotFound(m) => ErrorReport::new(ErrorKind::NotFound, m),
            E::Authentication(m) => ErrorReport::new(ErrorKind::Authentication, m),
            E::RemoteApi(r) => ErrorReport { kind: ErrorKind::RemoteApi, message: r.message, code: Some(r.code) },
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

/// The whole output of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub operation: &'static str,
    pub module: Option<ModuleRef>,
    /// Operation-specific fields (`outcome`, `checks`, `decisions`, `summary`, `info`).
    pub payload: Map<String, Value>,
    pub error: Option<ErrorReport>,
    pub logs: Vec<LogRecord>,
}

impl Report {
    pub fn new(operation: &'static str) -> Self {
        Report { operation, module: None, payload: Map::new(), error: None, logs: Vec::new() }
    }

    pub fn failed(operation: &'static str, error: ErrorReport) -> Self {
        Report { error: Some(error), ..Report::new(operation) }
    }

    /// The JSON text, with every secret removed.
    pub fn render(&self, scrubber: &Scrubber, pretty: bool) -> String {
        let mut object = Map::new();
        object.insert("ok".into(), Value::Bool(self.error.is_none()));
        object.insert("operation".into(), Value::from(self.operation));
        if let Some(module) = &self.module {
            object.insert("module".into(), serde_json::to_value(module).expect("plain data"));
        }
        object.extend(self.payload.clone());
        if let Some(error) = &self.error {
            object.insert("error".into(), serde_json::to_value(error).expect("plain data"));
        }
        object.insert("logs".into(), serde_json::to_value(&self.logs).expect("plain data"));
        let mut value = Value::Object(object);
        scrubber.json(&mut value);
        if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.expect("plain data")
    }
}
