//! End to end: a sync that degrades instead of collapsing. The deadline returns the decisions
//! made so far; a dead API or rejected credentials stop the sync with one error after a bounded
//! number of requests; a write whose reply was lost is read back; users that shift between pages
//! while the list is read are looked up; plain http is allowed but never silent.

use std::collections::BTreeMap;

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator, population};
use serde_json::{Value, json};

const TOKEN: &str = "degrade-session-token-7d21b0";
/// The message of an account whose CloudPe user was not read in time (guest `api.rs`).
const NOT_READ: &str = "not read before the deadline";

fn sim_with(users: Vec<Account>) -> Simulator {
    Simulator::start(SimConfig { session: TOKEN.into(), accounts: users, ..SimConfig::default() }).unwrap()
}

/// Active HostBill accounts 1..=n pointing at uids `first_uid`.. in order.
fn accounts_for(first_uid: u64, n: u64) -> Vec<Value> {
    (0..n).map(|i| account(i + 1, 100 + i, "Active", Some(&(first_uid + i).to_string()))).collect()
}

fn sync(host: &Host, url: &str, token: &str, accounts: &[Value], args: &[&str]) -> HostRun {
    let request = json!({"app": app(url, token), "accounts": accounts});
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    host.run_args(&all, request.to_string().as_bytes(), &[])
}

/// The decision of each account id.
fn by_account(run: &HostRun) -> BTreeMap<u64, Value> {
    let decisions = run.json["decisions"].as_array().unwrap_or_else(|| panic!("no decisions: {}", run.all_output()));
    decisions.iter().map(|d| (d["account_id"].as_u64().unwrap(), d.clone())).collect()
}

/// What HostBill should record for a CloudPe user (the mapping table of docs/cloudpe-api.md).
fn expected(user: &Account) -> &'static str {
    match (user.status, user.is_enabled) {
        (1, Some(false)) | (2, _) => "Suspended",
        (1, _) => "Active",
        _ => "Terminated",
    }
}

/// Checks a non-error decision against the user it points at.
fn assert_right(decision: &Value, user: &Account) {
    let want = expected(user);
    match decision["decision"].as_str() {
        Some("unchanged") => assert_eq!(want, "Active", "{decision}"),
        Some("change") => assert_eq!(decision["to"], want, "{decision}"),
        _ => panic!("uid {}: expected a decision, got {decision}", user.uid),
    }
}

