//! The plugin author's loop, as the authoring guide tells it: `herald
//! plugins new` in each language, build, `herald plugins test` against a
//! real receiver; and `plugins test` on the built-in export and retention
//! plugins with their samples, and on a component given the wrong sample.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::examples::run_build_script;
use crate::harness::{Receiver, guest, herald};

/// `herald plugins test FILE --config CONFIG --sample SAMPLE`: exit status
/// and the JSON report (or stderr when it failed before reporting).
fn plugins_test(file: &Path, config: &Value, sample: &str) -> (bool, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let output = herald()
        .args(["plugins", "test"])
        .arg(file)
        .arg("--config")
        .arg(&config_file)
        .args(["--sample", sample])
        .output()
        .expect("herald runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        output.status.success(),
        report,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `herald plugins new --lang LANG NAME --dir DIR`.
fn scaffold(lang: &str, name: &str, dir: &Path) {
    let output = herald()
        .args(["plugins", "new", "--lang", lang, name, "--dir"])
        .arg(dir)
        .output()
        .expect("herald runs");
    assert!(
        output.status.success(),
        "plugins new --lang {lang}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.join("README.md").is_file());
}

/// Builds a scaffolded project as its README says; returns the component.
fn build(lang: &str, name: &str, dir: &Path) -> PathBuf {
    if lang == "rust" {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
        let output = Command::new("cargo")
            .args(["build", "--release"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return target
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
    }
    let out = dir.join(format!("{name}.wasm"));
    let output = run_build_script(&dir.join("build.sh"), &out);
    assert!(
        output.status.success(),
        "{lang} build: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_destination_in_each_language_delivers_through_plugins_test() {
    let receiver = Receiver::start().await;
    receiver.respond_with(200, &[]);
    let work = tempfile::tempdir().unwrap();
    for lang in ["rust", "python", "js"] {
        let name = format!("hook-{lang}");
        let dir = work.path().join(&name);
        scaffold(lang, &name, &dir);
        let component = {
            let (lang, name, dir) = (lang.to_string(), name.clone(), dir.clone());
            tokio::task::spawn_blocking(move || build(&lang, &name, &dir))
                .await
                .unwrap()
        };
        let config =
            serde_json::json!({"url": format!("{}/{lang}", receiver.url), "token": "s3cret"});
        let (ok, report, stderr) = tokio::task::spawn_blocking({
            let component = component.clone();
            move || plugins_test(&component, &config, "alert")
        })
        .await
        .unwrap();
        assert!(ok, "{lang}: {report} {stderr}");
        assert_eq!(report["plugin"], format!("{name} 0.1.0"), "{report}");
        assert_eq!(report["sent"][0]["outcome"], "200", "{lang}: {report}");
        assert!(report["duration_ms"].as_f64().unwrap() > 0.0);
        assert!(report["peak_memory_bytes"].as_u64().unwrap() > 0);
        let got = receiver.requests_to(&format!("/{lang}"));
        assert_eq!(got.len(), 1, "{lang}: one request");
        assert_eq!(got[0].header("authorization"), Some("Bearer s3cret"));
        let body = got[0].json();
        assert!(
            body["text"].as_str().unwrap().contains("sample alert"),
            "{lang}: {body}"
        );

        // The wrong sample for the world says so.
        let (ok, _, stderr) = plugins_test(
            &component,
            &serde_json::json!({"url": "http://x"}),
            "export",
        );
        assert!(!ok);
        assert!(stderr.contains("alert-destination world"), "{stderr}");
    }
}

#[test]
fn the_built_in_export_and_retention_plugins_run_on_their_samples() {
    let (ok, report, stderr) = plugins_test(
        &guest("s3_export"),
        &serde_json::json!({"prefix": "lake"}),
        "export",
    );
    assert!(ok, "{report} {stderr}");
    let keys: Vec<&String> = report["sent"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 1, "{report}");
    assert!(keys[0].starts_with("lake/spans/date="), "{report}");

    let (ok, report, stderr) =
        plugins_test(&guest("retention"), &serde_json::json!({}), "retention");
    assert!(ok, "{report} {stderr}");
    assert_eq!(report["result"]["deleted"], 400, "{report}");
    assert_eq!(report["sent"]["remaining"], 600, "{report}");

    let (ok, _, stderr) = plugins_test(
        &guest("retention"),
        &serde_json::json!({"batch_size": 0}),
        "retention",
    );
    assert!(!ok);
    assert!(
        stderr.contains("the config is invalid") && stderr.contains("batch_size"),
        "{stderr}"
    );
}

/// A JavaScript project scaffolded by `plugins new`, with its WIT edited by
/// `edit` (as an author working from a wrong or edited contract would),
/// built; returns `herald plugins check`'s exit status and stderr.
fn check_edited_js_project(name: &str, edit: impl Fn(&Path)) -> (bool, String) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(name);
    scaffold("js", name, &dir);
    edit(&dir);
    let component = build("js", name, &dir);
    let output = herald()
        .args(["plugins", "check"])
        .arg(&component)
        .output()
        .expect("herald runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn components_built_against_another_contract_are_rejected_with_the_reason() {
    // A contract version this host does not know: every WIT file and
    // import says 0.3.0.
    let (ok, stderr) = check_edited_js_project("next-version", |dir| {
        for entry in std::fs::read_dir(dir.join("wit")).unwrap() {
            replace_in(
                &entry.unwrap().path(),
                "herald:automation@0.2.0",
                "herald:automation@0.3.0",
            );
        }
        replace_in(&dir.join("plugin.js"), "@0.2.0'", "@0.3.0'");
    });
    assert!(!ok);
    assert!(
        stderr.contains(
            "built against herald:automation@0.3.0; this host implements herald:automation@0.2.0 (and 0.1.0)"
        ),
        "{stderr}"
    );

    // A world without the `plugin` export (no describe, no validate-config).
    let (ok, stderr) = check_edited_js_project("no-describe", |dir| {
        replace_in(&dir.join("wit/worlds.wit"), "    export plugin;\n", "");
    });
    assert!(!ok);
    assert!(
        stderr.contains("does not export herald:automation/plugin@0.2.0: not a Herald plugin"),
        "{stderr}"
    );
}
