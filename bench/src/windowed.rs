//! `herald-bench alerts --windowed`: many windowed threshold alerts over a
//! large project while it ingests, on SQLite.
//!
//! 1. **Seed.** A child process fills a fresh SQLite file with `--spans`
//!    spans of about 1 KB (the retention bench's seeder), created a day ago:
//!    the project is large, but its last minutes hold only what the load
//!    brings, so an evaluation that reads more than its window shows.
//! 2. **Baseline.** The daemon runs in-process with live ingest of
//!    `--ingest-rate` spans/s (one in twenty an error) and no automation;
//!    this process's CPU time over `--baseline-seconds` is the baseline.
//! 3. **Alerts.** `--automations` windowed alerts are created through the
//!    API: an error rate over a `--window-seconds` window, evaluated every
//!    `--interval-seconds`, with thresholds spread so that some fire (into a
//!    webhook receiver on loopback). Once each has been evaluated, the same
//!    load runs for `--seconds` more.
//! 4. **Figures.** Evaluation lag: every 200 ms the bench reads each
//!    automation's `next_run` and `last_checked` from the database; when
//!    `last_checked` moves, the lag is how long after its due time the
//!    evaluation committed. CPU share: this process's CPU time per second
//!    during the alerts phase minus the baseline's, as a share of one core
//!    (the load generator and receiver are in both phases alike).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Percentiles;
use super::daemon::{Api, InProcessDaemon};
use super::retention::RetentionArgs;
use super::retention::seed::{seed_in_child, sqlite_url};
use herald::config::Overrides;
use herald::store::DbTime;

/// Options of the windowed-alert benchmark (with `alerts --windowed`).
#[derive(Debug, Clone, clap::Args)]
pub struct WindowedArgs {
    /// Run this benchmark instead of the log-alert latency one.
    #[arg(long)]
    pub windowed: bool,
    /// Windowed alerts to create.
    #[arg(long, default_value_t = 1000)]
    pub automations: usize,
    /// Spans seeded in the project (created a day ago).
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: usize,
    /// Live ingest during both phases, spans/s (requests of 50).
    #[arg(long, default_value_t = 200)]
    pub ingest_rate: u64,
    /// Each alert's evaluation interval.
    #[arg(long, default_value_t = 10)]
    pub interval_seconds: u64,
    /// Each alert's window.
    #[arg(long, default_value_t = 300)]
    pub window_seconds: u64,
    /// Seconds of the baseline phase.
    #[arg(long, default_value_t = 20)]
    pub baseline_seconds: u64,
    /// Seconds of the measured phase.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

impl Default for WindowedArgs {
    fn default() -> Self {
        Self {
            windowed: false,
            automations: 1000,
            spans: 1_000_000,
            ingest_rate: 200,
            interval_seconds: 10,
            window_seconds: 300,
            baseline_seconds: 20,
            seconds: 60,
        }
    }
}

/// Spans per live ingest request.
const BATCH: u64 = 50;
/// Goals of the issue.
const GOAL_LAG_P99: Duration = Duration::from_secs(2);
const GOAL_CPU_SHARE: f64 = 0.25;

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / 100.0)
}

/// Runs the benchmark; returns its figures.
pub async fn run(args: WindowedArgs) -> anyhow::Result<Value> {
    if args.automations == 0 || args.interval_seconds == 0 || args.ingest_rate == 0 {
        bail!("--automations, --interval-seconds and --ingest-rate must be positive");
    }
    println!(
        "windowed: {} alerts every {} s over {} s windows, {} seeded spans, {} live spans/s",
        args.automations, args.interval_seconds, args.window_seconds, args.spans, args.ingest_rate
    );
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let database = sqlite_url(&dir.path().join("herald.db"));
    let seed = RetentionArgs {
        spans: args.spans,
        old_fraction: 0.0,
        ..RetentionArgs::default()
    };
    let seeded = seed_in_child(&database, &seed).await?;
    let project = seeded["project_id"]
        .as_str()
        .context("the seeder reported no project id")?
        .to_owned();
    let daemon = InProcessDaemon::start(Overrides {
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some(database.clone()),
        allow_private_networks: Some(true),
        ..Overrides::default()
    })
    .await?;
    let result = drive(&daemon.base, &database, &project, &args).await;
    daemon.stop(Duration::from_secs(30)).await?;
    result
}

