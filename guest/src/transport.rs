//! The one seam between the CloudPe logic and the network: plain request/response values and a
//! trait the wasm layer implements over wasi:http (and tests implement with canned replies).

use std::ops::ControlFlow;
use std::time::Duration;

use crate::config::Scheme;
use crate::wit::{ApiCall, LogLevel};

/// HTTP method of a CloudPe call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

/// One outgoing HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub scheme: Scheme,
    pub authority: String,
    pub path_and_query: String,
    /// `application/x-www-form-urlencoded` body, for POST.
    pub form_body: Option<String>,
}

/// A complete HTTP response. Its size is bounded by the host (`--max-response-mib`), not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why no response arrived. The message is for the admin and names the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub message: String,
    pub kind: FailureKind,
}

/// What a transport failure says about the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection could be made (DNS, refused, connect timeout, TLS): the request never
    /// reached the API.
    Unreachable,
    /// The module's time ran out before the request was sent or its reply read.
    Deadline,
    /// Anything else (reset, timeout waiting for the reply, cut-off reply): the request may have
    /// reached the API.
    Other,
}

impl TransportError {
    /// A failure of kind [`FailureKind::Other`].
    pub fn other(message: impl Into<String>) -> Self {
        TransportError { message: message.into(), kind: FailureKind::Other }
    }

    /// The request was not sent, or its reply not read, before the module's deadline.
    pub fn deadline() -> Self {
        TransportError { message: "not read before the deadline".to_string(), kind: FailureKind::Deadline }
    }
}

/// Whether to go on sending the rest of a batch.
pub type Flow = ControlFlow<()>;

/// What [`Platform::send_each`] hands over per request: its index, its outcome, and how long it
/// took from being sent to its outcome.
pub type OnResponse<'a> = dyn FnMut(usize, Result<HttpResponse, TransportError>, Duration) -> Flow + 'a;

/// What the module needs from its host: HTTP and logging.
///
/// A platform implements [`Platform::send_each`] (the wasm one: several requests in flight) or
/// [`Platform::send`] (one at a time; the default `send_each` sends through it); each default
/// goes through the other, so at least one must be implemented.
pub trait Platform {
    /// Sends one request and reads the whole response.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut result = None;
        self.send_each(std::slice::from_ref(request), 1, &mut |_, response, _| {
            result = Some(response);
            Flow::Continue(())
        });
        result.expect("one result per request")
    }

    /// Sends several requests with at most `max_in_flight` outstanding at once, handing each
    /// result to `on_response` (with the request's index) as soon as it is complete, so the
    /// caller can work on it while the others are still in flight.
    ///
    /// When `on_response` breaks, nothing more is started and what is in flight is abandoned
    /// (those requests get no result). When the module's time runs out ([`Platform::time_left`]
    /// is zero), every request not yet answered gets a [`FailureKind::Deadline`] error.
    fn send_each(&self, requests: &[HttpRequest], max_in_flight: usize, on_response: &mut OnResponse<'_>) {
        let _ = max_in_flight;
        for (index, request) in requests.iter().enumerate() {
            let response = if self.time_left() == Some(Duration::ZERO) {
                Err(TransportError::deadline())
            } else {
                self.send(request)
            };
            if on_response(index, response, Duration::ZERO).is_break() {
                return;
            }
        }
    }

    /// How long the module may still start work and wait for replies (`None`: no limit). The
    /// host's deadline minus a reserve to build and return the result (see [`crate::budget`]).
    fn time_left(&self) -> Option<Duration> {
        None
    }

    /// Waits (between retries).
    fn sleep(&self, duration: Duration);

    /// A random number (for retry jitter).
    fn random_u64(&self) -> u64;

    /// Records a log line for HostBill's system log.
    fn log(&self, level: LogLevel, message: &str);

    /// Records one exchange in the App's call log (only called when the App turned it on).
    /// Secret parameters are already masked.
    fn record_call(&self, call: ApiCall<'_>) {
        let _ = call;
    }

    /// Reports that `done` of `total` requests of a long operation have finished.
    fn progress(&self, done: u32, total: u32) {
        let _ = (done, total);
    }
}
