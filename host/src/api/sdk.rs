//! The protocol of Braintrust's tracing SDKs (Python `braintrust`, npm
//! `braintrust`), so applications instrumented with them log to Herald
//! unmodified: point `BRAINTRUST_APP_URL` and `BRAINTRUST_API_URL` at Herald
//! and use a Herald API key as `BRAINTRUST_API_KEY`.
//!
//! | route | what the SDK does with it |
//! |---|---|
//! | `POST /api/apikey/login` | learns its organization and the API URL (Herald's own, from the request) |
//! | `GET /version` | reads its payload limit; Herald names none, so the SDK keeps its batches at 6 MiB, under Herald's body limit, and never uses the signed-URL overflow path |
//! | `POST /logs3` | uploads rows ([`crate::ingest::braintrust`]) |
//! | `POST /api/project/register`, `GET /api/project` | TypeScript's `initLogger` (Python uses `POST /v1/project`) |
//! | `POST /api/experiment/register`, `POST /api/dataset/register` | TypeScript's `init` / `initDataset` (Python: `/v1/experiment`, `/v1/dataset`) |
//! | `POST /api/base_experiment/get_id` | 400: Herald keeps no base experiments (the SDK reads 400 as "none") |
//! | `GET /experiment-comparison2`, `GET /v1/experiment/{id}/summarize` | the summary printed at the end of an `Eval`: each score's and metric's mean over the experiment |
//!
//! Everything else the SDKs can call answers 404 with the route named,
//! never a silent success.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{JsonBody, QueryParams, parse_id, parse_json};
use crate::ingest::braintrust::{Logs3Error, write_rows};
use crate::store::objects::NewExperiment;
use crate::store::{EventQuery, ObjectKind, ObjectRef, Project, StoreError, XactRange};

/// The base URL the client reached Herald at.
fn base_url(headers: &HeaderMap) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text("x-forwarded-host")
        .or(text("host"))
        .unwrap_or("127.0.0.1:7777");
    let scheme = text("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}

/// `POST /api/apikey/login`: the key's organization and where its API is.
pub async fn login(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let (id, name) = (
        state.automations.organization_id(),
        state.automations.organization_name(),
    );
    Json(json!({"org_info": [{
        "id": id, "name": name, "api_url": base_url(&headers), "proxy_url": null,
        "realtime_url": null, "is_universal_api": false, "git_metadata": null,
    }]}))
}

/// `GET /version`.
pub async fn version(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "server": "herald",
        "version": env!("CARGO_PKG_VERSION"),
        "max_body_bytes": state.limits.max_body_bytes,
    }))
}

/// The body of `POST /logs3` (its `api_version` is ignored).
#[derive(Debug, Deserialize)]
struct Logs3 {
    rows: Value,
}

/// `POST /logs3`: the SDK's row upload. Python sends it without a
/// `Content-Type`, so the body is read as bytes and parsed here.
pub async fn logs3(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let upload: Logs3 = parse_json(&body)?;
    let rows = match upload.rows {
        Value::Array(rows) => rows,
        Value::Object(overflow) if overflow.get("type") == Some(&json!("logs3_overflow")) => {
            return Err(ApiError::bad_request(
                "unsupported",
                format!(
                    "overflow uploads are not supported: Herald takes rows inline, in bodies up \
                     to {} bytes",
                    state.limits.max_body_bytes
                ),
                Some("rows".into()),
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "rows must be an array",
                Some("rows".into()),
            ));
        }
    };
    match write_rows(&state.store, rows).await {
        Ok(row_ids) => Ok(Json(json!({"row_ids": row_ids}))),
        Err(Logs3Error::Invalid(error)) => Err(ApiError::BadRequest {
            code: "invalid_field",
            message: error.message,
            path: Some(error.path),
        }),
        Err(Logs3Error::Unknown { path, message }) => Err(ApiError::BadRequest {
            code: "unknown_object",
            message,
            path: Some(path),
        }),
        Err(Logs3Error::Store(error)) => Err(error.into()),
    }
}

/// Names a project by id or name, as the register routes take it.
#[derive(Debug, Deserialize)]
struct ProjectRef {
    project_id: Option<String>,
    project_name: Option<String>,
}

impl ProjectRef {
    async fn resolve(&self, state: &AppState) -> Result<Project, ApiError> {
        match (&self.project_id, &self.project_name) {
            (Some(id), _) => Ok(state.store.project(parse_id(id, "project_id")?).await?),
            (None, Some(name)) if !name.trim().is_empty() => {
                Ok(state.store.create_project(name.trim(), None).await?.0)
            }
            _ => Err(ApiError::bad_request(
                "invalid_request",
                "project_id or project_name is required",
                Some("project_name".into()),
            )),
        }
    }
}

/// The body of `POST /api/project/register`.
#[derive(Debug, Deserialize)]
pub struct RegisterProject {
    #[serde(flatten)]
    project: ProjectRef,
}

/// `POST /api/project/register`: get or create a project by name.
pub async fn register_project(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterProject>,
) -> Result<Json<Value>, ApiError> {
    let project = body.project.resolve(&state).await?;
    Ok(Json(json!({"project": project})))
}

/// The query of `GET /api/project`.
#[derive(Debug, Deserialize)]
pub struct ProjectQuery {
    id: String,
}

/// `GET /api/project?id=…`.
pub async fn get_project(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ProjectQuery>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(state.store.project(parse_id(&query.id, "id")?).await?))
}

