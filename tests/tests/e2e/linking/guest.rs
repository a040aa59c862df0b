//! The CloudPe module's `lifecycle` through the real host, the real (signed) component and the
//! simulated CloudPe over HTTP: linking on Create (by the client's id, by exact email, or
//! provisioned, in both creation variants), a retried Create whose reply was lost,
//! `change-package` with its read-back, `option-choices` in both group-list shapes, the capability
//! probe of `test-connection` and `doctor`, and the review's proposed links and group drift
//! (docs/lifecycle.md; docs/cli.md, "Linking, package changes and the capability probe"). The
//! simulator's state (its users by email, its creations, its group moves) is the oracle.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, GroupsShape, SimConfig, Simulator};
use cloudpe_sim_api::CreateVariant;
use serde_json::{Value, json};

const TOKEN: &str = "linking-session-token-5c09e1";
const GROUP_OPTION: &str = "CloudPe group";

fn user(uid: u64, email: &str, group: &str) -> Account {
    Account { email: email.to_string(), group: group.to_string(), ..Account::new(uid, 1) }
}

/// The platform of these tests: a decoy whose email contains another's (CloudPe's email filter is
/// a substring match), two users sharing one email, and users in two groups.
fn start_sim() -> Simulator {
    let accounts = vec![
        user(2001, "bob@x.io", "default"),
        user(2002, "ann.bob@x.io.evil", "default"),
        user(2003, "dup@x.io", "default"),
        user(2004, "DUP@x.io", "default"),
        user(2005, "carol@x.io", "premium"),
    ];
    Simulator::start(SimConfig { session: TOKEN.into(), accounts, ..SimConfig::default() }).unwrap()
}

fn run(host: &Host, operation: &str, request: &Value) -> HostRun {
    let run = host.run(operation, request);
    assert!(!run.all_output().contains(TOKEN), "the session token leaked: {}", run.all_output());
    run
}

/// A `create` / `change-package` request for account 101 (client 11).
fn request(sim: &Simulator, cloudpeid: Option<&str>, email: Option<&str>, group: Option<&str>) -> Value {
    let mut req = json!({"app": app(&sim.api_url(), TOKEN), "account": account(101, 11, "Pending", cloudpeid)});
    if let Some(email) = email {
        req["client_email"] = json!(email);
    }
    if let Some(group) = group {
        req["product"] = json!({ GROUP_OPTION: group });
    }
    req
}

fn provisioning(mut req: Value) -> Value {
    req["app"]["custom"] = json!({"On create": "provision"});
    req
}

/// The writes the simulator saw: status changes, group moves and created users.
fn writes(sim: &Simulator) -> (usize, usize, usize) {
    (sim.status_changes().len(), sim.group_changes().len(), sim.created_users().len())
}

