//! `herald-bench alerts`: alert latency, from the ingest of a matching span
//! to the webhook's arrival at a receiver, under a steady background load.
//!
//! Runs the real daemon in-process ([`herald::server::run_on`]) over a fresh
//! database (a SQLite file in a temporary data directory, and a fresh schema
//! in the PostgreSQL database named by `--postgres-url` /
//! `HERALD_BENCH_DATABASE_URL` when set), with the bundled webhook plugin
//! delivering to a small axum receiver on loopback. One log alert watches
//! `metadata.probe = 'yes'` with `interval_seconds: 1`; while a background
//! task inserts non-matching spans at `--background-rate` spans/s (batches
//! of 100), one probe span is inserted per sample, spaced more than the
//! interval apart so no probe is suppressed. The alert payload carries no
//! span content, so probes are strictly one at a time and each arrival is
//! matched to the only probe in flight (and checked to count one span).
//!
//! Latency is the receiver's arrival time minus the moment the probe's
//! insert request returned (what a client observes after its write is
//! acknowledged), and also minus the moment it started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Percentiles;
use super::daemon::{Api, InProcessDaemon};
use herald::config::Overrides;

/// Options of the alert latency benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertsArgs {
    /// Probe spans (latency samples) per backend.
    #[arg(long, default_value_t = 40)]
    pub samples: usize,
    /// Background load of non-matching spans per second (batches of 100).
    #[arg(long, default_value_t = 2000)]
    pub background_rate: u64,
    /// PostgreSQL database to benchmark as well (a scratch schema is
    /// created in it and dropped afterwards).
    #[arg(long, env = "HERALD_BENCH_DATABASE_URL")]
    pub postgres_url: Option<String>,
    /// `--windowed` and its options: the windowed-alert benchmark instead.
    #[command(flatten)]
    pub windowed: super::windowed::WindowedArgs,
}

impl Default for AlertsArgs {
    fn default() -> Self {
        Self {
            samples: 40,
            background_rate: 2000,
            postgres_url: std::env::var("HERALD_BENCH_DATABASE_URL").ok(),
            windowed: super::windowed::WindowedArgs::default(),
        }
    }
}

/// Spans per background insert request.
const BATCH: u64 = 100;
/// The alert's suppression interval; probes are spaced further apart.
const INTERVAL: Duration = Duration::from_secs(1);
const PROBE_SPACING: Duration = Duration::from_millis(1200);
/// How long one probe may take before the run is declared broken.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the benchmark, prints human-readable figures, and returns them as
/// JSON: `{"samples":…, "background_rate":…, "sqlite": {…}, "postgres":
/// {…}}` (`postgres` only when a URL was given).
pub async fn run(args: AlertsArgs) -> anyhow::Result<Value> {
    if args.windowed.windowed {
        return super::windowed::run(args.windowed).await;
    }
    if args.samples == 0 {
        bail!("--samples must be positive");
    }
    println!(
        "alerts: {} probes per backend, {} background spans/s in batches of {BATCH}, \
         alert interval {INTERVAL:?}, probes every {PROBE_SPACING:?}",
        args.samples, args.background_rate
    );
    let mut figures = json!({
        "samples": args.samples,
        "background_rate": args.background_rate,
    });

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    figures["sqlite"] = measure("sqlite", dir.path(), &url, &args).await?;

    if let Some(admin) = &args.postgres_url {
        let schema = format!("herald_bench_{}", uuid::Uuid::new_v4().simple());
        let admin_pool = sqlx::PgPool::connect(admin)
            .await
            .context("connecting to HERALD_BENCH_DATABASE_URL")?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin_pool)
            .await?;
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let result = measure("postgres", dir.path(), &url, &args).await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin_pool)
            .await?;
        figures["postgres"] = result?;
    }
    Ok(figures)
}

/// One notification as the receiver saw it.
struct Arrival {
    at: Instant,
    count: u64,
}

/// Starts the receiver; returns its URL and the arrivals.
async fn receiver() -> anyhow::Result<(String, mpsc::UnboundedReceiver<Arrival>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let at = Instant::now();
            let tx = tx.clone();
            async move {
                let count = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["details"]["count"].as_u64())
                    .unwrap_or(0);
                let _ = tx.send(Arrival { at, count });
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, rx))
}

/// Runs one backend: the daemon in-process, the receiver, the load, the
/// probes. Returns its figures.
async fn measure(
    name: &str,
    data_dir: &std::path::Path,
    database_url: &str,
    args: &AlertsArgs,
) -> anyhow::Result<Value> {
    let daemon = InProcessDaemon::start(Overrides {
        data_dir: Some(data_dir.to_path_buf()),
        database_url: Some(database_url.to_owned()),
        allow_private_networks: Some(true),
        ..Overrides::default()
    })
    .await?;
    let result = drive(name, &daemon.base, args).await;
    daemon.stop(Duration::from_secs(30)).await?;
    result
}

