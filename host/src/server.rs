//! Wires the daemon together and serves the HTTP API.
//!
//! [`serve`] takes a bound listener and a shutdown future, mini-redis
//! style, so tests run the real server on an ephemeral port; [`run`] is
//! what `herald serve` does: create the data directory, start the plugin
//! host and its directory watcher, open the database (migrations run),
//! load or generate the API key, start the automations engine, bind, log
//! the address, serve until shutdown, then let the engine finish or release
//! its work. [`run_on`] is the same on a listener the caller bound. With
//! `otlp_grpc_listen` set, OTLP/gRPC is served beside the API, with the same
//! keys, until the same shutdown.

use crate::api::{self, ApiKeys};
use crate::automations::Engine;
use crate::config::Settings;
use crate::plugins::PluginRuntime;
use crate::sealing::Sealer;
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
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

/// How long shutdown waits for automation work in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs the daemon with `settings` until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    run_on(settings, listener, shutdown).await
}

/// Runs the daemon with `settings` on an already bound `listener` (its
/// `listen` setting is ignored) until `shutdown` resolves: what tests and
/// benchmarks use to run the whole daemon in process.
pub async fn run_on(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The data dir holds secrets (the database, the API key): 0700.
    crate::private_files::private_dir(&settings.data_dir).map_err(|e| {
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

    let plugins = PluginRuntime::start(settings.runtime_config()).await?;
    let listing = plugins.list();
    tracing::info!(
        loaded = listing.objects.len(),
        failed = listing.failed.len(),
        plugins_dir = %settings.plugins_dir.display(),
        "plugin host ready"
    );
    let watcher = plugins.spawn_watcher();

    let (sealer, generated_key) = Sealer::load(
        &settings.data_dir,
        settings.secret_key.as_deref(),
        &settings.secret_key_previous,
    )
    .map_err(|e| anyhow::anyhow!("cannot load the secret key: {e:#}"))?;
    if let Some(path) = generated_key {
        tracing::info!(path = %path.display(), key_id = sealer.key_id(),
            "generated the key secrets are sealed under; back it up: without it, stored secrets cannot be read");
    }
    let store = Store::connect_sealed(&settings.database_url, Arc::new(sealer))
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    let resealed = store
        .reseal_secrets()
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the stored secrets: {e}"))?;
    if resealed > 0 {
        tracing::info!(
            resealed,
            key_id = store.sealing_key_id(),
            "re-sealed stored secrets under the current key"
        );
    }
    let (auth, generated) = ApiKeys::load_or_generate(&settings.data_dir, &settings.api_keys)?;
    let salt = store
        .identity_salt()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the deployment's identity salt: {e}"))?;
    let auth = auth.with_identity_salt(&salt);
    if let Some(key) = generated {
        // Printed once, on the first start; it is stored in the data dir.
        println!(
            "Generated an API key (stored in {}):\n\n    {key}\n",
            settings.data_dir.display()
        );
    }

    let engine = Engine::new(
        store.clone(),
        plugins.clone(),
        settings.automations.clone(),
        settings.public_base_url.clone(),
    );
    engine.start();
    // One shutdown for every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let grpc = match settings.otlp_grpc_listen {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for OTLP/gRPC on {address}: {e}"))?;
            let keys = auth.clone();
            let authorize: crate::ingest::otlp::grpc::Authorize = Arc::new(move |value| {
                api::auth::bearer_token(value).is_some_and(|key| keys.accepts(key))
            });
            let (store, stopped) = (store.clone(), stopped.clone());
            Some(tokio::spawn(async move {
                crate::ingest::otlp::grpc::serve(listener, store, authorize, wait(stopped)).await
            }))
        }
        None => None,
    };
    let app = api::router(api::AppState::with_engine(
        store.clone(),
        auth,
        plugins,
        engine.clone(),
    ));
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening on http://{address}");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let result = serve(listener, app, wait(stopped)).await;
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Err(error)) => tracing::warn!(%error, "the OTLP/gRPC listener failed"),
            Err(error) => tracing::warn!(%error, "the OTLP/gRPC listener panicked"),
            Ok(Ok(())) => {}
        }
    }
    tracing::info!("shutting down: finishing automation work in flight");
    engine.shutdown(SHUTDOWN_GRACE).await;
    watcher.abort();
    store.close().await;
    result?;
    tracing::info!("stopped");
    Ok(())
}
