//! Ingest and fetch through the HTTP API: Braintrust's row shape, generated
//! ids and defaults, replace / merge / delete, cursors, versions, and the
//! experiment and dataset variants.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TestServer, both_backends};

both_backends!(
    full_row_round_trips,
    merge_replace_and_delete,
    cursor_pages_and_version,
    experiments_and_datasets_hold_rows,
    events_as_written_by_any_client_read_back_alike,
);

/// The insert path stores each field as compact text straight from the
/// request: however the client formats its JSON (whitespace, newlines
/// between tokens, duplicate keys, exponents, escapes), fetch, filters and
/// a merge in the same batch see the same values a parser would.
async fn events_as_written_by_any_client_read_back_alike(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("formatting").await;
    let body = "{\"events\": [\n  {\"id\" : \"a\",\n   \"input\" : { \"q\" : \"two  spaces\\nand a newline\", \"k\": 1, \"k\": 2 },\n   \"output\": [ 1.5e3 , true , null , \"\\u00e9\\\"\" ],\n   \"metadata\": {\"model\" : \"gpt\"} },\n  {\"id\": \"b\", \"input\": {\"x\": 1}},\n  {\"id\": \"b\", \"_is_merge\": true, \"input\": {\"y\": 2}}\n]}";
    let insert = format!("/v1/project_logs/{p}/insert");
    let (status, answer) = s.post_text(&insert, body).await;
    assert_eq!(status, 200, "{answer}");
    let rows = s.all_logs(&p).await;
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    let a = row("a");
    assert_eq!(
        a["input"],
        json!({"q": "two  spaces\nand a newline", "k": 2})
    );
    assert_eq!(a["output"], json!([1500.0, true, null, "é\""]));
    assert_eq!(a["metadata"], json!({"model": "gpt"}));
    assert_eq!(row("b")["input"], json!({"x": 1, "y": 2}));
    // The database reads the duplicate key as fetch does.
    let (status, page) = s
        .post(
            &format!("/v1/project_logs/{p}/fetch"),
            json!({"filter": "input.k = 2"}),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    // A NUL anywhere is still refused with its path.
    let (status, error) = s
        .post_text(
            &insert,
            r#"{"events": [{"id": "c", "input": {"list": ["ok", "n\u0000l"]}}]}"#,
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["path"], "events[0].input.list[1]", "{error}");
    assert_eq!(s.all_logs(&p).await.len(), 2);
}

async fn full_row_round_trips(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("roundtrip").await;
    let event = json!({
        "id": "row-1",
        "span_id": "span-1",
        "root_span_id": "root-1",
        "span_parents": ["root-1"],
        "created": "2024-05-01T12:00:00.123456+02:00",
        "input": {"question": "Can I get a refund?", "n": [1, 2.5, null]},
        "output": "Yes",
        "expected": "Yes.",
        "error": null,
        "scores": {"Factuality": 0.75, "accuracy": 1, "skipped": null},
        "metrics": {"start": 1714557600.5, "end": 1714557601.0, "tokens": 120, "estimated_cost": 0.0021},
        "metadata": {"model": "gpt-4o", "nested": {"deep": {"x": "é ✓"}}},
        "tags": ["flagged", "vip"],
        "span_attributes": {"name": "chat", "type": "llm"},
        "context": {"caller_filename": "app.py"},
        "project_id": p,
        "log_id": "g"
    });
    let ids = s.insert_logs(&p, json!([event, {"input": "second"}])).await;
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], "row-1");
    assert!(
        uuid::Uuid::parse_str(&ids[1]).is_ok(),
        "generated id {}",
        ids[1]
    );

    let rows = s.all_logs(&p).await;
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r["id"], "row-1");
    assert_eq!(r["project_id"], p.as_str());
    assert_eq!(r["log_id"], "g");
    assert_eq!(r["created"], "2024-05-01T10:00:00.123456Z");
    assert_eq!(r["span_id"], "span-1");
    assert_eq!(r["root_span_id"], "root-1");
    assert_eq!(r["span_parents"], json!(["root-1"]));
    assert_eq!(r["is_root"], false);
    for field in [
        "input",
        "output",
        "expected",
        "scores",
        "metrics",
        "metadata",
        "tags",
        "span_attributes",
        "context",
    ] {
        // `skipped: null` is kept inside objects.
        assert_eq!(r[field], event[field], "{field}");
    }
    assert_eq!(r["error"], Value::Null);
    let xact: i64 = r["_xact_id"].as_str().unwrap().parse().unwrap();

    let second = &rows[1];
    assert_eq!(second["input"], "second");
    assert_eq!(second["is_root"], true);
    assert_eq!(second["root_span_id"], second["span_id"]);
    let second_xact: i64 = second["_xact_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        second_xact,
        xact + 1,
        "one sequence number per row, in order"
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(second["created"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(created);
    assert!(
        age.num_seconds().abs() < 60,
        "created defaults to now: {created}"
    );
}

async fn merge_replace_and_delete(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("merge").await;
    s.insert_logs(
        &p,
        json!([
            {"id": "a", "input": "q", "metadata": {"k": 1, "o": {"x": 1, "y": 2}}, "tags": ["t1"], "scores": {"s": 0.5}},
            {"id": "b", "input": "to be replaced", "output": "gone"},
            {"id": "c", "input": "to be deleted"}
        ]),
    )
    .await;
    let before = s.all_logs(&p).await;
    let a_xact = before[0]["_xact_id"].clone();
    let a_created = before[0]["created"].clone();
    let a_span = before[0]["span_id"].clone();

    s.insert_logs(
        &p,
        json!([
            {"id": "a", "_is_merge": true, "output": "o", "metadata": {"o": {"y": 3, "z": 4}}, "tags": ["t2"], "scores": {"s2": 1}},
            {"id": "b", "input": "new"},
            {"id": "c", "_object_delete": true},
            {"id": "new", "_is_merge": true, "input": "merge into nothing creates"},
            {"id": "new", "_is_merge": true, "output": "and merges within a batch"}
        ]),
    )
    .await;
    let rows = s.all_logs(&p).await;
    let by_id = |id: &str| rows.iter().find(|r| r["id"] == id).cloned();
    let a = by_id("a").unwrap();
    assert_eq!(a["input"], "q");
    assert_eq!(a["output"], "o");
    assert_eq!(
        a["metadata"],
        json!({"k": 1, "o": {"x": 1, "y": 3, "z": 4}})
    );
    assert_eq!(a["tags"], json!(["t2"]), "arrays replace");
    assert_eq!(a["scores"], json!({"s": 0.5, "s2": 1}));
    assert_eq!(a["created"], a_created, "merge keeps created");
    assert_eq!(a["span_id"], a_span, "merge keeps span ids");
    assert_ne!(
        a["_xact_id"], a_xact,
        "an update gets a new sequence number"
    );
    let b = by_id("b").unwrap();
    assert_eq!(b["input"], "new");
    assert_eq!(b["output"], Value::Null, "replace clears absent fields");
    assert!(by_id("c").is_none(), "deleted");
    let n = by_id("new").unwrap();
    assert_eq!(n["input"], "merge into nothing creates");
    assert_eq!(n["output"], "and merges within a batch");
    assert_eq!(rows.len(), 3);

    // _merge_paths replaces the named sub-object instead of merging it.
    s.insert_logs(
        &p,
        json!([{"id": "a", "_is_merge": true, "_merge_paths": [["metadata", "o"]], "metadata": {"o": {"only": true}}}]),
    )
    .await;
    let a = s
        .all_logs(&p)
        .await
        .into_iter()
        .find(|r| r["id"] == "a")
        .unwrap();
    assert_eq!(a["metadata"], json!({"k": 1, "o": {"only": true}}));

    // Deleting a row that does not exist is not an error.
    let ids = s
        .insert_logs(&p, json!([{"id": "nope", "_object_delete": true}]))
        .await;
    assert_eq!(ids, vec!["nope"]);
}

async fn cursor_pages_and_version(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("pages").await;
    let events: Vec<Value> = (0..25)
        .map(|i| json!({"id": format!("r{i:02}"), "input": i}))
        .collect();
    s.insert_logs(&p, Value::Array(events)).await;

    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/project_logs/{p}/fetch?limit=10");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = s.ok(Method::GET, &path, None).await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        pages += 1;
        assert!(events.len() <= 10);
        seen.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        cursor = Some(page["cursor"].as_str().unwrap().to_string());
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("r{i:02}")).collect();
    assert_eq!(
        seen, expected,
        "ascending _xact_id order, nothing repeated or skipped"
    );

    // New rows appear after the last cursor.
    s.insert_logs(&p, json!([{"id": "late"}])).await;
    let page = s
        .ok(
            Method::POST,
            &format!("/v1/project_logs/{p}/fetch"),
            Some(json!({"cursor": cursor})),
        )
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["id"], "late");

    // `version` reads as of a sequence number.
    let all = s.all_logs(&p).await;
    let v = all[4]["_xact_id"].as_str().unwrap();
    let page = s
        .ok(
            Method::POST,
            &format!("/v1/project_logs/{p}/fetch"),
            Some(json!({"version": v})),
        )
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 5);

    // An empty POST body means defaults.
    let resp = s
        .client
        .post(s.url(&format!("/v1/project_logs/{p}/fetch")))
        .bearer_auth(super::TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 26);
}

