//! `herald-bench plugins`: the per-call cost of the plugin host.
//!
//! Measures, sequentially, on one runtime:
//! * **noop**: instantiate + `deliver` of a plugin that does nothing, the
//!   bare cost of the sandbox (fresh store, pooled instance, WASI context);
//! * **webhook**: instantiate + `deliver` of the bundled webhook plugin,
//!   signing and POSTing to a receiver on loopback;
//! * **native**: the same signed POST made directly with reqwest, the
//!   baseline the webhook figure is compared with;
//! * **examples**: the destinations in other languages
//!   (`plugins/examples`: Discord in Python, PagerDuty in JavaScript), built
//!   from source by their scripts, delivering to the same receiver.

use super::Percentiles;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald::plugins::{AlertRequest, PluginRuntime, RuntimeConfig};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Knobs of the plugin benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginsArgs {
    /// Measured calls per case.
    #[arg(long, default_value_t = 5000)]
    pub iterations: usize,
    /// Unmeasured warm-up calls per case.
    #[arg(long, default_value_t = 500)]
    pub warmup: usize,
    /// Measure only the no-op case (for profiling the sandbox itself).
    #[arg(long)]
    pub noop_only: bool,
    /// Measured calls per example plugin (they cost milliseconds, not
    /// microseconds); 0 skips building and measuring them.
    #[arg(long, default_value_t = 300)]
    pub example_iterations: usize,
}

/// The example destinations: directory, file, plugin name, config (the
/// receiver's URL is `{url}`).
const EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "discord-python",
        "discord.wasm",
        "discord",
        r#"{"webhook_url": "{url}"}"#,
    ),
    (
        "pagerduty-js",
        "pagerduty.wasm",
        "pagerduty",
        r#"{"routing_key": "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey12", "events_url": "{url}"}"#,
    ),
];

/// Builds the examples into `dir` with their own scripts (toolchains are
/// installed from PyPI and npm next to them on first use).
fn build_examples(dir: &Path) -> anyhow::Result<()> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples");
    for (example, file, _, _) in EXAMPLES {
        println!("building {example} …");
        let status = std::process::Command::new("bash")
            .arg(examples.join(example).join("build.sh"))
            .env("OUT", dir.join(file))
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            anyhow::bail!("building {example} failed ({status})");
        }
    }
    Ok(())
}

const SECRET_KEY: &[u8] = b"bench-secret-key-0123456789abcdef";

