//! Exact lookups: one filtered `getaccounts` per uid, concurrently, keeping only the element
//! whose uid equals the requested one.

use super::Lookup;
use crate::api::{AccountsPage, ApiMethod, CloudPe, LOOKUP_PAGE_SIZE, RetryPolicy};
use crate::transport::Platform;

/// Looks up each uid. When a substring filter matched more than a page and the exact uid was not
/// on the first one, its further pages are read too.
pub(super) fn exact<P: Platform>(
    api: &CloudPe<'_, P>,
    uids: &[u64],
    max_in_flight: usize,
    retry: RetryPolicy,
) -> Vec<(u64, Lookup)> {
    api.expect_requests(uids.len() as u32);
    let requests: Vec<_> = uids
        .iter()
        .map(|uid| {
            api.request(ApiMethod::GetAccounts, &api.page_params(Some(("uid", uid.to_string())), 0, LOOKUP_PAGE_SIZE))
        })
        .collect();
    let pages = api.fetch_all::<AccountsPage>(ApiMethod::GetAccounts, &requests, max_in_flight, retry);
    uids.iter()
        .zip(pages)
        .map(|(&uid, page)| {
            let found = page.and_then(|page| {
                let more = page.total_count > page.array.len() as u64;
                match page.array.into_iter().find(|a| a.uid == uid) {
                    Some(found) => Ok(Some(found)),
                    None if more => api.find_account(uid),
                    None => Ok(None),
                }
            });
            (uid, found)
        })
        .collect()
}
