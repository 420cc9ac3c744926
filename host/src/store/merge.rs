//! Folding writes into rows: Braintrust's replace, deep-merge and delete.
//!
//! An insert batch is resolved in memory first: the writes for each row id
//! are applied in request order to the row as stored (if the batch merges)
//! and then to each other, so the database sees at most one upsert or delete
//! per row id. This is pure code, tested without a database.
//!
//! A replacing write carries its fields as stored text ([`RowText`]) and
//! stays text ([`TextImage`]) unless a later write of the batch merges into
//! it; merges work on parsed values ([`RowImage`]) and are serialised once,
//! when the batch is resolved.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::columns::DbTime;
use super::json_text::JsonText;
use super::model::{EventFields, JSON_FIELDS, RowText, StoredEvent, WriteOp};

/// A row as it will be written, parsed (for merging).
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

/// A row as it will be written, as the text of its columns (ready to bind).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TextImage {
    pub created: DbTime,
    pub span_id: String,
    pub root_span_id: String,
    pub is_root: bool,
    /// One entry per [`JSON_FIELDS`] column; `None` for SQL NULL.
    pub json: [Option<JsonText>; JSON_FIELDS.len()],
}

impl TextImage {
    /// A new row from a replacing write, with Braintrust's defaults (see
    /// [`fresh`]).
    fn fresh(fields: RowText, now: DbTime) -> Self {
        let is_root = fields.is_root();
        let (span_id, root_span_id) = default_ids(fields.span_id, fields.root_span_id);
        Self {
            created: fields.created.unwrap_or(now),
            span_id,
            root_span_id,
            is_root,
            json: fields.json,
        }
    }

    /// The parsed row, for a merge into it.
    fn into_image(self) -> RowImage {
        let json = JSON_FIELDS
            .iter()
            .zip(self.json)
            .filter_map(|(name, text)| Some(((*name).to_string(), text?.to_value())))
            .collect();
        RowImage {
            created: self.created,
            span_id: self.span_id,
            root_span_id: self.root_span_id,
            json,
        }
    }
}

impl From<RowImage> for TextImage {
    fn from(row: RowImage) -> Self {
        let is_root = row.is_root();
        Self {
            json: JSON_FIELDS.map(|name| row.json.get(name).map(JsonText::from_value)),
            created: row.created,
            span_id: row.span_id,
            root_span_id: row.root_span_id,
            is_root,
        }
    }
}

/// The state of one row id while a batch is resolved.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RowState {
    /// To be written with this content (parsed).
    Write(RowImage),
    /// To be written with this content (text).
    Text(TextImage),
    /// To be deleted.
    Delete,
}

impl RowState {
    /// The row to write, as text; `None` when it is to be deleted.
    pub fn into_text(self) -> Option<TextImage> {
        match self {
            RowState::Write(row) => Some(row.into()),
            RowState::Text(text) => Some(text),
            RowState::Delete => None,
        }
    }
}

/// Applies `op` to `current` (the row as stored or as left by earlier writes
/// of the batch; `None` when it does not exist) and returns the new state.
pub(super) fn apply(current: Option<RowState>, op: WriteOp, now: DbTime) -> RowState {
    match op {
        WriteOp::Delete => RowState::Delete,
        WriteOp::Replace(fields) => RowState::Text(TextImage::fresh(fields, now)),
        WriteOp::Merge {
            fields,
            replace_paths,
        } => match current {
            None | Some(RowState::Delete) => RowState::Write(fresh(fields, now)),
            Some(RowState::Write(row)) => RowState::Write(merge(row, fields, &replace_paths)),
            Some(RowState::Text(text)) => {
                RowState::Write(merge(text.into_image(), fields, &replace_paths))
            }
        },
    }
}

/// Merges a write's fields into `row`.
fn merge(mut row: RowImage, fields: EventFields, replace_paths: &[Vec<String>]) -> RowImage {
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
    merge_map(&mut row.json, fields.json, &mut path, replace_paths);
    row.json.retain(|_, v| !v.is_null());
    row
}

/// Braintrust's id defaults: a fresh `span_id`, and `root_span_id` equal to
/// the span id.
fn default_ids(span_id: Option<String>, root_span_id: Option<String>) -> (String, String) {
    let span_id = span_id.unwrap_or_else(|| Uuid::new_v4().to_string());
    let root_span_id = root_span_id.unwrap_or_else(|| span_id.clone());
    (span_id, root_span_id)
}

/// A new row from `fields`, with Braintrust's defaults: `created` now, a
/// fresh `span_id`, and `root_span_id` equal to the span id.
fn fresh(fields: EventFields, now: DbTime) -> RowImage {
    let (span_id, root_span_id) = default_ids(fields.span_id, fields.root_span_id);
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

    fn text_fields(json: Value) -> RowText {
        let mut fields = RowText::default();
        for (name, value) in json.as_object().unwrap() {
            fields.json[RowText::column(name).unwrap()] = Some(JsonText::from_value(value));
        }
        fields
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
        let RowState::Write(row) = apply(Some(RowState::Write(current)), op, DbTime::now()) else {
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
        let RowState::Write(row) = apply(Some(RowState::Write(current)), op, DbTime::now()) else {
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
        let RowState::Text(row) = apply(
            Some(RowState::Write(current)),
            WriteOp::Replace(text_fields(json!({"output": 2}))),
            now,
        ) else {
            panic!()
        };
        assert_eq!(
            Value::Object(row.clone().into_image().json),
            json!({"output": 2})
        );
        assert_eq!(row.created, now);
        assert_eq!(row.root_span_id, row.span_id);
        assert!(row.is_root);
    }

    #[test]
    fn a_merge_into_a_replace_of_the_same_batch_sees_its_fields() {
        let now = DbTime::now();
        let replaced = apply(
            None,
            WriteOp::Replace(text_fields(
                json!({"metadata": {"a": 1}, "span_parents": ["p"]}),
            )),
            now,
        );
        let op = WriteOp::Merge {
            fields: fields(json!({"metadata": {"b": 2}})),
            replace_paths: vec![],
        };
        let row = apply(Some(replaced), op, now).into_text().unwrap();
        assert!(!row.is_root);
        assert_eq!(
            Value::Object(row.into_image().json),
            json!({"metadata": {"a": 1, "b": 2}, "span_parents": ["p"]})
        );
    }
}
