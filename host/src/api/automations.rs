//! `/v1/project_automation`: create, create-or-replace, list, get, update,
//! delete — Braintrust's shapes and semantics.
//!
//! Every write parses the config (errors carry the field path, e.g.
//! `config.interval_seconds`), checks the action with its plugin (problems
//! at `config.action.<field>`) and keeps stored secrets when the client sends
//! the redaction placeholder back. Every read redacts secret fields. The
//! engine is told of each change before the response, so spans ingested
//! right after a create are already watched.

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::KeyIdentity;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, parse_id, parse_limit, push_ids};
use super::projects::check_name;
use super::{AppState, ObjectList};
use crate::automations::config::AutomationStatus;
use crate::automations::config::{ExportConfig, ExportDefinition};
use crate::automations::validate::{redact, restore_secrets, validate_action};
use crate::automations::{AutomationConfig, ConfigError};
use crate::export::query::ConfinedQuery;
use crate::store::{AutomationListParams, AutomationWrite, DbTime, StoredAutomation};

/// An automation as the API shows it (secrets redacted).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectAutomation {
    /// Unique id.
    pub id: Uuid,
    /// The project it watches.
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
    /// Who created it: the identity of the API key it was created with (a
    /// stable id, never the key).
    pub user_id: Option<Uuid>,
    /// The config, tagged by `event_type`, with its `status` (`active`,
    /// or `paused` however it was paused); secret fields read `[redacted]`.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// The body of `POST` and `PUT /v1/project_automation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAutomation {
    /// The project to watch.
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The config, tagged by `event_type`.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// The body of `PATCH /v1/project_automation/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAutomation {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// A whole new config.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

/// Query parameters of `GET /v1/project_automation`.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAutomations {
    /// At most this many (default and maximum 1000).
    pub limit: Option<u32>,
    /// Automations listed after this id (older).
    pub starting_after: Option<String>,
    /// Automations listed before this id (newer).
    pub ending_before: Option<String>,
    /// Only these ids (repeat the parameter or separate with commas).
    pub ids: Option<String>,
    /// Only the automation with this name.
    pub project_automation_name: Option<String>,
    /// Only this project's automations.
    pub project_id: Option<String>,
}

/// Maps a config problem to a 400 at its path.
pub fn config_error(err: ConfigError) -> ApiError {
    ApiError::bad_request("invalid_config", err.message, Some(err.path))
}

/// Parses and checks a config for writing to project `project_id`;
/// `stored` supplies secrets the client sent back redacted. Returns the
/// config and its `status`, if it has one.
pub async fn prepare_config(
    state: &AppState,
    project_id: Uuid,
    value: &Value,
    stored: Option<&AutomationConfig>,
) -> Result<(AutomationConfig, Option<AutomationStatus>), ApiError> {
    let plugins = state.automations.plugins();
    let (mut config, status) =
        AutomationConfig::parse_with_status(value, "config").map_err(config_error)?;
    if let (Some(AutomationConfig::BtqlExport(before)), AutomationConfig::BtqlExport(after)) =
        (stored, &config)
        && before.export_path != after.export_path
    {
        return Err(config_error(ConfigError::new(
            "config.export_path",
            format!(
                "cannot change after creation (it is {}): objects already written stay where                  they are; create a new automation for a new path",
                before.export_path
            ),
        )));
    }
    restore_secrets(plugins, &mut config, stored, "config").map_err(config_error)?;
    if let AutomationConfig::BtqlExport(ExportConfig {
        export_definition: ExportDefinition::BtqlQuery { btql_query },
        ..
    }) = &config
    {
        ConfinedQuery::new(btql_query, state.store.dialect(), project_id).map_err(|e| {
            config_error(ConfigError::new("config.export_definition.btql_query", e.0))
        })?;
    }
    if let AutomationConfig::Windowed(windowed) = &config {
        crate::automations::windowed::calculation::check(
            &state.store,
            project_id,
            windowed,
            "config",
        )
        .await
        .map_err(config_error)?;
    }
    for at in config.actions() {
        // The plugin checks the config it will be delivered with: env var
        // references resolved.
        let path = format!("config.{}", at.path);
        let resolved = state
            .automations
            .resolve_action(project_id, at.action, &path)
            .await
            .map_err(config_error)?;
        validate_action(plugins, &resolved, &path)
            .await
            .map_err(config_error)?;
    }
    Ok((config, status))
}

/// The API view of a stored automation, secrets redacted.
pub fn present(state: &AppState, stored: StoredAutomation) -> ProjectAutomation {
    let config = match AutomationConfig::parse(&stored.config.0, "config") {
        Ok(mut config) => {
            redact(state.automations.plugins(), &mut config);
            config.to_json_with_status(AutomationStatus::of_paused(stored.paused))
        }
        // Never echo an unreadable config: it may hold secrets.
        Err(_) => serde_json::json!({"event_type": stored.event_type}),
    };
    ProjectAutomation {
        id: stored.id,
        project_id: stored.project_id,
        name: stored.name,
        description: stored.description,
        created: stored.created,
        user_id: stored.user_id.map(|id| id.0),
        config,
    }
}

fn parse_stored(stored: &StoredAutomation) -> Option<AutomationConfig> {
    AutomationConfig::parse(&stored.config.0, "config").ok()
}

