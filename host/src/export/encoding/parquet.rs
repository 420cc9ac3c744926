//! Parquet: typed columns for what has a type, JSON text for the rest,
//! zstd-compressed.
//!
//! Spans (`log_spans`):
//!
//! | column | type | |
//! |---|---|---|
//! | `id`, `project_id`, `log_id`, `span_id`, `root_span_id` | string | |
//! | `_xact_id` | int64 | the API shows it as a string |
//! | `created` | timestamp (µs, UTC) | |
//! | `is_root` | boolean | spans only |
//! | `span_parents`, `tags` | list of string | |
//! | `scores`, `metrics` | map string → float64 | non-numeric entries dropped |
//! | `input`, `output`, `expected`, `error`, `metadata`, `span_attributes`, `context` | string | JSON text |
//!
//! Traces (`log_traces`) have the same columns without `is_root` and
//! `span_parents`, plus `span_count` (int64) and `duration` (float64,
//! seconds); their `scores` and `metrics` are the trace's aggregates.
//!
//! Query results get one column per query column, typed from its values:
//! int64 when all are integers, float64 when all are numbers, boolean,
//! string, and JSON text for objects, arrays and mixed columns.
//!
//! Rows are written in row groups of [`ROWS_PER_GROUP`], each built and
//! dropped before the next, so the Arrow arrays in memory stay bounded.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde_json::Value;
use uuid::Uuid;

use crate::event_fields::JsonField;
use crate::export::rows::{ExportRows, QueryRows, SpanRecord, TraceRecord, numeric_map};
use crate::store::JSON_FIELDS;

/// The span fields stored as JSON text, as indexes into
/// [`JSON_FIELDS`]: all but the ones with typed columns.
fn text_fields() -> impl Iterator<Item = usize> {
    let typed = [
        JsonField::SpanParents,
        JsonField::Scores,
        JsonField::Metrics,
        JsonField::Tags,
    ];
    (0..JSON_FIELDS.len()).filter(move |i| !typed.iter().any(|field| field.index() == *i))
}

/// Rows per row group (and per Arrow record batch built at once).
pub const ROWS_PER_GROUP: usize = 8_192;

/// The zstd level: 1 is several times faster than the default 3 for a few
/// percent more bytes, the right trade for a continuous export.
const ZSTD_LEVEL: i32 = 1;

/// Encodes `rows` as one Parquet file.
pub fn encode(rows: &ExportRows, project_id: Uuid) -> anyhow::Result<Vec<u8>> {
    let project = project_id.to_string();
    let batches: Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + '_> = match rows {
        ExportRows::Spans(spans) => Box::new(
            spans
                .chunks(ROWS_PER_GROUP)
                .map(|chunk| log_batch(chunk.iter().map(LogRow::Span), &project)),
        ),
        ExportRows::Traces(traces) => Box::new(
            traces
                .chunks(ROWS_PER_GROUP)
                .map(|chunk| log_batch(chunk.iter().map(LogRow::Trace), &project)),
        ),
        ExportRows::Query(query) => Box::new(query_batches(query).into_iter()),
    };
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        // JSON text rarely repeats: dictionaries would cost time for nothing.
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("project_id"), true)
        .set_column_dictionary_enabled(ColumnPath::from("log_id"), true)
        .set_max_row_group_size(ROWS_PER_GROUP);
    // Min/max of kilobytes of JSON text help no reader and cost a
    // comparison per value.
    for field in text_fields() {
        properties = properties.set_column_statistics_enabled(
            ColumnPath::from(JSON_FIELDS[field]),
            EnabledStatistics::None,
        );
    }
    let properties = properties.build();
    let mut writer: Option<ArrowWriter<Vec<u8>>> = None;
    for batch in batches {
        let batch = batch?;
        let writer = match &mut writer {
            Some(writer) => writer,
            None => writer.insert(
                ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties.clone()))
                    .context("starting the Parquet file")?,
            ),
        };
        writer
            .write(&batch)
            .context("writing a Parquet row group")?;
    }
    // No rows: still a valid file, with no columns.
    let writer = match writer {
        Some(writer) => writer,
        None => ArrowWriter::try_new(Vec::new(), Arc::new(Schema::empty()), Some(properties))?,
    };
    writer.into_inner().context("finishing the Parquet file")
}

