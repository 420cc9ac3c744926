//! Benchmarks behind `herald-bench`: each subcommand measures one path with
//! real parts on loopback, prints human-readable figures (with ratios to a
//! baseline measured in the same run) and returns them as one JSON object,
//! which the binary prints as the last line.

pub mod alerts;
pub mod daemon;
pub mod export;
pub mod ingest;
mod ingest_load;
mod ingest_otlp;
mod memory;
pub mod plugins;
pub mod retention;
pub mod scratch_schema;
pub mod windowed;

use std::time::Duration;

/// Latency percentiles of a sample, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Sample size.
    pub samples: usize,
}

impl Percentiles {
    /// Computes the percentiles of `samples` (sorted in place).
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        let total: f64 = samples.iter().map(|d| d.as_secs_f64() * 1e6).sum();
        Self {
            p50_us: at(0.50),
            p99_us: at(0.99),
            mean_us: if samples.is_empty() {
                0.0
            } else {
                total / samples.len() as f64
            },
            samples: samples.len(),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:>9.1} µs   p99 {:>9.1} µs   mean {:>9.1} µs   (n={})",
            self.p50_us, self.p99_us, self.mean_us, self.samples
        )
    }
}