async fn drive(name: &str, base: &str, args: &AlertsArgs) -> anyhow::Result<Value> {
    let api = Api::connect(base, Duration::from_secs(60))
        .await
        .with_context(|| format!("{name}: no daemon"))?;

    let (hook, mut arrivals) = receiver().await?;
    let project = api.post("/v1/project", json!({"name": "bench"})).await?;
    let project = project["id"].as_str().context("project id")?.to_owned();
    api.post(
        "/v1/project_automation",
        json!({"project_id": project, "name": "probe", "config": {
            "event_type": "logs", "btql_filter": "metadata.probe = 'yes'",
            "interval_seconds": INTERVAL.as_secs(),
            "action": {"type": "webhook", "url": hook}
        }}),
    )
    .await?;
    let insert = format!("/v1/project_logs/{project}/insert");

    // The background load, until `done`.
    let done = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let load = (args.background_rate > 0).then(|| {
        let (api, insert, done, inserted) =
            (api.clone(), insert.clone(), done.clone(), inserted.clone());
        let period = Duration::from_secs_f64(BATCH as f64 / args.background_rate as f64);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut batch = 0u64;
            while !done.load(Ordering::Relaxed) {
                ticks.tick().await;
                let events: Vec<Value> =
                    (0..BATCH).map(|i| background(batch * BATCH + i)).collect();
                api.post(&insert, json!({ "events": events })).await?;
                inserted.fetch_add(BATCH, Ordering::Relaxed);
                batch += 1;
            }
            Ok::<_, anyhow::Error>(())
        })
    });
    // Let the load reach a steady state.
    tokio::time::sleep(PROBE_SPACING).await;
    let load_started = Instant::now();
    let load_before = inserted.load(Ordering::Relaxed);

    let mut after_ack = Vec::with_capacity(args.samples);
    let mut after_start = Vec::with_capacity(args.samples);
    let mut insert_latency = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let pace = tokio::time::sleep(PROBE_SPACING);
        let sent = Instant::now();
        api.post(
            &insert,
            json!({"events": [{"input": format!("probe {i}"), "metadata": {"probe": "yes"}}]}),
        )
        .await?;
        let acked = Instant::now();
        let arrival = tokio::time::timeout(PROBE_TIMEOUT, arrivals.recv())
            .await
            .with_context(|| {
                format!("{name}: probe {i} was not delivered within {PROBE_TIMEOUT:?}")
            })?
            .context("the receiver stopped")?;
        if arrival.count != 1 {
            bail!(
                "{name}: probe {i}'s notification counted {} spans, expected 1",
                arrival.count
            );
        }
        after_ack.push(arrival.at.saturating_duration_since(acked));
        after_start.push(arrival.at - sent);
        insert_latency.push(acked - sent);
        pace.await;
    }
    let load_elapsed = load_started.elapsed();
    let load_spans = inserted.load(Ordering::Relaxed) - load_before;
    done.store(true, Ordering::Relaxed);
    if let Some(load) = load {
        load.await??;
    }
    if let Ok(extra) = arrivals.try_recv() {
        bail!(
            "{name}: an unexpected notification counting {} spans",
            extra.count
        );
    }

    let background_rate = load_spans as f64 / load_elapsed.as_secs_f64();
    let latency = Percentiles::of(&mut after_ack);
    let from_start = Percentiles::of(&mut after_start);
    let insert = Percentiles::of(&mut insert_latency);
    let max_ms = after_ack.last().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let goal = latency.p50_us < 100_000.0 && latency.p99_us < 1_000_000.0;
    println!("{name:>8}: background load {background_rate:.0} spans/s");
    println!("{name:>8}: ingest acknowledged → webhook received  {latency}");
    println!("{name:>8}: ingest started      → webhook received  {from_start}");
    println!("{name:>8}: probe insert request                    {insert}");
    println!(
        "{name:>8}: goal p50 < 100 ms and p99 < 1 s: {}",
        if goal { "met" } else { "NOT met" }
    );
    Ok(json!({
        "background_spans_per_sec": background_rate.round(),
        "latency": latency,
        "latency_from_insert_start": from_start,
        "probe_insert": insert,
        "latency_max_us": (max_ms * 1e3).round(),
        "goal_met": goal,
    }))
}

/// A background span (about 500 bytes) that the probe alert never matches.
fn background(i: u64) -> Value {
    json!({
        "input": {"messages": [{"role": "user", "content": format!("Order #{i}: where is my parcel? It was due on Monday.")}]},
        "output": format!("Your order #{i} is on its way and should arrive within two business days."),
        "metadata": {"probe": "no", "model": "gpt-4o", "user_id": format!("user-{}", i % 997)},
        "scores": {"Factuality": (i % 100) as f64 / 100.0},
        "metrics": {"prompt_tokens": 48 + i % 17, "completion_tokens": 41},
        "span_attributes": {"name": "chat-completion", "type": "llm"},
    })
}
