//! What the host accepts of a module's answer, in one place: no string longer than
//! [`MAX_ANSWER_STRING_BYTES`], and account ids only of accounts the request held, each decided
//! once (a review's proposed links and group drift: each account at most once per list); no link
//! to remote id 0; at most [`MAX_CAPABILITIES`] capabilities and [`MAX_OPTION_CHOICES`] choices.
//! A module that breaks these rules (a bug, or a compromised signing key) is stopped as a
//! contract violation: HostBill must never act on an account it did not ask about.

use crate::bindings::hostbill::provisioning::types as wit;
use crate::sandbox::limits::{
    CAPABILITIES_LIMIT, MAX_ANSWER_STRING_BYTES, MAX_CAPABILITIES, MAX_OPTION_CHOICES, NamedLimit, OPTION_CHOICES_LIMIT,
};

/// The longest string in a module's answer (or one part of it).
pub trait Longest {
    fn longest(&self) -> usize;
}

impl<T: Longest> Longest for [T] {
    fn longest(&self) -> usize {
        self.iter().map(Longest::longest).max().unwrap_or(0)
    }
}

impl<T: Longest> Longest for Vec<T> {
    fn longest(&self) -> usize {
        self.as_slice().longest()
    }
}

impl<T: Longest> Longest for Option<T> {
    fn longest(&self) -> usize {
        self.as_ref().map_or(0, Longest::longest)
    }
}

impl<T: Longest, E: Longest> Longest for Result<T, E> {
    fn longest(&self) -> usize {
        match self {
            Ok(t) => t.longest(),
            Err(e) => e.longest(),
        }
    }
}

impl Longest for String {
    fn longest(&self) -> usize {
        self.len()
    }
}

impl Longest for wit::Fact {
    fn longest(&self) -> usize {
        self.name.len().max(self.value.len())
    }
}

impl Longest for wit::ModuleError {
    fn longest(&self) -> usize {
        use wit::ModuleError::*;
        match self {
            Configuration(m) | NotFound(m) | Authentication(m) | Transport(m) | Unexpected(m) => m.len(),
            RemoteApi(r) => r.message.len(),
        }
    }
}

impl Longest for wit::Decision {
    fn longest(&self) -> usize {
        match self {
            wit::Decision::Unchanged(facts) => facts.longest(),
            wit::Decision::Change(c) => c.facts.longest(),
            wit::Decision::Skipped(reason) => reason.len(),
            wit::Decision::Failed(e) => e.longest(),
        }
    }
}

impl Longest for wit::Outcome {
    fn longest(&self) -> usize {
        self.message.len().max(self.facts.longest())
    }
}

impl Longest for wit::ConnectionReport {
    fn longest(&self) -> usize {
        self.checks.iter().map(|c| c.name.len().max(c.detail.len())).max().unwrap_or(0)
    }
}

impl Longest for wit::Reconciliation {
    fn longest(&self) -> usize {
        let issues = self.without_id.iter().map(|i| i.detail.len());
        let emails = self.email_differences.iter().map(|d| d.hostbill_email.len().max(d.remote_email.len()));
        let users = self.unlinked_users.iter().map(|u| u.email.as_ref().map_or(0, String::len));
        issues.chain(emails).chain(users).max().unwrap_or(0)
    }
}

impl Longest for wit::CreateOutcome {
    fn longest(&self) -> usize {
        self.outcome.longest()
    }
}

impl Longest for wit::OptionChoice {
    fn longest(&self) -> usize {
        self.value.len().max(self.label.len())
    }
}

impl Longest for wit::Capability {
    fn longest(&self) -> usize {
        self.name.len().max(self.method.len()).max(self.detail.len())
    }
}

impl Longest for wit::LinkReview {
    fn longest(&self) -> usize {
        let links = self.proposed_links.iter().map(|l| l.email.len());
        let drift = self.group_drift.iter().map(|d| d.expected.len().max(d.actual.len()));
        links.chain(drift).max().unwrap_or(0).max(self.reconciliation.longest())
    }
}

/// Whether `answer` holds only strings the host accepts; else the error that says it does not.
pub fn check_strings(answer: &impl Longest) -> Result<(), String> {
    let longest = answer.longest();
    if longest > MAX_ANSWER_STRING_BYTES {
        return Err(format!(
            "the module answered with a {} KiB string; the host accepts at most {} KiB",
            longest / 1024,
            MAX_ANSWER_STRING_BYTES / 1024
        ));
    }
    Ok(())
}

