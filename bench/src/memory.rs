//! This process's memory, read from `/proc/self/status`, and a sampler
//! that records the resident size while a benchmark's work runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How often memory is sampled.
pub(crate) const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// This process's memory, in kB, from `/proc/self/status`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss: u64,
    /// `VmHWM`: the peak of `VmRSS` so far.
    pub(crate) hwm: u64,
    /// `RssAnon`: the heap and stacks.
    pub(crate) anon: u64,
    /// `RssFile`: mapped files (the binary, libraries).
    pub(crate) file: u64,
    /// `RssShmem`: shared memory (SQLite's WAL index is a shared mapping).
    pub(crate) shmem: u64,
}

impl Memory {
    pub(crate) fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
            shmem: field("RssShmem:"),
        }
    }
}

pub(crate) fn mb(kb: u64) -> f64 {
    (kb as f64 / 1024.0 * 10.0).round() / 10.0
}

/// Samples `VmRSS` every [`SAMPLE_EVERY`] on its own thread (so a busy
/// runtime cannot starve it) until dropped.
pub(crate) struct RssSampler {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) thread: Option<std::thread::JoinHandle<Vec<(Instant, Memory)>>>,
}

impl RssSampler {
    pub(crate) fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                samples.push((Instant::now(), Memory::read()));
                std::thread::sleep(SAMPLE_EVERY);
            }
            samples
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn finish(mut self) -> Vec<(Instant, Memory)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
