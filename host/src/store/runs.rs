//! Run history: one row per run of an automation, whatever triggered it.
//!
//! A run that queues a notification stays `running` until the delivery
//! worker records the outcome on it (the outbox writes an
//! [`AttemptOnRun`] in the transaction that updates the delivery), so the
//! row tells the whole story: how many rows matched, how many attempts the
//! delivery took, the receiver's status code and the error in plain words.
//! Every write of a run row is in this module.

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::{Store, StoreError, dispatch};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// The scheduler: an interval check, or the end of a suppression.
    Scheduled,
    /// Ingest or an environment change.
    Event,
    /// `POST …/run`.
    Manual,
    /// `POST …/test`.
    Test,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Work or a delivery is still in progress.
    Running,
    /// Done, and everything was delivered.
    Succeeded,
    /// Done, and something failed (see `error`).
    Failed,
    /// Nothing to do (e.g. a manual run that matched nothing).
    Skipped,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }

            /// Parses the stored text (written only from this enum).
            pub(crate) fn parse(text: &str) -> Self {
                match text {
                    $($text => $ty::$variant,)*
                    _ => unreachable_text(stringify!($ty), text),
                }
            }
        }
    };
}

text_enum!(RunTrigger { Scheduled => "scheduled", Event => "event", Manual => "manual", Test => "test" });
text_enum!(RunStatus { Running => "running", Succeeded => "succeeded", Failed => "failed", Skipped => "skipped" });

#[cold]
fn unreachable_text<T>(kind: &str, text: &str) -> T {
    // The columns are only ever written from the enums above.
    panic!("unexpected {kind} {text:?} in the database")
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub id: Uuid,
    /// The automation.
    pub automation_id: Uuid,
    /// The automation's event type.
    pub event_type: String,
    /// What started it.
    pub trigger: RunTrigger,
    /// Where it stands.
    pub status: RunStatus,
    /// When it started.
    pub started: DbTime,
    /// When it finished, if it has.
    pub finished: Option<DbTime>,
    /// Rows that matched, where that applies.
    pub matched_rows: Option<i64>,
    /// Notifications it queued or sent.
    pub deliveries: i32,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// What went wrong.
    pub error: Option<String>,
    /// Anything else worth keeping (event id, window, status code…).
    pub details: Value,
}

impl NewRun {
    /// A run of automation `automation_id` (of `event_type`) that began at
    /// `started` and ends now with `status`: no rows counted, nothing
    /// delivered or attempted, no error, no details. Sites set what differs
    /// with struct update syntax (`NewRun { attempts: 1, ..NewRun::ended(…) }`).
    pub fn ended(
        automation_id: Uuid,
        event_type: impl Into<String>,
        trigger: RunTrigger,
        status: RunStatus,
        started: DbTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            automation_id,
            event_type: event_type.into(),
            trigger,
            status,
            started,
            finished: Some(DbTime::now()),
            matched_rows: None,
            deliveries: 0,
            attempts: 0,
            error: None,
            details: Value::Null,
        }
    }
}

/// A recorded run, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Run {
    /// Unique id.
    pub id: Uuid,
    /// The automation.
    pub automation_id: Uuid,
    /// The automation's event type.
    pub event_type: String,
    /// What started it.
    pub trigger: RunTrigger,
    /// Where it stands.
    pub status: RunStatus,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub started: DbTime,
    /// When it finished.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished: Option<DbTime>,
    /// How long it took, start to finish (deliveries included).
    pub duration_ms: Option<i64>,
    /// Rows that matched.
    pub matched_rows: Option<i64>,
    /// Notifications it queued or sent.
    pub deliveries: i32,
    /// Delivery attempts made.
    pub attempts: i32,
    /// What went wrong, in plain words.
    pub error: Option<String>,
    /// Event id, window, the receiver's status code and the like.
    pub details: Value,
}

#[derive(FromRow)]
struct RunRow {
    id: DbId,
    automation_id: DbId,
    event_type: String,
    triggered_by: String,
    status: String,
    started: DbTime,
    finished: Option<DbTime>,
    duration_ms: Option<i64>,
    matched_rows: Option<i64>,
    deliveries: i32,
    attempts: i32,
    error: Option<String>,
    details: Json<Value>,
}