/// A sync's decision holding a string longer than the host accepts becomes that account's error
/// (the others stand).
pub fn bound_decision(d: &mut wit::AccountDecision) {
    let longest = d.decision.longest();
    if longest > MAX_ANSWER_STRING_BYTES {
        d.decision = wit::Decision::Failed(wit::ModuleError::Unexpected(format!(
            "the module's decision for this account held a {} KiB string; the host accepts at most {} KiB: \
             HostBill left unchanged",
            longest / 1024,
            MAX_ANSWER_STRING_BYTES / 1024
        )));
    }
}

impl Longest for wit::UsageOutcome {
    fn longest(&self) -> usize {
        match self {
            wit::UsageOutcome::Read(read) => {
                read.hours.iter().map(|h| h.cost.len().max(h.bonus.len()).max(h.facts.longest())).max().unwrap_or(0)
            }
            wit::UsageOutcome::Skipped(reason) => reason.len(),
            wit::UsageOutcome::Failed(e) => e.longest(),
        }
    }
}

/// A usage result holding a string longer than the host accepts becomes that account's error.
pub fn bound_usage(u: &mut wit::AccountUsage) {
    let longest = u.usage.longest();
    if longest > MAX_ANSWER_STRING_BYTES {
        u.usage = wit::UsageOutcome::Failed(wit::ModuleError::Unexpected(format!(
            "the module's usage of this account held a {} KiB string; the host accepts at most {} KiB: nothing \
             of it is billed",
            longest / 1024,
            MAX_ANSWER_STRING_BYTES / 1024
        )));
    }
}

/// Whether the hours of a usage read keep the contract, for the window `[from, until)` asked
/// (Unix seconds): each a whole hour inside it, ascending, once, with plain decimal amounts
/// (`is_decimal`). Else why not: nothing of such an answer may be billed.
pub fn check_usage_hours(hours: &[wit::UsageHour], from: i64, until: i64) -> Result<(), String> {
    let mut previous = None;
    for hour in hours {
        if hour.start % 3600 != 0 || hour.start < from || hour.start >= until {
            return Err(format!(
                "the module reported an hour starting at {} (Unix time), outside the window asked",
                hour.start
            ));
        }
        if previous.is_some_and(|p| p >= hour.start) {
            return Err(format!(
                "the module reported the hour starting at {} (Unix time) out of order or twice",
                hour.start
            ));
        }
        previous = Some(hour.start);
        for (name, amount) in [("cost", &hour.cost), ("bonus", &hour.bonus)] {
            if !is_decimal(amount) {
                return Err(format!(
                    "the module reported a {name} of {:?}, which is not a plain decimal number",
                    kept_short(amount)
                ));
            }
        }
    }
    Ok(())
}

/// `-?digits(.digits)?`: the only form an amount takes in a report.
pub fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').map_or((digits, None), |(w, f)| (w, Some(f)));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn kept_short(text: &str) -> &str {
    text.char_indices().nth(40).map_or(text, |(cut, _)| &text[..cut])
}

/// The accounts a request asked the module about, and which of them it answered for.
#[derive(Debug, Default, Clone)]
pub struct Asked {
    /// Sorted; an id the request held twice is here twice (and may be answered twice).
    ids: Vec<u64>,
    answered: Vec<bool>,
    count: usize,
}

impl Asked {
    /// The accounts of a request, by id.
    pub fn new(ids: impl IntoIterator<Item = u64>) -> Asked {
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        let answered = vec![false; ids.len()];
        Asked { ids, answered, count: 0 }
    }

    /// How many accounts the request held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// How many of them were answered for.
    pub fn answered(&self) -> usize {
        self.count
    }

    /// Whether the request held account `id`.
    pub fn contains(&self, id: u64) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Checks a batch of decisions before any of it is used: every id one the request held, and
    /// none answered for more often than it was asked about. Records them only if all pass.
    pub fn answer(&mut self, ids: impl IntoIterator<Item = u64> + Clone) -> Result<(), Violation> {
        let mut taken = Vec::new();
        for id in ids {
            let first = self.ids.partition_point(|&asked| asked < id);
            let same = self.ids[first..].iter().take_while(|&&asked| asked == id).count();
            if same == 0 {
                return Err(Violation::NotAsked(id));
            }
            let free = (first..first + same).find(|&i| !self.answered[i] && !taken.contains(&i));
            match free {
                Some(i) => taken.push(i),
                None => return Err(Violation::Twice(id)),
            }
        }
        self.count += taken.len();
        for i in taken {
            self.answered[i] = true;
        }
        Ok(())
    }
}

