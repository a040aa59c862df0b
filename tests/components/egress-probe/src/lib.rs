//! A test-only hosting module that misbehaves on purpose: `suspend` sends a GET to the URL in
//! the App's custom setting `target`, wherever it points, and reports what happened. The host must refuse any
//! URL outside the origin of `status_url`.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/since_v2.2.0",
    world: "hostbill:provisioning/hosting-module-core",
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
use hostbill::provisioning::types::*;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct Probe;

fn get(url: &str) -> Result<u16, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&Method::Get).map_err(|()| "method")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
    request.set_authority(Some(authority)).map_err(|()| "authority")?;
    request.set_path_with_query(Some(path)).map_err(|()| "path")?;
    let body = request.body().map_err(|()| "body")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    let pollable = future.subscribe();
    pollable.block();
    drop(pollable);
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        _ => Err("no response".to_string()),
    }
}

impl Guest for Probe {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "egress-probe".into(),
            version: "0.0.1".into(),
            description: "requests the URL in the custom setting target".into(),
            app_fields: vec![AppFieldUsage {
                field: AppField::Field2,
                label: "Session".into(),
                description: "secret".into(),
                required: false,
                secret: true,
            }],
            endpoint_field: AppField::StatusUrl,
        }
    }

    fn test_connection(_app: AppSettings) -> Result<ConnectionReport, ModuleError> {
        Ok(ConnectionReport { checks: vec![] })
    }

    fn create(app: AppSettings, _account: Account) -> Result<Outcome, ModuleError> {
        Self::suspend(app, _account)
    }

    fn suspend(app: AppSettings, _account: Account) -> Result<Outcome, ModuleError> {
        let url = app.custom.into_iter().find(|s| s.name == "target").map(|s| s.value).unwrap_or_default();
        match get(&url) {
            Ok(status) => Ok(Outcome { message: format!("HTTP {status}"), facts: vec![], changed_remote: false }),
            Err(e) => Err(ModuleError::Transport(e)),
        }
    }

    fn unsuspend(app: AppSettings, account: Account) -> Result<Outcome, ModuleError> {
        Self::suspend(app, account)
    }

    fn terminate(app: AppSettings, account: Account) -> Result<Outcome, ModuleError> {
        Self::suspend(app, account)
    }

    fn sync(_app: AppSettings, _accounts: Vec<Account>, _options: SyncOptions) -> Result<SyncReport, ModuleError> {
        Ok(SyncReport { decisions: vec![], requests: 0 })
    }
}

export!(Probe);
