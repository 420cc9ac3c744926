//! Validation of incoming events against the data model.
//!
//! Turns one JSON event of an insert request into an [`EventWrite`], or
//! explains what is wrong and where: every [`ValidationError`] carries the
//! path of the offending field in the form used everywhere in the API,
//! `events[3].scores.accuracy`. Validation happens before any database work so
//! a bad batch writes nothing.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::columns::DbTime;
use super::model::{DATASET_FIELDS, EventFields, EventWrite, ObjectKind, WriteOp};

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

/// Validates one event for an object of `kind`; `path` is the event's own
/// path (e.g. `events[3]`).
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
    let mut id = None;
    let mut is_merge = false;
    let mut is_delete = false;
    let mut merge_paths = None;
    let mut fields = EventFields::default();
    for (key, value) in map {
        // Paths are built relative to the field and only on error.
        let at = "";
        let rebase = |e: ValidationError| ValidationError {
            path: format!("{}{}", child_path(path, &key), e.path),
            message: e.message,
        };
        match key.as_str() {
            "id" => id = optional_id(value, at).map_err(rebase)?,
            "_is_merge" => is_merge = bool_flag(value, at).map_err(rebase)?,
            "_object_delete" => is_delete = bool_flag(value, at).map_err(rebase)?,
            "_merge_paths" => merge_paths = Some(parse_merge_paths(value, at).map_err(rebase)?),
            "created" => fields.created = optional_time(value, at).map_err(rebase)?,
            "span_id" => fields.span_id = optional_id(value, at).map_err(rebase)?,
            "root_span_id" => fields.root_span_id = optional_id(value, at).map_err(rebase)?,
            name if IGNORED_FIELDS.contains(&name) => {}
            name => {
                // Braintrust's deprecated alias for a dataset row's expected.
                let name = if kind == ObjectKind::Dataset && name == "output" {
                    "expected"
                } else {
                    name
                };
                let known = super::model::JSON_FIELDS.contains(&name);
                if !known {
                    return Err(rebase(ValidationError::new(
                        at,
                        format!("unknown field {key:?}"),
                    )));
                }
                if kind == ObjectKind::Dataset && !DATASET_FIELDS.contains(&name) {
                    return Err(rebase(ValidationError::new(
                        at,
                        format!("{key:?} is not a field of dataset rows"),
                    )));
                }
                check_json_field(name, &value, at).map_err(rebase)?;
                check_no_nul(&value, at).map_err(rebase)?;
                fields.json.insert(name.to_string(), value);
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
    } else if is_merge {
        WriteOp::Merge {
            fields,
            replace_paths: merge_paths.unwrap_or_default(),
        }
    } else {
        WriteOp::Replace(fields)
    };
    let id = id.unwrap_or_else(|| Uuid::new_v4().to_string());
    Ok(EventWrite { id, op })
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
        assert_eq!(f.json["input"], json!("hi"));
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
        assert_eq!(f.json["expected"], json!(1));
    }
}
