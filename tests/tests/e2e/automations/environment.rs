//! Environment alerts: assigning a prompt version to an environment and
//! removing it each fire every `environment_update` automation of the
//! prompt's project whose filter is empty, absent or names the slug, with
//! Braintrust's payload; a filter naming another slug, and a prompt of
//! another project, fire nothing.

use super::{Herald, SETTINGS, wait_for_requests, webhook};
use crate::harness::{Receiver, Recorded};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates prompt `slug` in `project`; returns its id and version.
async fn prompt(h: &Herald, project: &str, slug: &str) -> (String, String) {
    let prompt = h
        .post(
            "/v1/prompt",
            json!({"project_id": project, "slug": slug, "name": slug,
                   "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "system", "content": "Summarize."}]}}}),
        )
        .await;
    (
        prompt["id"].as_str().unwrap().to_owned(),
        prompt["_xact_id"].as_str().unwrap().to_owned(),
    )
}

/// An `environment_update` config (`filter: None` leaves the field out).
fn environment_alert(filter: Option<&[&str]>, action: Value) -> Value {
    let mut config = json!({"event_type": "environment_update", "action": action});
    if let Some(slugs) = filter {
        config["environment_filter"] = json!(slugs);
    }
    config
}

/// The `details` of each request.
fn details(requests: &[Recorded]) -> Vec<Value> {
    requests
        .iter()
        .map(|r| r.json()["details"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_changes_alert_the_matching_automations() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let project = h.project("prompts").await;
    let other_project = h.project("elsewhere").await;
    for slug in ["production", "staging"] {
        h.post("/v1/environment", json!({ "slug": slug })).await;
    }
    let (prompt_id, version) = prompt(&h, &project, "summarize-v2").await;
    let (other_prompt, _) = prompt(&h, &other_project, "unrelated").await;

    let mut ids = Vec::new();
    for (name, filter) in [
        ("all", Some(&[][..])),
        ("absent", None),
        ("prod", Some(&["production"][..])),
        ("staging", Some(&["staging"][..])),
    ] {
        let created = h
            .post(
                "/v1/project_automation",
                json!({"project_id": project, "name": name, "description": format!("{name} envs"),
                       "config": environment_alert(filter, webhook(&receiver, &format!("/{name}")))}),
            )
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let other_path = format!("/v1/prompt/{other_prompt}/environment/production");
    h.ok(Method::PUT, &other_path, Some(json!({}))).await;

    // Assign production.
    let assign = format!("/v1/prompt/{prompt_id}/environment/production");
    h.ok(Method::PUT, &assign, Some(json!({ "version": version })))
        .await;
    let request = wait_for_requests(&receiver, "/prod", 1).await.remove(0);
    assert!(request.signature_verifies());
    let payload = request.json();
    assert_eq!(
        payload["project"],
        json!({"id": project, "name": "prompts"})
    );
    assert!(payload["organization"]["name"].is_string(), "{payload}");
    let automation = &payload["automation"];
    assert_eq!(automation["id"], ids[2].as_str());
    assert_eq!(automation["name"], "prod");
    assert_eq!(automation["description"], "prod envs");
    assert_eq!(automation["event_type"], "environment_update");
    let url = automation["url"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("/v1/project_automation/{}", ids[2])),
        "{url}"
    );
    let update = &payload["details"];
    assert_eq!(update["is_test"], false);
    assert_eq!(update["environment"], json!({"slug": "production"}));
    assert_eq!(
        update["prompt"],
        json!({"id": prompt_id, "slug": "summarize-v2"})
    );
    assert_eq!(update["new_version"], version.as_str());
    assert_eq!(update["action"], "update");
    let message = update["message"].as_str().unwrap();
    assert!(
        message.contains("summarize-v2") && message.contains("production"),
        "{message}"
    );

    let runs = h
        .wait_for_runs(&ids[2], "the environment run to succeed", |r| {
            r.len() == 1 && r[0]["status"] == "succeeded"
        })
        .await;
    assert_eq!(runs[0]["trigger"], "event");
    assert_eq!(
        runs[0]["details"]["event_id"],
        request.header("webhook-id").unwrap()
    );

    // Remove it.
    h.ok(Method::DELETE, &assign, None).await;
    let removal = details(&wait_for_requests(&receiver, "/prod", 2).await).remove(1);
    assert_eq!(removal["action"], "delete", "{removal}");
    assert_eq!(removal["new_version"], Value::Null);
    assert_eq!(removal["environment"]["slug"], "production");
    assert_eq!(removal["prompt"]["id"], prompt_id.as_str());

    // Staging fires only the automations that take every slug or staging.
    let staging = format!("/v1/prompt/{prompt_id}/environment/staging");
    h.ok(Method::PUT, &staging, Some(json!({ "version": version })))
        .await;
    let staged = details(&wait_for_requests(&receiver, "/staging", 1).await);
    let expected = [
        ("production", "update"),
        ("production", "delete"),
        ("staging", "update"),
    ];
    for prefix in ["/all", "/absent"] {
        let seen = details(&wait_for_requests(&receiver, prefix, 3).await);
        let seen: Vec<(&str, &str)> = seen
            .iter()
            .map(|d| {
                (
                    d["environment"]["slug"].as_str().unwrap(),
                    d["action"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(seen, expected, "{prefix}");
    }
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(staged[0]["environment"]["slug"], "staging");
    assert_eq!(
        receiver.requests_to("/prod").len(),
        2,
        "the production-only alert ignores staging"
    );
    let prompts: Vec<Value> = details(&receiver.requests())
        .iter()
        .map(|d| d["prompt"]["id"].clone())
        .collect();
    assert!(
        prompts.iter().all(|p| *p == json!(prompt_id)),
        "another project's prompt fired: {prompts:?}"
    );
}
