//! Runs one command: parses its request, calls the module in the sandbox, and turns the result
//! into a [`Report`] and an [`Exit`] code.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::bindings::WIT_PACKAGE;
use crate::bindings::hostbill::provisioning::types as wit;
use crate::cli::{Command, ReadArgs, Strategy};
use crate::report::{Decisions, ErrorKind, ErrorReport, Exit, ModuleRef, Report};
use crate::request::{self, AccountRequest, AppRequest, InvalidRow, ReconcileRequest, SyncRequest};
use crate::runtime::{Fault, Runtime};
use crate::sandbox::limits::{Limits, MAX_ANSWER_STRING_BYTES};
use crate::sandbox::{SandboxState, Source};
use crate::scrub::Scrubber;

/// A parsed request, ready to run.
pub enum Request {
    None,
    App(wit::AppSettings),
    Account(wit::AppSettings, wit::Account),
    /// A sync: the valid accounts go to the module; the invalid rows, each with its place in the
    /// request, get their `error` decisions from the host.
    Sync(wit::AppSettings, Vec<wit::Account>, wit::SyncOptions, DryRun, Vec<(usize, InvalidRow)>),
    Reconcile(wit::AppSettings, Vec<wit::ClientAccount>, wit::SyncOptions),
}

/// Whether a sync only reports what would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DryRun(pub bool);

impl Request {
    /// Parses stdin for `command`.
    pub fn parse(command: &Command, stdin: &[u8]) -> Result<Request, String> {
        Ok(match command {
            Command::Info | Command::Precompile | Command::Install(_) | Command::Rollback => Request::None,
            Command::TestConnection | Command::Doctor(_) => {
                Request::App(request::parse::<AppRequest>(stdin)?.app.into())
            }
            Command::Create | Command::Suspend | Command::Unsuspend | Command::Terminate => {
                let r: AccountRequest = request::parse(stdin)?;
                Request::Account(r.app.into(), r.account.into())
            }
            Command::Sync(args) => {
                let r: SyncRequest = request::parse(stdin)?;
                let strategy = match args.strategy {
                    Strategy::Auto => wit::SyncStrategy::Auto,
                    Strategy::PageAll => wit::SyncStrategy::PageAll,
                    Strategy::ExactLookups => wit::SyncStrategy::ExactLookups,
                };
                let options = read_options(&args.read, strategy);
                Request::Sync(r.app.into(), r.accounts.valid, options, DryRun(args.dry_run), r.accounts.invalid)
            }
            Command::Reconcile(args) => {
                let r: ReconcileRequest = request::parse(stdin)?;
                let options = read_options(&args.read, wit::SyncStrategy::PageAll);
                Request::Reconcile(r.app.into(), r.accounts.into_iter().map(Into::into).collect(), options)
            }
        })
    }

    /// The App of the request, if it has one.
    pub fn app(&self) -> Option<&wit::AppSettings> {
        match self {
            Request::None => None,
            Request::App(app) | Request::Account(app, _) | Request::Sync(app, ..) | Request::Reconcile(app, ..) => {
                Some(app)
            }
        }
    }
}

/// The module's read options from the command line.
fn read_options(read: &ReadArgs, strategy: wit::SyncStrategy) -> wit::SyncOptions {
    wit::SyncOptions {
        max_concurrency: read.max_concurrency,
        page_size: read.page_size,
        max_attempts: read.max_attempts,
        strategy,
    }
}

