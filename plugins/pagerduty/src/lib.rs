//! The PagerDuty destination: PagerDuty's Events API v2.
//!
//! An alert triggers an incident; a recovery (`details.state` =
//! `"recovered"`, sent by alerts that know when a condition ends) resolves
//! it. Both carry one dedup key per automation, and per group when the alert
//! names one (`herald-<automation id>[-<group>]`), so later alerts of the
//! same automation are added to the open incident instead of paging again,
//! and a resolve closes the incident its trigger opened. Tests get a key of
//! their own (`…-test`), so they never merge into a real incident.
//!
//! The routing key is secret: configs name it with
//! `routing_key_secret_name` (an env var, as Braintrust writes it; the host
//! puts the value in place) or hold it as `routing_key`. 202 is success;
//! 400 (an invalid event) is final; 408, 429 and 5xx are retried, with
//! `Retry-After` honoured.

use herald_plugin::alert::{Alert, AlertDestination, Delivery};
use herald_plugin::http::{Request, host_of, retryable_status};
use herald_plugin::{ConfigError, Plugin, PluginError, PluginInfo, log};
use serde::Deserialize;
use serde_json::{Value, json};

/// PagerDuty's Events API v2 endpoint.
pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The severities PagerDuty accepts.
const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// The PagerDuty config (the automation's `action` minus `type`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Integration key of an Events API v2 integration (32 characters).
    routing_key: String,
    /// Severity of triggered alerts (default `error`; tests are `info`).
    #[serde(default)]
    severity: Option<String>,
    /// The affected system, shown in PagerDuty (default `herald/<project>`).
    #[serde(default)]
    source: Option<String>,
    /// The Events API endpoint (default [`DEFAULT_EVENTS_URL`]): for
    /// EU-region proxies and tests.
    #[serde(default)]
    events_url: Option<String>,
}

struct PagerDuty;

impl Plugin for PagerDuty {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "pagerduty",
            env!("CARGO_PKG_VERSION"),
            "Triggers and resolves PagerDuty incidents through the Events API v2, one incident per automation (and group).",
        )
        .schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["routing_key"],
            "additionalProperties": false,
            "properties": {
                "routing_key": {"type": "string", "pattern": "^[A-Za-z0-9]{32}$",
                    "description": "Events API v2 integration key (32 characters). Secret: name an env var with routing_key_secret_name instead."},
                "severity": {"type": "string", "enum": SEVERITIES, "default": "error",
                    "description": "Severity of triggered alerts."},
                "source": {"type": "string", "minLength": 1, "maxLength": 255,
                    "description": "The affected system (default herald/<project name>)."},
                "events_url": {"type": "string", "format": "uri",
                    "description": "Events API endpoint (default https://events.pagerduty.com/v2/enqueue)."}
            }
        }))
        .secret("/routing_key")
    }

    fn check_config(config: &Config) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let key = &config.routing_key;
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            // Never echo the key.
            problems.push(ConfigError::new(
                "/routing_key",
                "must be a 32-character integration key (letters and digits)",
            ));
        }
        if let Some(severity) = &config.severity
            && !SEVERITIES.contains(&severity.as_str())
        {
            problems.push(ConfigError::new(
                "/severity",
                format!("must be one of {}", SEVERITIES.join(", ")),
            ));
        }
        if let Some(source) = &config.source
            && (source.trim().is_empty() || source.len() > 255)
        {
            problems.push(ConfigError::new(
                "/source",
                "must be a non-empty string of at most 255 characters",
            ));
        }
        if let Some(url) = &config.events_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problems.push(ConfigError::new(
                "/events_url",
                "must be an https:// or http:// URL",
            ));
        }
        problems
    }
}

