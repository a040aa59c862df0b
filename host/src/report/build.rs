//! The report of a module run, built in one place from its typed result ([`Ran`]): the body of
//! each answer, the error of a fault or a module error, and what every report carries (meter,
//! warnings, call log, logs).

use std::sync::atomic::Ordering;

use super::*;
use crate::bindings::WIT_PACKAGE;
use crate::operation::{Output, Ran};
use crate::runtime::{Fault, Runtime};
use crate::sandbox::answer::check_strings;
use crate::sandbox::limits::{Limits, named_answer_string};
use crate::sandbox::{SandboxState, Source};
use crate::trust::Verification;

impl Report {
    /// The report of `ran`.
    pub fn of(ran: Ran, runtime: &Runtime, limits: &Limits) -> Report {
        let Ran { operation, result, state, elapsed_ms, accounts } = ran;
        let mut report = Report::new(operation);
        match result {
            Err(Fault::Refused(m)) => report.error = Some(ErrorReport::new(ErrorKind::ModuleRefused, m)),
            Err(Fault::Trapped { message, limit }) => {
                report.error = Some(ErrorReport::new(ErrorKind::ModuleTrapped, message).with_limit(limit));
            }
            Ok((info, output)) => match output.check_strings() {
                Err(message) => {
                    report.error = Some(
                        ErrorReport::new(ErrorKind::ModuleTrapped, message).with_limit(Some(named_answer_string())),
                    );
                }
                Ok(()) => {
                    report.module = Some(ModuleRef::from(&info));
                    fill(&mut report, &info, runtime, limits, output, &state, accounts, elapsed_ms);
                }
            },
        }
        report.meter = state.usage.meter(elapsed_ms);
        // The App's endpoint as the host read it (`endpoint.rs`): the one origin the module may reach.
        report.endpoint = state.egress.allowed().map(ToString::to_string);
        report.warnings.extend(plain_http_warning(&state));
        report.calls = state.calls.iter().map(Call::from).collect();
        report.calls_dropped = state.calls_dropped;
        // A module error after a response was cut at the size limit names that limit.
        if state.usage.response_cut.load(Ordering::Relaxed)
            && let Some(error) = report.error.as_mut()
            && error.limit.is_none()
        {
            error.limit = Some(limits.named_response());
        }
        collect_logs(&mut report, state);
        report
    }
}

impl Output {
    /// Whether the answer holds only strings the host accepts (a sync's decisions were bounded
    /// one by one as they came).
    fn check_strings(&self) -> Result<(), String> {
        match self {
            Output::Info | Output::Unsupported(_) | Output::NotInContract { .. } => Ok(()),
            Output::Usage(Ok(_)) => Ok(()),
            Output::Usage(Err(e)) => check_strings(e),
            Output::Outcome(o) => check_strings(o),
            Output::Created(c) => check_strings(c),
            Output::Checks(c, capabilities) => check_strings(c).and_then(|()| check_strings(capabilities)),
            Output::Choices(c) => check_strings(c),
            Output::Review(r) => check_strings(r),
            Output::Sync(Ok(_), _) => Ok(()),
            Output::Sync(Err(e), _) => check_strings(e),
            Output::Reconciliation(r) => check_strings(r),
        }
    }
}

