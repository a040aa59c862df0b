//! The CloudPe calls this module makes: where each request is built and each reply is read.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::time::Duration;

use serde::Deserialize;

use crate::config::Settings;
use crate::envelope::{self, Reply};
use crate::inferred::{self, CreateVariant};
use crate::transport::{FailureKind, Flow, HttpMethod, HttpRequest, HttpResponse, Platform, TransportError};
use crate::wit::{ApiCall, FactParam, LogLevel, ModuleError, RemoteError};

/// A CloudPe API method: its service path, name and HTTP verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMethod {
    GetChecksum,
    GetAccounts,
    SetAccountStatus,
    /// A user's billing history in buckets (hours): the usage operation.
    GetBillingHistory,
    /// The platform's groups ([`inferred::GET_GROUPS`]).
    GetGroups,
    /// Moves one user to a group ([`inferred::SET_GROUP`]).
    SetGroup,
    /// One user by login ([`inferred::GET_USER_INFO`]): only probed.
    GetUserInfo,
    /// One of the creation calls ([`inferred::CREATE_VARIANTS`]).
    CreateAccount(CreateVariant),
}

impl ApiMethod {
    /// The service path and the method name, as in `…/1.0/{service}/rest/{name}`.
    fn path(self) -> (&'static str, &'static str) {
        match self {
            ApiMethod::GetChecksum => ("marketplace/app", "getchecksum"),
            ApiMethod::GetAccounts => ("billing/account", "getaccounts"),
            ApiMethod::SetAccountStatus => ("billing/account", "setaccountstatus"),
            ApiMethod::GetBillingHistory => ("billing/account", envelope::BILLING_HISTORY_METHOD),
            ApiMethod::GetGroups => inferred::GET_GROUPS,
            ApiMethod::SetGroup => inferred::SET_GROUP,
            ApiMethod::GetUserInfo => inferred::GET_USER_INFO,
            ApiMethod::CreateAccount(variant) => variant.path,
        }
    }

    fn service(self) -> &'static str {
        self.path().0
    }

    /// The method name as it appears in the URL.
    pub fn name(self) -> &'static str {
        self.path().1
    }

    /// The method as a capability report names it: `billing/groupquota/rest/getgroups`.
    pub fn rest_path(self) -> String {
        let (service, name) = self.path();
        format!("{service}/rest/{name}")
    }

    /// Every call is a POST with a form body, so the session token never sits in a URL (where
    /// access logs of CloudPe, proxies and WAFs, and error pages that echo the URL, would keep
    /// it). The platform treats GET and POST alike (see docs/cloudpe-api.md).
    fn http_method(self) -> HttpMethod {
        HttpMethod::Post
    }
}

/// An account element of `getaccounts`, as the module keeps it: a sync holds one per wanted user
/// (a million, for a large App), so its three texts share one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAccount {
    pub uid: u64,
    pub status: Option<i64>,
    pub is_enabled: Option<bool>,
    /// The email, group name and creation date, one after the other.
    texts: Box<str>,
    /// Where each of the three ends in `texts`; `u32::MAX` for an absent one.
    ends: [u32; 3],
}

/// An account element of `getaccounts` as CloudPe lists it, its texts borrowed from the reply
/// where they hold no escapes (a page lists thousands; each copy was an allocation). Fields this
/// module does not use are ignored.
#[derive(Deserialize)]
struct ListedAccount<'a> {
    uid: u64,
    #[serde(default, borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(default)]
    status: Option<i64>,
    #[serde(default, rename = "isEnabled")]
    is_enabled: Option<bool>,
    /// The user's group: an object `{"name": ...}` (a bare name is accepted too).
    #[serde(default, borrow, deserialize_with = "group_name")]
    group: Option<Cow<'a, str>>,
    /// `yyyy-MM-dd HH:mm:ss`, as CloudPe prints it.
    #[serde(default, borrow, rename = "createdOn")]
    created_on: Option<Cow<'a, str>>,
}

impl<'de> Deserialize<'de> for RemoteAccount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ListedAccount::deserialize(d).map(RemoteAccount::from)
    }
}

impl From<ListedAccount<'_>> for RemoteAccount {
    fn from(a: ListedAccount<'_>) -> Self {
        let parts = [&a.email, &a.group, &a.created_on];
        let mut texts = String::with_capacity(parts.iter().filter_map(|t| t.as_ref()).map(|t| t.len()).sum());
        let mut ends = [u32::MAX; 3];
        for (end, text) in ends.iter_mut().zip(parts) {
            if let Some(text) = text {
                texts.push_str(text);
                *end = u32::try_from(texts.len()).unwrap_or(u32::MAX - 1);
            }
        }
        RemoteAccount { uid: a.uid, status: a.status, is_enabled: a.is_enabled, texts: texts.into(), ends }
    }
}

