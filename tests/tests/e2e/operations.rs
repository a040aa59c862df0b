//! End to end: the real host binary runs the real CloudPe component against the simulated
//! CloudPe, for every operation, its failures, and bad input.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator};
use serde_json::{Value, json};
use std::io::Write;

const TOKEN: &str = "e2e-session-token-5b7d2c91";

fn users() -> Vec<Account> {
    let mut locked = Account::new(13, 1);
    locked.is_enabled = Some(false);
    vec![
        Account::new(12, 1),
        Account::new(120, 2),
        locked,
        Account::new(14, 3),
        Account::new(15, 7),
        Account::new(16, 2),
    ]
}

fn setup() -> (Host, Simulator) {
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), accounts: users(), ..SimConfig::default() })
        .expect("simulator");
    (Host::from_env(), sim)
}

fn one(sim: &Simulator, uid: Option<&str>) -> Value {
    json!({"app": app(&sim.api_url(), TOKEN), "account": account(101, 11, "Active", uid)})
}

fn assert_no_token(run: &HostRun) {
    assert!(!run.all_output().contains(TOKEN), "the session token leaked:\n{}", run.all_output());
}

#[track_caller]
fn assert_exit(run: &HostRun, code: i32) {
    assert_eq!(run.code, code, "unexpected exit code; output:\n{}", run.all_output());
}

#[test]
fn info_prints_the_module_metadata() {
    let host = Host::from_env();
    let run = host.run_args(&["info"], b"", &[]);
    assert_exit(&run, 0);
    let info = &run.json["info"];
    assert_eq!(info["name"], "CloudPe");
    assert_eq!(info["wit_package"], "hostbill:provisioning@2.4.0");
    assert_eq!(info["endpoint_field"], "status_url");
    let session = info["app_fields"].as_array().unwrap().iter().find(|f| f["field"] == "field2").unwrap();
    assert_eq!(session["label"], "Session");
    assert_eq!(session["secret"], true);
    // Settings beyond field1/field2 live in HostBill's serialized `custom` column.
    let custom: Vec<&str> = info["app_fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["field"].as_str()?.strip_prefix("custom."))
        .collect();
    assert_eq!(custom, ["Client field code", "On terminate", "Call log", "On create", "Usage time zone"]);
}

#[test]
fn test_connection_runs_both_checks() {
    let (host, sim) = setup();
    let run = host.run("test-connection", &json!({"app": app(&sim.base_url(), TOKEN)}));
    assert_exit(&run, 0);
    let checks = run.json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    let methods: Vec<String> = sim.requests().into_iter().map(|r| r.api_method).collect();
    assert_eq!(methods[..2], ["getchecksum", "getaccounts"]);
    // Then (contract 2.4) the capability probe: one request per method it called.
    assert_eq!(methods.len(), 2 + probed(&run), "{methods:?}");
    // Reads too are POSTs: the token travels in the form body, never in a URL (access logs).
    for request in sim.requests() {
        assert_eq!(request.http_method, "POST", "{}", request.path);
        assert!(!request.path.contains(TOKEN) && !request.path.contains('?'), "{}", request.path);
        assert_eq!(request.params.get("session").map(String::as_str), Some(TOKEN));
    }
    assert_eq!(sim.requests()[1].params.get("resultCount").map(String::as_str), Some("1"));
}

/// How many methods a test-connection's capability probe called (those not `not-probed`; none
/// without a `capabilities` member).
fn probed(run: &HostRun) -> usize {
    let list = run.json["capabilities"].as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter().filter(|c| c["state"] != "not-probed").count()
}

/// The module is handed the Host URL as the host normalised it (`host/src/endpoint.rs`): a URL
/// typed in another form of the same address reaches the API as usual, and the report names the
/// one origin the host allowed.
#[test]
fn test_connection_reads_the_host_url_the_host_normalised() {
    let (host, sim) = setup();
    let port = sim.addr().port();
    let typed = format!(" HTTP://127.1:{port}/x/../1.0/ ");
    let run = host.run("test-connection", &json!({"app": app(&typed, TOKEN)}));
    assert_exit(&run, 0);
    assert_eq!(run.json["endpoint"], format!("http://127.0.0.1:{port}"));
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 2 + probed(&run), "{paths:?}");
    assert!(paths.iter().all(|p| p.starts_with("/1.0/") && !p.contains("..")), "{paths:?}");
}

