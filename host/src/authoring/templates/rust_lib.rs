//! {{name}}: a Herald alert destination.
//!
//! Posts `{"text": <the alert's message>, "alert": <Braintrust's payload>}`
//! to `url`, with `Authorization: Bearer <token>` when a token is set.
//! 2xx is delivered; 408, 429 and 5xx are retried by the daemon; anything
//! else fails for good. Build with `cargo build --release`, try with
//! `herald plugins test target/wasm32-wasip2/release/{{crate}}.wasm
//! --config config.json --sample alert`.

use herald_plugin::alert::{Alert, AlertDestination, Delivery};
use herald_plugin::http::Request;
use herald_plugin::{Plugin, PluginError, PluginInfo, log};
use serde::Deserialize;

/// The destination's config, as the automation's `action` holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to post.
    url: String,
    /// A bearer token, if the receiver wants one (secret).
    #[serde(default)]
    token: Option<String>,
}

struct Destination;

impl Plugin for Destination {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "{{name}}",
            env!("CARGO_PKG_VERSION"),
            "Posts each alert to a URL as JSON.",
        )
        .schema(serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "format": "uri", "description": "Where to post."},
                "token": {"type": "string", "description": "Bearer token (secret)."}
            }
        }))
        .secret("/token")
    }
}

impl AlertDestination for Destination {
    fn deliver(config: Config, alert: &Alert) -> Result<Delivery, PluginError> {
        let payload: serde_json::Value =
            serde_json::from_str(&alert.payload).unwrap_or(serde_json::Value::Null);
        let text = payload["details"]["message"]
            .as_str()
            .unwrap_or("Herald alert")
            .to_owned();
        let body = serde_json::json!({"text": text, "alert": payload});
        let mut request = Request::post(&config.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &alert.event_id)
            .body(body.to_string().into_bytes());
        if let Some(token) = &config.token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        log::info(&format!("posting alert {} to {}", alert.event_id, config.url));
        request.send()?.into_delivery(&config.url)
    }
}

herald_plugin::export_alert_destination!(Destination);
