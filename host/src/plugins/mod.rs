//! The plugin host: loads WebAssembly component plugins, keeps them in step
//! with the plugins directory, and runs each call in a fresh sandbox.
//!
//! ```text
//!  bundled .wasm ─┐                     ┌─> Registry (name -> Arc<LoadedPlugin>)
//!  plugins dir ───┼─> prepare() ────────┤
//!  plugins check ─┘   header, compile    └─> run(): Store per call, pooled
//!                     (disk cache), world    instance, limits, grants
//!                     + import checks,
//!                     InstancePre, describe
//! ```
//!
//! The public surface is [`PluginRuntime`] and its typed calls
//! ([`PluginRuntime::validate_config`], [`PluginRuntime::deliver`]); the
//! `bindgen!` output is in [`crate::bindings`]. See the `sandbox` module
//! for what a plugin can and cannot do, and `contract` for how its world is
//! decided.

mod bundled;
pub mod cache;
pub mod contract;
mod engine;
pub mod error;
mod exporting;
mod loaded;
pub mod policy;
mod registry;
mod runtime;
pub mod sandbox;
mod versioned;

pub use cache::CompileSource;
pub use contract::{ContractVersion, World};
pub use error::{CallError, ConfigProblem, LoadError};
pub use exporting::{CheckStep, ExportBatch, Written};
pub use loaded::{LoadedPlugin, Origin, PluginInfo};
pub use policy::PluginPolicy;
pub use registry::{FailedPlugin, ScanReport};
pub use runtime::CallReport;
pub use sandbox::SandboxLimits;

pub use crate::capabilities::records::{Affected, ObjectType, Records};

use crate::bindings;
use crate::capabilities::http::HttpGrant;
use bindings::alert::exports::herald::automation::alerting;
use bindings::retention::exports::herald::automation::retention as retention_wit;
use sandbox::{CallState, Grants};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use versioned::{AlertPre, RetentionPre};

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory watched for `.wasm` plugins; `None` for bundled plugins only.
    pub plugins_dir: Option<PathBuf>,
    /// Directory of the compile cache; `None` to always compile.
    pub cache_dir: Option<PathBuf>,
    /// Whether to load the plugins compiled into the binary.
    pub load_bundled: bool,
    /// Let plugins reach private, loopback and link-local addresses.
    pub allow_private_networks: bool,
    /// Operator settings per plugin name.
    pub policies: HashMap<String, PluginPolicy>,
    /// How often the plugins directory is scanned.
    pub poll_interval: Duration,
    /// Record every HTTP request plugins make, for `herald plugins test`
    /// ([`PluginRuntime::take_sent_requests`]). Off in the daemon.
    pub record_http: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            plugins_dir: None,
            cache_dir: None,
            load_bundled: true,
            allow_private_networks: false,
            policies: HashMap::new(),
            poll_interval: Duration::from_secs(1),
            record_http: false,
        }
    }
}

/// The plugin host. Cheap to clone; all clones share one engine and registry.
#[derive(Clone)]
pub struct PluginRuntime {
    pub(crate) inner: Arc<runtime::Runtime>,
    scan_lock: Arc<tokio::sync::Mutex<()>>,
}

/// A loaded plugin as the API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginSummary {
    /// Name (the `action.type`).
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
    /// World (capability set).
    pub world: World,
    /// The contract version it was built against (`0.2.0`, or `0.1.0`).
    pub contract_version: ContractVersion,
    /// Config JSON Schema.
    pub config_schema: serde_json::Value,
    /// Secret config fields (JSON Pointers).
    pub secret_fields: Vec<String>,
    /// Where it came from.
    pub origin: Origin,
    /// SHA-256 of the component.
    pub sha256: String,
    /// Compiled now or loaded from cache.
    pub compiled_from: CompileSource,
    /// When it was loaded.
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    /// Hosts it may reach over HTTP (alert destinations).
    pub allowed_hosts: Option<Vec<String>>,
    /// Per-call memory cap, bytes.
    pub memory_limit_bytes: u64,
    /// Per-call CPU budget, ms.
    pub cpu_time_ms: u64,
}

impl From<&LoadedPlugin> for PluginSummary {
    fn from(p: &LoadedPlugin) -> Self {
        Self {
            name: p.info.name.clone(),
            version: p.info.version.clone(),
            description: p.info.description.clone(),
            world: p.world,
            contract_version: p.contract,
            config_schema: p.info.config_schema.clone(),
            secret_fields: p.info.secret_fields.clone(),
            origin: p.origin.clone(),
            sha256: p.sha256.clone(),
            compiled_from: p.compiled_from,
            loaded_at: p.loaded_at,
            allowed_hosts: p.http.as_ref().map(|h| h.allowed_hosts.patterns()),
            memory_limit_bytes: p.limits.memory_bytes,
            cpu_time_ms: p.limits.cpu_time.as_millis() as u64,
        }
    }
}

