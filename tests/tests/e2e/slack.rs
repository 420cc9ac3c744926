//! The bundled Slack destination against a local server speaking Slack's
//! API shapes: valid Block Kit over an incoming webhook and over
//! `chat.postMessage`, the message template, and Slack's errors mapped to
//! clear messages and the right retry decision.

use crate::harness::{Receiver, loopback_policy, runtime_with};
use herald::plugins::{AlertRequest, CallError, PluginRuntime};
use serde_json::{Value, json};
use std::time::Duration;

fn log_alert() -> AlertRequest {
    AlertRequest {
        event_id: "evt_slack_1".into(),
        event_type: "logs".into(),
        payload: json!({
            "organization": {"id": "org_1", "name": "Acme"},
            "project": {"id": "p1", "name": "support-bot"},
            "automation": {"id": "a1", "name": "Factuality drop", "event_type": "logs",
                           "url": "https://herald.example.com/automations/a1"},
            "details": {"is_test": false, "message": "3 logs matched <filter>", "count": 3,
                        "time_start": "2026-11-24T10:00:00Z", "time_end": "2026-11-24T10:05:00Z",
                        "related_logs_url": "https://herald.example.com/p1/logs?filter=x"}
        }),
        is_test: false,
        attempt: 1,
    }
}

async fn slack_runtime() -> (PluginRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (
        runtime_with(dir.path(), &[("slack", loopback_policy())]).await,
        dir,
    )
}

fn block<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn incoming_webhook_gets_valid_block_kit() {
    let (runtime, _dir) = slack_runtime().await;
    let slack = Receiver::start().await;
    slack.respond_with_body(200, &[], "ok");
    let config = json!({"webhook_url": format!("{}/services/T000/B000/XXXX", slack.url)});
    let delivery = runtime
        .deliver("slack", &config, &log_alert())
        .await
        .result
        .expect("delivered");
    assert_eq!(delivery.status_code, Some(200));

    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/services/T000/B000/XXXX");
    let message: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        message["text"], "3 logs matched &lt;filter&gt;",
        "fallback text, mrkdwn-escaped"
    );
    assert_eq!(
        block(&message, "header")[0]["text"]["text"],
        "Factuality drop"
    );
    let sections = block(&message, "section");
    assert_eq!(sections[0]["text"]["type"], "mrkdwn");
    let fields: Vec<&str> = sections[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "*Project*\nsupport-bot",
            "*Matches*\n3",
            "*Window*\n2026-11-24T10:00:00Z → 2026-11-24T10:05:00Z"
        ]
    );
    let buttons = block(&message, "actions")[0]["elements"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        buttons[0]["url"],
        "https://herald.example.com/p1/logs?filter=x"
    );
    assert_eq!(
        buttons[1]["url"],
        "https://herald.example.com/automations/a1"
    );
    let context = block(&message, "context")[0]["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert!(context.contains("evt_slack_1"), "{context}");
    // Every block type used is one Block Kit knows, and the header is plain text.
    for b in message["blocks"].as_array().unwrap() {
        assert!(["header", "section", "actions", "context"].contains(&b["type"].as_str().unwrap()));
    }
    assert_eq!(block(&message, "header")[0]["text"]["type"], "plain_text");
}

