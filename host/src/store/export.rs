//! Reading export batches: the next batch's bounds, its spans, its traces,
//! and a confined custom query over it.
//!
//! A batch is a range of ingest sequence numbers `(after, upto]` of the
//! project's logs holding at most `batch_size` spans. Spans are that range's
//! rows. Traces are the traces that have a span in the range, each built
//! from all its spans up to `upto` — so re-reading the same range gives the
//! same rows, which is what lets a retried batch overwrite its object. A
//! custom query sees the same range through the views of
//! [`super::confined_query`].

use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::rows::{SpanRecord, TraceRecord, aggregate_traces};
use super::{Dialect, Store, StoreError, dispatch};

/// Ranges of at least this many sequence numbers are read in two halves.
const PARALLEL_READ_MIN: i64 = 4_096;

/// Roots per `IN (…)` list when reading whole traces.
const ROOTS_PER_STATEMENT: usize = 500;

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
        if let Some(path) = self.sqlite_file().map(std::path::Path::to_path_buf) {
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
}
