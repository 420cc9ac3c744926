//! Hostile filters and custom queries, as any API key holder could send
//! them, against both backends: each is refused at create with a 400 that
//! names the field, or, where only the database can tell, fails with a
//! clear error and returns nothing it should not. Some attacks are sent
//! past the text check on purpose (`confined_unchecked`): the database
//! itself must refuse them.

use std::time::Duration;

use herald::store::{QueryLimits, StoreError};
use herald_testkit::s3_server::LoopbackS3;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TestServer, both_backends, confined, confined_unchecked};
use crate::export::{BUCKET, export_config, spans};

both_backends!(
    shadowed_names_schema_tables_and_other_projects_are_refused_at_create,
    the_database_refuses_what_the_text_check_would_miss,
    results_past_a_cap_fail_with_the_cap_named,
    huge_and_deep_filters_and_queries_answer_400_and_the_daemon_lives,
    every_accepted_filter_runs,
    every_accepted_query_runs,
);

/// A log alert's webhook secret, to look for where it must not be.
const SECRET: &str = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr";

async fn with_a_secret(s: &TestServer, project: &str) {
    let body = json!({"project_id": project, "name": "has a secret", "config": {
        "event_type": "logs", "interval_seconds": 60, "btql_filter": "error IS NOT NULL",
        "action": {"type": "webhook", "url": "https://hooks.example.com/x", "secret": SECRET}}});
    s.ok(Method::POST, "/v1/project_automation", Some(body))
        .await;
}

/// Fetches `project`'s logs through `filter`.
async fn fetch(s: &TestServer, project: &str, filter: &str) -> (u16, Value) {
    s.call(
        Method::POST,
        &format!("/v1/project_logs/{project}/fetch"),
        Some(json!({ "filter": filter })),
    )
    .await
}

async fn create_export(
    s: &TestServer,
    s3: &LoopbackS3,
    project: &str,
    query: &str,
) -> (u16, Value) {
    let mut config = export_config(
        &s3.destination(),
        json!({"type": "btql_query", "btql_query": query}),
        "jsonl",
        100,
    );
    config["export_path"] = format!("s3://{BUCKET}/attack").into();
    s.post(
        "/v1/project_automation",
        json!({"project_id": project, "name": "attack", "config": config}),
    )
    .await
}

async fn shadowed_names_schema_tables_and_other_projects_are_refused_at_create(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    let s = TestServer::start_with_bundled_plugins(backend).await;
    let project = s.project("attacker").await;
    let other = s.project("victim").await;
    with_a_secret(&s, &other).await;
    let mut attacks = vec![
        // The reported leak: a CTE named like a table, nested in a derived
        // table, used to let the outer `automations` through.
        "SELECT a.config FROM automations a, \
         (WITH automations AS (SELECT 1 AS one) SELECT one FROM automations) AS x"
            .to_string(),
        // The same at any depth, and for other tables.
        "SELECT e.input FROM events e, (SELECT * FROM (WITH events AS (SELECT 1 AS one) \
         SELECT one FROM events) AS y) AS x"
            .to_string(),
        "SELECT * FROM spans WHERE id IN (SELECT id FROM (WITH projects AS (SELECT 'x' AS id) \
         SELECT id FROM projects) q UNION SELECT name FROM projects)"
            .to_string(),
        // A CTE that reads its own name: PostgreSQL resolves it to the table.
        "WITH automations AS (SELECT * FROM automations) SELECT * FROM automations".to_string(),
        // A name defined later in the same WITH.
        "WITH a AS (SELECT * FROM automations), automations AS (SELECT 1 AS one) SELECT * FROM a"
            .to_string(),
        // Schema tables, catalog and pragma functions.
        "SELECT * FROM sqlite_master".to_string(),
        "SELECT * FROM pragma_database_list".to_string(),
        "SELECT * FROM pg_catalog.pg_authid".to_string(),
        "SELECT * FROM information_schema.tables".to_string(),
        "SELECT * FROM main.automations".to_string(),
        // Another project, by id.
        format!("SELECT * FROM project_logs('{other}')"),
    ];
    attacks.push(
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r".into(),
    );
    for query in attacks {
        let (status, body) = create_export(&s, &s3, &project, &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            body["error"]["path"], "config.export_definition.btql_query",
            "{query}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("is not available")
                || message.contains("another project")
                || message.contains("WITH RECURSIVE"),
            "{query}: {message}"
        );
        assert!(!body.to_string().contains(SECRET), "{body}");
    }
}

