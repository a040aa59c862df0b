//! `cloudpe-bench` (run by `cargo xtask bench`): times the sync of 10,000 accounts against the
//! simulated CloudPe, side by side in one run with the old PHP module's algorithm, and prints the
//! table with ratios, the theoretical floor, the host's peak RSS and where the process's time
//! went; a bare client of the same pages beside it (the floor measured: the network and the
//! simulator alone); the figures recorded before issue 11 beside them; then the sync of 100,000 and 1,000,000
//! accounts with the default limits (time, floor, peak RSS, module memory); then the crossover
//! between exact lookups and paging for small account sets; the reconciliation beside a sync; then
//! kept-alive connections against one connection per request, over HTTP and HTTPS (`keep_alive`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{SimConfig, Simulator, population};
use serde_json::{Value, json};

const SESSION: &str = "bench-session-token-1e8f";
const FIRST_UID: u64 = 1000;

#[derive(Parser)]
struct Args {
    /// HostBill accounts (and CloudPe users) to sync.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Requests in flight at once for the new sync.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// Accounts per page.
    #[arg(long, default_value_t = 1000)]
    page_size: u32,
    /// Runs of the new sync per latency (the median is shown).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Accounts the old algorithm is timed on at 20 ms (the result is scaled to all accounts).
    #[arg(long, default_value_t = 1000)]
    old_sample: usize,
    /// Only the keep-alive comparison (skips the sync table and the crossover).
    #[arg(long)]
    keep_alive_only: bool,
    /// Only the usage read (one closed hour of every account at 20 ms).
    #[arg(long)]
    usage_only: bool,
    /// Account counts of the scale section (synced once each at 20 ms, default limits); 0 to
    /// leave it out.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    scale: Vec<usize>,
    /// Print unchanged decisions with their facts. By default the syncs run as HostBill's daily
    /// sync runs them, with `--omit-unchanged-facts`.
    #[arg(long)]
    full_facts: bool,
}