fn assert_linked(run: &HostRun, uid: u64, source: &str) {
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(run.json["ok"], true);
    assert_eq!(run.json["link"], json!({"remote_id": uid, "source": source}), "{}", run.stdout);
    assert!(run.json["outcome"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", run.stdout);
}

#[test]
fn create_links_the_one_user_whose_email_is_exactly_the_clients() {
    let host = Host::from_env();
    let sim = start_sim();
    // The filter also lists ann.bob@x.io.evil: only the exact match counts, in any case, trimmed.
    for email in ["bob@x.io", "  BOB@X.io "] {
        let run = run(&host, "create", &request(&sim, None, Some(email), None));
        assert_linked(&run, 2001, "by-email");
    }
    assert_eq!(writes(&sim), (0, 0, 0), "linking writes nothing to CloudPe");
}

#[test]
fn no_match_or_several_links_nothing_and_says_why() {
    let host = Host::from_env();
    let sim = start_sim();
    // "x.io" is in every user's email, "bob@x.io.evi" in the decoy's: substrings, no exact match.
    for email in ["nobody@x.io", "x.io", "bob@x.io.evi"] {
        let run = run(&host, "create", &request(&sim, None, Some(email), None));
        assert_eq!((run.code, run.json["ok"].clone()), (1, json!(false)), "{email}: {}", run.all_output());
        assert!(run.json.get("link").is_none(), "{email}: nothing linked: {}", run.stdout);
        assert!(run.error_message().contains(email.trim()), "{email}: {}", run.error_message());
    }
    let several = run(&host, "create", &request(&sim, None, Some("dup@x.io"), None));
    assert_eq!(several.code, 1, "{}", several.all_output());
    assert!(several.json.get("link").is_none(), "{}", several.stdout);
    let message = several.error_message().to_ascii_lowercase();
    assert!(message.contains("dup@x.io"), "the email named: {message}");
    // Without an email (and without an id) there is nothing to link by.
    let none = run(&host, "create", &request(&sim, None, None, None));
    assert_eq!(none.code, 1, "{}", none.all_output());
    assert!(none.json.get("link").is_none());
    assert_eq!(writes(&sim), (0, 0, 0));
}

#[test]
fn create_with_the_clients_existing_id_verifies_it() {
    let host = Host::from_env();
    let sim = start_sim();
    // The id wins over the email (which names another user).
    let run = run(&host, "create", &request(&sim, Some("2005"), Some("bob@x.io"), None));
    assert_linked(&run, 2005, "existing");
    let gone = self::run(&host, "create", &request(&sim, Some("999999"), None, None));
    assert_eq!(gone.code, 1, "an id CloudPe does not have is not linked: {}", gone.all_output());
    assert!(gone.json.get("link").is_none());
    assert_eq!(writes(&sim), (0, 0, 0));
}

#[test]
fn provisioning_creates_one_active_user_in_the_products_group() {
    let host = Host::from_env();
    for variant in [CreateVariant::Admin, CreateVariant::Users, CreateVariant::Both] {
        let sim = start_sim();
        sim.set_create_variant(variant);
        let users = sim.user_count();
        let run = run(&host, "create", &provisioning(request(&sim, None, Some("new@x.io"), Some("premium"))));
        assert_eq!(run.code, 0, "{variant:?}: {}", run.all_output());
        let created = sim.users_with_email("new@x.io");
        assert_eq!(created.len(), 1, "{variant:?}: exactly one user");
        let new = &created[0];
        assert_linked(&run, new.uid, "provisioned");
        assert_eq!((new.status, new.group.as_str()), (1, "premium"), "{variant:?}: activated, in the product's group");
        assert_eq!(sim.user_count(), users + 1);
        let made = sim.created_users();
        assert_eq!(made.len(), 1, "{variant:?}");
        let expected = if variant == CreateVariant::Users { "addaccount" } else { "createaccount" };
        assert_eq!(made[0].method, expected, "{variant:?}: the platform's own creation path");
        assert!(made[0].password.length >= 12 && made[0].password.distinct >= 8, "{variant:?}: a strong password");
        assert!(run.json["outcome"]["changed_remote"] == true, "{}", run.stdout);
    }
}

#[test]
fn provisioning_links_an_existing_user_instead_of_creating_one() {
    let host = Host::from_env();
    let sim = start_sim();
    let run = run(&host, "create", &provisioning(request(&sim, None, Some("Bob@x.io"), None)));
    assert_linked(&run, 2001, "by-email");
    assert_eq!(sim.created_users().len(), 0, "found by email first: nothing created");
    // Two users with the email: neither linked, nothing created.
    let several = self::run(&host, "create", &provisioning(request(&sim, None, Some("dup@x.io"), None)));
    assert_eq!(several.code, 1, "{}", several.all_output());
    assert_eq!(sim.created_users().len(), 0);
}

#[test]
fn a_create_whose_reply_was_lost_never_makes_a_second_user() {
    let host = Host::from_env();
    for kind in [FaultKind::Reset, FaultKind::Http500] {
        let sim = start_sim();
        // The user is created, the reply never arrives (once).
        sim.add_fault(FaultRule::new(kind.clone().after_applying()).method("createaccount").times(1));
        let req = provisioning(request(&sim, None, Some("lost@x.io"), Some("premium")));
        let first = run(&host, "create", &req);
        let retried = run(&host, "create", &req);
        assert_eq!(retried.code, 0, "{kind:?}: the retry links: {}", retried.all_output());
        let users = sim.users_with_email("lost@x.io");
        assert_eq!(users.len(), 1, "{kind:?}: exactly one user, whatever the first try answered");
        let uid = users[0].uid;
        assert_eq!(sim.created_users().len(), 1, "{kind:?}");
        let source = retried.json["link"]["source"].as_str().unwrap_or_default().to_string();
        assert!(["provisioned", "by-email"].contains(&source.as_str()), "{kind:?}: {}", retried.stdout);
        assert_eq!(retried.json["link"]["remote_id"], uid, "{kind:?}");
        // The first try either adopted the user it created (read back by email) or failed
        // without a link; it never linked another.
        if first.code == 0 {
            assert_eq!(first.json["link"]["remote_id"], uid, "{kind:?}: {}", first.stdout);
        } else {
            assert!(first.json.get("link").is_none(), "{kind:?}: {}", first.stdout);
        }
        assert_eq!(users[0].group, "premium", "{kind:?}: in the product's group");
    }
}

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
        assert_eq!(writes(&sim), (0, 0, 0));
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
fn capabilities(run: &HostRun) -> Vec<(String, String, String)> {
    let list = run.json["capabilities"].as_array().unwrap_or_else(|| panic!("no capabilities: {}", run.stdout));
    list.iter()
        .map(|c| {
            assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "every state says why: {c}");
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("method"), text("state"))
        })
        .collect()
}

