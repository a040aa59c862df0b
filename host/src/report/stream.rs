//! A streamed sync's report: written to stdout while the module runs, one batch of decisions at a
//! time (`sync-output.emit`, contract 2.2), so a large sync's decisions never all exist on either
//! side of the call.
//!
//! The report is the same JSON object as an ordinary sync's, with its members in another order:
//! `operation`, `module` and `decisions` first (written as the decisions come), then everything
//! known only at the end (`ok`, `summary`, `error`, `logs`, `meter`, ...), written by
//! [`DecisionStream::finish`]. Nothing is written before the first decision arrives, so a sync
//! that fails before deciding anything prints an ordinary report.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::operation::bound_decision;
use crate::report::{DecisionOut, InvalidOut, Report};
use crate::request::InvalidRow;
use crate::scrub::Scrubber;

/// The stream, shared by the store (whose `emit` import writes to it) and the run that finishes it.
pub type SharedStream = Arc<Mutex<DecisionStream>>;

/// How many of the module's decisions of each kind were written (the report's `summary`; the
/// host's own `error` decisions for invalid rows are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub change: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub emitted: usize,
}

/// Why `emit` stopped the module.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The report grew past `--max-report-mib`.
    #[error(
        "the report grew larger than {mib} MiB (--max-report-mib); the decisions after the first {written} were not printed"
    )]
    TooLarge { mib: usize, written: usize },
    /// The module emitted more decisions than it was given accounts.
    #[error("the module emitted more decisions than the {accounts} accounts it was given")]
    TooMany { accounts: usize },
    /// Writing to stdout failed (nobody reads the report any more).
    #[error("cannot write the report: {0}")]
    Io(#[from] std::io::Error),
}

/// The decisions part of a streamed report, and what it needs to write them.
pub struct DecisionStream {
    out: Box<dyn Write + Send>,
    scrub: Scrubber,
    module: super::ModuleRef,
    /// `change`, or `would-change` in a dry run.
    change: &'static str,
    unchanged_facts: bool,
    /// Rows the host could not read, by place (ascending), printed at their places.
    invalid: std::iter::Peekable<std::vec::IntoIter<(usize, InvalidRow)>>,
    invalid_rows: usize,
    /// The place (in the request's rows) of the next decision.
    place: usize,
    /// Valid accounts the module was given.
    accounts: usize,
    tally: Tally,
    bytes: usize,
    max_bytes: usize,
    started: bool,
    /// One element's JSON, reused: the writer gets one call per element.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for DecisionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionStream").field("started", &self.started).field("tally", &self.tally).finish()
    }
}

/// What a stream needs to know about the sync it reports.
pub struct StreamSetup {
    pub scrub: Scrubber,
    pub module: super::ModuleRef,
    pub dry_run: bool,
    pub unchanged_facts: bool,
    pub invalid: Vec<(usize, InvalidRow)>,
    pub accounts: usize,
    pub max_bytes: usize,
}

impl DecisionStream {
    /// A stream that writes to `out` (stdout in the host).
    pub fn new(out: Box<dyn Write + Send>, setup: StreamSetup) -> DecisionStream {
        DecisionStream {
            out,
            scrub: setup.scrub,
            module: setup.module,
            change: if setup.dry_run { "would-change" } else { "change" },
            unchanged_facts: setup.unchanged_facts,
            invalid_rows: setup.invalid.len(),
            invalid: setup.invalid.into_iter().peekable(),
            place: 0,
            accounts: setup.accounts,
            tally: Tally::default(),
            bytes: 0,
            max_bytes: setup.max_bytes,
            started: false,
            scratch: Vec::new(),
        }
    }

