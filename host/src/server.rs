//! Wires the daemon together and serves the HTTP API.
//!
//! [`serve`] takes a bound listener and a shutdown future, mini-redis
//! style, so tests run the real server on an ephemeral port; [`run`] is
//! what `herald serve` does: create the data directory, start the plugin
//! host and its directory watcher, bind, log the address, serve until
//! shutdown.

use crate::api;
use crate::config::Settings;
use crate::plugins::{PluginRuntime, RuntimeConfig};
use std::future::Future;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs the daemon with `settings` until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data dir {}: {e}",
            settings.data_dir.display()
        )
    })?;
    std::fs::create_dir_all(&settings.plugins_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create plugins dir {}: {e}",
            settings.plugins_dir.display()
        )
    })?;

    let plugins = PluginRuntime::start(RuntimeConfig {
        plugins_dir: Some(settings.plugins_dir.clone()),
        cache_dir: Some(settings.cache_dir()),
        allow_private_networks: settings.allow_private_networks,
        policies: settings.plugins.clone(),
        ..RuntimeConfig::default()
    })
    .await?;
    let listing = plugins.list();
    tracing::info!(
        loaded = listing.objects.len(),
        failed = listing.failed.len(),
        plugins_dir = %settings.plugins_dir.display(),
        "plugin host ready"
    );
    let watcher = plugins.spawn_watcher();

    let app = api::router(api::AppState { plugins });
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening on http://{address}");
    let result = serve(listener, app, shutdown).await;
    watcher.abort();
    result?;
    tracing::info!("stopped");
    Ok(())
}
