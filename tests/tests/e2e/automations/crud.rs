//! The `/v1/project_automation` API: create (and Braintrust's idempotent
//! create by name), replace, list with every filter and pagination, get,
//! patch, delete; secrets redacted on every read and kept through a
//! read-modify-write round trip (proved by the signature still verifying);
//! export and retention configs stored; bad input rejected with the path of
//! the bad field and nothing written.

use super::{Herald, SETTINGS, log_alert, time, wait_for_requests, webhook};
use crate::harness::{Receiver, webhook_secret};
use reqwest::Method;
use serde_json::{Value, json};

/// The ids of a listing, in order.
async fn listed(h: &Herald, query: &str) -> Vec<String> {
    let page = h.get(&format!("/v1/project_automation{query}")).await;
    page["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: {page}"))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The id of an automation object.
fn id(object: &Value) -> String {
    object["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn automations_are_created_listed_changed_and_deleted() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let p1 = h.project("crud-one").await;
    let p2 = h.project("crud-two").await;

    let config = log_alert("error IS NOT NULL", 600, webhook(&receiver, "/crud"));
    let created = h
        .post(
            "/v1/project_automation",
            json!({"project_id": p1, "name": "errors", "description": "page on-call", "config": config}),
        )
        .await;
    let errors = id(&created);
    assert_eq!(created["project_id"], p1.as_str());
    assert_eq!(created["name"], "errors");
    assert_eq!(created["description"], "page on-call");
    time(&created["created"]);
    let mut redacted = config.clone();
    redacted["action"]["secret"] = json!("[redacted]");
    assert_eq!(created["config"], redacted, "the secret is redacted");
    assert_eq!(
        h.get(&format!("/v1/project_automation/{errors}")).await,
        created
    );

    // Like Braintrust, POST of an existing name returns it unmodified.
    let again = h
        .create(
            &p1,
            "errors",
            log_alert("", 5, webhook(&receiver, "/elsewhere")),
        )
        .await;
    assert_eq!(again, created);

    // PUT replaces by (project, name) and keeps the id; sending the
    // redacted secret back keeps the stored one.
    let mut read_back = created["config"].clone();
    read_back["interval_seconds"] = json!(30);
    read_back["btql_filter"] = json!("metadata.kind = 'crud'");
    let replaced = h
        .ok(
            Method::PUT,
            "/v1/project_automation",
            Some(json!({"project_id": p1, "name": "errors", "description": "page on-call", "config": read_back})),
        )
        .await;
    assert_eq!(replaced["id"], errors.as_str());
    assert_eq!(replaced["config"], read_back);
    let test = format!("/v1/project_automation/{errors}/test");
    let zero_ok = json!({"send_on_zero_matches": true});
    let result = h.post(&test, zero_ok.clone()).await;
    assert_eq!(result["sent"], true, "{result}");
    let sent = wait_for_requests(&receiver, "/crud", 1).await;
    assert!(sent[0].signature_verifies(), "PUT lost the secret");

    // PATCH changes what it is given; a config sent back with the redacted
    // secret keeps it, a new secret replaces it.
    let path = format!("/v1/project_automation/{errors}");
    let patched = h
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"name": "errors-renamed", "description": "quiet"})),
        )
        .await;
    assert_eq!(
        (&patched["name"], &patched["description"]),
        (&json!("errors-renamed"), &json!("quiet"))
    );
    assert_eq!(patched["config"], read_back);
    let mut config = patched["config"].clone();
    config["interval_seconds"] = json!(60);
    let patched = h
        .ok(Method::PATCH, &path, Some(json!({"config": config})))
        .await;
    assert_eq!(patched["config"]["interval_seconds"], 60);
    assert_eq!(patched["name"], "errors-renamed");
    h.post(&test, zero_ok.clone()).await;
    let sent = wait_for_requests(&receiver, "/crud", 2).await;
    assert!(sent[1].signature_verifies(), "PATCH lost the secret");
    config["action"]["secret"] = json!("whsec_YW5vdGhlci1rZXktYW5vdGhlci1rZXktYW5vdGhlciE=");
    h.ok(Method::PATCH, &path, Some(json!({"config": config})))
        .await;
    h.post(&test, zero_ok).await;
    let sent = wait_for_requests(&receiver, "/crud", 3).await;
    assert!(
        !sent[2].signature_verifies(),
        "a new secret signs from now on"
    );

    let history = h.runs(&errors).await;
    assert_eq!(history.len(), 3, "one test run per test: {history:?}");
    assert!(history.iter().all(|r| r["trigger"] == "test"));
    assert!(
        !format!("{history:?}").contains(&webhook_secret()),
        "no secret in run history"
    );

    let body = json!({"project_id": p1, "name": "errors-renamed", "config": config});
    let kept = h
        .ok(Method::PUT, "/v1/project_automation", Some(body))
        .await;
    assert_eq!(kept["id"], errors.as_str());
    assert_eq!(h.runs(&errors).await, history, "PUT keeps the run history");

    // Other event types are stored as given.
    let env = h
        .create(
            &p1,
            "env",
            json!({"event_type": "environment_update", "environment_filter": ["production"],
                   "action": {"type": "webhook", "url": "https://hooks.example.com/env"}}),
        )
        .await;
    let export_config = json!({
        "event_type": "btql_export", "status": "active", "export_definition": {"type": "log_spans"},
        "export_path": "s3://bucket/prefix", "format": "jsonl", "interval_seconds": 3600,
        "batch_size": 1000
    });
    let export = h.create(&p1, "export", export_config.clone()).await;
    assert_eq!(export["config"], export_config);
    let retention_config = json!({"event_type": "retention", "status": "active", "object_type": "project_logs",
               "retention_days": 30});
    let retention = h.create(&p2, "retention", retention_config.clone()).await;
    assert_eq!(retention["config"], retention_config);
    let status = h.status(&id(&export)).await;
    assert_eq!(status["state"], "active", "{status}");
    let (env, export, retention) = (id(&env), id(&export), id(&retention));

    // Listing: newest first, filtered, paginated.
    let all = [
        retention.clone(),
        export.clone(),
        env.clone(),
        errors.clone(),
    ];
    assert_eq!(listed(&h, "").await, all);
    assert_eq!(listed(&h, &format!("?project_id={p1}")).await, all[1..]);
    assert_eq!(listed(&h, "?project_automation_name=env").await, all[2..3]);
    let name_elsewhere = format!("?project_id={p2}&project_automation_name=env");
    assert!(listed(&h, &name_elsewhere).await.is_empty());
    let two = [retention.clone(), env.clone()];
    assert_eq!(listed(&h, &format!("?ids={env},{retention}")).await, two);
    assert_eq!(
        listed(&h, &format!("?ids={env}&ids={retention}")).await,
        two
    );
    assert_eq!(listed(&h, "?limit=2").await, all[..2]);
    let page2 = format!("?limit=2&starting_after={export}");
    assert_eq!(listed(&h, &page2).await, all[2..]);
    assert_eq!(listed(&h, &format!("?ending_before={env}")).await, all[..2]);

    // Delete returns the object and takes its history with it.
    let deleted = h.ok(Method::DELETE, &path, None).await;
    assert_eq!(deleted["id"], errors.as_str());
    assert_eq!(deleted["config"]["action"]["secret"], "[redacted]");
    for gone in [
        path.clone(),
        format!("{path}/runs"),
        format!("{path}/status"),
    ] {
        let (status, body) = h.call(Method::GET, &gone, None).await;
        assert_eq!(status, 404, "{gone}: {body}");
    }
    assert_eq!(listed(&h, "").await, all[..3]);

    // Without the key nothing answers.
    let response = reqwest::get(format!("{}/v1/project_automation", h.daemon.url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(
        !h.daemon.logs().contains(&webhook_secret()),
        "secrets stay out of logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_with_the_path_of_the_field() {
    let h = Herald::start(SETTINGS).await;
    let p = h.project("validation").await;
    let url = "https://hooks.example.com/x";
    let action = json!({"type": "webhook", "url": url});
    let cases = [
        (log_alert("", 0, action.clone()), "config.interval_seconds"),
        (
            log_alert("", 2_592_001, action.clone()),
            "config.interval_seconds",
        ),
        (
            log_alert("metadata.env = ", 60, action.clone()),
            "config.btql_filter",
        ),
        (
            log_alert("nosuchfield = 1", 60, action.clone()),
            "config.btql_filter",
        ),
        (
            log_alert("", 60, json!({"type": "webhook", "url": "ftp://x"})),
            "config.action.url",
        ),
        (
            log_alert("", 60, json!({"type": "webhook"})),
            "config.action.url",
        ),
        (
            log_alert(
                "",
                60,
                json!({"type": "webhook", "url": url, "headers": {"webhook-id": "x"}}),
            ),
            "config.action.headers.webhook-id",
        ),
        (
            log_alert("", 60, json!({"type": "carrier-pigeon", "url": url})),
            "config.action.type",
        ),
        (
            json!({"event_type": "retention", "object_type": "project_logs", "retention_days": -1}),
            "config.retention_days",
        ),
        (
            json!({"event_type": "retention", "status": "stopped", "object_type": "project_logs",
                   "retention_days": 1}),
            "config.status",
        ),
        (
            json!({"event_type": "logs", "status": true, "interval_seconds": 60, "action": action}),
            "config.status",
        ),
    ];
    for (config, expected) in &cases {
        let body = json!({"project_id": p, "name": "bad", "config": config});
        for method in [Method::POST, Method::PUT] {
            let (status, answer) = h
                .call(method.clone(), "/v1/project_automation", Some(body.clone()))
                .await;
            assert_eq!(status, 400, "{method} {config}: {answer}");
            assert_eq!(
                answer["error"]["path"], *expected,
                "{method} {config}: {answer}"
            );
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{answer}"
            );
        }
    }
    let (status, answer) = h
        .call(
            Method::POST,
            "/v1/project_automation",
            Some(json!({"project_id": p, "name": "bad", "config": {"event_type": "sometimes"}})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let path = answer["error"]["path"].as_str().unwrap_or_default();
    assert!(path.starts_with("config"), "{answer}");

    let (status, text) = h
        .send_raw(Method::POST, "/v1/project_automation", r#"{"project_id": "#)
        .await;
    assert_eq!(status, 400, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("errors are JSON");
    assert!(answer["error"]["message"].is_string(), "{answer}");
    assert!(
        listed(&h, "").await.is_empty(),
        "nothing is written on error"
    );

    // A bad PATCH leaves the automation as it was.
    let good = h
        .create(&p, "good", log_alert("", 60, action.clone()))
        .await;
    let path = format!("/v1/project_automation/{}", id(&good));
    let (status, answer) = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({"config": log_alert("", 0, action)})),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["path"]),
        (400, &json!("config.interval_seconds")),
        "{answer}"
    );
    assert_eq!(h.get(&path).await, good);
    let (status, _) = h
        .call(
            Method::GET,
            "/v1/project_automation/00000000-0000-0000-0000-000000000000",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_paused_keeps_an_automation_from_running_until_it_is_set_active() {
    let receiver = Receiver::start().await;
    let h = Herald::start(SETTINGS).await;
    let p = h.project("status").await;
    let mut paused_config = log_alert("", 1, webhook(&receiver, "/paused"));
    paused_config["status"] = json!("paused");
    let paused = h.create(&p, "paused", paused_config.clone()).await;
    let paused_id = id(&paused);
    assert_eq!(paused["config"]["status"], "paused", "{paused}");
    let state = h.status(&paused_id).await;
    assert_eq!(state["state"], "paused", "{state}");
    assert!(
        state["paused_reason"]
            .as_str()
            .is_some_and(|r| r.contains("status: paused")),
        "{state}"
    );
    // An active twin watching the same spans shows when a span has been
    // seen; the paused one has then sent nothing and run nothing.
    h.create(
        &p,
        "active",
        log_alert("", 1, webhook(&receiver, "/active")),
    )
    .await;
    h.insert(&p, json!([{"input": "first"}])).await;
    wait_for_requests(&receiver, "/active", 1).await;
    let (code, refused) = h
        .call(
            Method::POST,
            &format!("/v1/project_automation/{paused_id}/run"),
            None,
        )
        .await;
    assert_eq!(code, 409, "run once refuses a paused automation: {refused}");
    assert!(receiver.requests_to("/paused").is_empty());
    assert!(h.runs(&paused_id).await.is_empty());

    // Setting it active resumes it: the span that arrived while it was
    // paused is counted into its first notification, with the next one.
    let mut active_config = paused["config"].clone();
    active_config["status"] = json!("active");
    let path = format!("/v1/project_automation/{paused_id}");
    let patched = h
        .ok(Method::PATCH, &path, Some(json!({"config": active_config})))
        .await;
    assert_eq!(patched["config"]["status"], "active", "{patched}");
    assert_eq!(h.status(&paused_id).await["state"], "active");
    h.insert(&p, json!([{"input": "second"}])).await;
    let sent = wait_for_requests(&receiver, "/paused", 1).await;
    assert!(sent[0].signature_verifies());

    // A config written without `status` keeps the state; PUT with
    // `paused` pauses again.
    let mut unstated = patched["config"].clone();
    unstated.as_object_mut().unwrap().remove("status");
    unstated["interval_seconds"] = json!(2);
    let kept = h
        .ok(Method::PATCH, &path, Some(json!({"config": unstated})))
        .await;
    assert_eq!(kept["config"]["status"], "active", "{kept}");
    let mut again = kept["config"].clone();
    again["status"] = json!("paused");
    let replaced = h
        .ok(
            Method::PUT,
            "/v1/project_automation",
            Some(json!({"project_id": p, "name": "paused", "config": again})),
        )
        .await;
    assert_eq!(replaced["config"]["status"], "paused", "{replaced}");
    assert_eq!(h.get(&path).await["config"]["status"], "paused");
    // `…/resume` clears the same pause.
    h.ok(Method::POST, &format!("{path}/resume"), None).await;
    assert_eq!(h.get(&path).await["config"]["status"], "active");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_braintrust_config_shape_is_accepted_as_its_sdk_writes_it() {
    let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with_env(
        SETTINGS,
        None,
        data,
        &[("HERALD_SLACK_WORKSPACES", "T0SHAPES=xoxb-shapes-token")],
    )
    .await;
    let p = h.project("shapes").await;
    h.post(
        "/v1/env_var",
        json!({"object_type": "project", "object_id": p, "name": "PD_KEY",
               "value": "R0UT1NGKEY0123456789abcdefABCDEF"}),
    )
    .await;
    // The actions of Braintrust's Python SDK types (`ProjectAutomationConfigAction*`),
    // with the `formatting_prompt: null` they carry when unset.
    let actions = [
        json!({"type": "webhook", "url": "https://hooks.example.com/x", "formatting_prompt": null}),
        json!({"type": "slack", "workspace_id": "T0SHAPES", "channel": "C0123",
               "message_template": "{{details.message}}", "formatting_prompt": null}),
        json!({"type": "pagerduty", "routing_key_secret_name": "PD_KEY", "severity": "critical",
               "formatting_prompt": null}),
    ];
    let mut configs = Vec::new();
    for action in &actions {
        configs.push(json!({"event_type": "logs", "status": "active",
            "btql_filter": "error IS NOT NULL", "interval_seconds": 600.0, "action": action}));
        configs.push(
            json!({"event_type": "environment_update", "status": "paused",
            "environment_filter": ["production"], "action": action}),
        );
    }
    configs.push(json!({"event_type": "btql_export", "status": "active",
        "export_definition": {"type": "log_traces"}, "export_path": "s3://bucket/prefix",
        "scope": {"type": "span"},
        "format": "parquet", "interval_seconds": 3600.0, "batch_size": 1000.0,
        "credentials": {"type": "aws_iam", "role_arn": "arn:aws:iam::123456789012:role/herald",
                        "external_id": "ext-123"}}));
    configs.push(
        json!({"event_type": "retention", "object_type": "project_logs",
        "retention_days": 30}),
    );
    for (i, config) in configs.iter().enumerate() {
        let body = json!({"project_id": p, "name": format!("shape-{i}"), "config": config});
        let (status, answer) = h
            .call(Method::POST, "/v1/project_automation", Some(body))
            .await;
        assert_eq!(status, 200, "{config}: {answer}");
        let shown = &answer["config"];
        assert_eq!(shown["event_type"], config["event_type"]);
        let expected_status = config["status"].as_str().unwrap_or("active");
        assert_eq!(shown["status"], expected_status, "{answer}");
        if let Some(action) = config.get("action") {
            assert_eq!(shown["action"]["type"], action["type"]);
            assert!(shown["action"].get("formatting_prompt").is_none());
        }
        if let Some(seconds) = config.get("interval_seconds") {
            assert_eq!(shown["interval_seconds"].as_f64(), seconds.as_f64());
        }
    }

    // What needs Braintrust's agent, or is not built yet, is refused at its field.
    let refused = [
        (
            json!({"event_type": "logs", "btql_filter": "", "interval_seconds": 60,
                   "action": {"type": "webhook", "url": "https://hooks.example.com/x",
                              "formatting_prompt": "Summarize for on-call"}}),
            "config.action.formatting_prompt",
            "Loop",
        ),
        (
            json!({"event_type": "btql_export", "export_definition": {"type": "log_spans"},
                   "export_path": "s3://bucket/p", "format": "jsonl", "interval_seconds": 60,
                   "scope": {"type": "trace", "idle_seconds": 30}}),
            "config.scope.type",
            "not supported",
        ),
        (
            json!({"event_type": "logs", "btql_filter": "", "interval_seconds": 0.5,
                   "action": {"type": "webhook", "url": "https://hooks.example.com/x"}}),
            "config.interval_seconds",
            "whole number",
        ),
    ];
    for (config, path, fragment) in refused {
        let body = json!({"project_id": p, "name": "refused", "config": config});
        let (status, answer) = h
            .call(Method::POST, "/v1/project_automation", Some(body))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["path"], path, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{message}");
    }
}
