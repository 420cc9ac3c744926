//! Retention automations: run the `retention` plugin against one project.
//!
//! The policy is a plugin (`plugins/retention`); the host gives it the
//! `records` capability confined to the automation's project
//! ([`ProjectRecords`]), so the plugin decides and the store deletes, in
//! bounded batches, without rows ever crossing into the sandbox. A run holds
//! the automation's lease and renews it while the purge goes on, so a long
//! purge is never taken over by another daemon, and a crashed one is.
//! The API's test is a dry run: the same call with `dry_run`, deleting
//! nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Inner;
use super::config::{RetentionConfig, RetentionObject};
use super::kind::{Evaluation, Verdict};
use crate::plugins::{Affected, CallError, ObjectType, Records, RetentionResult, RetentionRun};
use crate::store::retention::{AffectedRecords, RetentionTarget};
use crate::store::{DbTime, EvaluationCommit, NewRun, RunStatus, Store};

/// The plugin that implements retention automations.
pub const RETENTION_PLUGIN: &str = "retention";

/// The `records` capability over one project of the store.
pub struct ProjectRecords {
    store: Store,
    project_id: Uuid,
    /// Rows deleted so far by this run, for progress logs.
    deleted: AtomicU64,
}

/// A purge logs its progress every this many rows.
const PROGRESS_EVERY: u64 = 100_000;

fn target(object_type: ObjectType) -> RetentionTarget {
    match object_type {
        ObjectType::ProjectLogs => RetentionTarget::ProjectLogs,
        ObjectType::Experiment => RetentionTarget::Experiments,
        ObjectType::Dataset => RetentionTarget::DatasetRows,
    }
}

