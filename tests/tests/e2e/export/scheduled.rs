//! The daemon exports on its own: a new export starts at once, drains a
//! backlog in batches of `batch_size`, one object per batch, and then waits
//! for its interval.

use herald_testkit::s3_server::LoopbackS3;
use serde_json::json;

use super::{BUCKET, export_config, rows_by_id, spans};
use crate::automations::{DEADLINE, Herald, SETTINGS};
use crate::harness::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_batch_after_batch_with_one_object_each() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let h = Herald::start(SETTINGS).await;
    let project = h.project("backlog").await;
    h.insert(&project, spans("b", 9)).await; // 27 spans
    let config = export_config(
        &s3.destination(),
        json!({"type": "log_spans"}),
        "parquet",
        10,
    );
    let export = h.create(&project, "backlog", config).await;
    let id = export["id"].as_str().unwrap().to_string();

    let runs = h
        .wait_for_runs(&id, "three batches exported", |runs| {
            runs.iter().filter(|r| r["status"] == "succeeded").count() >= 3
        })
        .await;
    let mut rows: Vec<i64> = runs
        .iter()
        .map(|r| r["matched_rows"].as_i64().unwrap())
        .collect();
    rows.sort();
    assert_eq!(rows, [7, 10, 10], "batches of at most 10: {runs:?}");
    for run in &runs {
        assert_eq!(run["trigger"], "scheduled", "{run}");
        assert!(run["details"]["bytes"].as_u64().unwrap() > 0, "{run}");
    }
    let objects = s3.objects(BUCKET, "herald/parquet/spans/").await.unwrap();
    assert_eq!(objects.len(), 3, "one object per batch");
    let exported = rows_by_id(&objects);
    assert_eq!(exported.len(), 27, "every span once");

    // Drained: the next run waits for the interval (an hour), so new rows
    // stay put until then.
    let status = h.status(&id).await;
    let next = chrono::DateTime::parse_from_rfc3339(status["next_run"].as_str().unwrap()).unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::TimeDelta::minutes(50),
        "one interval after the last start: {status}"
    );
    h.insert(&project, spans("late", 1)).await;
    let run = h
        .post(&format!("/v1/project_automation/{id}/run"), json!({}))
        .await;
    assert_eq!(
        run["matched_rows"], 3,
        "run once exports the new rows now: {run}"
    );
    wait_until(DEADLINE, "a fourth object", || async {
        s3.objects(BUCKET, "herald/parquet/").await.unwrap().len() == 4
    })
    .await;
    // A backlog larger than a batch: run once drains all of it, batch after
    // batch, and the next run is an interval away, as the status says.
    h.insert(&project, spans("more", 8)).await; // 24 spans: 10, 10, 4
    let run = h
        .post(&format!("/v1/project_automation/{id}/run"), json!({}))
        .await;
    assert_eq!(run["trigger"], "manual", "{run}");
    assert_eq!(
        s3.objects(BUCKET, "herald/parquet/").await.unwrap().len(),
        7,
        "three more objects, written before run once answered"
    );
    let manual = h.runs(&id).await;
    let drained: i64 = manual
        .iter()
        .filter(|r| r["trigger"] == "manual" && r["status"] == "succeeded")
        .map(|r| r["matched_rows"].as_i64().unwrap())
        .sum();
    assert_eq!(
        drained,
        3 + 24,
        "every new row by the manual runs: {manual:?}"
    );
    let status = h.status(&id).await;
    let next = chrono::DateTime::parse_from_rfc3339(status["next_run"].as_str().unwrap()).unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::TimeDelta::minutes(50),
        "nothing is left, so the next run is an interval away: {status}"
    );
}
