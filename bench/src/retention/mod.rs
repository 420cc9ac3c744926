//! `herald-bench retention`: a large retention purge on SQLite while ingest
//! goes on.
//!
//! 1. **Seed.** A child process (this binary, `retention --seed-into`) fills
//!    a fresh SQLite file with `--spans` spans of about 1 KB directly through
//!    [`Store::insert_events`] (no HTTP), in traces of `--trace-spans` spans
//!    (one root and its children, the root's `span_id` being the trace's
//!    `root_span_id`). The first `--old-fraction` of them, in whole traces,
//!    were `created` 60 days ago; the rest within the last day. Seeding runs
//!    in its own process so that its memory (SQLite's cache, the generated
//!    batches) never shows in the figures of the measured one.
//! 2. **Daemon.** This process then runs the whole daemon in-process
//!    ([`herald::server::run_on`]) on that file and creates a retention
//!    automation (`project_logs`, `retention_days: 30`, the plugin's default
//!    batch size) through the API.
//! 3. **Load.** Background ingest of `--ingest-rate` spans/s over HTTP,
//!    open loop: a request of [`BATCH`] spans is started on every tick
//!    whatever the earlier ones are doing, and its latency is counted from
//!    the tick it was scheduled for, so a stall shows in every request it
//!    delays (no coordinated omission). The first [`WARM_UP`] is discarded,
//!    the next `--baseline-seconds` are the baseline.
//! 4. **Purge.** `POST /v1/project_automation/{id}/run` runs the purge and
//!    answers when it is done, with the run (`details.deleted`,
//!    `details.batches`, `duration_ms`). Then the load stops, the daemon
//!    shuts down and the remaining spans are counted: they must be exactly
//!    the recent seeded ones plus the ingested ones, else the bench fails.
//!
//! Memory: a thread samples this process's `VmRSS` every 50 ms; the
//! figures are the maximum during the purge and `VmHWM` (the peak RSS over
//! the daemon's whole life in this process: start, baseline, purge). Both
//! include the bench's own HTTP client, which is small.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub(crate) mod seed;

use super::memory::{Memory, RssSampler, SAMPLE_EVERY, mb};
use seed::{file_size, live_span, merge, now_rfc3339, seed_in_child, seed_span, split, sqlite_url};

use super::Percentiles;
use super::daemon::{Api, InProcessDaemon};
use herald::config::Overrides;
use herald::store::{ObjectRef, Store, XactRange};

/// Options of the retention benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    /// Spans in the store before the purge.
    #[arg(long, default_value_t = 4_000_000)]
    pub spans: usize,
    /// Fraction of them (in whole traces) older than the 30-day window.
    #[arg(long, default_value_t = 0.5)]
    pub old_fraction: f64,
    /// Background ingest during the baseline and the purge, spans/s (in
    /// requests of 50 spans).
    #[arg(long, default_value_t = 1000)]
    pub ingest_rate: u64,
    /// Spans per seeded trace: one root and its children (1: every span is
    /// its own root).
    #[arg(long, default_value_t = 8)]
    pub trace_spans: usize,
    /// Seconds of ingest measured before the purge, as the baseline.
    #[arg(long, default_value_t = 5)]
    pub baseline_seconds: u64,
    /// Internal: seed the database at this URL and exit (the child
    /// process).
    #[arg(long, hide = true)]
    pub seed_into: Option<String>,
}

impl Default for RetentionArgs {
    fn default() -> Self {
        Self {
            spans: 4_000_000,
            old_fraction: 0.5,
            ingest_rate: 1000,
            trace_spans: 8,
            baseline_seconds: 5,
            seed_into: None,
        }
    }
}

