//! Validation of incoming events against the data model.
//!
//! Turns one JSON event of an insert request into an [`EventWrite`], or
//! explains what is wrong and where: every [`ValidationError`] carries the
//! path of the offending field in the form used everywhere in the API,
//! `events[3].scores.accuracy`. Validation happens before any database work so
//! a bad batch writes nothing.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::columns::DbTime;
use super::json_text::{Compacted, JsonText, compact};
use super::model::{
    DATASET_FIELDS, EventFields, EventWrite, JSON_FIELDS, ObjectKind, RowText, WriteOp,
};

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    /// Where, e.g. `events[3].scores.accuracy`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ValidationError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Longest accepted row, span or root span id.
const MAX_ID_LEN: usize = 1024;

/// Fields Braintrust clients send that Herald accepts and ignores: the
/// containing object's ids (taken from the URL) and computed fields.
const IGNORED_FIELDS: [&str; 8] = [
    "project_id",
    "log_id",
    "experiment_id",
    "dataset_id",
    "org_id",
    "_xact_id",
    "is_root",
    "origin",
];

/// Appends a key to a path, quoting keys that are not plain identifiers.
pub fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_string()))
    }
}

/// Validates one parsed event for an object of `kind`; `path` is the
/// event's own path (e.g. `events[3]`).
pub fn validate_event(
    kind: ObjectKind,
    event: Value,
    path: &str,
) -> Result<EventWrite, ValidationError> {
    let Value::Object(map) = event else {
        return Err(ValidationError::new(
            path,
            format!("expected an object, got {}", type_name(&event)),
        ));
    };
    let entries = map
        .into_iter()
        .map(|(key, value)| (Cow::Owned(key), FieldInput::Parsed(value)))
        .collect();
    validate_entries(kind, entries, path)
}

/// One field of an event built by a mapping (OTLP) rather than parsed
/// from a request body.
#[derive(Debug)]
pub enum MappedField {
    /// A value the mapping built.
    Value(Value),
    /// JSON text taken verbatim from the source (a `braintrust.*_json`
    /// attribute) or written as text by the mapping (`metadata`): checked
    /// and stored without a parsed tree, as on the REST path.
    Text(Box<RawValue>),
}

/// Validates an event built by a mapping, field by field, with the same
/// rules as [`validate_event`] (no intermediate JSON object is built).
pub fn validate_mapped_event(
    kind: ObjectKind,
    fields: Vec<(&'static str, MappedField)>,
    path: &str,
) -> Result<EventWrite, ValidationError> {
    let entries = fields
        .into_iter()
        .map(|(key, field)| {
            let input = match field {
                MappedField::Value(value) => FieldInput::Parsed(value),
                MappedField::Text(text) => FieldInput::Text(text),
            };
            (Cow::Borrowed(key), input)
        })
        .collect();
    validate_entries(kind, entries, path)
}

/// Validates one event as the text it arrived in (the REST insert path).
///
/// The same rules as [`validate_event`], but a replacing write's fields go
/// from the request's text to the stored text without a parsed tree in
/// between (see [`super::json_text`]); only small fields with rules of
/// their own (`scores`, `metrics`, `tags`, …) and merges are parsed.
pub fn validate_raw_event(
    kind: ObjectKind,
    event: &RawValue,
    path: &str,
) -> Result<EventWrite, ValidationError> {
    match serde_json::from_str::<RawEntries<'_>>(event.get()) {
        Ok(RawEntries(entries)) => validate_entries(kind, entries, path),
        // Not an object: say what it is.
        Err(_) => {
            let value: Value = parse_raw(event, path)?;
            validate_event(kind, value, path)
        }
    }
}

/// One field of an incoming event.
enum FieldInput<'a> {
    /// Its text as received.
    Raw(&'a RawValue),
    /// Already parsed.
    Parsed(Value),
    /// Text a mapping produced.
    Text(Box<RawValue>),
}

impl FieldInput<'_> {
    fn into_value(self, at: &str) -> Result<Value, ValidationError> {
        match self {
            FieldInput::Parsed(value) => Ok(value),
            text => text.to_value(at),
        }
    }

    /// The field's value, parsed from its text or copied.
    fn to_value(&self, at: &str) -> Result<Value, ValidationError> {
        match self {
            FieldInput::Parsed(value) => Ok(value.clone()),
            FieldInput::Raw(raw) => parse_raw(raw, at),
            FieldInput::Text(text) => parse_raw(text, at),
        }
    }

    /// The field's JSON text, when it came as text.
    fn text(&self) -> Option<&RawValue> {
        match self {
            FieldInput::Raw(raw) => Some(raw),
            FieldInput::Text(text) => Some(text),
            FieldInput::Parsed(_) => None,
        }
    }
}

