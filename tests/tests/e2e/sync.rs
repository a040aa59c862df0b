//! End to end: the bulk sync against the simulated CloudPe. Every decision is checked against an
//! oracle written from the mapping table in docs/cloudpe-api.md; a wrong decision is never allowed,
//! even while pages fail.

use std::collections::BTreeMap;

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator, population};
use serde_json::{Value, json};

const TOKEN: &str = "sync-session-token-c4a9e1";

/// The HostBill status CloudPe's state maps to, or None when it must not change anything.
fn oracle(remote: Option<&Account>) -> Option<&'static str> {
    let a = remote?;
    match (a.status, a.is_enabled) {
        (1, Some(false)) => Some("Suspended"),
        (1, _) => Some("Active"),
        (2, _) => Some("Suspended"),
        (3 | 4, _) => Some("Terminated"),
        _ => None,
    }
}

struct Population {
    sim: Simulator,
    remote: BTreeMap<u64, Account>,
    accounts: Vec<Value>,
}

/// `n` CloudPe users plus odd cases, and HostBill accounts pointing at them (and at nothing).
fn population_of(n: usize) -> Population {
    let mut users = population(n, 1000);
    users.push(Account::new(7, 9)); // unknown status value
    users.push(Account::new(70, 1)); // decoy for uid 7 lookups
    let remote: BTreeMap<u64, Account> = users.iter().map(|a| (a.uid, a.clone())).collect();
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), accounts: users, ..SimConfig::default() }).unwrap();
    let statuses =
        ["Active", "Suspended", "Active", "Active", "Suspended", "Pending", "Terminated", "Cancelled", "Fraud"];
    let mut accounts: Vec<Value> = (0..n as u64)
        .map(|i| account(i + 1, 5000 + i / 2, statuses[(i % 9) as usize], Some(&(1000 + i).to_string())))
        .collect();
    let next = accounts.len() as u64 + 1;
    accounts.push(account(next, 1, "Active", Some("7"))); // unknown status
    accounts.push(account(next + 1, 2, "Active", Some("1"))); // only decoys match: absent
    accounts.push(account(next + 2, 3, "Active", Some("99999999"))); // absent
    accounts.push(account(next + 3, 4, "Suspended", None)); // no cloudpeid
    accounts.push(account(next + 4, 5, "Active", Some("x1"))); // not a number
    Population { sim, remote, accounts }
}

