//! `herald-bench export`: a backlog of spans exported to a real S3 server
//! on loopback, as Parquet and as JSON Lines.
//!
//! 1,000,000 spans of about 1 KB (the retention benchmark's generator, in
//! traces of 8) are seeded by a child process, so the seeding's memory is
//! not this process's, into a SQLite file or, with `--postgres-url`, a
//! scratch schema of that PostgreSQL database (dropped afterwards). Then, for each format, a daemon
//! runs in this process over that database, and the loopback S3 server (`s3s` +
//! `s3s-fs`, SigV4 checked) in another child process; an export automation
//! is created and the clock runs until its cursor reaches the last span.
//!
//! Printed per format: rows/s, MB/s of objects written, MB/s of span JSON
//! exported, objects, and the process's peak resident memory while the
//! export ran (the daemon and this driver). The baseline, measured in the
//! same run after the exports, is reading the same spans from the store in
//! the same batches without encoding or uploading: the ratio says how much
//! of the bare read's speed the whole export keeps. The rows in the bucket are counted
//! (newlines; Parquet footers) and must equal the spans seeded.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::daemon::{Api, InProcessDaemon};
use super::memory::{Memory, RssSampler, mb};
use super::retention::RetentionArgs;
use super::retention::seed::{now_rfc3339, seed_in_child, seed_span, sqlite_url};
use super::scratch_schema::ScratchSchema;
use herald::config::Overrides;
use herald::store::Store;
use herald_testkit::s3_server::LoopbackS3;

/// Options of the export benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Spans to export.
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: usize,
    /// Rows per batch (one object each).
    #[arg(long, default_value_t = 20_000)]
    pub batch_size: u64,
    /// Formats to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "parquet,jsonl")]
    pub formats: Vec<String>,
    /// Export from PostgreSQL instead of SQLite: a scratch schema is made in
    /// this database for the run and dropped afterwards.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Internal: serve S3 from this directory and print the endpoint (the
    /// child process, so the server's memory is not the daemon's).
    #[arg(long, hide = true)]
    pub serve_s3: Option<std::path::PathBuf>,
}

/// The bucket the benchmark writes to.
const BUCKET: &str = "bench";
/// Goals of the issue.
const GOAL_PARQUET_ROWS_PER_SEC: f64 = 100_000.0;
const GOAL_MEMORY_MB: f64 = 300.0;
/// The longest one export may take before the benchmark gives up.
const TIMEOUT: Duration = Duration::from_secs(900);

/// Runs the benchmark, prints human-readable figures, and returns them as
/// JSON.
pub async fn run(args: ExportArgs) -> anyhow::Result<Value> {
    if let Some(root) = &args.serve_s3 {
        return serve_s3(root).await;
    }
    if args.spans == 0 || args.batch_size == 0 {
        bail!("--spans and --batch-size must be positive");
    }
    let span_bytes = serde_json::to_vec(&seed_span(0, 8, &now_rfc3339()))?.len();
    println!(
        "export from {}: {} spans of ~{span_bytes} bytes, batches of {}, formats {}",
        if args.postgres_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.spans,
        args.batch_size,
        args.formats.join(", ")
    );
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let scratch = match &args.postgres_url {
        Some(admin) => Some(ScratchSchema::create(admin).await?),
        None => None,
    };
    let database = match &scratch {
        Some(schema) => schema.url.clone(),
        None => sqlite_url(&dir.path().join("herald.db")),
    };
    let result = measure(dir.path(), &database, &args, span_bytes).await;
    if let Some(schema) = scratch {
        schema.drop_now().await?;
    }
    result
}

