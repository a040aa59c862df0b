//! `cloudpe-startup-bench` (run by `cargo xtask bench-startup`): whole-process wall time and peak
//! RSS of one `suspend` against the simulated CloudPe, with a compile cache that lacks the
//! component (cold: the first run after a component swap) and one that has it (warm), side by side in one run with a bare
//! `curl` process sending the same request. With `--baseline-host`, a second host binary (an
//! older build) is timed in the same run, each of its runs next to the same run of this host.
//!
//! When `CLOUDPE_TRUSTED_KEYS` names the key that signed the component (`cargo xtask
//! bench-startup` signs it), the hosts verify its signature as a HostBill install does
//! (`--trusted-keys`); otherwise they run it unverified.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use cloudpe_e2e::harness::{Host, HostRun, account, app, target_dir, wait_with_usage};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::{Value, json};

const SESSION: &str = "startup-bench-session-4d1a";

#[derive(Parser)]
struct Args {
    /// Cold runs per host (each with an empty cache).
    #[arg(long, default_value_t = 10)]
    cold: usize,
    /// Warm runs per host, and curl runs.
    #[arg(long, default_value_t = 40)]
    warm: usize,
    /// Another host binary (e.g. an older build) to time in the same run, interleaved.
    #[arg(long, value_name = "FILE")]
    baseline_host: Option<PathBuf>,
}

struct Sample {
    wall: Duration,
    rss_kib: u64,
    /// The host's phases (`HOSTBILL_MODULE_TIMINGS`), in milliseconds.
    phases: Vec<(String, f64)>,
}

/// The median wall time and the largest peak RSS of `samples`.
fn median(samples: &[Sample]) -> (Duration, u64) {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    walls.sort();
    let rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    (walls[walls.len() / 2], rss)
}

