//! The simulated CloudPe behind the [`Platform`] trait, in memory, for native unit tests of the logic.

use std::cell::{Cell, RefCell};

use cloudpe_sim_api::{Account, ApiState, FaultKind, FaultRule, GroupsShape, Params, Reply, TransportFault};

use crate::config::Settings;
use crate::transport::{FailureKind, HttpMethod, HttpRequest, HttpResponse, Platform, TransportError};
use crate::wit::{AppSettings, LogLevel};

pub const SESSION: &str = "unit-test-session-token";

pub fn app() -> AppSettings {
    AppSettings {
        status_url: Some("https://api.example.com".into()),
        field1: Some("cluster".into()),
        field2: Some(SESSION.into()),
        ..Default::default()
    }
}

pub fn settings(url: &str) -> Settings {
    let mut a = app();
    a.status_url = Some(url.into());
    Settings::from_app(&a).unwrap()
}

/// uid, status, isEnabled.
type User = (u64, i64, Option<bool>);

/// The simulated CloudPe of the end-to-end tests (crate `cloudpe-sim-api`, one source of truth
/// for the API's behaviour and its faults), called in memory instead of over HTTP. What only a
/// network does (being unreachable, the time left) is this fake's own.
pub struct FakeCloudPe {
    api: RefCell<ApiState>,
    faults: RefCell<Vec<FaultRule>>,
    /// Every request fails to connect.
    unreachable: Cell<bool>,
    /// What [`Platform::time_left`] answers.
    time_left: Cell<Option<std::time::Duration>>,
    /// Paths answered with a canned (status, body) instead of the simulator: a method the
    /// simulator does not serve yet, as a platform that knows it would answer.
    canned: RefCell<Vec<(String, u16, String)>>,
    /// State of the random numbers [`Platform::random_u64`] hands out (xorshift).
    random: Cell<u64>,
    pub requests: RefCell<Vec<HttpRequest>>,
    pub logs: RefCell<Vec<(LogLevel, String)>>,
    /// The App's call log, one line per call: `method param=value ... -> reply`.
    pub calls: RefCell<Vec<String>>,
}

impl FakeCloudPe {
    /// CloudPe with these users, accepting [`SESSION`] and App id `cluster` (see [`app`]).
    pub fn new(users: &[User]) -> Self {
        let accounts = users
            .iter()
            .map(|&(uid, status, is_enabled)| (uid, Account { is_enabled, ..Account::new(uid, status) }))
            .collect();
        FakeCloudPe {
            api: RefCell::new(ApiState {
                appid: "cluster".into(),
                session: SESSION.into(),
                accounts,
                ..Default::default()
            }),
            faults: RefCell::default(),
            unreachable: Cell::new(false),
            time_left: Cell::new(None),
            canned: RefCell::default(),
            random: Cell::new(0x2545_f491_4f6c_dd1d),
            requests: RefCell::default(),
            logs: RefCell::default(),
            calls: RefCell::default(),
        }
    }

    /// Adds a fault rule, as `Simulator::add_fault` does.
    pub fn fault(&self, rule: FaultRule) {
        self.faults.borrow_mut().push(rule);
    }

    /// Every request answered by a failing proxy: 500 (plain text) or 502 (nginx's HTML page).
    pub fn fail_all_with(&self, status: u16) {
        let kind = match status {
            500 => FaultKind::Http500,
            502 => FaultKind::Html502,
            other => panic!("the simulated CloudPe fails with 500 or 502, not {other}"),
        };
        self.fault(FaultRule::new(kind));
    }

    /// The `getaccounts` page at `start_row` fails forever with this CloudPe `result` code.
    pub fn fail_page(&self, start_row: u64, result: i64) {
        self.fault(
            FaultRule::new(FaultKind::ApiError { result, error: "internal error".into() })
                .method("getaccounts")
                .start_row(start_row),
        );
    }

    /// `setaccountstatus` is applied, then its reply is lost (HTTP 500) this many times.
    pub fn lose_write_replies(&self, times: u32) {
        self.fault(FaultRule::new(FaultKind::Http500.after_applying()).method("setaccountstatus").times(times));
    }

    pub fn unreachable(&self) {
        self.unreachable.set(true);
    }

    pub fn set_time_left(&self, left: Option<std::time::Duration>) {
        self.time_left.set(left);
    }

    /// Lists that name no order come in descending uid order.
    pub fn list_newest_first(&self) {
        self.api.borrow_mut().descending_by_default = true;
    }

    /// The billing history's times are on a wall clock `offset` seconds east of UTC.
    pub fn set_usage_offset(&self, offset: i64) {
        self.api.borrow_mut().usage_utc_offset = offset;
    }

    /// The session token may not call `method` (`result` 8202).
    pub fn deny(&self, method: &str) {
        self.api.borrow_mut().denied_methods.insert(method.to_string());
    }

    /// Removes a user (as an admin deleting it).
    pub fn delete_user(&self, uid: u64) {
        self.api.borrow_mut().accounts.remove(&uid);
    }

