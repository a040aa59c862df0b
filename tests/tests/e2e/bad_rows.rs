//! End to end: one bad account row never fails the whole sync. A status outside HostBill's six,
//! a status of 10 MB or an over-long `cloudpeid` becomes that account's own `error` decision,
//! its value quoted short, while the other accounts are decided as usual (exit 0). Single
//! operations keep refusing bad input (exit 2), with a short message too.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::{Value, json};

const TOKEN: &str = "bad-rows-session-token-77b1";

/// CloudPe users 1000 (active), 1001 (inactive), 1002 (active, login locked).
fn simulator() -> Simulator {
    let users = vec![Account::new(1000, 1), Account::new(1001, 2), Account::new(1002, 1).locked()];
    Simulator::start(SimConfig { session: TOKEN.into(), accounts: users, ..SimConfig::default() }).unwrap()
}

/// Good accounts 1..=3 around the bad row (id 50, placed second), and what each good one must get:
/// (id, decision, HostBill status it maps to).
fn good_accounts() -> (Vec<Value>, [(u64, &'static str, &'static str); 3]) {
    let rows = vec![
        account(1, 11, "Active", Some("1000")),
        account(2, 12, "Active", Some("1001")),
        account(3, 13, "Active", Some("1002")),
    ];
    (rows, [(1, "unchanged", "Active"), (2, "change", "Suspended"), (3, "change", "Suspended")])
}

/// Syncs the good accounts with `bad` as the second row; checks the good decisions and returns the
/// run and the bad row's decision.
fn sync_with(host: &Host, sim: &Simulator, bad: Value) -> (HostRun, Value) {
    let (mut rows, expected) = good_accounts();
    rows.insert(1, bad);
    let request = json!({"app": app(&sim.api_url(), TOKEN), "accounts": rows}).to_string();
    let run = host.run_args(&["sync"], request.as_bytes(), &[]);
    assert_eq!(run.code, 0, "one bad row must not fail the sync: {}", cut(&run.all_output()));
    assert!(run.stdout.len() < 16 * 1024, "the report repeats the bad value: {} bytes", run.stdout.len());
    let decisions = run.json["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 4, "{}", run.stdout);
    for (d, (id, kind, to)) in [&decisions[0], &decisions[2], &decisions[3]].into_iter().zip(expected) {
        assert_eq!(d["account_id"], id, "{d}");
        assert_eq!(d["decision"], kind, "{d}");
        if kind == "change" {
            assert_eq!(d["to"], to, "{d}");
        }
    }
    assert_eq!(run.json["summary"]["accounts"], 4);
    assert_eq!(run.json["summary"]["error"], 1);
    let bad = decisions[1].clone();
    assert_eq!(bad["decision"], "error", "{bad}");
    let message = bad["error"]["message"].as_str().unwrap_or("");
    assert!(message.len() < 400, "the error is not short: {} bytes", message.len());
    (run, bad)
}

fn cut(text: &str) -> String {
    text.chars().take(2000).collect()
}

#[test]
fn a_status_outside_hostbills_six_is_that_accounts_error() {
    let host = Host::from_env();
    let sim = simulator();
    for (status, quoted) in [(json!(""), "\"\""), (json!(null), "null"), (json!("Deleted"), "\"Deleted\"")] {
        let (_, bad) = sync_with(
            &host,
            &sim,
            json!({"id": 50, "client_id": 15, "status": status,
            "custom_fields": {"cloudpeid": "1000"}}),
        );
        assert_eq!(bad["account_id"], 50, "{bad}");
        assert_eq!(bad["error"]["kind"], "bad-input", "{bad}");
        let message = bad["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("status {quoted} is not a HostBill status")), "{message}");
        assert!(message.contains("Pending, Active, Suspended, Terminated, Cancelled, Fraud"), "{message}");
    }
}

#[test]
fn a_10_mb_status_is_quoted_short() {
    let host = Host::from_env();
    let sim = simulator();
    let status = "Deleted".repeat(1_500_000);
    let (_, bad) = sync_with(
        &host,
        &sim,
        json!({"id": 50, "client_id": 15, "status": status,
        "custom_fields": {"cloudpeid": "1000"}}),
    );
    assert_eq!(bad["error"]["kind"], "bad-input", "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(message.contains("status \"DeletedDeleted"), "{message}");
    assert!(message.contains(&format!("({} bytes)", status.len())), "the length is named: {message}");
}

#[test]
fn a_cloudpeid_over_64_kib_is_that_accounts_error() {
    let host = Host::from_env();
    let sim = simulator();
    let huge = "1234567890".repeat(7000); // 70,000 digits: not a CloudPe user id
    let (_, bad) = sync_with(
        &host,
        &sim,
        json!({"id": 50, "client_id": 15, "status": "Active", "custom_fields": {"cloudpeid": huge}}),
    );
    assert_eq!(bad["account_id"], 50, "{bad}");
    assert_eq!(bad["error"]["kind"], "configuration", "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(message.contains("client #15") && message.contains("cloudpeid"), "{message}");
    assert!(message.contains("(70000 bytes)") && message.contains("\"1234567890"), "{message}");
}

#[test]
fn rows_without_a_readable_id_keep_their_place() {
    let host = Host::from_env();
    let sim = simulator();
    let (_, bad) = sync_with(&host, &sim, json!({"id": "x7", "status": "Active", "custom_fields": []}));
    assert_eq!(bad["account_id"], Value::Null, "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("account row 2") && message.contains("\"x7\" is not a positive whole number"),
        "{message}"
    );
    assert!(message.contains("missing field `client_id`"), "{message}");
    let (_, bad) = sync_with(&host, &sim, json!(null));
    assert!(bad["error"]["message"].as_str().unwrap().contains("the row is null"), "{bad}");
}

#[test]
fn single_operations_still_fail_fast_with_a_short_message() {
    let host = Host::from_env();
    let sim = simulator();
    let status = "Deleted".repeat(1_500_000);
    for bad in [json!("Deleted"), json!(status)] {
        let request = json!({"app": app(&sim.api_url(), TOKEN),
            "account": {"id": 1, "client_id": 11, "status": bad, "custom_fields": {"cloudpeid": "1000"}}});
        let run = host.run("suspend", &request);
        assert_eq!(run.code, 2, "{}", cut(&run.all_output()));
        assert_eq!(run.error_kind(), Some("bad-input"));
        assert!(run.error_message().contains("account.status: \"Deleted"), "{}", cut(run.error_message()));
        assert!(run.stdout.len() < 4096, "the error repeats the value: {} bytes", run.stdout.len());
    }
    assert_eq!(sim.request_count(), 0, "nothing ran");
}