impl Args {
    /// The report flags of the timed syncs: those of HostBill's daily sync unless `--full-facts`.
    fn report_flags(&self) -> &'static [&'static str] {
        if self.full_facts { &[] } else { &["--omit-unchanged-facts"] }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let host = Host::from_env();
    if args.keep_alive_only {
        return keep_alive(&host, args.concurrency, args.runs);
    }
    if args.usage_only {
        return usage(&host, &args);
    }
    let users = population(args.accounts, FIRST_UID);
    let sim = Simulator::start(SimConfig { session: SESSION.into(), accounts: users, ..SimConfig::default() })?;
    let statuses = ["Active", "Suspended"];
    let accounts: Vec<Value> = (0..args.accounts as u64)
        .map(|i| account(i + 1, 50_000 + i, statuses[(i % 2) as usize], Some(&(FIRST_UID + i).to_string())))
        .collect();
    let request = json!({"app": app(&sim.api_url(), SESSION), "accounts": accounts}).to_string();

    println!("Sync benchmark: {} HostBill accounts, simulated CloudPe with {} users", args.accounts, args.accounts);
    println!(
        "host {} | component {} ({} KiB) | concurrency {} | page size {} | median of {} runs | {}",
        host.bin.display(),
        host.component.display(),
        std::fs::metadata(&host.component)?.len() / 1024,
        args.concurrency,
        args.page_size,
        args.runs,
        if args.full_facts {
            "unchanged decisions with their facts"
        } else {
            "as the daily sync: --omit-unchanged-facts"
        }
    );
    println!();
    println!(
        "{:>7} | {:>22} | {:>13} | {:>13} | {:>9} | {:>12} | {:>8} | {:>10} | {:>10} | {:>9} | {:>9} | {:>9}",
        "latency",
        "old way (sequential)",
        "new, process",
        "new, module",
        "old/new",
        "requests",
        "floor",
        "proc/floor",
        "mod/floor",
        "net floor",
        "proc/net",
        "peak RSS"
    );
    let mut decisions_checked = false;
    let mut breakdowns = Vec::new();
    let mut live = Vec::new();
    let mut bares = Vec::new();
    for latency_ms in [0u64, 20] {
        sim.set_latency(Duration::from_millis(latency_ms));
        let sync_args = [
            "sync".to_string(),
            "--max-concurrency".into(),
            args.concurrency.to_string(),
            "--page-size".into(),
            args.page_size.to_string(),
        ];
        let mut sync_args: Vec<&str> = sync_args.iter().map(String::as_str).collect();
        sync_args.extend(args.report_flags());
        let mut runs: Vec<HostRun> =
            (0..args.runs).map(|_| host.run_args(&sync_args, request.as_bytes(), TIMINGS)).collect();
        for run in &runs {
            ensure!(run.code == 0, "sync failed: {}", run.all_output());
        }
        if !decisions_checked {
            check_decisions(&runs[0], &sim)?;
            decisions_checked = true;
        }
        runs.sort_by_key(|r| r.elapsed);
        let median = &runs[runs.len() / 2];
        let module_ms = median.json["summary"]["elapsed_ms"].as_u64().unwrap_or(0) as f64;
        let requests = median.json["summary"]["requests"].as_u64().unwrap_or(0);
        // The host's own VmHWM (in the summary) and the harness's samples of it; the larger.
        let peak_rss = runs
            .iter()
            .map(|r| r.peak_rss_kib.max(r.json["summary"]["peak_rss_kib"].as_u64().unwrap_or(0)))
            .max()
            .unwrap_or(0);

        let sample = if latency_ms == 0 { args.accounts } else { args.old_sample.min(args.accounts) };
        let old = old_algorithm(sim.addr(), sample)?;
        let old_total = old.as_secs_f64() * args.accounts as f64 / sample as f64;
        let old_label = if sample == args.accounts {
            format!("{old_total:.2} s")
        } else {
            format!("{old_total:.1} s ({}k timed)", sample / 1000)
        };
        let new_s = median.elapsed.as_secs_f64();
        let rounds = rounds(requests, args.concurrency as u64);
        let floor_ms = (latency_ms * rounds) as f64;
        let net_floor_ms = (latency_ms * (rounds + 1)) as f64;
        let ratio_to = |t: f64, f: f64| if f > 0.0 { format!("{:.1}x", t / f) } else { "-".to_string() };
        let ratio = |t: f64| ratio_to(t, floor_ms);
        println!(
            "{:>5}ms | {:>22} | {:>11.0}ms | {:>11.0}ms | {:>8.0}x | {:>5} / {:>4} | {:>6.0}ms | {:>10} | {:>10} | {:>7.0}ms | {:>9} | {:>5.1} MiB",
            latency_ms,
            old_label,
            new_s * 1000.0,
            module_ms,
            old_total / new_s,
            args.accounts,
            requests,
            floor_ms,
            ratio(new_s * 1000.0),
            ratio(module_ms),
            net_floor_ms,
            ratio_to(new_s * 1000.0, net_floor_ms),
            peak_rss as f64 / 1024.0
        );
        breakdowns.push((latency_ms, breakdown(median)));
        live.push((latency_ms, new_s * 1000.0, floor_ms));
        let pages = (args.accounts as u64).div_ceil(args.page_size.max(1) as u64);
        let mut bare: Vec<Duration> = (0..args.runs)
            .map(|_| bare_paging(sim.addr(), pages, args.page_size, args.concurrency))
            .collect::<Result<_>>()?;
        bare.sort();
        bares.push((latency_ms, bare[bare.len() / 2].as_secs_f64() * 1000.0, new_s * 1000.0));
    }
    println!();
    println!("Where the process's time goes (median run, ms; \"exec+exit\" is the rest: exec, linking, exit):");
    for (latency_ms, line) in &breakdowns {
        println!("{latency_ms:>5}ms | {line}");
    }
    println!();
    println!(
        "A bare client of the same pages (knows their count, {} keep-alive connections, reads the bytes, parses nothing; median of {}):",
        args.concurrency, args.runs
    );
    for (latency_ms, bare_ms, process_ms) in &bares {
        println!(
            "{latency_ms:>5}ms | bare client {bare_ms:>6.1} ms | process {process_ms:>6.0} ms | process/bare {:.1}x | process - bare {:.0} ms",
            process_ms / bare_ms,
            process_ms - bare_ms
        );
    }
    println!();
    println!("Before issue 11 (recorded at {BEFORE_COMMIT}, same machine, this benchmark) beside this run:");
    for ((latency_ms, before_ms, before_floor), (_, now_ms, floor_ms)) in BEFORE_10K.iter().zip(&live) {
        let ratio = |t: f64, f: f64| if f > 0.0 { format!("{:.2}x floor", t / f) } else { "-".to_string() };
        println!(
            "{latency_ms:>5}ms | process before {before_ms:>6.0} ms ({}) | now {now_ms:>6.0} ms ({})",
            ratio(*before_ms, *before_floor),
            ratio(*now_ms, *floor_ms)
        );
    }
    println!();
    println!("old way: one filtered getaccounts per account, new TCP connection each, as the PHP module does;");
    println!("new, process: whole host process (start, load the component from the cache, sync, JSON out);");
    println!("new, module: the sync call inside the host; floor: latency x sequential rounds of the requests the");
    println!(
        "new sync made, at concurrency {}; net floor: the floor plus the round trip that opens the",
        args.concurrency
    );
    println!("connections (the simulator charges one per new TCP connection; they open together, in the first round).");

    drop(sim);
    usage(&host, &args)?;
    if args.scale.iter().any(|&n| n > 0) {
        scale(&host, &args)?;
    }
    let sim = Simulator::start(SimConfig {
        session: SESSION.into(),
        accounts: population(args.accounts, FIRST_UID),
        ..SimConfig::default()
    })?;
    crossover(&host, &sim, args.concurrency)?;
    reconcile_vs_sync(&host, &sim, &args)?;
    keep_alive(&host, args.concurrency, args.runs)
}

