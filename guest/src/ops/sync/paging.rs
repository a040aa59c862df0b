//! Bulk reads: pages through CloudPe's whole account list (`startRow`/`resultCount`, ordered by
//! uid), concurrently, and keeps the accounts whose uid is wanted.
//!
//! The first round fetches as many pages as the wanted set could fill (at most one round of
//! concurrency); its `totalCount` tells how many more pages there are. A page that still fails
//! after its retries leaves a gap: wanted uids that could lie in it are looked up one by one,
//! never assumed absent.

use std::collections::BTreeMap;

use super::found::Found;
use super::lookups;
use crate::api::{AccountsPage, CloudPe, RemoteAccount, RetryPolicy, first_round_pages};
use crate::transport::Platform;
use crate::wit::{LogLevel, ModuleError};

/// Most uids looked up one by one to cover failed pages; beyond that they are reported as errors.
pub const MAX_GAP_LOOKUPS: usize = 2000;

/// One fetched page: its first row and what came back.
struct Page {
    start_row: u64,
    result: Result<PageSummary, ModuleError>,
}

/// What is kept of a page once it is parsed: the wanted accounts on it and what the checks of
/// the list's order need. The other accounts (all but the wanted, in a large list) are dropped
/// right away, so a scan holds the wanted accounts, not the whole list.
#[derive(Debug)]
struct PageSummary {
    total_count: u64,
    /// The first and last uid listed, if any.
    bounds: Option<(u64, u64)>,
    /// Whether the page lists uids in increasing order.
    sorted: bool,
    /// The wanted accounts on it, each with its uid's place among the wanted; taken out by
    /// [`collect`].
    wanted: Vec<(usize, RemoteAccount)>,
}

impl PageSummary {
    /// Keeps of `page` the accounts whose uid is in `wanted` (sorted).
    fn of(page: AccountsPage, wanted: &[u64]) -> Self {
        let array = page.array;
        PageSummary {
            total_count: page.total_count,
            bounds: array.first().zip(array.last()).map(|(first, last)| (first.uid, last.uid)),
            sorted: array.windows(2).all(|w| w[0].uid < w[1].uid),
            wanted: array.into_iter().filter_map(|a| Some((wanted.binary_search(&a.uid).ok()?, a))).collect(),
        }
    }
}

/// Reads the accounts of the uids `found` wants by paging through the list, and returns what
/// was learnt of each of them.
pub(super) fn scan<P: Platform>(
    api: &CloudPe<'_, P>,
    mut found: Found,
    page_size: u64,
    max_in_flight: usize,
    retry: RetryPolicy,
    may_switch: bool,
) -> Found {
    // Enough pages for the wanted set (the sliding window keeps `max_in_flight` busy), bounded in
    // case CloudPe's list is far shorter than HostBill believes.
    let first_round = first_round_pages(found.uids().len() as u64, page_size, max_in_flight);
    let first_rows = (0..first_round).map(|i| i * page_size).collect();
    let mut pages = fetch(api, first_rows, found.uids(), page_size, max_in_flight, retry);

    let total = pages.iter().filter_map(|p| p.result.as_ref().ok()).map(|p| p.total_count).max();
    let Some(total) = total else {
        // Not a single page could be read: every wanted uid fails with the first page's error.
        let error = pages.remove(0).result.expect_err("no page succeeded");
        found.fill_unknown(|_| Some(Err(error.clone())));
        return found;
    };
    let rest: Vec<u64> = (first_round..total.div_ceil(page_size)).map(|i| i * page_size).collect();
    collect(&mut found, &mut pages);
    let unresolved: Vec<u64> = found.unknown().collect();
    if may_switch && rest.len() > unresolved.len() {
        api.platform_log(
            LogLevel::Info,
            &format!(
                "sync: CloudPe lists {total} accounts; {} exact lookups are cheaper than {} more pages",
                unresolved.len(),
                rest.len()
            ),
        );
        found.extend(lookups::exact(api, &unresolved, max_in_flight, retry));
        return found;
    }
    let mut rest = fetch(api, rest, found.uids(), page_size, max_in_flight, retry);
    collect(&mut found, &mut rest);
    pages.extend(rest);
    pages.sort_by_key(|p| p.start_row);

    let failed: Vec<&Page> = pages.iter().filter(|p| p.result.is_err()).collect();
    for page in &failed {
        if let Err(e) = &page.result {
            api.platform_log(
                LogLevel::Warn,
                &format!("sync: the page at startRow {} could not be read: {}", page.start_row, e.message()),
            );
        }
    }
    let mut gaps = uncovered(&pages, &found);
    if let Some((low, high)) = list_changed(&pages) {
        // Rows shifted between pages: a user may have moved onto a page read before the shift
        // and been missed. Whoever was not found is looked up by itself, never assumed absent.
        let missed: Vec<u64> = found.unknown().filter(|uid| !gaps.contains_key(uid)).collect();
        api.platform_log(
            LogLevel::Info,
            &format!(
                "sync: CloudPe's list changed while it was read (totalCount {low} to {high}); looking up the {} users not found",
                missed.len()
            ),
        );
        gaps.extend(missed.into_iter().map(|uid| (uid, CHANGED_LIST)));
    }
    // Every page that could hold them was read: the uids neither found nor in a gap are absent.
    found.fill_unknown(|uid| (!gaps.contains_key(&uid)).then_some(Ok(None)));
    if gaps.is_empty() {
        return found;
    }
    let gap_uids: Vec<u64> = gaps.keys().copied().collect();
    if gap_uids.len() <= MAX_GAP_LOOKUPS {
        api.platform_log(
            LogLevel::Info,
            &format!("sync: looking up {} users one by one to cover failed pages or a changed list", gap_uids.len()),
        );
        found.extend(lookups::exact(api, &gap_uids, max_in_flight, retry));
    } else {
        for (uid, page) in gaps {
            let reason = if page == CHANGED_LIST {
                "CloudPe's list changed while it was read, and too many users were missing to look each up".to_string()
            } else {
                let error = pages.iter().find(|p| p.start_row == page).and_then(|p| p.result.as_ref().err()).cloned();
                format!(
                    "the page of CloudPe's account list that may hold user {uid} (startRow {page}) could not be read: {}",
                    error.map(|e| e.message()).unwrap_or_default()
                )
            };
            found.insert(uid, Err(ModuleError::Transport(reason)));
        }
    }
    found
}

