//! Sync: reads the CloudPe state of many accounts and decides, per account, what HostBill should
//! record. A failed or ambiguous lookup never yields a change.

mod lookups;
mod paging;

use std::collections::BTreeMap;

use super::{account_facts, cloudpe_uid, settings};
use crate::api::{CloudPe, DEADLINE_MESSAGE, RemoteAccount, RetryPolicy};
use crate::status;
use crate::transport::Platform;
use crate::wit::{
    Account, AccountDecision, AppSettings, Decision, HostbillStatus, LogLevel, ModuleError, StatusChange, SyncOptions,
    SyncReport, SyncStrategy,
};

/// What CloudPe said about one uid: the exact account, none, or why it could not be told.
pub(crate) type Lookup = Result<Option<RemoteAccount>, ModuleError>;

/// Whether HostBill status `s` is pulled from CloudPe: Pending accounts are not provisioned yet,
/// and Terminated/Cancelled/Fraud are final in HostBill.
pub fn is_candidate(s: HostbillStatus) -> bool {
    matches!(s, HostbillStatus::Active | HostbillStatus::Suspended)
}

/// How the remote state is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Lookups,
    /// Page through the list; `may_switch` lets it fall back to lookups once the list's size
    /// shows they would take fewer requests.
    Pages {
        may_switch: bool,
    },
}

/// Exact lookups cost one request per uid, pages one per `page_size` accounts. With `auto`,
/// a set that fits in one round of lookups is looked up; a larger one starts paging, and the
/// first round of pages (which reveals the list's size) decides whether to go on.
fn plan(options: &SyncOptions, wanted: usize) -> Plan {
    match options.strategy {
        SyncStrategy::ExactLookups => Plan::Lookups,
        SyncStrategy::PageAll => Plan::Pages { may_switch: false },
        SyncStrategy::Auto if wanted <= options.max_concurrency.max(1) as usize => Plan::Lookups,
        SyncStrategy::Auto => Plan::Pages { may_switch: true },
    }
}

/// Decides every account; reads CloudPe concurrently (exact lookups or pages, see [`plan`]).
pub fn sync(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: &[Account],
    options: SyncOptions,
) -> Result<SyncReport, ModuleError> {
    let settings = settings(app)?;
    let api = CloudPe::new(&settings, platform);
    let retry = RetryPolicy::attempts(options.max_attempts);
    let max_in_flight = options.max_concurrency.max(1) as usize;

    let uids: Vec<Option<Result<u64, ModuleError>>> =
        accounts.iter().map(|a| is_candidate(a.status).then(|| cloudpe_uid(&settings, a))).collect();
    let mut wanted: Vec<u64> = uids.iter().filter_map(|u| u.as_ref()?.as_ref().ok().copied()).collect();
    wanted.sort_unstable();
    wanted.dedup();

    let plan = plan(&options, wanted.len());
    let lookups: BTreeMap<u64, Lookup> = match plan {
        _ if wanted.is_empty() => BTreeMap::new(),
        Plan::Lookups => lookups::exact(&api, &wanted, max_in_flight, retry),
        Plan::Pages { may_switch } => {
            paging::scan(&api, &wanted, options.page_size.max(1) as u64, max_in_flight, retry, may_switch)
        }
    };
    if let Some(error) = api.halted() {
        // The credentials were rejected or CloudPe could not be reached at all: one error for the
        // whole sync says so, instead of the same failure repeated for every account.
        platform.log(LogLevel::Error, &format!("sync stopped after {} requests: {}", api.requests(), error.message()));
        return Err(error);
    }

    let decisions: Vec<AccountDecision> = accounts
        .iter()
        .zip(uids)
        .map(|(account, uid)| {
            let decision = match uid {
                None => Decision::Skipped(format!("HostBill status {} is not synced", account.status.as_str())),
                Some(Err(e)) => Decision::Failed(e),
                Some(Ok(uid)) => decide(account, uid, &lookups[&uid]),
            };
            AccountDecision { account_id: account.id, decision }
        })
        .collect();

    let changes = decisions.iter().filter(|d| matches!(d.decision, Decision::Change(_))).count();
    let failures = decisions.iter().filter(|d| matches!(d.decision, Decision::Failed(_))).count();
    let late =
        lookups.values().filter(|l| matches!(l, Err(ModuleError::Transport(m)) if m == DEADLINE_MESSAGE)).count();
    if late > 0 {
        platform.log(
            LogLevel::Warn,
            &format!("sync: {late} CloudPe users were not read before the deadline; their accounts are left unchanged"),
        );
    }
    platform.log(
        LogLevel::Info,
        &format!(
            "sync: {} accounts, {} CloudPe users wanted ({plan:?}), {changes} to change, {failures} failed, {} requests",
            accounts.len(),
            wanted.len(),
            api.requests()
        ),
    );
    Ok(SyncReport { decisions, requests: api.requests() })
}

