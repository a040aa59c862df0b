//! `cloudpe-demo` (run by `cargo xtask demo`): starts a simulated CloudPe with sample users and
//! drives every operation and a sync through the real host and component, printing what
//! happened in HostBill's terms.

use std::time::Duration;

use anyhow::{Result, ensure};
use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator, sample_accounts};
use serde_json::{Value, json};

const SESSION: &str = "demo-admin-session-7c1f04e2b9";

fn main() -> Result<()> {
    let host = Host::from_env();
    let sim =
        Simulator::start(SimConfig { session: SESSION.into(), accounts: sample_accounts(), ..SimConfig::default() })?;
    let size = std::fs::metadata(&host.component)?.len();
    println!("CloudPe module for HostBill: demo");
    println!("=================================");
    println!("component   {} ({} KiB)", host.component.display(), size / 1024);
    println!("host        {}", host.bin.display());
    println!(
        "CloudPe     simulated at {} (App: Host URL = that, App Id = cluster, Session = a secret token)",
        sim.api_url()
    );
    println!();
    println!("CloudPe users:");
    print_users(&sample_accounts());

    let mut demo = Demo { host, sim, runs: vec![], step: 0 };
    demo.section("HostBill operations, as the admin or the order flow triggers them");
    demo.info();
    demo.test_connection(SESSION, "Test Connection");
    let linked = account(101, 11, "Active", Some("12"));
    demo.account_op("create", "Create account #101 (client #11, cloudpeid 12)", &linked, Some(12));
    demo.account_op("suspend", "Suspend account #101", &linked, Some(12));
    demo.account_op("unsuspend", "Unsuspend account #101", &linked, Some(12));
    demo.account_op("terminate", "Terminate account #101 (policy: default)", &linked, Some(12));

    demo.section("What goes wrong, and what the admin is told");
    demo.account_op(
        "suspend",
        "Suspend account #102 whose client has no cloudpeid",
        &account(102, 12, "Active", None),
        None,
    );
    demo.account_op(
        "suspend",
        "Suspend account #103, cloudpeid \"12a\"",
        &account(103, 13, "Active", Some("12a")),
        None,
    );
    demo.account_op(
        "create",
        "Create account #104, cloudpeid 1 (CloudPe's filter also matches 12, 120, 13, ...)",
        &account(104, 14, "Active", Some("1")),
        None,
    );
    demo.test_connection("expired-session-0000", "Test Connection with an expired session token");
    demo.sim.add_fault(FaultRule::new(FaultKind::Html502).times(1));
    demo.account_op("suspend", "Suspend account #101; CloudPe's proxy answers one HTML 502 page", &linked, Some(12));
    demo.sim.add_fault(FaultRule::new(FaultKind::Html502));
    demo.account_op(
        "unsuspend",
        "Unsuspend account #101 while CloudPe's proxy keeps answering HTML 502",
        &linked,
        Some(12),
    );
    demo.sim.clear_faults();
    demo.sim.add_fault(FaultRule::new(FaultKind::Timeout));
    demo.account_op_args(
        &["unsuspend", "--read-timeout-secs", "1"],
        "Unsuspend account #101 while CloudPe hangs (read timeout 1 s)",
        &linked,
        Some(12),
    );
    demo.sim.clear_faults();

    demo.section("Daily sync: which HostBill statuses to update from CloudPe");
    demo.sync();

    let leaked = demo.runs.iter().filter(|r| r.all_output().contains(SESSION)).count();
    println!();
    println!(
        "{} host runs, median {} ms per operation (whole process); session token printed: {}",
        demo.runs.len(),
        median_ms(&demo.runs),
        if leaked == 0 {
            "never (checked every run's stdout and stderr)".to_string()
        } else {
            format!("in {leaked} runs!")
        }
    );
    ensure!(leaked == 0, "the session token leaked");
    Ok(())
}

struct Demo {
    host: Host,
    sim: Simulator,
    runs: Vec<HostRun>,
    step: usize,
}

impl Demo {
    fn section(&self, title: &str) {
        println!();
        println!("── {title} ──");
    }

    fn headline(&mut self, title: &str, run: &HostRun) {
        self.step += 1;
        let verdict = match run.code {
            0 => "OK".to_string(),
            code => format!("FAILED, {} (exit {code})", run.error_kind().unwrap_or("?")),
        };
        println!();
        println!("[{}] {title}", self.step);
        println!("    → {verdict} in {} ms", run.elapsed.as_millis());
    }

    fn info(&mut self) {
        let run = self.host.run_args(&["info"], b"", &[]);
        self.headline("Module info (what HostBill shows on the module page)", &run);
        let info = &run.json["info"];
        println!(
            "    {} {} implementing {}",
            info["name"].as_str().unwrap_or("?"),
            info["version"].as_str().unwrap_or("?"),
            info["wit_package"].as_str().unwrap_or("?")
        );
        for field in info["app_fields"].as_array().into_iter().flatten() {
            let secret = if field["secret"] == true { ", secret" } else { "" };
            println!(
                "    App field {:<10} {:<18} {}{secret}",
                field["field"].as_str().unwrap_or(""),
                field["label"].as_str().unwrap_or(""),
                field["description"].as_str().unwrap_or("")
            );
        }
        self.runs.push(run);
    }

