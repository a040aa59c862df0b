//! A simulated CloudPe (Virtuozzo Application Platform admin API) over HTTP: the API's behaviour
//! is crate `cloudpe-sim-api` (faithful to `docs/cloudpe-api.md`); this serves it on GET and
//! POST, with 404 for unknown paths, and adds what only a network has: latency, connections,
//! TLS, and the transport faults (timeouts, resets, huge and stalled bodies).
//!
//! It runs its own tokio runtime on a background thread, so synchronous tests can use it, binds
//! 127.0.0.1 only, and stops (closing every connection) when dropped.
//!
//! It serves the usage method too (`getaccountbillinghistorybyperiodinner`,
//! `cloudpe_sim_api::usage`), and, for tests outside Rust (the PHP side's), the oracle of that
//! history: `GET /_sim/usage?uid=12&from=2026-12-05T12:00:00Z&until=2026-12-06T12:00:00Z` answers
//! `{"uid": 12, "hours": [{"start": "2026-12-05T13:00:00Z", "cost": "0.0734", "bonus": "0",
//! "resource_cost": "...", "storage_cost": "...", "traffic_cost": "...", "rows": 1}, ...]}`: the
//! hours of `[from, until)` with usage, ascending, each summed exactly as the host must report it
//! (an hour not listed had none). It is not an API call: it is not recorded, and no fault hits it.
//! Likewise `GET /_sim/created` lists the users created through the API, in order:
//! `[{"uid": 1300, "email": "ann@x.io", "method": "createaccount", "password": {"length": 24,
//! "upper": 6, "lower": 9, "digits": 5, "symbols": 4, "distinct": 20, "fingerprint": ...}}]` (a
//! password is never kept, nor recorded in [`RecordedRequest`]: only its shape).
//!
//! ```no_run
//! use cloudpe_e2e::{Account, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { accounts: vec![Account::new(12, 1)], ..SimConfig::default() }).unwrap();
//! println!("{}", sim.api_url()); // http://127.0.0.1:PORT/1.0
//! ```

#[cfg(test)]
mod http_tests;
mod server;
mod tls;
mod users;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use cloudpe_sim_api::{Account, FaultKind, FaultRule, GroupsShape, population, sample_accounts};
pub use tls::{TestCa, TlsIdentity};

/// How the simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The `appid` `getchecksum` accepts.
    pub appid: String,
    /// The admin session token every admin call must carry.
    pub session: String,
    /// Round-trip time: delay before every answer, and before each new connection and TLS
    /// handshake is served.
    pub latency: Duration,
    /// The accounts CloudPe knows at start.
    pub accounts: Vec<Account>,
    /// Serve HTTPS with this identity instead of plain HTTP.
    pub tls: Option<TlsIdentity>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            appid: "cluster".to_string(),
            session: "sim-session-token-3f9a1c".to_string(),
            latency: Duration::ZERO,
            accounts: Vec::new(),
            tls: None,
        }
    }
}

/// A request as the simulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub http_method: String,
    /// Lower-case last path segment, e.g. `getaccounts`.
    pub api_method: String,
    /// Path and query string as sent.
    pub path: String,
    /// Query and form parameters merged (form wins), the session included; a `password` is
    /// recorded as `********`.
    pub params: BTreeMap<String, String>,
    /// Which connection it came on: 1 for the first one accepted, 2 for the next, ...
    pub connection: usize,
}

struct State {
    api: cloudpe_sim_api::ApiState,
    latency: Duration,
    idle_timeout: Option<Duration>,
    keepalive_requests: Option<usize>,
    faults: Vec<FaultRule>,
    requests: Vec<RecordedRequest>,
}

/// State shared with the server tasks.
struct Shared {
    state: Mutex<State>,
    connections: AtomicUsize,
    /// TLS handshakes completed.
    tls_handshakes: AtomicUsize,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Shared {
    /// The state, even after a panic elsewhere poisoned the lock: one failed request must not
    /// take every later one down with it.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Starts serving on an ephemeral port of 127.0.0.1.
    pub fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Self::start_on(config, 0)
    }