/// The usage read (metered billing) of one closed hour of every account at 20 ms, whole process,
/// beside the sync: one request per account, so its floor is requests x latency / concurrency.
fn usage(host: &Host, args: &Args) -> Result<()> {
    let sim = Simulator::start(SimConfig {
        session: SESSION.into(),
        accounts: population(args.accounts, FIRST_UID),
        latency: Duration::from_millis(20),
        ..SimConfig::default()
    })?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let until = now - now % 3600;
    let from = cloudpe_sim_api::usage::iso(until - 3600);
    let accounts: Vec<Value> = (0..args.accounts as u64)
        .map(|i| {
            let mut row = account(i + 1, 50_000 + i, "Active", Some(&(FIRST_UID + i).to_string()));
            row["usage_from"] = json!(from);
            row
        })
        .collect();
    let request = json!({"app": app(&sim.api_url(), SESSION), "usage_until": cloudpe_sim_api::usage::iso(until),
        "accounts": accounts})
    .to_string();
    let usage_args = ["usage".to_string(), "--max-concurrency".into(), args.concurrency.to_string()];
    let usage_args: Vec<&str> = usage_args.iter().map(String::as_str).collect();
    let mut runs: Vec<HostRun> =
        (0..args.runs.min(3)).map(|_| host.run_args(&usage_args, request.as_bytes(), TIMINGS)).collect();
    for run in &runs {
        ensure!(run.code == 0 && run.json["summary"]["read"] == args.accounts, "usage failed: {}", run.all_output());
    }
    runs.sort_by_key(|r| r.elapsed);
    let median = &runs[runs.len() / 2];
    let requests = median.json["summary"]["requests"].as_u64().unwrap_or(0);
    let floor_ms = (requests * 20) as f64 / args.concurrency as f64;
    let ms = median.elapsed.as_secs_f64() * 1000.0;
    println!();
    println!(
        "Usage (metered billing): {} accounts, one closed hour each, 20 ms latency, concurrency {}, median of {} runs",
        args.accounts,
        args.concurrency,
        runs.len()
    );
    println!(
        "  process {ms:.0} ms | requests {requests} | floor {floor_ms:.0} ms (requests x latency / connections) | \
         process/floor {:.2}x (target <= 1.5x) | peak RSS {:.1} MiB",
        ms / floor_ms,
        median.peak_rss_kib as f64 / 1024.0
    );
    println!("  {}", breakdown(median));
    Ok(())
}

