//! An origin (scheme, host, port): what the egress policy allows and what the pool keeps
//! connections for.

use std::fmt;

/// An origin: scheme, lower-case host and port (explicit or the scheme's default). The App's is
/// read by `endpoint.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin a wasi:http request targets.
    pub fn of_request(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = url::Host::parse(uri.host()?).ok()?;
        Some(Origin { scheme, host: normalise_host(host), port: uri.port_u16().unwrap_or(default_port) })
    }

    /// `host` or `host:port` (the port only when not the scheme's default), for a Host header.
    pub fn authority(&self) -> String {
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default_port { self.host.clone() } else { format!("{}:{}", self.host, self.port) }
    }
}

/// A host as the `url` crate normalises it (IDNA, IP literals such as `127.0.0.1.`, case), with
/// one trailing dot of a domain name removed: the form both the check and the connection use.
pub(crate) fn normalise_host<S: AsRef<str>>(host: url::Host<S>) -> String {
    let text = host.to_string().to_ascii_lowercase();
    match host {
        url::Host::Domain(_) => text.strip_suffix('.').filter(|t| !t.is_empty()).unwrap_or(&text).to_string(),
        _ => text,
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}