/// The body of `POST /api/experiment/register`.
#[derive(Debug, Deserialize)]
pub struct RegisterExperiment {
    #[serde(flatten)]
    project: ProjectRef,
    experiment_name: Option<String>,
    description: Option<String>,
    dataset_id: Option<String>,
    #[serde(default)]
    update: bool,
    #[serde(default)]
    public: bool,
    metadata: Option<Value>,
    tags: Option<Vec<String>>,
}

/// `POST /api/experiment/register`: create an experiment (a fresh name
/// unless `update`), with its project.
pub async fn register_experiment(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterExperiment>,
) -> Result<Json<Value>, ApiError> {
    let project = body.project.resolve(&state).await?;
    let dataset_id = body
        .dataset_id
        .as_deref()
        .map(|id| parse_id(id, "dataset_id"))
        .transpose()?;
    let (experiment, _) = state
        .store
        .create_experiment(NewExperiment {
            project_id: project.id,
            name: body.experiment_name,
            description: body.description,
            dataset_id,
            public: body.public,
            metadata: body.metadata,
            tags: body.tags,
            ensure_new: !body.update,
        })
        .await?;
    Ok(Json(json!({"project": project, "experiment": experiment})))
}

/// The body of `POST /api/dataset/register`.
#[derive(Debug, Deserialize)]
pub struct RegisterDataset {
    #[serde(flatten)]
    project: ProjectRef,
    dataset_name: Option<String>,
    description: Option<String>,
    metadata: Option<Value>,
}

/// `POST /api/dataset/register`: get or create a dataset by name.
pub async fn register_dataset(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterDataset>,
) -> Result<Json<Value>, ApiError> {
    let project = body.project.resolve(&state).await?;
    let name = body.dataset_name.unwrap_or_else(|| "logs".into());
    let (dataset, _) = state
        .store
        .create_dataset(
            project.id,
            &name,
            body.description.as_deref(),
            body.metadata,
        )
        .await?;
    Ok(Json(json!({"project": project, "dataset": dataset})))
}

/// `POST /api/base_experiment/get_id`: Herald keeps no base experiments.
pub async fn base_experiment() -> ApiError {
    ApiError::bad_request(
        "no_base_experiment",
        "this experiment has no base experiment",
        None,
    )
}

/// One score's or metric's summary, in the SDK's shape.
#[derive(Debug, Serialize)]
struct Summary {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'static str>,
    improvements: u32,
    regressions: u32,
}

/// The means of an experiment's scores and metrics, over all its rows.
async fn means(
    state: &AppState,
    object: ObjectRef,
) -> Result<(BTreeMap<String, Summary>, BTreeMap<String, Summary>), StoreError> {
    let mut sums: [BTreeMap<String, (f64, u32)>; 2] = Default::default();
    let mut cursor = None;
    loop {
        let page = state
            .store
            .fetch_events(
                object,
                &EventQuery {
                    filter: None,
                    range: XactRange {
                        after: cursor,
                        upto: None,
                    },
                    limit: None,
                },
            )
            .await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.xact_id);
        for row in &page {
            let json = row.to_json();
            for (field, sums) in ["scores", "metrics"].iter().zip(sums.iter_mut()) {
                if let Some(Value::Object(values)) = json.get(*field) {
                    for (name, value) in values {
                        if let Some(x) = value
                            .as_f64()
                            .filter(|_| !matches!(name.as_str(), "start" | "end"))
                        {
                            let entry = sums.entry(name.clone()).or_default();
                            entry.0 += x;
                            entry.1 += 1;
                        }
                    }
                }
            }
        }
    }
    let [scores, metrics] = sums;
    let summarize = |sums: BTreeMap<String, (f64, u32)>, is_score: bool| {
        sums.into_iter()
            .map(|(name, (sum, n))| {
                let mean = sum / f64::from(n.max(1));
                let summary = Summary {
                    name: name.clone(),
                    score: is_score.then_some(mean),
                    metric: (!is_score).then_some(mean),
                    unit: (!is_score).then_some(""),
                    improvements: 0,
                    regressions: 0,
                };
                (name, summary)
            })
            .collect()
    };
    Ok((summarize(scores, true), summarize(metrics, false)))
}

/// The query of `GET /experiment-comparison2`.
#[derive(Debug, Deserialize)]
pub struct ComparisonQuery {
    experiment_id: String,
}

/// `GET /experiment-comparison2`: an experiment's score and metric means
/// (Herald compares against no base, so there are no improvements or
/// regressions).
pub async fn experiment_comparison(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ComparisonQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&query.experiment_id, "experiment_id")?;
    let object = state.store.experiment_ref(id).await?;
    let (scores, metrics) = means(&state, object).await?;
    Ok(Json(json!({"scores": scores, "metrics": metrics})))
}

/// `GET /v1/experiment/{id}/summarize`: Python's end-of-`Eval` summary.
pub async fn summarize_experiment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let id: Uuid = parse_id(&id, "experiment_id")?;
    let experiment = state.store.experiment(id).await?;
    let project = state.store.project(experiment.project_id).await?;
    let object = ObjectRef {
        kind: ObjectKind::Experiment,
        id,
        project_id: project.id,
    };
    let (scores, metrics) = means(&state, object).await?;
    let base = base_url(&headers);
    Ok(Json(json!({
        "project_name": project.name,
        "experiment_name": experiment.name,
        "project_url": format!("{base}/v1/project/{}", project.id),
        "experiment_url": format!("{base}/v1/experiment/{id}"),
        "comparison_experiment_name": null,
        "scores": scores,
        "metrics": metrics,
    })))
}