/// The reconciliation of all accounts next to their sync, at 20 ms latency, same concurrency and
/// page size (median of `runs` each): it reads the whole list once, as a paging sync does.
fn reconcile_vs_sync(host: &Host, sim: &Simulator, args: &Args) -> Result<()> {
    sim.set_latency(Duration::from_millis(20));
    let statuses = ["Active", "Suspended"];
    let accounts: Vec<Value> = (0..args.accounts as u64)
        .map(|i| account(i + 1, 50_000 + i, statuses[(i % 2) as usize], Some(&(FIRST_UID + i).to_string())))
        .collect();
    let request = json!({"app": app(&sim.api_url(), SESSION), "accounts": accounts}).to_string();
    let (c, p) = (args.concurrency.to_string(), args.page_size.to_string());
    let median = |operation: &str| -> Result<(Duration, u64)> {
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            let run = host.run_args(&[operation, "--max-concurrency", &c, "--page-size", &p], request.as_bytes(), &[]);
            ensure!(run.code == 0, "{operation} failed: {}", run.all_output());
            let requests = run.json["meter"]["requests"].as_u64().unwrap_or(0);
            runs.push((run.elapsed, requests));
        }
        runs.sort();
        Ok(runs[runs.len() / 2])
    };
    let (sync, sync_requests) = median("sync")?;
    let (reconcile, reconcile_requests) = median("reconcile")?;
    println!();
    println!(
        "Reconciliation of {} accounts at 20 ms latency, whole process, median of {} runs:",
        args.accounts, args.runs
    );
    println!(
        "  sync {:.0} ms ({sync_requests} requests) | reconcile {:.0} ms ({reconcile_requests} requests) | reconcile/sync {:.2}x",
        sync.as_secs_f64() * 1000.0,
        reconcile.as_secs_f64() * 1000.0,
        reconcile.as_secs_f64() / sync.as_secs_f64()
    );
    Ok(())
}

/// The commit the "before" figures were measured at.
const BEFORE_COMMIT: &str = "af71146";
/// 10,000 accounts before: (latency ms, whole process ms, floor ms).
/// (Median of 7, interleaved with this code's runs on the same loaded 2-core machine.)
const BEFORE_10K: [(u64, f64, f64); 2] = [(0, 145.0, 0.0), (20, 154.0, 40.0)];
/// The scale section before: (accounts, what happened).
const BEFORE_SCALE: [(usize, &str); 3] = [
    (100_000, "1503 ms, 5.78x floor, RSS 154 MiB, module 59 MiB"),
    (300_000, "failed: module memory limit 128 MiB (exit 3)"),
    (1_000_000, "failed: request over the 64 MiB limit (exit 2); then the 128 MiB memory limit"),
];

/// Makes the host print where its time went (`host/src/timings.rs`).
const TIMINGS: &[(&str, &str)] = &[("HOSTBILL_MODULE_TIMINGS", "1")];

/// The host's phases (from its `timings_ms` stderr line) and the rest of the process's time.
fn breakdown(run: &HostRun) -> String {
    let Some(phases) = run
        .stderr
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v.get("timings_ms").cloned()))
        .and_then(|v| v.as_object().cloned())
    else {
        return "(this host prints no timings)".to_string();
    };
    let mut parts: Vec<String> = Vec::new();
    let mut sum = 0.0;
    for (name, ms) in &phases {
        let ms = ms.as_f64().unwrap_or(0.0);
        sum += ms;
        parts.push(format!("{name} {ms:.1}"));
    }
    parts.push(format!("exec+exit {:.1}", run.elapsed.as_secs_f64() * 1000.0 - sum));
    parts.join(" | ")
}

