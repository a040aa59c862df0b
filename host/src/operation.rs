//! One operation, typed: the parsed [`Request`] (which operation, on what), the module call in
//! the sandbox, and its typed result ([`Ran`]); `report/build.rs` turns that into the report.

use std::time::Instant;

use serde_json::Value;

use std::sync::{Arc, Mutex};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::bindings::latest::exports::hostbill::provisioning::streaming_sync::SyncSummary;
use crate::bindings::{APP_COLUMNS, Secrecy};
use crate::cli::{Command, ReadArgs, Strategy};
use crate::report::ModuleRef;
use crate::report::build::decision_longest;
use crate::report::stream::{DecisionStream, SharedStream, StreamSetup};
use crate::request::{self, AccountRequest, AppRequest, InvalidRow, ReconcileRequest, RequestError, SyncRequest};
use crate::runtime::{Fault, Runtime};
use crate::sandbox::SandboxState;
use crate::sandbox::limits::{Limits, MAX_ANSWER_STRING_BYTES};
use crate::scrub::Scrubber;

/// A parsed request, ready to run: the operation and what it runs on.
pub enum Request {
    /// A command that only loads the module and asks its `info`.
    Describe(Describe),
    TestConnection(wit::AppSettings),
    Account(AccountAction, wit::AppSettings, wit::Account),
    Sync(SyncJob),
    Reconcile(wit::AppSettings, Vec<wit::ClientAccount>, wit::SyncOptions),
}

/// The commands that take no stdin and call only the module's `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Describe {
    Info,
    Precompile,
    Install,
    Rollback,
}

/// The operations on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    Create,
    Suspend,
    Unsuspend,
    Terminate,
}

/// A sync: the valid accounts go to the module; the invalid rows, each with its place in the
/// request, get their `error` decisions from the host.
pub struct SyncJob {
    pub app: wit::AppSettings,
    pub accounts: Vec<wit::Account>,
    pub options: wit::SyncOptions,
    /// Only report what would change.
    pub dry_run: bool,
    /// Print `unchanged` decisions without their facts.
    pub omit_unchanged_facts: bool,
    pub invalid: Vec<(usize, InvalidRow)>,
}

impl SyncJob {
    /// How its decisions are printed.
    fn printing(&self) -> SyncPrinting {
        SyncPrinting { dry_run: self.dry_run, unchanged_facts: !self.omit_unchanged_facts }
    }
}

/// How a sync's decisions are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPrinting {
    /// Only report what would change (`would-change` decisions).
    pub dry_run: bool,
    /// `unchanged` decisions carry their facts.
    pub unchanged_facts: bool,
}

impl Request {
    /// Parses stdin for `command` (`doctor` reads an App, as `test-connection` does).
    pub fn parse(command: &Command, stdin: &[u8]) -> Result<Request, RequestError> {
        let account = |action| -> Result<Request, RequestError> {
            let r: AccountRequest = request::parse(stdin)?;
            Ok(Request::Account(action, r.app, r.account.into()))
        };
        Ok(match command {
            Command::Info => Request::Describe(Describe::Info),
            Command::Precompile => Request::Describe(Describe::Precompile),
            Command::Install(_) => Request::Describe(Describe::Install),
            Command::Rollback => Request::Describe(Describe::Rollback),
            Command::TestConnection | Command::Doctor(_) => {
                Request::TestConnection(request::parse::<AppRequest>(stdin)?.app)
            }
            Command::Create => account(AccountAction::Create)?,
            Command::Suspend => account(AccountAction::Suspend)?,
            Command::Unsuspend => account(AccountAction::Unsuspend)?,
            Command::Terminate => account(AccountAction::Terminate)?,
            Command::Sync(args) => {
                let r: SyncRequest = request::parse(stdin)?;
                let strategy = match args.strategy {
                    Strategy::Auto => wit::SyncStrategy::Auto,
                    Strategy::PageAll => wit::SyncStrategy::PageAll,
                    Strategy::ExactLookups => wit::SyncStrategy::ExactLookups,
                };
                Request::Sync(SyncJob {
                    app: r.app,
                    accounts: r.accounts.valid,
                    options: read_options(&args.read, strategy),
                    dry_run: args.dry_run,
                    omit_unchanged_facts: args.omit_unchanged_facts,
                    invalid: r.accounts.invalid,
                })
            }
            Command::Reconcile(args) => {
                let r: ReconcileRequest = request::parse(stdin)?;
                let options = read_options(&args.read, wit::SyncStrategy::PageAll);
                Request::Reconcile(r.app, r.accounts.into_iter().map(Into::into).collect(), options)
            }
        })
    }

