//! Event rows: project logs (spans), experiment events and dataset rows.
//!
//! All three live in the `events` table keyed by `(object_type, object_id,
//! id)`. An insert batch is one transaction: it allocates one ingest sequence
//! number per written row (see the [module docs](super) for why that makes
//! `_xact_id` increase in commit order), resolves replace/merge/delete in
//! memory (module `merge`), deletes, and upserts. Either the whole batch
//! commits or nothing does.
//!
//! The work that needs no database happens before the batch takes the
//! writer lock: replacing writes arrive as stored text already
//! ([`super::json_text`]), and a batch that merges into no stored row is
//! resolved and serialised up front. Such a batch, on a SQLite file, is
//! then written by the dedicated connection of [`super::events_sqlite`]
//! (the lock is what concurrent ingest waits for, and sqlx's per-argument
//! hand-off to its worker thread doubled the time it was held); everything
//! else goes through sqlx with multi-row statements.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};

use super::columns::{DbId, DbTime};
use super::merge::{RowImage, RowState, TextImage, apply};
use super::model::{
    EventWrite, InsertOutcome, JSON_FIELDS, ObjectKind, ObjectRef, StoreEvent, StoredEvent, WriteOp,
};
use super::{RESERVE_XACT_SQL, Store, StoreError, dispatch};

/// Rows per multi-row statement: 20 columns × 400 rows stays well below
/// SQLite's 32 766 and PostgreSQL's 65 535 bind parameters.
const ROWS_PER_STATEMENT: usize = 400;

/// The column list every event query selects.
pub(super) const EVENT_COLUMNS: &str = "object_type, object_id, project_id, id, xact_id, created, \
     span_id, root_span_id, is_root, span_parents, input, output, expected, error, scores, \
     metrics, metadata, tags, span_attributes, context";

/// An `events` row as decoded by sqlx (same code for both backends).
#[derive(Debug, FromRow)]
pub(super) struct EventRow {
    object_type: String,
    object_id: DbId,
    project_id: DbId,
    id: String,
    xact_id: i64,
    created: DbTime,
    span_id: String,
    root_span_id: String,
    is_root: bool,
    span_parents: Option<Json<Value>>,
    input: Option<Json<Value>>,
    output: Option<Json<Value>>,
    expected: Option<Json<Value>>,
    error: Option<Json<Value>>,
    scores: Option<Json<Value>>,
    metrics: Option<Json<Value>>,
    metadata: Option<Json<Value>>,
    tags: Option<Json<Value>>,
    span_attributes: Option<Json<Value>>,
    context: Option<Json<Value>>,
}

impl EventRow {
    pub(super) fn into_event(self) -> StoredEvent {
        let kind = match self.object_type.as_str() {
            "experiment" => ObjectKind::Experiment,
            "dataset" => ObjectKind::Dataset,
            _ => ObjectKind::ProjectLogs,
        };
        let values = [
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
        ];
        let mut fields = Map::new();
        for (name, value) in JSON_FIELDS.iter().zip(values) {
            if let Some(Json(value)) = value
                && !value.is_null()
            {
                fields.insert((*name).to_string(), value);
            }
        }
        StoredEvent {
            object: ObjectRef {
                kind,
                id: self.object_id.0,
                project_id: self.project_id.0,
            },
            id: self.id,
            xact_id: self.xact_id,
            created: self.created,
            span_id: self.span_id,
            root_span_id: self.root_span_id,
            is_root: self.is_root,
            fields,
        }
    }
}

/// The writes of one batch grouped by row id, in order of first appearance.
struct Plan {
    rows: Vec<(String, Vec<WriteOp>)>,
}

impl Plan {
    fn new(writes: Vec<EventWrite>) -> Self {
        let mut index: HashMap<String, usize> = HashMap::with_capacity(writes.len());
        let mut rows: Vec<(String, Vec<WriteOp>)> = Vec::with_capacity(writes.len());
        for write in writes {
            match index.get(&write.id) {
                Some(&i) => rows[i].1.push(write.op),
                None => {
                    index.insert(write.id.clone(), rows.len());
                    rows.push((write.id, vec![write.op]));
                }
            }
        }
        Self { rows }
    }