/// The gap marker of a uid missed because the list changed (not a failed page's start row).
const CHANGED_LIST: u64 = u64::MAX;

/// The lowest and highest `totalCount` of the pages read, when they differ: users were added or
/// removed while the list was paged.
fn list_changed(pages: &[Page]) -> Option<(u64, u64)> {
    let totals = pages.iter().filter_map(|p| p.result.as_ref().ok()).map(|p| p.total_count);
    let (low, high) = totals.fold((u64::MAX, 0), |(low, high), t| (low.min(t), high.max(t)));
    (low < high).then_some((low, high))
}

/// Reads the pages at `start_rows`, keeping of each the accounts in `wanted` (sorted).
fn fetch<P: Platform>(
    api: &CloudPe<'_, P>,
    start_rows: Vec<u64>,
    wanted: &[u64],
    page_size: u64,
    max_in_flight: usize,
    retry: RetryPolicy,
) -> Vec<Page> {
    let results = api.pages(&start_rows, page_size, max_in_flight, retry, |page| PageSummary::of(page, wanted));
    start_rows.into_iter().zip(results).map(|(start_row, result)| Page { start_row, result }).collect()
}

/// Moves the wanted accounts of `pages` into `found`. A uid listed twice with different data
/// (the list shifted while it was paged) is kept as an error: it is ambiguous.
fn collect(found: &mut Found, pages: &mut [Page]) {
    for page in pages {
        let Ok(page) = &mut page.result else { continue };
        for (slot, account) in std::mem::take(&mut page.wanted) {
            match found.at(slot) {
                Some(Ok(Some(seen))) if *seen != account => {
                    let error = ModuleError::Unexpected(format!(
                        "CloudPe listed user {} twice with different states while the list was read: not decided",
                        account.uid
                    ));
                    found.set(slot, Err(error));
                }
                Some(_) => {}
                None => found.set(slot, Ok(Some(account))),
            }
        }
    }
}

