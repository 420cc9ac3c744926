//! Crash safety: the daemon dies between writing an object and committing
//! the cursor — a fault-injection point, not a timed kill — and the
//! restarted daemon finishes the export with every row in the bucket
//! exactly once.

use herald::bench::s3_server::LoopbackS3;
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
}