impl RemoteAccount {
    fn text(&self, which: usize) -> Option<&str> {
        let end = self.ends[which];
        if end == u32::MAX {
            return None;
        }
        let start = self.ends[..which].iter().rev().find(|&&e| e != u32::MAX).map_or(0, |&e| e as usize);
        self.texts.get(start..end as usize)
    }

    pub fn email(&self) -> Option<&str> {
        self.text(0)
    }

    /// The user's group name.
    pub fn group(&self) -> Option<&str> {
        self.text(1)
    }

    /// `yyyy-MM-dd HH:mm:ss`, as CloudPe prints it.
    pub fn created_on(&self) -> Option<&str> {
        self.text(2)
    }
}

/// The name of a `group` value: `{"name": "default"}` or `"default"`; anything else is no name.
/// Read in place, without a `serde_json::Value` per account (a page holds thousands).
fn group_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_any(GroupName { top: true })
}

/// Visits a `group` value (`top`) or its `name` (not `top`: a nested object is no name).
struct GroupName {
    top: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for GroupName {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for GroupName {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a group object or name")
    }
    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(name)))
    }
    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(name.to_string())))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if self.top && key == "name" && name.is_none() {
                name = map.next_value_seed(GroupName { top: false })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(name)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// One page of `getaccounts`, with its envelope (read in the same pass: see [`Reply`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountsPage {
    #[serde(rename = "totalCount", default)]
    pub total_count: u64,
    #[serde(default)]
    pub array: Vec<RemoteAccount>,
    #[serde(default)]
    result: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

impl Reply for AccountsPage {
    fn envelope(&self) -> Option<(Option<i64>, Option<&str>)> {
        Some((self.result, self.error.as_deref()))
    }
}

impl Reply for ChecksumReply {}
impl Reply for Empty {}
impl Reply for GroupsReply {}

/// A `getgroups` reply: its `array` is read element by element ([`group_names`]), as its shape
/// is not documented.
#[derive(Deserialize)]
struct GroupsReply {
    #[serde(default)]
    array: Option<Vec<serde_json::Value>>,
}

/// The group names of a `getgroups` list: each element an object with a string `name`, or a bare
/// name; empty names are skipped, a name listed again is kept once, in CloudPe's order. Any
/// other element is an error that shows it.
pub fn group_names(array: &[serde_json::Value]) -> Result<Vec<String>, ModuleError> {
    let mut names: Vec<String> = Vec::with_capacity(array.len());
    for element in array {
        let name = match element {
            serde_json::Value::String(name) => Some(name.as_str()),
            serde_json::Value::Object(fields) => fields.get("name").and_then(serde_json::Value::as_str),
            _ => None,
        };
        let Some(name) = name else {
            let mut shown = element.to_string();
            if let Some((cut, _)) = shown.char_indices().nth(80) {
                shown.truncate(cut);
                shown.push('…');
            }
            return Err(ModuleError::Unexpected(format!(
                "CloudPe's group list (getgroups) holds {shown}, which is neither a group name nor an object with a `name`"
            )));
        };
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

#[derive(Deserialize)]
struct ChecksumReply {
    #[serde(default)]
    checksum: Option<String>,
}

#[derive(Deserialize)]
struct Empty {}

/// Whether two emails are the same address as CloudPe compares them: trimmed, case-insensitive.
pub fn same_email(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a.eq_ignore_ascii_case(b) || (!(a.is_ascii() && b.is_ascii()) && a.to_lowercase() == b.to_lowercase())
}

/// What one creation call got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateReply {
    /// `result` 0: the user exists now (the reply carries no uid).
    Created,
    /// HTTP 404: this platform has no such path.
    NoSuchPath,
    /// Refused or failed. `maybe_applied`: the request may have reached CloudPe and been
    /// carried out (a timeout, a reset, a 5xx, CloudPe's internal-error or timeout codes).
    Failed { error: ModuleError, maybe_applied: bool },
}

/// Attempts of a single call (operations on one account, connection checks).
pub const CALL_ATTEMPTS: u32 = 3;

/// The first round of a paged read fetches at most this many windows of concurrent pages.
const FIRST_ROUND_WINDOWS: u64 = 4;

/// Pages the first round of a paged read fetches, before `totalCount` is known: as many as
/// `expected_rows` could fill, at least one, at most [`FIRST_ROUND_WINDOWS`] windows of
/// `max_in_flight` (CloudPe's list may be far shorter than HostBill believes).
pub fn first_round_pages(expected_rows: u64, page_size: u64, max_in_flight: usize) -> u64 {
    expected_rows.div_ceil(page_size.max(1)).clamp(1, FIRST_ROUND_WINDOWS * max_in_flight.max(1) as u64)
}

/// Filtered lookups are read in pages of this many matches (a uid filter may match many uids).
pub const LOOKUP_PAGE_SIZE: u64 = 100;

/// A CloudPe API client over a [`Platform`]. Counts the requests it makes.
pub struct CloudPe<'a, P: Platform> {
    settings: &'a Settings,
    platform: &'a P,
    requests: Cell<u32>,
    /// Requests expected in the current long operation, for progress reports.
    expected: Cell<u32>,
    /// Whether any request reached the API (connected, whatever happened next): until one does,
    /// a round of requests that could not connect means the API is down.
    reached: Cell<bool>,
    /// Why no further request is worth sending (credentials rejected, API unreachable).
    halt: RefCell<Option<ModuleError>>,
    /// A secret of the call in flight besides the session (a new user's password), removed like
    /// the session from what CloudPe answers, should it echo it.
    call_secret: RefCell<Option<String>>,
}

/// How failed reads are retried: exponential backoff from `base_delay`, capped at `max_delay`,
/// each delay drawn uniformly from its upper half (jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = no retry).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// `max_attempts` attempts with the default delays (200 ms doubling, at most 3 s).
    pub fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
        }
    }

    /// The delay before retry number `retry` (1-based), given a random number.
    pub fn delay(&self, retry: u32, random: u64) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(self.max_delay);
        let half = ceiling / 2;
        let jitter_ns = random % (half.as_nanos() as u64 + 1);
        half + Duration::from_nanos(jitter_ns)
    }
}

