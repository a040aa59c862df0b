//! `hostbill-module-host`: runs a HostBill hosting module, compiled to a WASI 0.2 component, for
//! one operation per process. HostBill's PHP side writes a JSON request to stdin and reads one
//! JSON report from stdout; see `cli.rs` for the commands and `report.rs` for the output.
//!
//! The module runs sandboxed (`sandbox/`): it can reach only the origin of the App's endpoint
//! URL, within memory and time limits, with no filesystem, environment or stdio. Secrets are
//! scrubbed from everything printed (`scrub.rs`).

mod bindings;
mod cache;
mod cli;
mod compat;
mod doctor;
mod endpoint;
mod install;
mod operation;
mod progress;
mod report;
mod request;
mod request_usage;
mod runtime;
mod sandbox;
mod scrub;
mod secrets;
mod timings;
mod trust;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use clap::Parser;

use cli::{Cli, Command};
use operation::Request;
use report::stdout::{Streamed, SyncSetup, SyncWriter};
use report::usage::{UsageSetup, UsageWriter};
use report::{Active, Body, ErrorKind, ErrorReport, Exit, Report};
use request::RequestError;
use sandbox::decisions::SharedSink;
use sandbox::limits::Limits;
use scrub::Scrubber;

/// The static (musl) build uses jemalloc: musl's own allocator makes compiling a component about
/// twice as slow (see host/Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// It also links `memcpy` and `memmove` of its own in place of musl's (see host/fastmem).
#[cfg(target_env = "musl")]
use fastmem as _;

/// Disables core dumps for this process, hard limit included (it cannot raise it again): a crash
/// would otherwise write the module's memory, the session token in it, to disk. A failure is only
/// warned about: the operation is still worth running.
fn no_core_dumps() {
    use rustix::process::{Resource, Rlimit, setrlimit};
    if let Err(e) = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }) {
        tracing::warn!("cannot disable core dumps (RLIMIT_CORE): {e}");
    }
}

fn main() {
    timings::start();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOSTBILL_MODULE_LOG")
                .unwrap_or_else(|_| "warn,wasmtime_wasi_http=error".into()),
        )
        .with_writer(scrub::ScrubbedStderr)
        .init();
    no_core_dumps();
    let cli = Cli::parse();
    timings::mark("args");
    let exit = match &cli.command {
        Command::Doctor(args) => run_doctor(&cli, args.allow_http),
        _ => run(&cli),
    };
    timings::mark("report-write");
    timings::print();
    // The report is out: exit without dropping the module's result, which for a large sync is
    // millions of small allocations the process would free one by one for nothing.
    std::process::exit(exit as i32)
}

