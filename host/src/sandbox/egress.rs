//! The egress policy: a component may reach exactly one origin (scheme, host and port), derived
//! from the App field the module names as its endpoint. It is enforced in one place, the
//! `send_request` hook of wasi:http, which also clamps the request timeouts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use wasmtime_wasi_http::{RequestOptions, WasiHttpHooks};

use super::limits::Limits;

/// An origin: scheme, lower-case host and port (explicit or the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)` URL.
    pub fn of_url(raw: &str) -> Result<Origin, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a valid URL ({e})"))?;
        let scheme = url.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{raw:?} is not an http(s) URL"));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("{raw:?} has no host"))?;
        let port = url.port_or_known_default().ok_or_else(|| format!("{raw:?} has no port"))?;
        Ok(Origin { scheme, host: host.to_ascii_lowercase(), port })
    }

    /// The origin a wasi:http request targets.
    pub fn of_request(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        // Normalised as the `url` crate does for the App's URL (IDNA, IP literals, case).
        let host = url::Host::parse(uri.host()?).ok()?.to_string().to_ascii_lowercase();
        Some(Origin { scheme, host, port: uri.port_u16().unwrap_or(default_port) })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
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
/// seen so far.
pub struct EgressPolicy {
    allowed: Option<Origin>,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_response_bytes: usize,
    /// One permit per request in flight, held until its connection is done.
    connections: Arc<Semaphore>,
    /// TLS trusting an extra CA bundle; `None`: wasmtime-wasi-http's client (standard roots).
    tls: Option<Arc<rustls::ClientConfig>>,
    pub denials: Vec<Denial>,
}

impl EgressPolicy {
    /// A policy allowing `allowed` only, within `limits`.
    pub fn new(allowed: Option<Origin>, limits: &Limits) -> Self {
        EgressPolicy {
            allowed,
            connect_timeout: limits.connect_timeout,
            read_timeout: limits.read_timeout,
            max_response_bytes: limits.max_response_bytes,
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            tls: None,
            denials: Vec::new(),
        }
    }

    /// Verifies TLS with `config` (standard roots plus a CA bundle) instead of the default client.
    pub fn with_tls(mut self, config: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.tls = config;
        self
    }

    /// Whether a request to `uri` may go out; records the refusal otherwise.
    pub fn check(&mut self, uri: &http::Uri) -> bool {
        let target = Origin::of_request(uri);
        if target.is_some() && target == self.allowed {
            return true;
        }
        let requested = match target {
            Some(t) => t.to_string(),
            None => {
                format!("{}://{}", uri.scheme_str().unwrap_or("?"), uri.authority().map(|a| a.as_str()).unwrap_or("?"))
            }
        };
        self.denials.push(Denial { requested, allowed: self.allowed.clone() });
        false
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
        if !self.check(request.uri()) {
            tracing::warn!("egress: {}", self.denials.last().expect("just recorded"));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let options = self.clamp(options);
        let max = self.max_response_bytes;
        let connections = self.connections.clone();
        let tls = self.tls.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            let permit = connections
                .acquire_owned()
                .await
                .map_err(|_| wasmtime_wasi_http::Error::InternalError(Some("connection limit closed".into())))?;
            let (response, io): (http::Response<wasmtime_wasi_http::WasiBody>, Box<dyn Future<Output = _> + Send>) =
                match tls {
                    Some(config) => super::tls::send(request, options, config).await?,
                    None => {
                        let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
                        (response.map(|body| body.boxed_unsync()), Box::new(io))
                    }
                };
            let response = response.map(|body| {
                http_body_util::Limited::new(body, max)
                    .map_err(move |_| wasmtime_wasi_http::Error::HttpResponseBodySize(Some(max as u64)))
                    .boxed_unsync()
            });
            let io = async move {
                let done = Box::into_pin(io).await;
                drop(permit);
                done
            };
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(url: &str) -> EgressPolicy {
        EgressPolicy::new(Some(Origin::of_url(url).unwrap()), &Limits::default())
    }

    #[test]
    fn only_the_app_origin_passes() {
        let mut p = policy("https://API.example.com/1.0");
        for ok in ["https://api.example.com/1.0/x", "https://api.example.com:443/y", "HTTPS://Api.Example.com/"] {
            assert!(p.check(&ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "http://api.example.com/1.0/x",
            "https://api.example.com:8443/",
            "https://evil.example.com/",
            "https://api.example.com.evil.example/",
        ] {
            assert!(!p.check(&bad.parse().unwrap()), "{bad}");
        }
        assert_eq!(p.denials.len(), 4);
        assert_eq!(
            p.denials[0].to_string(),
            "refused a request to http://api.example.com:80: the App's endpoint allows only https://api.example.com:443"
        );
    }

    #[test]
    fn ip_hosts_compare_by_value() {
        let mut p = policy("http://127.0.0.1:8080");
        assert!(p.check(&"http://127.0.0.1:8080/1.0".parse().unwrap()));
        assert!(!p.check(&"http://127.0.0.2:8080/1.0".parse().unwrap()));
        let mut p = policy("http://[::1]:8080");
        assert!(p.check(&"http://[::1]:8080/".parse().unwrap()));
    }

    #[test]
    fn no_endpoint_denies_everything() {
        let mut p = EgressPolicy::new(None, &Limits::default());
        assert!(!p.check(&"https://api.example.com/".parse().unwrap()));
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

    #[test]
    fn bad_endpoint_urls_are_named() {
        assert!(Origin::of_url("ftp://x").unwrap_err().contains("not an http(s) URL"));
        assert!(Origin::of_url("nonsense").unwrap_err().contains("not a valid URL"));
    }
}
