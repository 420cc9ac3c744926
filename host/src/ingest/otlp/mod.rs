//! OpenTelemetry traces in: OTLP over HTTP ([`http`]) and gRPC ([`grpc`]),
//! both ending in [`ingest`], which maps each span ([`mapping`]) and
//! writes it through the same store call as `POST …/insert`, so alerts,
//! exports and retention see an OTLP span exactly as a REST one.
//!
//! **Where a span goes.** Its *parent*, in Braintrust's form, is
//! `project_id:<uuid>`, `project_name:<name>` (the project is created when
//! missing, as Braintrust's SDKs do) or `experiment_id:<uuid>`. It is read
//! from the span's `braintrust.parent` attribute, else the resource's, else
//! the request's `x-bt-parent` header. A span with none, or naming a
//! project or experiment that does not exist, is rejected — counted in
//! OTLP's partial-success answer with the reason — and the others are
//! written.
//!
//! **Idempotent.** A span's row id is its span id, and a span replaces the
//! row of the same id: an exporter's retry writes the same rows again
//! instead of duplicating them, and the spans of one trace form one trace
//! (`root_span_id` is the trace id) whatever request and order they come in.

pub mod grpc;
pub mod http;
pub mod mapping;
mod metadata;

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use uuid::Uuid;

use crate::store::{
    EventWrite, ObjectKind, ObjectRef, Store, StoreError, ValidationError, validate_mapped_event,
};

/// Most spans one request may carry: as many events as one REST insert.
pub const MAX_SPANS_PER_REQUEST: usize = 10_000;

/// The header naming where spans go when they do not say it themselves.
pub const PARENT_HEADER: &str = "x-bt-parent";

/// What one export request did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Spans written.
    pub accepted: usize,
    /// Spans refused (OTLP's `rejected_spans`).
    pub rejected: usize,
    /// Why the first refused span was refused (empty when none was).
    pub error_message: String,
}

/// Why a whole request failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// More spans than one request may carry.
    #[error("{0} spans in one request; the limit is {MAX_SPANS_PER_REQUEST}")]
    TooManySpans(usize),
    /// The database failed (retryable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Mapping or validating the spans failed unexpectedly (a bug: the
    /// worker thread panicked); nothing of the request was written.
    #[error("internal error while {0}")]
    Internal(&'static str),
}

/// Where a span's parent says it goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Parent {
    ProjectId(Uuid),
    ProjectName(String),
    ExperimentId(Uuid),
}

impl Parent {
    fn parse(text: &str) -> Result<Parent, String> {
        let (kind, value) = text.split_once(':').ok_or_else(|| {
            format!("parent {text:?} is not `project_id:…`, `project_name:…` or `experiment_id:…`")
        })?;
        let id = || {
            Uuid::parse_str(value.trim())
                .map_err(|_| format!("parent {text:?}: {value:?} is not a UUID"))
        };
        match kind.trim() {
            "project_id" => Ok(Parent::ProjectId(id()?)),
            "experiment_id" => Ok(Parent::ExperimentId(id()?)),
            "project_name" if !value.trim().is_empty() => {
                Ok(Parent::ProjectName(value.trim().to_string()))
            }
            other => Err(format!(
                "parent kind {other:?} is not supported: use project_id, project_name or experiment_id"
            )),
        }
    }
}

/// Resolves parents to objects once per request.
struct Router<'a> {
    store: &'a Store,
    resolved: HashMap<Parent, Result<ObjectRef, String>>,
}

/// Resolves `text` to an object: `Ok(Err(reason))` rejects the span,
/// `Err` fails the request (the database is unavailable).
async fn resolve(
    router: &mut Router<'_>,
    text: &str,
) -> Result<Result<ObjectRef, String>, StoreError> {
    let parent = match Parent::parse(text) {
        Ok(parent) => parent,
        Err(reason) => return Ok(Err(reason)),
    };
    if let Some(found) = router.resolved.get(&parent) {
        return Ok(found.clone());
    }
    let (kind, id) = match &parent {
        Parent::ProjectId(id) => (ObjectKind::ProjectLogs, *id),
        Parent::ExperimentId(id) => (ObjectKind::Experiment, *id),
        Parent::ProjectName(name) => (
            ObjectKind::ProjectLogs,
            router.store.create_project(name, None).await?.0.id,
        ),
    };
    let found = match router.store.object_ref(kind, id).await {
        Ok(object) => Ok(object),
        Err(missing @ StoreError::NotFound { .. }) => Err(missing.to_string()),
        Err(other) => return Err(other),
    };
    router.resolved.insert(parent, found.clone());
    Ok(found)
}

/// A span's parent: its own `braintrust.parent` (in its `attributes`),
/// else its resource's (`resource`), else the request header's (`header`).
fn span_parent<'a>(
    attributes: &'a [KeyValue],
    resource: Option<&'a str>,
    header: Option<&'a str>,
) -> Option<&'a str> {
    mapping::parent_attribute(attributes)
        .or(resource)
        .or(header)
}

