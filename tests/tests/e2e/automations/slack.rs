//! Log alerts to Slack through the bundled plugin, against local servers
//! speaking Slack's API shapes: an incoming webhook (answers `ok`) and
//! `chat.postMessage` with a bot token (answers `{"ok":true}`) both get
//! valid Block Kit; the Slack secrets are redacted on read.

use super::{Herald, SETTINGS, log_alert, wait_for_requests};
use crate::harness::{Receiver, Recorded};
use reqwest::Method;
use serde_json::{Value, json};

/// The blocks of `kind` in a Slack message.
fn blocks<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
    message["blocks"]
        .as_array()
        .unwrap_or_else(|| panic!("no blocks: {message}"))
        .iter()
        .filter(|b| b["type"] == kind)
        .collect()
}

/// Asserts `request` carries a Block Kit message for alert `name` with one
/// match in project `project`, and returns the message.
fn assert_block_kit(request: &Recorded, name: &str, project: &str) -> Value {
    let message = request.json();
    assert!(
        message["text"].as_str().is_some_and(|t| !t.is_empty()),
        "fallback text: {message}"
    );
    for block in message["blocks"].as_array().unwrap() {
        let kind = block["type"].as_str().unwrap();
        assert!(
            ["header", "section", "actions", "context", "divider"].contains(&kind),
            "{block}"
        );
    }
    let header = blocks(&message, "header");
    assert_eq!(header.len(), 1, "{message}");
    assert_eq!(header[0]["text"]["type"], "plain_text");
    assert_eq!(header[0]["text"]["text"], name);
    let fields: Vec<&str> = blocks(&message, "section")
        .iter()
        .filter_map(|s| s["fields"].as_array())
        .flatten()
        .filter_map(|f| f["text"].as_str())
        .collect();
    assert!(
        fields.contains(&format!("*Project*\n{project}").as_str()),
        "{fields:?}"
    );
    assert!(fields.contains(&"*Matches*\n1"), "{fields:?}");
    for actions in blocks(&message, "actions") {
        for button in actions["elements"].as_array().unwrap() {
            let url = button["url"].as_str().unwrap();
            assert!(
                url.starts_with("https://herald.example.com/"),
                "buttons need absolute URLs: {url}"
            );
        }
    }
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_gets_block_kit_by_webhook_and_by_bot_token() {
    let hook = Receiver::start().await;
    hook.respond_with_body(200, &[], "ok");
    let api = Receiver::start().await;
    api.respond_with_body(
        200,
        &[("content-type", "application/json")],
        r#"{"ok":true,"channel":"C123","ts":"1700000000.000100"}"#,
    );
    let settings = format!(
        "public_base_url = \"https://herald.example.com\"\n{SETTINGS}\n[plugins.slack]\nallowed_hosts = [\"127.0.0.1\"]\n"
    );
    let h = Herald::start(&settings).await;
    let project = h.project("support-bot").await;
    let filter = "scores.Factuality < 0.5";
    let incoming = h
        .create(
            &project,
            "factuality drop",
            log_alert(
                filter,
                600,
                json!({"type": "slack", "webhook_url": format!("{}/services/T0/B0/XYZ", hook.url)}),
            ),
        )
        .await;
    let bot = h
        .create(
            &project,
            "factuality drop (bot)",
            log_alert(
                filter,
                600,
                json!({"type": "slack", "bot_token": "xoxb-test-token", "channel": "C123",
                       "api_base_url": format!("{}/api", api.url)}),
            ),
        )
        .await;
    assert_eq!(incoming["config"]["action"]["webhook_url"], "[redacted]");
    assert_eq!(bot["config"]["action"]["bot_token"], "[redacted]");
    assert_eq!(bot["config"]["action"]["channel"], "C123");

    // A redacted token does not follow a changed host: the token must be
    // sent again with the new api_base_url.
    let bot_path = format!("/v1/project_automation/{}", bot["id"].as_str().unwrap());
    let mut moved = bot["config"].clone();
    moved["action"]["api_base_url"] = "https://collector.attacker.example/api".into();
    let (status, body) = h
        .call(Method::PATCH, &bot_path, Some(json!({"config": moved})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["path"], "config.action.bot_token", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`api_base_url` changed"), "{message}");
    let unchanged = h.get(&bot_path).await;
    assert_eq!(unchanged["config"], bot["config"], "nothing was stored");

    h.insert(&project, json!([{"input": "q", "scores": {"Factuality": 0.2}}, {"input": "q", "scores": {"Factuality": 0.9}}]))
        .await;

    let request = wait_for_requests(&hook, "/services/T0/B0/XYZ", 1)
        .await
        .remove(0);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_block_kit(&request, "factuality drop", "support-bot");

    let request = wait_for_requests(&api, "/api/chat.postMessage", 1)
        .await
        .remove(0);
    assert_eq!(
        request.header("authorization"),
        Some("Bearer xoxb-test-token")
    );
    let message = assert_block_kit(&request, "factuality drop (bot)", "support-bot");
    assert_eq!(message["channel"], "C123");

    for alert in [&incoming, &bot] {
        let id = alert["id"].as_str().unwrap();
        let runs = h
            .wait_for_runs(id, "the Slack run to succeed", |r| {
                r.len() == 1 && r[0]["status"] == "succeeded"
            })
            .await;
        assert_eq!(runs[0]["details"]["status_code"], 200, "{runs:?}");
        assert!(
            !runs[0].to_string().contains("xoxb-test-token"),
            "no secret in run history"
        );
    }
    assert!(
        !h.daemon.logs().contains("xoxb-test-token"),
        "no secret in logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn braintrusts_workspace_shape_posts_with_the_registered_workspace_token() {
    let api = Receiver::start().await;
    api.respond_with_body(
        200,
        &[("content-type", "application/json")],
        r#"{"ok":true,"channel":"C123","ts":"1700000000.000100"}"#,
    );
    let settings = format!(
        "{SETTINGS}\n[plugins.slack]\nallowed_hosts = [\"127.0.0.1\"]\n\n[slack.workspaces]\nT0FILE = \"xoxb-from-the-file\"\n"
    );
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with_env(
        &settings,
        None,
        data,
        &[("HERALD_SLACK_WORKSPACES", "T0HERALD=xoxb-registered-token")],
    )
    .await;
    let project = h.project("workspaces").await;
    let login = h.post("/api/apikey/login", json!({})).await;
    let org = login["org_info"][0]["id"].as_str().unwrap().to_owned();
    h.post(
        "/v1/env_var",
        json!({"object_type": "organization", "object_id": org,
               "name": "SLACK_WORKSPACE_T0VAR", "value": "xoxb-from-an-env-var"}),
    )
    .await;
    let slack = |workspace: &str| {
        json!({"type": "slack", "workspace_id": workspace, "channel": "C123",
               "api_base_url": format!("{}/api", api.url)})
    };
    for (workspace, token) in [
        ("T0HERALD", "xoxb-registered-token"),
        ("T0FILE", "xoxb-from-the-file"),
        ("T0VAR", "xoxb-from-an-env-var"),
    ] {
        let alert = h
            .create(&project, workspace, log_alert("", 600, slack(workspace)))
            .await;
        assert_eq!(alert["config"]["action"]["workspace_id"], workspace);
        assert!(
            alert["config"]["action"].get("bot_token").is_none(),
            "{alert}"
        );
        let test = format!(
            "/v1/project_automation/{}/test",
            alert["id"].as_str().unwrap()
        );
        let answer = h.post(&test, json!({"send_on_zero_matches": true})).await;
        assert_eq!(answer["sent"], true, "{workspace}: {answer}");
        let sent = api.requests();
        let last = sent.last().unwrap();
        assert_eq!(last.path, "/api/chat.postMessage");
        assert_eq!(
            last.header("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "{workspace}"
        );
        assert_eq!(last.json()["channel"], "C123");
    }

    for (action, expected) in [
        (slack("T0NOWHERE"), "is not registered"),
        (
            json!({"type": "slack", "workspace_id": "T0HERALD", "channel": "C1",
                   "bot_token": "xoxb-mine"}),
            "not both",
        ),
    ] {
        let body =
            json!({"project_id": project, "name": "bad", "config": log_alert("", 60, action)});
        let (status, answer) = h
            .call(Method::POST, "/v1/project_automation", Some(body))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            answer["error"]["path"], "config.action.workspace_id",
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    assert!(!h.daemon.logs().contains("xoxb-registered-token"));
}
