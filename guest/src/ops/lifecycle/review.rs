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
