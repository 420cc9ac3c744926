//! Prompts, versions and environments, and the environment events that
//! alerts subscribe to.

use std::time::Duration;

use herald::store::StoreEvent;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Backend, TestServer, both_backends};

both_backends!(prompt_versions_and_environments);

async fn prompt_versions_and_environments(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("prompts").await;
    let mut events = s.store.subscribe();
    let v1 = s
        .ok(
            Method::POST,
            "/v1/prompt",
            Some(json!({"project_id": p, "slug": "support-bot", "name": "Support bot",
                        "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "system", "content": "Be nice"}]}},
                        "tags": ["a"]})),
        )
        .await;
    let id = v1["id"].as_str().unwrap().to_string();
    let version1 = v1["_xact_id"].as_str().unwrap().to_string();
    assert_eq!(v1["slug"], "support-bot");
    let same = s
        .ok(
            Method::POST,
            "/v1/prompt",
            Some(json!({"project_id": p, "slug": "support-bot", "name": "x"})),
        )
        .await;
    assert_eq!(same, v1, "an existing slug returns the prompt unchanged");

    let v2 = s
        .ok(
            Method::PATCH,
            &format!("/v1/prompt/{id}"),
            Some(json!({"prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "system", "content": "Be brief"}]}}})),
        )
        .await;
    let version2 = v2["_xact_id"].as_str().unwrap().to_string();
    assert!(version2.parse::<i64>().unwrap() > version1.parse::<i64>().unwrap());
    assert_eq!(v2["name"], "Support bot", "unchanged fields carry over");
    assert_eq!(v2["tags"], json!(["a"]));
    let versions = s
        .ok(Method::GET, &format!("/v1/prompt/{id}/versions"), None)
        .await;
    assert_eq!(versions["objects"].as_array().unwrap().len(), 2);
    let old = s
        .ok(
            Method::GET,
            &format!("/v1/prompt/{id}?version={version1}"),
            None,
        )
        .await;
    assert_eq!(old, v1);
    let list = s
        .ok(Method::GET, &format!("/v1/prompt?project_id={p}"), None)
        .await;
    assert_eq!(list["objects"].as_array().unwrap().len(), 1);
    assert_eq!(list["objects"][0], v2, "lists show the latest version");

    // Environments.
    let prod = s
        .ok(
            Method::POST,
            "/v1/environment",
            Some(json!({"slug": "production"})),
        )
        .await;
    assert_eq!(prod["name"], "production");
    s.ok(
        Method::POST,
        "/v1/environment",
        Some(json!({"slug": "staging", "name": "Staging"})),
    )
    .await;
    let envs = s.ok(Method::GET, "/v1/environment", None).await;
    assert_eq!(envs["objects"].as_array().unwrap().len(), 2);

    let server = &s;
    let assign = |slug: &'static str, version: Option<String>| {
        let body = version.map(|v| json!({"version": v}));
        let path = format!("/v1/prompt/{id}/environment/{slug}");
        async move { server.call(Method::PUT, &path, body).await }
    };
    let (status, a) = assign("production", Some(version1.clone())).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["assignment"]["version"], version1.as_str());
    assert_eq!(a["event"]["action"], "assigned");
    assert_eq!(a["event"]["previous_version"], Value::Null);
    assert_eq!(a["event"]["prompt_slug"], "support-bot");
    let in_prod = s
        .ok(
            Method::GET,
            &format!("/v1/prompt/{id}?environment=production"),
            None,
        )
        .await;
    assert_eq!(in_prod, v1);

    let (_, again) = assign("production", Some(version1.clone())).await;
    assert_eq!(again["event"], Value::Null, "no change, no event");
    let (_, moved) = assign("production", None).await;
    assert_eq!(
        moved["event"]["version"],
        version2.as_str(),
        "default is the latest version"
    );
    assert_eq!(moved["event"]["previous_version"], version1.as_str());
    assign("staging", Some(version2.clone())).await;
    let (status, body) = assign("nope", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = assign("production", Some("999999".into())).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = assign("production", Some("abc".into())).await;
    assert_eq!(
        (status, body["error"]["path"].clone()),
        (400, json!("version"))
    );

    let removed = s
        .ok(
            Method::DELETE,
            &format!("/v1/prompt/{id}/environment/staging"),
            None,
        )
        .await;
    assert_eq!(removed["action"], "removed");
    assert_eq!(removed["previous_version"], version2.as_str());
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/prompt/{id}/environment/staging"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let assigned = s
        .ok(Method::GET, &format!("/v1/prompt/{id}/environment"), None)
        .await;
    assert_eq!(assigned["objects"].as_array().unwrap().len(), 1);

    // Deleting the environment records a removal for the prompt it pointed at.
    s.ok(
        Method::DELETE,
        &format!("/v1/environment/{}", prod["id"].as_str().unwrap()),
        None,
    )
    .await;
    let history = s
        .ok(
            Method::GET,
            &format!("/v1/environment_event?project_id={p}"),
            None,
        )
        .await;
    let actions: Vec<(String, String)> = history["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["environment_slug"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("production", "assigned"),
        ("production", "assigned"),
        ("staging", "assigned"),
        ("staging", "removed"),
        ("production", "removed"),
    ];
    assert_eq!(
        actions,
        expected.map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let seqs: Vec<i64> = history["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["_xact_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "commit order: {seqs:?}"
    );
    let after = s
        .ok(
            Method::GET,
            &format!("/v1/environment_event?project_id={p}&after={}", seqs[2]),
            None,
        )
        .await;
    assert_eq!(after["objects"].as_array().unwrap().len(), 2);

    // The same five events were published to subscribers, in order.
    let mut published = Vec::new();
    while published.len() < 5 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(StoreEvent::Environment(e))) => published.push(e.xact_id),
            Ok(Ok(_)) => {}
            other => panic!("no event: {other:?}"),
        }
    }
    assert_eq!(published, seqs);

    // Deleting the prompt leaves its history.
    s.ok(Method::DELETE, &format!("/v1/prompt/{id}"), None)
        .await;
    assert_eq!(s.get(&format!("/v1/prompt/{id}")).await.0, 404);
    let history = s.ok(Method::GET, "/v1/environment_event", None).await;
    assert_eq!(history["objects"].as_array().unwrap().len(), 5);
}