impl From<RunRow> for Run {
    fn from(row: RunRow) -> Self {
        Run {
            id: row.id.0,
            automation_id: row.automation_id.0,
            event_type: row.event_type,
            trigger: RunTrigger::parse(&row.triggered_by),
            status: RunStatus::parse(&row.status),
            started: row.started,
            finished: row.finished,
            duration_ms: row.duration_ms,
            matched_rows: row.matched_rows,
            deliveries: row.deliveries,
            attempts: row.attempts,
            error: row.error,
            details: row.details.0,
        }
    }
}

const RUN_COLUMNS: &str = "id, automation_id, event_type, triggered_by, status, started, \
     finished, duration_ms, matched_rows, deliveries, attempts, error, details";

pub(crate) const INSERT_RUN_SQL: &str = "INSERT INTO automation_runs (id, automation_id, \
     event_type, triggered_by, status, started, finished, duration_ms, matched_rows, deliveries, \
     attempts, error, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// Binds a [`NewRun`] to [`INSERT_RUN_SQL`].
macro_rules! bind_run {
    ($query:expr, $run:expr) => {{
        let run: &$crate::store::runs::NewRun = $run;
        $query
            .bind($crate::store::DbId(run.id))
            .bind($crate::store::DbId(run.automation_id))
            .bind(run.event_type.as_str())
            .bind(run.trigger.as_str())
            .bind(run.status.as_str())
            .bind(run.started)
            .bind(run.finished)
            .bind(
                run.finished
                    .map(|f| (f.0 - run.started.0).num_milliseconds().max(0)),
            )
            .bind(run.matched_rows)
            .bind(run.deliveries)
            .bind(run.attempts)
            .bind(run.error.as_deref())
            .bind(::sqlx::types::Json(&run.details))
    }};
}
pub(crate) use bind_run;

/// What one delivery attempt writes on the run that queued it: the
/// attempt count, the last error and the receiver's status (kept in
/// `details.status_code`, with the plugin's summary on success), and, when
/// the delivery is over, the final status, the end and the duration.
///
/// A run with several notifications (a windowed alert's `actions`) adds
/// them up: its attempts are theirs together, it ends when the last one
/// ends, failed if any failed. Every delivery writes its own outcome in
/// `details.destinations`, keyed by its action's path (`action`,
/// `actions[1]`).
pub(crate) struct AttemptOnRun<'a> {
    /// The run.
    pub run_id: Uuid,
    /// Attempts of this delivery so far, this one included.
    pub attempts: i32,
    /// This attempt's error, if it failed.
    pub error: Option<&'a str>,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// The plugin's one-line summary of a delivery.
    pub summary: Option<&'a str>,
    /// The delivery's final status, once it is over.
    pub finished: Option<(RunStatus, DbTime)>,
    /// Which of the config's `actions` the delivery goes to.
    pub action_index: Option<i32>,
}

impl AttemptOnRun<'_> {
    /// The run's `details` with this attempt's status code and summary.
    pub(crate) fn details(&self, mut details: Value) -> Value {
        if let Value::Object(map) = &mut details {
            if let Some(code) = self.status_code {
                map.insert("status_code".into(), code.into());
            }
            if let Some(summary) = self.summary {
                map.insert("summary".into(), summary.into());
            }
            let key = match self.action_index {
                None => "action".to_string(),
                Some(i) => format!("actions[{i}]"),
            };
            let destinations = map
                .entry("destinations")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Value::Object(destinations) = destinations {
                let status = match self.finished {
                    Some((status, _)) => status.as_str(),
                    None => "retrying",
                };
                destinations.insert(
                    key,
                    serde_json::json!({
                        "status": status,
                        "attempts": self.attempts,
                        "status_code": self.status_code,
                        "error": self.error,
                        "summary": self.summary,
                    }),
                );
            }
        }
        details
    }

    /// The run's attempts, error and end, given what its other deliveries
    /// say (`None` when it has only this one): `(pending, failed, attempts)`
    /// over all of them, this attempt already written.
    pub(crate) fn on_run(
        &self,
        others: Option<(i64, i64, i64)>,
        previous_error: Option<String>,
    ) -> (i32, Option<String>, Option<(RunStatus, DbTime)>) {
        match others {
            None => (self.attempts, self.error.map(str::to_owned), self.finished),
            Some((pending, failed, attempts)) => {
                let status = if failed > 0 {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                };
                let finished = self
                    .finished
                    .filter(|_| pending == 0)
                    .map(|(_, at)| (status, at));
                let error = self.error.map(str::to_owned).or(previous_error);
                (i32::try_from(attempts).unwrap_or(i32::MAX), error, finished)
            }
        }
    }
}

