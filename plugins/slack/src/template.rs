//! `message_template`: the message text with `{{path}}` placeholders.
//!
//! A placeholder names a field of the alert payload by its dotted path, for
//! example `{{automation.name}}`, `{{project.name}}`, `{{details.message}}`,
//! `{{details.count}}`, `{{details.time_start}}`, `{{details.time_end}}`,
//! `{{details.related_logs_url}}`, and for environment alerts
//! `{{details.environment.slug}}`, `{{details.prompt.slug}}`,
//! `{{details.new_version}}`, `{{details.action}}`. Strings are inserted as
//! they are, numbers and booleans as text, missing fields as nothing.
//! Inserted values are escaped for Slack's mrkdwn (`&`, `<`, `>`); the
//! template's own text is not, so it may contain Slack formatting.

use serde_json::Value;

/// Checks the template's syntax: closed placeholders with valid paths.
pub fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "placeholder at byte {} is not closed with }}}}",
                template.len() - rest.len() + start
            )
        })?;
        let path = after[..end].trim();
        if path.is_empty() || !path.split('.').all(valid_segment) {
            return Err(format!(
                "`{{{{{path}}}}}` is not a field path like details.count"
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Renders `template` against `payload`.
pub fn render(template: &str, payload: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let path = after[..end].trim();
        let value = path.split('.').try_fold(payload, |v, key| v.get(key));
        out.push_str(&escape(&display(value)));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn display(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Escapes text for Slack mrkdwn.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_paths_and_escapes_values() {
        let payload = serde_json::json!({"details": {"count": 3, "message": "a <b> & c"}, "project": {"name": "p"}});
        let text = render(
            "*{{project.name}}*: {{ details.count }} ({{details.message}}){{missing.x}}",
            &payload,
        );
        assert_eq!(text, "*p*: 3 (a &lt;b&gt; &amp; c)");
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(check("{{details.count}} ok").is_ok());
        assert!(check("{{details.count").is_err());
        assert!(check("{{}}").is_err());
        assert!(check("{{a..b}}").is_err());
        assert!(check("{{a b}}").is_err());
    }
}