/// Seeds `database`, exports it in each format, then reads it bare.
async fn measure(
    dir: &Path,
    database: &str,
    args: &ExportArgs,
    span_bytes: usize,
) -> anyhow::Result<Value> {
    let seed_args = RetentionArgs {
        spans: args.spans,
        old_fraction: 0.0,
        ..RetentionArgs::default()
    };
    let seeded = seed_in_child(database, &seed_args).await?;
    let project = seeded["project_id"]
        .as_str()
        .context("the seeder reported no project id")?
        .to_owned();
    println!(
        "  seeded in {:.1} s",
        seeded["seconds"].as_f64().unwrap_or(0.0)
    );

    let mut figures = json!({
        "database": if args.postgres_url.is_some() { "postgres" } else { "sqlite" },
        "spans": args.spans,
        "span_bytes": span_bytes,
        "batch_size": args.batch_size,
    });
    for format in &args.formats {
        let measured = export_once(dir, database, &project, format, args, span_bytes).await?;
        println!(
            "  {format}: {:.2} s, {:.0} rows/s, {:.1} MB/s written ({:.1} MB/s of span JSON), \
             {} objects, {:.1} MB, peak memory {:.1} MB",
            measured["seconds"].as_f64().unwrap_or(0.0),
            measured["rows_per_sec"].as_f64().unwrap_or(0.0),
            measured["written_mb_per_sec"].as_f64().unwrap_or(0.0),
            measured["span_json_mb_per_sec"].as_f64().unwrap_or(0.0),
            measured["objects"],
            measured["written_mb"].as_f64().unwrap_or(0.0),
            measured["peak_rss_mb"].as_f64().unwrap_or(0.0),
        );
        figures[format] = measured;
    }
    // Last, so its memory does not count in the exports' peaks.
    let baseline = read_baseline(database, &project, args.batch_size).await?;
    let baseline_rate = args.spans as f64 / baseline;
    println!(
        "  baseline: reading the same spans from the store in the same batches, nothing else: \
         {baseline:.2} s, {baseline_rate:.0} rows/s"
    );
    figures["baseline_read_seconds"] = json!(baseline);
    figures["baseline_read_rows_per_sec"] = json!(baseline_rate);
    for format in &args.formats {
        let rate = figures[format]["rows_per_sec"].as_f64().unwrap_or(0.0);
        println!("  {format}: {:.2}x the bare read", rate / baseline_rate);
        figures[format]["ratio_to_baseline_read"] = json!(rate / baseline_rate);
    }
    if let Some(parquet) = figures.get("parquet") {
        let rate = parquet["rows_per_sec"].as_f64().unwrap_or(0.0);
        let peak = parquet["peak_rss_mb"].as_f64().unwrap_or(0.0);
        println!(
            "  goals: Parquet >= {GOAL_PARQUET_ROWS_PER_SEC:.0} rows/s: {} ({rate:.0}); \
             peak memory < {GOAL_MEMORY_MB:.0} MB: {} ({peak:.1} MB)",
            if rate >= GOAL_PARQUET_ROWS_PER_SEC {
                "met"
            } else {
                "MISSED"
            },
            if peak < GOAL_MEMORY_MB {
                "met"
            } else {
                "MISSED"
            },
        );
    }
    Ok(figures)
}

/// Seconds to read every span of `project` in batches, as an export does,
/// with nothing else.
async fn read_baseline(database: &str, project: &str, batch_size: u64) -> anyhow::Result<f64> {
    let store = Store::connect(database).await?;
    let project: uuid::Uuid = project.parse()?;
    let started = Instant::now();
    let mut cursor = 0;
    while let Some(bounds) = store.next_export_batch(project, cursor, batch_size).await? {
        let rows = store
            .export_spans(project, cursor, bounds.upto, None)
            .await?;
        std::hint::black_box(rows);
        cursor = bounds.upto;
    }
    let seconds = started.elapsed().as_secs_f64();
    store.close().await;
    Ok(seconds)
}

