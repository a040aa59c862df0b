//! End to end: connections are reused. A sync of many requests keeps to `--max-connections`
//! connections (the simulator counts what it accepts), `--no-keep-alive` opens one per request,
//! keep-alive works over HTTPS with `--ca-bundle`, and a server that closes connections (after a
//! number of requests, or when idle) makes no request fail.

use std::io::Write;
use std::time::Duration;

use cloudpe_e2e::harness::{Host, HostRun, account, app, scratch};
use cloudpe_e2e::{FaultKind, FaultRule, SimConfig, Simulator, TestCa, population};
use serde_json::{Value, json};

const TOKEN: &str = "pool-session-token-5d2b7e";
const FIRST_UID: u64 = 1000;

fn sim(tls: Option<&TestCa>) -> Simulator {
    Simulator::start(SimConfig {
        session: TOKEN.into(),
        accounts: population(200, FIRST_UID),
        tls: tls.map(|ca| ca.server(&["127.0.0.1"])),
        ..SimConfig::default()
    })
    .unwrap()
}

/// A sync of `n` accounts by exact lookups (one request each), with `extra` flags.
fn sync(host: &Host, sim: &Simulator, n: u64, extra: &[&str]) -> HostRun {
    let accounts: Vec<Value> =
        (0..n).map(|i| account(i + 1, 500 + i, "Active", Some(&(FIRST_UID + i).to_string()))).collect();
    let request = json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts});
    let mut args = vec!["sync", "--strategy", "exact-lookups", "--max-concurrency", "8"];
    args.extend_from_slice(extra);
    host.run_args(&args, request.to_string().as_bytes(), &[])
}

/// The run succeeded and every account got a real decision (no error).
fn assert_all_decided(run: &HostRun, n: usize) {
    assert_eq!(run.code, 0, "{}", run.all_output());
    let decisions = run.json["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), n);
    for d in decisions {
        assert!(matches!(d["decision"].as_str(), Some("change" | "unchanged")), "{d}");
    }
    assert!(!run.all_output().contains(TOKEN));
}

/// Writes `ca` to a bundle file of this test's own: tests run in parallel, each with its own CA.
fn ca_bundle(ca: &TestCa, test: &str) -> std::path::PathBuf {
    let bundle = scratch(test).join("ca.pem");
    std::fs::File::create(&bundle).unwrap().write_all(ca.pem().as_bytes()).unwrap();
    bundle
}

#[test]
fn a_sync_reuses_at_most_max_connections_connections() {
    let host = Host::from_env();
    let sim = sim(None);
    let run = sync(&host, &sim, 60, &["--max-connections", "4"]);
    assert_all_decided(&run, 60);
    let (requests, connections) = (sim.request_count(), sim.connection_count());
    assert!(requests >= 60, "one lookup per account: {requests}");
    assert!(connections <= 4, "{connections} connections for {requests} requests, above --max-connections 4");
    assert!(connections * 10 <= requests, "{connections} connections for {requests} requests");
    assert!(sim.max_concurrent_requests() <= 4);
}

#[test]
fn without_keep_alive_each_request_has_its_own_connection() {
    let host = Host::from_env();
    let sim = sim(None);
    let run = sync(&host, &sim, 30, &["--max-connections", "4", "--no-keep-alive"]);
    assert_all_decided(&run, 30);
    assert!(sim.request_count() >= 30);
    assert_eq!(sim.connection_count(), sim.request_count());

    // The environment variable does the same.
    let sim = self::sim(None);
    let accounts: Vec<Value> =
        (0..10).map(|i| account(i + 1, 500 + i, "Active", Some(&(FIRST_UID + i).to_string()))).collect();
    let request = json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts}).to_string();
    let run = host.run_args(
        &["sync", "--strategy", "exact-lookups"],
        request.as_bytes(),
        &[("HOSTBILL_MODULE_NO_KEEP_ALIVE", "true")],
    );
    assert_all_decided(&run, 10);
    assert_eq!(sim.connection_count(), sim.request_count());
}

