//! The HTTP API (axum). Routes are grouped by resource, one module each.

pub mod plugins;

use crate::plugins::PluginRuntime;
use axum::Router;
use axum::routing::get;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The plugin host.
    pub plugins: PluginRuntime,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/plugins", get(plugins::list))
        .with_state(state)
}
