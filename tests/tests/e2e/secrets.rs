//! Secrets at rest: what the daemon writes to its data directory (the
//! SQLite database, its WAL and shared-memory files) holds no secret of any
//! config in plain text; the key lives beside it (0600) or in the
//! environment; a rotation re-seals everything under the new key, after
//! which the old key is not needed; a daemon started with a key the data
//! was not sealed under stops with a message naming the key.

use crate::automations::{Herald, SETTINGS, log_alert, wait_for_requests, webhook};
use crate::harness::{Receiver, herald, wait_until, webhook_secret};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const HEADER_SECRET: &str = "hdr-token-7f3a9c2e-sealed";
const S3_SECRET: &str = "s3-secret-9d1e44b0-sealed";

/// Files under `dir` (recursively, symbolic links not followed) whose bytes
/// contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path);
            }
        }
    }
    found
}

/// Sends a test notification from automation `id` and waits for the
/// `count`th request at `/sealed`, which must carry the stored secrets.
async fn secrets_still_work(h: &Herald, receiver: &Receiver, id: &str, count: usize) {
    let test = format!("/v1/project_automation/{id}/test");
    let answer = h.post(&test, json!({"send_on_zero_matches": true})).await;
    assert_eq!(answer["sent"], true, "{answer}");
    let requests = wait_for_requests(receiver, "/sealed", count).await;
    let last = &requests[count - 1];
    assert!(last.signature_verifies(), "the webhook secret was lost");
    assert_eq!(last.header("x-api-token"), Some(HEADER_SECRET));
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn config_secrets_are_sealed_at_rest_and_survive_a_key_rotation() {
    let receiver = Receiver::start().await;
    let data = Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with(SETTINGS, None, data.clone()).await;
    let project = h.project("sealed").await;
    let mut action = webhook(&receiver, "/sealed");
    action["headers"] = json!({"X-Api-Token": HEADER_SECRET});
    let alert = h
        .create(&project, "sealed", log_alert("", 60, action))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    let creator = alert["user_id"].clone();
    assert!(
        creator
            .as_str()
            .is_some_and(|u| u.parse::<uuid::Uuid>().is_ok()),
        "the key's identity: {alert}"
    );
    h.create(
        &project,
        "export",
        json!({"event_type": "btql_export", "export_definition": {"type": "log_spans"},
               "export_path": "s3://bucket/prefix", "format": "jsonl", "interval_seconds": 3600,
               "credentials": {"type": "access_key", "access_key_id": "AKIAEXAMPLE",
                               "secret_access_key": S3_SECRET}}),
    )
    .await;
    secrets_still_work(&h, &receiver, &id, 1).await;

    let key_file = data.path().join("secret-key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    let first_key = std::fs::read_to_string(&key_file).unwrap();
    let secrets = [webhook_secret(), HEADER_SECRET.into(), S3_SECRET.into()];
    let check_files = |when: &str| {
        for secret in &secrets {
            let found = files_containing(data.path(), secret);
            assert!(
                found.is_empty(),
                "{when}: {secret} in plain text in {found:?}"
            );
        }
    };
    check_files("while running");
    drop(h);
    check_files("after a crash");

    // Rotation: the new key, the old one as previous; everything is
    // re-sealed at start.
    let new_key = leak(herald::sealing::generate_key_text());
    let old_key = leak(first_key.trim().to_owned());
    let h = Herald::start_with_env(
        SETTINGS,
        None,
        data.clone(),
        &[
            ("HERALD_SECRET_KEY", new_key),
            ("HERALD_SECRET_KEY_PREVIOUS", old_key),
        ],
    )
    .await;
    wait_until(
        Duration::from_secs(20),
        "the re-seal to be logged",
        // Two configs and the deployment's identity salt.
        || async { h.daemon.logs().contains("resealed=3") },
    )
    .await;
    secrets_still_work(&h, &receiver, &id, 2).await;
    // The same key has the same identity after a restart and a rotation
    // (its salt is re-sealed, not replaced).
    let later = h
        .create(
            &project,
            "after the rotation",
            log_alert("", 60, webhook(&receiver, "/x")),
        )
        .await;
    assert_eq!(later["user_id"], creator, "{later}");
    drop(h);

    // The new key alone opens everything.
    let h = Herald::start_with_env(
        SETTINGS,
        None,
        data.clone(),
        &[("HERALD_SECRET_KEY", new_key)],
    )
    .await;
    secrets_still_work(&h, &receiver, &id, 3).await;
    assert!(
        !h.daemon.logs().contains("resealed="),
        "nothing left to re-seal"
    );
    drop(h);
    check_files("after the rotation");

    // The old key (still in the key file) no longer opens them: the daemon
    // refuses to start, naming the key the data needs.
    let output = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("HERALD_API_KEYS", crate::harness::DAEMON_KEY)
        .env_remove("HERALD_SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open the stored secrets") && stderr.contains("sealed under key"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(new_key) && !stderr.contains(old_key),
        "no key in the message"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn env_vars_are_write_only_and_configs_deliver_with_the_secret_they_name() {
    let receiver = Receiver::start().await;
    let data = Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with(SETTINGS, None, data.clone()).await;
    let project = h.project("env-vars").await;
    let created = h
        .post(
            "/v1/env_var",
            json!({"object_type": "project", "object_id": project, "name": "HOOK_SECRET",
                   "value": webhook_secret(), "secret_type": "webhook_secret"}),
        )
        .await;
    let var_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["has_value"], true, "{created}");
    assert_eq!(created["secret_category"], "env_var");
    assert!(created.get("value").is_none(), "{created}");
    // POST of an existing name returns it unmodified (the value too).
    let again = h
        .post(
            "/v1/env_var",
            json!({"object_type": "project", "object_id": project, "name": "HOOK_SECRET",
                   "value": "something else"}),
        )
        .await;
    assert_eq!(again["id"], var_id.as_str());
    let listed = h
        .get(&format!(
            "/v1/env_var?object_type=project&object_id={project}"
        ))
        .await;
    assert_eq!(listed["objects"].as_array().unwrap().len(), 1, "{listed}");
    for answer in [&created, &again, &listed] {
        assert!(!answer.to_string().contains(&webhook_secret()));
    }

    // A config names the variable instead of holding the secret.
    let mut action = webhook(&receiver, "/sealed");
    action.as_object_mut().unwrap().remove("secret");
    action["secret_name"] = json!("HOOK_SECRET");
    action["headers"] = json!({"X-Api-Token": HEADER_SECRET});
    let alert = h
        .create(&project, "named", log_alert("", 60, action.clone()))
        .await;
    let id = alert["id"].as_str().unwrap().to_owned();
    assert_eq!(alert["config"]["action"]["secret_name"], "HOOK_SECRET");
    secrets_still_work(&h, &receiver, &id, 1).await;
    let var = h.get(&format!("/v1/env_var/{var_id}")).await;
    assert!(var["used"].is_string(), "a delivery stamps used: {var}");
    let found = files_containing(data.path(), &webhook_secret());
    assert!(found.is_empty(), "the value is sealed: {found:?}");

    // A new value takes effect at the next delivery.
    let patched = h
        .ok(
            reqwest::Method::PATCH,
            &format!("/v1/env_var/{var_id}"),
            Some(json!({"value": "whsec_c29tZS1vdGhlci1rZXktc29tZS1vdGhlci1rZXk="})),
        )
        .await;
    assert_eq!(patched["has_value"], true);
    let test = format!("/v1/project_automation/{id}/test");
    h.post(&test, json!({"send_on_zero_matches": true})).await;
    let requests = wait_for_requests(&receiver, "/sealed", 2).await;
    assert!(
        !requests[1].signature_verifies(),
        "signed with the new value"
    );

    // The organization's variables are the fallback.
    let login = h.post("/api/apikey/login", json!({})).await;
    let org = login["org_info"][0]["id"].as_str().unwrap().to_owned();
    h.post(
        "/v1/env_var",
        json!({"object_type": "organization", "object_id": org, "name": "ORG_HOOK",
               "value": webhook_secret()}),
    )
    .await;
    action["secret_name"] = json!("ORG_HOOK");
    let from_org = h
        .create(&project, "from-org", log_alert("", 60, action.clone()))
        .await;
    secrets_still_work(&h, &receiver, from_org["id"].as_str().unwrap(), 3).await;

    // Bad input: a clear 400 at the field.
    let bad_configs = [
        (json!("NO_SUCH_VAR"), None, "config.action.secret_name"),
        (json!(7), None, "config.action.secret_name"),
        (
            json!("ORG_HOOK"),
            Some(webhook_secret()),
            "config.action.secret_name",
        ),
    ];
    for (name, secret, path) in bad_configs {
        let mut bad = action.clone();
        bad["secret_name"] = name.clone();
        if let Some(secret) = secret {
            bad["secret"] = json!(secret);
        }
        let body = json!({"project_id": project, "name": "bad", "config": log_alert("", 60, bad)});
        let (code, answer) = h
            .call(reqwest::Method::POST, "/v1/project_automation", Some(body))
            .await;
        assert_eq!(code, 400, "{name}: {answer}");
        assert_eq!(answer["error"]["path"], path, "{answer}");
    }
    let bad_vars = [
        (
            json!({"object_type": "function", "object_id": org, "name": "F"}),
            "object_type",
        ),
        (
            json!({"object_type": "organization", "object_id": project, "name": "F"}),
            "object_id",
        ),
        (
            json!({"object_type": "project", "object_id": project, "name": "no spaces"}),
            "name",
        ),
        (
            json!({"object_type": "project", "object_id": project, "name": "V", "valu": "x"}),
            "",
        ),
    ];
    for (body, path) in bad_vars {
        let (code, answer) = h
            .call(reqwest::Method::POST, "/v1/env_var", Some(body.clone()))
            .await;
        assert_eq!(code, 400, "{body}: {answer}");
        if !path.is_empty() {
            assert_eq!(answer["error"]["path"], path, "{answer}");
        }
    }

    // Deleted, the variable is missing at the next delivery: it fails with
    // the reason, nothing is sent.
    h.ok(
        reqwest::Method::DELETE,
        &format!("/v1/env_var/{var_id}"),
        None,
    )
    .await;
    let answer = h.post(&test, json!({"send_on_zero_matches": true})).await;
    assert_eq!(answer["sent"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("HOOK_SECRET")),
        "{answer}"
    );
    assert_eq!(receiver.requests_to("/sealed").len(), 3);
}