fn parse_raw(raw: &RawValue, at: &str) -> Result<Value, ValidationError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ValidationError::new(at, format!("invalid JSON: {e}")))
}

/// An event object's fields, borrowed from the request text.
struct RawEntries<'a>(Vec<(Cow<'a, str>, FieldInput<'a>)>);

impl<'de> Deserialize<'de> for RawEntries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = RawEntries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(16);
                while let Some(FieldName(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, FieldInput::Raw(value)));
                }
                Ok(RawEntries(entries))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// A key, borrowed unless it holds escapes.
struct FieldName<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// Fields whose rules go beyond "any JSON" (types of members, ranges):
/// small, so they are always checked as parsed values.
const STRUCTURED_FIELDS: [&str; 5] = [
    "scores",
    "metrics",
    "span_attributes",
    "tags",
    "span_parents",
];

/// Fields that must be objects.
const OBJECT_FIELDS: [&str; 2] = ["metadata", "context"];

/// The event's JSON fields, as a merge or a replace needs them.
enum JsonFields {
    Merge(Map<String, Value>),
    Replace([Option<JsonText>; JSON_FIELDS.len()]),
}

fn validate_entries(
    kind: ObjectKind,
    entries: Vec<(Cow<'_, str>, FieldInput<'_>)>,
    path: &str,
) -> Result<EventWrite, ValidationError> {
    // Paths are built relative to the field and only on error.
    let at = "";
    let rebase = |key: &str, e: ValidationError| ValidationError {
        path: format!("{}{}", child_path(path, key), e.path),
        message: e.message,
    };
    // Whether the event merges decides how its fields are kept, so that flag
    // is read first (the last occurrence wins, as in a parsed object).
    let mut is_merge = false;
    for (key, value) in entries.iter().rev() {
        if key == "_is_merge" {
            let value = value.to_value(at).map_err(|e| rebase(key, e))?;
            is_merge = bool_flag(value, at).map_err(|e| rebase(key, e))?;
            break;
        }
    }
    let mut id = None;
    let mut is_delete = false;
    let mut merge_paths = None;
    let (mut created, mut span_id, mut root_span_id) = (None, None, None);
    let mut json = if is_merge {
        JsonFields::Merge(Map::new())
    } else {
        JsonFields::Replace(Default::default())
    };
    for (key, input) in entries {
        let rebase = |e: ValidationError| rebase(&key, e);
        match key.as_ref() {
            "_is_merge" => {}
            "id" => id = optional_id(input.into_value(at).map_err(rebase)?, at).map_err(rebase)?,
            "_object_delete" => {
                is_delete = bool_flag(input.into_value(at).map_err(rebase)?, at).map_err(rebase)?
            }
            "_merge_paths" => {
                let value = input.into_value(at).map_err(rebase)?;
                merge_paths = Some(parse_merge_paths(value, at).map_err(rebase)?);
            }
            "created" => {
                created =
                    optional_time(input.into_value(at).map_err(rebase)?, at).map_err(rebase)?
            }
            "span_id" => {
                span_id = optional_id(input.into_value(at).map_err(rebase)?, at).map_err(rebase)?
            }
            "root_span_id" => {
                root_span_id =
                    optional_id(input.into_value(at).map_err(rebase)?, at).map_err(rebase)?
            }
            name if IGNORED_FIELDS.contains(&name) => {}
            name => {
                // Braintrust's deprecated alias for a dataset row's expected.
                let name = if kind == ObjectKind::Dataset && name == "output" {
                    "expected"
                } else {
                    name
                };
                let Some(column) = RowText::column(name) else {
                    return Err(rebase(ValidationError::new(
                        at,
                        format!("unknown field {key:?}"),
                    )));
                };
                if kind == ObjectKind::Dataset && !DATASET_FIELDS.contains(&name) {
                    return Err(rebase(ValidationError::new(
                        at,
                        format!("{key:?} is not a field of dataset rows"),
                    )));
                }
                match &mut json {
                    JsonFields::Merge(map) => {
                        let value = input.into_value(at).map_err(rebase)?;
                        check_field(name, &value, at).map_err(rebase)?;
                        map.insert(name.to_string(), value);
                    }
                    JsonFields::Replace(columns) => {
                        columns[column] = field_text(name, input, at).map_err(rebase)?;
                    }
                }
            }
        }
    }
    if merge_paths.is_some() && !is_merge {
        return Err(ValidationError::new(
            child_path(path, "_merge_paths"),
            "_merge_paths requires \"_is_merge\": true",
        ));
    }
    let op = if is_delete {
        if id.is_none() {
            return Err(ValidationError::new(
                child_path(path, "id"),
                "_object_delete requires the id of the row to delete",
            ));
        }
        WriteOp::Delete
    } else {
        match json {
            JsonFields::Merge(json) => WriteOp::Merge {
                fields: EventFields {
                    created,
                    span_id,
                    root_span_id,
                    json,
                },
                replace_paths: merge_paths.unwrap_or_default(),
            },
            JsonFields::Replace(json) => WriteOp::Replace(RowText {
                created,
                span_id,
                root_span_id,
                json,
            }),
        }
    };
    let id = id.unwrap_or_else(|| Uuid::new_v4().to_string());
    Ok(EventWrite { id, op })
}