#[test]
fn test_connection_with_a_bad_session_fails_the_admin_check_without_leaking_it() {
    let (host, sim) = setup();
    let wrong = "wrong-session-0f3e9a77";
    let run = host.run("test-connection", &json!({"app": app(&sim.api_url(), wrong)}));
    assert_exit(&run, 1);
    assert_eq!(run.error_kind(), Some("connection-check-failed"));
    let checks = run.json["checks"].as_array().unwrap();
    assert_eq!(checks[0]["passed"], true, "getchecksum accepts a valid appid alone");
    assert_eq!(checks[1]["passed"], false);
    assert!(run.error_message().contains("rejected the session token"), "{}", run.error_message());
    assert!(!run.all_output().contains(wrong), "the (wrong) token leaked:\n{}", run.all_output());
}

#[test]
fn create_verifies_the_exact_user_and_changes_nothing() {
    let (host, sim) = setup();
    let run = host.run("create", &one(&sim, Some("12")));
    assert_exit(&run, 0);
    let outcome = &run.json["outcome"];
    assert_eq!(outcome["facts"]["cloudpe-uid"], "12");
    assert_eq!(outcome["facts"]["cloudpe-status"], "1 (active)", "the decoy 120 (inactive) must not be read");
    assert_eq!(outcome["changed_remote"], false);
    assert!(sim.status_changes().is_empty());
    assert_no_token(&run);
}

#[test]
fn create_for_a_uid_that_only_matches_decoys_is_not_found() {
    let (host, sim) = setup();
    // "1" is a substring of 12, 120, 13, ... but no user has uid 1.
    for uid in ["1", "99"] {
        let run = host.run("create", &one(&sim, Some(uid)));
        assert_exit(&run, 1);
        assert_eq!(run.error_kind(), Some("not-found"), "{}", run.stdout);
        assert!(run.error_message().contains(&format!("uid {uid}")));
    }
}

#[test]
fn suspend_and_unsuspend_change_the_cloudpe_status_with_a_post() {
    let (host, sim) = setup();
    let run = host.run("suspend", &one(&sim, Some("12")));
    assert_exit(&run, 0);
    assert_eq!(sim.account(12).unwrap().status, 2);
    assert_eq!(run.json["outcome"]["changed_remote"], true);
    let request = sim.requests().pop().unwrap();
    assert_eq!((request.http_method.as_str(), request.api_method.as_str()), ("POST", "setaccountstatus"));
    assert!(!request.path.contains("session"), "the token must not travel in the URL of a state change");

    // Idempotent: suspending again succeeds.
    assert_exit(&host.run("suspend", &one(&sim, Some("12"))), 0);
    let run = host.run("unsuspend", &one(&sim, Some("12")));
    assert_exit(&run, 0);
    assert_eq!(sim.account(12).unwrap().status, 1);
    assert_eq!(sim.account(120).unwrap().status, 2, "the decoy is untouched");
    assert_eq!(sim.status_changes(), vec![(12, 2), (12, 2), (12, 1)]);
    assert_no_token(&run);
}

#[test]
fn suspend_of_an_unknown_user_is_not_found_and_changes_nothing() {
    let (host, sim) = setup();
    let run = host.run("suspend", &one(&sim, Some("99")));
    assert_exit(&run, 1);
    assert_eq!(run.error_kind(), Some("not-found"));
    assert!(
        run.error_message().contains("uid 99") && run.error_message().contains("client #11"),
        "{}",
        run.error_message()
    );
    assert!(sim.status_changes().is_empty());
}