    /// Starts serving on `port` of 127.0.0.1 (0 picks a free one).
    pub fn start_on(config: SimConfig, port: u16) -> std::io::Result<Simulator> {
        let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                api: cloudpe_sim_api::ApiState {
                    appid: config.appid,
                    session: config.session,
                    accounts: config.accounts.into_iter().map(|a| (a.uid, a)).collect(),
                    ..cloudpe_sim_api::ApiState::default()
                },
                latency: config.latency,
                idle_timeout: None,
                keepalive_requests: None,
                faults: Vec::new(),
                requests: Vec::new(),
            }),
            connections: AtomicUsize::new(0),
            tls_handshakes: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new().name("cloudpe-sim".into()).spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => server::serve(listener, server_shared, acceptor, stopped).await,
                    Err(e) => eprintln!("cloudpe-sim: cannot listen: {e}"),
                }
            });
            // Dropping the runtime cancels every connection task, held (Timeout) ones included.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
        Ok(Simulator { addr, scheme, shared, stop: Some(stop), thread: Some(thread) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS; no trailing slash, no `/1.0`).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// [`Simulator::base_url`] + `/1.0`, the API root.
    pub fn api_url(&self) -> String {
        format!("{}/1.0", self.base_url())
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the network's round-trip time: the delay before every answer, and before a new
    /// connection is served (its TCP handshake) and before its TLS handshake.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Closes a connection of later accepts that waits longer than `idle` for its next request
    /// (as a server's keep-alive timeout does); `None`: never.
    pub fn set_idle_timeout(&self, idle: Option<Duration>) {
        self.state().idle_timeout = idle;
    }

    /// Closes a connection of later accepts after `max` requests, answering the last one with
    /// `Connection: close` (as nginx's `keepalive_requests`); `None`: never.
    pub fn set_keepalive_requests(&self, max: Option<usize>) {
        self.state().keepalive_requests = max;
    }

    /// Adds a fault rule (rules are tried in the order added).
    pub fn add_fault(&self, rule: FaultRule) {
        self.state().faults.push(rule);
    }

    /// How many fault rules still have hits left (a rule limited by `times` is dropped when used
    /// up).
    pub fn pending_faults(&self) -> usize {
        self.state().faults.len()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The account with `uid`, as stored now.
    pub fn account(&self, uid: u64) -> Option<Account> {
        self.state().api.accounts.get(&uid).cloned()
    }

    /// Adds or replaces an account.
    pub fn upsert_account(&self, account: Account) {
        self.state().api.accounts.insert(account.uid, account);
    }

    /// The billing history's times are on a wall clock `offset` seconds east of UTC (CloudPe's
    /// zone is undocumented; the App's "Usage time zone" must match it).
    pub fn set_usage_offset(&self, offset: i64) {
        self.state().api.usage_utc_offset = offset;
    }

    /// The session token may not call `method` (lower case): it is answered with `result` 8202.
    pub fn deny_method(&self, method: &str) {
        self.state().api.denied_methods.insert(method.to_ascii_lowercase());
    }

    /// Which user-creation paths exist (the other answers HTTP 404).
    pub fn set_create_variant(&self, variant: cloudpe_sim_api::CreateVariant) {
        self.state().api.create_variant = variant;
    }

    /// The users created through the API, in order, each password kept only as its shape.
    pub fn created_users(&self) -> Vec<cloudpe_sim_api::Created> {
        self.state().api.created.clone()
    }

    /// How `getgroups` lists the groups: objects with a `name` (the default) or bare names.
    pub fn set_groups_shape(&self, shape: GroupsShape) {
        self.state().api.groups.shape = shape;
    }

    /// The platform's groups, in the order `getgroups` lists them (default: `default`, `trial`,
    /// `beta`, `billing`, `premium`).
    pub fn set_groups(&self, names: &[&str]) {
        self.state().api.groups.names = names.iter().map(|n| n.to_string()).collect();
    }

    /// Successful `setgroup` calls (uid, group), in order.
    pub fn group_changes(&self) -> Vec<(u64, String)> {
        self.state().api.group_changes.clone()
    }

    /// Removes a user, as an admin deleting it.
    pub fn remove_account(&self, uid: u64) -> Option<Account> {
        self.state().api.accounts.remove(&uid)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.state().requests.len()
    }

    /// TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far.
    pub fn tls_handshake_count(&self) -> usize {
        self.shared.tls_handshakes.load(Ordering::SeqCst)
    }

    /// Network round trips so far: one per TCP connection, TLS handshake and request (the
    /// latency each costs).
    pub fn round_trips(&self) -> usize {
        self.connection_count() + self.tls_handshake_count() + self.request_count()
    }

    /// The most requests that were being answered at the same time.
    pub fn max_concurrent_requests(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Successful `setaccountstatus` calls (uid, status), in order.
    pub fn status_changes(&self) -> Vec<(u64, i64)> {
        self.state().api.status_changes.clone()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