async fn the_database_refuses_what_the_text_check_would_miss(backend: Backend) {
    let s = TestServer::start_with_bundled_plugins(backend).await;
    let project = s.project("attacker").await;
    let other = s.project("victim").await;
    with_a_secret(&s, &other).await;
    s.insert_logs(&project, spans("mine", 2)).await;
    s.insert_logs(&other, spans("theirs", 3)).await;
    let project_id: uuid::Uuid = project.parse().unwrap();
    let minute = Duration::from_secs(60);
    let mut reads = vec![
        "SELECT config FROM automations",
        "SELECT input FROM events",
        "SELECT * FROM projects",
        "SELECT count(*) FROM deliveries",
    ];
    // A CTE named like the views: on SQLite the views' names are fresh for
    // each query, so no text can borrow their right to read `events`.
    let shadow =
        "WITH herald_query_spans AS (SELECT * FROM events) SELECT * FROM herald_query_spans";
    reads.push(shadow);
    reads.extend(match backend {
        Backend::Sqlite => [
            "SELECT sql FROM sqlite_master",
            "SELECT * FROM pragma_database_list",
            "SELECT load_extension('/tmp/x')",
        ],
        Backend::Postgres => [
            "SELECT rolpassword FROM pg_catalog.pg_authid",
            "SELECT * FROM pg_catalog.pg_shadow",
            "SELECT lo_import('/etc/passwd')",
        ],
    });
    for sql in reads {
        match confined_unchecked(&s.store, sql, project_id, minute).await {
            Err(StoreError::QueryRefused(message)) => {
                assert!(
                    message.contains("refused") || message.contains("permission denied"),
                    "{sql}: {message}"
                );
            }
            Err(StoreError::Database(e)) if backend == Backend::Postgres => {
                // PostgreSQL names some refusals as plain errors (a missing
                // function privilege, a superuser-only function).
                let text = e.to_string();
                assert!(
                    text.contains("permission denied") || text.contains("must be superuser"),
                    "{sql}: {text}"
                );
            }
            other => panic!("{sql}: the database let it through: {other:?}"),
        }
    }
    // Writes are refused too, even as the only statement.
    for sql in ["DELETE FROM events", "UPDATE automations SET name = 'x'"] {
        assert!(
            confined_unchecked(&s.store, sql, project_id, minute)
                .await
                .is_err(),
            "{sql}"
        );
    }
    // The views show this project's spans and nothing else, and the
    // other project's rows and the secret are all still in place.
    let rows = confined(&s.store, "SELECT id FROM spans", project_id, minute)
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), 6, "{rows:?}");
    assert!(
        rows.rows
            .iter()
            .all(|r| r[0].as_str().unwrap().starts_with("mine")),
        "{rows:?}"
    );
    assert_eq!(s.all_logs(&other).await.len(), 9);
    let listed = s
        .ok(
            Method::GET,
            &format!("/v1/project_automation?project_id={other}"),
            None,
        )
        .await;
    assert_eq!(listed["objects"].as_array().unwrap().len(), 1, "{listed}");
}