enum LogRow<'a> {
    Span(&'a SpanRecord),
    Trace(&'a TraceRecord),
}

fn string_list(builder: &mut ListBuilder<StringBuilder>, text: Option<&str>) {
    let items = text.and_then(|t| serde_json::from_str::<Vec<Value>>(t).ok());
    match items {
        Some(items) => {
            for item in items {
                match item {
                    Value::String(s) => builder.values().append_value(s),
                    other => builder.values().append_value(other.to_string()),
                }
            }
            builder.append(true);
        }
        None => builder.append_null(),
    }
}

fn number_map(
    builder: &mut MapBuilder<StringBuilder, Float64Builder>,
    map: &BTreeMap<String, f64>,
    present: bool,
) -> anyhow::Result<()> {
    for (k, v) in map {
        builder.keys().append_value(k);
        builder.values().append_value(*v);
    }
    builder.append(present)?;
    Ok(())
}

/// One record batch of spans or traces.
fn log_batch<'a>(
    rows: impl Iterator<Item = LogRow<'a>>,
    project: &str,
) -> anyhow::Result<RecordBatch> {
    let mut id = StringBuilder::new();
    let mut xact = Int64Builder::new();
    let mut created = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut project_id = StringBuilder::new();
    let mut log_id = StringBuilder::new();
    let mut span_id = StringBuilder::new();
    let mut root_span_id = StringBuilder::new();
    let mut is_root = BooleanBuilder::new();
    let mut span_parents = ListBuilder::new(StringBuilder::new());
    let mut span_count = Int64Builder::new();
    let mut duration = Float64Builder::new();
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut scores = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
    let mut metrics = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
    // input, output, expected, error, metadata, span_attributes, context
    let text_fields: Vec<usize> = text_fields().collect();
    let mut texts: Vec<StringBuilder> = text_fields.iter().map(|_| StringBuilder::new()).collect();
    let mut traces = false;
    for row in rows {
        let (span, xact_id) = match &row {
            LogRow::Span(span) => (*span, span.xact_id),
            LogRow::Trace(trace) => (&trace.root, trace.xact_id),
        };
        id.append_value(&span.id);
        xact.append_value(xact_id);
        created.append_value(span.created.timestamp_micros());
        project_id.append_value(project);
        log_id.append_value("g");
        span_id.append_value(&span.span_id);
        root_span_id.append_value(&span.root_span_id);
        string_list(&mut tags, span.json[JsonField::Tags.index()].as_deref());
        for (builder, &field) in texts.iter_mut().zip(&text_fields) {
            builder.append_option(span.json[field].as_deref());
        }
        match row {
            LogRow::Span(span) => {
                is_root.append_value(span.is_root);
                string_list(
                    &mut span_parents,
                    span.json[JsonField::SpanParents.index()].as_deref(),
                );
                let own_scores = span.json[JsonField::Scores.index()].as_deref();
                number_map(&mut scores, &numeric_map(own_scores), own_scores.is_some())?;
                let own_metrics = span.json[JsonField::Metrics.index()].as_deref();
                number_map(
                    &mut metrics,
                    &numeric_map(own_metrics),
                    own_metrics.is_some(),
                )?;
            }
            LogRow::Trace(trace) => {
                traces = true;
                span_count.append_value(trace.span_count);
                duration.append_option(trace.duration);
                number_map(&mut scores, &trace.scores, true)?;
                number_map(&mut metrics, &trace.metrics, true)?;
            }
        }
    }
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(id.finish())),
        ("_xact_id", Arc::new(xact.finish())),
        ("created", Arc::new(created.finish())),
        ("project_id", Arc::new(project_id.finish())),
        ("log_id", Arc::new(log_id.finish())),
        ("span_id", Arc::new(span_id.finish())),
        ("root_span_id", Arc::new(root_span_id.finish())),
    ];
    if traces {
        columns.push(("span_count", Arc::new(span_count.finish())));
        columns.push(("duration", Arc::new(duration.finish())));
    } else {
        columns.push(("is_root", Arc::new(is_root.finish())));
        columns.push(("span_parents", Arc::new(span_parents.finish())));
    }
    for (mut builder, &field) in texts.into_iter().zip(&text_fields) {
        columns.push((JSON_FIELDS[field], Arc::new(builder.finish())));
    }
    columns.push(("scores", Arc::new(scores.finish())));
    columns.push(("metrics", Arc::new(metrics.finish())));
    columns.push(("tags", Arc::new(tags.finish())));
    record_batch(columns)
}

fn record_batch(columns: Vec<(&str, ArrayRef)>) -> anyhow::Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .context("assembling a Parquet row group")
}

/// The Parquet type of a query column, from all its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Int,
    Float,
    Bool,
    Text,
    Json,
}

