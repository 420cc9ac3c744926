//! `/v1/project`: create, list, get, update, delete projects.
//!
//! As in Braintrust, creating a project whose name exists returns the
//! existing project unchanged, and lists are `{"objects": […]}`, newest
//! first, paginated with `starting_after` (an object id) and `limit`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, QueryParams, parse_id};
use super::{AppState, ObjectList};
use crate::store::{ListParams, Project};

/// Longest accepted object name.
pub const MAX_NAME_LEN: usize = 1024;

/// Checks a name field: non-empty, at most [`MAX_NAME_LEN`] bytes.
pub fn check_name(name: &str, path: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_field",
            "must not be empty",
            Some(path.into()),
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("longer than {MAX_NAME_LEN} bytes"),
            Some(path.into()),
        ));
    }
    Ok(())
}

/// Parses an optional `starting_after` id.
pub fn starting_after(value: &Option<String>) -> Result<Option<uuid::Uuid>, ApiError> {
    value
        .as_deref()
        .map(|v| parse_id(v, "starting_after"))
        .transpose()
}

/// The body of `POST /v1/project`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Ignored (Braintrust organisation name).
    pub org_name: Option<String>,
}

/// The body of `PATCH /v1/project/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProject {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// Query parameters of `GET /v1/project`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProjects {
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
    /// Only the project with this name.
    pub project_name: Option<String>,
    /// Projects created before this project id (pagination).
    pub starting_after: Option<String>,
}

/// Create a project (or get the existing one with this name).
#[utoipa::path(post, path = "/v1/project", tag = "projects", request_body = CreateProject,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateProject>,
) -> Result<Json<Project>, ApiError> {
    check_name(&body.name, "name")?;
    let (project, _) = state
        .store
        .create_project(&body.name, body.description.as_deref())
        .await?;
    Ok(Json(project))
}

/// List projects, newest first.
#[utoipa::path(get, path = "/v1/project", tag = "projects", params(ListProjects),
    responses((status = 200, body = ObjectList<Project>), (status = 400, body = ErrorBody)))]
pub async fn list_projects(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListProjects>,
) -> Result<Json<ObjectList<Project>>, ApiError> {
    let params = ListParams {
        limit: q.limit,
        name: q.project_name,
        starting_after: starting_after(&q.starting_after)?,
    };
    let objects = state.store.list_projects(&params).await?;
    Ok(Json(ObjectList { objects }))
}

/// Get a project.
#[utoipa::path(get, path = "/v1/project/{project_id}", tag = "projects",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    let id = parse_id(&project_id, "project_id")?;
    Ok(Json(state.store.project(id).await?))
}

/// Rename a project or change its description.
#[utoipa::path(patch, path = "/v1/project/{project_id}", tag = "projects",
    params(("project_id" = String, Path, description = "Project id")),
    request_body = PatchProject,
    responses((status = 200, body = Project), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn patch_project(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    JsonBody(body): JsonBody<PatchProject>,
) -> Result<Json<Project>, ApiError> {
    let id = parse_id(&project_id, "project_id")?;
    if let Some(name) = &body.name {
        check_name(name, "name")?;
    }
    let description = body.description.as_deref().map(Some);
    let project = state
        .store
        .update_project(id, body.name.as_deref(), description)
        .await?;
    Ok(Json(project))
}

/// Delete a project and everything in it.
#[utoipa::path(delete, path = "/v1/project/{project_id}", tag = "projects",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
pub async fn delete_project(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    let id = parse_id(&project_id, "project_id")?;
    Ok(Json(state.store.delete_project(id).await?))
}
