//! The bundled webhook destination against a real receiver: Standard
//! Webhooks signatures verified here with an independent HMAC, the retry
//! classification of statuses and transport errors, and config validation
//! with the path of each bad field.

use crate::harness::{
    Receiver, runtime_with, verify_signature as verify, webhook_secret as secret,
};
use herald::plugins::{AlertRequest, CallError, PluginRuntime};
use serde_json::json;
use std::time::Duration;

fn alert(id: &str, attempt: u32) -> AlertRequest {
    AlertRequest {
        event_id: id.into(),
        event_type: "logs".into(),
        payload: json!({
            "organization": {"id": "org", "name": "Acme"},
            "details": {"is_test": false, "message": "3 matching logs", "count": 3}
        }),
        is_test: false,
        attempt,
    }
}

async fn webhook_runtime() -> (PluginRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (runtime_with(dir.path(), &[]).await, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn delivers_signed_json_that_a_receiver_can_verify() {
    let (runtime, _dir) = webhook_runtime().await;
    let receiver = Receiver::start().await;
    let config = json!({
        "url": format!("{}/hooks/herald?team=ml", receiver.url),
        "secret": secret(),
        "headers": {"X-Team": "ml-platform"}
    });
    let report = runtime
        .deliver("webhook", &config, &alert("evt_123", 1))
        .await;
    let delivery = report.result.expect("delivered");
    assert_eq!(delivery.status_code, Some(200));
    assert_eq!(
        delivery.response_excerpt.as_deref(),
        Some("receiver says 200")
    );
    assert!(
        delivery.summary.contains("127.0.0.1"),
        "{}",
        delivery.summary
    );
    assert!(
        !delivery.summary.contains("team=ml"),
        "no query string in messages"
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/hooks/herald?team=ml");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-team"), Some("ml-platform"));
    assert_eq!(request.header("webhook-id"), Some("evt_123"));
    let timestamp = request.header("webhook-timestamp").unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - timestamp.parse::<i64>().unwrap()).abs() < 300,
        "timestamp is current"
    );
    assert!(verify(
        "evt_123",
        timestamp,
        &request.body,
        request.header("webhook-signature").unwrap()
    ));
    // The body is the payload, byte for byte what was signed.
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, alert("evt_123", 1).payload);
    // A tampered body does not verify.
    assert!(!verify(
        "evt_123",
        timestamp,
        b"{}",
        request.header("webhook-signature").unwrap()
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_id_is_stable_across_attempts() {
    let (runtime, _dir) = webhook_runtime().await;
    let receiver = Receiver::start().await;
    receiver.respond_with(503, &[]);
    let config = json!({"url": receiver.url, "secret": secret()});
    for attempt in 1..=3 {
        let report = runtime
            .deliver("webhook", &config, &alert("evt_same", attempt))
            .await;
        assert!(report.result.unwrap_err().is_retryable());
    }
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["evt_same", "evt_same", "evt_same"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_are_classified_for_retry() {
    let (runtime, _dir) = webhook_runtime().await;
    let receiver = Receiver::start().await;
    let config = json!({"url": receiver.url});
    let cases: [(u16, Option<bool>); 10] = [
        (200, None),
        (204, None),
        (400, Some(false)),
        (401, Some(false)),
        (404, Some(false)),
        (408, Some(true)),
        (410, Some(false)),
        (429, Some(true)),
        (500, Some(true)),
        (503, Some(true)),
    ];
    for (status, retryable) in cases {
        receiver.respond_with(status, &[]);
        let result = runtime
            .deliver("webhook", &config, &alert("evt_s", 1))
            .await
            .result;
        match (retryable, result) {
            (None, Ok(delivery)) => assert_eq!(delivery.status_code, Some(status)),
            (
                Some(expected),
                Err(CallError::Failed {
                    message, retryable, ..
                }),
            ) => {
                assert_eq!(retryable, expected, "status {status}");
                assert!(message.contains(&format!("answered {status}")), "{message}");
            }
            (expected, other) => panic!("status {status}: expected {expected:?}, got {other:?}"),
        }
    }

    // Retry-After is passed on.
    receiver.respond_with(429, &[("retry-after", "7")]);
    match runtime
        .deliver("webhook", &config, &alert("evt_s", 1))
        .await
        .result
    {
        Err(CallError::Failed {
            retry_after,
            retryable: true,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected a retryable failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_receiver_is_a_retryable_connection_error() {
    let (runtime, _dir) = webhook_runtime().await;
    // Bind and drop: the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = json!({"url": format!("http://127.0.0.1:{port}/")});
    match runtime
        .deliver("webhook", &config, &alert("evt_dead", 1))
        .await
        .result
    {
        Err(CallError::Failed {
            message, retryable, ..
        }) => {
            assert!(retryable);
            assert!(message.starts_with("connection failed"), "{message}");
        }
        other => panic!("expected a connection failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configs_are_rejected_with_the_path_of_each_field() {
    let (runtime, _dir) = webhook_runtime().await;
    let problems = |config: serde_json::Value| {
        let runtime = runtime.clone();
        async move {
            match runtime.validate_config("webhook", &config).await.result {
                Err(CallError::InvalidConfig(problems)) => problems
                    .into_iter()
                    .map(|p| (p.path, p.message))
                    .collect::<Vec<_>>(),
                other => panic!("expected invalid config for {config}, got {other:?}"),
            }
        }
    };
    assert!(
        runtime
            .validate_config("webhook", &json!({"url": "https://example.com/h"}))
            .await
            .result
            .is_ok()
    );

    let found = problems(json!({})).await;
    assert_eq!(found[0].0, "/url");
    assert!(found[0].1.contains("missing field"), "{found:?}");

    let found = problems(json!({"url": 42})).await;
    assert_eq!(found[0].0, "/url");

    let found = problems(json!({"url": "ftp://x", "secret": "nope", "headers": {"Bad Name": "v", "webhook-id": "x"}})).await;
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/url",
            "/secret",
            "/headers/Bad Name",
            "/headers/webhook-id"
        ],
        "{found:?}"
    );

    let found = problems(json!({"url": "https://x", "sekret": "typo"})).await;
    assert!(found[0].1.contains("unknown field `sekret`"), "{found:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_rotation_every_active_secret_signs() {
    let (runtime, _dir) = webhook_runtime().await;
    let receiver = Receiver::start().await;
    let new_secret = "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQ=";
    // The receiver knows only the old secret: it still verifies.
    let config = json!({"url": receiver.url, "secret": new_secret, "secrets": [secret()]});
    runtime
        .deliver("webhook", &config, &alert("evt_rot", 1))
        .await
        .result
        .expect("delivered");
    let request = &receiver.requests()[0];
    let header = request.header("webhook-signature").unwrap();
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert!(header.split(' ').all(|s| s.starts_with("v1,")), "{header}");
    assert!(verify(
        "evt_rot",
        request.header("webhook-timestamp").unwrap(),
        &request.body,
        header
    ));
    let bad = json!({"url": receiver.url, "secrets": [secret(), "nope"]});
    match runtime.validate_config("webhook", &bad).await.result {
        Err(CallError::InvalidConfig(problems)) => assert_eq!(problems[0].path, "/secrets/1"),
        other => panic!("expected an invalid config, got {other:?}"),
    }
    let too_many = json!({"url": receiver.url, "secret": secret(),
        "secrets": [secret(), secret(), secret(), secret(), secret()]});
    match runtime.validate_config("webhook", &too_many).await.result {
        Err(CallError::InvalidConfig(problems)) => assert_eq!(problems[0].path, "/secrets"),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}
