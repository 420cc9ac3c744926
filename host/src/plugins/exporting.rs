//! Typed calls into export destinations: write one encoded batch, check a
//! destination.
//!
//! The encoded batch goes in as a `payload` resource that lives in the
//! call's resource table: the plugin reads its size (or bytes, if it wants
//! to) and hands the handle back to `object-store.put`, so a 50 MB Parquet
//! file is never copied into the sandbox. The object store is granted per
//! call and confined to the automation's bucket and prefix.

use std::sync::Arc;

use super::sandbox::Grants;
use super::versioned::ExportPre;
use super::{CallReport, LoadedPlugin, PluginRuntime};
use crate::bindings::export::exports::herald::automation::exporting as wit;
use crate::capabilities::object_store::{ObjectStore, Payload};

/// One encoded batch, as the host describes it to an export destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBatch {
    /// The automation's id.
    pub automation_id: String,
    /// The project's id.
    pub project_id: String,
    /// `spans`, `traces` or `query`.
    pub shape: String,
    /// `jsonl` or `parquet`.
    pub format: String,
    /// Rows in the batch.
    pub row_count: u64,
    /// The batch's first ingest sequence number (exclusive lower bound + 1).
    pub first_sequence: u64,
    /// The batch's last ingest sequence number.
    pub last_sequence: u64,
    /// When the batch's first attempt started, Unix milliseconds.
    pub run_started_ms: i64,
}

/// What an export destination wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// The keys of the objects written.
    pub keys: Vec<String>,
    /// Bytes written in total.
    pub bytes: u64,
}

/// One step of a destination check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CheckStep {
    /// `write`, `read`, `delete` (or `config`).
    pub step: String,
    /// Whether it worked.
    pub ok: bool,
    /// What happened, with the store's own error when it did not.
    pub message: String,
}

impl PluginRuntime {
    /// Has export destination `name` write `body` (batch `batch`, encoded)
    /// through `store`.
    pub async fn export_batch(
        &self,
        name: &str,
        config: &serde_json::Value,
        batch: &ExportBatch,
        body: Payload,
        store: Arc<dyn ObjectStore>,
    ) -> CallReport<Written> {
        let json = config.to_string();
        let wit_batch = wit::Batch {
            automation_id: batch.automation_id.clone(),
            project_id: batch.project_id.clone(),
            shape: batch.shape.clone(),
            format: batch.format.clone(),
            row_count: batch.row_count,
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            run_started_ms: batch.run_started_ms,
        };
        let report = self
            .call_world(name, object_store(store), async |store, pre: &ExportPre| {
                let handle = store.data_mut().table.push(body.clone())?;
                pre.export_batch(store, &json, &wit_batch, handle).await
            })
            .await;
        report.map(|answer| match answer {
            Ok(written) => Ok(Written {
                keys: written.keys,
                bytes: written.bytes,
            }),
            Err(e) => Err(e.into()),
        })
    }

    /// Has export destination `name` write, read back and delete a small
    /// test object through `store`.
    pub async fn check_destination(
        &self,
        name: &str,
        config: &serde_json::Value,
        store: Arc<dyn ObjectStore>,
    ) -> CallReport<Vec<CheckStep>> {
        let json = config.to_string();
        let report = self
            .call_world(name, object_store(store), async |store, pre: &ExportPre| {
                pre.check_destination(store, &json).await
            })
            .await;
        report.map(|steps| {
            Ok(steps
                .into_iter()
                .map(|s| CheckStep {
                    step: s.step,
                    ok: s.ok,
                    message: s.message,
                })
                .collect())
        })
    }
}

/// The grants of an export call: the object store, nothing else.
fn object_store(store: Arc<dyn ObjectStore>) -> impl FnOnce(&LoadedPlugin) -> Grants {
    move |_| Grants {
        object_store: Some(store),
        ..Grants::default()
    }
}