/// Runs the command (all but `doctor`), prints its one report, and returns the exit code.
fn run(cli: &Cli) -> Exit {
    let started = std::time::Instant::now();
    let Executed { mut report, scrubber, sync, usage, limits } = execute(cli);
    report.meter.wall_ms = started.elapsed().as_millis() as u64;
    let mut sync = sync.as_ref().map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let mut usage = usage.as_ref().map(|s| s.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let streamed: Option<&mut dyn Streamed> = match (sync.as_deref_mut(), usage.as_deref_mut()) {
        (Some(sync), _) => Some(sync),
        (None, Some(usage)) => Some(usage),
        (None, None) => None,
    };
    let exit = report::stdout::print(
        report,
        streamed,
        &scrubber,
        cli.global.pretty,
        limits.max_report_bytes,
        limits.named_report(),
    );
    tracing::debug!("report written at {:?}", started.elapsed());
    exit
}

/// `doctor`: human-readable lines on stdout; exit 1 if any check fails, 2 on bad input.
fn run_doctor(cli: &Cli, allow_http: bool) -> Exit {
    let fail = |message: String| {
        let _ = writeln!(std::io::stdout(), "FAIL  {:<18} {message}", "input");
        Exit::BadInput
    };
    let (Ok(limits), Some(component)) = (cli.global.limits(), cli.global.component.as_deref()) else {
        return fail("pass --component FILE (or set HOSTBILL_MODULE_COMPONENT) and valid limits".to_string());
    };
    let stdin = match read_request(&limits) {
        Ok(stdin) => stdin,
        Err(error) => return fail(error.message),
    };
    let app = match request::parse::<request::AppRequest>(&stdin) {
        Ok(request) => request.app,
        Err(error) => return fail(secrets::secrets_of_raw(&stdin).text(&error.to_string()).into_owned()),
    };
    let tls = match cli.global.ca_bundle.as_deref().map(sandbox::tls::client_config).transpose() {
        Ok(tls) => tls,
        Err(message) => return fail(message),
    };
    let Ok(tokio) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else {
        return fail("cannot start the async runtime".to_string());
    };
    let trust = match cli.global.trust() {
        Ok(trust) => trust,
        Err(e) => return fail(e.to_string()),
    };
    let lines = tokio.block_on(doctor::run(component, cli.global.cache(), &app, allow_http, &limits, tls, &trust));
    let mut stdout = std::io::stdout().lock();
    for line in &lines {
        let _ = writeln!(stdout, "{line}");
    }
    if lines.iter().any(|l| l.verdict == doctor::Verdict::Fail) { Exit::OperationFailed } else { Exit::Success }
}

/// What a run produced: its report, the secrets to scrub from it, a sync's decision writer
/// (which may have begun the report on stdout already), and the limits it ran under.
struct Executed {
    report: Report,
    scrubber: Scrubber,
    sync: Option<Arc<Mutex<SyncWriter>>>,
    /// A usage read's result writer, likewise.
    usage: Option<Arc<Mutex<UsageWriter>>>,
    limits: Limits,
}

/// Runs the command (all but `doctor`).
fn execute(cli: &Cli) -> Executed {
    let operation = cli.command.name();
    let defaults = cli.global.limits().unwrap_or_default();
    let failed = |kind: ErrorKind, message: String, scrubber: Scrubber, limits: Limits| Executed {
        report: Report::failed(operation, ErrorReport::new(kind, message)),
        scrubber,
        sync: None,
        usage: None,
        limits,
    };
    let bad_input =
        |message: String, scrubber: Scrubber, limits: Limits| failed(ErrorKind::BadInput, message, scrubber, limits);
    let limits = match cli.global.limits() {
        Ok(limits) => limits,
        Err(error) => return bad_input(error.to_string(), Scrubber::default(), defaults),
    };
    let Some(component) = cli.global.component.as_deref() else {
        return bad_input(
            "no component given: pass --component FILE or set HOSTBILL_MODULE_COMPONENT".to_string(),
            Scrubber::default(),
            limits,
        );
    };
    let trust = match cli.global.trust() {
        Ok(trust) => trust,
        Err(e) => return bad_input(e.to_string(), Scrubber::default(), limits),
    };
    // What is loaded: the component, or for install/rollback the one that is to become active.
    let load_path = match &cli.command {
        Command::Install(args) => args.new.clone(),
        Command::Rollback => install::previous_path(component),
        _ => component.to_path_buf(),
    };
    if matches!(cli.command, Command::Install(_) | Command::Rollback) && !load_path.is_file() {
        return bad_input(
            format!("{} does not exist: nothing to {operation}", load_path.display()),
            Scrubber::default(),
            limits,
        );
    }
    // The component loads (from the cache, or compiled) on a thread of its own while the request
    // is read and parsed: the two are independent and each takes a few milliseconds.
    let cache = cli.global.cache();
    let (parsed, stdin, loaded) = std::thread::scope(|scope| {
        let loader = scope.spawn(|| runtime::Runtime::load(&load_path, cache.as_ref(), &trust));
        let (parsed, stdin) = read_and_parse(&cli.command, &limits);
        let loaded = loader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (parsed, stdin, loaded)
    });
    timings::mark("load");
    let mut request = match parsed {
        Ok(request) => request,
        Err(Unread::Io(error)) => {
            return Executed {
                report: Report::failed(operation, error),
                scrubber: Scrubber::default(),
                sync: None,
                usage: None,
                limits,
            };
        }
        Err(Unread::Invalid(error)) => {
            let secrets = secrets::secrets_of_raw(&stdin);
            scrub::scrub_stderr_with(secrets.clone());
            return bad_input(error.to_string(), secrets, limits);
        }
    };
    // The raw request is no longer needed: a large sync's bytes are not kept beside its rows.
    drop(stdin);
    // A sync's memory and report limits follow its size, unless given.
    let limits = match request.sync_rows() {
        Some(rows) => cli.global.sync_limits(rows).unwrap_or(limits),
        None => limits,
    };
    // Every free-form App value is secret in a report the module never described itself in; on
    // stderr only those long enough to be one (`secrets::stderr_secrets`), until the module's
    // info names its secret fields. Taken from the parsed request, not by parsing a large request
    // a second time.
    let app_secrets = secrets::secrets(request.app(), None);
    scrub::scrub_stderr_with(secrets::stderr_secrets(request.app(), None));
    let tls = match cli.global.ca_bundle.as_deref().map(sandbox::tls::client_config).transpose() {
        Ok(tls) => tls,
        Err(message) => return bad_input(message, app_secrets, limits),
    };
    let mut runtime = match loaded {
        Ok(runtime) => runtime,
        Err(fault) => return failed(ErrorKind::ModuleRefused, fault.to_string(), app_secrets, limits),
    };
    if let Some(tls) = tls {
        runtime.set_tls(tls);
    }
    tracing::debug!("running {operation} with {}", runtime.path().display());
    // One thread: the module's call runs on it, and the HTTP exchanges progress whenever the module
    // waits for them (wasi:io/poll). Worker threads only added hand-offs: a 10,000-account sync at
    // 0 ms latency took 55 ms with two workers, 51 ms without (median of 15 runs, side by side).
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let message = format!("cannot start the async runtime: {e}");
            return failed(ErrorKind::ModuleRefused, message, Scrubber::default(), limits);
        }
    };
    timings::mark("tokio");
    // A sync's decisions are written to stdout as they come, with the rows the host could not
    // read at their places.
    let sync = match &mut request {
        Request::Sync(job) => Some(
            SyncWriter::new(
                Box::new(std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout())),
                SyncSetup {
                    app: job.app.clone(),
                    dry_run: job.dry_run,
                    unchanged_facts: !job.omit_unchanged_facts,
                    invalid: std::mem::take(&mut job.invalid),
                    max_bytes: limits.max_report_bytes,
                    named_limit: limits.named_report(),
                },
            )
            .shared(),
        ),
        _ => None,
    };
    let usage = match &mut request {
        Request::Usage(job) => Some(
            UsageWriter::new(
                Box::new(std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout())),
                UsageSetup {
                    app: job.app.clone(),
                    until: job.until,
                    windows: job.queries.iter().map(|q| (q.account.id, q.from)).collect(),
                    invalid: std::mem::take(&mut job.invalid),
                    max_bytes: limits.max_report_bytes,
                    named_limit: limits.named_report(),
                },
            )
            .shared(),
        ),
        _ => None,
    };
    let sink = sync.clone().map(|s| s as SharedSink);
    let usage_sink = usage.clone().map(|s| s as SharedSink<bindings::hostbill::provisioning::types::AccountUsage>);
    let (ran, scrubber) = tokio.block_on(operation::run(&runtime, request, &limits, sink, usage_sink));
    let mut report = Report::of(ran, &runtime, &limits);
    timings::mark("report-build");
    // The new (or previous) component loaded and described itself: now it may become active.
    let switched = match &cli.command {
        // What is written is what was read and verified (the upload is not read a second time).
        Command::Install(_) if report.exit() == Exit::Success => Some(install::install(component, runtime.files())),
        Command::Rollback if report.exit() == Exit::Success => Some(install::rollback(component, runtime.files())),
        _ => None,
    };
    match (switched, &mut report.body) {
        (Some(Err(error)), _) => report.error = Some(ErrorReport::new(ErrorKind::BadInput, error.to_string())),
        (Some(Ok(())), Some(Body::Info { active, .. })) => {
            *active = Some(Active {
                file: component.display().to_string(),
                previous: install::previous_path(component).display().to_string(),
            });
        }
        _ => {}
    }
    Executed { report, scrubber, sync, usage, limits }
}