    /// Whether anything was written (then the run's report must end with [`DecisionStream::finish`]).
    pub fn started(&self) -> bool {
        self.started
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Valid accounts the module was given.
    pub fn accounts(&self) -> usize {
        self.accounts
    }

    /// Rows of the request the host could not read (each printed as an `error` decision).
    pub fn invalid_rows(&self) -> usize {
        self.invalid_rows
    }

    /// The invalid rows not written yet (all of them, before the stream starts).
    pub fn take_invalid(&mut self) -> Vec<(usize, InvalidRow)> {
        self.invalid.by_ref().collect()
    }

    /// Writes the next decisions (and the invalid rows whose places come before or between them).
    /// A decision holding a string over the host's limit becomes that account's error, as in an
    /// ordinary sync.
    pub fn emit(&mut self, decisions: Vec<wit::AccountDecision>) -> Result<(), StreamError> {
        if self.tally.emitted + decisions.len() > self.accounts {
            return Err(StreamError::TooMany { accounts: self.accounts });
        }
        if !self.started {
            self.start()?;
        }
        for mut d in decisions {
            while let Some((index, row)) = self.invalid.next_if(|(index, _)| *index <= self.place) {
                self.write_invalid(index, &row)?;
            }
            bound_decision(&mut d);
            match &d.decision {
                wit::Decision::Change(_) => self.tally.change += 1,
                wit::Decision::Unchanged(_) => self.tally.unchanged += 1,
                wit::Decision::Skipped(_) => self.tally.skipped += 1,
                wit::Decision::Failed(_) => self.tally.failed += 1,
            }
            let out =
                DecisionOut { d: &d, change: self.change, unchanged_facts: self.unchanged_facts, scrub: &self.scrub };
            write_element(&mut *self.out, &mut self.scratch, &mut self.bytes, self.place == 0, &out)?;
            self.tally.emitted += 1;
            self.place += 1;
            if self.bytes > self.max_bytes {
                return Err(StreamError::TooLarge { mib: self.max_bytes / (1024 * 1024), written: self.tally.emitted });
            }
        }
        Ok(())
    }

    /// Ends the report: the invalid rows left, then the members known only now, from `report`
    /// (written compact, whatever `--pretty` says).
    pub fn finish(&mut self, report: &Report) -> std::io::Result<()> {
        let rows: Vec<(usize, InvalidRow)> = self.invalid.by_ref().collect();
        for (index, row) in rows {
            self.write_invalid(index, &row)?;
        }
        let tail = serde_json::to_vec(&report.rendered_tail(&self.scrub)).map_err(std::io::Error::other)?;
        // `tail` is a JSON object: its members continue this one.
        self.out.write_all(b"]")?;
        if tail.len() > 2 {
            self.out.write_all(b",")?;
            self.out.write_all(&tail[1..])?;
        } else {
            self.out.write_all(b"}")?;
        }
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Writes the `error` decision of the invalid row at `index`, at the current place.
    fn write_invalid(&mut self, index: usize, row: &InvalidRow) -> std::io::Result<()> {
        let DecisionStream { out, scratch, bytes, place, scrub, .. } = self;
        write_element(&mut **out, scratch, bytes, *place == 0, &InvalidOut { index, row, scrub })?;
        *place += 1;
        Ok(())
    }

    fn start(&mut self) -> std::io::Result<()> {
        let head = serde_json::json!({
            "operation": "sync",
            "module": {"name": self.scrub.text(&self.module.name), "version": self.scrub.text(&self.module.version)},
        });
        let head = serde_json::to_vec(&head).map_err(std::io::Error::other)?;
        self.out.write_all(&head[..head.len() - 1])?;
        self.out.write_all(b",\"decisions\":[")?;
        self.started = true;
        Ok(())
    }
}

/// Writes one element of the decisions array (after a comma unless it is the `first`), counting
/// the bytes.
fn write_element(
    out: &mut (dyn Write + Send),
    scratch: &mut Vec<u8>,
    bytes: &mut usize,
    first: bool,
    element: &impl serde::Serialize,
) -> std::io::Result<()> {
    scratch.clear();
    if !first {
        scratch.push(b',');
    }
    serde_json::to_writer(&mut *scratch, element).map_err(std::io::Error::other)?;
    *bytes += scratch.len();
    out.write_all(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Decisions, ModuleRef};
    use serde_json::Value;

    /// A writer whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const SECRET: &str = "tok-stream-5e3a";

    fn decision(id: u64) -> wit::AccountDecision {
        let fact = |v: String| vec![wit::Fact { name: "cloudpe-uid".into(), value: v }];
        let decision = match id % 4 {
            0 => wit::Decision::Unchanged(fact(format!("{id}"))),
            1 => wit::Decision::Change(wit::StatusChange {
                from: wit::HostbillStatus::Active,
                to: wit::HostbillStatus::Suspended,
                facts: fact(format!("{id} {SECRET}")),
            }),
            2 => wit::Decision::Skipped(format!("not synced {SECRET}")),
            _ => wit::Decision::Failed(wit::ModuleError::Transport("down".into())),
        };
        wit::AccountDecision { account_id: id, decision }
    }

    fn invalid() -> Vec<(usize, InvalidRow)> {
        vec![
            (0, InvalidRow { account_id: Some(900), problem: "first".into() }),
            (3, InvalidRow { account_id: Some(901), problem: "middle".into() }),
            (9, InvalidRow { account_id: None, problem: "last".into() }),
        ]
    }

    fn stream(out: &Captured, accounts: usize, max_bytes: usize) -> DecisionStream {
        DecisionStream::new(
            Box::new(out.clone()),
            StreamSetup {
                scrub: Scrubber::new([SECRET]),
                module: ModuleRef { name: "m".into(), version: "1".into() },
                dry_run: false,
                unchanged_facts: false,
                invalid: invalid(),
                accounts,
                max_bytes,
            },
        )
    }

    #[test]
    fn a_streamed_report_is_the_ordinary_report() {
        let decisions: Vec<wit::AccountDecision> = (1..=7).map(decision).collect();
        let mut report = Report::new("sync");
        report.module = Some(ModuleRef { name: "m".into(), version: "1".into() });
        report.payload.insert("summary".into(), serde_json::json!({"note": SECRET}));
        report.meter = Some(Default::default());
        let mut ordinary = report.clone();
        ordinary.decisions = Some(Decisions {
            report: wit::SyncReport { decisions: decisions.clone(), requests: 1 },
            dry_run: false,
            unchanged_facts: false,
            invalid: invalid(),
        });
        let expected: Value = serde_json::from_str(&ordinary.render(&Scrubber::new([SECRET]))).unwrap();

        let out = Captured::default();
        let mut s = stream(&out, 7, usize::MAX);
        s.emit(decisions[..2].to_vec()).unwrap();
        s.emit(Vec::new()).unwrap();
        s.emit(decisions[2..].to_vec()).unwrap();
        s.finish(&report).unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(SECRET), "{text}");
        let streamed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(streamed, expected);
        assert_eq!(streamed["decisions"][0]["account_id"], 900, "the invalid row keeps its place");
        assert_eq!(streamed["decisions"][9]["account_id"], Value::Null);
        let unchanged =
            streamed["decisions"].as_array().unwrap().iter().find(|d| d["decision"] == "unchanged").unwrap();
        assert!(unchanged.get("facts").is_none(), "--omit-unchanged-facts: {unchanged}");
        let change = streamed["decisions"].as_array().unwrap().iter().find(|d| d["decision"] == "change").unwrap();
        assert!(change["facts"]["cloudpe-uid"].is_string(), "a change keeps its facts: {change}");
        assert_eq!(s.tally(), Tally { change: 2, unchanged: 1, skipped: 2, failed: 2, emitted: 7 });
    }

    #[test]
    fn more_decisions_than_accounts_or_bytes_than_the_limit_stop_the_module() {
        let out = Captured::default();
        let mut s = stream(&out, 2, usize::MAX);
        let error = s.emit((1..=3).map(decision).collect()).unwrap_err();
        assert!(matches!(error, StreamError::TooMany { accounts: 2 }), "{error}");
        assert!(out.0.lock().unwrap().is_empty(), "nothing written for a batch that breaks the count");

        let mut s = stream(&out, 1000, 1024 * 1024);
        let big = |id| wit::AccountDecision { account_id: id, decision: wit::Decision::Skipped("x".repeat(60_000)) };
        let error = (0..100).find_map(|id| s.emit(vec![big(id)]).err()).expect("the limit is reached");
        assert!(error.to_string().contains("larger than 1 MiB (--max-report-mib)"), "{error}");
    }

    #[test]
    fn a_decision_over_the_string_limit_becomes_its_error() {
        let out = Captured::default();
        let mut s = stream(&out, 1, usize::MAX);
        let huge = wit::Decision::Skipped("y".repeat(MAX + 1));
        s.emit(vec![wit::AccountDecision { account_id: 5, decision: huge }]).unwrap();
        s.finish(&Report::new("sync")).unwrap();
        let v: Value = serde_json::from_slice(&out.0.lock().unwrap()).unwrap();
        assert_eq!(v["decisions"][1]["decision"], "error");
        assert!(v["decisions"][1]["error"]["message"].as_str().unwrap().contains("KiB string"));
        assert_eq!(s.tally().failed, 1);
    }

    const MAX: usize = crate::sandbox::limits::MAX_ANSWER_STRING_BYTES;
}