async fn experiments_and_datasets_hold_rows(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("objects").await;
    let e = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": p, "name": "exp"})),
        )
        .await;
    let eid = e["id"].as_str().unwrap();
    let d = s
        .ok(
            Method::POST,
            "/v1/dataset",
            Some(json!({"project_id": p, "name": "ds"})),
        )
        .await;
    let did = d["id"].as_str().unwrap();

    let r = s
        .ok(
            Method::POST,
            &format!("/v1/experiment/{eid}/insert"),
            Some(json!({"events": [{"id": "x", "input": 1, "scores": {"acc": 0.5}}]})),
        )
        .await;
    assert_eq!(r["row_ids"], json!(["x"]));
    let r = s
        .ok(
            Method::POST,
            &format!("/v1/dataset/{did}/insert"),
            Some(json!({"events": [{"id": "x", "input": 2, "expected": 3, "metadata": {"m": 1}, "tags": ["t"]}]})),
        )
        .await;
    assert_eq!(r["row_ids"], json!(["x"]));

    // Same row id in three objects: three independent rows.
    s.insert_logs(&p, json!([{"id": "x", "input": 0}])).await;
    let exp = s
        .ok(Method::GET, &format!("/v1/experiment/{eid}/fetch"), None)
        .await;
    assert_eq!(exp["events"].as_array().unwrap().len(), 1);
    assert_eq!(exp["events"][0]["experiment_id"], eid);
    assert_eq!(exp["events"][0]["input"], 1);
    assert_eq!(exp["events"][0]["scores"], json!({"acc": 0.5}));
    let ds = s
        .ok(Method::GET, &format!("/v1/dataset/{did}/fetch"), None)
        .await;
    let row = &ds["events"][0];
    assert_eq!(row["dataset_id"], did);
    assert_eq!(row["expected"], 3);
    assert_eq!(row["tags"], json!(["t"]));
    assert!(
        row.get("scores").is_none(),
        "dataset rows have no scores: {row}"
    );
    let logs = s.all_logs(&p).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["input"], 0);

    // Deleting the experiment deletes its rows only.
    s.ok(Method::DELETE, &format!("/v1/experiment/{eid}"), None)
        .await;
    let (status, _) = s.get(&format!("/v1/experiment/{eid}/fetch")).await;
    assert_eq!(status, 404);
    let ds = s
        .ok(Method::GET, &format!("/v1/dataset/{did}/fetch"), None)
        .await;
    assert_eq!(ds["events"].as_array().unwrap().len(), 1);
    assert_eq!(s.all_logs(&p).await.len(), 1);
}
