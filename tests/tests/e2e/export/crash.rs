//! Crash safety: the daemon dies between writing an object and committing
//! the cursor — a fault-injection point, not a timed kill — and the
//! restarted daemon finishes the export with every row in the bucket
//! exactly once.

use herald_testkit::s3_server::LoopbackS3;
use serde_json::json;

use super::{BUCKET, export_config, rows_by_id, spans};
use crate::automations::{DEADLINE, Herald};
use crate::harness::wait_until;

/// Short leases, so the restarted daemon takes over the crashed one's
/// automation within the test's deadline.
const SETTINGS: &str = r#"
[automations]
retry_schedule_ms = [0, 200, 400, 800]
lease_seconds = 5
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_write_and_commit_leaves_every_row_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut h = Herald::start_with_env(
        SETTINGS,
        None,
        data.clone(),
        &[("HERALD_FAULT_INJECTION", "export-after-write")],
    )
    .await;
    let project = h.project("crash").await;
    h.insert(&project, spans("c", 8)).await; // 24 spans
    let config = export_config(&s3.destination(), json!({"type": "log_spans"}), "jsonl", 10);
    let id = h.create(&project, "crash", config).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    wait_until(
        DEADLINE,
        "the daemon to abort after its first write",
        || {
            let exited = h.daemon.has_exited();
            async move { exited }
        },
    )
    .await;
    let written = s3.objects(BUCKET, "herald/").await.unwrap();
    assert_eq!(written.len(), 1, "the object was written before the crash");
    let first_key = written[0].0.clone();
    drop(h);

    let h = Herald::start_with(SETTINGS, None, data).await;
    h.wait_for_status(&id, "the export to reach the last span", |status| {
        status["watermark"] == 24 && status["last_run"]["status"] == "succeeded"
    })
    .await;
    let objects = s3.objects(BUCKET, "herald/").await.unwrap();
    assert_eq!(
        objects.len(),
        3,
        "the retried batch overwrote its object: {:?}",
        objects.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    assert!(
        objects.iter().any(|(k, _)| *k == first_key),
        "same key on retry"
    );
    let rows = rows_by_id(&objects);
    assert_eq!(rows.len(), 24, "every row exactly once");
    let runs = h.runs(&id).await;
    assert!(
        runs.iter()
            .any(|r| r["details"]["retry_of_reserved_batch"] == true),
        "the history shows the reserved batch was redone: {runs:?}"
    );
    let interrupted: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|r| r["details"]["interrupted"] == true)
        .collect();
    assert_eq!(
        interrupted.len(),
        1,
        "the cut-short run is in the history: {runs:?}"
    );
    assert_eq!(interrupted[0]["status"], "failed");
    assert!(
        interrupted[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("interrupted: the daemon stopped"),
        "{runs:?}"
    );
}

/// Work that kills the daemon every time does not re-run after every
/// restart for ever: each cut-short run counts as a failure, and after
/// `pause_after_failures` of them the automation is paused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_crashes_the_daemon_every_time_ends_paused() {
    let settings = format!("{SETTINGS}pause_after_failures = 2\n");
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let fault = [("HERALD_FAULT_INJECTION", "export-after-write")];
    let mut h = Herald::start_with_env(&settings, None, data.clone(), &fault).await;
    let project = h.project("crash-loop").await;
    h.insert(&project, spans("c", 2)).await;
    let config = export_config(&s3.destination(), json!({"type": "log_spans"}), "jsonl", 10);
    let id = h.create(&project, "crash-loop", config).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for crash in 1..=2 {
        wait_until(DEADLINE, "the daemon to abort after its write", || {
            let exited = h.daemon.has_exited();
            async move { exited }
        })
        .await;
        drop(h);
        h = Herald::start_with_env(&settings, None, data.clone(), &fault).await;
        if crash == 2 {
            break;
        }
    }
    let status = h
        .wait_for_status(&id, "the automation to be paused", |status| {
            status["state"] == "paused"
        })
        .await;
    assert!(
        status["paused_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{status}"
    );
    assert!(!h.daemon.has_exited(), "paused: the work no longer runs");
    let runs = h.runs(&id).await;
    let interrupted = runs
        .iter()
        .filter(|r| r["details"]["interrupted"] == true)
        .count();
    assert_eq!(interrupted, 2, "{runs:?}");
}
