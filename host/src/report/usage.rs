//! A usage read's report, written as the module's results come (as `stdout.rs` writes a sync's):
//! `operation`, `module`, then one `usage` row per account at its place in the request (the rows
//! the host could not read as `error` rows), then `summary` and the rest (docs/cli.md, "usage").
//!
//! Each read account's hours are checked against its window before they are written
//! ([`check_usage_hours`]); one that breaks it becomes that account's `unexpected` error, so
//! nothing the host doubts is billed. The summary's amounts are exact decimal sums.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::json::JsonObject;
use super::stdout::Streamed;
use super::{Body, ErrorKind, ErrorReport, FactMap, ModuleRef, Report};
use crate::bindings::hostbill::provisioning::types as wit;
use crate::request::InvalidRow;
use crate::request_usage::iso_hour;
use crate::sandbox::answer::check_usage_hours;
use crate::sandbox::decisions::{DecisionSink, SinkError};
use crate::sandbox::limits::NamedLimit;
use crate::secrets::secrets;

/// How a usage read's results are written, and within what.
pub struct UsageSetup {
    pub app: wit::AppSettings,
    pub until: i64,
    /// Each asked account's `usage_from` (Unix seconds), by account id.
    pub windows: HashMap<u64, i64>,
    /// Rows the host could not read, by place (ascending).
    pub invalid: Vec<(usize, InvalidRow)>,
    /// `--max-report-mib`, and its name for the report.
    pub max_bytes: usize,
    pub named_limit: NamedLimit,
}

/// Writes a usage read's report as its results come.
pub struct UsageWriter {
    out: JsonObject<Box<dyn Write + Send>>,
    setup: UsageSetup,
    module: Option<ModuleRef>,
    invalid: std::iter::Peekable<std::vec::IntoIter<(usize, InvalidRow)>>,
    place: usize,
    tally: Tally,
}

#[derive(Debug, Default)]
struct Tally {
    read: usize,
    skipped: usize,
    errors: usize,
    hours: usize,
    cost: Decimal,
    bonus: Decimal,
    /// An amount the sums could not hold (then the summary says so instead of a wrong total).
    overflow: bool,
}

impl UsageWriter {
    pub fn new(out: Box<dyn Write + Send>, mut setup: UsageSetup) -> UsageWriter {
        let invalid = std::mem::take(&mut setup.invalid).into_iter().peekable();
        let scrub = secrets(Some(&setup.app), None);
        UsageWriter {
            out: JsonObject::new(out, scrub),
            setup,
            module: None,
            invalid,
            place: 0,
            tally: Tally::default(),
        }
    }

    /// Shared with the store, whose `emit` import feeds it.
    pub fn shared(self) -> Arc<Mutex<UsageWriter>> {
        Arc::new(Mutex::new(self))
    }

    fn start(&mut self) -> std::io::Result<()> {
        self.out.member("operation", &"usage")?;
        if let Some(module) = &self.module {
            self.out.member("module", module)?;
        }
        self.out.open_array("usage")
    }

    fn write_invalid(&mut self, index: usize, row: &InvalidRow) -> std::io::Result<()> {
        let error = ErrorReport::new(
            ErrorKind::BadInput,
            format!("account row {} of the request is not valid: {}; nothing was read", index + 1, row.problem),
        );
        self.out.element(&ErrorRow { account_id: row.account_id, error: &error })?;
        self.tally.errors += 1;
        self.place += 1;
        Ok(())
    }

    fn write(&mut self, results: &[wit::AccountUsage]) -> std::io::Result<()> {
        if !self.out.started() {
            self.start()?;
        }
        for result in results {
            while let Some((index, row)) = self.invalid.next_if(|(index, _)| *index <= self.place) {
                self.write_invalid(index, &row)?;
            }
            let from = self.setup.windows.get(&result.account_id).copied().unwrap_or(self.setup.until);
            match &result.usage {
                wit::UsageOutcome::Read(read) => match check_usage_hours(&read.hours, from, self.setup.until) {
                    Ok(()) => {
                        self.tally.read += 1;
                        self.tally.hours += read.hours.len();
                        for hour in &read.hours {
                            let sums = Decimal::parse(&hour.cost)
                                .zip(Decimal::parse(&hour.bonus))
                                .and_then(|(c, b)| Some((self.tally.cost.add(c)?, self.tally.bonus.add(b)?)));
                            match sums {
                                Some((cost, bonus)) => (self.tally.cost, self.tally.bonus) = (cost, bonus),
                                None => self.tally.overflow = true,
                            }
                        }
                        let row = ReadRow { account_id: result.account_id, from, until: self.setup.until, read };
                        self.out.element(&row)?;
                    }
                    Err(why) => {
                        let error = ErrorReport::new(
                            ErrorKind::Unexpected,
                            format!("{why}; nothing of this account's usage is billed"),
                        );
                        self.tally.errors += 1;
                        self.out.element(&ErrorRow { account_id: Some(result.account_id), error: &error })?;
                    }
                },
                wit::UsageOutcome::Skipped(reason) => {
                    self.tally.skipped += 1;
                    self.out.element(&SkippedRow { account_id: result.account_id, skipped: reason })?;
                }
                wit::UsageOutcome::Failed(e) => {
                    self.tally.errors += 1;
                    let error = ErrorReport::from(e.clone());
                    self.out.element(&ErrorRow { account_id: Some(result.account_id), error: &error })?;
                }
            }
            self.place += 1;
            if self.out.bytes() > self.setup.max_bytes {
                return Err(std::io::Error::other(TooLarge));
            }
        }
        Ok(())
    }
}

