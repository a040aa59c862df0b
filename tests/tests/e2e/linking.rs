//! End to end: contract 2.4.0's `lifecycle` (linking on Create, `change-package`,
//! `option-choices`, the capability probe, the review). Here, what the host decides on its own:
//! the new requests' bad input, refused before anything runs; an older module, which creates as
//! before and is told to upgrade for the rest; and, with the test module `hostile-lifecycle`, the
//! report's shapes, a failed probe, the answers it stops as contract violations and the token
//! scrubbed from every answer. The CloudPe module's side: `linking/groups.rs`
//! (package changes, group choices, the capability probe) and `linking/link.rs` (linking,
//! provisioning, the review), on the platform of `linking/platform.rs`.

mod groups;
mod link;
mod platform;

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::{Value, json};

const TOKEN: &str = "linking-host-session-token-91b2";

fn start_sim() -> Simulator {
    let accounts = vec![Account { email: "bob@x.io".into(), ..Account::new(2001, 1) }];
    Simulator::start(SimConfig { session: TOKEN.into(), accounts, ..SimConfig::default() }).unwrap()
}

fn run(host: &Host, operation: &str, request: &Value) -> HostRun {
    let run = host.run(operation, request);
    assert!(!run.all_output().contains(TOKEN), "the session token leaked: {}", run.all_output());
    run
}

fn lifecycle_request(sim: &Simulator) -> Value {
    json!({"app": app(&sim.api_url(), TOKEN), "account": account(101, 11, "Pending", Some("2001")),
           "client_email": "bob@x.io", "product": {"CloudPe group": "premium"}})
}

#[test]
fn bad_lifecycle_requests_are_refused_by_name_before_anything_runs() {
    let host = Host::from_env();
    let sim = start_sim();
    let with = |member: &str, value: Value| {
        let mut req = lifecycle_request(&sim);
        req[member] = value;
        req
    };
    let app = || app(&sim.api_url(), TOKEN);
    let cases = [
        ("create", with("client_email", json!(12)), "client_email: 12 is not a string"),
        ("create", with("client_email", json!(format!("{}@x.io", "a".repeat(300)))), "client_email: \""),
        (
            "change-package",
            with("product", json!({"CloudPe group": ["premium"]})),
            "product: option \"CloudPe group\" is a list",
        ),
        ("change-package", with("product", json!("premium")), "product: invalid type: string \"premium\""),
        ("option-choices", json!({"app": app()}), "missing field `option`"),
        ("option-choices", json!({"app": app(), "option": " "}), "option: empty"),
        ("option-choices", json!({"app": app(), "option": {"a": 1}}), "option: an object is not a string"),
    ];
    for (operation, req, expected) in cases {
        let run = run(&host, operation, &req);
        assert_eq!((run.code, run.error_kind()), (2, Some("bad-input")), "{operation}: {}", run.all_output());
        assert!(run.error_message().starts_with(expected), "{operation}: {}", run.error_message());
        assert_eq!(run.json["operation"], operation);
    }
    // Suspend keeps its strict request: the lifecycle members are not its.
    let suspend = run(&host, "suspend", &lifecycle_request(&sim));
    assert_eq!(suspend.code, 2, "{}", suspend.all_output());
    assert!(suspend.error_message().contains("unknown field `client_email`"), "{}", suspend.error_message());
    assert_eq!(sim.request_count(), 0, "nothing ran");
}

