//! The `records` capability: count and delete one project's records by age.
//!
//! The host's [`Records`] backend (the store, confined to the automation's
//! project) does the work in bounded batches; the plugin only decides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::retention::herald::automation::records as wit;

pub use wit::{Affected, ObjectType};

/// Record access for one retention call, confined to one project.
#[async_trait::async_trait]
pub trait Records: Send + Sync {
    /// What is older than `cutoff_ms`.
    async fn count_older_than(
        &self,
        object_type: ObjectType,
        cutoff_ms: i64,
    ) -> Result<Affected, String>;
    /// Deletes at most `max_rows` records older than `cutoff_ms`.
    async fn delete_older_than(
        &self,
        object_type: ObjectType,
        cutoff_ms: i64,
        max_rows: u32,
    ) -> Result<u64, String>;
}

/// The `records` capability's state for one call.
#[derive(Default)]
pub struct RecordsState {
    /// The project's records, when the call was granted them.
    pub records: Option<Arc<dyn Records>>,
    /// Time spent in the backend (not charged to the guest's CPU budget).
    pub host_time: Duration,
}

impl wit::Host for RecordsState {
    async fn count_older_than(
        &mut self,
        object_type: ObjectType,
        cutoff_ms: i64,
    ) -> wasmtime::Result<Result<Affected, String>> {
        let Some(records) = self.records.clone() else {
            return Ok(Err("no records are available to this call".into()));
        };
        let started = Instant::now();
        let result = records.count_older_than(object_type, cutoff_ms).await;
        self.host_time += started.elapsed();
        Ok(result)
    }

    async fn delete_older_than(
        &mut self,
        object_type: ObjectType,
        cutoff_ms: i64,
        max_rows: u32,
    ) -> wasmtime::Result<Result<u64, String>> {
        let Some(records) = self.records.clone() else {
            return Ok(Err("no records are available to this call".into()));
        };
        let started = Instant::now();
        let result = records
            .delete_older_than(object_type, cutoff_ms, max_rows)
            .await;
        self.host_time += started.elapsed();
        Ok(result)
    }
}