#[test]
fn keep_alive_works_over_https_with_a_ca_bundle() {
    let host = Host::from_env();
    let ca = TestCa::new();
    let bundle = ca_bundle(&ca, "keep-alive-https");
    let sim = sim(Some(&ca));
    assert!(sim.api_url().starts_with("https://"));
    let run = sync(&host, &sim, 60, &["--max-connections", "4", "--ca-bundle", bundle.to_str().unwrap()]);
    assert_all_decided(&run, 60);
    let (requests, connections) = (sim.request_count(), sim.connection_count());
    assert!(connections <= 4 && connections * 10 <= requests, "{connections} connections for {requests} requests");
    assert_eq!(sim.tls_handshake_count(), connections, "one TLS handshake per connection");

    // Pooling off: a handshake per request.
    let sim = self::sim(Some(&ca));
    let run = sync(&host, &sim, 20, &["--ca-bundle", bundle.to_str().unwrap(), "--no-keep-alive"]);
    assert_all_decided(&run, 20);
    assert_eq!(sim.tls_handshake_count(), sim.request_count());
    let _ = std::fs::remove_file(bundle);
}

#[test]
fn connection_close_answers_make_no_request_fail() {
    let host = Host::from_env();
    let sim = sim(None);
    // Every third answer on a connection says `Connection: close`; no retries allowed, so any
    // request sent on a closed connection would show as an error decision.
    sim.set_keepalive_requests(Some(3));
    let run = sync(&host, &sim, 45, &["--max-connections", "4", "--max-attempts", "1"]);
    assert_all_decided(&run, 45);
    let (requests, connections) = (sim.request_count(), sim.connection_count());
    assert_eq!(requests, 45, "no request failed and was sent again");
    assert!(connections >= requests / 3, "a closed connection was reused: {connections} for {requests}");
    assert!(connections < requests, "open connections were reused: {connections} for {requests}");
}

#[test]
fn connections_the_server_closed_while_idle_are_not_reused() {
    let host = Host::from_env();
    let sim = sim(None);
    // The server drops connections idle for 50 ms; one lookup fails once with a retryable
    // CloudPe error, and its retry comes 100-200 ms later, when every connection is closed.
    sim.set_idle_timeout(Some(Duration::from_millis(50)));
    sim.add_fault(
        FaultRule::new(FaultKind::ApiError { result: 99, error: "internal".into() }).uid(FIRST_UID + 5).times(1),
    );
    let run = sync(&host, &sim, 20, &["--max-connections", "4", "--max-attempts", "2"]);
    assert_all_decided(&run, 20);
    let requests = sim.requests();
    assert_eq!(requests.len(), 21, "the retry succeeded at once");
    let (retry, earlier) = requests.split_last().unwrap();
    let uid = (FIRST_UID + 5).to_string();
    assert!(retry.params.get("filterValue") == Some(&uid) || retry.params.get("uid") == Some(&uid), "{retry:?}");
    assert!(
        earlier.iter().all(|r| r.connection != retry.connection),
        "the retry came on a new connection (the old ones were closed)"
    );
    assert!(sim.connection_count() <= 5, "{} connections", sim.connection_count());
}

#[test]
fn a_stalled_body_over_https_ends_with_the_read_timeout() {
    let host = Host::from_env();
    let ca = TestCa::new();
    let bundle = ca_bundle(&ca, "stalled-body-https");
    let sim = sim(Some(&ca));
    // The answer for one account starts, then never continues: the between-bytes timeout (1 s
    // here) must end that read, not the 30 s deadline.
    sim.add_fault(FaultRule::new(FaultKind::StalledBody).uid(FIRST_UID + 2));
    let run = sync(
        &host,
        &sim,
        6,
        &[
            "--ca-bundle",
            bundle.to_str().unwrap(),
            "--read-timeout-secs",
            "1",
            "--deadline-secs",
            "30",
            "--max-attempts",
            "1",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.elapsed < Duration::from_secs(20), "stopped by the deadline: {:?}", run.elapsed);
    let decisions = run.json["decisions"].as_array().expect("decisions");
    for d in decisions {
        let stalled = d["account_id"] == 3;
        assert_eq!(d["decision"] == "error", stalled, "{d}");
    }
    let _ = std::fs::remove_file(bundle);
}
