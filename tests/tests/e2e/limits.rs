//! End to end: the host's limits are the module's. The module sets no response size cap of its
//! own, so the host's `--max-response-mib` decides, and a reply the host cuts is reported with
//! the host's limit.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "limits-session-token-5e21c7";
const MIB: u64 = 1024 * 1024;

/// A `create` (one `getaccounts` lookup) whose reply is the real answer after `padding` spaces.
fn create_with_reply_padded_by(padding: u64, flags: &[&str]) -> HostRun {
    let sim = Simulator::start(SimConfig {
        session: TOKEN.into(),
        accounts: vec![Account::new(12, 1)],
        ..SimConfig::default()
    })
    .expect("simulator");
    sim.add_fault(FaultRule::new(FaultKind::Padded(padding)).method("getaccounts"));
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))});
    let mut args = vec!["create"];
    args.extend_from_slice(flags);
    // The module holds a reply whole while it parses it: room for 40 MiB and its buffer's growth.
    args.extend_from_slice(&["--memory-mib", "256"]);
    Host::from_env().run_args(&args, request.to_string().as_bytes(), &[])
}

#[test]
fn a_reply_larger_than_32_mib_is_read_when_the_host_allows_it() {
    let run = create_with_reply_padded_by(40 * MIB, &["--max-response-mib", "48"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(run.json["outcome"]["facts"]["cloudpe-uid"], "12", "{}", run.stdout);
    assert!(run.json["meter"]["bytes_received"].as_u64().unwrap() > 40 * MIB, "{}", run.json["meter"]);
    assert!(!run.all_output().contains(TOKEN));
}

#[test]
fn a_reply_over_the_hosts_limit_fails_naming_that_limit() {
    let run = create_with_reply_padded_by(40 * MIB, &["--max-response-mib", "16"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert_eq!(run.error_kind(), Some("transport"), "{}", run.stdout);
    let message = run.error_message();
    assert!(message.contains("16777216 bytes"), "the host's limit, in the host's words: {message}");
    assert!(!message.contains("32"), "no limit of the module's own: {message}");
    assert_eq!(run.json["error"]["limit"], json!({"name": "response", "value": "16 MiB"}), "{}", run.stdout);
}
