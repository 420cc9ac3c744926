//! A custom query that would eat the machine, run by the real daemon: each
//! batch stops at the row cap with the cap named, the daemon's memory stays
//! bounded, the automation is paused after the retry schedule with the
//! reason, and it stays paused after a restart instead of running again.

use herald_testkit::s3_server::LoopbackS3;
use serde_json::json;

use super::{BUCKET, export_config, spans};
use crate::automations::Herald;

/// Fast retries, and a pause after three failures in a row.
const SETTINGS: &str = r#"
[automations]
retry_schedule_ms = [0, 200, 400, 800]
pause_after_failures = 3
lease_seconds = 5
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_caps_fails_in_bounded_memory_and_ends_paused() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with(SETTINGS, None, data.clone()).await;
    let project = h.project("hostile").await;
    h.insert(&project, spans("h", 40)).await; // 120 spans
    // 120^3 = 1.7 million rows: past the cap of a million per batch.
    let query = "SELECT a.id || b.id || c.id AS x FROM spans a, spans b, spans c";
    let config = export_config(
        &s3.destination(),
        json!({"type": "btql_query", "btql_query": query}),
        "jsonl",
        1000,
    );
    let id = h.create(&project, "hostile", config).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = h
        .wait_for_status(&id, "the automation to be paused", |status| {
            status["state"] == "paused"
        })
        .await;
    let reason = status["paused_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("export failed 3 times in a row")
            && reason.contains("more than 1000000 rows"),
        "{status}"
    );
    let runs = h.runs(&id).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "failed"), "{runs:?}");
    let peak = h.daemon.peak_rss_bytes().expect("the daemon's memory");
    println!("peak RSS of the daemon: {} MB", peak / (1 << 20));
    assert!(
        peak < 1 << 30,
        "memory stayed bounded: {} MB",
        peak / (1 << 20)
    );
    assert!(
        s3.objects(BUCKET, "").await.unwrap().is_empty(),
        "nothing written"
    );

    // Restarted: still paused, with the same three runs.
    drop(h);
    let h = Herald::start_with(SETTINGS, None, data).await;
    let status = h.status(&id).await;
    assert_eq!(status["state"], "paused", "{status}");
    assert_eq!(h.runs(&id).await.len(), 3);
}