#[test]
fn the_new_commands_say_what_they_read() {
    let host = Host::from_env();
    for (command, needle) in [
        ("change-package", r#""product": {"CloudPe group": "..."}"#),
        ("option-choices", r#""option": "CloudPe group""#),
        ("create", r#""client_email": "...""#),
    ] {
        let run = host.run_bare(&[command, "--help"], b"", &[]);
        assert_eq!(run.code, 0, "{command}: {}", run.all_output());
        assert!(run.stdout.contains(needle), "{command}: {}", run.stdout);
    }
}

#[test]
fn an_older_module_creates_as_before_and_is_told_to_upgrade_for_the_rest() {
    let sim = start_sim();
    for (component, version) in [("egress-probe", "2.2.0"), ("contract-2-0", "2.0.0")] {
        let host = Host::from_env().with_test_component(component);
        for (operation, req) in [
            ("change-package", lifecycle_request(&sim)),
            ("option-choices", json!({"app": app(&sim.api_url(), TOKEN), "option": "CloudPe group"})),
        ] {
            let run = run(&host, operation, &req);
            assert_eq!((run.code, run.error_kind()), (1, Some("unsupported")), "{component}: {}", run.all_output());
            assert_eq!(run.json["ok"], false);
            let message = run.error_message();
            let expected = format!(
                "targets hostbill:provisioning@{version}; {operation} needs hostbill:provisioning 2.4.0 or later"
            );
            assert!(message.contains(&expected), "{message}");
        }
        assert_eq!(sim.request_count(), 0, "{component}: refused before any call");
    }
    // Create runs the module's own `create` with the request's account, its lifecycle members
    // accepted and not passed on: never the host's `unsupported`, never a `link`. The 2.0 test
    // module refuses it in its own words; the 2.2 one requests its `target`.
    let mut req = lifecycle_request(&sim);
    req["app"]["custom"] = json!({"target": sim.base_url()});
    let old = Host::from_env().with_test_component("contract-2-0");
    let created = run(&old, "create", &req);
    assert_eq!((created.code, created.error_kind()), (1, Some("configuration")), "{}", created.all_output());
    assert_eq!(created.error_message(), "the 2.0 test module only suspends");
    assert!(created.json.get("link").is_none(), "{}", created.stdout);
    let probe = Host::from_env().with_test_component("egress-probe");
    let created = run(&probe, "create", &req);
    assert_eq!(created.code, 0, "{}", created.all_output());
    assert!(created.json["outcome"]["message"].as_str().unwrap_or_default().starts_with("HTTP "), "{}", created.stdout);
    assert!(created.json.get("link").is_none(), "{}", created.stdout);
    assert_eq!(sim.request_count(), 1, "the 2.2 module's one request");
    assert_eq!(sim.account(2001).unwrap().group, "default");
}

/// The App for `hostile-lifecycle` in `mode` (it makes no request: no simulator needed).
fn hostile_app(mode: &str) -> Value {
    let mut app = app("http://127.0.0.1:9/1.0", TOKEN);
    app["custom"] = json!({"mode": mode});
    app
}

fn hostile_run(operation: &str, mode: &str) -> HostRun {
    let host = Host::from_env().with_test_component("hostile-lifecycle");
    let app = hostile_app(mode);
    let request = match operation {
        "create" | "change-package" => json!({"app": app, "account": account(101, 11, "Pending", None),
                                               "client_email": "a@x.io", "product": {"CloudPe group": "premium"}}),
        "option-choices" => json!({"app": app, "option": "CloudPe group"}),
        "reconcile" => {
            json!({"app": app, "accounts": [account(1, 11, "Active", None), account(2, 12, "Active", Some("7"))]})
        }
        _ => json!({"app": app}),
    };
    run(&host, operation, &request)
}

#[test]
fn the_lifecycle_answers_reach_the_report_in_the_documented_shapes() {
    let created = hostile_run("create", "");
    assert_eq!(created.code, 0, "{}", created.all_output());
    assert_eq!(created.json["link"], json!({"remote_id": 4242, "source": "by-email"}));
    assert!(created.json["outcome"]["message"].as_str().unwrap().contains("Some(\"a@x.io\")"), "{}", created.stdout);
    let choices = hostile_run("option-choices", "");
    assert_eq!(
        choices.json["choices"],
        json!([{"value": "CloudPe group 0", "label": "choice"}, {"value": "CloudPe group 1", "label": "choice"}])
    );
    let tested = hostile_run("test-connection", "");
    assert_eq!(tested.code, 0, "{}", tested.all_output());
    assert_eq!(
        tested.json["capabilities"],
        json!([{"name": "capability 0", "method": "test/rest/method0", "state": "allowed", "detail": "answered"}])
    );
    let reviewed = hostile_run("reconcile", "");
    assert_eq!(reviewed.code, 0, "{}", reviewed.all_output());
    let r = &reviewed.json["reconciliation"];
    assert_eq!(r["proposed_links"], json!([{"account_id": 1, "uid": 7, "email": "a@x.io"}]));
    assert_eq!(r["group_drift"], json!([{"account_id": 1, "uid": 7, "expected": "premium", "actual": "default"}]));
    assert_eq!((r["counts"]["proposed_links"].clone(), r["counts"]["group_drift"].clone()), (json!(1), json!(1)));
    assert_eq!(r["counts"]["accounts"], 2);
}

#[test]
fn a_failed_probe_is_a_warning_and_the_test_still_passes() {
    let run = hostile_run("test-connection", "probe-fails");
    assert_eq!((run.code, run.json["ok"].clone()), (0, json!(true)), "{}", run.all_output());
    assert!(run.json.get("capabilities").is_none(), "{}", run.stdout);
    assert_eq!(run.json["warnings"], json!(["capability probe failed: probe refused (result 8202)"]));
    assert_eq!(run.json["checks"][0]["passed"], true);
}

#[test]
fn a_module_that_breaks_the_lifecycle_contract_is_stopped() {
    for (operation, mode, words, limit) in [
        ("create", "zero-id", "it named remote id 0 as the account's link", None),
        ("reconcile", "propose-other", "it answered for account 999999, which the request did not hold", None),
        ("reconcile", "propose-twice", "it listed account 1 twice in proposed_links", None),
        ("reconcile", "drift-twice", "it listed account 1 twice in group_drift", None),
        ("reconcile", "propose-uid-zero", "it named remote id 0 in a proposed link", None),
        (
            "test-connection",
            "many-capabilities",
            "it returned 65 capabilities; the host accepts at most 64",
            Some(("capabilities", "64")),
        ),
        (
            "option-choices",
            "many-choices",
            "it returned 1001 option choices; the host accepts at most 1000",
            Some(("option-choices", "1000")),
        ),
    ] {
        let run = hostile_run(operation, mode);
        assert_eq!((run.code, run.error_kind()), (3, Some("module-trapped")), "{mode}: {}", run.all_output());
        let message = run.error_message();
        assert!(
            message.starts_with("contract violation: the module hostile-lifecycle 0.0.1 was stopped: "),
            "{message}"
        );
        assert!(message.contains(words), "{mode}: {message}");
        let limit = limit.map(|(name, value)| json!({"name": name, "value": value}));
        assert_eq!(run.json["error"].get("limit"), limit.as_ref(), "{mode}");
        for member in ["link", "choices", "capabilities", "reconciliation"] {
            assert!(run.json.get(member).is_none(), "{mode}: nothing of the answer is reported: {}", run.stdout);
        }
    }
}

#[test]
fn the_session_token_is_scrubbed_from_every_lifecycle_answer() {
    for operation in ["create", "change-package", "option-choices", "test-connection", "reconcile"] {
        // `run` asserts the token appears nowhere.
        let run = hostile_run(operation, "leak-token");
        assert_eq!(run.code, 0, "{operation}: {}", run.all_output());
        assert!(run.stdout.contains("[REDACTED]"), "{operation}: {}", run.stdout);
    }
}