/// Loaded and failed plugins.
#[derive(Debug, Clone, Serialize)]
pub struct PluginListing {
    /// Loaded plugins, by name.
    pub objects: Vec<PluginSummary>,
    /// Files that failed to load, with why.
    pub failed: Vec<FailedPlugin>,
}

/// One alert to deliver.
#[derive(Debug, Clone)]
pub struct AlertRequest {
    /// Stable across retries.
    pub event_id: String,
    /// `logs` or `environment_update`.
    pub event_type: String,
    /// Braintrust-shaped payload.
    pub payload: serde_json::Value,
    /// A test from the API.
    pub is_test: bool,
    /// 1 on the first try.
    pub attempt: u32,
}

/// What a destination reported after delivering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The receiver's HTTP status.
    pub status_code: Option<u16>,
    /// The beginning of the receiver's answer.
    pub response_excerpt: Option<String>,
    /// One line for the run history.
    pub summary: String,
}

impl PluginRuntime {
    /// Whether the operator lets capabilities reach private, loopback and
    /// link-local addresses (`allow_private_networks`).
    pub fn allows_private_networks(&self) -> bool {
        self.inner.config.allow_private_networks
    }

    /// Builds the runtime, loads the bundled plugins and scans the plugins
    /// directory once. Call [`PluginRuntime::spawn_watcher`] to keep it in step.
    pub async fn start(config: RuntimeConfig) -> anyhow::Result<Self> {
        let load_bundled = config.load_bundled;
        let runtime = Self {
            inner: Arc::new(runtime::Runtime::new(config)?),
            scan_lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        if load_bundled {
            for (file, bytes) in bundled::BUNDLED {
                let plugin = loaded::prepare(&runtime, Arc::from(*bytes), Origin::Bundled)
                    .await
                    .map_err(|e| anyhow::anyhow!("bundled plugin {file} failed to load: {e}"))?;
                runtime.inner.registry.write().add_bundled(plugin);
            }
        }
        runtime.rescan().await;
        Ok(runtime)
    }

    /// A runtime with no plugins at all (no bundled ones, no directory): for
    /// tools and tests that need the API without the plugin host.
    pub async fn without_plugins() -> anyhow::Result<Self> {
        Self::start(RuntimeConfig {
            load_bundled: false,
            ..RuntimeConfig::default()
        })
        .await
    }

    /// The HTTP requests plugins made since the last call, when the runtime
    /// records them ([`RuntimeConfig::record_http`]).
    pub fn take_sent_requests(&self) -> Vec<crate::capabilities::http::SentRequest> {
        self.inner
            .sent
            .as_ref()
            .map(|log| std::mem::take(&mut *log.lock()))
            .unwrap_or_default()
    }

    /// The plugin called `name`, if loaded.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.inner.registry.read().get(name)
    }

    /// Loaded and failed plugins.
    pub fn list(&self) -> PluginListing {
        let (loaded, failed) = self.inner.registry.read().snapshot();
        PluginListing {
            objects: loaded
                .iter()
                .map(|p| PluginSummary::from(p.as_ref()))
                .collect(),
            failed,
        }
    }