/// Spans per background ingest request.
const BATCH: u64 = 50;
/// Spans per seeding transaction.
const SEED_BATCH: usize = 5_000;
/// Ingest before the baseline starts, not measured.
const WARM_UP: Duration = Duration::from_secs(1);
/// The automation's window.
const RETENTION_DAYS: i64 = 30;
/// How old the old spans are.
const OLD_DAYS: i64 = 60;
/// Goals of the issue.
const GOAL_MEMORY_MB: f64 = 200.0;
const GOAL_P99_MS: f64 = 250.0;

/// Runs the benchmark, prints human-readable figures, and returns them as
/// JSON (see the module docs).
pub async fn run(args: RetentionArgs) -> anyhow::Result<Value> {
    if args.spans == 0 || args.trace_spans == 0 || args.ingest_rate == 0 {
        bail!("--spans, --trace-spans and --ingest-rate must be positive");
    }
    if !(0.0..=1.0).contains(&args.old_fraction) {
        bail!("--old-fraction must be between 0 and 1");
    }
    let (old, recent) = split(&args);
    if let Some(url) = &args.seed_into {
        return seed::seed(url, &args, old).await;
    }
    let span_bytes = serde_json::to_vec(&seed_span(0, 1, &now_rfc3339()))?.len();
    println!(
        "retention: {} spans of ~{span_bytes} bytes in traces of {} ({old} older than \
         {RETENTION_DAYS} days, {recent} recent), ingest {} spans/s in requests of {BATCH}",
        args.spans, args.trace_spans, args.ingest_rate
    );

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let db = dir.path().join("herald.db");
    let seeded = seed_in_child(&sqlite_url(&db), &args).await?;
    let project = seeded["project_id"]
        .as_str()
        .context("the seeder reported no project id")?
        .to_owned();
    let db_bytes = file_size(&db) + file_size(&db.with_extension("db-wal"));
    println!(
        "  seeded in {:.1} s ({:.0} spans/s), database {:.2} GB",
        seeded["seconds"].as_f64().unwrap_or(0.0),
        seeded["spans_per_sec"].as_f64().unwrap_or(0.0),
        db_bytes as f64 / 1e9
    );

    let mut figures = json!({
        "spans": args.spans,
        "old_spans": old,
        "recent_spans": recent,
        "trace_spans": args.trace_spans,
        "span_bytes": span_bytes,
        "ingest_rate": args.ingest_rate,
        "ingest_batch": BATCH,
        "seed_seconds": seeded["seconds"],
        "db_bytes_after_seed": db_bytes,
    });
    let measured = measure(dir.path(), &db, &project, &args).await?;
    merge(&mut figures, measured);

    // Verify with a fresh connection once the daemon is gone.
    let store = Store::connect(&sqlite_url(&db)).await?;
    let project_id: uuid::Uuid = project.parse()?;
    let found = store
        .count_events(
            ObjectRef::project_logs(project_id),
            None,
            XactRange::default(),
        )
        .await?;
    store.close().await;
    let ingested = figures["ingest_total_spans"].as_u64().unwrap_or(0);
    let expected = recent as u64 + ingested;
    figures["remaining"] = json!({"expected": expected, "found": found});
    if found != expected {
        bail!(
            "RETENTION BENCH FAILED: {found} spans remain, expected {expected} \
             ({recent} recent seeded + {ingested} ingested)"
        );
    }
    let deleted = figures["purge"]["deleted"].as_u64().unwrap_or(0);
    if deleted != old as u64 {
        bail!("RETENTION BENCH FAILED: the run reports {deleted} deleted, expected {old}");
    }
    println!("  remaining spans: {found} = {recent} recent seeded + {ingested} ingested (checked)");
    Ok(figures)
}

