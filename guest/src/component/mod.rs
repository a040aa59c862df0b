//! The thin wasm layer: generated bindings, the export glue, and the [`Platform`] over wasi:http.
//! Everything here converts and delegates; the logic lives in [`crate::ops`].

mod convert;
mod http;

use crate::model::{self, LogLevel};
use crate::ops;
use crate::transport::{CallRecord, Flow, HttpRequest, HttpResponse, OnResponse, Platform, TransportError};

wit_bindgen::generate!({
    path: "../wit",
    world: "hostbill:provisioning/hosting-module",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use exports::hostbill::provisioning::module::Guest;
use hostbill::provisioning::log;
use hostbill::provisioning::types as wit;

/// The host, as the operations see it.
struct WasiPlatform {
    /// The monotonic-clock instant (ns) after which the module starts no request and waits for
    /// no reply: the host's deadline minus the reserve of [`crate::budget`].
    stop_at: u64,
}

impl WasiPlatform {
    /// Reads the time budget of the call that starts now.
    fn new() -> Self {
        let left = std::time::Duration::from_millis(hostbill::provisioning::budget::time_left_ms());
        let working = crate::budget::working_time(left);
        let now = wasip2::clocks::monotonic_clock::now();
        WasiPlatform { stop_at: now.saturating_add(u64::try_from(working.as_nanos()).unwrap_or(u64::MAX)) }
    }
}

impl Platform for WasiPlatform {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut result = None;
        http::send_each(std::slice::from_ref(request), 1, Some(self.stop_at), &mut |_, response, _| {
            result = Some(response);
            Flow::Continue(())
        });
        result.expect("one result per request")
    }

    fn send_each(&self, requests: &[HttpRequest], max_in_flight: usize, on_response: &mut OnResponse<'_>) {
        http::send_each(requests, max_in_flight, Some(self.stop_at), on_response)
    }

    fn record_call(&self, record: CallRecord) {
        log::call(&wit::ApiCall {
            method: record.method,
            params: record.params.into_iter().map(|(name, value)| wit::Fact { name, value }).collect(),
            http_status: record.http_status,
            duration_ms: u32::try_from(record.duration.as_millis()).unwrap_or(u32::MAX),
            result_code: record.result_code,
            reply: record.reply,
        });
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
        let level = match level {
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        };
        log::log(level, message);
    }

    fn progress(&self, done: u32, total: u32) {
        log::progress(done, total);
    }
}

struct CloudPeModule;

type OpResult<T> = Result<T, wit::ModuleError>;

impl Guest for CloudPeModule {
    fn info() -> wit::ModuleInfo {
        ops::info().into()
    }

    fn test_connection(app: wit::AppSettings) -> OpResult<wit::ConnectionReport> {
        let checks = ops::test_connection(&WasiPlatform::new(), &app.into())?;
        Ok(wit::ConnectionReport { checks: checks.into_iter().map(Into::into).collect() })
    }

    fn create(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::create(&WasiPlatform::new(), &app.into(), &account.into())?.into())
    }

    fn suspend(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::suspend(&WasiPlatform::new(), &app.into(), &account.into())?.into())
    }

    fn unsuspend(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::unsuspend(&WasiPlatform::new(), &app.into(), &account.into())?.into())
    }

    fn terminate(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::terminate(&WasiPlatform::new(), &app.into(), &account.into())?.into())
    }

    fn sync(
        app: wit::AppSettings,
        accounts: Vec<wit::Account>,
        options: wit::SyncOptions,
    ) -> OpResult<wit::SyncReport> {
        let accounts: Vec<model::Account> = accounts.into_iter().map(Into::into).collect();
        let options = options.into();
        Ok(ops::sync(&WasiPlatform::new(), &app.into(), &accounts, options)?.into())
    }
}

impl exports::hostbill::provisioning::reconciliation::Guest for CloudPeModule {
    fn reconcile(
        app: wit::AppSettings,
        accounts: Vec<wit::ClientAccount>,
        options: wit::SyncOptions,
    ) -> OpResult<wit::Reconciliation> {
        let accounts: Vec<model::ClientAccount> = accounts.into_iter().map(Into::into).collect();
        Ok(ops::reconcile(&WasiPlatform::new(), &app.into(), &accounts, options.into())?.into())
    }
}

export!(CloudPeModule);
