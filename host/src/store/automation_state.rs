//! The engine's per-automation state: schedule, lease, watermark,
//! suppression, failures and pause.
//!
//! # Leases
//!
//! Several daemons may share one PostgreSQL database. Before evaluating an
//! automation a daemon *claims* it with a conditional `UPDATE` that succeeds
//! only when nobody holds an unexpired lease; the evaluation's results are
//! then committed by [`Store::commit_evaluation`] in one transaction that
//! again requires the lease, and releases it. A daemon that crashes while
//! holding a lease simply lets it expire, and the work is picked up again
//! from the unchanged watermark: nothing is counted twice, nothing skipped.
//! The claim is a compare-and-set on one row, so it needs no `SELECT … FOR
//! UPDATE` and behaves the same on SQLite.

use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::outbox::{INSERT_DELIVERY_SQL, NewDelivery, bind_delivery};
use super::runs::{INSERT_RUN_SQL, NewRun, bind_run};
use super::{Store, StoreError, dispatch};

/// One automation's engine state.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AutomationState {
    /// The automation.
    #[sqlx(try_from = "DbId")]
    pub automation_id: Uuid,
    /// When the scheduler must next evaluate it (`None`: only on events).
    pub next_run: Option<DbTime>,
    /// The daemon holding the lease, if any.
    pub lease_owner: Option<String>,
    /// When that lease expires.
    pub lease_expires: Option<DbTime>,
    /// Ingest sequence number up to which data has been looked at.
    pub watermark: i64,
    /// When the current window began (the `time_start` of the next alert).
    pub window_start: DbTime,
    /// A log alert sends nothing before this time.
    pub suppressed_until: Option<DbTime>,
    /// Delivery attempts that failed in a row.
    pub consecutive_failures: i32,
    /// Paused automations neither run nor deliver.
    pub paused: bool,
    /// Why it was paused.
    pub paused_reason: Option<String>,
    /// When it was last evaluated.
    pub last_checked: Option<DbTime>,
    /// Exports: the upper bound of the batch reserved but not yet committed.
    pub export_pending_upto: Option<i64>,
    /// Exports: when that batch's first attempt started (it names the
    /// batch's date partition, so a retry writes the same key).
    pub export_pending_started: Option<DbTime>,
    /// Windowed alerts: the lifecycle of each group (the engine's JSON).
    pub windowed: Option<Json<Value>>,
}

/// The new state an evaluation commits, with the runs and deliveries it
/// produced.
#[derive(Debug, Clone)]
pub struct EvaluationCommit {
    /// The new watermark.
    pub watermark: i64,
    /// The new window start.
    pub window_start: DbTime,
    /// The new suppression end.
    pub suppressed_until: Option<DbTime>,
    /// When the scheduler should next evaluate.
    pub next_run: Option<DbTime>,
    /// Runs to record.
    pub runs: Vec<NewRun>,
    /// Deliveries to queue.
    pub deliveries: Vec<NewDelivery>,
    /// How the failure streak changes (exports count their own failures;
    /// alerts leave it to the delivery worker).
    pub failures: FailureUpdate,
    /// Keep a reserved export batch (the attempt failed and must be redone
    /// exactly); otherwise the commit clears it.
    pub keep_export_pending: bool,
    /// Windowed alerts: the groups' new lifecycle (`None` keeps it).
    pub windowed: Option<Value>,
}

impl EvaluationCommit {
    /// An evaluation that moves the watermark to `watermark`, starts the
    /// next window at `window_start` and is due again at `next_run`, with
    /// no suppression, no runs or deliveries, the failure streak and any
    /// reserved export batch left alone. Sites add what differs with struct
    /// update syntax.
    pub fn next(watermark: i64, window_start: DbTime, next_run: DbTime) -> Self {
        Self {
            watermark,
            window_start,
            suppressed_until: None,
            next_run: Some(next_run),
            runs: Vec::new(),
            deliveries: Vec::new(),
            failures: FailureUpdate::Keep,
            keep_export_pending: false,
            windowed: None,
        }
    }
}

/// What an evaluation does to the failure streak and pause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FailureUpdate {
    /// Leave both alone.
    #[default]
    Keep,
    /// The work succeeded: the streak starts over.
    Reset,
    /// The work failed: the streak grows by one, and the automation is
    /// paused with this reason once it reaches `pause_after`.
    Failed {
        /// Why, for `paused_reason`.
        reason: String,
        /// The streak length that pauses.
        pause_after: u32,
    },
}

