//! What reaches stdout: one report per run ([`print`]). A sync's report is begun by its
//! decisions, written as they come (the sandbox's
//! [`DecisionSink`]), whether the module streams them in batches (`sync-output.emit`, contract
//! 2.2) or returns them whole (2.0, 2.1), so a large sync's decisions never all exist on the
//! host's side. The rows the host could not read are printed at their places, as `error`
//! decisions.
//!
//! The report is one JSON object: `operation`, `module` and `decisions` first, then everything
//! known only at the end (`ok`, `dry_run`, `summary`, `error`, `logs`, `meter`, ...), written by
//! [`SyncWriter::finish`]. Nothing is written before the first decision, so a sync that fails
//! before deciding anything prints an ordinary report.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::json::JsonObject;
use super::{Body, ErrorKind, ErrorReport, Exit, FactMap, ModuleRef, Report};
use crate::bindings::hostbill::provisioning::types as wit;
use crate::request::InvalidRow;
use crate::sandbox::decisions::{DecisionSink, SinkError};
use crate::sandbox::limits::NamedLimit;
use crate::scrub::Scrubber;
use crate::secrets::secrets;

/// How many of each decision were written (the host's own `error` decisions for invalid rows
/// are counted apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub change: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub invalid: usize,
}

/// How a sync's decisions are printed, and within what.
pub struct SyncSetup {
    /// The App: its secrets are scrubbed (which ones, the module's info says).
    pub app: wit::AppSettings,
    /// A dry run labels changes `would-change`, so they cannot be applied by mistake.
    pub dry_run: bool,
    /// `unchanged` decisions carry their facts (without: `--omit-unchanged-facts`).
    pub unchanged_facts: bool,
    /// Rows the host could not read, by place (ascending).
    pub invalid: Vec<(usize, InvalidRow)>,
    /// `--max-report-mib`, and its name for the report.
    pub max_bytes: usize,
    pub named_limit: NamedLimit,
}

/// A report begun on stdout as its answers came (a sync's decisions, a usage read's results),
/// which the run's end must finish.
pub trait Streamed {
    /// Whether anything was written (then the run's report must end with [`Streamed::finish`]).
    fn started(&self) -> bool;
    /// Ends the report with the members known only now, from `report`.
    fn finish(&mut self, report: &mut Report) -> std::io::Result<()>;
}

impl Streamed for SyncWriter {
    fn started(&self) -> bool {
        SyncWriter::started(self)
    }
    fn finish(&mut self, report: &mut Report) -> std::io::Result<()> {
        SyncWriter::finish(self, report)
    }
}

/// Writes a sync's report as its decisions come.
pub struct SyncWriter {
    out: JsonObject<Box<dyn Write + Send>>,
    setup: SyncSetup,
    module: Option<ModuleRef>,
    invalid: std::iter::Peekable<std::vec::IntoIter<(usize, InvalidRow)>>,
    /// The place (in the request's rows) of the next decision.
    place: usize,
    tally: Tally,
}

impl SyncWriter {
    /// A writer to `out` (stdout in the host).
    pub fn new(out: Box<dyn Write + Send>, mut setup: SyncSetup) -> SyncWriter {
        let invalid = std::mem::take(&mut setup.invalid).into_iter().peekable();
        let scrub = secrets(Some(&setup.app), None);
        SyncWriter { out: JsonObject::new(out, scrub), setup, module: None, invalid, place: 0, tally: Tally::default() }
    }

    /// Shared with the store, whose `emit` import feeds it.
    pub fn shared(self) -> Arc<Mutex<SyncWriter>> {
        Arc::new(Mutex::new(self))
    }

    /// Whether anything was written (then the run's report must end with [`SyncWriter::finish`]).
    pub fn started(&self) -> bool {
        self.out.started()
    }

    #[cfg(test)]
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Ends the report: the invalid rows left, then the members known only now, from `report`,
    /// whose summary gets the counts written. Without a decision written, `report` ends up an
    /// ordinary sync report with the invalid rows as its decisions.
    pub fn finish(&mut self, report: &mut Report) -> std::io::Result<()> {
        if !self.started() {
            self.module = report.module.clone();
            self.start()?;
        }
        while let Some((index, row)) = self.invalid.next() {
            self.write_invalid(index, &row)?;
        }
        self.out.close_array()?;
        if let Some(Body::Sync { summary, dry_run }) = &mut report.body {
            let t = self.tally;
            summary.unchanged = t.unchanged;
            summary.change = t.change;
            summary.skipped = t.skipped;
            summary.error = t.failed + t.invalid;
            summary.accounts = t.unchanged + t.change + t.skipped + summary.error;
            crate::scrub::stderr_line(&format!(
                "sync: {} accounts: {} change, {} unchanged, {} skipped, {} error; {} requests in {:.2} s{}",
                summary.accounts,
                summary.change,
                summary.unchanged,
                summary.skipped,
                summary.error,
                summary.requests,
                summary.elapsed_ms as f64 / 1000.0,
                if *dry_run { " (dry run: nothing to apply)" } else { "" }
            ));
        }
        report.write_tail(&mut self.out)?;
        let out = std::mem::replace(&mut self.out, JsonObject::new(Box::new(std::io::sink()), Default::default()));
        out.close().map(drop)
    }

