//! The data model: the objects the store keeps and the notifications it
//! publishes.
//!
//! These types are what the rest of Herald (API, alerting, export,
//! retention) works with; the serde shapes match Braintrust's REST API.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::json_text::JsonText;
use crate::event_fields::JsonField;

/// The three kinds of object that hold event rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A project's production logs (spans).
    ProjectLogs,
    /// An experiment's events.
    Experiment,
    /// A dataset's rows.
    Dataset,
}

impl ObjectKind {
    /// The value stored in `events.object_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::ProjectLogs => "project_logs",
            ObjectKind::Experiment => "experiment",
            ObjectKind::Dataset => "dataset",
        }
    }

    /// The field that names the containing object in fetched rows, as in
    /// Braintrust (`log_id` is the constant `"g"` for project logs).
    pub fn id_field(self) -> &'static str {
        match self {
            ObjectKind::ProjectLogs => "log_id",
            ObjectKind::Experiment => "experiment_id",
            ObjectKind::Dataset => "dataset_id",
        }
    }
}

/// One object that holds event rows: a project's logs, an experiment or a
/// dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ObjectRef {
    /// What kind of object.
    pub kind: ObjectKind,
    /// The project id for logs, else the experiment or dataset id.
    pub id: Uuid,
    /// The project the object belongs to.
    pub project_id: Uuid,
}

impl ObjectRef {
    /// The logs of `project_id`.
    pub fn project_logs(project_id: Uuid) -> Self {
        Self {
            kind: ObjectKind::ProjectLogs,
            id: project_id,
            project_id,
        }
    }
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Project {
    /// Unique id.
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
}

/// An experiment: a named set of evaluation events in a project.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Experiment {
    /// Unique id.
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// The project it belongs to.
    #[sqlx(try_from = "DbId")]
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
    /// The dataset it was run against, if any.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub dataset_id: Option<DbId>,
    /// Whether it is public (kept for Braintrust compatibility).
    pub public: bool,
    /// Arbitrary metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<sqlx::types::Json<Value>>,
    /// Tags.
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<sqlx::types::Json<Value>>,
}

/// A dataset: a named set of rows (`input`, `expected`, `metadata`, `tags`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Dataset {
    /// Unique id.
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// The project it belongs to.
    #[sqlx(try_from = "DbId")]
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
    /// Arbitrary metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<sqlx::types::Json<Value>>,
}

/// The JSON-valued columns of an event row, in storage order (from the
/// catalog, [`crate::event_fields`]).
pub use crate::event_fields::JSON_FIELDS;

/// One stored event row (a span, an experiment event or a dataset row).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The object holding the row.
    pub object: ObjectRef,
    /// The row id (user-supplied or generated), unique within the object.
    pub id: String,
    /// The ingest sequence number of the write that produced this version.
    pub xact_id: i64,
    /// When the event happened (defaults to its ingest time).
    pub created: DbTime,
    /// The span id.
    pub span_id: String,
    /// The id of the trace's root span.
    pub root_span_id: String,
    /// Whether the span has no parents.
    pub is_root: bool,
    /// The JSON fields present on the row (absent means null), keyed by the
    /// names in [`JSON_FIELDS`].
    pub fields: Map<String, Value>,
}

impl StoredEvent {
    /// The Braintrust-shaped JSON object for this row: every field, with
    /// `_xact_id` as a string and the containing object's id field.
    pub fn to_json(&self) -> Value {
        let mut out = Map::with_capacity(20);
        out.insert("id".into(), Value::String(self.id.clone()));
        out.insert("_xact_id".into(), Value::String(self.xact_id.to_string()));
        out.insert("created".into(), Value::String(self.created.to_text()));
        out.insert(
            "project_id".into(),
            Value::String(self.object.project_id.to_string()),
        );
        let object_id = match self.object.kind {
            ObjectKind::ProjectLogs => "g".to_string(),
            _ => self.object.id.to_string(),
        };
        out.insert(self.object.kind.id_field().into(), Value::String(object_id));
        out.insert("span_id".into(), Value::String(self.span_id.clone()));
        out.insert(
            "root_span_id".into(),
            Value::String(self.root_span_id.clone()),
        );
        out.insert("is_root".into(), Value::Bool(self.is_root));
        for name in JSON_FIELDS {
            if self.object.kind == ObjectKind::Dataset && !DATASET_FIELDS.contains(&name) {
                continue;
            }
            let value = self.fields.get(name).cloned().unwrap_or(Value::Null);
            out.insert(name.into(), value);
        }
        Value::Object(out)
    }
}