fn decide(account: &Account, uid: u64, lookup: &Lookup) -> Decision {
    let remote = match lookup {
        Err(e) => return Decision::Failed(e.clone()),
        Ok(None) => {
            return Decision::Failed(ModuleError::NotFound(format!(
                "CloudPe has no user with uid {uid} (client #{}): HostBill left unchanged",
                account.client_id
            )));
        }
        Ok(Some(remote)) => remote,
    };
    let facts = account_facts(remote);
    let Some(state) = remote.status else {
        return Decision::Failed(ModuleError::Unexpected(format!(
            "CloudPe returned user {uid} without a status: HostBill left unchanged"
        )));
    };
    match status::hostbill_status(state, remote.is_enabled) {
        None => Decision::Failed(ModuleError::Unexpected(format!(
            "CloudPe user {uid} has status {}, which this module does not know: HostBill left unchanged",
            status::describe(state)
        ))),
        Some(to) if to == account.status => Decision::Unchanged(facts),
        Some(to) => Decision::Change(StatusChange { from: account.status, to, facts }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{FakeCloudPe, app};
    use crate::wit::CustomField;

    fn account(id: u64, uid: &str, status: HostbillStatus) -> Account {
        Account {
            id,
            client_id: id + 100,
            status,
            custom_fields: vec![CustomField { code: "cloudpeid".into(), value: uid.into() }],
        }
    }

    fn opts() -> SyncOptions {
        SyncOptions { max_concurrency: 4, ..SyncOptions::default() }
    }

    #[test]
    fn decisions_for_a_mixed_population() {
        use HostbillStatus::*;
        let cloud = FakeCloudPe::new(&[
            (12, 1, Some(true)),
            (120, 2, None),
            (13, 1, Some(false)),
            (14, 3, None),
            (15, 7, None),
            (16, 2, Some(true)),
        ]);
        let accounts = vec![
            account(1, "12", Suspended),  // active on CloudPe -> Active (decoy 120 must not leak in)
            account(2, "120", Suspended), // inactive -> unchanged
            account(3, "13", Active),     // login locked -> Suspended
            account(4, "14", Active),     // being destroyed -> Terminated
            account(5, "15", Active),     // unknown status -> failed
            account(6, "99", Active),     // unknown uid -> failed
            account(7, "abc", Active),    // bad id -> failed
            account(8, "12", Pending),    // not a candidate
            account(9, "16", Suspended),  // unchanged
            account(10, "12", Terminated),
        ];
        let report = sync(&cloud, &app(), &accounts, opts()).unwrap();
        let d: Vec<_> = report.decisions.iter().map(|d| (d.account_id, &d.decision)).collect();
        assert!(matches!(d[0].1, Decision::Change(StatusChange { from: Suspended, to: Active, .. })), "{:?}", d[0]);
        assert!(matches!(d[1].1, Decision::Unchanged(_)), "{:?}", d[1]);
        assert!(matches!(d[2].1, Decision::Change(StatusChange { from: Active, to: Suspended, .. })), "{:?}", d[2]);
        assert!(matches!(d[3].1, Decision::Change(StatusChange { from: Active, to: Terminated, .. })), "{:?}", d[3]);
        assert!(matches!(d[4].1, Decision::Failed(ModuleError::Unexpected(_))), "{:?}", d[4]);
        assert!(matches!(d[5].1, Decision::Failed(ModuleError::NotFound(_))), "{:?}", d[5]);
        assert!(matches!(d[6].1, Decision::Failed(ModuleError::Configuration(_))), "{:?}", d[6]);
        assert!(matches!(d[7].1, Decision::Skipped(_)), "{:?}", d[7]);
        assert!(matches!(d[8].1, Decision::Unchanged(_)), "{:?}", d[8]);
        assert!(matches!(d[9].1, Decision::Skipped(_)), "{:?}", d[9]);
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
        // 7 distinct users, more than one round of lookups: one page holds the whole list.
        assert_eq!(report.requests, 1);
        assert!(cloud.writes().is_empty(), "sync never writes to CloudPe");
        // Exact lookups reach the same decisions: 12, 120, 13, 14, 15, 16, 99 once each.
        let lookups = SyncOptions { strategy: SyncStrategy::ExactLookups, ..opts() };
        let by_lookup = sync(&cloud, &app(), &accounts, lookups).unwrap();
        assert_eq!(by_lookup.decisions, report.decisions);
        assert_eq!(by_lookup.requests, 7);
    }

    #[test]
    fn failed_lookups_never_change_anything() {
        let cloud = FakeCloudPe::new(&[(12, 2, None)]);
        cloud.fail_all_with(502);
        let report = sync(&cloud, &app(), &[account(1, "12", HostbillStatus::Active)], opts()).unwrap();
        assert!(
            matches!(&report.decisions[0].decision, Decision::Failed(ModuleError::Transport(m)) if m.contains("502"))
        );
    }

    #[test]
    fn a_rejected_token_stops_the_sync_after_one_request() {
        let cloud = FakeCloudPe::new(&[(12, 1, None), (13, 1, None)]);
        let mut bad = app();
        bad.field2 = Some("wrong-token".into());
        let accounts: Vec<Account> =
            (1..=40).map(|i| account(i, &(i + 10).to_string(), HostbillStatus::Active)).collect();
        let lookups = SyncOptions { strategy: SyncStrategy::ExactLookups, ..opts() };
        let error = sync(&cloud, &bad, &accounts, lookups).unwrap_err();
        assert!(matches!(error, ModuleError::Authentication(_)), "{error:?}");
        assert_eq!(cloud.requests.borrow().len(), 1, "no request after the first rejection");
    }

    #[test]
    fn an_unreachable_api_stops_the_sync_after_one_round() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.unreachable();
        let accounts: Vec<Account> =
            (1..=40).map(|i| account(i, &(i + 10).to_string(), HostbillStatus::Active)).collect();
        let lookups = SyncOptions { strategy: SyncStrategy::ExactLookups, max_attempts: 3, ..opts() };
        let error = sync(&cloud, &app(), &accounts, lookups).unwrap_err();
        assert!(matches!(&error, ModuleError::Transport(m) if m.contains("unreachable")), "{error:?}");
        // One round of max_concurrency (4) requests, not retried: nothing more is sent.
        assert_eq!(cloud.requests.borrow().len(), 4);
    }

    #[test]
    fn with_no_time_left_nothing_is_sent_and_every_candidate_says_so() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        cloud.set_time_left(Some(std::time::Duration::ZERO));
        let accounts = vec![account(1, "12", HostbillStatus::Active), account(2, "13", HostbillStatus::Pending)];
        let report = sync(&cloud, &app(), &accounts, opts()).unwrap();
        assert!(
            matches!(&report.decisions[0].decision, Decision::Failed(ModuleError::Transport(m)) if m == DEADLINE_MESSAGE),
            "{:?}",
            report.decisions[0]
        );
        assert!(matches!(report.decisions[1].decision, Decision::Skipped(_)));
        assert!(cloud.requests.borrow().is_empty());
    }

    #[test]
    fn exact_uid_found_beyond_the_first_page_of_substring_matches() {
        // 150 decoys contain "777"; listed in descending order, the exact uid is on the second page.
        let mut users: Vec<(u64, i64, Option<bool>)> = (0..150).map(|i| (7_770_000 + i, 1, None)).collect();
        users.push((777, 2, None));
        let cloud = FakeCloudPe::new(&users);
        cloud.list_newest_first();
        let report = sync(&cloud, &app(), &[account(1, "777", HostbillStatus::Active)], opts()).unwrap();
        assert!(
            matches!(
                report.decisions[0].decision,
                Decision::Change(StatusChange { to: HostbillStatus::Suspended, .. })
            ),
            "{:?}",
            report.decisions[0]
        );
    }
}
