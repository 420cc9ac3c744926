//! The rows Braintrust's tracing SDKs upload (`POST /logs3`), routed to
//! the object each names and written as REST inserts are.
//!
//! A row names its object by its fields: `project_id` with `log_id: "g"`
//! (project logs), `experiment_id`, or `dataset_id`. Its other fields are
//! the span fields and the control fields of an insert event
//! (`_is_merge`, `_merge_paths`, `_object_delete`), so the SDK's span
//! lifecycle — a first write, `_is_merge` rows for each `log()`, a last
//! merge with `metrics.end` — lands as one row per span, however the SDK
//! split it across flushes. The SDK's feedback bookkeeping
//! (`_audit_source`, `_audit_metadata`) is dropped; rows Herald cannot hold
//! (comments, playground logs) are refused with the reason.
//!
//! All rows are validated and their objects looked up before anything is
//! written: a bad row fails the request with its path (`rows[3].scores`),
//! and nothing is half-written.

use std::collections::HashMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::store::{
    EventWrite, ObjectKind, ObjectRef, Store, StoreError, ValidationError, validate_event,
};

/// Most rows one upload may carry (the SDKs send up to 100 per batch by
/// default, more when rows are small).
pub const MAX_ROWS: usize = 100_000;

/// Fields of the SDK's rows that Herald does not keep.
const DROPPED_FIELDS: [&str; 2] = ["_audit_source", "_audit_metadata"];

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum Logs3Error {
    /// A row is invalid or names what Herald does not hold; nothing was written.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// A row names an object that does not exist; nothing was written.
    #[error("{path}: {message}")]
    Unknown {
        /// The row's field naming the object.
        path: String,
        /// What is missing.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Which object a row goes to, before it is looked up.
fn target(row: &Map<String, Value>, path: &str) -> Result<(ObjectKind, Uuid, String), Logs3Error> {
    let id = |field: &str| -> Result<Option<Uuid>, Logs3Error> {
        match row.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Uuid::parse_str(text).map(Some).map_err(|_| {
                ValidationError::new(format!("{path}.{field}"), format!("{text:?} is not a UUID"))
                    .into()
            }),
            Some(_) => {
                Err(ValidationError::new(format!("{path}.{field}"), "expected a string").into())
            }
        }
    };
    if row.contains_key("prompt_session_id") {
        return Err(ValidationError::new(
            format!("{path}.prompt_session_id"),
            "playground logs are not stored by Herald; log to a project, experiment or dataset",
        )
        .into());
    }
    if row.contains_key("comment") {
        return Err(ValidationError::new(
            format!("{path}.comment"),
            "comments on rows are not stored by Herald; send scores, expected or metadata as \
             feedback instead",
        )
        .into());
    }
    if let Some(experiment) = id("experiment_id")? {
        return Ok((
            ObjectKind::Experiment,
            experiment,
            format!("{path}.experiment_id"),
        ));
    }
    if let Some(dataset) = id("dataset_id")? {
        return Ok((ObjectKind::Dataset, dataset, format!("{path}.dataset_id")));
    }
    if let Some(project) = id("project_id")? {
        return Ok((
            ObjectKind::ProjectLogs,
            project,
            format!("{path}.project_id"),
        ));
    }
    Err(ValidationError::new(
        path.to_string(),
        "the row names no object: it needs project_id (with log_id \"g\"), experiment_id or \
         dataset_id",
    )
    .into())
}

/// Validates `rows`, looks up their objects, then writes them; answers the
/// row ids in order.
pub async fn write_rows(store: &Store, rows: Vec<Value>) -> Result<Vec<String>, Logs3Error> {
    if rows.len() > MAX_ROWS {
        return Err(ValidationError::new(
            "rows",
            format!("{} rows in one upload; the limit is {MAX_ROWS}", rows.len()),
        )
        .into());
    }
    let mut objects: HashMap<(ObjectKind, Uuid), ObjectRef> = HashMap::new();
    let mut batches: HashMap<ObjectRef, Vec<EventWrite>> = HashMap::new();
    let mut order = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let path = format!("rows[{i}]");
        let Value::Object(mut row) = row else {
            return Err(ValidationError::new(path, "expected an object").into());
        };
        let (kind, id, at) = target(&row, &path)?;
        let object = match objects.get(&(kind, id)) {
            Some(object) => *object,
            None => {
                let object = store.object_ref(kind, id).await.map_err(|e| match e {
                    missing @ StoreError::NotFound { .. } => Logs3Error::Unknown {
                        path: at,
                        message: missing.to_string(),
                    },
                    other => Logs3Error::Store(other),
                })?;
                objects.insert((kind, id), object);
                object
            }
        };
        for field in DROPPED_FIELDS {
            row.remove(field);
        }
        let write = validate_event(kind, Value::Object(row), &path)?;
        order.push(write.id.clone());
        batches.entry(object).or_default().push(write);
    }
    for (object, batch) in batches {
        store
            .insert_events(object, batch)
            .await
            .map_err(Logs3Error::Store)?;
    }
    Ok(order)
}
