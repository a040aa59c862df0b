//! One operation, typed: the parsed [`Request`] (which operation, on what), the module call in
//! the sandbox, and its typed result ([`Ran`]); `report/build.rs` turns that into the report.

use std::time::Instant;

use crate::bindings::hostbill::provisioning::types as wit;
use crate::cli::{Command, ReadArgs, Strategy};
use crate::request::{
    self, AccountRequest, AppRequest, InvalidRow, LifecycleRequest, OptionRequest, ReconcileRequest, RequestError,
    SyncRequest,
};
use crate::request_usage;
use crate::runtime::{Fault, Runtime};
use crate::sandbox::SandboxState;
use crate::sandbox::answer::{
    Asked, Violation, check_capabilities, check_choices, check_created, check_reconciliation, check_review,
};
use crate::sandbox::decisions::{DecisionGate, SharedSink, SinkError};
use crate::sandbox::limits::Limits;
use crate::scrub::Scrubber;
use crate::secrets::secrets;

/// A parsed request, ready to run: the operation and what it runs on.
pub enum Request {
    /// A command that only loads the module and asks its `info`.
    Describe(Describe),
    TestConnection(wit::AppSettings),
    Account(AccountAction, wit::AppSettings, wit::Account),
    /// `create` and `change-package`: the account with its client's email and product options.
    Lifecycle(LifecycleAction, wit::AppSettings, wit::AccountContext),
    /// `option-choices`: the product option named.
    OptionChoices(wit::AppSettings, String),
    Sync(SyncJob),
    Reconcile(wit::AppSettings, Vec<wit::AccountContext>, wit::SyncOptions),
    Usage(UsageJob),
}

/// A usage read: the valid accounts go to the module with their windows; the invalid rows, each
/// with its place in the request, get their `error` rows from the host.
pub struct UsageJob {
    pub app: wit::AppSettings,
    /// The end of every window (Unix seconds, a closed hour).
    pub until: i64,
    pub queries: Vec<wit::UsageQuery>,
    pub options: wit::UsageOptions,
    pub invalid: Vec<(usize, InvalidRow)>,
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
    Suspend,
    Unsuspend,
    Terminate,
}

/// The operations on one account that read its context (since 2.4.0: `lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    /// `lifecycle.create-account`; a module without `lifecycle` runs `module.create`.
    Create,
    /// `lifecycle.change-package`; a module without `lifecycle` cannot.
    ChangePackage,
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
    pub fn printing(&self) -> SyncPrinting {
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
        let lifecycle = |action| -> Result<Request, RequestError> {
            let (app, context) = request::parse::<LifecycleRequest>(stdin)?.context();
            Ok(Request::Lifecycle(action, app, context))
        };
        Ok(match command {
            Command::Info => Request::Describe(Describe::Info),
            Command::Precompile => Request::Describe(Describe::Precompile),
            Command::Install(_) => Request::Describe(Describe::Install),
            Command::Rollback => Request::Describe(Describe::Rollback),
            Command::TestConnection | Command::Doctor(_) => {
                Request::TestConnection(request::parse::<AppRequest>(stdin)?.app)
            }
            Command::Create => lifecycle(LifecycleAction::Create)?,
            Command::ChangePackage => lifecycle(LifecycleAction::ChangePackage)?,
            Command::OptionChoices => {
                let r: OptionRequest = request::parse(stdin)?;
                Request::OptionChoices(r.app, r.option)
            }
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
            Command::Usage(args) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let r = request_usage::parse(stdin, now)?;
                Request::Usage(UsageJob {
                    app: r.app,
                    until: r.until,
                    queries: r.queries,
                    options: wit::UsageOptions {
                        max_concurrency: args.max_concurrency,
                        max_attempts: args.max_attempts,
                    },
                    invalid: r.invalid,
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
            Request::Lifecycle(LifecycleAction::Create, ..) => "create",
            Request::Lifecycle(LifecycleAction::ChangePackage, ..) => "change-package",
            Request::OptionChoices(..) => "option-choices",
            Request::Account(AccountAction::Suspend, ..) => "suspend",
            Request::Account(AccountAction::Unsuspend, ..) => "unsuspend",
            Request::Account(AccountAction::Terminate, ..) => "terminate",
            Request::Sync(_) => "sync",
            Request::Reconcile(..) => "reconcile",
            Request::Usage(_) => "usage",
        }
    }

    /// The App of the request, if it has one.
    pub fn app(&self) -> Option<&wit::AppSettings> {
        match self {
            Request::Describe(_) => None,
            Request::TestConnection(app)
            | Request::Account(_, app, _)
            | Request::Lifecycle(_, app, _)
            | Request::OptionChoices(app, _)
            | Request::Sync(SyncJob { app, .. })
            | Request::Reconcile(app, ..)
            | Request::Usage(UsageJob { app, .. }) => Some(app),
        }
    }

    /// For a sync (or a usage read), how many account rows it holds (valid or not): its default
    /// limits follow it.
    pub fn sync_rows(&self) -> Option<usize> {
        match self {
            Request::Sync(job) => Some(job.accounts.len() + job.invalid.len()),
            Request::Usage(job) => Some(job.queries.len() + job.invalid.len()),
            _ => None,
        }
    }
}

/// The contract version that added `usage`.
const USAGE_SINCE: &str = "2.3.0";
/// The contract version that added `lifecycle` (`change-package`, `option-choices`).
const LIFECYCLE_SINCE: &str = "2.4.0";

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
    /// A 2.4 module's `create`: the outcome and the remote account linked.
    Created(Result<wit::CreateOutcome, wit::ModuleError>),
    /// A connection test, and (a 2.4 module whose checks all passed) its capability probe.
    Checks(Result<wit::ConnectionReport, wit::ModuleError>, Option<Result<Vec<wit::Capability>, wit::ModuleError>>),
    /// `option-choices`.
    Choices(Result<Vec<wit::OptionChoice>, wit::ModuleError>),
    /// A sync, streamed or whole: its decisions went to the decision sink as they came.
    Sync(Result<SyncDone, wit::ModuleError>, SyncPrinting),
    Reconciliation(Result<wit::Reconciliation, wit::ModuleError>),
    /// A 2.4 module's reconciliation, with proposed links and group drift.
    Review(Result<wit::LinkReview, wit::ModuleError>),
    /// The module was built before the operation existed (contract 2.0).
    Unsupported(&'static str),
    /// A usage read: its results went to the usage sink as they came.
    Usage(Result<UsageDone, wit::ModuleError>),
    /// The module targets a contract older than the operation: the version it targets, and the
    /// first that has the operation.
    NotInContract {
        operation: &'static str,
        targets: semver::Version,
        needs: &'static str,
    },
}

/// What a usage read that returned did: the results it says it emitted, and its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageDone {
    pub accounts: u64,
    pub requests: u32,
}

/// What a sync that returned did: the decisions it says it made, and its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncDone {
    pub decisions: u64,
    pub requests: u32,
}

