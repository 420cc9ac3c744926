//! Ingest from real instrumentation, end to end against the real daemon:
//!
//! * [`otlp`]: the OpenTelemetry Python SDK's exporters over HTTP/protobuf
//!   (gzip), HTTP/JSON and gRPC, each span checked field by field against
//!   the mapping table, a log alert firing on an OTLP span, and bad input
//!   (malformed bodies, wrong types, unknown projects, oversized batches);
//! * [`sdk`]: Braintrust's own Python and TypeScript SDKs, unmodified:
//!   nested traces, spans split across flushes, `Eval` experiments and
//!   datasets, and a log alert on an SDK span.
//!
//! The client SDKs are installed from PyPI and npm by
//! `tests/clients/setup.sh`, once, into the target directory.

mod otlp;
mod sdk;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::automations::Herald;

/// The clients' install directory (`py/` venv, `node/` packages).
pub fn clients() -> &'static PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clients");
        let output = Command::new("bash")
            .arg(scripts().join("setup.sh"))
            .env("CACHE", &cache)
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "installing the client SDKs failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cache
    })
}

/// `tests/clients/`.
pub fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Runs a client program to completion and parses the JSON it prints last.
pub async fn run_client(program: &str, args: Vec<String>, env: Vec<(String, String)>) -> Value {
    let clients = clients().clone();
    let program = program.to_string();
    tokio::task::spawn_blocking(move || {
        let (binary, script) = if program.ends_with(".py") {
            (clients.join("py/bin/python"), scripts().join(&program))
        } else {
            (PathBuf::from("node"), scripts().join(&program))
        };
        let output = Command::new(&binary)
            .arg(&script)
            .args(&args)
            .env("BRAINTRUST_NODE_MODULES", clients.join("node/node_modules"))
            .envs(env)
            .output()
            .expect("the client runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{program} failed:\n{stdout}\n{stderr}"
        );
        let last = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("{program} printed no JSON ({e}):\n{stdout}\n{stderr}"))
    })
    .await
    .unwrap()
}

/// The rows of `project`'s logs (the project looked up by name), by id.
pub async fn logs_by_id(
    h: &Herald,
    project_name: &str,
) -> std::collections::HashMap<String, Value> {
    let project = project_id(h, project_name).await;
    let page = h
        .get(&format!("/v1/project_logs/{project}/fetch?limit=1000"))
        .await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["id"].as_str().unwrap().to_string(), row.clone()))
        .collect()
}

/// The id of the project named `name`.
pub async fn project_id(h: &Herald, name: &str) -> String {
    let list = h.get(&format!("/v1/project?project_name={name}")).await;
    list["objects"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no project {name}: {list}"))
        .to_string()
}
