//! The link review: a reconciliation, the links it proposes, and group drift.
//!
//! A link is proposed for an account whose client has no valid CloudPe id when its client's
//! email (trimmed, case-insensitive) is exactly one CloudPe user's, and no other account links
//! or would be proposed that user: a user linked already, or wanted by two unlinked accounts, is
//! left to the admin (the account's `without-id` detail says which). Nothing is changed on either
//! side; applying a proposal is the admin's action in HostBill.

use std::collections::{BTreeMap, HashMap};

use crate::config;
use crate::ops::reconcile::{compare, summary};
use crate::ops::settings;
use crate::transport::Platform;
use crate::wit::{
    AccountContext, AppSettings, GroupDrift, LinkReview, LogLevel, ModuleError, ProposedLink, SyncOptions,
};

/// Reads every CloudPe user once; reports what `reconcile` reports, proposes a link for each
/// account without a CloudPe id whose client's email matches exactly one user, and lists linked
/// accounts whose user is outside the group their product names. Changes nothing.
pub fn review(
    platform: &impl Platform,
    app: &AppSettings,
    accounts: &[AccountContext],
    options: SyncOptions,
) -> Result<LinkReview, ModuleError> {
    let settings = settings(app)?;
    let rows: Vec<_> = accounts.iter().map(|c| (&c.account, c.client_email.as_deref())).collect();
    let mut comparison = compare(platform, &settings, &rows, options)?;

    // Every user by its email as CloudPe compares them (trimmed, lower case).
    let mut by_email: HashMap<String, Vec<u64>> = HashMap::new();
    for user in comparison.users.values() {
        if let Some(email) = user.email().map(normal).filter(|e| !e.is_empty()) {
            by_email.entry(email).or_default().push(user.uid);
        }
    }

    // What each unlinked account's email finds: a candidate uid, or why none.
    let mut candidates: BTreeMap<u64, Vec<u64>> = BTreeMap::new(); // uid -> unlinked account ids
    let mut verdicts: Vec<Result<u64, String>> = Vec::new();
    for &index in &comparison.unlinked {
        let account_id = accounts[index].account.id;
        let email = accounts[index].client_email.as_deref().map(str::trim).unwrap_or("");
        let verdict = if email.is_empty() {
            Err("the client has no email to link by".to_string())
        } else {
            match by_email.get(&normal(email)).map(Vec::as_slice).unwrap_or_default() {
                [] => Err(format!("no CloudPe user has the email {email}")),
                [uid] => match comparison.linked.get(uid) {
                    Some(linked) => Err(format!(
                        "CloudPe user {uid} has the email {email} but is already linked from account {}",
                        ids(linked.iter().map(|&i| accounts[i].account.id))
                    )),
                    None => {
                        candidates.entry(*uid).or_default().push(account_id);
                        Ok(*uid)
                    }
                },
                several => Err(format!(
                    "{} CloudPe users have the email {email} (uids {}): link one by hand",
                    several.len(),
                    several.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                )),
            }
        };
        verdicts.push(verdict);
    }

    let mut proposed_links = Vec::new();
    for (k, verdict) in verdicts.into_iter().enumerate() {
        let account_id = accounts[comparison.unlinked[k]].account.id;
        let why = match verdict {
            Ok(uid) if candidates[&uid].len() == 1 => {
                let email = comparison.users[&uid].email().unwrap_or_default().to_string();
                let why = format!("proposed link: CloudPe user {uid} has the client's email");
                proposed_links.push(ProposedLink { account_id, uid, email });
                why
            }
            Ok(uid) => format!(
                "CloudPe user {uid} has the client's email, but accounts {} would all link to it: link one by hand",
                ids(candidates[&uid].iter().copied())
            ),
            Err(why) => why,
        };
        let issue = &mut comparison.report.without_id[k];
        issue.detail = format!("{}; {why}", issue.detail);
    }

    let mut group_drift = Vec::new();
    for (&uid, linked) in &comparison.linked {
        let Some(user) = comparison.users.get(&uid) else { continue };
        for &index in linked {
            let Some(expected) = config::product_group(&accounts[index].product) else { continue };
            let actual = user.group().map(str::trim).unwrap_or("");
            if actual != expected {
                group_drift.push(GroupDrift {
                    account_id: accounts[index].account.id,
                    uid,
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
    }
    group_drift.sort_by_key(|d| d.account_id);

    let report = comparison.report;
    platform.log(
        LogLevel::Info,
        &format!(
            "review: {}; {} proposed links, {} accounts outside their product's group",
            summary(accounts.len(), &report),
            proposed_links.len(),
            group_drift.len()
        ),
    );
    Ok(LinkReview { reconciliation: report, proposed_links, group_drift })
}

/// An email as CloudPe compares them: trimmed, lower case.
fn normal(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Account ids for a message: `#1`, `#1 and #2`, `#1, #2 and #3`.
fn ids(ids: impl Iterator<Item = u64>) -> String {
    let ids: Vec<String> = ids.map(|id| format!("#{id}")).collect();
    match ids.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => ids.join(""),
    }
}

#[cfg(test)]
mod tests {
    use cloudpe_sim_api::Account;

    use super::*;
    use crate::ops::reconcile;
    use crate::ops::testing::{FakeCloudPe, app};
    use crate::wit::{Account as HostbillAccount, AppSetting, ClientAccount, CustomField, HostbillStatus};

    fn cloud(users: &[(u64, &str, &str)]) -> FakeCloudPe {
        let cloud = FakeCloudPe::new(&[]);
        for &(uid, email, group) in users {
            cloud.add_user(Account { email: email.into(), group: group.into(), ..Account::new(uid, 1) });
        }
        cloud
    }

    fn account(id: u64, uid: &str, email: Option<&str>, group: Option<&str>) -> AccountContext {
        AccountContext {
            account: HostbillAccount {
                id,
                client_id: id + 100,
                status: HostbillStatus::Active,
                custom_fields: vec![CustomField { code: "cloudpeid".into(), value: uid.into() }],
            },
            client_email: email.map(str::to_string),
            product: group.map(|g| AppSetting { name: "CloudPe group".into(), value: g.into() }).into_iter().collect(),
        }
    }

    fn opts() -> SyncOptions {
        SyncOptions { page_size: 2, max_concurrency: 2, ..SyncOptions::default() }
    }

    fn detail(review: &LinkReview, account_id: u64) -> &str {
        &review.reconciliation.without_id.iter().find(|i| i.account_id == account_id).unwrap().detail
    }

    #[test]
    fn a_link_is_proposed_only_for_one_exact_unclaimed_email() {
        let cloud = cloud(&[
            (12, "bob@x.io", "default"),
            (120, "ann.bob@x.io.evil", "default"),
            (312, "BOB@x.io.attacker", "default"),
            (13, "carol@x.io", "default"),
            (14, "dup@x.io", "default"),
            (15, " DUP@x.io", "default"),
            (16, "shared@x.io", "default"),
            (17, "linked@x.io", "default"),
        ]);
        let accounts = vec![
            account(1, "", Some(" Bob@X.io "), None),    // one exact match among decoys
            account(2, "", Some("ob@x.io"), None),       // decoys only
            account(3, "abc", Some("carol@x.io"), None), // an invalid id is no id
            account(4, "", Some("dup@x.io"), None),      // two users have it
            account(5, "", Some("shared@x.io"), None),   // two unlinked accounts want 16
            account(6, "", Some("shared@X.io"), None),
            account(7, "", Some("linked@x.io"), None), // 17 is linked from account 8
            account(8, "17", Some("linked@x.io"), None),
            account(9, "", None, None), // no email
        ];
        let r = review(&cloud, &app(), &accounts, opts()).unwrap();
        assert_eq!(
            r.proposed_links,
            [
                ProposedLink { account_id: 1, uid: 12, email: "bob@x.io".into() },
                ProposedLink { account_id: 3, uid: 13, email: "carol@x.io".into() },
            ]
        );
        assert!(detail(&r, 1).contains("proposed link: CloudPe user 12 has the client's email"), "{}", detail(&r, 1));
        assert!(detail(&r, 2).ends_with("; no CloudPe user has the email ob@x.io"), "{}", detail(&r, 2));
        assert!(detail(&r, 3).contains("\"abc\""), "the original detail is kept: {}", detail(&r, 3));
        assert!(detail(&r, 4).contains("2 CloudPe users have the email dup@x.io (uids 14, 15)"), "{}", detail(&r, 4));
        for id in [5, 6] {
            assert!(detail(&r, id).contains("accounts #5 and #6 would all link to it"), "{}", detail(&r, id));
        }
        assert!(
            detail(&r, 7).contains("CloudPe user 17 has the email linked@x.io but is already linked from account #8")
        );
        assert!(detail(&r, 9).ends_with("; the client has no email to link by"), "{}", detail(&r, 9));
        assert_eq!(r.reconciliation.without_id.len(), 8);
        assert!(cloud.writes().is_empty() && cloud.group_changes().is_empty() && cloud.created().is_empty());
    }

    #[test]
    fn the_reconciliation_is_the_one_reconcile_reports() {
        let cloud = cloud(&[(10, "a@x.io", "default"), (11, "b@x.io", "default"), (13, "c@x.io", "default")]);
        let accounts = vec![
            account(1, "10", Some("a@x.io"), None),
            account(2, "11", Some("other@x.io"), None),
            account(3, "11", None, None),
            account(4, "99", None, None),
            account(5, "", Some("nobody@x.io"), None),
        ];
        let r = review(&cloud, &app(), &accounts, opts()).unwrap().reconciliation;
        let plain: Vec<ClientAccount> = accounts
            .iter()
            .map(|a| ClientAccount { account: a.account.clone(), client_email: a.client_email.clone() })
            .collect();
        let mut expected = reconcile(&cloud, &app(), &plain, opts()).unwrap();
        expected.without_id[0].detail.push_str("; no CloudPe user has the email nobody@x.io");
        assert_eq!(r, expected);
        assert_eq!(r.missing_remote.len(), 1);
        assert_eq!(r.shared_users.len(), 1);
        assert_eq!(r.email_differences.len(), 1);
        assert_eq!(r.unlinked_users.iter().map(|u| u.uid).collect::<Vec<_>>(), [13]);
    }

    #[test]
    fn group_drift_lists_linked_users_outside_their_products_group() {
        let cloud = cloud(&[
            (10, "a@x.io", "default"),
            (11, "b@x.io", "premium"),
            (12, "c@x.io", ""),
            (13, "d@x.io", "trial"),
            (14, "e@x.io", "trial"),
        ]);
        let accounts = vec![
            account(1, "10", None, Some("premium")),         // drift
            account(2, "11", None, Some(" premium ")),       // in it
            account(3, "12", None, Some("premium")),         // CloudPe names no group
            account(4, "13", None, None),                    // the product names none: no drift
            account(5, "99", None, Some("premium")),         // missing: reported as missing, not drift
            account(6, "", Some("e@x.io"), Some("premium")), // unlinked: a proposal, not drift
        ];
        let r = review(&cloud, &app(), &accounts, opts()).unwrap();
        assert_eq!(
            r.group_drift,
            [
                GroupDrift { account_id: 1, uid: 10, expected: "premium".into(), actual: "default".into() },
                GroupDrift { account_id: 3, uid: 12, expected: "premium".into(), actual: "".into() },
            ]
        );
        assert_eq!(r.proposed_links, [ProposedLink { account_id: 6, uid: 14, email: "e@x.io".into() }]);
        assert!(cloud.group_changes().is_empty());
    }
}
