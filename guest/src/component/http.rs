//! HTTP over `wasi:http/outgoing-handler`, with several requests in flight at once: every
//! in-flight request is a small state machine, and `wasi:io/poll` wakes whichever can progress.
//!
//! The module sets no limit of its own on a request: no timeouts (the host applies its connect
//! and read timeouts to a request that leaves them unset) and no response size cap (the host
//! fails a body over its `--max-response-mib`). An error those limits cause says so.

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, StreamError};

use crate::config;
use crate::transport::{FailureKind, HttpMethod, HttpRequest, HttpResponse, OnResponse, TransportError};

/// Largest single read from a response body stream.
const READ_CHUNK: u64 = 64 * 1024;
/// `blocking-write-and-flush` accepts at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;

type Outcome = Result<HttpResponse, TransportError>;

/// An in-flight request. Field order is drop order: a pollable must go before the resource it
/// watches, a stream before its body, a body before its response.
enum InFlight {
    Waiting {
        pollable: Pollable,
        future: FutureIncomingResponse,
    },
    Reading {
        pollable: Pollable,
        stream: InputStream,
        body: IncomingBody,
        _response: IncomingResponse,
        status: u16,
        bytes: Vec<u8>,
    },
}

impl InFlight {
    fn pollable(&self) -> &Pollable {
        match self {
            InFlight::Waiting { pollable, .. } | InFlight::Reading { pollable, .. } => pollable,
        }
    }
}

enum Step {
    Pending(InFlight),
    Done(Outcome),
}

/// Sends `requests` with at most `max_in_flight` outstanding, handing each result (with its
/// request's index) to `on_response` as soon as it is complete. Stops when `on_response` breaks
/// (what is in flight is dropped), and at `stop_at` (a monotonic-clock instant): from then on
/// every request not yet answered gets a deadline error.
pub fn send_each(
    requests: &[HttpRequest],
    max_in_flight: usize,
    stop_at: Option<u64>,
    on_response: &mut OnResponse<'_>,
) {
    let max_in_flight = max_in_flight.max(1);
    // Each in-flight request with the instant (monotonic ns) it was sent.
    let mut in_flight: Vec<(usize, u64, InFlight)> = Vec::new();
    let mut finished: Vec<(usize, u64, Outcome)> = Vec::new();
    let mut next = 0;
    // One timer for the whole batch: it wakes the poll below when the time is up.
    let timer = stop_at.map(monotonic_clock::subscribe_instant);
    loop {
        if stop_at.is_some_and(|at| monotonic_clock::now() >= at) {
            // Abandon what is in flight (dropping a request cancels it) and start nothing more.
            let now = monotonic_clock::now();
            let unanswered = in_flight
                .drain(..)
                .map(|(index, sent, _)| (index, sent))
                .chain((next..requests.len()).map(|i| (i, now)));
            for (index, sent) in unanswered {
                if on_response(index, Err(TransportError::deadline()), since(sent)).is_break() {
                    return;
                }
            }
            return;
        }
        fill_window(requests, max_in_flight, &mut next, &mut in_flight, &mut finished);
        for (index, sent, outcome) in finished.drain(..) {
            if on_response(index, outcome, since(sent)).is_break() {
                return;
            }
        }
        if in_flight.is_empty() {
            if next >= requests.len() {
                break;
            }
            continue;
        }
        let ready = {
            let mut pollables: Vec<&Pollable> = in_flight.iter().map(|(_, _, s)| s.pollable()).collect();
            pollables.extend(timer.as_ref());
            poll::poll(&pollables)
        };
        let mut is_ready = vec![false; in_flight.len()];
        for i in ready {
            if let Some(slot) = is_ready.get_mut(i as usize) {
                *slot = true;
            }
        }
        // Start the replacements of finished requests before handing results over, so the
        // network stays busy while the caller works on them.
        for ((index, sent, state), ready) in std::mem::take(&mut in_flight).into_iter().zip(is_ready) {
            if !ready {
                in_flight.push((index, sent, state));
                continue;
            }
            match advance(state) {
                Step::Pending(state) => in_flight.push((index, sent, state)),
                Step::Done(outcome) => finished.push((index, sent, outcome)),
            }
        }
        fill_window(requests, max_in_flight, &mut next, &mut in_flight, &mut finished);
        for (index, sent, outcome) in finished.drain(..) {
            if on_response(index, outcome, since(sent)).is_break() {
                return;
            }
        }
    }
}