/// Why a span with malformed ids is refused (checked before anything else).
fn malformed_ids(span: &Span) -> Option<&'static str> {
    (span.span_id.len() != 8 || span.trace_id.len() != 16)
        .then_some("the span id must be 8 bytes and the trace id 16")
}

/// Every span's parent resolved, keyed by the parent's text; a span that
/// names none is refused with [`no_parent`].
type Routes = HashMap<String, Result<ObjectRef, String>>;

fn no_parent() -> String {
    format!(
        "the span names no project: set the `{PARENT_HEADER}` header (project_id:…, \
         project_name:… or experiment_id:…) or a `braintrust.parent` attribute"
    )
}

/// Resolves every parent that a well-formed span of `request` names.
async fn resolve_parents(
    store: &Store,
    request: &ExportTraceServiceRequest,
    header: Option<&str>,
) -> Result<Routes, StoreError> {
    let mut router = Router {
        store,
        resolved: HashMap::new(),
    };
    let mut routes = Routes::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .and_then(|r| mapping::parent_attribute(&r.attributes));
        for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
            if malformed_ids(span).is_some() {
                continue;
            }
            if let Some(text) = span_parent(&span.attributes, resource, header)
                && !routes.contains_key(text)
            {
                let found = resolve(&mut router, text).await?;
                routes.insert(text.to_string(), found);
            }
        }
    }
    Ok(routes)
}

/// What one request's spans became: the writes per object, how many spans
/// were refused, and why the first one (in request order) was.
#[derive(Default)]
struct Sorted {
    writes: HashMap<ObjectRef, Vec<EventWrite>>,
    rejected: usize,
    first_error: Option<String>,
}

impl Sorted {
    /// Counts a refused span; `reason` is built only for the first.
    fn refuse(&mut self, reason: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(reason());
        }
    }
}

/// Maps and validates every span of `request`, moving its strings rather
/// than copying, and routes each to its parent's object.
fn map_and_validate(
    request: ExportTraceServiceRequest,
    header: Option<&str>,
    routes: &Routes,
) -> Sorted {
    let mut sorted = Sorted::default();
    for (r, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let attributes = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let resource_parent = mapping::parent_attribute(&attributes).map(str::to_owned);
        // Kept with every span, so kept small: one huge resource attribute
        // must not be copied into thousands of rows.
        let resource = mapping::bounded(mapping::owned_attributes(attributes));
        for (s, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let context = mapping::Context::new(&resource, scope_spans.scope.as_ref());
            for (i, span) in scope_spans.spans.into_iter().enumerate() {
                // Built only for a refused span.
                let path = || format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                let route = match malformed_ids(&span) {
                    Some(reason) => Err(reason.to_string()),
                    None => {
                        match span_parent(&span.attributes, resource_parent.as_deref(), header) {
                            // Every parent was resolved before this task.
                            Some(text) => routes.get(text).cloned().unwrap_or_else(|| {
                                Err(format!("parent {text:?} was not resolved"))
                            }),
                            None => Err(no_parent()),
                        }
                    }
                };
                let object = match route {
                    Ok(object) => object,
                    Err(reason) => {
                        sorted.refuse(|| format!("{}: {reason}", path()));
                        continue;
                    }
                };
                let event = mapping::span_event(span, &context);
                // Validated with an empty root path, rebased on error.
                match validate_mapped_event(object.kind, event.fields, "") {
                    Ok(write) => sorted.writes.entry(object).or_default().push(write),
                    Err(error) => sorted.refuse(|| {
                        let at = format!("{}{}", path(), error.path);
                        ValidationError::new(at, error.message).to_string()
                    }),
                }
            }
        }
    }
    sorted
}

/// Maps and writes every span of `request`; `header_parent` is the
/// request's `x-bt-parent`, if any.
pub async fn ingest(
    store: &Store,
    request: ExportTraceServiceRequest,
    header_parent: Option<&str>,
) -> Result<IngestOutcome, IngestError> {
    let total: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    if total > MAX_SPANS_PER_REQUEST {
        return Err(IngestError::TooManySpans(total));
    }
    // The parents are resolved first (a few store reads, usually one), so
    // that mapping and validation, the CPU work on every span, run in one
    // blocking task: a large request does not hold up the runtime threads
    // that serve the other requests, and each span is built, validated and
    // dropped on one thread.
    let routes = resolve_parents(store, &request, header_parent).await?;
    let header = header_parent.map(str::to_owned);
    let sorted =
        tokio::task::spawn_blocking(move || map_and_validate(request, header.as_deref(), &routes))
            .await
            .map_err(|_| IngestError::Internal("mapping the spans"))?;
    let mut outcome = IngestOutcome {
        rejected: sorted.rejected,
        error_message: sorted.first_error.unwrap_or_default(),
        ..IngestOutcome::default()
    };
    for (object, batch) in sorted.writes {
        let n = batch.len();
        store.insert_events(object, batch).await?;
        outcome.accepted += n;
    }
    if outcome.rejected > 0 {
        tracing::info!(accepted = outcome.accepted, rejected = outcome.rejected,
            first_error = %outcome.error_message, "OTLP spans rejected");
    }
    Ok(outcome)
}
