//! The simulator over real HTTP, for what the endpoint unit tests cannot show: keep-alive,
//! concurrency under latency, parameter merging, method handling, robustness and shutdown.
//! (Routing and every fault kind are covered by `tests/tests/e2e/simulator.rs`.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Account, FaultKind, FaultRule, SimConfig, Simulator};

const SESSION: &str = "sim-session-token-3f9a1c";

fn sim() -> Simulator {
    Simulator::start(SimConfig { accounts: vec![Account::new(12, 1), Account::new(120, 2)], ..SimConfig::default() })
        .unwrap()
}

/// One keep-alive HTTP/1.1 client connection.
struct Client(BufReader<TcpStream>);

impl Client {
    fn connect(sim: &Simulator) -> Client {
        let stream = TcpStream::connect(sim.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Client(BufReader::new(stream))
    }

    /// Sends a request and reads one Content-Length-framed response: (status, body).
    fn send(&mut self, method: &str, target: &str, form: &str) -> (u16, String) {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: sim\r\n");
        if !form.is_empty() {
            request += "Content-Type: application/x-www-form-urlencoded\r\n";
        }
        request += &format!("Content-Length: {}\r\n\r\n{form}", form.len());
        self.0.get_mut().write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.0.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let sim = sim();
    let mut client = Client::connect(&sim);
    let target = format!("/1.0/marketplace/app/rest/getchecksum?appid=cluster&session={SESSION}");
    for _ in 0..3 {
        let (status, body) = client.send("GET", &target, "");
        assert_eq!(status, 200);
        assert_eq!(json(&body)["result"], 0);
    }
    assert_eq!(sim.request_count(), 3);
    assert_eq!(sim.connection_count(), 1);
}

#[test]
fn form_parameters_win_over_the_query_and_unknown_ones_are_ignored() {
    let sim = sim();
    let mut client = Client::connect(&sim);
    let (status, body) = client.send(
        "POST",
        "/1.0/billing/account/rest/setaccountstatus?uid=120&status=4&ruk=x",
        &format!("appid=cluster&session={SESSION}&uid=12&status=2&charset=UTF-8"),
    );
    assert_eq!((status, body.as_str()), (200, r#"{"result":0}"#));
    assert_eq!(sim.status_changes(), [(12, 2)]);
    assert_eq!(sim.account(120).unwrap().status, 2, "untouched");
    let recorded = &sim.requests()[0];
    assert_eq!(recorded.api_method, "setaccountstatus");
    assert_eq!(recorded.params["uid"], "12");
    assert_eq!(recorded.params["ruk"], "x");
}

#[test]
fn a_bad_session_is_echoed_in_a_200_envelope() {
    let sim = sim();
    let mut client = Client::connect(&sim);
    let (status, body) =
        client.send("POST", "/1.0/billing/account/rest/getaccounts", "appid=cluster&session=wrong-token");
    assert_eq!(status, 200);
    assert_eq!(
        json(&body),
        serde_json::json!({"result": 702, "error": "session [wrong-token] is not valid", "source": "JEL"})
    );
}

#[test]
fn other_http_methods_get_405_and_leave_faults_alone() {
    let sim = sim();
    sim.add_fault(FaultRule::new(FaultKind::Http500).times(1));
    let mut client = Client::connect(&sim);
    let target = format!("/1.0/billing/account/rest/getaccounts?session={SESSION}");
    assert_eq!(client.send("PUT", &target, "").0, 405);
    assert_eq!(client.send("GET", &target, "").0, 500, "the fault was still there");
    assert_eq!(client.send("GET", &target, "").0, 200);
}

#[test]
fn latency_does_not_serialize_connections() {
    let sim = sim();
    sim.set_latency(Duration::from_millis(300));
    let addr = sim.addr();
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let request = "GET /1.0/marketplace/app/rest/getchecksum?appid=cluster HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n";
                stream.write_all(request.as_bytes()).unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).unwrap();
                assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(900), "answered one after another: {elapsed:?}");
    assert_eq!(sim.max_concurrent_requests(), 4);
}

#[test]
fn malformed_requests_do_not_take_the_server_down() {
    let sim = sim();
    for garbage in [
        "\x00\x01\x02 nonsense\r\n\r\n",
        "GET /1.0/%ff%fe?%zz=%%&=&&session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(sim.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        stream.write_all(garbage.as_bytes()).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
    }
    let mut client = Client::connect(&sim);
    let (status, body) = client.send("GET", &format!("/1.0/billing/account/rest/getaccounts?session={SESSION}"), "");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["totalCount"], 2);
}

#[test]
fn dropping_the_simulator_releases_the_port_and_held_requests() {
    let sim = sim();
    sim.add_fault(FaultRule::new(FaultKind::Timeout));
    let addr = sim.addr();
    let mut held = TcpStream::connect(addr).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    held.write_all(b"GET /1.0/marketplace/app/rest/getchecksum?appid=cluster HTTP/1.1\r\nHost: sim\r\n\r\n").unwrap();
    while sim.request_count() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    drop(sim);
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut rest = Vec::new();
    assert!(matches!(held.read_to_end(&mut rest), Ok(0) | Err(_)), "the held request ends with the simulator");
    assert!(std::net::TcpListener::bind(addr).is_ok(), "port {} is free again", addr.port());
}

#[test]
fn groups_are_listed_in_either_shape_and_a_move_is_applied() {
    let sim = sim();
    let mut client = Client::connect(&sim);
    let auth = format!("appid=cluster&session={SESSION}");
    let (status, body) = client.send("POST", "/1.0/billing/groupquota/rest/getgroups", &auth);
    assert_eq!(status, 200);
    assert_eq!(json(&body)["array"][1], serde_json::json!({"name": "trial"}));
    sim.set_groups_shape(super::GroupsShape::Names);
    sim.set_groups(&["trial", "gold"]);
    let (_, body) = client.send("POST", "/1.0/billing/groupquota/rest/getgroups", &auth);
    assert_eq!(json(&body)["array"], serde_json::json!(["trial", "gold"]));
    let (_, body) = client.send("POST", "/1.0/billing/account/rest/setgroup", &format!("{auth}&uid=12&groupName=gold"));
    assert_eq!(json(&body), serde_json::json!({"result": 0}));
    assert_eq!(sim.group_changes(), [(12, "gold".to_string())]);
    assert_eq!(sim.account(12).unwrap().group, "gold");
    sim.deny_method("setgroup");
    let (_, body) =
        client.send("POST", "/1.0/billing/account/rest/setgroup", &format!("{auth}&uid=12&groupName=trial"));
    assert_eq!(json(&body)["result"], 8202);
    assert_eq!(sim.account(12).unwrap().group, "gold");
}

#[test]
fn a_user_is_created_by_the_variant_served_and_its_password_is_kept_nowhere() {
    let sim = sim();
    let mut client = Client::connect(&sim);
    let form = format!("session={SESSION}&email=ann%40x.io&password=Secret-Pass-123&autoActive=true");
    let (status, _) = client.send("POST", "/1.0/users/account/rest/addaccount", &form);
    assert_eq!(status, 404, "only createaccount by default");
    let (status, body) = client.send("POST", "/1.0/system/admin/rest/createaccount", &form);
    assert_eq!(status, 200);
    assert_eq!(json(&body)["result"], 0, "{body}");
    assert_eq!(sim.account(121).map(|a| (a.email, a.status)), Some(("ann@x.io".to_string(), 1)));
    sim.set_create_variant(cloudpe_sim_api::CreateVariant::Users);
    let (status, _) = client.send("POST", "/1.0/system/admin/rest/createaccount", &form);
    assert_eq!(status, 404);
    let (_, body) = client.send("POST", "/1.0/users/account/rest/addaccount", &form);
    assert!(json(&body)["error"].as_str().unwrap().contains("already exists"), "{body}");
    let (status, oracle) = client.send("GET", "/_sim/created", "");
    assert_eq!(status, 200);
    let created = json(&oracle);
    assert_eq!(created[0]["uid"], 121);
    assert_eq!(created[0]["password"]["length"], 15);
    assert_eq!(sim.created_users().len(), 1);
    for request in sim.requests() {
        if let Some(password) = request.params.get("password") {
            assert_eq!(password, "********", "{}", request.path);
        }
    }
    assert!(!oracle.contains("Secret-Pass-123"));
}