#[test]
fn a_missing_or_invalid_cloudpeid_is_a_configuration_error_naming_the_client() {
    let (host, sim) = setup();
    for (uid, needle) in
        [(None, "no `cloudpeid`"), (Some(""), "no `cloudpeid`"), (Some("abc"), "\"abc\""), (Some("-4"), "\"-4\"")]
    {
        for op in ["create", "suspend", "unsuspend"] {
            let run = host.run(op, &one(&sim, uid));
            assert_exit(&run, 1);
            assert_eq!(run.error_kind(), Some("configuration"));
            let message = run.error_message();
            // Create (contract 2.4) links by the client's email when it has no id: none here.
            let needle = match (op, uid) {
                ("create", None | Some("")) => "no email to link by",
                _ => needle,
            };
            assert!(message.contains("client #11") && message.contains(needle), "{op} {uid:?}: {message}");
        }
    }
    assert_eq!(sim.request_count(), 0, "nothing is sent for a client without a valid id");
}

#[test]
fn terminate_makes_no_api_call_by_default_and_says_so() {
    let (host, sim) = setup();
    let run = host.run("terminate", &one(&sim, Some("12")));
    assert_exit(&run, 0);
    assert!(run.json["outcome"]["message"].as_str().unwrap().contains("no API call made"));
    assert_eq!(run.json["outcome"]["changed_remote"], false);
    assert_eq!(sim.request_count(), 0);

    let mut request = one(&sim, Some("12"));
    request["app"]["custom"] = json!({"On terminate": "deactivate"});
    let run = host.run("terminate", &request);
    assert_exit(&run, 0);
    assert_eq!(sim.account(12).unwrap().status, 2);
}

#[test]
fn api_errors_and_http_failures_are_named_and_change_nothing() {
    let (host, sim) = setup();
    let cases: Vec<(FaultKind, &str, &str)> = vec![
        (FaultKind::ApiError { result: 99, error: "internal".into() }, "remote-api", "internal error"),
        (FaultKind::ApiError { result: 8202, error: "permission denied".into() }, "authentication", "platform-admin"),
        (
            FaultKind::ApiError { result: 702, error: format!("session [{TOKEN}] is not valid") },
            "authentication",
            "rejected the session token",
        ),
        (FaultKind::Http500, "transport", "HTTP 500"),
        (FaultKind::Html502, "transport", "HTTP 502"),
        (FaultKind::TruncatedJson, "transport", "truncated"),
        (FaultKind::Reset, "transport", "could not reach CloudPe"),
    ];
    let mut ran = 0;
    let mut expected_changes = vec![];
    for op in ["create", "suspend", "unsuspend"] {
        for (fault, kind, needle) in &cases {
            sim.clear_faults();
            // A truncated reply is cut after CloudPe applied the change: the write happened, the
            // answer was lost. The (idempotent) change is retried, 3 attempts in all, and the
            // operation still reports failure.
            if *fault == FaultKind::TruncatedJson && op != "create" {
                expected_changes.extend([(16, if op == "suspend" { 2 } else { 1 }); 3]);
            }
            sim.add_fault(FaultRule::new(fault.clone()));
            let run = host.run(op, &one(&sim, Some("16")));
            assert_exit(&run, 1);
            assert_eq!(run.error_kind(), Some(*kind), "{op} {fault:?}: {}", run.stdout);
            assert!(run.error_message().contains(needle), "{op} {fault:?}: {}", run.error_message());
            assert_no_token(&run);
            ran += 1;
        }
    }
    assert_eq!(sim.status_changes(), expected_changes, "no other fault case changed anything");
    let _ = writeln!(std::io::stderr(), "[operations] {ran} API error and HTTP failure cases ran");
}

