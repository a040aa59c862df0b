//! Every limit the sandbox enforces, with its default, in one place. Each can be set on the
//! command line or through the environment variable named in `cli.rs`.

use std::time::Duration;

/// Resource limits for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory the component may grow to (default 128 MiB).
    pub memory_bytes: usize,
    /// Wall-clock budget for the whole operation, instantiation included (default 120 s).
    /// A component spinning on the CPU is stopped by epoch interruption within one tick of it.
    pub deadline: Duration,
    /// Ceiling on each outgoing request's connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Ceiling on each outgoing request's first-byte and between-bytes timeouts (default 60 s).
    pub read_timeout: Duration,
    /// Largest response body the module may receive, in bytes (default 64 MiB); a longer one
    /// fails the read with a size error.
    pub max_response_bytes: usize,
    /// Most outgoing requests in flight at once, and most connections open, in use or idle
    /// (default 16); more requests wait for a free slot.
    pub max_connections: usize,
    /// Whether connections are kept open for further requests (default true); false
    /// (`--no-keep-alive`) opens one connection per request.
    pub keep_alive: bool,
    /// Largest request the host reads from stdin (default 256 MiB; a 1,000,000-account sync
    /// request is about 85 MiB).
    pub max_request_bytes: usize,
    /// Largest report the host prints (default 48 MiB, below the HostBill side's 64 MiB read
    /// cap, or for a large sync [`default_report_bytes`]; a 100,000-account sync report is
    /// about 18 MiB).
    pub max_report_bytes: usize,
    /// Most host-side resources (wasi:http requests, header sets, bodies, streams, pollables)
    /// the module may hold at once (default 2,048). They live outside the module's memory
    /// limit, so this and [`Limits::max_header_bytes`] bound what a module can make the host
    /// hold: at most `max_host_resources × max_header_bytes` (32 MiB) of headers.
    pub max_host_resources: usize,
    /// Largest header set (a wasi:http `fields`), in bytes of its in-memory form (default
    /// 16 KiB; web servers cap request headers at about 8 KiB).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 * 1024 * 1024,
            deadline: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            max_response_bytes: 64 * 1024 * 1024,
            max_connections: 16,
            keep_alive: true,
            max_request_bytes: 256 * 1024 * 1024,
            max_report_bytes: 48 * 1024 * 1024,
            max_host_resources: 2048,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Longest an idle connection is kept for reuse (servers commonly close theirs after 60-75 s;
/// one dropped silently on the way would otherwise cost a read timeout).
pub const IDLE_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Module memory a sync of `accounts` accounts gets unless `--memory-mib` is given: the 128 MiB of
/// any operation, plus [`SYNC_MEMORY_PER_ACCOUNT`] for each account past the first 100,000, at
/// most [`MAX_DEFAULT_MEMORY_BYTES`]. The module holds every account and decision at once (the
/// contract returns them in one list), so its memory grows with the input; a fixed default
/// would fail large syncs, and a large fixed one would let every small run grow that far.
pub fn default_sync_memory_bytes(accounts: usize) -> usize {
    let base = Limits::default().memory_bytes;
    base.saturating_add(accounts.saturating_sub(100_000).saturating_mul(SYNC_MEMORY_PER_ACCOUNT))
        .min(MAX_DEFAULT_MEMORY_BYTES)
}

/// Module memory allowed per sync account past the first 100,000 (measured: about 800 bytes per
/// account, each decision carrying six CloudPe facts).
pub const SYNC_MEMORY_PER_ACCOUNT: usize = 1024;

/// The most memory a default limit grants a module (a larger sync needs `--memory-mib`).
pub const MAX_DEFAULT_MEMORY_BYTES: usize = 1024 * 1024 * 1024;

/// Largest report of a sync with `decisions` decisions unless `--max-report-mib` is given: the
/// 48 MiB of any report, or [`REPORT_BYTES_PER_DECISION`] per decision when that is more, at
/// most 1 GiB.
pub fn default_report_bytes(decisions: usize) -> usize {
    decisions.saturating_mul(REPORT_BYTES_PER_DECISION).clamp(Limits::default().max_report_bytes, 1024 * 1024 * 1024)
}

/// Report bytes allowed per sync decision (an unchanged decision with its four facts is about
/// 190 bytes; errors are longer).
pub const REPORT_BYTES_PER_DECISION: usize = 512;

/// How often the epoch ticks; the CPU deadline is enforced with this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Longest string the host accepts in a module's answer (an outcome message, a fact, an error):
/// real answers are a sentence; a longer one makes the run a module fault.
pub const MAX_ANSWER_STRING_BYTES: usize = 64 * 1024;

/// Most capabilities a module's probe may list (`lifecycle.capabilities`): a module probes a
/// handful of optional methods; a longer list makes the run a module fault ([`CAPABILITIES_LIMIT`]).
pub const MAX_CAPABILITIES: usize = 64;
/// The name of [`MAX_CAPABILITIES`] in reports (`error.limit`).
pub const CAPABILITIES_LIMIT: &str = "capabilities";
/// Most choices of one product option (`lifecycle.option-choices`, e.g. the platform's groups):
/// HostBill shows them in one drop-down; a longer list makes the run a module fault
/// ([`OPTION_CHOICES_LIMIT`]).
pub const MAX_OPTION_CHOICES: usize = 1000;
/// The name of [`MAX_OPTION_CHOICES`] in reports (`error.limit`).
pub const OPTION_CHOICES_LIMIT: &str = "option-choices";

/// Most log records kept from one operation; later ones are counted, not stored.
pub const MAX_LOG_RECORDS: usize = 10_000;
/// Most records of the App's call log one run keeps (a sync of many accounts makes one call per
/// page or lookup; beyond this the report says how many were left out).
pub const MAX_CALL_RECORDS: usize = 10_000;
/// Longest log message kept; longer ones are cut.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4096;

/// Most bytes a module may hand the host through its log imports in one run (`log.log` and
/// `log.call`, each record counted with its strings and a fixed overhead, whether it is kept or
/// not): a real run logs well under 1 MiB. Past it the module is stopped ([`LOG_BYTES_LIMIT`]).
/// What the host keeps of them is bounded apart from this: at most [`MAX_LOG_RECORDS`] records
/// of [`MAX_LOG_MESSAGE_BYTES`], and call records likewise, each in an allocation of its kept
/// size (`sandbox/lift_budget.rs`).
pub const MAX_LOG_LIFTED_BYTES: usize = 64 * 1024 * 1024;
/// The name of [`MAX_LOG_LIFTED_BYTES`] in reports (`error.limit`: `log-bytes` / `64 MiB`).
pub const LOG_BYTES_LIMIT: &str = "log-bytes";

/// Most refused requests reported; the first one already ends the run.
pub const MAX_REPORTED_DENIALS: usize = 3;

/// A limit that stopped a module, named for the report: e.g. `deadline` / `120 s`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamedLimit {
    pub name: &'static str,
    pub value: String,
}