/// The warning for a run that sent requests over plain http: whatever credentials the module
/// put in them (its secret App fields) crossed the network unencrypted. Such a run is allowed
/// (test setups use it), but never silently.
fn plain_http_warning(state: &SandboxState) -> Option<String> {
    let origin = state.egress.allowed().filter(|o| o.scheme == "http")?;
    let sent = state.usage.requests.load(Ordering::Relaxed);
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

/// Puts a module's answer into the report: its body, or its error.
#[allow(clippy::too_many_arguments)]
fn fill(
    report: &mut Report,
    info: &wit::ModuleInfo,
    runtime: &Runtime,
    limits: &Limits,
    output: Output,
    state: &SandboxState,
    accounts: usize,
    elapsed_ms: u64,
) {
    match output {
        Output::Info if report.operation == "precompile" => {
            let compiled = Compiled { source: format!("{:?}", runtime.source()) };
            report.body = Some(Body::Compile { compiled, info: Box::new(info_of(info, runtime, limits)) });
        }
        Output::Info => {
            report.body = Some(Body::Info { info: Box::new(info_of(info, runtime, limits)), active: None });
            if let Some(warning) = metadata_mismatch(info, runtime.metadata()) {
                tracing::warn!("{warning}");
                report.logs.push(LogRecord { level: "warn", source: Source::Host, message: warning });
            }
        }
        Output::Outcome(Ok(o)) => {
            report.body =
                Some(Body::Outcome(Outcome { message: o.message, facts: o.facts, changed_remote: o.changed_remote }));
        }
        Output::Created(Ok(c)) => {
            let o = c.outcome;
            report.body = Some(Body::Created {
                outcome: Outcome { message: o.message, facts: o.facts, changed_remote: o.changed_remote },
                link: Link { remote_id: c.remote_id, source: link_source(c.source) },
            });
        }
        Output::Checks(Ok(checks), probe) => {
            let failed: Vec<String> =
                checks.checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
            if !failed.is_empty() {
                report.error = Some(ErrorReport::new(ErrorKind::ConnectionCheckFailed, failed.join("; ")));
            }
            let capabilities = match probe {
                Some(Ok(list)) => Some(list.into_iter().map(capability).collect()),
                Some(Err(e)) => {
                    report.warnings.push(probe_failed(&e));
                    None
                }
                None => None,
            };
            let checks =
                checks.checks.into_iter().map(|c| Check { name: c.name, passed: c.passed, detail: c.detail }).collect();
            report.body = Some(Body::Checks { checks, capabilities });
        }
        Output::Choices(Ok(choices)) => {
            report.body =
                Some(Body::Choices(choices.into_iter().map(|c| Choice { value: c.value, label: c.label }).collect()));
        }
        Output::Review(Ok(review)) => {
            let mut r = reconciliation(review.reconciliation, accounts);
            r.counts.proposed_links = Some(review.proposed_links.len());
            r.counts.group_drift = Some(review.group_drift.len());
            r.proposed_links = Some(
                review
                    .proposed_links
                    .into_iter()
                    .map(|l| ProposedLink { account_id: l.account_id, uid: l.uid, email: l.email })
                    .collect(),
            );
            r.group_drift = Some(
                review
                    .group_drift
                    .into_iter()
                    .map(|d| GroupDrift {
                        account_id: d.account_id,
                        uid: d.uid,
                        expected: d.expected,
                        actual: d.actual,
                    })
                    .collect(),
            );
            report.body = Some(Body::Reconciliation(r));
        }
        Output::Sync(Ok(done), printing) => {
            // The counts are the writer's, added as it ends the report.
            let summary =
                Summary { requests: done.requests, elapsed_ms, peak_rss_kib: peak_rss_kib(), ..Default::default() };
            report.body = Some(Body::Sync { dry_run: printing.dry_run, summary });
            let (asked, decided) = state.decisions.as_ref().map(|g| g.progress()).unwrap_or_default();
            if decided != asked || done.decisions != asked as u64 {
                report.error = Some(ErrorReport::new(
                    ErrorKind::ModuleTrapped,
                    format!(
                        "the module decided {decided} of the {asked} accounts (it said {}): the report is incomplete",
                        done.decisions
                    ),
                ));
            }
        }
        Output::Reconciliation(Ok(r)) => report.body = Some(Body::Reconciliation(reconciliation(r, accounts))),
        Output::Unsupported(what) => {
            report.error = Some(ErrorReport::new(
                ErrorKind::ModuleRefused,
                format!("the module ({} {}) does not implement {what}: install a newer one", info.name, info.version),
            ));
        }
        Output::Usage(Ok(done)) => {
            // The counts and sums are the writer's, added as it ends the report.
            report.body = Some(Body::Usage(UsageSummary { requests: done.requests, ..Default::default() }));
            let (asked, answered) = state.usage_results.as_ref().map(|g| g.progress()).unwrap_or_default();
            if answered != asked || done.accounts != asked as u64 {
                report.error = Some(ErrorReport::new(
                    ErrorKind::ModuleTrapped,
                    format!(
                        "the module answered for {answered} of the {asked} accounts (it said {}): the report is incomplete",
                        done.accounts
                    ),
                ));
            }
        }
        Output::NotInContract { operation, targets, needs } => {
            report.error = Some(ErrorReport::new(
                ErrorKind::Unsupported,
                format!(
                    "the module ({} {}) targets {WIT_PACKAGE}@{targets}; {operation} needs {WIT_PACKAGE} {needs} or \
                     later: install a newer module",
                    info.name, info.version
                ),
            ));
        }
        Output::Outcome(Err(e))
        | Output::Created(Err(e))
        | Output::Checks(Err(e), _)
        | Output::Choices(Err(e))
        | Output::Review(Err(e))
        | Output::Sync(Err(e), _)
        | Output::Reconciliation(Err(e))
        | Output::Usage(Err(e)) => {
            report.error = Some(e.into());
        }
    }
}

impl From<&wit::ApiCall> for Call {
    fn from(c: &wit::ApiCall) -> Self {
        Call {
            method: c.method.clone(),
            params: c.params.clone(),
            http_status: c.http_status,
            duration_ms: c.duration_ms,
            result: c.result_code,
            reply: c.reply.clone(),
        }
    }
}

/// The `reconciliation` of a report: counts, then each list.
fn reconciliation(r: wit::Reconciliation, accounts: usize) -> Reconciliation {
    Reconciliation {
        counts: ReconciliationCounts {
            accounts,
            without_id: r.without_id.len(),
            missing_remote: r.missing_remote.len(),
            shared_users: r.shared_users.len(),
            unlinked_users: r.unlinked_users.len(),
            email_differences: r.email_differences.len(),
            remote_users: r.remote_users,
            proposed_links: None,
            group_drift: None,
        },
        without_id: r
            .without_id
            .into_iter()
            .map(|i| AccountIssue { account_id: i.account_id, detail: i.detail })
            .collect(),
        missing_remote: r
            .missing_remote
            .into_iter()
            .map(|m| MissingRemote { account_id: m.account_id, uid: m.uid })
            .collect(),
        shared_users: r
            .shared_users
            .into_iter()
            .map(|u| SharedUser { uid: u.uid, account_ids: u.account_ids })
            .collect(),
        unlinked_users: r.unlinked_users.into_iter().map(|u| UnlinkedUser { uid: u.uid, email: u.email }).collect(),
        email_differences: r
            .email_differences
            .into_iter()
            .map(|d| EmailDifference {
                account_id: d.account_id,
                uid: d.uid,
                hostbill_email: d.hostbill_email,
                remote_email: d.remote_email,
            })
            .collect(),
        proposed_links: None,
        group_drift: None,
        requests: r.requests,
    }
}

/// How a report spells a link's source.
fn link_source(source: wit::LinkSource) -> &'static str {
    match source {
        wit::LinkSource::Existing => "existing",
        wit::LinkSource::ByEmail => "by-email",
        wit::LinkSource::Provisioned => "provisioned",
    }
}

