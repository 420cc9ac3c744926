//! Projects, experiments and datasets: create (idempotent by name), list,
//! get, update, delete with cascade.

use reqwest::Method;
use serde_json::json;

use super::{Backend, TestServer, both_backends};

both_backends!(project_lifecycle, experiments_and_datasets_lifecycle);

async fn project_lifecycle(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s
        .ok(
            Method::POST,
            "/v1/project",
            Some(json!({"name": "alpha", "description": "first"})),
        )
        .await;
    assert_eq!(a["name"], "alpha");
    assert_eq!(a["description"], "first");
    let id = a["id"].as_str().unwrap().to_string();
    let again = s
        .ok(Method::POST, "/v1/project", Some(json!({"name": "alpha"})))
        .await;
    assert_eq!(again, a, "creating an existing name returns it unchanged");
    let b = s.project("beta").await;
    let c = s.project("gamma").await;

    let list = s.ok(Method::GET, "/v1/project", None).await;
    let names: Vec<&str> = list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gamma", "beta", "alpha"], "newest first");
    let page = s
        .ok(
            Method::GET,
            &format!("/v1/project?limit=1&starting_after={c}"),
            None,
        )
        .await;
    assert_eq!(page["objects"][0]["id"], b.as_str());
    let one = s
        .ok(Method::GET, "/v1/project?project_name=beta", None)
        .await;
    assert_eq!(one["objects"].as_array().unwrap().len(), 1);

    let got = s.ok(Method::GET, &format!("/v1/project/{id}"), None).await;
    assert_eq!(got, a);
    let renamed = s
        .ok(
            Method::PATCH,
            &format!("/v1/project/{id}"),
            Some(json!({"name": "alpha2"})),
        )
        .await;
    assert_eq!(renamed["name"], "alpha2");
    assert_eq!(renamed["description"], "first");
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/v1/project/{id}"),
            Some(json!({"name": "beta"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    // Deleting a project deletes its logs, experiments and datasets.
    s.insert_logs(&id, json!([{"input": 1}, {"input": 2}]))
        .await;
    let e = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": id, "name": "e"})),
        )
        .await;
    let d = s
        .ok(
            Method::POST,
            "/v1/dataset",
            Some(json!({"project_id": id, "name": "d"})),
        )
        .await;
    s.insert_logs(&b, json!([{"input": "other project"}])).await;
    let deleted = s
        .ok(Method::DELETE, &format!("/v1/project/{id}"), None)
        .await;
    assert_eq!(deleted["id"], id.as_str());
    for path in [
        format!("/v1/project/{id}"),
        format!("/v1/experiment/{}", e["id"].as_str().unwrap()),
        format!("/v1/dataset/{}", d["id"].as_str().unwrap()),
        format!("/v1/project_logs/{id}/fetch"),
    ] {
        assert_eq!(s.get(&path).await.0, 404, "{path}");
    }
    assert_eq!(
        s.all_logs(&b).await.len(),
        1,
        "other projects keep their rows"
    );
    let (status, _) = s
        .call(Method::DELETE, &format!("/v1/project/{id}"), None)
        .await;
    assert_eq!(status, 404);
}

async fn experiments_and_datasets_lifecycle(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("p").await;
    let q = s.project("q").await;
    let e1 = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": p, "name": "run", "metadata": {"model": "gpt-4o"}, "tags": ["nightly"]})),
        )
        .await;
    assert_eq!(e1["metadata"], json!({"model": "gpt-4o"}));
    assert_eq!(e1["tags"], json!(["nightly"]));
    let same = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": p, "name": "run"})),
        )
        .await;
    assert_eq!(same["id"], e1["id"]);
    let fresh = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": p, "name": "run", "ensure_new": true})),
        )
        .await;
    assert_ne!(fresh["id"], e1["id"]);
    assert_eq!(fresh["name"], "run-1");
    let other = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": q, "name": "run"})),
        )
        .await;
    assert_ne!(other["id"], e1["id"], "names are unique per project");

    let list = s
        .ok(Method::GET, &format!("/v1/experiment?project_id={p}"), None)
        .await;
    assert_eq!(list["objects"].as_array().unwrap().len(), 2);
    let named = s
        .ok(
            Method::GET,
            &format!("/v1/experiment?project_id={p}&experiment_name=run-1"),
            None,
        )
        .await;
    assert_eq!(named["objects"][0]["id"], fresh["id"]);
    let all = s.ok(Method::GET, "/v1/experiment", None).await;
    assert_eq!(all["objects"].as_array().unwrap().len(), 3);

    let d = s
        .ok(
            Method::POST,
            "/v1/dataset",
            Some(json!({"project_id": p, "name": "golden", "description": "gold"})),
        )
        .await;
    let d2 = s
        .ok(
            Method::POST,
            "/v1/dataset",
            Some(json!({"project_id": p, "name": "golden"})),
        )
        .await;
    assert_eq!(d, d2);
    let with_ds = s
        .ok(
            Method::POST,
            "/v1/experiment",
            Some(json!({"project_id": p, "name": "on-ds", "dataset_id": d["id"]})),
        )
        .await;
    assert_eq!(with_ds["dataset_id"], d["id"]);
    let list = s
        .ok(
            Method::GET,
            &format!("/v1/dataset?project_id={p}&dataset_name=golden"),
            None,
        )
        .await;
    assert_eq!(list["objects"][0], d);
    let got = s
        .ok(
            Method::GET,
            &format!("/v1/dataset/{}", d["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got, d);
    let deleted = s
        .ok(
            Method::DELETE,
            &format!("/v1/dataset/{}", d["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(deleted, d);
    let list = s
        .ok(Method::GET, &format!("/v1/dataset?project_id={p}"), None)
        .await;
    assert!(list["objects"].as_array().unwrap().is_empty());
}
