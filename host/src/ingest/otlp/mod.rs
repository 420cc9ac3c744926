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
use serde_json::Value;
use uuid::Uuid;

use crate::store::{EventWrite, ObjectKind, ObjectRef, Store, StoreError, validate_mapped_event};

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
    text: Option<&str>,
) -> Result<Result<ObjectRef, String>, StoreError> {
    let Some(text) = text else {
        return Ok(Err(format!(
            "the span names no project: set the `{PARENT_HEADER}` header (project_id:…, \
             project_name:… or experiment_id:…) or a `braintrust.parent` attribute"
        )));
    };
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

/// One span of a request, mapped (its parent being its own
/// `braintrust.parent` or its resource's), or why it was refused.
struct MappedSpan {
    /// `resourceSpans[r].scopeSpans[s].spans[i]`.
    path: String,
    /// The mapped span, or why it cannot be mapped.
    event: Result<mapping::SpanEvent, String>,
}

/// Maps every span of `request`, moving its strings rather than copying.
fn map_spans(request: ExportTraceServiceRequest) -> Vec<MappedSpan> {
    let mut mapped = Vec::new();
    for (r, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = resource_spans
            .resource
            .map(|r| mapping::owned_attributes(r.attributes))
            .unwrap_or_default();
        // Kept with every span, so kept small: one huge resource attribute
        // must not be copied into thousands of rows.
        let resource = mapping::bounded(resource);
        let resource_parent = resource
            .get("braintrust.parent")
            .and_then(Value::as_str)
            .map(str::to_owned);
        for (s, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let context = mapping::Context::new(&resource, scope_spans.scope.as_ref());
            for (i, span) in scope_spans.spans.into_iter().enumerate() {
                let path = format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                let event = if span.span_id.len() != 8 || span.trace_id.len() != 16 {
                    Err("the span id must be 8 bytes and the trace id 16".to_string())
                } else {
                    let mut event = mapping::span_event(span, &context);
                    event.parent = event.parent.or_else(|| resource_parent.clone());
                    Ok(event)
                };
                mapped.push(MappedSpan { path, event });
            }
        }
    }
    mapped
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
    // Mapping and validation are CPU work on every span: they run on a
    // blocking thread, so a large request does not hold up the runtime
    // threads that serve the other requests and hand batches to the writer.
    let mapped = tokio::task::spawn_blocking(move || map_spans(request))
        .await
        .map_err(|_| IngestError::Internal("mapping the spans"))?;
    let mut router = Router {
        store,
        resolved: HashMap::new(),
    };
    let mut refused = Vec::new();
    let mut routed = Vec::with_capacity(mapped.len());
    // A span's index in `mapped` is its place in the request.
    for (index, span) in mapped.into_iter().enumerate() {
        let MappedSpan { path, event } = span;
        let event = match event {
            Ok(event) => event,
            Err(reason) => {
                refused.push((index, format!("{path}: {reason}")));
                continue;
            }
        };
        let parent = event.parent.as_deref().or(header_parent);
        match resolve(&mut router, parent).await? {
            Ok(object) => routed.push((index, path, object, event)),
            Err(reason) => refused.push((index, format!("{path}: {reason}"))),
        }
    }
    let (writes, invalid) = tokio::task::spawn_blocking(move || {
        let mut writes: HashMap<ObjectRef, Vec<EventWrite>> = HashMap::new();
        let mut invalid = Vec::new();
        for (index, path, object, span) in routed {
            match validate_mapped_event(object.kind, span.event, &span.verbatim, &path) {
                Ok(write) => writes.entry(object).or_default().push(write),
                Err(error) => invalid.push((index, error.to_string())),
            }
        }
        (writes, invalid)
    })
    .await
    .map_err(|_| IngestError::Internal("validating the spans"))?;
    refused.extend(invalid);
    let mut outcome = IngestOutcome {
        rejected: refused.len(),
        // The first refused span in request order.
        error_message: refused
            .into_iter()
            .min_by_key(|(index, _)| *index)
            .map(|(_, reason)| reason)
            .unwrap_or_default(),
        ..IngestOutcome::default()
    };
    for (object, batch) in writes {
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
