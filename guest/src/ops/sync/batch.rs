//! Hands a streamed sync's decisions to the host a batch at a time, in the contract's borrowed
//! form: fact names are constants and their values are the texts of the accounts read, so a
//! batch of a thousand decisions takes a handful of allocations instead of a dozen per change.

use std::borrow::Cow;
use std::fmt::Write;
use std::ops::Range;

use super::super::{fact_pairs, status_fact};
use crate::api::RemoteAccount;
use crate::wit::{AccountDecisionParam, DecisionParam, FactParam, HostbillStatus, ModuleError, StatusChangeParam};

/// One account's decision as the sync reaches it, borrowing what it reports from what was read.
#[derive(Debug)]
pub enum Verdict<'r> {
    /// CloudPe agrees with HostBill; the user read, when its facts are reported.
    Unchanged(Option<&'r RemoteAccount>),
    /// HostBill should record `to`, as the user read shows.
    Change { from: HostbillStatus, to: HostbillStatus, remote: &'r RemoteAccount },
    /// The account's HostBill status is not synced.
    Skipped(HostbillStatus),
    /// Nothing may change: why.
    Failed(Cow<'r, ModuleError>),
}

impl<'r> Verdict<'r> {
    /// The user whose facts the decision carries, if any.
    fn remote(&self) -> Option<&'r RemoteAccount> {
        match *self {
            Verdict::Unchanged(remote) => remote,
            Verdict::Change { remote, .. } => Some(remote),
            Verdict::Skipped(_) | Verdict::Failed(_) => None,
        }
    }
}

/// Renders `verdicts` (account id, verdict) as the contract's decisions and hands them to `emit`.
pub fn hand_out(verdicts: &[(u64, Verdict<'_>)], emit: &mut dyn FnMut(&[AccountDecisionParam<'_>])) {
    // The fact values that exist nowhere yet: each uid as text (side by side in one string) and
    // each status description (a constant, unless the status is unknown).
    let mut digits = String::with_capacity(verdicts.len() * 8);
    let texts: Vec<Option<(Range<usize>, Cow<'static, str>)>> = verdicts
        .iter()
        .map(|(_, verdict)| {
            let remote = verdict.remote()?;
            let start = digits.len();
            write!(digits, "{}", remote.uid).expect("writing to a String cannot fail");
            Some((start..digits.len(), status_fact(remote)))
        })
        .collect();
    let mut facts: Vec<FactParam<'_>> = Vec::with_capacity(texts.iter().flatten().count() * 6);
    let mut spans = Vec::with_capacity(verdicts.len());
    for ((_, verdict), text) in verdicts.iter().zip(&texts) {
        let start = facts.len();
        if let (Some(remote), Some((uid, status))) = (verdict.remote(), text) {
            let pairs = fact_pairs(remote, &digits[uid.clone()], status);
            facts.extend(pairs.map(|(name, value)| FactParam { name, value }));
        }
        spans.push(start..facts.len());
    }
    let decisions: Vec<AccountDecisionParam<'_>> = verdicts
        .iter()
        .zip(spans)
        .map(|((account_id, verdict), span)| {
            let facts = &facts[span];
            let decision = match verdict {
                Verdict::Unchanged(_) => DecisionParam::Unchanged(facts),
                Verdict::Change { from, to, .. } => {
                    DecisionParam::Change(StatusChangeParam { from: *from, to: *to, facts })
                }
                Verdict::Skipped(status) => DecisionParam::Skipped(not_synced(*status)),
                Verdict::Failed(error) => DecisionParam::Failed(error.borrowed()),
            };
            AccountDecisionParam { account_id: *account_id, decision }
        })
        .collect();
    emit(&decisions);
}

/// Why an account with HostBill status `status` is skipped.
fn not_synced(status: HostbillStatus) -> &'static str {
    match status {
        HostbillStatus::Pending => "HostBill status Pending is not synced",
        HostbillStatus::Active => "HostBill status Active is not synced",
        HostbillStatus::Suspended => "HostBill status Suspended is not synced",
        HostbillStatus::Terminated => "HostBill status Terminated is not synced",
        HostbillStatus::Cancelled => "HostBill status Cancelled is not synced",
        HostbillStatus::Fraud => "HostBill status Fraud is not synced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::{AccountDecision, Decision, Fact, StatusChange};

    fn remote(json: &str) -> RemoteAccount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_batch_carries_the_same_decisions_as_owned_ones() {
        let full = remote(r#"{"uid": 42, "email": "a@b.c", "status": 2, "group": "g", "createdOn": "2024"}"#);
        let odd = remote(r#"{"uid": 7, "status": 9, "isEnabled": false}"#);
        let error = ModuleError::Transport("down".into());
        let verdicts = [
            (1, Verdict::Change { from: HostbillStatus::Active, to: HostbillStatus::Suspended, remote: &full }),
            (2, Verdict::Unchanged(Some(&odd))),
            (3, Verdict::Unchanged(None)),
            (4, Verdict::Skipped(HostbillStatus::Terminated)),
            (5, Verdict::Failed(Cow::Borrowed(&error))),
        ];
        let mut got = Vec::new();
        hand_out(&verdicts, &mut |batch| got.extend(batch.iter().map(AccountDecisionParam::to_owned)));
        let expected = [
            AccountDecision {
                account_id: 1,
                decision: Decision::Change(StatusChange {
                    from: HostbillStatus::Active,
                    to: HostbillStatus::Suspended,
                    facts: vec![
                        Fact::new("cloudpe-uid", "42"),
                        Fact::new("cloudpe-email", "a@b.c"),
                        Fact::new("cloudpe-status", "2 (inactive)"),
                        Fact::new("cloudpe-login", "enabled"),
                        Fact::new("cloudpe-group", "g"),
                        Fact::new("cloudpe-created", "2024"),
                    ],
                }),
            },
            AccountDecision { account_id: 2, decision: Decision::Unchanged(super::super::super::account_facts(&odd)) },
            AccountDecision { account_id: 3, decision: Decision::Unchanged(Vec::new()) },
            AccountDecision {
                account_id: 4,
                decision: Decision::Skipped("HostBill status Terminated is not synced".into()),
            },
            AccountDecision { account_id: 5, decision: Decision::Failed(error.clone()) },
        ];
        assert_eq!(got, expected);
        let Decision::Unchanged(facts) = &got[1].decision else { unreachable!() };
        assert!(facts.contains(&Fact::new("cloudpe-status", "9 (unknown)")), "{facts:?}");
        assert!(facts.contains(&Fact::new("cloudpe-login", "locked")), "{facts:?}");
        assert!(facts.contains(&Fact::new("cloudpe-uid", "7")), "{facts:?}");
    }
}
