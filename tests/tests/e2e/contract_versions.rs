//! Both contract versions side by side: a component built against the
//! frozen `herald:automation@0.1.0` (`fixture_contract_v0_1`, compiled from
//! source against `wit/v0.1.0`) and the bundled webhook (0.2.0) load in one
//! runtime, are listed with their version, deliver, and report a failure's
//! receiver status: the 0.2.0 plugin in its `plugin-error`, the 0.1.0 one
//! through the host (the last HTTP answer it received).

use crate::harness::{Receiver, install, loopback_policy, runtime_with};
use herald::plugins::{AlertRequest, CallError, ContractVersion, World};
use serde_json::json;

fn alert() -> AlertRequest {
    AlertRequest {
        event_id: "evt_versions".into(),
        event_type: "logs".into(),
        payload: json!({"details": {"message": "1 matching log", "count": 1}}),
        is_test: false,
        attempt: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_of_both_contract_versions_load_deliver_and_report_failure_statuses() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "fixture_contract_v0_1", "old.wasm");
    let runtime = runtime_with(dir.path(), &[("contract-v0-1", loopback_policy())]).await;

    let listing = runtime.list();
    assert!(listing.failed.is_empty(), "{:?}", listing.failed);
    let version_of = |name: &str| {
        let plugin = listing
            .objects
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} is loaded"));
        assert_eq!(plugin.world, World::AlertDestination);
        plugin.contract_version
    };
    assert_eq!(version_of("contract-v0-1"), ContractVersion::V0_1);
    assert_eq!(version_of("webhook"), ContractVersion::V0_2);
    let listed = serde_json::to_value(&listing.objects).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "contract-v0-1" && p["contract_version"] == "0.1.0"),
        "{listed}"
    );

    let receiver = Receiver::start().await;
    let config = json!({"url": format!("{}/hook", receiver.url)});
    for plugin in ["contract-v0-1", "webhook"] {
        // Validation goes through each version's `plugin` interface.
        let refused = runtime
            .validate_config(plugin, &json!({"url": "ftp://nowhere"}))
            .await
            .result;
        assert!(
            matches!(&refused, Err(CallError::InvalidConfig(p)) if p[0].path == "/url"),
            "{plugin}: {refused:?}"
        );

        receiver.respond_with(200, &[]);
        let delivered = runtime.deliver(plugin, &config, &alert()).await.result;
        assert_eq!(
            delivered.expect("delivered").status_code,
            Some(200),
            "{plugin}"
        );

        for (status, retryable) in [(503, true), (404, false)] {
            receiver.respond_with(status, &[]);
            match runtime.deliver(plugin, &config, &alert()).await.result {
                Err(
                    error @ CallError::Failed {
                        retryable: was_retryable,
                        ..
                    },
                ) => {
                    assert_eq!(was_retryable, retryable, "{plugin} {status}");
                    assert_eq!(error.status_code(), Some(status), "{plugin}: {error}");
                    assert!(error.to_string().contains(&format!("answered {status}")));
                }
                other => panic!("{plugin} {status}: expected a failure, got {other:?}"),
            }
        }
    }
    // Every attempt reached the receiver, with the event id, from both.
    let requests = receiver.requests_to("/hook");
    assert_eq!(requests.len(), 6);
    assert!(
        requests
            .iter()
            .all(|r| r.header("webhook-id") == Some("evt_versions")),
    );
    assert_eq!(
        requests[0].json(),
        alert().payload,
        "the 0.1.0 plugin's body"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_without_an_http_answer_has_no_status_in_either_version() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "fixture_contract_v0_1", "old.wasm");
    let runtime = runtime_with(dir.path(), &[("contract-v0-1", loopback_policy())]).await;
    // Nothing listens on port 9 of loopback: a refused connection.
    let config = json!({"url": "http://127.0.0.1:9/hook"});
    for plugin in ["contract-v0-1", "webhook"] {
        let error = runtime
            .deliver(plugin, &config, &alert())
            .await
            .result
            .expect_err("nothing listens");
        assert!(error.is_retryable(), "{plugin}: {error}");
        assert_eq!(error.status_code(), None, "{plugin}: {error}");
    }
}