#[test]
fn a_hung_api_is_a_timeout_within_the_configured_limit() {
    let (host, sim) = setup();
    sim.add_fault(FaultRule::new(FaultKind::Timeout));
    let run =
        host.run_args(&["suspend", "--read-timeout-secs", "1"], one(&sim, Some("12")).to_string().as_bytes(), &[]);
    assert_exit(&run, 1);
    assert_eq!(run.error_kind(), Some("transport"));
    assert!(run.error_message().contains("timed out"), "{}", run.error_message());
    assert!(run.elapsed.as_secs_f64() < 10.0, "took {:?}", run.elapsed);
}

#[test]
fn an_unreachable_api_is_a_transport_error() {
    let host = Host::from_env();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let request =
        json!({"app": app(&format!("http://127.0.0.1:{port}"), TOKEN), "account": account(1, 2, "Active", Some("12"))});
    let run = host.run("suspend", &request);
    assert_exit(&run, 1);
    assert_eq!(run.error_kind(), Some("transport"));
    assert!(run.error_message().contains("connection refused"), "{}", run.error_message());
}

#[test]
fn a_wrong_host_url_path_is_a_configuration_error() {
    let (host, sim) = setup();
    let request = json!({"app": app(&format!("{}/nothing-here", sim.base_url()), TOKEN), "account": account(1, 2, "Active", Some("12"))});
    let run = host.run("suspend", &request);
    assert_exit(&run, 1);
    assert_eq!(run.error_kind(), Some("configuration"));
    assert!(run.error_message().contains("HTTP 404"), "{}", run.error_message());
}

#[test]
fn sync_decides_each_account_and_writes_nothing_remotely() {
    let (host, sim) = setup();
    let accounts = json!([
        account(1, 11, "Suspended", Some("12")),  // active on CloudPe -> Active
        account(2, 12, "Suspended", Some("120")), // inactive -> unchanged
        account(3, 13, "Active", Some("13")),     // login locked -> Suspended
        account(4, 14, "Active", Some("14")),     // being destroyed -> Terminated
        account(5, 15, "Active", Some("15")),     // unknown status 7 -> error
        account(6, 16, "Active", Some("1")),      // only decoys match -> error
        account(7, 17, "Active", None),           // no cloudpeid -> error
        account(8, 18, "Pending", Some("12")),    // not a candidate
        account(9, 19, "Cancelled", Some("12")),  // not a candidate
    ]);
    let run = host.run("sync", &json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts}));
    assert_exit(&run, 0);
    let decisions = run.json["decisions"].as_array().unwrap();
    let kinds: Vec<(&str, Option<&str>)> =
        decisions.iter().map(|d| (d["decision"].as_str().unwrap(), d["to"].as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("change", Some("Active")),
            ("unchanged", None),
            ("change", Some("Suspended")),
            ("change", Some("Terminated")),
            ("error", None),
            ("error", None),
            ("error", None),
            ("skipped", None),
            ("skipped", None),
        ]
    );
    assert_eq!(decisions[4]["error"]["kind"], "unexpected");
    assert_eq!(decisions[5]["error"]["kind"], "not-found");
    assert_eq!(decisions[6]["error"]["kind"], "configuration");
    assert_eq!(decisions[0]["facts"]["cloudpe-uid"], "12");
    let summary = &run.json["summary"];
    assert_eq!(
        (summary["change"].as_u64(), summary["error"].as_u64(), summary["skipped"].as_u64()),
        (Some(3), Some(3), Some(2))
    );
    assert!(sim.status_changes().is_empty());
    assert_no_token(&run);
}

#[test]
fn sync_with_failing_lookups_never_decides_a_change() {
    let (host, sim) = setup();
    sim.add_fault(FaultRule::new(FaultKind::Html502).method("getaccounts"));
    let accounts = json!([account(1, 11, "Suspended", Some("12")), account(3, 13, "Active", Some("13"))]);
    let run = host.run("sync", &json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts}));
    assert_exit(&run, 0);
    for d in run.json["decisions"].as_array().unwrap() {
        assert_eq!(d["decision"], "error", "{d}");
        assert_eq!(d["error"]["kind"], "transport");
    }
}