/// What the ingest path needs to know about an alert.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AlertWatch {
    /// The automation.
    #[sqlx(try_from = "DbId")]
    pub automation_id: Uuid,
    /// Its project.
    #[sqlx(try_from = "DbId")]
    pub project_id: Uuid,
    /// `logs` or `environment_update`.
    pub event_type: String,
    /// A log alert sends nothing before this time.
    pub suppressed_until: Option<DbTime>,
    /// Paused automations are left alone.
    pub paused: bool,
}

/// Un-pauses every destination of automation `$1` and forgets their
/// failure streaks (with `…/resume` and `…/reset_state`).
pub(super) const RESUME_DESTINATIONS_SQL: &str =
    "DELETE FROM destination_state WHERE automation_id = $1";

const STATE_COLUMNS: &str = "automation_id, next_run, lease_owner, lease_expires, watermark, \
     window_start, suppressed_until, consecutive_failures, paused, paused_reason, last_checked, \
     export_pending_upto, export_pending_started, windowed";

impl Store {
    /// The state of one automation.
    pub async fn automation_state(&self, id: Uuid) -> Result<AutomationState, StoreError> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM automation_state WHERE automation_id = $1");
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, AutomationState>(&sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        found.ok_or_else(|| StoreError::not_found("project_automation", id))
    }