    /// The operation's name, as reports print it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Describe(Describe::Info) => "info",
            Request::Describe(Describe::Precompile) => "precompile",
            Request::Describe(Describe::Install) => "install",
            Request::Describe(Describe::Rollback) => "rollback",
            Request::TestConnection(_) => "test-connection",
            Request::Account(AccountAction::Create, ..) => "create",
            Request::Account(AccountAction::Suspend, ..) => "suspend",
            Request::Account(AccountAction::Unsuspend, ..) => "unsuspend",
            Request::Account(AccountAction::Terminate, ..) => "terminate",
            Request::Sync(_) => "sync",
            Request::Reconcile(..) => "reconcile",
        }
    }

    /// The App of the request, if it has one.
    pub fn app(&self) -> Option<&wit::AppSettings> {
        match self {
            Request::Describe(_) => None,
            Request::TestConnection(app)
            | Request::Account(_, app, _)
            | Request::Sync(SyncJob { app, .. })
            | Request::Reconcile(app, ..) => Some(app),
        }
    }

    /// For a sync, how many account rows it holds (valid or not): its default limits follow it.
    pub fn sync_rows(&self) -> Option<usize> {
        match self {
            Request::Sync(job) => Some(job.accounts.len() + job.invalid.len()),
            _ => None,
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

/// The module's answer, typed.
pub enum Output {
    Info,
    Outcome(Result<wit::Outcome, wit::ModuleError>),
    Checks(Result<wit::ConnectionReport, wit::ModuleError>),
    Sync(Result<wit::SyncReport, wit::ModuleError>, SyncPrinting),
    /// A streamed sync (contract 2.2) that wrote decisions: they are in `Ran::stream`.
    StreamedSync(Result<SyncSummary, wit::ModuleError>, SyncPrinting),
    Reconciliation(Result<wit::Reconciliation, wit::ModuleError>),
    /// The module was built before the operation existed (contract 2.0).
    Unsupported(&'static str),
}

/// A module run, typed: what [`crate::report::Report::of`] reports and `doctor` checks.
pub struct Ran {
    pub operation: &'static str,
    /// The module's info and answer (decisions over the string limit already made errors), or
    /// why it did not answer.
    pub result: Result<(wit::ModuleInfo, Output), Fault>,
    /// The sandbox after the run: log records, call log, egress refusals, usage.
    pub state: SandboxState,
    pub elapsed_ms: u64,
    /// A sync's rows the host could not read, by place.
    pub invalid: Vec<(usize, InvalidRow)>,
    /// How many accounts the request held (a reconciliation reports it).
    pub accounts: usize,
    /// A streamed sync's report, started on stdout (also when the module then failed).
    pub stream: Option<SharedStream>,
}

/// Runs `request` through `runtime`; returns the typed result and the scrubber for its output.
pub async fn run(runtime: &Runtime, mut request: Request, limits: &Limits) -> (Ran, Scrubber) {
    let operation = request.name();
    let started = Instant::now();
    let mut invalid = match &mut request {
        Request::Sync(job) => std::mem::take(&mut job.invalid),
        _ => Vec::new(),
    };
    let mut stream: Option<SharedStream> = None;
    let (result, store) = runtime
        .run(operation, request.app(), limits, async |module, store| {
            let m = module.core.hostbill_provisioning_module();
            if let (Request::Sync(job), Some(streaming)) = (&request, &module.streaming_sync) {
                let printing = job.printing();
                let info = store.data().module_info.clone().expect("the module's info is read before the operation");
                let shared = Arc::new(Mutex::new(DecisionStream::new(
                    Box::new(std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout())),
                    StreamSetup {
                        scrub: secrets(Some(&job.app), Some(&info)),
                        module: ModuleRef { name: info.name.clone(), version: info.version.clone() },
                        dry_run: printing.dry_run,
                        unchanged_facts: printing.unchanged_facts,
                        invalid: std::mem::take(&mut invalid),
                        accounts: job.accounts.len(),
                        max_bytes: limits.max_report_bytes,
                    },
                )));
                store.data_mut().decisions = Some(shared.clone());
                stream = Some(shared);
                let result = streaming
                    .call_sync(&mut *store, &job.app, &job.accounts, job.options, printing.unchanged_facts)
                    .await?;
                return Ok(Output::StreamedSync(result, printing));
            }
            Ok(match &request {
                Request::Describe(_) => Output::Info,
                Request::TestConnection(app) => Output::Checks(m.call_test_connection(&mut *store, app).await?),
                Request::Account(action, app, account) => Output::Outcome(match action {
                    AccountAction::Create => m.call_create(&mut *store, app, account).await?,
                    AccountAction::Suspend => m.call_suspend(&mut *store, app, account).await?,
                    AccountAction::Unsuspend => m.call_unsuspend(&mut *store, app, account).await?,
                    AccountAction::Terminate => m.call_terminate(&mut *store, app, account).await?,
                }),
                Request::Sync(job) => {
                    Output::Sync(m.call_sync(&mut *store, &job.app, &job.accounts, job.options).await?, job.printing())
                }
                Request::Reconcile(app, accounts, options) => match &module.reconciliation {
                    Some(r) => Output::Reconciliation(r.call_reconcile(&mut *store, app, accounts, *options).await?),
                    None => Output::Unsupported("reconcile (added in hostbill:provisioning 2.1.0)"),
                },
            })
        })
        .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let scrubber = secrets(request.app(), store.data().module_info.as_ref());
    let accounts = match &request {
        Request::Reconcile(_, accounts, _) => accounts.len(),
        _ => 0,
    };
    let mut state = store.into_data();
    state.decisions = None;
    // A stream that wrote nothing (the module failed first, or had no account to decide) hands
    // its invalid rows back: the report is then an ordinary one.
    if let Some(unstarted) = stream.take_if(|s| s.lock().is_ok_and(|s| !s.started())) {
        invalid = unstarted.lock().map(|mut s| s.take_invalid()).unwrap_or_default();
    }
    let result = result.map(|(info, output)| {
        let output = match output {
            Output::StreamedSync(outcome, printing) if stream.is_none() => {
                Output::Sync(outcome.map(|s| wit::SyncReport { decisions: Vec::new(), requests: s.requests }), printing)
            }
            other => other,
        };
        (info, bound_decisions(output))
    });
    (Ran { operation, result, state, elapsed_ms, invalid, accounts, stream }, scrubber)
}

/// A sync's decision holding a string longer than the host accepts becomes that account's error
/// (the others stand); in any other answer such a string makes the run a module fault.
fn bound_decisions(output: Output) -> Output {
    let Output::Sync(Ok(mut sync), printing) = output else {
        return output;
    };
    sync.decisions.iter_mut().for_each(bound_decision);
    Output::Sync(Ok(sync), printing)
}

/// A decision holding a string longer than the host accepts becomes that account's error.
pub fn bound_decision(d: &mut wit::AccountDecision) {
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

/// Secrets to remove from output: the App password and every field the module marks secret.
/// Without the module's info (it failed to load or run), every free-form App field is treated
/// as secret.
pub fn secrets(app: Option<&wit::AppSettings>, info: Option<&wit::ModuleInfo>) -> Scrubber {
    let Some(app) = app else {
        return Scrubber::default();
    };
    let mut values: Vec<&str> = app.always_secret().collect();
    match info {
        Some(info) => values.extend(declared_secrets(app, info)),
        None => values.extend(app.free_form()),
    }
    let known: Vec<&str> = app.always_secret().chain(info.into_iter().flat_map(|i| declared_secrets(app, i))).collect();
    Scrubber::new(values).with_starts_of(known)
}

/// The values of the App fields `info` declares secret.
fn declared_secrets<'a>(app: &'a wit::AppSettings, info: &'a wit::ModuleInfo) -> impl Iterator<Item = &'a str> {
    info.app_fields.iter().filter(|u| u.secret).filter_map(|u| app.get(&u.field))
}

/// Shortest free-form App value treated as a secret on stderr when no module declared it one:
/// secrets (tokens, passwords, keys) are long, while the values that are not (`on`, `none`, `1`,
/// `EUR`) are ordinary words, whose redaction would garble every stderr line that holds them.
pub const MIN_UNDECLARED_SECRET_CHARS: usize = 8;

/// The secrets scrubbed from stderr: the App's always-secret fields, the fields the module
/// declared secret (any length, once its `info` is known), and every free-form value of at least
/// [`MIN_UNDECLARED_SECRET_CHARS`] characters (before the module says which fields are secret, and
/// after it as a second line).
pub fn stderr_secrets(app: Option<&wit::AppSettings>, info: Option<&wit::ModuleInfo>) -> Scrubber {
    let Some(app) = app else {
        return Scrubber::default();
    };
    let mut values: Vec<&str> = app.always_secret().collect();
    values.extend(app.free_form().filter(|v| v.trim().chars().count() >= MIN_UNDECLARED_SECRET_CHARS));
    let known: Vec<&str> = app.always_secret().chain(info.into_iter().flat_map(|i| declared_secrets(app, i))).collect();
    values.extend(info.into_iter().flat_map(|i| declared_secrets(app, i)));
    Scrubber::new(values).with_starts_of(known)
}

/// Best-effort secrets from a request that failed to parse, so an error quoting it leaks nothing.
pub fn secrets_of_raw(stdin: &[u8]) -> Scrubber {
    let Ok(value) = serde_json::from_slice::<Value>(stdin) else {
        return Scrubber::default();
    };
    let app = value.get("app");
    let custom = app.and_then(|a| a.get("custom")).and_then(Value::as_object);
    let texts: Vec<String> = APP_COLUMNS
        .iter()
        .filter(|c| c.secrecy != Secrecy::Declared)
        .filter_map(|c| app?.get(c.name)?.as_str().map(str::to_string))
        .chain(custom.into_iter().flat_map(|c| c.values().filter_map(|v| v.as_str().map(str::to_string))))
        .collect();
    Scrubber::new(texts.iter().map(String::as_str))
}

#[cfg(test)]
mod stderr_secret_tests {
    use super::*;

    #[test]
    fn stderr_keeps_short_settings_and_hides_long_values_and_declared_secrets() {
        let mut app = wit::AppSettings::empty();
        app.password = Some("pw".into());
        app.field1 = Some("on".into());
        app.field2 = Some("tok1".into());
        app.custom = vec![
            wit::AppSetting { name: "flag".into(), value: "none".into() },
            wit::AppSetting { name: "note".into(), value: "long-free-form-value".into() },
        ];
        let before = stderr_secrets(Some(&app), None);
        let line = "connection on none tok1 pw long-free-form-value";
        assert_eq!(before.text(line), "connection on none tok1 [REDACTED] [REDACTED]");
        let info = wit::ModuleInfo {
            name: "m".into(),
            version: "1".into(),
            description: String::new(),
            app_fields: vec![wit::AppFieldUsage {
                field: wit::AppField::Field2,
                label: "Session".into(),
                description: String::new(),
                required: true,
                secret: true,
            }],
            endpoint_field: wit::AppField::StatusUrl,
        };
        let after = stderr_secrets(Some(&app), Some(&info));
        assert_eq!(after.text(line), "connection on none [REDACTED] [REDACTED] [REDACTED]");
        // The echoed start of a declared secret is removed, not that of a free-form value.
        app.field2 = Some("Cr0Zq8vLw2-session".into());
        let echoed = "session [Cr0Z...] and long... rejected";
        assert_eq!(
            stderr_secrets(Some(&app), Some(&info)).text(echoed),
            "session [[REDACTED]...] and long... rejected"
        );
        assert_eq!(secrets(Some(&app), Some(&info)).text(echoed), "session [[REDACTED]...] and long... rejected");
        // A report the module never described itself in still hides every free-form value.
        assert_eq!(secrets(Some(&app), None).text("on"), "[REDACTED]");
    }
}
