//! The command line. Every limit has a flag and an environment variable; defaults live in
//! [`crate::sandbox::limits::Limits`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::sandbox::limits::Limits;

/// Runs a HostBill hosting module (a sandboxed WebAssembly component) for one operation.
///
/// Operations read a JSON request on stdin and print one JSON report on stdout.
/// Exit codes: 0 success, 1 the operation failed, 2 bad input (nothing ran),
/// 3 the module was refused or stopped (not a compatible component, trap, deadline, memory
/// limit, or a request outside the App's endpoint).
#[derive(Debug, Parser)]
#[command(name = "hostbill-module-host", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: Global,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The module component (.wasm) to run.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_COMPONENT", value_name = "FILE")]
    pub component: Option<PathBuf>,

    /// Memory limit of the module, in MiB [default: 128; for a sync, 128 plus 1024 bytes per
    /// account past 100,000, at most 1024].
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MEMORY_MIB", value_name = "MIB")]
    pub memory_mib: Option<usize>,

    /// Wall-clock deadline of the whole operation, in seconds.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_DEADLINE_SECS", value_name = "SECS", default_value_t = Limits::default().deadline.as_secs_f64())]
    pub deadline_secs: f64,

    /// Ceiling on each outgoing request's connect timeout, in seconds.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_CONNECT_TIMEOUT_SECS", value_name = "SECS", default_value_t = Limits::default().connect_timeout.as_secs_f64())]
    pub connect_timeout_secs: f64,

    /// Ceiling on each outgoing request's read timeouts (first byte, between bytes), in seconds.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_READ_TIMEOUT_SECS", value_name = "SECS", default_value_t = Limits::default().read_timeout.as_secs_f64())]
    pub read_timeout_secs: f64,

    /// Largest response body the module may receive, in MiB.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MAX_RESPONSE_MIB", value_name = "MIB", default_value_t = Limits::default().max_response_bytes / (1024 * 1024))]
    pub max_response_mib: usize,

    /// Most outgoing requests the module may have in flight at once, and most connections the
    /// host keeps open (in use or idle).
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MAX_CONNECTIONS", value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,

    /// Open a new connection for every request instead of keeping connections open for reuse
    /// (by default connections stay open, at most --max-connections of them).
    #[arg(long, global = true, env = "HOSTBILL_MODULE_NO_KEEP_ALIVE", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub no_keep_alive: bool,

    /// Largest request read from stdin, in MiB.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MAX_REQUEST_MIB", value_name = "MIB", default_value_t = Limits::default().max_request_bytes / (1024 * 1024))]
    pub max_request_mib: usize,

    /// Largest report printed on stdout, in MiB; a longer one is replaced by an error [default:
    /// 48; for a sync, 512 bytes per decision when that is more, at most 1024].
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MAX_REPORT_MIB", value_name = "MIB")]
    pub max_report_mib: Option<usize>,

    /// Most host-side resources (HTTP requests, header sets, bodies, streams) the module may
    /// hold at once.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MAX_HOST_RESOURCES", value_name = "N", default_value_t = Limits::default().max_host_resources)]
    pub max_host_resources: usize,

    /// Largest header set the module may build or receive, in KiB.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_MAX_HEADER_KIB", value_name = "KIB", default_value_t = Limits::default().max_header_bytes / 1024)]
    pub max_header_kib: usize,

    /// PEM file of extra CA certificates to trust for the API's TLS (a private CA); the standard
    /// roots are always trusted.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Folder of the compiled-component cache, owned by this user and writable by nobody else
    /// (created 0700) [default: $XDG_CACHE_HOME or $HOME/.cache, then hostbill-module-host;
    /// neither set: compile in memory].
    #[arg(long, global = true, env = "HOSTBILL_MODULE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// File of the cache's authentication key, outside the cache folder (created 0600 with a
    /// random key when missing) [default: the cache folder's path plus ".key"].
    #[arg(long, global = true, env = "HOSTBILL_MODULE_CACHE_KEY_FILE", value_name = "FILE")]
    pub cache_key_file: Option<PathBuf>,

    /// Compile the component in memory; neither read nor write the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Public key(s) whose signatures are trusted: a PEM file (several keys may follow each
    /// other) or a folder of `*.pem` / `*.pub` files. A component runs only if `<FILE>.sig`
    /// verifies against one of them.
    #[arg(long, global = true, env = "HOSTBILL_MODULE_TRUSTED_KEYS", value_name = "PATH")]
    pub trusted_keys: Option<PathBuf>,

    /// Run components that are unsigned or whose signature does not verify (development only).
    #[arg(long, global = true, env = "HOSTBILL_MODULE_ALLOW_UNSIGNED", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub allow_unsigned: bool,

    /// Pretty-print the JSON report.
    #[arg(long, global = true)]
    pub pretty: bool,
}

