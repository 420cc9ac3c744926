//! Notification payloads in Braintrust's webhook shape, field for field:
//! `organization`, `project`, `automation` and `details`.
//!
//! Links (`automation.url`, `details.related_logs_url`) are absolute when a
//! public base URL is configured and paths otherwise, so a receiver can
//! always tell where the alert came from.

use serde_json::{Value, json};

use super::config::AutomationConfig;
use crate::store::{DbTime, EnvironmentEvent, Project, StoredAutomation};

/// The organization's id: a UUID derived from its name, so every daemon
/// of a deployment (and every restart) gives the same one.
pub fn organization_id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// What every payload needs besides the automation.
#[derive(Debug, Clone)]
pub struct PayloadContext {
    /// `organization.name`: self-hosted Herald has one organization.
    pub organization: String,
    /// `organization.id` ([`organization_id`] of the name).
    pub organization_id: String,
    /// Base URL for links, without a trailing slash.
    pub public_base_url: Option<String>,
}

/// One windowed-alert notification: a group's transition or reminder.
#[derive(Debug, Clone)]
pub struct WindowedNotice<'a> {
    /// `firing`, `recovered` or `no_data`.
    pub state: &'static str,
    /// Whether it repeats an earlier firing notice (`renotify`).
    pub reminder: bool,
    /// The window's value (`None`: no data).
    pub value: Option<f64>,
    /// The threshold compared with.
    pub threshold: f64,
    /// The comparison's name (`gt`) and symbol (`>`).
    pub operator: (&'static str, &'static str),
    /// The window `[start, end)`.
    pub window_start: DbTime,
    /// See `window_start`.
    pub window_end: DbTime,
    /// The group's columns, for grouped calculations.
    pub group: Option<&'a serde_json::Map<String, Value>>,
}

/// One log-alert window.
#[derive(Debug, Clone)]
pub struct LogWindow {
    /// Matching spans in the window.
    pub count: u64,
    /// When the window began.
    pub time_start: DbTime,
    /// When it ended.
    pub time_end: DbTime,
    /// Ingest sequence bounds `(after, upto]`.
    pub xact_after: i64,
    /// Upper bound.
    pub xact_upto: i64,
}