async fn drive(
    base: &str,
    database: &str,
    project: &str,
    args: &WindowedArgs,
) -> anyhow::Result<Value> {
    let api = Api::connect(base, Duration::from_secs(60)).await?;
    let hook = receiver().await?;
    let insert = format!("/v1/project_logs/{project}/insert");
    let done = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let load = {
        let (api, insert, done, inserted) =
            (api.clone(), insert.clone(), done.clone(), inserted.clone());
        let period = Duration::from_secs_f64(BATCH as f64 / args.ingest_rate as f64);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                ticks.tick().await;
                let events: Vec<Value> = (0..BATCH).map(|i| live(n + i)).collect();
                api.post(&insert, json!({ "events": events })).await?;
                inserted.fetch_add(BATCH, Ordering::Relaxed);
                n += BATCH;
            }
            Ok::<_, anyhow::Error>(())
        })
    };

    let baseline = Duration::from_secs(args.baseline_seconds);
    let (cpu_before, started) = (cpu_time(), Instant::now());
    tokio::time::sleep(baseline).await;
    let baseline_cpu = (cpu_time() - cpu_before).as_secs_f64() / started.elapsed().as_secs_f64();
    println!(
        "  baseline (ingest, no alerts): {:.1} % of one core",
        baseline_cpu * 100.0
    );

    let created = Instant::now();
    for i in 0..args.automations {
        // Thresholds from 0 to 10 %: the live error rate (5 %) breaches half.
        let threshold = (i % 100) as f64 / 1000.0;
        api.post(
            "/v1/project_automation",
            json!({"project_id": project, "name": format!("error rate {i}"), "config": {
                "event_type": "windowed",
                "window": {"window_seconds": args.window_seconds, "evaluation_delay_seconds": 0,
                           "schedule": {"type": "interval",
                                        "evaluation_interval_seconds": args.interval_seconds}},
                "threshold": {
                    "calculation": {"type": "btql", "btql_query":
                        "SELECT avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate FROM spans",
                        "output": {"type": "scalar", "value_column": "error_rate"}},
                    "policy": {"condition": {"type": "threshold", "operator": "gt", "threshold": threshold},
                               "pending_seconds": 0, "no_data_behavior": "keep_last",
                               "notify_on_recovery": true}},
                "actions": [{"type": "webhook", "url": hook}]
            }}),
        )
        .await?;
    }
    println!(
        "  created {} alerts in {:.1} s",
        args.automations,
        created.elapsed().as_secs_f64()
    );
    let pool = sqlx::SqlitePool::connect(&format!("{database}?mode=ro")).await?;
    let states = || async {
        sqlx::query_as::<_, (String, Option<DbTime>, Option<DbTime>)>(
            "SELECT automation_id, next_run, last_checked FROM automation_state",
        )
        .fetch_all(&pool)
        .await
    };
    let warm = Instant::now();
    while states()
        .await?
        .iter()
        .any(|(_, _, checked)| checked.is_none())
    {
        if warm.elapsed() > Duration::from_secs(120) {
            bail!("not every alert was evaluated within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (cpu_before, started) = (cpu_time(), Instant::now());
    let mut seen: HashMap<String, (Option<DbTime>, Option<DbTime>)> = HashMap::new();
    let mut lags = Vec::new();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        for (id, next_run, checked) in states().await? {
            if let Some((due, before)) = seen.get(&id)
                && checked != *before
                && let (Some(due), Some(checked)) = (due, checked)
            {
                lags.push((checked.0 - due.0).to_std().unwrap_or_default());
            }
            seen.insert(id, (next_run, checked));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu_before).as_secs_f64() / elapsed;
    done.store(true, Ordering::Relaxed);
    load.await??;
    let evaluations = lags.len();
    let lag = Percentiles::of(&mut lags);
    let share = cpu - baseline_cpu;
    let expected = args.automations as f64 * elapsed / args.interval_seconds as f64;
    println!(
        "  evaluations: {evaluations} in {elapsed:.0} s ({:.0}/s; the schedule asks {:.0}/s)",
        evaluations as f64 / elapsed,
        expected / elapsed
    );
    println!("  evaluation lag (committed − due)  {lag}");
    println!(
        "  CPU: {:.1} % of one core with the alerts, {:.1} % without: the alerts take {:.1} %",
        cpu * 100.0,
        baseline_cpu * 100.0,
        share * 100.0
    );
    let lag_met = lag.p99_us < GOAL_LAG_P99.as_secs_f64() * 1e6;
    let cpu_met = share < GOAL_CPU_SHARE;
    println!(
        "  goals: lag p99 < {GOAL_LAG_P99:?}: {}; CPU < {:.0} % of a core: {}",
        if lag_met { "met" } else { "NOT met" },
        GOAL_CPU_SHARE * 100.0,
        if cpu_met { "met" } else { "NOT met" }
    );
    Ok(json!({
        "automations": args.automations,
        "spans": args.spans,
        "ingest_rate": args.ingest_rate,
        "interval_seconds": args.interval_seconds,
        "window_seconds": args.window_seconds,
        "evaluations": evaluations,
        "evaluations_expected": expected.round(),
        "lag": lag,
        "cpu_share_with_alerts": cpu,
        "cpu_share_baseline": baseline_cpu,
        "cpu_share_of_alerts": share,
        "goal_lag_met": lag_met,
        "goal_cpu_met": cpu_met,
    }))
}

/// A receiver that accepts every notification; returns its URL.
async fn receiver() -> anyhow::Result<String> {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// A live span; one in twenty has an error.
fn live(n: u64) -> Value {
    let mut span = json!({
        "input": {"messages": [{"role": "user", "content": format!("Order #{n}: where is my parcel?")}]},
        "output": format!("Your order #{n} is on its way."),
        "metadata": {"model": "gpt-4o"},
        "metrics": {"prompt_tokens": 48 + n % 17, "completion_tokens": 41},
    });
    if n.is_multiple_of(20) {
        span["error"] = json!("upstream timeout");
    }
    span
}
