//! The Slack destination: a Block Kit message per alert, sent to an
//! incoming-webhook URL or with `chat.postMessage` (bot token + channel id).
//!
//! Config (the automation's `action` minus `type`), exactly one of:
//! * `{"webhook_url": "https://hooks.slack.com/services/…"}`
//! * `{"bot_token": "xoxb-…", "channel": "C0123456789"}`
//!
//! plus an optional `message_template` (see [`template`]) and, for Slack
//! Enterprise Grid proxies or tests, `api_base_url` (default
//! `https://slack.com/api`). The URL and the token are secret.
//!
//! Slack's failures are mapped to clear messages and the right retry
//! decision: `channel_not_found`, `not_in_channel`, `invalid_auth` and
//! friends are final (retrying cannot fix them); `ratelimited`/429 honour
//! `Retry-After`; 5xx and Slack's own `internal_error` are retryable.

mod blocks;
mod template;

use herald_plugin::alert::{Alert, AlertDestination, Delivery};
use herald_plugin::http::{Request, Response, retryable_status};
use herald_plugin::{ConfigError, Plugin, PluginError, PluginInfo};
use serde::Deserialize;

/// The Slack destination's config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Incoming-webhook URL (secret).
    #[serde(default)]
    webhook_url: Option<String>,
    /// Bot token, `xoxb-…` (secret); needs `channel`.
    #[serde(default)]
    bot_token: Option<String>,
    /// Channel id (`C…`, `G…`) or name for `chat.postMessage`.
    #[serde(default)]
    channel: Option<String>,
    /// Replaces the message text; `{{path}}` placeholders read the payload.
    #[serde(default)]
    message_template: Option<String>,
    /// Base of Slack's Web API.
    #[serde(default)]
    api_base_url: Option<String>,
}

const DEFAULT_API_BASE: &str = "https://slack.com/api";

struct Slack;

impl Plugin for Slack {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "slack",
            env!("CARGO_PKG_VERSION"),
            "Posts a Block Kit message to Slack, via an incoming webhook or chat.postMessage.",
        )
        .schema(serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "oneOf": [
                {"required": ["webhook_url"], "not": {"required": ["bot_token"]}},
                {"required": ["bot_token", "channel"], "not": {"required": ["webhook_url"]}}
            ],
            "properties": {
                "webhook_url": {"type": "string", "format": "uri", "description": "Slack incoming-webhook URL."},
                "bot_token": {"type": "string", "pattern": "^xox[bp]-", "description": "Bot token with chat:write."},
                "channel": {"type": "string", "description": "Channel id (C…) for chat.postMessage."},
                "message_template": {"type": "string", "description": "Message text with {{path}} placeholders, e.g. {{details.count}}."},
                "api_base_url": {"type": "string", "format": "uri", "description": "Slack Web API base (default https://slack.com/api)."}
            }
        }))
        .secret("/webhook_url")
        .secret("/bot_token")
    }

    fn check_config(config: &Config) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        match (&config.webhook_url, &config.bot_token) {
            (Some(_), Some(_)) => problems.push(ConfigError::new(
                "/bot_token",
                "give either webhook_url or bot_token + channel, not both",
            )),
            (None, None) => problems.push(ConfigError::new(
                "",
                "give webhook_url, or bot_token and channel",
            )),
            (Some(url), None) if !is_http_url(url) => {
                problems.push(ConfigError::new("/webhook_url", "must be an https:// URL"));
            }
            (None, Some(token)) => {
                if !(token.starts_with("xoxb-") || token.starts_with("xoxp-")) {
                    problems.push(ConfigError::new(
                        "/bot_token",
                        "must be a Slack token (xoxb-… or xoxp-…)",
                    ));
                }
                if config.channel.as_deref().is_none_or(str::is_empty) {
                    problems.push(ConfigError::new("/channel", "is required with bot_token"));
                }
            }
            _ => {}
        }
        if config.webhook_url.is_some() && config.channel.is_some() {
            problems.push(ConfigError::new("/channel", "applies only with bot_token"));
        }
        if let Some(template) = &config.message_template
            && let Err(message) = template::check(template)
        {
            problems.push(ConfigError::new("/message_template", message));
        }
        if let Some(base) = &config.api_base_url
            && !is_http_url(base)
        {
            problems.push(ConfigError::new(
                "/api_base_url",
                "must be an http:// or https:// URL",
            ));
        }
        problems
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

