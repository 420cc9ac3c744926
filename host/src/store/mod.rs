//! Herald's storage: one API over two backends.
//!
//! [`Store`] owns a connection pool for either an embedded SQLite file (the
//! default, `sqlite:` URLs) or a PostgreSQL server (`postgres://` and
//! `postgresql://` URLs). Each backend has its own migration set under
//! `host/migrations/{sqlite,postgres}`, applied by [`Store::connect`]. Queries
//! are checked at run time (no database is needed to build), and almost all
//! of them are written once: the `dispatch!` macro instantiates the same code
//! for each pool type, and the column types in [`columns`] make identifiers
//! and timestamps read back identically from both.
//!
//! The data model follows Braintrust's: projects; project logs, experiment
//! events and dataset rows (one `events` table, see [`events`]); prompts with
//! versions and environments (see [`prompts`]).
//!
//! # The ingest sequence (`_xact_id`)
//!
//! Every written event row, prompt version and environment event gets a
//! number from one counter row (`xact_counter`), bumped by an `UPDATE …
//! RETURNING` as the first statement of the writing transaction. The row lock
//! that `UPDATE` takes is held until commit, so writers that allocate numbers
//! are serialised: a transaction can only allocate after every earlier
//! allocator has committed (or rolled back) and become visible. Hence the
//! sequence increases in commit order as seen by every reader, on PostgreSQL
//! under any number of concurrent daemons as on SQLite (whose single writer
//! lock gives the same order; in-process writers also queue on a mutex so
//! they never spin on `SQLITE_BUSY`). A reader that has seen number N can
//! therefore use "everything above N" as a watermark without ever skipping a
//! row that commits later. Numbers of rolled-back transactions are never
//! reused, so the sequence can have gaps.
//!
//! # Change notifications
//!
//! After each commit the store publishes a [`StoreEvent`] on a broadcast
//! channel ([`Store::subscribe`]) so alerting can react within a second of
//! ingest without polling. The channel is a wake-up, not the source of truth:
//! a lagging subscriber re-reads from its watermark.

pub mod automation_state;
pub mod automations;
pub use crate::columns;
pub mod confined_query;
mod deployment_secrets;
pub mod env_vars;
pub mod environments;
pub mod events;
mod events_sqlite;
pub mod export;
mod export_sqlite;
pub mod json_text;
mod merge;
pub mod model;
pub mod objects;
pub mod outbox;
pub mod projects;
pub mod prompts;
pub mod query;
pub mod retention;
pub mod rows;
pub mod runs;
pub mod validate;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::sealing::Sealer;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Mutex, MutexGuard, broadcast};

pub use automation_state::{AlertWatch, AutomationState, EvaluationCommit, FailureUpdate};
pub use automations::{
    AutomationChange, AutomationListParams, AutomationWrite, PAUSED_BY_CONFIG, StoredAutomation,
};
pub use columns::{DbId, DbTime, Dialect};
pub use confined_query::{ConfinedRange, ConfinedRun, QueryLimits, QueryScope};
pub use env_vars::{EnvVar, EnvVarChange, EnvVarListParams, EnvVarScope, EnvVarWrite};
pub use environments::EnvironmentEvent;
pub use export::BatchBounds;
pub use json_text::JsonText;
pub use model::*;
pub use outbox::{AttemptOutcome, NewDelivery, PauseScope, QueuedDelivery};
pub use projects::ListParams;
pub use query::EventQuery;
pub use runs::{NewRun, Run, RunStatus, RunTrigger};
pub use validate::{
    MappedField, ValidationError, validate_event, validate_mapped_event, validate_raw_event,
};

