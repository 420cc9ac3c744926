//! Prompts, versions and environments.
//!
//! Braintrust's prompt routes, plus Herald's environment assignment:
//!
//! - `POST /v1/prompt` `{project_id, slug, name, …}` creates a prompt (or
//!   returns the one with that slug); `PATCH /v1/prompt/{id}` saves a new
//!   version; every version has its own `_xact_id`.
//! - `GET /v1/prompt/{id}?version=…` reads a version,
//!   `GET /v1/prompt/{id}?environment=production` the version an environment
//!   points at; `GET /v1/prompt/{id}/versions` lists them all.
//! - `POST /v1/environment` `{slug, name?, description?}` creates an
//!   environment (global, like Braintrust's organisation-wide ones).
//! - `PUT /v1/prompt/{id}/environment/{slug}` `{"version": "…"}` (default:
//!   the latest) points the environment at a version; `DELETE` on the same
//!   route removes it. Both answer with the recorded event, which
//!   environment-update alerts react to; `GET /v1/environment_event` lists
//!   those events in commit order (`after` = the last `_xact_id` seen).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, OptionalJsonBody, QueryParams, parse_id};
use super::projects::check_name;
use super::{AppState, ObjectList};
use crate::store::environments::{Environment, EnvironmentAssignment, EnvironmentEvent};
use crate::store::prompts::{Prompt, PromptContent};

/// The body of `POST /v1/prompt`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrompt {
    /// The project.
    pub project_id: String,
    /// Unique slug in the project.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `llm`, `scorer`, `task`, `tool`, …
    pub function_type: Option<String>,
    /// The prompt (messages, model, parameters).
    #[schema(value_type = Option<Object>)]
    pub prompt_data: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// The body of `PATCH /v1/prompt/{id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPrompt {
    /// Display name.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Function type.
    pub function_type: Option<String>,
    /// The prompt.
    #[schema(value_type = Option<Object>)]
    pub prompt_data: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Query parameters of `GET /v1/prompt`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPrompts {
    /// Only prompts of this project.
    pub project_id: Option<String>,
    /// Only the prompt with this slug.
    pub slug: Option<String>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
}

/// Query parameters of `GET /v1/prompt/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetPrompt {
    /// Read this version (or the latest one before it).
    pub version: Option<String>,
    /// Read the version this environment points at.
    pub environment: Option<String>,
}

/// The body of `PUT /v1/prompt/{id}/environment/{slug}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignEnvironment {
    /// The prompt version (`_xact_id`); default the latest.
    pub version: Option<String>,
}

/// The answer to an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentChange {
    /// The assignment now in force.
    pub assignment: EnvironmentAssignment,
    /// The recorded event; null when nothing changed.
    pub event: Option<EnvironmentEvent>,
}

/// The body of `POST /v1/environment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    /// Unique slug, e.g. `production`.
    pub slug: String,
    /// Display name (default: the slug).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// Query parameters of `GET /v1/environment_event`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEnvironmentEvents {
    /// Only events of this project.
    pub project_id: Option<String>,
    /// Only events after this `_xact_id`.
    pub after: Option<String>,
    /// At most this many (default 1000, at most 10000).
    pub limit: Option<u32>,
}

fn check_slug(slug: &str, path: &str) -> Result<(), ApiError> {
    check_name(slug, path)?;
    let ok = slug
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ApiError::bad_request(
            "invalid_field",
            "a slug may contain only letters, digits, `-`, `_` and `.`",
            Some(path.into()),
        ));
    }
    Ok(())
}

fn parse_version(value: &Option<String>, path: &str) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_field",
                    format!("{v:?} is not a prompt version (`_xact_id`)"),
                    Some(path.into()),
                )
            })
        })
        .transpose()
}

/// Create a prompt (or get the existing one with this slug).
#[utoipa::path(post, path = "/v1/prompt", tag = "prompts", request_body = CreatePrompt,
    responses((status = 200, body = Prompt), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn create_prompt(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreatePrompt>,
) -> Result<Json<Prompt>, ApiError> {
    let project_id = parse_id(&body.project_id, "project_id")?;
    check_slug(&body.slug, "slug")?;
    check_name(&body.name, "name")?;
    let content = PromptContent {
        name: body.name,
        description: body.description,
        function_type: body.function_type,
        prompt_data: body.prompt_data,
        tags: body.tags,
        metadata: body.metadata,
    };
    let (prompt, _) = state
        .store
        .create_prompt(project_id, &body.slug, content)
        .await?;
    Ok(Json(prompt))
}

/// List prompts (latest versions), newest first.
#[utoipa::path(get, path = "/v1/prompt", tag = "prompts", params(ListPrompts),
    responses((status = 200, body = ObjectList<Prompt>), (status = 400, body = ErrorBody)))]
