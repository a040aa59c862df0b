//! `cloudpe-startup-bench` (run by `cargo xtask bench-startup`): whole-process wall time and peak
//! RSS of one `suspend` against the simulated CloudPe, with an empty compile cache (cold) and a
//! filled one (warm), side by side in one run with a bare `curl` process sending the same request.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use cloudpe_e2e::harness::{Host, HostRun, account, app, target_dir, wait_with_usage};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::json;

const SESSION: &str = "startup-bench-session-4d1a";

#[derive(Parser)]
struct Args {
    /// Cold runs (each with an empty cache).
    #[arg(long, default_value_t = 5)]
    cold: usize,
    /// Warm and curl runs.
    #[arg(long, default_value_t = 30)]
    warm: usize,
}

struct Sample {
    wall: Duration,
    rss_kib: u64,
}

fn median(mut samples: Vec<Sample>) -> (Duration, u64) {
    samples.sort_by_key(|s| s.wall);
    let rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    (samples[samples.len() / 2].wall, rss)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let host = Host::from_env();
    let sim = Simulator::start(SimConfig {
        session: SESSION.into(),
        accounts: vec![Account::new(12, 1)],
        ..SimConfig::default()
    })?;
    let request =
        json!({"app": app(&sim.api_url(), SESSION), "account": account(1, 2, "Active", Some("12"))}).to_string();
    let scratch = target_dir().join("startup-bench");
    let _ = std::fs::remove_dir_all(&scratch);

    let run = |cache: &Path| -> Result<Sample> {
        let r: HostRun =
            host.run_args(&["suspend"], request.as_bytes(), &[("HOSTBILL_MODULE_CACHE_DIR", cache.to_str().unwrap())]);
        ensure!(r.code == 0, "suspend failed: {}", r.all_output());
        Ok(Sample { wall: r.elapsed, rss_kib: r.peak_rss_kib })
    };
    let cold: Vec<Sample> = (0..args.cold).map(|i| run(&scratch.join(format!("cold-{i}")))).collect::<Result<_>>()?;
    let warm_cache = scratch.join("warm");
    run(&warm_cache)?;
    let warm: Vec<Sample> = (0..args.warm).map(|_| run(&warm_cache)).collect::<Result<_>>()?;
    let curl: Vec<Sample> = (0..args.warm).map(|_| curl_once(&sim.api_url())).collect::<Result<_>>()?;
    ensure!(sim.account(12).context("user 12")?.status == 2, "the suspends did not reach the simulator");

    let (cold_t, cold_rss) = median(cold);
    let (warm_t, warm_rss) = median(warm);
    let (curl_t, curl_rss) = median(curl);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("Startup benchmark: one `suspend` (one POST setaccountstatus) against the simulated CloudPe");
    println!("host {} | component {}", host.bin.display(), host.component.display());
    println!();
    println!("{:<34} | {:>9} | {:>10} | {:>9} | {:>9}", "whole process", "median", "vs curl", "peak RSS", "runs");
    for (name, t, rss, n) in [
        ("host, cold (empty compile cache)", cold_t, cold_rss, args.cold),
        ("host, warm (cached component)", warm_t, warm_rss, args.warm),
        ("curl, same request", curl_t, curl_rss, args.warm),
    ] {
        println!(
            "{name:<34} | {:>6.1} ms | {:>9.2}x | {:>5.1} MiB | {n:>9}",
            ms(t),
            ms(t) / ms(curl_t),
            rss as f64 / 1024.0
        );
    }
    println!();
    println!(
        "targets: warm <= 1.5x curl ({:.2}x) and <= 10 ms ({:.1} ms); cold <= 500 ms ({:.0} ms)",
        ms(warm_t) / ms(curl_t),
        ms(warm_t),
        ms(cold_t)
    );
    Ok(())
}

/// One `curl` process POSTing the same form a suspend sends.
fn curl_once(api_url: &str) -> Result<Sample> {
    let started = Instant::now();
    let mut child = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-X", "POST", "--data"])
        .arg(format!("appid=cluster&session={SESSION}&uid=12&status=2"))
        .arg(format!("{api_url}/billing/account/rest/setaccountstatus"))
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run curl")?;
    let (code, rss_kib) = wait_with_usage(&mut child, started);
    ensure!(code == 0, "curl failed with {code}");
    Ok(Sample { wall: started.elapsed(), rss_kib })
}
