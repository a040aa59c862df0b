//! End to end: `usage` (metered billing) through the real host, the real component and the
//! simulated CloudPe. Every hour is compared with the simulator's oracle
//! (`cloudpe_sim_api::usage::expected`) as exact decimal text; the summary's totals are summed
//! from the simulator's rows in integer micro-units.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use cloudpe_sim_api::usage::{decimal, expected, history, iso};
use serde_json::{Value, json};

const TOKEN: &str = "usage-session-token-8d21f7";
const METHOD: &str = "getaccountbillinghistorybyperiodinner";

/// A closed hour: the start of the hour before the current one (a test that crosses an hour still
/// asks for a closed one).
fn until() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    now - now % 3600 - 3600
}

fn start_sim(uids: &[u64]) -> Simulator {
    let accounts = uids.iter().map(|&uid| Account::new(uid, 1)).collect();
    Simulator::start(SimConfig { session: TOKEN.into(), accounts, ..SimConfig::default() }).unwrap()
}

/// An account row asking for the hours `[from, until)`.
fn row(id: u64, status: &str, uid: Option<&str>, from: i64) -> Value {
    let mut row = account(id, 500 + id, status, uid);
    row["usage_from"] = json!(iso(from));
    row
}

fn request(sim_url: &str, until: i64, rows: Vec<Value>) -> Value {
    json!({"app": app(sim_url, TOKEN), "usage_until": iso(until), "accounts": rows})
}

fn run(host: &Host, request: &Value, args: &[&str]) -> HostRun {
    let mut all = vec!["usage"];
    all.extend_from_slice(args);
    let run = host.run_args(&all, request.to_string().as_bytes(), &[]);
    assert!(!run.all_output().contains(TOKEN), "the session token leaked: {}", run.all_output());
    run
}

/// Asserts a read row's hours equal the oracle's, value for value.
fn assert_matches_oracle(row: &Value, uid: u64, from: i64, until: i64) {
    assert_eq!(row["uid"], uid, "{row}");
    assert_eq!(row["from"], iso(from));
    assert_eq!(row["until"], iso(until));
    let hours = row["hours"].as_array().unwrap_or_else(|| panic!("no hours: {row}"));
    let oracle = expected(uid, from, until);
    assert_eq!(hours.len(), oracle.len(), "uid {uid}: hours with usage");
    for (got, want) in hours.iter().zip(&oracle) {
        let want = json!({
            "start": iso(want.start), "cost": want.cost, "bonus": want.bonus,
            "facts": {"resource_cost": want.resource_cost, "storage_cost": want.storage_cost,
                      "traffic_cost": want.traffic_cost, "rows": want.rows.to_string()}
        });
        assert_eq!(got, &want, "uid {uid}");
    }
}

