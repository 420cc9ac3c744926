//! `herald plugins test`: one call of a component against a sample input.
//!
//! The component is loaded exactly as the daemon loads a file from its
//! plugins directory (same contract checks, same sandbox limits), then
//! called once:
//!
//! * `alert`: `deliver` with a sample log alert (Braintrust's payload,
//!   `is_test: true`) — for real, to wherever the config points. The
//!   plugin may reach any host, private addresses included: this is the
//!   author's machine, and the author's receiver is usually local. Every
//!   request is recorded and printed with its answer.
//! * `export`: `export-batch` with three sample spans as JSON Lines, into an
//!   in-memory bucket whose writes are printed.
//! * `retention`: `apply` for project logs, 30 days, over 1,000 in-memory
//!   records of which 400 are old; the deletions are printed.
//!
//! The report is JSON: the result (or the error, with whether it is
//! retryable), what was sent, the plugin's log lines, the duration and the
//! peak linear memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};

use crate::capabilities::object_store::{ObjectInfo, ObjectStore, Payload, StoreError};
use crate::plugins::{
    Affected, AlertRequest, CallError, CallReport, ExportBatch, ObjectType, PluginPolicy,
    PluginRuntime, Records, RetentionRun, RuntimeConfig, World,
};

/// Which sample input to call the plugin with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sample {
    /// A log alert, for alert destinations.
    Alert,
    /// An encoded batch of spans, for export destinations.
    Export,
    /// A retention run, for retention policies.
    Retention,
}

impl Sample {
    fn world(self) -> World {
        match self {
            Sample::Alert => World::AlertDestination,
            Sample::Export => World::ExportDestination,
            Sample::Retention => World::RetentionPolicy,
        }
    }
}

/// What one trial call did.
#[derive(Debug, Serialize)]
pub struct TrialReport {
    /// The plugin's name and version.
    pub plugin: String,
    /// The world it targets.
    pub world: &'static str,
    /// `true` when the call returned `ok`.
    pub ok: bool,
    /// What it returned, or the error.
    pub result: Value,
    /// What it sent: HTTP requests, objects written or records deleted.
    pub sent: Value,
    /// Its log lines.
    pub logs: Vec<String>,
    /// Wall-clock duration of the call (instantiation included), ms.
    pub duration_ms: f64,
    /// Peak linear memory, bytes.
    pub peak_memory_bytes: u64,
}

/// Loads `file`, validates `config` with it and runs it once on `sample`.
pub async fn run(file: &Path, config: &Value, sample: Sample) -> anyhow::Result<TrialReport> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // The plugins directory the runtime loads from (a copy of this one
    // file), and a compile cache both runtimes share, so the component is
    // compiled once: by the probe, then loaded from the cache.
    let dir = tempfile::tempdir()?;
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugins_dir)?;
    let cache_dir = Some(dir.path().join("cache"));
    let probe = PluginRuntime::start(RuntimeConfig {
        load_bundled: false,
        cache_dir: cache_dir.clone(),
        ..RuntimeConfig::default()
    })
    .await?;
    let summary = probe
        .check_file(file)
        .await
        .map_err(|e| anyhow::anyhow!("{}: rejected: {e}", file.display()))?;
    if summary.world != sample.world() {
        bail!(
            "{} targets the {} world; --sample {:?} needs {}",
            summary.name,
            summary.world.name(),
            sample,
            sample.world().name()
        );
    }
    std::fs::write(plugins_dir.join("plugin.wasm"), bytes)?;
    let mut policies = std::collections::HashMap::new();
    policies.insert(
        summary.name.clone(),
        PluginPolicy {
            allowed_hosts: Some(vec!["*".into()]),
            ..PluginPolicy::default()
        },
    );
    let runtime = PluginRuntime::start(RuntimeConfig {
        plugins_dir: Some(plugins_dir),
        cache_dir,
        load_bundled: false,
        allow_private_networks: true,
        policies,
        record_http: true,
        ..RuntimeConfig::default()
    })
    .await?;
    let name = summary.name.clone();
    if let Err(error) = runtime.validate_config(&name, config).await.result {
        bail!("the config is invalid: {error}");
    }
    let label = format!("{} {}", summary.name, summary.version);
    let world = summary.world.name();
    let report = match sample {
        Sample::Alert => {
            let report = runtime.deliver(&name, config, &sample_alert()).await;
            let sent = serde_json::to_value(runtime.take_sent_requests())?;
            finish(label, world, report, |d| json!(d), sent)
        }
        Sample::Export => {
            let bucket = Arc::new(MemoryBucket::default());
            let (batch, body) = sample_batch();
            let report = runtime
                .export_batch(&name, config, &batch, body, bucket.clone())
                .await;
            let sent = serde_json::to_value(&*bucket.objects.lock())?;
            finish(label, world, report, |w| json!(w), sent)
        }
        Sample::Retention => {
            let records = Arc::new(MemoryRecords::new(1_000, 400));
            let run = RetentionRun {
                object_type: ObjectType::ProjectLogs,
                retention_days: 30,
                now_ms: chrono::Utc::now().timestamp_millis(),
                dry_run: false,
            };
            let report = runtime
                .apply_retention(&name, config, &run, records.clone())
                .await;
            let sent = json!({"delete_batches": records.deleted.lock().clone(),
                              "remaining": records.created.lock().len()});
            let outcome = |r: &crate::plugins::RetentionResult| {
                json!({"cutoff_ms": r.cutoff_ms, "affected": r.affected.count,
                       "oldest_ms": r.affected.oldest_ms, "newest_ms": r.affected.newest_ms,
                       "deleted": r.deleted, "batches": r.batches})
            };
            finish(label, world, report, outcome, sent)
        }
    };
    Ok(report)
}

