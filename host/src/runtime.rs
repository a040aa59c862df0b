//! Loading a component and running one operation in a fresh, limited store.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use crate::bindings::hostbill::provisioning::types as wit;
use crate::bindings::latest::exports::hostbill::provisioning::{lifecycle, reconciliation, streaming_sync, usage};
use crate::bindings::{HostingModuleCore, HostingModuleCoreIndices, HostingModuleCorePre, WIT_PACKAGE};
use crate::cache::{self, Cache};
use crate::compat;
use crate::endpoint::Endpoint;
use crate::sandbox::SandboxState;
use crate::sandbox::decisions::SinkError;
use crate::sandbox::egress::EgressPolicy;
use crate::sandbox::limits::{EPOCH_TICK, Limits, NamedLimit};
use crate::trust::{TrustPolicy, Verification};

/// Why the component could not run the operation to completion.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// The file is missing, not a component, or not a hosting module this host supports.
    #[error("{0}")]
    Refused(String),
    /// The component trapped, ran out of memory or time; `limit` names the host limit behind it.
    #[error("{message}")]
    Trapped { message: String, limit: Option<NamedLimit> },
}

/// The exports of an instantiated module: what every 2.x module has, and what each later minor
/// version added.
pub struct Exports {
    pub core: HostingModuleCore,
    /// `None` for a module built before 2.1.0.
    pub reconciliation: Option<reconciliation::Guest>,
    /// `None` for a module built before 2.2.0.
    pub streaming_sync: Option<streaming_sync::Guest>,
    /// `None` for a module built before 2.3.0.
    pub usage: Option<usage::Guest>,
    /// `None` for a module built before 2.4.0.
    pub lifecycle: Option<lifecycle::Guest>,
}

/// A loaded, linked component ready to instantiate.
pub struct Runtime {
    engine: Engine,
    pre: HostingModuleCorePre<SandboxState>,
    core: HostingModuleCoreIndices,
    reconciliation: Option<reconciliation::GuestIndices>,
    streaming_sync: Option<streaming_sync::GuestIndices>,
    usage: Option<usage::GuestIndices>,
    lifecycle: Option<lifecycle::GuestIndices>,
    path: PathBuf,
    source: cache::Source,
    version: semver::Version,
    verification: Verification,
    /// The component file's bytes and signature as read and verified, kept to read its metadata
    /// if asked (`info`) and for `install` to write exactly what was verified.
    files: crate::trust::ComponentFiles,
    metadata: std::sync::OnceLock<ComponentMetadata>,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// The standard metadata sections of a component (what `wasm-tools metadata show` prints), read
/// without instantiating it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ComponentMetadata {
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub licenses: Option<String>,
    pub source: Option<String>,
    pub revision: Option<String>,
}

impl ComponentMetadata {
    /// The metadata of the component in `bytes` (empty if it has none or cannot be read).
    pub fn read(bytes: &[u8]) -> ComponentMetadata {
        let Ok(payload) = wasm_metadata::Payload::from_binary(bytes) else {
            return ComponentMetadata::default();
        };
        let m = payload.metadata();
        let text = |v: Option<String>| v.map(|s| s.chars().take(1024).collect());
        ComponentMetadata {
            name: text(m.name.clone()),
            version: text(m.version.as_ref().map(ToString::to_string)),
            description: text(m.description.as_ref().map(ToString::to_string)),
            licenses: text(m.licenses.as_ref().map(ToString::to_string)),
            source: text(m.source.as_ref().map(ToString::to_string)),
            revision: text(m.revision.as_ref().map(ToString::to_string)),
        }
    }
}

