//! S3 exports against both backends, through the API, the bundled
//! `s3-export` plugin and a real S3 server on loopback: each shape (spans,
//! traces, custom query) in both formats reads back equal to the source,
//! a second run exports only the new rows, a reset exports everything
//! again (and says so in the history), custom queries cannot leave their
//! project or write, and one that would run forever is stopped.

use herald_testkit::s3_server::LoopbackS3;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TestServer, both_backends};
use crate::export::{BUCKET, canonical, export_config, rows_by_id, rows_of, spans};

both_backends!(
    every_shape_in_both_formats_reads_back_equal_to_the_source,
    incremental_runs_and_reset,
    custom_queries_stay_in_their_project_and_never_write,
    a_runaway_query_is_stopped_and_the_store_stays_writable,
    the_endpoint_goes_through_the_address_guard
);

struct Fixture {
    s: TestServer,
    s3: LoopbackS3,
    _root: tempfile::TempDir,
}

async fn fixture(backend: Backend) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let s = TestServer::start_with_bundled_plugins(backend).await;
    Fixture { s, s3, _root: root }
}

impl Fixture {
    async fn export(&self, project: &str, name: &str, definition: Value, format: &str) -> String {
        let mut config = export_config(&self.s3.destination(), definition, format, 1000);
        config["export_path"] = format!("s3://{BUCKET}/{name}").into();
        let body = json!({"project_id": project, "name": name, "config": config});
        let created = self
            .s
            .ok(Method::POST, "/v1/project_automation", Some(body))
            .await;
        created["id"].as_str().unwrap().to_string()
    }

    async fn run(&self, automation: &str) -> Value {
        let run = self
            .s
            .ok(
                Method::POST,
                &format!("/v1/project_automation/{automation}/run"),
                None,
            )
            .await;
        assert_eq!(run["error"], Value::Null, "{run}");
        run
    }

    async fn objects(&self, name: &str) -> Vec<(String, Vec<u8>)> {
        self.s3.objects(BUCKET, &format!("{name}/")).await.unwrap()
    }
}

async fn every_shape_in_both_formats_reads_back_equal_to_the_source(backend: Backend) {
    let f = fixture(backend).await;
    let project = f.s.project("exported").await;
    let other = f.s.project("not exported").await;
    f.s.insert_logs(&project, spans("a", 4)).await;
    f.s.insert_logs(&other, spans("other", 2)).await;
    let source: Vec<Value> =
        f.s.all_logs(&project)
            .await
            .into_iter()
            .map(canonical)
            .collect();
    assert_eq!(source.len(), 12);

    for format in ["jsonl", "parquet"] {
        // Spans: every source row, field for field.
        let name = format!("spans-{format}");
        let id = f
            .export(&project, &name, json!({"type": "log_spans"}), format)
            .await;
        let run = f.run(&id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["matched_rows"], 12, "{run}");
        let objects = f.objects(&name).await;
        assert_eq!(objects.len(), 1, "one batch, one object");
        let (key, _) = &objects[0];
        assert_eq!(run["details"]["objects"], json!([key]), "{run}");
        assert!(
            key.contains("/spans/date="),
            "Hive-style date partition: {key}"
        );
        assert!(key.ends_with(&format!(".{format}")), "{key}");
        let exported = rows_by_id(&objects);
        assert_eq!(exported.len(), source.len());
        for row in &source {
            let id = row["id"].as_str().unwrap();
            assert_eq!(
                &exported[id], row,
                "{format}: span {id} reads back unchanged"
            );
        }

        // Traces: one row per trace, aggregated over its spans.
        let name = format!("traces-{format}");
        let id = f
            .export(&project, &name, json!({"type": "log_traces"}), format)
            .await;
        f.run(&id).await;
        let traces = rows_by_id(&f.objects(&name).await);
        assert_eq!(traces.len(), 4, "{traces:?}");
        let trace = &traces["a-t0"];
        assert_eq!(trace["span_count"], 3, "{trace}");
        assert_eq!(
            trace["scores"]["accuracy"],
            json!((1.0 + 0.5 + 0.5) / 3.0),
            "{trace}"
        );
        assert_eq!(trace["metrics"]["prompt_tokens"], json!(16.0), "{trace}");
        assert_eq!(trace["metrics"]["estimated_cost"], json!(0.5), "{trace}");
        assert_eq!(trace["duration"], json!(3.5), "{trace}");
        assert_eq!(
            trace["input"]["question"], "q0",
            "the root's fields: {trace}"
        );

        // A custom query, in Braintrust's form.
        let name = format!("query-{format}");
        let query = format!(
            "SELECT id, span_id, metadata FROM project_logs('{project}', shape => 'spans') \
             WHERE is_root ORDER BY id"
        );
        let id = f
            .export(
                &project,
                &name,
                json!({"type": "btql_query", "btql_query": query}),
                format,
            )
            .await;
        f.run(&id).await;
        let objects = f.objects(&name).await;
        let rows: Vec<Value> = objects.iter().flat_map(|(k, b)| rows_of(k, b)).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a-t0", "a-t1", "a-t2", "a-t3"], "{rows:?}");
        let metadata = &rows[1]["metadata"];
        let metadata: Value = match metadata {
            // Parquet keeps a query's JSON as text.
            Value::String(text) => serde_json::from_str(text).unwrap(),
            other => other.clone(),
        };
        assert_eq!(metadata, json!({"model": "gpt-x", "n": 1}), "{rows:?}");
    }
}