    /// Puts user `uid` in `group` (as an admin would on CloudPe).
    pub fn put_in_group(&self, uid: u64, group: &str) {
        self.api.borrow_mut().accounts.get_mut(&uid).expect("a user of this CloudPe").group = group.to_string();
    }

    /// The group user `uid` is in now.
    pub fn group_of(&self, uid: u64) -> String {
        self.api.borrow().accounts[&uid].group.clone()
    }

    /// The platform's groups, in the order `getgroups` lists them.
    pub fn set_groups(&self, names: &[&str]) {
        self.api.borrow_mut().groups.names = names.iter().map(|n| n.to_string()).collect();
    }

    /// How `getgroups` lists the groups.
    pub fn set_groups_shape(&self, shape: GroupsShape) {
        self.api.borrow_mut().groups.shape = shape;
    }

    /// Successful `setgroup` calls: (uid, group).
    pub fn group_changes(&self) -> Vec<(u64, String)> {
        self.api.borrow().group_changes.clone()
    }

    /// Every user's (uid, status, group), to show nothing changed.
    pub fn users(&self) -> Vec<(u64, i64, String)> {
        self.api.borrow().accounts.values().map(|a| (a.uid, a.status, a.group.clone())).collect()
    }

    /// Requests to `path` (e.g. `/1.0/system/admin/rest/createaccount`) are answered with
    /// `status` and `body`, whatever the simulator knows.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.canned.borrow_mut().push((path.to_string(), status, body.to_string()));
    }

    /// Adds (or replaces) a user, as an admin creating it on CloudPe.
    pub fn add_user(&self, account: Account) {
        self.api.borrow_mut().accounts.insert(account.uid, account);
    }

    /// The user `uid`, as CloudPe holds it now.
    pub fn user(&self, uid: u64) -> Option<Account> {
        self.api.borrow().accounts.get(&uid).cloned()
    }

    /// How many users CloudPe holds.
    pub fn user_count(&self) -> usize {
        self.api.borrow().accounts.len()
    }

    /// Which creation paths exist (the other answers HTTP 404).
    pub fn set_create_variant(&self, variant: cloudpe_sim_api::CreateVariant) {
        self.api.borrow_mut().create_variant = variant;
    }

    /// Users created through the API (each password kept only as its shape).
    pub fn created(&self) -> Vec<cloudpe_sim_api::Created> {
        self.api.borrow().created.clone()
    }

    /// The session token may call `method` again.
    pub fn allow(&self, method: &str) {
        self.api.borrow_mut().denied_methods.remove(method);
    }

    /// Successful `setaccountstatus` calls: (uid, status).
    pub fn writes(&self) -> Vec<(u64, i64)> {
        self.api.borrow().status_changes.clone()
    }
}

fn response(status: u16, body: Vec<u8>) -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse { status, body })
}

fn broken(message: &str) -> Result<HttpResponse, TransportError> {
    Err(TransportError { message: message.into(), kind: FailureKind::Other })
}

impl Platform for FakeCloudPe {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.requests.borrow_mut().push(request.clone());
        // The token travels in the form body only, never in a URL.
        assert_eq!(request.method, HttpMethod::Post, "{}", request.path_and_query);
        assert!(!request.path_and_query.contains('?'), "{}", request.path_and_query);
        if self.unreachable.get() {
            return Err(TransportError { message: "connection refused".into(), kind: FailureKind::Unreachable });
        }
        let params: Params = form_urlencoded::parse(request.form_body.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((_, status, body)) = self.canned.borrow().iter().find(|(p, ..)| *p == request.path_and_query) {
            return response(*status, body.clone().into_bytes());
        }
        let Some(method) = cloudpe_sim_api::route(&request.path_and_query) else {
            return response(404, b"404 Not Found".to_vec());
        };
        let fault = cloudpe_sim_api::take(&mut self.faults.borrow_mut(), method, &params);
        match cloudpe_sim_api::respond(&mut self.api.borrow_mut(), method, &params, fault) {
            Reply::Json(body) => response(200, body.into_bytes()),
            Reply::Http { status, body, .. } => response(status, body.as_bytes().to_vec()),
            Reply::Padded { spaces, json } => {
                response(200, std::iter::repeat_n(b' ', spaces as usize).chain(json.into_bytes()).collect())
            }
            Reply::Transport(TransportFault::HugeBody(bytes)) => response(200, vec![b' '; bytes as usize]),
            Reply::Transport(TransportFault::Reset) => broken("connection reset by peer"),
            Reply::Transport(TransportFault::Timeout | TransportFault::StalledBody) => broken("timed out"),
        }
    }

    fn sleep(&self, _duration: std::time::Duration) {}

    fn time_left(&self) -> Option<std::time::Duration> {
        self.time_left.get()
    }

    fn random_u64(&self) -> u64 {
        let mut x = self.random.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.set(x);
        x
    }

    fn record_call(&self, call: crate::wit::ApiCall<'_>) {
        let params: Vec<String> = call.params.iter().map(|p| format!("{}={}", p.name, p.value)).collect();
        self.calls.borrow_mut().push(format!("{} {} -> {}", call.method, params.join(" "), call.reply));
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
}
