//! End to end (issue 24): what a hostile module, a hostile upload or a misleading App URL can make
//! the host do. Host memory stays bounded whatever a module logs; progress is rate-limited and
//! scrubbed; core dumps are off; a name resolving to this machine is not connected to; a
//! signature file that is a FIFO is refused at once.

use std::path::Path;
use std::time::{Duration, Instant};

use cloudpe_e2e::harness::{Host, HostRun, account, app, scratch};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "containment-session-token-93c7";

fn hostile(mode: &str, token: &str, extra: &[&str], env: &[(&str, &str)]) -> HostRun {
    let host = Host::from_env().with_test_component("hostile");
    let mut app = app("http://127.0.0.1:9/1.0", token);
    app["custom"] = json!({"mode": mode});
    let request = json!({"app": app, "account": account(1, 2, "Active", Some("12"))});
    let mut args = vec!["suspend"];
    args.extend_from_slice(extra);
    host.run_args(&args, request.to_string().as_bytes(), env)
}

/// The host's peak memory while a module hands it 4 MiB log records (or call records of a 4 MiB
/// reply and 64 parameters of 64 KiB), 10,000 of them, under a 16 MiB module limit. Before
/// issue 24 each record kept its whole lifted allocation: the host grew by gigabytes within the
/// deadline.
#[test]
fn a_module_flooding_logs_or_call_records_cannot_grow_the_host() {
    /// The bound: the host's own memory (about 40 MiB here with a compiled component), the
    /// module's 16 MiB, one lifted record, and what is kept of 64 MiB of records.
    const BOUND_KIB: u64 = 150 * 1024;
    for mode in ["log-flood-big", "call-flood"] {
        let run = hostile(mode, TOKEN, &["--memory-mib", "16", "--deadline-secs", "5"], &[]);
        eprintln!("[containment] {mode}: host peak RSS {} KiB (bound {BOUND_KIB} KiB)", run.peak_rss_kib);
        assert!(run.peak_rss_kib < BOUND_KIB, "{mode}: host grew to {} KiB", run.peak_rss_kib);
        assert_eq!(run.code, 3, "{mode}: {}", run.all_output());
        assert_eq!(run.error_kind(), Some("module-trapped"), "{mode}: {}", run.stdout);
        assert_eq!(
            run.error_message(),
            "the module handed the host more than 64 MiB of log and call records and was stopped",
            "{mode}"
        );
        assert_eq!(run.json["error"]["limit"], json!({"name": "log-bytes", "value": "64 MiB"}), "{mode}");
        let kept = run.json["logs"].as_array().map_or(0, Vec::len) + run.json["calls"].as_array().map_or(0, Vec::len);
        assert!(kept > 0 && kept <= 20_000, "{mode}: {kept} records");
        assert!(run.stdout.len() < 8 << 20, "{mode}: report of {} bytes", run.stdout.len());
        assert!(!run.all_output().contains(TOKEN));
    }
}

#[test]
fn the_last_progress_line_is_rate_limited_and_scrubbed_like_the_others() {
    // The session is "operation", a word every JSON progress line holds: a progress line that
    // bypassed the scrubber would show it.
    let run = hostile("progress-flood", "operation", &[], &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("progress")).collect();
    let allowed = run.elapsed.as_millis() / 250 + 2;
    assert!(
        !lines.is_empty() && lines.len() as u128 <= allowed,
        "{} progress lines in {:?} (at most {allowed}): {:?}",
        lines.len(),
        run.elapsed,
        &lines[..lines.len().min(3)]
    );
    assert!(lines.iter().all(|l| !l.contains("operation")), "{:?}", &lines[..lines.len().min(3)]);
    let last = lines.last().unwrap();
    assert!(last.contains(r#""done":10"#) && last.contains(r#""total":10"#), "the last figures are shown: {lines:?}");
}

#[test]
fn the_host_runs_without_core_dumps() {
    // The test raises the soft core limit to the hard one, so the host's own setting shows.
    let host = Host::from_env();
    let script = "ulimit -S -c \"$(ulimit -H -c)\" 2>/dev/null; exec \"$0\" \"$@\"";
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&host.bin)
        .args(["suspend", "--component"])
        .arg(&host.component)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The host waits for its request on stdin meanwhile.
    let limits = format!("/proc/{}/limits", child.id());
    let started = Instant::now();
    let mut line = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        let text = std::fs::read_to_string(&limits).unwrap_or_default();
        line = text.lines().find(|l| l.starts_with("Max core file size")).unwrap_or("").to_string();
        let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap_or_default();
        if exe.file_name() == host.bin.file_name() && line.split_whitespace().nth(4) == Some("0") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.get(4..6), Some(&["0", "0"][..]), "soft and hard core limits: {line:?}");
}

