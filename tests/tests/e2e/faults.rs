//! End to end: every operation and the sync against each fault of the simulated CloudPe, once
//! (a transient fault: the retry must recover) and for good (the error must name the fault in
//! words an admin can act on). No case may change a status wrongly.

use std::time::Duration;

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator};
use serde_json::{Value, json};

const TOKEN: &str = "faults-session-token-93c0ab";

/// A fault, the error kind it must give when it lasts, and words the message must contain.
fn faults() -> Vec<(&'static str, FaultKind, &'static str, &'static str)> {
    vec![
        ("HTTP 500", FaultKind::Http500, "transport", "HTTP 500"),
        ("HTML 502", FaultKind::Html502, "transport", "HTTP 502"),
        ("timeout", FaultKind::Timeout, "transport", "timed out"),
        ("connection reset", FaultKind::Reset, "transport", "could not reach CloudPe"),
        ("truncated JSON", FaultKind::TruncatedJson, "transport", "truncated"),
        ("result 99", FaultKind::ApiError { result: 99, error: "internal".into() }, "remote-api", "internal error"),
        (
            "session rejected",
            FaultKind::ApiError { result: 702, error: format!("session [{TOKEN}] is not valid") },
            "authentication",
            "rejected the session token",
        ),
        (
            "permission denied",
            FaultKind::ApiError { result: 8202, error: "denied".into() },
            "authentication",
            "platform-admin",
        ),
    ]
}

fn users() -> Vec<Account> {
    vec![
        Account::new(12, 1),
        Account::new(120, 2),
        Account::new(13, 1).locked(),
        Account::new(16, 2),
        Account::new(17, 9),
    ]
}

fn run(host: &Host, sim: &Simulator, op: &str) -> HostRun {
    let mut app = app(&sim.api_url(), TOKEN);
    app["custom"] = json!({"On terminate": "deactivate"});
    let request = match op {
        "test-connection" => json!({"app": app}),
        "sync" => json!({"app": app, "accounts": [
            account(1, 1, "Suspended", Some("12")), account(2, 2, "Active", Some("120")),
            account(3, 3, "Active", Some("13")), account(4, 4, "Suspended", Some("16")),
        ]}),
        _ => json!({"app": app, "account": account(1, 1, "Active", Some("12"))}),
    };
    host.run_args(&[op, "--read-timeout-secs", "1"], request.to_string().as_bytes(), &[])
}

/// The right decisions for the sync's four accounts.
const SYNC_TRUTH: [(&str, Option<&str>); 4] =
    [("change", Some("Active")), ("change", Some("Suspended")), ("change", Some("Suspended")), ("unchanged", None)];

fn sync_decisions(run: &HostRun) -> Vec<(String, Option<String>)> {
    run.json["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["decision"].as_str().unwrap().to_string(), d["to"].as_str().map(str::to_string)))
        .collect()
}

#[test]
fn every_operation_survives_every_fault() {
    let host = Host::from_env();
    for op in ["test-connection", "create", "suspend", "unsuspend", "terminate", "sync"] {
        for (name, fault, kind, words) in faults() {
            for lasting in [false, true] {
                let sim =
                    Simulator::start(SimConfig { session: TOKEN.into(), accounts: users(), ..SimConfig::default() })
                        .unwrap();
                let rule = FaultRule::new(fault.clone());
                sim.add_fault(if lasting { rule } else { rule.times(1) });
                let result = run(&host, &sim, op);
                let context =
                    format!("{op} / {name} / {}:\n{}", if lasting { "lasting" } else { "once" }, result.all_output());
                assert!(!result.all_output().contains(TOKEN), "token leaked: {context}");
                let retryable = !matches!(fault, FaultKind::ApiError { result: 702 | 8202, .. });
                let recovers = !lasting && retryable;
                match op {
                    // Rejected credentials go with every request: the sync stops with one error
                    // instead of failing each account.
                    "sync" if kind == "authentication" => {
                        assert_eq!(result.code, 1, "{context}");
                        assert_eq!(result.error_kind(), Some(kind), "{context}");
                        assert!(result.error_message().contains(words), "{context}");
                        assert!(result.json["decisions"].is_null(), "{context}");
                        assert!(sim.status_changes().is_empty(), "{context}");
                    }
                    "sync" => {
                        assert_eq!(result.code, 0, "{context}");
                        let decisions = sync_decisions(&result);
                        for (i, (decision, to)) in decisions.iter().enumerate() {
                            let (truth, truth_to) = SYNC_TRUTH[i];
                            if recovers {
                                assert_eq!((decision.as_str(), to.as_deref()), (truth, truth_to), "{context}");
                            } else {
                                assert!(
                                    decision == "error" || (decision == truth && to.as_deref() == truth_to),
                                    "wrong decision: {context}"
                                );
                            }
                        }
                        if lasting {
                            let errors: Vec<&Value> = result.json["decisions"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .filter(|d| d["decision"] == "error")
                                .collect();
                            assert_eq!(errors.len(), 4, "{context}");
                            assert!(errors.iter().all(|d| d["error"]["kind"] == kind), "{context}");
                        }
                        assert!(sim.status_changes().is_empty(), "{context}");
                    }
                    _ if recovers => {
                        assert_eq!(result.code, 0, "{context}");
                        let expected_status = match op {
                            "suspend" | "terminate" => 2,
                            _ => 1,
                        };
                        assert_eq!(sim.account(12).unwrap().status, expected_status, "{context}");
                    }
                    _ => {
                        assert_eq!(result.code, 1, "{context}");
                        let expected_kind = if op == "test-connection" { "connection-check-failed" } else { kind };
                        assert_eq!(result.error_kind(), Some(expected_kind), "{context}");
                        assert!(result.error_message().contains(words), "{context}");
                        if fault != FaultKind::TruncatedJson {
                            assert!(sim.status_changes().is_empty(), "{context}");
                        }
                        assert_eq!(sim.account(120).unwrap().status, 2, "decoy untouched: {context}");
                    }
                }
                assert!(result.elapsed < Duration::from_secs(20), "{context}");
                // The case tested something only if the fault was hit: a transient rule is used
                // up by its one hit, a lasting one saw the operation's requests.
                if lasting {
                    assert!(sim.request_count() > 0, "the operation never reached CloudPe: {context}");
                } else {
                    assert_eq!(sim.pending_faults(), 0, "the fault was never hit: {context}");
                }
            }
        }
    }
}

#[test]
fn an_unknown_status_value_is_reported_and_changes_nothing() {
    let host = Host::from_env();
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), accounts: users(), ..SimConfig::default() }).unwrap();
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 1, "Active", Some("17"))});
    let create = host.run("create", &request);
    assert_eq!(create.code, 1);
    assert_eq!(create.error_kind(), Some("unexpected"));
    assert!(create.error_message().contains("9 (unknown)"), "{}", create.error_message());
    let sync = host
        .run("sync", &json!({"app": app(&sim.api_url(), TOKEN), "accounts": [account(1, 1, "Active", Some("17"))]}));
    assert_eq!(sync.json["decisions"][0]["decision"], "error");
    assert_eq!(sync.json["decisions"][0]["error"]["kind"], "unexpected");
    assert!(sim.status_changes().is_empty());
}