fn column_kind<'a>(values: impl Iterator<Item = &'a Value>) -> ColumnKind {
    let mut kind: Option<ColumnKind> = None;
    for value in values {
        let this = match value {
            Value::Null => continue,
            Value::Number(n) if n.is_i64() => ColumnKind::Int,
            Value::Number(_) => ColumnKind::Float,
            Value::Bool(_) => ColumnKind::Bool,
            Value::String(_) => ColumnKind::Text,
            Value::Array(_) | Value::Object(_) => ColumnKind::Json,
        };
        kind = Some(match (kind, this) {
            (None, this) => this,
            (Some(a), b) if a == b => a,
            (Some(ColumnKind::Int), ColumnKind::Float)
            | (Some(ColumnKind::Float), ColumnKind::Int) => ColumnKind::Float,
            _ => ColumnKind::Json,
        });
    }
    kind.unwrap_or(ColumnKind::Text)
}

fn query_batches(query: &QueryRows) -> Vec<anyhow::Result<RecordBatch>> {
    let kinds: Vec<ColumnKind> = (0..query.columns.len())
        .map(|i| column_kind(query.rows.iter().map(|row| &row[i])))
        .collect();
    query
        .rows
        .chunks(ROWS_PER_GROUP)
        .map(|chunk| {
            let columns = query
                .columns
                .iter()
                .zip(&kinds)
                .enumerate()
                .map(|(i, (name, kind))| (name.as_str(), query_column(chunk, i, *kind)))
                .collect();
            record_batch(columns)
        })
        .collect()
}

fn query_column(rows: &[Vec<Value>], i: usize, kind: ColumnKind) -> ArrayRef {
    let values = rows.iter().map(|row| &row[i]);
    match kind {
        ColumnKind::Int => Arc::new(
            values
                .map(Value::as_i64)
                .collect::<arrow_array::Int64Array>(),
        ),
        ColumnKind::Float => Arc::new(
            values
                .map(Value::as_f64)
                .collect::<arrow_array::Float64Array>(),
        ),
        ColumnKind::Bool => Arc::new(
            values
                .map(Value::as_bool)
                .collect::<arrow_array::BooleanArray>(),
        ),
        ColumnKind::Text | ColumnKind::Json => Arc::new(
            values
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<arrow_array::StringArray>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_fields::JSON_FIELD_COUNT;
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn read(bytes: Vec<u8>) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn spans_round_trip_through_the_arrow_reader() {
        let spans: Vec<SpanRecord> = (0..20_000)
            .map(|i| {
                let mut json: [Option<String>; JSON_FIELD_COUNT] = Default::default();
                json[1] = Some(format!(r#"{{"n":{i}}}"#));
                json[JsonField::Scores.index()] = Some(r#"{"acc":0.5,"label":"x"}"#.into());
                json[JsonField::Tags.index()] = Some(r#"["a","b"]"#.into());
                SpanRecord {
                    id: format!("row-{i}"),
                    xact_id: i,
                    created: chrono::DateTime::from_timestamp(1_700_000_000 + i, 0).unwrap(),
                    span_id: format!("s{i}"),
                    root_span_id: "r".into(),
                    is_root: i == 0,
                    json,
                }
            })
            .collect();
        let bytes = encode(&ExportRows::Spans(spans), Uuid::new_v4()).unwrap();
        let batches = read(bytes);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 20_000);
        let last = batches.last().unwrap();
        let schema = last.schema();
        let input = last
            .column(schema.index_of("input").unwrap())
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(input.value(input.len() - 1), r#"{"n":19999}"#);
        let scores = last
            .column(schema.index_of("scores").unwrap())
            .as_any()
            .downcast_ref::<arrow_array::MapArray>()
            .unwrap();
        assert_eq!(scores.value(0).len(), 1, "the non-numeric score is dropped");
    }

    #[test]
    fn query_columns_get_types_from_their_values() {
        let query = QueryRows {
            columns: vec!["n".into(), "x".into(), "doc".into()],
            rows: vec![
                vec![1.into(), 1.into(), serde_json::json!({"a": 1})],
                vec![2.into(), 1.5.into(), Value::Null],
            ],
        };
        let batches = read(encode(&ExportRows::Query(query), Uuid::new_v4()).unwrap());
        let schema = batches[0].schema();
        assert_eq!(schema.field(0).data_type(), &arrow_schema::DataType::Int64);
        assert_eq!(
            schema.field(1).data_type(),
            &arrow_schema::DataType::Float64
        );
        assert_eq!(schema.field(2).data_type(), &arrow_schema::DataType::Utf8);
    }
}