impl Runtime {
    /// Checks the component at `path` against the signature policy and the contract version,
    /// then compiles (or loads from the cache) and links it. Nothing of an unverified component
    /// is compiled or loaded unless the policy opts out.
    pub fn load(path: &Path, cache: Option<&Cache>, trust: &TrustPolicy) -> Result<Runtime, Fault> {
        let started = Instant::now();
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine =
            Engine::new(&config).map_err(|e| Fault::Refused(format!("cannot start the wasm engine: {e:#}")))?;
        let shown = path.display();
        // The component and its signature, read as one pair (never half of an install's). The
        // cache lookup (hashing the file, reading and authenticating the compiled entry and the
        // verification record) deserialises or compiles nothing, and nothing is until the
        // component is verified: by its signature, or by this install's record of having
        // verified exactly these bytes and this `.sig` under a key still trusted (`cache.rs`).
        let (files, verification, lookup) =
            trust.load(path, |files| cache.map(|cache| cache.lookup(&engine, &files.bytes))).map_err(Fault::Refused)?;
        let (component, source) = match lookup {
            Some(lookup) => lookup.load_or_compile(&engine, &files.bytes),
            None => Component::from_binary(&engine, &files.bytes).map(|c| (c, cache::Source::CompiledOnly)),
        }
        .map_err(|e| Fault::Refused(format!("{shown} is not a valid WebAssembly component: {e:#}")))?;
        let version = compat::check(targeted_version(&engine, &component).as_deref())
            .map_err(|why| Fault::Refused(format!("{shown} cannot run here: {why}")))?;
        let mut linker = Linker::<SandboxState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link_error)?;
        crate::sandbox::lift_budget::bound_request_paths(&mut linker).map_err(link_error)?;
        crate::bindings::hostbill::provisioning::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(link_error)?;
        crate::bindings::hostbill::provisioning::budget::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(link_error)?;
        crate::bindings::latest::hostbill::provisioning::sync_output::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(link_error)?;
        crate::bindings::latest::hostbill::provisioning::usage_output::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(link_error)?;
        let not_a_module = |e: wasmtime::Error| {
            Fault::Refused(format!(
                "{shown} targets {WIT_PACKAGE}@{version} but is not a hosting-module component this host can run: {e:#}"
            ))
        };
        let instance_pre = linker.instantiate_pre(&component).map_err(not_a_module)?;
        let core = HostingModuleCoreIndices::new(&instance_pre).map_err(not_a_module)?;
        let reconciliation = reconciliation::GuestIndices::new(&instance_pre).ok();
        let streaming_sync = streaming_sync::GuestIndices::new(&instance_pre).ok();
        let usage = usage::GuestIndices::new(&instance_pre).ok();
        let lifecycle = lifecycle::GuestIndices::new(&instance_pre).ok();
        let pre = HostingModuleCorePre::new(instance_pre).map_err(not_a_module)?;
        tracing::debug!("component {shown} ready in {:?} ({source:?})", started.elapsed());
        Ok(Runtime {
            engine,
            pre,
            core,
            reconciliation,
            streaming_sync,
            usage,
            lifecycle,
            path: path.to_path_buf(),
            source,
            version,
            verification,
            files,
            metadata: std::sync::OnceLock::new(),
            tls: None,
        })
    }

    /// The component's bytes and signature, as read and verified.
    pub fn files(&self) -> &crate::trust::ComponentFiles {
        &self.files
    }

    /// Verifies the API's TLS with `config` (standard roots plus a CA bundle).
    pub fn set_tls(&mut self, config: std::sync::Arc<rustls::ClientConfig>) {
        self.tls = Some(config);
    }

    /// Where the compiled component came from.
    pub fn source(&self) -> cache::Source {
        self.source
    }

    /// The `hostbill:provisioning` version the component targets.
    pub fn version(&self) -> &semver::Version {
        &self.version
    }

    /// Whether the component's signature was verified, and by which key.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// The component's standard metadata, read on first use (only `info` needs it, so an
    /// ordinary operation does not parse the component's sections).
    pub fn metadata(&self) -> &ComponentMetadata {
        self.metadata.get_or_init(|| ComponentMetadata::read(&self.files.bytes))
    }

    /// The component's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Instantiates the component in a fresh store and runs `op` under `limits`. Egress is
    /// closed until the module's info names its endpoint field; then it opens to that origin of
    /// `app`, and `op` is handed the App the module is to see: `app` with that field's URL in
    /// normal form (`endpoint.rs`; `None` without an App). Returns the store too, for its log
    /// records and egress refusals.
    pub async fn run<R>(
        &self,
        operation: &'static str,
        app: Option<&wit::AppSettings>,
        limits: &Limits,
        op: impl AsyncFnOnce(&Exports, &mut Store<SandboxState>, Option<&wit::AppSettings>) -> wasmtime::Result<R>,
    ) -> (Result<(wit::ModuleInfo, R), Fault>, Store<SandboxState>) {
        let mut state = SandboxState::new(limits);
        let ends = state.deadline;
        state.progress = Some(crate::progress::Progress::new(operation));
        let stop = state.stop.clone();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // What one call may copy out of the module (wasmtime's default: 128 MiB) follows its
        // memory limit: a module never holds more than that, and a large sync's decisions are
        // one result list.
        store.set_hostcall_fuel(limits.memory_bytes.max(store.hostcall_fuel()));
        // Checked every tick: the deadline, and whether a refused request ended the run (a module
        // looping on refused requests never waits on the host, so only this check reaches it).
        let refused = stop.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if refused.is_raised() || Instant::now() >= ends {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Continue(1)
            })
        });
        let ticker = EpochTicker::start(self.engine.clone());
        let run = async {
            let instance = self.pre.instance_pre().instantiate_async(&mut store).await?;
            let exports = Exports {
                core: self.core.load(&mut store, &instance)?,
                reconciliation: match &self.reconciliation {
                    Some(indices) => Some(indices.load(&mut store, &instance)?),
                    None => None,
                },
                streaming_sync: match &self.streaming_sync {
                    Some(indices) => Some(indices.load(&mut store, &instance)?),
                    None => None,
                },
                usage: match &self.usage {
                    Some(indices) => Some(indices.load(&mut store, &instance)?),
                    None => None,
                },
                lifecycle: match &self.lifecycle {
                    Some(indices) => Some(indices.load(&mut store, &instance)?),
                    None => None,
                },
            };
            let info = exports.core.hostbill_provisioning_module().call_info(&mut store).await?;
            crate::timings::mark("instantiate");
            store.data_mut().module_info = Some(info.clone());
            let mut app = app.map(std::borrow::Cow::Borrowed);
            if let Some(app) = &mut app {
                crate::scrub::scrub_stderr_with(crate::secrets::stderr_secrets(Some(app), Some(&info)));
                let endpoint = Endpoint::of(app.as_ref(), &info.endpoint_field);
                if let Some(url) =
                    endpoint.as_ref().map(|e| &e.url).filter(|url| app.get(&info.endpoint_field) != Some(url))
                {
                    Endpoint::set(app.to_mut(), &info.endpoint_field, url.clone());
                }
                let (stop, usage) = (store.data().stop.clone(), store.data().usage.clone());
                let allowed = endpoint.map(|e| e.origin);
                store.data_mut().egress = EgressPolicy::new(allowed, limits, stop, usage).with_tls(self.tls.clone());
            }
            let result = op(&exports, &mut store, app.as_deref()).await?;
            crate::timings::mark("module");
            Ok::<_, wasmtime::Error>((info, result))
        };
        let outcome = tokio::select! {
            finished = tokio::time::timeout(limits.deadline, run) => match finished {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(classify(e, limits, &stop)),
                Err(_) => Err(Fault::Trapped {
                    message: format!(
                        "the module did not finish within the {} s deadline and was stopped",
                        limits.deadline.as_secs_f64()
                    ),
                    limit: Some(limits.named_deadline()),
                }),
            },
            () = stop.raised() => Err(Fault::Trapped { message: STOPPED_FOR_EGRESS.to_string(), limit: None }),
        };
        drop(ticker);
        if let Some(progress) = &mut store.data_mut().progress {
            progress.finish();
        }
        (outcome, store)
    }
}