impl Global {
    /// The compiled-component cache to use, if any. Without `--cache-dir` and without a home
    /// folder there is none (a shared temporary folder is not safe): says so once on stderr.
    pub fn cache(&self) -> Option<crate::cache::Cache> {
        if self.no_cache {
            return None;
        }
        let Some(dir) = self.cache_dir.clone().or_else(crate::cache::default_dir) else {
            tracing::warn!(
                "no compiled-component cache: neither --cache-dir, XDG_CACHE_HOME nor HOME is set; compiling in memory"
            );
            return None;
        };
        Some(crate::cache::Cache::new(dir, self.cache_key_file.clone()))
    }

    /// The signature policy these options describe.
    pub fn trust(&self) -> Result<crate::trust::TrustPolicy, TrustedKeysError> {
        let keys = match &self.trusted_keys {
            Some(path) => Some(crate::trust::load_keys(path)?),
            None => None,
        };
        Ok(crate::trust::TrustPolicy { keys, allow_unsigned: self.allow_unsigned })
    }

    /// The limits for a sync of `accounts` accounts: those of [`Self::limits`], with the memory
    /// and report limits that were not given following the input (see `limits.rs`).
    pub fn sync_limits(&self, accounts: usize) -> Result<Limits, LimitError> {
        let mut limits = self.limits()?;
        if self.memory_mib.is_none() {
            limits.memory_bytes = crate::sandbox::limits::default_sync_memory_bytes(accounts);
        }
        if self.max_report_mib.is_none() {
            limits.max_report_bytes = crate::sandbox::limits::default_report_bytes(accounts);
        }
        Ok(limits)
    }

    /// The limits these options describe; each value must be positive.
    pub fn limits(&self) -> Result<Limits, LimitError> {
        let secs = |flag: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(LimitError { flag, range: "0 and 86400 seconds".into(), got: v.to_string() })
            }
        };
        let range = |flag: &'static str, v: usize, max: usize| {
            if (1..=max).contains(&v) {
                Ok(v)
            } else {
                Err(LimitError { flag, range: format!("1 and {max}"), got: v.to_string() })
            }
        };
        let defaults = Limits::default();
        let memory_mib = range("memory-mib", self.memory_mib.unwrap_or(defaults.memory_bytes / (1024 * 1024)), 4096)?;
        let max_report_mib = self.max_report_mib.unwrap_or(defaults.max_report_bytes / (1024 * 1024));
        let max_response_mib = range("max-response-mib", self.max_response_mib, 1024)?;
        let max_connections = range("max-connections", self.max_connections, 256)?;
        Ok(Limits {
            max_request_bytes: range("max-request-mib", self.max_request_mib, 4096)? * 1024 * 1024,
            max_report_bytes: range("max-report-mib", max_report_mib, 4096)? * 1024 * 1024,
            max_host_resources: range("max-host-resources", self.max_host_resources, 1_000_000)?,
            max_header_bytes: range("max-header-kib", self.max_header_kib, 64 * 1024)? * 1024,
            max_response_bytes: max_response_mib * 1024 * 1024,
            max_connections,
            keep_alive: !self.no_keep_alive,
            memory_bytes: memory_mib * 1024 * 1024,
            deadline: secs("deadline-secs", self.deadline_secs)?,
            connect_timeout: secs("connect-timeout-secs", self.connect_timeout_secs)?,
            read_timeout: secs("read-timeout-secs", self.read_timeout_secs)?,
        })
    }
}

/// A limit flag outside its range.
#[derive(Debug, Clone, thiserror::Error)]
#[error("--{flag} must be between {range}, got {got}")]
pub struct LimitError {
    pub flag: &'static str,
    /// `1 and 4096`, `0 and 86400 seconds`.
    pub range: String,
    pub got: String,
}

