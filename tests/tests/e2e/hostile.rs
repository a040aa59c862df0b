//! End to end: components that misbehave on purpose. Whatever they do, the host answers with a
//! clear error and its documented exit code within the deadline, prints no token, and never
//! panics.

use std::time::Duration;

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use serde_json::json;

const TOKEN: &str = "hostile-session-token-2f8d41";

fn hostile(mode: &str, extra: &[&str]) -> HostRun {
    let host = Host::from_env().with_test_component("hostile");
    let mut app = app("http://127.0.0.1:9/1.0", TOKEN);
    app["custom"] = json!({"mode": mode});
    let request = json!({"app": app, "account": account(1, 2, "Active", Some("12"))});
    let mut args = vec!["suspend"];
    args.extend_from_slice(extra);
    host.run_args(&args, request.to_string().as_bytes(), &[])
}

#[track_caller]
fn assert_contained(run: &HostRun, code: i32, kind: &str, needle: &str, within: Duration) {
    assert_eq!(run.code, code, "{}", run.all_output());
    assert_eq!(run.error_kind(), Some(kind), "{}", run.stdout);
    assert!(run.error_message().contains(needle), "{}", run.error_message());
    assert!(run.elapsed < within, "took {:?}", run.elapsed);
    assert!(!run.all_output().contains(TOKEN), "token leaked:\n{}", run.all_output());
    assert!(!run.stderr.contains("panicked at"), "the host panicked:\n{}", run.stderr);
}

#[test]
fn a_spinning_module_is_stopped_at_the_deadline() {
    let run = hostile("spin", &["--deadline-secs", "1"]);
    assert_contained(&run, 3, "module-trapped", "ran past its 1 s deadline", Duration::from_secs(5));
    assert!(run.elapsed >= Duration::from_millis(900), "stopped before the deadline: {:?}", run.elapsed);
}

#[test]
fn a_module_waiting_on_the_host_forever_is_stopped_at_the_deadline() {
    let run = hostile("sleep", &["--deadline-secs", "1"]);
    assert_contained(&run, 3, "module-trapped", "did not finish within the 1 s deadline", Duration::from_secs(5));
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let run = hostile("alloc", &["--memory-mib", "32"]);
    assert_contained(&run, 3, "module-trapped", "more than its 32 MiB memory limit", Duration::from_secs(20));
    assert!(run.peak_rss_kib < 200 * 1024, "host grew to {} KiB", run.peak_rss_kib);
}

#[test]
fn a_panicking_module_is_a_clear_fault() {
    let run = hostile("panic", &[]);
    assert_contained(&run, 3, "module-trapped", "crashed (it panicked or aborted)", Duration::from_secs(20));
}

#[test]
fn a_module_leaking_the_token_in_logs_and_errors_is_scrubbed() {
    let run = hostile("leak-token", &[]);
    assert_contained(&run, 1, "authentication", "rejected token [REDACTED]", Duration::from_secs(20));
    let logs = run.json["logs"].as_array().unwrap();
    assert_eq!(logs[0]["message"], "the session is [REDACTED]");
}

#[test]
fn a_log_flood_is_bounded_and_stopped() {
    let run = hostile("log-flood", &["--deadline-secs", "2"]);
    assert!(run.code == 0 || run.code == 3, "{}", run.stderr);
    let logs = run.json["logs"].as_array().expect("logs");
    assert!(logs.len() <= 10_001, "{} records kept", logs.len());
    assert!(logs.iter().all(|l| l["message"].as_str().unwrap().len() <= 4096 + 16));
    assert!(run.elapsed < Duration::from_secs(10), "took {:?}", run.elapsed);
    assert!(!run.all_output().contains(TOKEN));
}

#[test]
fn a_response_body_far_larger_than_any_answer_is_cut_at_the_host_limit() {
    use cloudpe_e2e::{FaultKind, FaultRule, SimConfig, Simulator};
    let sim = Simulator::start(SimConfig::default()).unwrap();
    sim.add_fault(FaultRule::new(FaultKind::HugeBody(2 << 30)));
    let host = Host::from_env().with_test_component("hostile");
    let mut app = app(&sim.api_url(), TOKEN);
    app["custom"] = json!({"mode": "huge-body"});
    let request = json!({"app": app, "account": account(1, 2, "Active", Some("12"))});
    let run = host.run_args(&["suspend", "--max-response-mib", "8"], request.to_string().as_bytes(), &[]);
    assert_contained(&run, 1, "transport", "body size exceeds limit: 8388608 bytes", Duration::from_secs(30));
    assert_eq!(run.json["error"]["limit"], json!({"name": "response", "value": "8 MiB"}));
    assert!(run.peak_rss_kib < 300 * 1024, "host grew to {} KiB", run.peak_rss_kib);
}

