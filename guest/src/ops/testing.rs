//! A small in-memory CloudPe behind the [`Platform`] trait, for native unit tests of the logic.

use std::cell::RefCell;

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

pub struct FakeCloudPe {
    users: RefCell<Vec<User>>,
    fail_status: RefCell<Option<u16>>,
    /// startRow -> CloudPe result code that page fails with.
    failing_pages: RefCell<Vec<(u64, i64)>>,
    descending: RefCell<bool>,
    writes: RefCell<Vec<(u64, i64)>>,
    /// Every request fails to connect.
    unreachable: std::cell::Cell<bool>,
    /// `setaccountstatus` is applied, then its reply is lost (HTTP 500) this many times.
    lose_write_replies: std::cell::Cell<u32>,
    /// What [`Platform::time_left`] answers.
    time_left: std::cell::Cell<Option<std::time::Duration>>,
    pub requests: RefCell<Vec<HttpRequest>>,
    pub logs: RefCell<Vec<(LogLevel, String)>>,
}

impl FakeCloudPe {
    pub fn new(users: &[User]) -> Self {
        FakeCloudPe {
            users: RefCell::new(users.to_vec()),
            fail_status: RefCell::new(None),
            failing_pages: RefCell::new(vec![]),
            descending: RefCell::new(false),
            writes: RefCell::new(vec![]),
            unreachable: std::cell::Cell::new(false),
            lose_write_replies: std::cell::Cell::new(0),
            time_left: std::cell::Cell::new(None),
            requests: RefCell::new(vec![]),
            logs: RefCell::new(vec![]),
        }
    }
    pub fn fail_all_with(&self, status: u16) {
        *self.fail_status.borrow_mut() = Some(status);
    }
    pub fn fail_page(&self, start_row: u64, result: i64) {
        self.failing_pages.borrow_mut().push((start_row, result));
    }
    pub fn unreachable(&self) {
        self.unreachable.set(true);
    }
    pub fn lose_write_replies(&self, times: u32) {
        self.lose_write_replies.set(times);
    }
    pub fn set_time_left(&self, left: Option<std::time::Duration>) {
        self.time_left.set(left);
    }
    pub fn reverse_order(&self) {
        *self.descending.borrow_mut() = true;
    }
    pub fn writes(&self) -> Vec<(u64, i64)> {
        self.writes.borrow().clone()
    }

    fn params(request: &HttpRequest) -> Vec<(String, String)> {
        let query = request.path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
        let body = request.form_body.as_deref().unwrap_or("");
        form_urlencoded::parse(query.as_bytes())
            .chain(form_urlencoded::parse(body.as_bytes()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

fn json(body: serde_json::Value) -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse { status: 200, body: body.to_string().into_bytes() })
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
        if let Some(status) = *self.fail_status.borrow() {
            return Ok(HttpResponse { status, body: b"<html>down</html>".to_vec() });
        }
        let params = Self::params(request);
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if get("session").as_deref() != Some(SESSION) {
            return json(
                serde_json::json!({"result": 702, "error": format!("session [{}] is not valid", get("session").unwrap_or_default())}),
            );
        }
        let path = request.path_and_query.split('?').next().unwrap();
        match path.rsplit('/').next().unwrap() {
            "getchecksum" => json(serde_json::json!({"result": 0, "checksum": "abc"})),
            "getaccounts" => {
                let start_row: u64 = get("startRow").map(|s| s.parse().unwrap()).unwrap_or(0);
                if get("filterValue").is_none()
                    && let Some((_, result)) = self.failing_pages.borrow().iter().find(|(row, _)| *row == start_row)
                {
                    return json(serde_json::json!({"result": result, "error": "internal error"}));
                }
                let filter = get("filterValue");
                let mut matches: Vec<User> = self
                    .users
                    .borrow()
                    .iter()
                    .filter(|u| filter.as_ref().is_none_or(|f| u.0.to_string().contains(f.as_str())))
                    .copied()
                    .collect();
                matches.sort_by_key(|u| u.0);
                if *self.descending.borrow() {
                    matches.reverse();
                }
                let start: usize = get("startRow").map(|s| s.parse().unwrap()).unwrap_or(0);
                let count: usize = get("resultCount").map(|s| s.parse().unwrap()).unwrap_or(0);
                let page: Vec<_> = matches
                    .iter()
                    .skip(start)
                    .take(if count == 0 { usize::MAX } else { count })
                    .map(|(uid, status, enabled)| {
                        let mut a =
                            serde_json::json!({"uid": uid, "status": status, "email": format!("u{uid}@example.com")});
                        if let Some(e) = enabled {
                            a["isEnabled"] = (*e).into();
                        }
                        a
                    })
                    .collect();
                json(serde_json::json!({"result": 0, "totalCount": matches.len(), "array": page}))
            }
            "setaccountstatus" => {
                assert_eq!(request.method, HttpMethod::Post);
                let uid: u64 = get("uid").unwrap().parse().unwrap();
                let status: i64 = get("status").unwrap().parse().unwrap();
                let mut users = self.users.borrow_mut();
                match users.iter_mut().find(|u| u.0 == uid) {
                    Some(u) => {
                        u.1 = status;
                        self.writes.borrow_mut().push((uid, status));
                        if self.lose_write_replies.get() > 0 {
                            self.lose_write_replies.set(self.lose_write_replies.get() - 1);
                            return Ok(HttpResponse { status: 500, body: b"oops".to_vec() });
                        }
                        json(serde_json::json!({"result": 0}))
                    }
                    None => json(serde_json::json!({"result": 5, "error": format!("user with uid [{uid}] not found")})),
                }
            }
            _ => Ok(HttpResponse { status: 404, body: b"not found".to_vec() }),
        }
    }

    fn sleep(&self, _duration: std::time::Duration) {}

    fn time_left(&self) -> Option<std::time::Duration> {
        self.time_left.get()
    }

    fn random_u64(&self) -> u64 {
        4
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
}
