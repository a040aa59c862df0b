//! The thin wasm layer: generated bindings, the export glue, and the [`Platform`] over wasi:http.
//! Everything here converts and delegates; the logic lives in [`crate::ops`].

mod convert;
mod http;

use crate::model::{self, LogLevel};
use crate::ops;
use crate::transport::{HttpRequest, HttpResponse, Platform, TransportError};

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
struct WasiPlatform;

impl Platform for WasiPlatform {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut result = None;
        http::send_each(std::slice::from_ref(request), 1, &mut |_, response| result = Some(response));
        result.expect("one result per request")
    }

    fn send_each(
        &self,
        requests: &[HttpRequest],
        max_in_flight: usize,
        on_response: &mut dyn FnMut(usize, Result<HttpResponse, TransportError>),
    ) {
        http::send_each(requests, max_in_flight, on_response)
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
        let checks = ops::test_connection(&WasiPlatform, &app.into())?;
        Ok(wit::ConnectionReport { checks: checks.into_iter().map(Into::into).collect() })
    }

    fn create(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::create(&WasiPlatform, &app.into(), &account.into())?.into())
    }

    fn suspend(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::suspend(&WasiPlatform, &app.into(), &account.into())?.into())
    }

    fn unsuspend(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::unsuspend(&WasiPlatform, &app.into(), &account.into())?.into())
    }

    fn terminate(app: wit::AppSettings, account: wit::Account) -> OpResult<wit::Outcome> {
        Ok(ops::terminate(&WasiPlatform, &app.into(), &account.into())?.into())
    }

    fn sync(
        app: wit::AppSettings,
        accounts: Vec<wit::Account>,
        options: wit::SyncOptions,
    ) -> OpResult<wit::SyncReport> {
        let accounts: Vec<model::Account> = accounts.into_iter().map(Into::into).collect();
        let options = options.into();
        Ok(ops::sync(&WasiPlatform, &app.into(), &accounts, options)?.into())
    }
}

export!(CloudPeModule);