/// The error of a request the module's time did not allow.
pub fn deadline_error() -> ModuleError {
    ModuleError::Transport(DEADLINE_MESSAGE.to_string())
}

/// The words of [`deadline_error`].
pub const DEADLINE_MESSAGE: &str =
    "not read before the deadline: the module stopped sending requests in time to return what it had";

/// Whether an answer stops every request of the operation: a rejected credential, or a method the
/// token may not call (the same token goes with every request: none can succeed).
fn halts_everything(error: &ModuleError) -> bool {
    matches!(
        error,
        ModuleError::Authentication(_)
            | ModuleError::RemoteApi(RemoteError { code: envelope::RESULT_PERMISSION_DENIED, .. })
    )
}

/// Whether a failed read is worth repeating: transport failures and CloudPe's internal-error and
/// timeout codes are; authentication, configuration and not-found answers are not.
pub fn is_retryable(error: &ModuleError) -> bool {
    match error {
        ModuleError::Transport(_) => true,
        ModuleError::RemoteApi(RemoteError { code, .. }) => {
            *code == envelope::RESULT_INTERNAL_ERROR || *code == envelope::RESULT_TIMEOUT
        }
        _ => false,
    }
}

impl<'a, P: Platform> CloudPe<'a, P> {
    pub fn new(settings: &'a Settings, platform: &'a P) -> Self {
        CloudPe {
            settings,
            platform,
            requests: Cell::new(0),
            expected: Cell::new(0),
            reached: Cell::new(false),
            halt: RefCell::new(None),
            call_secret: RefCell::new(None),
        }
    }

    /// Announces `n` more requests of the current long operation (for progress reports).
    pub fn expect_requests(&self, n: u32) {
        self.expected.set(self.expected.get() + n);
        self.platform.progress(self.requests.get(), self.expected.get().max(self.requests.get()));
    }

    /// Logs through the platform.
    pub fn platform_log(&self, level: LogLevel, message: &str) {
        self.platform.log(level, message);
    }

    /// HTTP requests made so far.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// Builds the request for `method` with `params` (authentication is added here).
    pub fn request(&self, method: ApiMethod, params: &[(&str, String)]) -> HttpRequest {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("appid", &self.settings.appid);
        form.append_pair("session", &self.settings.session);
        for (name, value) in params {
            form.append_pair(name, value);
        }
        let encoded = form.finish();
        let path = self.settings.base_url.method_path(method.service(), method.name());
        let (path_and_query, form_body) = match method.http_method() {
            HttpMethod::Get => (format!("{path}?{encoded}"), None),
            HttpMethod::Post => (path, Some(encoded)),
        };
        HttpRequest {
            method: method.http_method(),
            scheme: self.settings.base_url.scheme,
            authority: self.settings.base_url.authority.clone(),
            path_and_query,
            form_body,
        }
    }

    /// Sends one call and parses its reply, retrying transient failures. Every method this
    /// module calls is safe to repeat: reads, and `setaccountstatus`, which is idempotent
    /// (setting the status an account already has succeeds).
    fn call<T: Reply>(&self, method: ApiMethod, params: &[(&str, String)]) -> Result<T, ModuleError> {
        let request = self.request(method, params);
        self.fetch_all(method, std::slice::from_ref(&request), 1, RetryPolicy::attempts(CALL_ATTEMPTS))
            .pop()
            .expect("one result per request")
    }