async fn results_past_a_cap_fail_with_the_cap_named(backend: Backend) {
    let s = TestServer::start(backend).await;
    let project = s.project("caps").await;
    s.insert_logs(&project, spans("c", 4)).await; // 12 spans
    let project_id: uuid::Uuid = project.parse().unwrap();
    let minute = Duration::from_secs(60);
    // One value of 40 MB: SQLite's length limit refuses to build it;
    // PostgreSQL builds it but never sends it.
    let big = match backend {
        Backend::Sqlite => {
            "SELECT printf('%.*c', 20000000, 'x') || printf('%.*c', 20000000, 'y') AS big \
             FROM spans LIMIT 1"
        }
        // `repeat` is not an allowed function: sent past the text check, to
        // test the engine's cap alone.
        Backend::Postgres => "SELECT repeat('x', 40000000) AS big",
    };
    let result = match backend {
        Backend::Sqlite => confined(&s.store, big, project_id, minute).await,
        Backend::Postgres => confined_unchecked(&s.store, big, project_id, minute).await,
    };
    match result {
        Err(e @ StoreError::QueryOverLimit(_)) => {
            assert!(e.to_string().contains("32 MiB"), "{e}")
        }
        other => panic!("expected the value cap, got {other:?}"),
    }
    // A row of many large values is refused before it is built whole.
    let wide = format!(
        "WITH x AS (SELECT replace(id, id, id) AS v FROM spans) SELECT {} FROM x",
        (0..150)
            .map(|i| format!("v AS c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let error = confined(&s.store, &wide, project_id, minute).await;
    match backend {
        Backend::Sqlite => assert!(
            error
                .as_ref()
                .is_err_and(|e| e.to_string().contains("too many columns")),
            "{error:?}"
        ),
        Backend::Postgres => assert!(error.is_ok(), "{error:?}"),
    }
    // Columns come back in the query's order, duplicates kept.
    let ordered = confined(
        &s.store,
        "SELECT id AS z, 1 AS a, id AS m FROM spans LIMIT 1",
        project_id,
        minute,
    )
    .await
    .unwrap();
    assert_eq!(ordered.columns, ["z", "a", "m"]);

    // Rows and bytes per batch.
    let query = herald::export::query::ConfinedQuery::new(
        "SELECT a.id FROM spans a, spans b",
        s.store.dialect(),
        project_id,
    )
    .unwrap();
    let run = |limits| herald::store::ConfinedRun {
        sql: &query.sql,
        views: &query.views,
        project_id,
        range: herald::store::ConfinedRange::Xact {
            after: 0,
            upto: i64::MAX,
        },
        allowed_functions: herald::export::query::ALLOWED_FUNCTIONS,
        limits,
    };
    let rows = QueryLimits {
        max_rows: 100,
        ..QueryLimits::EXPORT
    };
    let error = s.store.confined_query(run(rows)).await.unwrap_err();
    assert!(
        error.to_string().contains("more than 100 rows"),
        "144 rows: {error}"
    );
    let bytes = QueryLimits {
        max_bytes: 1024 * 1024,
        ..QueryLimits::EXPORT
    };
    assert!(
        s.store.confined_query(run(bytes)).await.is_ok(),
        "144 short ids fit in 1 MiB"
    );
}

async fn huge_and_deep_filters_and_queries_answer_400_and_the_daemon_lives(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let s3 = LoopbackS3::start(root.path()).await.unwrap();
    let s = TestServer::start_with_bundled_plugins(backend).await;
    let project = s.project("huge").await;
    s.insert_logs(&project, spans("h", 1)).await;
    let megabyte = "x".repeat(1024 * 1024);
    let filters = [
        // The reported stack overflows: 6 KB of arithmetic, 1,300 ORs.
        format!("{} = 1", vec!["1"; 3_000].join("+")),
        vec!["1=1"; 1_300].join(" OR "),
        // Accepted before, then failing on SQLite's depth limit at every run.
        vec!["metadata.a = 'b'"; 1_100].join(" OR "),
        format!("metadata.a = '{megabyte}'"),
        format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000)),
        format!("{}TRUE", "NOT ".repeat(5_000)),
    ];
    for filter in &filters {
        let (status, body) = fetch(&s, &project, filter).await;
        assert_eq!(status, 400, "fetch with {} bytes: {body}", filter.len());
        assert_eq!(body["error"]["path"], "filter", "{body}");
        let alert = json!({"project_id": project, "name": "deep", "config": {
            "event_type": "logs", "interval_seconds": 60, "btql_filter": filter,
            "action": {"type": "webhook", "url": "https://hooks.example.com/x"}}});
        let (status, body) = s.post("/v1/project_automation", alert).await;
        assert_eq!(status, 400, "alert with {} bytes: {body}", filter.len());
        assert_eq!(body["error"]["path"], "config.btql_filter", "{body}");
    }
    let queries = [
        format!("SELECT {} AS n FROM spans", vec!["1"; 40_000].join("+")),
        format!("SELECT '{megabyte}' AS n FROM spans"),
        format!(
            "SELECT {}1{} FROM spans",
            "(".repeat(10_000),
            ")".repeat(10_000)
        ),
        format!(
            "SELECT id FROM spans {}",
            vec!["UNION ALL SELECT id FROM spans"; 2_000].join(" ")
        ),
    ];
    for query in &queries {
        let (status, body) = create_export(&s, &s3, &project, query).await;
        assert_eq!(status, 400, "query of {} bytes: {body}", query.len());
        assert_eq!(
            body["error"]["path"], "config.export_definition.btql_query",
            "{body}"
        );
    }
    // Still serving.
    assert_eq!(fetch(&s, &project, "is_root").await.0, 200);
}

/// A small generator of random filters, wide and deep, over the fields the
/// language knows; each is either refused with a message or runs.
async fn every_accepted_filter_runs(backend: Backend) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let s = TestServer::start(backend).await;
    let project = s.project("props").await;
    s.insert_logs(&project, spans("p", 2)).await;
    let leaf = prop_oneof![
        Just("scores.Factuality < 0.5".to_string()),
        Just("metadata.env = 'prod'".to_string()),
        Just("error IS NOT NULL".to_string()),
        Just("tags INCLUDES 'x'".to_string()),
        Just("metrics.tokens + 1 > 2 * 3".to_string()),
        Just("is_root".to_string()),
        Just("input MATCH 'refund'".to_string()),
        Just("created > now() - interval 1 hour".to_string()),
        (1..400usize).prop_map(|n| format!("metrics.tokens {} > 0", "+ 1 ".repeat(n))),
    ];
    let tree = leaf.prop_recursive(64, 4_096, 40, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..300).prop_map(|v| v.join(" OR ")),
            prop::collection::vec(inner.clone(), 1..60).prop_map(|v| v.join(" AND ")),
            inner.clone().prop_map(|f| format!("NOT ({f})")),
            inner.prop_map(|f| format!("({f})")),
        ]
    });
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..120 {
        let filter = tree.new_tree(&mut runner).unwrap().current();
        let (status, body) = fetch(&s, &project, &filter).await;
        match status {
            200 => accepted += 1,
            400 => {
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("limit"), "{message}");
                refused += 1;
            }
            other => panic!("{other} for a filter of {} bytes: {body}", filter.len()),
        }
    }
    eprintln!("random filters: {accepted} ran, {refused} refused over budget");
    assert!(
        accepted > 10 && refused > 10,
        "{accepted} ran, {refused} refused"
    );
}

