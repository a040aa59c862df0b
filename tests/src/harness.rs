//! Runs the real host binary with the real component, as HostBill's PHP side does: one process
//! per operation, JSON on stdin, JSON on stdout.
//!
//! `cargo xtask test` builds both and points `HOSTBILL_MODULE_HOST_BIN` and `CLOUDPE_COMPONENT`
//! at them; without those variables the default build paths under `target/` are used.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Longest a host process may run in a test before it is killed.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The host binary and the component it runs.
#[derive(Debug, Clone)]
pub struct Host {
    pub bin: PathBuf,
    pub component: PathBuf,
}

/// What one host process did.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// Exit code (`-1` when killed by a signal or the timeout).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout parsed as JSON (`Value::Null` if it was not JSON).
    pub json: Value,
    pub elapsed: Duration,
    /// Peak resident memory of the process, in KiB.
    pub peak_rss_kib: u64,
}

impl HostRun {
    /// `error.kind` of the report, if any.
    pub fn error_kind(&self) -> Option<&str> {
        self.json.pointer("/error/kind").and_then(Value::as_str)
    }

    /// `error.message` of the report, or "".
    pub fn error_message(&self) -> &str {
        self.json.pointer("/error/message").and_then(Value::as_str).unwrap_or("")
    }

    /// Everything the process printed.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

/// Cargo's target folder.
/// A fresh, empty folder under target/test-scratch/ for one test (named after `name` and this
/// process).
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("test-scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder under target/");
    dir
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

impl Host {
    /// The artifacts named by the environment, or the default build paths.
    pub fn from_env() -> Host {
        let target = target_dir();
        let pick = |var: &str, default: PathBuf| std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
        let host = Host {
            bin: pick("HOSTBILL_MODULE_HOST_BIN", target.join("debug/hostbill-module-host")),
            component: pick("CLOUDPE_COMPONENT", target.join("wasm32-wasip2/component/cloudpe_guest.wasm")),
        };
        for path in [&host.bin, &host.component] {
            assert!(
                path.is_file(),
                "{} does not exist: run the tests with `cargo xtask test`, which builds it",
                path.display()
            );
        }
        host
    }

