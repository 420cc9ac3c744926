//! The webhook destination: POSTs the alert's JSON payload to a URL.
//!
//! Signed per the Standard Webhooks spec when a secret is configured:
//! `webhook-id` is the alert's event id (stable across retries, so receivers
//! can deduplicate), `webhook-timestamp` the attempt's Unix time in seconds,
//! and `webhook-signature` is `v1,` followed by the base64 HMAC-SHA256 of
//! `"{id}.{timestamp}.{body}"`, keyed with the base64-decoded part of a
//! `whsec_…` secret. During a secret rotation the config holds the new and
//! the old secrets (`secrets`, besides or instead of `secret`) and the
//! header carries one signature per secret, space-separated, so receivers
//! verify with whichever they know. 2xx is success; 408, 429, 5xx and
//! transport failures are retryable; anything else is final.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use herald_plugin::alert::{Alert, AlertDestination, Delivery};
use herald_plugin::http::{Request, host_of};
use herald_plugin::{ConfigError, Plugin, PluginError, PluginInfo, log};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The webhook's config (the automation's `action` minus `type`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to POST.
    url: String,
    /// Standard Webhooks secret, `whsec_` + base64. Optional: without it
    /// the request carries `webhook-id` and `webhook-timestamp` only.
    #[serde(default)]
    secret: Option<String>,
    /// More active secrets, for a rotation: the request is signed with each
    /// (and with `secret`). At most [`MAX_SECRETS`] in all.
    #[serde(default)]
    secrets: Vec<String>,
    /// Extra headers to send (e.g. an auth token the receiver expects).
    /// Secret as a whole: reads show `[redacted]` in place of the map.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Request timeout in milliseconds (the operator's cap still applies).
    #[serde(default)]
    timeout_ms: Option<u32>,
}

/// The most secrets a request is signed with.
pub const MAX_SECRETS: usize = 5;

impl Config {
    /// Every active secret: `secret`, then `secrets`.
    fn all_secrets(&self) -> impl Iterator<Item = &String> {
        self.secret.iter().chain(&self.secrets)
    }
}

/// Headers the plugin sets itself; a config may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "user-agent",
];

struct Webhook;

impl Plugin for Webhook {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            "POSTs the alert as JSON to a URL, signed per the Standard Webhooks spec.",
        )
        .schema(serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["url"],
            "additionalProperties": false,
            "properties": {
                "url": {"type": "string", "format": "uri", "description": "http:// or https:// URL to POST to."},
                "secret": {"type": "string", "pattern": "^whsec_", "description": "Standard Webhooks signing secret (whsec_ + base64)."},
                "secrets": {"type": "array", "maxItems": 5, "items": {"type": "string", "pattern": "^whsec_"}, "description": "More active secrets during a rotation: one signature each."},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Extra request headers."},
                "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60000, "description": "Request timeout."}
            }
        }))
        .secret("/secret")
        .secret("/secrets")
        // Custom headers usually carry a receiver's credentials.
        .secret("/headers")
    }

    fn check_config(config: &Config) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        if !(config.url.starts_with("https://") || config.url.starts_with("http://")) {
            problems.push(ConfigError::new(
                "/url",
                "must be an http:// or https:// URL",
            ));
        }
        if let Some(secret) = &config.secret
            && signing_key(secret).is_none()
        {
            problems.push(ConfigError::new(
                "/secret",
                "must be `whsec_` followed by base64 (at least 16 bytes)",
            ));
        }
        for (i, secret) in config.secrets.iter().enumerate() {
            if signing_key(secret).is_none() {
                problems.push(ConfigError::new(
                    &format!("/secrets/{i}"),
                    "must be `whsec_` followed by base64 (at least 16 bytes)",
                ));
            }
        }
        if config.all_secrets().count() > MAX_SECRETS {
            problems.push(ConfigError::new(
                "/secrets",
                format!("at most {MAX_SECRETS} secrets in all"),
            ));
        }
        for name in config.headers.keys() {
            let pointer = format!("/headers/{}", name.replace('~', "~0").replace('/', "~1"));
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                problems.push(ConfigError::new(&pointer, "is not a valid header name"));
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                problems.push(ConfigError::new(&pointer, "is set by the webhook itself"));
            }
        }
        if let Some(ms) = config.timeout_ms
            && !(100..=60_000).contains(&ms)
        {
            problems.push(ConfigError::new(
                "/timeout_ms",
                "must be between 100 and 60000",
            ));
        }
        problems
    }
}

impl AlertDestination for Webhook {
    fn deliver(config: Config, alert: &Alert) -> Result<Delivery, PluginError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        let body = alert.payload.as_bytes();
        let mut request = Request::post(&config.url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("herald-webhook/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", &alert.event_id)
            .header("webhook-timestamp", &timestamp);
        let mut signatures = Vec::new();
        for secret in config.all_secrets() {
            let key = signing_key(secret).ok_or_else(|| {
                PluginError::permanent("invalid config: a secret is not a whsec_ secret")
            })?;
            signatures.push(format!(
                "v1,{}",
                sign(&key, &alert.event_id, &timestamp, body)
            ));
        }
        if !signatures.is_empty() {
            request = request.header("webhook-signature", &signatures.join(" "));
        }
        for (name, value) in &config.headers {
            request = request.header(name, value);
        }
        if let Some(ms) = config.timeout_ms {
            request = request.timeout_ms(ms);
        }
        let target = host_of(&config.url);
        let response = request.body(body.to_vec()).send()?;
        log::debug(&format!("{target} answered {}", response.status));
        response.into_delivery(&target)
    }
}

/// The key bytes of a `whsec_` secret.
fn signing_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_")?;
    BASE64.decode(encoded).ok().filter(|key| key.len() >= 16)
}

/// Standard Webhooks signature: base64(HMAC-SHA256(key, "{id}.{ts}.{body}")).
fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

herald_plugin::export_alert_destination!(Webhook);
