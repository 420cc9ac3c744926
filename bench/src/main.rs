//! `herald-bench`: Herald's benchmark commands. Each prints human-readable
//! figures and ends with one JSON line holding all of them.
//!
//! Run them in release mode: `cargo run --release -p herald-bench --
//! plugins`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Herald benchmarks.
#[derive(Debug, Parser)]
#[command(name = "herald-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-call cost of the plugin host: no-op and webhook plugins vs native reqwest.
    Plugins(herald_bench::plugins::PluginsArgs),
    /// Span ingest over HTTP into SQLite (and PostgreSQL when configured).
    Ingest(herald_bench::ingest::IngestArgs),
    /// Alert latency (ingest of a matching span → webhook received) under background load; with `--windowed`, 1,000 windowed alerts over a large project: evaluation lag and CPU share.
    Alerts(herald_bench::alerts::AlertsArgs),
    /// Retention purge of 2M of 4M spans on SQLite while ingest goes on: rows/s, memory, ingest p99.
    Retention(herald_bench::retention::RetentionArgs),
    /// Export of 1M spans of ~1 KB to a loopback S3 server as Parquet and JSON Lines: rows/s, MB/s, memory.
    Export(herald_bench::export::ExportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugins(args) => herald_bench::plugins::run(args).await,
            Command::Ingest(args) => herald_bench::ingest::run(args).await,
            Command::Alerts(args) => herald_bench::alerts::run(args).await,
            Command::Retention(args) => herald_bench::retention::run(args).await,
            Command::Export(args) => herald_bench::export::run(args).await,
        }
    });
    match result {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
