//! `POST /v1/project_automation/{id}/test` and `POST
//! /v1/project_automation/test`: a log alert with recent matches sends an
//! `is_test` notification and reports the receiver's answer; with none it
//! sends only when asked; an environment alert sends a sample; an unsaved
//! config is tested without being stored; a failing destination is
//! reported in a 200 answer, without retries.

use super::{Herald, SETTINGS, log_alert, wait_for_requests, webhook};
use crate::harness::Receiver;
use serde_json::{Value, json};

/// The path of automation `object`'s test route.
fn test_path(object: &Value) -> String {
    format!(
        "/v1/project_automation/{}/test",
        object["id"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tests_send_marked_notifications_and_report_the_answer() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let project = h.project("tests").await;
    // Spans from before the automation exists: a test counts them, a real
    // alert never would.
    let hit = json!({"input": "q", "metadata": {"kind": "hit"}});
    h.insert(&project, json!([hit, hit, {"input": "other"}]))
        .await;
    let alert = h
        .create(
            &project,
            "hits",
            log_alert("metadata.kind = 'hit'", 600, webhook(&receiver, "/hits")),
        )
        .await;

    let result = h.post(&test_path(&alert), json!({})).await;
    assert_eq!(result["sent"], true, "{result}");
    assert_eq!(result["matched_rows"], 2, "{result}");
    assert_eq!(result["status_code"], 200, "{result}");
    assert_eq!(result["error"], Value::Null, "{result}");
    assert!(
        result["message"].as_str().is_some_and(|m| m.contains('2')),
        "{result}"
    );
    assert!(
        result["summary"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1")),
        "{result}"
    );
    let request = wait_for_requests(&receiver, "/hits", 1).await.remove(0);
    assert!(request.signature_verifies());
    assert_eq!(request.header("webhook-id"), result["event_id"].as_str());
    let payload = request.json();
    assert_eq!(payload, result["payload"], "the answer shows what was sent");
    assert_eq!(payload["details"]["is_test"], true);
    assert_eq!(payload["details"]["count"], 2);
    let runs = h.runs(alert["id"].as_str().unwrap()).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (&runs[0]["trigger"], &runs[0]["status"]),
        (&json!("test"), &json!("succeeded"))
    );

    // Nothing matches: not sent unless asked.
    let quiet = h
        .create(
            &project,
            "quiet",
            log_alert("metadata.kind = 'none'", 60, webhook(&receiver, "/quiet")),
        )
        .await;
    let result = h.post(&test_path(&quiet), json!({})).await;
    assert_eq!(
        (&result["sent"], &result["matched_rows"]),
        (&json!(false), &json!(0)),
        "{result}"
    );
    assert!(
        result["message"].as_str().is_some_and(|m| !m.is_empty()),
        "says why: {result}"
    );
    assert!(receiver.requests_to("/quiet").is_empty());
    let result = h
        .post(&test_path(&quiet), json!({"send_on_zero_matches": true}))
        .await;
    assert_eq!(result["sent"], true, "{result}");
    let request = wait_for_requests(&receiver, "/quiet", 1).await.remove(0);
    assert_eq!(request.json()["details"]["count"], 0);
    assert_eq!(request.json()["details"]["is_test"], true);

    // An environment alert sends a sample.
    let env = h
        .create(
            &project,
            "envs",
            json!({"event_type": "environment_update", "environment_filter": ["production"],
                   "action": webhook(&receiver, "/env")}),
        )
        .await;
    let result = h.post(&test_path(&env), json!({})).await;
    assert_eq!(result["sent"], true, "{result}");
    let sample = wait_for_requests(&receiver, "/env", 1)
        .await
        .remove(0)
        .json();
    assert_eq!(sample["automation"]["event_type"], "environment_update");
    assert_eq!(sample["details"]["is_test"], true);
    for key in ["environment", "prompt", "new_version", "action"] {
        assert!(
            sample["details"].get(key).is_some(),
            "sample lacks {key}: {sample}"
        );
    }

    // An unsaved config is tested without being stored.
    let draft = json!({"project_id": project, "name": "draft",
                       "config": log_alert("metadata.kind = 'hit'", 600, webhook(&receiver, "/draft"))});
    let result = h.post("/v1/project_automation/test", draft).await;
    assert_eq!(
        (&result["sent"], &result["matched_rows"]),
        (&json!(true), &json!(2)),
        "{result}"
    );
    let request = wait_for_requests(&receiver, "/draft", 1).await.remove(0);
    assert_eq!(request.json()["automation"]["name"], "draft");
    let listed = h
        .get(&format!("/v1/project_automation?project_id={project}"))
        .await;
    assert_eq!(
        listed["objects"].as_array().unwrap().len(),
        3,
        "the draft is not stored"
    );

    // A failing destination: still 200, with the error, and no retry.
    let broken = Receiver::start().await;
    broken.respond_with(500, &[]);
    let draft = json!({"project_id": project, "name": "broken", "send_on_zero_matches": true,
                       "config": log_alert("metadata.kind = 'none'", 60, webhook(&broken, "/broken"))});
    let result = h.post("/v1/project_automation/test", draft).await;
    assert_eq!(result["sent"], false, "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("500"),
        "the error says what happened: {result}"
    );
    assert_eq!(broken.requests().len(), 1, "tests are not retried");

    // A bad unsaved config is a 400 with the path.
    let draft =
        json!({"project_id": project, "config": log_alert("", 0, webhook(&receiver, "/x"))});
    let (status, answer) = h
        .call(
            reqwest::Method::POST,
            "/v1/project_automation/test",
            Some(draft),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["path"]),
        (400, &json!("config.interval_seconds")),
        "{answer}"
    );
}

/// A plugin that logs without end fills neither the run's report nor the
/// daemon's log past the cap: 200 lines are kept, the rest counted, and one
/// line in the daemon's log says so.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_log_lines_past_the_cap_reach_neither_the_report_nor_the_daemon_log() {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    crate::harness::install(&plugins, "fixture_noop", "noop.wasm");
    let h = Herald::start_with(SETTINGS, None, data).await;
    let project = h.project("flood").await;
    let config = log_alert("", 60, json!({"type": "noop", "log_lines": 1000}));
    let outcome = h
        .post(
            "/v1/project_automation/test",
            json!({"project_id": project, "config": config, "send_on_zero_matches": true}),
        )
        .await;
    assert_eq!(outcome["sent"], true, "{outcome}");
    let logs = h.daemon.logs();
    assert!(
        logs.contains("plugin log lines past the cap are dropped"),
        "the cap is said once: {logs}"
    );
    assert!(
        !logs.contains("flood line 999") && !logs.contains("flood line 500"),
        "no line past the cap reached the daemon's log"
    );
}