    /// Whether some id's first write merges, so its stored row must be read.
    fn merges_into_stored(&self) -> bool {
        self.rows.iter().any(|(_, ops)| first_write_merges(ops))
    }

    /// Ids whose first write merges, so the stored row must be read.
    fn needs_existing(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|(_, ops)| first_write_merges(ops))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// How many rows the batch writes (as opposed to deletes).
    fn writes(&self) -> usize {
        self.rows
            .iter()
            .filter(|(_, ops)| !matches!(ops.last(), Some(WriteOp::Delete)))
            .count()
    }

    /// Folds each id's writes over its stored row: the rows to write, as
    /// text ready to bind, and the ids to delete.
    fn resolve(
        self,
        mut existing: HashMap<String, RowImage>,
        now: DbTime,
    ) -> (Vec<(String, TextImage)>, Vec<String>) {
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for (id, ops) in self.rows {
            let mut state = existing.remove(&id).map(RowState::Write);
            for op in ops {
                state = Some(apply(state, op, now));
            }
            match state.and_then(RowState::into_text) {
                Some(row) => upserts.push((id, row)),
                None => deletes.push(id),
            }
        }
        (upserts, deletes)
    }
}

fn first_write_merges(ops: &[WriteOp]) -> bool {
    matches!(ops.first(), Some(WriteOp::Merge { .. }))
}

/// A batch's row writes, resolved as far as possible without the database.
///
/// Resolving serialises the rows' JSON (and frees the parsed values), so it
/// happens before the batch takes the writer lock when it can, and other
/// writers do not wait for it.
enum Prepared {
    /// No write merges into a stored row: everything is resolved.
    Ready {
        upserts: Vec<(String, TextImage)>,
        deletes: Vec<String>,
    },
    /// Some writes merge: the stored rows are read inside the transaction.
    NeedsStoredRows(Plan),
}

impl Prepared {
    fn new(plan: Plan, now: DbTime) -> Self {
        if plan.merges_into_stored() {
            return Self::NeedsStoredRows(plan);
        }
        let (upserts, deletes) = plan.resolve(HashMap::new(), now);
        Self::Ready { upserts, deletes }
    }
}

impl Store {
    /// Applies a batch of validated writes to `object`, all or nothing.
    ///
    /// Returns the row ids in request order and the sequence numbers given to
    /// the written rows (consecutive, in order of each id's first appearance
    /// in the batch), and publishes a [`StoreEvent::Events`] after commit.
    pub async fn insert_events(
        &self,
        object: ObjectRef,
        writes: Vec<EventWrite>,
    ) -> Result<InsertOutcome, StoreError> {
        let row_ids: Vec<String> = writes.iter().map(|w| w.id.clone()).collect();
        let plan = Plan::new(writes);
        let n_writes = plan.writes();
        let kind = object.kind.as_str();
        let now = DbTime::now();
        let prepared = Prepared::new(plan, now);

        let guard = self.write_guard().await;
        let (xact_range, deleted) = match (prepared, &self.sqlite_writer) {
            (Prepared::Ready { upserts, deletes }, Some(writer)) => {
                let writer = writer.clone();
                tokio::task::spawn_blocking(move || writer.write(object, &upserts, &deletes))
                    .await
                    .map_err(|e| {
                        StoreError::Database(sqlx::Error::Protocol(format!("writing events: {e}")))
                    })??
            }
            (prepared, _) => {
                self.insert_with_sqlx(object, prepared, n_writes, now)
                    .await?
            }
        };
        drop(guard);

        tracing::debug!(
            object_type = kind,
            object_id = %object.id,
            written = n_writes,
            deleted,
            "events committed"
        );
        if n_writes > 0 || deleted > 0 {
            self.publish(StoreEvent::Events {
                object,
                xact_range,
                written: n_writes,
                deleted,
            });
        }
        Ok(InsertOutcome {
            row_ids,
            xact_range,
            deleted,
        })
    }

