//! `/v1/experiment` and `/v1/dataset`: create, list, get, delete.
//!
//! Their rows are inserted and fetched through [`super::events`]. Creating
//! an experiment or dataset whose name exists in the project returns the
//! existing one, except for experiments created with `ensure_new: true`,
//! which get a fresh name (`name-1`, `name-2`, …).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, QueryParams, parse_id};
use super::projects::{check_name, starting_after};
use super::{AppState, ObjectList};
use crate::store::objects::NewExperiment;
use crate::store::{Dataset, Experiment, ListParams};

/// The body of `POST /v1/experiment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    /// The project.
    pub project_id: String,
    /// Name, unique in the project (default `experiment`, made unique).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The dataset the experiment runs against.
    pub dataset_id: Option<String>,
    /// Whether it is public.
    #[serde(default)]
    pub public: bool,
    /// Metadata object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Create a new experiment even if the name exists, renaming it.
    #[serde(default)]
    pub ensure_new: bool,
    /// Sent by Braintrust's SDKs (git state, base experiment, dataset
    /// version, parameters); accepted and not stored.
    #[serde(default, flatten)]
    #[schema(value_type = Object)]
    pub sdk_fields: SdkExperimentFields,
}

/// What Braintrust's SDKs send with a new experiment that Herald accepts
/// without keeping (each field documented so a typo still fails).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SdkExperimentFields {
    /// Git state of the run.
    #[schema(value_type = Option<Object>)]
    pub repo_info: Option<Value>,
    /// The experiment to compare with.
    pub base_exp_id: Option<String>,
    /// Git commits before this one, to find a base experiment.
    #[schema(value_type = Option<Vec<String>>)]
    pub ancestor_commits: Option<Value>,
    /// The dataset version the experiment ran on.
    #[schema(value_type = Option<String>)]
    pub dataset_version: Option<Value>,
    /// Saved parameters.
    pub parameters_id: Option<String>,
    /// Their version.
    #[schema(value_type = Option<String>)]
    pub parameters_version: Option<Value>,
}

/// The body of `POST /v1/dataset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDataset {
    /// The project.
    pub project_id: String,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Metadata object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Query parameters of the experiment and dataset lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListObjects {
    /// Only objects of this project.
    pub project_id: Option<String>,
    /// Only the experiment with this name.
    pub experiment_name: Option<String>,
    /// Only the dataset with this name.
    pub dataset_name: Option<String>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
    /// Objects created before this id (pagination).
    pub starting_after: Option<String>,
}

impl ListObjects {
    /// The project and the store's list parameters, `name` being the
    /// experiment's or dataset's name filter (each route reads its own).
    fn into_params(self, name: Option<String>) -> Result<(Option<Uuid>, ListParams), ApiError> {
        let project_id = self
            .project_id
            .as_deref()
            .map(|p| parse_id(p, "project_id"))
            .transpose()?;
        let params = ListParams {
            limit: self.limit,
            name,
            starting_after: starting_after(&self.starting_after)?,
        };
        Ok((project_id, params))
    }
}

fn check_metadata(metadata: &Option<Value>) -> Result<(), ApiError> {
    match metadata {
        None | Some(Value::Object(_)) | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "invalid_field",
            "expected an object",
            Some("metadata".into()),
        )),
    }
}

/// Create an experiment (or get the existing one with this name).
#[utoipa::path(post, path = "/v1/experiment", tag = "experiments",
    request_body = CreateExperiment,
    responses((status = 200, body = Experiment), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn create_experiment(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateExperiment>,
) -> Result<Json<Experiment>, ApiError> {
    let project_id = parse_id(&body.project_id, "project_id")?;
    if let Some(name) = &body.name {
        check_name(name, "name")?;
    }
    check_metadata(&body.metadata)?;
    let dataset_id = body
        .dataset_id
        .as_deref()
        .map(|d| parse_id(d, "dataset_id"))
        .transpose()?;
    if let Some(d) = dataset_id {
        state.store.dataset(d).await?;
    }
    let (experiment, _) = state
        .store
        .create_experiment(NewExperiment {
            project_id,
            name: body.name,
            description: body.description,
            dataset_id,
            public: body.public,
            metadata: body.metadata.filter(|m| !m.is_null()),
            tags: body.tags,
            ensure_new: body.ensure_new,
        })
        .await?;
    Ok(Json(experiment))
}

/// List experiments, newest first.
#[utoipa::path(get, path = "/v1/experiment", tag = "experiments", params(ListObjects),
    responses((status = 200, body = ObjectList<Experiment>), (status = 400, body = ErrorBody)))]