/// A replaced field's stored text (`None` for null), checked against the
/// field's rules. Free-form fields go from the request text to the stored
/// text directly; the rest are parsed and checked.
fn field_text(
    name: &str,
    input: FieldInput<'_>,
    at: &str,
) -> Result<Option<JsonText>, ValidationError> {
    if let Some(raw) = input.text()
        && !STRUCTURED_FIELDS.contains(&name)
        && let Compacted::Text(text) = compact(raw.get())
    {
        if text == "null" {
            return Ok(None);
        }
        if !OBJECT_FIELDS.contains(&name) || text.starts_with('{') {
            return Ok(Some(JsonText::from_compact(text.into_owned())));
        }
    }
    // Structured fields, parsed input, and the rare text that needs a parse
    // (an escaped NUL to report at its path, duplicate keys, big numbers, a
    // wrong type to name).
    let value = input.into_value(at)?;
    check_field(name, &value, at)?;
    Ok((!value.is_null()).then(|| JsonText::from_value(&value)))
}

/// The checks of one JSON field's parsed value.
fn check_field(name: &str, value: &Value, at: &str) -> Result<(), ValidationError> {
    check_json_field(name, value, at)?;
    check_no_nul(value, at)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn optional_id(value: Value, at: &str) -> Result<Option<String>, ValidationError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Err(ValidationError::new(at, "must not be empty")),
        Value::String(s) if s.contains('\0') => Err(ValidationError::new(
            at,
            "must not contain the NUL character",
        )),
        Value::String(s) if s.len() > MAX_ID_LEN => Err(ValidationError::new(
            at,
            format!("longer than {MAX_ID_LEN} bytes"),
        )),
        Value::String(s) => Ok(Some(s)),
        other => Err(ValidationError::new(
            at,
            format!("expected a string, got {}", type_name(&other)),
        )),
    }
}

/// Rejects NUL characters anywhere in a JSON value: PostgreSQL cannot
/// store them in `jsonb` or `text`, and accepting them on SQLite only would
/// make the backends disagree.
fn check_no_nul(value: &Value, at: &str) -> Result<(), ValidationError> {
    if !has_nul(value) {
        return Ok(());
    }
    let nul = || ValidationError::new(at, "strings may not contain the NUL character (\\u0000)");
    match value {
        Value::String(s) if s.contains('\0') => Err(nul()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_no_nul(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let at = child_path(at, k);
            if k.contains('\0') {
                return Err(ValidationError::new(
                    at,
                    "keys may not contain the NUL character",
                ));
            }
            check_no_nul(v, &at)
        }),
        _ => Ok(()),
    }
}

/// Whether a NUL character occurs anywhere in `value` (no allocation).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn bool_flag(value: Value, at: &str) -> Result<bool, ValidationError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        other => Err(ValidationError::new(
            at,
            format!("expected a boolean, got {}", type_name(&other)),
        )),
    }
}

fn optional_time(value: Value, at: &str) -> Result<Option<DbTime>, ValidationError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => DbTime::parse(&s)
            .map(Some)
            .map_err(|e| ValidationError::new(at, format!("expected an RFC 3339 timestamp: {e}"))),
        other => Err(ValidationError::new(
            at,
            format!(
                "expected an RFC 3339 timestamp string, got {}",
                type_name(&other)
            ),
        )),
    }
}