/// Runs the daemon on the seeded file, the load and the purge; returns the
/// figures (everything but the final check).
async fn measure(
    data_dir: &Path,
    db: &Path,
    project: &str,
    args: &RetentionArgs,
) -> anyhow::Result<Value> {
    let hwm_before = Memory::read().hwm;
    let sampler = RssSampler::start();
    let daemon = InProcessDaemon::start(Overrides {
        data_dir: Some(data_dir.to_path_buf()),
        database_url: Some(sqlite_url(db)),
        ..Overrides::default()
    })
    .await?;
    let result = drive(&daemon.base, project, args).await;
    // The daemon's peak, read before the final check opens the file again.
    let hwm = Memory::read().hwm;
    let samples = sampler.finish();
    daemon.stop(Duration::from_secs(60)).await?;
    let (mut figures, window) = result?;

    let in_purge: Vec<Memory> = samples
        .iter()
        .filter(|(at, _)| *at >= window.0 && *at <= window.1)
        .map(|&(_, m)| m)
        .collect();
    let at_start = samples
        .iter()
        .rev()
        .find(|(at, _)| *at <= window.0)
        .map_or(Memory::default(), |&(_, m)| m);
    let top = in_purge
        .iter()
        .copied()
        .chain([at_start])
        .max_by_key(|m| m.rss)
        .unwrap_or_default();
    let (rss_start, rss_max, rss_samples) = (at_start.rss, top.rss, in_purge.len());
    // The kernel updates VmHWM lazily; a sample can read slightly above it.
    let peak = hwm.max(rss_max);
    let memory_goal = mb(peak) < GOAL_MEMORY_MB;
    let p99_ms = figures["ingest_during_purge"]["p99_ms"]
        .as_f64()
        .unwrap_or(f64::MAX);
    let latency_goal = p99_ms < GOAL_P99_MS;
    println!(
        "  memory (this process: daemon + bench client): RSS {:.1} MB at purge start, \
         max {:.1} MB during the purge ({rss_samples} samples every {SAMPLE_EVERY:?}); \
         VmHWM {:.1} MB over the daemon's life (before it started: {:.1} MB)",
        mb(rss_start),
        mb(rss_max),
        mb(hwm),
        mb(hwm_before)
    );
    println!(
        "  at the RSS maximum: anonymous {:.1} MB, files {:.1} MB, shared {:.1} MB",
        mb(top.anon),
        mb(top.file),
        mb(top.shmem)
    );
    println!(
        "  goal peak memory (max of VmHWM and the samples) < {GOAL_MEMORY_MB} MB: {};  goal ingest p99 during the \
         purge < {GOAL_P99_MS} ms: {}",
        if memory_goal { "met" } else { "NOT met" },
        if latency_goal { "met" } else { "NOT met" },
    );
    figures["memory"] = json!({
        "what": "this process (daemon + bench client); seeding ran in a separate process",
        "rss_at_purge_start_mb": mb(rss_start),
        "rss_max_during_purge_mb": mb(rss_max),
        "rss_samples_during_purge": rss_samples,
        "at_rss_max": {"anon_mb": mb(top.anon), "file_mb": mb(top.file), "shmem_mb": mb(top.shmem)},
        "vmhwm_mb": mb(hwm),
        "peak_mb": mb(peak),
        "vmhwm_before_daemon_mb": mb(hwm_before),
    });
    figures["goals"] = json!({
        "peak_memory_under_200_mb": memory_goal,
        "ingest_p99_under_250_ms_during_purge": latency_goal,
        "met": memory_goal && latency_goal,
    });
    Ok(figures)
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One background ingest request: when it was scheduled, how long it took
/// from then, and whether it succeeded.
struct Sample {
    scheduled: Instant,
    latency: Duration,
    ok: bool,
}

/// Creates the automation, runs the load and the purge. Returns the figures
/// and the purge's time window.
async fn drive(
    base: &str,
    project: &str,
    args: &RetentionArgs,
) -> anyhow::Result<(Value, (Instant, Instant))> {
    let api = Api::connect(base, Duration::from_secs(120)).await?;
    let automation = api
        .post_within(
            "/v1/project_automation",
            json!({"project_id": project, "name": "retention", "config": {
                "event_type": "retention", "object_type": "project_logs",
                "retention_days": RETENTION_DAYS
            }}),
            Duration::from_secs(60),
        )
        .await?;
    let automation = automation["id"]
        .as_str()
        .context("automation id")?
        .to_owned();

    // The load: one request per tick, each on its own task.
    let insert = format!("/v1/project_logs/{project}/insert");
    let done = Arc::new(AtomicBool::new(false));
    // Stops the load however this function ends.
    let _stop_load = StopOnDrop(done.clone());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<(Sample, u64)>();
    let period = Duration::from_secs_f64(BATCH as f64 / args.ingest_rate as f64);
    let load = {
        let (api, done, in_flight, max_in_flight) = (
            api.clone(),
            done.clone(),
            in_flight.clone(),
            max_in_flight.clone(),
        );
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            let mut requests = tokio::task::JoinSet::new();
            let next = Arc::new(AtomicU64::new(0));
            while !done.load(Ordering::Relaxed) {
                let scheduled = ticks.tick().await.into_std();
                let (api, insert, tx, next, in_flight, max_in_flight) = (
                    api.clone(),
                    insert.clone(),
                    samples_tx.clone(),
                    next.clone(),
                    in_flight.clone(),
                    max_in_flight.clone(),
                );
                requests.spawn(async move {
                    let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                    max_in_flight.fetch_max(now, Ordering::Relaxed);
                    let first = next.fetch_add(BATCH, Ordering::Relaxed);
                    let events: Vec<Value> = (first..first + BATCH).map(live_span).collect();
                    let result = api.post(&insert, json!({ "events": events })).await;
                    let latency = scheduled.elapsed();
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    if let Err(error) = &result {
                        eprintln!("ingest request failed: {error:#}");
                    }
                    let sample = Sample {
                        scheduled,
                        latency,
                        ok: result.is_ok(),
                    };
                    let _ = tx.send((sample, BATCH));
                });
                while requests.try_join_next().is_some() {}
            }
            while requests.join_next().await.is_some() {}
        })
    };

    tokio::time::sleep(WARM_UP).await;
    let baseline_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.baseline_seconds)).await;

    println!("  purging (POST /v1/project_automation/{{id}}/run) while ingesting…");
    let purge_start = Instant::now();
    let run_path = format!("/v1/project_automation/{automation}/run");
    let run = api.post_within(&run_path, json!({}), Duration::from_secs(6 * 3600));
    tokio::pin!(run);
    let mut progress = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(15),
        Duration::from_secs(15),
    );
    let run = loop {
        tokio::select! {
            run = &mut run => break run?,
            _ = progress.tick() => {
                println!(
                    "    … {:.0} s, RSS {:.1} MB, {} ingest requests in flight",
                    purge_start.elapsed().as_secs_f64(),
                    mb(Memory::read().rss),
                    in_flight.load(Ordering::Relaxed)
                );
            }
        }
    };
    let purge_end = Instant::now();
    done.store(true, Ordering::Relaxed);
    load.await?;

    if run["status"] != "succeeded" {
        bail!("the retention run did not succeed: {run}");
    }
    let details = &run["details"];
    let deleted = details["deleted"].as_u64().context("details.deleted")?;
    let batches = details["batches"].as_u64().context("details.batches")?;
    let affected = details["affected"].as_u64().unwrap_or(0);
    let purge_seconds = (purge_end - purge_start).as_secs_f64();
    let rows_per_sec = deleted as f64 / purge_seconds;

    // Classify the ingest requests by when they were scheduled.
    let mut baseline = Vec::new();
    let mut during = Vec::new();
    let mut during_at = Vec::new();
    let (mut total_spans, mut failed) = (0u64, 0u64);
    samples_rx.close();
    while let Some((sample, spans)) = samples_rx.recv().await {
        if !sample.ok {
            failed += 1;
            continue;
        }
        total_spans += spans;
        if sample.scheduled >= baseline_start && sample.scheduled < purge_start {
            baseline.push(sample.latency);
        } else if sample.scheduled >= purge_start && sample.scheduled < purge_end {
            during.push(sample.latency);
            during_at.push((sample.scheduled - purge_start, sample.latency));
        }
    }
    if failed > 0 {
        bail!("RETENTION BENCH FAILED: {failed} ingest requests failed");
    }
    let base = Percentiles::of(&mut baseline);
    let base_max = baseline.last().copied().unwrap_or_default();
    let purge = Percentiles::of(&mut during);
    let purge_max = during.last().copied().unwrap_or_default();
    let slow = during_at
        .iter()
        .filter(|(_, l)| l.as_secs_f64() * 1e3 >= GOAL_P99_MS)
        .count();
    // p99 per tenth of the purge: where ingest suffers, if it does.
    let tenths: Vec<f64> = (0..10)
        .map(|k| {
            let from = purge_seconds * k as f64 / 10.0;
            let to = purge_seconds * (k + 1) as f64 / 10.0;
            let mut part: Vec<Duration> = during_at
                .iter()
                .filter(|(at, _)| (from..to).contains(&at.as_secs_f64()))
                .map(|&(_, l)| l)
                .collect();
            round2(Percentiles::of(&mut part).p99_us / 1e3)
        })
        .collect();
    during_at.sort_by_key(|&(_, l)| std::cmp::Reverse(l));
    let worst: Vec<Value> = during_at
        .iter()
        .take(5)
        .map(|(at, l)| json!({"at_s": round2(at.as_secs_f64()), "ms": ms(*l)}))
        .collect();

    println!(
        "  purge: {deleted} spans deleted in {batches} batches, {purge_seconds:.1} s \
         ({rows_per_sec:.0} rows/s; the run's duration_ms {})",
        run["duration_ms"]
    );
    println!(
        "  ingest before the purge ({} requests): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        base.samples,
        base.p50_us / 1e3,
        base.p99_us / 1e3,
        ms(base_max)
    );
    println!(
        "  ingest during the purge ({} requests, {} spans/s): p50 {:.1} ms  p99 {:.1} ms  \
         max {:.1} ms  ({slow} ≥ {GOAL_P99_MS} ms; at most {} requests in flight)",
        purge.samples,
        (purge.samples as f64 * BATCH as f64 / purge_seconds).round(),
        purge.p50_us / 1e3,
        purge.p99_us / 1e3,
        ms(purge_max),
        max_in_flight.load(Ordering::Relaxed)
    );
    println!("  ingest p99 (ms) per tenth of the purge: {tenths:?}");
    if slow > 0 {
        let worst: Vec<String> = during_at
            .iter()
            .take(5)
            .map(|(at, l)| format!("{:.1} ms at {:.2} s", ms(*l), at.as_secs_f64()))
            .collect();
        println!("  slowest during the purge: {}", worst.join(", "));
    }

    let figures = json!({
        "purge": {
            "deleted": deleted,
            "affected": affected,
            "batches": batches,
            "seconds": round2(purge_seconds),
            "run_duration_ms": run["duration_ms"],
            "rows_per_sec": rows_per_sec.round(),
        },
        "ingest_baseline": {
            "requests": base.samples,
            "p50_ms": round2(base.p50_us / 1e3),
            "p99_ms": round2(base.p99_us / 1e3),
            "max_ms": ms(base_max),
        },
        "ingest_during_purge": {
            "requests": purge.samples,
            "p50_ms": round2(purge.p50_us / 1e3),
            "p99_ms": round2(purge.p99_us / 1e3),
            "max_ms": ms(purge_max),
            "over_250_ms": slow,
            "p99_ms_by_tenth": tenths,
            "slowest": worst,
            "max_in_flight": max_in_flight.load(Ordering::Relaxed),
        },
        "ingest_total_spans": total_spans,
    });
    Ok((figures, (purge_start, purge_end)))
}

fn ms(d: Duration) -> f64 {
    round2(d.as_secs_f64() * 1e3)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