/// How a report spells a capability's state.
pub fn capability_state(state: wit::CapabilityState) -> &'static str {
    match state {
        wit::CapabilityState::Allowed => "allowed",
        wit::CapabilityState::Denied => "denied",
        wit::CapabilityState::Unknown => "unknown",
        wit::CapabilityState::NotProbed => "not-probed",
    }
}

fn capability(c: wit::Capability) -> Capability {
    Capability { name: c.name, method: c.method, state: capability_state(c.state), detail: c.detail }
}

/// The warning of a capability probe that failed (the connection test itself stands).
pub fn probe_failed(e: &wit::ModuleError) -> String {
    let report = ErrorReport::from(e.clone());
    let code = report.code.map(|c| format!(" (result {c})")).unwrap_or_default();
    format!("capability probe failed: {}{code}", report.message)
}

/// Appends the module's log records and the host's own (egress refusals). A refused request
/// turns the run into an `egress-denied` module fault, whatever the module made of it.
fn collect_logs(report: &mut Report, state: SandboxState) {
    // The module's records first, then any the host added while building the report.
    let mut logs = state.logs;
    logs.append(&mut report.logs);
    report.logs = logs;
    let host = |level, message| LogRecord { level, source: Source::Host, message };
    if state.logs_dropped > 0 {
        let dropped = format!("{} further log records from the module were dropped", state.logs_dropped);
        report.logs.push(host("warn", dropped));
    }
    if let Some(first) = state.egress.denials.first() {
        report.logs.extend(state.egress.denials.iter().map(|denial| host("error", denial.to_string())));
        if state.egress.denials_dropped > 0 {
            let dropped = format!("{} further refused requests not listed", state.egress.denials_dropped);
            report.logs.push(host("error", dropped));
        }
        report.body = None;
        report.warnings.clear();
        report.calls.clear();
        report.calls_dropped = 0;
        report.error =
            Some(ErrorReport::new(ErrorKind::EgressDenied, format!("the module was stopped: the host {first}")));
    }
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

fn info_of(info: &wit::ModuleInfo, runtime: &Runtime, limits: &Limits) -> Info {
    let previous = crate::install::previous_path(runtime.path());
    Info {
        name: info.name.clone(),
        version: info.version.clone(),
        description: info.description.clone(),
        wit_package: format!("{WIT_PACKAGE}@{}", runtime.version()),
        host_supports: format!("{WIT_PACKAGE} {}", crate::compat::supported_range()),
        endpoint_field: info.endpoint_field.hostbill_name(),
        app_fields: info
            .app_fields
            .iter()
            .map(|u| AppFieldUse {
                field: u.field.hostbill_name(),
                label: u.label.clone(),
                description: u.description.clone(),
                required: u.required,
                secret: u.secret,
            })
            .collect(),
        component: super::Component {
            file: runtime.path().display().to_string(),
            signature: match runtime.verification() {
                Verification::Verified { key_id } => Signature::Verified { verified: true, key_id: key_id.clone() },
                Verification::Unverified { why } => {
                    Signature::Unverified { verified: false, why: why.clone(), allowed_by: "--allow-unsigned" }
                }
            },
            metadata: runtime.metadata().clone(),
            previous: previous.is_file().then(|| PreviousComponent {
                file: previous.display().to_string(),
                metadata: ComponentMetadata::read(&std::fs::read(&previous).unwrap_or_default()),
            }),
        },
        permissions: permissions(info, limits),
    }
}

/// What the module will be allowed to do, in the terms an operator decides on.
pub fn permissions(info: &wit::ModuleInfo, limits: &Limits) -> Permissions {
    let mib = |bytes: usize| format!("{} MiB", bytes / (1024 * 1024));
    Permissions {
        network: format!(
            "only the origin (scheme, host, port) of the App's {} field, through wasi:http; no sockets, files, \
             environment or clock beyond time",
            info.endpoint_field.hostbill_name()
        ),
        reads: info.app_fields.iter().map(|u| u.field.hostbill_name()).collect(),
        secret: info.app_fields.iter().filter(|u| u.secret).map(|u| u.field.hostbill_name()).collect(),
        limits: PermissionLimits {
            memory: mib(limits.memory_bytes),
            deadline: format!("{} s", limits.deadline.as_secs_f64()),
            response: mib(limits.max_response_bytes),
            connections: limits.max_connections,
            host_resources: limits.max_host_resources,
            request: mib(limits.max_request_bytes),
            report: mib(limits.max_report_bytes),
        },
    }
}

/// A warning when the component's metadata sections disagree with what the module says of itself.
fn metadata_mismatch(info: &wit::ModuleInfo, metadata: &ComponentMetadata) -> Option<String> {
    let differs = |label: &str, said: &str, section: &Option<String>| {
        section.as_deref().filter(|s| *s != said).map(|s| format!("{label} {s:?} in the metadata, {said:?} from info"))
    };
    let found: Vec<String> = [
        differs("name", &info.name, &metadata.name).filter(|_| {
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
