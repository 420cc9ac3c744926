//! Insert and fetch of event rows, Braintrust's shapes, for project logs,
//! experiments and datasets.
//!
//! `POST …/insert {"events": […]}` answers `{"row_ids": […]}`, one id per
//! event in order. Each event is validated first (see
//! [`crate::store::validate`]); the first invalid field fails the whole
//! request with its path and nothing is written. `_is_merge: true`
//! deep-merges into the row with the same id, `_object_delete: true` deletes
//! it, and otherwise an event replaces the row.
//!
//! `GET …/fetch?limit=&cursor=&filter=&version=` (or `POST` with the same
//! fields as JSON) answers `{"events": […], "cursor": "…"}` in ascending
//! `_xact_id` order. Pass `cursor` back to get the next page; it is absent
//! when the page is empty. `filter` is a [filter expression](crate::filter)
//! (a Herald extension), `version` an `_xact_id` to read as of.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, OptionalJsonBody, QueryParams, parse_id};
use crate::filter::Filter;
use crate::store::{EventQuery, ObjectRef, XactRange, validate_raw_event};

/// Default page size of fetch.
pub const DEFAULT_FETCH_LIMIT: u32 = 1000;

/// The body of an insert request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertRequest {
    /// The events: objects with the row fields (`id`, `input`, `output`,
    /// `expected`, `error`, `scores`, `metrics`, `metadata`, `tags`,
    /// `span_id`, `root_span_id`, `span_parents`, `span_attributes`,
    /// `context`, `created`) and the control fields `_is_merge`,
    /// `_merge_paths`, `_object_delete`.
    ///
    /// Each event is kept as the text it arrived in and validated from it
    /// ([`crate::store::validate_raw_event`]): a replacing write is stored
    /// without being parsed into a tree and serialised again.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<RawValue>>,
}

/// The answer to an insert request.
#[derive(Debug, Serialize, ToSchema)]
pub struct InsertResponse {
    /// The row id of each event, in request order.
    pub row_ids: Vec<String>,
}

/// Parameters of a fetch request.
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchParams {
    /// At most this many rows (default 1000, at most 10000).
    pub limit: Option<u32>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
    /// A filter expression, e.g. `scores.accuracy < 0.5`.
    pub filter: Option<String>,
    /// Read as of this `_xact_id`: rows written later are left out.
    pub version: Option<String>,
}

/// A page of fetched rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct FetchResponse {
    /// The rows, in ascending `_xact_id` order.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Pass as `cursor` to get the next page; absent when `events` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

async fn insert(
    state: &AppState,
    object: ObjectRef,
    request: InsertRequest,
) -> Result<Json<InsertResponse>, ApiError> {
    let max = state.limits.max_batch_events;
    if request.events.len() > max {
        return Err(ApiError::bad_request(
            "too_many_events",
            format!(
                "{} events in one request; the limit is {max}",
                request.events.len()
            ),
            Some("events".into()),
        ));
    }
    // Validating a batch of 500 is a few milliseconds of CPU: on a blocking
    // thread it does not hold up the runtime threads that serve the other
    // requests. (The ingest benchmark measured no difference either way.)
    let kind = object.kind;
    let writes = tokio::task::spawn_blocking(move || {
        request
            .events
            .into_iter()
            .enumerate()
            .map(|(i, event)| validate_raw_event(kind, &event, &format!("events[{i}]")))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("validating the batch: {e}")))?
    .map_err(crate::store::StoreError::from)?;
    let outcome = state.store.insert_events(object, writes).await?;
    Ok(Json(InsertResponse {
        row_ids: outcome.row_ids,
    }))
}

fn parse_xact(value: &Option<String>, name: &str) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("{name} {v:?} is not valid: pass back a value this API returned"),
                    Some(name.to_string()),
                )
            })
        })
        .transpose()
}

async fn fetch(
    state: &AppState,
    object: ObjectRef,
    params: FetchParams,
) -> Result<Json<FetchResponse>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_FETCH_LIMIT);
    if limit == 0 || limit > crate::store::query::MAX_FETCH_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "limit must be between 1 and {}",
                crate::store::query::MAX_FETCH_LIMIT
            ),
            Some("limit".into()),
        ));
    }
    let filter = params
        .filter
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(Filter::parse)
        .transpose()
        .map_err(|e| ApiError::filter(e, "filter"))?;
    let range = XactRange {
        after: parse_xact(&params.cursor, "cursor")?,
        upto: parse_xact(&params.version, "version")?,
    };
    let query = EventQuery {
        filter: filter.as_ref(),
        range,
        limit: Some(limit),
    };
    let rows = state.store.fetch_events(object, &query).await?;
    let cursor = rows.last().map(|r| r.xact_id.to_string());
    Ok(Json(FetchResponse {
        events: rows.iter().map(|r| r.to_json()).collect(),
        cursor,
    }))
}

async fn project_logs(state: &AppState, id: &str) -> Result<ObjectRef, ApiError> {
    let id = parse_id(id, "project_id")?;
    state.store.project(id).await?;
    Ok(ObjectRef::project_logs(id))
}

async fn experiment(state: &AppState, id: &str) -> Result<ObjectRef, ApiError> {
    let id = parse_id(id, "experiment_id")?;
    Ok(state.store.experiment_ref(id).await?)
}