    /// Whether any request of this operation reached the API (if none did, no write was applied).
    pub fn reached(&self) -> bool {
        self.reached.get()
    }

    /// Why the operation sent no further request, if it stopped early: the credentials were
    /// rejected, or a first round of requests found the API unreachable.
    pub fn halted(&self) -> Option<ModuleError> {
        self.halt.borrow().clone()
    }

    /// Sends prepared requests concurrently (at most `max_in_flight` at once), reporting progress
    /// (and each exchange to the call log, when the App keeps one), and hands each response to
    /// `on_response` as it completes; stops when it breaks.
    pub fn send_each(
        &self,
        method: ApiMethod,
        requests: &[HttpRequest],
        max_in_flight: usize,
        on_response: &mut dyn FnMut(usize, Result<HttpResponse, TransportError>) -> Flow,
    ) {
        self.platform.send_each(requests, max_in_flight.max(1), &mut |index, response, elapsed| {
            if response.as_ref().is_ok() || response.as_ref().is_err_and(|e| e.kind == FailureKind::Other) {
                self.reached.set(true);
            }
            if !matches!(&response, Err(e) if e.kind == FailureKind::Deadline) {
                self.requests.set(self.requests.get() + 1);
            }
            let done = self.requests.get();
            self.platform.progress(done, self.expected.get().max(done));
            self.log_exchange(method, &response);
            if self.settings.call_log {
                self.record_call(method, &requests[index], &response, elapsed);
            }
            on_response(index, response)
        });
    }