/// Runs `$body` with `$pool` bound to the concrete pool and `$db` to the
/// concrete sqlx database type, once per backend.
macro_rules! dispatch {
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => {
                #[allow(dead_code, clippy::upper_case_acronyms)]
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::store::Backend::Postgres($pool) => {
                #[allow(dead_code, clippy::upper_case_acronyms)]
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// The statement that allocates `$1` consecutive sequence numbers and
/// returns the last one. Must be the first write of its transaction.
pub(crate) const RESERVE_XACT_SQL: &str =
    "UPDATE xact_counter SET last = last + $1 WHERE id = 1 RETURNING last";

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres(ql)://`.
    #[error("unsupported database URL scheme in {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A referenced object does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What kind of object, e.g. `project`.
        kind: &'static str,
        /// The identifier that was looked up.
        id: String,
    },
    /// The write would violate a uniqueness rule (e.g. a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// The input is invalid; `path` names the offending field.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A custom export query ran past its time limit and was stopped.
    #[error(
        "the export query ran longer than {0:?} and was stopped; narrow it or lower batch_size"
    )]
    QueryTimedOut(std::time::Duration),
    /// The database refused a confined query (it reached for something
    /// outside its views, or the confinement is not set up).
    #[error("{0}")]
    QueryRefused(String),
    /// A confined query returned more than its limits allow.
    #[error("{0}")]
    QueryOverLimit(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A sealed secret could not be opened (wrong key, or altered).
    #[error("{0}")]
    Sealing(#[from] crate::sealing::SealError),
}

impl StoreError {
    pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// Maps a unique-constraint violation to [`StoreError::Conflict`] with
    /// `message`, and passes every other error through.
    pub(crate) fn conflict_on_unique(err: sqlx::Error, message: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(message.into()),
            _ => Self::Database(err),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to Herald's database. Cheap to clone; all clones share one pool
/// and one notification channel.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    notify: broadcast::Sender<StoreEvent>,
    /// Serialises in-process SQLite writers (see the module docs).
    write_lock: Option<Arc<Mutex<()>>>,
    /// Where export reads and confined queries open SQLite connections of
    /// their own (the file, or sqlx's shared in-memory database); `None` on
    /// PostgreSQL.
    sqlite_location: Option<confined_query::SqliteLocation>,
    /// The connection event batches are written with on a SQLite file (see
    /// [`events_sqlite`]); `None` on PostgreSQL and in-memory SQLite.
    sqlite_writer: Option<events_sqlite::SqliteWriter>,
    /// Seals what is secret before it is written (configs, env vars).
    pub(crate) sealer: Arc<Sealer>,
}

impl Store {
    /// [`Store::connect_sealed`] with a key made for this process
    /// ([`Sealer::for_this_process`]): for tools and tests whose data no
    /// other process reads. The daemon passes the key it loaded.
    pub async fn connect(database_url: &str) -> Result<Store, StoreError> {
        Self::connect_sealed(database_url, Arc::new(Sealer::for_this_process())).await
    }

    /// Connects to `database_url`, choosing the backend by its scheme, and
    /// applies pending migrations. Secrets are sealed with `sealer`.
    ///
    /// SQLite files are created when missing and opened in WAL mode with
    /// `synchronous=NORMAL`, foreign keys on and a 5 s busy timeout, and
    /// `secure_delete=fast` (what a row held is zeroed when its page is
    /// written anyway).
    pub async fn connect_sealed(
        database_url: &str,
        sealer: Arc<Sealer>,
    ) -> Result<Store, StoreError> {
        let (notify, _) = broadcast::channel(4096);
        if database_url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(database_url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                .pragma("temp_store", "memory")
                .pragma("secure_delete", "fast")
                // 16 MiB of page cache per connection (8 at most): enough for
                // the indexes' hot pages, bounded for the daemon's footprint.
                .pragma("cache_size", "-16384");
            let in_memory =
                database_url.contains(":memory:") || database_url.contains("mode=memory");
            if !in_memory
                && let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("creating {}: {e}", parent.display()).into(),
                    ))
                })?;
            }
            let mut pool_options = SqlitePoolOptions::new()
                .max_connections(8)
                .min_connections(1);
            if in_memory {
                // The database lives as long as a connection to it does.
                pool_options = pool_options.idle_timeout(None).max_lifetime(None);
            }
            let location = if in_memory {
                confined_query::SqliteLocation::Memory(
                    options
                        .get_filename()
                        .to_string_lossy()
                        .trim_start_matches("file:")
                        .into(),
                )
            } else {
                let path = options.get_filename().to_path_buf();
                // Configs hold secrets: the database is 0600 before SQLite
                // first opens it, and SQLite gives its WAL and shared-memory
                // files the database's mode. Older files are tightened.
                private_database_files(&path)?;
                confined_query::SqliteLocation::File(path)
            };
            let pool = pool_options.connect_with(options).await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            tracing::info!(backend = "sqlite", "database ready");
            let sqlite_writer = match &location {
                confined_query::SqliteLocation::File(path) => {
                    Some(events_sqlite::SqliteWriter::new(path))
                }
                confined_query::SqliteLocation::Memory(_) => None,
            };
            Ok(Store {
                backend: Backend::Sqlite(pool),
                notify,
                write_lock: Some(Arc::new(Mutex::new(()))),
                sqlite_location: Some(location),
                sqlite_writer,
                sealer,
            })
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            let options = PgConnectOptions::from_str(database_url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Store::prepare_confined_queries(&pool).await?;
            tracing::info!(backend = "postgres", "database ready");
            Ok(Store {
                backend: Backend::Postgres(pool),
                notify,
                write_lock: None,
                sqlite_location: None,
                sqlite_writer: None,
                sealer,
            })
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(database_url)))
        }
    }

    /// The SQLite database's file (`None` for PostgreSQL and in-memory
    /// SQLite): export reads open their own read-only connections to it.
    pub(crate) fn sqlite_file(&self) -> Option<&std::path::Path> {
        match &self.sqlite_location {
            Some(confined_query::SqliteLocation::File(path)) => Some(path),
            _ => None,
        }
    }

    /// The id of the key secrets are sealed under (not the key).
    pub fn sealing_key_id(&self) -> &str {
        self.sealer.key_id()
    }

    /// The SQL dialect of this store's backend.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Subscribes to change notifications published after each commit.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.notify.subscribe()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close();
        }
        dispatch!(self, |pool, DB| pool.close().await)
    }

    /// The highest sequence number handed out so far (0 on a new database).
    pub async fn current_xact_id(&self) -> Result<i64, StoreError> {
        let sql = "SELECT last FROM xact_counter WHERE id = 1";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, i64>(sql).fetch_one(pool).await?
        }))
    }

    pub(crate) fn publish(&self, event: StoreEvent) {
        // No subscribers is fine: the event is only a wake-up.
        let _ = self.notify.send(event);
    }

    /// Held by writers around their transaction on SQLite; a no-op on
    /// PostgreSQL, where the counter row lock orders writers.
    pub(crate) async fn write_guard(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

/// Creates the SQLite file `path` as `0600` when missing and makes it and
/// its `-wal`, `-shm` and `-journal` companions `0600`.
fn private_database_files(path: &std::path::Path) -> Result<(), StoreError> {
    let failed = |e: std::io::Error| {
        StoreError::Database(sqlx::Error::Configuration(
            format!("securing {}: {e}", path.display()).into(),
        ))
    };
    crate::private_files::create_private_file(path).map_err(failed)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        crate::private_files::restrict_file(std::path::Path::new(&companion)).map_err(failed)?;
    }
    Ok(())
}

/// Removes a password from a URL before it is shown in an error.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("mysql://u:p@h/db"), "mysql://***@h/db");
        assert_eq!(redact_url("file.db"), "file.db");
    }
}
