//! Hands a streamed sync's decisions to the host a batch at a time, in the contract's borrowed
//! form: fact names are constants and their values are the texts of the accounts read, so a
//! batch of a thousand decisions takes a handful of allocations instead of a dozen per change.

use std::borrow::Cow;
use std::fmt::Write;
use std::ops::Range;

use crate::api::RemoteAccount;
use crate::ops::{MAX_FACTS, fact_pairs, status_fact};
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

/// What [`hand_out`] writes of a verdict before rendering it: its own text (a uid's digits, or a
/// skip's reason) and, for a user's facts, its status description.
struct Written {
    text: Range<usize>,
    status: Option<Cow<'static, str>>,
}

/// Renders `verdicts` (account id, verdict) as the contract's decisions and hands them to `emit`.
pub fn hand_out(verdicts: &[(u64, Verdict<'_>)], emit: &mut dyn FnMut(&[AccountDecisionParam<'_>])) {
    // The texts that exist nowhere yet, side by side in one string: each uid of a user whose facts
    // are reported, and each skip's reason. Status descriptions are constants, unless unknown.
    let mut out = String::with_capacity(verdicts.len() * 8);
    let written: Vec<Option<Written>> = verdicts
        .iter()
        .map(|(_, verdict)| {
            let start = out.len();
            let status = match verdict {
                Verdict::Skipped(status) => {
                    write!(out, "HostBill status {} is not synced", status.as_str()).map(|()| None)
                }
                _ => {
                    let remote = verdict.remote()?;
                    write!(out, "{}", remote.uid).map(|()| Some(status_fact(remote)))
                }
            }
            .expect("writing to a String cannot fail");
            Some(Written { text: start..out.len(), status })
        })
        .collect();
    let with_facts = written.iter().flatten().filter(|w| w.status.is_some()).count();
    let mut facts: Vec<FactParam<'_>> = Vec::with_capacity(with_facts * MAX_FACTS);
    let mut spans = Vec::with_capacity(verdicts.len());
    for ((_, verdict), written) in verdicts.iter().zip(&written) {
        let start = facts.len();
        if let (Some(remote), Some(Written { text, status: Some(status) })) = (verdict.remote(), written) {
            let pairs = fact_pairs(remote, &out[text.clone()], status);
            facts.extend(pairs.map(|(name, value)| FactParam { name, value }));
        }
        spans.push(start..facts.len());
    }
    let decisions: Vec<AccountDecisionParam<'_>> = verdicts
        .iter()
        .zip(spans)
        .zip(&written)
        .map(|(((account_id, verdict), span), written)| {
            let facts = &facts[span];
            let decision = match verdict {
                Verdict::Unchanged(_) => DecisionParam::Unchanged(facts),
                Verdict::Change { from, to, .. } => {
                    DecisionParam::Change(StatusChangeParam { from: *from, to: *to, facts })
                }
                Verdict::Skipped(_) => {
                    let reason = written.as_ref().map(|w| &out[w.text.clone()]).expect("a skip's reason is written");
                    DecisionParam::Skipped(reason)
                }
                Verdict::Failed(error) => DecisionParam::Failed(error.borrowed()),
            };
            AccountDecisionParam { account_id: *account_id, decision }
        })
        .collect();
    emit(&decisions);
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
        hand_out(&verdicts, &mut |batch| got.extend(batch.iter().map(AccountDecisionParam::owned)));
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
        let Decision::Change(change) = &got[0].decision else { unreachable!() };
        assert_eq!(change.facts.len(), MAX_FACTS, "a user with every text has every fact");
        let Decision::Unchanged(facts) = &got[1].decision else { unreachable!() };
        assert!(facts.contains(&Fact::new("cloudpe-status", "9 (unknown)")), "{facts:?}");
        assert!(facts.contains(&Fact::new("cloudpe-login", "locked")), "{facts:?}");
        assert!(facts.contains(&Fact::new("cloudpe-uid", "7")), "{facts:?}");
    }
}