#[test]
fn a_url_naming_a_host_that_resolves_to_this_machine_is_not_connected_to() {
    let sim = Simulator::start(SimConfig {
        session: TOKEN.into(),
        accounts: vec![Account::new(12, 1)],
        ..SimConfig::default()
    })
    .unwrap();
    let host = Host::from_env();
    let suspend = |url: &str| {
        let request = json!({"app": app(url, TOKEN), "account": account(1, 2, "Active", Some("12"))});
        host.run("suspend", &request)
    };
    let port = sim.addr().port();
    let refused = suspend(&format!("http://localhost:{port}/1.0"));
    assert_eq!(refused.code, 1, "{}", refused.all_output());
    assert_eq!(refused.error_kind(), Some("transport"), "{}", refused.stdout);
    assert!(
        refused.error_message().contains("resolves only to a loopback, link-local or cloud-metadata address"),
        "{}",
        refused.error_message()
    );
    assert_eq!(sim.request_count(), 0, "the server behind the name was never reached");
    assert!(sim.status_changes().is_empty());
    // Named literally, the address is what the App means: allowed (how every other test runs).
    let literal = suspend(&format!("http://127.0.0.1:{port}/1.0"));
    assert_eq!(literal.code, 0, "{}", literal.all_output());
    assert_eq!(sim.account(12).unwrap().status, 2);
}

#[test]
fn a_signature_file_that_is_a_fifo_is_refused_at_once() {
    let base = Host::from_env();
    let dir = scratch("containment-fifo");
    let component = dir.join("cloudpe.wasm");
    std::fs::copy(&base.component, &component).unwrap();
    make_fifo(&component_signing::signature_path(&component));
    let host = Host { bin: base.bin.clone(), component: component.clone() };
    // Verification on, as HostBill runs the host: the signature file is read.
    let keys = std::env::var("CLOUDPE_TRUSTED_KEYS").expect("CLOUDPE_TRUSTED_KEYS (set by cargo xtask test)");
    let env = [("HOSTBILL_MODULE_ALLOW_UNSIGNED", "false"), ("HOSTBILL_MODULE_TRUSTED_KEYS", keys.as_str())];
    let run = host.run_args(&["info"], b"", &env);
    assert!(run.elapsed < Duration::from_secs(10), "the host waited on the FIFO for {:?}", run.elapsed);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(run.error_message().contains("cloudpe.wasm.sig is not a regular file (a FIFO)"), "{}", run.error_message());
    let _ = std::fs::remove_dir_all(&dir);
}

fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn request_paths_a_module_keeps_cannot_grow_the_host() {
    // 2,000 requests with a 60,000-byte path, kept by the module: 120 MB host-side, outside the
    // module's memory limit, without a bound on the path.
    const BOUND_KIB: u64 = 100 * 1024;
    let run = hostile("long-paths", TOKEN, &["--memory-mib", "16", "--deadline-secs", "10"], &[]);
    eprintln!("[containment] long-paths: host peak RSS {} KiB (bound {BOUND_KIB} KiB)", run.peak_rss_kib);
    assert!(run.peak_rss_kib < BOUND_KIB, "host grew to {} KiB", run.peak_rss_kib);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert_eq!(run.error_message(), "path 0 refused", "{}", run.stdout);
}
