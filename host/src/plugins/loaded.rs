//! A plugin ready to call: compiled, checked against the contract,
//! pre-linked (`InstancePre`) and described.
//!
//! [`prepare`] is the load pipeline every component goes through, bundled or
//! dropped into the plugins directory or checked with `herald plugins
//! check`: header check, compile (or compile cache), world and import
//! checks, pre-instantiation with the world's linker, and a sandboxed
//! `describe` call whose answer is validated.

use super::cache::CompileSource;
use super::contract::{self, World};
use super::error::LoadError;
use super::sandbox::{CallState, Grants, SandboxLimits};
use super::{PluginRuntime, runtime::Runtime};
use crate::bindings::alert::herald::automation::{http, log};
use crate::bindings::export::herald::automation::object_store;
use crate::bindings::retention::herald::automation::records;
use crate::bindings::{alert, export, retention, types};
use crate::capabilities::http::HttpLimits;
use crate::capabilities::http::HttpState;
use crate::capabilities::log::LogState;
use crate::capabilities::object_store::ObjectStoreCapability;
use crate::capabilities::records::RecordsState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Compiled into the daemon.
    Bundled,
    /// A file in the plugins directory (or given to `plugins check`).
    File {
        /// The file.
        path: PathBuf,
    },
}

/// What a plugin says about itself, validated.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// Unique name; the `action.type` that selects it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// For operators.
    pub description: String,
    /// JSON Schema of its config.
    pub config_schema: serde_json::Value,
    /// JSON Pointers of secret config fields.
    pub secret_fields: Vec<String>,
}

/// The typed pre-instantiated component, per world.
pub(crate) enum Pre {
    Alert(alert::AlertDestinationPre<CallState>),
    Export(export::ExportDestinationPre<CallState>),
    Retention(retention::RetentionPolicyPre<CallState>),
}

/// One world's pre-instantiated component type. A world's calls ask for
/// their own type ([`PluginRuntime::call_world`]), so a plugin of another
/// world is an error value for the caller, never an unreachable match arm.
pub(crate) trait WorldPre: Sized {
    /// The world.
    const WORLD: World;
    /// `pre` as this world's type, if it is of this world.
    fn of(pre: &Pre) -> Option<&Self>;
}

impl WorldPre for alert::AlertDestinationPre<CallState> {
    const WORLD: World = World::AlertDestination;
    fn of(pre: &Pre) -> Option<&Self> {
        match pre {
            Pre::Alert(pre) => Some(pre),
            _ => None,
        }
    }
}

impl WorldPre for export::ExportDestinationPre<CallState> {
    const WORLD: World = World::ExportDestination;
    fn of(pre: &Pre) -> Option<&Self> {
        match pre {
            Pre::Export(pre) => Some(pre),
            _ => None,
        }
    }
}

impl WorldPre for retention::RetentionPolicyPre<CallState> {
    const WORLD: World = World::RetentionPolicy;
    fn of(pre: &Pre) -> Option<&Self> {
        match pre {
            Pre::Retention(pre) => Some(pre),
            _ => None,
        }
    }
}

/// A loaded plugin. Calls hold an `Arc` of it, so replacing a plugin never
/// disturbs calls already running on the old one.
pub struct LoadedPlugin {
    /// What it says about itself.
    pub info: PluginInfo,
    /// Its world.
    pub world: World,
    /// Where it came from.
    pub origin: Origin,
    /// SHA-256 of the component bytes, hex.
    pub sha256: String,
    /// Whether it was compiled now or loaded from the compile cache.
    pub compiled_from: CompileSource,
    /// When it was loaded.
    pub loaded_at: DateTime<Utc>,
    /// Its per-call sandbox limits.
    pub limits: SandboxLimits,
    /// Its HTTP limits (alert destinations only).
    pub http: Option<Arc<HttpLimits>>,
    pub(crate) pre: Pre,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("world", &self.world)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// One linker per world, each with WASI and exactly that world's capabilities.
pub(crate) struct Linkers {
    alert: Linker<CallState>,
    export: Linker<CallState>,
    retention: Linker<CallState>,
}

impl Linkers {
    pub(crate) fn new(engine: &wasmtime::Engine) -> anyhow::Result<Self> {
        // Every world: WASI and the log capability (with the shared types).
        let common = |linker: &mut Linker<CallState>| -> anyhow::Result<()> {
            wasmtime_wasi::p2::add_to_linker_async(linker)?;
            types::add_to_linker::<_, HasSelf<LogState>>(linker, |s| &mut s.log)?;
            log::add_to_linker::<_, HasSelf<LogState>>(linker, |s| &mut s.log)?;
            Ok(())
        };
        // Then each world's own capabilities, each by projection onto its
        // own state.
        let mut alert_linker = Linker::new(engine);
        common(&mut alert_linker)?;
        http::add_to_linker::<_, HasSelf<HttpState>>(&mut alert_linker, |s| &mut s.http)?;
        let mut export_linker = Linker::new(engine);
        common(&mut export_linker)?;
        object_store::add_to_linker::<_, ObjectStoreCapability>(
            &mut export_linker,
            CallState::object_store_view,
        )?;
        let mut retention_linker = Linker::new(engine);
        common(&mut retention_linker)?;
        records::add_to_linker::<_, HasSelf<RecordsState>>(&mut retention_linker, |s| {
            &mut s.records
        })?;
        Ok(Self {
            alert: alert_linker,
            export: export_linker,
            retention: retention_linker,
        })
    }

