//! The example destinations in other languages, built from source here
//! (their toolchains installed from PyPI and npm into the target directory,
//! cached between runs), loaded from a plugins directory, configured
//! through the API with `action.type` set to their name, and delivering to
//! a real receiver on loopback: a Discord webhook in Python
//! (componentize-py) and PagerDuty Events v2 in JavaScript
//! (componentize-js).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use crate::automations::{Herald, log_alert, wait_for_requests};
use crate::harness::Receiver;

/// Runs a plugin project's `build.sh` into `out`, with the Python and
/// JavaScript toolchains installed once under the target directory (one
/// build at a time: two would race to install them).
pub fn run_build_script(script: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    Command::new("bash")
        .arg(script)
        .env("CACHE", target.join("example-toolchains"))
        .env("OUT", out)
        .output()
        .expect("bash runs")
}

/// Builds `plugins/examples/<dir>` with its `build.sh` into
/// `<target>/tmp/examples/<file>`, once per test run.
fn build_example(dir: &str, file: &str) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = target.join("examples").join(file);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let output = run_build_script(
        &repo.join("plugins/examples").join(dir).join("build.sh"),
        &out,
    );
    assert!(
        output.status.success(),
        "building {dir} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Both examples, built once per run (in parallel would only fight over
/// the two cores).
fn examples() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        (
            build_example("discord-python", "discord.wasm"),
            build_example("pagerduty-js", "pagerduty.wasm"),
        )
    })
}

const SETTINGS: &str = r#"
[automations]
retry_schedule_ms = [0, 200, 400]

[plugins.discord]
allowed_hosts = ["127.0.0.1"]

[plugins.pagerduty]
allowed_hosts = ["127.0.0.1"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_destinations_deliver_from_the_plugins_directory() {
    let (discord, pagerduty) = tokio::task::spawn_blocking(examples).await.unwrap().clone();
    let data = Arc::new(tempfile::tempdir().unwrap());
    let plugins = data.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&discord, plugins.join("discord.wasm")).unwrap();
    std::fs::copy(&pagerduty, plugins.join("pagerduty.wasm")).unwrap();
    let h = Herald::start_with(
        &format!(
            "plugins_dir = {:?}\n{SETTINGS}",
            plugins.display().to_string()
        ),
        None,
        data,
    )
    .await;
    let listed = h.get("/v1/plugins").await;
    let names: Vec<&str> = listed["objects"]
        .as_array()
        .expect("a list of plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"discord") && names.contains(&"pagerduty"),
        "{listed}"
    );

    let receiver = Receiver::start().await;
    let project = h.project("examples").await;

    // Discord: a real alert, ingest to delivery.
    let discord_action = json!({"type": "discord", "webhook_url": format!("{}/discord", receiver.url),
                                "username": "Herald"});
    let alert = h
        .create(
            &project,
            "errors to discord",
            log_alert("error IS NOT NULL", 3600, discord_action),
        )
        .await;
    assert_eq!(
        alert["config"]["action"]["webhook_url"], "[redacted]",
        "{alert}"
    );
    receiver.respond_with(204, &[]);
    h.insert(&project, json!([{"input": "q", "error": "boom"}]))
        .await;
    let sent = wait_for_requests(&receiver, "/discord", 1).await;
    let body: Value = sent[0].json();
    assert_eq!(body["username"], "Herald", "{body}");
    let text = body.to_string();
    assert!(
        text.contains("errors to discord"),
        "the automation is named: {body}"
    );
    let runs = h
        .wait_for_runs(
            alert["id"].as_str().unwrap(),
            "the delivery recorded",
            |runs| runs.first().is_some_and(|r| r["status"] == "succeeded"),
        )
        .await;
    assert_eq!(runs[0]["matched_rows"], 1, "{runs:?}");

    // PagerDuty: the test endpoint, a trigger with a per-automation dedup key.
    let routing_key = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey12";
    let pagerduty_action = json!({"type": "pagerduty", "routing_key": routing_key,
        "severity": "critical", "events_url": format!("{}/pagerduty", receiver.url)});
    let incident = h
        .create(
            &project,
            "page on errors",
            log_alert("error IS NOT NULL", 3600, pagerduty_action),
        )
        .await;
    let id = incident["id"].as_str().unwrap();
    receiver.respond_with_body(
        202,
        &[("content-type", "application/json")],
        r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
    );
    let outcome = h
        .post(
            &format!("/v1/project_automation/{id}/test"),
            json!({"send_on_zero_matches": true}),
        )
        .await;
    assert_eq!(outcome["status_code"], 202, "{outcome}");
    let sent = wait_for_requests(&receiver, "/pagerduty", 1).await;
    let event: Value = sent[0].json();
    assert_eq!(event["routing_key"], routing_key);
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["dedup_key"], format!("herald-{id}-test"), "{event}");
    assert_eq!(
        event["payload"]["severity"], "info",
        "a test event never pages at the configured severity: {event}"
    );

    // A bad config is refused with the plugin's own path.
    let (status, body) = h
        .call(
            reqwest::Method::POST,
            "/v1/project_automation",
            Some(json!({"project_id": project, "name": "bad", "config":
                log_alert("", 60, json!({"type": "pagerduty", "routing_key": "short"}))})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["path"], "config.action.routing_key", "{body}");
}