/// `text` cut to at most `limit` characters, with an ellipsis when cut.
fn clip(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

fn absolute(url: &Value) -> Option<&str> {
    url.as_str()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

/// The Events API v2 body for `alert`.
fn event(config: &Config, alert: &Alert) -> Result<Value, PluginError> {
    let payload = alert.payload_json()?;
    let (organization, project) = (&payload["organization"], &payload["project"]);
    let (automation, details) = (&payload["automation"], &payload["details"]);
    let is_test = alert.is_test || details["is_test"] == true;
    let project_name = project["name"]
        .as_str()
        .or(project["id"].as_str())
        .unwrap_or("unknown project");
    let automation_name = automation["name"].as_str().unwrap_or("automation");
    let message = details["message"]
        .as_str()
        .map_or_else(|| format!("{automation_name} fired"), str::to_owned);
    let automation_id = automation["id"].as_str().unwrap_or(&alert.event_id);
    let group = match &details["group"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let dedup_key = clip(
        &format!(
            "herald-{automation_id}{}{}",
            group.map(|g| format!("-{g}")).unwrap_or_default(),
            if is_test { "-test" } else { "" }
        ),
        255,
    );
    if details["state"] == "recovered" {
        return Ok(json!({
            "routing_key": config.routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        }));
    }
    let mut links = Vec::new();
    if let Some(href) = absolute(&details["related_logs_url"]) {
        links.push(json!({"href": href, "text": "Matching logs"}));
    }
    if let Some(href) = absolute(&automation["url"]) {
        links.push(
            json!({"href": href, "text": format!("Automation: {}", clip(automation_name, 100))}),
        );
    }
    let severity = if is_test {
        "info"
    } else {
        config.severity.as_deref().unwrap_or("error")
    };
    let mut event = json!({
        "routing_key": config.routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": clip(&format!("{}{message} (project {project_name})",
                if is_test { "[TEST] " } else { "" }), 1024),
            "source": clip(config.source.as_deref()
                .map_or_else(|| format!("herald/{project_name}"), str::to_owned).as_str(), 255),
            "severity": severity,
            "component": clip(project_name, 255),
            "group": clip(organization["name"].as_str().unwrap_or("herald"), 255),
            "class": automation["event_type"].as_str().unwrap_or(&alert.event_type),
            "custom_details": {
                "event_id": alert.event_id, "attempt": alert.attempt, "is_test": is_test,
                "organization": organization, "project": project,
                "automation": automation, "details": details,
            },
        },
        "client": "Herald",
        "links": links,
    });
    if let Some(end) = details["time_end"].as_str() {
        event["payload"]["timestamp"] = end.into();
    }
    if let Some(url) = absolute(&automation["url"]) {
        event["client_url"] = url.into();
    }
    Ok(event)
}

impl AlertDestination for PagerDuty {
    fn deliver(config: Config, alert: &Alert) -> Result<Delivery, PluginError> {
        let event = event(&config, alert)?;
        let action = event["event_action"]
            .as_str()
            .unwrap_or("trigger")
            .to_owned();
        let url = config.events_url.as_deref().unwrap_or(DEFAULT_EVENTS_URL);
        let target = host_of(url);
        let response = Request::post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("herald-pagerduty/", env!("CARGO_PKG_VERSION")),
            )
            .body(event.to_string().into_bytes())
            .send()
            .map_err(|e| {
                let error = PluginError::from(e);
                PluginError {
                    message: format!("PagerDuty ({target}): {}", error.message),
                    ..error
                }
            })?;
        log::debug(&format!("{target} answered {}", response.status));
        let info: Value = serde_json::from_slice(&response.body).unwrap_or_default();
        if (200..300).contains(&response.status) {
            let dedup = info["dedup_key"]
                .as_str()
                .map(|k| format!(", dedup_key {k}"))
                .unwrap_or_default();
            let verb = if action == "resolve" {
                "resolved"
            } else {
                "triggered"
            };
            return Ok(Delivery {
                status_code: Some(response.status),
                response_excerpt: Some(response.excerpt(512)),
                summary: format!("{verb} on {target} ({}{dedup})", response.status),
            });
        }
        let mut detail = info["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| response.excerpt(512).trim().to_owned());
        if detail.is_empty() {
            detail = "no body".into();
        }
        if let Some(errors) = info["errors"].as_array().filter(|e| !e.is_empty()) {
            let list: Vec<String> = errors
                .iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                .collect();
            detail.push_str(&format!(": {}", clip(&list.join("; "), 400)));
        }
        let message = format!(
            "PagerDuty ({target}) answered {}: {detail}",
            response.status
        );
        let error = if retryable_status(response.status) {
            PluginError::retryable(message).with_retry_after_ms(response.retry_after_ms())
        } else {
            PluginError::permanent(message)
        };
        Err(error.with_status_code(response.status))
    }
}

herald_plugin::export_alert_destination!(PagerDuty);
