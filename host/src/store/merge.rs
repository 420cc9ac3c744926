//! Folding writes into rows: Braintrust's replace, deep-merge and delete.
//!
//! An insert batch is resolved in memory first: the writes for each row id
//! are applied in request order to the row as stored (if the batch merges)
//! and then to each other, so the database sees at most one upsert or delete
//! per row id. This is pure code, tested without a database.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::columns::DbTime;
use super::model::{EventFields, StoredEvent, WriteOp};

/// A row as it will be written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RowImage {
    pub created: DbTime,
    pub span_id: String,
    pub root_span_id: String,
    /// Non-null JSON fields only.
    pub json: Map<String, Value>,
}

impl RowImage {
    /// Whether the span has no parents.
    pub fn is_root(&self) -> bool {
        match self.json.get("span_parents") {
            Some(Value::Array(parents)) => parents.is_empty(),
            _ => true,
        }
    }
}

impl From<StoredEvent> for RowImage {
    fn from(row: StoredEvent) -> Self {
        Self {
            created: row.created,
            span_id: row.span_id,
            root_span_id: row.root_span_id,
            json: row.fields,
        }
    }
}

/// The state of one row id while a batch is resolved.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RowState {
    /// To be written with this content.
    Write(RowImage),
    /// To be deleted.
    Delete,
}

/// Applies `op` to `current` (the row as stored or as left by earlier writes
/// of the batch; `None` when it does not exist) and returns the new state.
pub(super) fn apply(current: Option<RowImage>, op: WriteOp, now: DbTime) -> RowState {
    match op {
        WriteOp::Delete => RowState::Delete,
        WriteOp::Replace(fields) => RowState::Write(fresh(fields, now)),
        WriteOp::Merge {
            fields,
            replace_paths,
        } => match current {
            None => RowState::Write(fresh(fields, now)),
            Some(mut row) => {
                if let Some(created) = fields.created {
                    row.created = created;
                }
                if let Some(span_id) = fields.span_id {
                    row.span_id = span_id;
                }
                if let Some(root) = fields.root_span_id {
                    row.root_span_id = root;
                }
                let mut path = Vec::new();
                merge_map(&mut row.json, fields.json, &mut path, &replace_paths);
                row.json.retain(|_, v| !v.is_null());
                RowState::Write(row)
            }
        },
    }
}

/// A new row from `fields`, with Braintrust's defaults: `created` now, a
/// fresh `span_id`, and `root_span_id` equal to the span id.
fn fresh(fields: EventFields, now: DbTime) -> RowImage {
    let span_id = fields.span_id.unwrap_or_else(|| Uuid::new_v4().to_string());
    let root_span_id = fields.root_span_id.unwrap_or_else(|| span_id.clone());
    let mut json = fields.json;
    json.retain(|_, v| !v.is_null());
    RowImage {
        created: fields.created.unwrap_or(now),
        span_id,
        root_span_id,
        json,
    }
}

/// Deep-merges `patch` into `target`: objects merge key by key, anything
/// else (arrays included) replaces; paths listed in `replace_paths` replace
/// even when both sides are objects.
fn merge_map(
    target: &mut Map<String, Value>,
    patch: Map<String, Value>,
    path: &mut Vec<String>,
    replace_paths: &[Vec<String>],
) {
    for (key, value) in patch {
        path.push(key.clone());
        let replace = replace_paths.iter().any(|p| p == path);
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) if !replace => {
                merge_map(existing, incoming, path, replace_paths);
            }
            (_, value) => {
                target.insert(key, value);
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(json: Value) -> EventFields {
        EventFields {
            json: json.as_object().unwrap().clone(),
            ..EventFields::default()
        }
    }

    fn image(json: Value) -> RowImage {
        RowImage {
            created: DbTime::parse("2024-01-01T00:00:00Z").unwrap(),
            span_id: "s".into(),
            root_span_id: "r".into(),
            json: json.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn merge_is_deep_and_arrays_replace() {
        let current = image(json!({"metadata": {"a": 1, "b": {"c": 2, "d": 3}}, "tags": ["x"]}));
        let op = WriteOp::Merge {
            fields: fields(json!({"metadata": {"b": {"c": 9}, "e": 5}, "tags": ["y"]})),
            replace_paths: vec![],
        };
        let RowState::Write(row) = apply(Some(current), op, DbTime::now()) else {
            panic!()
        };
        assert_eq!(
            Value::Object(row.json),
            json!({"metadata": {"a": 1, "b": {"c": 9, "d": 3}, "e": 5}, "tags": ["y"]})
        );
        assert_eq!(row.span_id, "s");
    }

    #[test]
    fn merge_paths_replace_and_null_clears() {
        let current = image(json!({"metadata": {"a": {"x": 1}, "k": 1}, "output": "o"}));
        let op = WriteOp::Merge {
            fields: fields(json!({"metadata": {"a": {"y": 2}}, "output": null})),
            replace_paths: vec![vec!["metadata".into(), "a".into()]],
        };
        let RowState::Write(row) = apply(Some(current), op, DbTime::now()) else {
            panic!()
        };
        assert_eq!(
            Value::Object(row.json),
            json!({"metadata": {"a": {"y": 2}, "k": 1}})
        );
    }

    #[test]
    fn replace_starts_over_with_defaults() {
        let now = DbTime::now();
        let current = image(json!({"input": 1}));
        let RowState::Write(row) = apply(
            Some(current),
            WriteOp::Replace(fields(json!({"output": 2}))),
            now,
        ) else {
            panic!()
        };
        assert_eq!(Value::Object(row.json.clone()), json!({"output": 2}));
        assert_eq!(row.created, now);
        assert_eq!(row.root_span_id, row.span_id);
        assert!(row.is_root());
    }
}
