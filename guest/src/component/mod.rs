//! The thin wasm layer: the export glue and the [`Platform`] over wasi:http. Everything here
//! delegates; the logic lives in [`crate::ops`], over the types of [`crate::wit`].

mod http;

use crate::ops;
use crate::transport::{HttpRequest, OnResponse, Platform};
use crate::wit::exports::hostbill::provisioning::streaming_sync::{self, SyncSummary};
use crate::wit::exports::hostbill::provisioning::usage::{self, UsageSummary};
use crate::wit::exports::hostbill::provisioning::{lifecycle, module, reconciliation};
use crate::wit::hostbill::provisioning::{budget, log, sync_output, usage_output};
use crate::wit::{
    Account, AccountContext, ApiCall, AppSettings, Capability, ClientAccount, ConnectionReport, CreateOutcome,
    LinkReview, LogLevel, ModuleError, ModuleInfo, OptionChoice, Outcome, Reconciliation, SyncOptions, SyncReport,
    UsageOptions, UsageQuery,
};

/// The host, as the operations see it.
struct WasiPlatform {
    /// The monotonic-clock instant (ns) after which the module starts no request and waits for
    /// no reply: the host's deadline minus the reserve of [`crate::budget`].
    stop_at: u64,
}

impl WasiPlatform {
    /// Reads the time budget of the call that starts now.
    fn new() -> Self {
        let left = std::time::Duration::from_millis(budget::time_left_ms());
        let working = crate::budget::working_time(left);
        let now = wasip2::clocks::monotonic_clock::now();
        WasiPlatform { stop_at: now.saturating_add(u64::try_from(working.as_nanos()).unwrap_or(u64::MAX)) }
    }
}

impl Platform for WasiPlatform {
    fn send_each(&self, requests: &[HttpRequest], max_in_flight: usize, on_response: &mut OnResponse<'_>) {
        http::send_each(requests, max_in_flight, Some(self.stop_at), on_response)
    }

    fn record_call(&self, call: ApiCall<'_>) {
        log::call(call);
    }

    fn time_left(&self) -> Option<std::time::Duration> {
        let now = wasip2::clocks::monotonic_clock::now();
        Some(std::time::Duration::from_nanos(self.stop_at.saturating_sub(now)))
    }

    fn sleep(&self, duration: std::time::Duration) {
        wasip2::clocks::monotonic_clock::subscribe_duration(duration.as_nanos() as u64).block();
    }

    fn random_u64(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }

    fn log(&self, level: LogLevel, message: &str) {
        log::log(level, message);
    }

    fn progress(&self, done: u32, total: u32) {
        log::progress(done, total);
    }
}

struct CloudPeModule;

type OpResult<T> = Result<T, ModuleError>;

impl module::Guest for CloudPeModule {
    fn info() -> ModuleInfo {
        ops::info()
    }

    fn test_connection(app: AppSettings) -> OpResult<ConnectionReport> {
        ops::test_connection(&WasiPlatform::new(), &app)
    }

    fn create(app: AppSettings, account: Account) -> OpResult<Outcome> {
        ops::create(&WasiPlatform::new(), &app, &account)
    }

    fn suspend(app: AppSettings, account: Account) -> OpResult<Outcome> {
        ops::suspend(&WasiPlatform::new(), &app, &account)
    }

    fn unsuspend(app: AppSettings, account: Account) -> OpResult<Outcome> {
        ops::unsuspend(&WasiPlatform::new(), &app, &account)
    }

    fn terminate(app: AppSettings, account: Account) -> OpResult<Outcome> {
        ops::terminate(&WasiPlatform::new(), &app, &account)
    }

    fn sync(app: AppSettings, accounts: Vec<Account>, options: SyncOptions) -> OpResult<SyncReport> {
        ops::sync(&WasiPlatform::new(), &app, &accounts, options)
    }
}

impl reconciliation::Guest for CloudPeModule {
    fn reconcile(app: AppSettings, accounts: Vec<ClientAccount>, options: SyncOptions) -> OpResult<Reconciliation> {
        ops::reconcile(&WasiPlatform::new(), &app, &accounts, options)
    }
}

impl streaming_sync::Guest for CloudPeModule {
    fn sync(
        app: AppSettings,
        accounts: Vec<Account>,
        options: SyncOptions,
        unchanged_facts: bool,
    ) -> OpResult<SyncSummary> {
        ops::sync_streamed(&WasiPlatform::new(), &app, accounts, options, unchanged_facts, &mut |batch| {
            sync_output::emit(batch)
        })
    }
}

impl usage::Guest for CloudPeModule {
    fn read_usage(
        app: AppSettings,
        queries: Vec<UsageQuery>,
        until_hour: i64,
        options: UsageOptions,
    ) -> OpResult<UsageSummary> {
        ops::read_usage(&WasiPlatform::new(), &app, queries, until_hour, options, &mut |batch| {
            usage_output::emit(batch)
        })
    }
}

impl lifecycle::Guest for CloudPeModule {
    fn create_account(app: AppSettings, request: AccountContext) -> OpResult<CreateOutcome> {
        ops::create_account(&WasiPlatform::new(), &app, &request)
    }

    fn change_package(app: AppSettings, request: AccountContext) -> OpResult<Outcome> {
        ops::change_package(&WasiPlatform::new(), &app, &request)
    }

    fn option_choices(app: AppSettings, name: String) -> OpResult<Vec<OptionChoice>> {
        ops::option_choices(&WasiPlatform::new(), &app, &name)
    }

    fn capabilities(app: AppSettings) -> OpResult<Vec<Capability>> {
        ops::capabilities(&WasiPlatform::new(), &app)
    }

    fn review(app: AppSettings, accounts: Vec<AccountContext>, options: SyncOptions) -> OpResult<LinkReview> {
        ops::review(&WasiPlatform::new(), &app, &accounts, options)
    }
}

crate::wit::export!(CloudPeModule);