    fn test_connection(&mut self, session: &str, title: &str) {
        let run = self.host.run("test-connection", &json!({"app": app(&self.sim.api_url(), session)}));
        self.headline(title, &run);
        for check in run.json["checks"].as_array().into_iter().flatten() {
            let mark = if check["passed"] == true { "pass" } else { "FAIL" };
            println!(
                "    {mark}  {}: {}",
                check["name"].as_str().unwrap_or(""),
                check["detail"].as_str().unwrap_or("")
            );
        }
        if run.code != 0 && !run.all_output().contains(session) {
            println!("    (CloudPe echoed the rejected token in its error; the host printed it nowhere)");
        }
        self.runs.push(run);
    }

    fn account_op(&mut self, op: &str, title: &str, account: &Value, uid: Option<u64>) {
        self.account_op_args(&[op], title, account, uid);
    }

    fn account_op_args(&mut self, args: &[&str], title: &str, account: &Value, uid: Option<u64>) {
        let before = self.sim.status_changes().len();
        let request = json!({"app": app(&self.sim.api_url(), SESSION), "account": account});
        let run = self.host.run_args(args, request.to_string().as_bytes(), &[]);
        self.headline(title, &run);
        match run.json["outcome"]["message"].as_str() {
            Some(message) => println!("    {message}"),
            None => println!("    {}", run.error_message()),
        }
        let writes = self.sim.status_changes().len() - before;
        let retries = run.json["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["message"].as_str().is_some_and(|m| m.contains("retrying")))
            .count();
        if retries > 0 {
            println!("    ({retries} retries after transient failures, with backoff)");
        }
        if let Some(remote) = uid.and_then(|uid| self.sim.account(uid)) {
            println!(
                "    CloudPe now: user {} status {}{}",
                remote.uid,
                describe(remote.status),
                if writes == 0 {
                    " (no status write made)".to_string()
                } else {
                    format!(" ({writes} status writes received)")
                }
            );
        }
        self.runs.push(run);
    }

    fn sync(&mut self) {
        let accounts = json!([
            account(201, 21, "Suspended", Some("12")),
            account(202, 22, "Active", Some("120")),
            account(203, 23, "Active", Some("13")),
            account(204, 24, "Active", Some("14")),
            account(205, 25, "Active", Some("15")),
            account(206, 26, "Suspended", Some("16")),
            account(207, 27, "Active", Some("17")),
            account(208, 28, "Active", Some("99")),
            account(209, 29, "Active", None),
            account(210, 30, "Pending", Some("12")),
            account(211, 31, "Terminated", Some("15")),
        ]);
        let input = accounts.as_array().cloned().unwrap_or_default();
        let writes_before = self.sim.status_changes().len();
        let run = self.host.run("sync", &json!({"app": app(&self.sim.api_url(), SESSION), "accounts": accounts}));
        self.headline(&format!("Sync of {} HostBill accounts", input.len()), &run);
        println!("    {:<9} {:<11} {:<10} {:<42} decision", "account", "HostBill", "cloudpeid", "CloudPe says");
        for (account, decision) in input.iter().zip(run.json["decisions"].as_array().into_iter().flatten()) {
            let facts = &decision["facts"];
            let remote = match (facts["cloudpe-status"].as_str(), facts["cloudpe-login"].as_str()) {
                (Some(status), Some(login)) => format!("status {status}, login {login}"),
                _ => "-".to_string(),
            };
            let verdict = match decision["decision"].as_str().unwrap_or("") {
                "change" => format!("set HostBill to {}", decision["to"].as_str().unwrap_or("?")),
                "unchanged" => "unchanged".to_string(),
                "skipped" => format!("skipped: {}", decision["reason"].as_str().unwrap_or("")),
                _ => format!(
                    "ERROR ({}): {}",
                    decision["error"]["kind"].as_str().unwrap_or(""),
                    decision["error"]["message"].as_str().unwrap_or("")
                ),
            };
            println!(
                "    #{:<8} {:<11} {:<10} {:<42} {verdict}",
                account["id"].as_u64().unwrap_or(0),
                account["status"].as_str().unwrap_or(""),
                account["custom_fields"]["cloudpeid"].as_str().unwrap_or("(none)"),
                remote
            );
        }
        let s = &run.json["summary"];
        println!(
            "    summary: {} to change, {} unchanged, {} errors (left unchanged), {} skipped; {} CloudPe requests, {} CloudPe writes",
            s["change"],
            s["unchanged"],
            s["error"],
            s["skipped"],
            s["requests"],
            self.sim.status_changes().len() - writes_before
        );
        println!("    HostBill records only the changes; an error never changes a status.");
        self.runs.push(run);
    }
}

fn describe(status: i64) -> String {
    let name = match status {
        1 => "active",
        2 => "inactive",
        3 => "being destroyed",
        4 => "deleted",
        _ => "unknown",
    };
    format!("{status} ({name})")
}

fn print_users(users: &[Account]) {
    println!("    {:<5} {:<24} {:<20} login", "uid", "email", "status");
    for u in users {
        let login = if u.is_enabled == Some(false) { "locked" } else { "enabled" };
        println!("    {:<5} {:<24} {:<20} {login}", u.uid, u.email, describe(u.status));
    }
}

fn median_ms(runs: &[HostRun]) -> u128 {
    let mut ms: Vec<u128> =
        runs.iter().filter(|r| r.elapsed < Duration::from_secs(1)).map(|r| r.elapsed.as_millis()).collect();
    ms.sort_unstable();
    ms.get(ms.len() / 2).copied().unwrap_or(0)
}
