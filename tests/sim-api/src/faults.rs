//! Fault injection: rules that make matching requests fail in the ways a real network and API do.

use std::collections::BTreeMap;

/// How a request fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 500 with a plain-text body.
    Http500,
    /// HTTP 502 with an HTML page, as a reverse proxy sends.
    Html502,
    /// Never answers: the request is held open until the simulator stops.
    Timeout,
    /// The connection is reset (TCP RST) after the request is read.
    Reset,
    /// HTTP 200 with the JSON reply cut in half.
    TruncatedJson,
    /// HTTP 200 with this `result` and `error`.
    ApiError { result: i64, error: String },
    /// HTTP 200 whose body streams this many bytes (far more than any real answer).
    HugeBody(u64),
    /// HTTP 200 with the real answer after this many spaces: a valid reply (JSON allows leading
    /// whitespace) of any size, for the response size limits.
    Padded(u64),
    /// HTTP 200 whose body starts, then never continues (the connection stays open).
    StalledBody,
    /// The call is carried out, then answered with the inner fault: a write applied whose reply
    /// is lost (a timeout, a reset, a 5xx from a proxy after CloudPe did the work).
    AfterApplying(Box<FaultKind>),
    /// Not a failure: these users are deleted just before the request is answered, as if another
    /// admin removed them while the list was being paged (rows shift between pages).
    ConcurrentDelete(Vec<u64>),
}

impl FaultKind {
    /// This fault, after the call has been carried out.
    pub fn after_applying(self) -> FaultKind {
        FaultKind::AfterApplying(Box::new(self))
    }
}

/// A fault and the requests it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub kind: FaultKind,
    /// Lower-case API method (e.g. `getaccounts`); `None` matches every method.
    pub method: Option<String>,
    /// Only requests whose `startRow` equals this.
    pub start_row: Option<u64>,
    /// Only requests whose `uid` or `filterValue` equals this.
    pub uid: Option<u64>,
    /// How many matching requests it hits; `None` means forever.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule hitting every request, forever.
    pub fn new(kind: FaultKind) -> Self {
        FaultRule { kind, method: None, start_row: None, uid: None, times: None }
    }

    /// Only requests to this API method (matched case-insensitively, e.g. `getaccounts`).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_lowercase());
        self
    }

    /// Only requests whose `startRow` is `row` (an absent `startRow` counts as 0).
    pub fn start_row(mut self, row: u64) -> Self {
        self.start_row = Some(row);
        self
    }

    /// Only requests whose `uid` or `filterValue` is `uid`.
    pub fn uid(mut self, uid: u64) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Hits only the first `times` matching requests (0: never), then the rule is dropped.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    fn matches(&self, method: &str, params: &BTreeMap<String, String>) -> bool {
        let param_is =
            |name: &str, want: u64| params.get(name).and_then(|v| v.trim().parse::<u64>().ok()) == Some(want);
        self.times != Some(0)
            && self.method.as_deref().is_none_or(|m| m == method)
            && self
                .start_row
                .is_none_or(|row| param_is("startRow", row) || (row == 0 && !params.contains_key("startRow")))
            && self.uid.is_none_or(|uid| param_is("uid", uid) || param_is("filterValue", uid))
    }
}

/// Picks the first rule matching a request and uses one of its hits.
pub fn take(rules: &mut Vec<FaultRule>, method: &str, params: &BTreeMap<String, String>) -> Option<FaultKind> {
    let index = rules.iter().position(|r| r.matches(method, params))?;
    let kind = rules[index].kind.clone();
    if let Some(times) = &mut rules[index].times {
        *times = times.saturating_sub(1);
        if *times == 0 {
            rules.remove(index);
        }
    }
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn rules_match_and_run_out() {
        let mut rules = vec![FaultRule::new(FaultKind::Http500).method("getaccounts").start_row(100).times(2)];
        let page = params(&[("startRow", "100")]);
        assert_eq!(take(&mut rules, "setaccountstatus", &page), None);
        assert_eq!(take(&mut rules, "getaccounts", &params(&[("startRow", "0")])), None);
        assert_eq!(take(&mut rules, "getaccounts", &page), Some(FaultKind::Http500));
        assert_eq!(take(&mut rules, "getaccounts", &page), Some(FaultKind::Http500));
        assert_eq!(take(&mut rules, "getaccounts", &page), None);
        assert!(rules.is_empty());
    }

    #[test]
    fn a_rule_for_zero_times_never_hits() {
        let mut rules = vec![FaultRule::new(FaultKind::Http500).times(0)];
        assert_eq!(take(&mut rules, "getaccounts", &params(&[])), None);
    }

    #[test]
    fn uid_rules_match_lookups_and_writes() {
        let mut rules = vec![FaultRule::new(FaultKind::Reset).uid(12)];
        assert!(take(&mut rules, "getaccounts", &params(&[("filterValue", "12")])).is_some());
        assert!(take(&mut rules, "setaccountstatus", &params(&[("uid", "12")])).is_some());
        assert!(take(&mut rules, "setaccountstatus", &params(&[("uid", "120")])).is_none());
    }
}
