//! `cloudpe-sim`: the simulated CloudPe API as a process, for the demo, benchmarks and manual
//! testing. Prints `listening on http://127.0.0.1:PORT` once ready, then serves until killed.
//! The usage oracle is at `GET /_sim/usage?uid=&from=&until=` (see `simulator/mod.rs`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cloudpe_e2e::{Account, FaultKind, FaultRule, GroupsShape, SimConfig, Simulator, population, sample_accounts};

/// A simulated CloudPe (Virtuozzo Application Platform) admin API on 127.0.0.1.
#[derive(Parser)]
#[command(name = "cloudpe-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The appid `getchecksum` accepts.
    #[arg(long, default_value_t = SimConfig::default().appid)]
    appid: String,
    /// The admin session token.
    #[arg(long, default_value_t = SimConfig::default().session)]
    session: String,
    /// Round-trip time, in milliseconds: delay before every answer, and before each new
    /// connection and TLS handshake is served.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Accounts from a JSON file (an array in the API's account shape).
    #[arg(long, conflicts_with_all = ["generate", "sample"])]
    accounts: Option<PathBuf>,
    /// Generate this many accounts (uids from --first-uid).
    #[arg(long)]
    generate: Option<usize>,
    /// First uid of generated accounts.
    #[arg(long, default_value_t = 1000)]
    first_uid: u64,
    /// The small demo population (the default).
    #[arg(long)]
    sample: bool,
    /// Inject a fault: KIND[:METHOD], KIND one of http500, html502, timeout, reset, truncated,
    /// or result=N (an API error); `applied-KIND` carries the call out first, then fails (a
    /// write applied whose reply is lost, e.g. applied-http500:createaccount). Repeatable.
    #[arg(long, value_name = "SPEC")]
    fault: Vec<String>,
    /// UTC offset of the billing history's times (the usage method), in seconds east of UTC
    /// (e.g. 19800 for +05:30).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    usage_offset_secs: i64,
    /// A method the session token may not call (answered with result 8202), e.g.
    /// getaccountbillinghistorybyperiodinner. Repeatable.
    #[arg(long, value_name = "METHOD")]
    deny_method: Vec<String>,
    /// Which user-creation paths exist: admin (system/admin/rest/createaccount, the default),
    /// users (users/account/rest/addaccount) or both; the other answers HTTP 404.
    #[arg(long, value_name = "VARIANT", default_value = "admin")]
    create_variant: cloudpe_sim_api::CreateVariant,
    /// How `getgroups` lists the groups: `objects` (`[{"name": "trial"}, ...]`, the default) or
    /// `names` (`["trial", ...]`); the real reply's shape is not documented.
    #[arg(long, value_name = "SHAPE", default_value = "objects")]
    groups_shape: GroupsShape,
    /// Exit after this many seconds.
    #[arg(long)]
    for_seconds: Option<u64>,
}

fn fault(spec: &str) -> Result<FaultRule> {
    let (kind, method) = match spec.split_once(':') {
        Some((k, m)) => (k, Some(m)),
        None => (spec, None),
    };
    let (applied, kind) = match kind.strip_prefix("applied-") {
        Some(kind) => (true, kind),
        None => (false, kind),
    };
    let kind = match kind {
        "http500" => FaultKind::Http500,
        "html502" => FaultKind::Html502,
        "timeout" => FaultKind::Timeout,
        "reset" => FaultKind::Reset,
        "truncated" => FaultKind::TruncatedJson,
        "stalled" => FaultKind::StalledBody,
        other => match other.strip_prefix("result=").map(str::parse::<i64>) {
            Some(Ok(result)) => FaultKind::ApiError { result, error: format!("simulated error {result}") },
            _ => bail!("unknown fault {other:?}: use http500, html502, timeout, reset, truncated, stalled or result=N"),
        },
    };
    let rule = FaultRule::new(if applied { kind.after_applying() } else { kind });
    Ok(match method {
        Some(m) => rule.method(m),
        None => rule,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let accounts: Vec<Account> = match (&args.accounts, args.generate) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON array of accounts", path.display()))?
        }
        (None, Some(n)) => population(n, args.first_uid),
        (None, None) => sample_accounts(),
    };
    let rules = args.fault.iter().map(|s| fault(s)).collect::<Result<Vec<_>>>()?;
    let count = accounts.len();
    let config = SimConfig {
        appid: args.appid,
        session: args.session,
        latency: Duration::from_millis(args.latency_ms),
        accounts,
        tls: None,
    };
    let sim = Simulator::start_on(config, args.port).context("cannot start the simulator")?;
    for rule in rules {
        sim.add_fault(rule);
    }
    sim.set_usage_offset(args.usage_offset_secs);
    for method in &args.deny_method {
        sim.deny_method(method);
    }
    sim.set_create_variant(args.create_variant);
    sim.set_groups_shape(args.groups_shape);
    println!("listening on {}", sim.base_url());
    std::io::stdout().flush()?;
    eprintln!("cloudpe-sim: {count} accounts, API at {}", sim.api_url());
    match args.for_seconds {
        Some(secs) => std::thread::sleep(Duration::from_secs(secs)),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
    Ok(())
}
