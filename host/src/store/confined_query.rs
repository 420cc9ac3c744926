//! Running a user-written query so that the database itself confines it.
//!
//! A custom export query (and, later, a windowed alert's calculation) has
//! been checked as text by [`crate::export::query`]: one `SELECT`, reading
//! only `spans` and `traces`, calling only allowed functions. That check is
//! the first wall and gives the clear messages; this module is the second,
//! and the one that holds even if the first has a gap. The query may read
//! exactly two relations, `spans` and `traces`, which the database defines
//! over one project's rows in one [`ConfinedRange`] (an export batch's
//! ingest sequence numbers, or a windowed alert's window of `created`
//! times), and the *engine* refuses everything else:
//!
//! * **SQLite**: the query runs on a connection of its own (read-only,
//!   `query_only`), on which the two views are temporary views with the
//!   project and range written in. An authorizer (SQLite's
//!   `sqlite3_set_authorizer`) is installed before the query is prepared:
//!   it allows `SELECT`, reading `events` only from inside those two views,
//!   and calling only the allowed functions; any other table (`automations`,
//!   `sqlite_master`, a pragma table), `ATTACH`, `PRAGMA` or recursive CTE
//!   is denied when the statement is prepared. `SQLITE_LIMIT_LENGTH` caps
//!   one value, a progress handler the time, and the sorter and temporary
//!   B-trees spill to disk instead of growing in memory.
//! * **PostgreSQL**: the views are security-barrier views keyed by
//!   transaction-local settings (`herald.query_project`, `…_after`,
//!   `…_upto` for a batch, `…_start`, `…_end` for a window: one pair of
//!   views per kind of range, so each has one predicate the planner can
//!   match to its index). The query runs in a READ ONLY transaction with a
//!   statement timeout, as the role [`QUERY_ROLE`], which may select from
//!   those views and nothing else of Herald's. The role is created and granted at
//!   start-up when Herald's database user may do so (`CREATEROLE`); without
//!   it, custom queries fail with a message saying how to create it. The
//!   one thing the role cannot stop is a switch back to Herald's role with
//!   `set_config('role', …)`, which the text check refuses (`set_config` is
//!   not an allowed function); a separate login role would close that too.
//!
//! Rows are streamed, never collected whole by the driver: each is decoded
//! and counted as it arrives, and the run stops with
//! [`StoreError::QueryOverLimit`] at the first row past [`QueryLimits`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use parking_lot::Mutex;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use serde_json::Value;
use uuid::Uuid;

use super::rows::QueryRows;
use super::{Backend, DbTime, Store, StoreError};

/// The view a confined batch query reads spans from (PostgreSQL).
pub const SPANS_VIEW: &str = "herald_query_spans";
/// The view a confined batch query reads traces from (PostgreSQL).
pub const TRACES_VIEW: &str = "herald_query_traces";
/// The view a confined window query reads spans from (PostgreSQL).
pub const WINDOW_SPANS_VIEW: &str = "herald_window_spans";
/// The view a confined window query reads traces from (PostgreSQL).
pub const WINDOW_TRACES_VIEW: &str = "herald_window_traces";

/// Which rows of the project a confined query sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfinedRange {
    /// An export batch: ingest sequence numbers in `(after, upto]`.
    Xact {
        /// Exclusive lower bound.
        after: i64,
        /// Inclusive upper bound.
        upto: i64,
    },
    /// A windowed alert's window: spans `created` in `[start, end)`.
    Created {
        /// Inclusive start.
        start: DbTime,
        /// Exclusive end.
        end: DbTime,
    },
}

impl ConfinedRange {
    /// Which kind of range this is.
    pub fn scope(self) -> QueryScope {
        match self {
            ConfinedRange::Xact { .. } => QueryScope::Batch,
            ConfinedRange::Created { .. } => QueryScope::Window,
        }
    }
}

/// The kind of range a query is written for: it picks the views the query
/// text is pointed at (see [`ViewNames::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryScope {
    /// An export batch ([`ConfinedRange::Xact`]).
    Batch,
    /// An alert window ([`ConfinedRange::Created`]).
    Window,
}
/// The PostgreSQL role confined queries run as.
pub const QUERY_ROLE: &str = "herald_query";