/// The sync of many accounts (`--scale`) with the host's default limits, at 20 ms latency: one run
/// each, checked by the count of each decision against the simulator's population.
fn scale(host: &Host, args: &Args) -> Result<()> {
    println!();
    println!("Scale: one sync each at 20 ms latency, default limits, concurrency {}", args.concurrency);
    println!(
        "{:>9} | {:>10} | {:>10} | {:>8} | {:>10} | {:>10} | {:>13} | {:>9} | {:>9} | before ({BEFORE_COMMIT})",
        "accounts", "process", "module", "floor", "proc/floor", "peak RSS", "module memory", "request", "report"
    );
    for &n in args.scale.iter().filter(|&&n| n > 0) {
        let users = population(n, FIRST_UID);
        let expected = expected_counts(&users);
        let sim = Simulator::start(SimConfig { session: SESSION.into(), accounts: users, ..SimConfig::default() })?;
        sim.set_latency(Duration::from_millis(20));
        let request = sync_request(&sim.api_url(), n);
        let c = args.concurrency.to_string();
        let mut sync_args = vec!["sync", "--max-concurrency", &c];
        sync_args.extend(args.report_flags());
        let run = host.run_lean(&sync_args, request.as_bytes(), TIMINGS);
        let before = BEFORE_SCALE.iter().find(|(count, _)| *count == n).map_or("-", |(_, text)| text);
        if run.code != 0 {
            println!(
                "{n:>9} | failed (exit {}): {} | {before}",
                run.code,
                run.error_message().chars().take(120).collect::<String>()
            );
            continue;
        }
        let counts = &run.json["decisions"];
        for (kind, count) in &expected {
            ensure!(counts[kind] == *count as u64, "{n} accounts: expected {count} {kind}, got {counts}");
        }
        let s = &run.json["summary"];
        let module_ms = s["elapsed_ms"].as_u64().unwrap_or(0) as f64;
        let requests = s["requests"].as_u64().unwrap_or(0);
        let floor_ms = (20 * rounds(requests, args.concurrency as u64)) as f64;
        let process_ms = run.elapsed.as_secs_f64() * 1000.0;
        let peak_rss = run.peak_rss_kib.max(s["peak_rss_kib"].as_u64().unwrap_or(0));
        let module_memory = run.json["meter"]["peak_memory_bytes"].as_u64().unwrap_or(0);
        println!(
            "{n:>9} | {:>8.0}ms | {:>8.0}ms | {:>6.0}ms | {:>9.2}x | {:>6.0} MiB | {:>9.0} MiB | {:>5.0} MiB | {:>5.0} MiB | {before}",
            process_ms,
            module_ms,
            floor_ms,
            process_ms / floor_ms,
            peak_rss as f64 / 1024.0,
            module_memory as f64 / (1024.0 * 1024.0),
            request.len() as f64 / (1024.0 * 1024.0),
            run.stdout.len() as f64 / (1024.0 * 1024.0),
        );
        println!("{:>9} | {}", "", breakdown(&run));
    }
    println!("module memory: the module's peak linear memory (report meter); peak RSS: the host process's VmHWM");
    Ok(())
}

/// How many of each decision the bench population must get (odd accounts are Active in HostBill,
/// even ones Suspended).
fn expected_counts(users: &[cloudpe_e2e::Account]) -> Vec<(&'static str, usize)> {
    let (mut change, mut unchanged) = (0, 0);
    for (i, user) in users.iter().enumerate() {
        let hostbill = if i % 2 == 0 { "Active" } else { "Suspended" };
        let remote = match (user.status, user.is_enabled) {
            (1, Some(false)) | (2, _) => "Suspended",
            (1, _) => "Active",
            _ => "Terminated",
        };
        if hostbill == remote {
            unchanged += 1;
        } else {
            change += 1;
        }
    }
    vec![("change", change), ("unchanged", unchanged), ("error", 0), ("skipped", 0)]
}

/// The sync request of the bench's `n` accounts, written directly (a JSON tree of a million
/// accounts would cost the benchmark a gigabyte).
fn sync_request(api_url: &str, n: usize) -> String {
    use std::fmt::Write as _;
    let mut out = format!(r#"{{"app":{},"accounts":["#, app(api_url, SESSION));
    let statuses = ["Active", "Suspended"];
    for i in 0..n as u64 {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"id":{},"client_id":{},"status":"{}","custom_fields":{{"cloudpeid":"{}"}}}}"#,
            i + 1,
            50_000 + i,
            statuses[(i % 2) as usize],
            FIRST_UID + i
        );
    }
    out.push_str("]}");
    out
}

/// Sequential rounds for `requests` at `concurrency`, counting the first round of pages, which
/// must come back before the rest are known.
fn rounds(requests: u64, concurrency: u64) -> u64 {
    requests.div_ceil(concurrency.max(1)).max(1)
}

/// Every decision agrees with the simulator's data (the benchmark must not time a wrong answer).
fn check_decisions(run: &HostRun, sim: &Simulator) -> Result<()> {
    for d in run.json["decisions"].as_array().context("decisions")? {
        let uid = FIRST_UID + d["account_id"].as_u64().context("id")? - 1;
        let remote = sim.account(uid).context("user")?;
        let expected = match (remote.status, remote.is_enabled) {
            (1, Some(false)) | (2, _) => "Suspended",
            (1, _) => "Active",
            _ => "Terminated",
        };
        let decided = match d["decision"].as_str() {
            Some("change") => d["to"].as_str().unwrap_or(""),
            Some("unchanged") => {
                if d["account_id"].as_u64().unwrap_or(0) % 2 == 1 {
                    "Active"
                } else {
                    "Suspended"
                }
            }
            other => anyhow::bail!("unexpected decision {other:?}: {d}"),
        };
        ensure!(decided == expected, "wrong decision for uid {uid}: {d}");
    }
    Ok(())
}

