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
//! **Pace.** While batches come back full an evaluation (scheduled or manual) keeps
//! going (for up to [`DRAIN_BUDGET`]), committing each batch as its own run
//! and reading and encoding the next batch while the current one uploads,
//! so a backlog drains at the speed of the slowest stage rather than their
//! sum; otherwise the next run is one interval after this one started. Failures retry on the delivery schedule and
//! pause the automation after `pause_after_failures` in a row.
//!
//! **Fault injection.** With `HERALD_FAULT_INJECTION=export-after-write` in
//! its environment the daemon aborts right after an object is written and
//! before the cursor commit: the crash the design above must survive, made
//! reproducible for the end-to-end test.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use super::Inner;
use super::config::{ExportConfig, ExportDefinition};
use super::kind::{Evaluation, Verdict};
use super::trigger::Trigger;
use crate::capabilities::object_store::Payload;
use crate::export::encoding;
use crate::export::query::{ALLOWED_FUNCTIONS, ConfinedQuery};
use crate::export::rows::ExportRows;
use crate::plugins::{CheckStep, ExportBatch, Written};
use crate::store::{
    ConfinedRange, ConfinedRun, DbTime, EvaluationCommit, FailureUpdate, NewRun, QueryLimits,
    RunStatus, Store, StoredAutomation,
};

/// How long one scheduled evaluation keeps draining a backlog before it
/// lets the scheduler take over (the next run is then due at once).
const DRAIN_BUDGET: Duration = Duration::from_secs(30);

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
    store: &Store,
    project_id: Uuid,
    config: &ExportConfig,
    after: i64,
    upto: i64,
) -> anyhow::Result<ExportRows> {
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
                    .confined_query(ConfinedRun {
                        sql: &query.sql,
                        views: &query.views,
                        project_id,
                        range: ConfinedRange::Xact { after, upto },
                        allowed_functions: ALLOWED_FUNCTIONS,
                        limits: QueryLimits::EXPORT,
                    })
                    .await?,
            )
        }
    })
}

/// A batch read and encoded, ready to be written.
struct Prepared {
    /// The batch is `(after, upto]`.
    after: i64,
    upto: i64,
    /// Whether it holds a full `batch_size` spans (more may wait).
    full: bool,
    /// Rows in it (0: nothing to write, the cursor just moves).
    rows: usize,
    /// The encoded object.
    encoded: Vec<u8>,
}

/// Finds the batch after `after` (or takes `(after, reserved]` when a
/// reserved batch is being redone), reads and encodes it. `None` when there
/// is nothing new. Owns its inputs so it can run ahead as a task.
async fn prepare(
    store: Store,
    project_id: Uuid,
    config: Arc<ExportConfig>,
    after: i64,
    reserved: Option<i64>,
) -> anyhow::Result<Option<Prepared>> {
    let (upto, full) = match reserved {
        Some(upto) => (upto, true),
        None => match store
            .next_export_batch(project_id, after, config.batch_size())
            .await?
        {
            Some(bounds) => (bounds.upto, bounds.full),
            None => return Ok(None),
        },
    };
    let rows = read_rows(&store, project_id, &config, after, upto).await?;
    let count = rows.len();
    let format = config.format;
    let encoded = if rows.is_empty() {
        Vec::new()
    } else {
        tokio::task::spawn_blocking(move || encoding::encode(&rows, format, project_id)).await??
    };
    Ok(Some(Prepared {
        after,
        upto,
        full,
        rows: count,
        encoded,
    }))
}

