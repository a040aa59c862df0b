//! End to end: what the provider's admin sees. The reconciliation of an App's accounts with
//! CloudPe's users, the CloudPe facts behind a decision, and the opt-in call log.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, SimConfig, Simulator, population};
use serde_json::{Value, json};

const TOKEN: &str = "admin-session-token-5e80c3";

fn sim_with(users: Vec<Account>) -> Simulator {
    Simulator::start(SimConfig { session: TOKEN.into(), accounts: users, ..SimConfig::default() }).unwrap()
}

/// An account row with the client's email.
fn with_email(mut row: Value, email: &str) -> Value {
    row["email"] = json!(email);
    row
}

fn reconcile(host: &Host, sim: &Simulator, accounts: &[Value], args: &[&str]) -> HostRun {
    let request = json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts});
    let mut all = vec!["reconcile"];
    all.extend_from_slice(args);
    host.run_args(&all, request.to_string().as_bytes(), &[])
}

#[test]
fn reconciliation_reports_every_broken_link_and_changes_nothing() {
    // 20 users, 1000..1019 (population emails are user{uid}@example.com).
    let sim = sim_with(population(20, 1000));
    let mut accounts: Vec<Value> = (0..10u64)
        .map(|i| {
            with_email(
                account(i + 1, 100 + i, "Active", Some(&(1000 + i).to_string())),
                &format!("user{}@example.com", 1000 + i),
            )
        })
        .collect();
    accounts[1]["email"] = json!("changed@client.example"); // account 2 -> 1001: email differs
    accounts.push(account(11, 111, "Suspended", Some("1005"))); // 1005 shared by accounts 6 and 11
    accounts.push(account(12, 112, "Active", Some("999999"))); // CloudPe has no such user
    accounts.push(account(13, 113, "Active", None)); // no id
    accounts.push(account(14, 114, "Terminated", Some("abc"))); // not an id
    let run = reconcile(&Host::from_env(), &sim, &accounts, &["--page-size", "7"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let r = &run.json["reconciliation"];
    assert_eq!(
        r["counts"],
        json!({"accounts": 14, "without_id": 2, "missing_remote": 1, "shared_users": 1, "unlinked_users": 10,
               "email_differences": 1, "remote_users": 20, "proposed_links": 0, "group_drift": 0}),
        "{r}"
    );
    let without: Vec<u64> =
        r["without_id"].as_array().unwrap().iter().map(|i| i["account_id"].as_u64().unwrap()).collect();
    assert_eq!(without, vec![13, 14]);
    assert!(r["without_id"][1]["detail"].as_str().unwrap().contains("\"abc\""), "{r}");
    assert_eq!(r["missing_remote"], json!([{"account_id": 12, "uid": 999999}]));
    assert_eq!(r["shared_users"], json!([{"uid": 1005, "account_ids": [6, 11]}]));
    // A 2.4 module reviews: nothing to propose (the two without an id have no email), no product
    // names a group.
    assert_eq!((r["proposed_links"].clone(), r["group_drift"].clone()), (json!([]), json!([])), "{r}");
    let unlinked: Vec<u64> =
        r["unlinked_users"].as_array().unwrap().iter().map(|u| u["uid"].as_u64().unwrap()).collect();
    assert_eq!(unlinked, (1010..1020).collect::<Vec<_>>());
    assert_eq!(r["unlinked_users"][0]["email"], "user1010@example.com");
    assert_eq!(
        r["email_differences"],
        json!([{"account_id": 2, "uid": 1001, "hostbill_email": "changed@client.example", "remote_email": "user1001@example.com"}])
    );
    // 20 users in pages of 7: 3 page reads, no lookups, no writes.
    assert_eq!(r["requests"], 3);
    assert_eq!(sim.request_count(), 3);
    assert!(sim.requests().iter().all(|q| q.api_method == "getaccounts" && !q.params.contains_key("filterValue")));
    assert!(sim.status_changes().is_empty());
    assert!(!run.stdout.contains(TOKEN));
}

#[test]
fn a_module_built_before_reconciliation_is_told_to_upgrade() {
    let sim = sim_with(population(3, 1000));
    let host = Host::from_env().with_test_component("contract-2-0");
    let run = reconcile(&host, &sim, &[account(1, 2, "Active", Some("1000"))], &[]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert_eq!(run.error_kind(), Some("module-refused"));
    assert!(run.error_message().contains("does not implement reconcile"), "{}", run.error_message());
    assert_eq!(sim.request_count(), 0);
}

#[test]
fn a_decision_carries_the_cloudpe_users_group_and_creation_date() {
    let sim = sim_with(vec![Account::new(12, 2)]);
    let request = json!({"app": app(&sim.api_url(), TOKEN), "accounts": [account(1, 2, "Active", Some("12"))]});
    let run = Host::from_env().run_args(&["sync", "--strategy", "exact-lookups"], request.to_string().as_bytes(), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let facts = &run.json["decisions"][0]["facts"];
    assert_eq!(facts["cloudpe-group"], "default", "{facts}");
    assert_eq!(facts["cloudpe-created"], "2024-03-01 10:00:00", "{facts}");
    assert_eq!(facts["cloudpe-email"], "user12@example.com");
    assert_eq!(sim.request_count(), 1, "one request per account view");
}

#[test]
fn the_call_log_is_off_by_default_and_masks_the_session_by_name() {
    let sim = sim_with(vec![Account::new(12, 1)]);
    let host = Host::from_env();
    let request = |call_log: Option<&str>| {
        let mut a = app(&sim.api_url(), TOKEN);
        if let Some(value) = call_log {
            a["custom"] = json!({"Call log": value});
        }
        json!({"app": a, "account": account(1, 2, "Active", Some("12"))})
    };
    let off = host.run("suspend", &request(None));
    assert_eq!(off.code, 0, "{}", off.all_output());
    assert!(off.json["calls"].is_null(), "off by default: {}", off.stdout);

    let on = host.run("unsuspend", &request(Some("on")));
    assert_eq!(on.code, 0, "{}", on.all_output());
    let calls = on.json["calls"].as_array().unwrap_or_else(|| panic!("no calls: {}", on.stdout));
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["method"], "setaccountstatus");
    assert_eq!(call["params"]["session"], "********", "masked by name, fixed length: {call}");
    assert_eq!(call["params"]["uid"], "12");
    assert_eq!(call["params"]["status"], "1");
    assert_eq!(call["params"]["appid"], "cluster");
    assert_eq!(call["http_status"], 200);
    assert_eq!(call["result"], 0);
    assert!(call["duration_ms"].as_u64().is_some(), "{call}");
    assert!(call["reply"].as_str().unwrap().contains("\"result\":0"), "{call}");
    assert!(!on.stdout.contains(TOKEN));

    // A rejected token: CloudPe echoes it in its error; the call log shows neither it nor its length.
    let mut bad = request(Some("on"));
    bad["app"]["field2"] = json!("wrong-token-that-is-long-1234567890");
    let run = host.run("suspend", &bad);
    assert_eq!(run.code, 1);
    let call = &run.json["calls"][0];
    assert_eq!(call["params"]["session"], "********");
    assert_eq!(call["result"], 702, "{call}");
    assert!(!run.stdout.contains("wrong-token-that-is-long"), "{}", run.stdout);

    // A value other than on/off is a clear configuration error.
    let run = host.run("suspend", &request(Some("loud")));
    assert_eq!(run.code, 1);
    assert!(run.error_message().contains("Call log field is \"loud\""), "{}", run.error_message());
}
