//! The fast path for reading export spans out of SQLite.
//!
//! An export reads hundreds of thousands of ~1 KB rows. Through sqlx every
//! row is copied value by value on sqlx's worker thread and sent to the
//! async side as its own message, then copied again into the row struct:
//! that, not SQLite, was most of an export's time. This path opens a
//! read-only `rusqlite` connection on a blocking thread and builds the
//! [`SpanRecord`]s directly from SQLite's buffers, one copy per value. It
//! links the same SQLite library as sqlx (one `libsqlite3-sys`), and reads
//! committed data only (WAL readers never block the writer).

use std::path::Path;
use std::time::Duration;

use rusqlite::{OpenFlags, params};
use uuid::Uuid;

use super::StoreError;
use super::columns::DbTime;
use super::rows::SpanRecord;
use crate::event_fields::JSON_FIELD_COUNT;

const SPANS_SQL: &str = "SELECT id, xact_id, created, span_id, root_span_id, is_root, \
     span_parents, input, output, expected, error, scores, metrics, metadata, tags, \
     span_attributes, context FROM events WHERE object_type = 'project_logs' \
     AND object_id = ?1 AND xact_id > ?2 AND xact_id <= ?3 AND (?4 IS NULL OR created >= ?4) \
     ORDER BY xact_id";

fn error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("reading export rows: {e}")))
}

/// Reads the spans of `project_id` in `(after, upto]` created at or after
/// `since` from the SQLite file at `path`. Blocking: call it on a blocking
/// thread.
pub(super) fn read_spans(
    path: &Path,
    project_id: Uuid,
    after: i64,
    upto: i64,
    since: Option<DbTime>,
) -> Result<Vec<SpanRecord>, StoreError> {
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(error)?;
    let mut statement = connection.prepare(SPANS_SQL).map_err(error)?;
    let since = since.map(DbTime::to_text);
    let mut rows = statement
        .query(params![project_id.to_string(), after, upto, since])
        .map_err(error)?;
    let mut out = Vec::with_capacity(usize::try_from(upto - after).unwrap_or(0).min(100_000));
    while let Some(row) = rows.next().map_err(error)? {
        let text = |i: usize| -> Result<Option<String>, StoreError> {
            let value = row.get_ref(i).map_err(error)?;
            Ok(value
                .as_str_or_null()
                .map_err(|e| error(e.into()))?
                .filter(|t| *t != "null")
                .map(str::to_owned))
        };
        let created: String = row.get(2).map_err(error)?;
        let created = DbTime::parse(&created).map_err(|e| {
            StoreError::Database(sqlx::Error::Decode(
                format!("created {created:?}: {e}").into(),
            ))
        })?;
        let mut json: [Option<String>; JSON_FIELD_COUNT] = Default::default();
        for (i, slot) in json.iter_mut().enumerate() {
            *slot = text(6 + i)?;
        }
        out.push(SpanRecord {
            id: row.get(0).map_err(error)?,
            xact_id: row.get(1).map_err(error)?,
            created: created.0,
            span_id: row.get(3).map_err(error)?,
            root_span_id: row.get(4).map_err(error)?,
            is_root: row.get(5).map_err(error)?,
            json,
        });
    }
    Ok(out)
}
