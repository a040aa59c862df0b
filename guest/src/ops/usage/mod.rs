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

/// The most accounts read (and held) at once, and the most hours of windows: a month of hours is
/// a few hundred KiB per account, so a chunk bounds the module's memory; the requests of a chunk
/// keep the connections busy until its last round, so the larger the fewer idle tails.
const CHUNK_ACCOUNTS: usize = 1024;
const CHUNK_HOURS: i64 = 65_536;

/// Splits `plans` into chunks of at most [`CHUNK_ACCOUNTS`] accounts and [`CHUNK_HOURS`] hours
/// of windows (at least `min` accounts, to keep `min` requests in flight).
fn chunks<T>(plans: &[(u64, i64, T)], until: i64, min: usize) -> Vec<&[(u64, i64, T)]> {
    let mut out = Vec::new();
    let (mut start, mut hours) = (0, 0);
    for (at, (_, from, _)) in plans.iter().enumerate() {
        hours += ((until - from) / 3600).clamp(1, CHUNK_HOURS);
        let len = at + 1 - start;
        if len >= CHUNK_ACCOUNTS || (hours >= CHUNK_HOURS && len >= min) {
            out.push(&plans[start..=at]);
            (start, hours) = (at + 1, 0);
        }
    }
    if start < plans.len() {
        out.push(&plans[start..]);
    }
    out
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
    for chunk in chunks(&plans, until, max_in_flight * 4) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DEADLINE_MESSAGE;
    use crate::ops::testing::{FakeCloudPe, app};
    use crate::wit::{Account, AppSetting, CustomField, RemoteError};
    use cloudpe_sim_api::usage::expected;

    const UNTIL: i64 = 1_796_558_400; // 2026-12-06 12:00:00 UTC
    const DAY: i64 = 86_400;

    fn query(id: u64, uid: &str, status: HostbillStatus, from: i64) -> UsageQuery {
        let custom_fields = vec![CustomField { code: "cloudpeid".into(), value: uid.into() }];
        UsageQuery { account: Account { id, client_id: id + 100, status, custom_fields }, from }
    }

    fn opts() -> UsageOptions {
        UsageOptions { max_concurrency: 4, max_attempts: 2 }
    }

    /// One owned line per account: (id, "read"/"skipped"/"failed", hours as (start, cost, bonus,
    /// facts), the text of a skip or error).
    type Line = (u64, &'static str, Vec<(i64, String, String, Vec<(String, String)>)>, String);

    fn run(
        cloud: &FakeCloudPe,
        app: &AppSettings,
        queries: Vec<UsageQuery>,
    ) -> Result<(Vec<Line>, Vec<usize>), ModuleError> {
        let (mut lines, mut batches) = (Vec::new(), Vec::new());
        read_usage(cloud, app, queries, UNTIL, opts(), &mut |batch| {
            batches.push(batch.len());
            for r in batch {
                lines.push(match &r.usage {
                    UsageOutcome::Read(read) => (
                        r.account_id,
                        "read",
                        read.hours
                            .iter()
                            .map(|h| {
                                let facts = h.facts.iter().map(|f| (f.name.to_string(), f.value.to_string())).collect();
                                (h.start, h.cost.to_string(), h.bonus.to_string(), facts)
                            })
                            .collect(),
                        read.remote_id.to_string(),
                    ),
                    UsageOutcome::Skipped(why) => (r.account_id, "skipped", Vec::new(), why.to_string()),
                    UsageOutcome::Failed(e) => (r.account_id, "failed", Vec::new(), format!("{:?}", e.owned())),
                });
            }
        })?;
        Ok((lines, batches))
    }

    fn users(uids: &[u64]) -> FakeCloudPe {
        FakeCloudPe::new(&uids.iter().map(|&u| (u, 1, None)).collect::<Vec<_>>())
    }

    #[test]
    fn every_account_is_answered_in_order_and_its_hours_match_the_oracle() {
        use HostbillStatus::*;
        let cloud = users(&[11, 13, 15, 16, 99]);
        cloud.delete_user(99);
        let queries = vec![
            query(1, "11", Active, UNTIL - 3 * DAY),
            query(2, "13", Suspended, UNTIL - 3600),
            query(3, "15", Active, UNTIL - DAY),
            query(4, "16", Active, UNTIL - 31 * DAY),
            query(5, "16", Pending, UNTIL - DAY),
            query(6, "abc", Active, UNTIL - DAY),
            query(7, "99", Active, UNTIL - DAY),
        ];
        let (lines, _) = run(&cloud, &app(), queries.clone()).unwrap();
        assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7]);
        for (line, q) in lines.iter().zip(&queries).filter(|(l, _)| l.1 == "read") {
            let uid: u64 = line.3.parse().unwrap();
            let oracle = expected(uid, q.from, UNTIL);
            let got: Vec<_> = line.2.iter().map(|h| (h.0, h.1.clone(), h.2.clone())).collect();
            let want: Vec<_> = oracle.iter().map(|h| (h.start, h.cost.clone(), h.bonus.clone())).collect();
            assert_eq!(got, want, "account {}", line.0);
            for (h, o) in line.2.iter().zip(&oracle) {
                let fact = |name: &str| h.3.iter().find(|f| f.0 == name).map(|f| f.1.clone());
                assert_eq!(fact("rows"), Some(o.rows.to_string()));
                assert_eq!(fact("resource_cost"), Some(o.resource_cost.clone()));
                assert_eq!(fact("storage_cost"), Some(o.storage_cost.clone()));
                assert_eq!(fact("traffic_cost"), Some(o.traffic_cost.clone()));
            }
        }
        assert_eq!(lines[0].1, "read");
        assert!(!lines[0].2.is_empty());
        assert_eq!((lines[1].1, lines[1].2.len()), ("read", 0), "a user without usage has no hours");
        assert!(lines[2].2.iter().all(|h| h.2 != "0"), "uid 15 has bonus rows");
        assert!(lines[3].2.len() > 600, "31 days of hours in one request");
        assert_eq!(lines[4], (5, "skipped", Vec::new(), "status Pending is not billed".to_string()));
        assert!(lines[5].1 == "failed" && lines[5].3.contains("Configuration"), "{:?}", lines[5]);
        assert!(
            lines[6].1 == "failed" && lines[6].3.contains("NotFound") && lines[6].3.contains("99"),
            "{:?}",
            lines[6]
        );
        let requests = cloud.requests.borrow();
        assert_eq!(requests.len(), 5, "one request per account read");
        let body = requests[3].form_body.as_deref().unwrap();
        assert!(
            body.contains("starttime=2026-11-05+12%3A00%3A00") && body.contains("endtime=2026-12-06+11%3A59%3A59"),
            "{body}"
        );
        assert!(body.contains("period=HOUR") && body.contains("groupNodes=false"), "{body}");
    }

    #[test]
    fn the_time_zone_setting_is_sent_and_read_back() {
        let cloud = users(&[11]);
        cloud.set_usage_offset(19_800);
        let mut india = app();
        india.custom = vec![AppSetting { name: "Usage time zone".into(), value: "+05:30".into() }];
        let (lines, _) = run(&cloud, &india, vec![query(1, "11", HostbillStatus::Active, UNTIL - DAY)]).unwrap();
        let want: Vec<i64> = expected(11, UNTIL - DAY, UNTIL).iter().map(|h| h.start).collect();
        assert_eq!(lines[0].2.iter().map(|h| h.0).collect::<Vec<_>>(), want);
        assert!(cloud.requests.borrow()[0].form_body.as_deref().unwrap().contains("starttime=2026-12-05+17%3A30%3A00"));
        // The App says UTC while CloudPe writes +05:30: the rows fall off the hour, and no bill.
        let (lines, _) = run(&cloud, &app(), vec![query(1, "11", HostbillStatus::Active, UNTIL - DAY)]).unwrap();
        assert!(lines[0].1 == "failed" && lines[0].3.contains("Unexpected"), "{:?}", lines[0]);
        let mut bad = app();
        bad.custom = vec![AppSetting { name: "Usage time zone".into(), value: "IST".into() }];
        let e = run(&cloud, &bad, vec![query(1, "11", HostbillStatus::Active, UNTIL - DAY)]).unwrap_err();
        assert!(matches!(&e, ModuleError::Configuration(m) if m.contains("Usage time zone")), "{e:?}");
    }

    #[test]
    fn a_rejected_token_or_a_refused_method_is_one_error_after_one_request() {
        let queries: Vec<_> = (1..=50).map(|i| query(i, "11", HostbillStatus::Active, UNTIL - DAY)).collect();
        let cloud = users(&[11]);
        let mut bad = app();
        bad.field2 = Some("wrong-token".into());
        let e = run(&cloud, &bad, queries.clone()).unwrap_err();
        assert!(matches!(e, ModuleError::Authentication(_)), "{e:?}");
        assert_eq!(cloud.requests.borrow().len(), 1);

        let cloud = users(&[11]);
        cloud.deny(crate::envelope::BILLING_HISTORY_METHOD);
        let e = run(&cloud, &app(), queries.clone()).unwrap_err();
        assert!(
            matches!(&e, ModuleError::RemoteApi(RemoteError { code: 8202, message }) if message.contains("GetAccountBillingHistoryByPeriodInner")),
            "{e:?}"
        );
        assert_eq!(cloud.requests.borrow().len(), 1);

        let cloud = users(&[11]);
        cloud.unreachable();
        let e = run(&cloud, &app(), queries).unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("unreachable")), "{e:?}");
        assert!(cloud.requests.borrow().len() <= 4);
    }

    #[test]
    fn past_the_deadline_nothing_is_sent_and_every_account_says_so() {
        let cloud = users(&[11]);
        cloud.set_time_left(Some(std::time::Duration::ZERO));
        let queries = vec![
            query(1, "11", HostbillStatus::Active, UNTIL - DAY),
            query(2, "11", HostbillStatus::Pending, UNTIL - DAY),
        ];
        let (lines, _) = run(&cloud, &app(), queries).unwrap();
        assert!(lines[0].1 == "failed" && lines[0].3.contains(DEADLINE_MESSAGE), "{:?}", lines[0]);
        assert_eq!(lines[1].1, "skipped");
        assert!(cloud.requests.borrow().is_empty());
    }

    #[test]
    fn many_accounts_are_emitted_in_chunks_in_input_order() {
        let cloud = users(&[11, 12]);
        let queries: Vec<_> = (0..300)
            .map(|i| query(i, if i % 2 == 0 { "11" } else { "12" }, HostbillStatus::Active, UNTIL - 3600))
            .collect();
        let (lines, batches) = run(&cloud, &app(), queries).unwrap();
        assert_eq!(batches, [300], "one-hour windows: one chunk");
        let long: Vec<_> = (0..300).map(|i| query(i, "11", HostbillStatus::Active, UNTIL - 744 * 3600)).collect();
        let plans: Vec<(u64, i64, ())> = long.iter().map(|q| (q.account.id, q.from, ())).collect();
        assert_eq!(chunks(&plans, UNTIL, 16).iter().map(|c| c.len()).collect::<Vec<_>>(), [89, 89, 89, 33]);
        let ones: Vec<(u64, i64, ())> = (0..2500).map(|i| (i, UNTIL - 3600, ())).collect();
        assert_eq!(chunks(&ones, UNTIL, 16).iter().map(|c| c.len()).collect::<Vec<_>>(), [1024, 1024, 452]);
        assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), (0..300).collect::<Vec<_>>());
        assert!(lines.iter().all(|l| l.1 == "read"));
    }
}
