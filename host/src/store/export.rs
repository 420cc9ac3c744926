//! Reading export batches: the next batch's bounds, its spans, its traces,
//! and a confined custom query over it.
//!
//! A batch is a range of ingest sequence numbers `(after, upto]` of the
//! project's logs holding at most `batch_size` spans. Spans are that range's
//! rows. Traces are the traces that have a span in the range, each built
//! from all its spans up to `upto` — so re-reading the same range gives the
//! same rows, which is what lets a retried batch overwrite its object. A
//! custom query sees the same range as its `spans` and `traces` relations.

use std::time::{Duration, Instant};

use sqlx::{FromRow, QueryBuilder, Row};
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::{Dialect, Store, StoreError, dispatch};
use crate::export::rows::{QueryRows, SpanRecord, TraceRecord, aggregate_traces};

/// Ranges of at least this many sequence numbers are read in two halves.
const PARALLEL_READ_MIN: i64 = 4_096;

/// Roots per `IN (…)` list when reading whole traces.
const ROOTS_PER_STATEMENT: usize = 500;

/// How long a custom export query may run before it is stopped (PostgreSQL
/// cancels it; SQLite interrupts it from its progress handler).
pub const EXPORT_QUERY_TIME_LIMIT: Duration = Duration::from_secs(60);

/// SQLite virtual-machine steps between two looks at the clock while a
/// custom query runs: cheap enough not to show, often enough to stop within
/// milliseconds of the limit.
const PROGRESS_CHECK_STEPS: i32 = 10_000;

/// The export columns of a span, JSON fields as text.
fn span_columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "id, xact_id, created, span_id, root_span_id, is_root, span_parents, input, output, \
             expected, error, scores, metrics, metadata, tags, span_attributes, context"
        }
        Dialect::Postgres => {
            "id, xact_id, created, span_id, root_span_id, is_root, span_parents::text AS \
             span_parents, input::text AS input, output::text AS output, expected::text AS \
             expected, error::text AS error, scores::text AS scores, metrics::text AS metrics, \
             metadata::text AS metadata, tags::text AS tags, span_attributes::text AS \
             span_attributes, context::text AS context"
        }
    }
}

#[derive(FromRow)]
struct SpanRow {
    id: String,
    xact_id: i64,
    created: DbTime,
    span_id: String,
    root_span_id: String,
    is_root: bool,
    span_parents: Option<String>,
    input: Option<String>,
    output: Option<String>,
    expected: Option<String>,
    error: Option<String>,
    scores: Option<String>,
    metrics: Option<String>,
    metadata: Option<String>,
    tags: Option<String>,
    span_attributes: Option<String>,
    context: Option<String>,
}

impl SpanRow {
    fn into_record(self) -> SpanRecord {
        let json = [
            self.span_parents,
            self.input,
            self.output,
            self.expected,
            self.error,
            self.scores,
            self.metrics,
            self.metadata,
            self.tags,
            self.span_attributes,
            self.context,
        ]
        .map(|v| v.filter(|text| text != "null"));
        SpanRecord {
            id: self.id,
            xact_id: self.xact_id,
            created: self.created.0,
            span_id: self.span_id,
            root_span_id: self.root_span_id,
            is_root: self.is_root,
            json,
        }
    }
}

/// The bounds of the next export batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchBounds {
    /// The batch is `(after, upto]`.
    pub upto: i64,
    /// Whether the batch holds a full `batch_size` spans (so more may wait).
    pub full: bool,
}

impl Store {
    /// The next batch of at most `batch_size` spans of `project_id`'s logs
    /// after sequence number `after`; `None` when there is nothing new.
    pub async fn next_export_batch(
        &self,
        project_id: Uuid,
        after: i64,
        batch_size: u64,
    ) -> Result<Option<BatchBounds>, StoreError> {
        let nth = "SELECT xact_id FROM events WHERE object_type = 'project_logs' \
                   AND object_id = $1 AND xact_id > $2 ORDER BY xact_id LIMIT 1 OFFSET $3";
        let last = "SELECT MAX(xact_id) FROM events WHERE object_type = 'project_logs' \
                    AND object_id = $1 AND xact_id > $2";
        let offset = i64::try_from(batch_size.max(1) - 1).unwrap_or(i64::MAX);
        let (nth, last): (Option<i64>, Option<i64>) = dispatch!(self, |pool, DB| {
            let nth = sqlx::query_scalar::<DB, i64>(nth)
                .bind(DbId(project_id))
                .bind(after)
                .bind(offset)
                .fetch_optional(pool)
                .await?;
            let last = match nth {
                Some(_) => None,
                None => {
                    sqlx::query_scalar::<DB, Option<i64>>(last)
                        .bind(DbId(project_id))
                        .bind(after)
                        .fetch_one(pool)
                        .await?
                }
            };
            (nth, last)
        });
        Ok(match (nth, last) {
            (Some(upto), _) => Some(BatchBounds { upto, full: true }),
            (None, Some(upto)) => Some(BatchBounds { upto, full: false }),
            (None, None) => None,
        })
    }

