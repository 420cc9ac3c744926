//! Retention automations against both backends, through the API and the
//! bundled `retention` plugin: for each object type a record just outside
//! the window goes and one just inside stays, traces go whole with their
//! old root, the preview (`…/test`) says exactly what the run then deletes,
//! another project is never touched, and `retention_days: 0` empties the
//! project.

use chrono::{TimeDelta, Utc};
use herald::store::{DbId, DbTime};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TestServer, both_backends};

both_backends!(
    logs_go_at_the_window_edge_with_whole_traces,
    experiments_go_whole_and_datasets_keep_their_newer_rows,
    zero_days_empties_the_project_logs
);

/// `days` days ago, shifted by `hours` (positive: more recent).
fn ago(days: i64, hours: i64) -> String {
    (Utc::now() - TimeDelta::days(days) + TimeDelta::hours(hours)).to_rfc3339()
}

async fn retention(s: &TestServer, project: &str, object_type: &str, days: u64) -> String {
    let body = json!({"project_id": project, "name": format!("keep {days} days of {object_type}"),
        "config": {"event_type": "retention", "object_type": object_type, "retention_days": days}});
    let created = s
        .ok(Method::POST, "/v1/project_automation", Some(body))
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// Previews, then runs; checks the preview matched the run; returns both.
async fn preview_then_run(s: &TestServer, automation: &str) -> (Value, Value) {
    let preview = s
        .ok(
            Method::POST,
            &format!("/v1/project_automation/{automation}/test"),
            None,
        )
        .await;
    assert_eq!(preview["dry_run"], true, "{preview}");
    assert_eq!(
        preview["deleted"], 0,
        "a preview deletes nothing: {preview}"
    );
    let run = s
        .ok(
            Method::POST,
            &format!("/v1/project_automation/{automation}/run"),
            None,
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "manual", "{run}");
    assert_eq!(
        run["details"]["affected"], preview["affected"],
        "the run found what the preview announced: {preview} vs {run}"
    );
    (preview, run)
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

async fn logs_go_at_the_window_edge_with_whole_traces(backend: Backend) {
    let s = TestServer::start_with_bundled_plugins(backend).await;
    let p = s.project("retained").await;
    let other = s.project("bystander").await;
    s.insert_logs(
        &p,
        json!([
            {"id": "outside", "created": ago(30, -1)},
            {"id": "inside", "created": ago(30, 1)},
            // An old root: its newer child goes with it.
            {"id": "old-root", "span_id": "r1", "root_span_id": "r1", "created": ago(40, 0)},
            {"id": "new-child", "span_id": "c1", "root_span_id": "r1", "span_parents": ["r1"],
             "created": ago(0, -1)},
            // A new root keeps its trace; only its old child goes.
            {"id": "new-root", "span_id": "r2", "root_span_id": "r2", "created": ago(1, 0)},
            {"id": "old-child", "span_id": "c2", "root_span_id": "r2", "span_parents": ["r2"],
             "created": ago(45, 0)},
        ]),
    )
    .await;
    s.insert_logs(&other, json!([{"id": "theirs", "created": ago(400, 0)}]))
        .await;

    let automation = retention(&s, &p, "project_logs", 30).await;
    let (preview, run) = preview_then_run(&s, &automation).await;
    assert_eq!(preview["affected"], 4, "{preview}");
    assert_eq!(preview["object_type"], "project_logs");
    let mut samples: Vec<&str> = preview["sample_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    samples.sort();
    assert_eq!(samples, ["new-child", "old-child", "old-root", "outside"]);
    assert!(preview["oldest"].as_str().unwrap() < preview["newest"].as_str().unwrap());
    assert_eq!(run["details"]["deleted"], 4, "{run}");
    assert_eq!(run["matched_rows"], 4, "{run}");

    assert_eq!(ids(&s.all_logs(&p).await), ["inside", "new-root"]);
    assert_eq!(
        ids(&s.all_logs(&other).await),
        ["theirs"],
        "other projects are untouched"
    );

    // Nothing is left to delete: a second run finds nothing.
    let (preview, run) = preview_then_run(&s, &automation).await;
    assert_eq!(preview["affected"], 0);
    assert_eq!(run["details"]["deleted"], 0);
    let runs = s
        .ok(
            Method::GET,
            &format!("/v1/project_automation/{automation}/runs"),
            None,
        )
        .await;
    let triggers: Vec<&str> = runs["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(
        triggers,
        ["manual", "manual"],
        "previews are not runs: {runs}"
    );
}

/// Moves an experiment's creation time (the API always stamps "now").
async fn backdate_experiment(s: &TestServer, id: &str, created: DbTime) {
    let id = DbId(id.parse().unwrap());
    let sql = "UPDATE experiments SET created = $1 WHERE id = $2";
    match s.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(s.database_url()).await.unwrap();
            sqlx::query(sql)
                .bind(created)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(s.database_url()).await.unwrap();
            sqlx::query(sql)
                .bind(created)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

async fn experiment(s: &TestServer, project: &str, name: &str, events: usize) -> String {
    let created = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": project, "name": name})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let events: Vec<Value> = (0..events).map(|i| json!({"input": i})).collect();
    s.ok(
        Method::POST,
        &format!("/v1/experiment/{id}/insert"),
        Some(json!({"events": events})),
    )
    .await;
    id
}

async fn experiments_go_whole_and_datasets_keep_their_newer_rows(backend: Backend) {
    let s = TestServer::start_with_bundled_plugins(backend).await;
    let p = s.project("experiments").await;
    let other = s.project("bystander").await;
    let old = experiment(&s, &p, "old", 30).await;
    let recent = experiment(&s, &p, "recent", 3).await;
    let theirs = experiment(&s, &other, "theirs", 2).await;
    let edge = |hours| DbTime(Utc::now() - TimeDelta::days(7) + TimeDelta::hours(hours));
    backdate_experiment(&s, &old, edge(-1)).await;
    backdate_experiment(&s, &recent, edge(1)).await;
    backdate_experiment(&s, &theirs, edge(-100)).await;

    let automation = retention(&s, &p, "experiment", 7).await;
    let (preview, run) = preview_then_run(&s, &automation).await;
    assert_eq!(preview["affected"], 1, "one experiment: {preview}");
    assert_eq!(preview["sample_ids"], json!([old]));
    assert_eq!(
        run["details"]["deleted"], 31,
        "its 30 events and the experiment row: {run}"
    );
    let (status, _) = s.get(&format!("/v1/experiment/{old}")).await;
    assert_eq!(status, 404, "the old experiment is gone");
    for (id, rows) in [(&recent, 3), (&theirs, 2)] {
        let fetched = s
            .ok(Method::GET, &format!("/v1/experiment/{id}/fetch"), None)
            .await;
        assert_eq!(fetched["events"].as_array().unwrap().len(), rows, "{id}");
    }

    // Datasets: old rows go, the dataset and its newer rows stay.
    let dataset = s
        .ok(
            Method::POST,
            "/v1/dataset",
            Some(json!({"project_id": p, "name": "golden"})),
        )
        .await;
    let dataset = dataset["id"].as_str().unwrap().to_string();
    s.ok(
        Method::POST,
        &format!("/v1/dataset/{dataset}/insert"),
        Some(json!({"events": [
            {"id": "d-outside", "input": 1, "created": ago(90, -1)},
            {"id": "d-inside", "input": 2, "created": ago(90, 1)},
        ]})),
    )
    .await;
    let automation = retention(&s, &p, "dataset", 90).await;
    let (preview, run) = preview_then_run(&s, &automation).await;
    assert_eq!(preview["sample_ids"], json!(["d-outside"]));
    assert_eq!(run["details"]["deleted"], 1);
    let fetched = s
        .ok(Method::GET, &format!("/v1/dataset/{dataset}/fetch"), None)
        .await;
    assert_eq!(ids(fetched["events"].as_array().unwrap()), ["d-inside"]);
    // The dataset still takes rows.
    s.ok(
        Method::POST,
        &format!("/v1/dataset/{dataset}/insert"),
        Some(json!({"events": [{"id": "d-new", "input": 3}]})),
    )
    .await;
}

async fn zero_days_empties_the_project_logs(backend: Backend) {
    let s = TestServer::start_with_bundled_plugins(backend).await;
    let p = s.project("ephemeral").await;
    let rows: Vec<Value> = (0..250)
        .map(|i| json!({"id": format!("s{i}"), "created": ago(0, -1)}))
        .collect();
    s.insert_logs(&p, Value::Array(rows)).await;
    let automation = retention(&s, &p, "project_logs", 0).await;
    let (preview, run) = preview_then_run(&s, &automation).await;
    assert_eq!(preview["affected"], 250);
    assert_eq!(run["details"]["deleted"], 250);
    assert!(s.all_logs(&p).await.is_empty());
    let status = s
        .ok(
            Method::GET,
            &format!("/v1/project_automation/{automation}/status"),
            None,
        )
        .await;
    assert_eq!(status["state"], "active", "{status}");
    assert!(status["next_run"].is_string(), "scheduled daily: {status}");
}