async fn dataset(state: &AppState, id: &str) -> Result<ObjectRef, ApiError> {
    let id = parse_id(id, "dataset_id")?;
    Ok(state.store.dataset_ref(id).await?)
}

/// Fetches with parameters from a JSON body (an empty body means defaults).
fn body_params(body: Option<FetchParams>) -> FetchParams {
    body.unwrap_or_default()
}

/// Insert project log events (spans).
#[utoipa::path(post, path = "/v1/project_logs/{project_id}/insert", tag = "project_logs",
    params(("project_id" = String, Path, description = "Project id")),
    request_body = InsertRequest,
    responses((status = 200, body = InsertResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn insert_project_logs(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    JsonBody(request): JsonBody<InsertRequest>,
) -> Result<Json<InsertResponse>, ApiError> {
    let object = project_logs(&state, &project_id).await?;
    insert(&state, object, request).await
}

/// Fetch project log events.
#[utoipa::path(get, path = "/v1/project_logs/{project_id}/fetch", tag = "project_logs",
    params(("project_id" = String, Path, description = "Project id"), FetchParams),
    responses((status = 200, body = FetchResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn fetch_project_logs_get(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    QueryParams(params): QueryParams<FetchParams>,
) -> Result<Json<FetchResponse>, ApiError> {
    let object = project_logs(&state, &project_id).await?;
    fetch(&state, object, params).await
}

/// Fetch project log events (parameters in the body).
#[utoipa::path(post, path = "/v1/project_logs/{project_id}/fetch", tag = "project_logs",
    params(("project_id" = String, Path, description = "Project id")),
    request_body = FetchParams,
    responses((status = 200, body = FetchResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn fetch_project_logs_post(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<FetchParams>,
) -> Result<Json<FetchResponse>, ApiError> {
    let object = project_logs(&state, &project_id).await?;
    fetch(&state, object, body_params(body)).await
}

/// Insert experiment events.
#[utoipa::path(post, path = "/v1/experiment/{experiment_id}/insert", tag = "experiments",
    params(("experiment_id" = String, Path, description = "Experiment id")),
    request_body = InsertRequest,
    responses((status = 200, body = InsertResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn insert_experiment(
    State(state): State<AppState>,
    Path(experiment_id): Path<String>,
    JsonBody(request): JsonBody<InsertRequest>,
) -> Result<Json<InsertResponse>, ApiError> {
    let object = experiment(&state, &experiment_id).await?;
    insert(&state, object, request).await
}

/// Fetch experiment events.
#[utoipa::path(get, path = "/v1/experiment/{experiment_id}/fetch", tag = "experiments",
    params(("experiment_id" = String, Path, description = "Experiment id"), FetchParams),
    responses((status = 200, body = FetchResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn fetch_experiment_get(
    State(state): State<AppState>,
    Path(experiment_id): Path<String>,
    QueryParams(params): QueryParams<FetchParams>,
) -> Result<Json<FetchResponse>, ApiError> {
    let object = experiment(&state, &experiment_id).await?;
    fetch(&state, object, params).await
}

/// Fetch experiment events (parameters in the body).
#[utoipa::path(post, path = "/v1/experiment/{experiment_id}/fetch", tag = "experiments",
    params(("experiment_id" = String, Path, description = "Experiment id")),
    request_body = FetchParams,
    responses((status = 200, body = FetchResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn fetch_experiment_post(
    State(state): State<AppState>,
    Path(experiment_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<FetchParams>,
) -> Result<Json<FetchResponse>, ApiError> {
    let object = experiment(&state, &experiment_id).await?;
    fetch(&state, object, body_params(body)).await
}

/// Insert dataset rows.
#[utoipa::path(post, path = "/v1/dataset/{dataset_id}/insert", tag = "datasets",
    params(("dataset_id" = String, Path, description = "Dataset id")),
    request_body = InsertRequest,
    responses((status = 200, body = InsertResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn insert_dataset(
    State(state): State<AppState>,
    Path(dataset_id): Path<String>,
    JsonBody(request): JsonBody<InsertRequest>,
) -> Result<Json<InsertResponse>, ApiError> {
    let object = dataset(&state, &dataset_id).await?;
    insert(&state, object, request).await
}

/// Fetch dataset rows.
#[utoipa::path(get, path = "/v1/dataset/{dataset_id}/fetch", tag = "datasets",
    params(("dataset_id" = String, Path, description = "Dataset id"), FetchParams),
    responses((status = 200, body = FetchResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn fetch_dataset_get(
    State(state): State<AppState>,
    Path(dataset_id): Path<String>,
    QueryParams(params): QueryParams<FetchParams>,
) -> Result<Json<FetchResponse>, ApiError> {
    let object = dataset(&state, &dataset_id).await?;
    fetch(&state, object, params).await
}

/// Fetch dataset rows (parameters in the body).
#[utoipa::path(post, path = "/v1/dataset/{dataset_id}/fetch", tag = "datasets",
    params(("dataset_id" = String, Path, description = "Dataset id")),
    request_body = FetchParams,
    responses((status = 200, body = FetchResponse), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn fetch_dataset_post(
    State(state): State<AppState>,
    Path(dataset_id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<FetchParams>,
) -> Result<Json<FetchResponse>, ApiError> {
    let object = dataset(&state, &dataset_id).await?;
    fetch(&state, object, body_params(body)).await
}