impl PayloadContext {
    fn link(&self, path: &str) -> String {
        match &self.public_base_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => path.to_string(),
        }
    }

    fn head(
        &self,
        project: &Project,
        automation: &StoredAutomation,
        config: &AutomationConfig,
    ) -> Value {
        let mut about = json!({
            "id": automation.id,
            "name": automation.name,
            "description": automation.description.clone().unwrap_or_default(),
            "event_type": config.event_type(),
            "url": self.link(&format!("/v1/project_automation/{}", automation.id)),
        });
        if let AutomationConfig::Logs(logs) = config {
            about["btql_filter"] = logs.btql_filter.clone().into();
            about["interval_seconds"] = logs.interval_seconds.into();
        }
        json!({
            "organization": {"id": self.organization_id, "name": self.organization},
            "project": {"id": project.id, "name": project.name},
            "automation": about,
        })
    }

    /// A log alert's payload.
    pub fn logs(
        &self,
        project: &Project,
        automation: &StoredAutomation,
        config: &AutomationConfig,
        window: &LogWindow,
        is_test: bool,
    ) -> Value {
        let filter = match config {
            AutomationConfig::Logs(logs) => logs.btql_filter.as_str(),
            _ => "",
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        if !filter.trim().is_empty() {
            query.append_pair("filter", filter);
        }
        // The fetch API's `cursor` is an exclusive lower `_xact_id` bound
        // and `version` an inclusive upper one: exactly this window's rows.
        query.append_pair("cursor", &window.xact_after.to_string());
        query.append_pair("version", &window.xact_upto.to_string());
        let related = self.link(&format!(
            "/v1/project_logs/{}/fetch?{}",
            project.id,
            query.finish()
        ));
        let noun = if window.count == 1 { "log" } else { "logs" };
        let message = format!(
            "{}: {} {noun} matched in the last {}",
            automation.name,
            window.count,
            human_duration(window.time_end.0 - window.time_start.0)
        );
        let mut payload = self.head(project, automation, config);
        payload["details"] = json!({
            "is_test": is_test,
            "message": message,
            "time_start": window.time_start,
            "time_end": window.time_end,
            "count": window.count,
            "related_logs_url": related,
        });
        payload
    }

    /// A windowed alert's payload: Braintrust's envelope with `details`
    /// {`is_test`, `message`, `state`, `value`, `threshold`, `operator`,
    /// `window_start`, `window_end`, `group`} (and Herald's `reminder`).
    pub fn windowed(
        &self,
        project: &Project,
        automation: &StoredAutomation,
        config: &AutomationConfig,
        notice: &WindowedNotice<'_>,
        is_test: bool,
    ) -> Value {
        let window = human_duration(notice.window_end.0 - notice.window_start.0);
        let group = notice
            .group
            .map(|g| {
                let named: Vec<String> = g
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                format!(" for {}", named.join(", "))
            })
            .unwrap_or_default();
        let (operator, symbol) = notice.operator;
        let value = notice
            .value
            .map_or_else(|| "no data".to_string(), |v| v.to_string());
        let message = match notice.state {
            "recovered" => format!(
                "{} recovered{group}: {value} over the last {window} (alerts when {symbol} {})",
                automation.name, notice.threshold
            ),
            "no_data" => format!(
                "{}{group}: no data in the last {window}{}",
                automation.name,
                if notice.reminder { " (still)" } else { "" }
            ),
            _ => format!(
                "{}{group}: {value} {symbol} {} over the last {window}{}",
                automation.name,
                notice.threshold,
                if notice.reminder {
                    " (still firing)"
                } else {
                    ""
                }
            ),
        };
        let mut payload = self.head(project, automation, config);
        payload["details"] = json!({
            "is_test": is_test,
            "message": message,
            "state": notice.state,
            "reminder": notice.reminder,
            "value": notice.value,
            "threshold": notice.threshold,
            "operator": operator,
            "window_start": notice.window_start,
            "window_end": notice.window_end,
            "group": notice.group,
        });
        payload
    }

    /// An environment alert's payload.
    pub fn environment(
        &self,
        project: &Project,
        automation: &StoredAutomation,
        config: &AutomationConfig,
        event: &EnvironmentEvent,
        is_test: bool,
    ) -> Value {
        let removed = event.action == "removed";
        let message = if removed {
            format!(
                "prompt {} was removed from {}",
                event.prompt_slug, event.environment_slug
            )
        } else {
            format!(
                "prompt {} was assigned to {} (version {})",
                event.prompt_slug,
                event.environment_slug,
                event.version.unwrap_or_default()
            )
        };
        let mut payload = self.head(project, automation, config);
        payload["details"] = json!({
            "is_test": is_test,
            "message": message,
            "environment": {"slug": event.environment_slug},
            "prompt": {"id": event.prompt_id, "slug": event.prompt_slug},
            "new_version": if removed { Value::Null } else { event.version.map(|v| v.to_string()).into() },
            "action": if removed { "delete" } else { "update" },
        });
        payload
    }
}

/// "14 seconds", "10 minutes", "2 hours", "3 days": the largest unit that
/// fits, rounded down (but never below one second).
pub fn human_duration(duration: chrono::TimeDelta) -> String {
    let seconds = duration.num_seconds().max(1);
    // A whole number of a larger unit reads best ("1 hour", not "60
    // minutes"); otherwise the unit that keeps the number small.
    let (n, unit) = match seconds {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 && s >= 60 => (s / 60, "minute"),
        s if s < 120 => (s, "second"),
        s if s < 7200 => (s / 60, "minute"),
        s if s < 172_800 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(
            human_duration(chrono::TimeDelta::milliseconds(80)),
            "1 second"
        );
        assert_eq!(human_duration(chrono::TimeDelta::seconds(1)), "1 second");
        assert_eq!(human_duration(chrono::TimeDelta::seconds(14)), "14 seconds");
        assert_eq!(
            human_duration(chrono::TimeDelta::seconds(600)),
            "10 minutes"
        );
        assert_eq!(human_duration(chrono::TimeDelta::seconds(3600)), "1 hour");
        assert_eq!(human_duration(chrono::TimeDelta::seconds(86_400)), "1 day");
        assert_eq!(human_duration(chrono::TimeDelta::seconds(90)), "90 seconds");
        assert_eq!(
            human_duration(chrono::TimeDelta::seconds(5400)),
            "90 minutes"
        );
        assert_eq!(
            human_duration(chrono::TimeDelta::seconds(3725)),
            "62 minutes"
        );
        assert_eq!(human_duration(chrono::TimeDelta::days(3)), "3 days");
    }
}
