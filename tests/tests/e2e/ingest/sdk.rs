//! Braintrust's own tracing SDKs, installed from PyPI and npm and run
//! unmodified against the daemon: `init_logger` / `initLogger` with nested
//! traced spans and a span ended after a flush (its rows merged into one),
//! `logger.log`, an `Eval` experiment with its printed summary, a dataset
//! row inserted then updated, and a log alert firing on an SDK span.

use serde_json::{Value, json};

use super::{logs_by_id, run_client};
use crate::automations::{Herald, SETTINGS, log_alert, wait_for_requests, webhook};
use crate::harness::{DAEMON_KEY, Receiver};

fn sdk_env(h: &Herald) -> Vec<(String, String)> {
    [
        ("BRAINTRUST_APP_URL", h.daemon.url.as_str()),
        ("BRAINTRUST_API_URL", h.daemon.url.as_str()),
        ("BRAINTRUST_API_KEY", DAEMON_KEY),
        ("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn logs_through(program: &str, project: &str) {
    let h = Herald::start(SETTINGS).await;
    let receiver = Receiver::start().await;
    let project_id = h.project(project).await;
    h.create(
        &project_id,
        "low factuality",
        log_alert("scores.Factuality < 0.5", 60, webhook(&receiver, "/sdk")),
    )
    .await;
    let ids = run_client(program, vec![project.to_string()], sdk_env(&h)).await;
    let id = |span: &str, field: &str| ids[span][field].as_str().unwrap().to_string();

    let rows = logs_by_id(&h, project).await;
    let row = |span: &str| {
        rows.get(&id(span, "id"))
            .unwrap_or_else(|| panic!("{program}: no row for {span}: {rows:#?}"))
    };
    let answer = row("answer");
    assert_eq!(answer["span_id"], id("answer", "span_id").as_str());
    assert_eq!(
        answer["root_span_id"],
        id("answer", "root_span_id").as_str()
    );
    assert_eq!(answer["is_root"], true, "{answer}");
    assert_eq!(answer["span_attributes"]["name"], "answer");
    assert_eq!(answer["span_attributes"]["type"], "task");
    assert_eq!(answer["output"], "Refunds take 5 days.");
    assert_eq!(answer["scores"], json!({"Factuality": 0.25}));
    assert_eq!(answer["metadata"]["env"], "prod");
    let metrics = &answer["metrics"];
    assert!(
        metrics["start"].as_f64().unwrap() <= metrics["end"].as_f64().unwrap(),
        "{program}: started and ended: {answer}"
    );
    let retrieve = row("retrieve");
    assert_eq!(retrieve["span_parents"], json!([id("answer", "span_id")]));
    assert_eq!(
        retrieve["root_span_id"],
        id("answer", "root_span_id").as_str()
    );
    assert_eq!(retrieve["span_attributes"]["type"], "function");
    assert_eq!(retrieve["output"], json!(["doc-1", "doc-2"]));

    // Written across two flushes, merged into one row.
    let split = row("split");
    assert_eq!(split["input"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(split["output"], "hello");
    assert_eq!(split["metrics"]["prompt_tokens"], 3);
    assert!(
        split["metrics"]["start"].is_number() && split["metrics"]["end"].is_number(),
        "{split}"
    );
    assert_eq!(split["span_attributes"]["type"], "llm");
    let direct = &rows[ids["direct"].as_str().unwrap()];
    assert_eq!(
        (&direct["input"], &direct["output"]),
        (&json!("direct"), &json!("out"))
    );
    assert_eq!(direct["tags"], json!(["sdk"]));

    // The experiment: one task and one score per case, and the summary the
    // SDK printed came from Herald's means.
    let experiment = ids["experiment_id"].as_str().unwrap();
    let events = h
        .get(&format!("/v1/experiment/{experiment}/fetch?limit=1000"))
        .await;
    let events = events["events"].as_array().unwrap();
    let scored: Vec<f64> = events
        .iter()
        .filter_map(|e| e["scores"].as_object())
        .flat_map(|scores| scores.values().filter_map(Value::as_f64))
        .collect();
    assert_eq!(scored.len(), 2, "{program}: a score per case: {events:#?}");
    assert_eq!(scored.iter().sum::<f64>(), 1.0, "one case right, one wrong");
    let summary: Vec<f64> = ids["eval_scores"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(summary, vec![0.5], "{program}: the printed summary: {ids}");

    // The dataset row, updated in place.
    let dataset = ids["dataset_id"].as_str().unwrap();
    let rows = h.get(&format!("/v1/dataset/{dataset}/fetch")).await;
    let rows = rows["events"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], ids["dataset_row"]);
    assert_eq!(rows[0]["input"], json!({"q": "refund?"}));
    assert_eq!(rows[0]["expected"], "5 days");
    assert_eq!(rows[0]["metadata"]["source"], "sdk");
    if program.ends_with(".py") {
        assert_eq!(
            rows[0]["metadata"]["reviewed"], true,
            "the update merged: {rows:?}"
        );
    }

    let sent = wait_for_requests(&receiver, "/sdk", 1).await;
    assert_eq!(
        sent[0].json()["details"]["count"],
        1,
        "the alert fired on the SDK's span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braintrusts_python_sdk_logs_traces_experiments_and_datasets() {
    logs_through("bt_python.py", "sdk-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn braintrusts_typescript_sdk_logs_traces_experiments_and_datasets() {
    logs_through("bt_node.mjs", "sdk-ts").await;
}