/// Exports the whole project once as `format`; returns its figures.
async fn export_once(
    dir: &Path,
    database: &str,
    project: &str,
    format: &str,
    args: &ExportArgs,
    span_bytes: usize,
) -> anyhow::Result<Value> {
    let objects_root = dir.join(format!("s3-{format}"));
    std::fs::create_dir_all(&objects_root)?;
    let (mut s3, endpoint) = start_s3_child(&objects_root).await?;
    let daemon = InProcessDaemon::start(Overrides {
        data_dir: Some(dir.to_path_buf()),
        database_url: Some(database.to_owned()),
        ..Overrides::default()
    })
    .await?;
    let api = Api::connect(&daemon.base, Duration::from_secs(60)).await?;
    let store = Store::connect(database).await?;
    let last = store.current_xact_id().await?;
    store.close().await;

    let mut config = LoopbackS3::destination_at(&endpoint);
    config["event_type"] = "btql_export".into();
    config["export_definition"] = json!({"type": "log_spans"});
    config["export_path"] = format!("s3://{BUCKET}/{format}").into();
    config["format"] = format.into();
    config["interval_seconds"] = 3600.into();
    config["batch_size"] = args.batch_size.into();

    let hwm_before = Memory::read().hwm;
    let sampler = RssSampler::start();
    let started = Instant::now();
    let created = api
        .post(
            "/v1/project_automation",
            json!({"project_id": project, "name": format!("bench {format}"), "config": config}),
        )
        .await?;
    let id = created["id"]
        .as_str()
        .context("no automation id")?
        .to_owned();
    let mut last_report = Instant::now();
    loop {
        let status = api
            .get(&format!("/v1/project_automation/{id}/status"))
            .await?;
        if status["watermark"].as_i64() == Some(last) {
            break;
        }
        if let Some(error) = status["last_run"]["error"].as_str() {
            bail!("the export failed: {error}");
        }
        if started.elapsed() > TIMEOUT {
            bail!(
                "the export did not finish within {} s: {status}",
                TIMEOUT.as_secs()
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!("    … cursor {} of {last}", status["watermark"]);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let samples = sampler.finish();
    daemon.stop(Duration::from_secs(30)).await?;
    let peak_rss = samples.iter().map(|(_, m)| m.rss).max().unwrap_or(0);

    let (objects, bytes, rows) = count_rows(&objects_root.join(BUCKET), format)?;
    let _ = s3.kill();
    let _ = s3.wait();
    std::fs::remove_dir_all(&objects_root).ok();
    if rows != args.spans as u64 {
        bail!(
            "EXPORT BENCH FAILED: the bucket holds {rows} {format} rows, expected {}",
            args.spans
        );
    }
    let written_mb = bytes as f64 / 1e6;
    Ok(json!({
        "seconds": seconds,
        "rows": rows,
        "rows_per_sec": args.spans as f64 / seconds,
        "objects": objects,
        "written_mb": written_mb,
        "written_mb_per_sec": written_mb / seconds,
        "span_json_mb_per_sec": (args.spans * span_bytes) as f64 / 1e6 / seconds,
        "peak_rss_mb": mb(peak_rss),
        "hwm_before_mb": mb(hwm_before),
        "rss_samples": samples.len(),
    }))
}

/// The child process: serves S3 from `root` with the bucket created,
/// prints `{"endpoint": …}` and runs until killed.
async fn serve_s3(root: &Path) -> anyhow::Result<Value> {
    let s3 = LoopbackS3::start(root).await?;
    s3.create_bucket(BUCKET).await?;
    println!("{}", json!({"endpoint": s3.endpoint}));
    std::future::pending::<()>().await;
    unreachable!("the S3 child runs until killed")
}

/// Starts the S3 child over `root`; returns it and its endpoint.
async fn start_s3_child(root: &Path) -> anyhow::Result<(std::process::Child, String)> {
    let exe = std::env::current_exe().context("locating herald-bench")?;
    let mut child = std::process::Command::new(exe)
        .arg("export")
        .arg("--serve-s3")
        .arg(root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting the S3 server process")?;
    let stdout = child.stdout.take().context("the S3 child's stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await??;
    let endpoint = serde_json::from_str::<Value>(&line)
        .ok()
        .and_then(|v| v["endpoint"].as_str().map(str::to_owned))
        .with_context(|| format!("the S3 child said {line:?}"))?;
    Ok((child, endpoint))
}

/// Objects, bytes and rows under `dir` (the bucket's directory).
fn count_rows(dir: &Path, format: &str) -> anyhow::Result<(u64, u64, u64)> {
    let (mut objects, mut bytes, mut rows) = (0, 0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if extension != format {
                continue;
            }
            objects += 1;
            bytes += std::fs::metadata(&path)?.len();
            rows += if format == "jsonl" {
                let text = std::fs::read(&path)?;
                text.iter().filter(|&&b| b == b'\n').count() as u64
            } else {
                use parquet::file::reader::{FileReader, SerializedFileReader};
                let reader = SerializedFileReader::new(std::fs::File::open(&path)?)?;
                reader.metadata().file_metadata().num_rows() as u64
            };
        }
    }
    Ok((objects, bytes, rows))
}
