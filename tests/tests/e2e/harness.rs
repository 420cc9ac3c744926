//! Shared test equipment: compiled guest components, a recording HTTP
//! receiver, a plugin runtime set up for loopback, and a deadline-bounded
//! wait.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald::plugins::{PluginPolicy, PluginRuntime, RuntimeConfig};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A guest component built from `plugins/` (e.g. `fixture_noop`, `webhook`).
pub fn guest(name: &str) -> PathBuf {
    let path = Path::new(herald::plugins::GUEST_ARTIFACTS_DIR).join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "guest component {} was not built",
        path.display()
    );
    path
}

/// A compile cache shared by the tests of this process, so each fixture is
/// compiled once per run rather than once per test.
pub fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .to_path_buf()
}

/// Polls `condition` until it holds or `deadline` passes; panics with `what`.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A policy letting a plugin reach loopback receivers.
pub fn loopback_policy() -> PluginPolicy {
    PluginPolicy {
        allowed_hosts: Some(vec!["127.0.0.1".into(), "localhost".into()]),
        ..PluginPolicy::default()
    }
}

/// A runtime over `plugins_dir` that may reach loopback, with `policies`.
pub async fn runtime_with(plugins_dir: &Path, policies: &[(&str, PluginPolicy)]) -> PluginRuntime {
    PluginRuntime::start(RuntimeConfig {
        plugins_dir: Some(plugins_dir.to_path_buf()),
        cache_dir: Some(shared_cache_dir()),
        allow_private_networks: true,
        policies: policies
            .iter()
            .map(|(n, p)| (n.to_string(), p.clone()))
            .collect::<HashMap<_, _>>(),
        poll_interval: Duration::from_millis(200),
        ..RuntimeConfig::default()
    })
    .await
    .expect("runtime starts")
}

/// Copies guest `name` into `dir` as `file`.
pub fn install(dir: &Path, name: &str, file: &str) -> PathBuf {
    let target = dir.join(file);
    // Write then rename, as an operator should, so a scan never sees half a file.
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::copy(guest(name), &tmp).expect("copy component");
    std::fs::rename(&tmp, &target).expect("rename component");
    target
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Path and query.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: bytes::Bytes,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct ReceiverState {
    requests: Vec<Recorded>,
    status: u16,
    extra_headers: Vec<(String, String)>,
    body: Option<String>,
    delay: Duration,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers
/// with a configurable status. `GET /huge` streams 64 MiB without a
/// content length.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    /// Starts a receiver answering 200.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            status: 200,
            ..ReceiverState::default()
        }));
        let app = axum::Router::new()
            .route("/huge", axum::routing::get(huge))
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { url, state }
    }

    /// Answers `status` (with `headers`) from now on.
    pub fn respond_with(&self, status: u16, headers: &[(&str, &str)]) {
        let mut state = self.state.lock().unwrap();
        state.status = status;
        state.extra_headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        state.body = None;
    }

    /// Answers `status` with `body` (and `headers`) from now on.
    pub fn respond_with_body(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        self.respond_with(status, headers);
        self.state.lock().unwrap().body = Some(body.to_owned());
    }

    /// Waits `delay` before answering.
    pub fn delay_responses(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn record(State(state): State<Arc<Mutex<ReceiverState>>>, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let (status, extra, delay, answer) = {
        let mut state = state.lock().unwrap();
        state.requests.push(Recorded {
            path,
            headers,
            body,
        });
        let answer = state
            .body
            .clone()
            .unwrap_or_else(|| format!("receiver says {}", state.status));
        (
            state.status,
            state.extra_headers.clone(),
            state.delay,
            answer,
        )
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = (StatusCode::from_u16(status).unwrap(), answer).into_response();
    for (name, value) in extra {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

async fn huge() -> Response {
    let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    let stream =
        futures::stream::iter((0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Response::new(Body::from_stream(stream))
}