    /// Writes a batch through sqlx (PostgreSQL, in-memory SQLite, and
    /// batches that merge into stored rows).
    async fn insert_with_sqlx(
        &self,
        object: ObjectRef,
        prepared: Prepared,
        n_writes: usize,
        now: DbTime,
    ) -> Result<(Option<(i64, i64)>, u64), StoreError> {
        let kind = object.kind.as_str();
        let object_id = DbId(object.id);
        let project_id = DbId(object.project_id);
        Ok(dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            // Allocating first takes the writer lock before anything is read.
            let xact_range = if n_writes > 0 {
                let last: i64 = sqlx::query_scalar(RESERVE_XACT_SQL)
                    .bind(n_writes as i64)
                    .fetch_one(&mut *tx)
                    .await?;
                Some((last - n_writes as i64 + 1, last))
            } else {
                None
            };

            let (upserts, deletes) = match prepared {
                Prepared::Ready { upserts, deletes } => (upserts, deletes),
                Prepared::NeedsStoredRows(plan) => {
                    let mut existing = HashMap::new();
                    for chunk in plan.needs_existing().chunks(ROWS_PER_STATEMENT) {
                        let mut qb = QueryBuilder::<DB>::new("SELECT ");
                        qb.push(EVENT_COLUMNS);
                        qb.push(" FROM events WHERE object_type = ");
                        qb.push_bind(kind);
                        qb.push(" AND object_id = ");
                        qb.push_bind(object_id);
                        qb.push(" AND id IN (");
                        let mut list = qb.separated(", ");
                        for id in chunk {
                            list.push_bind(*id);
                        }
                        qb.push(")");
                        let rows: Vec<EventRow> = qb.build_query_as().fetch_all(&mut *tx).await?;
                        for row in rows {
                            let event = row.into_event();
                            existing.insert(event.id.clone(), RowImage::from(event));
                        }
                    }
                    plan.resolve(existing, now)
                }
            };
            debug_assert_eq!(upserts.len(), n_writes);

            let mut deleted = 0u64;
            for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::<DB>::new("DELETE FROM events WHERE object_type = ");
                qb.push_bind(kind);
                qb.push(" AND object_id = ");
                qb.push_bind(object_id);
                qb.push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                qb.push(")");
                deleted += qb.build().execute(&mut *tx).await?.rows_affected();
            }

            let mut next_xact = xact_range.map(|(first, _)| first).unwrap_or(0);
            for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::<DB>::new("INSERT INTO events (");
                qb.push(EVENT_COLUMNS);
                qb.push(") ");
                qb.push_values(chunk, |mut b, (id, row)| {
                    b.push_bind(kind)
                        .push_bind(object_id)
                        .push_bind(project_id)
                        .push_bind(id.as_str())
                        .push_bind(next_xact)
                        .push_bind(row.created)
                        .push_bind(row.span_id.as_str())
                        .push_bind(row.root_span_id.as_str())
                        .push_bind(row.is_root);
                    for value in &row.json {
                        b.push_bind(value.as_ref());
                    }
                    next_xact += 1;
                });
                qb.push(
                    " ON CONFLICT (object_type, object_id, id) DO UPDATE SET \
                     xact_id = excluded.xact_id, created = excluded.created, \
                     span_id = excluded.span_id, root_span_id = excluded.root_span_id, \
                     is_root = excluded.is_root",
                );
                for name in JSON_FIELDS {
                    qb.push(format_args!(", {name} = excluded.{name}"));
                }
                qb.build().execute(&mut *tx).await.map_err(|e| match &e {
                    // The project was deleted while the batch was in flight.
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        StoreError::not_found("project", object.project_id)
                    }
                    _ => StoreError::Database(e),
                })?;
            }
            tx.commit().await?;
            (xact_range, deleted)
        }))
    }

    /// The highest sequence number of any row currently in `object`.
    pub async fn max_xact_id(&self, object: ObjectRef) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MAX(xact_id) FROM events WHERE object_type = $1 AND object_id = $2";
        let kind = object.kind.as_str();
        let id = DbId(object.id);
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, Option<i64>>(sql)
                .bind(kind)
                .bind(id)
                .fetch_one(pool)
                .await?
        }))
    }
}
