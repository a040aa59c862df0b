//! The egress policy: a component may reach exactly one origin (scheme, host and port), derived
//! from the App field the module names as its endpoint. It is enforced in one place, the
//! `send_request` hook of wasi:http, which also clamps the request timeouts; a request it lets
//! out is sent by the connection pool (`pool.rs`), the only send path.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use wasmtime_wasi_http::{RequestOptions, WasiHttpHooks};

use super::limits::{Limits, MAX_REPORTED_DENIALS};
use super::origin::Origin;
use super::pool::Pool;
use super::usage::Usage;

/// Raised by the first refused request: the run ends there (the module is stopped at its next
/// epoch check, or at once if it is waiting on the host).
#[derive(Debug, Default)]
pub struct EgressStop {
    raised: AtomicBool,
    notify: Notify,
}

impl EgressStop {
    fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Whether a request was refused.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Completes once a request was refused.
    pub async fn raised(&self) {
        if !self.is_raised() {
            self.notify.notified().await;
        }
    }
}

/// A request the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// `scheme://host:port` of the refused request (no path: it may carry credentials).
    pub requested: String,
    pub allowed: Option<Origin>,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.allowed {
            Some(allowed) => {
                write!(f, "refused a request to {}: the App's endpoint allows only {allowed}", self.requested)
            }
            None => write!(
                f,
                "refused a request to {}: the App has no valid endpoint URL, so no egress is allowed",
                self.requested
            ),
        }
    }
}

/// The wasi:http hooks of one operation: the allowed origin, timeout ceilings and the refusals
/// seen so far (the first [`MAX_REPORTED_DENIALS`]; the first one stops the run).
pub struct EgressPolicy {
    allowed: Option<Origin>,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_response_bytes: usize,
    max_connections: usize,
    keep_alive: bool,
    /// Sends every request this policy lets out (at most `max_connections` at once).
    pool: Arc<Pool>,
    pub denials: Vec<Denial>,
    /// Refused requests beyond those in `denials`.
    pub denials_dropped: usize,
    stop: Arc<EgressStop>,
    usage: Arc<Usage>,
}

impl EgressPolicy {
    /// The one origin this policy allows, if any.
    pub fn allowed(&self) -> Option<&Origin> {
        self.allowed.as_ref()
    }

    /// A policy allowing `allowed` only, within `limits`; a refusal raises `stop`.
    pub fn new(allowed: Option<Origin>, limits: &Limits, stop: Arc<EgressStop>, usage: Arc<Usage>) -> Self {
        EgressPolicy {
            allowed,
            connect_timeout: limits.connect_timeout,
            read_timeout: limits.read_timeout,
            max_response_bytes: limits.max_response_bytes,
            max_connections: limits.max_connections,
            keep_alive: limits.keep_alive,
            pool: Arc::new(Pool::new(limits.max_connections, limits.keep_alive, None)),
            denials: Vec::new(),
            denials_dropped: 0,
            stop,
            usage,
        }
    }

    /// Verifies TLS with `config` (standard roots plus a CA bundle) instead of the standard roots.
    pub fn with_tls(mut self, config: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.pool = Arc::new(Pool::new(self.max_connections, self.keep_alive, config));
        self
    }

    /// The normalised origin of `uri` if a request to it may go out; records the refusal and
    /// raises the stop otherwise.
    pub fn check(&mut self, uri: &http::Uri) -> Option<Origin> {
        let target = Origin::of_request(uri);
        if target.is_some() && target == self.allowed {
            return target;
        }
        self.stop.raise();
        if self.denials.len() >= MAX_REPORTED_DENIALS {
            self.denials_dropped += 1;
            return None;
        }
        // Scheme, host and port only: a path, query or userinfo may carry credentials.
        let requested = match target {
            Some(t) => t.to_string(),
            None => {
                let host: String = uri.host().unwrap_or("?").chars().take(100).collect();
                let scheme: String = uri.scheme_str().unwrap_or("?").chars().take(16).collect();
                match uri.port_u16() {
                    Some(port) => format!("{scheme}://{host}:{port}"),
                    None => format!("{scheme}://{host}"),
                }
            }
        };
        let denial = Denial { requested, allowed: self.allowed.clone() };
        tracing::warn!("egress: {denial}");
        self.denials.push(denial);
        None
    }

    /// The guest's timeouts, each capped by the host's ceiling (and set when the guest left one out).
    pub fn clamp(&self, options: Option<RequestOptions>) -> RequestOptions {
        let options = options.unwrap_or_default();
        let cap = |value: Option<Duration>, ceiling: Duration| Some(value.map_or(ceiling, |v| v.min(ceiling)));
        RequestOptions {
            connect_timeout: cap(options.connect_timeout, self.connect_timeout),
            first_byte_timeout: cap(options.first_byte_timeout, self.read_timeout),
            between_bytes_timeout: cap(options.between_bytes_timeout, self.read_timeout),
        }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let mut request = request;
        let Some(origin) = self.check(request.uri()) else {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        // Connect to exactly what was checked: the normalised host, no userinfo.
        if let Err(e) = aim_at(&mut request, &origin) {
            return Box::new(async move { Err(wasmtime_wasi_http::Error::InternalError(Some(e))) });
        }
        let options = self.clamp(options);
        let max = self.max_response_bytes;
        let usage = self.usage.clone();
        usage.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pool = self.pool.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = pool.send(origin, request, options).await?;
            let cut = usage.clone();
            let response = response.map(|body| {
                http_body_util::Limited::new(body, max)
                    .map_err(move |_| {
                        cut.response_cut.store(true, std::sync::atomic::Ordering::Relaxed);
                        wasmtime_wasi_http::Error::HttpResponseBodySize(Some(max as u64))
                    })
                    .map_frame(move |frame| {
                        if let Some(data) = frame.data_ref() {
                            usage.bytes_received.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                        frame
                    })
                    .boxed_unsync()
            });
            Ok((response, io))
        })
    }