/// Starts requests from `next` until `max_in_flight` are in flight; a request that cannot start
/// goes straight to `finished`.
fn fill_window(
    requests: &[HttpRequest],
    max_in_flight: usize,
    next: &mut usize,
    in_flight: &mut Vec<(usize, u64, InFlight)>,
    finished: &mut Vec<(usize, u64, Outcome)>,
) {
    while in_flight.len() < max_in_flight && *next < requests.len() {
        let sent = monotonic_clock::now();
        match start(&requests[*next]) {
            Ok(state) => in_flight.push((*next, sent, state)),
            Err(e) => finished.push((*next, sent, Err(e))),
        }
        *next += 1;
    }
}

/// Time since the monotonic instant `sent`.
fn since(sent: u64) -> Duration {
    Duration::from_nanos(monotonic_clock::now().saturating_sub(sent))
}

fn fail(message: impl Into<String>) -> TransportError {
    TransportError::other(message)
}

/// Builds and sends one request; writes its form body, if any.
fn start(request: &HttpRequest) -> Result<InFlight, TransportError> {
    let headers = Fields::new();
    if request.form_body.is_some() {
        headers
            .append("content-type", b"application/x-www-form-urlencoded")
            .map_err(|e| fail(format!("invalid header: {e:?}")))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
    };
    let scheme = match request.scheme {
        config::Scheme::Http => Scheme::Http,
        config::Scheme::Https => Scheme::Https,
    };
    outgoing.set_method(&method).map_err(|()| fail("invalid method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| fail("invalid scheme"))?;
    outgoing
        .set_authority(Some(&request.authority))
        .map_err(|()| fail(format!("invalid host name {:?}", request.authority)))?;
    outgoing.set_path_with_query(Some(&request.path_and_query)).map_err(|()| fail("invalid request path"))?;
    let body = outgoing.body().map_err(|()| fail("request body unavailable"))?;
    // No request options: the host's timeouts apply.
    let future = outgoing_handler::handle(outgoing, None).map_err(|e| from_code(&e))?;
    // If the connection fails while the body is written, the write only says "closed"; the
    // response future then carries the real cause (refused, reset, ...), so it is what we report.
    let written = match &request.form_body {
        Some(form) => write_body(&body, form.as_bytes()),
        None => true,
    };
    if written {
        OutgoingBody::finish(body, None).map_err(|e| fail(describe(&e)))?;
    } else {
        drop(body);
    }
    Ok(InFlight::Waiting { pollable: future.subscribe(), future })
}

/// Writes a request body; false if the stream closed early.
fn write_body(body: &OutgoingBody, bytes: &[u8]) -> bool {
    let Ok(stream) = body.write() else { return false };
    bytes.chunks(WRITE_CHUNK).all(|chunk| stream.blocking_write_and_flush(chunk).is_ok())
}

/// Moves a ready request forward: from waiting to reading the body, or from reading to done.
fn advance(state: InFlight) -> Step {
    match state {
        InFlight::Waiting { pollable, future } => {
            let Some(got) = future.get() else {
                return Step::Pending(InFlight::Waiting { pollable, future });
            };
            drop(pollable);
            let response = match got {
                Err(()) => return Step::Done(Err(fail("response already taken"))),
                Ok(Err(code)) => return Step::Done(Err(from_code(&code))),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            let body = match response.consume() {
                Ok(body) => body,
                Err(()) => return Step::Done(Err(fail("response body unavailable"))),
            };
            let stream = match body.stream() {
                Ok(stream) => stream,
                Err(()) => return Step::Done(Err(fail("response body stream unavailable"))),
            };
            let pollable = stream.subscribe();
            read_available(InFlight::Reading { pollable, stream, body, _response: response, status, bytes: Vec::new() })
        }
        reading @ InFlight::Reading { .. } => read_available(reading),
    }
}

/// Reads what the body stream has without blocking; finishes at end of stream.
fn read_available(state: InFlight) -> Step {
    let InFlight::Reading { pollable, stream, body, _response: response, status, mut bytes } = state else {
        unreachable!("only called while reading")
    };
    let outcome = loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => {
                return Step::Pending(InFlight::Reading { pollable, stream, body, _response: response, status, bytes });
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => {
                break Ok(HttpResponse { status, body: std::mem::take(&mut bytes) });
            }
            Err(e) => {
                break Err(fail(format!("reading the reply failed: {}", stream_error(e))));
            }
        }
    };
    // Children before parents: the pollable watches the stream, the stream belongs to the body,
    // the body to the response.
    drop(pollable);
    drop(stream);
    drop(IncomingBody::finish(body));
    drop(response);
    Step::Done(outcome)
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".to_string(),
        StreamError::LastOperationFailed(err) => match wasip2::http::types::http_error_code(&err) {
            Some(code) => describe(&code),
            None => err.to_debug_string(),
        },
    }
}

/// The error for a wasi:http error code, with whether the request could have reached the API.
fn from_code(code: &ErrorCode) -> TransportError {
    let kind = match code {
        ErrorCode::DnsError(_)
        | ErrorCode::DnsTimeout
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTimeout
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsAlertReceived(_) => FailureKind::Unreachable,
        _ => FailureKind::Other,
    };
    TransportError { message: describe(code), kind }
}

/// The error for a reply the host cut at its response limit (`--max-response-mib`), quoting
/// that limit as the host reported it.
fn body_too_large(limit: Option<u64>) -> String {
    match limit {
        Some(limit) => format!(
            "the reply is larger than the host's response limit (body size exceeds limit: {limit} bytes, {} MiB)",
            limit / (1024 * 1024)
        ),
        None => "the reply is larger than the host's response limit".to_string(),
    }
}

/// Words for a wasi:http error code.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => {
            "the host refused this request: it is outside the App's Host URL (scheme, host and port)".to_string()
        }
        ErrorCode::DnsError(e) => {
            format!("DNS lookup failed{}", e.rcode.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())
        }
        ErrorCode::DnsTimeout => "DNS lookup timed out".to_string(),
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::DestinationIpProhibited => "the host refused to connect: the Host URL's name resolves only to a \
            loopback, link-local or cloud-metadata address (write such an address literally in the Host URL if it \
            is really meant)"
            .to_string(),
        ErrorCode::ConnectionTerminated => "the server closed the connection".to_string(),
        ErrorCode::ConnectionTimeout => "timed out connecting (the host's connect timeout)".to_string(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "timed out waiting for the reply (the host's read timeout)".to_string()
        }
        ErrorCode::TlsCertificateError => "the server's TLS certificate is not trusted".to_string(),
        ErrorCode::TlsProtocolError => "TLS handshake failed".to_string(),
        ErrorCode::TlsAlertReceived(a) => {
            format!(
                "TLS alert from the server{}",
                a.alert_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            )
        }
        ErrorCode::HttpProtocolError => "the connection failed mid-reply (reset, or not HTTP)".to_string(),
        ErrorCode::HttpResponseIncomplete => "the reply was cut off".to_string(),
        ErrorCode::HttpResponseBodySize(limit) => body_too_large(*limit),
        ErrorCode::InternalError(m) => {
            format!("host error{}", m.as_deref().map(|m| format!(": {m}")).unwrap_or_default())
        }
        other => format!("{other:?}"),
    }
}
