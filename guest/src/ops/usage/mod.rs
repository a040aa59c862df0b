//! Usage: each linked account's billing history, hour by hour, for HostBill's metered billing.
//! One `getaccountbillinghistorybyperiodinner` request per account over its whole window
//! (docs/cloudpe-api.md, "Usage"), concurrent, the results handed out in input order as they are
//! read. Amounts stay exact decimals from CloudPe's text to the report.

mod decimal;
mod rows;
mod time;

use self::rows::Hour;
use super::{cloudpe_uid, settings};
use crate::api::{ApiMethod, CloudPe, DEADLINE_MESSAGE, RetryPolicy};
use crate::config;
use crate::ops::sync::is_candidate;
use crate::transport::Platform;
use crate::wit::exports::hostbill::provisioning::usage::UsageSummary;
use crate::wit::{
    AccountUsage, AppSettings, FactParam, HostbillStatus, LogLevel, ModuleError, UsageHour, UsageOptions, UsageOutcome,
    UsageQuery, UsageRead,
};

/// The most accounts read (and held) at once: a month of hours is a few hundred KiB per account,
/// so a chunk bounds the module's memory; 16 rounds of requests keep the connections busy.
fn chunk_size(max_in_flight: usize) -> usize {
    (max_in_flight * 16).clamp(128, 1024)
}

/// What one account comes to.
enum Outcome {
    Read { uid: u64, hours: Vec<Hour> },
    Skipped(HostbillStatus),
    Failed(ModuleError),
}

/// What is done with a query before any request: read its user's history, or not.
enum Plan {
    Read(u64),
    Skip(HostbillStatus),
    Fail(ModuleError),
}