impl Streamed for UsageWriter {
    fn started(&self) -> bool {
        self.out.started()
    }

    fn finish(&mut self, report: &mut Report) -> std::io::Result<()> {
        if !self.out.started() {
            self.module = report.module.clone();
            self.start()?;
        }
        while let Some((index, row)) = self.invalid.next() {
            self.write_invalid(index, &row)?;
        }
        self.out.close_array()?;
        if let Some(Body::Usage(summary)) = &mut report.body {
            let t = &self.tally;
            summary.read = t.read;
            summary.skipped = t.skipped;
            summary.errors = t.errors;
            summary.accounts = t.read + t.skipped + t.errors;
            summary.hours = t.hours;
            summary.cost = t.cost.to_string();
            summary.bonus = t.bonus.to_string();
            if t.overflow && report.error.is_none() {
                report.error = Some(ErrorReport::new(
                    ErrorKind::Unexpected,
                    "the amounts are too large for the host to sum exactly: the summary's cost and bonus are incomplete",
                ));
            }
            crate::scrub::stderr_line(&format!(
                "usage: {} accounts: {} read ({} hours, cost {}, bonus {}), {} skipped, {} error; {} requests",
                summary.accounts,
                summary.read,
                summary.hours,
                summary.cost,
                summary.bonus,
                summary.skipped,
                summary.errors,
                summary.requests
            ));
        }
        report.write_tail(&mut self.out)?;
        let out = std::mem::replace(&mut self.out, JsonObject::new(Box::new(std::io::sink()), Default::default()));
        out.close().map(drop)
    }
}

/// The report grew past `--max-report-mib`.
#[derive(Debug, thiserror::Error)]
#[error("the report grew past its limit")]
struct TooLarge;

impl DecisionSink<wit::AccountUsage> for UsageWriter {
    fn begin(&mut self, module: &wit::ModuleInfo) {
        self.module = Some(ModuleRef::from(module));
        self.out.scrub_with(secrets(Some(&self.setup.app), Some(module)));
    }

    fn take(&mut self, results: &[wit::AccountUsage]) -> Result<(), SinkError> {
        let written = self.write(results);
        written.map_err(|e| match e.get_ref().is_some_and(|e| e.is::<TooLarge>()) {
            true => SinkError {
                message: format!(
                    "the module was stopped: the report grew larger than {} MiB (--max-report-mib); the accounts after \
                     the first {} were not printed",
                    self.setup.max_bytes / (1024 * 1024),
                    self.place
                ),
                limit: Some(self.setup.named_limit.clone()),
            },
            false => {
                SinkError { message: format!("the module was stopped: cannot write the report: {e}"), limit: None }
            }
        })
    }
}

/// A read account's row.
struct ReadRow<'a> {
    account_id: u64,
    from: i64,
    until: i64,
    read: &'a wit::UsageRead,
}

impl Serialize for ReadRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("account_id", &self.account_id)?;
        map.serialize_entry("uid", &self.read.remote_id)?;
        map.serialize_entry("from", &iso_hour(self.from))?;
        map.serialize_entry("until", &iso_hour(self.until))?;
        map.serialize_entry("hours", &Hours(&self.read.hours))?;
        map.end()
    }
}

struct Hours<'a>(&'a [wit::UsageHour]);

impl Serialize for Hours<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(HourOut))
    }
}

struct HourOut<'a>(&'a wit::UsageHour);

impl Serialize for HourOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("start", &iso_hour(self.0.start))?;
        map.serialize_entry("cost", &self.0.cost)?;
        map.serialize_entry("bonus", &self.0.bonus)?;
        map.serialize_entry("facts", &FactMap(&self.0.facts))?;
        map.end()
    }
}

#[derive(Serialize)]
struct SkippedRow<'a> {
    account_id: u64,
    skipped: &'a str,
}

#[derive(Serialize)]
struct ErrorRow<'a> {
    account_id: Option<u64>,
    error: &'a ErrorReport,
}

/// An exact decimal amount (`units / 10^scale`), for the summary's sums; the module's amounts are
/// plain decimals (checked by [`check_usage_hours`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    units: i128,
    scale: u32,
}

impl Decimal {
    /// `-?digits(.digits)?`, at most 30 digits after the point.
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, digits) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let scale = u32::try_from(fraction.len()).ok().filter(|&s| s <= 30)?;
        let mut units: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            units = units.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        Some(Decimal { units: if negative { -units } else { units }, scale })
    }

    fn add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self.units.checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other.units.checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        let mut sum = Decimal { units: a.checked_add(b)?, scale };
        while sum.scale > 0 && sum.units % 10 == 0 {
            sum.units /= 10;
            sum.scale -= 1;
        }
        Some(sum)
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.units.unsigned_abs().to_string();
        let sign = if self.units < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}