/// The result of a module call, before it becomes a report.
enum Output {
    Info,
    Outcome(Result<wit::Outcome, wit::ModuleError>),
    Checks(Result<wit::ConnectionReport, wit::ModuleError>),
    Sync(Result<wit::SyncReport, wit::ModuleError>, DryRun),
    Reconciliation(Result<wit::Reconciliation, wit::ModuleError>),
    /// The module was built before the operation existed (contract 2.0).
    Unsupported(&'static str),
}

/// Runs `request` through `runtime`; returns the report, the scrubber for it, and the exit code.
pub async fn run(
    operation: &'static str,
    runtime: &Runtime,
    mut request: Request,
    limits: &Limits,
) -> (Report, Scrubber, Exit) {
    let started = Instant::now();
    let invalid = match &mut request {
        Request::Sync(.., invalid) => std::mem::take(invalid),
        _ => Vec::new(),
    };
    let (result, store) = runtime
        .run(operation, request.app(), limits, async |module, store| {
            let m = module.core.hostbill_provisioning_module();
            Ok(match &request {
                Request::None => Output::Info,
                Request::App(app) => Output::Checks(m.call_test_connection(&mut *store, app).await?),
                Request::Account(app, account) => Output::Outcome(match operation {
                    "create" => m.call_create(&mut *store, app, account).await?,
                    "suspend" => m.call_suspend(&mut *store, app, account).await?,
                    "unsuspend" => m.call_unsuspend(&mut *store, app, account).await?,
                    "terminate" => m.call_terminate(&mut *store, app, account).await?,
                    other => unreachable!("{other} takes no account"),
                }),
                Request::Sync(app, accounts, options, dry_run, _) => {
                    Output::Sync(m.call_sync(&mut *store, app, accounts, *options).await?, *dry_run)
                }
                Request::Reconcile(app, accounts, options) => match &module.reconciliation {
                    Some(r) => Output::Reconciliation(r.call_reconcile(&mut *store, app, accounts, *options).await?),
                    None => Output::Unsupported("reconcile (added in hostbill:provisioning 2.1.0)"),
                },
            })
        })
        .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;

    let mut report = Report::new(operation);
    let scrubber = secrets(request.app(), store.data().module_info.as_ref());
    let result = result.map(|(info, output)| (info, bound_decisions(output)));
    let exit = match result {
        Err(fault) => {
            report.error = Some(match fault {
                Fault::Refused(m) => ErrorReport::new(ErrorKind::ModuleRefused, m),
                Fault::Trapped { message, limit } => {
                    ErrorReport::new(ErrorKind::ModuleTrapped, message).with_limit(limit)
                }
            });
            Exit::ModuleFault
        }
        Ok((_, output)) if longest_string(&output) > MAX_ANSWER_STRING_BYTES => {
            report.error = Some(
                ErrorReport::new(
                    ErrorKind::ModuleTrapped,
                    format!(
                        "the module answered with a {} KiB string; the host accepts at most {} KiB",
                        longest_string(&output) / 1024,
                        MAX_ANSWER_STRING_BYTES / 1024
                    ),
                )
                .with_limit(Some(crate::sandbox::limits::named_answer_string())),
            );
            Exit::ModuleFault
        }
        Ok((info, output)) => {
            report.module = Some(ModuleRef { name: info.name.clone(), version: info.version.clone() });
            if operation == "precompile" {
                report.payload.insert("compiled".into(), json!({"source": format!("{:?}", runtime.source())}));
            }
            let exit = fill(&mut report, &info, runtime, limits, output, invalid, elapsed_ms);
            if let (Request::Reconcile(_, accounts, _), Some(counts)) =
                (&request, report.payload.get_mut("reconciliation").and_then(|r| r.get_mut("counts")))
            {
                counts["accounts"] = json!(accounts.len());
            }
            exit
        }
    };
    let state = store.into_data();
    report.meter = Some(state.usage.meter(elapsed_ms));
    if let Some(warning) = plain_http_warning(&state) {
        report.payload.insert("warnings".into(), json!([warning]));
    }
    if !state.calls.is_empty() {
        report.payload.insert("calls".into(), calls_json(&state.calls));
        if state.calls_dropped > 0 {
            report.payload.insert("calls_dropped".into(), json!(state.calls_dropped));
        }
    }
    // A module error after a response was cut at the size limit names that limit.
    if state.usage.response_cut.load(std::sync::atomic::Ordering::Relaxed)
        && let Some(error) = report.error.as_mut()
        && error.limit.is_none()
    {
        error.limit = Some(limits.named_response());
    }
    let exit = collect_logs(&mut report, state, exit);
    (report, scrubber, exit)
}

/// The warning for a run that sent requests over plain http: whatever credentials the module
/// put in them (its secret App fields) crossed the network unencrypted. Such a run is allowed
/// (test setups use it), but never silently.
fn plain_http_warning(state: &crate::sandbox::SandboxState) -> Option<String> {
    let origin = state.egress.allowed().filter(|o| o.scheme == "http")?;
    let sent = state.usage.requests.load(std::sync::atomic::Ordering::Relaxed);
    if sent == 0 {
        return None;
    }
    let secrets: Vec<String> = state
        .module_info
        .iter()
        .flat_map(|info| info.app_fields.iter().filter(|f| f.secret).map(|f| format!("\"{}\"", f.label)))
        .collect();
    let what = if secrets.is_empty() { String::new() } else { format!(" and the App's {}", secrets.join(", ")) };
    Some(format!("plain http: {sent} requests{what} crossed the network to {origin} unencrypted; use an https:// URL"))
}

/// A sync's decision holding a string longer than the host accepts becomes that account's error
/// (the others stand); in any other answer such a string makes the run a module fault.
fn bound_decisions(output: Output) -> Output {
    let Output::Sync(Ok(mut sync), dry_run) = output else {
        return output;
    };
    for d in &mut sync.decisions {
        let longest = decision_longest(&d.decision);
        if longest > MAX_ANSWER_STRING_BYTES {
            d.decision = wit::Decision::Failed(wit::ModuleError::Unexpected(format!(
                "the module's decision for this account held a {} KiB string; the host accepts at most {} KiB: \
                 HostBill left unchanged",
                longest / 1024,
                MAX_ANSWER_STRING_BYTES / 1024
            )));
        }
    }
    Output::Sync(Ok(sync), dry_run)
}

fn decision_longest(d: &wit::Decision) -> usize {
    match d {
        wit::Decision::Unchanged(f) => facts_longest(f),
        wit::Decision::Change(c) => facts_longest(&c.facts),
        wit::Decision::Skipped(reason) => reason.len(),
        wit::Decision::Failed(e) => error_longest(e),
    }
}

fn facts_longest(facts: &[wit::Fact]) -> usize {
    facts.iter().map(|f| f.name.len().max(f.value.len())).max().unwrap_or(0)
}

fn error_longest(e: &wit::ModuleError) -> usize {
    use wit::ModuleError::*;
    match e {
        Configuration(m) | NotFound(m) | Authentication(m) | Transport(m) | Unexpected(m) => m.len(),
        RemoteApi(r) => r.message.len(),
    }
}

/// The longest string in a module's answer.
fn longest_string(output: &Output) -> usize {
    match output {
        Output::Info | Output::Unsupported(_) => 0,
        Output::Reconciliation(Ok(r)) => {
            let issues = r.without_id.iter().map(|i| i.detail.len());
            let emails = r.email_differences.iter().map(|d| d.hostbill_email.len().max(d.remote_email.len()));
            let users = r.unlinked_users.iter().map(|u| u.email.as_ref().map_or(0, String::len));
            issues.chain(emails).chain(users).max().unwrap_or(0)
        }
        Output::Reconciliation(Err(e)) => error_longest(e),
        Output::Outcome(Ok(o)) => o.message.len().max(facts_longest(&o.facts)),
        Output::Checks(Ok(c)) => c.checks.iter().map(|c| c.name.len().max(c.detail.len())).max().unwrap_or(0),
        // Each decision was bounded on its own (`bound_decisions`).
        Output::Sync(Ok(_), _) => 0,
        Output::Outcome(Err(e)) | Output::Checks(Err(e)) | Output::Sync(Err(e), _) => error_longest(e),
    }
}

/// Puts a module's output into the report; returns the exit code it implies.
fn fill(
    report: &mut Report,
    info: &wit::ModuleInfo,
    runtime: &Runtime,
    limits: &Limits,
    output: Output,
    invalid: Vec<(usize, InvalidRow)>,
    elapsed_ms: u64,
) -> Exit {
    let p = &mut report.payload;
    match output {
        Output::Info => {
            p.insert("info".into(), info_json(info, runtime, limits));
            if let Some(warning) = metadata_mismatch(info, runtime.metadata()) {
                tracing::warn!("{warning}");
                report.logs.push(crate::sandbox::LogRecord { level: "warn", source: Source::Host, message: warning });
            }
            Exit::Success
        }
        Output::Outcome(Ok(outcome)) => {
            p.insert(
                "outcome".into(),
                json!({"message": outcome.message, "facts": facts(&outcome.facts), "changed_remote": outcome.changed_remote}),
            );
            Exit::Success
        }
        Output::Checks(Ok(checks)) => {
            let failed: Vec<String> =
                checks.checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
            p.insert(
                "checks".into(),
                checks.checks.iter().map(|c| json!({"name": c.name, "passed": c.passed, "detail": c.detail})).collect(),
            );
            if failed.is_empty() {
                Exit::Success
            } else {
                report.error = Some(ErrorReport::new(ErrorKind::ConnectionCheckFailed, failed.join("; ")));
                Exit::OperationFailed
            }
        }
        Output::Sync(Ok(sync), dry_run) => {
            let summary = sync_summary(&sync, invalid.len(), elapsed_ms);
            crate::scrub::stderr_line(&format!(
                "sync: {} accounts: {} change, {} unchanged, {} skipped, {} error; {} requests in {:.2} s{}",
                summary["accounts"],
                summary["change"],
                summary["unchanged"],
                summary["skipped"],
                summary["error"],
                summary["requests"],
                elapsed_ms as f64 / 1000.0,
                if dry_run.0 { " (dry run: nothing to apply)" } else { "" }
            ));
            p.insert("dry_run".into(), Value::Bool(dry_run.0));
            p.insert("summary".into(), summary);
            report.decisions = Some(Decisions { report: sync, dry_run: dry_run.0, invalid });
            Exit::Success
        }
        Output::Reconciliation(Ok(r)) => {
            p.insert("reconciliation".into(), reconciliation_json(&r));
            Exit::Success
        }
        Output::Unsupported(what) => {
            report.error = Some(ErrorReport::new(
                ErrorKind::ModuleRefused,
                format!("the module ({} {}) does not implement {what}: install a newer one", info.name, info.version),
            ));
            Exit::ModuleFault
        }
        Output::Outcome(Err(e)) | Output::Checks(Err(e)) | Output::Sync(Err(e), _) | Output::Reconciliation(Err(e)) => {
            report.error = Some(e.into());
            Exit::OperationFailed
        }
    }
}
/// The App's call log, as the report prints it (scrubbed with the rest of the payload).
fn calls_json(calls: &[wit::ApiCall]) -> Value {
    calls
        .iter()
        .map(|c| {
            json!({
                "method": c.method,
                "params": facts(&c.params),
                "http_status": c.http_status,
                "duration_ms": c.duration_ms,
                "result": c.result_code,
                "reply": c.reply,
            })
        })
        .collect()
}

/// The `reconciliation` of a report: counts, then each list.
fn reconciliation_json(r: &wit::Reconciliation) -> Value {
    json!({
        "counts": {
            "without_id": r.without_id.len(),
            "missing_remote": r.missing_remote.len(),
            "shared_users": r.shared_users.len(),
            "unlinked_users": r.unlinked_users.len(),
            "email_differences": r.email_differences.len(),
            "remote_users": r.remote_users,
        },
        "without_id": r.without_id.iter().map(|i| json!({"account_id": i.account_id, "detail": i.detail})).collect::<Vec<_>>(),
        "missing_remote": r.missing_remote.iter().map(|m| json!({"account_id": m.account_id, "uid": m.uid})).collect::<Vec<_>>(),
        "shared_users": r.shared_users.iter().map(|u| json!({"uid": u.uid, "account_ids": u.account_ids})).collect::<Vec<_>>(),
        "unlinked_users": r.unlinked_users.iter().map(|u| json!({"uid": u.uid, "email": u.email})).collect::<Vec<_>>(),
        "email_differences": r.email_differences.iter().map(|d| json!({
            "account_id": d.account_id, "uid": d.uid, "hostbill_email": d.hostbill_email, "remote_email": d.remote_email,
        })).collect::<Vec<_>>(),
        "requests": r.requests,
    })
}

/// Appends the module's log records and the host's own (egress refusals). A refused request
/// turns the run into an `egress-denied` module fault, whatever the module made of it.
fn collect_logs(report: &mut Report, state: SandboxState, exit: Exit) -> Exit {
    let mut exit = exit;
    // The module's records first, then any the host added while building the report.
    let mut logs = state.logs;
    logs.append(&mut report.logs);
    report.logs = logs;
    if state.logs_dropped > 0 {
        report.logs.push(crate::sandbox::LogRecord {
            level: "warn",
            source: Source::Host,
            message: format!("{} further log records from the module were dropped", state.logs_dropped),
        });
    }
    if let Some(first) = state.egress.denials.first() {
        for denial in &state.egress.denials {
            report.logs.push(crate::sandbox::LogRecord {
                level: "error",
                source: Source::Host,
                message: denial.to_string(),
            });
        }
        if state.egress.denials_dropped > 0 {
            report.logs.push(crate::sandbox::LogRecord {
                level: "error",
                source: Source::Host,
                message: format!("{} further refused requests not listed", state.egress.denials_dropped),
            });
        }
        report.payload.clear();
        report.decisions = None;
        report.error =
            Some(ErrorReport::new(ErrorKind::EgressDenied, format!("the module was stopped: the host {first}")));
        exit = Exit::ModuleFault;
    }
    exit
}

/// Secrets to remove from output: the App password and every field the module marks secret.
/// Without the module's info (it failed to load or run), every free-form App field is treated
/// as secret.
pub fn secrets(app: Option<&wit::AppSettings>, info: Option<&wit::ModuleInfo>) -> Scrubber {
    let Some(app) = app else {
        return Scrubber::default();
    };
    let mut values: Vec<&str> = app.password.as_deref().into_iter().collect();
    match info {
        Some(info) => values.extend(info.app_fields.iter().filter(|u| u.secret).filter_map(|u| app.get(&u.field))),
        None => values.extend(app.free_form()),
    }
    Scrubber::new(values)
}

/// Best-effort secrets from a request that failed to parse, so an error quoting it leaks nothing.
pub fn secrets_of_raw(stdin: &[u8]) -> Scrubber {
    let Ok(value) = serde_json::from_slice::<Value>(stdin) else {
        return Scrubber::default();
    };
    let app = value.get("app");
    let custom = app.and_then(|a| a.get("custom")).and_then(Value::as_object);
    let texts: Vec<String> = ["password", "field1", "field2"]
        .iter()
        .filter_map(|k| app?.get(k)?.as_str().map(str::to_string))
        .chain(custom.into_iter().flat_map(|c| c.values().filter_map(|v| v.as_str().map(str::to_string))))
        .collect();
    Scrubber::new(texts.iter().map(String::as_str))
}

fn facts(facts: &[wit::Fact]) -> Value {
    Value::Object(facts.iter().map(|f| (f.name.clone(), Value::from(f.value.clone()))).collect::<Map<_, _>>())
}

/// This process's peak resident memory so far (Linux `VmHWM`), in KiB; 0 where unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().to_string()))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Counts per decision, requests and time.
fn sync_summary(sync: &wit::SyncReport, invalid: usize, elapsed_ms: u64) -> Value {
    let count = |f: fn(&wit::Decision) -> bool| sync.decisions.iter().filter(|d| f(&d.decision)).count();
    json!({
        "accounts": sync.decisions.len() + invalid,
        "unchanged": count(|d| matches!(d, wit::Decision::Unchanged(_))),
        "change": count(|d| matches!(d, wit::Decision::Change(_))),
        "skipped": count(|d| matches!(d, wit::Decision::Skipped(_))),
        "error": count(|d| matches!(d, wit::Decision::Failed(_))) + invalid,
        "requests": sync.requests,
        "elapsed_ms": elapsed_ms,
        "peak_rss_kib": peak_rss_kib(),
    })
}

fn info_json(info: &wit::ModuleInfo, runtime: &Runtime, limits: &Limits) -> Value {
    let wit_version = runtime.version();
    let previous = crate::install::previous_path(runtime.path());
    json!({
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "wit_package": format!("{WIT_PACKAGE}@{wit_version}"),
        "host_supports": format!("{WIT_PACKAGE} {}", crate::compat::supported_range()),
        "endpoint_field": info.endpoint_field.hostbill_name(),
        "app_fields": info.app_fields.iter().map(|u| json!({
            "field": u.field.hostbill_name(), "label": u.label, "description": u.description,
            "required": u.required, "secret": u.secret,
        })).collect::<Vec<_>>(),
        "component": {
            "file": runtime.path().display().to_string(),
            "signature": runtime.verification().to_json(),
            "metadata": runtime.metadata(),
            "previous": previous.is_file().then(|| json!({
                "file": previous.display().to_string(),
                "metadata": crate::runtime::ComponentMetadata::read(&std::fs::read(&previous).unwrap_or_default()),
            })),
        },
        "permissions": permissions(info, limits),
    })
}

/// What the module will be allowed to do, in the terms an operator decides on.
pub fn permissions(info: &wit::ModuleInfo, limits: &Limits) -> Value {
    let mib = |bytes: usize| format!("{} MiB", bytes / (1024 * 1024));
    json!({
        "network": format!(
            "only the origin (scheme, host, port) of the App's {} field, through wasi:http; no sockets, files, \
             environment or clock beyond time",
            info.endpoint_field.hostbill_name()
        ),
        "reads": info.app_fields.iter().map(|u| u.field.hostbill_name()).collect::<Vec<_>>(),
        "secret": info.app_fields.iter().filter(|u| u.secret).map(|u| u.field.hostbill_name()).collect::<Vec<_>>(),
        "limits": {
            "memory": mib(limits.memory_bytes),
            "deadline": format!("{} s", limits.deadline.as_secs_f64()),
            "response": mib(limits.max_response_bytes),
            "connections": limits.max_connections,
            "host_resources": limits.max_host_resources,
            "request": mib(limits.max_request_bytes),
            "report": mib(limits.max_report_bytes),
        },
    })
}

/// A warning when the component's metadata sections disagree with what the module says of itself.
fn metadata_mismatch(info: &wit::ModuleInfo, metadata: &crate::runtime::ComponentMetadata) -> Option<String> {
    let differs = |label: &str, said: &str, section: &Option<String>| {
        section.as_deref().filter(|s| *s != said).map(|s| format!("{label} {s:?} in the metadata, {said:?} from info"))
    };
    let found: Vec<String> = [
        differs("name", &info.name, &metadata.name.as_ref().map(|n| n.to_string())).filter(|_| {
            // The metadata name is a package-style name (`cloudpe-guest`); compare loosely.
            !metadata.name.as_deref().is_some_and(|n| n.to_ascii_lowercase().contains(&info.name.to_ascii_lowercase()))
        }),
        differs("version", &info.version, &metadata.version),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!found.is_empty()).then(|| format!("the component's metadata disagrees with the module: {}", found.join("; ")))
}
