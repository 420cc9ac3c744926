//! The filter language against real databases: each case is compiled for
//! the backend under test, run through the store (count with an `_xact_id`
//! range) and through the fetch API, and must select exactly the expected
//! rows. The same table runs on SQLite and PostgreSQL.

use chrono::{Duration as TimeDelta, SecondsFormat, Utc};
use herald::filter::Filter;
use herald::store::{EventQuery, ObjectRef, XactRange};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TestServer, both_backends};

both_backends!(
    filters_select_the_right_rows,
    filters_respect_xact_ranges,
    hostile_filters_are_rejected
);

fn ago(minutes: i64) -> String {
    (Utc::now() - TimeDelta::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn rows() -> Value {
    json!([
        {"id": "r1", "span_id": "r1span", "created": ago(10), "output": "ok",
         "error": "Timeout talking to upstream",
         "input": {"question": "I want a REFUND now"},
         "metadata": {"environment": "production", "model": "gpt-4o", "user": {"plan": "pro", "id": 7},
                      "items": ["a", "b"], "flag": true},
         "scores": {"Factuality": 0.5, "accuracy": 0.9},
         "metrics": {"estimated_cost": 2.5, "start": 100, "end": 112, "tokens": 10},
         "tags": ["flagged", "vip"], "span_attributes": {"type": "llm", "name": "chat"}},
        {"id": "r2", "created": ago(120), "input": "refund?",
         "metadata": {"environment": "staging", "model": "gpt-4.1", "user": {"plan": "free"}, "flag": false,
                      "pct": "500"},
         "scores": {"Factuality": 0.95, "accuracy": 0.5},
         "metrics": {"estimated_cost": 0.5, "start": 100, "end": 101, "tokens": 0},
         "tags": ["vip"], "span_attributes": {"type": "tool"}},
        {"id": "r3", "created": "2024-01-01T00:00:00Z", "error": {"message": "boom"},
         "span_parents": ["r1span"], "root_span_id": "r1span",
         "input": {"nested": {"deep": ["Refund policy"]}},
         "metadata": {"environment": "production", "model": "claude", "odd key": "v", "pct": "50%",
                      "cost_str": "1.5"},
         "scores": {"Factuality": null}, "tags": [], "span_attributes": {"type": "llm"}},
        {"id": "r4", "input": null},
        {"id": "r5", "created": ago(1), "output": {"text": "match me"},
         "metadata": {"environment": "Production", "model": "gpt-4o-mini", "n": 3, "x": 1.5},
         "scores": {"accuracy": 0}, "tags": ["flagged"]}
    ])
}

const CASES: &[(&str, &[&str])] = &[
    ("error IS NOT NULL", &["r1", "r3"]),
    ("error IS NULL", &["r2", "r4", "r5"]),
    (
        "error IS NOT NULL AND metadata.environment = 'production'",
        &["r1", "r3"],
    ),
    ("metadata.environment = 'production'", &["r1", "r3"]),
    ("metadata.environment != 'production'", &["r2", "r5"]),
    ("metadata.environment <> 'production'", &["r2", "r5"]),
    ("NOT (metadata.environment = 'production')", &["r2", "r5"]),
    (
        "metadata.environment = 'production' AND metadata.environment = 'staging'",
        &[],
    ),
    ("scores.Factuality < 0.8", &["r1"]),
    ("scores.Factuality >= 0.5", &["r1", "r2"]),
    ("scores.Factuality IS NULL", &["r3", "r4", "r5"]),
    ("scores.accuracy <= 0.5", &["r2", "r5"]),
    ("scores.accuracy = 0", &["r5"]),
    ("metrics.estimated_cost > 1.0", &["r1"]),
    (
        "metadata.model IN ('gpt-4o','gpt-4.1') AND (error IS NOT NULL OR scores.accuracy < 0.8)",
        &["r1", "r2"],
    ),
    ("metadata.model NOT IN ('gpt-4o', 'gpt-4.1')", &["r3", "r5"]),
    ("tags INCLUDES 'flagged'", &["r1", "r5"]),
    ("tags NOT INCLUDES 'flagged'", &["r2", "r3", "r4"]),
    ("metadata.items INCLUDES 'b'", &["r1"]),
    ("metadata.model INCLUDES 'gpt-4o'", &[]),
    ("span_parents INCLUDES 'r1span'", &["r3"]),
    ("input MATCH 'refund'", &["r1", "r2", "r3"]),
    ("input NOT MATCH 'refund'", &["r4", "r5"]),
    ("output MATCH 'MATCH ME'", &["r5"]),
    ("error MATCH 'timeout'", &["r1"]),
    ("error MATCH 'BOOM'", &["r3"]),
    ("id MATCH 'R2'", &["r2"]),
    ("span_attributes.type = 'llm'", &["r1", "r3"]),
    ("created > now() - interval 1 hour", &["r1", "r4", "r5"]),
    ("created < now() - interval '1 hour'", &["r2", "r3"]),
    (
        "created >= current_timestamp - interval 3 hours",
        &["r1", "r2", "r4", "r5"],
    ),
    ("created < '2025-01-01'", &["r3"]),
    (
        "created BETWEEN '2023-12-31' AND '2024-01-02T00:00:00Z'",
        &["r3"],
    ),
    (
        "created NOT BETWEEN '2023-12-31' AND '2024-01-02'",
        &["r1", "r2", "r4", "r5"],
    ),
    ("metadata.user.plan = 'pro'", &["r1"]),
    ("metadata.user.id = 7", &["r1"]),
    ("metadata.user IS NOT NULL", &["r1", "r2"]),
    ("metadata.\"odd key\" = 'v'", &["r3"]),
    ("metadata['odd key'] = 'v'", &["r3"]),
    ("metadata.items[0] = 'a'", &["r1"]),
    ("metadata.items[1] = 'a'", &[]),
    ("metadata.flag = true", &["r1"]),
    ("metadata.flag", &["r1"]),
    ("metadata.flag IS FALSE", &["r2"]),
    ("metadata.flag IS NOT TRUE", &["r2", "r3", "r4", "r5"]),
    ("is_root", &["r1", "r2", "r4", "r5"]),
    ("NOT is_root", &["r3"]),
    ("is_root = false", &["r3"]),
    ("root_span_id = 'r1span'", &["r1", "r3"]),
    ("metrics.end - metrics.start > 10", &["r1"]),
    ("metrics.tokens / metrics.tokens = 1", &["r1"]),
    ("metrics.end / 5 = 22.4", &["r1"]),
    ("metadata.n * 2 = 6", &["r5"]),
    ("metadata.n = 3.0", &["r5"]),
    ("metadata.n + 1 >= 4", &["r5"]),
    ("id <= 'r2'", &["r1", "r2"]),
    ("created <= now()", &["r1", "r2", "r3", "r4", "r5"]),
    ("scores.Factuality BETWEEN 0.5 AND 0.9", &["r1"]),
    ("-metadata.x < -1", &["r5"]),
    ("metadata.cost_str = '1.5'", &["r3"]),
    ("metadata.cost_str = 1.5", &[]),
    ("metadata.model LIKE 'gpt-4%'", &["r1", "r2", "r5"]),
    ("metadata.model LIKE 'GPT%'", &[]),
    ("metadata.model ILIKE 'GPT%'", &["r1", "r2", "r5"]),
    ("metadata.model NOT LIKE 'gpt%'", &["r3"]),
    ("metadata.model LIKE 'gpt-4_'", &["r1"]),
    ("metadata.pct LIKE '50%'", &["r2", "r3"]),
    ("metadata.pct LIKE '50\\%'", &["r3"]),
    (
        "metadata.environment ILIKE 'PRODUCTION'",
        &["r1", "r3", "r5"],
    ),
    (
        "tags INCLUDES 'vip' OR scores.accuracy < 0.8 AND error IS NOT NULL",
        &["r1", "r2"],
    ),
    (
        "(tags INCLUDES 'vip' OR scores.accuracy < 0.8) AND error IS NOT NULL",
        &["r1"],
    ),
    ("NOT tags INCLUDES 'vip' AND input IS NULL", &["r4", "r5"]),
    ("id = 'r2'", &["r2"]),
    ("id > 'r3'", &["r4", "r5"]),
    ("id IN ('r1', 'r4')", &["r1", "r4"]),
    ("_xact_id > 0", &["r1", "r2", "r3", "r4", "r5"]),
    ("TRUE", &["r1", "r2", "r3", "r4", "r5"]),
    ("FALSE", &[]),
    ("input IS NULL", &["r4", "r5"]),
    ("Metadata.model = 'claude'", &["r3"]),
];

async fn filters_select_the_right_rows(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("filters").await;
    s.insert_logs(&p, rows()).await;
    let object = ObjectRef::project_logs(p.parse().unwrap());
    let mut failures = Vec::new();
    for (source, expected) in CASES {
        let filter = Filter::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let query = EventQuery {
            filter: Some(&filter),
            ..EventQuery::default()
        };
        let got: Vec<String> = match s.store.fetch_events(object, &query).await {
            Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
            Err(e) => {
                failures.push(format!("{source}: database error {e}"));
                continue;
            }
        };
        let mut got_sorted = got.clone();
        got_sorted.sort();
        if got_sorted != *expected {
            let sql = filter
                .compile(s.store.dialect(), herald::store::DbTime::now())
                .sql_text();
            failures.push(format!(
                "{source}: got {got_sorted:?}, want {expected:?}\n    {sql}"
            ));
            continue;
        }
        let count = s
            .store
            .count_events(object, Some(&filter), XactRange::default())
            .await
            .unwrap();
        if count != expected.len() as u64 {
            failures.push(format!("{source}: count {count}, want {}", expected.len()));
        }
        let page = s
            .ok(
                Method::POST,
                &format!("/v1/project_logs/{p}/fetch"),
                Some(json!({"filter": source})),
            )
            .await;
        let mut api: Vec<&str> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        api.sort();
        if api != *expected {
            failures.push(format!("{source}: API returned {api:?}, want {expected:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} filter cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

async fn filters_respect_xact_ranges(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("ranges").await;
    let object = ObjectRef::project_logs(p.parse().unwrap());
    let flagged = Filter::parse("tags INCLUDES 'flagged'").unwrap();
    s.insert_logs(&p, json!([{"tags": ["flagged"]}, {"tags": []}]))
        .await;
    let watermark = s.store.max_xact_id(object).await.unwrap().unwrap();
    s.insert_logs(
        &p,
        json!([{"tags": ["flagged"]}, {"tags": ["flagged"]}, {}]),
    )
    .await;
    let top = s.store.max_xact_id(object).await.unwrap().unwrap();
    let count = |range| s.store.count_events(object, Some(&flagged), range);
    assert_eq!(count(XactRange::default()).await.unwrap(), 3);
    assert_eq!(count(XactRange::between(0, watermark)).await.unwrap(), 1);
    assert_eq!(count(XactRange::between(watermark, top)).await.unwrap(), 2);
    assert_eq!(count(XactRange::between(top, top + 100)).await.unwrap(), 0);
    assert_eq!(
        s.store
            .count_events(object, None, XactRange::between(watermark, top))
            .await
            .unwrap(),
        3
    );
    // The same filter through GET, URL-encoded, with a cursor.
    let resp = s
        .client
        .get(s.url(&format!("/v1/project_logs/{p}/fetch")))
        .bearer_auth(super::TEST_KEY)
        .query(&[
            ("filter", "tags INCLUDES 'flagged' AND _xact_id > 0"),
            ("cursor", &watermark.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    // Another project's rows never count.
    let q = s.project("other").await;
    s.insert_logs(&q, json!([{"tags": ["flagged"]}])).await;
    assert_eq!(count(XactRange::default()).await.unwrap(), 3);
}

async fn hostile_filters_are_rejected(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("hostile").await;
    s.insert_logs(&p, json!([{"input": "x"}])).await;
    let fetch = format!("/v1/project_logs/{p}/fetch");
    for filter in [
        "input MATCH 'x'; DROP TABLE events",
        "'; DROP TABLE events; --",
        "input MATCH 'x' -- comment",
        "id IN (SELECT id FROM projects)",
        "pg_sleep(1) = 1",
        "password = 'x'",
        "input MATCH 'x' UNION SELECT 1",
    ] {
        let (status, body) = s.post(&fetch, json!({"filter": filter})).await;
        assert_eq!(status, 400, "{filter}: {body}");
        assert_eq!(body["error"]["code"], "invalid_filter", "{filter}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("column"),
            "{body}"
        );
    }
    // Hostile text inside literals and keys is only ever data.
    for filter in [
        "input = '''; DROP TABLE events; --'",
        "metadata.\"'); DROP TABLE events; --\" = 'x'",
    ] {
        let (status, body) = s.post(&fetch, json!({"filter": filter})).await;
        assert_eq!(status, 200, "{filter}: {body}");
        assert!(body["events"].as_array().unwrap().is_empty());
    }
    assert_eq!(s.all_logs(&p).await.len(), 1, "the table is intact");
}
