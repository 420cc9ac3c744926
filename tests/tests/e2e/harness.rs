//! Shared test equipment: compiled guest components, a recording HTTP
//! receiver, a plugin runtime set up for loopback, the `herald` process
//! itself, Standard Webhooks signature checks, and a deadline-bounded wait.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald::plugins::{PluginPolicy, PluginRuntime, RuntimeConfig};
use hmac::{Hmac, Mac};
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// The compile cache shared by the tests' runtimes and daemons, so each
/// component is compiled once per run, not once per test (entries are
/// written atomically, so concurrent writers are safe).
///
/// It is `target/tmp/compile-cache/<pid>`: a temporary directory would
/// leak, since statics are never dropped, and one cache for every run would
/// grow by the example components, which compile to new bytes on each
/// build. So each run removes the caches of runs whose process is gone.
pub fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let live = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !live {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("compile cache dir");
        dir
    })
    .clone()
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
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body of {} is not JSON ({e}): {}",
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Whether the Standard Webhooks signature verifies with
    /// [`WEBHOOK_SECRET_KEY`].
    pub fn signature_verifies(&self) -> bool {
        match (
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
        ) {
            (Some(id), Some(timestamp), Some(signature)) => {
                verify_signature(id, timestamp, &self.body, signature)
            }
            _ => false,
        }
    }
}

/// The key behind [`webhook_secret`].
pub const WEBHOOK_SECRET_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A Standard Webhooks secret (`whsec_` + base64 of [`WEBHOOK_SECRET_KEY`]).
pub fn webhook_secret() -> String {
    format!("whsec_{}", BASE64.encode(WEBHOOK_SECRET_KEY))
}

/// Verifies a Standard Webhooks signature header the way a receiver would,
/// with an independent HMAC over `id.timestamp.body`.
pub fn verify_signature(id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET_KEY).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = BASE64.encode(mac.finalize().into_bytes());
    header.split(' ').any(|sig| sig == format!("v1,{expected}"))
}

#[derive(Default)]
struct ReceiverState {
    requests: Vec<Recorded>,
    status: u16,
    extra_headers: Vec<(String, String)>,
    body: Option<String>,
    delay: Duration,
    /// Statuses for the next requests, before falling back to `status`.
    queued: VecDeque<u16>,
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
        Self::start_on(0).await
    }

    /// Starts a receiver answering 200 on `127.0.0.1:port` (0: any port),
    /// e.g. to bring back a receiver that was down.
    pub async fn start_on(port: u16) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            status: 200,
            ..ReceiverState::default()
        }));
        let app = axum::Router::new()
            .route("/huge", axum::routing::get(huge))
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
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

    /// Answers the next requests with `statuses`, one each, then falls back
    /// to the status set with [`Receiver::respond_with`].
    pub fn respond_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().queued.extend(statuses);
    }

    /// Waits `delay` before answering.
    pub fn delay_responses(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// What was received at paths starting with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
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
            at: Instant::now(),
        });
        let (status, answer) = match state.queued.pop_front() {
            Some(status) => (status, format!("receiver says {status}")),
            None => (
                state.status,
                state
                    .body
                    .clone()
                    .unwrap_or_else(|| format!("receiver says {}", state.status)),
            ),
        };
        (status, state.extra_headers.clone(), state.delay, answer)
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

/// The API key the daemons started by [`Daemon::serve`] accept.
pub const DAEMON_KEY: &str = "test-key-0123456789abcdef";

/// The `herald` binary, built inside the test crate.
pub fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald-e2e"))
}

/// A running `herald serve`, killed (SIGKILL) on drop.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    logs: Arc<Mutex<VecDeque<String>>>,
}

impl Daemon {
    /// Starts `herald serve` on an ephemeral port over `data_dir`, with
    /// [`DAEMON_KEY`] and `extra_args`, and waits for the address it logs.
    ///
    /// Blocks for as long as start-up takes; call it from
    /// `spawn_blocking` in async tests.
    pub fn serve(data_dir: &Path, extra_args: &[&OsStr]) -> Daemon {
        Self::serve_with_env(data_dir, extra_args, &[])
    }

    /// [`Daemon::serve`] with extra environment variables.
    pub fn serve_with_env(data_dir: &Path, extra_args: &[&OsStr], env: &[(&str, &str)]) -> Daemon {
        let cache = data_dir.join("cache");
        if !cache.exists() {
            std::fs::create_dir_all(data_dir).expect("data dir");
            std::os::unix::fs::symlink(shared_cache_dir(), &cache).expect("link the compile cache");
        }
        let mut child = herald()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("HERALD_API_KEYS", DAEMON_KEY)
            .env_remove("HERALD_CONFIG")
            .env_remove("HERALD_DATABASE_URL")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("herald starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(address.to_owned());
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() == 200 {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        // Start-up compiles every component not yet in the compile cache
        // before the daemon listens: the Python and JavaScript examples take
        // tens of seconds each with Cranelift on a loaded 2-core machine.
        let address = match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "herald did not log its address; its last lines:\n{}",
                    Vec::from(logs.lock().unwrap().clone()).join("\n")
                );
            }
        };
        Daemon {
            child,
            url: format!("http://{address}"),
            logs,
        }
    }

    /// The process's peak resident memory so far (Linux's `VmHWM`), bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Whether the process has exited (crashed, aborted or was killed).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The daemon's last 200 lines of log, for failure messages.
    pub fn logs(&self) -> String {
        Vec::from(self.logs.lock().unwrap().clone()).join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
