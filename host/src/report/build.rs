//! The report of a module run, built in one place from its typed result ([`Ran`]): the payload
//! of each answer, the error of a fault or a module error, and what every report carries (meter,
//! warnings, call log, logs).

use serde_json::{Map, Value, json};

use super::{Decisions, ErrorKind, ErrorReport, ModuleRef, Report};
use crate::bindings::WIT_PACKAGE;
use crate::bindings::hostbill::provisioning::types as wit;
use crate::operation::{Output, Ran};
use crate::request::InvalidRow;
use crate::runtime::{Fault, Runtime};
use crate::sandbox::limits::{Limits, MAX_ANSWER_STRING_BYTES};
use crate::sandbox::{SandboxState, Source};

impl Report {
    /// The report of `ran`.
    pub fn of(ran: Ran, runtime: &Runtime, limits: &Limits) -> Report {
        let Ran { operation, result, state, elapsed_ms, invalid, accounts, stream } = ran;
        let mut report = Report::new(operation);
        report.stream = stream;
        match result {
            Err(fault) => {
                report.error = Some(match fault {
                    Fault::Refused(m) => ErrorReport::new(ErrorKind::ModuleRefused, m),
                    Fault::Trapped { message, limit } => {
                        ErrorReport::new(ErrorKind::ModuleTrapped, message).with_limit(limit)
                    }
                });
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
            }
            Ok((info, output)) => {
                report.module = Some(ModuleRef { name: info.name.clone(), version: info.version.clone() });
                if operation == "precompile" {
                    report.payload.insert("compiled".into(), json!({"source": format!("{:?}", runtime.source())}));
                }
                fill(&mut report, &info, runtime, limits, output, invalid, accounts, elapsed_ms);
            }
        }
        report.meter = Some(state.usage.meter(elapsed_ms));
        // The App's endpoint as the host read it (`endpoint.rs`): the one origin the module may reach.
        if let Some(origin) = state.egress.allowed() {
            report.payload.insert("endpoint".into(), json!(origin.to_string()));
        }
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
        collect_logs(&mut report, state);
        report
    }
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

pub(crate) fn decision_longest(d: &wit::Decision) -> usize {
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
        Output::Sync(Ok(_), _) | Output::StreamedSync(Ok(_), _) => 0,
        Output::Outcome(Err(e))
        | Output::Checks(Err(e))
        | Output::Sync(Err(e), _)
        | Output::StreamedSync(Err(e), _) => error_longest(e),
    }
}

/// Puts a module's answer into the report: its payload, or its error.
#[allow(clippy::too_many_arguments)]
fn fill(
    report: &mut Report,
    info: &wit::ModuleInfo,
    runtime: &Runtime,
    limits: &Limits,
    output: Output,
    invalid: Vec<(usize, InvalidRow)>,
    accounts: usize,
    elapsed_ms: u64,
) {
    let p = &mut report.payload;
    match output {
        Output::Info => {
            p.insert("info".into(), info_json(info, runtime, limits));
            if let Some(warning) = metadata_mismatch(info, runtime.metadata()) {
                tracing::warn!("{warning}");
                report.logs.push(crate::sandbox::LogRecord { level: "warn", source: Source::Host, message: warning });
            }
        }
        Output::Outcome(Ok(outcome)) => {
            p.insert(
                "outcome".into(),
                json!({"message": outcome.message, "facts": facts(&outcome.facts), "changed_remote": outcome.changed_remote}),
            );
        }
        Output::Checks(Ok(checks)) => {
            let failed: Vec<String> =
                checks.checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
            p.insert(
                "checks".into(),
                checks.checks.iter().map(|c| json!({"name": c.name, "passed": c.passed, "detail": c.detail})).collect(),
            );
            if !failed.is_empty() {
                report.error = Some(ErrorReport::new(ErrorKind::ConnectionCheckFailed, failed.join("; ")));
            }
        }
        Output::Sync(Ok(sync), printing) => {
            let summary = sync_summary(&sync, invalid.len(), elapsed_ms);
            print_summary(&summary, elapsed_ms, printing.dry_run);
            p.insert("dry_run".into(), Value::Bool(printing.dry_run));
            p.insert("summary".into(), summary);
            report.decisions = Some(Decisions {
                report: sync,
                dry_run: printing.dry_run,
                unchanged_facts: printing.unchanged_facts,
                invalid,
            });
        }
        Output::StreamedSync(Ok(done), printing) => {
            let (tally, given, invalid) = match &report.stream {
                Some(stream) => stream.lock().map(|s| (s.tally(), s.accounts(), s.invalid_rows())).unwrap_or_default(),
                None => Default::default(),
            };
            let summary = json!({
                "accounts": given + invalid,
                "unchanged": tally.unchanged,
                "change": tally.change,
                "skipped": tally.skipped,
                "error": tally.failed + invalid,
                "requests": done.requests,
                "elapsed_ms": elapsed_ms,
                "peak_rss_kib": peak_rss_kib(),
            });
            print_summary(&summary, elapsed_ms, printing.dry_run);
            p.insert("dry_run".into(), Value::Bool(printing.dry_run));
            p.insert("summary".into(), summary);
            if tally.emitted != given || done.decisions != given as u64 {
                report.error = Some(ErrorReport::new(
                    ErrorKind::ModuleTrapped,
                    format!(
                        "the module decided {} of the {given} accounts (it said {}): the report is incomplete",
                        tally.emitted, done.decisions
                    ),
                ));
            }
        }
        Output::Reconciliation(Ok(r)) => {
            let mut json = reconciliation_json(&r);
            json["counts"]["accounts"] = json!(accounts);
            p.insert("reconciliation".into(), json);
        }
        Output::Unsupported(what) => {
            report.error = Some(ErrorReport::new(
                ErrorKind::ModuleRefused,
                format!("the module ({} {}) does not implement {what}: install a newer one", info.name, info.version),
            ));
        }
        Output::Outcome(Err(e))
        | Output::Checks(Err(e))
        | Output::Sync(Err(e), _)
        | Output::StreamedSync(Err(e), _)
        | Output::Reconciliation(Err(e)) => {
            report.error = Some(e.into());
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
fn collect_logs(report: &mut Report, state: SandboxState) {
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
    }
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
/// The sync's one summary line on stderr.
fn print_summary(summary: &Value, elapsed_ms: u64, dry_run: bool) {
    crate::scrub::stderr_line(&format!(
        "sync: {} accounts: {} change, {} unchanged, {} skipped, {} error; {} requests in {:.2} s{}",
        summary["accounts"],
        summary["change"],
        summary["unchanged"],
        summary["skipped"],
        summary["error"],
        summary["requests"],
        elapsed_ms as f64 / 1000.0,
        if dry_run { " (dry run: nothing to apply)" } else { "" }
    ));
}

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