#[test]
fn hours_are_read_once_per_account_and_match_the_oracle_exactly() {
    let host = Host::from_env();
    let sim = start_sim(&[11, 13, 15, 16, 99]);
    let until = until();
    let rows = vec![
        row(1, "Active", Some("11"), until - 3600),          // one hour
        row(2, "Suspended", Some("16"), until - 744 * 3600), // a 31-day backfill, several rows an hour
        row(3, "Active", Some("15"), until - 48 * 3600),     // bonus rows
        row(4, "Active", Some("13"), until - 24 * 3600),     // never used anything
        row(5, "Pending", Some("11"), until - 3600),         // not billed
        row(6, "Active", None, until - 3600),                // no CloudPe id
        row(7, "Active", Some("99"), until - 24 * 3600),     // deleted meanwhile
    ];
    sim.remove_account(99);
    let run = run(&host, &request(&sim.api_url(), until, rows.clone()), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let v = &run.json;
    assert_eq!((v["ok"].clone(), v["operation"].clone()), (json!(true), json!("usage")));
    assert_eq!(v["module"]["name"], "CloudPe");
    let usage = v["usage"].as_array().unwrap();
    assert_eq!(
        usage.iter().map(|r| r["account_id"].clone()).collect::<Vec<_>>(),
        (1..=7).map(|i| json!(i)).collect::<Vec<_>>()
    );
    assert_matches_oracle(&usage[0], 11, until - 3600, until);
    assert_matches_oracle(&usage[1], 16, until - 744 * 3600, until);
    assert_matches_oracle(&usage[2], 15, until - 48 * 3600, until);
    assert!(usage[2]["hours"].as_array().unwrap().iter().all(|h| h["bonus"] != "0"), "bonus: {}", usage[2]);
    assert_eq!(usage[3]["hours"], json!([]), "no usage: no hours");
    assert_eq!(usage[4], json!({"account_id": 5, "skipped": "status Pending is not billed"}));
    assert_eq!(usage[5]["error"]["kind"], "configuration", "{}", usage[5]);
    assert_eq!(usage[6]["error"]["kind"], "not-found", "{}", usage[6]);
    assert!(usage[1]["hours"].as_array().unwrap().iter().any(|h| h["facts"]["rows"] != "1"));

    let micro = |uid, from| history(uid, from, until);
    let all: Vec<_> = [micro(11, until - 3600), micro(16, until - 744 * 3600), micro(15, until - 48 * 3600)].concat();
    let hours: usize =
        [(11, 3600), (16, 744 * 3600), (15, 48 * 3600)].iter().map(|&(u, w)| expected(u, until - w, until).len()).sum();
    assert_eq!(
        v["summary"],
        json!({"accounts": 7, "read": 4, "skipped": 1, "errors": 2, "hours": hours,
               "cost": decimal(all.iter().map(|r| r.cost()).sum()),
               "bonus": decimal(all.iter().filter(|r| r.bonus).map(|r| r.cost()).sum()),
               "requests": 5})
    );
    let sent: Vec<_> = sim.requests().into_iter().filter(|r| r.api_method == METHOD).collect();
    assert_eq!(sent.len(), 5, "one request per account read");
    assert!(sent.iter().all(|r| r.params["period"] == "HOUR" && r.params["groupNodes"] == "false"));
}

#[test]
fn the_time_zone_setting_must_match_the_platforms() {
    let host = Host::from_env();
    let until = until();
    for (offset, setting) in [(19_800, "+05:30"), (-10_800, "-03:00")] {
        let sim = start_sim(&[11, 16]);
        sim.set_usage_offset(offset);
        let rows =
            vec![row(1, "Active", Some("11"), until - 24 * 3600), row(2, "Active", Some("16"), until - 24 * 3600)];
        let mut req = request(&sim.api_url(), until, rows.clone());
        req["app"]["custom"] = json!({"Usage time zone": setting});
        let good = run(&host, &req, &[]);
        assert_eq!(good.code, 0, "{}", good.all_output());
        assert_matches_oracle(&good.json["usage"][0], 11, until - 24 * 3600, until);
        assert_matches_oracle(&good.json["usage"][1], 16, until - 24 * 3600, until);
        let first = &sim.requests()[0].params;
        assert_eq!(first["starttime"], cloudpe_sim_api::usage::format_time(until - 24 * 3600, offset));
        // The App left at UTC. A half-hour offset puts every row off the hour: no account is
        // billed. A whole-hour one cannot be told from the rows (CloudPe answers the window it was
        // asked for, in its own zone): the hours come out shifted, which is why the setting must
        // match (docs/cloudpe-api.md, "Usage").
        let wrong = run(&host, &request(&sim.api_url(), until, rows), &[]);
        assert_eq!(wrong.code, 0, "{}", wrong.all_output());
        if offset % 3600 != 0 {
            for r in wrong.json["usage"].as_array().unwrap() {
                assert_eq!(r["error"]["kind"], "unexpected", "{setting}: {r}");
                assert!(r["error"]["message"].as_str().unwrap().contains("not the start of an hour"), "{r}");
            }
            assert_eq!(wrong.json["summary"]["cost"], "0");
        } else {
            let shifted: Vec<Value> = expected(11, until - 24 * 3600 - offset, until - offset)
                .iter()
                .map(|h| json!(iso(h.start + offset)))
                .collect();
            let got: Vec<Value> =
                wrong.json["usage"][0]["hours"].as_array().unwrap().iter().map(|h| h["start"].clone()).collect();
            assert_eq!(got, shifted, "{setting}: the hours of another window, labelled as these");
        }
    }
    let sim = start_sim(&[11]);
    let mut req = request(&sim.api_url(), until, vec![row(1, "Active", Some("11"), until - 3600)]);
    req["app"]["custom"] = json!({"Usage time zone": "Asia/Kolkata"});
    let bad = run(&host, &req, &[]);
    assert_eq!((bad.code, bad.error_kind()), (1, Some("configuration")), "{}", bad.all_output());
    assert!(bad.error_message().contains("Usage time zone"), "{}", bad.error_message());
    assert_eq!(sim.request_count(), 0);
}

#[test]
fn a_rejected_token_a_refused_method_or_a_dead_api_is_one_error() {
    let host = Host::from_env();
    let until = until();
    let rows: Vec<Value> = (1..=40).map(|i| row(i, "Active", Some("11"), until - 3600)).collect();

    let sim = start_sim(&[11]);
    let mut req = request(&sim.api_url(), until, rows.clone());
    req["app"]["field2"] = json!("wrong-token-0123456789");
    let rejected = run(&host, &req, &[]);
    assert_eq!((rejected.code, rejected.error_kind()), (1, Some("authentication")), "{}", rejected.all_output());
    assert!(sim.request_count() <= 8, "{} requests", sim.request_count());
    assert!(!rejected.all_output().contains("wrong-token-0123456789"));

    let sim = start_sim(&[11]);
    sim.deny_method(METHOD);
    let denied = run(&host, &request(&sim.api_url(), until, rows.clone()), &[]);
    assert_eq!((denied.code, denied.error_kind()), (1, Some("remote-api")), "{}", denied.all_output());
    assert_eq!(denied.json["error"]["code"], 8202);
    assert!(denied.error_message().contains("GetAccountBillingHistoryByPeriodInner"), "{}", denied.error_message());
    assert!(sim.request_count() <= 8, "{} requests", sim.request_count());

    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/1.0", listener.local_addr().unwrap());
        drop(listener);
        run(&host, &request(&url, until, rows), &[])
    };
    assert_eq!((dead.code, dead.error_kind()), (1, Some("transport")), "{}", dead.all_output());
    assert!(dead.error_message().contains("unreachable"), "{}", dead.error_message());
}