impl Limits {
    /// The deadline, named.
    pub fn named_deadline(&self) -> NamedLimit {
        NamedLimit { name: "deadline", value: format!("{} s", self.deadline.as_secs_f64()) }
    }
    /// The module's memory limit, named.
    pub fn named_memory(&self) -> NamedLimit {
        NamedLimit { name: "memory", value: format!("{} MiB", self.memory_bytes / (1024 * 1024)) }
    }
    /// The response body limit, named.
    pub fn named_response(&self) -> NamedLimit {
        NamedLimit { name: "response", value: format!("{} MiB", self.max_response_bytes / (1024 * 1024)) }
    }
    /// The host-side resource limit, named.
    pub fn named_host_resources(&self) -> NamedLimit {
        NamedLimit { name: "host-resources", value: self.max_host_resources.to_string() }
    }
    /// The report size limit, named.
    pub fn named_report(&self) -> NamedLimit {
        NamedLimit { name: "report", value: format!("{} MiB", self.max_report_bytes / (1024 * 1024)) }
    }
    /// The request size limit, named.
    pub fn named_request(&self) -> NamedLimit {
        NamedLimit { name: "request", value: format!("{} MiB", self.max_request_bytes / (1024 * 1024)) }
    }
}

/// The answer-string limit, named.
pub fn named_answer_string() -> NamedLimit {
    NamedLimit { name: "answer-string", value: format!("{} KiB", MAX_ANSWER_STRING_BYTES / 1024) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_defaults_follow_the_input_within_bounds() {
        let mib = 1024 * 1024;
        assert_eq!(default_sync_memory_bytes(0), 128 * mib);
        assert_eq!(default_sync_memory_bytes(100_000), 128 * mib);
        assert_eq!(default_sync_memory_bytes(1_000_000), 128 * mib + 900_000 * SYNC_MEMORY_PER_ACCOUNT);
        assert_eq!(default_sync_memory_bytes(100_000_000), MAX_DEFAULT_MEMORY_BYTES);
        assert_eq!(default_report_bytes(10), 48 * mib);
        assert_eq!(default_report_bytes(1_000_000), 1_000_000 * REPORT_BYTES_PER_DECISION);
        assert_eq!(default_report_bytes(usize::MAX / 1024), 1024 * mib);
    }
}