/// Asserts every decision against the oracle; returns how many were errors.
fn check(p: &Population, run: &HostRun, allow_errors_for_present: bool) -> usize {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions = run.json["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), p.accounts.len());
    let mut errors = 0;
    for (input, d) in p.accounts.iter().zip(decisions) {
        assert_eq!(d["account_id"], input["id"]);
        let status = input["status"].as_str().unwrap();
        let kind = d["decision"].as_str().unwrap();
        if !matches!(status, "Active" | "Suspended") {
            assert_eq!(kind, "skipped", "{input} -> {d}");
            continue;
        }
        let uid = input["custom_fields"]["cloudpeid"].as_str().and_then(|v| v.parse::<u64>().ok());
        let expected = uid.and_then(|uid| oracle(p.remote.get(&uid)));
        match (kind, expected) {
            ("error", _) if allow_errors_for_present || expected.is_none() => errors += 1,
            ("unchanged", Some(to)) => assert_eq!(to, status, "{input} -> {d}"),
            ("change", Some(to)) => {
                assert_ne!(to, status, "{input} -> {d}");
                assert_eq!(d["to"], to, "{input} -> {d}");
                assert_eq!(d["from"], status);
                assert_eq!(d["facts"]["cloudpe-uid"], uid.unwrap().to_string());
            }
            _ => panic!("wrong decision for {input}: {d} (expected {expected:?})"),
        }
    }
    errors
}

fn sync(host: &Host, p: &Population, args: &[&str]) -> HostRun {
    let request = json!({"app": app(&p.sim.api_url(), TOKEN), "accounts": p.accounts});
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    host.run_args(&all, request.to_string().as_bytes(), &[])
}

#[test]
fn mixed_population_gets_the_right_decision_by_every_strategy() {
    let host = Host::from_env();
    let p = population_of(2500);
    for strategy in ["auto", "page-all", "exact-lookups"] {
        let before = p.sim.request_count();
        let run = sync(&host, &p, &["--strategy", strategy, "--page-size", "500"]);
        let errors = check(&p, &run, false);
        assert_eq!(errors, 5, "{strategy}: unknown status, two absent uids, missing and bad cloudpeid");
        let requests = p.sim.request_count() - before;
        assert_eq!(run.json["summary"]["requests"], requests as u64, "{strategy}");
        match strategy {
            "page-all" | "auto" => assert_eq!(requests, 6, "{strategy}: 2502 users in pages of 500"),
            _ => assert!(requests >= 1112, "{strategy}: one lookup per distinct uid, got {requests}"),
        }
        assert_eq!(run.json["dry_run"], false);
    }
    assert!(p.sim.status_changes().is_empty(), "sync never writes to CloudPe");
}

#[test]
fn a_mid_sync_outage_yields_zero_wrong_decisions() {
    let host = Host::from_env();
    let p = population_of(3000);
    // One page down for good (startRow 1000: uids 1998..=2497), one flaky (fails twice, then
    // recovers), and every lookup of uid 1999, which lies on the dead page.
    p.sim.add_fault(FaultRule::new(FaultKind::Http500).method("getaccounts").start_row(1000));
    p.sim.add_fault(FaultRule::new(FaultKind::Reset).method("getaccounts").start_row(2000).times(2));
    p.sim.add_fault(FaultRule::new(FaultKind::Html502).method("getaccounts").uid(1999));
    let run = sync(&host, &p, &["--strategy", "page-all", "--page-size", "500", "--max-attempts", "3"]);
    let errors = check(&p, &run, true);
    let decisions = run.json["decisions"].as_array().unwrap();
    let failed: Vec<&Value> = decisions.iter().filter(|d| d["decision"] == "error").collect();
    // The dead page's users were looked up one by one; only uid 1999 (its lookups fail too) and the
    // five odd cases remain errors.
    assert_eq!(errors, 6, "{failed:#?}");
    let uid_1999 = decisions.iter().find(|d| d["account_id"] == 1000).unwrap();
    assert_eq!(uid_1999["decision"], "error", "{uid_1999}");
    assert_eq!(uid_1999["error"]["kind"], "transport");
    let retried =
        p.sim.requests().iter().filter(|r| r.params.get("startRow").map(String::as_str) == Some("2000")).count();
    assert_eq!(retried, 3, "the flaky page was tried until it answered");
    let dead = p.sim.requests().iter().filter(|r| r.params.get("startRow").map(String::as_str) == Some("1000")).count();
    assert_eq!(dead, 3, "the dead page was tried max-attempts times");
}

#[test]
fn dry_run_marks_changes_as_not_to_apply() {
    let host = Host::from_env();
    let p = population_of(300);
    let run = sync(&host, &p, &["--dry-run"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.json["dry_run"], true);
    let decisions = run.json["decisions"].as_array().unwrap();
    assert!(decisions.iter().all(|d| d["decision"] != "change"), "a dry run has no applicable change");
    let would = decisions.iter().filter(|d| d["decision"] == "would-change").count();
    assert!(would > 0);
    assert_eq!(run.json["summary"]["change"].as_u64(), Some(would as u64));
    assert!(run.stderr.contains("dry run"), "{}", run.stderr);
}

#[test]
fn omitting_unchanged_facts_shrinks_the_report_and_changes_no_decision() {
    let host = Host::from_env();
    let p = population_of(3000);
    let full = sync(&host, &p, &[]);
    let lean = sync(&host, &p, &["--omit-unchanged-facts"]);
    // The same decisions, checked against the oracle, in both runs.
    assert_eq!(check(&p, &full, false), check(&p, &lean, false));
    let (full_d, lean_d) = (full.json["decisions"].as_array().unwrap(), lean.json["decisions"].as_array().unwrap());
    let mut unchanged = 0;
    for (f, l) in full_d.iter().zip(lean_d) {
        assert_eq!(f["decision"], l["decision"]);
        match f["decision"].as_str().unwrap() {
            "unchanged" => {
                unchanged += 1;
                assert!(f["facts"]["cloudpe-uid"].is_string(), "{f}");
                assert!(l.get("facts").is_none(), "{l}");
            }
            "change" => assert_eq!(f["facts"], l["facts"], "a change keeps its facts"),
            _ => assert_eq!(f, l),
        }
    }
    assert!(unchanged > 500, "{unchanged} unchanged decisions");
    assert_eq!(full.json["summary"]["unchanged"], lean.json["summary"]["unchanged"]);
    let (full_len, lean_len) = (full.stdout.len(), lean.stdout.len());
    assert!(lean_len < full_len * 3 / 4, "report {lean_len} bytes without unchanged facts, {full_len} with");
}

#[test]
fn progress_lines_and_a_summary_go_to_stderr() {
    let host = Host::from_env();
    let p = population_of(3000);
    let run = sync(&host, &p, &["--page-size", "300"]);
    assert_eq!(run.code, 0);
    let progress: Vec<Value> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .collect();
    let last = progress.last().expect("progress lines on stderr");
    assert_eq!(last["operation"], "sync");
    assert_eq!(last["done"], last["total"]);
    assert_eq!(last["done"], run.json["summary"]["requests"]);
    assert!(run.stderr.lines().any(|l| l.starts_with("sync: 3005 accounts:")), "{}", run.stderr);
}

#[test]
fn a_report_over_its_limit_stops_the_streamed_sync_and_is_still_one_json_object() {
    // The decisions are written as the module emits them (contract 2.2): past --max-report-mib the
    // host stops the module; what was printed is closed into a valid report that says so.
    let host = Host::from_env();
    let p = population_of(12_000);
    let whole = sync(&host, &p, &[]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert!(whole.stdout.len() > 2 * 1024 * 1024, "{} bytes", whole.stdout.len());
    let cut = sync(&host, &p, &["--max-report-mib", "1"]);
    assert_eq!(cut.code, 3, "{}", cut.all_output());
    assert!(cut.json.is_object(), "not one JSON object: {}", &cut.stdout[cut.stdout.len().saturating_sub(300)..]);
    assert_eq!(cut.json["ok"], false);
    assert_eq!(cut.json["error"]["kind"], "module-trapped");
    assert_eq!(cut.json["error"]["limit"], json!({"name": "report", "value": "1 MiB"}));
    let message = cut.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("larger than 1 MiB (--max-report-mib)"), "{message}");
    let printed = cut.json["decisions"].as_array().unwrap();
    assert!(!printed.is_empty() && printed.len() < p.accounts.len(), "{} decisions printed", printed.len());
    assert_eq!(printed[..], whole.json["decisions"].as_array().unwrap()[..printed.len()], "a prefix of the decisions");
    assert!(cut.stdout.len() < 2 * 1024 * 1024, "{} bytes", cut.stdout.len());
}

#[test]
fn one_hundred_thousand_accounts_sync_within_the_memory_cap() {
    let host = Host::from_env();
    let p = population_of(100_000);
    let run = sync(&host, &p, &["--memory-mib", "128", "--max-concurrency", "16"]);
    let errors = check(&p, &run, false);
    assert_eq!(errors, 5);
    assert_eq!(run.json["summary"]["requests"], 101);
}

#[test]
fn the_host_bounds_response_size_and_concurrent_requests() {
    let host = Host::from_env();
    let p = population_of(20_000);
    // One page of 20,000 accounts is about 3 MiB: over a 1 MiB limit, the read fails cleanly.
    let big = sync(
        &host,
        &p,
        &["--strategy", "page-all", "--page-size", "20000", "--max-response-mib", "1", "--max-attempts", "1"],
    );
    assert_eq!(big.code, 0, "{}", big.stderr);
    let first = &big.json["decisions"][0];
    assert_eq!(first["decision"], "error", "{first}");
    assert!(first["error"]["message"].as_str().unwrap().contains("body size exceeds limit: 1048576 bytes"), "{first}");

    // The module asks for 16 requests at once; the host lets 2 through.
    p.sim.set_latency(std::time::Duration::from_millis(30));
    let before = p.sim.max_concurrent_requests();
    assert!(before <= 2, "earlier runs were sequential: {before}");
    let run = sync(
        &host,
        &p,
        &["--strategy", "page-all", "--page-size", "1000", "--max-concurrency", "16", "--max-connections", "2"],
    );
    check(&p, &run, false);
    assert_eq!(p.sim.max_concurrent_requests(), 2, "the host's connection limit held");
    let run = sync(&host, &p, &["--strategy", "page-all", "--page-size", "1000", "--max-concurrency", "16"]);
    check(&p, &run, false);
    assert!(p.sim.max_concurrent_requests() > 2, "without the limit the module's concurrency shows");
}