fn parse_merge_paths(value: Value, at: &str) -> Result<Vec<Vec<String>>, ValidationError> {
    let Value::Array(paths) = value else {
        return Err(ValidationError::new(at, "expected an array of paths"));
    };
    paths
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let at = format!("{at}[{i}]");
            match p {
                Value::Array(parts) if !parts.is_empty() => parts
                    .into_iter()
                    .enumerate()
                    .map(|(j, part)| match part {
                        Value::String(s) => Ok(s),
                        other => Err(ValidationError::new(
                            format!("{at}[{j}]"),
                            format!("expected a string, got {}", type_name(&other)),
                        )),
                    })
                    .collect(),
                _ => Err(ValidationError::new(
                    at,
                    "expected a non-empty array of field names",
                )),
            }
        })
        .collect()
}

fn check_json_field(name: &str, value: &Value, at: &str) -> Result<(), ValidationError> {
    if value.is_null() {
        return Ok(());
    }
    match name {
        "scores" => check_numbers(value, at, Some((0.0, 1.0))),
        "metrics" => check_numbers(value, at, None),
        "metadata" | "context" => expect_object(value, at).map(|_| ()),
        "span_attributes" => {
            let map = expect_object(value, at)?;
            for key in ["name", "type"] {
                match map.get(key) {
                    None | Some(Value::Null) | Some(Value::String(_)) => {}
                    Some(other) => {
                        return Err(ValidationError::new(
                            child_path(at, key),
                            format!("expected a string, got {}", type_name(other)),
                        ));
                    }
                }
            }
            Ok(())
        }
        "tags" | "span_parents" => {
            let Value::Array(items) = value else {
                return Err(ValidationError::new(
                    at,
                    format!("expected an array of strings, got {}", type_name(value)),
                ));
            };
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    return Err(ValidationError::new(
                        format!("{at}[{i}]"),
                        format!("expected a string, got {}", type_name(item)),
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn expect_object<'v>(
    value: &'v Value,
    at: &str,
) -> Result<&'v Map<String, Value>, ValidationError> {
    value.as_object().ok_or_else(|| {
        ValidationError::new(at, format!("expected an object, got {}", type_name(value)))
    })
}

fn check_numbers(
    value: &Value,
    at: &str,
    range: Option<(f64, f64)>,
) -> Result<(), ValidationError> {
    for (key, v) in expect_object(value, at)? {
        match v {
            Value::Null => {}
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if let Some((lo, hi)) = range
                    && !(lo..=hi).contains(&x)
                {
                    return Err(ValidationError::new(
                        child_path(at, key),
                        format!("score {n} is out of range: scores are between {lo} and {hi}"),
                    ));
                }
            }
            other => {
                return Err(ValidationError::new(
                    child_path(at, key),
                    format!("expected a number or null, got {}", type_name(other)),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(event: Value) -> Result<EventWrite, ValidationError> {
        validate_event(ObjectKind::ProjectLogs, event, "events[0]")
    }

    #[test]
    fn generates_ids_and_keeps_fields() {
        let w = check(json!({"input": "hi", "scores": {"a": 0.5, "b": null}})).unwrap();
        assert!(Uuid::parse_str(&w.id).is_ok());
        let WriteOp::Replace(f) = w.op else { panic!() };
        assert_eq!(f.json[1].as_ref().unwrap().as_str(), r#""hi""#);
    }

    #[test]
    fn reports_paths_of_bad_fields() {
        let e = check(json!({"scores": {"accuracy": 1.5}})).unwrap_err();
        assert_eq!(e.path, "events[0].scores.accuracy");
        let e = check(json!({"scores": {"my score": "x"}})).unwrap_err();
        assert_eq!(e.path, "events[0].scores[\"my score\"]");
        let e = check(json!({"tags": ["a", 3]})).unwrap_err();
        assert_eq!(e.path, "events[0].tags[1]");
        let e = check(json!({"bogus": 1})).unwrap_err();
        assert_eq!(e.path, "events[0].bogus");
        let e = check(json!({"created": "yesterday"})).unwrap_err();
        assert_eq!(e.path, "events[0].created");
        let e = check(json!({"_object_delete": true})).unwrap_err();
        assert_eq!(e.path, "events[0].id");
        let e = check(json!(3)).unwrap_err();
        assert_eq!(e.path, "events[0]");
        let e = check(json!({"input": {"a": ["ok", "n\u{0}l"]}})).unwrap_err();
        assert_eq!(e.path, "events[0].input.a[1]");
    }

    #[test]
    fn dataset_rows_have_fewer_fields() {
        let e =
            validate_event(ObjectKind::Dataset, json!({"scores": {}}), "events[1]").unwrap_err();
        assert_eq!(e.path, "events[1].scores");
        let w = validate_event(ObjectKind::Dataset, json!({"output": 1}), "e").unwrap();
        let WriteOp::Replace(f) = w.op else { panic!() };
        let expected = RowText::column("expected").unwrap();
        assert_eq!(f.json[expected].as_ref().unwrap().as_str(), "1");
    }

    /// A write as parsed values, whichever path produced it.
    fn parsed(write: EventWrite) -> (String, Value) {
        let op = match write.op {
            WriteOp::Replace(f) => {
                let json: Map<String, Value> = JSON_FIELDS
                    .iter()
                    .zip(f.json)
                    .filter_map(|(n, t)| Some(((*n).to_string(), t?.to_value())))
                    .collect();
                json!({"replace": json, "created": f.created.map(|c| c.to_text()),
                       "span_id": f.span_id, "root_span_id": f.root_span_id})
            }
            WriteOp::Merge {
                fields,
                replace_paths,
            } => {
                json!({"merge": fields.json, "paths": replace_paths, "span_id": fields.span_id})
            }
            WriteOp::Delete => json!("delete"),
        };
        (write.id, op)
    }

    #[test]
    fn raw_and_parsed_events_validate_alike() {
        let cases = [
            json!({"id": "a", "input": {"b": [1, 2.5, "x y"], "a": null}, "output": "o",
                   "metadata": {"m": {"n": true}}, "scores": {"s": 0.5}, "tags": ["t"],
                   "span_parents": ["p"], "span_id": "s", "created": "2024-05-01T00:00:00Z"}),
            json!({"id": "a", "input": null, "metadata": null, "_is_merge": false}),
            json!({"id": "a", "_is_merge": true, "metadata": {"k": 1}, "_merge_paths": [["metadata"]]}),
            json!({"id": "a", "_object_delete": true}),
            json!({"id": "a", "input": {"big": 1.5e300, "small": 4.2e-5}}),
            json!({"id": "a", "scores": {"s": 2}}),
            json!({"id": "a", "metadata": "not an object"}),
            json!({"id": "a", "context": [1]}),
            json!({"id": "a", "input": {"k": ["ok", "n\u{0}l"]}}),
            json!({"id": "a", "output": {"deep": [{"x": "\u{0}"}]}}),
            json!({"id": "a", "bogus": 1}),
            json!({"id": 3}),
            json!({"id": "a", "_merge_paths": [["x"]]}),
            json!([1]),
        ];
        for case in cases {
            for text in [
                case.to_string(),
                serde_json::to_string_pretty(&case).unwrap(),
            ] {
                let raw = RawValue::from_string(text.clone()).unwrap();
                let from_raw = validate_raw_event(ObjectKind::ProjectLogs, &raw, "events[0]");
                let from_value = check(case.clone());
                match (from_raw, from_value) {
                    (Ok(a), Ok(b)) => assert_eq!(parsed(a), parsed(b), "{text}"),
                    (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
                    (a, b) => panic!("{text}: raw {a:?} but parsed {b:?}"),
                }
            }
        }
    }

    #[test]
    fn raw_fields_are_stored_compact_with_the_last_of_duplicate_keys() {
        let raw = RawValue::from_string(
            r#"{"id": "a", "input": {"q" : "a  b",  "n": [1, 2]}, "metadata": {"k": 1, "k": 2}}"#
                .to_string(),
        )
        .unwrap();
        let write = validate_raw_event(ObjectKind::ProjectLogs, &raw, "e").unwrap();
        let WriteOp::Replace(f) = write.op else {
            panic!()
        };
        let text = |name| {
            f.json[RowText::column(name).unwrap()]
                .as_ref()
                .unwrap()
                .as_str()
        };
        assert_eq!(text("input"), r#"{"q":"a  b","n":[1,2]}"#);
        assert_eq!(text("metadata"), r#"{"k":2}"#);
    }
}
