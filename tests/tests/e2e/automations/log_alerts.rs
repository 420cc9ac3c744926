//! Log alerts: a matching span reaches the receiver as Braintrust's
//! payload, field for field, signed per Standard Webhooks with the run's
//! event id, and spans that do not match send nothing; matches during
//! suppression are carried into the next notification with their count;
//! `POST …/run` sends at once while suppressed; `POST …/reset_state`
//! forgets suppression and pending matches; `/metrics` shows runs and
//! alert latency.

use super::{Herald, SETTINGS, log_alert, metric, metrics, time, wait_for_requests, webhook};
use crate::harness::Receiver;
use reqwest::Method;
use serde_json::{Value, json};

/// Asserts `object` has every key in `keys`.
fn has_keys(object: &Value, keys: &[&str]) {
    for key in keys {
        assert!(object.get(key).is_some(), "missing `{key}` in {object}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matching_span_sends_braintrusts_payload_signed() {
    let receiver = Receiver::start().await;
    let base = "https://herald.example.com";
    let settings = format!(
        "public_base_url = \"{base}\"\n{}",
        SETTINGS.replace(
            "organization_name = \"herald\"",
            "organization_name = \"Acme Labs\""
        )
    );
    let h = Herald::start(&settings).await;
    let project = h.project("chatbot").await;
    let filter = "error IS NOT NULL AND metadata.env = 'prod'";
    let alert = h
        .post(
            "/v1/project_automation",
            json!({"project_id": project, "name": "errors in prod", "description": "page on-call",
                   "config": log_alert(filter, 600, webhook(&receiver, "/alerts"))}),
        )
        .await;
    let id = alert["id"].as_str().unwrap();
    let quiet = h
        .create(
            &project,
            "never",
            log_alert("metadata.env = 'never'", 1, webhook(&receiver, "/never")),
        )
        .await;

    h.insert(
        &project,
        json!([{"input": "hi", "metadata": {"env": "prod"}}, {"error": "boom", "metadata": {"env": "staging"}}]),
    )
    .await;
    let before = chrono::Utc::now();
    h.insert(
        &project,
        json!([{"input": "refund?", "error": "timeout", "metadata": {"env": "prod"}}]),
    )
    .await;
    let acknowledged = std::time::Instant::now();
    let request = wait_for_requests(&receiver, "/alerts", 1).await.remove(0);
    let after = chrono::Utc::now();
    // Detection is driven by ingest: within a second, not at the next poll.
    let latency = request.at.saturating_duration_since(acknowledged);
    assert!(
        latency < std::time::Duration::from_secs(1),
        "alerted after {latency:?}"
    );

    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        request.signature_verifies(),
        "signature: {:?}",
        request.headers
    );
    let event_id = request.header("webhook-id").unwrap().to_owned();
    assert!(event_id.starts_with("evt_"), "{event_id}");
    let payload = request.json();
    has_keys(
        &payload,
        &["organization", "project", "automation", "details"],
    );
    assert_eq!(payload["organization"]["name"], "Acme Labs", "{payload}");
    let organization_id = payload["organization"]["id"].as_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(organization_id).is_ok(),
        "the organization's id is an id, not its name: {payload}"
    );
    assert_eq!(
        payload["project"],
        json!({"id": project, "name": "chatbot"})
    );
    let automation = &payload["automation"];
    has_keys(
        automation,
        &[
            "id",
            "name",
            "description",
            "event_type",
            "btql_filter",
            "interval_seconds",
            "url",
        ],
    );
    assert_eq!(automation["id"], id);
    assert_eq!(automation["name"], "errors in prod");
    assert_eq!(automation["description"], "page on-call");
    assert_eq!(automation["event_type"], "logs");
    assert_eq!(automation["btql_filter"], filter);
    assert_eq!(automation["interval_seconds"], 600);
    assert_eq!(
        automation["url"],
        format!("{base}/v1/project_automation/{id}")
    );
    let details = &payload["details"];
    has_keys(
        details,
        &[
            "is_test",
            "message",
            "time_start",
            "time_end",
            "count",
            "related_logs_url",
        ],
    );
    assert_eq!(details["is_test"], false);
    assert_eq!(
        details["count"], 1,
        "only the matching span counts: {details}"
    );
    let message = details["message"].as_str().unwrap();
    assert!(
        message.contains("errors in prod") && message.contains('1'),
        "{message}"
    );
    let (start, end) = (time(&details["time_start"]), time(&details["time_end"]));
    let created = time(&alert["created"]);
    assert!(
        (start - created).abs() < chrono::TimeDelta::seconds(1),
        "first window starts at creation: {details}"
    );
    assert!(
        start <= end && end >= before - chrono::TimeDelta::seconds(1) && end <= after,
        "{details}"
    );
    let logs_url = details["related_logs_url"].as_str().unwrap();
    let logs_base = format!("{base}/v1/project_logs/{project}/fetch");
    assert!(logs_url.starts_with(&logs_base), "{logs_url}");

    // The run records what happened, under the same event id.
    let runs = h
        .wait_for_runs(id, "the run to succeed", |runs| {
            runs.first().is_some_and(|r| r["status"] == "succeeded")
        })
        .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["automation_id"], id);
    assert_eq!(run["trigger"], "event");
    assert_eq!(
        (&run["matched_rows"], &run["deliveries"], &run["attempts"]),
        (&json!(1), &json!(1), &json!(1)),
        "{run}"
    );
    assert_eq!(run["error"], Value::Null);
    has_keys(run, &["id", "started", "finished", "duration_ms"]);
    assert!(time(&run["finished"]) >= time(&run["started"]), "{run}");
    assert_eq!(run["details"]["event_id"], event_id.as_str());
    assert_eq!(run["details"]["status_code"], 200);
    let (lo, hi) = (
        run["details"]["xact_after"].as_i64().unwrap(),
        run["details"]["xact_upto"].as_i64().unwrap(),
    );
    assert!(lo < hi, "{run}");
    let status = h.status(id).await;
    assert_eq!(status["state"], "suppressed", "{status}");
    assert!(time(&status["suppressed_until"]) > end, "{status}");
    assert_eq!(status["last_run"]["id"], run["id"]);
    assert_eq!(status["watermark"].as_i64(), Some(hi), "{status}");
    assert_eq!(
        (
            &status["consecutive_failures"],
            &status["queued_deliveries"]
        ),
        (&json!(0), &json!(0))
    );

    // Metrics show the run and the latency; they need the key.
    let text = metrics(&h).await;
    let runs_total = metric(
        &text,
        "herald_automation_runs_total",
        &[
            ("event_type", "logs"),
            ("trigger", "event"),
            ("status", "succeeded"),
        ],
    );
    assert_eq!(runs_total, Some(1.0), "{text}");
    let latency = metric(
        &text,
        "herald_alert_latency_seconds_count",
        &[("event_type", "logs")],
    );
    assert_eq!(latency, Some(1.0), "{text}");
    assert!(
        text.contains("# TYPE herald_alert_latency_seconds histogram"),
        "{text}"
    );
    let delivered = metric(
        &text,
        "herald_deliveries_total",
        &[("plugin", "webhook"), ("outcome", "delivered")],
    );
    assert_eq!(delivered, Some(1.0), "{text}");
    let anonymous = reqwest::get(format!("{}/metrics", h.daemon.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // Exactly one notification; the alert that matched nothing sent nothing
    // and recorded no run, though it was evaluated on the same inserts.
    assert_eq!(receiver.requests_to("/alerts").len(), 1);
    assert!(receiver.requests_to("/never").is_empty());
    assert!(h.runs(quiet["id"].as_str().unwrap()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn suppressed_matches_are_carried_over_and_run_once_sends_at_once() {
    const INTERVAL: i64 = 2;
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let project = h.project("suppression").await;
    let hit = json!([{"input": "x", "metadata": {"kind": "hit"}}]);
    let alert = h
        .create(
            &project,
            "hits",
            log_alert(
                "metadata.kind = 'hit'",
                INTERVAL as u64,
                webhook(&receiver, "/s"),
            ),
        )
        .await;
    let id = alert["id"].as_str().unwrap();

    h.insert(&project, hit.clone()).await;
    let first = wait_for_requests(&receiver, "/s", 1).await.remove(0).json();
    assert_eq!(first["details"]["count"], 1, "{first}");
    let first_end = time(&first["details"]["time_end"]);

    // Three more while suppressed: counted, not sent.
    for _ in 0..3 {
        h.insert(&project, hit.clone()).await;
    }
    h.wait_for_status(id, "3 pending matches", |s| s["pending_matches"] == 3)
        .await;
    if chrono::Utc::now() < first_end + chrono::TimeDelta::milliseconds(INTERVAL * 1000 - 200) {
        assert_eq!(
            receiver.requests_to("/s").len(),
            1,
            "sent during suppression"
        );
    } else {
        eprintln!("too slow to observe the suppression window directly; relying on time_end");
    }

    // They arrive together when the interval is over.
    let requests = wait_for_requests(&receiver, "/s", 2).await;
    let second = requests[1].json();
    assert_eq!(second["details"]["count"], 3, "{second}");
    assert_eq!(
        time(&second["details"]["time_start"]),
        first_end,
        "windows are contiguous"
    );
    let second_end = time(&second["details"]["time_end"]);
    assert!(
        second_end - first_end >= chrono::TimeDelta::milliseconds(INTERVAL * 1000 - 10),
        "suppressed for the interval: {first_end} → {second_end}"
    );
    let url = second["details"]["related_logs_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("/v1/project_logs/{project}/fetch")),
        "a path without public_base_url: {url}"
    );
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);

    let runs = h
        .wait_for_runs(id, "two succeeded runs", |runs| {
            runs.len() == 2 && runs.iter().all(|r| r["status"] == "succeeded")
        })
        .await;
    assert_eq!(
        (&runs[0]["trigger"], &runs[1]["trigger"]),
        (&json!("scheduled"), &json!("event")),
        "{runs:?}"
    );
    assert_eq!(
        (&runs[0]["matched_rows"], &runs[1]["matched_rows"]),
        (&json!(3), &json!(1))
    );
    assert_eq!(runs[0]["details"]["event_id"], ids[1]);
    assert_eq!(runs[1]["details"]["event_id"], ids[0]);
    assert_eq!(
        runs[0]["details"]["xact_after"],
        runs[1]["details"]["xact_upto"]
    );
    let page = h
        .get(&format!("/v1/project_automation/{id}/runs?limit=1"))
        .await;
    assert_eq!(page["objects"], json!([runs[0]]));
    let rest = format!(
        "/v1/project_automation/{id}/runs?limit=1&starting_after={}",
        runs[0]["id"].as_str().unwrap()
    );
    assert_eq!(h.get(&rest).await["objects"], json!([runs[1]]));

    // Run once: with nothing to send it is skipped; while suppressed it
    // still evaluates and sends at once.
    let manual = h
        .create(
            &project,
            "manual",
            log_alert("metadata.kind = 'manual'", 600, webhook(&receiver, "/m")),
        )
        .await;
    let manual_id = manual["id"].as_str().unwrap();
    let run_path = format!("/v1/project_automation/{manual_id}/run");
    let run = h.ok(Method::POST, &run_path, None).await;
    assert_eq!(run["trigger"], "manual", "{run}");
    h.wait_for_runs(manual_id, "a skipped manual run", |r| {
        r.len() == 1 && r[0]["status"] == "skipped"
    })
    .await;
    let manual_span = json!([{"input": "y", "metadata": {"kind": "manual"}}]);
    h.insert(&project, manual_span.clone()).await;
    wait_for_requests(&receiver, "/m", 1).await;
    h.insert(&project, json!([manual_span[0], manual_span[0]]))
        .await;
    h.wait_for_status(manual_id, "2 pending matches", |s| {
        s["state"] == "suppressed" && s["pending_matches"] == 2
    })
    .await;
    let run = h.ok(Method::POST, &run_path, None).await;
    assert_eq!(run["trigger"], "manual", "{run}");
    let sent = wait_for_requests(&receiver, "/m", 2).await;
    assert_eq!(sent[1].json()["details"]["count"], 2);
    let runs = h
        .wait_for_runs(manual_id, "the manual run to succeed", |r| {
            r.iter()
                .any(|r| r["trigger"] == "manual" && r["status"] == "succeeded")
        })
        .await;
    assert_eq!(runs[0]["matched_rows"], 2, "{runs:?}");
    let status = h.status(manual_id).await;
    assert_eq!(status["pending_matches"], 0, "{status}");
    assert_eq!(receiver.requests_to("/m").len(), 2);

    // Reset state: suppression and carried-over matches are forgotten, the
    // watermark moves to now, and the next match alerts at once.
    h.insert(&project, manual_span.clone()).await;
    h.wait_for_status(manual_id, "1 pending match", |s| s["pending_matches"] == 1)
        .await;
    let reset = format!("/v1/project_automation/{manual_id}/reset_state");
    h.ok(Method::POST, &reset, None).await;
    let status = h.status(manual_id).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(
        (&status["pending_matches"], &status["suppressed_until"]),
        (&json!(0), &json!(null)),
        "{status}"
    );
    h.insert(&project, manual_span).await;
    let sent = wait_for_requests(&receiver, "/m", 3).await;
    assert_eq!(
        sent[2].json()["details"]["count"],
        1,
        "the forgotten match is not counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_alert_notifies_each_of_its_extra_actions() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let project = h.project("fan-out").await;
    let mut config = log_alert("error IS NOT NULL", 600, webhook(&receiver, "/primary"));
    config["actions"] = json!([webhook(&receiver, "/second"), webhook(&receiver, "/third")]);
    let alert = h.create(&project, "everywhere", config).await;
    assert_eq!(alert["config"]["actions"][1]["secret"], "[redacted]");
    let id = alert["id"].as_str().unwrap();
    h.insert(&project, json!([{"input": "x", "error": "boom"}]))
        .await;
    let mut ids = Vec::new();
    for path in ["/primary", "/second", "/third"] {
        let request = wait_for_requests(&receiver, path, 1).await.remove(0);
        assert!(request.signature_verifies(), "{path}");
        assert_eq!(request.json()["details"]["count"], 1, "{path}");
        ids.push(request.header("webhook-id").unwrap().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each destination has its own event id");
    let runs = h
        .wait_for_runs(id, "the run ends", |runs| {
            runs.first().is_some_and(|r| r["status"] == "succeeded")
        })
        .await;
    assert_eq!(runs[0]["deliveries"], 3);
    assert_eq!(runs[0]["attempts"], 3);
    let destinations = &runs[0]["details"]["destinations"];
    for key in ["action", "actions[0]", "actions[1]"] {
        assert_eq!(
            destinations[key]["status"], "succeeded",
            "{key}: {destinations}"
        );
    }
    let (status, body) = h
        .call(
            Method::POST,
            "/v1/project_automation",
            Some(json!({"project_id": project, "name": "bad extra",
                "config": {"event_type": "logs", "interval_seconds": 60,
                    "action": webhook(&receiver, "/x"),
                    "actions": [{"type": "webhook", "url": "not a url"}]}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["path"]
            .as_str()
            .unwrap()
            .starts_with("config.actions[0]"),
        "{body}"
    );
}
