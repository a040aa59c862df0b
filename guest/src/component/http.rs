//! HTTP over `wasi:http/outgoing-handler`, with several requests in flight at once: every
//! in-flight request is a small state machine, and `wasi:io/poll` wakes whichever can progress.

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, StreamError};

use crate::config;
use crate::transport::{
    FailureKind, HttpMethod, HttpRequest, HttpResponse, MAX_RESPONSE_BYTES, OnResponse, TransportError,
};

/// Timeouts the module asks for; the host may clamp them further.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(30);
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
        content_type: Option<String>,
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

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
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

    let options = RequestOptions::new();
    // The host may refuse a value it does not support; the request then runs with its defaults.
    let _ = options.set_connect_timeout(Some(nanos(CONNECT_TIMEOUT)));
    let _ = options.set_first_byte_timeout(Some(nanos(FIRST_BYTE_TIMEOUT)));
    let _ = options.set_between_bytes_timeout(Some(nanos(BETWEEN_BYTES_TIMEOUT)));

    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(|e| from_code(&e))?;
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
            let content_type =
                response.headers().get("content-type").first().map(|v| String::from_utf8_lossy(v).into_owned());
            let body = match response.consume() {
                Ok(body) => body,
                Err(()) => return Step::Done(Err(fail("response body unavailable"))),
            };
            let stream = match body.stream() {
                Ok(stream) => stream,
                Err(()) => return Step::Done(Err(fail("response body stream unavailable"))),
            };
            let pollable = stream.subscribe();
            read_available(InFlight::Reading {
                pollable,
                stream,
                body,
                _response: response,
                status,
                content_type,
                bytes: Vec::new(),
            })
        }
        reading @ InFlight::Reading { .. } => read_available(reading),
    }
}

/// Reads what the body stream has without blocking; finishes at end of stream.
fn read_available(state: InFlight) -> Step {
    let InFlight::Reading { pollable, stream, body, _response: response, status, content_type, mut bytes } = state
    else {
        unreachable!("only called while reading")
    };
    let outcome = loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => {
                return Step::Pending(InFlight::Reading {
                    pollable,
                    stream,
                    body,
                    _response: response,
                    status,
                    content_type,
                    bytes,
                });
            }
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_RESPONSE_BYTES {
                    break Err(fail(format!(
                        "the reply exceeded {} MiB; refusing to read more",
                        MAX_RESPONSE_BYTES / (1024 * 1024)
                    )));
                }
            }
            Err(StreamError::Closed) => {
                break Ok(HttpResponse { status, content_type, body: std::mem::take(&mut bytes) });
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
        ErrorCode::ConnectionTerminated => "the server closed the connection".to_string(),
        ErrorCode::ConnectionTimeout => "timed out connecting".to_string(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "timed out waiting for the reply".to_string()
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
        ErrorCode::HttpResponseBodySize(limit) => format!(
            "the reply was larger than the host allows{}",
            limit.map(|l| format!(" ({} MiB)", l / (1024 * 1024))).unwrap_or_default()
        ),
        ErrorCode::InternalError(m) => {
            format!("host error{}", m.as_deref().map(|m| format!(": {m}")).unwrap_or_default())
        }
        other => format!("{other:?}"),
    }
}
