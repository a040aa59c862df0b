//! Reconciliation: reads CloudPe's whole user list once and compares it with HostBill's accounts
//! and their clients' emails. Read-only on both sides; a list that could not be read completely
//! (or changed while it was read) is an error, never a partial report.

use std::collections::BTreeMap;

use super::{cloudpe_uid, settings};
use crate::api::{AccountsPage, CloudPe, RemoteAccount, RetryPolicy, first_round_pages};
use crate::config::Settings;
use crate::transport::Platform;
use crate::wit::{
    Account, AccountIssue, AppSettings, ClientAccount, EmailDifference, LogLevel, MissingUser, ModuleError,
    Reconciliation, RemoteUser, SharedUser, SyncOptions,
};

/// Compares `accounts` with every CloudPe user.
pub fn reconcile(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: &[ClientAccount],
    options: SyncOptions,
) -> Result<Reconciliation, ModuleError> {
    let settings = settings(app)?;
    let rows: Vec<(&Account, Option<&str>)> =
        accounts.iter().map(|c| (&c.account, c.client_email.as_deref())).collect();
    let report = compare(platform, &settings, &rows, options)?.report;
    platform.log(LogLevel::Info, &format!("reconcile: {}", summary(accounts.len(), &report)));
    Ok(report)
}

/// One pass over HostBill's accounts and every CloudPe user: the reconciliation, with what the
/// link review builds on.
pub(super) struct Comparison {
    pub report: Reconciliation,
    /// Every CloudPe user, by uid.
    pub users: BTreeMap<u64, RemoteAccount>,
    /// The accounts linked to each uid (indexes into the accounts compared).
    pub linked: BTreeMap<u64, Vec<usize>>,
    /// The accounts of `report.without_id`, in its order (indexes into the accounts compared).
    pub unlinked: Vec<usize>,
}

/// Compares `accounts` (each with its client's email) with every CloudPe user, read once.
pub(super) fn compare(
    platform: &impl Platform,
    settings: &Settings,
    accounts: &[(&Account, Option<&str>)],
    options: SyncOptions,
) -> Result<Comparison, ModuleError> {
    let api = CloudPe::new(settings, platform);
    let page_size = u64::from(options.page_size.max(1));
    let max_in_flight = options.max_concurrency.max(1) as usize;
    let retry = RetryPolicy::attempts(options.max_attempts);

    let mut report = Reconciliation::default();
    let mut linked: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut unlinked = Vec::new();
    for (index, (account, _)) in accounts.iter().enumerate() {
        match cloudpe_uid(settings, account) {
            Ok(uid) => linked.entry(uid).or_default().push(index),
            Err(e) => {
                report.without_id.push(AccountIssue { account_id: account.id, detail: e.message() });
                unlinked.push(index);
            }
        }
    }
    let users = read_all(&api, accounts.len() as u64, page_size, max_in_flight, retry)?;

    for (&uid, indexes) in &linked {
        let ids: Vec<u64> = indexes.iter().map(|&i| accounts[i].0.id).collect();
        if ids.len() > 1 {
            report.shared_users.push(SharedUser { uid, account_ids: ids.clone() });
        }
        let Some(user) = users.get(&uid) else {
            report.missing_remote.extend(ids.iter().map(|&account_id| MissingUser { account_id, uid }));
            continue;
        };
        for &index in indexes {
            let (account, email) = accounts[index];
            if let (Some(ours), Some(theirs)) = (email, user.email())
                && !ours.trim().eq_ignore_ascii_case(theirs.trim())
            {
                report.email_differences.push(EmailDifference {
                    account_id: account.id,
                    uid,
                    hostbill_email: ours.to_string(),
                    remote_email: theirs.to_string(),
                });
            }
        }
    }
    report.unlinked_users = users
        .values()
        .filter(|u| !linked.contains_key(&u.uid))
        .map(|u| RemoteUser { uid: u.uid, email: u.email().map(str::to_string) })
        .collect();
    report.remote_users = users.len() as u64;
    report.requests = api.requests();
    Ok(Comparison { report, users, linked, unlinked })
}

/// The reconciliation's counts in words, for the log.
pub(super) fn summary(accounts: usize, report: &Reconciliation) -> String {
    format!(
        "{} accounts, {} CloudPe users: {} without an id, {} missing on CloudPe, {} shared users, {} unlinked users, {} email differences; {} requests",
        accounts,
        report.remote_users,
        report.without_id.len(),
        report.missing_remote.len(),
        report.shared_users.len(),
        report.unlinked_users.len(),
        report.email_differences.len(),
        report.requests
    )
}

