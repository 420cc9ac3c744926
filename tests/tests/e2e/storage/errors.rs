//! Bad input: each case is a clear 4xx with the error shape, and nothing is
//! written.

use herald::api::Limits;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TEST_KEY, TestServer, both_backends};

both_backends!(
    invalid_events_are_rejected_with_paths,
    malformed_and_mistyped_bodies,
    unknown_objects_and_ids,
    auth_is_required,
    size_limits,
    openapi_lists_the_routes,
    store_refuses_rows_of_missing_projects,
    integers_past_64_bits_are_refused_not_rounded,
);

/// Asserts the error shape and returns the error object.
fn expect_error(status: u16, body: &Value, want_status: u16, code: &str) -> Value {
    assert_eq!(status, want_status, "{body}");
    let err = &body["error"];
    assert_eq!(err["code"], code, "{body}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    err.clone()
}

async fn nothing_written(s: &TestServer, project: &str) {
    assert!(s.all_logs(project).await.is_empty(), "no row was written");
    let object = herald::store::ObjectRef::project_logs(project.parse().unwrap());
    assert_eq!(s.store.max_xact_id(object).await.unwrap(), None);
}

async fn invalid_events_are_rejected_with_paths(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("bad-events").await;
    let good = json!({"input": "fine"});
    let cases = [
        (
            json!({"scores": {"accuracy": "high"}}),
            "events[3].scores.accuracy",
        ),
        (
            json!({"scores": {"accuracy": 1.5}}),
            "events[3].scores.accuracy",
        ),
        (
            json!({"scores": {"my score": -1}}),
            "events[3].scores[\"my score\"]",
        ),
        (
            json!({"metrics": {"tokens": "many"}}),
            "events[3].metrics.tokens",
        ),
        (json!({"tags": ["ok", 7]}), "events[3].tags[1]"),
        (json!({"tags": "flagged"}), "events[3].tags"),
        (json!({"metadata": [1]}), "events[3].metadata"),
        (
            json!({"span_attributes": {"type": 3}}),
            "events[3].span_attributes.type",
        ),
        (json!({"created": "last tuesday"}), "events[3].created"),
        (json!({"id": 42}), "events[3].id"),
        (json!({"id": ""}), "events[3].id"),
        (json!({"_is_merge": "yes"}), "events[3]._is_merge"),
        (json!({"_object_delete": true}), "events[3].id"),
        (json!({"mystery": 1}), "events[3].mystery"),
        (json!("not an object"), "events[3]"),
        (
            json!({"input": {"text": "nul\u{0}byte"}}),
            "events[3].input.text",
        ),
    ];
    for (bad, path) in cases {
        let events = json!([good, good, good, bad, good]);
        let (status, body) = s
            .post(
                &format!("/v1/project_logs/{p}/insert"),
                json!({"events": events}),
            )
            .await;
        let err = expect_error(status, &body, 400, "invalid_field");
        assert_eq!(err["path"], path, "{body}");
    }
    nothing_written(&s, &p).await;

    // Dataset rows reject span-only fields.
    let d = s
        .ok(
            Method::POST,
            "/v1/dataset",
            Some(json!({"project_id": p, "name": "d"})),
        )
        .await;
    let (status, body) = s
        .post(
            &format!("/v1/dataset/{}/insert", d["id"].as_str().unwrap()),
            json!({"events": [{"input": 1}, {"scores": {"a": 1}}]}),
        )
        .await;
    let err = expect_error(status, &body, 400, "invalid_field");
    assert_eq!(err["path"], "events[1].scores");
}

async fn malformed_and_mistyped_bodies(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("malformed").await;
    let path = format!("/v1/project_logs/{p}/insert");
    let raw = |body: &'static str, content_type: &'static str| {
        s.client
            .post(s.url(&path))
            .bearer_auth(TEST_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: [(&str, &str, u16, &str, Option<&str>); 7] = [
        (
            r#"{"events": [{"input": 1},"#,
            "application/json",
            400,
            "invalid_json",
            None,
        ),
        ("not json", "application/json", 400, "invalid_json", None),
        (
            r#"{"events": [] } trailing"#,
            "application/json",
            400,
            "invalid_json",
            None,
        ),
        (
            r#"{"events": {"a": 1}}"#,
            "application/json",
            400,
            "invalid_request",
            Some("events"),
        ),
        (
            r#"{"rows": []}"#,
            "application/json",
            400,
            "invalid_request",
            None,
        ),
        ("", "application/json", 400, "invalid_json", None),
        (
            r#"{"events": []}"#,
            "text/plain",
            415,
            "unsupported_media_type",
            None,
        ),
    ];
    for (body, ct, want, code, err_path) in cases {
        let resp = raw(body, ct).await.unwrap();
        let status = resp.status().as_u16();
        let json: Value = resp.json().await.unwrap();
        let err = expect_error(status, &json, want, code);
        if let Some(p) = err_path {
            assert_eq!(err["path"], p, "{json}");
        }
    }
    let resp = raw(r#"{"events": [{"input": 1},"#, "application/json")
        .await
        .unwrap();
    let json: Value = resp.json().await.unwrap();
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("malformed JSON at line 1"), "{message}");

    // An empty batch is fine and writes nothing.
    let (status, body) = s.post(&path, json!({"events": []})).await;
    assert_eq!((status, body), (200, json!({"row_ids": []})));

    // Bad fetch parameters.
    let fetch = format!("/v1/project_logs/{p}/fetch");
    let (status, body) = s.get(&format!("{fetch}?limit=lots")).await;
    assert_eq!(
        expect_error(status, &body, 400, "invalid_request")["path"],
        "limit"
    );
    let (status, body) = s.get(&format!("{fetch}?limit=0")).await;
    expect_error(status, &body, 400, "invalid_request");
    let (status, body) = s.get(&format!("{fetch}?cursor=abc")).await;
    assert_eq!(
        expect_error(status, &body, 400, "invalid_request")["path"],
        "cursor"
    );
    let (status, body) = s
        .post(&fetch, json!({"filter": "scores.x < 'a' AND bogus = 1"}))
        .await;
    let err = expect_error(status, &body, 400, "invalid_filter");
    assert_eq!(err["path"], "filter");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `bogus`"),
        "{err}"
    );
    let (status, body) = s.post(&fetch, json!({"limit": "ten"})).await;
    assert_eq!(
        expect_error(status, &body, 400, "invalid_request")["path"],
        "limit"
    );

    // Bad object bodies.
    let (status, body) = s.post("/v1/project", json!({"name": ""})).await;
    assert_eq!(
        expect_error(status, &body, 400, "invalid_field")["path"],
        "name"
    );
    let (status, body) = s.post("/v1/project", json!({"name": 5})).await;
    assert_eq!(
        expect_error(status, &body, 400, "invalid_request")["path"],
        "name"
    );
    nothing_written(&s, &p).await;
}

async fn unknown_objects_and_ids(backend: Backend) {
    let s = TestServer::start(backend).await;
    let missing = uuid::Uuid::new_v4();
    let events = json!({"events": [{"input": 1}]});
    for path in [
        format!("/v1/project_logs/{missing}/insert"),
        format!("/v1/experiment/{missing}/insert"),
        format!("/v1/dataset/{missing}/insert"),
    ] {
        let (status, body) = s.post(&path, events.clone()).await;
        expect_error(status, &body, 404, "not_found");
    }
    for path in [
        format!("/v1/project/{missing}"),
        format!("/v1/project_logs/{missing}/fetch"),
        format!("/v1/experiment/{missing}"),
        format!("/v1/dataset/{missing}"),
        format!("/v1/prompt/{missing}"),
        format!("/v1/environment/{missing}"),
    ] {
        let (status, body) = s.get(&path).await;
        expect_error(status, &body, 404, "not_found");
    }
    let (status, body) = s
        .post("/v1/project_logs/not-a-uuid/insert", events.clone())
        .await;
    assert_eq!(
        expect_error(status, &body, 400, "invalid_id")["path"],
        "project_id"
    );
    let (status, body) = s
        .post(
            "/v1/experiment",
            json!({"project_id": missing.to_string(), "name": "e"}),
        )
        .await;
    expect_error(status, &body, 404, "not_found");
    let (status, body) = s.get("/v1/no/such/route").await;
    expect_error(status, &body, 404, "not_found");
    assert_eq!(
        s.store.current_xact_id().await.unwrap(),
        0,
        "nothing written"
    );
}

async fn auth_is_required(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("auth").await;
    let path = s.url(&format!("/v1/project_logs/{p}/insert"));
    let body = json!({"events": [{"input": 1}]});
    let attempts = [
        s.client.post(&path).json(&body),
        s.client.post(&path).bearer_auth("wrong-key").json(&body),
        s.client
            .post(&path)
            .header("authorization", TEST_KEY)
            .json(&body),
        s.client
            .post(&path)
            .basic_auth("user", Some(TEST_KEY))
            .json(&body),
    ];
    for attempt in attempts {
        let resp = attempt.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let json: Value = resp.json().await.unwrap();
        expect_error(401, &json, 401, "unauthorized");
    }
    for route in ["/v1/project", "/openapi.json"] {
        let resp = s.client.get(s.url(route)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{route}");
    }
    let resp = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    nothing_written(&s, &p).await;

    // The scheme is case-insensitive (RFC 9110).
    for scheme in ["BEARER", "bearer", "BeArEr"] {
        let resp = s
            .client
            .get(s.url("/v1/project"))
            .header("authorization", format!("{scheme} {TEST_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
}

async fn integers_past_64_bits_are_refused_not_rounded(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("big-numbers").await;
    let body = r#"{"events": [{"input": "q"}, {"input": "q",
        "metadata": {"order_id": 123456789012345678901234, "ok": 18446744073709551615}}]}"#;
    let (status, json) = s
        .post_text(&format!("/v1/project_logs/{p}/insert"), body)
        .await;
    let error = expect_error(status, &json, 400, "invalid_request");
    assert_eq!(error["path"], "events[1].metadata.order_id", "{json}");
    assert!(
        error["message"].as_str().unwrap().contains("64 bits"),
        "{json}"
    );
    nothing_written(&s, &p).await;
    // The largest 64-bit values are kept exactly.
    s.insert_logs(
        &p,
        json!([{"metadata": {"max": u64::MAX, "min": i64::MIN}}]),
    )
    .await;
    let rows = s.all_logs(&p).await;
    assert_eq!(rows[0]["metadata"]["max"], json!(u64::MAX), "{rows:?}");
    assert_eq!(rows[0]["metadata"]["min"], json!(i64::MIN), "{rows:?}");
}

async fn size_limits(backend: Backend) {
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        max_batch_events: 50,
    };
    let s = TestServer::start_with(backend, limits).await;
    let p = s.project("limits").await;
    let path = format!("/v1/project_logs/{p}/insert");
    let big = "x".repeat(100 * 1024);
    let (status, body) = s.post(&path, json!({"events": [{"input": big}]})).await;
    expect_error(status, &body, 413, "payload_too_large");
    let events: Vec<Value> = (0..51).map(|i| json!({"input": i})).collect();
    let (status, body) = s.post(&path, json!({"events": events})).await;
    assert_eq!(
        expect_error(status, &body, 400, "too_many_events")["path"],
        "events"
    );
    nothing_written(&s, &p).await;
    let events: Vec<Value> = (0..50).map(|i| json!({"input": i})).collect();
    assert_eq!(s.insert_logs(&p, Value::Array(events)).await.len(), 50);
}

async fn openapi_lists_the_routes(backend: Backend) {
    let s = TestServer::start(backend).await;
    let doc = s.ok(Method::GET, "/openapi.json", None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/v1/project", "post"),
        ("/v1/project", "get"),
        ("/v1/project/{project_id}", "patch"),
        ("/v1/project/{project_id}", "delete"),
        ("/v1/project_logs/{project_id}/insert", "post"),
        ("/v1/project_logs/{project_id}/fetch", "get"),
        ("/v1/project_logs/{project_id}/fetch", "post"),
        ("/v1/experiment/{experiment_id}/insert", "post"),
        ("/v1/dataset/{dataset_id}/fetch", "get"),
        (
            "/v1/prompt/{prompt_id}/environment/{environment_slug}",
            "put",
        ),
        ("/v1/environment_event", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

async fn store_refuses_rows_of_missing_projects(backend: Backend) {
    let s = TestServer::start(backend).await;
    let object = herald::store::ObjectRef::project_logs(uuid::Uuid::new_v4());
    let write = herald::store::validate_event(object.kind, json!({"input": 1}), "e").unwrap();
    let err = s
        .store
        .insert_events(object, vec![write])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            herald::store::StoreError::NotFound {
                kind: "project",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.store.max_xact_id(object).await.unwrap(), None);
}
