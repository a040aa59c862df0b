//! The simulated platform and the requests the CloudPe side's linking tests share.

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::{Value, json};

pub const TOKEN: &str = "linking-session-token-5c09e1";
pub const GROUP_OPTION: &str = "CloudPe group";

/// An active user of `uid` with `email`, in `group`.
pub fn user(uid: u64, email: &str, group: &str) -> Account {
    Account { email: email.to_string(), group: group.to_string(), ..Account::new(uid, 1) }
}

/// The platform of these tests: a decoy whose email contains another's (CloudPe's email filter is
/// a substring match), two users sharing one email, and users in two groups.
pub fn start_sim() -> Simulator {
    let accounts = vec![
        user(2001, "bob@x.io", "default"),
        user(2002, "ann.bob@x.io.evil", "default"),
        user(2003, "dup@x.io", "default"),
        user(2004, "DUP@x.io", "default"),
        user(2005, "carol@x.io", "premium"),
    ];
    Simulator::start(SimConfig { session: TOKEN.into(), accounts, ..SimConfig::default() }).unwrap()
}

/// Runs `operation` with `request`, and checks the session token never shows.
pub fn run(host: &Host, operation: &str, request: &Value) -> HostRun {
    let run = host.run(operation, request);
    assert!(!run.all_output().contains(TOKEN), "the session token leaked: {}", run.all_output());
    run
}

/// A `create` / `change-package` request for account 101 (client 11).
pub fn request(sim: &Simulator, cloudpeid: Option<&str>, email: Option<&str>, group: Option<&str>) -> Value {
    let mut req = json!({"app": app(&sim.api_url(), TOKEN), "account": account(101, 11, "Pending", cloudpeid)});
    if let Some(email) = email {
        req["client_email"] = json!(email);
    }
    if let Some(group) = group {
        req["product"] = json!({ GROUP_OPTION: group });
    }
    req
}

/// Users on the platform of [`start_sim`].
pub const USERS: usize = 5;

/// What the simulator's users went through: status changes, group moves, and how many users
/// there are (`(0, 0, USERS)`: nothing written).
pub fn writes(sim: &Simulator) -> (usize, usize, usize) {
    (sim.status_changes().len(), sim.group_changes().len(), sim.user_count())
}