    /// A test-only component from `tests/components/` (e.g. `egress-probe`), with the same host.
    pub fn with_test_component(&self, name: &str) -> Host {
        let dir = std::env::var_os("HOSTBILL_TEST_COMPONENTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.component.parent().expect("component folder").to_path_buf());
        let component = dir.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(component.is_file(), "{} does not exist: run the tests with `cargo xtask test`", component.display());
        Host { bin: self.bin.clone(), component }
    }

    /// Runs `operation` with `request` on stdin.
    pub fn run(&self, operation: &str, request: &Value) -> HostRun {
        self.run_args(&[operation], request.to_string().as_bytes(), &[])
    }

    /// Runs the host with `args` (the component flag is added), `stdin` and extra environment.
    pub fn run_args(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> HostRun {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).arg("--component").arg(&self.component);
        self.spawn(cmd, stdin, env)
    }

    /// Like [`Host::run_args`] for reports too large to hold as a JSON tree (a million
    /// decisions): `json["decisions"]` holds only how many decisions of each kind there were
    /// (`{"change": 3, "unchanged": 5, ...}`).
    pub fn run_lean(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> HostRun {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).arg("--component").arg(&self.component);
        self.spawn_parsed(cmd, stdin, env, |stdout| {
            serde_json::from_str::<LeanReport>(stdout.trim()).map(|r| r.0).unwrap_or(Value::Null)
        })
    }

    /// Runs the host with exactly `args` (no component flag).
    pub fn run_bare(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> HostRun {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args);
        self.spawn(cmd, stdin, env)
    }

    fn spawn(&self, cmd: Command, stdin: &[u8], env: &[(&str, &str)]) -> HostRun {
        self.spawn_parsed(cmd, stdin, env, |stdout| serde_json::from_str(stdout.trim()).unwrap_or(Value::Null))
    }

    fn spawn_parsed(
        &self,
        mut cmd: Command,
        stdin: &[u8],
        env: &[(&str, &str)],
        parse: impl FnOnce(&str) -> Value,
    ) -> HostRun {
        // Tests share one compiled-component cache under target/, never the user's. Components
        // built for tests are unsigned: signatures have their own tests (`tests/trust.rs`), which
        // turn verification back on.
        cmd.env_remove("HOSTBILL_MODULE_COMPONENT")
            .env_remove("RUST_BACKTRACE")
            .env_remove("HOSTBILL_MODULE_TRUSTED_KEYS")
            .env("HOSTBILL_MODULE_ALLOW_UNSIGNED", "true")
            .env("HOSTBILL_MODULE_CACHE_DIR", target_dir().join("test-module-cache"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let mut input = child.stdin.take().expect("piped");
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let (code, peak_rss_kib) = wait_with_usage(&mut child, started);
        let elapsed = started.elapsed();
        let _ = writer.join();
        let stdout = reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let json = parse(&stdout);
        HostRun { code, stdout, stderr, json, elapsed, peak_rss_kib }
    }
}

/// Waits for `child` (killing it after [`PROCESS_TIMEOUT`]) and returns its exit code (-1 if
/// killed) and peak RSS in KiB. The peak is sampled from `/proc/PID/status` (`VmHWM`) while the
/// child runs: `wait4`'s `ru_maxrss` would also count the parent's memory, which a child spawned
/// with vfork shares until it execs.
pub fn wait_with_usage(child: &mut std::process::Child, started: Instant) -> (i32, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let mut turn = 0u64;
    loop {
        // The peak every millisecond; the exit every 200 µs, so a run's time is not rounded up
        // to the sampling period (the benchmark times 30 ms runs with it).
        if turn.is_multiple_of(5)
            && let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| vm_hwm_kib(&s))
        {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code().unwrap_or(-1), peak);
        }
        if started.elapsed() > PROCESS_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return (-1, peak);
        }
        std::thread::sleep(Duration::from_micros(200));
        turn += 1;
    }
}

/// A report read with its decisions counted by kind instead of kept.
struct LeanReport(Value);

impl<'de> serde::Deserialize<'de> for LeanReport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct Counts(Value);
        impl<'de> serde::Deserialize<'de> for Counts {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Counts;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a list of decisions")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Counts, A::Error> {
                        let mut counts = serde_json::Map::new();
                        for kind in ["change", "would-change", "unchanged", "skipped", "error"] {
                            counts.insert(kind.into(), 0.into());
                        }
                        while let Some(d) = seq.next_element::<Value>()? {
                            let kind = d["decision"].as_str().unwrap_or("?").to_string();
                            let n = counts.get(&kind).and_then(Value::as_u64).unwrap_or(0);
                            counts.insert(kind, (n + 1).into());
                        }
                        Ok(Counts(Value::Object(counts)))
                    }
                }
                d.deserialize_seq(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LeanReport;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a report")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeanReport, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = if key == "decisions" { map.next_value::<Counts>()?.0 } else { map.next_value()? };
                    out.insert(key, value);
                }
                Ok(LeanReport(Value::Object(out)))
            }
        }
        d.deserialize_map(V)
    }
}

/// `VmHWM` of a `/proc/PID/status` text, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// An App row as HostBill's `$connect` holds it, pointing at `url`.
pub fn app(url: &str, session: &str) -> Value {
    json!({"host": "127.0.0.1", "status_url": url, "field1": "cluster", "field2": session})
}

/// An account row; `cloudpeid` of `None` leaves the custom field out.
pub fn account(id: u64, client_id: u64, status: &str, cloudpeid: Option<&str>) -> Value {
    let fields = match cloudpeid {
        Some(uid) => json!({"cloudpeid": uid}),
        None => json!({}),
    };
    json!({"id": id, "client_id": client_id, "status": status, "custom_fields": fields})
}
