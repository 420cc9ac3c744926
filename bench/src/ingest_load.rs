//! What the ingest benchmarks send (`herald-bench ingest` and its
//! `--otlp` part): the options, the API key, and the spans, built the same
//! way for every transport so their figures compare.

use serde_json::{Value, json};

/// Options of the ingest benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Spans to insert per backend.
    #[arg(long, default_value_t = 200_000)]
    pub spans: usize,
    /// Spans per insert request (100–1000 is typical for SDK batching).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// PostgreSQL database to benchmark as well (a scratch schema is
    /// created in it and dropped afterwards).
    #[arg(long, env = "HERALD_BENCH_DATABASE_URL")]
    pub postgres_url: Option<String>,
    /// Also send the spans over OTLP/HTTP and OTLP/gRPC, and measure a
    /// baseline of the same rows inserted straight into SQLite (SQLite only).
    #[arg(long)]
    pub otlp: bool,
}

impl Default for IngestArgs {
    fn default() -> Self {
        Self {
            spans: 200_000,
            batch: 500,
            concurrency: 4,
            postgres_url: std::env::var("HERALD_BENCH_DATABASE_URL").ok(),
            otlp: false,
        }
    }
}

pub(super) const KEY: &str = "bench-key";

/// One span of about 1 KB, varied by `i`.
pub(super) fn span(i: usize) -> Value {
    let models = ["gpt-4o", "gpt-4.1", "claude-3-5-sonnet", "llama-3.1-70b"];
    let root = format!("trace-{:08}", i / 8);
    json!({
        "id": format!("span-{i:010}"),
        "span_id": format!("span-{i:010}"),
        "root_span_id": root,
        "span_parents": if i.is_multiple_of(8) { json!(null) } else { json!([root]) },
        "input": {"messages": [
            {"role": "system", "content": "You are a helpful support assistant for an online store. Answer briefly and politely."},
            {"role": "user", "content": format!("Order #{i}: my parcel arrived damaged and I would like a refund or a replacement, whichever is faster. What do I do?")}
        ]},
        "output": format!("I'm sorry your order #{i} arrived damaged. I've started a replacement; it ships within two business days, and you'll get a prepaid label to return the damaged item."),
        "metadata": {"model": models[i % 4], "environment": if i.is_multiple_of(10) { "staging" } else { "production" },
                     "user_id": format!("user-{}", i % 997), "session": format!("s-{}", i / 50),
                     "prompt_version": "5f1c2a9e", "region": "eu-west-1", "app_version": "2024.05.1"},
        "scores": {"Factuality": (i % 100) as f64 / 100.0, "helpfulness": 0.8},
        "metrics": {"start": 1_714_557_600.0 + i as f64, "end": 1_714_557_601.25 + i as f64,
                    "prompt_tokens": 48 + i % 17, "completion_tokens": 41, "tokens": 89 + i % 17,
                    "estimated_cost": 0.00042},
        "tags": if i.is_multiple_of(50) { json!(["flagged"]) } else { json!([]) },
        "span_attributes": {"name": "chat-completion", "type": "llm"},
        "context": {"caller_functionname": "answer_ticket", "caller_filename": "support/bot.py", "caller_lineno": 118}
    })
}
