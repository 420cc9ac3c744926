//! The http capability's guards: the per-plugin allow-list and the
//! private-address guard, which applies after DNS resolution and to IP
//! literals alike, and is lifted only by the operator's explicit setting.

use crate::harness::{Receiver, shared_cache_dir};
use herald::plugins::{AlertRequest, CallError, PluginPolicy, PluginRuntime, RuntimeConfig};
use serde_json::json;
use std::collections::HashMap;

fn alert() -> AlertRequest {
    AlertRequest {
        event_id: "evt_net".into(),
        event_type: "logs".into(),
        payload: json!({"ok": true}),
        is_test: false,
        attempt: 1,
    }
}

async fn runtime(allow_private: bool, policies: &[(&str, PluginPolicy)]) -> PluginRuntime {
    PluginRuntime::start(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        allow_private_networks: allow_private,
        policies: policies
            .iter()
            .map(|(n, p)| (n.to_string(), p.clone()))
            .collect::<HashMap<_, _>>(),
        ..RuntimeConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    let guarded = runtime(false, &[]).await;
    for url in [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://localhost:{port}/b"),
        format!("http://[::1]:{port}/c"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/internal".to_owned(),
    ] {
        let report = guarded
            .deliver("webhook", &json!({ "url": url }), &alert())
            .await;
        match report.result {
            Err(CallError::HostNotAllowed { plugin, host }) => {
                assert_eq!(plugin, "webhook");
                assert!(
                    host.contains("loopback")
                        || host.contains("private")
                        || host.contains("link-local"),
                    "{url}: {host}"
                );
            }
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the private receiver"
    );

    let open = runtime(true, &[]).await;
    let report = open
        .deliver(
            "webhook",
            &json!({ "url": format!("{}/d", receiver.url) }),
            &alert(),
        )
        .await;
    assert_eq!(report.result.unwrap().status_code, Some(200));
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_allow_list_limits_a_plugin_to_its_hosts() {
    let receiver = Receiver::start().await;
    let only_example = PluginPolicy {
        allowed_hosts: Some(vec!["*.example.com".into()]),
        ..PluginPolicy::default()
    };
    let runtime = runtime(true, &[("webhook", only_example)]).await;
    let summary = runtime
        .list()
        .objects
        .into_iter()
        .find(|p| p.name == "webhook")
        .unwrap();
    assert_eq!(
        summary.allowed_hosts,
        Some(vec!["*.example.com".to_owned()])
    );

    let report = runtime
        .deliver(
            "webhook",
            &json!({ "url": format!("{}/x", receiver.url) }),
            &alert(),
        )
        .await;
    match report.result {
        Err(CallError::HostNotAllowed { host, .. }) => assert_eq!(host, "127.0.0.1"),
        other => panic!("expected host-not-allowed, got {other:?}"),
    }
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_other_than_webhook_reach_nothing_by_default() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::install(dir.path(), "fixture_forbidden_host", "f.wasm");
    let runtime = PluginRuntime::start(RuntimeConfig {
        plugins_dir: Some(dir.path().to_path_buf()),
        cache_dir: Some(shared_cache_dir()),
        allow_private_networks: true,
        ..RuntimeConfig::default()
    })
    .await
    .unwrap();
    let summary = runtime
        .list()
        .objects
        .into_iter()
        .find(|p| p.name == "forbidden-host")
        .unwrap();
    assert_eq!(summary.allowed_hosts, Some(vec![]));
    let report = runtime
        .deliver(
            "forbidden-host",
            &json!({ "url": format!("{}/x", receiver.url) }),
            &alert(),
        )
        .await;
    assert!(
        matches!(report.result, Err(CallError::HostNotAllowed { .. })),
        "{:?}",
        report.result
    );
    assert!(receiver.requests().is_empty());
}
