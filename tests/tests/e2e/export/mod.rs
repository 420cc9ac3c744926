//! S3 export end to end (`docs/export.md` is the contract), against a real
//! S3 server on loopback that checks SigV4 signatures
//! (`herald_testkit::s3_server`).
//!
//! * [`scheduled`]: the real daemon drains a backlog batch after batch,
//!   with deterministic keys, and starts the next run at once;
//! * [`crash`]: a daemon killed between writing an object and committing
//!   the cursor (a fault-injection point) leaves every row exactly once;
//! * [`destination`]: the test endpoint on a good bucket, a missing bucket
//!   and a wrong secret; secrets redacted; the path immutable;
//! * [`hostile`]: a custom query past its caps fails with the cap named,
//!   in bounded memory, and ends paused, across a restart.
//!
//! The shapes (spans, traces, custom query) in both formats, incremental
//! runs and reset are tested on both backends in `storage::export`. This
//! module holds what both use to read objects back.

mod crash;
mod destination;
mod hostile;
mod scheduled;

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value, json};

/// The bucket the tests export to.
pub const BUCKET: &str = "exports";

/// The JSON-text columns of the Parquet schema.
const JSON_TEXT: [&str; 7] = [
    "input",
    "output",
    "expected",
    "error",
    "metadata",
    "span_attributes",
    "context",
];

/// An export config to the loopback server `destination` (its
/// `LoopbackS3::destination()`), exporting `definition` as `format`.
pub fn export_config(
    destination: &Value,
    definition: Value,
    format: &str,
    batch_size: u64,
) -> Value {
    let mut config = json!({
        "event_type": "btql_export",
        "export_definition": definition,
        "export_path": format!("s3://{BUCKET}/herald/{format}"),
        "format": format,
        "interval_seconds": 3600,
        "batch_size": batch_size,
    });
    for (k, v) in destination.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// The rows of one object, JSON Lines or Parquet (by the key's extension),
/// as JSON objects in a canonical form (see [`canonical`]).
pub fn rows_of(key: &str, bytes: &[u8]) -> Vec<Value> {
    if key.ends_with(".jsonl") {
        let text = std::str::from_utf8(bytes).expect("JSON Lines are UTF-8");
        assert!(
            text.ends_with('\n'),
            "{key}: every line ends with a newline"
        );
        text.lines()
            .map(|line| canonical(serde_json::from_str(line).expect("each line is JSON")))
            .collect()
    } else {
        assert!(key.ends_with(".parquet"), "unexpected key {key}");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
            .expect("a Parquet file")
            .build()
            .expect("a Parquet reader");
        reader
            .flat_map(|batch| parquet_rows(&batch.expect("a record batch")))
            .map(canonical)
            .collect()
    }
}

fn parquet_rows(batch: &RecordBatch) -> Vec<Value> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            let mut object = Map::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let value = if column.is_null(row) {
                    Value::Null
                } else {
                    cell(field.name(), column.as_ref(), row)
                };
                object.insert(field.name().clone(), value);
            }
            Value::Object(object)
        })
        .collect()
}

fn cell(name: &str, column: &dyn Array, row: usize) -> Value {
    match column.data_type() {
        DataType::Utf8 => {
            let text = column.as_string::<i32>().value(row);
            if JSON_TEXT.contains(&name) {
                serde_json::from_str(text).expect("JSON text columns hold JSON")
            } else {
                Value::from(text)
            }
        }
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).into(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row).into(),
        DataType::Boolean => column.as_boolean().value(row).into(),
        DataType::Timestamp(_, _) => {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(row);
            chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .to_rfc3339()
                .into()
        }
        DataType::List(_) => {
            let list = column.as_list::<i32>().value(row);
            let items = list.as_string::<i32>();
            (0..items.len())
                .map(|i| Value::from(items.value(i)))
                .collect()
        }
        DataType::Map(_, _) => {
            let entries = column.as_map().value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_primitive::<Float64Type>();
            let map: Map<String, Value> = (0..keys.len())
                .map(|i| (keys.value(i).to_string(), values.value(i).into()))
                .collect();
            Value::Object(map)
        }
        other => panic!("unexpected Parquet column type {other} for {name}"),
    }
}

/// One form for a row whatever its format: `_xact_id` as a string,
/// `created` as RFC 3339, `scores` and `metrics` with float values.
pub fn canonical(mut row: Value) -> Value {
    if let Some(xact) = row.get("_xact_id").and_then(Value::as_i64) {
        row["_xact_id"] = xact.to_string().into();
    }
    if let Some(created) = row.get("created").and_then(Value::as_str) {
        let parsed = chrono::DateTime::parse_from_rfc3339(created)
            .unwrap_or_else(|e| panic!("created {created:?}: {e}"));
        row["created"] = parsed.with_timezone(&chrono::Utc).to_rfc3339().into();
    }
    for field in ["scores", "metrics"] {
        if let Some(map) = row.get_mut(field).and_then(Value::as_object_mut) {
            for value in map.values_mut() {
                if let Some(n) = value.as_f64() {
                    *value = n.into();
                }
            }
        }
    }
    row
}

/// Every row of every object, by the row's `id`, asserting that no id
/// appears twice.
pub fn rows_by_id(objects: &[(String, Vec<u8>)]) -> BTreeMap<String, Value> {
    let mut rows = BTreeMap::new();
    for (key, bytes) in objects {
        for row in rows_of(key, bytes) {
            let id = row["id"].as_str().expect("rows have ids").to_string();
            assert!(
                rows.insert(id.clone(), row).is_none(),
                "row {id} is in the bucket twice"
            );
        }
    }
    rows
}

/// `n` spans in traces of three (a root and two children) with inputs,
/// scores, token metrics and tags; `tag` makes their ids unique.
pub fn spans(tag: &str, traces: usize) -> Value {
    let mut events = Vec::new();
    for t in 0..traces {
        let root = format!("{tag}-t{t}");
        events.push(json!({
            "id": root, "span_id": root, "root_span_id": root,
            "input": {"question": format!("q{t}"), "nested": [1, {"x": "y"}]},
            "output": "an answer with \"quotes\" and a\nnewline",
            "scores": {"accuracy": 1, "relevance": 0.5},
            "metrics": {"start": 100.0, "end": 103.5, "prompt_tokens": 10, "completion_tokens": 5},
            "metadata": {"model": "gpt-x", "n": t},
            "tags": ["prod", "exported"],
        }));
        for c in 0..2 {
            let id = format!("{tag}-t{t}-c{c}");
            events.push(json!({
                "id": id, "span_id": id, "root_span_id": root, "span_parents": [root],
                "input": {"step": c},
                "scores": {"accuracy": 0.5},
                "metrics": {"start": 101.0 + c as f64, "end": 102.0 + c as f64,
                            "prompt_tokens": 3, "completion_tokens": 1, "estimated_cost": 0.25},
            }));
        }
    }
    Value::Array(events)
}
