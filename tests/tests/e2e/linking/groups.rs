//! The CloudPe module's group side of `lifecycle` through the real host, the real (signed)
//! component and the simulated CloudPe over HTTP: `change-package` with its read-back,
//! `option-choices` in both group-list shapes, and the capability probe of `test-connection` and
//! `doctor` (docs/lifecycle.md; docs/cli.md, "Linking, package changes and the capability probe").
//! The simulator's state (its group moves, its users) is the oracle.

use cloudpe_e2e::GroupsShape;
use cloudpe_e2e::harness::{Host, HostRun, app};
use serde_json::{Value, json};

use super::platform::*;

#[test]
fn change_package_moves_the_group_and_reads_it_back() {
    let host = Host::from_env();
    let sim = start_sim();
    let req = request(&sim, Some("2001"), Some("bob@x.io"), Some("premium"));
    let moved = run(&host, "change-package", &req);
    assert_eq!(moved.code, 0, "{}", moved.all_output());
    assert_eq!(moved.json["operation"], "change-package");
    assert_eq!(moved.json["outcome"]["changed_remote"], true, "{}", moved.stdout);
    assert_eq!(sim.account(2001).unwrap().group, "premium");
    assert_eq!(sim.group_changes(), [(2001, "premium".to_string())]);
    assert!(moved.json.get("link").is_none(), "change-package reports no link");

    // Already there: confirmed by reading, nothing sent.
    let again = run(&host, "change-package", &req);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(again.json["outcome"]["changed_remote"], false, "{}", again.stdout);
    assert_eq!(sim.group_changes().len(), 1, "no second move");

    // The token may not call setgroup: CloudPe's 8202, naming the method; nothing moved.
    let sim = start_sim();
    sim.deny_method("setgroup");
    let denied = run(&host, "change-package", &request(&sim, Some("2001"), None, Some("premium")));
    assert_eq!((denied.code, denied.error_kind()), (1, Some("remote-api")), "{}", denied.all_output());
    assert_eq!(denied.json["error"]["code"], 8202);
    assert!(denied.error_message().to_ascii_lowercase().contains("setgroup"), "{}", denied.error_message());
    assert_eq!(sim.account(2001).unwrap().group, "default");
}

#[test]
fn option_choices_lists_the_platforms_groups_in_either_reply_shape() {
    let host = Host::from_env();
    for shape in [GroupsShape::Objects, GroupsShape::Names] {
        let sim = start_sim();
        sim.set_groups(&["default", "premium", "gold plan"]);
        sim.set_groups_shape(shape);
        let req = json!({"app": app(&sim.api_url(), TOKEN), "option": GROUP_OPTION});
        let run = run(&host, "option-choices", &req);
        assert_eq!(run.code, 0, "{shape:?}: {}", run.all_output());
        let choices: Vec<Value> =
            ["default", "premium", "gold plan"].iter().map(|g| json!({"value": g, "label": g})).collect();
        assert_eq!(run.json["choices"], json!(choices), "{shape:?}");
        assert_eq!(writes(&sim), (0, 0, USERS));
    }
    let sim = start_sim();
    let unknown = run(&host, "option-choices", &json!({"app": app(&sim.api_url(), TOKEN), "option": "Disk size"}));
    assert_eq!(unknown.code, 1, "an option the module does not fill: {}", unknown.all_output());
    assert!(unknown.error_message().contains("Disk size"), "{}", unknown.error_message());
    let bad = run(&host, "option-choices", &json!({"app": app(&sim.api_url(), TOKEN), "option": ""}));
    assert_eq!((bad.code, bad.error_kind()), (2, Some("bad-input")), "{}", bad.all_output());
    assert!(bad.error_message().starts_with("option: empty"), "{}", bad.error_message());
}

/// `(name, method, state)` of each capability in a test-connection report.
pub fn capabilities(run: &HostRun) -> Vec<(String, String, String)> {
    let list = run.json["capabilities"].as_array().unwrap_or_else(|| panic!("no capabilities: {}", run.stdout));
    list.iter()
        .map(|c| {
            assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "every state says why: {c}");
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("method"), text("state"))
        })
        .collect()
}

pub fn state_of(list: &[(String, String, String)], method: &str) -> String {
    let found = list.iter().find(|(_, m, _)| m == method);
    found.unwrap_or_else(|| panic!("{method} not probed: {list:?}")).2.clone()
}

#[test]
fn test_connection_reports_each_capability_and_writes_nothing() {
    let host = Host::from_env();
    let (groups, set_group) = ("billing/groupquota/rest/getgroups", "billing/account/rest/setgroup");

    let sim = start_sim();
    let allowed = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(allowed.code, 0, "{}", allowed.all_output());
    let list = capabilities(&allowed);
    assert_eq!(state_of(&list, groups), "allowed");
    assert_eq!(state_of(&list, set_group), "allowed", "called without what it would change");
    assert!(list.iter().any(|(name, _, _)| name == "group list"), "{list:?}");
    assert!(allowed.json.get("warnings").is_none_or(|w| !w.to_string().contains("capability")), "{}", allowed.stdout);
    assert_eq!(writes(&sim), (0, 0, USERS), "the probe writes nothing");

    let sim = start_sim();
    sim.deny_method("getgroups");
    sim.deny_method("setgroup");
    let denied = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(denied.code, 0, "a denied capability does not fail the test: {}", denied.all_output());
    let list = capabilities(&denied);
    assert_eq!((state_of(&list, groups), state_of(&list, set_group)), ("denied".into(), "denied".into()));
    assert_eq!(writes(&sim), (0, 0, USERS));

    // A failed check: no probe, no capabilities member.
    let sim = start_sim();
    let mut req = json!({"app": app(&sim.api_url(), TOKEN)});
    req["app"]["field2"] = json!("wrong-token-0123456789");
    let failed = run(&host, "test-connection", &req);
    assert_eq!(failed.code, 1, "{}", failed.all_output());
    assert!(failed.json.get("capabilities").is_none(), "{}", failed.stdout);
    assert!(sim.requests().iter().all(|r| r.api_method != "getgroups"), "not probed");
}

#[test]
fn doctor_prints_a_line_per_capability() {
    let host = Host::from_env();
    let sim = start_sim();
    sim.deny_method("getgroups");
    let req = json!({"app": app(&sim.api_url(), TOKEN)});
    let run = host.run_args(&["doctor", "--allow-http"], req.to_string().as_bytes(), &[]);
    assert!(!run.all_output().contains(TOKEN));
    assert_eq!(run.code, 0, "a denied capability warns, it does not fail: {}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().filter(|l| l.contains(" capability ")).collect();
    assert!(lines.len() >= 5, "{}", run.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("WARN") && l.contains("billing/groupquota/rest/getgroups") && l.contains("denied")),
        "{}",
        run.stdout
    );
    assert!(lines.iter().any(|l| l.starts_with("PASS") && l.contains("allowed")), "{}", run.stdout);
}
