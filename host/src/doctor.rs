//! `doctor`: checks, for an admin at a shell, everything an operation depends on, one line each
//! with a plain verdict and a hint when something is wrong: the component, the cache, the App's
//! URL, DNS and TCP reach of the API host, and the credentials (through the module's own
//! connection test).

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::cache::{self, Cache};
use crate::compat;
use crate::operation::{self, Request};
use crate::runtime::Runtime;
use crate::sandbox::limits::Limits;

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

    let (report, _, _) = operation::run("info", &runtime, Request::None, limits).await;
    let Some(info) = report.payload.get("info") else {
        lines.push(line(Verdict::Fail, "component", "the module failed to describe itself", None));
        return lines;
    };
    lines.insert(
        0,
        line(
            Verdict::Pass,
            "component",
            format!(
                "{} {} targets {}; this host runs hostbill:provisioning {}",
                info["name"].as_str().unwrap_or("?"),
                info["version"].as_str().unwrap_or("?"),
                info["wit_package"].as_str().unwrap_or("?"),
                compat::supported_range()
            ),
            None,
        ),
    );

    let field = info["endpoint_field"].as_str().unwrap_or("status_url");
    let Some(url) = endpoint(app, field) else {
        lines.push(line(
            Verdict::Fail,
            "App URL",
            format!("the App's {field} is empty"),
            Some("fill in the Host URL of the App"),
        ));
        return lines;
    };
    let parsed = match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            lines.push(line(
                Verdict::Fail,
                "App URL",
                format!("{url:?} is not an http(s) URL"),
                Some("use the API base URL, e.g. https://api.cloudpe.example.com"),
            ));
            return lines;
        }
    };
    lines.push(match (parsed.scheme(), allow_http) {
        ("https", _) => line(Verdict::Pass, "App URL", format!("{url} (HTTPS)"), None),
        (_, true) => line(Verdict::Warn, "App URL", format!("{url} is plain HTTP (allowed by --allow-http)"), None),
        _ => line(
            Verdict::Fail,
            "App URL",
            format!("{url} is plain HTTP: the session token would cross the network unencrypted"),
            Some("use https://, or pass --allow-http if this API is only reachable on a private network"),
        ),
    });
    if let Ok(origin) = crate::sandbox::egress::Origin::of_url(url) {
        let p = &info["permissions"];
        let list = |v: &serde_json::Value| {
            v.as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
        };
        let l = &p["limits"];
        lines.push(line(
            Verdict::Pass,
            "permissions",
            format!(
                "may reach only {origin}; reads App fields {}; secret: {}; memory {}, deadline {}, response {}, \
                 {} connections",
                list(&p["reads"]),
                list(&p["secret"]),
                l["memory"].as_str().unwrap_or("?"),
                l["deadline"].as_str().unwrap_or("?"),
                l["response"].as_str().unwrap_or("?"),
                l["connections"],
            ),
            None,
        ));
    }

    let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
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

    let (report, _, _) = operation::run("test-connection", &runtime, Request::App(app.clone()), limits).await;
    let scrubber = operation::secrets(Some(app), None);
    match report.payload.get("checks").and_then(|c| c.as_array()) {
        Some(checks) => {
            for check in checks {
                let passed = check["passed"] == true;
                let detail = scrubber.text(check["detail"].as_str().unwrap_or("")).into_owned();
                let name = if check["name"] == "API reachable" { "API answers" } else { "credentials" };
                let hint = (!passed).then_some(if name == "credentials" {
                    "check the App Id and Session fields; the session must belong to a platform admin"
                } else {
                    "check that the Host URL points at the CloudPe API"
                });
                lines.push(line(if passed { Verdict::Pass } else { Verdict::Fail }, name, detail, hint));
            }
        }
        None => {
            let message = report.error.map(|e| e.message).unwrap_or_default();
            lines.push(line(Verdict::Fail, "credentials", scrubber.text(&message).into_owned(), None));
        }
    }
    lines
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

/// The value of the App field HostBill names `name` (as `info` prints it).
fn endpoint<'a>(app: &'a wit::AppSettings, name: &str) -> Option<&'a str> {
    use wit::AppField::*;
    let field = match name.strip_prefix("custom.") {
        Some(setting) => Custom(setting.to_string()),
        None => {
            [Host, Ip, Username, Password, StatusUrl, Field1, Field2].into_iter().find(|f| f.hostbill_name() == name)?
        }
    };
    app.get(&field)
}