pub async fn list_prompts(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListPrompts>,
) -> Result<Json<ObjectList<Prompt>>, ApiError> {
    let project_id = q
        .project_id
        .as_deref()
        .map(|p| parse_id(p, "project_id"))
        .transpose()?;
    let limit = q.limit.unwrap_or(1000).min(1000);
    let objects = state
        .store
        .list_prompts(project_id, q.slug.as_deref(), limit)
        .await?;
    Ok(Json(ObjectList { objects }))
}

/// Get a prompt: the latest version, a given version, or an environment's.
#[utoipa::path(get, path = "/v1/prompt/{prompt_id}", tag = "prompts",
    params(("prompt_id" = String, Path, description = "Prompt id"), GetPrompt),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn get_prompt(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
    QueryParams(q): QueryParams<GetPrompt>,
) -> Result<Json<Prompt>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    let prompt = match (&q.environment, parse_version(&q.version, "version")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "pass either version or environment, not both",
                Some("environment".into()),
            ));
        }
        (Some(env), None) => state.store.prompt_in_environment(id, env).await?,
        (None, version) => state.store.prompt(id, version).await?,
    };
    Ok(Json(prompt))
}

/// Save a new version of a prompt with the given fields changed.
#[utoipa::path(patch, path = "/v1/prompt/{prompt_id}", tag = "prompts",
    params(("prompt_id" = String, Path, description = "Prompt id")),
    request_body = PatchPrompt,
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn patch_prompt(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
    JsonBody(body): JsonBody<PatchPrompt>,
) -> Result<Json<Prompt>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    if let Some(name) = &body.name {
        check_name(name, "name")?;
    }
    let current = state.store.prompt(id, None).await?;
    let content = PromptContent {
        name: body.name.unwrap_or(current.name),
        description: body.description.or(current.description),
        function_type: body.function_type.or(current.function_type),
        prompt_data: body.prompt_data.or(current.prompt_data.map(|j| j.0)),
        tags: match body.tags {
            Some(t) => Some(t),
            None => current.tags.and_then(|j| serde_json::from_value(j.0).ok()),
        },
        metadata: body.metadata.or(current.metadata.map(|j| j.0)),
    };
    Ok(Json(state.store.update_prompt(id, content).await?))
}

/// Delete a prompt (environments pointing at it record a removal).
#[utoipa::path(delete, path = "/v1/prompt/{prompt_id}", tag = "prompts",
    params(("prompt_id" = String, Path, description = "Prompt id")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn delete_prompt(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
) -> Result<Json<Prompt>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    Ok(Json(state.store.delete_prompt(id).await?))
}

/// List every version of a prompt, newest first.
#[utoipa::path(get, path = "/v1/prompt/{prompt_id}/versions", tag = "prompts",
    params(("prompt_id" = String, Path, description = "Prompt id")),
    responses((status = 200, body = ObjectList<Prompt>), (status = 404, body = ErrorBody)))]
pub async fn prompt_versions(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
) -> Result<Json<ObjectList<Prompt>>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    let objects = state.store.prompt_versions(id).await?;
    Ok(Json(ObjectList { objects }))
}

/// List the environments pointing at versions of a prompt.
#[utoipa::path(get, path = "/v1/prompt/{prompt_id}/environment", tag = "environments",
    params(("prompt_id" = String, Path, description = "Prompt id")),
    responses((status = 200, body = ObjectList<EnvironmentAssignment>),
              (status = 404, body = ErrorBody)))]
pub async fn prompt_environments(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
) -> Result<Json<ObjectList<EnvironmentAssignment>>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    state.store.prompt(id, None).await?;
    let objects = state.store.prompt_environments(id).await?;
    Ok(Json(ObjectList { objects }))
}