    /// The spans of `project_id` in `(after, upto]` created at or after
    /// `since`, in sequence order.
    ///
    /// A large range is read as two halves on two connections at once:
    /// decoding rows is most of a read's cost, and the halves decode in
    /// parallel.
    pub async fn export_spans(
        &self,
        project_id: Uuid,
        after: i64,
        upto: i64,
        since: Option<DbTime>,
    ) -> Result<Vec<SpanRecord>, StoreError> {
        if upto - after < PARALLEL_READ_MIN {
            return self.spans_in(project_id, after, upto, since).await;
        }
        let middle = after + (upto - after) / 2;
        let (mut first, second) = tokio::try_join!(
            self.spans_in(project_id, after, middle, since),
            self.spans_in(project_id, middle, upto, since),
        )?;
        first.extend(second);
        Ok(first)
    }

    async fn spans_in(
        &self,
        project_id: Uuid,
        after: i64,
        upto: i64,
        since: Option<DbTime>,
    ) -> Result<Vec<SpanRecord>, StoreError> {
        if let Some(path) = self.sqlite_file.clone() {
            return tokio::task::spawn_blocking(move || {
                super::export_sqlite::read_spans(&path, project_id, after, upto, since)
            })
            .await
            .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e.to_string())))?;
        }
        let dialect = self.dialect();
        let rows: Vec<SpanRow> = dispatch!(self, |pool, DB| {
            let mut qb = QueryBuilder::<DB>::new("SELECT ");
            qb.push(span_columns(dialect));
            qb.push(" FROM events WHERE object_type = 'project_logs' AND object_id = ");
            qb.push_bind(DbId(project_id));
            qb.push(" AND xact_id > ");
            qb.push_bind(after);
            qb.push(" AND xact_id <= ");
            qb.push_bind(upto);
            if let Some(since) = since {
                qb.push(" AND created >= ");
                qb.push_bind(since);
            }
            qb.push(" ORDER BY xact_id");
            qb.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(SpanRow::into_record).collect())
    }

    /// The traces of `project_id` with a span in `(after, upto]`, each from
    /// all its spans up to `upto`, whose root was created at or after
    /// `since`; in order of their latest span.
    pub async fn export_traces(
        &self,
        project_id: Uuid,
        after: i64,
        upto: i64,
        since: Option<DbTime>,
    ) -> Result<Vec<TraceRecord>, StoreError> {
        let touched = "SELECT DISTINCT root_span_id FROM events WHERE object_type = 'project_logs' \
                       AND object_id = $1 AND xact_id > $2 AND xact_id <= $3";
        let roots: Vec<String> = dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, String>(touched)
                .bind(DbId(project_id))
                .bind(after)
                .bind(upto)
                .fetch_all(pool)
                .await?
        });
        let dialect = self.dialect();
        let mut spans = Vec::new();
        for chunk in roots.chunks(ROOTS_PER_STATEMENT) {
            let rows: Vec<SpanRow> = dispatch!(self, |pool, DB| {
                let mut qb = QueryBuilder::<DB>::new("SELECT ");
                qb.push(span_columns(dialect));
                qb.push(" FROM events WHERE object_type = 'project_logs' AND object_id = ");
                qb.push_bind(DbId(project_id));
                qb.push(" AND xact_id <= ");
                qb.push_bind(upto);
                qb.push(" AND root_span_id IN (");
                let mut list = qb.separated(", ");
                for root in chunk {
                    list.push_bind(root.as_str());
                }
                qb.push(")");
                qb.build_query_as().fetch_all(pool).await?
            });
            spans.extend(rows.into_iter().map(SpanRow::into_record));
        }
        let mut traces = aggregate_traces(spans);
        if let Some(since) = since {
            traces.retain(|t| t.root.created >= since.0);
        }
        Ok(traces)
    }

    /// Runs a custom export query prepared by
    /// [`crate::export::query::ConfinedQuery`]: `sql` reads only the
    /// project's rows in `(after, upto]` through the bound parameters `$1`
    /// (project id), `$2` (after) and `$3` (upto).
    ///
    /// The query's text was already confined (one `SELECT`, the project's
    /// own relations, allowed functions only); the database adds a second
    /// wall: the query runs read-only and is stopped after `time_limit`
    /// with [`StoreError::QueryTimedOut`]. On PostgreSQL that is a READ ONLY
    /// transaction with a statement timeout. On SQLite it is a connection of
    /// its own with `query_only` set and a progress handler watching the
    /// clock; that connection is closed afterwards rather than returned to
    /// the pool in that state (opening one costs about a millisecond, once
    /// per batch), except for an in-memory database, which would vanish
    /// with it.
    pub async fn export_query(
        &self,
        sql: &str,
        project_id: Uuid,
        after: i64,
        upto: i64,
        time_limit: Duration,
    ) -> Result<QueryRows, StoreError> {
        let timed_out = |e: sqlx::Error| match &e {
            // SQLITE_INTERRUPT, and PostgreSQL's query_canceled.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("9" | "57014")) => {
                StoreError::QueryTimedOut(time_limit)
            }
            _ => StoreError::Database(e),
        };
        match &self.backend {
            super::Backend::Sqlite(pool) => {
                let mut connection = pool.acquire().await?;
                // An in-memory database lives only as long as a connection
                // to it, so there the settings are undone afterwards instead
                // (a query cancelled midway may leave that connection
                // read-only; in-memory databases are for trials and tests).
                let in_memory = self.sqlite_file.is_none();
                if !in_memory {
                    connection.close_on_drop();
                }
                sqlx::query("PRAGMA query_only = ON")
                    .execute(&mut *connection)
                    .await?;
                let deadline = Instant::now() + time_limit;
                connection
                    .lock_handle()
                    .await?
                    .set_progress_handler(PROGRESS_CHECK_STEPS, move || Instant::now() < deadline);
                let rows = sqlx::query(sql)
                    .bind(DbId(project_id))
                    .bind(after)
                    .bind(upto)
                    .fetch_all(&mut *connection)
                    .await;
                if in_memory {
                    connection.lock_handle().await?.remove_progress_handler();
                    sqlx::query("PRAGMA query_only = OFF")
                        .execute(&mut *connection)
                        .await?;
                }
                Ok(sqlite_rows(&rows.map_err(timed_out)?))
            }
            super::Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "SET LOCAL statement_timeout = {}",
                    time_limit.as_millis().max(1)
                ))
                .execute(&mut *tx)
                .await?;
                // row_to_json gives every column type (numeric, timestamps,
                // jsonb) one faithful JSON form, and keeps column order.
                let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) AS q");
                let texts: Vec<String> = sqlx::query_scalar(&wrapped)
                    .bind(DbId(project_id))
                    .bind(after)
                    .bind(upto)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(timed_out)?;
                tx.rollback().await?;
                Ok(postgres_rows(&texts))
            }
        }
    }
}