    fn start(&mut self) -> std::io::Result<()> {
        self.out.member("operation", &"sync")?;
        if let Some(module) = &self.module {
            self.out.member("module", module)?;
        }
        self.out.open_array("decisions")
    }

    /// Writes the `error` decision of the invalid row at `index`, at the current place.
    fn write_invalid(&mut self, index: usize, row: &InvalidRow) -> std::io::Result<()> {
        self.out.element(&InvalidOut { index, row })?;
        self.tally.invalid += 1;
        self.place += 1;
        Ok(())
    }

    fn write(&mut self, decisions: &[wit::AccountDecision]) -> std::io::Result<()> {
        if !self.started() {
            self.start()?;
        }
        for d in decisions {
            while let Some((index, row)) = self.invalid.next_if(|(index, _)| *index <= self.place) {
                self.write_invalid(index, &row)?;
            }
            match &d.decision {
                wit::Decision::Change(_) => self.tally.change += 1,
                wit::Decision::Unchanged(_) => self.tally.unchanged += 1,
                wit::Decision::Skipped(_) => self.tally.skipped += 1,
                wit::Decision::Failed(_) => self.tally.failed += 1,
            }
            let change = if self.setup.dry_run { "would-change" } else { "change" };
            self.out.element(&DecisionOut { d, change, unchanged_facts: self.setup.unchanged_facts })?;
            self.place += 1;
            if self.out.bytes() > self.setup.max_bytes {
                return Err(std::io::Error::other(TooLarge));
            }
        }
        Ok(())
    }
}

/// The report grew past `--max-report-mib`.
#[derive(Debug, thiserror::Error)]
#[error("the report grew past its limit")]
struct TooLarge;

impl DecisionSink for SyncWriter {
    fn begin(&mut self, module: &wit::ModuleInfo) {
        self.module = Some(ModuleRef::from(module));
        self.out.scrub_with(secrets(Some(&self.setup.app), Some(module)));
    }

    fn take(&mut self, decisions: &[wit::AccountDecision]) -> Result<(), SinkError> {
        let written = self.tally.change + self.tally.unchanged + self.tally.skipped + self.tally.failed;
        self.write(decisions).map_err(|e| match e.get_ref().is_some_and(|e| e.is::<TooLarge>()) {
            true => SinkError {
                message: format!(
                    "the module was stopped: the report grew larger than {} MiB (--max-report-mib); the decisions after \
                     the first {} were not printed",
                    self.setup.max_bytes / (1024 * 1024),
                    written + decisions.len()
                ),
                limit: Some(self.setup.named_limit.clone()),
            },
            false => SinkError { message: format!("the module was stopped: cannot write the report: {e}"), limit: None },
        })
    }
}

/// One decision as the report prints it.
struct DecisionOut<'a> {
    d: &'a wit::AccountDecision,
    /// `change`, or `would-change` in a dry run.
    change: &'static str,
    unchanged_facts: bool,
}

impl Serialize for DecisionOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("account_id", &self.d.account_id)?;
        match &self.d.decision {
            wit::Decision::Unchanged(facts) => {
                map.serialize_entry("decision", "unchanged")?;
                if self.unchanged_facts {
                    map.serialize_entry("facts", &FactMap(facts))?;
                }
            }
            wit::Decision::Change(c) => {
                map.serialize_entry("decision", self.change)?;
                map.serialize_entry("from", c.from.hostbill_name())?;
                map.serialize_entry("to", c.to.hostbill_name())?;
                map.serialize_entry("facts", &FactMap(&c.facts))?;
            }
            wit::Decision::Skipped(reason) => {
                map.serialize_entry("decision", "skipped")?;
                map.serialize_entry("reason", reason)?;
            }
            wit::Decision::Failed(e) => {
                map.serialize_entry("decision", "error")?;
                map.serialize_entry("error", &ErrorReport::from(e.clone()))?;
            }
        }
        map.end()
    }
}