/// The names of the two views one confined query reads.
///
/// On PostgreSQL they are the fixed views in Herald's schema: the role may
/// read nothing else, whatever a query names. On SQLite they are fresh,
/// unguessable names for each query: SQLite's authorizer only learns the
/// *name* of the FROM item a read comes through, and a CTE can be named
/// like a view, so the names must be ones no query text can know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewNames {
    /// Where `spans` reads from.
    pub spans: String,
    /// Where `traces` reads from.
    pub traces: String,
}

impl ViewNames {
    /// The names for a batch query on `dialect`.
    pub fn for_dialect(dialect: super::Dialect) -> Self {
        Self::new(dialect, QueryScope::Batch)
    }

    /// The names for a query of `scope` on `dialect`.
    pub fn new(dialect: super::Dialect, scope: QueryScope) -> Self {
        match (dialect, scope) {
            (super::Dialect::Postgres, QueryScope::Batch) => Self {
                spans: SPANS_VIEW.into(),
                traces: TRACES_VIEW.into(),
            },
            (super::Dialect::Postgres, QueryScope::Window) => Self {
                spans: WINDOW_SPANS_VIEW.into(),
                traces: WINDOW_TRACES_VIEW.into(),
            },
            (super::Dialect::Sqlite, _) => {
                let secret = Uuid::new_v4().simple();
                Self {
                    spans: format!("herald_spans_{secret}"),
                    traces: format!("herald_traces_{secret}"),
                }
            }
        }
    }
}

/// How much one query may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Wall-clock time before the database stops it.
    pub time: Duration,
    /// Rows it may return.
    pub max_rows: usize,
    /// Bytes it may return, all values counted as text.
    pub max_bytes: usize,
    /// Bytes of the largest single value (or, on PostgreSQL, row).
    pub max_value_bytes: usize,
}

impl QueryLimits {
    /// The limits of one windowed alert's calculation: ten seconds, ten
    /// thousand rows (groups), 16 MiB, 1 MiB per value. An aggregate over a
    /// window returns a row per group, so more means a mistake in the query.
    pub const CALCULATION: QueryLimits = QueryLimits {
        time: Duration::from_secs(10),
        max_rows: 10_000,
        max_bytes: 16 * 1024 * 1024,
        max_value_bytes: 1024 * 1024,
    };

    /// The limits of one custom export batch: a minute, a million rows,
    /// 256 MiB, 32 MiB per value. A batch over them fails with the limit
    /// named; a smaller `batch_size` or a narrower query fits.
    pub const EXPORT: QueryLimits = QueryLimits {
        time: Duration::from_secs(60),
        max_rows: 1_000_000,
        max_bytes: 256 * 1024 * 1024,
        max_value_bytes: 32 * 1024 * 1024,
    };
}

/// One confined query to run.
#[derive(Debug, Clone, Copy)]
pub struct ConfinedRun<'a> {
    /// The SQL, reading only the views named by `views`.
    pub sql: &'a str,
    /// The views' names (see [`ViewNames`]).
    pub views: &'a ViewNames,
    /// Whose rows the views show.
    pub project_id: Uuid,
    /// Which of them (the views must be of the range's [`QueryScope`]).
    pub range: ConfinedRange,
    /// Functions the query may call (lower case), checked by SQLite's
    /// authorizer; PostgreSQL relies on the role and the text check.
    pub allowed_functions: &'a [&'a str],
    /// Time, row and byte limits.
    pub limits: QueryLimits,
}

/// What bounds the rows of a view, as SQL expressions: literals on SQLite,
/// settings on PostgreSQL.
enum RangeSql {
    /// `xact_id > after AND xact_id <= upto`.
    Xact { after: String, upto: String },
    /// `created >= start AND created < end`.
    Created { start: String, end: String },
}

impl RangeSql {
    /// The predicate on the events of alias `t` (`""` for none).
    fn on(&self, t: &str) -> String {
        match self {
            RangeSql::Xact { after, upto } => {
                format!("{t}xact_id > {after} AND {t}xact_id <= {upto}")
            }
            RangeSql::Created { start, end } => {
                format!("{t}created >= {start} AND {t}created < {end}")
            }
        }
    }

    /// The bound on a trace's spans counted in `span_count`.
    fn count_bound(&self, t: &str) -> String {
        match self {
            RangeSql::Xact { upto, .. } => format!(" AND {t}xact_id <= {upto}"),
            RangeSql::Created { .. } => String::new(),
        }
    }
}