/// Runs the benchmark and returns its figures.
pub async fn run(args: PluginsArgs) -> anyhow::Result<Value> {
    let receiver = start_receiver().await?;
    let plugins_dir = tempfile_dir()?;
    let noop = Path::new(herald::plugins::GUEST_ARTIFACTS_DIR).join("fixture_noop.wasm");
    std::fs::copy(&noop, plugins_dir.join("noop.wasm"))
        .map_err(|e| anyhow::anyhow!("copying {}: {e}", noop.display()))?;
    let with_examples = !args.noop_only && args.example_iterations > 0;
    if with_examples {
        build_examples(&plugins_dir)?;
    }
    let loopback = herald::plugins::PluginPolicy {
        allowed_hosts: Some(vec!["127.0.0.1".into()]),
        ..Default::default()
    };
    let runtime = PluginRuntime::start(RuntimeConfig {
        plugins_dir: Some(plugins_dir.clone()),
        allow_private_networks: true,
        policies: EXAMPLES
            .iter()
            .map(|(_, _, name, _)| (name.to_string(), loopback.clone()))
            .collect(),
        ..RuntimeConfig::default()
    })
    .await?;

    let payload = json!({
        "organization": {"id": "org_bench", "name": "Bench"},
        "project": {"id": "p", "name": "bench"},
        "details": {"is_test": false, "message": "5 logs matched", "count": 5}
    });
    let alert = AlertRequest {
        event_id: "evt_bench".into(),
        event_type: "logs".into(),
        payload: payload.clone(),
        is_test: false,
        attempt: 1,
    };
    let secret = format!("whsec_{}", BASE64.encode(SECRET_KEY));
    let webhook_config = json!({"url": format!("{receiver}/hook"), "secret": secret});

    println!(
        "herald-bench plugins: {} iterations after {} warm-up calls",
        args.iterations, args.warmup
    );
    let noop = measure(args.warmup, args.iterations, async || {
        runtime
            .deliver("noop", &json!({}), &alert)
            .await
            .result
            .map(|_| ())
    })
    .await?;
    println!("noop plugin    (instantiate + call)  {noop}");
    if args.noop_only {
        return Ok(json!({"bench": "plugins", "iterations": args.iterations, "noop": noop}));
    }

    let webhook = measure(args.warmup, args.iterations, async || {
        runtime
            .deliver("webhook", &webhook_config, &alert)
            .await
            .result
            .map(|_| ())
    })
    .await?;
    println!("webhook plugin (instantiate + POST)  {webhook}");

    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("{receiver}/hook");
    let body = payload.to_string();
    let native = measure(args.warmup, args.iterations, async || {
        native_delivery(&client, &url, &body).await
    })
    .await?;
    println!("native reqwest (same signed POST)    {native}");

    let overhead = webhook.p50_us / native.p50_us;
    println!(
        "webhook plugin / native: {overhead:.2}x at p50 ({:+.1} µs)",
        webhook.p50_us - native.p50_us
    );
    println!(
        "goal: noop p50 under 30 µs -> {}",
        if noop.p50_us < 30.0 { "met" } else { "NOT met" }
    );
    let mut examples = serde_json::Map::new();
    if with_examples {
        for (_, _, name, config) in EXAMPLES {
            let config: Value = serde_json::from_str(&config.replace("{url}", &url))?;
            let figures = measure(10, args.example_iterations, async || {
                runtime
                    .deliver(name, &config, &alert)
                    .await
                    .result
                    .map(|_| ())
            })
            .await?;
            println!(
                "{name:<14} (example, instantiate + POST) {figures}  ({:.1}x the webhook plugin at p50)",
                figures.p50_us / webhook.p50_us
            );
            examples.insert(name.to_string(), json!(figures));
        }
    }
    std::fs::remove_dir_all(&plugins_dir).ok();

    Ok(json!({
        "bench": "plugins",
        "iterations": args.iterations,
        "noop": noop,
        "webhook": webhook,
        "native": native,
        "webhook_over_native_p50": overhead,
        "noop_p50_goal_met": noop.p50_us < 30.0,
        "example_iterations": args.example_iterations,
        "examples": examples,
    }))
}

async fn measure<E: std::fmt::Display>(
    warmup: usize,
    iterations: usize,
    mut call: impl AsyncFnMut() -> Result<(), E>,
) -> anyhow::Result<Percentiles> {
    for _ in 0..warmup {
        call()
            .await
            .map_err(|e| anyhow::anyhow!("warm-up call failed: {e}"))?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        call()
            .await
            .map_err(|e| anyhow::anyhow!("call failed: {e}"))?;
        samples.push(started.elapsed());
    }
    Ok(Percentiles::of(&mut samples))
}

/// The webhook plugin's work, done natively: sign and POST.
async fn native_delivery(
    client: &reqwest::Client,
    url: &str,
    body: &str,
) -> Result<(), reqwest::Error> {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET_KEY).expect("any key length");
    mac.update(format!("evt_bench.{timestamp}.{body}").as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", "evt_bench")
        .header("webhook-timestamp", &timestamp)
        .header("webhook-signature", format!("v1,{signature}"))
        .body(body.to_owned())
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    response.error_for_status()?.bytes().await?;
    Ok(())
}

/// A minimal receiver on loopback answering 200 to every request.
async fn start_receiver() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    Ok(url)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("herald-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
