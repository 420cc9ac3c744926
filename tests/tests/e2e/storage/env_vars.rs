//! `/v1/env_var` on both backends: create (idempotent by name), replace,
//! list with each filter, get, patch (rename, new value, value removed),
//! delete, a project's variables deleted with it; values never answered,
//! and read back through the store as a delivery does (the project's own
//! first, then the organization's), sealed in between.

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::{Backend, TestServer, both_backends};

both_backends!(env_var_lifecycle);

async fn env_var_lifecycle(backend: Backend) {
    let s = TestServer::start(backend).await;
    let project = s.project("vars").await;
    let project_id: Uuid = project.parse().unwrap();
    let login = s.ok(Method::POST, "/api/apikey/login", None).await;
    let org = login["org_info"][0]["id"].as_str().unwrap().to_owned();
    let org_id: Uuid = org.parse().unwrap();

    let mine = s
        .ok(
            Method::POST,
            "/v1/env_var",
            Some(
                json!({"object_type": "project", "object_id": project, "name": "TOKEN",
                        "value": "project-value", "metadata": {"team": "ml"}}),
            ),
        )
        .await;
    let id = mine["id"].as_str().unwrap().to_owned();
    assert_eq!(mine["object_type"], "project");
    assert_eq!(mine["metadata"]["team"], "ml");
    let org_var = s
        .ok(
            Method::PUT,
            "/v1/env_var",
            Some(
                json!({"object_type": "organization", "object_id": org, "name": "TOKEN",
                        "value": "org-value"}),
            ),
        )
        .await;
    assert_eq!(org_var["object_type"], "organization");
    let value = |project: Uuid| {
        let store = s.store.clone();
        async move { store.env_var_value(project, org_id, "TOKEN").await.unwrap() }
    };
    assert_eq!(value(project_id).await.as_deref(), Some("project-value"));
    assert_eq!(
        value(Uuid::new_v4()).await.as_deref(),
        Some("org-value"),
        "another project sees the organization's"
    );

    // PUT replaces the value; POST of the name leaves it.
    let replaced = s
        .ok(
            Method::PUT,
            "/v1/env_var",
            Some(
                json!({"object_type": "project", "object_id": project, "name": "TOKEN",
                        "value": "second"}),
            ),
        )
        .await;
    assert_eq!(replaced["id"], id.as_str());
    s.ok(
        Method::POST,
        "/v1/env_var",
        Some(
            json!({"object_type": "project", "object_id": project, "name": "TOKEN",
                    "value": "ignored"}),
        ),
    )
    .await;
    assert_eq!(value(project_id).await.as_deref(), Some("second"));

    // Listing and its filters.
    let count = |query: &str| {
        let path = format!("/v1/env_var{query}");
        let s = &s;
        async move {
            let page = s.ok(Method::GET, &path, None).await;
            assert!(!page.to_string().contains("second"), "no value in {page}");
            page["objects"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("").await, 2);
    assert_eq!(count("?object_type=organization").await, 1);
    assert_eq!(count(&format!("?object_id={project}")).await, 1);
    assert_eq!(count("?env_var_name=TOKEN&limit=1").await, 1);
    assert_eq!(count(&format!("?ids={id}")).await, 1);
    assert_eq!(count("?env_var_name=OTHER").await, 0);

    // PATCH: rename, remove the value.
    let path = format!("/v1/env_var/{id}");
    let renamed = s
        .ok(Method::PATCH, &path, Some(json!({"name": "RENAMED"})))
        .await;
    assert_eq!(renamed["name"], "RENAMED");
    assert_eq!(renamed["has_value"], true);
    assert_eq!(
        value(project_id).await.as_deref(),
        Some("org-value"),
        "the project's TOKEN is gone, so the organization's is used"
    );
    let emptied = s
        .ok(Method::PATCH, &path, Some(json!({"value": null})))
        .await;
    assert_eq!(emptied["has_value"], false, "{emptied}");
    let (code, answer) = s
        .call(Method::GET, "/v1/env_var?object_type=function", None)
        .await;
    assert_eq!(code, 400, "{answer}");

    // A project's variables go with it.
    s.ok(Method::DELETE, &format!("/v1/project/{project}"), None)
        .await;
    let (code, _) = s.call(Method::GET, &path, None).await;
    assert_eq!(code, 404);
    let deleted = s
        .ok(
            Method::DELETE,
            &format!("/v1/env_var/{}", org_var["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(deleted["name"], "TOKEN");
    assert_eq!(count("").await, 0);
}
