//! Seeding the benchmark's SQLite file, in a child process, and the span
//! generators.

use std::path::Path;
use std::time::Instant;

use tokio::sync::mpsc;

use anyhow::{Context, bail};
use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use super::{OLD_DAYS, RetentionArgs, SEED_BATCH, round2};
use herald::store::{EventWrite, ObjectKind, ObjectRef, Store, validate_event};

/// Old and recent span counts: the old ones rounded to whole traces.
pub(super) fn split(args: &RetentionArgs) -> (usize, usize) {
    let traces = args.spans.div_ceil(args.trace_spans);
    let old_traces = (traces as f64 * args.old_fraction).round() as usize;
    let old = (old_traces * args.trace_spans).min(args.spans);
    (old, args.spans - old)
}

pub(super) fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

pub(super) fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Seeded span `i`, in traces of `trace_spans`, created at `created`.
pub(crate) fn seed_span(i: usize, trace_spans: usize, created: &str) -> Value {
    let root_index = i - i % trace_spans;
    let root = format!("span-{root_index:010}");
    let models = ["gpt-4o", "gpt-4.1", "claude-3-5-sonnet", "llama-3.1-70b"];
    json!({
        "id": format!("span-{i:010}"),
        "span_id": format!("span-{i:010}"),
        "root_span_id": root,
        "span_parents": if i == root_index { json!(null) } else { json!([root]) },
        "created": created,
        "input": {"messages": [
            {"role": "system", "content": "You are a helpful support assistant for an online store. Answer briefly and politely."},
            {"role": "user", "content": format!("Order #{i}: my parcel arrived damaged and I would like a refund or a replacement, whichever is faster. What do I do?")}
        ]},
        "output": format!("I'm sorry your order #{i} arrived damaged. I've started a replacement; it ships within two business days, and you'll get a prepaid label to return the damaged item."),
        "metadata": {"model": models[i % 4], "environment": if i.is_multiple_of(10) { "staging" } else { "production" },
                     "user_id": format!("user-{}", i % 997), "session": format!("s-{}", i / 50),
                     "prompt_version": "5f1c2a9e", "region": "eu-west-1", "app_version": "2024.05.1"},
        "scores": {"Factuality": (i % 100) as f64 / 100.0, "helpfulness": 0.8},
        "metrics": {"prompt_tokens": 48 + i % 17, "completion_tokens": 41, "tokens": 89 + i % 17,
                    "estimated_cost": 0.00042},
        "span_attributes": {"name": if i == root_index { "answer-ticket" } else { "chat-completion" }, "type": "llm"},
    })
}

/// A live span ingested during the run (its own root, `created` now).
pub(super) fn live_span(n: u64) -> Value {
    json!({
        "id": format!("live-{n:010}"),
        "input": {"messages": [{"role": "user", "content": format!("Order #{n}: where is my parcel? It was due on Monday.")}]},
        "output": format!("Your order #{n} is on its way and should arrive within two business days."),
        "metadata": {"model": "gpt-4o", "user_id": format!("user-{}", n % 997)},
        "scores": {"Factuality": (n % 100) as f64 / 100.0},
        "metrics": {"prompt_tokens": 48 + n % 17, "completion_tokens": 41},
        "span_attributes": {"name": "chat-completion", "type": "llm"},
    })
}

/// Runs the seeding child process; returns its JSON line.
pub(crate) async fn seed_in_child(
    database_url: &str,
    args: &RetentionArgs,
) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("locating herald-bench")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("retention")
        .args(["--seed-into", database_url])
        .args(["--spans", &args.spans.to_string()])
        .args(["--old-fraction", &args.old_fraction.to_string()])
        .args(["--trace-spans", &args.trace_spans.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut child = command.spawn().context("starting the seeding process")?;
        let stdout = child.stdout.take().context("the seeder's stdout")?;
        let mut last = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            if !line.starts_with('{') {
                println!("  {line}");
            }
            last = line;
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("the seeding process failed ({status}); its last line: {last}");
        }
        serde_json::from_str(&last).with_context(|| format!("the seeder's last line: {last}"))
    })
    .await?
}

/// The child: seeds the database at `database_url` and returns `{"project_id", "seconds",
/// "spans_per_sec"}`.
pub(super) async fn seed(
    database_url: &str,
    args: &RetentionArgs,
    old: usize,
) -> anyhow::Result<Value> {
    let store = Store::connect(database_url).await?;
    let (project, _) = store.create_project("bench", None).await?;
    let object = ObjectRef::project_logs(project.id);
    let now = Utc::now();
    let old_base = now - TimeDelta::days(OLD_DAYS);
    let recent_base = now - TimeDelta::days(1);
    let (spans, trace_spans) = (args.spans, args.trace_spans);

    // Generate and validate on a blocking thread while the store writes.
    let (tx, mut rx) = mpsc::channel::<Vec<EventWrite>>(2);
    let generator = tokio::task::spawn_blocking(move || {
        for start in (0..spans).step_by(SEED_BATCH) {
            let end = (start + SEED_BATCH).min(spans);
            let mut writes = Vec::with_capacity(end - start);
            for i in start..end {
                // Old spans, then recent ones, each 1 ms apart; a trace shares
                // its root's time so that it is old or recent as a whole.
                let root = i - i % trace_spans;
                let at = if root < old {
                    old_base + TimeDelta::milliseconds(root as i64)
                } else {
                    recent_base + TimeDelta::milliseconds((root - old) as i64)
                };
                let created = at.to_rfc3339_opts(SecondsFormat::Millis, true);
                let write = validate_event(
                    ObjectKind::ProjectLogs,
                    seed_span(i, trace_spans, &created),
                    "event",
                )?;
                writes.push(write);
            }
            if tx.blocking_send(writes).is_err() {
                break;
            }
        }
        Ok::<_, anyhow::Error>(())
    });

    let started = Instant::now();
    let mut written = 0usize;
    let mut reported = 0usize;
    while let Some(writes) = rx.recv().await {
        written += writes.len();
        store.insert_events(object, writes).await?;
        if written - reported >= 500_000 || written == spans {
            reported = written;
            println!(
                "seeding: {written} / {spans} spans, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    generator.await??;
    let seconds = started.elapsed().as_secs_f64();
    if written != spans {
        bail!("seeded {written} spans, expected {spans}");
    }
    store.close().await;
    Ok(json!({
        "project_id": project.id.to_string(),
        "seconds": round2(seconds),
        "spans_per_sec": (spans as f64 / seconds).round(),
    }))
}
