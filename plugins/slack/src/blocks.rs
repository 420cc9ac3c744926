//! The Block Kit message: a header with the automation's name, the message,
//! the facts as fields (project, count, window — or environment, prompt,
//! version, action), link buttons, and a context line with the event id.
//! `text` carries the same message as the notification fallback.

use crate::template::escape;
use herald_plugin::alert::Alert;
use serde_json::{Value, json};

/// Slack's limit on a section's text.
const MAX_SECTION_TEXT: usize = 3000;
/// Slack's limit on a header's text.
const MAX_HEADER_TEXT: usize = 150;

/// Builds the message for `payload`; `text` overrides the message text.
pub fn message(payload: &Value, alert: &Alert, text: Option<&str>) -> Value {
    let details = &payload["details"];
    let automation = str_at(payload, &["automation", "name"]).unwrap_or("Herald automation");
    let title = if alert.is_test {
        format!("[TEST] {automation}")
    } else {
        automation.to_owned()
    };
    let text = match text {
        Some(text) => text.to_owned(),
        None => escape(str_at(details, &["message"]).unwrap_or("Herald alert")),
    };

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&title, MAX_HEADER_TEXT), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, MAX_SECTION_TEXT)}}),
    ];
    let fields = facts(payload);
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let buttons = buttons(payload);
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("Herald · {} · event `{}`", escape(&alert.event_type), escape(&alert.event_id))}]
    }));
    json!({"text": cut(&text, MAX_SECTION_TEXT), "blocks": blocks})
}

fn facts(payload: &Value) -> Vec<Value> {
    let details = &payload["details"];
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(project) = str_at(payload, &["project", "name"]) {
        facts.push(("Project", project.to_owned()));
    }
    if details.get("environment").is_some() {
        if let Some(slug) = str_at(details, &["environment", "slug"]) {
            facts.push(("Environment", slug.to_owned()));
        }
        if let Some(prompt) = str_at(details, &["prompt", "slug"]) {
            facts.push(("Prompt", prompt.to_owned()));
        }
        if let Some(version) = scalar(&details["new_version"]) {
            facts.push(("Version", version));
        }
        if let Some(action) = str_at(details, &["action"]) {
            facts.push(("Action", action.to_owned()));
        }
    } else {
        if let Some(count) = scalar(&details["count"]) {
            facts.push(("Matches", count));
        }
        if let (Some(start), Some(end)) =
            (scalar(&details["time_start"]), scalar(&details["time_end"]))
        {
            facts.push(("Window", format!("{start} → {end}")));
        }
    }
    facts
        .into_iter()
        .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", escape(&value))}))
        .collect()
}

fn buttons(payload: &Value) -> Vec<Value> {
    let mut buttons = Vec::new();
    let links = [
        (
            "View logs",
            str_at(payload, &["details", "related_logs_url"]),
        ),
        ("Open automation", str_at(payload, &["automation", "url"])),
    ];
    for (label, url) in links {
        if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
            buttons.push(json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}));
        }
    }
    buttons
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Cuts `text` to at most `max` characters, marking the cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}
