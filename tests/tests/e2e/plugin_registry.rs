//! The plugins directory: broken files are listed with their error and
//! never affect the others; files are picked up, replaced and removed
//! without a restart; compiled components come from the disk cache after
//! a restart.

use crate::harness::{Receiver, install, runtime_with, wait_until};
use herald::plugins::{AlertRequest, CompileSource, PluginRuntime, RuntimeConfig};
use serde_json::json;
use std::time::{Duration, Instant};

fn alert(id: &str) -> AlertRequest {
    AlertRequest {
        event_id: id.into(),
        event_type: "logs".into(),
        payload: json!({"n": 1}),
        is_test: false,
        attempt: 1,
    }
}

fn failed_error(runtime: &PluginRuntime, file: &str) -> Option<String> {
    runtime
        .list()
        .failed
        .into_iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == file))
        .map(|f| f.error)
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_files_are_listed_with_their_error_and_others_load() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "fixture_noop", "noop.wasm");
    install(dir.path(), "fixture_wrong_world", "wrong-world.wasm");
    std::fs::write(dir.path().join("notes.wasm"), b"this is not wasm").unwrap();
    // The smallest valid core module: right magic, wrong layer.
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    // A second file naming the same plugin as noop.wasm.
    install(dir.path(), "fixture_noop", "zz-noop-copy.wasm");

    let runtime = runtime_with(dir.path(), &[]).await;
    let listing = runtime.list();
    let names: Vec<&str> = listing.objects.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "noop",
            "pagerduty",
            "retention",
            "s3-export",
            "slack",
            "webhook"
        ],
        "the good plugin and the bundled ones are loaded"
    );
    assert_eq!(listing.failed.len(), 4, "{:#?}", listing.failed);

    let error = failed_error(&runtime, "notes.wasm").unwrap();
    assert!(error.contains("not a WebAssembly file"), "{error}");
    let error = failed_error(&runtime, "core.wasm").unwrap();
    assert!(
        error.contains("core WebAssembly module, not a component"),
        "{error}"
    );
    let error = failed_error(&runtime, "wrong-world.wasm").unwrap();
    assert!(
        error.contains("imports `herald:automation/records@0.2.0`")
            && error.contains("alert-destination world does not provide"),
        "{error}"
    );
    let error = failed_error(&runtime, "zz-noop-copy.wasm").unwrap();
    assert!(
        error.contains("plugin name `noop` is already provided by"),
        "{error}"
    );

    // The good plugin works alongside the broken files.
    assert!(
        runtime
            .deliver("noop", &json!({}), &alert("a"))
            .await
            .result
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_are_added_replaced_and_removed_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(dir.path(), &[]).await;
    let watcher = runtime.spawn_watcher();
    assert!(runtime.get("noop").is_none());

    // Add.
    let added_at = Instant::now();
    let path = install(dir.path(), "fixture_noop", "custom.wasm");
    wait_until(Duration::from_secs(10), "noop to load", || async {
        runtime.get("noop").is_some()
    })
    .await;
    let detection = added_at.elapsed();
    println!("hot add detected and loaded in {detection:?}");

    // Replace the same file with a different plugin: the old one goes, the new one comes.
    install(dir.path(), "fixture_panic", "custom.wasm");
    wait_until(
        Duration::from_secs(10),
        "the replacement to load",
        || async { runtime.get("panic").is_some() && runtime.get("noop").is_none() },
    )
    .await;

    // Remove.
    std::fs::remove_file(&path).unwrap();
    wait_until(Duration::from_secs(10), "the plugin to unload", || async {
        runtime.get("panic").is_none()
    })
    .await;
    assert!(runtime.list().failed.is_empty());

    // A broken file appears, is listed, and is replaced by a good one.
    std::fs::write(dir.path().join("late.wasm"), b"garbage").unwrap();
    wait_until(
        Duration::from_secs(10),
        "the broken file to be listed",
        || async { failed_error(&runtime, "late.wasm").is_some() },
    )
    .await;
    install(dir.path(), "fixture_noop", "late.wasm");
    wait_until(
        Duration::from_secs(10),
        "the fixed file to load",
        || async { runtime.get("noop").is_some() && failed_error(&runtime, "late.wasm").is_none() },
    )
    .await;
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_overrides_the_bundled_plugin_and_calls_in_flight_finish_on_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(dir.path(), &[]).await;
    let watcher = runtime.spawn_watcher();
    let bundled_sha = runtime.get("webhook").unwrap().sha256.clone();

    // A slow receiver keeps a delivery in flight while the plugin is swapped.
    let receiver = Receiver::start().await;
    receiver.delay_responses(Duration::from_millis(1500));
    let in_flight = {
        let runtime = runtime.clone();
        let url = format!("{}/slow", receiver.url);
        tokio::spawn(async move {
            runtime
                .deliver("webhook", &json!({"url": url}), &alert("inflight"))
                .await
        })
    };
    wait_until(
        Duration::from_secs(10),
        "the delivery to reach the receiver",
        || async { !receiver.requests().is_empty() },
    )
    .await;

    // Drop in a file providing `webhook` (a copy of the same code under
    // another file, so its origin differs): it overrides the bundled one.
    install(dir.path(), "webhook", "webhook.wasm");
    wait_until(
        Duration::from_secs(10),
        "the file to override the bundled plugin",
        || async {
            matches!(
                runtime.get("webhook").unwrap().origin,
                herald::plugins::Origin::File { .. }
            )
        },
    )
    .await;
    let report = in_flight.await.unwrap();
    assert_eq!(
        report.result.expect("in-flight call completes").status_code,
        Some(200)
    );

    // Removing the file brings the bundled plugin back.
    std::fs::remove_file(dir.path().join("webhook.wasm")).unwrap();
    wait_until(
        Duration::from_secs(10),
        "the bundled plugin to return",
        || async { runtime.get("webhook").unwrap().origin == herald::plugins::Origin::Bundled },
    )
    .await;
    assert_eq!(runtime.get("webhook").unwrap().sha256, bundled_sha);
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_come_from_the_cache_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(dir.path(), "fixture_noop", "noop.wasm");
    let config = RuntimeConfig {
        plugins_dir: Some(dir.path().to_path_buf()),
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let compiled_from =
        |runtime: &PluginRuntime, name: &str| runtime.get(name).unwrap().compiled_from;

    let first = PluginRuntime::start(config.clone()).await.unwrap();
    assert_eq!(compiled_from(&first, "noop"), CompileSource::Compiled);
    assert_eq!(compiled_from(&first, "webhook"), CompileSource::Compiled);
    let entries = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(
        entries, 6,
        "one cache entry per component (noop, webhook, slack, pagerduty, retention, s3-export)"
    );
    drop(first);

    let second = PluginRuntime::start(config.clone()).await.unwrap();
    assert_eq!(compiled_from(&second, "noop"), CompileSource::Cache);
    assert_eq!(compiled_from(&second, "webhook"), CompileSource::Cache);
    assert!(
        second
            .deliver("noop", &json!({}), &alert("cached"))
            .await
            .result
            .is_ok()
    );
    drop(second);

    // A corrupt entry is discarded and recompiled, not fatal.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"corrupt").unwrap();
    }
    let third = PluginRuntime::start(config).await.unwrap();
    assert_eq!(compiled_from(&third, "noop"), CompileSource::Compiled);
    assert!(
        third
            .deliver("noop", &json!({}), &alert("recompiled"))
            .await
            .result
            .is_ok()
    );
}

