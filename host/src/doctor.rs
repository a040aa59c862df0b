//! `doctor`: checks, for an admin at a shell, everything an operation depends on, one line each
//! with a plain verdict and a hint when something is wrong: the component, the cache, the App's
//! URL, DNS and TCP reach of the API host, and the credentials (through the module's own
//! connection test).

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::bindings::WIT_PACKAGE;
use crate::bindings::hostbill::provisioning::types as wit;
use crate::cache::{self, Cache};
use crate::compat;
use crate::endpoint::Endpoint;
use crate::operation::{self, Describe, Output, Request};
use crate::report::Report;
use crate::runtime::Runtime;
use crate::sandbox::limits::Limits;
use crate::scrub::Scrubber;

/// How long the TCP check waits.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Works, but not as well as it should.
    Warn,
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Clone)]
pub struct Line {
    pub verdict: Verdict,
    pub name: &'static str,
    pub detail: String,
    pub hint: Option<String>,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{verdict}  {:<18} {}", self.name, self.detail)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n      hint: {hint}")?;
        }
        Ok(())
    }
}

fn line(verdict: Verdict, name: &'static str, detail: impl Into<String>, hint: Option<&str>) -> Line {
    Line { verdict, name, detail: detail.into(), hint: hint.map(str::to_string) }
}

/// Runs every check that can run (a failed check skips the ones that depend on it).
pub async fn run(
    component: &std::path::Path,
    cache: Option<Cache>,
    app: &wit::AppSettings,
    allow_http: bool,
    limits: &Limits,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    trust: &crate::trust::TrustPolicy,
) -> Vec<Line> {
    let mut lines = Vec::new();
    let runtime = match Runtime::load(component, cache.as_ref(), trust) {
        Ok(mut runtime) => {
            if let Some(tls) = tls {
                runtime.set_tls(tls);
            }
            runtime
        }
        Err(fault) => {
            lines.push(line(
                Verdict::Fail,
                "component",
                fault.to_string(),
                Some(
                    "install a component built and signed for this host (see `info` of the new file), \
                     or roll back with `rollback`",
                ),
            ));
            return lines;
        }
    };
    lines.push(cache_line(&runtime, cache.as_ref()));
    lines.push(match runtime.verification() {
        crate::trust::Verification::Verified { key_id } => {
            line(Verdict::Pass, "signature", format!("verified: signed by trusted key {key_id}"), None)
        }
        crate::trust::Verification::Unverified { why } => line(
            Verdict::Warn,
            "signature",
            format!("not verified ({why}); runs only because of --allow-unsigned"),
            Some("install the vendor's signed component and pass --trusted-keys with its public key"),
        ),
    });

    let (ran, _) = operation::run(&runtime, Request::Describe(Describe::Info), limits, None, None).await;
    let Ok((info, _)) = ran.result else {
        lines.push(line(Verdict::Fail, "component", "the module failed to describe itself", None));
        return lines;
    };
    lines.insert(
        0,
        line(
            Verdict::Pass,
            "component",
            format!(
                "{} {} targets {WIT_PACKAGE}@{}; this host runs {WIT_PACKAGE} {}",
                info.name,
                info.version,
                runtime.version(),
                compat::supported_range()
            ),
            None,
        ),
    );

    let field = info.endpoint_field.hostbill_name();
    let label = info.app_fields.iter().find(|u| u.field.hostbill_name() == field).map_or(field.as_str(), |u| &u.label);
    let Some(url) = app.get(&info.endpoint_field) else {
        let hint = format!("fill in the App's {label}");
        lines.push(line(Verdict::Fail, "App URL", format!("the App's {field} is empty"), Some(&hint)));
        return lines;
    };
    // The rule the egress policy applies (`endpoint.rs`): what passes here is what the module may reach.
    let endpoint = match Endpoint::parse(url) {
        Ok(endpoint) => endpoint,
        Err(problem) => {
            let hint = Some("use the API's base URL, e.g. https://api.example.com");
            lines.push(line(Verdict::Fail, "App URL", format!("the App's {label} {problem}"), hint));
            return lines;
        }
    };
    let url = &endpoint.url;
    lines.push(match (endpoint.origin.scheme.as_str(), allow_http) {
        ("https", _) => line(Verdict::Pass, "App URL", format!("{url} (HTTPS)"), None),
        (_, true) => line(Verdict::Warn, "App URL", format!("{url} is plain HTTP (allowed by --allow-http)"), None),
        _ => line(
            Verdict::Fail,
            "App URL",
            format!("{url} is plain HTTP: the App's secret fields would cross the network unencrypted"),
            Some("use https://, or pass --allow-http if this API is only reachable on a private network"),
        ),
    });
    {
        let origin = &endpoint.origin;
        let names = |secret_only: bool| {
            let fields = info.app_fields.iter().filter(|u| u.secret || !secret_only);
            fields.map(|u| u.field.hostbill_name()).collect::<Vec<_>>().join(", ")
        };
        let mib = |bytes: usize| format!("{} MiB", bytes / (1024 * 1024));
        lines.push(line(
            Verdict::Pass,
            "permissions",
            format!(
                "may reach only {origin}; reads App fields {}; secret: {}; memory {}, deadline {} s, response {}, \
                 {} connections",
                names(false),
                names(true),
                mib(limits.memory_bytes),
                limits.deadline.as_secs_f64(),
                mib(limits.max_response_bytes),
                limits.max_connections,
            ),
            None,
        ));
    }

    let host = endpoint.origin.host.trim_matches(['[', ']']).to_string();
    let port = endpoint.origin.port;
    let started = Instant::now();
    let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            lines.push(line(
                Verdict::Fail,
                "DNS",
                format!("cannot resolve {host}: {e}"),
                Some("check the host name in the App's URL and this server's DNS settings"),
            ));
            return lines;
        }
    };
    let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    lines.push(line(
        Verdict::Pass,
        "DNS",
        format!("{host} -> {} ({} ms)", shown.join(", "), started.elapsed().as_millis()),
        None,
    ));

    let started = Instant::now();
    let reached = addrs.iter().find_map(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).ok().map(|_| *a));
    match reached {
        Some(addr) => lines.push(line(
            Verdict::Pass,
            "TCP",
            format!("connected to {addr} in {} ms", started.elapsed().as_millis()),
            None,
        )),
        None => {
            lines.push(line(
                Verdict::Fail,
                "TCP",
                format!("cannot connect to {host} port {port}"),
                Some("check that the API is up and that a firewall allows this server to reach it"),
            ));
            return lines;
        }
    }

    let (connection, capabilities) = connection_lines(&runtime, app, &info, limits).await;
    lines.extend(connection);
    lines.extend(capabilities);
    lines
}