impl AlertDestination for Slack {
    fn deliver(config: Config, alert: &Alert) -> Result<Delivery, PluginError> {
        let payload = alert.payload_json()?;
        let text = config
            .message_template
            .as_deref()
            .map(|t| template::render(t, &payload));
        let mut message = blocks::message(&payload, alert, text.as_deref());
        if let Some(token) = &config.bot_token {
            let channel = config.channel.as_deref().unwrap_or_default();
            message["channel"] = serde_json::Value::String(channel.to_owned());
            let base = config.api_base_url.as_deref().unwrap_or(DEFAULT_API_BASE);
            let url = format!("{}/chat.postMessage", base.trim_end_matches('/'));
            let response = Request::post(&url)
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/json; charset=utf-8")
                .body(message.to_string().into_bytes())
                .send()?;
            web_api_result(response, channel)
        } else {
            let url = config.webhook_url.as_deref().unwrap_or_default();
            let response = Request::post(url).json(&message).send()?;
            incoming_webhook_result(response)
        }
    }
}

/// `chat.postMessage` answers 200 with `{"ok": false, "error": …}` on failure.
fn web_api_result(response: Response, channel: &str) -> Result<Delivery, PluginError> {
    let status = response.status;
    if status == 429 || retryable_status(status) && status >= 500 {
        return Err(retry_error(&response, format!("Slack answered {status}")));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    if body["ok"] == serde_json::Value::Bool(true) {
        return Ok(Delivery {
            status_code: Some(status),
            response_excerpt: Some(response.excerpt(256)),
            summary: format!("posted to Slack channel {channel}"),
        });
    }
    let code = body["error"].as_str().unwrap_or("unknown_error");
    Err(slack_error(&response, code, channel))
}

/// Incoming webhooks answer `ok`, or an HTTP error whose body is the code.
fn incoming_webhook_result(response: Response) -> Result<Delivery, PluginError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(Delivery {
            status_code: Some(status),
            response_excerpt: Some(response.excerpt(256)),
            summary: "posted to Slack incoming webhook".into(),
        });
    }
    if status == 429 || status >= 500 {
        return Err(retry_error(&response, format!("Slack answered {status}")));
    }
    let code = response.excerpt(64).trim().to_owned();
    Err(slack_error(&response, &code, "of the webhook"))
}

fn retry_error(response: &Response, message: String) -> PluginError {
    PluginError::retryable(message)
        .with_retry_after_ms(response.retry_after_ms())
        .with_status_code(response.status)
}

/// Turns Slack's error code into a message an operator can act on.
fn slack_error(response: &Response, code: &str, channel: &str) -> PluginError {
    let message = match code {
        "channel_not_found" => format!(
            "Slack channel {channel} was not found (channel_not_found): check the channel id"
        ),
        "not_in_channel" => format!(
            "the Slack app is not in channel {channel} (not_in_channel): invite it with /invite"
        ),
        "is_archived" | "channel_is_archived" => {
            format!("Slack channel {channel} is archived ({code})")
        }
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            format!("Slack rejected the credentials ({code}): check the bot token or webhook URL")
        }
        "missing_scope" => "the Slack token lacks the chat:write scope (missing_scope)".to_owned(),
        "no_service" | "no_team" | "team_disabled" => {
            format!("the Slack incoming webhook is disabled or removed ({code})")
        }
        "invalid_payload" | "invalid_blocks" | "msg_too_long" => {
            format!("Slack rejected the message ({code})")
        }
        "ratelimited" => {
            return retry_error(
                response,
                "Slack rate-limited the request (ratelimited)".into(),
            );
        }
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            return retry_error(response, format!("Slack had a temporary failure ({code})"));
        }
        other => format!(
            "Slack refused the message ({other}, HTTP {})",
            response.status
        ),
    };
    PluginError::permanent(message).with_status_code(response.status)
}

herald_plugin::export_alert_destination!(Slack);
