//! The delivery outbox.
//!
//! A notification is queued in the same transaction as the run and the
//! watermark move that produced it ([`Store::commit_evaluation`]), so a
//! crash can neither lose it nor queue it twice. The delivery worker claims
//! due rows with a lease (a conditional `UPDATE`, safe with several
//! daemons), attempts them, and records each attempt with
//! [`Store::record_attempt`], which also updates the run and the
//! automation's failure streak, pausing it when the streak is too long —
//! all in one transaction.
//!
//! Secrets are not copied here: an attempt reads the automation's current
//! config.

use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::runs::{AttemptOnRun, RunStatus, record_attempt_on_run};
use super::{Store, StoreError, dispatch};

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The event id, stable across attempts (`evt_…`).
    pub id: String,
    /// The automation.
    pub automation_id: Uuid,
    /// The run that produced it.
    pub run_id: Uuid,
    /// `logs` or `environment_update`.
    pub event_type: String,
    /// The payload to send.
    pub payload: Value,
    /// When the change that caused it happened (for the latency metric).
    pub triggered_at: DbTime,
    /// Which of the config's `actions` it goes to (`None`: its `action`).
    pub action_index: Option<i32>,
}

pub(crate) const INSERT_DELIVERY_SQL: &str = "INSERT INTO deliveries (id, automation_id, run_id, \
     event_type, payload, status, attempts, next_attempt, triggered_at, created, action_index) \
     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $6, $8)";

/// Binds a [`NewDelivery`] to [`INSERT_DELIVERY_SQL`] (due now).
macro_rules! bind_delivery {
    ($query:expr, $delivery:expr) => {{
        let delivery: &$crate::store::outbox::NewDelivery = $delivery;
        $query
            .bind(delivery.id.as_str())
            .bind($crate::store::DbId(delivery.automation_id))
            .bind($crate::store::DbId(delivery.run_id))
            .bind(delivery.event_type.as_str())
            .bind(::sqlx::types::Json(&delivery.payload))
            .bind($crate::store::DbTime::now())
            .bind(delivery.triggered_at)
            .bind(delivery.action_index)
    }};
}
pub(crate) use bind_delivery;

/// A claimed delivery, ready to attempt.
#[derive(Debug, Clone, FromRow)]
pub struct QueuedDelivery {
    /// The event id.
    pub id: String,
    /// The automation.
    #[sqlx(try_from = "DbId")]
    pub automation_id: Uuid,
    /// The run it belongs to.
    #[sqlx(try_from = "DbId")]
    pub run_id: Uuid,
    /// `logs` or `environment_update`.
    pub event_type: String,
    /// The payload.
    pub payload: Json<Value>,
    /// Attempts made before this one.
    pub attempts: i32,
    /// When the triggering change happened.
    pub triggered_at: DbTime,
    /// What started the run (`event`, `scheduled`, `manual`).
    pub run_trigger: String,
    /// Which of the config's `actions` it goes to (`None`: its `action`).
    pub action_index: Option<i32>,
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    /// The destination accepted it.
    Delivered {
        /// The receiver's status code.
        status_code: Option<u16>,
        /// The plugin's one-line summary.
        summary: String,
    },
    /// It failed but will be tried again at `next_attempt`.
    Retry {
        /// Why, in plain words.
        error: String,
        /// The receiver's status code, if it answered.
        status_code: Option<u16>,
        /// When to try again.
        next_attempt: DbTime,
    },
    /// It failed for good.
    Failed {
        /// Why, in plain words.
        error: String,
        /// The receiver's status code, if it answered.
        status_code: Option<u16>,
    },
}

/// Whose failure streak a delivery counts in, and what its failures pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseScope {
    /// The automation's: it has one destination, and pausing it pauses that.
    Automation,
    /// The delivery's destination (`action_index`): the automation has
    /// several, and the others go on while this one is paused.
    Destination,
}

/// What recording an attempt changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecorded {
    /// The automation (or, in [`PauseScope::Destination`], the
    /// destination) was paused by this failure.
    pub paused: bool,
    /// The run's final status, when this attempt ended it (a run with
    /// several notifications ends with the last).
    pub run_finished: Option<RunStatus>,
}