/// The compile cache keeps this install's verification records (`cache.rs`).
impl crate::trust::Vouch for cache::Lookup {
    fn vouched(&self, signature: &str, keys: &component_signing::TrustedKeys) -> Option<String> {
        cache::Lookup::vouched(self, signature, |id| keys.public_key(id))
    }

    fn remember(&self, signature: &str, key_id: &str, keys: &component_signing::TrustedKeys) {
        if let Some(key) = keys.public_key(key_id) {
            self.remember_verified(signature, key_id, &key);
        }
    }
}

fn link_error(e: wasmtime::Error) -> Fault {
    Fault::Refused(format!("cannot set up the sandbox: {e:#}"))
}

/// The `hostbill:provisioning` version a component's `module` export targets, if any.
pub fn targeted_version(engine: &Engine, component: &Component) -> Option<String> {
    let prefix = format!("{WIT_PACKAGE}/module@");
    component.component_type().exports(engine).find_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
}

/// Why a run that made a refused request ended (the report names the refusal itself).
const STOPPED_FOR_EGRESS: &str = "the module was stopped after a request the App's endpoint does not allow";

/// Words for a trap.
fn classify(e: wasmtime::Error, limits: &Limits, stop: &crate::sandbox::egress::EgressStop) -> Fault {
    if let Some(over) = e.downcast_ref::<crate::sandbox::lift_budget::OverBudget>() {
        return Fault::Trapped { message: over.to_string(), limit: Some(over.named()) };
    }
    let text = format!("{e:#}");
    let (message, limit) = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) if stop.is_raised() => (STOPPED_FOR_EGRESS.to_string(), None),
        Some(Trap::Interrupt) => (
            format!("the module ran past its {} s deadline and was stopped", limits.deadline.as_secs_f64()),
            Some(limits.named_deadline()),
        ),
        Some(Trap::UnreachableCodeReached) => ("the module crashed (it panicked or aborted)".to_string(), None),
        _ if text.contains("resource table has no free keys") => (
            format!(
                "the module held more than {} host-side resources (HTTP requests, header sets, streams) and was stopped",
                limits.max_host_resources
            ),
            Some(limits.named_host_resources()),
        ),
        _ if text.contains("growing memory") => (
            format!(
                "the module tried to use more than its {} MiB memory limit and was stopped",
                limits.memory_bytes / (1024 * 1024)
            ),
            Some(limits.named_memory()),
        ),
        Some(trap) => (format!("the module trapped: {trap}"), None),
        None => match e.downcast_ref::<SinkError>() {
            Some(refused) => (refused.message.clone(), refused.limit.clone()),
            None => (format!("the module failed: {text}"), None),
        },
    };
    Fault::Trapped { message, limit }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while alive.
struct EpochTicker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
