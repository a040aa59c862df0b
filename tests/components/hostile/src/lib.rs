//! A test-only hosting module that misbehaves on purpose. `suspend` does what the App's custom setting
//! `mode` says: `spin` (loops forever), `alloc` (allocates without bound), `panic`, `sleep` (waits an
//! hour on a host clock), `leak-token` (logs the session token and returns it in an error),
//! `log-flood` (logs without end), `log-flood-big` (10,000 log records of 4 MiB each),
//! `call-flood` (10,000 call records, each with a 4 MiB reply and 64 parameters of 64 KiB),
//! `progress-flood` (reports the last step a million times), `long-paths` (keeps 2,000
//! requests with a 60,000-byte path each: host-side memory), `leak-fields` (makes 8 KiB header sets and never drops
//! them: host-side memory), `refuse-flood` (requests a forbidden origin without end),
//! `fact-flood` (answers with 100 facts of 30 KiB each). `sync` decides for accounts it was not
//! given (`decide-others`) or twice for one (`decide-twice`). The host must stop or scrub each,
//! within its limits.
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
use hostbill::provisioning::log;
use hostbill::provisioning::types::*;

struct Hostile;

fn misbehave(app: &AppSettings) -> Result<Outcome, ModuleError> {
    let token = app.field2.clone().unwrap_or_default();
    match mode(app) {
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("hostile module panics on purpose"),
        "sleep" => {
            wasip2::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
            Ok(Outcome { message: "woke up".into(), facts: vec![], changed_remote: false })
        }
        "leak-token" => {
            log::log(log::Level::Info, &format!("the session is {token}"));
            Err(ModuleError::Authentication(format!("rejected token {token}")))
        }
        "log-flood" => {
            for i in 0..1_000_000u32 {
                log::log(log::Level::Info, &format!("line {i} {}", "x".repeat(10_000)));
            }
            Ok(Outcome { message: "flooded".into(), facts: vec![], changed_remote: false })
        }
        "log-flood-big" => {
            // One 4 MiB text, handed over again and again: the module's memory stays small while
            // each call makes the host lift 4 MiB.
            let big = "y".repeat(4 << 20);
            for _ in 0..10_000u32 {
                log::log(log::Level::Info, &big);
            }
            Ok(Outcome { message: "flooded with big records".into(), facts: vec![], changed_remote: false })
        }
        "call-flood" => {
            let reply = "r".repeat(4 << 20);
            let value = "v".repeat(64 << 10);
            let params: Vec<Fact> = (0..64).map(|i| Fact { name: format!("p{i}"), value: value.clone() }).collect();
            let entry = ApiCall {
                method: "getaccounts".into(),
                params,
                http_status: Some(200),
                duration_ms: 1,
                result_code: Some(0),
                reply,
            };
            for _ in 0..10_000u32 {
                log::call(&entry);
            }
            Ok(Outcome { message: "flooded the call log".into(), facts: vec![], changed_remote: false })
        }
        "long-paths" => {
            // Requests the module keeps (never sent), each with a 60,000-byte path (the longest
            // URL the http crate accepts is 65,534 bytes): host-side memory.
            use wasip2::http::types::{Fields, OutgoingRequest};
            let path = format!("/{}", "p".repeat(60_000));
            let mut kept = Vec::new();
            for i in 0..2_000u32 {
                let request = OutgoingRequest::new(Fields::new());
                if request.set_path_with_query(Some(&path)).is_err() {
                    return Err(ModuleError::Transport(format!("path {i} refused")));
                }
                kept.push(request);
            }
            Ok(Outcome {
                message: format!("kept {} requests with long paths", kept.len()),
                facts: vec![],
                changed_remote: false,
            })
        }
        "progress-flood" => {
            for _ in 0..1_000_000u32 {
                log::progress(10, 10);
            }
            Ok(Outcome { message: "reported the end a million times".into(), facts: vec![], changed_remote: false })
        }
        "huge-body" => read_everything(app.status_url.as_deref().unwrap_or("")),
        "leak-fields" => {
            let value = vec![b'a'; 8 * 1024];
            for i in 0..1_000_000u32 {
                let entry = (format!("x-pad-{i}"), value.clone());
                match wasip2::http::types::Fields::from_list(&[entry]) {
                    Ok(fields) => std::mem::forget(fields),
                    Err(e) => return Err(ModuleError::Unexpected(format!("fields {i} refused: {e:?}"))),
                }
            }
            Ok(Outcome { message: "leaked a million header sets".into(), facts: vec![], changed_remote: false })
        }
        "refuse-flood" => {
            for _ in 0..100_000u32 {
                let _ = send_get("127.0.0.2:9", "/session=leaked-in-path");
            }
            Ok(Outcome { message: "sent 100000 forbidden requests".into(), facts: vec![], changed_remote: false })
        }
        "fact-flood" => Ok(Outcome {
            message: "many facts".into(),
            facts: (0..100).map(|i| Fact { name: format!("fact-{i}"), value: "f".repeat(30 * 1024) }).collect(),
            changed_remote: false,
        }),
        "huge-answer" => Ok(Outcome { message: "x".repeat(48 << 20), facts: vec![], changed_remote: false }),
        other => Err(ModuleError::Configuration(format!("unknown mode {other:?}"))),
    }
}