/// Reads the usage of every query's account over `[from, until)` and hands one result per query
/// to `emit`, in input order, a chunk at a time. Fails as a whole when the token is rejected, may
/// not call the method, or CloudPe cannot be reached at all.
pub fn read_usage(
    platform: &impl Platform,
    app: &AppSettings,
    queries: Vec<UsageQuery>,
    until: i64,
    options: UsageOptions,
    emit: &mut dyn FnMut(&[AccountUsage<'_>]),
) -> Result<UsageSummary, ModuleError> {
    let settings = settings(app)?;
    let offset = config::usage_utc_offset(app)?;
    let api = CloudPe::new(&settings, platform);
    let retry = RetryPolicy::attempts(options.max_attempts);
    let max_in_flight = options.max_concurrency.max(1) as usize;
    let plans: Vec<(u64, i64, Plan)> = queries
        .into_iter()
        .map(|q| {
            let plan = if !is_candidate(q.account.status) {
                Plan::Skip(q.account.status)
            } else if q.from % 3600 != 0 || until % 3600 != 0 || q.from >= until {
                Plan::Fail(ModuleError::Configuration(format!(
                    "the usage window {} to {} (UTC) is not whole hours, or is empty",
                    time::format(q.from, 0),
                    time::format(until, 0)
                )))
            } else {
                match cloudpe_uid(&settings, &q.account) {
                    Ok(uid) => Plan::Read(uid),
                    Err(e) => Plan::Fail(e),
                }
            };
            (q.account.id, q.from, plan)
        })
        .collect();
    api.expect_requests(plans.iter().filter(|p| matches!(p.2, Plan::Read(_))).count() as u32);
    let (mut read, mut failed, mut late) = (0usize, 0usize, 0usize);
    let method = ApiMethod::GetBillingHistory;
    for chunk in plans.chunks(chunk_size(max_in_flight)) {
        let wanted: Vec<(usize, u64, i64)> = chunk
            .iter()
            .enumerate()
            .filter_map(|(at, (_, from, plan))| match plan {
                Plan::Read(uid) => Some((at, *uid, *from)),
                _ => None,
            })
            .collect();
        let requests: Vec<_> = wanted
            .iter()
            .map(|&(_, uid, from)| {
                api.request(
                    method,
                    &[
                        ("uid", uid.to_string()),
                        ("starttime", time::format(from, offset)),
                        // The last second of the window: the API's end bound may be inclusive.
                        ("endtime", time::format(until - 1, offset)),
                        ("period", "HOUR".to_string()),
                        ("groupNodes", "false".to_string()),
                    ],
                )
            })
            .collect();
        let mut results = if requests.is_empty() {
            Vec::new()
        } else {
            api.fetch_all_read(method, &requests, max_in_flight, retry, |i, response| {
                let (_, uid, from) = wanted[i];
                let reply = api.judged(method, response).map_err(|e| match e {
                    ModuleError::NotFound(m) => ModuleError::NotFound(format!("CloudPe user {uid}: {m}")),
                    other => other,
                })?;
                rows::hours(&reply.body, uid, from, until, offset)
            })
        }
        .into_iter();
        if let Some(error) = api.halted() {
            platform
                .log(LogLevel::Error, &format!("usage stopped after {} requests: {}", api.requests(), error.message()));
            return Err(error);
        }
        let outcomes: Vec<(u64, Outcome)> = chunk
            .iter()
            .map(|(id, _, plan)| {
                let outcome = match plan {
                    Plan::Skip(status) => Outcome::Skipped(*status),
                    Plan::Fail(e) => Outcome::Failed(e.clone()),
                    Plan::Read(uid) => match results.next().expect("one result per request") {
                        Ok(hours) => Outcome::Read { uid: *uid, hours },
                        Err(e) => Outcome::Failed(e),
                    },
                };
                match &outcome {
                    Outcome::Read { .. } => read += 1,
                    Outcome::Failed(ModuleError::Transport(m)) if m == DEADLINE_MESSAGE => late += 1,
                    Outcome::Failed(_) => failed += 1,
                    Outcome::Skipped(_) => {}
                }
                (*id, outcome)
            })
            .collect();
        hand_out(&outcomes, emit);
    }
    if late > 0 {
        platform.log(
            LogLevel::Warn,
            &format!("usage: {late} accounts were not read before the deadline; read them in a later run"),
        );
    }
    platform.log(
        LogLevel::Info,
        &format!(
            "usage: {} accounts, {read} read, {failed} failed, {late} late, {} requests",
            plans.len(),
            api.requests()
        ),
    );
    Ok(UsageSummary { accounts: plans.len() as u64, requests: api.requests() })
}

/// Renders outcomes in the contract's borrowed form and hands them to `emit`.
fn hand_out(outcomes: &[(u64, Outcome)], emit: &mut dyn FnMut(&[AccountUsage<'_>])) {
    let reasons: Vec<Option<String>> = outcomes
        .iter()
        .map(|(_, o)| match o {
            Outcome::Skipped(status) => Some(format!("status {} is not billed", status.as_str())),
            _ => None,
        })
        .collect();
    let facts: Vec<Vec<Vec<FactParam<'_>>>> = outcomes
        .iter()
        .map(|(_, o)| match o {
            Outcome::Read { hours, .. } => {
                hours.iter().map(|h| h.facts.iter().map(|(name, value)| FactParam { name, value }).collect()).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    let hours: Vec<Vec<UsageHour<'_>>> = outcomes
        .iter()
        .zip(&facts)
        .map(|((_, o), facts)| match o {
            Outcome::Read { hours, .. } => hours
                .iter()
                .zip(facts)
                .map(|(h, facts)| UsageHour { start: h.start, cost: &h.cost, bonus: &h.bonus, facts })
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let results: Vec<AccountUsage<'_>> = outcomes
        .iter()
        .zip(&hours)
        .zip(&reasons)
        .map(|(((id, o), hours), reason)| {
            let usage = match o {
                Outcome::Read { uid, .. } => UsageOutcome::Read(UsageRead { remote_id: *uid, hours }),
                Outcome::Skipped(_) => UsageOutcome::Skipped(reason.as_deref().expect("a skip's reason")),
                Outcome::Failed(e) => UsageOutcome::Failed(e.borrowed()),
            };
            AccountUsage { account_id: *id, usage }
        })
        .collect();
    emit(&results);
}