#[test]
fn at_the_deadline_the_sync_returns_every_decision_it_has() {
    // 2,000 accounts in 20 pages; the page at startRow 500 never answers. Before, the host
    // stopped the module at the deadline and HostBill got no decision at all.
    let users = population(2000, 1000);
    let sim = sim_with(users.clone());
    sim.add_fault(FaultRule::new(FaultKind::Timeout).method("getaccounts").start_row(500));
    let host = Host::from_env();
    let accounts = accounts_for(1000, 2000);
    let run = sync(
        &host,
        &sim.api_url(),
        TOKEN,
        &accounts,
        &["--strategy", "page-all", "--page-size", "100", "--deadline-secs", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let decisions = by_account(&run);
    assert_eq!(decisions.len(), 2000);
    for (i, user) in users.iter().enumerate() {
        let d = &decisions[&(i as u64 + 1)];
        if (500..600).contains(&i) {
            // On the page that hung: neither a guess nor a change.
            assert_eq!(d["decision"], "error", "{d}");
            assert!(d["error"]["message"].as_str().unwrap().contains(NOT_READ), "{d}");
        } else {
            assert_right(d, user);
        }
    }
    assert!(run.all_output().contains("not read before the deadline"), "{}", run.stderr);
    assert!(run.elapsed.as_secs_f64() < 4.0, "returned within the deadline: {:?}", run.elapsed);
}

#[test]
fn rejected_credentials_stop_the_sync_with_one_error() {
    let sim = sim_with(population(300, 1000));
    let accounts = accounts_for(1000, 300);
    let run = sync(&Host::from_env(), &sim.api_url(), "not-the-token", &accounts, &["--strategy", "exact-lookups"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert_eq!(run.error_kind(), Some("authentication"), "{}", run.all_output());
    assert!(run.json["decisions"].is_null(), "{}", run.stdout);
    assert!(!run.all_output().contains("not-the-token"), "the rejected token is never printed");
    // The first window of concurrent lookups (default 8), and the replacements the module starts
    // for finished lookups before it reads their replies (less than two more windows). Before,
    // every account was looked up (300 requests).
    assert!(sim.request_count() < 3 * 8, "{} requests", sim.request_count());
}

#[test]
fn an_unreachable_api_stops_the_sync_after_one_round() {
    // A port nobody listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/1.0");
    let accounts = accounts_for(1000, 2000);
    let run = sync(
        &Host::from_env(),
        &url,
        TOKEN,
        &accounts,
        &["--strategy", "exact-lookups", "--max-attempts", "3", "--max-concurrency", "8"],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert_eq!(run.error_kind(), Some("transport"));
    assert!(run.error_message().contains("unreachable"), "{}", run.error_message());
    assert!(run.error_message().contains("connection refused"), "{}", run.error_message());
    // The module stops after the first round of 8 lookups failed to connect, without retries;
    // the host also counts the replacements the module started for finished lookups before it
    // read their failures (less than two more rounds). Before, 3 attempts for each of the 2,000.
    let requests = run.json["meter"]["requests"].as_u64().unwrap();
    assert!(requests < 3 * 8, "{requests} requests");
    assert!(run.error_message().contains("none of the first 8 requests could connect"), "{}", run.error_message());
}

#[test]
fn an_unreachable_api_fails_the_whole_sync_whatever_the_strategy() {
    // Issue 25 item 6: with the default strategy (2,000 accounts: paging) and page-all, the sync
    // used to exit 0, "ok": true, with 2,000 per-account transport errors after 6 requests.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/1.0");
    let accounts = accounts_for(1000, 2000);
    for strategy in [None, Some("page-all")] {
        let mut args = vec!["--max-attempts", "3"];
        if let Some(strategy) = strategy {
            args.extend(["--strategy", strategy]);
        }
        let run = sync(&Host::from_env(), &url, TOKEN, &accounts, &args);
        assert_eq!(run.code, 1, "{strategy:?}: {}", run.all_output());
        assert_eq!(run.json["ok"], false, "{strategy:?}");
        assert_eq!(run.error_kind(), Some("transport"), "{strategy:?}");
        let message = run.error_message();
        assert!(
            message.contains(&format!("CloudPe at http://127.0.0.1:{port} is unreachable")),
            "{strategy:?}: {message}"
        );
        assert!(message.contains("connection refused"), "{strategy:?}: {message}");
        assert!(run.json["decisions"].is_null(), "{strategy:?}: no per-account errors: {}", run.stdout);
        let requests = run.json["meter"]["requests"].as_u64().unwrap();
        assert!(requests <= 3 * 8, "{strategy:?}: {requests} requests");
        assert!(!run.all_output().contains(TOKEN), "the token is never printed");
    }
}

#[test]
fn a_write_whose_reply_was_lost_is_read_back() {
    let sim = sim_with(vec![Account::new(12, 1), Account::new(13, 1)]);
    let host = Host::from_env();
    // Applied, then the connection is reset before the reply, every time.
    sim.add_fault(FaultRule::new(FaultKind::Reset.after_applying()).method("setaccountstatus").uid(12));
    let run = host
        .run("suspend", &json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))}));
    assert_eq!(run.code, 0, "{}", run.all_output());
    let message = run.json["outcome"]["message"].as_str().unwrap();
    assert!(message.contains("applied, reply lost"), "{message}");
    assert_eq!(sim.account(12).unwrap().status, 2);
    // Not applied: HTTP 500 before CloudPe did anything, every time.
    sim.add_fault(FaultRule::new(FaultKind::Http500).method("setaccountstatus").uid(13));
    let run = host
        .run("suspend", &json!({"app": app(&sim.api_url(), TOKEN), "account": account(2, 3, "Active", Some("13"))}));
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert_eq!(run.error_kind(), Some("transport"));
    assert!(
        run.error_message().starts_with("not applied: CloudPe user 13 still has status 1"),
        "{}",
        run.error_message()
    );
    assert_eq!(sim.account(13).unwrap().status, 1);
}

#[test]
fn users_shifted_between_pages_are_looked_up_not_reported_missing() {
    // Pages of 100 read one at a time; just before the page at startRow 500 is answered, five
    // users at the front of the list are deleted, so uids 1500..1504 move onto the page at 400,
    // which was already read. Before, they were reported as "no user with uid N".
    let users = population(1000, 1000);
    let sim = sim_with(users.clone());
    sim.add_fault(
        FaultRule::new(FaultKind::ConcurrentDelete((1000..1005).collect()))
            .method("getaccounts")
            .start_row(500)
            .times(1),
    );
    let accounts = accounts_for(1490, 20);
    let run = sync(
        &Host::from_env(),
        &sim.api_url(),
        TOKEN,
        &accounts,
        &["--strategy", "page-all", "--page-size", "100", "--max-concurrency", "1"],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let decisions = by_account(&run);
    for (i, user) in users[490..510].iter().enumerate() {
        assert_right(&decisions[&(i as u64 + 1)], user);
    }
    let lookups = sim.requests().iter().filter(|r| r.params.contains_key("filterValue")).count();
    assert_eq!(lookups, 5, "only the five shifted users were looked up");
}

#[test]
fn plain_http_runs_but_warns_that_the_token_crossed_unencrypted() {
    let sim = sim_with(vec![Account::new(12, 1)]);
    let run = Host::from_env()
        .run("suspend", &json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))}));
    assert_eq!(run.code, 0, "{}", run.all_output());
    let warnings = run.json["warnings"].as_array().unwrap_or_else(|| panic!("no warnings: {}", run.stdout));
    let warning = warnings[0].as_str().unwrap();
    assert!(warning.contains("plain http") && warning.contains("unencrypted"), "{warning}");
    assert!(warning.contains(&sim.base_url().replace("http://", "")), "names the origin: {warning}");
    assert!(warning.contains("\"Session\""), "names the secret App field: {warning}");
    assert!(!run.stdout.contains(TOKEN));
    // No request, no warning: a missing cloudpeid fails before anything is sent.
    let run = Host::from_env()
        .run("suspend", &json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", None)}));
    assert!(run.json["warnings"].is_null(), "{}", run.stdout);
}