/// The App's custom setting `mode`: what to do wrong.
fn mode(app: &AppSettings) -> &str {
    app.custom.iter().find(|s| s.name == "mode").map(|s| s.value.as_str()).unwrap_or("")
}

/// Starts a plain-HTTP GET of `path` at `authority` and drops the response future unread.
fn send_get(authority: &str, path: &str) -> Result<(), ModuleError> {
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    let fail = |what: &str| ModuleError::Transport(what.to_string());
    let request = OutgoingRequest::new(Fields::new());
    request.set_method(&Method::Get).map_err(|()| fail("method"))?;
    request.set_scheme(Some(&Scheme::Http)).map_err(|()| fail("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| fail("authority"))?;
    request.set_path_with_query(Some(path)).map_err(|()| fail("path"))?;
    let body = request.body().map_err(|()| fail("body"))?;
    let _future = wasip2::http::outgoing_handler::handle(request, None).map_err(|e| fail(&format!("{e:?}")))?;
    OutgoingBody::finish(body, None).map_err(|e| fail(&format!("{e:?}")))?;
    Ok(())
}

/// GETs `{base}/billing/account/rest/getaccounts` and reads the whole body, however long.
fn read_everything(base: &str) -> Result<Outcome, ModuleError> {
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    let rest = base.strip_prefix("http://").unwrap_or(base);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let request = OutgoingRequest::new(Fields::new());
    let fail = |what: &str| ModuleError::Transport(what.to_string());
    request.set_method(&Method::Get).map_err(|()| fail("method"))?;
    request.set_scheme(Some(&Scheme::Http)).map_err(|()| fail("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| fail("authority"))?;
    request
        .set_path_with_query(Some(&format!("/{path}/billing/account/rest/getaccounts")))
        .map_err(|()| fail("path"))?;
    let body = request.body().map_err(|()| fail("body"))?;
    let future = wasip2::http::outgoing_handler::handle(request, None).map_err(|e| fail(&format!("{e:?}")))?;
    OutgoingBody::finish(body, None).map_err(|e| fail(&format!("{e:?}")))?;
    let pollable = future.subscribe();
    pollable.block();
    drop(pollable);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        other => return Err(fail(&format!("no response: {other:?}"))),
    };
    let incoming = response.consume().map_err(|()| fail("consume"))?;
    let stream = incoming.stream().map_err(|()| fail("stream"))?;
    let mut total: u64 = 0;
    loop {
        match stream.blocking_read(1 << 16) {
            Ok(chunk) => total += chunk.len() as u64,
            Err(wasip2::io::streams::StreamError::Closed) => break,
            Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(ModuleError::Transport(format!("read {total} bytes, then: {}", e.to_debug_string())));
            }
        }
    }
    Ok(Outcome { message: format!("read {total} bytes"), facts: vec![], changed_remote: false })
}

impl Guest for Hostile {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "misbehaves on purpose".into(),
            app_fields: vec![AppFieldUsage {
                field: AppField::Field2,
                label: "Session".into(),
                description: "secret".into(),
                required: true,
                secret: true,
            }],
            endpoint_field: AppField::StatusUrl,
        }
    }

    fn test_connection(_app: AppSettings) -> Result<ConnectionReport, ModuleError> {
        Ok(ConnectionReport { checks: vec![] })
    }

    fn create(app: AppSettings, _account: Account) -> Result<Outcome, ModuleError> {
        misbehave(&app)
    }

    fn suspend(app: AppSettings, _account: Account) -> Result<Outcome, ModuleError> {
        misbehave(&app)
    }

    fn unsuspend(app: AppSettings, _account: Account) -> Result<Outcome, ModuleError> {
        misbehave(&app)
    }

    fn terminate(app: AppSettings, _account: Account) -> Result<Outcome, ModuleError> {
        misbehave(&app)
    }

    fn sync(app: AppSettings, accounts: Vec<Account>, _options: SyncOptions) -> Result<SyncReport, ModuleError> {
        let terminate = |account_id| AccountDecision {
            account_id,
            decision: Decision::Change(StatusChange {
                from: HostbillStatus::Active,
                to: HostbillStatus::Terminated,
                facts: vec![],
            }),
        };
        let asked = accounts.iter().map(|a| terminate(a.id));
        let decisions = match mode(&app) {
            // Decides for accounts of other Apps too (1000 and 999), or twice for the first.
            "decide-others" => asked.chain([terminate(1000), terminate(999)]).collect(),
            "decide-twice" => asked.chain(accounts.first().map(|a| terminate(a.id))).collect(),
            _ => return misbehave(&app).map(|_| SyncReport { decisions: vec![], requests: 0 }),
        };
        Ok(SyncReport { decisions, requests: 0 })
    }
}

export!(Hostile);