async fn incremental_runs_and_reset(backend: Backend) {
    let f = fixture(backend).await;
    let project = f.s.project("incremental").await;
    f.s.insert_logs(&project, spans("first", 2)).await;
    let id = f
        .export(
            &project,
            "incremental",
            json!({"type": "log_spans"}),
            "jsonl",
        )
        .await;
    assert_eq!(f.run(&id).await["matched_rows"], 6);

    f.s.insert_logs(&project, spans("second", 1)).await;
    let run = f.run(&id).await;
    assert_eq!(run["matched_rows"], 3, "only the new rows: {run}");
    let objects = f.objects("incremental").await;
    assert_eq!(objects.len(), 2);
    let newest = rows_of(&objects[1].0, &objects[1].1);
    let mut ids: Vec<&str> = newest.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["second-t0", "second-t0-c0", "second-t0-c1"]);
    assert_eq!(rows_by_id(&objects).len(), 9, "each row once");

    let nothing = f.run(&id).await;
    assert_eq!(nothing["status"], "skipped", "nothing new: {nothing}");

    let status =
        f.s.ok(
            Method::POST,
            &format!("/v1/project_automation/{id}/reset"),
            None,
        )
        .await;
    assert_eq!(status["watermark"], 0, "{status}");
    let history =
        f.s.ok(
            Method::GET,
            &format!("/v1/project_automation/{id}/runs"),
            None,
        )
        .await;
    let latest = &history["objects"][0];
    assert_eq!(
        latest["details"]["action"], "reset",
        "the reset is in the history: {latest}"
    );
    let again = f.run(&id).await;
    assert_eq!(
        again["matched_rows"], 9,
        "a reset exports everything again: {again}"
    );
}

async fn custom_queries_stay_in_their_project_and_never_write(backend: Backend) {
    let f = fixture(backend).await;
    let project = f.s.project("confined").await;
    let other = f.s.project("someone else").await;
    let refused = [
        (
            format!("SELECT * FROM project_logs('{other}', shape => 'spans')"),
            "another project",
        ),
        ("SELECT * FROM automations".to_string(), "is not available"),
        ("DELETE FROM spans".to_string(), "read-only SELECT"),
        (
            "WITH gone AS (DELETE FROM spans RETURNING id) SELECT * FROM gone".to_string(),
            "read-only SELECT",
        ),
        ("SELECT pg_sleep(10)".to_string(), "not allowed"),
    ];
    for (query, expected) in refused {
        let mut config = export_config(
            &f.s3.destination(),
            json!({"type": "btql_query", "btql_query": query}),
            "jsonl",
            100,
        );
        config["export_path"] = format!("s3://{BUCKET}/refused").into();
        let (status, body) =
            f.s.post(
                "/v1/project_automation",
                json!({"project_id": project, "name": "refused", "config": config}),
            )
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            body["error"]["path"], "config.export_definition.btql_query",
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{query}: {message}");
    }
    // The other project's rows never show up, whatever the query says.
    f.s.insert_logs(&other, spans("secret", 1)).await;
    f.s.insert_logs(&project, spans("mine", 1)).await;
    let query = "SELECT id FROM spans UNION ALL SELECT id FROM traces";
    let id = f
        .export(
            &project,
            "union",
            json!({"type": "btql_query", "btql_query": query}),
            "jsonl",
        )
        .await;
    f.run(&id).await;
    let rows: Vec<Value> = f
        .objects("union")
        .await
        .iter()
        .flat_map(|(k, b)| rows_of(k, b))
        .collect();
    assert_eq!(rows.len(), 4, "three spans and one trace: {rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["id"].as_str().unwrap().starts_with("mine")),
        "{rows:?}"
    );
}