#[tokio::test(flavor = "multi_thread")]
async fn bot_token_posts_with_chat_post_message_and_the_template() {
    let (runtime, _dir) = slack_runtime().await;
    let slack = Receiver::start().await;
    slack.respond_with_body(
        200,
        &[("content-type", "application/json")],
        r#"{"ok":true,"channel":"C123","ts":"1.2"}"#,
    );
    let config = json!({
        "bot_token": "xoxb-test-token",
        "channel": "C123",
        "api_base_url": format!("{}/api", slack.url),
        "message_template": ":rotating_light: *{{automation.name}}*: {{details.count}} in {{project.name}} {{details.nope}}"
    });
    let delivery = runtime
        .deliver("slack", &config, &log_alert())
        .await
        .result
        .expect("posted");
    assert_eq!(delivery.summary, "posted to Slack channel C123");

    let request = &slack.requests()[0];
    assert_eq!(request.path, "/api/chat.postMessage");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer xoxb-test-token")
    );
    let message: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(message["channel"], "C123");
    assert_eq!(
        message["text"],
        ":rotating_light: *Factuality drop*: 3 in support-bot "
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_errors_map_to_clear_messages_and_retry_decisions() {
    let (runtime, _dir) = slack_runtime().await;
    let slack = Receiver::start().await;
    let bot = json!({"bot_token": "xoxb-t", "channel": "C999", "api_base_url": slack.url});
    let hook = json!({"webhook_url": format!("{}/services/x", slack.url)});
    let json_ct = [("content-type", "application/json")];

    // (config, status, headers, body, retryable, message fragment, retry after)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&Value, u16, &[(&str, &str)], &str, bool, &str, Option<u64>)> = vec![
        (
            &bot,
            200,
            &json_ct,
            r#"{"ok":false,"error":"channel_not_found"}"#,
            false,
            "channel C999 was not found",
            None,
        ),
        (
            &bot,
            200,
            &json_ct,
            r#"{"ok":false,"error":"not_in_channel"}"#,
            false,
            "not in channel C999",
            None,
        ),
        (
            &bot,
            200,
            &json_ct,
            r#"{"ok":false,"error":"invalid_auth"}"#,
            false,
            "rejected the credentials (invalid_auth)",
            None,
        ),
        (
            &bot,
            429,
            &[("retry-after", "3")],
            "",
            true,
            "Slack answered 429",
            Some(3),
        ),
        (
            &bot,
            200,
            &json_ct,
            r#"{"ok":false,"error":"ratelimited"}"#,
            true,
            "rate-limited",
            None,
        ),
        (&bot, 503, &[], "", true, "Slack answered 503", None),
        (
            &hook,
            404,
            &[],
            "channel_not_found",
            false,
            "was not found (channel_not_found)",
            None,
        ),
        (
            &hook,
            403,
            &[],
            "invalid_token",
            false,
            "refused the message (invalid_token, HTTP 403)",
            None,
        ),
        (&hook, 500, &[], "", true, "Slack answered 500", None),
    ];
    for (config, status, headers, body, retryable, fragment, retry_after) in cases {
        slack.respond_with_body(status, headers, body);
        match runtime.deliver("slack", config, &log_alert()).await.result {
            Err(CallError::Failed {
                message,
                retryable: r,
                retry_after: after,
                status_code,
            }) => {
                assert_eq!(r, retryable, "{status} {body}: {message}");
                assert_eq!(
                    status_code,
                    Some(status),
                    "{status} {body}: the receiver's status"
                );
                assert!(message.contains(fragment), "{status} {body}: {message}");
                assert_eq!(
                    after,
                    retry_after.map(Duration::from_secs),
                    "{status} {body}"
                );
            }
            other => panic!("{status} {body}: expected a failure, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn configs_are_validated_with_paths() {
    let (runtime, _dir) = slack_runtime().await;
    let problems =
        async |config: Value| match runtime.validate_config("slack", &config).await.result {
            Err(CallError::InvalidConfig(problems)) => {
                problems.into_iter().map(|p| p.path).collect::<Vec<_>>()
            }
            other => panic!("expected invalid config for {config}, got {other:?}"),
        };
    assert_eq!(problems(json!({})).await, [""]);
    assert_eq!(
        problems(json!({"webhook_url": "https://h", "bot_token": "xoxb-1"})).await,
        ["/bot_token"]
    );
    assert_eq!(problems(json!({"bot_token": "xoxb-1"})).await, ["/channel"]);
    assert_eq!(
        problems(json!({"bot_token": "abc", "channel": "C1"})).await,
        ["/bot_token"]
    );
    assert_eq!(
        problems(json!({"webhook_url": "https://h", "message_template": "{{details.count"})).await,
        ["/message_template"]
    );
    let secrets = runtime.get("slack").unwrap().info.secret_fields.clone();
    assert_eq!(secrets, ["/webhook_url", "/bot_token"]);
    assert!(
        runtime
            .validate_config(
                "slack",
                &json!({"webhook_url": "https://hooks.slack.com/services/a"})
            )
            .await
            .result
            .is_ok()
    );
}