/// The operations.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the module's name, version, WIT package version and the App fields it uses.
    Info,
    /// Compile the component into the cache, so the next operations start fast.
    Precompile,
    /// Check the component, the cache, the App's URL, DNS, TCP reach and the credentials, one line
    /// each (human-readable; exit 1 if any check fails). Stdin: {"app": {...}}
    Doctor(DoctorArgs),
    /// Check that the App settings reach the API and the credentials work; then (a 2.4 module)
    /// probe which optional remote methods the credentials may call. Stdin: {"app": {...}}
    TestConnection,
    /// Link a new HostBill account: to the remote id its client holds, else (a 2.4 module) to the
    /// one remote user with the client's email, or one it creates where the App allows.
    /// Stdin: {"app": {...}, "account": {...}, "client_email": "...", "product": {...}}
    Create,
    /// Apply the product's settings (the CloudPe group) to the account's remote user after an
    /// upgrade or downgrade, and read it back (a 2.4 module).
    /// Stdin: {"app": {...}, "account": {...}, "client_email": "...", "product": {"CloudPe group": "..."}}
    ChangePackage,
    /// List the choices of a product option filled from the remote side (a 2.4 module); changes
    /// nothing. Stdin: {"app": {...}, "option": "CloudPe group"}
    OptionChoices,
    /// Suspend the account remotely. Stdin: {"app": {...}, "account": {...}}
    Suspend,
    /// Unsuspend the account remotely. Stdin: {"app": {...}, "account": {...}}
    Unsuspend,
    /// Terminate the account (what it does remotely is the module's policy). Stdin: {"app": {...}, "account": {...}}
    Terminate,
    /// Decide, per account, the HostBill status to record. Stdin: {"app": {...}, "accounts": [...]}
    Sync(SyncArgs),
    /// Compare the accounts (with their clients' emails) with the remote users; a 2.4 module also
    /// proposes links and reports group drift; read-only on both sides.
    /// Stdin: {"app": {...}, "accounts": [{..., "email": "...", "product": {...}}]}
    Reconcile(ReconcileArgs),
    /// Read each account's usage, hour by hour, over its window [usage_from, usage_until), for
    /// metered billing. Stdin: {"app": {...}, "usage_until": "...", "accounts": [{..., "usage_from": "..."}]}
    Usage(UsageArgs),
    /// Install a new component file as --component after checking it (signature, contract
    /// version, compiles); the one it replaces is kept as `<component>.previous`.
    Install(InstallArgs),
    /// Switch --component back to the one it replaced (`<component>.previous`); running it again
    /// switches forward.
    Rollback,
}

/// Options of `install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The new component file (its signature is `<NEW>.sig`).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
}

/// Options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Accept a plain-HTTP App URL (e.g. an API reachable only on a private network).
    #[arg(long)]
    pub allow_http: bool,
}

/// How the module reads the remote list (`sync` and `reconcile`).
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Most requests the module may have in flight at once.
    #[arg(long, env = "HOSTBILL_MODULE_MAX_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_concurrency: u32,

    /// Accounts per page when the module pages through the remote account list.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub page_size: u32,

    /// Attempts per read request (1 = no retry); retries back off exponentially with jitter.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,
}

/// Options of `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    /// How the module reads the remote state.
    #[arg(long, value_enum, default_value_t = Strategy::Auto)]
    pub strategy: Strategy,

    /// Report what would change without marking anything to apply: the report carries
    /// `"dry_run": true` and `would-change` decisions, which HostBill must not write.
    #[arg(long)]
    pub dry_run: bool,

    /// Print `unchanged` decisions without their CloudPe facts. HostBill's daily sync reads only
    /// the changes; on a large App, where nearly every account is unchanged, the report is then
    /// a fraction of its size (HostBill reads at most 64 MiB of it, and decodes all of it).
    #[arg(long)]
    pub omit_unchanged_facts: bool,
}

/// Options of `reconcile` (it always pages through the whole list).
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Options of `usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Most requests the module may have in flight at once (one request per account).
    #[arg(long, env = "HOSTBILL_MODULE_MAX_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_concurrency: u32,

    /// Attempts per read request (1 = no retry); retries back off exponentially with jitter.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,
}

/// `--strategy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Exact lookups for a few accounts, paging for many (by request count).
    Auto,
    /// Page through the whole remote account list.
    PageAll,
    /// One exact lookup per distinct remote account.
    ExactLookups,
}

impl Command {
    /// The operation's name, as printed in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Info => "info",
            Command::Precompile => "precompile",
            Command::Doctor(_) => "doctor",
            Command::TestConnection => "test-connection",
            Command::Create => "create",
            Command::ChangePackage => "change-package",
            Command::OptionChoices => "option-choices",
            Command::Suspend => "suspend",
            Command::Unsuspend => "unsuspend",
            Command::Terminate => "terminate",
            Command::Sync(_) => "sync",
            Command::Reconcile(_) => "reconcile",
            Command::Usage(_) => "usage",
            Command::Install(_) => "install",
            Command::Rollback => "rollback",
        }
    }
}
/// Why `--trusted-keys` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustedKeysError {
    #[error("--trusted-keys: {0}")]
    Path(#[from] crate::trust::KeyPathError),
}
