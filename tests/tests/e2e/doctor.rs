//! End to end: `doctor` against the simulated CloudPe, healthy and with each kind of problem.

use cloudpe_e2e::harness::{Host, HostRun, app};
use cloudpe_e2e::{SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "doctor-session-token-5c2e";

fn doctor(host: &Host, app: serde_json::Value, extra: &[&str]) -> HostRun {
    let mut args = vec!["doctor"];
    args.extend_from_slice(extra);
    host.run_args(&args, json!({"app": app}).to_string().as_bytes(), &[])
}

/// The verdict of the line named `name`.
fn verdict<'a>(run: &'a HostRun, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .map(|l| &l[..4])
        .unwrap_or_else(|| panic!("no {name} line in:\n{}", run.stdout))
}

#[test]
fn a_healthy_setup_passes_every_check() {
    let host = Host::from_env();
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), ..SimConfig::default() }).unwrap();
    let run = doctor(&host, app(&sim.api_url(), TOKEN), &["--allow-http"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(verdict(&run, "component"), "PASS");
    assert!(run.stdout.contains("targets hostbill:provisioning@2.4.0"), "{}", run.stdout);
    assert_eq!(verdict(&run, "cache"), "PASS");
    assert_eq!(verdict(&run, "App URL"), "WARN", "plain HTTP is allowed, not recommended");
    assert_eq!(verdict(&run, "DNS"), "PASS");
    assert_eq!(verdict(&run, "TCP"), "PASS");
    assert_eq!(verdict(&run, "API answers"), "PASS");
    assert_eq!(verdict(&run, "credentials"), "PASS");
    // Then the capability probe (contract 2.4), a line per capability, each passing here.
    let capabilities: Vec<&str> =
        run.stdout.lines().filter(|l| l.get(6..).is_some_and(|r| r.starts_with("capability "))).collect();
    assert!(capabilities.len() >= 5 && capabilities.iter().all(|l| l.starts_with("PASS")), "{}", run.stdout);
    assert_eq!(verdict(&run, "signature"), "WARN", "test components are unsigned (allowed by the harness)");
    assert_eq!(run.stdout.matches("hint:").count(), 1, "only the signature line has a hint: {}", run.stdout);
}

#[test]
fn each_problem_fails_its_check_with_a_hint() {
    let host = Host::from_env();
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), ..SimConfig::default() }).unwrap();

    let http = doctor(&host, app(&sim.api_url(), TOKEN), &[]);
    assert_eq!(http.code, 1);
    assert_eq!(verdict(&http, "App URL"), "FAIL");
    assert!(http.stdout.contains("hint: use https://"), "{}", http.stdout);

    let wrong = "wrong-doctor-token-9911";
    let bad_session = doctor(&host, app(&sim.api_url(), wrong), &["--allow-http"]);
    assert_eq!(bad_session.code, 1);
    assert_eq!(verdict(&bad_session, "API answers"), "PASS");
    assert_eq!(verdict(&bad_session, "credentials"), "FAIL");
    assert!(bad_session.stdout.contains("rejected the session token"), "{}", bad_session.stdout);
    assert!(!bad_session.all_output().contains(wrong), "token leaked:\n{}", bad_session.all_output());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = doctor(&host, app(&format!("http://127.0.0.1:{port}/1.0"), TOKEN), &["--allow-http"]);
    assert_eq!(closed.code, 1);
    assert_eq!(verdict(&closed, "TCP"), "FAIL");
    assert!(closed.stdout.contains("hint: check that the API is up"), "{}", closed.stdout);

    let unknown = doctor(&host, app("https://no-such-host.invalid/1.0", TOKEN), &[]);
    assert_eq!(unknown.code, 1);
    assert_eq!(verdict(&unknown, "DNS"), "FAIL");

    let incompatible =
        doctor(&host.with_test_component("future-module"), app(&sim.api_url(), TOKEN), &["--allow-http"]);
    assert_eq!(incompatible.code, 1);
    assert_eq!(verdict(&incompatible, "component"), "FAIL");
    assert!(incompatible.stdout.contains("@3.0.0"), "{}", incompatible.stdout);
}

/// Runs the host with stdin `input`, and closes the read end of stdout (or stderr) before the host
/// writes: what `doctor | head -0` or a reader that went away does.
fn run_with_closed(host: &Host, args: &[&str], input: &str, close_stdout: bool) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(&host.bin)
        .args(args)
        .arg("--component")
        .arg(&host.component)
        .env("HOSTBILL_MODULE_CACHE_DIR", cloudpe_e2e::harness::target_dir().join("test-module-cache"))
        .env("HOSTBILL_MODULE_ALLOW_UNSIGNED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if close_stdout {
        drop(child.stdout.take());
    } else {
        drop(child.stderr.take());
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let host = Host::from_env();
    let sim = Simulator::start(SimConfig { session: TOKEN.into(), ..SimConfig::default() }).unwrap();
    let input = json!({"app": app(&sim.api_url(), TOKEN)}).to_string();
    let doctor = run_with_closed(&host, &["doctor", "--allow-http"], &input, true);
    let stderr = String::from_utf8_lossy(&doctor.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(doctor.status.code(), Some(0), "{stderr}");

    let accounts: Vec<_> = (1..=20).map(|i| cloudpe_e2e::harness::account(i, i, "Active", Some("12"))).collect();
    let input = json!({"app": app(&sim.api_url(), TOKEN), "accounts": accounts}).to_string();
    let sync = run_with_closed(&host, &["sync"], &input, false);
    assert_eq!(sync.status.code(), Some(0), "{}", String::from_utf8_lossy(&sync.stdout));
    let report: serde_json::Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert_eq!(report["summary"]["accounts"], 20);
}
