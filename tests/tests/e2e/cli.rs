//! The `herald` process itself: `serve` answers `GET /v1/plugins` with the
//! bundled plugins, `plugins check` accepts or rejects a file with a clear
//! message, and a bad config file stops start-up with the offending key.

use crate::harness::{DAEMON_KEY, Daemon, guest, herald, wait_until};

use std::time::{Duration, Instant};

/// Starts `herald serve` over `data_dir` with no other settings.
fn serve(data_dir: &std::path::Path) -> Daemon {
    Daemon::serve(data_dir, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_lists_the_bundled_plugins() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let get_plugins = |url: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("{url}/v1/plugins"))
                .bearer_auth(DAEMON_KEY)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };

    let daemon = serve(data.path());
    let listing = get_plugins(daemon.url.clone()).await;
    let webhook = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webhook")
        .expect("bundled webhook listed");
    assert_eq!(webhook["world"], "alert-destination");
    assert_eq!(webhook["origin"]["kind"], "bundled");
    assert_eq!(
        webhook["secret_fields"],
        serde_json::json!(["/secret", "/headers"])
    );
    assert_eq!(
        webhook["config_schema"]["required"],
        serde_json::json!(["url"])
    );
    drop(daemon);

    // Restarted on a warm cache: measured, not asserted (timings flake).
    let started = Instant::now();
    let daemon = serve(data.path());
    let listing = get_plugins(daemon.url.clone()).await;
    println!(
        "warm start to first /v1/plugins answer: {:?}",
        started.elapsed()
    );
    let webhook = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webhook")
        .unwrap();
    assert_eq!(webhook["compiled_from"], "cache");

    // A plugin dropped into the running daemon's directory shows up.
    crate::harness::install(&data.path().join("plugins"), "fixture_noop", "noop.wasm");
    let url = daemon.url.clone();
    wait_until(Duration::from_secs(10), "noop in /v1/plugins", || {
        let url = url.clone();
        let get_plugins = &get_plugins;
        async move {
            let listing = get_plugins(url).await;
            listing["objects"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "noop")
        }
    })
    .await;
}

#[test]
fn plugins_check_describes_a_good_file_and_explains_a_bad_one() {
    let output = herald()
        .args(["plugins", "check"])
        .arg(guest("webhook"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["name"], "webhook");
    assert_eq!(summary["world"], "alert-destination");

    let output = herald()
        .args(["plugins", "check"])
        .arg(guest("fixture_wrong_world"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rejected: imports `herald:automation/records@0.1.0`"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("readme.wasm");
    std::fs::write(&text, "hello").unwrap();
    let output = herald()
        .args(["plugins", "check"])
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a WebAssembly file"));
}

#[test]
fn a_bad_config_file_stops_start_up_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let output = herald()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid config file") && stderr.contains("unknown field `lisen`"),
        "{stderr}"
    );
}