/// Writes an [`AttemptOnRun`] inside the caller's transaction `$tx` (of
/// backend `$db`), so the delivery and its run change together. Evaluates
/// to the run's final status when this attempt ended the run.
macro_rules! record_attempt_on_run {
    ($tx:expr, $db:ty, $attempt:expr) => {{
        let attempt: &$crate::store::runs::AttemptOnRun<'_> = $attempt;
        let run: Option<(
            $crate::store::DbTime,
            ::sqlx::types::Json<::serde_json::Value>,
            i32,
            Option<String>,
        )> = ::sqlx::query_as::<$db, _>(
            // A no-op update that locks the run's row first: two deliveries
            // of one run recorded at once take turns (PostgreSQL's READ
            // COMMITTED would otherwise let each miss the other's end), and
            // the second reads the first's outcome.
            "UPDATE automation_runs SET deliveries = deliveries WHERE id = $1 \
             RETURNING started, details, deliveries, error",
        )
        .bind($crate::store::DbId(attempt.run_id))
        .fetch_optional(&mut *$tx)
        .await?;
        match run {
            Some((started, ::sqlx::types::Json(details), deliveries, previous_error)) => {
                let others = if deliveries > 1 {
                    let (pending, failed, attempts): (Option<i64>, Option<i64>, Option<i64>) =
                        ::sqlx::query_as::<$db, _>(
                            "SELECT SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), \
                             SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), \
                             SUM(attempts) FROM deliveries WHERE run_id = $1",
                        )
                        .bind($crate::store::DbId(attempt.run_id))
                        .fetch_one(&mut *$tx)
                        .await?;
                    Some((
                        pending.unwrap_or(0),
                        failed.unwrap_or(0),
                        attempts.unwrap_or(0),
                    ))
                } else {
                    None
                };
                let (attempts, error, finished) = attempt.on_run(others, previous_error);
                let ended = finished.map(|(_, at)| at);
                ::sqlx::query::<$db>(
                    "UPDATE automation_runs SET attempts = $2, error = $3, \
                     status = COALESCE($4, status), finished = $5, duration_ms = $6, details = $7 \
                     WHERE id = $1",
                )
                .bind($crate::store::DbId(attempt.run_id))
                .bind(attempts)
                .bind(error)
                .bind(finished.map(|(status, _)| status.as_str()))
                .bind(ended)
                .bind(ended.map(|f| (f.0 - started.0).num_milliseconds().max(0)))
                .bind(::sqlx::types::Json(attempt.details(details)))
                .execute(&mut *$tx)
                .await?;
                finished.map(|(status, _)| status)
            }
            None => None,
        }
    }};
}
pub(crate) use record_attempt_on_run;

impl Store {
    /// Records a run on its own (tests and manual runs that queue nothing).
    pub async fn insert_run(&self, run: &NewRun) -> Result<(), StoreError> {
        dispatch!(self, |pool, DB| {
            bind_run!(sqlx::query::<DB>(INSERT_RUN_SQL), run)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// One run.
    pub async fn run(&self, id: Uuid) -> Result<Run, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM automation_runs WHERE id = $1");
        let row = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, RunRow>(&sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        row.map(Run::from)
            .ok_or_else(|| StoreError::not_found("run", id))
    }

    /// An automation's runs, newest first, after run `starting_after`.
    pub async fn list_runs(
        &self,
        automation_id: Uuid,
        limit: u32,
        starting_after: Option<Uuid>,
    ) -> Result<Vec<Run>, StoreError> {
        let after = match starting_after {
            Some(id) => Some(self.run(id).await?),
            None => None,
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM automation_runs WHERE automation_id = $1 \
             AND ($2 IS NULL OR started < $2 OR (started = $2 AND id < $3)) \
             ORDER BY started DESC, id DESC LIMIT $4"
        );
        let rows = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, RunRow>(&sql)
                .bind(DbId(automation_id))
                .bind(after.as_ref().map(|r| r.started))
                .bind(after.as_ref().map(|r| DbId(r.id)))
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Run::from).collect())
    }
}
