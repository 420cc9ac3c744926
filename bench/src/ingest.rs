//! `herald-bench ingest`: span ingest throughput over real HTTP.
//!
//! Serves the real API router on a loopback socket over a fresh database
//! (a SQLite file in a temporary directory, and a fresh schema in the
//! PostgreSQL database named by `HERALD_BENCH_DATABASE_URL` when set), then
//! posts spans of about 1 KB to `/v1/project_logs/{id}/insert` in batches,
//! from several concurrent clients. Request bodies are built before the
//! clock starts, so the figures measure the server: HTTP, JSON parsing,
//! validation and the database transaction. Prints spans/s and request
//! latency percentiles per backend and returns all figures as JSON. With
//! `--otlp`, the same spans also go over OTLP/HTTP and OTLP/gRPC, beside a
//! baseline of the rows inserted straight into SQLite (`ingest_otlp`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::{Value, json};

pub use super::ingest_load::IngestArgs;
use super::ingest_load::{KEY, span};
use super::scratch_schema::ScratchSchema;
use herald::api::{self, ApiKeys, AppState, Limits};
use herald::store::{ObjectRef, Store, XactRange};

/// Runs the benchmark, prints human-readable figures, and returns them as
/// JSON: `{"spans":…, "batch":…, "span_bytes":…, "sqlite": {…},
/// "postgres": {…}}` (`postgres` only when a URL was given).
pub async fn run(args: IngestArgs) -> anyhow::Result<Value> {
    if args.batch == 0 || args.spans == 0 || args.concurrency == 0 {
        bail!("--spans, --batch and --concurrency must be positive");
    }
    let span_bytes = serde_json::to_vec(&span(0))?.len();
    println!(
        "ingest: {} spans of ~{} bytes, batches of {}, {} concurrent clients",
        args.spans, span_bytes, args.batch, args.concurrency
    );
    let mut figures = json!({
        "spans": args.spans,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "span_bytes": span_bytes,
    });

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    figures["sqlite"] = measure("sqlite", &url, &args).await?;

    if let Some(admin) = &args.postgres_url {
        let schema = ScratchSchema::create(admin).await?;
        let result = measure("postgres", &schema.url, &args).await;
        schema.drop_now().await?;
        figures["postgres"] = result?;
    }
    Ok(figures)
}

/// Runs one backend and returns its figures.
async fn measure(name: &str, url: &str, args: &IngestArgs) -> anyhow::Result<Value> {
    let store = Store::connect(url).await?;
    let (addr, server) = serve_api(&store).await?;
    let mut result = drive(name, &store, addr, args).await;
    server.abort();
    store.close().await;
    if let Ok(figures) = &mut result
        && args.otlp
        && name == "sqlite"
    {
        let rest = figures["spans_per_sec"].as_f64().unwrap_or(1.0);
        if let Some(dir) = std::path::Path::new(url.trim_start_matches("sqlite://")).parent() {
            super::ingest_otlp::settle(dir)?;
        }
        match super::ingest_otlp::measure(rest, args).await {
            Ok(otlp) => figures["otlp"] = otlp,
            Err(error) => result = Err(error),
        }
    }
    result
}

/// Serves the API router over `store` on a loopback port (any key but
/// [`KEY`] refused, the default request limits); the address and the
/// server's task, to abort when done.
pub(super) async fn serve_api(
    store: &Store,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let state = AppState {
        limits: Limits::default(),
        ..AppState::new(
            store.clone(),
            ApiKeys::new([KEY]),
            herald::plugins::PluginRuntime::without_plugins().await?,
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, api::router(state)).await;
    });
    Ok((addr, server))
}

async fn drive(
    name: &str,
    store: &Store,
    addr: std::net::SocketAddr,
    args: &IngestArgs,
) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(120))
        .build()?;
    let (project, _) = store.create_project("bench", None).await?;
    let url = format!("http://{addr}/v1/project_logs/{}/insert", project.id);

    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..args.spans)
            .step_by(args.batch)
            .map(|start| {
                let end = (start + args.batch).min(args.spans);
                let events: Vec<Value> = (start..end).map(span).collect();
                serde_json::to_vec(&json!({ "events": events })).map(Bytes::from)
            })
            .collect::<Result<_, _>>()?,
    );
    let total_bytes: usize = bodies.iter().map(Bytes::len).sum();

    // Warm up connections and the database with one small request.
    let warm = json!({"events": [{"id": "warm-up", "input": "hello"}]});
    let resp = client
        .post(&url)
        .bearer_auth(KEY)
        .json(&warm)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("warm-up insert failed: {}", resp.status());
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, bodies, next) =
            (client.clone(), url.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = resp.status();
                resp.bytes().await?;
                if !status.is_success() {
                    anyhow::bail!("insert failed with {status}");
                }
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();

    let object = ObjectRef::project_logs(project.id);
    let stored = store
        .count_events(object, None, XactRange::default())
        .await?;
    if stored != args.spans as u64 + 1 {
        bail!("{name}: expected {} rows, found {stored}", args.spans + 1);
    }

    latencies.sort();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[idx].as_secs_f64() * 1000.0
    };
    let spans_per_sec = args.spans as f64 / elapsed.as_secs_f64();
    let mb_per_sec = total_bytes as f64 / elapsed.as_secs_f64() / 1e6;
    let (p50, p99, max) = (pct(0.50), pct(0.99), pct(1.0));
    println!(
        "{name:>8}: {spans_per_sec:>9.0} spans/s  {mb_per_sec:>6.1} MB/s  request latency p50 {p50:.1} ms  p99 {p99:.1} ms  max {max:.1} ms  ({} requests in {:.2} s)",
        latencies.len(),
        elapsed.as_secs_f64()
    );
    Ok(json!({
        "spans_per_sec": spans_per_sec.round(),
        "mb_per_sec": (mb_per_sec * 10.0).round() / 10.0,
        "requests": latencies.len(),
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "latency_ms": {"p50": round2(p50), "p99": round2(p99), "max": round2(max)},
    }))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