    /// A certificate the roots do not vouch for (or a name mismatch) gets its own error code, so
    /// the admin reads "certificate not trusted" rather than a generic handshake failure.
    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
        use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
        let invalid_certificate = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
        if invalid_certificate { ErrorCode::TlsCertificateError } else { ErrorCode::TlsProtocolError }
    }
}

/// Points `request` at `origin` (its path and query kept) and sets its Host header to match.
fn aim_at<B>(request: &mut http::Request<B>, origin: &Origin) -> Result<(), String> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri: http::Uri = format!("{}://{}:{}{path}", origin.scheme, origin.host, origin.port)
        .parse()
        .map_err(|e| format!("cannot rebuild the request URL: {e}"))?;
    let host = http::HeaderValue::from_str(&origin.authority()).map_err(|e| format!("bad Host header: {e}"))?;
    *request.uri_mut() = uri;
    request.headers_mut().insert(http::header::HOST, host);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(url: &str) -> EgressPolicy {
        let allowed = Origin::of_request(&url.parse::<http::Uri>().unwrap()).unwrap();
        EgressPolicy::new(Some(allowed), &Limits::default(), Arc::default(), Arc::default())
    }

    #[test]
    fn only_the_app_origin_passes() {
        let mut p = policy("https://API.example.com/1.0");
        for ok in [
            "https://api.example.com/1.0/x",
            "https://api.example.com:443/y",
            "HTTPS://Api.Example.com/",
            "https://api.example.com./",
            "https://user:pw@api.example.com/",
        ] {
            assert!(p.check(&ok.parse().unwrap()).is_some(), "{ok}");
        }
        assert!(!p.stop.is_raised());
        for bad in [
            "http://api.example.com/1.0/x",
            "https://api.example.com:8443/",
            "https://evil.example.com/",
            "https://api.example.com.evil.example/",
        ] {
            assert!(p.check(&bad.parse().unwrap()).is_none(), "{bad}");
        }
        assert!(p.stop.is_raised(), "the first refusal stops the run");
        assert_eq!(p.denials.len(), MAX_REPORTED_DENIALS);
        assert_eq!(p.denials_dropped, 4 - MAX_REPORTED_DENIALS);
        assert_eq!(
            p.denials[0].to_string(),
            "refused a request to http://api.example.com:80: the App's endpoint allows only https://api.example.com:443"
        );
    }

    #[test]
    fn ip_hosts_compare_by_value() {
        let mut p = policy("http://127.0.0.1:8080");
        assert!(p.check(&"http://127.0.0.1:8080/1.0".parse().unwrap()).is_some());
        assert!(p.check(&"http://127.0.0.2:8080/1.0".parse().unwrap()).is_none());
        let mut p = policy("http://[::1]:8080");
        assert!(p.check(&"http://[::1]:8080/".parse().unwrap()).is_some());
    }

    #[test]
    fn the_connection_goes_to_the_checked_form() {
        let mut p = policy("http://127.0.0.1:8080");
        for raw in ["http://127.0.0.1.:8080/1.0/x?a=1", "http://u:secret@127.0.0.1:8080/1.0/x?a=1"] {
            let mut request = http::Request::new(());
            *request.uri_mut() = raw.parse().unwrap();
            let origin = p.check(request.uri()).expect(raw);
            aim_at(&mut request, &origin).unwrap();
            assert_eq!(request.uri().to_string(), "http://127.0.0.1:8080/1.0/x?a=1", "{raw}");
            assert_eq!(request.headers()[http::header::HOST], "127.0.0.1:8080");
        }
        let mut p = policy("https://API.example.com./1.0");
        let mut request = http::Request::new(());
        *request.uri_mut() = "https://api.example.com/1.0".parse().unwrap();
        let origin = p.check(request.uri()).unwrap();
        aim_at(&mut request, &origin).unwrap();
        assert_eq!(request.uri().to_string(), "https://api.example.com:443/1.0");
        assert_eq!(request.headers()[http::header::HOST], "api.example.com");
    }

    #[test]
    fn refusals_name_no_credentials() {
        let mut p = policy("http://127.0.0.1:8080");
        assert!(p.check(&"http://user:pa55word@evil.example:9/x?session=tok".parse().unwrap()).is_none());
        let text = p.denials[0].to_string();
        assert!(text.starts_with("refused a request to http://evil.example:9:"), "{text}");
        assert!(!text.contains("pa55") && !text.contains("user") && !text.contains("tok"), "{text}");
    }

    #[test]
    fn no_endpoint_denies_everything() {
        let mut p = EgressPolicy::new(None, &Limits::default(), Arc::default(), Arc::default());
        assert!(p.check(&"https://api.example.com/".parse().unwrap()).is_none());
        assert!(p.denials[0].to_string().contains("no valid endpoint"));
    }

    #[test]
    fn timeouts_are_clamped_and_defaulted() {
        let p = policy("https://a.example");
        let o = p.clamp(Some(RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: Some(Duration::from_secs(5)),
            between_bytes_timeout: None,
        }));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(o.first_byte_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.between_bytes_timeout, Some(Duration::from_secs(60)));
    }
}