#[test]
fn malformed_requests_are_bad_input_naming_the_field() {
    let (host, sim) = setup();
    let good = one(&sim, Some("12"));
    let mut no_client = good.clone();
    no_client["account"].as_object_mut().unwrap().remove("client_id");
    let mut bad_status = good.clone();
    bad_status["account"]["status"] = json!("Actve");
    let mut no_app = good.clone();
    no_app.as_object_mut().unwrap().remove("app");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"app\": ".to_vec(), "not valid JSON"),
        (b"".to_vec(), "empty"),
        (b"[1,2]".to_vec(), "expected struct"),
        (no_client.to_string().into_bytes(), "account: missing field `client_id`"),
        (bad_status.to_string().into_bytes(), "account.status"),
        (no_app.to_string().into_bytes(), "missing field `app`"),
    ];
    for (stdin, needle) in cases {
        let run = host.run_args(&["suspend"], &stdin, &[]);
        assert_exit(&run, 2);
        assert_eq!(run.error_kind(), Some("bad-input"));
        assert!(run.error_message().contains(needle), "{:?}: {}", String::from_utf8_lossy(&stdin), run.error_message());
        assert_no_token(&run);
    }
    assert_eq!(sim.request_count(), 0);
}

#[test]
fn a_missing_or_invalid_component_is_refused() {
    let host = Host::from_env();
    let dir = std::env::temp_dir().join(format!("hbm-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("not-a-component.wasm");
    std::fs::write(&text, b"hello").unwrap();
    let request = json!({"app": app("http://127.0.0.1:9", TOKEN)}).to_string();
    let missing =
        host.run_bare(&["test-connection", "--component", "/nonexistent/module.wasm"], request.as_bytes(), &[]);
    assert_exit(&missing, 3);
    assert_eq!(missing.error_kind(), Some("module-refused"));
    assert!(missing.error_message().contains("/nonexistent/module.wasm"));
    let garbage = host.run_bare(&["test-connection", "--component", text.to_str().unwrap()], request.as_bytes(), &[]);
    assert_exit(&garbage, 3);
    assert!(garbage.error_message().contains("not a valid WebAssembly component"), "{}", garbage.error_message());
    let none = host.run_bare(&["test-connection"], request.as_bytes(), &[]);
    assert_exit(&none, 2);
    assert!(none.error_message().contains("HOSTBILL_MODULE_COMPONENT"));
    // The component loads while the request is parsed; a bad request is still the error named.
    let both = host.run_bare(&["test-connection", "--component", "/nonexistent/module.wasm"], b"{\"app\": ", &[]);
    assert_exit(&both, 2);
    assert!(both.error_message().contains("not valid JSON"), "{}", both.error_message());
    // The environment variable works as well as the flag.
    let via_env = host.run_bare(&["info"], b"", &[("HOSTBILL_MODULE_COMPONENT", host.component.to_str().unwrap())]);
    assert_exit(&via_env, 0);
    for run in [&missing, &garbage, &none] {
        assert_no_token(run);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_command_has_help() {
    let host = Host::from_env();
    for command in
        [&[][..], &["info"], &["test-connection"], &["create"], &["suspend"], &["unsuspend"], &["terminate"], &["sync"]]
    {
        let mut args: Vec<&str> = command.to_vec();
        args.push("--help");
        let run = host.run_bare(&args, b"", &[]);
        assert_exit(&run, 0);
        assert!(run.stdout.contains("Usage:"), "{args:?}: {}", run.stdout);
    }
    let run = host.run_bare(&["--help"], b"", &[]);
    assert!(run.stdout.contains("Exit codes"), "{}", run.stdout);
}
