//! The store state of one operation: WASI with nothing granted (no filesystem, environment,
//! arguments, sockets or inherited stdio), wasi:http behind the [`egress::EgressPolicy`], memory
//! limits, and the module's log records.

pub mod answer;
pub mod decisions;
pub mod egress;
pub mod lift_budget;
pub mod limits;
pub mod origin;
mod pool;
pub mod tls;
pub mod usage;

use std::sync::Arc;

use serde::Serialize;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::hostbill::provisioning::types::{ApiCall, Fact};
use crate::bindings::hostbill::provisioning::{budget, log};
use egress::{EgressPolicy, EgressStop};
use lift_budget::{LiftBudget, kept};
use limits::{LOG_BYTES_LIMIT, Limits, MAX_CALL_RECORDS, MAX_LOG_LIFTED_BYTES, MAX_LOG_MESSAGE_BYTES, MAX_LOG_RECORDS};
pub use usage::Meter;
use usage::{MeteredLimits, Usage};

/// Who wrote a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Module,
    Host,
}

/// One log record for HostBill's system log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    pub level: &'static str,
    pub source: Source,
    pub message: String,
}

/// Per-operation store data.
pub struct SandboxState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub egress: EgressPolicy,
    /// Raised by the first refused request.
    pub stop: Arc<EgressStop>,
    pub limits: MeteredLimits,
    /// What the run used so far (shared with the egress hook's tasks).
    pub usage: Arc<Usage>,
    pub logs: Vec<LogRecord>,
    /// Records dropped after [`MAX_LOG_RECORDS`].
    pub logs_dropped: usize,
    pub progress: Option<crate::progress::Progress>,
    /// The module's info, once it gave it (kept even if a later call traps: it says which App
    /// fields are secret).
    pub module_info: Option<crate::bindings::hostbill::provisioning::types::ModuleInfo>,
    /// The App's call log, when the module keeps one (at most [`MAX_CALL_RECORDS`]).
    pub calls: Vec<ApiCall>,
    /// Call records dropped after [`MAX_CALL_RECORDS`].
    pub calls_dropped: usize,
    /// Bytes the module handed the host through `log.log` and `log.call`
    /// ([`MAX_LOG_LIFTED_BYTES`]).
    pub log_budget: LiftBudget,
    /// When the host stops the current call (`--deadline-secs` after the run began); the module
    /// asks how long it has left through `budget`.
    pub deadline: std::time::Instant,
    /// Where a sync's decisions go (`sync-output.emit`, or a whole result); `None` outside one.
    pub decisions: Option<decisions::DecisionGate>,
    /// Where a usage read's results go (`usage-output.emit`); `None` outside one.
    pub usage_results: Option<decisions::DecisionGate<crate::bindings::hostbill::provisioning::types::AccountUsage>>,
}

impl SandboxState {
    /// A sandbox that grants nothing yet: egress is closed until [`SandboxState::egress`] is set.
    pub fn new(limits: &Limits) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        // Host-side resources live outside the module's memory limit: bound their number and the
        // size of each header set (see `Limits::max_host_resources`).
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_host_resources);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits.max_header_bytes);
        let stop = Arc::new(EgressStop::default());
        let usage = Arc::new(Usage::default());
        SandboxState {
            table,
            wasi: wasi.build(),
            http,
            egress: EgressPolicy::new(None, limits, stop.clone(), usage.clone()),
            stop,
            limits: MeteredLimits {
                inner: wasmtime::StoreLimitsBuilder::new()
                    .memory_size(limits.memory_bytes)
                    .instances(16)
                    .tables(64)
                    .memories(16)
                    .trap_on_grow_failure(true)
                    .build(),
                usage: usage.clone(),
            },
            usage,
            logs: Vec::new(),
            logs_dropped: 0,
            progress: None,
            module_info: None,
            calls: Vec::new(),
            calls_dropped: 0,
            log_budget: LiftBudget::new(LOG_BYTES_LIMIT, "log and call records", MAX_LOG_LIFTED_BYTES),
            deadline: std::time::Instant::now() + limits.deadline,
            decisions: None,
            usage_results: None,
        }
    }

    /// Adds a record, within the log limits: a long message is kept as a copy of its start, and
    /// the (possibly module-sized) message is dropped.
    pub fn push_log(&mut self, level: &'static str, source: Source, message: String) {
        if self.logs.len() >= MAX_LOG_RECORDS {
            self.logs_dropped += 1;
            return;
        }
        let message = kept(message, MAX_LOG_MESSAGE_BYTES, "… [cut]");
        self.logs.push(LogRecord { level, source, message });
    }
}