fn state_of(list: &[(String, String, String)], method: &str) -> String {
    let found = list.iter().find(|(_, m, _)| m == method);
    found.unwrap_or_else(|| panic!("{method} not probed: {list:?}")).2.clone()
}

#[test]
fn test_connection_reports_each_capability_and_writes_nothing() {
    let host = Host::from_env();
    let groups = "billing/groupquota/rest/getgroups";
    let (admin, users) = ("system/admin/rest/createaccount", "users/account/rest/addaccount");

    let sim = start_sim();
    let allowed = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(allowed.code, 0, "{}", allowed.all_output());
    let list = capabilities(&allowed);
    assert_eq!(state_of(&list, groups), "allowed");
    assert_eq!(state_of(&list, admin), "allowed");
    assert_eq!(state_of(&list, users), "not-probed", "the admin path is the one used");
    assert!(list.iter().any(|(name, _, _)| name == "group list"), "{list:?}");
    assert_eq!(writes(&sim), (0, 0, 0), "the probe writes nothing");

    let sim = start_sim();
    sim.deny_method("getgroups");
    let denied = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(denied.code, 0, "a denied capability does not fail the test: {}", denied.all_output());
    assert_eq!(state_of(&capabilities(&denied), groups), "denied");

    let sim = start_sim();
    sim.set_create_variant(CreateVariant::Users);
    let unknown = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(unknown.code, 0, "{}", unknown.all_output());
    let list = capabilities(&unknown);
    assert_eq!(state_of(&list, admin), "unknown", "this platform answers 404 for it");
    assert_eq!(state_of(&list, users), "allowed");
    assert_eq!(writes(&sim), (0, 0, 0));

    // A failed check: no probe, no capabilities member.
    let sim = start_sim();
    let mut req = json!({"app": app(&sim.api_url(), TOKEN)});
    req["app"]["field2"] = json!("wrong-token-0123456789");
    let failed = run(&host, "test-connection", &req);
    assert_eq!(failed.code, 1, "{}", failed.all_output());
    assert!(failed.json.get("capabilities").is_none(), "{}", failed.stdout);
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

#[test]
fn reconcile_proposes_links_and_reports_group_drift_changing_nothing() {
    let host = Host::from_env();
    let sim = start_sim();
    let row = |id: u64, cloudpeid: Option<&str>, email: &str, group: Option<&str>| {
        let mut row = account(id, 500 + id, "Active", cloudpeid);
        row["email"] = json!(email);
        if let Some(group) = group {
            row["product"] = json!({ GROUP_OPTION: group });
        }
        row
    };
    let accounts = vec![
        row(1, None, "BOB@x.io", None),                             // exactly one user: proposed
        row(2, None, "dup@x.io", None),                             // two users: not proposed
        row(3, None, "bob@x.io.evi", None),                         // only a substring: not proposed
        row(4, Some("2005"), "carol@x.io", Some("premium")),        // in its group: no drift
        row(5, Some("2002"), "ann.bob@x.io.evil", Some("premium")), // drift
        row(6, None, "nobody@x.io", None),                          // nobody: not proposed
    ];
    let run = run(&host, "reconcile", &json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts}));
    assert_eq!(run.code, 0, "{}", run.all_output());
    let r = &run.json["reconciliation"];
    let links = r["proposed_links"].as_array().unwrap_or_else(|| panic!("no proposed_links: {r}"));
    assert_eq!(links.len(), 1, "{r}");
    assert_eq!((links[0]["account_id"].clone(), links[0]["uid"].clone()), (json!(1), json!(2001)), "{r}");
    assert!(links[0]["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case("bob@x.io")), "{r}");
    assert_eq!(
        r["group_drift"],
        json!([{"account_id": 5, "uid": 2002, "expected": "premium", "actual": "default"}]),
        "{r}"
    );
    assert_eq!((r["counts"]["proposed_links"].clone(), r["counts"]["group_drift"].clone()), (json!(1), json!(1)));
    assert_eq!(r["counts"]["accounts"], 6);
    assert_eq!(writes(&sim), (0, 0, 0), "a review changes nothing");
    assert_eq!(sim.account(2002).unwrap().group, "default");
}
