//! The shared state behind [`PluginRuntime`](super::PluginRuntime) and the
//! one function every guest call goes through, [`PluginRuntime::run`].

use super::cache::CompileCache;
use super::engine::{EpochTicker, PoolSize, build_engine};
use super::error::CallError;
use super::loaded::{Linkers, LoadedPlugin};
use super::policy::PluginPolicy;
use super::registry::Registry;
use super::sandbox::{self, CallState, Grants};
use super::{PluginRuntime, RuntimeConfig};
use crate::capabilities::http::HttpClient;
use crate::capabilities::log::LogLine;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store};

pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linkers: Linkers,
    pub(crate) cache: CompileCache,
    pub(crate) http: HttpClient,
    /// Requests recorded for `herald plugins test` (see `RuntimeConfig::record_http`).
    pub(crate) sent: Option<crate::capabilities::http::SentLog>,
    pub(crate) policies: HashMap<String, PluginPolicy>,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) config: RuntimeConfig,
    calls: Semaphore,
    _ticker: EpochTicker,
}

impl Runtime {
    pub(crate) fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        for (name, policy) in &config.policies {
            policy.validate(name).map_err(anyhow::Error::msg)?;
        }
        let pool = PoolSize::default();
        let engine = build_engine(pool)?;
        Ok(Self {
            linkers: Linkers::new(&engine)?,
            cache: CompileCache::new(&engine, config.cache_dir.clone()),
            http: HttpClient::new(config.allow_private_networks)?,
            sent: config.record_http.then(Default::default),
            policies: config.policies.clone(),
            registry: RwLock::new(Registry::default()),
            calls: Semaphore::new(pool.concurrent_calls as usize),
            _ticker: EpochTicker::start(engine.clone()),
            engine,
            config,
        })
    }

    pub(crate) fn policy(&self, name: &str) -> PluginPolicy {
        self.policies.get(name).cloned().unwrap_or_default()
    }
}

/// The outcome of one plugin call, with what the plugin logged.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport<T> {
    /// What the call returned, or why it failed.
    #[serde(skip)]
    pub result: Result<T, CallError>,
    /// Lines the plugin logged (and its stderr).
    pub logs: Vec<LogLine>,
    /// Lines past the per-call cap that were dropped.
    pub dropped_log_lines: u32,
    /// Wall-clock duration of the call, instantiation included.
    pub duration: Duration,
    /// Highest linear memory the instance used, bytes.
    pub peak_memory_bytes: u64,
    /// A host the http capability refused during the call, if any.
    #[serde(skip)]
    pub(crate) denied_host: Option<String>,
}

impl<T> CallReport<T> {
    pub(crate) fn failed(error: CallError) -> Self {
        Self {
            result: Err(error),
            logs: Vec::new(),
            dropped_log_lines: 0,
            duration: Duration::ZERO,
            peak_memory_bytes: 0,
            denied_host: None,
        }
    }

    /// Maps the successful value.
    pub fn map<U>(self, f: impl FnOnce(T) -> Result<U, CallError>) -> CallReport<U> {
        CallReport {
            result: self.result.and_then(f),
            logs: self.logs,
            dropped_log_lines: self.dropped_log_lines,
            duration: self.duration,
            peak_memory_bytes: self.peak_memory_bytes,
            denied_host: self.denied_host,
        }
    }
}

impl PluginRuntime {
    /// Runs `call` in a fresh sandbox for `plugin`: waits for a pool slot,
    /// builds the store, enforces the wall-clock limit and classifies any
    /// failure.
    pub(crate) async fn run<T>(
        &self,
        plugin: &LoadedPlugin,
        name: &str,
        grants: Grants,
        call: impl AsyncFnOnce(&mut Store<CallState>, &LoadedPlugin) -> wasmtime::Result<T>,
    ) -> CallReport<T> {
        let Ok(_permit) = self.inner.calls.acquire().await else {
            return CallReport::failed(CallError::Busy);
        };
        let limits = plugin.limits;
        let started = Instant::now();
        let mut store = sandbox::new_store(&self.inner.engine, Arc::from(name), limits, grants);
        let outcome = tokio::time::timeout(limits.wall_time, call(&mut store, plugin)).await;
        let duration = started.elapsed();
        let state = store.data_mut();
        let result = match outcome {
            Ok(Ok(value)) => {
                state.collect_stderr();
                Ok(value)
            }
            Ok(Err(error)) => Err(state.classify(error, limits)),
            Err(_) => Err(CallError::DeadlineExceeded {
                plugin: name.to_owned(),
                limit: limits.wall_time,
            }),
        };
        if let Err(error) = &result {
            tracing::warn!(plugin = name, code = error.code(), %error, "plugin call failed");
        }
        CallReport {
            result,
            logs: std::mem::take(&mut state.log.lines),
            dropped_log_lines: state.log.dropped,
            duration,
            peak_memory_bytes: state.peak_memory(),
            denied_host: state.http.denied_host.take(),
        }
    }
}