/// The old module's sync: for each account, a new connection and a GET
/// `getaccounts?filterField=uid&filterValue=ID`, reading `array[0]`.
fn old_algorithm(addr: SocketAddr, accounts: usize) -> Result<Duration> {
    let started = Instant::now();
    for i in 0..accounts as u64 {
        let uid = FIRST_UID + i;
        let mut stream = TcpStream::connect(addr)?;
        write!(
            stream,
            "GET /1.0/billing/account/rest/getaccounts?appid=cluster&session={SESSION}&filterField=uid&filterValue={uid} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let reply: Value = serde_json::from_str(body)?;
        ensure!(reply["array"][0]["status"].is_i64(), "old algorithm got no account for {uid}");
    }
    Ok(started.elapsed())
}

/// What the network and the simulator alone cost a sync of `pages` pages: a client that knows
/// how many pages there are (no first round to learn it), fetches them on `concurrency` kept-alive
/// connections, each thread taking the next page, and reads each answer without parsing it. From
/// before the connections open to the last byte of the last page.
fn bare_paging(addr: SocketAddr, pages: u64, page_size: u32, concurrency: u32) -> Result<Duration> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..u64::from(concurrency.max(1)).min(pages))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let mut stream = TcpStream::connect(addr)?;
                    stream.set_nodelay(true)?;
                    let mut reader = std::io::BufReader::new(stream.try_clone()?);
                    loop {
                        let page = next.fetch_add(1, Ordering::Relaxed);
                        if page >= pages {
                            return Ok(());
                        }
                        // One write per request (with Nagle off): a request split over
                        // writes waits for the server's delayed ACK.
                        let request = format!(
                            "GET /1.0/billing/account/rest/getaccounts?appid=cluster&session={SESSION}&orderField=uid&orderDirection=ASC&startRow={}&resultCount={page_size} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
                            page * u64::from(page_size)
                        );
                        stream.write_all(request.as_bytes())?;
                        read_response(&mut reader)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("bare client panicked"))?)
    })?;
    Ok(started.elapsed())
}

/// Reads one HTTP/1.1 answer with a `content-length` off a kept-alive connection; its body length.
fn read_response(reader: &mut impl std::io::BufRead) -> Result<usize> {
    let mut line = String::new();
    let mut length = None;
    let mut first = true;
    loop {
        line.clear();
        ensure!(reader.read_line(&mut line)? > 0, "connection closed in a response head");
        if first {
            ensure!(line.starts_with("HTTP/1.1 200"), "bare client: {}", line.trim_end());
            first = false;
        } else if line == "\r\n" {
            break;
        } else if let Some((_, value)) =
            line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            length = Some(value.trim().parse::<usize>()?);
        }
    }
    let length = length.context("no content-length")?;
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(length)
}

/// Module time of a sync of the first `n` accounts with each strategy, at 20 ms latency.
fn crossover(host: &Host, sim: &Simulator, concurrency: u32) -> Result<()> {
    sim.set_latency(Duration::from_millis(20));
    println!();
    println!("Crossover at 20 ms latency: module time (requests) for a few accounts, by strategy");
    println!("{:>9} | {:>18} | {:>18} | {:>18}", "accounts", "exact lookups", "page all", "auto");
    for n in [1u64, 4, 8, 16, 32, 64, 128, 512] {
        let accounts: Vec<Value> =
            (0..n).map(|i| account(i + 1, 50_000 + i, "Active", Some(&(FIRST_UID + i * 7).to_string()))).collect();
        let request = json!({"app": app(&sim.api_url(), SESSION), "accounts": accounts}).to_string();
        let mut cells = Vec::new();
        for strategy in ["exact-lookups", "page-all", "auto"] {
            let c = concurrency.to_string();
            let run =
                host.run_args(&["sync", "--strategy", strategy, "--max-concurrency", &c], request.as_bytes(), &[]);
            ensure!(run.code == 0, "{}", run.all_output());
            let s = &run.json["summary"];
            let (ms, requests) = (s["elapsed_ms"].as_u64().unwrap_or(0), s["requests"].as_u64().unwrap_or(0));
            cells.push(format!("{ms:>6} ms ({requests:>4})"));
        }
        println!("{n:>9} | {} | {} | {}", cells[0], cells[1], cells[2]);
    }
    Ok(())
}

