//! `GET /v1/plugins`: loaded plugins (name, version, world, config schema,
//! secret fields, origin, limits) and files that failed to load, with why.

use super::AppState;
use crate::plugins::PluginListing;
use axum::Json;
use axum::extract::State;

/// Lists loaded and failed plugins.
pub async fn list(State(state): State<AppState>) -> Json<PluginListing> {
    Json(state.plugins.list())
}
