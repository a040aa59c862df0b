//! Sync: reads the CloudPe state of many accounts and decides, per account, what HostBill should
//! record. A failed or ambiguous lookup never yields a change.

mod batch;
mod found;
mod lookups;
mod paging;

use std::borrow::Cow;

use self::batch::Verdict;
use self::found::Found;
use super::{cloudpe_uid, settings};
use crate::api::{CloudPe, DEADLINE_MESSAGE, RemoteAccount, RetryPolicy};
use crate::status;
use crate::transport::Platform;
use crate::wit::exports::hostbill::provisioning::streaming_sync::SyncSummary;
use crate::wit::{
    Account, AccountDecisionParam, AppSettings, HostbillStatus, LogLevel, ModuleError, SyncOptions, SyncReport,
    SyncStrategy,
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

/// Decides every account and returns the decisions together; see [`sync_streamed`].
pub fn sync(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: &[Account],
    options: SyncOptions,
) -> Result<SyncReport, ModuleError> {
    let mut decisions = Vec::with_capacity(accounts.len());
    let summary = sync_streamed(platform, app, accounts.to_vec(), options, true, &mut |batch| {
        decisions.extend(batch.iter().map(AccountDecisionParam::owned))
    })?;
    Ok(SyncReport { decisions, requests: summary.requests })
}

/// Decisions handed to `emit` at a time by [`sync_streamed`].
pub const EMIT_BATCH: usize = 1024;

/// What the sync keeps of an input account while it reads CloudPe: the account itself (its
/// custom fields and their strings) is dropped once its uid is read.
struct Candidate {
    id: u64,
    client_id: u64,
    status: HostbillStatus,
    /// The CloudPe uid it links to, for an account whose status is synced.
    uid: Option<Result<u64, ModuleError>>,
}

/// Decides every account; reads CloudPe concurrently (exact lookups or pages, see [`plan`]), then
/// hands the decisions to `emit` in input order, [`EMIT_BATCH`] at a time, so they never all
/// exist at once. With `unchanged_facts` false, an `unchanged` decision carries no facts.
pub fn sync_streamed(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: Vec<Account>,
    options: SyncOptions,
    unchanged_facts: bool,
    emit: &mut dyn FnMut(&[AccountDecisionParam<'_>]),
) -> Result<SyncSummary, ModuleError> {
    let settings = settings(app)?;
    let api = CloudPe::new(&settings, platform);
    let retry = RetryPolicy::attempts(options.max_attempts);
    let max_in_flight = options.max_concurrency.max(1) as usize;

    let candidates: Vec<Candidate> = accounts
        .into_iter()
        .map(|a| Candidate {
            id: a.id,
            client_id: a.client_id,
            status: a.status,
            uid: is_candidate(a.status).then(|| cloudpe_uid(&settings, &a)),
        })
        .collect();
    let mut wanted: Vec<u64> = candidates.iter().filter_map(|c| c.uid.as_ref()?.as_ref().ok().copied()).collect();
    wanted.sort_unstable();
    wanted.dedup();

    let plan = plan(&options, wanted.len());
    let mut found = Found::new(wanted);
    match plan {
        _ if found.uids().is_empty() => {}
        Plan::Lookups => {
            let looked_up = lookups::exact(&api, found.uids(), max_in_flight, retry);
            found.extend(looked_up);
        }
        Plan::Pages { may_switch } => {
            found = paging::scan(&api, found, options.page_size.max(1) as u64, max_in_flight, retry, may_switch);
        }
    }
    if let Some(error) = api.halted() {
        // The credentials were rejected or CloudPe could not be reached at all: one error for the
        // whole sync says so, instead of the same failure repeated for every account.
        platform.log(LogLevel::Error, &format!("sync stopped after {} requests: {}", api.requests(), error.message()));
        return Err(error);
    }

    let (mut changes, mut failures) = (0, 0);
    let mut batch = Vec::with_capacity(EMIT_BATCH.min(candidates.len()));
    for candidate in &candidates {
        let verdict = match &candidate.uid {
            None => Verdict::Skipped(candidate.status),
            Some(Err(e)) => Verdict::Failed(Cow::Borrowed(e)),
            Some(Ok(uid)) => decide(candidate, *uid, &found[*uid], unchanged_facts),
        };
        match verdict {
            Verdict::Change { .. } => changes += 1,
            Verdict::Failed(_) => failures += 1,
            Verdict::Unchanged(_) | Verdict::Skipped(_) => {}
        }
        batch.push((candidate.id, verdict));
        if batch.len() == EMIT_BATCH {
            batch::hand_out(&batch, emit);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        batch::hand_out(&batch, emit);
    }

    let late =
        found.known().filter(|(_, l)| matches!(l, Err(ModuleError::Transport(m)) if m == DEADLINE_MESSAGE)).count();
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
            candidates.len(),
            found.uids().len(),
            api.requests()
        ),
    );
    Ok(SyncSummary { decisions: candidates.len() as u64, requests: api.requests() })
}

fn decide<'r>(account: &Candidate, uid: u64, lookup: &'r Lookup, unchanged_facts: bool) -> Verdict<'r> {
    let failed = |error| Verdict::Failed(Cow::Owned(error));
    let remote = match lookup {
        Err(e) => return Verdict::Failed(Cow::Borrowed(e)),
        Ok(None) => {
            return failed(ModuleError::NotFound(format!(
                "CloudPe has no user with uid {uid} (client #{}): HostBill left unchanged",
                account.client_id
            )));
        }
        Ok(Some(remote)) => remote,
    };
    let Some(state) = remote.status else {
        return failed(ModuleError::Unexpected(format!(
            "CloudPe returned user {uid} without a status: HostBill left unchanged"
        )));
    };
    match status::hostbill_status(state, remote.is_enabled) {
        None => failed(ModuleError::Unexpected(format!(
            "CloudPe user {uid} has status {}, which this module does not know: HostBill left unchanged",
            status::describe(state)
        ))),
        Some(to) if to == account.status => Verdict::Unchanged(unchanged_facts.then_some(remote)),
        Some(to) => Verdict::Change { from: account.status, to, remote },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{FakeCloudPe, app};
    use crate::wit::{AccountDecision, CustomField, Decision, StatusChange};

    fn account(id: u64, uid: &str, status: HostbillStatus) -> Account {
        Account {
            id,
            client_id: id + 100,
            status,
            custom_fields: vec![CustomField { code: "cloudpeid".into(), value: uid.into() }],
        }
    }

    fn owned(batch: &[AccountDecisionParam<'_>]) -> Vec<AccountDecision> {
        batch.iter().map(AccountDecisionParam::owned).collect()
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
    fn a_streamed_sync_emits_the_same_decisions_in_input_order_and_in_batches() {
        use HostbillStatus::*;
        let users: Vec<(u64, i64, Option<bool>)> = (0..2500).map(|i| (1000 + i, 1 + (i % 2) as i64, None)).collect();
        let cloud = FakeCloudPe::new(&users);
        let accounts: Vec<Account> = (0..2600u64)
            .map(|i| account(i + 1, &(1000 + i).to_string(), [Active, Active, Suspended, Pending][(i % 4) as usize]))
            .collect();
        let whole = sync(&cloud, &app(), &accounts, opts()).unwrap();
        let mut batches: Vec<Vec<AccountDecision>> = Vec::new();
        let summary =
            sync_streamed(&cloud, &app(), accounts.clone(), opts(), true, &mut |batch| batches.push(owned(batch)))
                .unwrap();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [EMIT_BATCH, EMIT_BATCH, 2600 - 2 * EMIT_BATCH]);
        assert_eq!(batches.concat(), whole.decisions, "the same decisions, in input order");
        assert_eq!((summary.decisions, summary.requests), (2600, whole.requests));

        let mut lean = Vec::new();
        sync_streamed(&cloud, &app(), accounts, opts(), false, &mut |batch| lean.extend(owned(batch))).unwrap();
        let mut unchanged = 0;
        for (full, lean) in whole.decisions.iter().zip(&lean) {
            match (&full.decision, &lean.decision) {
                (Decision::Unchanged(facts), Decision::Unchanged(none)) => {
                    assert!(!facts.is_empty() && none.is_empty(), "{full:?} / {lean:?}");
                    unchanged += 1;
                }
                _ => assert_eq!(full, lean, "only unchanged decisions lose their facts"),
            }
        }
        assert!(unchanged > 500, "{unchanged}");
        assert!(whole.decisions.iter().any(|d| matches!(&d.decision, Decision::Change(c) if !c.facts.is_empty())));
    }

    #[test]
    fn a_sync_that_fails_before_deciding_emits_nothing() {
        let cloud = FakeCloudPe::new(&[(12, 1, None)]);
        let mut bad = app();
        bad.field2 = Some("wrong-token".into());
        let mut emitted = 0;
        let accounts = vec![account(1, "12", HostbillStatus::Active)];
        let error =
            sync_streamed(&cloud, &bad, accounts, opts(), true, &mut |batch| emitted += batch.len()).unwrap_err();
        assert!(matches!(error, ModuleError::Authentication(_)), "{error:?}");
        assert_eq!(emitted, 0);
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
    fn an_unreachable_api_stops_the_sync_whatever_the_strategy() {
        // Issue 25 item 6: paging (the default plan for a large set, and page-all) sends a single
        // round of pages, which the first-round rule used to leave alone: after its retries every
        // account got the same transport error and the sync reported success.
        let accounts: Vec<Account> =
            (1..=2000).map(|i| account(i, &(i + 10).to_string(), HostbillStatus::Active)).collect();
        for strategy in [SyncStrategy::Auto, SyncStrategy::PageAll, SyncStrategy::ExactLookups] {
            let cloud = FakeCloudPe::new(&[(12, 1, None)]);
            cloud.unreachable();
            let options = SyncOptions { strategy, max_attempts: 3, ..opts() };
            let mut emitted = 0;
            let error =
                sync_streamed(&cloud, &app(), accounts.clone(), options, false, &mut |batch| emitted += batch.len())
                    .unwrap_err();
            assert!(
                matches!(&error, ModuleError::Transport(m) if m.contains("is unreachable") && m.contains("connection refused")),
                "{strategy:?}: {error:?}"
            );
            assert_eq!(emitted, 0, "{strategy:?}: no per-account decision");
            let sent = cloud.requests.borrow().len();
            assert!(sent <= 3 * 4, "{strategy:?}: {sent} requests");
        }
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
