//! The whole daemon in process, and a small client for its API: what the
//! end-to-end benchmarks (`alerts`, `retention`) drive.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use herald::config::{FileConfig, Overrides, Settings};

/// The API key the benchmarks' daemons accept.
pub const KEY: &str = "bench-key-0123456789";

/// A daemon running in this process on a loopback port.
pub struct InProcessDaemon {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcessDaemon {
    /// Starts the daemon with `overrides` (the API key is set here).
    pub async fn start(overrides: Overrides) -> anyhow::Result<Self> {
        let settings = Settings::resolve(
            FileConfig::default(),
            Overrides {
                api_keys: Some(vec![KEY.to_owned()]),
                ..overrides
            },
        )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(herald::server::run_on(settings, listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { base, stop, task })
    }

    /// Asks the daemon to shut down and waits up to `grace` for it.
    pub async fn stop(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(error.context("the daemon failed")),
            Ok(Err(error)) => bail!("the daemon panicked: {error}"),
            Err(_) => bail!("the daemon did not shut down within {} s", grace.as_secs()),
        }
    }
}

/// A client of the benchmark daemon's API.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A client whose requests time out after `timeout`, once the daemon at
    /// `base` answers `/healthz` (waiting up to a minute).
    pub async fn connect(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        let started = Instant::now();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the daemon did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            client,
            base: base.to_owned(),
        })
    }

    /// Posts `body` to `path`; fails unless the answer is a 2xx.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(path, body, None).await
    }

    /// [`Api::post`] with a timeout of its own.
    pub async fn post_within(
        &self,
        path: &str,
        body: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.send(path, body, Some(timeout)).await
    }

    /// Gets `path`; fails unless the answer is a 2xx.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY);
        Self::answer(request, "GET", path).await
    }

    async fn send(
        &self,
        path: &str,
        body: Value,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .json(&body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        Self::answer(request, "POST", path).await
    }

    async fn answer(
        request: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