/// A module run, typed: what the report (`report/build.rs`) and `doctor` read.
pub struct Ran {
    pub operation: &'static str,
    /// The module's info and answer, or why it did not answer.
    pub result: Result<(wit::ModuleInfo, Output), Fault>,
    /// The sandbox after the run: log records, call log, egress refusals, usage, decisions.
    pub state: SandboxState,
    pub elapsed_ms: u64,
    /// How many accounts the request held (a reconciliation reports it).
    pub accounts: usize,
}

/// Runs `request` through `runtime`; returns the typed result and the scrubber for its output.
/// A sync's decisions go to `sink` (checked against the request on the way: see
/// [`crate::sandbox::decisions`]); a sync without one is refused.
pub async fn run(
    runtime: &Runtime,
    request: Request,
    limits: &Limits,
    sink: Option<SharedSink>,
    usage_sink: Option<SharedSink<wit::AccountUsage>>,
) -> (Ran, Scrubber) {
    let operation = request.name();
    let started = Instant::now();
    let not_in_contract =
        |operation| Output::NotInContract { operation, targets: runtime.version().clone(), needs: LIFECYCLE_SINCE };
    let (result, store) = runtime
        // `app`: the request's App with its endpoint URL in the host's normal form (`endpoint.rs`).
        .run(operation, request.app(), limits, async |module, store, app| {
            let m = module.core.hostbill_provisioning_module();
            Ok(match &request {
                Request::Describe(_) => Output::Info,
                Request::TestConnection(requested) => {
                    let app = app.unwrap_or(requested);
                    let checks = m.call_test_connection(&mut *store, app).await?;
                    let passed = checks.as_ref().is_ok_and(|r| r.checks.iter().all(|c| c.passed));
                    let capabilities = match &module.lifecycle {
                        Some(lifecycle) if passed => {
                            let probe = lifecycle.call_capabilities(&mut *store, app).await?;
                            if let Ok(list) = &probe {
                                check_capabilities(list).map_err(|v| stopped(store, v))?;
                            }
                            Some(probe)
                        }
                        _ => None,
                    };
                    Output::Checks(checks, capabilities)
                }
                Request::Account(action, requested, account) => {
                    let app = app.unwrap_or(requested);
                    Output::Outcome(match action {
                        AccountAction::Suspend => m.call_suspend(&mut *store, app, account).await?,
                        AccountAction::Unsuspend => m.call_unsuspend(&mut *store, app, account).await?,
                        AccountAction::Terminate => m.call_terminate(&mut *store, app, account).await?,
                    })
                }
                Request::Lifecycle(action, requested, context) => {
                    let app = app.unwrap_or(requested);
                    match (action, &module.lifecycle) {
                        (LifecycleAction::Create, Some(lifecycle)) => {
                            let created = lifecycle.call_create_account(&mut *store, app, context).await?;
                            if let Ok(created) = &created {
                                check_created(created).map_err(|v| stopped(store, v))?;
                            }
                            Output::Created(created)
                        }
                        (LifecycleAction::Create, None) => {
                            Output::Outcome(m.call_create(&mut *store, app, &context.account).await?)
                        }
                        (LifecycleAction::ChangePackage, Some(lifecycle)) => {
                            Output::Outcome(lifecycle.call_change_package(&mut *store, app, context).await?)
                        }
                        (LifecycleAction::ChangePackage, None) => not_in_contract("change-package"),
                    }
                }
                Request::OptionChoices(requested, name) => match &module.lifecycle {
                    Some(lifecycle) => {
                        let choices =
                            lifecycle.call_option_choices(&mut *store, app.unwrap_or(requested), name).await?;
                        if let Ok(list) = &choices {
                            check_choices(list).map_err(|v| stopped(store, v))?;
                        }
                        Output::Choices(choices)
                    }
                    None => not_in_contract("option-choices"),
                },
                Request::Sync(job) => {
                    let app = app.unwrap_or(&job.app);
                    let sink = sink.clone().ok_or_else(|| wasmtime::Error::msg("a sync needs a decision sink"))?;
                    let asked = Asked::new(job.accounts.iter().map(|a| a.id));
                    store.data_mut().decisions = Some(DecisionGate::new(asked, sink));
                    let done = match &module.streaming_sync {
                        Some(streaming) => streaming
                            .call_sync(&mut *store, app, &job.accounts, job.options, !job.omit_unchanged_facts)
                            .await?
                            .map(|s| SyncDone { decisions: s.decisions, requests: s.requests }),
                        None => match m.call_sync(&mut *store, app, &job.accounts, job.options).await? {
                            Ok(whole) => {
                                let done =
                                    SyncDone { decisions: whole.decisions.len() as u64, requests: whole.requests };
                                store.data_mut().deliver(whole.decisions)?;
                                Ok(done)
                            }
                            Err(e) => Err(e),
                        },
                    };
                    Output::Sync(done, job.printing())
                }
                Request::Reconcile(requested, accounts, options) => {
                    let app = app.unwrap_or(requested);
                    let asked = Asked::new(accounts.iter().map(|a| a.account.id));
                    match (&module.lifecycle, &module.reconciliation) {
                        (Some(lifecycle), _) => {
                            let answer = lifecycle.call_review(&mut *store, app, accounts, *options).await?;
                            if let Ok(review) = &answer {
                                check_reconciliation(&review.reconciliation, &asked)
                                    .and_then(|()| check_review(review, &asked))
                                    .map_err(|v| stopped(store, v))?;
                            }
                            Output::Review(answer)
                        }
                        (None, Some(r)) => {
                            let accounts: Vec<wit::ClientAccount> = accounts.iter().cloned().map(Into::into).collect();
                            let answer = r.call_reconcile(&mut *store, app, &accounts, *options).await?;
                            if let Ok(reconciliation) = &answer {
                                check_reconciliation(reconciliation, &asked).map_err(|v| stopped(store, v))?;
                            }
                            Output::Reconciliation(answer)
                        }
                        (None, None) => Output::Unsupported("reconcile (added in hostbill:provisioning 2.1.0)"),
                    }
                }
                Request::Usage(job) => match &module.usage {
                    Some(usage) => {
                        let app = app.unwrap_or(&job.app);
                        let sink =
                            usage_sink.clone().ok_or_else(|| wasmtime::Error::msg("usage needs a result sink"))?;
                        let asked = Asked::new(job.queries.iter().map(|q| q.account.id));
                        store.data_mut().usage_results = Some(DecisionGate::new(asked, sink));
                        let done = usage
                            .call_read_usage(&mut *store, app, &job.queries, job.until, job.options)
                            .await?
                            .map(|s| UsageDone { accounts: s.accounts, requests: s.requests });
                        Output::Usage(done)
                    }
                    None => Output::NotInContract {
                        operation: "usage",
                        targets: runtime.version().clone(),
                        needs: USAGE_SINCE,
                    },
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
    (Ran { operation, result, state: store.into_data(), elapsed_ms, accounts }, scrubber)
}

/// The error that stops a module whose answer broke the contract (`sandbox/answer.rs`).
fn stopped(store: &wasmtime::Store<SandboxState>, violation: Violation) -> wasmtime::Error {
    wasmtime::Error::new(SinkError {
        message: violation.stopped(store.data().module_info.as_ref()),
        limit: violation.limit(),
    })
}