    /// Records one exchange in the call log. Secrets are masked by parameter name (and in the
    /// reply by member name, before it is cut: `envelope::reply_start`), to a fixed length,
    /// whatever their value; the reply is scrubbed too, then cut.
    fn record_call(
        &self,
        method: ApiMethod,
        request: &HttpRequest,
        response: &Result<HttpResponse, TransportError>,
        elapsed: Duration,
    ) {
        let params: Vec<(Cow<str>, Cow<str>)> =
            form_urlencoded::parse(request.form_body.as_deref().unwrap_or("").as_bytes())
                .map(|(name, value)| {
                    let value = if envelope::is_secret_name(&name) { Cow::Borrowed(envelope::MASK) } else { value };
                    (name, value)
                })
                .collect();
        let params: Vec<FactParam> = params.iter().map(|(name, value)| FactParam { name, value }).collect();
        let (http_status, result_code, reply) = match response {
            Ok(r) => (
                Some(r.status),
                envelope::result_code(&r.body),
                self.without_call_secret(envelope::reply_start(&r.body, &self.settings.session)),
            ),
            Err(e) => (None, None, format!("no reply: {}", envelope::scrub(&e.message, &self.settings.session))),
        };
        self.platform.record_call(ApiCall {
            method: method.name(),
            params: &params,
            http_status,
            duration_ms: u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX),
            result_code,
            reply: &reply,
        });
    }

    /// Sends read requests concurrently and parses each reply as it arrives, retrying the
    /// retryable failures (all still failing ones together, after one backoff delay) up to
    /// `retry.max_attempts`, while the module's time allows.
    ///
    /// Two answers stop everything: a rejected credential (the same one goes with every
    /// request), and, when there are more requests than one round (`max_in_flight`), a first
    /// round in which not one request could connect while none ever has: the API is
    /// unreachable. Then [`CloudPe::halted`] says why, and the requests not answered get that
    /// error. A single round is retried as usual (there is nothing to save by stopping it), but
    /// if its last attempt could not connect either, while no request ever has, the API is
    /// unreachable just the same: the operation halts, whatever read plan sent the round.
    pub fn fetch_all<T: Reply>(
        &self,
        method: ApiMethod,
        requests: &[HttpRequest],
        max_in_flight: usize,
        retry: RetryPolicy,
    ) -> Vec<Result<T, ModuleError>> {
        self.fetch_all_kept(method, requests, max_in_flight, retry, |reply: T| reply)
    }

    /// [`CloudPe::fetch_all`], keeping of each reply only what `keep` makes of it, as soon as it
    /// is parsed: a sync pages through the whole list and needs only the wanted accounts.
    pub fn fetch_all_kept<T: Reply, U>(
        &self,
        method: ApiMethod,
        requests: &[HttpRequest],
        max_in_flight: usize,
        retry: RetryPolicy,
        mut keep: impl FnMut(T) -> U,
    ) -> Vec<Result<U, ModuleError>> {
        self.fetch_all_read(method, requests, max_in_flight, retry, |_, response| {
            self.read::<T>(method, response).map(&mut keep)
        })
    }

    /// [`CloudPe::fetch_all`], each response read by `read` (given the request's index): for a
    /// reply that is not read by serde alone (the usage's exact decimals).
    pub fn fetch_all_read<U>(
        &self,
        method: ApiMethod,
        requests: &[HttpRequest],
        max_in_flight: usize,
        retry: RetryPolicy,
        mut read: impl FnMut(usize, Result<HttpResponse, TransportError>) -> Result<U, ModuleError>,
    ) -> Vec<Result<U, ModuleError>> {
        let mut results: Vec<Option<Result<U, ModuleError>>> = (0..requests.len()).map(|_| None).collect();
        let first_round = requests.len().min(max_in_flight.max(1));
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        // The last round sent, and how many of its requests could not connect (while none ever has).
        let mut last_round = (0, 0);
        let mut last_failure = String::new();
        let mut attempts = 0;
        for attempt in 1..=retry.max_attempts {
            if pending.is_empty() || self.halted().is_some() {
                break;
            }
            if attempt > 1 {
                let delay = retry.delay(attempt - 1, self.platform.random_u64());
                if self.platform.time_left().is_some_and(|left| left <= delay) {
                    self.platform.log(
                        LogLevel::Warn,
                        &format!(
                            "{}: {} failed requests not retried: the deadline is near",
                            method.name(),
                            pending.len()
                        ),
                    );
                    break;
                }
                self.platform.log(
                    LogLevel::Warn,
                    &format!(
                        "{}: retrying {} failed requests in {} ms (attempt {attempt} of {})",
                        method.name(),
                        pending.len(),
                        delay.as_millis(),
                        retry.max_attempts
                    ),
                );
                self.expect_requests(pending.len() as u32);
                self.platform.sleep(delay);
            }
            let batch: Vec<HttpRequest> = pending.iter().map(|&i| requests[i].clone()).collect();
            let mut still_failing = Vec::new();
            let mut unreachable = 0;
            attempts = attempt;
            self.send_each(method, &batch, max_in_flight, &mut |at, response| {
                let index = pending[at];
                let connect_failure = matches!(&response, Err(e) if e.kind == FailureKind::Unreachable);
                let parsed = read(index, response);
                if let Err(e) = &parsed
                    && halts_everything(e)
                {
                    // The same credentials go with every request: none can succeed.
                    *self.halt.borrow_mut() = Some(e.clone());
                    results[index] = Some(parsed);
                    return Flow::Break(());
                }
                if connect_failure && !self.reached.get() {
                    unreachable += 1;
                    if let Err(e) = &parsed {
                        last_failure = e.message();
                    }
                    if unreachable >= first_round && requests.len() > first_round {
                        let error = ModuleError::Transport(format!(
                            "CloudPe at {} is unreachable: none of the first {first_round} requests could connect ({}); nothing more was sent",
                            self.settings.base_url.origin(),
                            parsed.as_ref().err().map(ModuleError::message).unwrap_or_default()
                        ));
                        self.platform.log(LogLevel::Error, &error.message());
                        *self.halt.borrow_mut() = Some(error);
                        results[index] = Some(parsed);
                        return Flow::Break(());
                    }
                }
                if attempt < retry.max_attempts && matches!(&parsed, Err(e) if is_retryable(e)) {
                    still_failing.push(index);
                }
                results[index] = Some(parsed);
                Flow::Continue(())
            });
            last_round = (batch.len(), unreachable);
            still_failing.sort_unstable();
            pending = still_failing;
        }
        if self.halted().is_none() && !self.reached.get() && last_round.0 > 0 && last_round.1 == last_round.0 {
            // Every request of the last round failed to connect, and none ever connected: the
            // same first-round rule, after the retries a single round is allowed.
            let error = ModuleError::Transport(format!(
                "CloudPe at {} is unreachable: none of the {} requests could connect in {attempts} attempt{} ({last_failure}); nothing more was sent",
                self.settings.base_url.origin(),
                last_round.0,
                if attempts == 1 { "" } else { "s" },
            ));
            self.platform.log(LogLevel::Error, &error.message());
            *self.halt.borrow_mut() = Some(error);
        }
        let halt = self.halted();
        results
            .into_iter()
            .map(|r| match r {
                Some(result) => result,
                None => Err(halt.clone().unwrap_or_else(deadline_error)),
            })
            .collect()
    }

    /// A reply to `method` judged by its envelope (see [`envelope::parse`]), returned whole for
    /// its caller to read.
    pub fn judged(
        &self,
        method: ApiMethod,
        response: Result<HttpResponse, TransportError>,
    ) -> Result<HttpResponse, ModuleError> {
        let response = self.read_transport(method, response)?;
        envelope::parse::<Empty>(method.name(), &response, &self.settings.session)?;
        Ok(response)
    }

    fn read_transport(
        &self,
        method: ApiMethod,
        response: Result<HttpResponse, TransportError>,
    ) -> Result<HttpResponse, ModuleError> {
        let origin = self.settings.base_url.origin();
        response.map_err(|e| {
            if e.kind == FailureKind::Deadline {
                return deadline_error();
            }
            ModuleError::Transport(format!(
                "could not reach CloudPe at {origin} for {}: {}",
                method.name(),
                envelope::scrub(&e.message, &self.settings.session)
            ))
        })
    }

    /// Parses a reply to `method`.
    pub fn read<T: Reply>(
        &self,
        method: ApiMethod,
        response: Result<HttpResponse, TransportError>,
    ) -> Result<T, ModuleError> {
        let response = self.read_transport(method, response)?;
        envelope::parse(method.name(), &response, &self.settings.session)
    }

    fn log_exchange(&self, method: ApiMethod, response: &Result<HttpResponse, TransportError>) {
        let line = match response {
            Ok(r) => format!("{} -> HTTP {} ({} bytes)", method.name(), r.status, r.body.len()),
            Err(e) => format!("{} -> failed: {}", method.name(), envelope::scrub(&e.message, &self.settings.session)),
        };
        self.platform.log(LogLevel::Debug, &line);
    }

    /// `getchecksum`: proves the API answers (it may accept a bad session; see docs/cloudpe-api.md, "Methods").
    pub fn checksum(&self) -> Result<String, ModuleError> {
        let reply: ChecksumReply = self.call(ApiMethod::GetChecksum, &[])?;
        Ok(reply.checksum.unwrap_or_default())
    }

    /// One page of the account list, optionally filtered.
    pub fn accounts_page(
        &self,
        filter: Option<(&str, String)>,
        start_row: u64,
        count: u64,
    ) -> Result<AccountsPage, ModuleError> {
        self.call(ApiMethod::GetAccounts, &self.page_params(filter, start_row, count))
    }

    /// Parameters of a `getaccounts` page.
    pub fn page_params(
        &self,
        filter: Option<(&str, String)>,
        start_row: u64,
        count: u64,
    ) -> Vec<(&'static str, String)> {
        let mut params = Vec::with_capacity(6);
        if let Some((field, value)) = filter {
            params.push(("filterField", field.to_string()));
            params.push(("filterValue", value));
        }
        params.push(("orderField", "uid".to_string()));
        params.push(("orderDirection", "ASC".to_string()));
        params.push(("startRow", start_row.to_string()));
        params.push(("resultCount", count.to_string()));
        params
    }

    /// The pages of the whole (unfiltered) account list starting at `start_rows`, read
    /// concurrently with retries, in the order asked; of each, what `keep` makes of it.
    pub fn pages<U>(
        &self,
        start_rows: &[u64],
        page_size: u64,
        max_in_flight: usize,
        retry: RetryPolicy,
        keep: impl FnMut(AccountsPage) -> U,
    ) -> Vec<Result<U, ModuleError>> {
        self.expect_requests(start_rows.len() as u32);
        let requests: Vec<_> = start_rows
            .iter()
            .map(|&row| self.request(ApiMethod::GetAccounts, &self.page_params(None, row, page_size)))
            .collect();
        self.fetch_all_kept(ApiMethod::GetAccounts, &requests, max_in_flight, retry, keep)
    }

    /// The account whose uid is exactly `uid`, or `None`. The uid filter may be a substring match
    /// (a lookup of 12 can return 120 first), so every page of matches is searched for an exact
    /// uid; the first page normally holds it, as results are ordered by uid.
    pub fn find_account(&self, uid: u64) -> Result<Option<RemoteAccount>, ModuleError> {
        let mut start_row = 0;
        loop {
            let page = self.accounts_page(Some(("uid", uid.to_string())), start_row, LOOKUP_PAGE_SIZE)?;
            let fetched = page.array.len() as u64;
            if let Some(found) = page.array.into_iter().find(|a| a.uid == uid) {
                return Ok(Some(found));
            }
            start_row += fetched;
            if fetched == 0 || start_row >= page.total_count {
                return Ok(None);
            }
        }
    }

    /// The users whose email is exactly `email` (trimmed, case-insensitive). CloudPe's email
    /// filter is a substring match (`bob@x.io` also lists `ann.bob@x.io.evil`), so every page of
    /// matches is read and only the exact ones are kept. Emails are unique on CloudPe, so more
    /// than one is a platform oddity the caller must refuse to choose from.
    pub fn find_by_email(&self, email: &str) -> Result<Vec<RemoteAccount>, ModuleError> {
        let wanted = email.trim();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut exact = Vec::new();
        let mut start_row = 0;
        loop {
            let page = self.accounts_page(Some(("email", wanted.to_string())), start_row, LOOKUP_PAGE_SIZE)?;
            let fetched = page.array.len() as u64;
            exact.extend(page.array.into_iter().filter(|a| a.email().is_some_and(|e| same_email(e, wanted))));
            start_row += fetched;
            if fetched == 0 || start_row >= page.total_count {
                // A user added meanwhile shifts the rows: one listed on two pages is one user.
                exact.sort_by_key(|a| a.uid);
                exact.dedup_by_key(|a| a.uid);
                return Ok(exact);
            }
        }
    }

    /// Sends one creation call by `variant`, once: it is not safe to repeat (a repeat whose first
    /// try was applied makes CloudPe answer "already exists", or worse), so the caller looks the
    /// email up after any failure instead. `password` is masked in the call log by its name.
    pub fn create_user(&self, variant: crate::inferred::CreateVariant, email: &str, password: &str) -> CreateReply {
        *self.call_secret.borrow_mut() = Some(password.to_string());
        let reply = self.send_create(variant, email, password);
        *self.call_secret.borrow_mut() = None;
        match reply {
            CreateReply::Failed { error, maybe_applied } => {
                CreateReply::Failed { error: scrub_error(error, password), maybe_applied }
            }
            other => other,
        }
    }

    /// `text` without the call's own secret ([`CloudPe::call_secret`]), if one is set.
    fn without_call_secret(&self, text: String) -> String {
        match self.call_secret.borrow().as_deref() {
            Some(secret) => envelope::scrub(&text, secret),
            None => text,
        }
    }

    fn send_create(&self, variant: crate::inferred::CreateVariant, email: &str, password: &str) -> CreateReply {
        let method = ApiMethod::CreateAccount(variant);
        let mut params: Vec<(&str, String)> = vec![("email", email.to_string()), ("password", password.to_string())];
        params.extend(variant.extra.iter().map(|&(name, value)| (name, value.to_string())));
        let request = self.request(method, &params);
        let mut unreachable = false;
        let result = self
            .fetch_all_read(method, std::slice::from_ref(&request), 1, RetryPolicy::attempts(1), |_, response| {
                unreachable = matches!(&response, Err(e) if e.kind == FailureKind::Unreachable);
                match response {
                    Ok(r) if r.status == 404 => Ok(false),
                    other => self.read::<Empty>(method, other).map(|_| true),
                }
            })
            .pop()
            .expect("one result per request");
        match result {
            Ok(true) => CreateReply::Created,
            Ok(false) => CreateReply::NoSuchPath,
            Err(error) => {
                let maybe_applied = !unreachable && is_retryable(&error);
                CreateReply::Failed { error, maybe_applied }
            }
        }
    }

    /// `getgroups`: the platform's group names, in CloudPe's order (see [`group_names`]).
    pub fn groups(&self) -> Result<Vec<String>, ModuleError> {
        let reply: GroupsReply = self.call(ApiMethod::GetGroups, &[])?;
        let array = reply.array.ok_or_else(|| {
            ModuleError::Unexpected("CloudPe's reply to getgroups has no `array` of groups".to_string())
        })?;
        group_names(&array)
    }

    /// `setgroup`: moves `uid` to group `name`, keeping its balance and bonus. Sent once, without
    /// retries: a failure is settled by reading the user back (`ops::lifecycle::groups`), never
    /// by sending the move again.
    pub fn set_group(&self, uid: u64, name: &str) -> Result<(), ModuleError> {
        let mut params = vec![("uid", uid.to_string()), (inferred::SET_GROUP_NAME_PARAM, name.to_string())];
        params.extend(inferred::SET_GROUP_KEEP_PARAMS.iter().map(|&(k, v)| (k, v.to_string())));
        let request = self.request(ApiMethod::SetGroup, &params);
        self.fetch_all::<Empty>(ApiMethod::SetGroup, std::slice::from_ref(&request), 1, RetryPolicy::attempts(1))
            .pop()
            .expect("one result per request")
            .map(|_| ())
    }

    /// `setaccountstatus` (POST): sets the CloudPe status of `uid`.
    pub fn set_account_status(&self, uid: u64, status: i64) -> Result<(), ModuleError> {
        self.call::<Empty>(ApiMethod::SetAccountStatus, &[("uid", uid.to_string()), ("status", status.to_string())])
            .map(|_| ())
    }
}

