//! Operating automations: run history, status, run once, test, resume,
//! reset state, and `GET /metrics`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::automations::prepare_config;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, OptionalJsonBody, QueryParams, parse_id};
use super::projects::starting_after;
use super::{AppState, ObjectList};
use crate::automations::config::{ExportConfig, RetentionConfig};
use crate::automations::test_alert::{TestAsk, TestError, TestOutcome};
use crate::automations::windowed::backtest;
use crate::automations::{AutomationConfig, AutomationStatus, ConfigError, RunNowError};
use crate::plugins::CheckStep;
use crate::store::{DbTime, Run, StoredAutomation};

/// Query parameters of `GET …/runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRuns {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Runs older than this run id (pagination).
    pub starting_after: Option<String>,
}

/// The optional body of `POST …/test`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestOptions {
    /// Send a log alert's test even when no logs match.
    #[serde(default)]
    pub send_on_zero_matches: bool,
    /// Windowed alerts: how many past evaluations the backtest replays
    /// (default 60, at most 1000).
    #[serde(default)]
    pub backtest_windows: Option<u32>,
}

impl TestOptions {
    /// The engine's view of these options; a backtest too long is a 400.
    fn ask(&self) -> Result<TestAsk, ApiError> {
        if let Some(windows) = self.backtest_windows
            && !(1..=backtest::MAX_WINDOWS).contains(&windows)
        {
            return Err(super::automations::config_error(ConfigError::new(
                "backtest_windows",
                format!("must be between 1 and {}", backtest::MAX_WINDOWS),
            )));
        }
        Ok(TestAsk {
            send_on_zero_matches: self.send_on_zero_matches,
            backtest_windows: self.backtest_windows,
        })
    }
}

/// The body of `POST /v1/project_automation/test`: a config not yet saved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestUnsaved {
    /// The project.
    pub project_id: Uuid,
    /// Name (shown in the payload).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The config to test.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Send a log alert's test even when no logs match.
    #[serde(default)]
    pub send_on_zero_matches: bool,
    /// Windowed alerts: the backtest's length (see [`TestOptions`]).
    #[serde(default)]
    pub backtest_windows: Option<u32>,
}

fn automation_id(raw: &str) -> Result<Uuid, ApiError> {
    parse_id(raw, "automation_id")
}

/// An automation's run history, newest first.
#[utoipa::path(get, path = "/v1/project_automation/{automation_id}/runs", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id"), ListRuns),
    responses((status = 200, body = ObjectList<Run>), (status = 404, body = ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    QueryParams(q): QueryParams<ListRuns>,
) -> Result<Json<ObjectList<Run>>, ApiError> {
    let id = automation_id(&raw)?;
    state.store.automation(id).await?;
    let objects = state
        .store
        .list_runs(
            id,
            q.limit.unwrap_or(100),
            starting_after(&q.starting_after)?,
        )
        .await?;
    Ok(Json(ObjectList { objects }))
}

/// An automation's state: suppressed or paused, last and next run.
#[utoipa::path(get, path = "/v1/project_automation/{automation_id}/status", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = AutomationStatus), (status = 404, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AutomationStatus>, ApiError> {
    Ok(Json(state.automations.status(automation_id(&raw)?).await?))
}

/// Run once now, ignoring suppression.
#[utoipa::path(post, path = "/v1/project_automation/{automation_id}/run", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn run_once(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let id = automation_id(&raw)?;
    match state.automations.run_now(id).await {
        Ok(run) => Ok(Json(run)),
        Err(RunNowError::Store(e)) => Err(e.into()),
        Err(RunNowError::Internal(e)) => Err(ApiError::Internal(e)),
        Err(e) => Err(ApiError::Conflict(e.to_string())),
    }
}