/// A line per capability a 2.4 module's probe found (`allowed` and `not-probed` pass; `denied`
/// and `unknown` warn: what needs the method will not work), or one warning if the probe failed.
fn capability_lines(probe: &Result<Vec<wit::Capability>, wit::ModuleError>, scrubber: &Scrubber) -> Vec<Line> {
    let list = match probe {
        Ok(list) => list,
        Err(e) => {
            let hint = Some("the connection works; the optional features that need these methods may not");
            let detail = scrubber.text(&crate::report::build::probe_failed(e)).into_owned();
            return vec![line(Verdict::Warn, "capabilities", detail, hint)];
        }
    };
    list.iter()
        .map(|c| {
            let verdict = match c.state {
                wit::CapabilityState::Allowed | wit::CapabilityState::NotProbed => Verdict::Pass,
                wit::CapabilityState::Denied | wit::CapabilityState::Unknown => Verdict::Warn,
            };
            let state = crate::report::build::capability_state(c.state);
            let detail = format!("{} ({}): {state}; {}", c.name, c.method, c.detail);
            let hint = match c.state {
                wit::CapabilityState::Denied => Some("allow the method for the App's token on the platform"),
                wit::CapabilityState::Unknown => Some("this platform does not offer the method"),
                _ => None,
            };
            line(verdict, "capability", scrubber.text(&detail).into_owned(), hint)
        })
        .collect()
}

/// The module's connection test, as two lines: whether the API answered the module's requests
/// at all (the host's own count of what it received), and whether every check of the module's
/// typed report passed (the module's own words otherwise, with a hint naming its App fields);
/// then a 2.4 module's capabilities, a line each.
async fn connection_lines(
    runtime: &Runtime,
    app: &wit::AppSettings,
    info: &wit::ModuleInfo,
    limits: &Limits,
) -> ([Line; 2], Vec<Line>) {
    let (ran, _) = operation::run(runtime, Request::TestConnection(app.clone()), limits, None, None).await;
    let scrubber = crate::secrets::secrets(Some(app), None);
    let requests = ran.state.usage.requests.load(Ordering::Relaxed);
    let received = ran.state.usage.bytes_received.load(Ordering::Relaxed);
    let answered = if received > 0 {
        line(Verdict::Pass, "API answers", format!("{received} bytes in answer to {requests} requests"), None)
    } else {
        let detail = format!("no answer to the module's {requests} requests");
        line(Verdict::Fail, "API answers", detail, Some("check that the App's URL points at the API"))
    };
    let (checks, capabilities) = match &ran.result {
        Ok((_, Output::Checks(Ok(report), probe))) if ran.state.egress.denials.is_empty() => {
            (Some(report.checks.clone()), probe.as_ref().map(|p| capability_lines(p, &scrubber)).unwrap_or_default())
        }
        _ => (None, Vec::new()),
    };
    let labels: Vec<&str> = info.app_fields.iter().filter(|u| u.required).map(|u| u.label.as_str()).collect();
    let hint = format!("check the App's {}", labels.join(", "));
    let credentials = match checks {
        Some(checks) if checks.iter().all(|c| c.passed) => {
            let passed: Vec<String> = checks.iter().map(|c| format!("{}: {}", c.name, c.detail)).collect();
            line(Verdict::Pass, "credentials", scrubber.text(&passed.join("; ")).into_owned(), None)
        }
        _ => {
            let message = Report::of(ran, runtime, limits).error.map(|e| e.message).unwrap_or_default();
            line(Verdict::Fail, "credentials", scrubber.text(&message).into_owned(), Some(&hint))
        }
    };
    ([answered, credentials], capabilities)
}

fn cache_line(runtime: &Runtime, cache: Option<&Cache>) -> Line {
    match (cache, runtime.source()) {
        (None, _) => {
            line(Verdict::Warn, "cache", "disabled (--no-cache): every operation compiles the component", None)
        }
        (Some(c), cache::Source::Cache) => line(
            Verdict::Pass,
            "cache",
            format!("compiled component loaded from {} (key {})", c.dir().display(), c.key_file().display()),
            None,
        ),
        (Some(c), cache::Source::CompiledAndStored) => {
            line(Verdict::Pass, "cache", format!("compiled and stored in {}", c.dir().display()), None)
        }
        (Some(c), cache::Source::CompiledOnly) => line(
            Verdict::Warn,
            "cache",
            format!("{} not used (see the warning above): every operation compiles the component", c.dir().display()),
            Some(
                "the folder and its key file must belong to the web server's user and be writable by nobody else \
                 (chmod 700 on the folder, 600 on the key); or set HOSTBILL_MODULE_CACHE_DIR",
            ),
        ),
    }
}