fn finish<T>(
    plugin: String,
    world: &'static str,
    report: CallReport<T>,
    to_json: impl Fn(&T) -> Value,
    sent: Value,
) -> TrialReport {
    let (ok, result) = match &report.result {
        Ok(value) => (true, to_json(value)),
        Err(error) => (false, error_json(error)),
    };
    TrialReport {
        plugin,
        world,
        ok,
        result,
        sent,
        logs: report
            .logs
            .iter()
            .map(|l| format!("{} {}", l.level, l.message))
            .collect(),
        duration_ms: report.duration.as_secs_f64() * 1e3,
        peak_memory_bytes: report.peak_memory_bytes,
    }
}

fn error_json(error: &CallError) -> Value {
    json!({"error": error.to_string(), "retryable": error.is_retryable()})
}

/// A log alert like the daemon sends for a test.
fn sample_alert() -> AlertRequest {
    let now = chrono::Utc::now();
    let start = now - chrono::TimeDelta::minutes(10);
    AlertRequest {
        event_id: format!("evt_sample_{}", uuid::Uuid::now_v7().simple()),
        event_type: "logs".into(),
        payload: json!({
            "organization": {"id": "herald", "name": "herald"},
            "project": {"id": "00000000-0000-4000-8000-000000000001", "name": "sample project"},
            "automation": {"id": "00000000-0000-4000-8000-000000000002", "name": "sample alert",
                "description": "", "event_type": "logs", "btql_filter": "error IS NOT NULL",
                "interval_seconds": 600,
                "url": "/v1/project_automation/00000000-0000-4000-8000-000000000002"},
            "details": {"is_test": true, "message": "sample alert: 3 logs matched in the last 10 minutes",
                "time_start": start.to_rfc3339(), "time_end": now.to_rfc3339(), "count": 3,
                "related_logs_url": "/v1/project_logs/00000000-0000-4000-8000-000000000001/fetch"}
        }),
        is_test: true,
        attempt: 1,
    }
}

/// Three spans as JSON Lines.
fn sample_batch() -> (ExportBatch, Payload) {
    let lines: String = (1..=3)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("span-{i}"), "_xact_id": i.to_string(),
                       "input": {"question": "q"}, "output": "a", "scores": {"accuracy": 1}})
            )
        })
        .collect();
    let batch = ExportBatch {
        automation_id: "00000000-0000-4000-8000-000000000002".into(),
        project_id: "00000000-0000-4000-8000-000000000001".into(),
        shape: "spans".into(),
        format: "jsonl".into(),
        row_count: 3,
        first_sequence: 1,
        last_sequence: 3,
        run_started_ms: chrono::Utc::now().timestamp_millis(),
    };
    (
        batch,
        Payload {
            bytes: lines.into(),
        },
    )
}

/// An in-memory bucket that remembers what was written.
#[derive(Default)]
struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Value>>,
    contents: Mutex<BTreeMap<String, Vec<u8>>>,
}

#[async_trait::async_trait]
impl ObjectStore for MemoryBucket {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: bytes::Bytes,
    ) -> Result<ObjectInfo, StoreError> {
        self.objects.lock().insert(
            key.to_owned(),
            json!({"content_type": content_type, "bytes": body.len(),
                   "start": String::from_utf8_lossy(&body[..body.len().min(512)])}),
        );
        self.contents.lock().insert(key.to_owned(), body.to_vec());
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: body.len() as u64,
            etag: None,
        })
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        let contents = self.contents.lock();
        let body = contents
            .get(key)
            .ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
        Ok(body[..body.len().min(max_bytes as usize)].to_vec())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.contents.lock().remove(key);
        self.objects.lock().remove(key);
        Ok(())
    }
}

/// In-memory records: creation times in ms, oldest first.
struct MemoryRecords {
    created: Mutex<Vec<i64>>,
    deleted: Mutex<Vec<u64>>,
}

impl MemoryRecords {
    /// `total` records, `old` of them 60 days old, the rest from today.
    fn new(total: usize, old: usize) -> Self {
        let now = chrono::Utc::now().timestamp_millis();
        let day = 86_400_000;
        let created = (0..total)
            .map(|i| {
                if i < old {
                    now - 60 * day + i as i64
                } else {
                    now - i as i64
                }
            })
            .collect();
        Self {
            created: Mutex::new(created),
            deleted: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl Records for MemoryRecords {
    async fn count_older_than(&self, _: ObjectType, cutoff_ms: i64) -> Result<Affected, String> {
        let created = self.created.lock();
        let old: Vec<i64> = created.iter().copied().filter(|&c| c < cutoff_ms).collect();
        Ok(Affected {
            count: old.len() as u64,
            oldest_ms: old.iter().min().copied(),
            newest_ms: old.iter().max().copied(),
            sample_ids: (0..old.len().min(3))
                .map(|i| format!("record-{i}"))
                .collect(),
        })
    }

    async fn delete_older_than(
        &self,
        _: ObjectType,
        cutoff_ms: i64,
        max_rows: u32,
    ) -> Result<u64, String> {
        let mut created = self.created.lock();
        let before = created.len();
        let mut budget = max_rows as usize;
        created.retain(|&c| {
            if c < cutoff_ms && budget > 0 {
                budget -= 1;
                false
            } else {
                true
            }
        });
        let gone = (before - created.len()) as u64;
        self.deleted.lock().push(gone);
        Ok(gone)
    }
}