/// Exact lookups of [`POOL_ACCOUNTS`] accounts at 20 ms latency (TCP and TLS handshakes cost a
/// round trip each in the simulator): plain HTTP and HTTPS with the host's keep-alive pool, and
/// HTTPS with one connection per request (`--no-keep-alive`), side by side.
fn keep_alive(host: &Host, concurrency: u32, runs: usize) -> Result<()> {
    const POOL_ACCOUNTS: u64 = 200;
    const LATENCY: Duration = Duration::from_millis(20);
    let ca = cloudpe_e2e::TestCa::new();
    let bundle = cloudpe_e2e::harness::target_dir().join(format!("bench-ca-{}.pem", std::process::id()));
    std::fs::write(&bundle, ca.pem())?;
    let bundle_arg = bundle.to_str().context("bundle path")?.to_string();
    let start = |tls: bool| {
        Simulator::start(SimConfig {
            session: SESSION.into(),
            accounts: population(POOL_ACCOUNTS as usize, FIRST_UID),
            latency: LATENCY,
            tls: tls.then(|| ca.server(&["127.0.0.1"])),
            ..SimConfig::default()
        })
    };
    let accounts: Vec<Value> =
        (0..POOL_ACCOUNTS).map(|i| account(i + 1, 50_000 + i, "Active", Some(&(FIRST_UID + i).to_string()))).collect();

    println!();
    println!(
        "Connections: exact lookups of {POOL_ACCOUNTS} accounts at {} ms latency, concurrency {concurrency}, median of {runs} runs",
        LATENCY.as_millis()
    );
    println!("(the simulator charges a round trip per TCP connection, per TLS handshake and per request)");
    println!(
        "{:>26} | {:>9} | {:>9} | {:>11} | {:>14} | {:>8} | {:>11}",
        "", "process", "module", "connections", "TLS handshakes", "requests", "round trips"
    );
    let cases: [(&str, bool, bool); 3] =
        [("HTTP, kept alive", false, true), ("HTTPS, kept alive", true, true), ("HTTPS, one per request", true, false)];
    let mut walls = Vec::new();
    let mut trips = Vec::new();
    for (label, tls, keep_alive) in cases {
        let sim = start(tls)?;
        let request = json!({"app": app(&sim.api_url(), SESSION), "accounts": accounts}).to_string();
        let c = concurrency.to_string();
        let mut sync_args = vec!["sync", "--strategy", "exact-lookups", "--max-concurrency", &c];
        if tls {
            sync_args.extend(["--ca-bundle", &bundle_arg]);
        }
        if !keep_alive {
            sync_args.push("--no-keep-alive");
        }
        let mut measured = Vec::new();
        for _ in 0..runs.max(1) {
            let before = (sim.connection_count(), sim.tls_handshake_count(), sim.request_count());
            let run = host.run_args(&sync_args, request.as_bytes(), &[]);
            ensure!(run.code == 0, "{label}: sync failed: {}", run.all_output());
            let decisions = run.json["decisions"].as_array().context("decisions")?;
            ensure!(
                decisions.iter().all(|d| matches!(d["decision"].as_str(), Some("change" | "unchanged"))),
                "{label}: a lookup failed: {}",
                run.stdout
            );
            let module_ms = run.json["summary"]["elapsed_ms"].as_u64().unwrap_or(0);
            let counts = (
                sim.connection_count() - before.0,
                sim.tls_handshake_count() - before.1,
                sim.request_count() - before.2,
            );
            measured.push((run.elapsed, module_ms, counts));
        }
        measured.sort_by_key(|m| m.0);
        let (wall, module_ms, (connections, handshakes, requests)) = measured[measured.len() / 2];
        let round_trips = connections + handshakes + requests;
        println!(
            "{label:>26} | {:>7.0}ms | {module_ms:>7}ms | {connections:>11} | {handshakes:>14} | {requests:>8} | {round_trips:>11}",
            wall.as_secs_f64() * 1000.0
        );
        walls.push(wall.as_secs_f64());
        trips.push(round_trips as f64);
    }
    println!(
        "HTTPS kept alive / HTTP kept alive, wall time: {:.2}x (target <= 1.3x); round trips, one per request / kept alive: {:.1}x (target >= 2x)",
        walls[1] / walls[0],
        trips[2] / trips[1]
    );
    let _ = std::fs::remove_file(bundle);
    Ok(())
}
