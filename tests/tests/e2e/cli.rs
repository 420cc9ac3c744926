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
        serde_json::json!(["/secret", "/secrets", "/headers"])
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

/// The data directory holds secrets: it is 0700 and the database, its WAL
/// and shared-memory files, the API key and the compile cache are 0600,
/// also when an older version left them readable.
#[cfg(unix)]
#[test]
fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let old_db = data.path().join("herald.db");
    std::fs::write(&old_db, b"").unwrap();
    std::fs::set_permissions(&old_db, std::fs::Permissions::from_mode(0o644)).unwrap();
    // `serve` returns once the daemon listens: the database is open.
    let _daemon = serve(data.path());
    assert_eq!(mode(data.path()), 0o700, "the data directory");
    for file in ["herald.db", "herald.db-wal", "herald.db-shm"] {
        assert_eq!(mode(&data.path().join(file)), 0o600, "{file}");
    }
    let mut cached = 0;
    for entry in walk(&data.path().join("cache")) {
        if entry.is_file() {
            assert_eq!(mode(&entry), 0o600, "{}", entry.display());
            cached += 1;
        }
    }
    assert!(
        cached > 0,
        "the bundled plugins were compiled into the cache"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
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
        stderr.contains("rejected: imports `herald:automation/records@0.2.0`"),
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
