//! What the host takes from a module through its imports, bounded.
//!
//! wasmtime lifts an import's strings and lists out of the module's memory whole before the host
//! function sees them (at most the hostcall fuel, the module's memory limit, per call), so the
//! host cannot cut a string before it is copied. Two rules bound what that can cost:
//! - nothing the host keeps holds on to a lifted allocation: a kept text is copied out at its
//!   bounded length ([`kept`]) and the lifted one is dropped at once (`String::truncate` would
//!   keep the whole allocation: 10,000 log records of a 16 MiB module reached 3.3 GB);
//! - the bytes lifted through one kind of import are counted against a [`LiftBudget`]; past it the
//!   import fails with [`OverBudget`], which stops the module and names the limit in the report.

use super::limits::NamedLimit;

/// Bytes the host copied out of the module through one kind of import, against a limit.
#[derive(Debug)]
pub struct LiftBudget {
    /// The limit's name in reports (`error.limit.name`).
    name: &'static str,
    /// What is counted, for the error ("log records and call records").
    what: &'static str,
    limit: usize,
    used: usize,
}

impl LiftBudget {
    /// A budget of `limit` bytes of `what`, named `name` in reports.
    pub const fn new(name: &'static str, what: &'static str, limit: usize) -> Self {
        LiftBudget { name, what, limit, used: 0 }
    }

    /// Counts `bytes` more lifted bytes; an error once the total is past the limit (every later
    /// charge fails too).
    pub fn charge(&mut self, bytes: usize) -> Result<(), OverBudget> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(OverBudget { name: self.name, what: self.what, limit: self.limit });
        }
        Ok(())
    }
}

/// A module that handed the host more than a [`LiftBudget`] allows: the run stops with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the module handed the host more than {} of {what} and was stopped", mib(*limit))]
pub struct OverBudget {
    pub name: &'static str,
    pub what: &'static str,
    pub limit: usize,
}

impl OverBudget {
    /// The limit, named for the report.
    pub fn named(&self) -> NamedLimit {
        NamedLimit { name: self.name, value: mib(self.limit) }
    }
}

fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Longest path and query a module may give a request (`outgoing-request.set-path-with-query`):
/// web servers refuse URLs far shorter (8 KiB is nginx's default header buffer). wasi-http keeps
/// the path of every request the module holds, host-side and outside the module's memory limit,
/// and checks only its syntax (the http crate takes URLs up to 65,534 bytes): 2,048 requests
/// kept with such a path were 128 MiB.
pub const MAX_PATH_WITH_QUERY_BYTES: usize = 8 * 1024;

/// Replaces wasi-http's `set-path-with-query` in `linker` by one that reads the module's string
/// in place (`WasmStr`: nothing is copied to measure it) and refuses one longer than
/// [`MAX_PATH_WITH_QUERY_BYTES`] as an invalid path, then hands a shorter one to wasi-http.
pub fn bound_request_paths<T: wasmtime_wasi_http::WasiHttpView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime::component::{Resource, WasmStr};
    use wasmtime_wasi_http::p2::bindings::http::types::{HostOutgoingRequest, OutgoingRequest};
    linker.allow_shadowing(true);
    let mut types = linker.instance("wasi:http/types@0.2.12")?;
    types.func_wrap(
        "[method]outgoing-request.set-path-with-query",
        |mut store, (request, path): (Resource<OutgoingRequest>, Option<WasmStr>)| {
            let path = match path {
                None => None,
                Some(path) => {
                    let text = path.to_str(&store)?;
                    if text.len() > MAX_PATH_WITH_QUERY_BYTES {
                        return Ok((Err(()),));
                    }
                    Some(text.into_owned())
                }
            };
            let state: &mut T = store.data_mut();
            Ok((HostOutgoingRequest::set_path_with_query(&mut state.http(), request, path)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// At most `max` bytes of `text` (cut on a character boundary, then `marker` appended) in an
/// allocation of its own size: `text`, which may be as large as the module's memory, is dropped.
pub fn kept(text: String, max: usize, marker: &str) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut short = String::with_capacity(end + marker.len());
    short.push_str(&text[..end]);
    short.push_str(marker);
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_text_holds_only_its_bounded_length() {
        let lifted = "é".repeat(8 << 20);
        let short = kept(lifted, 4097, "…");
        assert_eq!(short.len(), 4096 + "…".len());
        assert!(short.capacity() <= 4096 + "…".len(), "capacity {}", short.capacity());
        assert_eq!(kept("short".to_string(), 10, "…"), "short");
    }

    #[test]
    fn a_budget_refuses_once_past_its_limit_and_names_it() {
        let mut budget = LiftBudget::new("log-bytes", "log and call records", 2 << 20);
        assert!(budget.charge(1 << 20).is_ok());
        assert!(budget.charge(1 << 20).is_ok());
        let over = budget.charge(1).unwrap_err();
        assert_eq!(over.named(), NamedLimit { name: "log-bytes", value: "2 MiB".into() });
        assert_eq!(
            over.to_string(),
            "the module handed the host more than 2 MiB of log and call records and was stopped"
        );
        assert!(budget.charge(0).is_err(), "a budget once exceeded stays exceeded");
        assert_eq!(budget.used, (2 << 20) + 1);
    }
}