/// The two views' definitions, given SQL expressions for the project id
/// and the range bounds.
fn view_definitions(views: &ViewNames, project: &str, range: &RangeSql) -> [(String, String); 2] {
    let in_project = format!("object_type = 'project_logs' AND object_id = {project}");
    [
        (
            views.spans.clone(),
            format!(
                "SELECT id, xact_id AS _xact_id, created, project_id, span_id, root_span_id, \
                 span_parents, is_root, input, output, expected, error, scores, metrics, \
                 metadata, tags, span_attributes, context FROM events \
                 WHERE {in_project} AND {}",
                range.on("")
            ),
        ),
        (
            views.traces.clone(),
            format!(
                "SELECT r.id, r.xact_id AS _xact_id, r.created, r.project_id, r.span_id, \
                 r.root_span_id, r.input, r.output, r.expected, r.error, r.scores, r.metrics, \
                 r.metadata, r.tags, r.span_attributes, r.context, \
                 (SELECT COUNT(*) FROM events c WHERE c.{in_project} \
                  AND c.root_span_id = r.root_span_id{}) AS span_count \
                 FROM events r WHERE r.{in_project} AND r.is_root AND r.root_span_id IN \
                 (SELECT t.root_span_id FROM events t WHERE t.{in_project} AND {})",
                range.count_bound("c."),
                range.on("t.")
            ),
        ),
    ]
}