/// Each phase's median over `samples` (phases by name).
fn phase_medians(samples: &[Sample]) -> String {
    let mut all: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (name, ms) in samples.iter().flat_map(|s| &s.phases) {
        all.entry(name).or_default().push(*ms);
    }
    if all.is_empty() {
        return "(this host prints no timings)".to_string();
    }
    all.iter_mut()
        .map(|(name, values)| {
            values.sort_by(f64::total_cmp);
            format!("{name} {:.2}", values[values.len() / 2])
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One host under test: its name in the table, the binary, and its samples.
struct Timed {
    name: String,
    host: Host,
    cold: Vec<Sample>,
    warm: Vec<Sample>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let host = Host::from_env();
    let keys = std::env::var_os("CLOUDPE_TRUSTED_KEYS").map(PathBuf::from);
    let sim = Simulator::start(SimConfig {
        session: SESSION.into(),
        accounts: vec![Account::new(12, 1)],
        ..SimConfig::default()
    })?;
    let request =
        json!({"app": app(&sim.api_url(), SESSION), "account": account(1, 2, "Active", Some("12"))}).to_string();
    let scratch = target_dir().join("startup-bench");
    let _ = std::fs::remove_dir_all(&scratch);

    let mut hosts = vec![Timed { name: "host".into(), host: host.clone(), cold: vec![], warm: vec![] }];
    if let Some(bin) = &args.baseline_host {
        ensure!(bin.is_file(), "{} does not exist", bin.display());
        let baseline = Host { bin: bin.clone(), component: host.component.clone() };
        hosts.push(Timed { name: "baseline".into(), host: baseline, cold: vec![], warm: vec![] });
    }

    // Each host keeps one cache key (made by a first run that is not timed), as an install does:
    // a cold run is the first run after a component swap, a cache folder without its entry.
    let run = |t: &Timed, cache: &Path| -> Result<Sample> {
        let host = &t.host;
        let key_file = scratch.join(format!("{}.key", t.name));
        let mut flags = vec!["suspend"];
        let keys_arg;
        let mut env = vec![
            ("HOSTBILL_MODULE_CACHE_DIR", cache.to_str().context("a UTF-8 path")?),
            ("HOSTBILL_MODULE_CACHE_KEY_FILE", key_file.to_str().context("a UTF-8 path")?),
            ("HOSTBILL_MODULE_TIMINGS", "1"),
        ];
        if let Some(keys) = &keys {
            keys_arg = keys.to_str().context("a key path in UTF-8")?.to_string();
            flags.extend(["--trusted-keys", keys_arg.as_str()]);
            env.push(("HOSTBILL_MODULE_ALLOW_UNSIGNED", "false"));
        }
        let r: HostRun = host.run_args(&flags, request.as_bytes(), &env);
        ensure!(r.code == 0, "suspend failed: {}", r.all_output());
        Ok(Sample { wall: r.elapsed, rss_kib: r.peak_rss_kib, phases: phases(&r.stderr) })
    };
    for t in &hosts {
        run(t, &scratch.join(format!("{}-warm", t.name)))?;
    }
    // Interleaved: each round runs every host once, so a busy moment of the machine falls on all.
    for i in 0..args.cold {
        for t in &mut hosts {
            let sample = run(t, &scratch.join(format!("{}-cold-{i}", t.name)))?;
            t.cold.push(sample);
        }
    }
    let mut curl = Vec::new();
    for _ in 0..args.warm {
        for t in &mut hosts {
            let sample = run(t, &scratch.join(format!("{}-warm", t.name)))?;
            t.warm.push(sample);
        }
        curl.push(curl_once(&sim.api_url())?);
    }
    ensure!(sim.account(12).context("user 12")?.status == 2, "the suspends did not reach the simulator");

    let (curl_t, curl_rss) = median(&curl);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("Startup benchmark: one `suspend` (one POST setaccountstatus) against the simulated CloudPe");
    println!(
        "component {} ({})",
        host.component.display(),
        match &keys {
            Some(keys) => format!("signature verified with {}", keys.display()),
            None => "unverified: no CLOUDPE_TRUSTED_KEYS".to_string(),
        }
    );
    for t in &hosts {
        println!("{:<8} {}", t.name, t.host.bin.display());
    }
    println!();
    println!("{:<42} | {:>9} | {:>10} | {:>9} | {:>5}", "whole process", "median", "vs curl", "peak RSS", "runs");
    let row = |name: &str, (t, rss): (Duration, u64), n: usize| {
        println!(
            "{name:<42} | {:>6.1} ms | {:>9.2}x | {:>5.1} MiB | {n:>5}",
            ms(t),
            ms(t) / ms(curl_t),
            rss as f64 / 1024.0
        );
    };
    for t in &hosts {
        row(&format!("{}, cold (first run after a swap)", t.name), median(&t.cold), t.cold.len());
        row(&format!("{}, warm (cached component)", t.name), median(&t.warm), t.warm.len());
    }
    row("curl, same request", (curl_t, curl_rss), curl.len());
    println!();
    println!("phases, median ms (HOSTBILL_MODULE_TIMINGS):");
    for t in &hosts {
        println!("  {} cold: {}", t.name, phase_medians(&t.cold));
        println!("  {} warm: {}", t.name, phase_medians(&t.warm));
    }
    println!();
    let (cold_t, _) = median(&hosts[0].cold);
    let (warm_t, _) = median(&hosts[0].warm);
    println!("targets: warm <= 1.05x curl ({:.2}x); cold <= 300 ms ({:.0} ms)", ms(warm_t) / ms(curl_t), ms(cold_t));
    Ok(())
}

/// The host's phases from its `timings_ms` stderr line (none if it printed none).
fn phases(stderr: &str) -> Vec<(String, f64)> {
    let timings = stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v.get("timings_ms").cloned()));
    match timings {
        Some(Value::Object(map)) => map.into_iter().filter_map(|(k, v)| Some((k, v.as_f64()?))).collect(),
        _ => Vec::new(),
    }
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
    Ok(Sample { wall: started.elapsed(), rss_kib, phases: Vec::new() })
}
