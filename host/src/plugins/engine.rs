//! The one Wasmtime [`Engine`] of the daemon and the thread that drives its
//! epoch.
//!
//! Configuration choices, and why:
//! * **Pooling allocator**: instance slots, memories and stacks are reserved
//!   once, so a call's instantiation is a few page-table operations rather
//!   than `mmap`s: that is what keeps per-call cost in microseconds.
//! * **Copy-on-write memory images**: a fresh instance maps the component's
//!   initialized memory instead of copying it.
//! * **Epoch interruption** rather than fuel: almost free in generated code,
//!   checked every [`EPOCH_TICK`](super::sandbox::EPOCH_TICK).
//! * **Async**: host capabilities (HTTP, S3) are async, so a guest waiting
//!   on the network does not hold a runtime thread.
//!
//! The pool bounds concurrency: [`PoolSize::concurrent_calls`] calls at once;
//! the runtime queues callers beyond that on a semaphore.

use super::sandbox::EPOCH_TICK;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Size of the instance pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    /// How many plugin calls can run at the same time.
    pub concurrent_calls: u32,
    /// Largest linear memory one instance may have, in bytes (the per-plugin
    /// memory limit is enforced below this).
    pub max_memory_bytes: u64,
}

impl Default for PoolSize {
    fn default() -> Self {
        Self {
            concurrent_calls: 64,
            max_memory_bytes: 512 << 20,
        }
    }
}

/// Builds the engine.
pub fn build_engine(pool: PoolSize) -> anyhow::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::new();
    let calls = pool.concurrent_calls.max(1);
    // Components made by other toolchains (componentize-py, jco) carry
    // several core instances, memories and tables each.
    pooling
        .total_component_instances(calls)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .total_core_instances(calls * 16)
        .total_memories(calls * 4)
        .total_tables(calls * 8)
        .total_stacks(calls)
        .table_elements(100_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .max_memory_size(usize::try_from(pool.max_memory_bytes).unwrap_or(usize::MAX))
        .max_unused_warm_slots(calls.min(16))
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// Advances the engine's epoch every tick until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("herald-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
