//! End to end: contract 2.4.0's `lifecycle` (linking on Create, `change-package`,
//! `option-choices`, the capability probe, the review). Here, what the host decides on its own:
//! the new requests' bad input, refused before anything runs, and an older module, which creates
//! as before and is told to upgrade for the rest. The CloudPe module's side: `linking/groups.rs`
//! (package changes, group choices, the capability probe) and `linking/link.rs` (linking,
//! provisioning, the review), on the platform of `linking/platform.rs`.

mod groups;
// Registered once the guest's and the simulator's linking parts (h2-link) are merged:
// mod link;
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
