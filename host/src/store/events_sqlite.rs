//! The fast path for writing event batches into a SQLite file.
//!
//! Through sqlx, a batch of 500 spans was a multi-row statement whose
//! 10,000 arguments were built on the async side, handed to sqlx's worker
//! thread, and bound there; measured under the writer lock, that took about
//! twice what SQLite itself needs for the same rows, and the lock is what
//! every concurrent ingest request waits for. This path keeps one
//! `rusqlite` connection for writing (opened on first use) and runs the
//! whole transaction on a blocking thread with cached single-row
//! statements: the sequence allocation, the deletes and the upserts, exactly
//! the statements of the sqlx path. It links the same SQLite library as sqlx
//! (one `libsqlite3-sys`) and opens the file with the pool's settings (WAL,
//! `synchronous=NORMAL`, foreign keys, a 5 s busy timeout), so a batch is as
//! durable either way.
//!
//! # Checkpoints off the writer lock
//!
//! In WAL mode, SQLite by default copies the log back into the database
//! (a checkpoint, with its `fsync`) inside the commit that takes the log
//! past 1,000 pages: with 1 KB spans that was every fifth batch of 500,
//! each taking about 50 ms instead of 10 while every other writer waited.
//! The writer connection here turns that down to a backstop of 10,000 pages
//! and instead wakes a checkpointer thread with its own connection after each
//! commit; it runs a `PASSIVE` checkpoint (which never blocks writers or
//! readers) at most four times a second. Under continuous ingest the log is
//! never wholly copied at the moment a batch starts, so it does not start
//! over until it reaches the backstop, where one commit finishes the copy
//! (about 250 ms every 20,000 spans of 1 KB, instead of 40 ms every 2,500).
//! A `RESTART` checkpoint from the background thread, tried to start the
//! log over sooner, blocked writers for longer. The log stays bounded by
//! the backstop (about 40 MB).
//!
//! Only batches that need no stored row (no merge into an existing row) come
//! here, and only for a database file: sqlx's shared-cache in-memory
//! databases lock per table rather than waiting on a busy timeout, so they
//! keep the sqlx path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::merge::TextImage;
use super::model::{JSON_FIELDS, ObjectRef};
use super::{RESERVE_XACT_SQL, StoreError};

/// The writing connection, shared by the store's clones.
#[derive(Debug, Clone)]
pub(super) struct SqliteWriter {
    path: PathBuf,
    connection: Arc<Mutex<Option<Connection>>>,
    /// Wakes the checkpointer (started with the connection).
    checkpoints: Arc<Mutex<Option<mpsc::Sender<Checkpoint>>>>,
}

/// A message to the checkpointer thread.
enum Checkpoint {
    /// Something was committed.
    Due,
    /// Close the connection and end.
    Stop,
}

/// Log pages at which a commit checkpoints by itself (SQLite's default is
/// 1,000): only reached when the checkpointer falls behind.
const BACKSTOP_PAGES: u32 = 10_000;

/// The shortest time between two background checkpoints.
const CHECKPOINT_SPACING: Duration = Duration::from_millis(250);

/// What a committed batch did: the sequence numbers given to its rows and
/// how many rows it deleted.
pub(super) type Committed = (Option<(i64, i64)>, u64);

fn error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("writing events: {e}")))
}

