//! The sandbox around one plugin call: a fresh `Store` with its own WASI
//! context, memory cap, CPU deadline and capability grants.
//!
//! * **No ambient authority.** The WASI context has no preopened
//!   directories, no environment, no arguments, no sockets and no name
//!   lookup; stdout is discarded and stderr goes to a small in-memory pipe
//!   (it carries a Rust guest's panic message, which ends up in the trap
//!   error and the call's log).
//! * **Memory.** A [`ResourceLimiter`] caps the total linear memory of the
//!   instance and remembers that the cap was hit, so an allocation failure
//!   is reported as [`CallError::MemoryLimitExceeded`] instead of a bare trap.
//! * **CPU.** Epoch interruption checks the deadline every tick. Time the
//!   guest spends waiting on host capabilities (an HTTP request) does not
//!   count: the deadline callback subtracts it, so a slow receiver is
//!   governed by the HTTP timeout and a busy loop by the CPU budget.

use super::error::CallError;
use crate::capabilities::http::{HttpGrant, HttpState};
use crate::capabilities::log::LogState;
use crate::capabilities::object_store::{ObjectStore, ObjectStoreState, ObjectStoreView};
use crate::capabilities::records::{Records, RecordsState};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::{MemoryOutputPipe, SinkOutputStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch advances; the CPU deadline's resolution.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of guest stdout/stderr kept per call.
const STDIO_CAPACITY: usize = 16 * 1024;

/// Per-call limits of one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Total linear memory a call may use, in bytes.
    pub memory_bytes: u64,
    /// CPU time a call may use (time in host capabilities excluded).
    pub cpu_time: Duration,
    /// Wall-clock time a call may take, host calls included.
    pub wall_time: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            cpu_time: Duration::from_secs(2),
            wall_time: Duration::from_secs(60),
        }
    }
}

/// What a call may touch beyond its own memory.
#[derive(Clone, Default)]
pub struct Grants {
    /// Outbound HTTP, for alert destinations.
    pub http: Option<HttpGrant>,
    /// The automation's bucket, for export destinations.
    pub object_store: Option<Arc<dyn ObjectStore>>,
    /// The project's records, for retention policies.
    pub records: Option<Arc<dyn Records>>,
}

/// The data of one call's `Store`.
pub struct CallState {
    pub(crate) plugin: Arc<str>,
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    limiter: CallLimiter,
    /// Each capability's own state, linked by projection.
    pub(crate) log: LogState,
    pub(crate) http: HttpState,
    pub(crate) object_store: ObjectStoreState,
    pub(crate) records: RecordsState,
    started: Instant,
    cpu_budget: Duration,
    deadline_hit: bool,
    stderr: MemoryOutputPipe,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Counts the instance's total linear memory and refuses growth past the cap.
struct CallLimiter {
    limit: usize,
    total: usize,
    peak: usize,
    hit: bool,
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total - current.min(self.total) + desired;
        if total > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Creates the store for one call of `plugin`.
pub(crate) fn new_store(
    engine: &Engine,
    plugin: Arc<str>,
    limits: SandboxLimits,
    grants: Grants,
) -> Store<CallState> {
    // stdout is discarded (plugins log through the log capability); stderr
    // is kept because it carries a Rust guest's panic message.
    let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
    let wasi = WasiCtx::builder()
        .stdout(SinkOutputStream)
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let log = LogState::new(plugin.clone());
    let state = CallState {
        plugin,
        wasi,
        table: ResourceTable::new(),
        limiter: CallLimiter {
            limit: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            total: 0,
            peak: 0,
            hit: false,
        },
        log,
        http: HttpState {
            grant: grants.http,
            ..HttpState::default()
        },
        object_store: ObjectStoreState {
            store: grants.object_store,
            ..ObjectStoreState::default()
        },
        records: RecordsState {
            records: grants.records,
            ..RecordsState::default()
        },
        started: Instant::now(),
        cpu_budget: limits.cpu_time,
        deadline_hit: false,
        stderr,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(ticks(limits.cpu_time));
    store.epoch_deadline_callback(|mut ctx| {
        let state = ctx.data_mut();
        let guest_time = state.started.elapsed().saturating_sub(state.host_time());
        if guest_time >= state.cpu_budget {
            state.deadline_hit = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(ticks(
                state.cpu_budget - guest_time,
            )))
        }
    });
    store
}

fn ticks(duration: Duration) -> u64 {
    (duration.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

impl CallState {
    /// Time spent waiting on the capabilities, which the CPU budget does
    /// not charge to the guest.
    pub(crate) fn host_time(&self) -> Duration {
        self.http.host_time + self.object_store.host_time + self.records.host_time
    }

    /// The `object-store` capability's view of the call.
    pub(crate) fn object_store_view(&mut self) -> ObjectStoreView<'_> {
        ObjectStoreView {
            state: &mut self.object_store,
            table: &mut self.table,
        }
    }

    /// Highest total linear memory seen during the call, in bytes.
    pub(crate) fn peak_memory(&self) -> u64 {
        self.limiter.peak as u64
    }

    /// Moves what the guest wrote to stderr into the call's log lines.
    pub(crate) fn collect_stderr(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.log.push("warn", format!("stderr: {line}"));
        }
        text
    }

    /// Turns a failed guest call into the most specific [`CallError`].
    pub(crate) fn classify(&mut self, error: wasmtime::Error, limits: SandboxLimits) -> CallError {
        let plugin = self.plugin.to_string();
        let stderr = self.collect_stderr();
        if self.deadline_hit {
            return CallError::DeadlineExceeded {
                plugin,
                limit: limits.cpu_time,
            };
        }
        if self.limiter.hit {
            return CallError::MemoryLimitExceeded {
                plugin,
                limit_bytes: limits.memory_bytes,
            };
        }
        if let Some(host) = self.http.denied_host.clone() {
            return CallError::HostNotAllowed { plugin, host };
        }
        let backtrace = error
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(|bt| bt.to_string())
            .filter(|bt| !bt.trim().is_empty());
        let trap = error.downcast_ref::<Trap>().map(|t| t.to_string());
        let mut message = trap.unwrap_or_else(|| format!("{error:#}"));
        if !stderr.is_empty() {
            message = format!("{message}; guest said: {}", last_lines(&stderr, 5));
        }
        CallError::Trap {
            plugin,
            message,
            backtrace,
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
