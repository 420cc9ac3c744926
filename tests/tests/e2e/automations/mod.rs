//! Automations end to end (`docs/automations.md` is the contract): the
//! real `herald` process, started with short retry schedules, alerting
//! real receivers on loopback.
//!
//! * [`crud`]: the `/v1/project_automation` API, validation paths, secret
//!   redaction and its round trip;
//! * [`log_alerts`]: ingest → Braintrust's payload, signed; suppression
//!   and the carried-over count; run once; reset state; metrics;
//! * [`environment`]: environment alerts on assign and remove, filtered;
//! * [`slack`]: Block Kit to a local server speaking Slack's API shapes;
//! * [`delivery`]: retries with a stable event id, queued deliveries across
//!   a crash, pausing after repeated failures and resuming;
//! * [`postgres`]: two daemons on one PostgreSQL count every span once;
//! * [`test_endpoint`]: `POST …/test` for saved and unsaved configs;
//! * [`windowed`]: windowed threshold alerts, their lifecycle and groups.

mod crud;
mod delivery;
mod environment;
mod log_alerts;
mod postgres;
mod slack;
mod test_endpoint;
mod windowed;

use crate::harness::{DAEMON_KEY, Daemon, Receiver, wait_until, webhook_secret};
use reqwest::Method;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// How long anything asynchronous may take before a test fails: generous,
/// because tests run in parallel on small machines.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Daemon settings with a retry schedule short enough for tests.
pub const SETTINGS: &str = r#"
[automations]
retry_schedule_ms = [0, 200, 400, 800, 1600, 3200, 6400]
pause_after_failures = 5
organization_name = "herald"
"#;

/// A `herald serve` process and an API client for it.
pub struct Herald {
    /// The process (killed on drop).
    pub daemon: Daemon,
    /// Its data directory, shared with a daemon started after this one.
    pub data: Arc<TempDir>,
    client: reqwest::Client,
}

impl Herald {
    /// Starts a daemon on a fresh SQLite data directory with `settings`
    /// (TOML) and `--allow-private-networks`.
    pub async fn start(settings: &str) -> Herald {
        Self::start_with(settings, None, Arc::new(tempfile::tempdir().unwrap())).await
    }

    /// Starts a daemon over `data` with `settings`, on `database_url` if
    /// given (else SQLite in `data`).
    pub async fn start_with(
        settings: &str,
        database_url: Option<&str>,
        data: Arc<TempDir>,
    ) -> Herald {
        Self::start_with_env(settings, database_url, data, &[]).await
    }

    /// [`Herald::start_with`] with extra environment variables.
    pub async fn start_with_env(
        settings: &str,
        database_url: Option<&str>,
        data: Arc<TempDir>,
        env: &[(&'static str, &'static str)],
    ) -> Herald {
        let env = env.to_vec();
        let config = data.path().join("herald.toml");
        std::fs::write(&config, settings).unwrap();
        let mut args: Vec<std::ffi::OsString> = vec![
            "--config".into(),
            config.into_os_string(),
            "--allow-private-networks".into(),
        ];
        if let Some(url) = database_url {
            args.extend(["--database-url".into(), url.into()]);
        }
        let dir = data.path().to_path_buf();
        let daemon = tokio::task::spawn_blocking(move || {
            let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            Daemon::serve_with_env(&dir, &args, &env)
        })
        .await
        .unwrap();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Herald {
            daemon,
            data,
            client,
        }
    }

    /// Sends a request with the API key; returns the status and the JSON
    /// body (`Null` when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.daemon.url))
            .bearer_auth(DAEMON_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path}: non-JSON body {text:?}: {e}"))
        };
        (status, json)
    }

    /// Sends a raw body as `application/json`; returns status and text.
    pub async fn send_raw(&self, method: Method, path: &str, body: &str) -> (u16, String) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.daemon.url))
            .bearer_auth(DAEMON_KEY)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request is sent");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A request that must answer 200; returns the body.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {json}");
        json
    }

    /// `GET` that must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, None).await
    }

    /// `POST` that must answer 200.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.ok(Method::POST, path, Some(body)).await
    }

    /// Creates a project; returns its id.
    pub async fn project(&self, name: &str) -> String {
        let project = self.post("/v1/project", json!({ "name": name })).await;
        project["id"].as_str().unwrap().to_owned()
    }

    /// Inserts project log events (`[{…}, …]`), asserting success.
    pub async fn insert(&self, project: &str, events: Value) {
        let path = format!("/v1/project_logs/{project}/insert");
        self.post(&path, json!({ "events": events })).await;
    }

    /// Creates an automation with `POST`; returns the object.
    pub async fn create(&self, project: &str, name: &str, config: Value) -> Value {
        self.post(
            "/v1/project_automation",
            json!({"project_id": project, "name": name, "config": config}),
        )
        .await
    }

    /// An automation's run history, newest first.
    pub async fn runs(&self, id: &str) -> Vec<Value> {
        let page = self.get(&format!("/v1/project_automation/{id}/runs")).await;
        page["objects"].as_array().expect("runs are a list").clone()
    }

    /// An automation's status.
    pub async fn status(&self, id: &str) -> Value {
        self.get(&format!("/v1/project_automation/{id}/status"))
            .await
    }

    /// Waits until `id`'s run history satisfies `condition`; returns it.
    pub async fn wait_for_runs(
        &self,
        id: &str,
        what: &str,
        condition: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let condition = &condition;
        wait_until(
            DEADLINE,
            what,
            || async move { condition(&self.runs(id).await) },
        )
        .await;
        self.runs(id).await
    }

    /// Waits until `id`'s status satisfies `condition`; returns it.
    pub async fn wait_for_status(
        &self,
        id: &str,
        what: &str,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let condition = &condition;
        wait_until(DEADLINE, what, || async move {
            condition(&self.status(id).await)
        })
        .await;
        self.status(id).await
    }
}

/// Waits until `receiver` got at least `n` requests at paths starting with
/// `prefix`; returns them all.
pub async fn wait_for_requests(
    receiver: &Receiver,
    prefix: &str,
    n: usize,
) -> Vec<crate::harness::Recorded> {
    wait_until(DEADLINE, &format!("{n} request(s) at {prefix}"), || async {
        receiver.requests_to(prefix).len() >= n
    })
    .await;
    receiver.requests_to(prefix)
}

/// A webhook action posting to `receiver` at `path`, signed with
/// [`webhook_secret`].
pub fn webhook(receiver: &Receiver, path: &str) -> Value {
    json!({"type": "webhook", "url": format!("{}{path}", receiver.url), "secret": webhook_secret()})
}

/// A log alert config, with Braintrust's `status` as its SDK writes it
/// (and as the API reads it back).
pub fn log_alert(filter: &str, interval_seconds: u64, action: Value) -> Value {
    json!({
        "event_type": "logs",
        "status": "active",
        "btql_filter": filter,
        "interval_seconds": interval_seconds,
        "action": action,
    })
}

/// Parses an RFC 3339 timestamp from a payload or object.
pub fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp, got {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc)
}

/// The sum of the samples of `name` whose labels include all of `labels`,
/// from Prometheus text; `None` when no sample matches.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        let wanted = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if series_name == name && wanted {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    found
}

/// `GET /metrics` as text.
pub async fn metrics(h: &Herald) -> String {
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", h.daemon.url))
        .bearer_auth(DAEMON_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}
