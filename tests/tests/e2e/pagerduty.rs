//! The bundled PagerDuty destination against a receiver on loopback that
//! speaks the Events API v2 as PagerDuty does: it checks each event (a
//! 32-character routing key, a known `event_action`, and for a trigger a
//! summary, source and severity) and answers 202 with the dedup key, 400
//! `invalid event` with its errors, or, when told to, 429 / 503.
//! End to end through the daemon with the routing key named by
//! `routing_key_secret_name` (Braintrust's shape), and through the runtime
//! for resolve, tests and the error answers.

use crate::automations::{Herald, SETTINGS, log_alert};
use crate::harness::{loopback_policy, runtime_with};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald::plugins::{AlertRequest, CallError};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";

/// What the fake PagerDuty received and will answer next.
#[derive(Default)]
struct Events {
    received: Vec<Value>,
    /// Statuses to answer instead of processing, first first.
    next: VecDeque<u16>,
}

/// A loopback PagerDuty Events API v2.
struct PagerDuty {
    url: String,
    events: Arc<Mutex<Events>>,
}

impl PagerDuty {
    async fn start() -> Self {
        let events = Arc::new(Mutex::new(Events::default()));
        let app = axum::Router::new()
            .route("/v2/enqueue", axum::routing::post(enqueue))
            .with_state(events.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { url, events }
    }

    fn received(&self) -> Vec<Value> {
        self.events.lock().unwrap().received.clone()
    }

    fn answer_next(&self, statuses: &[u16]) {
        self.events.lock().unwrap().next.extend(statuses);
    }
}

async fn enqueue(State(events): State<Arc<Mutex<Events>>>, Json(event): Json<Value>) -> Response {
    let mut events = events.lock().unwrap();
    events.received.push(event.clone());
    match events.next.pop_front() {
        Some(429) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "4")],
                Json(json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly."})),
            )
                .into_response();
        }
        Some(400) => {
            let body = json!({"status": "invalid event", "message": "Event object is invalid",
                              "errors": ["'payload.summary' is missing"]});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
        Some(status) => {
            return (StatusCode::from_u16(status).unwrap(), "upstream trouble").into_response();
        }
        None => {}
    }
    let mut errors = Vec::new();
    let key = event["routing_key"].as_str().unwrap_or_default();
    if key.len() != 32 {
        errors.push("'routing_key' must be 32 characters".to_owned());
    }
    let action = event["event_action"].as_str().unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push("'event_action' is invalid".into());
    }
    if action == "trigger" {
        for field in ["summary", "source", "severity"] {
            if !event["payload"][field].is_string() {
                errors.push(format!("'payload.{field}' is missing"));
            }
        }
    } else if !event["dedup_key"].is_string() {
        errors.push("'dedup_key' is required to acknowledge or resolve".into());
    }
    if !errors.is_empty() {
        let body = json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let body = json!({"status": "success", "message": "Event processed",
                      "dedup_key": event["dedup_key"]});
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_alert_triggers_an_incident_with_the_routing_key_its_config_names() {
    let pagerduty = PagerDuty::start().await;
    let settings = format!("{SETTINGS}\n[plugins.pagerduty]\nallowed_hosts = [\"127.0.0.1\"]\n");
    let h = Herald::start(&settings).await;
    let project = h.project("paging").await;
    h.post(
        "/v1/env_var",
        json!({"object_type": "project", "object_id": project, "name": "PD_ROUTING_KEY",
               "value": ROUTING_KEY}),
    )
    .await;
    // Braintrust's shape (plus the endpoint, for the test).
    let action = json!({"type": "pagerduty", "routing_key_secret_name": "PD_ROUTING_KEY",
                        "severity": "critical", "events_url": pagerduty.url});
    let alert = h
        .create(
            &project,
            "errors page",
            log_alert("error IS NOT NULL", 3600, action),
        )
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    assert_eq!(
        alert["config"]["action"]["routing_key_secret_name"],
        "PD_ROUTING_KEY"
    );
    h.insert(
        &project,
        json!([{"input": "q", "error": "model timed out"}]),
    )
    .await;
    let runs = h
        .wait_for_runs(&id, "the page to be delivered", |r| {
            r.first().is_some_and(|r| r["status"] == "succeeded")
        })
        .await;
    assert_eq!(runs[0]["details"]["status_code"], 202, "{runs:?}");
    let summary = runs[0]["details"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!("dedup_key herald-{id}")),
        "{summary}"
    );
    let events = pagerduty.received();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["routing_key"], ROUTING_KEY);
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["dedup_key"], format!("herald-{id}"));
    assert_eq!(event["payload"]["severity"], "critical");
    assert_eq!(event["payload"]["source"], "herald/paging");
    let text = event["payload"]["summary"].as_str().unwrap();
    assert!(text.contains("(project paging)"), "{text}");
    assert_eq!(event["payload"]["custom_details"]["details"]["count"], 1);
    assert!(
        !format!("{runs:?}").contains(ROUTING_KEY) && !h.daemon.logs().contains(ROUTING_KEY),
        "the routing key stays out of runs and logs"
    );

    // A test gets its own dedup key and severity info.
    let test = h
        .post(
            &format!("/v1/project_automation/{id}/test"),
            json!({"send_on_zero_matches": true}),
        )
        .await;
    assert_eq!(test["status_code"], 202, "{test}");
    let events = pagerduty.received();
    assert_eq!(events[1]["dedup_key"], format!("herald-{id}-test"));
    assert_eq!(events[1]["payload"]["severity"], "info");
}

