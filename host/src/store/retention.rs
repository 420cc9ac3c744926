//! Counting and deleting a project's old records, for retention policies.
//!
//! Everything here is confined to one project and works in bounded
//! batches, each its own short transaction (on SQLite each batch queues on
//! the writer lock like an ingest batch, so ingest keeps flowing between
//! batches). No rows are loaded: a batch is one `DELETE … WHERE id IN
//! (SELECT … LIMIT n)`.
//!
//! What goes, for a cutoff `c`:
//!
//! - **project logs**: every span created before `c`, and every span of a
//!   trace whose root was created before `c` (deleting a root never leaves
//!   its children behind). A batch takes the next old spans in `created`
//!   order (an index range that deleted rows leave empty, so every batch
//!   starts at the front) and deletes them with the whole traces of the
//!   roots among them, in one transaction.
//! - **experiments**: every experiment created before `c`, with all its
//!   events (events first, in batches; the experiment row last).
//! - **datasets**: the rows created before `c`; the datasets stay.
//!
//! A batch that is interrupted rolls back; a purge that is interrupted
//! between batches leaves only records the next run deletes.

use sqlx::FromRow;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::{Store, StoreError, dispatch};

/// Which records a retention call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionTarget {
    /// Project log spans.
    ProjectLogs,
    /// Whole experiments.
    Experiments,
    /// Dataset rows.
    DatasetRows,
}

/// What a cutoff affects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AffectedRecords {
    /// Rows (experiments for [`RetentionTarget::Experiments`]).
    pub count: u64,
    /// The oldest affected `created`.
    pub oldest: Option<DbTime>,
    /// The newest affected `created`.
    pub newest: Option<DbTime>,
    /// Up to five affected ids, oldest first.
    pub sample_ids: Vec<String>,
}

#[derive(FromRow)]
struct Summary {
    count: i64,
    oldest: Option<DbTime>,
    newest: Option<DbTime>,
}

/// Spans of the project's logs that go: old ones, and whole traces of old
/// roots. Binds: `$1` project id, `$2` cutoff.
const LOGS_AFFECTED: &str = "object_type = 'project_logs' AND object_id = $1 AND (created < $2 \
     OR root_span_id IN (SELECT span_id FROM events WHERE object_type = 'project_logs' \
     AND object_id = $1 AND is_root = $3 AND created < $2))";

/// Dataset rows of the project that go. Binds: `$1` project id, `$2` cutoff.
const DATASET_AFFECTED: &str = "object_type = 'dataset' AND object_id IN \
     (SELECT id FROM datasets WHERE project_id = $1) AND created < $2";

/// Ids per `IN (…)` list: well below both backends' bind limits.
const ID_CHUNK: usize = 500;

/// How many samples a count returns.
const SAMPLES: i64 = 5;

impl Store {
    /// What `target` records of `project_id` are older than `cutoff`.
    pub async fn count_older_than(
        &self,
        project_id: Uuid,
        target: RetentionTarget,
        cutoff: DbTime,
    ) -> Result<AffectedRecords, StoreError> {
        let (summary_sql, sample_sql) = match target {
            RetentionTarget::ProjectLogs => (
                format!(
                    "SELECT COUNT(*) AS count, MIN(created) AS oldest, MAX(created) AS newest \
                     FROM events WHERE {LOGS_AFFECTED}"
                ),
                format!(
                    "SELECT id FROM events WHERE {LOGS_AFFECTED} ORDER BY created, id LIMIT $4"
                ),
            ),
            RetentionTarget::DatasetRows => (
                format!(
                    "SELECT COUNT(*) AS count, MIN(created) AS oldest, MAX(created) AS newest \
                     FROM events WHERE {DATASET_AFFECTED} AND $3 = $3"
                ),
                format!(
                    "SELECT id FROM events WHERE {DATASET_AFFECTED} AND $3 = $3 \
                     ORDER BY created, id LIMIT $4"
                ),
            ),
            RetentionTarget::Experiments => (
                "SELECT COUNT(*) AS count, MIN(created) AS oldest, MAX(created) AS newest \
                 FROM experiments WHERE project_id = $1 AND created < $2 AND $3 = $3"
                    .to_string(),
                "SELECT CAST(id AS TEXT) FROM experiments WHERE project_id = $1 AND created < $2 \
                 AND $3 = $3 ORDER BY created, id LIMIT $4"
                    .to_string(),
            ),
        };
        let (summary, samples) = dispatch!(self, |pool, DB| {
            let summary = sqlx::query_as::<DB, Summary>(&summary_sql)
                .bind(DbId(project_id))
                .bind(cutoff)
                .bind(true)
                .fetch_one(pool)
                .await?;
            let samples: Vec<String> = sqlx::query_scalar::<DB, String>(&sample_sql)
                .bind(DbId(project_id))
                .bind(cutoff)
                .bind(true)
                .bind(SAMPLES)
                .fetch_all(pool)
                .await?;
            (summary, samples)
        });
        Ok(AffectedRecords {
            count: u64::try_from(summary.count).unwrap_or(0),
            oldest: summary.oldest,
            newest: summary.newest,
            sample_ids: samples,
        })
    }

