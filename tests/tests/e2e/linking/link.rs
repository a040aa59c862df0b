//! The CloudPe module's linking side of `lifecycle` through the real host, the real (signed)
//! component and the simulated CloudPe over HTTP: linking on Create (by the client's id, by exact
//! email, or provisioned, in both creation variants), a retried Create whose reply was lost, the
//! capability probe of each creation variant, and the review's proposed links and group drift
//! (docs/lifecycle.md). The simulator's state (its users by email, its creations) is the oracle.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{FaultKind, FaultRule};
use cloudpe_sim_api::CreateVariant;
use serde_json::{Value, json};

use super::platform::*;

use super::groups::{capabilities, state_of};

fn provisioning(mut req: Value) -> Value {
    req["app"]["custom"] = json!({"On create": "provision"});
    req
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
    assert_eq!(writes(&sim), (0, 0, USERS), "linking writes nothing to CloudPe");
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
    assert_eq!(writes(&sim), (0, 0, USERS));
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
    assert_eq!(writes(&sim), (0, 0, USERS));
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
fn the_probe_names_the_creation_path_this_platform_has() {
    let host = Host::from_env();
    let (admin, users) = ("system/admin/rest/createaccount", "users/account/rest/addaccount");
    let sim = start_sim();
    let default = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(default.code, 0, "{}", default.all_output());
    let list = capabilities(&default);
    assert_eq!(state_of(&list, admin), "allowed");
    assert_eq!(state_of(&list, users), "not-probed", "the admin path is the one used");

    let sim = start_sim();
    sim.set_create_variant(CreateVariant::Users);
    let unknown = run(&host, "test-connection", &json!({"app": app(&sim.api_url(), TOKEN)}));
    assert_eq!(unknown.code, 0, "{}", unknown.all_output());
    let list = capabilities(&unknown);
    assert_eq!(state_of(&list, admin), "unknown", "this platform answers 404 for it");
    assert_eq!(state_of(&list, users), "allowed");
    assert_eq!(sim.created_users().len(), 0, "the probe creates nobody");
    assert_eq!(writes(&sim), (0, 0, USERS));
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
    assert_eq!(writes(&sim), (0, 0, USERS), "a review changes nothing");
    assert_eq!(sim.account(2002).unwrap().group, "default");
}
