//! Encoding export batches: JSON Lines and Parquet.
//!
//! Both are produced by the host, once per batch, and handed to the export
//! plugin as a payload handle, so the bytes never cross into the sandbox.
//! A batch is encoded in one go (it is bounded by `batch_size`); Parquet is
//! written in row groups of [`parquet::ROWS_PER_GROUP`] rows so the Arrow
//! arrays alive at once stay small whatever the batch size.
//!
//! The field names are the API's. What each format does with each field is
//! documented in `docs/export.md`.

pub mod jsonl;
pub mod parquet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rows::ExportRows;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// JSON Lines: one JSON object per line, the API's field names.
    Jsonl,
    /// Apache Parquet, zstd-compressed, with the documented schema.
    Parquet,
}

impl ExportFormat {
    /// `jsonl` or `parquet`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Parquet => "parquet",
        }
    }
}

/// The content type an object of `format` is stored with.
pub fn content_type(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Jsonl => "application/x-ndjson",
        ExportFormat::Parquet => "application/vnd.apache.parquet",
    }
}

/// Encodes `rows` of project `project_id` as `format`.
pub fn encode(
    rows: &ExportRows,
    format: ExportFormat,
    project_id: Uuid,
) -> anyhow::Result<Vec<u8>> {
    match format {
        ExportFormat::Jsonl => Ok(jsonl::encode(rows, project_id)),
        ExportFormat::Parquet => parquet::encode(rows, project_id),
    }
}