#[test]
fn an_oversized_answer_is_refused() {
    let run = hostile("huge-answer", &[]);
    assert_contained(&run, 3, "module-trapped", "the host accepts at most 64 KiB", Duration::from_secs(30));
    assert!(run.stdout.len() < 64 * 1024, "the oversized answer was printed");
}

#[test]
fn host_side_resources_a_module_leaks_are_bounded() {
    // 8 KiB header sets that are never dropped live in the host, outside the 16 MiB module limit:
    // without a cap a million of them is 8 GB. The cap: 2,048 resources of at most 16 KiB each.
    let run = hostile("leak-fields", &["--memory-mib", "16"]);
    assert_contained(&run, 3, "module-trapped", "more than 2048 host-side resources", Duration::from_secs(30));
    assert!(run.peak_rss_kib < 120 * 1024, "host grew to {} KiB", run.peak_rss_kib);
    eprintln!("[hostile] leak-fields: host peak RSS {} KiB", run.peak_rss_kib);
}

#[test]
fn the_first_refused_request_ends_the_run_and_few_are_reported() {
    // The module would send 100,000 requests to a forbidden origin.
    let run = hostile("refuse-flood", &[]);
    assert_contained(&run, 3, "egress-denied", "refused a request to http://127.0.0.2:9", Duration::from_secs(20));
    let host_errors = run.json["logs"].as_array().unwrap().iter().filter(|l| l["source"] == "host").count();
    assert!((1..=4).contains(&host_errors), "{host_errors} host records");
    assert!(run.stdout.len() < 4096, "stdout {} bytes", run.stdout.len());
    assert!(run.stderr.len() < 4096, "stderr {} bytes:\n{}", run.stderr.len(), run.stderr);
    assert!(!run.all_output().contains("leaked-in-path"), "a refused request's path was printed");
    eprintln!("[hostile] refuse-flood: stdout {} B, stderr {} B", run.stdout.len(), run.stderr.len());
}

#[test]
fn the_report_as_a_whole_is_bounded() {
    // 100 facts of 30 KiB: each under the per-string cap, 3 MiB together.
    let run = hostile("fact-flood", &["--max-report-mib", "1"]);
    assert_contained(&run, 3, "module-trapped", "larger than 1 MiB (--max-report-mib)", Duration::from_secs(20));
    assert!(run.stdout.len() < 4096, "stdout {} bytes", run.stdout.len());
    let fits = hostile("fact-flood", &[]);
    assert_eq!(fits.code, 0, "under the default limit the same report is printed: {}", fits.stderr);
    assert!(fits.stdout.len() > 3_000_000);
}

#[test]
fn the_request_read_from_stdin_is_bounded() {
    let host = Host::from_env();
    let mut app = app("http://127.0.0.1:9/1.0", TOKEN);
    app["name"] = json!("n".repeat(2 << 20));
    let request = json!({"app": app, "account": account(1, 2, "Active", Some("12"))});
    let run = host.run_args(&["suspend", "--max-request-mib", "1"], request.to_string().as_bytes(), &[]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.error_message().contains("larger than 1 MiB (--max-request-mib)"), "{}", run.stdout);
    assert!(run.peak_rss_kib < 100 * 1024, "host grew to {} KiB", run.peak_rss_kib);
}

/// A sync of accounts 1 and 2 by the hostile module in `mode`.
fn hostile_sync(mode: &str) -> HostRun {
    let host = Host::from_env().with_test_component("hostile");
    let mut app = app("http://127.0.0.1:9/1.0", TOKEN);
    app["custom"] = json!({"mode": mode});
    let accounts = json!([account(1, 2, "Active", Some("12")), account(2, 3, "Active", Some("13"))]);
    host.run_args(&["sync"], json!({"app": app, "accounts": accounts}).to_string().as_bytes(), &[])
}

#[test]
fn a_module_deciding_for_accounts_it_was_not_given_is_stopped_and_nothing_is_decided() {
    for (mode, id, what) in
        [("decide-others", 1000, "which the request did not hold"), ("decide-twice", 1, "a second time")]
    {
        let run = hostile_sync(mode);
        assert_contained(&run, 3, "module-trapped", "contract violation", Duration::from_secs(20));
        let message = run.error_message();
        assert!(message.contains(&format!("account {id}")) && message.contains(what), "{mode}: {message}");
        assert!(message.contains("hostile 0.0.1"), "names the module: {message}");
        let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON report");
        assert!(report.get("decisions").is_none(), "{mode}: no decision of the refused answer is printed: {report}");
    }
}