/// How a module's answer broke the contract: it named an account it had no business answering
/// for, or answered what no remote side can mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("it answered for account {0}, which the request did not hold")]
    NotAsked(u64),
    #[error("it answered for account {0} a second time")]
    Twice(u64),
    /// An account listed twice in one list of a review (`proposed_links`, `group_drift`).
    #[error("it listed account {account} twice in {list}")]
    TwiceIn { list: &'static str, account: u64 },
    /// Remote id 0, which names no remote account (`what`: where it said so).
    #[error("it named remote id 0 {what}, which is no remote account")]
    RemoteIdZero { what: &'static str },
    /// A list longer than the host accepts (`limit`: the limit's name in reports).
    #[error("it returned {count} {what}; the host accepts at most {max}")]
    TooMany { what: &'static str, count: usize, max: usize, limit: &'static str },
}

impl Violation {
    /// The host limit behind the violation, if one is.
    pub fn limit(self) -> Option<NamedLimit> {
        match self {
            Violation::TooMany { max, limit, .. } => Some(NamedLimit { name: limit, value: max.to_string() }),
            _ => None,
        }
    }

    /// The error of a run stopped for this violation, naming the module.
    pub fn stopped(self, module: Option<&wit::ModuleInfo>) -> String {
        let who = module.map_or_else(|| "the module".to_string(), |m| format!("the module {} {}", m.name, m.version));
        format!("contract violation: {who} was stopped: {self}; HostBill must act only on the accounts it sent")
    }
}

/// Checks a reconciliation names only accounts the request held.
pub fn check_reconciliation(r: &wit::Reconciliation, asked: &Asked) -> Result<(), Violation> {
    let ids = r
        .without_id
        .iter()
        .map(|i| i.account_id)
        .chain(r.missing_remote.iter().map(|m| m.account_id))
        .chain(r.shared_users.iter().flat_map(|u| u.account_ids.iter().copied()))
        .chain(r.email_differences.iter().map(|d| d.account_id));
    for id in ids {
        if !asked.contains(id) {
            return Err(Violation::NotAsked(id));
        }
    }
    Ok(())
}

/// Checks a review's additions: proposed links and group drift only for accounts the request
/// held, each account at most once per list, and no link to uid 0 (HostBill applies the links).
pub fn check_review(review: &wit::LinkReview, asked: &Asked) -> Result<(), Violation> {
    let links = review.proposed_links.iter().map(|l| (l.account_id, l.uid));
    let drift = review.group_drift.iter().map(|d| (d.account_id, d.uid));
    for (list, entries) in [("proposed_links", links.collect::<Vec<_>>()), ("group_drift", drift.collect())] {
        let mut seen = std::collections::BTreeSet::new();
        for (account, uid) in entries {
            if !asked.contains(account) {
                return Err(Violation::NotAsked(account));
            }
            if !seen.insert(account) {
                return Err(Violation::TwiceIn { list, account });
            }
            if uid == 0 {
                return Err(Violation::RemoteIdZero {
                    what: if list == "proposed_links" { "in a proposed link" } else { "in a group drift entry" },
                });
            }
        }
    }
    Ok(())
}

/// Checks a Create's link: a remote id that can name an account (not 0).
pub fn check_created(created: &wit::CreateOutcome) -> Result<(), Violation> {
    if created.remote_id == 0 {
        return Err(Violation::RemoteIdZero { what: "as the account's link" });
    }
    Ok(())
}

/// Checks a capability probe's list is no longer than [`MAX_CAPABILITIES`].
pub fn check_capabilities(capabilities: &[wit::Capability]) -> Result<(), Violation> {
    bounded(capabilities.len(), "capabilities", MAX_CAPABILITIES, CAPABILITIES_LIMIT)
}

/// Checks a product option's choices are no more than [`MAX_OPTION_CHOICES`].
pub fn check_choices(choices: &[wit::OptionChoice]) -> Result<(), Violation> {
    bounded(choices.len(), "option choices", MAX_OPTION_CHOICES, OPTION_CHOICES_LIMIT)
}

fn bounded(count: usize, what: &'static str, max: usize, limit: &'static str) -> Result<(), Violation> {
    if count > max { Err(Violation::TooMany { what, count, max, limit }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asked_accounts_are_answered_for_and_each_once() {
        let mut asked = Asked::new([5, 3, 9, 3]);
        assert_eq!(asked.len(), 4);
        assert_eq!(asked.answer([3, 5]), Ok(()));
        assert_eq!(asked.answer([9, 999]), Err(Violation::NotAsked(999)));
        assert_eq!(asked.answered(), 2, "a refused batch records nothing");
        assert_eq!(asked.answer([3]), Ok(()), "3 was asked about twice");
        assert_eq!(asked.answer([3]), Err(Violation::Twice(3)));
        assert_eq!(asked.answer([9, 9]), Err(Violation::Twice(9)), "twice within one batch");
        assert_eq!(asked.answer([9]), Ok(()));
        assert_eq!(asked.answered(), 4);
        let message = Violation::NotAsked(999).stopped(None);
        assert!(message.contains("contract violation") && message.contains("999"), "{message}");
    }

    #[test]
    fn a_reconciliation_names_only_asked_accounts() {
        let asked = Asked::new([1, 2]);
        let mut r = wit::Reconciliation {
            without_id: vec![],
            missing_remote: vec![wit::MissingUser { account_id: 2, uid: 7 }],
            shared_users: vec![wit::SharedUser { uid: 8, account_ids: vec![1, 2] }],
            unlinked_users: vec![],
            email_differences: vec![],
            remote_users: 3,
            requests: 1,
        };
        assert_eq!(check_reconciliation(&r, &asked), Ok(()));
        r.shared_users[0].account_ids.push(1000);
        assert_eq!(check_reconciliation(&r, &asked), Err(Violation::NotAsked(1000)));
    }

    #[test]
    fn strings_over_the_limit_are_refused_or_become_the_accounts_error() {
        let long = "x".repeat(MAX_ANSWER_STRING_BYTES + 1);
        assert!(
            check_strings(&Ok::<_, wit::ModuleError>(wit::Outcome {
                message: long.clone(),
                facts: vec![],
                changed_remote: false
            }))
            .is_err()
        );
        assert!(check_strings(&Err::<wit::Outcome, _>(wit::ModuleError::Transport("short".into()))).is_ok());
        let mut d = wit::AccountDecision { account_id: 1, decision: wit::Decision::Skipped(long.clone()) };
        bound_decision(&mut d);
        assert!(matches!(d.decision, wit::Decision::Failed(_)));
        let mut u = wit::AccountUsage { account_id: 1, usage: wit::UsageOutcome::Skipped(long) };
        bound_usage(&mut u);
        assert!(matches!(u.usage, wit::UsageOutcome::Failed(wit::ModuleError::Unexpected(_))));
    }

    #[test]
    fn usage_hours_must_be_whole_ordered_hours_of_the_window_with_plain_decimals() {
        let hour =
            |start: i64, cost: &str| wit::UsageHour { start, cost: cost.into(), bonus: "0".into(), facts: vec![] };
        let (from, until) = (36_000, 36_000 + 5 * 3600);
        assert_eq!(check_usage_hours(&[hour(from, "0.12"), hour(until - 3600, "-3")], from, until), Ok(()));
        for (hours, needle) in [
            (vec![hour(until, "1")], "outside"),
            (vec![hour(from - 3600, "1")], "outside"),
            (vec![hour(from + 60, "1")], "outside"),
            (vec![hour(from + 3600, "1"), hour(from, "1")], "out of order"),
            (vec![hour(from, "1"), hour(from, "1")], "out of order or twice"),
            (vec![hour(from, "1e-3")], "not a plain decimal"),
            (vec![hour(from, "0.1.2")], "not a plain decimal"),
            (vec![hour(from, "")], "not a plain decimal"),
            (vec![hour(from, "NaN")], "not a plain decimal"),
        ] {
            let e = check_usage_hours(&hours, from, until).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    fn empty_reconciliation() -> wit::Reconciliation {
        wit::Reconciliation {
            without_id: vec![],
            missing_remote: vec![],
            shared_users: vec![],
            unlinked_users: vec![],
            email_differences: vec![],
            remote_users: 0,
            requests: 1,
        }
    }

    fn link(account_id: u64, uid: u64) -> wit::ProposedLink {
        wit::ProposedLink { account_id, uid, email: format!("u{uid}@x.io") }
    }

    fn drift(account_id: u64, uid: u64) -> wit::GroupDrift {
        wit::GroupDrift { account_id, uid, expected: "premium".into(), actual: "default".into() }
    }

    #[test]
    fn a_review_proposes_and_reports_only_asked_accounts_once_per_list() {
        let asked = Asked::new([1, 2, 3]);
        let review = |links, drifts| wit::LinkReview {
            reconciliation: empty_reconciliation(),
            proposed_links: links,
            group_drift: drifts,
        };
        // One account may be in both lists (linked by the proposal, and its group differs).
        assert_eq!(
            check_review(&review(vec![link(1, 11), link(2, 12)], vec![drift(1, 11), drift(3, 13)]), &asked),
            Ok(())
        );
        assert_eq!(check_review(&review(vec![link(9, 11)], vec![]), &asked), Err(Violation::NotAsked(9)));
        assert_eq!(check_review(&review(vec![], vec![drift(4, 11)]), &asked), Err(Violation::NotAsked(4)));
        assert_eq!(
            check_review(&review(vec![link(1, 11), link(1, 12)], vec![]), &asked),
            Err(Violation::TwiceIn { list: "proposed_links", account: 1 })
        );
        assert_eq!(
            check_review(&review(vec![], vec![drift(2, 12), drift(2, 12)]), &asked),
            Err(Violation::TwiceIn { list: "group_drift", account: 2 })
        );
        let zero = check_review(&review(vec![link(1, 0)], vec![]), &asked).unwrap_err();
        assert_eq!(zero, Violation::RemoteIdZero { what: "in a proposed link" });
        let message = zero.stopped(None);
        assert!(message.starts_with("contract violation: the module was stopped: it named remote id 0"), "{message}");
        let twice = Violation::TwiceIn { list: "group_drift", account: 2 }.to_string();
        assert_eq!(twice, "it listed account 2 twice in group_drift");
    }

    #[test]
    fn a_create_never_links_remote_id_zero() {
        let outcome = wit::Outcome { message: "linked".into(), facts: vec![], changed_remote: false };
        let created =
            |remote_id| wit::CreateOutcome { outcome: outcome.clone(), remote_id, source: wit::LinkSource::ByEmail };
        assert_eq!(check_created(&created(1005)), Ok(()));
        let refused = check_created(&created(0)).unwrap_err();
        assert_eq!(refused.to_string(), "it named remote id 0 as the account's link, which is no remote account");
        assert_eq!(refused.limit(), None);
    }

    #[test]
    fn capability_and_choice_lists_are_bounded() {
        let capability = |i: usize| wit::Capability {
            name: format!("c{i}"),
            method: "billing/groupquota/rest/getgroups".into(),
            state: wit::CapabilityState::Allowed,
            detail: String::new(),
        };
        let capabilities: Vec<_> = (0..MAX_CAPABILITIES).map(capability).collect();
        assert_eq!(check_capabilities(&capabilities), Ok(()));
        let over: Vec<_> = (0..=MAX_CAPABILITIES).map(capability).collect();
        let refused = check_capabilities(&over).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!("it returned {} capabilities; the host accepts at most 64", MAX_CAPABILITIES + 1)
        );
        assert_eq!(refused.limit(), Some(NamedLimit { name: "capabilities", value: "64".into() }));
        let choice = |i: usize| wit::OptionChoice { value: format!("g{i}"), label: format!("g{i}") };
        assert_eq!(check_choices(&(0..MAX_OPTION_CHOICES).map(choice).collect::<Vec<_>>()), Ok(()));
        let refused = check_choices(&(0..=MAX_OPTION_CHOICES).map(choice).collect::<Vec<_>>()).unwrap_err();
        assert_eq!(refused.limit(), Some(NamedLimit { name: "option-choices", value: "1000".into() }));
        assert!(refused.to_string().contains("1001 option choices"), "{refused}");
    }

    #[test]
    fn the_new_answers_strings_are_bounded_too() {
        let long = "x".repeat(MAX_ANSWER_STRING_BYTES + 1);
        let choice = wit::OptionChoice { value: "premium".into(), label: long.clone() };
        assert!(check_strings(&vec![choice]).is_err());
        let capability = wit::Capability {
            name: "group list".into(),
            method: "m".into(),
            state: wit::CapabilityState::Denied,
            detail: long.clone(),
        };
        assert!(check_strings(&vec![capability]).is_err());
        let review = wit::LinkReview {
            reconciliation: empty_reconciliation(),
            proposed_links: vec![],
            group_drift: vec![wit::GroupDrift { account_id: 1, uid: 2, expected: long, actual: String::new() }],
        };
        assert!(check_strings(&review).is_err());
        let short = wit::LinkReview {
            reconciliation: empty_reconciliation(),
            proposed_links: vec![link(1, 2)],
            group_drift: vec![],
        };
        assert!(check_strings(&short).is_ok());
    }
}