    fn pre(&self, world: World, component: &Component) -> wasmtime::Result<Pre> {
        Ok(match world {
            World::AlertDestination => Pre::Alert(alert::AlertDestinationPre::new(
                self.alert.instantiate_pre(component)?,
            )?),
            World::ExportDestination => Pre::Export(export::ExportDestinationPre::new(
                self.export.instantiate_pre(component)?,
            )?),
            World::RetentionPolicy => Pre::Retention(retention::RetentionPolicyPre::new(
                self.retention.instantiate_pre(component)?,
            )?),
        })
    }
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The load pipeline: bytes in, a ready plugin (or why not) out.
pub(crate) async fn prepare(
    runtime: &PluginRuntime,
    bytes: Arc<[u8]>,
    origin: Origin,
) -> Result<LoadedPlugin, LoadError> {
    contract::check_header(&bytes)?;
    let rt: Arc<Runtime> = runtime.inner.clone();
    let sha256 = sha256_hex(&bytes);
    let (component, compiled_from) = {
        let rt = rt.clone();
        let sha256 = sha256.clone();
        tokio::task::spawn_blocking(move || rt.cache.load(&rt.engine, &bytes, &sha256))
            .await
            .map_err(|e| LoadError::Compile(e.to_string()))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?
    };
    let world = contract::inspect(&rt.engine, &component)?;
    let pre = rt
        .linkers
        .pre(world, &component)
        .map_err(|e| LoadError::Import(format!("cannot link against the {world} world: {e:#}")))?;

    let mut plugin = LoadedPlugin {
        info: PluginInfo {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            config_schema: serde_json::Value::Null,
            secret_fields: Vec::new(),
        },
        world,
        origin,
        sha256,
        compiled_from,
        loaded_at: Utc::now(),
        limits: SandboxLimits::default(),
        http: None,
        pre,
    };
    let placeholder = format!("({})", short_origin(&plugin.origin));
    let report = runtime
        .run(
            &plugin,
            &placeholder,
            Grants::default(),
            async |store, plugin| plugin.call_describe(store).await,
        )
        .await;
    let raw = report
        .result
        .map_err(|e| LoadError::Describe(e.to_string()))?;
    plugin.info = validate_info(raw)?;
    let policy = runtime.inner.policy(&plugin.info.name);
    plugin.limits = policy.sandbox_limits(world);
    if world == World::AlertDestination {
        plugin.http = Some(Arc::new(policy.http_limits(&plugin.info.name)));
    }
    Ok(plugin)
}

fn short_origin(origin: &Origin) -> String {
    match origin {
        Origin::Bundled => "bundled".into(),
        Origin::File { path } => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
    }
}

fn validate_info(raw: types::PluginInfo) -> Result<PluginInfo, LoadError> {
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(LoadError::Describe(format!(
            "name `{}` must be 1-64 characters of a-z, 0-9 and -",
            raw.name
        )));
    }
    if raw.version.trim().is_empty() {
        return Err(LoadError::Describe("version is empty".into()));
    }
    let config_schema: serde_json::Value = serde_json::from_str(&raw.config_schema)
        .map_err(|e| LoadError::Describe(format!("config-schema is not JSON: {e}")))?;
    if !config_schema.is_object() {
        return Err(LoadError::Describe(
            "config-schema must be a JSON object".into(),
        ));
    }
    if let Some(bad) = raw.secret_fields.iter().find(|p| !p.starts_with('/')) {
        return Err(LoadError::Describe(format!(
            "secret field `{bad}` must be a JSON Pointer such as `/secret`"
        )));
    }
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        description: raw.description,
        config_schema,
        secret_fields: raw.secret_fields,
    })
}

/// Instantiates the plugin's world in `store` and calls one export of the
/// `plugin` interface, whichever world it is.
macro_rules! with_plugin_interface {
    ($self:ident, $store:ident, |$iface:ident| $call:expr) => {
        match &$self.pre {
            Pre::Alert(pre) => {
                let instance = pre.instantiate_async(&mut *$store).await?;
                let $iface = instance.herald_automation_plugin();
                $call
            }
            Pre::Export(pre) => {
                let instance = pre.instantiate_async(&mut *$store).await?;
                let $iface = instance.herald_automation_plugin();
                $call
            }
            Pre::Retention(pre) => {
                let instance = pre.instantiate_async(&mut *$store).await?;
                let $iface = instance.herald_automation_plugin();
                $call
            }
        }
    };
}

impl LoadedPlugin {
    pub(crate) async fn call_describe(
        &self,
        store: &mut wasmtime::Store<CallState>,
    ) -> wasmtime::Result<types::PluginInfo> {
        with_plugin_interface!(self, store, |iface| iface.call_describe(&mut *store).await)
    }

    pub(crate) async fn call_validate(
        &self,
        store: &mut wasmtime::Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), Vec<types::ConfigError>>> {
        with_plugin_interface!(self, store, |iface| iface
            .call_validate_config(&mut *store, config)
            .await)
    }
}