/// `error` with every echo of `secret` removed from its text (see [`envelope::scrub`]).
fn scrub_error(error: ModuleError, secret: &str) -> ModuleError {
    let scrub = |text: String| envelope::scrub(&text, secret);
    match error {
        ModuleError::Configuration(m) => ModuleError::Configuration(scrub(m)),
        ModuleError::NotFound(m) => ModuleError::NotFound(scrub(m)),
        ModuleError::Authentication(m) => ModuleError::Authentication(scrub(m)),
        ModuleError::RemoteApi(RemoteError { code, message }) => {
            ModuleError::RemoteApi(RemoteError { code, message: scrub(message) })
        }
        ModuleError::Transport(m) => ModuleError::Transport(scrub(m)),
        ModuleError::Unexpected(m) => ModuleError::Unexpected(scrub(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(group: &str) -> Option<String> {
        let json = format!(r#"{{"uid": 7, "group": {group}, "email": "a@b.c"}}"#);
        let account: RemoteAccount = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{group}: {e}"));
        assert_eq!(account.email(), Some("a@b.c"), "{group}: the fields after `group` are still read");
        account.group().map(str::to_string)
    }

    #[test]
    fn group_names_are_read_from_either_shape_once_each() {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(r#"[{"name":" trial "},"beta",{"name":""},"trial",{"name":"gold","id":3}]"#).unwrap();
        assert_eq!(group_names(&list).unwrap(), ["trial", "beta", "gold"]);
        for bad in [r#"[5]"#, r#"[{"name":5}]"#, r#"[{"id":3}]"#, r#"[null]"#, r#"[["trial"]]"#] {
            let list: Vec<serde_json::Value> = serde_json::from_str(bad).unwrap();
            let e = group_names(&list).unwrap_err();
            let shown = &bad[1..bad.len() - 1];
            assert!(matches!(&e, ModuleError::Unexpected(m) if m.contains(shown)), "{bad}: {e:?}");
        }
        let long = serde_json::json!([{ "title": "x".repeat(500) }]);
        let e = group_names(long.as_array().unwrap()).unwrap_err();
        assert!(e.message().len() < 250 && e.message().contains('…'), "{}", e.message());
    }

    #[test]
    fn a_users_texts_are_kept_whichever_are_present() {
        let read = |json: &str| serde_json::from_str::<RemoteAccount>(json).unwrap();
        let all = read(r#"{"uid": 1, "email": "a@b.c", "group": {"name": "g"}, "createdOn": "2024-01-02 03:04:05"}"#);
        assert_eq!(
            (all.email(), all.group(), all.created_on()),
            (Some("a@b.c"), Some("g"), Some("2024-01-02 03:04:05"))
        );
        let middle_only = read(r#"{"uid": 1, "group": "gold"}"#);
        assert_eq!((middle_only.email(), middle_only.group(), middle_only.created_on()), (None, Some("gold"), None));
        let empty_email = read(r#"{"uid": 1, "email": "", "createdOn": "x"}"#);
        assert_eq!((empty_email.email(), empty_email.group(), empty_email.created_on()), (Some(""), None, Some("x")));
        let none = read(r#"{"uid": 1, "email": null}"#);
        assert_eq!((none.email(), none.group(), none.created_on()), (None, None, None));
        let unicode = read(r#"{"uid": 1, "email": "é@ü.de", "createdOn": "ß"}"#);
        assert_eq!((unicode.email(), unicode.created_on()), (Some("é@ü.de"), Some("ß")));
        // Texts with escapes cannot be borrowed from the reply; they are unescaped copies.
        let escaped = read(r#"{"uid": 1, "email": "a\u0040b.c", "group": {"name": "q\"t"}, "createdOn": "\u00df"}"#);
        assert_eq!((escaped.email(), escaped.group(), escaped.created_on()), (Some("a@b.c"), Some("q\"t"), Some("ß")));
        // Read from bytes, as replies are: the borrowed texts are the same.
        let bytes = br#"{"uid": 1, "email": "a@b.c", "group": {"name": "g"}, "createdOn": "2024"}"#;
        let borrowed: RemoteAccount = serde_json::from_slice(bytes).unwrap();
        assert_eq!(
            (borrowed.email(), borrowed.group(), borrowed.created_on()),
            (Some("a@b.c"), Some("g"), Some("2024"))
        );
    }

    #[test]
    fn a_group_is_named_by_an_object_or_a_string_and_anything_else_is_no_name() {
        assert_eq!(group_of(r#"{"name": "default"}"#).as_deref(), Some("default"));
        assert_eq!(group_of(r#"{"id": 3, "name": "beta", "extra": [1, {"name": "x"}]}"#).as_deref(), Some("beta"));
        assert_eq!(group_of(r#""gold""#).as_deref(), Some("gold"));
        assert_eq!(group_of(r#""esc\"aped""#).as_deref(), Some("esc\"aped"));
        for nameless in [
            "null",
            "3",
            "-1",
            "1.5",
            "true",
            "[\"a\"]",
            "{}",
            r#"{"id": 3}"#,
            r#"{"name": {"name": "x"}}"#,
            r#"{"name": 5}"#,
            r#"{"name": null}"#,
        ] {
            assert_eq!(group_of(nameless), None, "{nameless}");
        }
        let absent: RemoteAccount = serde_json::from_str(r#"{"uid": 7}"#).unwrap();
        assert_eq!(absent.group(), None);
    }
}