/// Random custom queries, deep and wide (nested subqueries, CTE chains,
/// long expressions, UNION chains): each is refused with a message at
/// create, or it runs on the database and stays in its project.
async fn every_accepted_query_runs(backend: Backend) {
    use herald::export::query::ConfinedQuery;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let s = TestServer::start(backend).await;
    let project = s.project("query-props").await;
    let other = s.project("query-props-other").await;
    s.insert_logs(&project, spans("q", 2)).await;
    s.insert_logs(&other, spans("other", 2)).await;
    let project_id: uuid::Uuid = project.parse().unwrap();
    let expr = (1..300usize).prop_map(|n| vec!["1"; n].join(" + "));
    let leaf = expr.prop_map(|e| format!("SELECT id, {e} AS n FROM spans"));
    let query = leaf.prop_recursive(8, 256, 30, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|q| format!("SELECT id, n + 1 AS n FROM ({q}) AS sub")),
            prop::collection::vec(inner.clone(), 1..30).prop_map(|v| {
                v.iter()
                    .enumerate()
                    .map(|(i, q)| format!("SELECT id, n FROM ({q}) AS u{i}"))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ")
            }),
            inner
                .clone()
                .prop_map(|q| format!("WITH c AS ({q}) SELECT id, n FROM c")),
            inner.prop_map(|q| format!(
                "SELECT id, 1 AS n FROM spans WHERE id IN (SELECT id FROM ({q}) AS w)"
            )),
        ]
    });
    let mut runner = TestRunner::deterministic();
    let (mut ran, mut refused) = (0, 0);
    for _ in 0..60 {
        let sql = query.new_tree(&mut runner).unwrap().current();
        match ConfinedQuery::new(&sql, s.store.dialect(), project_id) {
            Err(e) => {
                assert!(e.0.contains("limit") || e.0.contains("nested"), "{e}");
                refused += 1;
            }
            Ok(_) => {
                let rows = confined(&s.store, &sql, project_id, Duration::from_secs(60))
                    .await
                    .unwrap_or_else(|e| panic!("accepted but failed: {e}\n{sql}"));
                assert!(
                    rows.rows
                        .iter()
                        .all(|r| r[0].as_str().is_some_and(|id| id.starts_with('q'))),
                    "{rows:?}"
                );
                ran += 1;
            }
        }
    }
    eprintln!("random queries: {ran} ran, {refused} refused over budget");
    assert!(ran > 5 && refused > 5, "{ran} ran, {refused} refused");
}