/// Hands a prepared batch to the export plugin; returns what it wrote and
/// the lines it logged.
async fn write(
    inner: &Inner,
    automation: &StoredAutomation,
    config: &ExportConfig,
    batch: Prepared,
    started: DbTime,
) -> anyhow::Result<(Written, Vec<String>)> {
    if batch.rows == 0 {
        return Ok((Written::default(), Vec::new()));
    }
    let description = ExportBatch {
        automation_id: automation.id.to_string(),
        project_id: automation.project_id.to_string(),
        shape: config.export_definition.shape().to_string(),
        format: config.format.as_str().to_string(),
        row_count: batch.rows as u64,
        first_sequence: (batch.after + 1) as u64,
        last_sequence: batch.upto as u64,
        run_started_ms: started.0.timestamp_millis(),
    };
    let bucket = inner.s3.bucket(&config.s3_destination()).await?;
    let report = inner
        .plugins
        .export_batch(
            EXPORT_PLUGIN,
            &plugin_config(config),
            &description,
            Payload {
                bytes: batch.encoded.into(),
            },
            Arc::new(bucket),
        )
        .await;
    let logs = report.logs.iter().map(|l| l.message.clone()).collect();
    Ok((report.result?, logs))
}

/// Runs an export under the lease this daemon holds, manual or
/// scheduled: batch after batch while they come back full, for up to
/// [`DRAIN_BUDGET`], reading and encoding the next batch
/// while the current one uploads. Every batch but the last is committed
/// here (and the lease re-claimed); the last commit is returned for the
/// caller to make. [`Verdict::Busy`]: the lease was lost.
pub(super) async fn evaluate(
    ev: &Evaluation<'_>,
    config: &ExportConfig,
) -> anyhow::Result<Verdict> {
    let (inner, automation, state, trigger) = (ev.inner, ev.automation, ev.state, ev.trigger);
    let id = automation.id;
    let store = &inner.store;
    let shared = Arc::new(config.clone());
    let interval = chrono::TimeDelta::seconds(config.interval_seconds as i64);
    let drain_until = Instant::now() + DRAIN_BUDGET;
    let mut cursor = state.watermark;
    let mut reserved = state.export_pending_upto;
    let mut reserved_started = state.export_pending_started;
    let mut failures = state.consecutive_failures.max(0) as usize;
    let mut ahead: Option<tokio::task::JoinHandle<anyhow::Result<Option<Prepared>>>> = None;
    let _heartbeat = super::lease::Heartbeat::start(inner, id);
    loop {
        let started = reserved_started.unwrap_or_else(DbTime::now);
        let clock = Instant::now();
        let prepared = match ahead.take() {
            Some(task) => task.await?,
            None => {
                let task = prepare(
                    store.clone(),
                    automation.project_id,
                    shared.clone(),
                    cursor,
                    reserved,
                );
                task.await
            }
        };
        let mut commit = EvaluationCommit::next(cursor, started, DbTime(started.0 + interval));
        let mut details = json!({
            "shape": config.export_definition.shape(),
            "format": config.format.as_str(),
            "cursor_before": cursor,
            "retry_of_reserved_batch": reserved.is_some(),
        });
        let outcome = match prepared {
            Ok(None) => {
                if trigger == Trigger::Manual {
                    details["message"] = "no new rows since the last export".into();
                    commit.runs.push(export_run(
                        automation,
                        trigger,
                        RunStatus::Skipped,
                        started,
                        details,
                        None,
                    ));
                }
                return Ok(Verdict::Commit(commit));
            }
            Ok(Some(batch)) => {
                details["cursor_after"] = batch.upto.into();
                details["rows"] = batch.rows.into();
                if reserved.is_none()
                    && !store
                        .reserve_export_batch(id, &inner.owner, batch.upto, started)
                        .await?
                {
                    return Ok(Verdict::Busy);
                }
                let (upto, full, rows) = (batch.upto, batch.full, batch.rows);
                // Manual runs drain too: "run once" means "export what is
                // there now", not "one batch of it".
                if full && Instant::now() < drain_until && !inner.is_shutting_down() {
                    ahead = Some(tokio::spawn(prepare(
                        store.clone(),
                        automation.project_id,
                        shared.clone(),
                        upto,
                        None,
                    )));
                }
                write(inner, automation, config, batch, started)
                    .await
                    .map(|(written, logs)| (written, logs, upto, full, rows))
            }
            Err(error) => Err(error),
        };
        details["export_ms"] = (clock.elapsed().as_millis() as u64).into();
        match outcome {
            Ok((written, logs, upto, full, rows)) => {
                if crash_after_write() && !written.keys.is_empty() {
                    tracing::error!(automation_id = %id, keys = ?written.keys,
                        "fault injection: aborting after the write, before the cursor commit");
                    std::process::abort();
                }
                details["bytes"] = written.bytes.into();
                details["objects"] = written.keys.clone().into();
                if !logs.is_empty() {
                    details["plugin_logs"] = logs.into();
                }
                tracing::info!(automation_id = %id, rows, bytes = written.bytes,
                    objects = written.keys.len(), cursor = upto, more = full,
                    "export batch written");
                commit.watermark = upto;
                commit.failures = FailureUpdate::Reset;
                if full {
                    commit.next_run = Some(DbTime::now());
                }
                let mut run = export_run(
                    automation,
                    trigger,
                    RunStatus::Succeeded,
                    started,
                    details,
                    None,
                );
                run.matched_rows = Some(rows as i64);
                commit.runs.push(run);
                let Some(_) = ahead.as_ref() else {
                    return Ok(Verdict::Commit(commit));
                };
                // More to drain: commit this batch now and go on under a
                // renewed claim.
                let until = DbTime(DbTime::now().0 + inner.settings.lease());
                if !store.commit_evaluation(id, &inner.owner, &commit).await?
                    || !store.claim_automation(id, &inner.owner, until).await?
                {
                    if let Some(task) = ahead.take() {
                        task.abort();
                    }
                    return Ok(Verdict::Busy);
                }
                super::kind::committed(inner, id, &commit);
                cursor = upto;
                reserved = None;
                reserved_started = None;
                failures = 0;
            }
            Err(error) => {
                if let Some(task) = ahead.take() {
                    task.abort();
                }
                let message = format!("{error:#}");
                tracing::warn!(automation_id = %id, error = %message, "export batch failed");
                let schedule = &inner.settings.retry_schedule_ms;
                let delay = schedule
                    .get(failures + 1)
                    .or(schedule.last())
                    .copied()
                    .unwrap_or(60_000);
                commit.keep_export_pending = true;
                commit.window_start = state.window_start;
                commit.next_run = Some(DbTime(
                    DbTime::now().0 + chrono::TimeDelta::milliseconds(delay.max(1_000) as i64),
                ));
                commit.failures = match inner.settings.pause_after_failures {
                    0 => FailureUpdate::Keep,
                    pause_after => FailureUpdate::Failed {
                        reason: format!("export failed {} times in a row: {message}", failures + 1),
                        pause_after,
                    },
                };
                commit.runs.push(export_run(
                    automation,
                    trigger,
                    RunStatus::Failed,
                    started,
                    details,
                    Some(message),
                ));
                return Ok(Verdict::Commit(commit));
            }
        }
    }
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
        attempts: 1,
        error,
        details,
        ..NewRun::ended(
            automation.id,
            automation.event_type.clone(),
            trigger.run_trigger(),
            status,
            started,
        )
    }
}

impl super::Engine {
    /// Checks export destination `config`: writes a small test object,
    /// reads it back and deletes it, reporting each step.
    pub async fn check_export_destination(
        &self,
        config: &ExportConfig,
    ) -> Result<Vec<CheckStep>, crate::plugins::CallError> {
        let bucket = match self.inner.s3.bucket(&config.s3_destination()).await {
            Ok(bucket) => bucket,
            Err(refused) => {
                return Ok(vec![CheckStep {
                    step: "endpoint".into(),
                    ok: false,
                    message: refused.to_string(),
                }]);
            }
        };
        self.inner
            .plugins
            .check_destination(EXPORT_PLUGIN, &plugin_config(config), Arc::new(bucket))
            .await
            .result
    }
}
