//! Sync: reads the CloudPe state of many accounts and decides, per account, what HostBill should
//! record. A failed or ambiguous lookup never yields a change.

use std::collections::BTreeMap;

use super::{account_facts, cloudpe_uid, settings};
use crate::api::{AccountsPage, ApiMethod, CloudPe, LOOKUP_PAGE_SIZE, RemoteAccount};
use crate::model::{
    Account, AccountDecision, AppSettings, Decision, HostbillStatus, LogLevel, ModuleError,
    SyncOptions, SyncReport,
};
use crate::status;
use crate::transport::Platform;

/// Whether HostBill status `s` is pulled from CloudPe: Pending accounts are not provisioned yet,
/// and Terminated/Cancelled/Fraud are final in HostBill.
pub fn is_candidate(s: HostbillStatus) -> bool {
    matches!(s, HostbillStatus::Active | HostbillStatus::Suspended)
}

/// Decides every account. Lookups of distinct CloudPe uids run concurrently.
pub fn sync(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: &[Account],
    options: SyncOptions,
) -> Result<SyncReport, ModuleError> {
    let settings = settings(app)?;
    let api = CloudPe::new(&settings, platform);

    let uids: Vec<Result<u64, ModuleError>> = accounts
        .iter()
        .map(|a| {
            if is_candidate(a.status) {
                cloudpe_uid(&settings, a)
            } else {
                Err(ModuleError::Configuration(String::new()))
            }
        })
        .collect();
    let mut wanted: Vec<u64> = accounts
        .iter()
        .zip(&uids)
        .filter(|(a, _)| is_candidate(a.status))
        .filter_map(|(_, uid)| uid.as_ref().ok().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();

    let lookups = lookup_exact(&api, &wanted, options.max_concurrency as usize);

    let decisions: Vec<AccountDecision> = accounts
        .iter()
        .zip(uids)
        .map(|(account, uid)| {
            let decision = if !is_candidate(account.status) {
                Decision::Skipped(format!(
                    "HostBill status {} is not synced",
                    account.status.as_str()
                ))
            } else {
                match uid {
                    Err(e) => Decision::Failed(e),
                    Ok(uid) => decide(account, uid, &lookups[&uid]),
                }
            };
            AccountDecision {
                account_id: account.id,
                decision,
            }
        })
        .collect();

    let changes = decisions
        .iter()
        .filter(|d| matches!(d.decision, Decision::Change { .. }))
        .count();
    let failures = decisions
        .iter()
        .filter(|d| matches!(d.decision, Decision::Failed(_)))
        .count();
    platform.log(
        LogLevel::Info,
        &format!(
            "sync: {} accounts, {} CloudPe users looked up, {changes} to change, {failures} failed, {} requests",
            accounts.len(),
            wanted.len(),
            api.requests()
        ),
    );
    Ok(SyncReport {
        decisions,
        requests: api.requests(),
    })
}

/// Looks up each uid exactly (first pages concurrently, further pages only when a substring
/// filter matched more than a page and the exact uid was not on the first one).
fn lookup_exact<P: Platform>(
    api: &CloudPe<'_, P>,
    uids: &[u64],
    max_in_flight: usize,
) -> BTreeMap<u64, Result<Option<RemoteAccount>, ModuleError>> {
    let requests: Vec<_> = uids
        .iter()
        .map(|uid| {
            api.request(
                ApiMethod::GetAccounts,
                &api.page_params(Some(("uid", uid.to_string())), 0, LOOKUP_PAGE_SIZE),
            )
        })
        .collect();
    let responses = api.send_all(ApiMethod::GetAccounts, &requests, max_in_flight);
    uids.iter()
        .zip(responses)
        .map(|(&uid, response)| {
            let found = api
                .read::<AccountsPage>(ApiMethod::GetAccounts, response)
                .and_then(|page| {
                    let more = page.total_count > page.array.len() as u64;
                    match page.array.into_iter().find(|a| a.uid == uid) {
                        Some(found) => Ok(Some(found)),
                        None if more => api.find_account(uid),
                        None => Ok(None),
                    }
                });
            (uid, found)
        })
        .collect()
}

fn decide(
    account: &Account,
    uid: u64,
    lookup: &Result<Option<RemoteAccount>, ModuleError>,
) -> Decision {
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
        Some(to) => Decision::Change {
            from: account.status,
            to,
            facts,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CustomField;
    use crate::ops::testing::{FakeCloudPe, app};

    fn account(id: u64, uid: &str, status: HostbillStatus) -> Account {
        Account {
            id,
            client_id: id + 100,
            status,
            custom_fields: vec![CustomField {
                code: "cloudpeid".into(),
                value: uid.into(),
            }],
        }
    }

    fn opts() -> SyncOptions {
        SyncOptions { max_concurrency: 4 }
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
            account(1, "12", Suspended), // active on CloudPe -> Active (decoy 120 must not leak in)
            account(2, "120", Suspended), // inactive -> unchanged
            account(3, "13", Active),    // login locked -> Suspended
            account(4, "14", Active),    // being destroyed -> Terminated
            account(5, "15", Active),    // unknown status -> failed
            account(6, "99", Active),    // unknown uid -> failed
            account(7, "abc", Active),   // bad id -> failed
            account(8, "12", Pending),   // not a candidate
            account(9, "16", Suspended), // unchanged
            account(10, "12", Terminated),
        ];
        let report = sync(&cloud, &app(), &accounts, opts()).unwrap();
        let d: Vec<_> = report
            .decisions
            .iter()
            .map(|d| (d.account_id, &d.decision))
            .collect();
        assert!(
            matches!(
                d[0].1,
                Decision::Change {
                    from: Suspended,
                    to: Active,
                    ..
                }
            ),
            "{:?}",
            d[0]
        );
        assert!(matches!(d[1].1, Decision::Unchanged(_)), "{:?}", d[1]);
        assert!(
            matches!(
                d[2].1,
                Decision::Change {
                    from: Active,
                    to: Suspended,
                    ..
                }
            ),
            "{:?}",
            d[2]
        );
        assert!(
            matches!(
                d[3].1,
                Decision::Change {
                    from: Active,
                    to: Terminated,
                    ..
                }
            ),
            "{:?}",
            d[3]
        );
        assert!(
            matches!(d[4].1, Decision::Failed(ModuleError::Unexpected(_))),
            "{:?}",
            d[4]
        );
        assert!(
            matches!(d[5].1, Decision::Failed(ModuleError::NotFound(_))),
            "{:?}",
            d[5]
        );
        assert!(
            matches!(d[6].1, Decision::Failed(ModuleError::Configuration(_))),
            "{:?}",
            d[6]
        );
        assert!(matches!(d[7].1, Decision::Skipped(_)), "{:?}", d[7]);
        assert!(matches!(d[8].1, Decision::Unchanged(_)), "{:?}", d[8]);
        assert!(matches!(d[9].1, Decision::Skipped(_)), "{:?}", d[9]);
        assert_eq!(
            d.iter().map(|x| x.0).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        // 12, 120, 13, 14, 15, 16, 99 looked up once each
        assert_eq!(report.requests, 7);
        assert!(cloud.writes().is_empty(), "sync never writes to CloudPe");
    }

    #[test]
    fn failed_lookups_never_change_anything() {
        let cloud = FakeCloudPe::new(&[(12, 2, None)]);
        cloud.fail_all_with(502);
        let report = sync(
            &cloud,
            &app(),
            &[account(1, "12", HostbillStatus::Active)],
            opts(),
        )
        .unwrap();
        assert!(
            matches!(&report.decisions[0].decision, Decision::Failed(ModuleError::Transport(m)) if m.contains("502"))
        );
    }

    #[test]
    fn exact_uid_found_beyond_the_first_page_of_substring_matches() {
        // 150 decoys contain "777"; listed in descending order, the exact uid is on the second page.
        let mut users: Vec<(u64, i64, Option<bool>)> =
            (0..150).map(|i| (7_770_000 + i, 1, None)).collect();
        users.push((777, 2, None));
        let cloud = FakeCloudPe::new(&users);
        cloud.reverse_order();
        let report = sync(
            &cloud,
            &app(),
            &[account(1, "777", HostbillStatus::Active)],
            opts(),
        )
        .unwrap();
        assert!(
            matches!(
                report.decisions[0].decision,
                Decision::Change {
                    to: HostbillStatus::Suspended,
                    ..
                }
            ),
            "{:?}",
            report.decisions[0]
        );
    }
}
