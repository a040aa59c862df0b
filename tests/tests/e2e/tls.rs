//! End to end: the real API is HTTPS. Against the simulator serving a certificate from a CA made
//! at test time: refused without that CA, accepted with `--ca-bundle`, and a certificate for
//! another host name refused even with the CA.

use std::io::Write;

use cloudpe_e2e::harness::{Host, HostRun, account, app, target_dir};
use cloudpe_e2e::{Account, SimConfig, Simulator, TestCa};
use serde_json::json;

const TOKEN: &str = "tls-session-token-a61e";

fn https_sim(ca: &TestCa, names: &[&str]) -> Simulator {
    Simulator::start(SimConfig {
        session: TOKEN.into(),
        accounts: vec![Account::new(12, 1)],
        tls: Some(ca.server(names)),
        ..SimConfig::default()
    })
    .unwrap()
}

fn suspend(host: &Host, sim: &Simulator, extra: &[&str]) -> HostRun {
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))});
    let mut args = vec!["suspend", "--max-connections", "4"];
    args.extend_from_slice(extra);
    host.run_args(&args, request.to_string().as_bytes(), &[])
}

#[test]
fn tls_is_verified_against_the_standard_roots_or_the_ca_bundle() {
    let host = Host::from_env();
    let ca = TestCa::new();
    let bundle = target_dir().join(format!("test-ca-{}.pem", std::process::id()));
    std::fs::File::create(&bundle).unwrap().write_all(ca.pem().as_bytes()).unwrap();
    let bundle_arg = bundle.to_str().unwrap();

    let sim = https_sim(&ca, &["localhost", "127.0.0.1"]);
    assert!(sim.api_url().starts_with("https://127.0.0.1:"));

    // Without the test CA: refused, with words an admin can act on, and nothing changed.
    let refused = suspend(&host, &sim, &[]);
    assert_eq!(refused.code, 1, "{}", refused.all_output());
    assert_eq!(refused.error_kind(), Some("transport"));
    assert!(refused.error_message().contains("TLS certificate is not trusted"), "{}", refused.error_message());
    assert!(sim.status_changes().is_empty());

    // With the CA bundle: accepted.
    let accepted = suspend(&host, &sim, &["--ca-bundle", bundle_arg]);
    assert_eq!(accepted.code, 0, "{}", accepted.all_output());
    assert_eq!(sim.account(12).unwrap().status, 2);

    // A certificate for another name: refused even with the CA.
    let other = https_sim(&ca, &["api.other.example"]);
    let mismatch = suspend(&host, &other, &["--ca-bundle", bundle_arg]);
    assert_eq!(mismatch.code, 1, "{}", mismatch.all_output());
    assert!(mismatch.error_message().contains("TLS certificate is not trusted"), "{}", mismatch.error_message());
    assert!(other.status_changes().is_empty());

    // A bundle that is not PEM is bad input, named.
    let junk = target_dir().join(format!("junk-ca-{}.pem", std::process::id()));
    std::fs::write(&junk, b"not a certificate").unwrap();
    let bad = suspend(&host, &sim, &["--ca-bundle", junk.to_str().unwrap()]);
    assert_eq!(bad.code, 2, "{}", bad.all_output());
    assert!(bad.error_message().contains("junk-ca"), "{}", bad.error_message());
    for run in [&refused, &accepted, &mismatch, &bad] {
        assert!(!run.all_output().contains(TOKEN));
    }
    let _ = std::fs::remove_file(bundle);
    let _ = std::fs::remove_file(junk);
}
