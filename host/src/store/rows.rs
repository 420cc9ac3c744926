//! The rows an export batch carries, as read from the store and before
//! encoding.
//!
//! Spans keep their JSON fields as the JSON *text* the database holds: the
//! JSON Lines encoder copies that text straight into its output and the
//! Parquet encoder stores it in string columns, so a span is never parsed
//! into a tree and serialised back. Only `scores`, `metrics`, `tags` and
//! `span_parents`, which Parquet stores as typed columns, are parsed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event_fields::{JSON_FIELD_COUNT, JsonField};

/// One span of the project's logs.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The row id.
    pub id: String,
    /// The ingest sequence number of this version of the row.
    pub xact_id: i64,
    /// When it happened.
    pub created: DateTime<Utc>,
    /// The span id.
    pub span_id: String,
    /// The trace's root span id.
    pub root_span_id: String,
    /// Whether it is the trace's root.
    pub is_root: bool,
    /// The JSON fields as JSON text, `None` when null; indexed by
    /// [`JsonField::index`].
    pub json: [Option<String>; JSON_FIELD_COUNT],
}

/// One trace: its root span with figures aggregated over all its spans.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// The root span (its own `scores` and `metrics` are superseded by the
    /// aggregates below).
    pub root: SpanRecord,
    /// The highest sequence number among the trace's spans in the batch's
    /// range: the version of the trace this row describes.
    pub xact_id: i64,
    /// How many spans the trace has.
    pub span_count: i64,
    /// Each score's mean over the spans that have it.
    pub scores: BTreeMap<String, f64>,
    /// Metrics over the trace: `start` is the earliest, `end` the latest,
    /// token counts and costs (names ending in `tokens` or `cost`) are summed,
    /// anything else is the root's.
    pub metrics: BTreeMap<String, f64>,
    /// `end - start` in seconds, when both are known.
    pub duration: Option<f64>,
}

/// The result of a custom query: named columns of JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRows {
    /// Column names, in the query's order.
    pub columns: Vec<String>,
    /// One value per column per row.
    pub rows: Vec<Vec<Value>>,
}

/// The rows of one export batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportRows {
    /// `log_spans`.
    Spans(Vec<SpanRecord>),
    /// `log_traces`.
    Traces(Vec<TraceRecord>),
    /// `btql_query`.
    Query(QueryRows),
}

impl ExportRows {
    /// How many rows the batch has.
    pub fn len(&self) -> usize {
        match self {
            ExportRows::Spans(rows) => rows.len(),
            ExportRows::Traces(rows) => rows.len(),
            ExportRows::Query(rows) => rows.rows.len(),
        }
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses a JSON object of numbers (`scores`, `metrics`); entries that are
/// not numbers are dropped (they have no place in a numeric column).
pub fn numeric_map(text: Option<&str>) -> BTreeMap<String, f64> {
    let Some(text) = text else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
        Ok(map) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_f64().map(|n| (k, n)))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Builds the trace rows for `roots` from every span of those traces
/// (`spans`, any order). Traces whose root span is not among `spans` are
/// left out: a trace is exported once its root has arrived.
pub fn aggregate_traces(spans: Vec<SpanRecord>) -> Vec<TraceRecord> {
    let mut traces: BTreeMap<String, TraceBuilder> = BTreeMap::new();
    for span in spans {
        traces
            .entry(span.root_span_id.clone())
            .or_default()
            .add(span);
    }
    let mut out: Vec<TraceRecord> = traces
        .into_values()
        .filter_map(TraceBuilder::finish)
        .collect();
    out.sort_by_key(|t| t.xact_id);
    out
}

#[derive(Default)]
struct TraceBuilder {
    root: Option<SpanRecord>,
    xact_id: i64,
    span_count: i64,
    score_sums: BTreeMap<String, (f64, u32)>,
    summed: BTreeMap<String, f64>,
    start: Option<f64>,
    end: Option<f64>,
}

impl TraceBuilder {
    fn add(&mut self, span: SpanRecord) {
        self.xact_id = self.xact_id.max(span.xact_id);
        self.span_count += 1;
        for (name, value) in numeric_map(span.json[JsonField::Scores.index()].as_deref()) {
            let entry = self.score_sums.entry(name).or_insert((0.0, 0));
            entry.0 += value;
            entry.1 += 1;
        }
        for (name, value) in numeric_map(span.json[JsonField::Metrics.index()].as_deref()) {
            match name.as_str() {
                "start" => self.start = Some(self.start.map_or(value, |s| s.min(value))),
                "end" => self.end = Some(self.end.map_or(value, |e| e.max(value))),
                _ if name.ends_with("tokens") || name.ends_with("cost") => {
                    *self.summed.entry(name).or_insert(0.0) += value;
                }
                _ => {}
            }
        }
        if span.is_root {
            self.root = Some(span);
        }
    }

    fn finish(self) -> Option<TraceRecord> {
        let root = self.root?;
        let mut metrics = numeric_map(root.json[JsonField::Metrics.index()].as_deref());
        metrics.extend(self.summed);
        if let Some(start) = self.start {
            metrics.insert("start".into(), start);
        }
        if let Some(end) = self.end {
            metrics.insert("end".into(), end);
        }
        let scores = self
            .score_sums
            .into_iter()
            .map(|(name, (sum, n))| (name, sum / f64::from(n)))
            .collect();
        let duration = match (self.start, self.end) {
            (Some(start), Some(end)) => Some(end - start),
            _ => None,
        };
        Some(TraceRecord {
            root,
            xact_id: self.xact_id,
            span_count: self.span_count,
            scores,
            metrics,
            duration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, root: &str, xact: i64, scores: &str, metrics: &str) -> SpanRecord {
        let mut json: [Option<String>; JSON_FIELD_COUNT] = Default::default();
        json[JsonField::Scores.index()] = Some(scores.into());
        json[JsonField::Metrics.index()] = Some(metrics.into());
        SpanRecord {
            id: id.into(),
            xact_id: xact,
            created: DateTime::from_timestamp(0, 0).unwrap(),
            span_id: id.into(),
            root_span_id: root.into(),
            is_root: id == root,
            json,
        }
    }

    #[test]
    fn traces_aggregate_scores_tokens_cost_and_duration() {
        let traces = aggregate_traces(vec![
            span(
                "r",
                "r",
                3,
                r#"{"acc": 1}"#,
                r#"{"start": 10, "end": 12, "prompt_tokens": 5}"#,
            ),
            span(
                "c",
                "r",
                7,
                r#"{"acc": 0.5, "f1": 0.2}"#,
                r#"{"start": 11, "end": 15, "prompt_tokens": 7, "estimated_cost": 0.25}"#,
            ),
            span("orphan", "missing-root", 9, "{}", "{}"),
        ]);
        assert_eq!(traces.len(), 1, "a trace without its root is not exported");
        let t = &traces[0];
        assert_eq!((t.xact_id, t.span_count), (7, 2));
        assert_eq!(t.scores["acc"], 0.75);
        assert_eq!(t.scores["f1"], 0.2);
        assert_eq!(t.metrics["prompt_tokens"], 12.0);
        assert_eq!(t.metrics["estimated_cost"], 0.25);
        assert_eq!((t.metrics["start"], t.metrics["end"]), (10.0, 15.0));
        assert_eq!(t.duration, Some(5.0));
    }
}