/// Why no request could be had: stdin could not be read (or was too large), or what it held is
/// not a valid request.
enum Unread {
    Io(ErrorReport),
    Invalid(RequestError),
}

/// Reads the request of `command` from stdin (none for the commands that take none) and parses
/// it; returns the raw bytes too, to scrub an error about them.
fn read_and_parse(command: &Command, limits: &Limits) -> (Result<Request, Unread>, Vec<u8>) {
    let stdin = if matches!(command, Command::Info | Command::Precompile | Command::Install(_) | Command::Rollback) {
        Vec::new()
    } else {
        match read_request(limits) {
            Ok(stdin) => stdin,
            Err(error) => return (Err(Unread::Io(error)), Vec::new()),
        }
    };
    timings::mark("read");
    let parse_started = std::time::Instant::now();
    let parsed = Request::parse(command, &stdin).map_err(Unread::Invalid);
    tracing::debug!("request of {} bytes parsed in {:?}", stdin.len(), parse_started.elapsed());
    timings::mark("parse");
    (parsed, stdin)
}

/// Reads the request from stdin, at most `--max-request-mib` of it.
fn read_request(limits: &Limits) -> Result<Vec<u8>, ErrorReport> {
    let max_bytes = limits.max_request_bytes;
    let mut stdin = Vec::new();
    std::io::stdin()
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut stdin)
        .map_err(|e| ErrorReport::new(ErrorKind::BadInput, format!("cannot read the request from stdin: {e}")))?;
    if stdin.len() > max_bytes {
        let message = format!(
            "the request on stdin is larger than {} MiB (--max-request-mib); nothing was run",
            max_bytes / (1024 * 1024)
        );
        return Err(ErrorReport::new(ErrorKind::BadInput, message).with_limit(Some(limits.named_request())));
    }
    Ok(stdin)
}
