//! The simulated CloudPe (Virtuozzo Application Platform admin API) as plain functions over its
//! state, faithful to `docs/cloudpe-api.md`: the four methods the module uses (the usage's in
//! [`usage`], with the oracle of its history), substring
//! `filterField` matching, paging with `totalCount`, HTTP 200 error envelopes, session checks,
//! idempotent status changes, and the fault rules tests inject.
//!
//! This crate is the one source of truth for how the simulated API behaves. Two transports
//! carry it: `cloudpe-e2e`'s simulator serves it over real HTTP, and the guest's unit tests call
//! [`respond`] directly through their in-memory platform.

mod accounts;
mod api;
mod faults;
pub mod groups;
pub mod provision;
pub mod usage;

use std::collections::BTreeMap;

pub use accounts::{Account, Accounts, Group, decoys_of, population, sample_accounts};
pub use api::{ApiState, METHODS, RESULT_FAILURE, RESULT_NOT_FOUND, RESULT_SESSION_INVALID, call};
pub use faults::{FaultKind, FaultRule, take};
pub use groups::{Groups, GroupsShape};
pub use provision::{CreateVariant, Created, PasswordShape};

/// A request's query and form parameters, merged (form wins).
pub type Params = BTreeMap<String, String>;

/// The page a reverse proxy (nginx) sends when CloudPe behind it is down.
pub const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// What a request gets once the API and the fault that hit it (if any) have had their say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// HTTP 200 with this JSON text (possibly cut short by [`FaultKind::TruncatedJson`]).
    Json(String),
    /// Another HTTP status, with a body of `content_type`.
    Http { status: u16, content_type: &'static str, body: &'static str },
    /// HTTP 200 with `spaces` spaces, then this JSON: a valid reply of any size (JSON allows
    /// leading whitespace), which a transport streams without holding the spaces.
    Padded { spaces: u64, json: String },
    /// A fault only the transport can carry out.
    Transport(TransportFault),
}

/// The faults of [`FaultKind`] that are the network's or the server's, not the API's: each
/// transport renders them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFault {
    /// [`FaultKind::Timeout`]: never answered.
    Timeout,
    /// [`FaultKind::Reset`]: the connection is reset.
    Reset,
    /// [`FaultKind::HugeBody`]: a body of this many bytes.
    HugeBody(u64),
    /// [`FaultKind::StalledBody`]: a body that starts, then never continues.
    StalledBody,
}

/// The API method a path names, if it is one served under `/1.0/`, in its canonical spelling.
pub fn route(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/1.0/")?;
    let (service, method) = rest.rsplit_once("/rest/")?;
    METHODS.iter().find(|(s, m)| *s == service && m.eq_ignore_ascii_case(method)).map(|(_, m)| *m)
}

/// Answers API `method` with `params`, under `fault` (taken with [`take`] when the request
/// arrived). A fault that applies the call first, or deletes users first, changes `state` before
/// the answer is chosen.
pub fn respond(state: &mut ApiState, method: &str, params: &Params, fault: Option<FaultKind>) -> Reply {
    if !state.create_variant.offers(method) {
        // The creation path this platform lacks: unknown, like any path not served.
        return Reply::Http { status: 404, content_type: "text/plain", body: "404 Not Found" };
    }
    let fault = match fault {
        Some(FaultKind::AfterApplying(inner)) => {
            call(state, method, params);
            Some(*inner)
        }
        Some(FaultKind::ConcurrentDelete(uids)) => {
            for uid in uids {
                state.accounts.remove(&uid);
            }
            None
        }
        other => other,
    };
    match fault {
        None | Some(FaultKind::AfterApplying(_) | FaultKind::ConcurrentDelete(_)) => {
            Reply::Json(call(state, method, params))
        }
        Some(FaultKind::Http500) => {
            Reply::Http { status: 500, content_type: "text/plain", body: "Internal Server Error" }
        }
        Some(FaultKind::Html502) => Reply::Http { status: 502, content_type: "text/html", body: BAD_GATEWAY_PAGE },
        Some(FaultKind::ApiError { result, error }) => {
            Reply::Json(serde_json::json!({"result": result, "error": error, "source": "JEL"}).to_string())
        }
        Some(FaultKind::Padded(spaces)) => Reply::Padded { spaces, json: call(state, method, params) },
        Some(FaultKind::TruncatedJson) => {
            let reply = call(state, method, params);
            Reply::Json(reply[..reply.len() / 2].to_string())
        }
        Some(FaultKind::Timeout) => Reply::Transport(TransportFault::Timeout),
        Some(FaultKind::Reset) => Reply::Transport(TransportFault::Reset),
        Some(FaultKind::HugeBody(bytes)) => Reply::Transport(TransportFault::HugeBody(bytes)),
        Some(FaultKind::StalledBody) => Reply::Transport(TransportFault::StalledBody),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ApiState {
        ApiState {
            appid: "cluster".into(),
            session: "tok".into(),
            accounts: [(12, Account::new(12, 1))].into_iter().collect(),
            ..ApiState::default()
        }
    }

    fn write(status: &str) -> Params {
        [("session", "tok"), ("uid", "12"), ("status", status)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn routes() {
        assert_eq!(route("/1.0/billing/account/rest/getaccounts"), Some("getaccounts"));
        assert_eq!(route("/1.0/billing/account/rest/GetAccounts"), Some("getaccounts"));
        assert_eq!(route("/1.0/marketplace/app/rest/getchecksum"), Some("getchecksum"));
        assert_eq!(route("/billing/account/rest/getaccounts"), None);
        assert_eq!(route("/1.0/billing/account/rest/deleteaccount"), None);
        assert_eq!(route("/1.0/marketplace/app/rest/getaccounts"), None);
    }

    #[test]
    fn a_write_after_applying_changes_the_account_and_loses_the_reply() {
        let mut s = state();
        let reply = respond(&mut s, "setaccountstatus", &write("2"), Some(FaultKind::Http500.after_applying()));
        assert!(matches!(reply, Reply::Http { status: 500, .. }), "{reply:?}");
        assert_eq!(s.accounts[&12].status, 2);
        assert_eq!(s.status_changes, vec![(12, 2)]);
    }

    #[test]
    fn a_plain_fault_leaves_the_state_alone() {
        let mut s = state();
        let reply = respond(&mut s, "setaccountstatus", &write("2"), Some(FaultKind::Reset));
        assert_eq!(reply, Reply::Transport(TransportFault::Reset));
        assert_eq!(s.accounts[&12].status, 1);
        assert!(s.status_changes.is_empty());
    }

    #[test]
    fn truncated_json_is_half_of_the_real_answer() {
        let mut s = state();
        let Reply::Json(whole) = respond(&mut s.clone(), "setaccountstatus", &write("2"), None) else { panic!() };
        let Reply::Json(cut) = respond(&mut s, "setaccountstatus", &write("2"), Some(FaultKind::TruncatedJson)) else {
            panic!()
        };
        assert_eq!(cut, whole[..whole.len() / 2]);
    }
}