fn from_ms(ms: i64) -> DbTime {
    DbTime(chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

fn to_affected(records: AffectedRecords) -> Affected {
    Affected {
        count: records.count,
        oldest_ms: records.oldest.map(|t| t.0.timestamp_millis()),
        newest_ms: records.newest.map(|t| t.0.timestamp_millis()),
        sample_ids: records.sample_ids,
    }
}

#[async_trait::async_trait]
impl Records for ProjectRecords {
    async fn count_older_than(
        &self,
        object_type: ObjectType,
        cutoff_ms: i64,
    ) -> Result<Affected, String> {
        self.store
            .count_older_than(self.project_id, target(object_type), from_ms(cutoff_ms))
            .await
            .map(to_affected)
            .map_err(|e| e.to_string())
    }

    async fn delete_older_than(
        &self,
        object_type: ObjectType,
        cutoff_ms: i64,
        max_rows: u32,
    ) -> Result<u64, String> {
        let deleted = self
            .store
            .delete_older_than(
                self.project_id,
                target(object_type),
                from_ms(cutoff_ms),
                max_rows,
            )
            .await
            .map_err(|e| e.to_string())?;
        let before = self.deleted.fetch_add(deleted, Ordering::Relaxed);
        if (before + deleted) / PROGRESS_EVERY > before / PROGRESS_EVERY {
            tracing::info!(
                project_id = %self.project_id,
                deleted = before + deleted,
                "retention purge in progress"
            );
        }
        Ok(deleted)
    }
}

/// What a retention run or preview found, as the run history and the API
/// show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    /// `project_logs`, `experiment` or `dataset`.
    pub object_type: &'static str,
    /// The window.
    pub retention_days: u64,
    /// Everything created before this goes.
    #[schema(value_type = String, format = DateTime)]
    pub cutoff: DbTime,
    /// Rows (experiments, for `experiment`) older than the cutoff.
    pub affected: u64,
    /// The oldest affected creation time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub oldest: Option<DbTime>,
    /// The newest affected creation time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub newest: Option<DbTime>,
    /// A few affected ids, oldest first.
    pub sample_ids: Vec<String>,
    /// Rows deleted (0 for a preview). For experiments this counts their
    /// event rows and the experiment rows.
    pub deleted: u64,
    /// Delete batches run.
    pub batches: u32,
    /// True for a preview: nothing was deleted.
    pub dry_run: bool,
}

impl RetentionReport {
    fn new(config: &RetentionConfig, result: RetentionResult, dry_run: bool) -> Self {
        Self {
            object_type: match config.object_type {
                RetentionObject::ProjectLogs => "project_logs",
                RetentionObject::Experiment => "experiment",
                RetentionObject::Dataset => "dataset",
            },
            retention_days: config.retention_days,
            cutoff: from_ms(result.cutoff_ms),
            affected: result.affected.count,
            oldest: result.affected.oldest_ms.map(from_ms),
            newest: result.affected.newest_ms.map(from_ms),
            sample_ids: result.affected.sample_ids,
            deleted: result.deleted,
            batches: result.batches,
            dry_run,
        }
    }

    /// The report as run details.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

/// Evaluates a retention automation: one purge, recorded as one run; the
/// next is due one interval after this one began (start to start).
pub(super) async fn evaluate(
    ev: &Evaluation<'_>,
    retention: &RetentionConfig,
) -> anyhow::Result<Verdict> {
    let started = DbTime::now();
    let result = apply(ev.inner, ev.project.id, retention, false, Some(ev.id())).await;
    let finished = DbTime::now();
    let interval = chrono::TimeDelta::seconds(retention.interval() as i64);
    let (status, error, details, matched) = match result {
        Ok(report) => (
            RunStatus::Succeeded,
            None,
            report.to_json(),
            Some(report.affected as i64),
        ),
        Err(error) => (RunStatus::Failed, Some(error.to_string()), json!({}), None),
    };
    let run = NewRun {
        finished: Some(finished),
        matched_rows: matched,
        attempts: 1,
        error,
        details,
        ..NewRun::ended(
            ev.id(),
            ev.automation.event_type.clone(),
            ev.trigger.run_trigger(),
            status,
            started,
        )
    };
    let next_run = DbTime(started.0 + interval);
    Ok(Verdict::Commit(EvaluationCommit {
        runs: vec![run],
        ..EvaluationCommit::next(ev.state.watermark, started, next_run)
    }))
}

/// Runs (or, with `dry_run`, previews) retention `config` on `project_id`
/// through the retention plugin. The caller holds the automation's lease;
/// when `lease` is given it is renewed while the plugin runs.
pub(super) async fn apply(
    inner: &Inner,
    project_id: Uuid,
    config: &RetentionConfig,
    dry_run: bool,
    lease: Option<Uuid>,
) -> Result<RetentionReport, CallError> {
    let run = RetentionRun {
        object_type: match config.object_type {
            RetentionObject::ProjectLogs => ObjectType::ProjectLogs,
            RetentionObject::Experiment => ObjectType::Experiment,
            RetentionObject::Dataset => ObjectType::Dataset,
        },
        retention_days: u32::try_from(config.retention_days).unwrap_or(u32::MAX),
        now_ms: DbTime::now().0.timestamp_millis(),
        dry_run,
    };
    let records: Arc<dyn Records> = Arc::new(ProjectRecords {
        store: inner.store.clone(),
        project_id,
        deleted: AtomicU64::new(0),
    });
    let plugin_config = json!({});
    let heartbeat = lease.map(|id| super::lease::Heartbeat::start(inner, id));
    let report = inner
        .plugins
        .apply_retention(RETENTION_PLUGIN, &plugin_config, &run, records)
        .await;
    drop(heartbeat);
    report
        .result
        .map(|result| RetentionReport::new(config, result, dry_run))
}

impl super::Engine {
    /// What retention automation `config` of project `project_id` would
    /// delete now; deletes nothing.
    pub async fn preview_retention(
        &self,
        project_id: Uuid,
        config: &RetentionConfig,
    ) -> Result<RetentionReport, CallError> {
        apply(&self.inner, project_id, config, true, None).await
    }
}