/// Point an environment at a version of a prompt.
#[utoipa::path(put, path = "/v1/prompt/{prompt_id}/environment/{environment_slug}",
    tag = "environments",
    params(("prompt_id" = String, Path, description = "Prompt id"),
           ("environment_slug" = String, Path, description = "Environment slug")),
    request_body = AssignEnvironment,
    responses((status = 200, body = AssignmentChange), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn assign_environment(
    State(state): State<AppState>,
    Path((prompt_id, slug)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<AssignEnvironment>,
) -> Result<Json<AssignmentChange>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    let version = parse_version(&body.unwrap_or_default().version, "version")?;
    let (assignment, event) = state.store.assign_environment(id, &slug, version).await?;
    Ok(Json(AssignmentChange { assignment, event }))
}

/// Remove an environment from a prompt.
#[utoipa::path(delete, path = "/v1/prompt/{prompt_id}/environment/{environment_slug}",
    tag = "environments",
    params(("prompt_id" = String, Path, description = "Prompt id"),
           ("environment_slug" = String, Path, description = "Environment slug")),
    responses((status = 200, body = EnvironmentEvent), (status = 404, body = ErrorBody)))]
pub async fn unassign_environment(
    State(state): State<AppState>,
    Path((prompt_id, slug)): Path<(String, String)>,
) -> Result<Json<EnvironmentEvent>, ApiError> {
    let id = parse_id(&prompt_id, "prompt_id")?;
    Ok(Json(state.store.unassign_environment(id, &slug).await?))
}

/// Create an environment (or get the existing one with this slug).
#[utoipa::path(post, path = "/v1/environment", tag = "environments",
    request_body = CreateEnvironment,
    responses((status = 200, body = Environment), (status = 400, body = ErrorBody)))]
pub async fn create_environment(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateEnvironment>,
) -> Result<Json<Environment>, ApiError> {
    check_slug(&body.slug, "slug")?;
    if let Some(name) = &body.name {
        check_name(name, "name")?;
    }
    let (env, _) = state
        .store
        .create_environment(
            &body.slug,
            body.name.as_deref(),
            body.description.as_deref(),
        )
        .await?;
    Ok(Json(env))
}

/// List environments.
#[utoipa::path(get, path = "/v1/environment", tag = "environments",
    responses((status = 200, body = ObjectList<Environment>)))]
pub async fn list_environments(
    State(state): State<AppState>,
) -> Result<Json<ObjectList<Environment>>, ApiError> {
    let objects = state.store.list_environments().await?;
    Ok(Json(ObjectList { objects }))
}

/// Get an environment.
#[utoipa::path(get, path = "/v1/environment/{environment_id}", tag = "environments",
    params(("environment_id" = String, Path, description = "Environment id")),
    responses((status = 200, body = Environment), (status = 404, body = ErrorBody)))]
pub async fn get_environment(
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
) -> Result<Json<Environment>, ApiError> {
    let id = parse_id(&environment_id, "environment_id")?;
    Ok(Json(state.store.environment(id).await?))
}

/// Delete an environment (each prompt it pointed at records a removal).
#[utoipa::path(delete, path = "/v1/environment/{environment_id}", tag = "environments",
    params(("environment_id" = String, Path, description = "Environment id")),
    responses((status = 200, body = Environment), (status = 404, body = ErrorBody)))]
pub async fn delete_environment(
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
) -> Result<Json<Environment>, ApiError> {
    let id = parse_id(&environment_id, "environment_id")?;
    Ok(Json(state.store.delete_environment(id).await?))
}

/// List environment events in commit order.
#[utoipa::path(get, path = "/v1/environment_event", tag = "environments",
    params(ListEnvironmentEvents),
    responses((status = 200, body = ObjectList<EnvironmentEvent>),
              (status = 400, body = ErrorBody)))]
pub async fn environment_events(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<ListEnvironmentEvents>,
) -> Result<Json<ObjectList<EnvironmentEvent>>, ApiError> {
    let project_id = q
        .project_id
        .as_deref()
        .map(|p| parse_id(p, "project_id"))
        .transpose()?;
    let after = parse_version(&q.after, "after")?;
    let objects = state
        .store
        .environment_events(project_id, after, q.limit.unwrap_or(1000))
        .await?;
    Ok(Json(ObjectList { objects }))
}