#[test]
fn past_the_deadline_the_accounts_not_read_say_so() {
    let host = Host::from_env();
    let sim = start_sim(&[11]);
    sim.set_latency(std::time::Duration::from_millis(250));
    let until = until();
    let rows: Vec<Value> = (1..=40).map(|i| row(i, "Active", Some("11"), until - 3600)).collect();
    let run = run(&host, &request(&sim.api_url(), until, rows), &["--deadline-secs", "2.5", "--max-concurrency", "2"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let usage = run.json["usage"].as_array().unwrap();
    assert_eq!(usage.len(), 40);
    let read = usage.iter().filter(|r| r.get("hours").is_some()).count();
    let late: Vec<_> = usage
        .iter()
        .filter(|r| r["error"]["message"].as_str().is_some_and(|m| m.starts_with("not read before the deadline")))
        .collect();
    assert!(
        read > 0 && !late.is_empty() && read + late.len() == 40,
        "read {read}, late {}: {}",
        late.len(),
        run.stdout
    );
    assert_eq!(run.json["summary"]["read"], read);
}

#[test]
fn bad_windows_are_their_accounts_errors_and_a_bad_until_runs_nothing() {
    let host = Host::from_env();
    let sim = start_sim(&[11]);
    let until = until();
    let mut missing = row(3, "Active", Some("11"), until);
    missing.as_object_mut().unwrap().remove("usage_from");
    let rows = vec![
        row(1, "Active", Some("11"), until),              // empty window
        row(2, "Active", Some("11"), until - 745 * 3600), // longer than 31 days
        missing,
        row(4, "Active", Some("11"), until - 3600),
        json!({"id": 5, "client_id": 1, "status": "Active", "usage_from": "2026-01-01T00:30:00Z"}),
    ];
    let run = run(&host, &request(&sim.api_url(), until, rows.clone()), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let usage = run.json["usage"].as_array().unwrap();
    assert_eq!(usage.iter().map(|r| r["account_id"].clone()).collect::<Vec<_>>(), [1, 2, 3, 4, 5].map(|i| json!(i)));
    for (i, needle) in [
        (0, "is not before usage_until"),
        (1, "at most 744 hours"),
        (2, "missing field `usage_from`"),
        (4, "not a whole hour"),
    ] {
        assert_eq!(usage[i]["error"]["kind"], "bad-input", "{}", usage[i]);
        assert!(usage[i]["error"]["message"].as_str().unwrap().contains(needle), "{}", usage[i]);
    }
    assert_matches_oracle(&usage[3], 11, until - 3600, until);
    assert_eq!(run.json["summary"]["errors"], 4);
    assert_eq!(sim.requests().len(), 1);

    let now = until + 2 * 3600;
    let future = run_host_bad(&host, &request(&sim.api_url(), now, vec![row(1, "Active", Some("11"), until)]));
    assert_eq!((future.code, future.error_kind()), (2, Some("bad-input")), "{}", future.all_output());
    assert!(future.error_message().contains("only closed hours"), "{}", future.error_message());
    assert_eq!(sim.requests().len(), 1, "nothing ran");
}

fn run_host_bad(host: &Host, request: &Value) -> HostRun {
    run(host, request, &[])
}

#[test]
fn a_module_older_than_2_3_is_told_to_upgrade() {
    let sim = start_sim(&[11]);
    let until = until();
    let req = request(&sim.api_url(), until, vec![row(1, "Active", Some("11"), until - 3600)]);
    for (component, version) in [("egress-probe", "2.2.0"), ("contract-2-0", "2.0.0")] {
        let host = Host::from_env().with_test_component(component);
        let run = run(&host, &req, &[]);
        assert_eq!((run.code, run.error_kind()), (1, Some("unsupported")), "{component}: {}", run.all_output());
        let message = run.error_message();
        assert!(message.contains(&format!("@{version}")) && message.contains("2.3.0 or later"), "{message}");
    }
    assert_eq!(sim.request_count(), 0);
}