/// Plugins mounted the way Kubernetes mounts a ConfigMap: each file a
/// symbolic link into a hidden directory that is swapped on update. Links
/// are followed; a dangling one is listed as failed with why; swapping the
/// directory reloads the plugin.
#[tokio::test(flavor = "multi_thread")]
async fn symbolic_links_are_followed_and_a_dangling_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("..2026_12_01_a");
    std::fs::create_dir(&first).unwrap();
    install(&first, "fixture_noop", "noop.wasm");
    std::os::unix::fs::symlink("..2026_12_01_a", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/noop.wasm", dir.path().join("noop.wasm")).unwrap();
    std::os::unix::fs::symlink("..data/gone.wasm", dir.path().join("gone.wasm")).unwrap();

    let runtime = runtime_with(dir.path(), &[]).await;
    let listing = runtime.list();
    assert!(
        listing.objects.iter().any(|p| p.name == "noop"),
        "the linked plugin is loaded: {listing:?}"
    );
    let error = failed_error(&runtime, "gone.wasm").expect("the dangling link is listed");
    assert!(
        error.contains("symbolic link to ..data/gone.wasm"),
        "{error}"
    );
    assert_eq!(listing.failed.len(), 1, "{:#?}", listing.failed);

    // The update: a new directory holding another plugin under the same
    // file name, and `..data` swapped to it.
    let second = dir.path().join("..2026_12_01_b");
    std::fs::create_dir(&second).unwrap();
    install(&second, "fixture_wrong_world", "noop.wasm");
    let swap = dir.path().join("..data_tmp");
    std::os::unix::fs::symlink("..2026_12_01_b", &swap).unwrap();
    std::fs::rename(&swap, dir.path().join("..data")).unwrap();
    let report = runtime.rescan().await;
    assert!(
        report.failed.iter().any(|p| p.ends_with("noop.wasm")),
        "the swapped target was read again: {report:?}"
    );
    assert!(
        runtime.rescan().await.is_empty(),
        "an unchanged dangling link is not reported again"
    );
}