async fn write_of(
    state: &AppState,
    body: CreateAutomation,
    stored: Option<&StoredAutomation>,
    creator: Option<Extension<KeyIdentity>>,
) -> Result<(AutomationWrite, AutomationConfig), ApiError> {
    check_name(&body.name, "name")?;
    let previous = stored.and_then(parse_stored);
    let (config, status) =
        prepare_config(state, body.project_id, &body.config, previous.as_ref()).await?;
    let write = AutomationWrite {
        project_id: body.project_id,
        name: body.name,
        description: body.description,
        event_type: config.event_type().to_string(),
        config: config.to_json(),
        paused: status.map(|s| s == AutomationStatus::Paused),
        user_id: creator.map(|Extension(KeyIdentity(id))| id),
    };
    Ok((write, config))
}

/// Create an automation (or get the existing one with this name).
#[utoipa::path(post, path = "/v1/project_automation", tag = "automations",
    request_body = CreateAutomation,
    responses((status = 200, body = ProjectAutomation), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn create_automation(
    State(state): State<AppState>,
    creator: Option<Extension<KeyIdentity>>,
    JsonBody(body): JsonBody<CreateAutomation>,
) -> Result<Json<ProjectAutomation>, ApiError> {
    state.store.project(body.project_id).await?;
    let (write, config) = write_of(&state, body, None, creator).await?;
    let stored = state.automations.create(&write, &config).await?;
    Ok(Json(present(&state, stored)))
}

/// Create an automation, or replace the one with this project and name.
#[utoipa::path(put, path = "/v1/project_automation", tag = "automations",
    request_body = CreateAutomation,
    responses((status = 200, body = ProjectAutomation), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn replace_automation(
    State(state): State<AppState>,
    creator: Option<Extension<KeyIdentity>>,
    JsonBody(body): JsonBody<CreateAutomation>,
) -> Result<Json<ProjectAutomation>, ApiError> {
    state.store.project(body.project_id).await?;
    let existing = state
        .store
        .list_automations(&AutomationListParams {
            project_id: Some(body.project_id),
            name: Some(body.name.clone()),
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .pop();
    let (write, config) = write_of(&state, body, existing.as_ref(), creator).await?;
    let stored = state.automations.replace(&write, &config).await?;
    Ok(Json(present(&state, stored)))
}

/// List automations, newest first.
#[utoipa::path(get, path = "/v1/project_automation", tag = "automations",
    params(ListAutomations),
    responses((status = 200, body = ObjectList<ProjectAutomation>), (status = 400, body = ErrorBody)))]
pub async fn list_automations(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ObjectList<ProjectAutomation>>, ApiError> {
    let params = list_params(query.as_deref().unwrap_or(""))?;
    let objects = state
        .store
        .list_automations(&params)
        .await?
        .into_iter()
        .map(|stored| present(&state, stored))
        .collect();
    Ok(Json(ObjectList { objects }))
}

/// Parses the list query by hand: `ids` may repeat, which the generic
/// query extractor does not allow.
fn list_params(query: &str) -> Result<AutomationListParams, ApiError> {
    let mut params = AutomationListParams::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "limit" => params.limit = Some(parse_limit(&value)?),
            "starting_after" => params.starting_after = Some(parse_id(&value, "starting_after")?),
            "ending_before" => params.ending_before = Some(parse_id(&value, "ending_before")?),
            "ids" => push_ids(&value, &mut params.ids)?,
            "project_automation_name" => params.name = Some(value.into_owned()),
            "project_id" => params.project_id = Some(parse_id(&value, "project_id")?),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("unknown query parameter {other:?}"),
                    Some(other.to_string()),
                ));
            }
        }
    }
    if params.ids.len() > 1000 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "at most 1000 ids",
            Some("ids".into()),
        ));
    }
    Ok(params)
}

/// Get an automation.
#[utoipa::path(get, path = "/v1/project_automation/{automation_id}", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = ProjectAutomation), (status = 404, body = ErrorBody)))]
pub async fn get_automation(
    State(state): State<AppState>,
    Path(automation_id): Path<String>,
) -> Result<Json<ProjectAutomation>, ApiError> {
    let id = parse_id(&automation_id, "automation_id")?;
    let stored = state.store.automation(id).await?;
    Ok(Json(present(&state, stored)))
}

/// Change an automation's name, description or config.
#[utoipa::path(patch, path = "/v1/project_automation/{automation_id}", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    request_body = PatchAutomation,
    responses((status = 200, body = ProjectAutomation), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch_automation(
    State(state): State<AppState>,
    Path(automation_id): Path<String>,
    JsonBody(body): JsonBody<PatchAutomation>,
) -> Result<Json<ProjectAutomation>, ApiError> {
    let id = parse_id(&automation_id, "automation_id")?;
    let current = state.store.automation(id).await?;
    if let Some(name) = &body.name {
        check_name(name, "name")?;
    }
    let (config, status) = match &body.config {
        Some(value) => {
            let previous = parse_stored(&current);
            let (config, status) =
                prepare_config(&state, current.project_id, value, previous.as_ref()).await?;
            (Some(config), status)
        }
        None => (None, None),
    };
    let stored = state
        .automations
        .update(
            id,
            body.name.as_deref(),
            body.description.as_deref(),
            config.as_ref(),
            status,
        )
        .await?;
    Ok(Json(present(&state, stored)))
}

/// Delete an automation with its state, runs and queued deliveries.
#[utoipa::path(delete, path = "/v1/project_automation/{automation_id}", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = ProjectAutomation), (status = 404, body = ErrorBody)))]
pub async fn delete_automation(
    State(state): State<AppState>,
    Path(automation_id): Path<String>,
) -> Result<Json<ProjectAutomation>, ApiError> {
    let id = parse_id(&automation_id, "automation_id")?;
    let stored = state.automations.delete(id).await?;
    Ok(Json(present(&state, stored)))
}