impl ApiCall {
    /// The record within the log bounds: its reply cut to [`MAX_LOG_MESSAGE_BYTES`], at most
    /// 32 parameters of at most 64 + 1,024 bytes; everything kept is a copy of its bounded
    /// length, and the lifted strings and list are dropped.
    fn bounded(self) -> ApiCall {
        let params = self
            .params
            .into_iter()
            .take(32)
            .map(|p| Fact { name: kept(p.name, 64, "…"), value: kept(p.value, 1024, "…") })
            .collect();
        ApiCall {
            method: kept(self.method, 64, "…"),
            reply: kept(self.reply, MAX_LOG_MESSAGE_BYTES, "…"),
            params,
            ..self
        }
    }

    /// The bytes wasmtime lifted for this record: its strings, and each parameter's and the
    /// record's own size (an empty string still costs its header).
    fn lifted_bytes(&self) -> usize {
        let params: usize =
            self.params.iter().map(|p| std::mem::size_of::<Fact>() + p.name.len() + p.value.len()).sum();
        std::mem::size_of::<ApiCall>() + self.method.len() + self.reply.len() + params
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for SandboxState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl log::Host for SandboxState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log_budget.charge(std::mem::size_of::<LogRecord>() + message.len()).map_err(wasmtime::Error::new)?;
        let level = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.push_log(level, Source::Module, message);
        Ok(())
    }

    fn progress(&mut self, done: u32, total: u32) {
        if let Some(progress) = &mut self.progress {
            progress.update(done, total);
        }
    }

    fn call(&mut self, entry: ApiCall) -> wasmtime::Result<()> {
        self.log_budget.charge(entry.lifted_bytes()).map_err(wasmtime::Error::new)?;
        if self.calls.len() >= MAX_CALL_RECORDS {
            self.calls_dropped += 1;
            return Ok(());
        }
        self.calls.push(entry.bounded());
        Ok(())
    }
}

impl budget::Host for SandboxState {
    fn time_left_ms(&mut self) -> u64 {
        let left = self.deadline.saturating_duration_since(std::time::Instant::now());
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    }
}
impl crate::bindings::latest::hostbill::provisioning::sync_output::Host for SandboxState {
    fn emit(
        &mut self,
        decisions: Vec<crate::bindings::hostbill::provisioning::types::AccountDecision>,
    ) -> wasmtime::Result<()> {
        self.deliver(decisions).map_err(wasmtime::Error::new)
    }
}

impl SandboxState {
    /// Passes a sync's decisions on (see [`decisions::DecisionGate`]).
    pub fn deliver(
        &mut self,
        decisions: Vec<crate::bindings::hostbill::provisioning::types::AccountDecision>,
    ) -> Result<(), decisions::SinkError> {
        let refused = |message: &str| decisions::SinkError { message: message.to_string(), limit: None };
        let (Some(gate), Some(module)) = (self.decisions.as_mut(), self.module_info.as_ref()) else {
            return Err(refused("the module was stopped: it emitted sync decisions outside a sync"));
        };
        gate.deliver(module, decisions)
    }
}

impl crate::bindings::latest::hostbill::provisioning::usage_output::Host for SandboxState {
    fn emit(
        &mut self,
        results: Vec<crate::bindings::hostbill::provisioning::types::AccountUsage>,
    ) -> wasmtime::Result<()> {
        let refused = |message: &str| decisions::SinkError { message: message.to_string(), limit: None };
        let (Some(gate), Some(module)) = (self.usage_results.as_mut(), self.module_info.as_ref()) else {
            return Err(wasmtime::Error::new(refused("the module was stopped: it emitted usage outside a usage read")));
        };
        gate.deliver(module, results).map_err(wasmtime::Error::new)
    }
}
