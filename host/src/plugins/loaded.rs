//! A plugin ready to call: compiled, checked against the contract,
//! pre-linked (`InstancePre`) and described.
//!
//! [`prepare`] is the load pipeline every component goes through, bundled or
//! dropped into the plugins directory or checked with `herald plugins
//! check`: header check, compile (or compile cache), world and import
//! checks, pre-instantiation with the world's linker, and a sandboxed
//! `describe` call whose answer is validated.

use super::cache::CompileSource;
use super::contract::{self, ContractVersion, World};
use super::error::LoadError;
use super::sandbox::{CallState, Grants, SandboxLimits};
use super::versioned::{AlertPre, ExportPre, Pre, RetentionPre};
use super::{PluginRuntime, runtime::Runtime};
use crate::bindings::alert::herald::automation::{http, log};
use crate::bindings::export::herald::automation::object_store;
use crate::bindings::retention::herald::automation::records;
use crate::bindings::v0_1::alert::herald::automation::{
    http as http_0_1, log as log_0_1, types as types_0_1,
};
use crate::bindings::v0_1::export::herald::automation::object_store as object_store_0_1;
use crate::bindings::v0_1::retention::herald::automation::records as records_0_1;
use crate::bindings::{alert, export, retention, types, v0_1};
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

/// A loaded plugin. Calls hold an `Arc` of it, so replacing a plugin never
/// disturbs calls already running on the old one.
pub struct LoadedPlugin {
    /// What it says about itself.
    pub info: PluginInfo,
    /// Its world.
    pub world: World,
    /// The contract version it was built against.
    pub contract: ContractVersion,
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

/// One linker per world and contract version, each with WASI and exactly
/// that world's capabilities (under that version's names).
pub(crate) struct Linkers {
    alert: Linker<CallState>,
    export: Linker<CallState>,
    retention: Linker<CallState>,
    alert_0_1: Linker<CallState>,
    export_0_1: Linker<CallState>,
    retention_0_1: Linker<CallState>,
}

impl Linkers {
    pub(crate) fn new(engine: &wasmtime::Engine) -> anyhow::Result<Self> {
        // Every world: WASI and the log capability (with the shared types).
        let linker = |log_0_1: bool| -> anyhow::Result<Linker<CallState>> {
            let mut linker = Linker::<CallState>::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            if log_0_1 {
                types_0_1::add_to_linker::<_, HasSelf<LogState>>(&mut linker, |s| &mut s.log)?;
                log_0_1::add_to_linker::<_, HasSelf<LogState>>(&mut linker, |s| &mut s.log)?;
            } else {
                types::add_to_linker::<_, HasSelf<LogState>>(&mut linker, |s| &mut s.log)?;
                log::add_to_linker::<_, HasSelf<LogState>>(&mut linker, |s| &mut s.log)?;
            }
            Ok(linker)
        };
        // Then each world's own capabilities, each by projection onto its
        // own state.
        let mut alert = linker(false)?;
        http::add_to_linker::<_, HasSelf<HttpState>>(&mut alert, |s| &mut s.http)?;
        let mut export = linker(false)?;
        object_store::add_to_linker::<_, ObjectStoreCapability>(
            &mut export,
            CallState::object_store_view,
        )?;
        let mut retention = linker(false)?;
        records::add_to_linker::<_, HasSelf<RecordsState>>(&mut retention, |s| &mut s.records)?;
        // The same capabilities under their 0.1.0 names
        // (`capabilities::contract_0_1`).
        let mut alert_0_1 = linker(true)?;
        http_0_1::add_to_linker::<_, HasSelf<HttpState>>(&mut alert_0_1, |s| &mut s.http)?;
        let mut export_0_1 = linker(true)?;
        object_store_0_1::add_to_linker::<_, ObjectStoreCapability>(
            &mut export_0_1,
            CallState::object_store_view,
        )?;
        let mut retention_0_1 = linker(true)?;
        records_0_1::add_to_linker::<_, HasSelf<RecordsState>>(&mut retention_0_1, |s| {
            &mut s.records
        })?;
        Ok(Self {
            alert,
            export,
            retention,
            alert_0_1,
            export_0_1,
            retention_0_1,
        })
    }

    fn pre(
        &self,
        version: ContractVersion,
        world: World,
        component: &Component,
    ) -> wasmtime::Result<Pre> {
        use ContractVersion::{V0_1, V0_2};
        Ok(match (world, version) {
            (World::AlertDestination, V0_2) => Pre::Alert(AlertPre::Current(
                alert::AlertDestinationPre::new(self.alert.instantiate_pre(component)?)?,
            )),
            (World::AlertDestination, V0_1) => Pre::Alert(AlertPre::V0_1(
                v0_1::alert::AlertDestinationPre::new(self.alert_0_1.instantiate_pre(component)?)?,
            )),
            (World::ExportDestination, V0_2) => Pre::Export(ExportPre::Current(
                export::ExportDestinationPre::new(self.export.instantiate_pre(component)?)?,
            )),
            (World::ExportDestination, V0_1) => {
                Pre::Export(ExportPre::V0_1(v0_1::export::ExportDestinationPre::new(
                    self.export_0_1.instantiate_pre(component)?,
                )?))
            }
            (World::RetentionPolicy, V0_2) => Pre::Retention(RetentionPre::Current(
                retention::RetentionPolicyPre::new(self.retention.instantiate_pre(component)?)?,
            )),
            (World::RetentionPolicy, V0_1) => Pre::Retention(RetentionPre::V0_1(
                v0_1::retention::RetentionPolicyPre::new(
                    self.retention_0_1.instantiate_pre(component)?,
                )?,
            )),
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
    let (contract, world) = contract::inspect(&rt.engine, &component)?;
    let pre = rt.linkers.pre(contract, world, &component).map_err(|e| {
        LoadError::Import(format!(
            "cannot link against the {world} world of {}@{contract}: {e:#}",
            contract::CONTRACT_PACKAGE
        ))
    })?;

    let mut plugin = LoadedPlugin {
        info: PluginInfo {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            config_schema: serde_json::Value::Null,
            secret_fields: Vec::new(),
        },
        world,
        contract,
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

impl LoadedPlugin {
    pub(crate) async fn call_describe(
        &self,
        store: &mut wasmtime::Store<CallState>,
    ) -> wasmtime::Result<types::PluginInfo> {
        self.pre.describe(store).await
    }

    pub(crate) async fn call_validate(
        &self,
        store: &mut wasmtime::Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), Vec<types::ConfigError>>> {
        self.pre.validate_config(store, config).await
    }
}