pub async fn list_experiments(
    State(state): State<AppState>,
    QueryParams(mut q): QueryParams<ListObjects>,
) -> Result<Json<ObjectList<Experiment>>, ApiError> {
    let name = q.experiment_name.take();
    let (project_id, params) = q.into_params(name)?;
    let objects = state.store.list_experiments(project_id, &params).await?;
    Ok(Json(ObjectList { objects }))
}

/// Get an experiment.
#[utoipa::path(get, path = "/v1/experiment/{experiment_id}", tag = "experiments",
    params(("experiment_id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody)))]
pub async fn get_experiment(
    State(state): State<AppState>,
    Path(experiment_id): Path<String>,
) -> Result<Json<Experiment>, ApiError> {
    let id = parse_id(&experiment_id, "experiment_id")?;
    Ok(Json(state.store.experiment(id).await?))
}

/// Delete an experiment and its events.
#[utoipa::path(delete, path = "/v1/experiment/{experiment_id}", tag = "experiments",
    params(("experiment_id" = String, Path, description = "Experiment id")),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody)))]
pub async fn delete_experiment(
    State(state): State<AppState>,
    Path(experiment_id): Path<String>,
) -> Result<Json<Experiment>, ApiError> {
    let id = parse_id(&experiment_id, "experiment_id")?;
    Ok(Json(state.store.delete_experiment(id).await?))
}

/// Create a dataset (or get the existing one with this name).
#[utoipa::path(post, path = "/v1/dataset", tag = "datasets", request_body = CreateDataset,
    responses((status = 200, body = Dataset), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn create_dataset(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateDataset>,
) -> Result<Json<Dataset>, ApiError> {
    let project_id = parse_id(&body.project_id, "project_id")?;
    check_name(&body.name, "name")?;
    check_metadata(&body.metadata)?;
    let (dataset, _) = state
        .store
        .create_dataset(
            project_id,
            &body.name,
            body.description.as_deref(),
            body.metadata.filter(|m| !m.is_null()),
        )
        .await?;
    Ok(Json(dataset))
}

/// List datasets, newest first.
#[utoipa::path(get, path = "/v1/dataset", tag = "datasets", params(ListObjects),
    responses((status = 200, body = ObjectList<Dataset>), (status = 400, body = ErrorBody)))]
pub async fn list_datasets(
    State(state): State<AppState>,
    QueryParams(mut q): QueryParams<ListObjects>,
) -> Result<Json<ObjectList<Dataset>>, ApiError> {
    let name = q.dataset_name.take();
    let (project_id, params) = q.into_params(name)?;
    let objects = state.store.list_datasets(project_id, &params).await?;
    Ok(Json(ObjectList { objects }))
}

/// Get a dataset.
#[utoipa::path(get, path = "/v1/dataset/{dataset_id}", tag = "datasets",
    params(("dataset_id" = String, Path, description = "Dataset id")),
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    Path(dataset_id): Path<String>,
) -> Result<Json<Dataset>, ApiError> {
    let id = parse_id(&dataset_id, "dataset_id")?;
    Ok(Json(state.store.dataset(id).await?))
}

/// Delete a dataset and its rows.
#[utoipa::path(delete, path = "/v1/dataset/{dataset_id}", tag = "datasets",
    params(("dataset_id" = String, Path, description = "Dataset id")),
    responses((status = 200, body = Dataset), (status = 404, body = ErrorBody)))]
pub async fn delete_dataset(
    State(state): State<AppState>,
    Path(dataset_id): Path<String>,
) -> Result<Json<Dataset>, ApiError> {
    let id = parse_id(&dataset_id, "dataset_id")?;
    Ok(Json(state.store.delete_dataset(id).await?))
}
