//! Delivery through the outbox: retryable failures are retried on the
//! configured schedule under one event id and delivered once; a
//! non-retryable one fails at once; deliveries queued when the daemon
//! crashes are delivered by the next one, once per event id; a destination
//! that keeps failing pauses its automation until `POST …/resume`.

use super::{Herald, SETTINGS, log_alert, metric, metrics, wait_for_requests, webhook};
use crate::harness::{Receiver, wait_until};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn retryable_failures_are_retried_under_one_event_id() {
    let flaky = Receiver::start().await;
    flaky.respond_next(&[503, 503]);
    let strict = Receiver::start().await;
    strict.respond_with(400, &[]);
    let throttled = Receiver::start().await;
    throttled.respond_with(429, &[("retry-after", "2")]);
    let h = Herald::start(SETTINGS).await;
    let project = h.project("retries").await;
    let filter = "metadata.kind = 'retry'";
    let retried = h
        .create(
            &project,
            "flaky",
            log_alert(filter, 600, webhook(&flaky, "/flaky")),
        )
        .await;
    let refused = h
        .create(
            &project,
            "strict",
            log_alert(filter, 600, webhook(&strict, "/strict")),
        )
        .await;
    let throttle = log_alert(filter, 600, webhook(&throttled, "/throttled"));
    h.create(&project, "throttled", throttle).await;
    h.insert(
        &project,
        json!([{"input": "x", "metadata": {"kind": "retry"}}]),
    )
    .await;
    wait_for_requests(&throttled, "/throttled", 1).await;
    throttled.respond_with(200, &[]);

    let requests = wait_for_requests(&flaky, "/flaky", 3).await;
    let id = retried["id"].as_str().unwrap();
    let runs = h
        .wait_for_runs(id, "the retried run to succeed", |r| {
            r.len() == 1 && r[0]["status"] == "succeeded"
        })
        .await;
    let run = &runs[0];
    assert_eq!(
        (&run["attempts"], &run["deliveries"]),
        (&json!(3), &json!(1)),
        "{run}"
    );
    assert_eq!(run["details"]["status_code"], 200, "{run}");
    let event_id = run["details"]["event_id"].as_str().unwrap();
    assert_eq!(
        flaky.requests().len(),
        3,
        "delivered once, after two failures"
    );
    for request in &requests {
        assert_eq!(request.header("webhook-id"), Some(event_id));
        assert!(request.signature_verifies());
        assert_eq!(
            request.body, requests[0].body,
            "every attempt sends the same payload"
        );
    }
    // Attempts 2 and 3 wait 200 ms and 400 ms (±20 %).
    let gaps = [
        requests[1].at - requests[0].at,
        requests[2].at - requests[1].at,
    ];
    assert!(
        gaps[0] >= Duration::from_millis(150) && gaps[1] >= Duration::from_millis(300),
        "{gaps:?}"
    );
    let status = h.status(id).await;
    assert_eq!(
        (
            &status["consecutive_failures"],
            &status["queued_deliveries"]
        ),
        (&json!(0), &json!(0)),
        "{status}"
    );

    // A 400 is not retried: the run fails with the reason.
    let id = refused["id"].as_str().unwrap();
    let runs = h
        .wait_for_runs(id, "the refused run to fail", |r| {
            r.len() == 1 && r[0]["status"] == "failed"
        })
        .await;
    assert_eq!(runs[0]["attempts"], 1, "{runs:?}");
    let error = runs[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("400"),
        "the error says what happened: {error:?}"
    );
    assert_eq!(strict.requests().len(), 1);
    let status = h.status(id).await;
    assert_eq!(status["consecutive_failures"], 1, "{status}");

    // Retry-After (2 s) wins over the schedule's 200 ms.
    let requests = wait_for_requests(&throttled, "/throttled", 2).await;
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After ignored: {waited:?}"
    );
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );

    let text = metrics(&h).await;
    assert!(
        metric(&text, "herald_deliveries_total", &[("outcome", "retried")])
            .is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        metric(&text, "herald_deliveries_total", &[("outcome", "failed")])
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_queued_when_the_daemon_crashes_are_delivered_after_restart() {
    // Slow enough that daemon 1 does not run out of attempts before it dies.
    let settings = "[automations]\nretry_schedule_ms = [0, 300, 600, 1200, 2400, 4800, 9600]\n\
                    pause_after_failures = 100\n";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    let h = Herald::start(settings).await;
    let project = h.project("restart").await;
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let action = json!({"type": "webhook", "url": format!("{down}/{name}"), "secret": crate::harness::webhook_secret()});
        let created = h.create(&project, name, log_alert("", 600, action)).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    h.insert(&project, json!([{"input": "while the receiver is down"}]))
        .await;
    for id in &ids {
        h.wait_for_status(id, "a failed attempt with the delivery still queued", |s| {
            s["queued_deliveries"] == 1
                && s["consecutive_failures"].as_u64().is_some_and(|n| n >= 1)
        })
        .await;
    }
    let data = Arc::clone(&h.data);
    drop(h); // SIGKILL: no chance to finish or release anything.

    let receiver = Receiver::start_on(port).await;
    let h = Herald::start_with(settings, None, data).await;
    // A crashed daemon's lease may have to expire first: allow for it.
    wait_until(
        Duration::from_secs(90),
        "both queued deliveries",
        || async { receiver.requests_to("/a").len() == 1 && receiver.requests_to("/b").len() == 1 },
    )
    .await;
    let mut event_ids = Vec::new();
    for id in &ids {
        let runs = h
            .wait_for_runs(id, "the run to succeed", |r| {
                r.len() == 1 && r[0]["status"] == "succeeded"
            })
            .await;
        event_ids.push(runs[0]["details"]["event_id"].as_str().unwrap().to_owned());
        assert!(runs[0]["attempts"].as_u64().unwrap() >= 2, "{runs:?}");
    }
    assert_ne!(event_ids[0], event_ids[1]);
    for (path, event_id) in ["/a", "/b"].iter().zip(&event_ids) {
        let requests = receiver.requests_to(path);
        assert_eq!(requests.len(), 1, "exactly once: {path}");
        assert_eq!(requests[0].header("webhook-id"), Some(event_id.as_str()));
        assert!(requests[0].signature_verifies());
        assert_eq!(
            requests[0].json()["details"]["count"],
            1,
            "counted once across the restart"
        );
    }
}

/// A daemon with a log alert in project `name` whose receiver answers
/// `status` at `path`, and one matching span ingested: the receiver, the
/// daemon and the alert's id.
async fn alert_to_a_receiver_answering(
    status: u16,
    name: &str,
    path: &str,
) -> (Receiver, Herald, String) {
    let receiver = Receiver::start().await;
    receiver.respond_with(status, &[]);
    let h = Herald::start(SETTINGS).await;
    let project = h.project(name).await;
    let alert = h
        .create(&project, name, log_alert("", 1, webhook(&receiver, path)))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    h.insert(&project, json!([{"input": "x"}])).await;
    (receiver, h, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_destination_pauses_the_automation_until_resumed() {
    let (receiver, h, id) = alert_to_a_receiver_answering(500, "pause", "/p").await;
    let id = id.as_str();

    let status = h
        .wait_for_status(id, "the automation to pause", |s| s["state"] == "paused")
        .await;
    let reason = status["paused_reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "status says why: {status}");
    let path = format!("/v1/project_automation/{id}");
    assert_eq!(
        h.get(&path).await["config"]["status"],
        "paused",
        "the config reads the failure pause"
    );
    assert_eq!(status["consecutive_failures"], 5, "{status}");
    assert_eq!(
        status["queued_deliveries"], 1,
        "the delivery waits: {status}"
    );
    let failed = receiver.requests();
    assert_eq!(failed.len(), 5, "paused after five attempts");
    // The run shows the receiver's answer to the last attempt.
    let runs = h
        .wait_for_runs(id, "the run to show the receiver's status", |r| {
            r.first()
                .is_some_and(|r| r["details"]["status_code"] == 500 && r["attempts"] == 5)
        })
        .await;
    let error = runs[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("answered 500"), "{runs:?}");
    let event_id = failed[0].header("webhook-id").unwrap().to_owned();
    assert!(
        failed
            .iter()
            .all(|r| r.header("webhook-id") == Some(event_id.as_str()))
    );
    let text = metrics(&h).await;
    assert_eq!(
        metric(&text, "herald_automations_paused_total", &[]),
        Some(1.0),
        "{text}"
    );

    receiver.respond_with(200, &[]);
    h.ok(
        Method::POST,
        &format!("/v1/project_automation/{id}/resume"),
        None,
    )
    .await;
    let requests = wait_for_requests(&receiver, "/p", 6).await;
    assert_eq!(requests[5].header("webhook-id"), Some(event_id.as_str()));
    let runs = h
        .wait_for_runs(id, "the resumed run to succeed", |r| {
            r.first().is_some_and(|r| r["status"] == "succeeded")
        })
        .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["attempts"], 6, "{runs:?}");
    let status = h.status(id).await;
    assert_ne!(status["state"], "paused", "{status}");
    assert_eq!(h.get(&path).await["config"]["status"], "active");
    assert_eq!(
        (&status["paused_reason"], &status["consecutive_failures"]),
        (&json!(null), &json!(0)),
        "{status}"
    );
    assert_eq!(receiver.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_gone_pauses_the_automation_at_once() {
    let (receiver, h, id) = alert_to_a_receiver_answering(410, "gone", "/gone").await;
    let id = id.as_str();
    let status = h
        .wait_for_status(id, "the automation to pause", |s| s["state"] == "paused")
        .await;
    let reason = status["paused_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("410 Gone"), "{status}");
    assert_eq!(receiver.requests().len(), 1, "no retry, no second attempt");
    let runs = h.runs(id).await;
    assert_eq!(runs[0]["status"], "failed", "{runs:?}");
    assert_eq!(runs[0]["details"]["status_code"], 410);
    assert_eq!(
        h.get(&format!("/v1/project_automation/{id}")).await["config"]["status"],
        "paused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_notification_is_sent_again_on_request_with_its_event_id() {
    let (receiver, h, id) = alert_to_a_receiver_answering(404, "retry", "/r").await;
    let id = id.as_str();
    let runs = h
        .wait_for_runs(id, "the run to fail", |r| {
            r.first().is_some_and(|r| r["status"] == "failed")
        })
        .await;
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(runs[0]["details"]["status_code"], 404);
    let retry = format!("/v1/project_automation/{id}/runs/{run_id}/retry");

    // The receiver is fixed; the operator re-sends.
    receiver.respond_with(200, &[]);
    let answer = h.post(&retry, json!({})).await;
    assert_eq!(answer["id"], run_id.as_str());
    assert_eq!(answer["status"], "running", "{answer}");
    let runs = h
        .wait_for_runs(id, "the re-sent run to succeed", |r| {
            r.first().is_some_and(|r| r["status"] == "succeeded")
        })
        .await;
    assert_eq!(runs.len(), 1, "the same run: {runs:?}");
    assert_eq!(runs[0]["attempts"], 2, "{runs:?}");
    assert_eq!(runs[0]["details"]["status_code"], 200);
    let requests = wait_for_requests(&receiver, "/r", 2).await;
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id"),
        "the same event id"
    );

    // Nothing to retry now; an unknown run is 404.
    let (status, body) = h.call(Method::POST, &retry, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no failed notification")),
        "{body}"
    );
    let unknown = format!(
        "/v1/project_automation/{id}/runs/{}/retry",
        uuid::Uuid::new_v4()
    );
    let (status, _) = h.call(Method::POST, &unknown, None).await;
    assert_eq!(status, 404);
}
