//! Herald's HTTP API, in the shapes of Braintrust's REST API.
//!
//! | Route | What |
//! |---|---|
//! | `GET /healthz` | liveness, no auth |
//! | `GET /openapi.json` | this API's OpenAPI 3.1 document, generated from the handlers |
//! | `POST/GET /v1/project`, `GET/PATCH/DELETE /v1/project/{id}` | projects |
//! | `POST /v1/project_logs/{project_id}/insert`, `GET/POST …/fetch` | project logs (spans) |
//! | `POST/GET /v1/experiment`, `GET/DELETE /v1/experiment/{id}`, `…/insert`, `…/fetch` | experiments |
//! | `POST/GET /v1/dataset`, `GET/DELETE /v1/dataset/{id}`, `…/insert`, `…/fetch` | datasets |
//! | `POST/GET /v1/prompt`, `GET/PATCH/DELETE /v1/prompt/{id}`, `…/versions` | prompts and versions |
//! | `GET /v1/prompt/{id}/environment`, `PUT/DELETE /v1/prompt/{id}/environment/{slug}` | environment assignment |
//! | `POST/GET /v1/environment`, `GET/DELETE /v1/environment/{id}` | environments |
//! | `GET /v1/environment_event` | the history of environment assignments |
//! | `GET /v1/plugins` | loaded plugins and files that failed to load |
//! | `POST/PUT/GET /v1/project_automation`, `GET/PATCH/DELETE …/{id}` | automations ([`automations`]) |
//! | `GET …/{id}/runs`, `POST …/{id}/runs/{run_id}/retry`, `GET …/{id}/status`, `POST …/{id}/run`, `…/test`, `…/resume`, `…/reset_state`, `…/reset`, `POST /v1/project_automation/test` | operating them ([`automation_runs`]) |
//! | `POST/PUT/GET /v1/env_var`, `GET/PATCH/DELETE /v1/env_var/{id}` | the secrets store ([`env_vars`]): values write-only, sealed |
//! | `GET /metrics` | Prometheus metrics |
//!
//! Every route but `/healthz` needs `Authorization: Bearer <key>` ([`auth`]).
//! Errors are JSON with a stable code and the path of the bad field
//! ([`error`]). Bodies are limited to [`Limits::max_body_bytes`] and insert
//! batches to [`Limits::max_batch_events`]; a batch is written all or
//! nothing. The OpenAPI document is assembled by `utoipa-axum` from the same
//! `routes!` calls that build the router, so it cannot drift from the routes.

pub mod auth;
pub mod automation_runs;
pub mod automations;
pub mod env_vars;
pub mod error;
pub mod events;
pub mod exact_numbers;
pub mod extract;
pub mod objects;
pub mod otlp;
pub mod plugins;
pub mod projects;
pub mod prompts;
pub mod sdk;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::ApiKeys;
pub use error::ApiError;

use crate::automations::{AutomationSettings, Engine};
use crate::plugins::PluginRuntime;
use crate::store::Store;

/// Size limits of requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most events accepted in one insert request (400 beyond).
    pub max_batch_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_events: 10_000,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Accepted API keys.
    pub auth: ApiKeys,
    /// Request limits.
    pub limits: Limits,
    /// The plugin host.
    pub plugins: PluginRuntime,
    /// The automations engine.
    pub automations: Engine,
}

impl AppState {
    /// State with default limits and an automations engine with default
    /// settings that is not started (the API works; nothing runs on its
    /// own). The daemon uses [`AppState::with_engine`].
    pub fn new(store: Store, auth: ApiKeys, plugins: PluginRuntime) -> Self {
        let engine = Engine::new(
            store.clone(),
            plugins.clone(),
            AutomationSettings::default(),
            None,
        );
        Self::with_engine(store, auth, plugins, engine)
    }