impl Store {
    /// Runs a confined query (see the module docs) and returns its rows.
    pub async fn confined_query(&self, run: ConfinedRun<'_>) -> Result<QueryRows, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => {
                let location = self.sqlite_location.clone().ok_or_else(|| {
                    StoreError::QueryRefused("this database cannot run custom queries".into())
                })?;
                let sql = run.sql.to_string();
                let allowed: Vec<String> = run
                    .allowed_functions
                    .iter()
                    .map(|f| f.to_string())
                    .collect();
                let run = OwnedRun {
                    sql,
                    views: run.views.clone(),
                    project_id: run.project_id,
                    range: run.range,
                    allowed,
                    limits: run.limits,
                };
                tokio::task::spawn_blocking(move || sqlite_query(&location, &run))
                    .await
                    .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e.to_string())))?
            }
            Backend::Postgres(pool) => postgres_query(pool, run).await,
        }
    }

    /// Creates (or replaces) the confined views on PostgreSQL and, where
    /// this database user may, the role [`QUERY_ROLE`] with its grants.
    /// Several daemons starting at once take turns on an advisory lock.
    pub(super) async fn prepare_confined_queries(pool: &sqlx::PgPool) -> Result<(), StoreError> {
        let project = "NULLIF(current_setting('herald.query_project', true), '')::uuid";
        let setting = |name: &str, ty: &str| {
            format!("NULLIF(current_setting('herald.query_{name}', true), '')::{ty}")
        };
        let batch = RangeSql::Xact {
            after: setting("after", "bigint"),
            upto: setting("upto", "bigint"),
        };
        let window = RangeSql::Created {
            start: setting("start", "timestamptz"),
            end: setting("end", "timestamptz"),
        };
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7250001)")
            .execute(&mut *tx)
            .await?;
        for (scope, range) in [(QueryScope::Batch, batch), (QueryScope::Window, window)] {
            let fixed = ViewNames::new(super::Dialect::Postgres, scope);
            for (name, body) in view_definitions(&fixed, project, &range) {
                sqlx::query(&format!(
                    "CREATE OR REPLACE VIEW {name} WITH (security_barrier) AS {body}"
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        if let Err(error) = grant_query_role(pool).await {
            tracing::warn!(
                role = QUERY_ROLE,
                error = %error,
                "custom export queries will fail until the role exists and is granted to \
                 Herald's user: as a superuser run `CREATE ROLE herald_query NOLOGIN; GRANT \
                 herald_query TO <herald's user>;` and restart Herald"
            );
        }
        Ok(())
    }
}

/// Creates [`QUERY_ROLE`] if missing, makes Herald's user a member, and
/// grants it the views and its schema, nothing else.
async fn grant_query_role(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7250001)")
        .execute(&mut *tx)
        .await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(QUERY_ROLE)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE ROLE {QUERY_ROLE} NOLOGIN NOINHERIT"))
            .execute(&mut *tx)
            .await?;
    }
    let member: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER')")
        .bind(QUERY_ROLE)
        .fetch_one(&mut *tx)
        .await?;
    if !member {
        sqlx::query(&format!("GRANT {QUERY_ROLE} TO CURRENT_USER"))
            .execute(&mut *tx)
            .await?;
    }
    let schema: String = sqlx::query_scalar("SELECT quote_ident(current_schema())")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(&format!("GRANT USAGE ON SCHEMA {schema} TO {QUERY_ROLE}"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "GRANT SELECT ON {SPANS_VIEW}, {TRACES_VIEW}, {WINDOW_SPANS_VIEW}, {WINDOW_TRACES_VIEW} \
         TO {QUERY_ROLE}"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Most columns a confined query may return on SQLite (its default is
/// 2,000); with each value under `max_value_bytes`, this bounds one row.
const MAX_COLUMNS: i32 = 100;

/// SQLite's hard heap limit, bytes: allocations past it fail the query
/// (`SQLITE_NOMEM`) instead of growing the process.
const SQLITE_HEAP_LIMIT: i64 = 1 << 30;

fn over_limit(what: String) -> StoreError {
    StoreError::QueryOverLimit(what)
}

/// Counts rows and bytes against the limits as they arrive.
struct Meter {
    limits: QueryLimits,
    rows: usize,
    bytes: usize,
}

impl Meter {
    /// Refuses before a value of `more` bytes is copied, when the row so far
    /// (`row` bytes) and it would pass the byte limit: a row of many large
    /// values must not be built whole before it is counted.
    fn room_for(&self, row: usize, more: usize) -> Result<(), StoreError> {
        if self.bytes + row + more > self.limits.max_bytes {
            return Err(self.over_bytes());
        }
        Ok(())
    }

    fn over_bytes(&self) -> StoreError {
        over_limit(format!(
            "the query returned more than {} MiB for one batch; lower batch_size or narrow the \
             query",
            self.limits.max_bytes / (1024 * 1024)
        ))
    }

    fn row(&mut self, bytes: usize) -> Result<(), StoreError> {
        self.rows += 1;
        self.bytes += bytes;
        if self.rows > self.limits.max_rows {
            return Err(over_limit(format!(
                "the query returned more than {} rows for one batch; lower batch_size or \
                 narrow the query",
                self.limits.max_rows
            )));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(self.over_bytes());
        }
        Ok(())
    }
}

/// Where the SQLite database is, for a connection of the query's own.
#[derive(Debug, Clone)]
pub(crate) enum SqliteLocation {
    /// A database file.
    File(std::path::PathBuf),
    /// sqlx's shared-cache in-memory database of this process, by name.
    Memory(String),
}

/// A [`ConfinedRun`] that can move to a blocking thread.
struct OwnedRun {
    sql: String,
    views: ViewNames,
    project_id: Uuid,
    range: ConfinedRange,
    allowed: Vec<String>,
    limits: QueryLimits,
}

fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("custom query: {e}")))
}

fn sqlite_query(location: &SqliteLocation, run: &OwnedRun) -> Result<QueryRows, StoreError> {
    use rusqlite::OpenFlags;
    let connection = match location {
        SqliteLocation::File(path) => rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
        SqliteLocation::Memory(name) => rusqlite::Connection::open_with_flags(
            format!("file:{name}?mode=memory&cache=shared"),
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
    }
    .map_err(sqlite_error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(sqlite_error)?;
    // Sorts and temporary B-trees spill to files past 16 MiB of cache
    // instead of growing in memory; one value is capped in size.
    connection
        .execute_batch("PRAGMA temp_store = FILE; PRAGMA cache_size = -16384;")
        .map_err(sqlite_error)?;
    let value_limit = i32::try_from(run.limits.max_value_bytes).unwrap_or(i32::MAX);
    connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, value_limit);
    connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    // With one value capped, this caps a row: at most MAX_COLUMNS values.
    connection.set_limit(Limit::SQLITE_LIMIT_COLUMN, MAX_COLUMNS);
    // And SQLite's own heap, for what it builds before a row is returned
    // (process-wide: it bounds every SQLite connection of the daemon, far
    // above what the pool and the export reads use).
    connection
        .execute_batch(&format!("PRAGMA hard_heap_limit = {SQLITE_HEAP_LIMIT}"))
        .map_err(sqlite_error)?;
    let range = match run.range {
        ConfinedRange::Xact { after, upto } => RangeSql::Xact {
            after: after.to_string(),
            upto: upto.to_string(),
        },
        // Fixed-width UTC text, as `created` is stored: it compares in order.
        ConfinedRange::Created { start, end } => RangeSql::Created {
            start: format!("'{}'", start.to_text()),
            end: format!("'{}'", end.to_text()),
        },
    };
    for (name, body) in view_definitions(&run.views, &format!("'{}'", run.project_id), &range) {
        connection
            .execute_batch(&format!("CREATE TEMP VIEW {name} AS {body}"))
            .map_err(sqlite_error)?;
    }
    connection
        .execute_batch("PRAGMA query_only = ON")
        .map_err(sqlite_error)?;
    let denied: Arc<Mutex<Option<String>>> = Arc::default();
    let allowed = run.allowed.clone();
    let views = run.views.clone();
    let first_denial = denied.clone();
    connection.authorizer(Some(move |context: AuthContext<'_>| {
        match authorize(&context, &views, &allowed) {
            Ok(()) => Authorization::Allow,
            Err(what) => {
                first_denial.lock().get_or_insert(what);
                Authorization::Deny
            }
        }
    }));
    let deadline = Instant::now() + run.limits.time;
    connection.progress_handler(10_000, Some(move || Instant::now() >= deadline));
    let refused = |e: rusqlite::Error| match denied.lock().take() {
        Some(what) => StoreError::QueryRefused(format!(
            "the database refused the query: it may read only spans and traces and call \
             allowed functions, and it tried {what}"
        )),
        None => match &e {
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                StoreError::QueryTimedOut(run.limits.time)
            }
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.code == rusqlite::ErrorCode::OutOfMemory =>
            {
                over_limit(format!(
                    "the query needed more than the {} MiB SQLite may use",
                    SQLITE_HEAP_LIMIT >> 20
                ))
            }
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.code == rusqlite::ErrorCode::TooBig =>
            {
                over_limit(format!(
                    "a value in the query's result is larger than {} MiB",
                    run.limits.max_value_bytes / (1024 * 1024)
                ))
            }
            _ => sqlite_error(e),
        },
    };
    let mut statement = connection.prepare(&run.sql).map_err(refused)?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let json_column: Vec<bool> = columns
        .iter()
        .map(|c| super::JSON_FIELDS.contains(&c.as_str()))
        .collect();
    let mut meter = Meter {
        limits: run.limits,
        rows: 0,
        bytes: 0,
    };
    let mut out = Vec::new();
    let mut rows = statement.query([]).map_err(refused)?;
    while let Some(row) = rows.next().map_err(refused)? {
        use rusqlite::types::ValueRef;
        let mut values = Vec::with_capacity(columns.len());
        let mut bytes = 0;
        for (i, is_json) in json_column.iter().enumerate() {
            let value = match row.get_ref(i).map_err(sqlite_error)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(x) => Value::from(x),
                ValueRef::Text(text) => {
                    meter.room_for(bytes, text.len())?;
                    bytes += text.len();
                    let text = String::from_utf8_lossy(text);
                    if *is_json {
                        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into()))
                    } else {
                        Value::String(text.into())
                    }
                }
                ValueRef::Blob(blob) => {
                    meter.room_for(bytes, 2 * blob.len())?;
                    bytes += 2 * blob.len();
                    Value::String(hex::encode(blob))
                }
            };
            bytes += 8;
            values.push(value);
        }
        meter.row(bytes)?;
        out.push(values);
    }
    let columns = if out.is_empty() { Vec::new() } else { columns };
    Ok(QueryRows { columns, rows: out })
}