/// Decodes SQLite rows by each value's storage class. Text in a column
/// named like one of the span's JSON fields is decoded as JSON, since
/// SQLite stores JSON as text.
fn sqlite_rows(rows: &[sqlx::sqlite::SqliteRow]) -> QueryRows {
    use serde_json::Value;
    use sqlx::{Column, TypeInfo, ValueRef};
    let Some(first) = rows.first() else {
        return QueryRows::default();
    };
    let columns: Vec<String> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let json_column: Vec<bool> = columns
        .iter()
        .map(|c| super::JSON_FIELDS.contains(&c.as_str()))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::with_capacity(columns.len());
        for (i, is_json) in json_column.iter().enumerate() {
            let kind = row
                .try_get_raw(i)
                .map(|raw| {
                    if raw.is_null() {
                        "NULL".to_string()
                    } else {
                        raw.type_info().name().to_string()
                    }
                })
                .unwrap_or_else(|_| "NULL".into());
            let value = match kind.as_str() {
                "INTEGER" => row.try_get::<i64, _>(i).map(Value::from).ok(),
                "REAL" => row.try_get::<f64, _>(i).ok().map(Value::from),
                "TEXT" => row.try_get::<String, _>(i).ok().map(|text| {
                    if *is_json {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    } else {
                        Value::String(text)
                    }
                }),
                "BLOB" => row
                    .try_get::<Vec<u8>, _>(i)
                    .ok()
                    .map(|bytes| Value::String(hex::encode(bytes))),
                _ => None,
            };
            values.push(value.unwrap_or(Value::Null));
        }
        out.push(values);
    }
    QueryRows { columns, rows: out }
}

/// Splits `row_to_json` objects into columns (in the first row's order).
fn postgres_rows(texts: &[String]) -> QueryRows {
    use serde_json::{Map, Value};
    let objects: Vec<Map<String, Value>> = texts
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    let Some(first) = objects.first() else {
        return QueryRows::default();
    };
    let columns: Vec<String> = first.keys().cloned().collect();
    let rows = objects
        .into_iter()
        .map(|mut object| {
            columns
                .iter()
                .map(|c| object.remove(c).unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    QueryRows { columns, rows }
}