/// The JSON fields a dataset row has.
pub const DATASET_FIELDS: [&str; 5] = ["span_parents", "input", "expected", "metadata", "tags"];

/// A validated write of one event, produced by [`super::validate_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    /// The row id (generated when the event had none).
    pub id: String,
    /// What to do with it.
    pub op: WriteOp,
}

/// The operation of an [`EventWrite`].
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Replace the row (or create it) with these fields.
    Replace(RowText),
    /// Deep-merge these fields into the existing row (or create it).
    Merge {
        /// The fields to merge.
        fields: EventFields,
        /// Paths (field names from the top) whose values replace instead of
        /// merging (Braintrust's `_merge_paths`).
        replace_paths: Vec<Vec<String>>,
    },
    /// Delete the row (`_object_delete`).
    Delete,
}

/// The fields an event sets. Absent fields are left alone by a merge and
/// cleared by a replace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventFields {
    /// `created`, when given.
    pub created: Option<DbTime>,
    /// `span_id`, when given.
    pub span_id: Option<String>,
    /// `root_span_id`, when given.
    pub root_span_id: Option<String>,
    /// The JSON fields given (names from [`JSON_FIELDS`]); a JSON null clears
    /// the field.
    pub json: Map<String, Value>,
}

/// The fields of a replacing write, each JSON column already as the compact
/// text it is stored as (see [`super::json_text`]): a replace needs no
/// parsed tree, so the ingest path builds none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowText {
    /// `created`, when given.
    pub created: Option<DbTime>,
    /// `span_id`, when given.
    pub span_id: Option<String>,
    /// `root_span_id`, when given.
    pub root_span_id: Option<String>,
    /// One entry per [`JSON_FIELDS`] column, in that order; `None` when the
    /// field is absent or null.
    pub json: [Option<JsonText>; JSON_FIELDS.len()],
}

impl RowText {
    /// The column of `name` in [`RowText::json`].
    pub fn column(name: &str) -> Option<usize> {
        JSON_FIELDS.iter().position(|field| *field == name)
    }

    /// Whether the span has no parents.
    pub fn is_root(&self) -> bool {
        match &self.json[JsonField::SpanParents.index()] {
            Some(parents) => parents.as_str() == "[]",
            None => true,
        }
    }
}

/// The outcome of one insert batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsertOutcome {
    /// The row ids, one per event, in request order.
    pub row_ids: Vec<String>,
    /// The sequence numbers assigned to written rows: `first..=last`, or
    /// `None` when the batch only deleted.
    pub xact_range: Option<(i64, i64)>,
    /// How many rows were deleted.
    pub deleted: u64,
}

/// A half-open range of ingest sequence numbers, `(after, upto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XactRange {
    /// Exclusive lower bound; `None` means from the beginning.
    pub after: Option<i64>,
    /// Inclusive upper bound; `None` means no upper bound.
    pub upto: Option<i64>,
}

impl XactRange {
    /// `(after, upto]`.
    pub fn between(after: i64, upto: i64) -> Self {
        Self {
            after: Some(after),
            upto: Some(upto),
        }
    }
}

/// A change, published after its transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreEvent {
    /// Rows were written to (or deleted from) an object.
    Events {
        /// The object.
        object: ObjectRef,
        /// The sequence numbers of the written rows, when any were written.
        xact_range: Option<(i64, i64)>,
        /// How many rows were written.
        written: usize,
        /// How many rows were deleted.
        deleted: u64,
    },
    /// An environment was assigned to or removed from a prompt version.
    Environment(super::environments::EnvironmentEvent),
}