    /// State with default limits and the given engine.
    pub fn with_engine(
        store: Store,
        auth: ApiKeys,
        plugins: PluginRuntime,
        automations: Engine,
    ) -> Self {
        Self {
            store,
            auth,
            limits: Limits::default(),
            plugins,
            automations,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Self-hosted automations engine for LLM observability data. \
                       Braintrust-compatible ingest and fetch of project logs, experiments \
                       and datasets; prompts and environments.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(
        error::ErrorBody,
        crate::automations::retention::RetentionReport,
        automation_runs::DestinationCheck
    ))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The authenticated routes and their documentation.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(
            projects::get_project,
            projects::patch_project,
            projects::delete_project
        ))
        .routes(routes!(events::insert_project_logs))
        .routes(routes!(
            events::fetch_project_logs_get,
            events::fetch_project_logs_post
        ))
        .routes(routes!(
            objects::create_experiment,
            objects::list_experiments
        ))
        .routes(routes!(objects::get_experiment, objects::delete_experiment))
        .routes(routes!(events::insert_experiment))
        .routes(routes!(
            events::fetch_experiment_get,
            events::fetch_experiment_post
        ))
        .routes(routes!(objects::create_dataset, objects::list_datasets))
        .routes(routes!(objects::get_dataset, objects::delete_dataset))
        .routes(routes!(events::insert_dataset))
        .routes(routes!(
            events::fetch_dataset_get,
            events::fetch_dataset_post
        ))
        .routes(routes!(prompts::create_prompt, prompts::list_prompts))
        .routes(routes!(
            prompts::get_prompt,
            prompts::patch_prompt,
            prompts::delete_prompt
        ))
        .routes(routes!(prompts::prompt_versions))
        .routes(routes!(prompts::prompt_environments))
        .routes(routes!(
            prompts::assign_environment,
            prompts::unassign_environment
        ))
        .routes(routes!(
            prompts::create_environment,
            prompts::list_environments
        ))
        .routes(routes!(
            prompts::get_environment,
            prompts::delete_environment
        ))
        .routes(routes!(prompts::environment_events))
        .routes(routes!(plugins::list))
        .routes(routes!(
            automations::create_automation,
            automations::replace_automation,
            automations::list_automations
        ))
        .routes(routes!(
            automations::get_automation,
            automations::patch_automation,
            automations::delete_automation
        ))
        .routes(routes!(automation_runs::list_runs))
        .routes(routes!(automation_runs::status))
        .routes(routes!(automation_runs::run_once))
        .routes(routes!(automation_runs::test_saved))
        .routes(routes!(automation_runs::test_unsaved))
        .routes(routes!(automation_runs::resume))
        .routes(routes!(automation_runs::retry_run))
        .routes(routes!(automation_runs::reset_state))
        .routes(routes!(automation_runs::reset))
        .routes(routes!(automation_runs::metrics))
        .routes(routes!(
            env_vars::create_env_var,
            env_vars::replace_env_var,
            env_vars::list_env_vars
        ))
        .routes(routes!(
            env_vars::get_env_var,
            env_vars::patch_env_var,
            env_vars::delete_env_var
        ))
        .routes(routes!(otlp::export_traces))
        .routes(routes!(otlp::export_traces_default_path))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes().split_for_parts();
    let (_, public) = OpenApiRouter::<AppState>::new()
        .routes(routes!(healthz))
        .split_for_parts();
    doc.merge(public);
    doc
}

/// Builds the API router over `state`.
pub fn router(state: AppState) -> Router {
    let doc = Arc::new(openapi());
    let (protected, _) = api_routes().split_for_parts();
    let protected = protected
        // Braintrust's SDK protocol (see `sdk`): not part of the REST API's
        // OpenAPI document.
        .route("/api/apikey/login", post(sdk::login))
        .route("/version", get(sdk::version))
        .route("/logs3", post(sdk::logs3))
        .route("/api/project/register", post(sdk::register_project))
        .route("/api/project", get(sdk::get_project))
        .route("/api/experiment/register", post(sdk::register_experiment))
        .route("/api/dataset/register", post(sdk::register_dataset))
        .route("/api/base_experiment/get_id", post(sdk::base_experiment))
        .route("/experiment-comparison2", get(sdk::experiment_comparison))
        .route(
            "/v1/experiment/{id}/summarize",
            get(sdk::summarize_experiment),
        )
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route_layer(from_fn_with_state(state.auth.clone(), auth::require_key));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The body of `GET /healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// Liveness check; needs no API key.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

/// The `{"objects": […]}` envelope of list responses.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ObjectList<T> {
    /// The objects.
    pub objects: Vec<T>,
}
