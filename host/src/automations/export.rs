//! S3 export automations: one run exports one batch.
//!
//! ```text
//!  claim lease ─> bounds of the next batch (cursor, upto] ─> reserve it ─> read rows
//!       ─> encode (JSONL | Parquet) ─> s3-export plugin ─> object-store put (host, S3)
//!       ─> commit: cursor = upto + run record, one transaction, under the lease
//! ```
//!
//! **Exactly once in the bucket.** The batch's bounds and start time are
//! committed ("reserved") before anything is written, and cleared only by
//! the commit that moves the cursor. A run that dies after writing the
//! object but before that commit leaves the reservation behind; the next
//! attempt — after a restart, or by another daemon once the lease expires —
//! re-exports exactly that range with the same start time, so the plugin
//! derives the same object key and the retry overwrites the object instead
//! of adding a second copy. A failed attempt keeps the reservation too.
//!
//! **Pace.** While a batch comes back full the next run is due at once, so a
//! backlog drains batch after batch; otherwise the next run is one interval
//! after this one started. Failures retry on the delivery schedule and
//! pause the automation after `pause_after_failures` in a row.
//!
//! **Fault injection.** With `HERALD_FAULT_INJECTION=export-after-write` in
//! its environment the daemon aborts right after an object is written and
//! before the cursor commit: the crash the design above must survive, made
//! reproducible for the end-to-end test.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::json;

use super::Inner;
use super::config::ExportConfig;
use super::evaluate::Trigger;
use crate::capabilities::object_store::Payload;
use crate::export::encoding;
use crate::export::query::ConfinedQuery;
use crate::export::rows::ExportRows;
use crate::plugins::{CheckStep, ExportBatch};
use crate::store::{
    AutomationState, DbTime, EvaluationCommit, FailureUpdate, NewRun, RunStatus, StoredAutomation,
};

/// The plugin that writes export batches.
pub const EXPORT_PLUGIN: &str = "s3-export";

/// The environment variable that arms the fault-injection point.
pub const FAULT_INJECTION_ENV: &str = "HERALD_FAULT_INJECTION";

fn crash_after_write() -> bool {
    static ARMED: OnceLock<bool> = OnceLock::new();
    *ARMED
        .get_or_init(|| std::env::var(FAULT_INJECTION_ENV).is_ok_and(|v| v == "export-after-write"))
}

/// The plugin's config: only where the objects go inside the bucket.
fn plugin_config(config: &ExportConfig) -> serde_json::Value {
    json!({"prefix": config.path().prefix})
}

/// Reads the rows of `(after, upto]` in the shape `config` asks for.
async fn read_rows(
    inner: &Inner,
    project_id: uuid::Uuid,
    config: &ExportConfig,
    after: i64,
    upto: i64,
) -> anyhow::Result<ExportRows> {
    use super::config::ExportDefinition;
    let store = &inner.store;
    let since = config.start_from.map(DbTime);
    Ok(match &config.export_definition {
        ExportDefinition::LogSpans => {
            ExportRows::Spans(store.export_spans(project_id, after, upto, since).await?)
        }
        ExportDefinition::LogTraces => {
            ExportRows::Traces(store.export_traces(project_id, after, upto, since).await?)
        }
        ExportDefinition::BtqlQuery { btql_query } => {
            let query = ConfinedQuery::new(btql_query, store.dialect(), project_id)?;
            ExportRows::Query(
                store
                    .export_query(&query.sql, project_id, after, upto)
                    .await?,
            )
        }
    })
}

/// What one batch did.
struct BatchOutcome {
    rows: usize,
    bytes: u64,
    keys: Vec<String>,
    logs: Vec<String>,
}

/// Reads, encodes and writes batch `(after, upto]` started at `started`.
async fn export_batch(
    inner: &Inner,
    automation: &StoredAutomation,
    config: &ExportConfig,
    after: i64,
    upto: i64,
    started: DbTime,
) -> anyhow::Result<BatchOutcome> {
    let project_id = automation.project_id;
    let rows = read_rows(inner, project_id, config, after, upto).await?;
    let count = rows.len();
    if rows.is_empty() {
        return Ok(BatchOutcome {
            rows: 0,
            bytes: 0,
            keys: Vec::new(),
            logs: Vec::new(),
        });
    }
    let format = config.format;
    let encoded =
        tokio::task::spawn_blocking(move || encoding::encode(&rows, format, project_id)).await??;
    let batch = ExportBatch {
        automation_id: automation.id.to_string(),
        project_id: project_id.to_string(),
        shape: config.export_definition.shape().to_string(),
        format: format.as_str().to_string(),
        row_count: count as u64,
        first_sequence: (after + 1) as u64,
        last_sequence: upto as u64,
        run_started_ms: started.0.timestamp_millis(),
    };
    let bucket = inner.s3.bucket(config).await;
    let report = inner
        .plugins
        .export_batch(
            EXPORT_PLUGIN,
            &plugin_config(config),
            &batch,
            Payload {
                bytes: encoded.into(),
            },
            Arc::new(bucket),
        )
        .await;
    let logs = report.logs.iter().map(|l| l.message.clone()).collect();
    let written = report.result?;
    Ok(BatchOutcome {
        rows: count,
        bytes: written.bytes,
        keys: written.keys,
        logs,
    })
}

