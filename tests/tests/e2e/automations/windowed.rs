//! Windowed threshold alerts (`event_type: "windowed"`), on both backends
//! where the database matters: a calculation over the window held against a
//! threshold fires once into every action and recovers once; a breach
//! shorter than `pending_seconds` never fires; a window without data alerts
//! when told to; groups fire and recover on their own; a failing
//! destination among several does not hold back the others; a restart
//! mid-firing sends nothing twice; bad configs are refused at their field.
//!
//! The calculations are ratios over a long window (an error rate), so the
//! tests move the value by ingesting spans, never by waiting for time to
//! pass; evaluations run every second.

use super::{Herald, SETTINGS, time, wait_for_requests, webhook};
use crate::harness::Receiver;
use crate::storage::{Backend, TestDb, both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

/// The share of spans with an error.
const ERROR_RATE: &str =
    "SELECT avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate FROM spans";

/// A windowed alert over the last hour, evaluated every second.
fn windowed(query: &str, value_column: &str, policy: Value, actions: Value) -> Value {
    json!({
        "event_type": "windowed",
        "status": "active",
        "window": {"window_seconds": 3600, "evaluation_delay_seconds": 0,
                   "schedule": {"type": "interval", "evaluation_interval_seconds": 1}},
        "threshold": {
            "calculation": {"type": "btql", "btql_query": query,
                            "output": {"type": "scalar", "value_column": value_column}},
            "policy": policy,
        },
        "actions": actions,
    })
}

/// Fires above 50 %, at once, and notifies recoveries.
fn above_half() -> Value {
    json!({"condition": {"type": "threshold", "operator": "gt", "threshold": 0.5},
           "pending_seconds": 0, "no_data_behavior": "keep_last",
           "notify_on_recovery": true})
}

/// Creates an alert on `query`'s `error_rate` [`above_half`] into
/// `actions`; returns its id.
async fn alert_above_half(
    h: &Herald,
    project: &str,
    name: &str,
    query: &str,
    actions: Value,
) -> String {
    let config = windowed(query, "error_rate", above_half(), actions);
    let alert = h.create(project, name, config).await;
    alert["id"].as_str().unwrap().to_owned()
}

/// [`above_half`], with a reminder every second while firing.
fn reminding_every_second() -> Value {
    let mut policy = above_half();
    policy["renotify_interval_seconds"] = json!(1);
    policy.as_object_mut().unwrap().remove("notify_on_recovery");
    policy
}

/// Inserts one failing span in each new group `g<i>` of `range` and waits
/// until alert `id` has a destination paused; returns its status.
async fn fail_new_groups(
    h: &Herald,
    project: &str,
    id: &str,
    range: std::ops::Range<usize>,
) -> Value {
    let events: Vec<Value> = range
        .map(|g| json!({"input": format!("g{g}"), "error": "boom"}))
        .collect();
    h.insert(project, json!(events)).await;
    h.wait_for_status(id, "a destination paused", |s| {
        s["paused_destinations"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    })
    .await
}

/// `n` spans, with an error when `failing`, tagged `input`.
fn spans(n: usize, input: &str, failing: bool) -> Value {
    (0..n)
        .map(|_| {
            if failing {
                json!({"input": input, "error": "boom"})
            } else {
                json!({"input": input, "output": "fine"})
            }
        })
        .collect()
}

/// Waits until `id` has been evaluated twice more (its `last_checked` moved
/// past now by two evaluations), so a notification that was going to be
/// sent again would have been.
async fn two_more_evaluations(h: &Herald, id: &str) {
    let after = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    h.wait_for_status(id, "two more evaluations", |s| {
        s["last_checked"]
            .as_str()
            .is_some_and(|t| time(&json!(t)) > after)
    })
    .await;
}

/// A daemon on `backend`, and the database it keeps.
async fn herald_on(backend: Backend) -> (Herald, TestDb) {
    herald_on_with(backend, SETTINGS).await
}

/// [`herald_on`] with `settings`.
async fn herald_on_with(backend: Backend, settings: &str) -> (Herald, TestDb) {
    let db = TestDb::new(backend).await;
    let data = Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with(settings, Some(&db.url), data).await;
    (h, db)
}

/// [`SETTINGS`] with the shortest lease: a daemon killed while it holds
/// one (mid-evaluation) keeps its automation from the next daemon until
/// the lease expires, 120 s by default.
fn short_lease() -> String {
    format!("{SETTINGS}lease_seconds = 5\n")
}

both_backends!(fires_once_into_every_action_and_recovers_once);

async fn fires_once_into_every_action_and_recovers_once(backend: Backend) {
    let receiver = Receiver::start().await;
    let (h, _db) = herald_on(backend).await;
    let project = h.project("windowed").await;
    let id = alert_above_half(
        &h,
        &project,
        "error rate",
        ERROR_RATE,
        json!([webhook(&receiver, "/a"), webhook(&receiver, "/b")]),
    )
    .await;
    let id = id.as_str();
    let alert = h.get(&format!("/v1/project_automation/{id}")).await;
    assert_eq!(alert["config"]["event_type"], "windowed");
    assert_eq!(alert["config"]["actions"][0]["secret"], "[redacted]");

    h.insert(&project, spans(3, "q", false)).await;
    h.wait_for_status(id, "the value 0 seen", |s| {
        s["windowed"]["value"] == json!(0.0) && s["windowed"]["state"] == "ok"
    })
    .await;
    h.insert(&project, spans(5, "q", true)).await;
    let a = wait_for_requests(&receiver, "/a", 1).await.remove(0);
    let b = wait_for_requests(&receiver, "/b", 1).await.remove(0);
    assert!(a.signature_verifies() && b.signature_verifies());
    assert_ne!(
        a.header("webhook-id"),
        b.header("webhook-id"),
        "each destination has its own event id"
    );
    let payload = a.json();
    assert_eq!(payload, b.json());
    assert_eq!(payload["automation"]["event_type"], "windowed");
    assert_eq!(payload["project"]["id"], project.as_str());
    let details = &payload["details"];
    assert_eq!(details["state"], "firing");
    assert_eq!(details["is_test"], false);
    assert_eq!(details["value"], 0.625);
    assert_eq!(details["threshold"], 0.5);
    assert_eq!(details["operator"], "gt");
    assert_eq!(details["group"], Value::Null);
    let window = time(&details["window_end"]) - time(&details["window_start"]);
    assert_eq!(window.num_seconds(), 3600);
    assert!(
        details["message"].as_str().unwrap().contains("0.625 > 0.5"),
        "{details}"
    );
    let status = h.status(id).await;
    assert_eq!(status["state"], "firing", "{status}");
    assert_eq!(status["windowed"]["value"], 0.625);

    two_more_evaluations(&h, id).await;
    assert_eq!(receiver.requests_to("/a").len(), 1, "fired once, not again");

    h.insert(&project, spans(12, "q", false)).await;
    let recovered = wait_for_requests(&receiver, "/b", 2).await.remove(1);
    assert_eq!(recovered.json()["details"]["state"], "recovered");
    assert_eq!(wait_for_requests(&receiver, "/a", 2).await.len(), 2);
    let runs = h
        .wait_for_runs(id, "the recovery's run ends", |runs| {
            runs.len() >= 2 && runs.iter().all(|r| r["status"] == "succeeded")
        })
        .await;
    let firing = runs
        .iter()
        .find(|r| r["details"]["moves"][0]["state"] == "firing")
        .expect("a run records the firing");
    assert_eq!(firing["deliveries"], 2);
    assert_eq!(firing["attempts"], 2);
    assert_eq!(firing["details"]["moves"][0]["previous_state"], "ok");
    assert_eq!(
        firing["details"]["destinations"]["actions[1]"]["status_code"],
        200
    );
    two_more_evaluations(&h, id).await;
    assert_eq!(receiver.requests_to("/a").len(), 2, "recovered once");
}

both_backends!(a_short_breach_stays_pending_and_missing_data_alerts_when_told);

async fn a_short_breach_stays_pending_and_missing_data_alerts_when_told(backend: Backend) {
    let receiver = Receiver::start().await;
    let (h, _db) = herald_on(backend).await;
    let project = h.project("pending").await;
    let patient = json!({"condition": {"type": "threshold", "operator": "gte", "threshold": 0.5},
                         "pending_seconds": 3600, "no_data_behavior": "keep_last"});
    let slow = h
        .create(
            &project,
            "patient",
            windowed(
                ERROR_RATE,
                "error_rate",
                patient,
                json!([webhook(&receiver, "/slow")]),
            ),
        )
        .await;
    let slow = slow["id"].as_str().unwrap();
    // No span of this project matches: the calculation has no data.
    let nothing = format!("{ERROR_RATE} WHERE span_id = 'none'");
    let alerting = json!({"condition": {"type": "threshold", "operator": "lt", "threshold": 1},
                          "pending_seconds": 0, "no_data_behavior": "alert"});
    let empty = h
        .create(
            &project,
            "no data",
            windowed(
                &nothing,
                "error_rate",
                alerting,
                json!([webhook(&receiver, "/empty")]),
            ),
        )
        .await;
    let empty = empty["id"].as_str().unwrap();

    let reminders = json!([webhook(&receiver, "/remind")]);
    let config = windowed(
        ERROR_RATE,
        "error_rate",
        reminding_every_second(),
        reminders,
    );
    h.create(&project, "reminders", config).await;

    h.insert(&project, spans(2, "q", true)).await;
    let reminders = wait_for_requests(&receiver, "/remind", 3).await;
    let first = reminders[0].json();
    assert_eq!(first["details"]["reminder"], false);
    for later in &reminders[1..] {
        let details = &later.json()["details"];
        assert_eq!(details["state"], "firing");
        assert_eq!(details["reminder"], true, "{details}");
        assert!(
            details["message"]
                .as_str()
                .unwrap()
                .contains("still firing"),
            "{details}"
        );
    }
    let status = h
        .wait_for_status(slow, "pending", |s| s["state"] == "pending")
        .await;
    assert_eq!(status["windowed"]["groups"][0]["state"], "pending");
    two_more_evaluations(&h, slow).await;
    assert!(
        receiver.requests_to("/slow").is_empty(),
        "a breach shorter than pending_seconds never fires"
    );

    let request = wait_for_requests(&receiver, "/empty", 1).await.remove(0);
    let details = &request.json()["details"];
    assert_eq!(details["state"], "no_data");
    assert_eq!(details["value"], Value::Null);
    assert!(
        details["message"].as_str().unwrap().contains("no data"),
        "{details}"
    );
    two_more_evaluations(&h, empty).await;
    assert_eq!(receiver.requests_to("/empty").len(), 1);
}

both_backends!(groups_fire_and_recover_on_their_own);

async fn groups_fire_and_recover_on_their_own(backend: Backend) {
    let receiver = Receiver::start().await;
    let (h, _db) = herald_on(backend).await;
    let project = h.project("groups").await;
    // The group column keeps its name: on SQLite a JSON column is read as
    // JSON under the name it has in `spans`.
    let query = "SELECT input, \
                 avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate \
                 FROM spans GROUP BY input";
    let id = alert_above_half(
        &h,
        &project,
        "per model",
        query,
        json!([webhook(&receiver, "/g")]),
    )
    .await;
    let id = id.as_str();
    h.insert(&project, spans(2, "model-a", true)).await;
    h.insert(&project, spans(2, "model-b", false)).await;
    let first = wait_for_requests(&receiver, "/g", 1).await.remove(0).json();
    assert_eq!(first["details"]["group"], json!({"input": "model-a"}));
    assert_eq!(first["details"]["state"], "firing");
    assert!(
        first["details"]["message"]
            .as_str()
            .unwrap()
            .contains("for input=model-a"),
        "{first}"
    );

    h.insert(&project, spans(3, "model-b", true)).await;
    let second = wait_for_requests(&receiver, "/g", 2).await.remove(1).json();
    assert_eq!(second["details"]["group"], json!({"input": "model-b"}));
    assert_eq!(second["details"]["state"], "firing");

    h.insert(&project, spans(4, "model-a", false)).await;
    let third = wait_for_requests(&receiver, "/g", 3).await.remove(2).json();
    assert_eq!(third["details"]["group"], json!({"input": "model-a"}));
    assert_eq!(third["details"]["state"], "recovered");
    let status = h.status(id).await;
    let groups = status["windowed"]["groups"].as_array().unwrap();
    let state_of = |model: &str| {
        groups
            .iter()
            .find(|g| g["group"]["input"] == model)
            .map(|g| g["state"].clone())
    };
    assert_eq!(state_of("model-a"), Some(json!("ok")), "{status}");
    assert_eq!(state_of("model-b"), Some(json!("firing")), "{status}");
    assert_eq!(status["state"], "firing");
    two_more_evaluations(&h, id).await;
    assert_eq!(receiver.requests_to("/g").len(), 3);
}

both_backends!(a_failing_destination_does_not_hold_back_the_others_nor_a_restart_repeat);

async fn a_failing_destination_does_not_hold_back_the_others_nor_a_restart_repeat(
    backend: Backend,
) {
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.respond_with(400, &[]);
    let settings = short_lease();
    let (h, db) = herald_on_with(backend, &settings).await;
    let project = h.project("failing").await;
    let id = alert_above_half(
        &h,
        &project,
        "two destinations",
        ERROR_RATE,
        json!([webhook(&bad, "/bad"), webhook(&good, "/good")]),
    )
    .await;
    let id = id.as_str();
    h.insert(&project, spans(3, "q", true)).await;
    wait_for_requests(&good, "/good", 1).await;
    let runs = h
        .wait_for_runs(id, "the run ends failed", |runs| {
            runs.iter().any(|r| r["status"] == "failed")
        })
        .await;
    let run = runs.iter().find(|r| r["status"] == "failed").unwrap();
    let destinations = &run["details"]["destinations"];
    assert_eq!(destinations["actions[0]"]["status"], "failed", "{run}");
    assert_eq!(destinations["actions[0]"]["status_code"], 400);
    assert_eq!(destinations["actions[1]"]["status"], "succeeded", "{run}");
    assert!(run["error"].as_str().unwrap().contains("400"), "{run}");
    assert_eq!(bad.requests_to("/bad").len(), 1, "a 400 is not retried");

    // A destination that keeps failing pauses alone (SETTINGS pauses after
    // 5 in a row): the alert keeps evaluating and the good one keeps
    // receiving. Six groups fire at once (`q` from above and five new
    // ones): six failures in a row for `bad`.
    let fan = "SELECT input, avg(CASE WHEN error IS NULL THEN 0.0 ELSE 1.0 END) AS error_rate \
               FROM spans GROUP BY input";
    let grouped = alert_above_half(
        &h,
        &project,
        "five groups",
        fan,
        json!([webhook(&bad, "/fan-bad"), webhook(&good, "/fan-good")]),
    )
    .await;
    let status = fail_new_groups(&h, &project, &grouped, 0..5).await;
    assert_eq!(
        status["paused_destinations"][0]["path"],
        "config.actions[0]"
    );
    assert_ne!(
        status["state"], "paused",
        "the alert itself goes on: {status}"
    );
    assert_eq!(wait_for_requests(&good, "/fan-good", 6).await.len(), 6);
    // Reordered destinations are other destinations at those indexes: the
    // pause is forgotten, and the bad one, now second, pauses on its own.
    let reordered = windowed(
        fan,
        "error_rate",
        above_half(),
        json!([webhook(&good, "/fan-good"), webhook(&bad, "/fan-bad")]),
    );
    h.ok(
        Method::PATCH,
        &format!("/v1/project_automation/{grouped}"),
        Some(json!({"config": reordered})),
    )
    .await;
    assert_eq!(h.status(&grouped).await["paused_destinations"], json!([]));
    let status = fail_new_groups(&h, &project, &grouped, 5..11).await;
    assert_eq!(
        status["paused_destinations"][0]["path"],
        "config.actions[1]"
    );
    h.post(
        &format!("/v1/project_automation/{grouped}/resume"),
        json!({}),
    )
    .await;
    assert_eq!(h.status(&grouped).await["paused_destinations"], json!([]));

    // With one destination the streak is the alert's: reminders that keep
    // failing pause it, although every evaluation in between succeeds.
    let dead = json!([webhook(&bad, "/lonely")]);
    let config = windowed(ERROR_RATE, "error_rate", reminding_every_second(), dead);
    let lonely = h.create(&project, "one dead destination", config).await;
    let lonely = lonely["id"].as_str().unwrap();
    let status = h
        .wait_for_status(lonely, "paused by failed reminders", |s| {
            s["state"] == "paused"
        })
        .await;
    assert!(
        status["paused_reason"]
            .as_str()
            .unwrap()
            .contains("in a row"),
        "{status}"
    );
    assert_eq!(
        bad.requests_to("/lonely").len(),
        5,
        "paused at the fifth failure"
    );

    // Restart mid-firing: the lifecycle is in the database, so nothing is
    // notified again; the recovery still is, once. (A kill that lands
    // mid-evaluation leaves that lease to expire first: 5 s here.)
    let data = h.data.clone();
    drop(h);
    let h = Herald::start_with(&settings, Some(&db.url), data).await;
    two_more_evaluations(&h, id).await;
    assert_eq!(good.requests_to("/good").len(), 1, "no second firing");
    assert_eq!(h.status(id).await["state"], "firing");
    // 14 errors so far: 30 good spans bring the rate under half.
    h.insert(&project, spans(30, "q", false)).await;
    let recovered = wait_for_requests(&good, "/good", 2).await.remove(1);
    assert_eq!(recovered.json()["details"]["state"], "recovered");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_on_one_postgres_notify_each_transition_once() {
    if crate::storage::postgres_url().is_none() {
        crate::storage::report_skip(
            "automations::windowed::two_daemons_on_one_postgres_notify_each_transition_once",
            "HERALD_TEST_SKIP_POSTGRES=1",
        );
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let receiver = Receiver::start().await;
    let key: &'static str = Box::leak(herald::sealing::generate_key_text().into_boxed_str());
    let env = [("HERALD_SECRET_KEY", key)];
    let start = || {
        Herald::start_with_env(
            SETTINGS,
            Some(&db.url),
            Arc::new(tempfile::tempdir().unwrap()),
            &env,
        )
    };
    let one = start().await;
    let two = start().await;
    let project = one.project("shared").await;
    let id = alert_above_half(
        &one,
        &project,
        "error rate",
        ERROR_RATE,
        json!([webhook(&receiver, "/w")]),
    )
    .await;
    let id = id.as_str();
    one.insert(&project, spans(4, "q", true)).await;
    wait_for_requests(&receiver, "/w", 1).await;
    two_more_evaluations(&one, id).await;
    two_more_evaluations(&two, id).await;
    assert_eq!(
        receiver.requests_to("/w").len(),
        1,
        "fired once between both"
    );
    two.insert(&project, spans(8, "q", false)).await;
    let recovered = wait_for_requests(&receiver, "/w", 2).await.remove(1);
    assert_eq!(recovered.json()["details"]["state"], "recovered");
    two_more_evaluations(&one, id).await;
    two_more_evaluations(&two, id).await;
    assert_eq!(
        receiver.requests_to("/w").len(),
        2,
        "recovered once between both"
    );
    let runs = one.runs(id).await;
    assert_eq!(runs.len(), 2, "one run per transition: {runs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_sends_the_value_and_backtests_the_last_windows() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let project = h.project("backtest").await;
    // Errors four and a half minutes ago; nothing else.
    let then = (chrono::Utc::now() - chrono::TimeDelta::seconds(270)).to_rfc3339();
    let failing: Vec<Value> = (0..4)
        .map(|_| json!({"input": "q", "error": "boom", "created": then}))
        .collect();
    h.insert(&project, json!(failing)).await;
    let mut config = windowed(
        ERROR_RATE,
        "error_rate",
        json!({"condition": {"type": "threshold", "operator": "gt", "threshold": 0.5},
               "pending_seconds": 0, "no_data_behavior": "resolve",
               "notify_on_recovery": true}),
        json!([webhook(&receiver, "/t")]),
    );
    config["window"] = json!({"window_seconds": 60, "evaluation_delay_seconds": 0,
        "schedule": {"type": "interval", "evaluation_interval_seconds": 60}});
    let alert = h.create(&project, "minutely", config).await;
    let id = alert["id"].as_str().unwrap();
    let outcome = h
        .post(
            &format!("/v1/project_automation/{id}/test"),
            json!({"backtest_windows": 10}),
        )
        .await;
    assert_eq!(outcome["sent"], true, "{outcome}");
    assert_eq!(outcome["destinations"][0]["status_code"], 200);
    let sent = wait_for_requests(&receiver, "/t", 1).await.remove(0).json();
    assert_eq!(sent["details"]["is_test"], true);
    assert_eq!(
        sent["details"]["state"], "no_data",
        "the last minute is empty"
    );

    let backtest = &outcome["backtest"];
    assert_eq!(backtest["evaluations"], 10, "{backtest}");
    let notifications = backtest["notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 2, "{backtest}");
    assert_eq!(notifications[0]["state"], "firing");
    assert_eq!(notifications[0]["value"], 1.0);
    assert_eq!(notifications[1]["state"], "recovered");
    let fired = time(&notifications[0]["at"]);
    let recovered = time(&notifications[1]["at"]);
    assert_eq!((recovered - fired).num_seconds(), 60);
    let ago = (chrono::Utc::now() - fired).num_seconds();
    assert!(
        (235..=250).contains(&ago),
        "fired {ago} s ago in the replay"
    );
    let points = backtest["series"].as_array().unwrap();
    assert_eq!(points.len(), 10);
    assert_eq!(
        points.iter().filter(|p| p["value"] == 1.0).count(),
        1,
        "{backtest}"
    );
    let (status, body) = h
        .call(
            Method::POST,
            &format!("/v1/project_automation/{id}/test"),
            Some(json!({"backtest_windows": 5000})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["path"], "backtest_windows");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_windowed_configs_are_refused_at_their_field() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let project = h.project("bad").await;
    h.insert(&project, spans(2, "q", true)).await;
    let good = windowed(
        ERROR_RATE,
        "error_rate",
        above_half(),
        json!([webhook(&receiver, "/x")]),
    );
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "config.threshold.calculation.output.value_column",
            Box::new(|c| c["threshold"]["calculation"]["output"]["value_column"] = json!("rate")),
            "no column `rate`",
        ),
        (
            "config.threshold.calculation.output.value_column",
            Box::new(|c| {
                c["threshold"]["calculation"]["btql_query"] =
                    json!("SELECT 'lots' AS error_rate FROM spans LIMIT 1")
            }),
            "must hold a number",
        ),
        (
            "config.threshold.calculation.btql_query",
            Box::new(|c| {
                c["threshold"]["calculation"]["btql_query"] =
                    json!("SELECT nosuch AS model, count(*) AS error_rate FROM spans GROUP BY 1")
            }),
            "nosuch",
        ),
        (
            "config.threshold.calculation.btql_query",
            Box::new(|c| {
                c["threshold"]["calculation"]["btql_query"] =
                    json!("SELECT count(*) AS error_rate FROM automations")
            }),
            "automations",
        ),
        (
            "config.window.schedule.cron_expression",
            Box::new(|c| {
                c["window"]["schedule"] = json!({"type": "cron", "cron_expression": "0 0 30 2 *"})
            }),
            "never fires",
        ),
        (
            "config.window.schedule.timezone",
            Box::new(|c| {
                c["window"]["schedule"] =
                    json!({"type": "cron", "cron_expression": "0 9 * * *", "timezone": "Nowhere"})
            }),
            "IANA",
        ),
        (
            "config.window.schedule.evaluation_interval_seconds",
            Box::new(|c| c["window"]["schedule"]["evaluation_interval_seconds"] = json!(0)),
            "between 1",
        ),
        (
            "config.window.window_seconds",
            Box::new(|c| c["window"]["window_seconds"] = json!(0)),
            "between 1",
        ),
        (
            "config.threshold.policy.condition.operator",
            Box::new(|c| c["threshold"]["policy"]["condition"]["operator"] = json!("above")),
            "unknown variant",
        ),
        (
            "config.loop",
            Box::new(|c| c["loop"] = json!({"prompt": "summarize", "agent_slug": "loop"})),
            "Loop",
        ),
        (
            "config.threshold",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("threshold");
            }),
            "is required",
        ),
        (
            "config.actions",
            Box::new(|c| c["actions"] = json!([])),
            "at least one",
        ),
        (
            "config.actions[0].formatting_prompt",
            Box::new(|c| c["actions"][0]["formatting_prompt"] = json!("be brief")),
            "Loop",
        ),
        (
            "config.actions[1].type",
            Box::new(|c| {
                let first = c["actions"][0].clone();
                c["actions"] = json!([first, {"type": "carrier-pigeon"}]);
            }),
            "no alert destination plugin",
        ),
    ];
    for (path, change, says) in cases {
        let mut config = good.clone();
        change(&mut config);
        let (status, body) = h
            .call(
                Method::POST,
                "/v1/project_automation",
                Some(json!({"project_id": project, "name": "bad", "config": config})),
            )
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["path"], path, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{path} should say {says:?}: {body}"
        );
    }
    // Braintrust's shape with a cron schedule in a time zone is accepted
    // and read back as written.
    let mut cron = good.clone();
    cron["window"]["schedule"] =
        json!({"type": "cron", "cron_expression": "*/5 * * * *", "timezone": "Europe/Paris"});
    cron["product_origin"] = json!("dashboard");
    let created = h.create(&project, "cron", cron.clone()).await;
    assert_eq!(created["config"]["window"], cron["window"]);
    assert_eq!(created["config"]["product_origin"], "dashboard");
    let status = h.status(created["id"].as_str().unwrap()).await;
    let next = time(&status["next_run"]);
    assert!(
        next.timestamp() % 300 == 0 && next > chrono::Utc::now(),
        "next run on a five-minute mark: {status}"
    );
}