fn alert(details: Value, is_test: bool) -> AlertRequest {
    AlertRequest {
        event_id: "evt_pd".into(),
        event_type: "logs".into(),
        payload: json!({
            "organization": {"id": "org", "name": "acme"},
            "project": {"id": "p1", "name": "bot"},
            "automation": {"id": "a1", "name": "latency", "event_type": "logs",
                           "url": "https://herald.example.com/app/automations/a1"},
            "details": details,
        }),
        is_test,
        attempt: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recoveries_resolve_by_dedup_key_and_error_answers_are_classified() {
    let pagerduty = PagerDuty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(dir.path(), &[("pagerduty", loopback_policy())]).await;
    let config = json!({"routing_key": ROUTING_KEY, "events_url": pagerduty.url});
    let firing = json!({"message": "p95 above 2 s", "state": "firing", "group": "gpt-4o"});
    let delivered = runtime
        .deliver("pagerduty", &config, &alert(firing, false))
        .await
        .result
        .expect("triggered");
    assert_eq!(delivered.status_code, Some(202));
    let recovered =
        json!({"message": "p95 back under 2 s", "state": "recovered", "group": "gpt-4o"});
    let resolved = runtime
        .deliver("pagerduty", &config, &alert(recovered, false))
        .await
        .result
        .expect("resolved");
    assert!(
        resolved.summary.starts_with("resolved on"),
        "{}",
        resolved.summary
    );
    let events = pagerduty.received();
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(
        events[0]["dedup_key"], "herald-a1-gpt-4o",
        "one key per group"
    );
    assert_eq!(events[0]["payload"]["severity"], "error", "the default");
    assert_eq!(
        events[0]["links"][0]["href"],
        "https://herald.example.com/app/automations/a1"
    );
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[1]["dedup_key"], events[0]["dedup_key"]);

    // PagerDuty's own answers: throttled (retry after its delay), down
    // (retry), an invalid event (final, with PagerDuty's reasons).
    pagerduty.answer_next(&[429, 503, 400]);
    for (status, retryable) in [(429, true), (503, true), (400, false)] {
        match runtime
            .deliver("pagerduty", &config, &alert(json!({"message": "x"}), false))
            .await
            .result
        {
            Err(error @ CallError::Failed { .. }) => {
                assert_eq!(error.is_retryable(), retryable, "{status}: {error}");
                assert_eq!(error.status_code(), Some(status));
                let message = error.to_string();
                assert!(message.contains(&format!("answered {status}")), "{message}");
                if let CallError::Failed { retry_after, .. } = &error {
                    let expected = (status == 429).then(|| Duration::from_secs(4));
                    assert_eq!(*retry_after, expected, "{status}");
                }
                if status == 400 {
                    assert!(
                        message.contains("Event object is invalid: 'payload.summary' is missing"),
                        "{message}"
                    );
                }
            }
            other => panic!("{status}: expected a failure, got {other:?}"),
        }
    }
    assert_eq!(pagerduty.received().len(), 5);

    // The config check never echoes the key and points at the field.
    let short = json!({"routing_key": "shortkey", "severity": "loud"});
    match runtime.validate_config("pagerduty", &short).await.result {
        Err(CallError::InvalidConfig(problems)) => {
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, ["/routing_key", "/severity"]);
            assert!(!format!("{problems:?}").contains("shortkey"));
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
}