    /// Deletes one bounded batch of `target` records of `project_id` older
    /// than `cutoff`; returns how many rows went (0 when nothing is left).
    ///
    /// A batch is at most `max_rows` old spans (plus the rest of the traces
    /// of the roots among them) or dataset rows; for experiments, at most
    /// `max_rows` events of the oldest experiment, or that experiment's row
    /// once its events are gone.
    pub async fn delete_older_than(
        &self,
        project_id: Uuid,
        target: RetentionTarget,
        cutoff: DbTime,
        max_rows: u32,
    ) -> Result<u64, StoreError> {
        let limit = i64::from(max_rows.clamp(1, 100_000));
        let _guard = self.write_guard().await;
        let deleted = match target {
            RetentionTarget::ProjectLogs => {
                self.delete_old_spans(project_id, cutoff, limit).await?
            }
            RetentionTarget::DatasetRows => {
                // Row ids are unique per dataset only: match (dataset, id) pairs.
                let rows = "DELETE FROM events WHERE object_type = 'dataset' \
                    AND (object_id, id) IN (SELECT object_id, id FROM events \
                    WHERE object_type = 'dataset' \
                    AND object_id IN (SELECT id FROM datasets WHERE project_id = $1) \
                    AND created < $2 AND $3 = $3 LIMIT $4)";
                self.execute_batch(rows, project_id, cutoff, true, limit)
                    .await?
            }
            RetentionTarget::Experiments => {
                let oldest = "SELECT id FROM experiments WHERE project_id = $1 AND created < $2 \
                              ORDER BY created, id LIMIT 1";
                let events = "DELETE FROM events WHERE object_type = 'experiment' \
                    AND object_id = $1 AND id IN (SELECT id FROM events \
                    WHERE object_type = 'experiment' AND object_id = $1 LIMIT $2)";
                let experiment = "DELETE FROM experiments WHERE id = $1";
                dispatch!(self, |pool, DB| {
                    let id: Option<DbId> = sqlx::query_scalar::<DB, DbId>(oldest)
                        .bind(DbId(project_id))
                        .bind(cutoff)
                        .fetch_optional(pool)
                        .await?;
                    match id {
                        None => 0,
                        Some(id) => {
                            let events = sqlx::query::<DB>(events)
                                .bind(id)
                                .bind(limit)
                                .execute(pool)
                                .await?
                                .rows_affected();
                            if events > 0 {
                                events
                            } else {
                                sqlx::query::<DB>(experiment)
                                    .bind(id)
                                    .execute(pool)
                                    .await?
                                    .rows_affected()
                            }
                        }
                    }
                })
            }
        };
        Ok(deleted)
    }

    /// One batch of project logs, in one transaction: the next `limit` spans
    /// created before `cutoff` (oldest first, an index range that deleted
    /// rows leave empty), and the whole traces of the roots among them. Only
    /// the ids of the batch are read; a trace never loses its root without
    /// its children.
    async fn delete_old_spans(
        &self,
        project_id: Uuid,
        cutoff: DbTime,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let select = "SELECT id, span_id, is_root FROM events WHERE object_type = 'project_logs' \
                      AND object_id = $1 AND created < $2 ORDER BY created LIMIT $3";
        // The transaction reads before it writes. On SQLite a deferred
        // transaction could then fail to become a writer (SQLITE_BUSY_SNAPSHOT)
        // if another connection committed in between (the engine's lease
        // renewal does, every lease/3): take the write lock up front.
        let begin = match self.dialect() {
            super::Dialect::Sqlite => "BEGIN IMMEDIATE",
            super::Dialect::Postgres => "BEGIN",
        };
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin_with(begin).await?;
            let batch: Vec<(String, String, bool)> =
                sqlx::query_as::<DB, (String, String, bool)>(select)
                    .bind(DbId(project_id))
                    .bind(cutoff)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
            let roots: Vec<&str> = batch
                .iter()
                .filter(|(_, _, is_root)| *is_root)
                .map(|(_, span, _)| span.as_str())
                .collect();
            let ids: Vec<&str> = batch.iter().map(|(id, _, _)| id.as_str()).collect();
            let mut deleted = 0;
            for (column, values) in [("root_span_id", &roots), ("id", &ids)] {
                for chunk in values.chunks(ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<DB>::new(
                        "DELETE FROM events WHERE object_type = 'project_logs' AND object_id = ",
                    );
                    qb.push_bind(DbId(project_id));
                    qb.push(format_args!(" AND {column} IN ("));
                    let mut list = qb.separated(", ");
                    for value in chunk {
                        list.push_bind(*value);
                    }
                    qb.push(")");
                    deleted += qb.build().execute(&mut *tx).await?.rows_affected();
                }
            }
            tx.commit().await?;
            Ok(deleted)
        })
    }

    async fn execute_batch(
        &self,
        sql: &str,
        project_id: Uuid,
        cutoff: DbTime,
        flag: bool,
        limit: i64,
    ) -> Result<u64, StoreError> {
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(project_id))
                .bind(cutoff)
                .bind(flag)
                .bind(limit)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