impl Store {
    /// Claims up to `limit` due deliveries of automations that are not
    /// paused, for `owner` until `until`.
    pub async fn claim_due_deliveries(
        &self,
        owner: &str,
        until: DbTime,
        limit: u32,
    ) -> Result<Vec<QueuedDelivery>, StoreError> {
        let now = DbTime::now();
        let candidates = "SELECT d.id FROM deliveries d JOIN automation_state s \
                          ON s.automation_id = d.automation_id \
                          WHERE d.status = 'pending' AND d.next_attempt <= $1 AND s.paused = $2 \
                          AND (d.lease_owner IS NULL OR d.lease_expires < $1) \
                          AND NOT EXISTS (SELECT 1 FROM destination_state p \
                          WHERE p.automation_id = d.automation_id \
                          AND p.action_index = COALESCE(d.action_index, -1) AND p.paused <> $2) \
                          ORDER BY d.next_attempt LIMIT $3";
        let claim = "UPDATE deliveries SET lease_owner = $2, lease_expires = $3 \
                     WHERE id = $1 AND status = 'pending' \
                     AND (lease_owner IS NULL OR lease_expires < $4)";
        let select = "SELECT d.id, d.automation_id, d.run_id, d.event_type, d.payload, \
                      d.attempts, d.triggered_at, COALESCE(r.triggered_by, 'event') AS run_trigger, \
                      d.action_index \
                      FROM deliveries d LEFT JOIN automation_runs r ON r.id = d.run_id \
                      WHERE d.id = $1";
        Ok(dispatch!(self, |pool, DB| {
            let ids: Vec<String> = sqlx::query_scalar::<DB, String>(candidates)
                .bind(now)
                .bind(false)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let won = sqlx::query::<DB>(claim)
                    .bind(id.as_str())
                    .bind(owner)
                    .bind(until)
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected();
                if won == 1
                    && let Some(row) = sqlx::query_as::<DB, QueuedDelivery>(select)
                        .bind(id.as_str())
                        .fetch_optional(pool)
                        .await?
                {
                    claimed.push(row);
                }
            }
            claimed
        }))
    }

    /// The earliest time a pending delivery of an automation that is not
    /// paused can be claimed: when it is due, or when its lease expires.
    pub async fn next_delivery_time(&self) -> Result<Option<DbTime>, StoreError> {
        let sql = "SELECT MIN(CASE WHEN d.lease_expires IS NOT NULL AND d.lease_expires > \
                   d.next_attempt THEN d.lease_expires ELSE d.next_attempt END) \
                   FROM deliveries d JOIN automation_state s \
                   ON s.automation_id = d.automation_id WHERE d.status = 'pending' AND s.paused = $1 \
                   AND NOT EXISTS (SELECT 1 FROM destination_state p \
                   WHERE p.automation_id = d.automation_id \
                   AND p.action_index = COALESCE(d.action_index, -1) AND p.paused <> $1)";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, Option<DbTime>>(sql)
                .bind(false)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Pending deliveries, of one automation or of all.
    pub async fn queued_deliveries(&self, automation_id: Option<Uuid>) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM deliveries WHERE status = 'pending' \
                   AND ($1 IS NULL OR automation_id = $1)";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, i64>(sql)
                .bind(automation_id.map(DbId))
                .fetch_one(pool)
                .await?
        }))
    }

    /// Records one attempt of `delivery` by `owner`: the delivery row, its
    /// run, and the automation's failure streak; pauses the automation with
    /// `pause_reason` when a failure makes the streak reach `pause_after`.
    /// Returns `None` when the lease was lost (someone else took over).
    pub async fn record_attempt(
        &self,
        delivery: &QueuedDelivery,
        owner: &str,
        outcome: &AttemptOutcome,
        pause_after: u32,
        scope: PauseScope,
    ) -> Result<Option<AttemptRecorded>, StoreError> {
        let now = DbTime::now();
        let attempts = delivery.attempts + 1;
        let (status, next_attempt, error, status_code, run_status) = match outcome {
            AttemptOutcome::Delivered { status_code, .. } => (
                "delivered",
                now,
                None,
                *status_code,
                Some(RunStatus::Succeeded),
            ),
            AttemptOutcome::Retry {
                error,
                status_code,
                next_attempt,
            } => (
                "pending",
                *next_attempt,
                Some(error.as_str()),
                *status_code,
                None,
            ),
            AttemptOutcome::Failed { error, status_code } => (
                "failed",
                now,
                Some(error.as_str()),
                *status_code,
                Some(RunStatus::Failed),
            ),
        };
        let finished = run_status.map(|_| now);
        let update_delivery = "UPDATE deliveries SET status = $3, attempts = $4, \
             next_attempt = $5, last_error = $6, last_status_code = $7, finished = $8, \
             lease_owner = NULL, lease_expires = NULL WHERE id = $1 AND lease_owner = $2";
        // The failure streak and the pause are the automation's, or, for an
        // automation with several destinations, this destination's own.
        let destination = match scope {
            PauseScope::Automation => None,
            PauseScope::Destination => Some(delivery.action_index.unwrap_or(-1)),
        };
        let streak_sql = match (destination, error.is_some()) {
            (None, true) => {
                "UPDATE automation_state SET consecutive_failures = consecutive_failures + 1 \
                 WHERE automation_id = $1 RETURNING consecutive_failures"
            }
            (None, false) => {
                "UPDATE automation_state SET consecutive_failures = 0 \
                 WHERE automation_id = $1 RETURNING consecutive_failures"
            }
            (Some(_), true) => {
                "INSERT INTO destination_state (automation_id, action_index, \
                 consecutive_failures, paused) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (automation_id, action_index) DO UPDATE SET \
                 consecutive_failures = destination_state.consecutive_failures + 1 \
                 RETURNING consecutive_failures"
            }
            (Some(_), false) => {
                "UPDATE destination_state SET consecutive_failures = 0 \
                 WHERE automation_id = $1 AND action_index = $2 AND paused = $3 \
                 RETURNING consecutive_failures"
            }
        };
        let pause_sql = match destination {
            None => {
                "UPDATE automation_state SET paused = $2, paused_reason = $3 \
                 WHERE automation_id = $1 AND paused = $4"
            }
            Some(_) => {
                "UPDATE destination_state SET paused = $2, paused_reason = $3 \
                 WHERE automation_id = $1 AND paused = $4 AND action_index = $5"
            }
        };
        let status_code_i32 = status_code.map(i32::from);
        let on_run = AttemptOnRun {
            run_id: delivery.run_id,
            attempts,
            error,
            status_code,
            summary: match outcome {
                AttemptOutcome::Delivered { summary, .. } => Some(summary.as_str()),
                _ => None,
            },
            finished: run_status.zip(finished),
            action_index: delivery.action_index,
        };
        Ok(dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query::<DB>(update_delivery)
                .bind(delivery.id.as_str())
                .bind(owner)
                .bind(status)
                .bind(attempts)
                .bind(next_attempt)
                .bind(error)
                .bind(status_code_i32)
                .bind(finished)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let run_finished = record_attempt_on_run!(tx, DB, &on_run);
            let mut streak_query =
                sqlx::query_scalar::<DB, i32>(streak_sql).bind(DbId(delivery.automation_id));
            if let Some(index) = destination {
                streak_query = streak_query.bind(index).bind(false);
            }
            let streak: Option<i32> = streak_query.fetch_optional(&mut *tx).await?;
            let mut paused = false;
            if let (Some(streak), Some(error)) = (streak, error)
                && pause_after > 0
                && streak >= pause_after as i32
            {
                let reason = format!(
                    "paused after {streak} failed delivery attempts in a row; last error: {error}"
                );
                let mut pause = sqlx::query::<DB>(pause_sql)
                    .bind(DbId(delivery.automation_id))
                    .bind(true)
                    .bind(reason)
                    .bind(false);
                if let Some(index) = destination {
                    pause = pause.bind(index);
                }
                paused = pause.execute(&mut *tx).await?.rows_affected() == 1;
            }
            tx.commit().await?;
            Some(AttemptRecorded {
                paused,
                run_finished,
            })
        }))
    }

    /// Queues run `run_id`'s failed notification (of automation
    /// `automation_id`) for one more attempt now, with the same event id,
    /// and puts the run back to `running`. `Conflict` when its notification
    /// is not failed (delivered, or still being tried).
    pub async fn retry_failed_delivery(
        &self,
        automation_id: Uuid,
        run_id: Uuid,
    ) -> Result<(), StoreError> {
        let run = self.run(run_id).await?;
        if run.automation_id != automation_id {
            return Err(StoreError::not_found("run", run_id));
        }
        let requeue = "UPDATE deliveries SET status = 'pending', next_attempt = $3, finished = NULL, \
                       lease_owner = NULL, lease_expires = NULL \
                       WHERE run_id = $1 AND automation_id = $2 AND status = 'failed'";
        let reopen = "UPDATE automation_runs SET status = $2, finished = NULL, duration_ms = NULL \
                      WHERE id = $1";
        let requeued = dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let requeued = sqlx::query::<DB>(requeue)
                .bind(DbId(run_id))
                .bind(DbId(automation_id))
                .bind(DbTime::now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if requeued > 0 {
                sqlx::query::<DB>(reopen)
                    .bind(DbId(run_id))
                    .bind(RunStatus::Running.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            requeued
        });
        if requeued == 0 {
            return Err(StoreError::Conflict(format!(
                "run {run_id} has no failed notification to retry (the run is {})",
                run.status.as_str()
            )));
        }
        tracing::info!(automation_id = %automation_id, run_id = %run_id, "failed notification queued again");
        Ok(())
    }
}