    /// Every alert automation with what the ingest path needs to know.
    pub async fn alert_watches(&self) -> Result<Vec<AlertWatch>, StoreError> {
        let sql = "SELECT a.id AS automation_id, a.project_id, a.event_type, \
                   s.suppressed_until, s.paused FROM automations a \
                   JOIN automation_state s ON s.automation_id = a.id \
                   WHERE a.event_type IN ('logs', 'environment_update')";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, AlertWatch>(sql)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Claims the lease on `id` for `owner` until `until`, if nobody else
    /// holds an unexpired one (re-claiming one's own lease succeeds).
    pub async fn claim_automation(
        &self,
        id: Uuid,
        owner: &str,
        until: DbTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE automation_state SET lease_expires = $3, \
                   lease_claimed = CASE WHEN lease_owner = $2 THEN lease_claimed ELSE $4 END, \
                   lease_owner = $2 \
                   WHERE automation_id = $1 AND (lease_owner IS NULL OR lease_owner = $2 \
                   OR lease_expires < $4)";
        let claimed = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(owner)
                .bind(until)
                .bind(DbTime::now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(claimed == 1)
    }

    /// Extends the lease `owner` still holds on `id` until `until`; `false`
    /// when it no longer holds it (never takes a free or expired lease).
    pub async fn renew_lease(
        &self,
        id: Uuid,
        owner: &str,
        until: DbTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE automation_state SET lease_expires = $3 \
                   WHERE automation_id = $1 AND lease_owner = $2";
        let renewed = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(owner)
                .bind(until)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(renewed == 1)
    }

    /// Releases `owner`'s lease on `id`, recording that it was checked and
    /// when it is next due.
    pub async fn release_automation(
        &self,
        id: Uuid,
        owner: &str,
        next_run: Option<DbTime>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE automation_state SET lease_owner = NULL, lease_expires = NULL, \
                   next_run = $3, last_checked = $4 WHERE automation_id = $1 AND lease_owner = $2";
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(owner)
                .bind(next_run)
                .bind(DbTime::now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Releases every lease `owner` holds (graceful shutdown).
    pub async fn release_all_leases(&self, owner: &str) -> Result<(), StoreError> {
        let automations = "UPDATE automation_state SET lease_owner = NULL, lease_expires = NULL \
                           WHERE lease_owner = $1";
        let deliveries = "UPDATE deliveries SET lease_owner = NULL, lease_expires = NULL \
                          WHERE lease_owner = $1";
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(automations)
                .bind(owner)
                .execute(pool)
                .await?;
            sqlx::query::<DB>(deliveries)
                .bind(owner)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Commits an evaluation: the new state, its runs and its deliveries, in
    /// one transaction, releasing the lease. Returns `false` (and writes
    /// nothing) when `owner` no longer holds the lease.
    pub async fn commit_evaluation(
        &self,
        id: Uuid,
        owner: &str,
        commit: &EvaluationCommit,
    ) -> Result<bool, StoreError> {
        let update = "UPDATE automation_state SET watermark = $3, window_start = $4, \
                      suppressed_until = $5, next_run = $6, last_checked = $7, \
                      lease_owner = NULL, lease_expires = NULL, \
                      export_pending_upto = CASE WHEN $8 THEN export_pending_upto END, \
                      export_pending_started = CASE WHEN $8 THEN export_pending_started END, \
                      windowed = COALESCE($9, windowed) \
                      WHERE automation_id = $1 AND lease_owner = $2";
        let (failures_sql, reason, pause_after) = match &commit.failures {
            FailureUpdate::Keep => (None, None, 0),
            FailureUpdate::Reset => (
                Some(
                    "UPDATE automation_state SET consecutive_failures = 0 WHERE automation_id = $1",
                ),
                None,
                0,
            ),
            FailureUpdate::Failed {
                reason,
                pause_after,
            } => (
                Some(
                    "UPDATE automation_state SET consecutive_failures = consecutive_failures + 1, \
                     paused = CASE WHEN consecutive_failures + 1 >= $3 THEN $4 ELSE paused END, \
                     paused_reason = CASE WHEN consecutive_failures + 1 >= $3 THEN $2 \
                     ELSE paused_reason END WHERE automation_id = $1",
                ),
                Some(reason.as_str()),
                i64::from(*pause_after),
            ),
        };
        let now = DbTime::now();
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query::<DB>(update)
                .bind(DbId(id))
                .bind(owner)
                .bind(commit.watermark)
                .bind(commit.window_start)
                .bind(commit.suppressed_until)
                .bind(commit.next_run)
                .bind(now)
                .bind(commit.keep_export_pending)
                .bind(commit.windowed.as_ref().map(Json))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            if let Some(sql) = failures_sql {
                let mut query = sqlx::query::<DB>(sql).bind(DbId(id));
                if let Some(reason) = reason {
                    query = query.bind(reason).bind(pause_after).bind(true);
                }
                query.execute(&mut *tx).await?;
            }
            for run in &commit.runs {
                bind_run!(sqlx::query::<DB>(INSERT_RUN_SQL), run)
                    .execute(&mut *tx)
                    .await?;
            }
            for delivery in &commit.deliveries {
                bind_delivery!(sqlx::query::<DB>(INSERT_DELIVERY_SQL), delivery)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Records the runs that ended without a commit: every lease that
    /// expired while held (its daemon crashed, was killed or lost power; a
    /// graceful shutdown releases its leases). Each becomes a failed run,
    /// "interrupted", started when its lease was claimed; the lease is
    /// released and the failure counts towards `pause_after` (0: never), so
    /// work that kills the daemon every time it runs ends paused with the
    /// reason instead of re-running after every restart. Any daemon may
    /// find a given one; the conditional release makes exactly one record
    /// it. Returns the runs recorded.
    pub async fn recover_interrupted(
        &self,
        now: DbTime,
        pause_after: u32,
    ) -> Result<Vec<NewRun>, StoreError> {
        let find = "SELECT s.automation_id, s.lease_owner, s.lease_claimed, a.event_type \
                    FROM automation_state s JOIN automations a ON a.id = s.automation_id \
                    WHERE s.lease_owner IS NOT NULL AND s.lease_expires < $1";
        let release = "UPDATE automation_state SET lease_owner = NULL, lease_expires = NULL, \
                       lease_claimed = NULL, consecutive_failures = consecutive_failures + 1, \
                       paused = CASE WHEN $4 > 0 AND consecutive_failures + 1 >= $4 THEN $5 \
                       ELSE paused END, \
                       paused_reason = CASE WHEN $4 > 0 AND consecutive_failures + 1 >= $4 \
                       THEN $6 ELSE paused_reason END \
                       WHERE automation_id = $1 AND lease_owner = $2 AND lease_expires < $3";
        let message = "interrupted: the daemon stopped (crashed, was killed or lost power) \
                       while this run was in progress; it is retried";
        let reason = format!("{pause_after} runs in a row were interrupted by the daemon stopping");
        let mut recorded = Vec::new();
        dispatch!(self, |pool, DB| {
            let stale: Vec<(DbId, String, Option<DbTime>, String)> =
                sqlx::query_as::<DB, (DbId, String, Option<DbTime>, String)>(find)
                    .bind(now)
                    .fetch_all(pool)
                    .await?;
            for (id, owner, claimed, event_type) in stale {
                let run = NewRun {
                    finished: Some(now),
                    attempts: 1,
                    error: Some(message.to_string()),
                    details: serde_json::json!({"interrupted": true, "lease_owner": owner}),
                    ..NewRun::ended(
                        id.into(),
                        event_type,
                        super::RunTrigger::Scheduled,
                        super::RunStatus::Failed,
                        claimed.unwrap_or(now),
                    )
                };
                let mut tx = pool.begin().await?;
                let released = sqlx::query::<DB>(release)
                    .bind(id)
                    .bind(owner.as_str())
                    .bind(now)
                    .bind(i64::from(pause_after))
                    .bind(true)
                    .bind(reason.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if released == 1 {
                    bind_run!(sqlx::query::<DB>(INSERT_RUN_SQL), &run)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    recorded.push(run);
                } else {
                    tx.rollback().await?;
                }
            }
        });
        Ok(recorded)
    }

    /// Reserves export batch `(watermark, upto]` of automation `id`, started
    /// at `started`, before its object is written; fails (returns `false`)
    /// when `owner` no longer holds the lease.
    pub async fn reserve_export_batch(
        &self,
        id: Uuid,
        owner: &str,
        upto: i64,
        started: DbTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE automation_state SET export_pending_upto = $3, \
                   export_pending_started = $4 WHERE automation_id = $1 AND lease_owner = $2";
        let updated = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(owner)
                .bind(upto)
                .bind(started)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Automations whose `next_run` has come, that are not paused and not
    /// leased by someone else.
    pub async fn due_automations(&self, now: DbTime, limit: u32) -> Result<Vec<Uuid>, StoreError> {
        let sql = "SELECT automation_id FROM automation_state WHERE paused = $1 \
                   AND next_run <= $2 AND (lease_owner IS NULL OR lease_expires < $2) \
                   ORDER BY next_run LIMIT $3";
        let ids: Vec<DbId> = dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, DbId>(sql)
                .bind(false)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(ids.into_iter().map(Uuid::from).collect())
    }

    /// The earliest `next_run` of any automation that is not paused.
    pub async fn next_due_time(&self) -> Result<Option<DbTime>, StoreError> {
        let sql = "SELECT MIN(next_run) FROM automation_state WHERE paused = $1";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, Option<DbTime>>(sql)
                .bind(false)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Un-pauses an automation and forgets its failure streak.
    pub async fn resume_automation(&self, id: Uuid) -> Result<(), StoreError> {
        let sql = "UPDATE automation_state SET paused = $2, paused_reason = NULL, \
                   consecutive_failures = 0 WHERE automation_id = $1";
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(false)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::not_found("project_automation", id));
            }
            sqlx::query::<DB>(RESUME_DESTINATIONS_SQL)
                .bind(DbId(id))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The destinations of automation `id` paused on their own: each
    /// one's `action_index` (-1: its `action`) and why.
    pub async fn paused_destinations(&self, id: Uuid) -> Result<Vec<(i32, String)>, StoreError> {
        let sql = "SELECT action_index, COALESCE(paused_reason, '') FROM destination_state \
                   WHERE automation_id = $1 AND paused = $2 ORDER BY action_index";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, (i32, String)>(sql)
                .bind(DbId(id))
                .bind(true)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Forgets suppression, carried-over matches, failures and pause: the
    /// automation starts afresh after `watermark`, due at `next_run`.
    pub async fn reset_automation_state(
        &self,
        id: Uuid,
        watermark: i64,
        next_run: Option<DbTime>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE automation_state SET paused = $2, paused_reason = NULL, \
                   consecutive_failures = 0, suppressed_until = NULL, watermark = $3, \
                   window_start = $4, next_run = $5, export_pending_upto = NULL, \
                   export_pending_started = NULL, windowed = NULL WHERE automation_id = $1";
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(false)
                .bind(watermark)
                .bind(DbTime::now())
                .bind(next_run)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::not_found("project_automation", id));
            }
            sqlx::query::<DB>(RESUME_DESTINATIONS_SQL)
                .bind(DbId(id))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