/// SQLite's authorizer decision: `Err` names what was refused.
fn authorize(
    context: &AuthContext<'_>,
    views: &ViewNames,
    allowed: &[String],
) -> Result<(), String> {
    let views = [views.spans.as_str(), views.traces.as_str()];
    match context.action {
        AuthAction::Select => Ok(()),
        AuthAction::Read { table_name, .. }
            if views.contains(&table_name)
                || (table_name == "events"
                    && context.accessor.is_some_and(|view| views.contains(&view))) =>
        {
            Ok(())
        }
        AuthAction::Read { table_name, .. } => Err(format!("to read `{table_name}`")),
        AuthAction::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            if allowed.contains(&name) {
                Ok(())
            } else {
                Err(format!("to call `{function_name}`"))
            }
        }
        AuthAction::Recursive => Err("a recursive query".into()),
        AuthAction::Pragma { pragma_name, .. } => Err(format!("PRAGMA {pragma_name}")),
        AuthAction::Attach { .. } => Err("ATTACH".into()),
        other => Err(format!("{other:?}")),
    }
}

async fn postgres_query(
    pool: &sqlx::PgPool,
    run: ConfinedRun<'_>,
) -> Result<QueryRows, StoreError> {
    let limits = run.limits;
    let mapped = |e: sqlx::Error| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            StoreError::QueryTimedOut(limits.time)
        }
        // insufficient_privilege, and SET ROLE to a missing role.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("42501" | "42704")) => {
            StoreError::QueryRefused(format!(
                "the database refused the query: {} (it may read only spans and traces, as the \
                 role {QUERY_ROLE})",
                db.message()
            ))
        }
        _ => StoreError::Database(e),
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (low, high, bounds) = match run.range {
        ConfinedRange::Xact { after, upto } => {
            ("after", "upto", (after.to_string(), upto.to_string()))
        }
        ConfinedRange::Created { start, end } => {
            ("start", "end", (start.0.to_rfc3339(), end.0.to_rfc3339()))
        }
    };
    sqlx::query(&format!(
        "SELECT set_config('herald.query_project', $1, true), \
         set_config('herald.query_{low}', $2, true), set_config('herald.query_{high}', $3, true)"
    ))
    .bind(run.project_id.to_string())
    .bind(bounds.0)
    .bind(bounds.1)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "SET LOCAL statement_timeout = {}",
        limits.time.as_millis().max(1)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("SET LOCAL ROLE {QUERY_ROLE}"))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::QueryRefused(format!(
                "custom queries on PostgreSQL run as the role {QUERY_ROLE}, which this database \
                 user cannot assume ({e}); as a superuser run `CREATE ROLE {QUERY_ROLE} NOLOGIN; \
                 GRANT {QUERY_ROLE} TO <herald's user>;` and restart Herald"
            ))
        })?;
    // row_to_json gives every column type (numeric, timestamps, jsonb) one
    // faithful JSON form and keeps column order; a row over the value limit
    // is measured by the server and never sent.
    let wrapped = format!(
        "SELECT CASE WHEN octet_length(t) <= {cap} THEN t END, octet_length(t) \
         FROM (SELECT row_to_json(q)::text AS t FROM ({sql}) AS q) AS s",
        cap = limits.max_value_bytes,
        sql = run.sql
    );
    let mut meter = Meter {
        limits,
        rows: 0,
        bytes: 0,
    };
    let (mut columns, mut rows): (Vec<String>, Vec<Vec<Value>>) = (Vec::new(), Vec::new());
    {
        let mut stream = sqlx::query_as::<_, (Option<String>, i32)>(&wrapped).fetch(&mut *tx);
        while let Some((text, length)) = stream.try_next().await.map_err(mapped)? {
            let Some(text) = text else {
                return Err(over_limit(format!(
                    "a row of the query's result is {length} bytes, larger than {} MiB",
                    limits.max_value_bytes / (1024 * 1024)
                )));
            };
            meter.row(text.len())?;
            let OrderedRow(row) = serde_json::from_str(&text).map_err(|e| {
                StoreError::Database(sqlx::Error::Decode(
                    format!("a row of the query's result: {e}").into(),
                ))
            })?;
            if columns.is_empty() {
                columns = row.iter().map(|(name, _)| name.clone()).collect();
            }
            rows.push(row.into_iter().map(|(_, value)| value).collect());
        }
    }
    tx.rollback().await?;
    Ok(QueryRows { columns, rows })
}

/// A `row_to_json` object's columns in the query's order, duplicates kept
/// (serde_json's map would sort them and merge `a.id, b.id` into one).
struct OrderedRow(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedRow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Columns;
        impl<'de> serde::de::Visitor<'de> for Columns {
            type Value = OrderedRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedRow, A::Error> {
                let mut row = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    row.push(entry);
                }
                Ok(OrderedRow(row))
            }
        }
        deserializer.deserialize_map(Columns)
    }
}