impl SqliteWriter {
    /// A writer for the database file at `path`; nothing is opened yet.
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            connection: Arc::new(Mutex::new(None)),
            checkpoints: Arc::new(Mutex::new(None)),
        }
    }

    /// Closes the connection and stops the checkpointer (both start again
    /// on the next write).
    pub(super) fn close(&self) {
        *lock(&self.connection) = None;
        if let Some(checkpoints) = lock(&self.checkpoints).take() {
            let _ = checkpoints.send(Checkpoint::Stop);
        }
    }

    fn wake_checkpointer(&self) -> Result<(), StoreError> {
        let mut slot = lock(&self.checkpoints);
        if let Some(sender) = &*slot
            && sender.send(Checkpoint::Due).is_ok()
        {
            return Ok(());
        }
        let connection = open(&self.path)?;
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("herald-checkpoint".into())
            .spawn(move || checkpointer(connection, receiver))
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let _ = sender.send(Checkpoint::Due);
        *slot = Some(sender);
        Ok(())
    }

    /// Writes one batch in one transaction. Blocking: call it on a blocking
    /// thread, holding the store's write guard.
    pub(super) fn write(
        &self,
        object: ObjectRef,
        upserts: &[(String, TextImage)],
        deletes: &[String],
    ) -> Result<Committed, StoreError> {
        let mut slot = lock(&self.connection);
        let connection = match &mut *slot {
            Some(connection) => connection,
            empty => {
                let connection = open(&self.path)?;
                connection
                    .pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
                    .map_err(error)?;
                empty.insert(connection)
            }
        };
        let result = write_batch(connection, object, upserts, deletes);
        if result.is_err() {
            // Start over with a fresh connection after any failure (a full
            // disk, a replaced file): a connection is cheap to reopen.
            *slot = None;
        }
        drop(slot);
        if result.is_ok()
            && let Err(e) = self.wake_checkpointer()
        {
            // The backstop still bounds the log.
            tracing::warn!(error = %e, "could not start the checkpointer");
        }
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies what it can of the log into the database without blocking
/// writers or readers.
fn checkpoint(connection: &Connection) -> rusqlite::Result<()> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Runs a checkpoint when woken, at most one per
/// [`CHECKPOINT_SPACING`] (wake-ups in between are folded into the next),
/// until stopped or every writer is gone.
fn checkpointer(connection: Connection, wake: mpsc::Receiver<Checkpoint>) {
    let mut due = matches!(wake.recv(), Ok(Checkpoint::Due));
    while due {
        if let Err(e) = checkpoint(&connection) {
            tracing::warn!(error = %e, "background checkpoint failed");
        }
        due = false;
        let until = std::time::Instant::now() + CHECKPOINT_SPACING;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match wake.recv_timeout(left) {
                Ok(Checkpoint::Due) => due = true,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Ok(Checkpoint::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        if !due {
            due = matches!(wake.recv(), Ok(Checkpoint::Due));
        }
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(error)?;
    connection.busy_handler(Some(retry_busy)).map_err(error)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;",
        )
        .map_err(error)?;
    Ok(connection)
}

/// Waits for a lock held by another connection: 200 µs between tries, for
/// at most 5 s, as the pool's busy timeout. (SQLite's own busy handler
/// sleeps 1, 2, 5 … 100 ms between tries, so a lock held for a moment could
/// stall a batch for a quarter of a second.)
fn retry_busy(attempt: i32) -> bool {
    const PAUSE: Duration = Duration::from_micros(200);
    if Duration::from_micros(200 * attempt as u64) >= Duration::from_secs(5) {
        return false;
    }
    std::thread::sleep(PAUSE);
    true
}

/// The upsert of one row, the statement of the sqlx path with one row.
static UPSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns = JSON_FIELDS.join(", ");
    let slots: Vec<String> = (10..10 + JSON_FIELDS.len())
        .map(|n| format!("?{n}"))
        .collect();
    let updates: String = JSON_FIELDS
        .iter()
        .map(|name| format!(", {name} = excluded.{name}"))
        .collect();
    format!(
        "INSERT INTO events (object_type, object_id, project_id, id, xact_id, created, span_id, \
         root_span_id, is_root, {columns}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {}) \
         ON CONFLICT (object_type, object_id, id) DO UPDATE SET xact_id = excluded.xact_id, \
         created = excluded.created, span_id = excluded.span_id, \
         root_span_id = excluded.root_span_id, is_root = excluded.is_root{updates}",
        slots.join(", ")
    )
});

fn write_batch(
    connection: &mut Connection,
    object: ObjectRef,
    upserts: &[(String, TextImage)],
    deletes: &[String],
) -> Result<Committed, StoreError> {
    let kind = object.kind.as_str();
    let object_id = object.id.hyphenated().to_string();
    let project_id = object.project_id.hyphenated().to_string();
    // IMMEDIATE takes the writer lock first, as the allocation does on the
    // sqlx path.
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error)?;
    let n_writes = upserts.len() as i64;
    let xact_range = if n_writes > 0 {
        let last: i64 = tx
            .query_row(RESERVE_XACT_SQL, [n_writes], |row| row.get(0))
            .map_err(error)?;
        Some((last - n_writes + 1, last))
    } else {
        None
    };
    let mut deleted = 0u64;
    if !deletes.is_empty() {
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM events WHERE object_type = ?1 AND object_id = ?2 AND id = ?3",
            )
            .map_err(error)?;
        for id in deletes {
            deleted += delete
                .execute(params![kind, object_id, id])
                .map_err(error)? as u64;
        }
    }
    if let Some((first, _)) = xact_range {
        let mut insert = tx.prepare_cached(&UPSERT_SQL).map_err(error)?;
        for (k, (id, row)) in upserts.iter().enumerate() {
            let xact = first + k as i64;
            let created = row.created.to_text();
            let head: [&dyn rusqlite::ToSql; 9] = [
                &kind,
                &object_id,
                &project_id,
                id,
                &xact,
                &created,
                &row.span_id,
                &row.root_span_id,
                &row.is_root,
            ];
            let json = row.json.iter().map(|v| v as &dyn rusqlite::ToSql);
            let values = rusqlite::params_from_iter(head.into_iter().chain(json));
            insert.execute(values).map_err(|e| match &e {
                // The project was deleted while the batch was in flight.
                rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                {
                    StoreError::not_found("project", object.project_id)
                }
                _ => error(e),
            })?;
        }
    }
    tx.commit().map_err(error)?;
    Ok((xact_range, deleted))
}