/// Wanted uids not found that may lie on a failed page, with that page's start row. When every
/// page is sorted by uid and pages follow each other, a failed page can only hold uids between
/// its successful neighbours; otherwise any missing uid may be on it.
fn uncovered(pages: &[Page], found: &Found) -> BTreeMap<u64, u64> {
    let Some(first_failed) = pages.iter().find(|p| p.result.is_err()) else { return BTreeMap::new() };
    let missing = found.unknown();
    let bounds: Vec<Option<(u64, u64)>> = pages.iter().map(|p| p.result.as_ref().ok()?.bounds).collect();
    if !ordered(pages) {
        return missing.map(|uid| (uid, first_failed.start_row)).collect();
    }
    missing
        .filter_map(|uid| {
            pages.iter().enumerate().filter(|(_, p)| p.result.is_err()).find_map(|(i, p)| {
                let below = bounds[..i].iter().rev().find_map(|b| *b).map_or(0, |(_, last)| last);
                let above = bounds[i + 1..].iter().find_map(|b| *b).map_or(u64::MAX, |(first, _)| first);
                (below < uid && uid < above).then_some((uid, p.start_row))
            })
        })
        .collect()
}

/// Whether the successful pages are sorted by uid, each within itself and against the next.
fn ordered(pages: &[Page]) -> bool {
    let read: Vec<&PageSummary> = pages.iter().filter_map(|p| p.result.as_ref().ok()).collect();
    let bounds: Vec<(u64, u64)> = read.iter().filter_map(|p| p.bounds).collect();
    read.iter().all(|p| p.sorted) && bounds.windows(2).all(|w| w[0].1 < w[1].0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{FakeCloudPe, settings};
    use crate::wit::SyncOptions;

    fn users(n: u64) -> Vec<(u64, i64, Option<bool>)> {
        (1..=n).map(|uid| (uid * 10, if uid % 3 == 0 { 2 } else { 1 }, None)).collect()
    }

    fn run(cloud: &FakeCloudPe, wanted: &[u64], may_switch: bool) -> Found {
        let s = settings("https://api.example.com");
        let api = CloudPe::new(&s, cloud);
        let o = SyncOptions::default();
        let mut wanted = wanted.to_vec();
        wanted.sort_unstable();
        scan(&api, Found::new(wanted), 10, o.max_concurrency as usize, RetryPolicy::attempts(2), may_switch)
    }

    #[test]
    fn finds_every_wanted_uid_across_pages() {
        let cloud = FakeCloudPe::new(&users(95));
        let wanted = [10, 20, 300, 950, 955];
        let got = run(&cloud, &wanted, false);
        assert_eq!(got[300].as_ref().unwrap().as_ref().unwrap().status, Some(2));
        assert!(got[950].as_ref().unwrap().is_some());
        assert_eq!(got[955], Ok(None), "absent uid, every page read: certainly absent");
        // 95 accounts in pages of 10: 10 pages, no more
        assert_eq!(cloud.requests.borrow().len(), 10);
    }

    #[test]
    fn a_failed_page_is_retried_then_its_gap_is_looked_up() {
        let cloud = FakeCloudPe::new(&users(95));
        cloud.fail_page(30, 99); // startRow 30 fails forever (uids 310..400)
        let wanted = [20, 350, 355, 800];
        let got = run(&cloud, &wanted, false);
        assert!(got[350].as_ref().unwrap().is_some(), "found by an exact lookup: {:?}", got[350]);
        assert_eq!(got[355], Ok(None), "exact lookup says absent");
        assert!(got[800].as_ref().unwrap().is_some());
        let requests = cloud.requests.borrow();
        let page_30 = requests.iter().filter(|r| r.form_body.as_deref().unwrap_or("").contains("startRow=30&")).count();
        assert_eq!(page_30, 2, "the failed page was tried twice (max_attempts 2)");
        let lookups =
            requests.iter().filter(|r| r.form_body.as_deref().unwrap_or("").contains("filterField=uid")).count();
        assert_eq!(lookups, 2, "only 350 and 355 lie in the gap");
    }

    #[test]
    fn without_any_page_every_uid_fails() {
        let cloud = FakeCloudPe::new(&users(20));
        cloud.fail_all_with(502);
        let got = run(&cloud, &[10, 20], false);
        assert_eq!(got.known().count(), 2, "{got:?}");
        assert!(
            got.known().all(|(_, l)| matches!(l, Err(ModuleError::Transport(m)) if m.contains("HTTP 502"))),
            "{got:?}"
        );
    }

    #[test]
    fn switches_to_lookups_when_the_list_is_much_longer() {
        let cloud = FakeCloudPe::new(&users(500)); // 50 pages
        let got = run(&cloud, &[10, 4990, 5000, 3330, 1230, 7, 8, 9, 11, 12, 13, 14], true);
        assert!(got[4990].as_ref().unwrap().is_some());
        assert_eq!(got[7], Ok(None));
        let requests = cloud.requests.borrow().len();
        assert!(requests < 30, "{requests} requests: should have switched to lookups");
    }
}