/// The `error` decision of a row the host could not read.
struct InvalidOut<'a> {
    index: usize,
    row: &'a InvalidRow,
}

impl Serialize for InvalidOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let error = ErrorReport::new(
            ErrorKind::BadInput,
            format!(
                "account row {} of the request is not valid: {}; HostBill left unchanged",
                self.index + 1,
                self.row.problem
            ),
        );
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("account_id", &self.row.account_id)?;
        map.serialize_entry("decision", "error")?;
        map.serialize_entry("error", &error)?;
        map.end()
    }
}

/// Collects what is written, and fails past `max` bytes.
struct Limited {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            return Err(std::io::Error::other("report too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Prints the run's report on stdout (a sync's ends what its decisions began) and returns the
/// exit code. A report larger than `max_report_bytes` is replaced by an error that says so; a
/// closed stdout (`host ... | head`) is ignored: nobody reads the rest.
pub fn print(
    mut report: Report,
    sync: Option<&mut dyn Streamed>,
    scrubber: &Scrubber,
    pretty: bool,
    max_report_bytes: usize,
    named_report: NamedLimit,
) -> Exit {
    let stdout = std::io::stdout();
    if let Some(sync) = sync.filter(|s| s.started() || report.error.is_none()) {
        let _ = sync.finish(&mut report);
        return report.exit();
    }
    // Written once, into memory, so that a report over the limit is never half printed.
    let mut written = Limited { bytes: Vec::new(), max: max_report_bytes };
    if report.write(scrubber, &mut written).is_err() {
        let error = ErrorReport::new(
            ErrorKind::ModuleTrapped,
            format!(
                "the report is larger than {} MiB (--max-report-mib) and was not printed",
                max_report_bytes / (1024 * 1024)
            ),
        )
        .with_limit(Some(named_report));
        report = Report { meter: report.meter, ..Report::failed(report.operation, error) };
        written = Limited { bytes: Vec::new(), max: usize::MAX };
        let _ = report.write(scrubber, &mut written);
    }
    let mut out = stdout.lock();
    if pretty {
        // For people at a shell: the same JSON, indented.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&written.bytes) {
            let _ = serde_json::to_writer_pretty(&mut out, &value);
            let _ = out.write_all(b"\n");
        }
    } else {
        let _ = out.write_all(&written.bytes);
    }
    let _ = out.flush();
    report.exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::answer::Asked;
    use crate::sandbox::decisions::DecisionGate;
    use crate::sandbox::limits::Limits;
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

    impl Captured {
        fn json(&self) -> Value {
            let bytes = self.0.lock().unwrap().clone();
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
        }
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
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

    fn module() -> wit::ModuleInfo {
        wit::ModuleInfo {
            name: "m".into(),
            version: "1".into(),
            description: String::new(),
            app_fields: vec![wit::AppFieldUsage {
                field: wit::AppField::Password,
                label: "Session".into(),
                description: String::new(),
                required: true,
                secret: true,
            }],
            endpoint_field: wit::AppField::Host,
        }
    }

    fn app() -> wit::AppSettings {
        wit::AppSettings { password: Some(SECRET.into()), ..wit::AppSettings::empty() }
    }

    fn writer(out: &Captured, max_bytes: usize) -> Arc<Mutex<SyncWriter>> {
        SyncWriter::new(
            Box::new(out.clone()),
            SyncSetup {
                app: app(),
                dry_run: false,
                unchanged_facts: false,
                invalid: invalid(),
                max_bytes,
                named_limit: Limits::default().named_report(),
            },
        )
        .shared()
    }

    fn gate(writer: &Arc<Mutex<SyncWriter>>, ids: impl IntoIterator<Item = u64>) -> DecisionGate {
        DecisionGate::new(Asked::new(ids), writer.clone())
    }

    fn sync_report() -> Report {
        let mut report = Report::new("sync");
        report.module = Some(ModuleRef { name: "m".into(), version: "1".into() });
        report.body = Some(Body::Sync { dry_run: false, summary: Default::default() });
        report
    }

    #[test]
    fn decisions_and_invalid_rows_are_written_at_their_places_scrubbed_and_counted() {
        let out = Captured::default();
        let w = writer(&out, usize::MAX);
        let mut g = gate(&w, 1..=7);
        let decisions: Vec<wit::AccountDecision> = (1..=7).map(decision).collect();
        g.deliver(&module(), decisions[..2].to_vec()).unwrap();
        g.deliver(&module(), Vec::new()).unwrap();
        g.deliver(&module(), decisions[2..].to_vec()).unwrap();
        let mut report = sync_report();
        w.lock().unwrap().finish(&mut report).unwrap();
        assert!(!out.text().contains(SECRET), "{}", out.text());
        let v = out.json();
        assert_eq!(v["operation"], "sync");
        assert_eq!(v["ok"], true);
        let listed = v["decisions"].as_array().unwrap();
        assert_eq!(listed.len(), 10);
        assert_eq!(listed[0]["account_id"], 900, "the invalid row keeps its place");
        assert_eq!(listed[3]["account_id"], 901);
        assert_eq!(listed[9]["account_id"], Value::Null);
        assert_eq!(listed[0]["error"]["kind"], "bad-input");
        let unchanged = listed.iter().find(|d| d["decision"] == "unchanged").unwrap();
        assert!(unchanged.get("facts").is_none(), "--omit-unchanged-facts: {unchanged}");
        let change = listed.iter().find(|d| d["decision"] == "change").unwrap();
        assert_eq!(change["to"], "Suspended");
        assert!(change["facts"]["cloudpe-uid"].is_string(), "a change keeps its facts: {change}");
        assert_eq!(
            v["summary"],
            serde_json::json!({"accounts": 10, "unchanged": 1, "change": 2, "skipped": 2, "error": 5,
                "requests": 0, "elapsed_ms": 0, "peak_rss_kib": 0})
        );
        assert_eq!(g.progress(), (7, 7));
    }

    #[test]
    fn a_sync_without_decisions_prints_its_invalid_rows() {
        let out = Captured::default();
        let w = writer(&out, usize::MAX);
        let mut report = sync_report();
        w.lock().unwrap().finish(&mut report).unwrap();
        let v = out.json();
        assert_eq!(v["decisions"].as_array().unwrap().len(), 3);
        assert_eq!(v["module"]["name"], "m");
        assert_eq!(v["summary"]["error"], 3);
    }

    #[test]
    fn decisions_for_accounts_not_asked_about_or_twice_stop_the_module_unwritten() {
        let out = Captured::default();
        let w = writer(&out, usize::MAX);
        let mut g = gate(&w, [1, 2]);
        let error = g.deliver(&module(), vec![decision(1), decision(999)]).unwrap_err();
        assert!(error.message.contains("contract violation") && error.message.contains("999"), "{error}");
        assert!(error.message.contains("m 1"), "names the module: {error}");
        assert!(out.text().is_empty(), "nothing of a refused batch is written");
        g.deliver(&module(), vec![decision(1)]).unwrap();
        let error = g.deliver(&module(), vec![decision(1)]).unwrap_err();
        assert!(error.message.contains("account 1 a second time"), "{error}");
    }

    #[test]
    fn a_report_past_its_limit_stops_the_module_and_says_so() {
        let out = Captured::default();
        let w = writer(&out, 1024 * 1024);
        let mut g = gate(&w, 0..1000);
        let big = |id| wit::AccountDecision { account_id: id, decision: wit::Decision::Skipped("x".repeat(60_000)) };
        let error = (0..100).find_map(|id| g.deliver(&module(), vec![big(id)]).err()).expect("the limit is reached");
        assert!(error.message.contains("larger than 1 MiB (--max-report-mib)"), "{error}");
        assert_eq!(error.limit.as_ref().map(|l| l.name), Some("report"));
        let mut report = sync_report();
        report.error = Some(ErrorReport::new(ErrorKind::ModuleTrapped, error.message));
        w.lock().unwrap().finish(&mut report).unwrap();
        assert_eq!(out.json()["ok"], false, "what was printed is closed into one valid report");
    }

    #[test]
    fn a_decision_over_the_string_limit_becomes_its_error() {
        let out = Captured::default();
        let w = writer(&out, usize::MAX);
        let mut g = gate(&w, [5]);
        let huge = wit::Decision::Skipped("y".repeat(crate::sandbox::limits::MAX_ANSWER_STRING_BYTES + 1));
        g.deliver(&module(), vec![wit::AccountDecision { account_id: 5, decision: huge }]).unwrap();
        let mut report = sync_report();
        w.lock().unwrap().finish(&mut report).unwrap();
        let v = out.json();
        assert_eq!(v["decisions"][1]["decision"], "error");
        assert!(v["decisions"][1]["error"]["message"].as_str().unwrap().contains("KiB string"));
        assert_eq!(w.lock().unwrap().tally().failed, 1);
    }
}
