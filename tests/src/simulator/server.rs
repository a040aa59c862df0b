//! The HTTP side: accepts connections on 127.0.0.1, parses GET query strings and POST form
//! bodies, applies latency and faults, and answers with [`cloudpe_sim_api::respond`].
//!
//! Latency costs what it would on a network: one round trip before a new connection is
//! served (the TCP handshake), one more before its TLS handshake, and one per request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use cloudpe_sim_api::{Reply, TransportFault, route};

use super::{RecordedRequest, Shared};

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// The connection must be reset rather than answered.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

/// Accepts connections until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors, or the like: wait rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let connection = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // A second handle on the socket, so a Reset fault can arm SO_LINGER=0: the kernel then
            // sends RST when hyper drops the connection.
            let Ok(std_stream) = stream.into_std() else {
                return;
            };
            let Ok(handle) = std_stream.try_clone() else {
                return;
            };
            let handle = Arc::new(handle);
            let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
                return;
            };
            let (latency, idle_timeout, keepalive_requests) = {
                let state = shared.lock();
                (state.latency, state.idle_timeout, state.keepalive_requests)
            };
            // The TCP handshake's round trip.
            tokio::time::sleep(latency).await;
            let served = Arc::new(AtomicUsize::new(0));
            let service_shared = shared.clone();
            let service = hyper::service::service_fn(move |req| {
                let shared = service_shared.clone();
                let handle = handle.clone();
                let served = served.clone();
                async move {
                    let mut response = respond(req, &shared, &handle, connection).await?;
                    // As nginx's `keepalive_requests`: the last answer a connection gets says so.
                    let count = served.fetch_add(1, Ordering::SeqCst) + 1;
                    if keepalive_requests.is_some_and(|max| count >= max) {
                        response.headers_mut().insert(hyper::header::CONNECTION, "close".parse().expect("valid"));
                    }
                    Ok::<_, ResetConnection>(response)
                }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.keep_alive(true);
            if let Some(idle) = idle_timeout {
                // Waiting for the next request's head longer than this closes the connection.
                http.timer(TokioTimer::new()).header_read_timeout(idle);
            }
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    // The TLS handshake's round trip.
                    tokio::time::sleep(latency).await;
                    // A failed handshake (the client does not trust us) just ends the connection.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        shared.tls_handshakes.fetch_add(1, Ordering::SeqCst);
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}

/// Every response body: whole, or streamed (the huge-body fault).
type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("valid response")
}

/// A body of `left` spaces, produced 64 KiB at a time and never held whole, then `tail`.
struct Spaces {
    left: u64,
    tail: Option<Bytes>,
}

impl hyper::body::Body for Spaces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(self.tail.take().map(|tail| Ok(hyper::body::Frame::data(tail))));
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![b' '; n as usize])))))
    }
}

/// A body that sends its first bytes, then nothing more, ever.
struct Stalled {
    started: bool,
}

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.started {
            return std::task::Poll::Pending;
        }
        self.started = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"{\"result\": 0, \"array\": [")))))
    }
}

async fn respond(
    req: Request<Incoming>,
    shared: &Shared,
    socket: &StdTcpStream,
    connection: usize,
) -> Result<Response<Body>, ResetConnection> {
    let _counted = InFlight::enter(shared);
    let http_method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(text(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "request body too large"));
        }
    };
    let mut params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    params.extend(form_urlencoded::parse(&body).into_owned());
    if path == "/_sim/usage" && http_method == "GET" {
        return Ok(oracle(&params));
    }
    if path == "/_sim/created" && http_method == "GET" {
        let created = serde_json::to_string(&shared.lock().api.created).expect("created users serialise");
        return Ok(text(StatusCode::OK, "application/json", created));
    }
    // Only GET and POST reach the API (and so only they use up a fault's hits).
    let method = route(&path).filter(|_| matches!(http_method.as_str(), "GET" | "POST"));
    let known_path = route(&path).is_some();

    let (latency, fault) = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            http_method: http_method.clone(),
            api_method: path.rsplit('/').next().unwrap_or("").to_ascii_lowercase(),
            path: if query.is_empty() { path.clone() } else { format!("{path}?{query}") },
            // A created user's password is never kept (the oracle keeps its shape only).
            params: params
                .iter()
                .map(|(k, v)| (k.clone(), if k == "password" { "********".to_string() } else { v.clone() }))
                .collect(),
            connection,
        });
        let fault = method.and_then(|m| cloudpe_sim_api::take(&mut state.faults, m, &params));
        (state.latency, fault)
    };
    if latency > Duration::ZERO {
        tokio::time::sleep(latency).await;
    }
    let Some(method) = method else {
        return Ok(if known_path {
            text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "405 Method Not Allowed")
        } else {
            text(StatusCode::NOT_FOUND, "text/plain", "404 Not Found")
        });
    };
    let reply = {
        let mut state = shared.lock();
        cloudpe_sim_api::respond(&mut state.api, method, &params, fault)
    };
    match reply {
        Reply::Json(body) => Ok(text(StatusCode::OK, "application/json", body)),
        Reply::Http { status, content_type, body } => {
            Ok(text(StatusCode::from_u16(status).expect("a valid status"), content_type, body))
        }
        Reply::Transport(TransportFault::Timeout) => {
            let never: Infallible = std::future::pending().await;
            match never {}
        }
        Reply::Transport(TransportFault::Reset) => {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
            Err(ResetConnection)
        }
        Reply::Padded { spaces, json } => Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Spaces { left: spaces, tail: Some(Bytes::from(json)) }.boxed())
            .expect("valid response")),
        Reply::Transport(TransportFault::HugeBody(bytes)) => Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Spaces { left: bytes, tail: None }.boxed())
            .expect("valid response")),
        Reply::Transport(TransportFault::StalledBody) => Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Stalled { started: false }.boxed())
            .expect("valid response")),
    }
}

/// `GET /_sim/usage?uid=&from=&until=`: the expected hourly sums (see the module docs).
fn oracle(params: &BTreeMap<String, String>) -> Response<Body> {
    use cloudpe_sim_api::usage::{expected, iso, parse_time};
    let time = |name: &str| params.get(name).and_then(|v| parse_time(&v.replace('T', " ").replace('Z', ""), 0));
    let uid = params.get("uid").and_then(|v| v.parse::<u64>().ok());
    let (Some(uid), Some(from), Some(until)) = (uid, time("from"), time("until")) else {
        return text(StatusCode::BAD_REQUEST, "text/plain", "uid, from and until (YYYY-MM-DDTHH:MM:SSZ) are required");
    };
    let hours: Vec<serde_json::Value> = expected(uid, from, until)
        .into_iter()
        .map(|h| {
            let mut v = serde_json::to_value(&h).expect("an hour serialises");
            v["start"] = serde_json::Value::String(iso(h.start));
            v
        })
        .collect();
    text(StatusCode::OK, "application/json", serde_json::json!({"uid": uid, "hours": hours}).to_string())
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
