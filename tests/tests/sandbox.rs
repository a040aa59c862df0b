//! End to end: the sandbox refuses every request outside the origin of the App's endpoint URL,
//! whatever the component asks for, and the refused server never sees a connection.

use cloudpe_e2e::harness::{Host, account, app};
use cloudpe_e2e::{SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "sandbox-session-token-8e21";

fn probe(host: &Host, app_url: &str, target: &str) -> cloudpe_e2e::harness::HostRun {
    let mut app = app(app_url, TOKEN);
    app["field5"] = json!(target);
    host.run("suspend", &json!({"app": app, "account": account(1, 2, "Active", Some("1"))}))
}

#[test]
fn requests_outside_the_app_origin_are_refused_before_connecting() {
    let host = Host::from_env().with_test_component("egress-probe");
    let app_sim = Simulator::start(SimConfig::default()).unwrap();
    let other_sim = Simulator::start(SimConfig::default()).unwrap();
    let app_port = app_sim.addr().port();

    // The App's own origin is allowed (any path).
    let allowed = probe(&host, &app_sim.api_url(), &format!("{}/anything", app_sim.base_url()));
    assert_eq!(allowed.code, 0, "{}", allowed.all_output());
    assert_eq!(allowed.json["outcome"]["message"], "HTTP 404");

    let refused = [
        other_sim.base_url() + "/1.0/billing/account/rest/getaccounts", // same host, other port
        format!("https://127.0.0.1:{app_port}/1.0/"),                   // same host and port, other scheme
        format!("http://localhost:{app_port}/1.0/"),                    // same server, other host name
        "http://evil.example/steal".to_string(),                        // other host
    ];
    for target in &refused {
        let run = probe(&host, &app_sim.api_url(), target);
        assert_eq!(run.code, 3, "{target}: {}", run.all_output());
        assert_eq!(run.error_kind(), Some("egress-denied"), "{target}");
        let message = run.error_message();
        assert!(message.contains(&format!("allows only http://127.0.0.1:{app_port}")), "{message}");
        assert!(run.json.get("outcome").is_none(), "a refused run reports no outcome");
        assert!(!run.all_output().contains(TOKEN));
    }
    assert_eq!(other_sim.connection_count(), 0, "the refused server was never contacted");
}
