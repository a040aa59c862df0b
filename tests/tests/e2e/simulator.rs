//! The simulator over real HTTP: routing, GET and POST, and each fault knob.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cloudpe_e2e::{Account, FaultKind, FaultRule, SimConfig, Simulator};
use serde_json::Value;

/// A minimal HTTP/1.1 exchange over a fresh connection: (status, body), or the I/O error.
fn exchange(sim: &Simulator, method: &str, target: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(sim.addr())?;
    stream.set_read_timeout(Some(Duration::from_millis(800)))?;
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", sim.addr());
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).ok_or(std::io::ErrorKind::InvalidData)?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

const SESSION: &str = "sim-session-token-3f9a1c";

fn sim() -> Simulator {
    Simulator::start(SimConfig { accounts: vec![Account::new(12, 1), Account::new(120, 2)], ..SimConfig::default() })
        .unwrap()
}

fn get_accounts() -> String {
    format!("/1.0/billing/account/rest/getaccounts?appid=cluster&session={SESSION}&filterField=uid&filterValue=12")
}

#[test]
fn get_and_post_are_served_and_unknown_paths_are_404() {
    let sim = sim();
    let (status, body) = exchange(&sim, "GET", &get_accounts(), "").unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["totalCount"], 2, "substring match returns the decoy too");
    let (status, body) = exchange(
        &sim,
        "POST",
        "/1.0/billing/account/rest/setaccountstatus",
        &format!("appid=cluster&session={SESSION}&uid=12&status=2"),
    )
    .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"result":0}"#));
    assert_eq!(sim.account(12).unwrap().status, 2);
    assert_eq!(exchange(&sim, "GET", "/1.0/billing/account/rest/nosuch", "").unwrap().0, 404);
    assert_eq!(exchange(&sim, "GET", "/billing/account/rest/getaccounts", "").unwrap().0, 404);
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[1].http_method, "POST");
    assert_eq!(recorded[1].params.get("uid").map(String::as_str), Some("12"));
}

#[test]
fn fault_knobs() {
    let sim = sim();
    sim.add_fault(FaultRule::new(FaultKind::Http500).times(1));
    assert_eq!(exchange(&sim, "GET", &get_accounts(), "").unwrap().0, 500);
    assert_eq!(exchange(&sim, "GET", &get_accounts(), "").unwrap().0, 200, "times(1) runs out");

    sim.add_fault(FaultRule::new(FaultKind::Html502).times(1));
    let (status, body) = exchange(&sim, "GET", &get_accounts(), "").unwrap();
    assert_eq!(status, 502);
    assert!(body.contains("<html>"));

    sim.add_fault(FaultRule::new(FaultKind::TruncatedJson).times(1));
    let (status, body) = exchange(&sim, "GET", &get_accounts(), "").unwrap();
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    sim.add_fault(FaultRule::new(FaultKind::ApiError { result: 99, error: "boom".into() }).times(1));
    let (_, body) = exchange(&sim, "GET", &get_accounts(), "").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"], 99);

    sim.add_fault(FaultRule::new(FaultKind::Reset).times(1));
    let reset = exchange(&sim, "GET", &get_accounts(), "").unwrap_err();
    assert_eq!(reset.kind(), std::io::ErrorKind::ConnectionReset, "{reset:?}");

    sim.add_fault(FaultRule::new(FaultKind::Timeout).times(1));
    let hung = exchange(&sim, "GET", &get_accounts(), "").unwrap_err();
    assert!(matches!(hung.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{hung:?}");

    assert_eq!(exchange(&sim, "GET", &get_accounts(), "").unwrap().0, 200, "all rules used up");
}

#[test]
fn latency_delays_each_answer() {
    let sim = sim();
    sim.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    exchange(&sim, "GET", &get_accounts(), "").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}
