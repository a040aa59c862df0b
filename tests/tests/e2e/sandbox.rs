//! End to end: the sandbox refuses every request outside the origin of the App's endpoint URL,
//! whatever the component asks for, and the refused server never sees a connection.

use cloudpe_e2e::harness::{Host, account, app};
use cloudpe_e2e::{SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "sandbox-session-token-8e21";

fn probe(host: &Host, app_url: &str, target: &str) -> cloudpe_e2e::harness::HostRun {
    let mut app = app(app_url, TOKEN);
    app["custom"] = json!({"target": target});
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

#[test]
fn checked_and_connected_hosts_are_the_same_normalised_host() {
    let host = Host::from_env().with_test_component("egress-probe");
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let port = sim.addr().port();
    // A trailing-dot IP literal and a URL with userinfo name the allowed origin: they passed the
    // check before and then failed to resolve; now the connection goes where the check looked.
    for target in
        [format!("http://127.0.0.1.:{port}/anything"), format!("http://user:pa55word@127.0.0.1:{port}/anything")]
    {
        let run = probe(&host, &sim.api_url(), &target);
        assert_eq!(run.code, 0, "{target}: {}", run.all_output());
        assert_eq!(run.json["outcome"]["message"], "HTTP 404", "{target}");
    }
    let hosts: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
}

#[test]
fn a_refusal_names_scheme_host_and_port_only() {
    let host = Host::from_env().with_test_component("egress-probe");
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let run = probe(&host, &sim.api_url(), "http://admin-7f3e:pa55word@127.0.0.2:9/x-path-91c?session=abc123def");
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(run.error_message().contains("refused a request to http://127.0.0.2:9:"), "{}", run.error_message());
    for secret in ["pa55word", "admin-7f3e", "abc123def", "x-path-91c"] {
        assert!(!run.all_output().contains(secret), "{secret} printed:\n{}", run.all_output());
    }
}

#[test]
fn stderr_is_scrubbed_even_at_trace_level() {
    let host = Host::from_env();
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), ..SimConfig::default() }).unwrap();
    let request = json!({"app": app(&sim.api_url(), TOKEN)});
    let run = host.run_args(&["test-connection"], request.to_string().as_bytes(), &[("HOSTBILL_MODULE_LOG", "trace")]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stderr.len() > 1000, "trace logging printed little:\n{}", run.stderr);
    assert!(!run.all_output().contains(TOKEN), "token on stderr:\n{}", run.stderr);
}