/// Runs one export batch of `automation` under the lease this daemon
/// holds. `None` means the lease was lost before anything was written.
pub(super) async fn run(
    inner: &Inner,
    automation: &StoredAutomation,
    config: &ExportConfig,
    state: &AutomationState,
    trigger: Trigger,
) -> anyhow::Result<Option<EvaluationCommit>> {
    let id = automation.id;
    let store = &inner.store;
    let now = DbTime::now();
    let interval = chrono::TimeDelta::seconds(config.interval_seconds as i64);
    let mut commit = EvaluationCommit {
        watermark: state.watermark,
        window_start: now,
        suppressed_until: None,
        next_run: Some(DbTime(now.0 + interval)),
        runs: Vec::new(),
        deliveries: Vec::new(),
        failures: FailureUpdate::Keep,
        keep_export_pending: false,
    };
    let (upto, more) = match state.export_pending_upto {
        // A reserved batch that never committed: redo exactly it.
        Some(upto) => (upto, true),
        None => match store
            .next_export_batch(automation.project_id, state.watermark, config.batch_size())
            .await?
        {
            Some(bounds) => (bounds.upto, bounds.full),
            None => {
                if trigger == Trigger::Manual {
                    commit.runs.push(export_run(
                        automation,
                        trigger,
                        RunStatus::Skipped,
                        now,
                        json!({"message": "no new rows since the last export",
                               "cursor": state.watermark}),
                        None,
                    ));
                }
                return Ok(Some(commit));
            }
        },
    };
    let started = state.export_pending_started.unwrap_or(now);
    if state.export_pending_upto.is_none()
        && !store
            .reserve_export_batch(id, &inner.owner, upto, started)
            .await?
    {
        return Ok(None);
    }
    let heartbeat = super::lease::Heartbeat::start(inner, id);
    let clock = Instant::now();
    let outcome = export_batch(inner, automation, config, state.watermark, upto, started).await;
    drop(heartbeat);
    let mut details = json!({
        "shape": config.export_definition.shape(),
        "format": config.format.as_str(),
        "cursor_before": state.watermark,
        "cursor_after": upto,
        "retry_of_reserved_batch": state.export_pending_upto.is_some(),
        "export_ms": clock.elapsed().as_millis() as u64,
    });
    match outcome {
        Ok(outcome) => {
            if crash_after_write() && !outcome.keys.is_empty() {
                tracing::error!(automation_id = %id, keys = ?outcome.keys,
                    "fault injection: aborting after the write, before the cursor commit");
                std::process::abort();
            }
            details["rows"] = outcome.rows.into();
            details["bytes"] = outcome.bytes.into();
            details["objects"] = outcome.keys.clone().into();
            if !outcome.logs.is_empty() {
                details["plugin_logs"] = outcome.logs.into();
            }
            tracing::info!(automation_id = %id, rows = outcome.rows, bytes = outcome.bytes,
                objects = outcome.keys.len(), cursor = upto, more, "export batch written");
            commit.watermark = upto;
            commit.failures = FailureUpdate::Reset;
            commit.window_start = started;
            commit.next_run = Some(if more {
                DbTime::now()
            } else {
                DbTime(started.0 + interval)
            });
            let mut run = export_run(
                automation,
                trigger,
                RunStatus::Succeeded,
                started,
                details,
                None,
            );
            run.matched_rows = Some(outcome.rows as i64);
            commit.runs.push(run);
        }
        Err(error) => {
            let message = format!("{error:#}");
            tracing::warn!(automation_id = %id, error = %message, "export batch failed");
            let failures = state.consecutive_failures.max(0) as usize;
            let schedule = &inner.settings.retry_schedule_ms;
            let delay = schedule
                .get(failures + 1)
                .or(schedule.last())
                .copied()
                .unwrap_or(60_000);
            commit.keep_export_pending = true;
            commit.window_start = state.window_start;
            commit.next_run = Some(DbTime(
                now.0 + chrono::TimeDelta::milliseconds(delay.max(1_000) as i64),
            ));
            commit.failures = FailureUpdate::Failed {
                reason: format!("export failed {} times in a row: {message}", failures + 1),
                pause_after: inner.settings.pause_after_failures.max(1),
            };
            if inner.settings.pause_after_failures == 0 {
                commit.failures = FailureUpdate::Keep;
            }
            commit.runs.push(export_run(
                automation,
                trigger,
                RunStatus::Failed,
                started,
                details,
                Some(message),
            ));
        }
    }
    Ok(Some(commit))
}

fn export_run(
    automation: &StoredAutomation,
    trigger: Trigger,
    status: RunStatus,
    started: DbTime,
    details: serde_json::Value,
    error: Option<String>,
) -> NewRun {
    NewRun {
        id: uuid::Uuid::now_v7(),
        automation_id: automation.id,
        event_type: automation.event_type.clone(),
        trigger: trigger.run_trigger(),
        status,
        started,
        finished: Some(DbTime::now()),
        matched_rows: None,
        deliveries: 0,
        attempts: 1,
        error,
        details,
    }
}

impl super::Engine {
    /// Checks export destination `config`: writes a small test object,
    /// reads it back and deletes it, reporting each step.
    pub async fn check_export_destination(
        &self,
        config: &ExportConfig,
    ) -> Result<Vec<CheckStep>, crate::plugins::CallError> {
        let bucket = self.inner.s3.bucket(config).await;
        self.inner
            .plugins
            .check_destination(EXPORT_PLUGIN, &plugin_config(config), Arc::new(bucket))
            .await
            .result
    }
}
