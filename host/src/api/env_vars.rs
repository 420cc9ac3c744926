//! `/v1/env_var`: Braintrust's environment variables, the secrets store.
//!
//! Create (an existing name on the object is returned unmodified), create
//! or replace, list, get, patch, delete. A variable belongs to the
//! organization or to a project (`function` is Braintrust's third scope;
//! Herald has no functions and says so). The value is write-only: no
//! answer contains it, only `has_value`; it is sealed before it is stored
//! (`crate::sealing`). Automation configs name a variable instead of
//! holding a secret (`secret_name`, `routing_key_secret_name`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, parse_id, parse_limit, push_ids};
use super::{AppState, ObjectList};
use crate::store::{EnvVar, EnvVarChange, EnvVarListParams, EnvVarScope, EnvVarWrite};

/// The longest value accepted: secrets are small.
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// The body of `POST` and `PUT /v1/env_var`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvVar {
    /// `organization` or `project`.
    pub object_type: String,
    /// The organization's id (`GET /api/apikey/login` shows it) or the
    /// project's.
    pub object_id: String,
    /// The name configs use for it, e.g. `PAGERDUTY_ROUTING_KEY`.
    pub name: String,
    /// The secret. Never returned.
    pub value: Option<String>,
    /// Free-form metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// What kind of secret it is.
    pub secret_type: Option<String>,
}

/// The body of `PATCH /v1/env_var/{env_var_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEnvVar {
    /// A new name.
    pub name: Option<String>,
    /// A new value (`null` removes it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub value: Option<Option<String>>,
    /// New metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A new secret type.
    pub secret_type: Option<String>,
}

/// `Some(None)` for an explicit `null`, so PATCH can remove a value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_name(name: &str, path: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_name",
            "must be 1-256 characters of letters, digits, _, - and .",
            Some(path.into()),
        ))
    }
}

fn check_value(value: Option<&str>, path: &str) -> Result<(), ApiError> {
    match value {
        Some(v) if v.len() > MAX_VALUE_BYTES => Err(ApiError::bad_request(
            "invalid_value",
            format!("must be at most {MAX_VALUE_BYTES} bytes"),
            Some(path.into()),
        )),
        _ => Ok(()),
    }
}

fn scope(text: &str, path: &str) -> Result<EnvVarScope, ApiError> {
    match text {
        "organization" => Ok(EnvVarScope::Organization),
        "project" => Ok(EnvVarScope::Project),
        "function" => Err(ApiError::bad_request(
            "unsupported",
            "Herald has no functions: scope the variable to the organization or a project",
            Some(path.into()),
        )),
        _ => Err(ApiError::bad_request(
            "invalid_request",
            "must be organization or project",
            Some(path.into()),
        )),
    }
}

/// Checks a create body: names, scope, and that its object exists.
async fn write_of(state: &AppState, body: CreateEnvVar) -> Result<EnvVarWrite, ApiError> {
    let object_type = scope(&body.object_type, "object_type")?;
    let object_id = parse_id(&body.object_id, "object_id")?;
    check_name(&body.name, "name")?;
    check_value(body.value.as_deref(), "value")?;
    match object_type {
        EnvVarScope::Organization => {
            if object_id.to_string() != state.automations.organization_id() {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!(
                        "is not this organization's id ({})",
                        state.automations.organization_id()
                    ),
                    Some("object_id".into()),
                ));
            }
        }
        EnvVarScope::Project => {
            state.store.project(object_id).await?;
        }
    }
    Ok(EnvVarWrite {
        object_type,
        object_id,
        name: body.name,
        value: body.value,
        metadata: body.metadata,
        secret_type: body.secret_type,
    })
}

/// Create an env var (or get the existing one with this name).
#[utoipa::path(post, path = "/v1/env_var", tag = "env_vars", request_body = CreateEnvVar,
    responses((status = 200, body = EnvVar), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn create_env_var(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateEnvVar>,
) -> Result<Json<EnvVar>, ApiError> {
    let write = write_of(&state, body).await?;
    Ok(Json(state.store.create_env_var(&write).await?.0))
}

/// Create an env var, or replace the one with this name on its object.
#[utoipa::path(put, path = "/v1/env_var", tag = "env_vars", request_body = CreateEnvVar,
    responses((status = 200, body = EnvVar), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn replace_env_var(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateEnvVar>,
) -> Result<Json<EnvVar>, ApiError> {
    let write = write_of(&state, body).await?;
    Ok(Json(state.store.replace_env_var(&write).await?))
}

/// List env vars, newest first: `limit`, `ids` (repeatable or
/// comma-separated), `env_var_name`, `object_type`, `object_id`.
#[utoipa::path(get, path = "/v1/env_var", tag = "env_vars",
    responses((status = 200, body = ObjectList<EnvVar>), (status = 400, body = ErrorBody)))]
pub async fn list_env_vars(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ObjectList<EnvVar>>, ApiError> {
    let mut params = EnvVarListParams::default();
    for (key, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => params.limit = Some(parse_limit(&value)?),
            "ids" => push_ids(&value, &mut params.ids)?,
            "env_var_name" => params.name = Some(value.into_owned()),
            "object_type" => params.object_type = Some(scope(&value, "object_type")?),
            "object_id" => params.object_id = Some(parse_id(&value, "object_id")?),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("unknown query parameter {other:?}"),
                    Some(other.to_owned()),
                ));
            }
        }
    }
    let objects = state.store.list_env_vars(&params).await?;
    Ok(Json(ObjectList { objects }))
}

/// Get an env var (never its value).
#[utoipa::path(get, path = "/v1/env_var/{env_var_id}", tag = "env_vars",
    params(("env_var_id" = String, Path, description = "Env var id")),
    responses((status = 200, body = EnvVar), (status = 404, body = ErrorBody)))]
pub async fn get_env_var(
    State(state): State<AppState>,
    Path(env_var_id): Path<String>,
) -> Result<Json<EnvVar>, ApiError> {
    let id: Uuid = parse_id(&env_var_id, "env_var_id")?;
    Ok(Json(state.store.env_var(id).await?))
}

/// Change an env var's name, value, metadata or secret type.
#[utoipa::path(patch, path = "/v1/env_var/{env_var_id}", tag = "env_vars",
    params(("env_var_id" = String, Path, description = "Env var id")),
    request_body = PatchEnvVar,
    responses((status = 200, body = EnvVar), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch_env_var(
    State(state): State<AppState>,
    Path(env_var_id): Path<String>,
    JsonBody(body): JsonBody<PatchEnvVar>,
) -> Result<Json<EnvVar>, ApiError> {
    let id = parse_id(&env_var_id, "env_var_id")?;
    if let Some(name) = &body.name {
        check_name(name, "name")?;
    }
    check_value(body.value.as_ref().and_then(|v| v.as_deref()), "value")?;
    let change = EnvVarChange {
        name: body.name,
        value: body.value,
        metadata: body.metadata,
        secret_type: body.secret_type,
    };
    Ok(Json(state.store.update_env_var(id, change).await?))
}

/// Delete an env var.
#[utoipa::path(delete, path = "/v1/env_var/{env_var_id}", tag = "env_vars",
    params(("env_var_id" = String, Path, description = "Env var id")),
    responses((status = 200, body = EnvVar), (status = 404, body = ErrorBody)))]
pub async fn delete_env_var(
    State(state): State<AppState>,
    Path(env_var_id): Path<String>,
) -> Result<Json<EnvVar>, ApiError> {
    let id = parse_id(&env_var_id, "env_var_id")?;
    Ok(Json(state.store.delete_env_var(id).await?))
}
