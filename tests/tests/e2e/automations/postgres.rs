//! Two daemons on one PostgreSQL: matching spans ingested through both are
//! each counted into exactly one notification, no notification is sent
//! twice, the runs' ingest windows do not overlap, and the alert stays
//! suppressed for its interval across daemons.

use super::{Herald, SETTINGS, log_alert, time, webhook};
use crate::harness::Receiver;
use crate::storage::{Backend, TestDb, postgres_url};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Inserts batches through `h` for `duration`, some spans matching; returns
/// how many matched.
async fn ingest_for(h: &Herald, project: &str, duration: Duration, seed: usize) -> u64 {
    let started = Instant::now();
    let mut matched = 0;
    let mut round = seed;
    while started.elapsed() < duration {
        let hits = round % 3 + 1;
        let mut events: Vec<Value> = (0..hits)
            .map(|_| json!({"input": "x", "metadata": {"kind": "match", "round": round}}))
            .collect();
        events.push(json!({"input": "y", "metadata": {"kind": "other"}}));
        h.insert(project, json!(events)).await;
        matched += hits as u64;
        round += 2;
        // Pacing the load, not waiting for anything.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    matched
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_on_one_postgres_count_every_span_once() {
    if postgres_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let receiver = Receiver::start().await;
    // Daemons sharing a database share the key its secrets are sealed
    // under (each would otherwise generate its own in its data dir, and the
    // second would refuse to start).
    let key: &'static str = Box::leak(herald::sealing::generate_key_text().into_boxed_str());
    let env = [("HERALD_SECRET_KEY", key)];
    let one = Herald::start_with_env(
        SETTINGS,
        Some(&db.url),
        Arc::new(tempfile::tempdir().unwrap()),
        &env,
    )
    .await;
    let two = Herald::start_with_env(
        SETTINGS,
        Some(&db.url),
        Arc::new(tempfile::tempdir().unwrap()),
        &env,
    )
    .await;
    let project = one.project("shared").await;
    let alert = one
        .create(
            &project,
            "matches",
            log_alert("metadata.kind = 'match'", 1, webhook(&receiver, "/pg")),
        )
        .await;
    let id = alert["id"].as_str().unwrap();

    let window = Duration::from_secs(4);
    let (a, b) = tokio::join!(
        ingest_for(&one, &project, window, 0),
        ingest_for(&two, &project, window, 1)
    );
    let matched = a + b;

    // One last matching span marks the end: once the alert's watermark
    // passes it with nothing pending or queued, every span was notified.
    let last = json!([{"input": "last", "metadata": {"kind": "match", "last": true}}]);
    one.insert(&project, last).await;
    let matched = matched + 1;
    let fetched = one
        .post(
            &format!("/v1/project_logs/{project}/fetch"),
            json!({"filter": "metadata.last = true"}),
        )
        .await;
    let xact = &fetched["events"][0]["_xact_id"];
    let last_xact = xact
        .as_str()
        .and_then(|x| x.parse::<i64>().ok())
        .or(xact.as_i64())
        .unwrap_or_else(|| panic!("no _xact_id: {fetched}"));
    one.wait_for_status(id, "the watermark to pass the last span", |s| {
        s["watermark"].as_i64().is_some_and(|w| w >= last_xact)
            && s["pending_matches"] == 0
            && s["queued_deliveries"] == 0
    })
    .await;
    let runs = one
        .wait_for_runs(id, "every run to finish", |r| {
            r.iter().all(|r| r["status"] == "succeeded")
        })
        .await;
    let counted = || {
        receiver
            .requests_to("/pg")
            .iter()
            .map(|r| r.json()["details"]["count"].as_u64().unwrap())
            .sum::<u64>()
    };

    let requests = receiver.requests_to("/pg");
    let notified: Vec<String> = requests
        .iter()
        .map(|r| {
            let d = r.json()["details"].clone();
            format!(
                "{} count {} {}..{}",
                r.header("webhook-id").unwrap_or("?"),
                d["count"],
                d["time_start"],
                d["time_end"]
            )
        })
        .collect();
    let history: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} {} rows {} ({}, {}]",
                r["details"]["event_id"],
                r["trigger"],
                r["matched_rows"],
                r["details"]["xact_after"],
                r["details"]["xact_upto"]
            )
        })
        .collect();
    let story = format!(
        "notifications:\n{}\nruns:\n{}",
        notified.join("\n"),
        history.join("\n")
    );
    assert_eq!(
        counted(),
        matched,
        "each matching span counted once; {story}"
    );
    let event_ids: HashSet<&str> = requests
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(
        event_ids.len(),
        requests.len(),
        "no notification sent twice; {story}"
    );
    assert_eq!(
        runs.len(),
        requests.len(),
        "one run per notification; {story}"
    );
    let run_events: HashSet<&str> = runs
        .iter()
        .map(|r| r["details"]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(run_events, event_ids);
    let matched_rows: u64 = runs
        .iter()
        .map(|r| r["matched_rows"].as_u64().unwrap())
        .sum();
    assert_eq!(matched_rows, matched, "{story}");

    let mut windows: Vec<(i64, i64)> = runs
        .iter()
        .map(|r| {
            (
                r["details"]["xact_after"].as_i64().unwrap(),
                r["details"]["xact_upto"].as_i64().unwrap(),
            )
        })
        .collect();
    windows.sort();
    for pair in windows.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping windows; {story}");
    }

    // Suppressed for the interval across both daemons.
    let mut ends: Vec<_> = requests
        .iter()
        .map(|r| time(&r.json()["details"]["time_end"]))
        .collect();
    ends.sort();
    for pair in ends.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::TimeDelta::milliseconds(990),
            "notified within the interval: {ends:?}"
        );
    }
    println!(
        "{matched} matching spans in {} notifications",
        requests.len()
    );
}
