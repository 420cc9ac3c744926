//! Storage, API and filter tests: every test runs against SQLite (a file in
//! a temporary directory) and PostgreSQL (a fresh schema in the database
//! named by `HERALD_TEST_DATABASE_URL`) with the same assertions, through
//! the real router served on a loopback socket.
//!
//! Without `HERALD_TEST_DATABASE_URL` the suite sets up the machine's local
//! cluster with `.ci/postgres-setup.sh`; if that fails the PostgreSQL
//! variants fail, unless `HERALD_TEST_SKIP_POSTGRES=1` says to skip them.

mod confinement;
mod connect;
mod env_vars;
mod errors;
mod export;
mod filters;
mod ingest;
mod objects;
mod prompts;
mod retention;
mod scheduling;
mod sequence;

use std::time::Duration;

use herald::api::{self, ApiKeys, AppState, Limits};
use herald::store::Store;
use serde_json::Value;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` test functions for each named async
/// test function taking a [`Backend`].
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::storage::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::storage::postgres_url().is_none() {
                        $crate::storage::report_skip(
                            concat!(module_path!(), "::postgres"),
                            "HERALD_TEST_SKIP_POSTGRES=1",
                        );
                        return;
                    }
                    super::$name($crate::storage::Backend::Postgres).await
                }
            }
        )*
    };
}
pub(crate) use both_backends;

/// Checks `sql` as a custom export query of `project_id` and runs it over
/// all of that project's spans, with `time` as the time limit.
pub async fn confined(
    store: &herald::store::Store,
    sql: &str,
    project_id: uuid::Uuid,
    time: std::time::Duration,
) -> Result<herald::export::rows::QueryRows, herald::store::StoreError> {
    let query = herald::export::query::ConfinedQuery::new(sql, store.dialect(), project_id)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    run_confined(store, &query.sql, &query.views, project_id, time).await
}

/// Runs `sql` as a confined query without the text check: what the
/// database alone lets through.
pub async fn confined_unchecked(
    store: &herald::store::Store,
    sql: &str,
    project_id: uuid::Uuid,
    time: std::time::Duration,
) -> Result<herald::export::rows::QueryRows, herald::store::StoreError> {
    let views = herald::store::confined_query::ViewNames::for_dialect(store.dialect());
    run_confined(store, sql, &views, project_id, time).await
}

async fn run_confined(
    store: &herald::store::Store,
    sql: &str,
    views: &herald::store::confined_query::ViewNames,
    project_id: uuid::Uuid,
    time: std::time::Duration,
) -> Result<herald::export::rows::QueryRows, herald::store::StoreError> {
    use herald::store::{ConfinedRun, QueryLimits};
    store
        .confined_query(ConfinedRun {
            sql,
            views,
            project_id,
            range: herald::store::ConfinedRange::Xact {
                after: 0,
                upto: i64::MAX,
            },
            allowed_functions: herald::export::query::ALLOWED_FUNCTIONS,
            limits: QueryLimits {
                time,
                ..QueryLimits::EXPORT
            },
        })
        .await
}

/// Says that `test` was skipped and why, where the runner shows it: libtest
/// hides a passing test's own output (`eprintln!` included), and a skipped
/// test counts as passed, so this writes to the process's stderr directly
/// and `.ci/run` counts these lines in its closing summary.
pub fn report_skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// The PostgreSQL test URL; `None` only when skipping is explicitly asked.
///
/// `HERALD_TEST_DATABASE_URL` wins. Without it, the suite runs
/// `.ci/postgres-setup.sh` once (it starts the machine's local cluster and
/// creates the test role and database) so that the README's one test
/// command covers PostgreSQL too; if that fails, the PostgreSQL variants
/// fail with what to do.
pub fn postgres_url() -> Option<String> {
    static LOCAL: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    match std::env::var("HERALD_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => return Some(url),
        _ if std::env::var("HERALD_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
        _ => {}
    }
    match LOCAL.get_or_init(local_postgres) {
        Ok(url) => Some(url.clone()),
        Err(why) => panic!(
            "HERALD_TEST_DATABASE_URL is not set and the local PostgreSQL could not be set up \
             ({why}): run `.ci/postgres-setup.sh` and export the URL it prints (e.g. \
             postgres://herald:herald@127.0.0.1:5432/herald_test), or set \
             HERALD_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL variants"
        ),
    }
}

/// Runs `.ci/postgres-setup.sh` and returns the URL it prints last.
fn local_postgres() -> Result<String, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres-setup.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{} failed: {}", script.display(), stderr.trim()));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .filter(|line| line.starts_with("postgres://"))
        .map(str::to_owned)
        .ok_or_else(|| format!("{} printed no URL", script.display()))
}

/// A fresh, empty database: a SQLite file or a PostgreSQL schema, removed
/// when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("herald.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_schema: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_url().expect("PostgreSQL URL");
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                let sep = if admin.contains('?') { '&' } else { '?' };
                let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
                TestDb {
                    url,
                    _dir: None,
                    pg_schema: Some((admin, schema)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, schema)) = self.pg_schema.take() {
            // Drop is synchronous; clean up on a runtime of our own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                        let _ = sqlx::query(&sql).execute(&mut conn).await;
                    }
                });
            })
            .join();
        }
    }
}

pub const TEST_KEY: &str = "test-key-0123456789";

/// The real router on a loopback socket, over a fresh database.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    #[allow(dead_code)]
    pub backend: Backend,
    handle: JoinHandle<()>,
    _db: TestDb,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, Limits::default()).await
    }

    pub async fn start_with(backend: Backend, limits: Limits) -> TestServer {
        let plugins = herald::plugins::PluginRuntime::without_plugins()
            .await
            .expect("plugin runtime");
        Self::start_full(backend, limits, plugins).await
    }

    /// A server whose plugin host has the bundled plugins (webhook, slack,
    /// retention), compiled through the suite's shared cache, and may reach
    /// the test's peers on loopback.
    pub async fn start_with_bundled_plugins(backend: Backend) -> TestServer {
        Self::start_with_network(backend, true).await
    }

    /// [`TestServer::start_with_bundled_plugins`], with private networks
    /// allowed or not.
    pub async fn start_with_network(backend: Backend, allow_private: bool) -> TestServer {
        let plugins = herald::plugins::PluginRuntime::start(herald::plugins::RuntimeConfig {
            cache_dir: Some(crate::harness::shared_cache_dir()),
            allow_private_networks: allow_private,
            ..herald::plugins::RuntimeConfig::default()
        })
        .await
        .expect("plugin runtime");
        Self::start_full(backend, Limits::default(), plugins).await
    }

    async fn start_full(
        backend: Backend,
        limits: Limits,
        plugins: herald::plugins::PluginRuntime,
    ) -> TestServer {
        let db = TestDb::new(backend).await;
        let store = Store::connect(&db.url).await.expect("store connects");
        let state = AppState {
            limits,
            ..AppState::new(store.clone(), ApiKeys::new([TEST_KEY]), plugins)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = api::router(state);
        let handle = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestServer {
            base: format!("http://{addr}"),
            client,
            store,
            backend,
            handle,
            _db: db,
        }
    }

    /// The database URL (for tests that must reach under the API).
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with the test key and returns status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(TEST_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::answer(req).await
    }

    /// Posts `body` as JSON text exactly as written (its formatting,
    /// duplicate keys and number spellings reach the server unchanged).
    pub async fn post_text(&self, path: &str, body: &str) -> (u16, Value) {
        let req = self
            .client
            .post(self.url(path))
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/json")
            .body(body.to_string());
        Self::answer(req).await
    }

    /// Sends `req` and returns status and JSON body.
    async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request is sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON body {text:?}: {e}"))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `get`/`post` that must answer 200.
    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{path}: {json}");
        json
    }

    /// Creates a project and returns its id.
    pub async fn project(&self, name: &str) -> String {
        let p = self
            .ok(
                reqwest::Method::POST,
                "/v1/project",
                Some(serde_json::json!({"name": name})),
            )
            .await;
        p["id"].as_str().unwrap().to_string()
    }

    /// Inserts project log events, asserting success; returns the row ids.
    pub async fn insert_logs(&self, project: &str, events: Value) -> Vec<String> {
        let path = format!("/v1/project_logs/{project}/insert");
        let r = self
            .ok(
                reqwest::Method::POST,
                &path,
                Some(serde_json::json!({"events": events})),
            )
            .await;
        r["row_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Fetches every project log row (following cursors).
    pub async fn all_logs(&self, project: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut body = serde_json::json!({"limit": 100});
            if let Some(c) = &cursor {
                body["cursor"] = Value::String(c.clone());
            }
            let page = self
                .ok(
                    reqwest::Method::POST,
                    &format!("/v1/project_logs/{project}/fetch"),
                    Some(body),
                )
                .await;
            let events = page["events"].as_array().unwrap();
            if events.is_empty() {
                assert!(page.get("cursor").is_none(), "{page}");
                return out;
            }
            out.extend(events.iter().cloned());
            cursor = Some(page["cursor"].as_str().unwrap().to_string());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