/// Send a test notification for a saved automation.
#[utoipa::path(post, path = "/v1/project_automation/{automation_id}/test", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    request_body = Option<TestOptions>,
    responses((status = 200, body = TestOutcome,
               description = "What was sent; for a retention automation a RetentionReport (a dry run), for an export a DestinationCheck"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_saved(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    OptionalJsonBody(options): OptionalJsonBody<TestOptions>,
) -> Result<Response, ApiError> {
    let id = automation_id(&raw)?;
    let stored = state.store.automation(id).await?;
    let config = AutomationConfig::parse(&stored.config.0, "config")
        .map_err(super::automations::config_error)?;
    let options = options.unwrap_or_default();
    match &config {
        AutomationConfig::Retention(retention) => {
            return preview(&state, stored.project_id, retention).await;
        }
        AutomationConfig::BtqlExport(export) => return check_destination(&state, export).await,
        _ => {}
    }
    let outcome = state
        .automations
        .test(&stored, &config, options.ask()?, true)
        .await;
    test_answer(outcome)
}

/// A retention automation's test: a dry run that deletes nothing.
async fn preview(
    state: &AppState,
    project_id: Uuid,
    config: &RetentionConfig,
) -> Result<Response, ApiError> {
    match state
        .automations
        .preview_retention(project_id, config)
        .await
    {
        Ok(report) => Ok(Json(report).into_response()),
        Err(error) => Err(ApiError::bad_request(
            "plugin_failed",
            format!("the retention preview failed: {error}"),
            None,
        )),
    }
}

/// What an export's test found: each step of writing, reading back and
/// deleting a small object at the export's path.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DestinationCheck {
    /// Whether every step worked.
    pub ok: bool,
    /// The bucket checked.
    pub bucket: String,
    /// The steps, in order; the first failure ends the check.
    pub steps: Vec<CheckStep>,
}

/// An export automation's test: write, read back and delete a test object.
async fn check_destination(state: &AppState, config: &ExportConfig) -> Result<Response, ApiError> {
    match state.automations.check_export_destination(config).await {
        Ok(steps) => Ok(Json(DestinationCheck {
            ok: !steps.is_empty() && steps.iter().all(|s| s.ok),
            bucket: config.path().bucket,
            steps,
        })
        .into_response()),
        Err(error) => Err(ApiError::bad_request(
            "plugin_failed",
            format!("the destination check failed: {error}"),
            None,
        )),
    }
}

/// Send a test notification for a config that is not saved.
#[utoipa::path(post, path = "/v1/project_automation/test", tag = "automations",
    request_body = TestUnsaved,
    responses((status = 200, body = TestOutcome,
               description = "What was sent; for a retention config a RetentionReport (a dry run), for an export a DestinationCheck"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_unsaved(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TestUnsaved>,
) -> Result<Response, ApiError> {
    state.store.project(body.project_id).await?;
    let (config, _status) = prepare_config(&state, body.project_id, &body.config, None).await?;
    match &config {
        AutomationConfig::Retention(retention) => {
            return preview(&state, body.project_id, retention).await;
        }
        AutomationConfig::BtqlExport(export) => return check_destination(&state, export).await,
        _ => {}
    }
    let draft = StoredAutomation {
        id: Uuid::nil(),
        project_id: body.project_id,
        name: body.name.unwrap_or_else(|| "unsaved automation".into()),
        description: body.description,
        created: DbTime::now(),
        event_type: config.event_type().to_string(),
        config: sqlx::types::Json(config.to_json()),
        paused: false,
        user_id: None,
    };
    let outcome = state
        .automations
        .test(
            &draft,
            &config,
            TestOptions {
                send_on_zero_matches: body.send_on_zero_matches,
                backtest_windows: body.backtest_windows,
            }
            .ask()?,
            false,
        )
        .await;
    test_answer(outcome)
}

fn test_answer(outcome: Result<TestOutcome, TestError>) -> Result<Response, ApiError> {
    match outcome {
        Ok(outcome) => Ok(Json(outcome).into_response()),
        Err(e @ TestError::NotSupported(_)) => {
            Err(ApiError::bad_request("not_supported", e.to_string(), None))
        }
        Err(TestError::Internal(e)) => Err(ApiError::Internal(e)),
    }
}

/// Re-send a run's failed notification now, with the same event id (one
/// more attempt, recorded on the run); 409 when it did not fail.
#[utoipa::path(post, path = "/v1/project_automation/{automation_id}/runs/{run_id}/retry",
    tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id"),
           ("run_id" = String, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn retry_run(
    State(state): State<AppState>,
    Path((raw, run)): Path<(String, String)>,
) -> Result<Json<Run>, ApiError> {
    let run_id = parse_id(&run, "run_id")?;
    Ok(Json(
        state
            .automations
            .retry_run(automation_id(&raw)?, run_id)
            .await?,
    ))
}

/// Un-pause an automation; its queued deliveries go out again.
#[utoipa::path(post, path = "/v1/project_automation/{automation_id}/resume", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = AutomationStatus), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AutomationStatus>, ApiError> {
    Ok(Json(state.automations.resume(automation_id(&raw)?).await?))
}

/// Forget suppression, carried-over matches, failures and pause.
#[utoipa::path(post, path = "/v1/project_automation/{automation_id}/reset_state", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = AutomationStatus), (status = 404, body = ErrorBody)))]
pub async fn reset_state(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AutomationStatus>, ApiError> {
    Ok(Json(
        state.automations.reset_state(automation_id(&raw)?).await?,
    ))
}

/// Reset an export's cursor so everything is exported again (recorded in
/// its run history); for other automations the same as `…/reset_state`.
#[utoipa::path(post, path = "/v1/project_automation/{automation_id}/reset", tag = "automations",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, body = AutomationStatus), (status = 404, body = ErrorBody)))]
pub async fn reset(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<AutomationStatus>, ApiError> {
    Ok(Json(
        state.automations.reset_state(automation_id(&raw)?).await?,
    ))
}

/// Prometheus metrics, text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let queued = state.store.queued_deliveries(None).await?;
    let body = state.automations.metrics().render(queued);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