/// Every CloudPe user, by uid. The first round reads as many pages as HostBill's accounts could
/// fill; its `totalCount` says how many more there are.
fn read_all<P: Platform>(
    api: &CloudPe<'_, P>,
    hint: u64,
    page_size: u64,
    max_in_flight: usize,
    retry: RetryPolicy,
) -> Result<BTreeMap<u64, RemoteAccount>, ModuleError> {
    let first_round = first_round_pages(hint, page_size, max_in_flight);
    let mut pages = fetch(api, (0..first_round).map(|i| i * page_size).collect(), page_size, max_in_flight, retry)?;
    let total = pages.iter().map(|(_, p)| p.total_count).max().unwrap_or(0);
    let rest: Vec<u64> = (first_round..total.div_ceil(page_size)).map(|i| i * page_size).collect();
    pages.extend(fetch(api, rest, page_size, max_in_flight, retry)?);
    let (low, high) = pages.iter().fold((u64::MAX, 0), |(l, h), (_, p)| (l.min(p.total_count), h.max(p.total_count)));
    if low < high {
        return Err(ModuleError::Transport(format!(
            "CloudPe's user list changed while it was read (totalCount {low} to {high}): nothing is reported from a shifting list; run the reconciliation again"
        )));
    }
    Ok(pages.into_iter().flat_map(|(_, page)| page.array).map(|user| (user.uid, user)).collect())
}

/// The pages at `start_rows`, or the first failure (a partial list would report users as
/// missing or unlinked that are neither).
fn fetch<P: Platform>(
    api: &CloudPe<'_, P>,
    start_rows: Vec<u64>,
    page_size: u64,
    max_in_flight: usize,
    retry: RetryPolicy,
) -> Result<Vec<(u64, AccountsPage)>, ModuleError> {
    let results = api.pages(&start_rows, page_size, max_in_flight, retry, |page| page);
    if let Some(error) = api.halted() {
        return Err(error);
    }
    start_rows
        .into_iter()
        .zip(results)
        .map(|(row, result)| {
            result.map(|page| (row, page)).map_err(|e| {
                ModuleError::Transport(format!(
                    "CloudPe's user list could not be read completely (the page at startRow {row}: {}); nothing is reported from a partial list",
                    e.message()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{FakeCloudPe, app};
    use crate::wit::{CustomField, HostbillStatus};

    fn client(id: u64, uid: &str, email: Option<&str>) -> ClientAccount {
        ClientAccount {
            account: Account {
                id,
                client_id: id + 100,
                status: HostbillStatus::Active,
                custom_fields: vec![CustomField { code: "cloudpeid".into(), value: uid.into() }],
            },
            client_email: email.map(str::to_string),
        }
    }

    fn opts() -> SyncOptions {
        SyncOptions { page_size: 2, max_concurrency: 2, ..SyncOptions::default() }
    }

    #[test]
    fn every_kind_of_broken_link_is_found() {
        // The simulated CloudPe serves user{uid}@example.com for every user.
        let cloud = FakeCloudPe::new(&[(10, 1, None), (11, 1, None), (12, 2, None), (13, 1, None), (14, 1, None)]);
        let accounts = vec![
            client(1, "10", Some("user10@example.com")),
            client(2, "11", Some("someone@else.com")),
            client(3, "11", None),
            client(4, "99", None),
            client(5, "", None),
            client(6, "x", None),
            client(7, "12", Some(" User12@Example.com ")),
        ];
        let r = reconcile(&cloud, &app(), &accounts, opts()).unwrap();
        assert_eq!(r.without_id.iter().map(|i| i.account_id).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(r.missing_remote, vec![MissingUser { account_id: 4, uid: 99 }]);
        assert_eq!(r.shared_users, vec![SharedUser { uid: 11, account_ids: vec![2, 3] }]);
        let unlinked: Vec<u64> = r.unlinked_users.iter().map(|u| u.uid).collect();
        assert_eq!(unlinked, vec![13, 14]);
        assert_eq!(r.email_differences.len(), 1, "case and spaces are not a difference: {:?}", r.email_differences);
        assert_eq!(r.email_differences[0].remote_email, "user11@example.com");
        assert_eq!(r.remote_users, 5);
        // 7 accounts could fill 4 pages of 2, so the first round reads 4; it shows 5 users (3
        // pages), so nothing more is read.
        assert_eq!(r.requests, 4);
        assert!(cloud.writes().is_empty());
    }

    #[test]
    fn a_page_that_cannot_be_read_is_an_error_not_a_partial_report() {
        let cloud = FakeCloudPe::new(&[(10, 1, None), (11, 1, None), (12, 1, None)]);
        cloud.fail_page(2, 99);
        let e = reconcile(&cloud, &app(), &[client(1, "10", None)], opts()).unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("startRow 2") && m.contains("partial")), "{e:?}");
    }
}
