//! The export test endpoint writes, reads back and deletes a test object,
//! and reports S3's own error when a step fails; the secret access key is
//! redacted and kept; the export path cannot change.

use herald_testkit::s3_server::LoopbackS3;
use reqwest::Method;
use serde_json::{Value, json};

use super::{BUCKET, export_config};
use crate::automations::{Herald, SETTINGS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_endpoint_secrets_and_the_immutable_path() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let h = Herald::start(SETTINGS).await;
    let project = h.project("destinations").await;
    let good = export_config(
        &s3.destination(),
        json!({"type": "log_spans"}),
        "jsonl",
        100,
    );

    // A good bucket: three steps, all fine, nothing left behind.
    let check = h
        .post(
            "/v1/project_automation/test",
            json!({"project_id": project, "config": good}),
        )
        .await;
    assert_eq!(check["ok"], true, "{check}");
    let steps: Vec<&str> = check["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["write", "read", "delete"], "{check}");
    assert!(
        s3.objects(BUCKET, "").await.unwrap().is_empty(),
        "the test object is deleted"
    );

    // A missing bucket, and a wrong secret: the store's own error.
    let mut missing = good.clone();
    missing["export_path"] = "s3://no-such-bucket/x".into();
    let check = h
        .post(
            "/v1/project_automation/test",
            json!({"project_id": project, "config": missing}),
        )
        .await;
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["steps"][0]["ok"], false, "{check}");
    let message = check["steps"][0]["message"].as_str().unwrap();
    assert!(message.contains("NoSuchBucket"), "{message}");
    let mut wrong = good.clone();
    wrong["credentials"]["secret_access_key"] = "not-the-secret".into();
    let check = h
        .post(
            "/v1/project_automation/test",
            json!({"project_id": project, "config": wrong}),
        )
        .await;
    let message = check["steps"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("access denied") && message.contains("SignatureDoesNotMatch"),
        "{message}"
    );

    // Saved: the secret reads back redacted, survives a round trip, works.
    let saved = h.create(&project, "saved", good.clone()).await;
    let id = saved["id"].as_str().unwrap();
    assert_eq!(
        saved["config"]["credentials"]["secret_access_key"],
        "[redacted]"
    );
    let mut round_trip = saved["config"].clone();
    round_trip["batch_size"] = 50.into();
    let patched = h
        .ok(
            Method::PATCH,
            &format!("/v1/project_automation/{id}"),
            Some(json!({"config": round_trip})),
        )
        .await;
    assert_eq!(patched["config"]["batch_size"], 50);
    let check = h
        .post(&format!("/v1/project_automation/{id}/test"), json!({}))
        .await;
    assert_eq!(check["ok"], true, "the kept secret still works: {check}");
    let logs = h.daemon.logs();
    assert!(
        !logs.contains(herald_testkit::s3_server::SECRET_ACCESS_KEY),
        "no secret in logs"
    );

    // The path is fixed at creation.
    let mut moved = patched["config"].clone();
    moved["export_path"] = format!("s3://{BUCKET}/elsewhere").into();
    let (status, body): (u16, Value) = h
        .call(
            Method::PATCH,
            &format!("/v1/project_automation/{id}"),
            Some(json!({"config": moved})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["path"], "config.export_path", "{body}");

    // The kept secret does not follow a new endpoint: it must be sent again.
    let mut elsewhere = patched["config"].clone();
    elsewhere["endpoint_url"] = "https://s3.attacker.example".into();
    let (status, body): (u16, Value) = h
        .call(
            Method::PATCH,
            &format!("/v1/project_automation/{id}"),
            Some(json!({"config": elsewhere.clone()})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["path"], "config.credentials.secret_access_key",
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`endpoint_url` changed"),
        "{body}"
    );
    elsewhere["credentials"]["secret_access_key"] = "a-new-secret".into();
    h.ok(
        Method::PATCH,
        &format!("/v1/project_automation/{id}"),
        Some(json!({"config": elsewhere})),
    )
    .await;
}
