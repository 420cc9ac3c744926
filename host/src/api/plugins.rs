//! `GET /v1/plugins`: loaded plugins (name, version, world, config schema,
//! secret fields, origin, limits) and files that failed to load, with why.

use super::AppState;
use crate::plugins::PluginListing;
use axum::Json;
use axum::extract::State;

/// Lists loaded plugins (name, version, world, config schema, secret fields,
/// origin, limits) and the files that failed to load, with why.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, description = "`{\"objects\": [plugin…], \"failed\": [{path, error, failed_at}…]}`",
        content_type = "application/json")))]
pub async fn list(State(state): State<AppState>) -> Json<PluginListing> {
    Json(state.plugins.list())
}