async fn a_runaway_query_is_stopped_and_the_store_stays_writable(backend: Backend) {
    use herald::store::StoreError;
    use std::time::Duration;

    let s = TestServer::start(backend).await;
    let project = s.project("runaway").await;
    s.insert_logs(&project, spans("before", 22)).await;
    let project_id: uuid::Uuid = project.parse().unwrap();
    // Passes every check (one SELECT over its own relations, allowed
    // functions), and would run for hours: 66^6 rows to count.
    let endless = "SELECT count(*) AS n FROM spans a, spans b, spans c, spans d, spans e, spans f";
    let limit = Duration::from_millis(300);
    match super::confined(&s.store, endless, project_id, limit).await {
        Err(e @ StoreError::QueryTimedOut(_)) => {
            assert!(e.to_string().contains("ran longer than 300ms"), "{e}");
        }
        other => panic!("expected the query to be stopped, got {other:?}"),
    }

    // The store still writes, and a well-behaved query still runs.
    for round in 0..20 {
        s.insert_logs(&project, spans(&format!("after-{round}"), 1))
            .await;
    }
    let count = "SELECT count(*) AS n FROM spans";
    let thirty = Duration::from_secs(30);
    let rows = super::confined(&s.store, count, project_id, thirty)
        .await
        .unwrap();
    assert_eq!(
        rows.rows,
        vec![vec![json!(126)]],
        "three spans a trace, 42 traces"
    );
}

/// Without `allow_private_networks`, an export can neither write to nor
/// probe a loopback endpoint, by address or by a name resolving to it; and
/// the daemon's own AWS credentials never go to an endpoint that is not
/// AWS's.
async fn the_endpoint_goes_through_the_address_guard(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    s3.create_bucket(BUCKET).await.unwrap();
    let s = TestServer::start_with_network(backend, false).await;
    let project = s.project("guarded").await;
    let by_address = export_config(&s3.destination(), json!({"type": "log_spans"}), "jsonl", 10);
    let check = |config: Value| {
        let s = &s;
        let project = project.clone();
        async move {
            s.ok(
                Method::POST,
                "/v1/project_automation/test",
                Some(json!({"project_id": project, "config": config})),
            )
            .await
        }
    };
    let answer = check(by_address.clone()).await;
    assert_eq!(answer["ok"], false, "{answer}");
    let message = answer["steps"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("loopback address") && message.contains("allow_private_networks"),
        "{message}"
    );
    let mut by_name = by_address.clone();
    let endpoint = by_address["endpoint_url"].as_str().unwrap();
    by_name["endpoint_url"] = endpoint.replace("127.0.0.1", "localhost").into();
    let answer = check(by_name).await;
    assert_eq!(answer["ok"], false, "{answer}");
    let text = answer.to_string();
    assert!(text.contains("non-public addresses"), "{text}");
    assert!(
        s3.objects(BUCKET, "").await.unwrap().is_empty(),
        "nothing reached the loopback server"
    );

    for credentials in [
        json!({"type": "default"}),
        json!({"type": "aws_iam", "role_arn": "arn:aws:iam::123456789012:role/x"}),
    ] {
        let mut ambient = by_address.clone();
        ambient["credentials"] = credentials;
        ambient["endpoint_url"] = "https://s3.attacker.example".into();
        let answer = check(ambient).await;
        assert_eq!(answer["ok"], false, "{answer}");
        let message = answer["steps"][0]["message"].as_str().unwrap();
        assert!(message.contains("only to AWS endpoints"), "{message}");
    }
}
