//! JSON Lines: one JSON object per row, `\n` after each.
//!
//! Spans come out exactly as the fetch API shows them (same fields, same
//! order, `_xact_id` as a string). The JSON fields are copied as the JSON
//! text the database holds, without a parse and re-serialise round trip,
//! which is most of what makes this encoder fast.
//!
//! Trace rows have the root span's fields, `_xact_id` of the trace's latest
//! span, and `span_count`, `duration`, and the aggregated `scores` and
//! `metrics`. Query rows are objects of the query's columns.

use std::collections::BTreeMap;
use std::io::Write;

use uuid::Uuid;

use crate::event_fields::JsonField;
use crate::export::rows::{ExportRows, SpanRecord, TraceRecord};
use crate::store::{DbTime, JSON_FIELDS};

/// Encodes every row of `rows`.
pub fn encode(rows: &ExportRows, project_id: Uuid) -> Vec<u8> {
    let project = project_id.to_string();
    let mut out = Vec::with_capacity(rows.len() * 1_200);
    match rows {
        ExportRows::Spans(spans) => {
            for span in spans {
                write_span(&mut out, span, &project);
            }
        }
        ExportRows::Traces(traces) => {
            for trace in traces {
                write_trace(&mut out, trace, &project);
            }
        }
        ExportRows::Query(query) => {
            for row in &query.rows {
                let object: serde_json::Map<String, serde_json::Value> = query
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect();
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, &object);
                out.push(b'\n');
            }
        }
    }
    out
}

fn string(out: &mut Vec<u8>, value: &str) {
    let _ = serde_json::to_writer(&mut *out, value);
}

fn key(out: &mut Vec<u8>, name: &str) {
    out.push(b',');
    string(out, name);
    out.push(b':');
}

fn raw(out: &mut Vec<u8>, text: Option<&str>) {
    out.extend_from_slice(text.unwrap_or("null").as_bytes());
}

/// `{"id":…,"_xact_id":"…","created":…,"project_id":…,"log_id":"g",`
/// `"span_id":…,"root_span_id":…` — the head both shapes share.
fn write_head(out: &mut Vec<u8>, span: &SpanRecord, xact_id: i64, project: &str) {
    out.extend_from_slice(b"{\"id\":");
    string(out, &span.id);
    let _ = write!(out, ",\"_xact_id\":\"{xact_id}\",\"created\":");
    string(out, &DbTime(span.created).to_text());
    key(out, "project_id");
    string(out, project);
    out.extend_from_slice(b",\"log_id\":\"g\"");
    key(out, "span_id");
    string(out, &span.span_id);
    key(out, "root_span_id");
    string(out, &span.root_span_id);
}

fn write_span(out: &mut Vec<u8>, span: &SpanRecord, project: &str) {
    write_head(out, span, span.xact_id, project);
    let _ = write!(out, ",\"is_root\":{}", span.is_root);
    for (name, value) in JSON_FIELDS.iter().zip(&span.json) {
        key(out, name);
        raw(out, value.as_deref());
    }
    out.extend_from_slice(b"}\n");
}

fn numbers(out: &mut Vec<u8>, map: &BTreeMap<String, f64>) {
    let _ = serde_json::to_writer(&mut *out, map);
}

fn write_trace(out: &mut Vec<u8>, trace: &TraceRecord, project: &str) {
    let span = &trace.root;
    write_head(out, span, trace.xact_id, project);
    let _ = write!(out, ",\"span_count\":{}", trace.span_count);
    key(out, "duration");
    let _ = serde_json::to_writer(&mut *out, &trace.duration);
    for (field, value) in JsonField::ALL.into_iter().zip(&span.json) {
        match field {
            JsonField::SpanParents => continue, // a root has none
            JsonField::Scores => {
                key(out, field.name());
                numbers(out, &trace.scores);
            }
            JsonField::Metrics => {
                key(out, field.name());
                numbers(out, &trace.metrics);
            }
            _ => {
                key(out, field.name());
                raw(out, value.as_deref());
            }
        }
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_fields::JSON_FIELD_COUNT;
    use crate::store::{ObjectRef, StoredEvent};

    #[test]
    fn a_span_line_is_the_fetch_apis_json() {
        let project = Uuid::new_v4();
        let mut json: [Option<String>; JSON_FIELD_COUNT] = Default::default();
        json[1] = Some(r#"{"q":"hi \"there\""}"#.into());
        json[JsonField::Scores.index()] = Some(r#"{"acc":0.5}"#.into());
        let span = SpanRecord {
            id: "row\n1".into(),
            xact_id: 42,
            created: chrono::DateTime::from_timestamp(1_700_000_000, 123_000).unwrap(),
            span_id: "s".into(),
            root_span_id: "r".into(),
            is_root: false,
            json: json.clone(),
        };
        let line = encode(&ExportRows::Spans(vec![span.clone()]), project);
        let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let mut fields = serde_json::Map::new();
        for (name, value) in JSON_FIELDS.iter().zip(&json) {
            if let Some(text) = value {
                fields.insert((*name).into(), serde_json::from_str(text).unwrap());
            }
        }
        let api = StoredEvent {
            object: ObjectRef::project_logs(project),
            id: span.id,
            xact_id: 42,
            created: DbTime(span.created),
            span_id: "s".into(),
            root_span_id: "r".into(),
            is_root: false,
            fields,
        }
        .to_json();
        assert_eq!(parsed, api);
        assert_eq!(line.last(), Some(&b'\n'));
    }
}