    /// Runs a component file through the whole load pipeline without
    /// registering it: what `herald plugins check` prints.
    pub async fn check_file(&self, path: &Path) -> Result<PluginSummary, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io(e.to_string()))?;
        let plugin = loaded::prepare(
            self,
            bytes.into(),
            Origin::File {
                path: path.to_path_buf(),
            },
        )
        .await?;
        Ok(PluginSummary::from(&plugin))
    }

    /// Runs `call` on plugin `name` as world `P` (its pre-instance typed
    /// for that world), with the grants `grants` makes for it: the lookup
    /// and world check every world-specific call begins with.
    pub(crate) async fn call_world<P: versioned::WorldPre, T>(
        &self,
        name: &str,
        grants: impl FnOnce(&LoadedPlugin) -> Grants,
        call: impl AsyncFnOnce(&mut wasmtime::Store<CallState>, &P) -> wasmtime::Result<T>,
    ) -> CallReport<T> {
        let Some(plugin) = self.get(name) else {
            return CallReport::failed(CallError::NotFound(name.to_owned()));
        };
        let Some(pre) = P::of(&plugin.pre) else {
            return CallReport::failed(CallError::WrongWorld {
                plugin: name.to_owned(),
                world: plugin.world.name(),
                needed: P::WORLD.name(),
            });
        };
        let grants = grants(&plugin);
        self.run(&plugin, name, grants, async |store, _| {
            call(store, pre).await
        })
        .await
    }

    /// Asks plugin `name` whether `config` is acceptable.
    pub async fn validate_config(&self, name: &str, config: &serde_json::Value) -> CallReport<()> {
        let Some(plugin) = self.get(name) else {
            return CallReport::failed(CallError::NotFound(name.to_owned()));
        };
        let json = config.to_string();
        let report = self
            .run(&plugin, name, Grants::default(), async |store, plugin| {
                plugin.call_validate(store, &json).await
            })
            .await;
        report.map(|answer| {
            answer.map_err(|problems| {
                CallError::InvalidConfig(
                    problems
                        .into_iter()
                        .map(|p| ConfigProblem {
                            path: p.path,
                            message: p.message,
                        })
                        .collect(),
                )
            })
        })
    }

    /// Delivers `alert` through alert destination `name` with `config`.
    pub async fn deliver(
        &self,
        name: &str,
        config: &serde_json::Value,
        alert: &AlertRequest,
    ) -> CallReport<Delivery> {
        let json = config.to_string();
        let wit_alert = alerting::Alert {
            event_id: alert.event_id.clone(),
            event_type: alert.event_type.clone(),
            payload: alert.payload.to_string(),
            is_test: alert.is_test,
            attempt: alert.attempt,
        };
        let grants = |plugin: &LoadedPlugin| Grants {
            http: plugin.http.clone().map(|limits| HttpGrant {
                client: self.inner.http.clone(),
                limits,
                sent: self.inner.sent.clone(),
            }),
            ..Grants::default()
        };
        let report = self
            .call_world(name, grants, async |store, pre: &AlertPre| {
                pre.deliver(store, &json, &wit_alert).await
            })
            .await;
        let denied_host = report.denied_host.clone();
        report.map(|answer| match answer {
            Ok(d) => Ok(Delivery {
                status_code: d.status_code,
                response_excerpt: d.response_excerpt,
                summary: d.summary,
            }),
            // The plugin failed because the host refused its request: say so
            // with the specific error rather than the plugin's paraphrase.
            Err(_) if denied_host.is_some() => Err(CallError::HostNotAllowed {
                plugin: name.to_owned(),
                host: denied_host.unwrap_or_default(),
            }),
            Err(e) => Err(e.into()),
        })
    }
}

/// One retention run, as the host asks a retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRun {
    /// What to purge.
    pub object_type: ObjectType,
    /// Keep records younger than this many days.
    pub retention_days: u32,
    /// The run's clock, Unix milliseconds.
    pub now_ms: i64,
    /// Count only; delete nothing.
    pub dry_run: bool,
}

/// What a retention policy did or would do.
#[derive(Debug, Clone)]
pub struct RetentionResult {
    /// The cutoff used, Unix milliseconds.
    pub cutoff_ms: i64,
    /// What was older than the cutoff before deleting.
    pub affected: Affected,
    /// Records deleted (0 on a dry run).
    pub deleted: u64,
    /// Delete batches run.
    pub batches: u32,
}

impl PluginRuntime {
    /// Applies retention policy `name` with `config` to `run`, with
    /// `records` (confined to one project) as its records capability.
    pub async fn apply_retention(
        &self,
        name: &str,
        config: &serde_json::Value,
        run: &RetentionRun,
        records: Arc<dyn Records>,
    ) -> CallReport<RetentionResult> {
        let json = config.to_string();
        let request = retention_wit::RetentionRequest {
            object_type: run.object_type,
            retention_days: run.retention_days,
            now_ms: run.now_ms,
            dry_run: run.dry_run,
        };
        let grants = |_: &LoadedPlugin| Grants {
            records: Some(records),
            ..Grants::default()
        };
        let report = self
            .call_world(name, grants, async |store, pre: &RetentionPre| {
                pre.apply(store, &json, request).await
            })
            .await;
        report.map(|answer| match answer {
            Ok(outcome) => Ok(RetentionResult {
                cutoff_ms: outcome.cutoff_ms,
                affected: outcome.affected,
                deleted: outcome.deleted,
                batches: outcome.batches,
            }),
            Err(e) => Err(e.into()),
        })
    }
}

/// Where the build put the compiled guest workspace (built-in plugins and
/// test fixtures). Used by the test suite and `herald-bench`.
pub const GUEST_ARTIFACTS_DIR: &str = env!("HERALD_GUEST_ARTIFACTS");
