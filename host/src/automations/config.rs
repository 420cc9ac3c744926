//! Automation configs in Braintrust's shapes, tagged by `event_type`, and
//! their checks that need no plugin (ranges, filters, slugs).
//!
//! Parsing happens in two steps so that every error carries the path of the
//! offending field (`config.interval_seconds`): the tag is read first, then
//! the variant's own struct is deserialized with `serde_path_to_error`
//! (serde's internally tagged enums buffer their content and lose the
//! path). The action's plugin config is checked by the plugin itself, in
//! [`super::validate`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::filter::{Filter, FilterError};

pub use super::export_config::{
    DEFAULT_EXPORT_BATCH_SIZE, ExportConfig, ExportCredentials, ExportDefinition, ExportFormat,
    ExportPath, MAX_EXPORT_BATCH_SIZE,
};

pub use super::action::{Action, ActionAt, FORMATTING_PROMPT_REFUSED};
pub use super::limits::MAX_INTERVAL_SECONDS;
pub(super) use super::limits::check_interval;

pub use super::config_error::ConfigError;
pub use super::windowed_config::WindowedConfig;

/// Braintrust's `status` of every config: whether the automation runs.
///
/// It is not kept in the stored config but in the automation's state, the
/// same pause that failures in a row and `…/resume` set and clear, and is
/// read back from there: a config reads `paused` while the automation is
/// paused, whatever paused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutomationStatus {
    /// It runs.
    Active,
    /// It never runs (nor delivers) until it is set active or resumed.
    Paused,
}

impl AutomationStatus {
    /// `active` or `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            AutomationStatus::Active => "active",
            AutomationStatus::Paused => "paused",
        }
    }

    /// The status of an automation paused (`true`) or not.
    pub fn of_paused(paused: bool) -> Self {
        if paused {
            AutomationStatus::Paused
        } else {
            AutomationStatus::Active
        }
    }
}

/// What an automation does, by `event_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum AutomationConfig {
    /// Notify when spans matching a filter arrive.
    Logs(LogsConfig),
    /// Notify when a prompt's environment changes.
    EnvironmentUpdate(EnvironmentConfig),
    /// Export data to object storage through the `s3-export` plugin.
    BtqlExport(ExportConfig),
    /// Delete old data through the `retention` plugin.
    Retention(RetentionConfig),
    /// Hold a calculation over a sliding window against a threshold.
    Windowed(WindowedConfig),
}

/// A log alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Which spans count; empty counts every span.
    #[serde(default)]
    pub btql_filter: String,
    /// How long to stay quiet after a notification, in seconds.
    #[serde(deserialize_with = "super::whole_number::deserialize")]
    pub interval_seconds: u64,
    /// Where to send the notification.
    pub action: Action,
    /// *Herald*: more destinations beside `action`, each notified,
    /// retried and recorded on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

/// An environment alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Environment slugs to watch; empty watches all.
    #[serde(default)]
    pub environment_filter: Vec<String>,
    /// Where to send the notification.
    pub action: Action,
    /// *Herald*: more destinations beside `action` (see [`LogsConfig`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

/// Which data a retention policy prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionObject {
    /// Project log rows.
    ProjectLogs,
    /// Whole experiments.
    Experiment,
    /// Dataset rows (the dataset is kept).
    Dataset,
}

/// A retention policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// What to prune.
    pub object_type: RetentionObject,
    /// Delete data older than this many days (0: everything created before
    /// the run).
    #[serde(deserialize_with = "super::whole_number::deserialize")]
    pub retention_days: u64,
    /// Seconds between the starts of two runs (*Herald*; default a day).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::whole_number::option"
    )]
    pub interval_seconds: Option<u64>,
}

/// How often a retention automation runs by default: daily.
pub const DEFAULT_RETENTION_INTERVAL_SECONDS: u64 = 86_400;

impl RetentionConfig {
    /// Seconds between runs.
    pub fn interval(&self) -> u64 {
        self.interval_seconds
            .unwrap_or(DEFAULT_RETENTION_INTERVAL_SECONDS)
    }
}

impl AutomationConfig {
    /// Parses `value` (found at request path `at`, e.g. `config`) and runs
    /// the checks that need no plugin. A `status` is checked and left out;
    /// [`AutomationConfig::parse_with_status`] returns it.
    pub fn parse(value: &Value, at: &str) -> Result<Self, ConfigError> {
        Self::parse_with_status(value, at).map(|(config, _)| config)
    }

    /// [`AutomationConfig::parse`], with the config's `status` if it has one.
    pub fn parse_with_status(
        value: &Value,
        at: &str,
    ) -> Result<(Self, Option<AutomationStatus>), ConfigError> {
        let Some(object) = value.as_object() else {
            return Err(ConfigError::new(at, "must be an object"));
        };
        let tag = object.get("event_type").and_then(Value::as_str);
        let mut fields = object.clone();
        fields.remove("event_type");
        // Braintrust's SDK writes `formatting_prompt: null` when it is unset.
        let mut actions: Vec<(String, &mut Value)> = Vec::new();
        for (key, value) in fields.iter_mut() {
            match (key.as_str(), value) {
                ("action", action) => actions.push(("action".into(), action)),
                ("actions", Value::Array(list)) => {
                    for (i, action) in list.iter_mut().enumerate() {
                        actions.push((format!("actions[{i}]"), action));
                    }
                }
                _ => {}
            }
        }
        for (path, action) in actions {
            if let Value::Object(action) = action
                && let Some(prompt) = action.remove("formatting_prompt")
                && !prompt.is_null()
            {
                return Err(ConfigError::new(
                    format!("{at}.{path}.formatting_prompt"),
                    FORMATTING_PROMPT_REFUSED,
                ));
            }
        }
        let status = match fields.remove("status") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "active" => Some(AutomationStatus::Active),
            Some(Value::String(s)) if s == "paused" => Some(AutomationStatus::Paused),
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{at}.status"),
                    "must be \"active\" or \"paused\"",
                ));
            }
        };
        let fields = Value::Object(fields);
        let config = match tag {
            Some("logs") => AutomationConfig::Logs(typed(&fields, at)?),
            Some("environment_update") => AutomationConfig::EnvironmentUpdate(typed(&fields, at)?),
            Some("btql_export") => AutomationConfig::BtqlExport(typed(&fields, at)?),
            Some("retention") => AutomationConfig::Retention(typed(&fields, at)?),
            Some("windowed") => AutomationConfig::Windowed(typed(&fields, at)?),
            _ => {
                return Err(ConfigError::new(
                    format!("{at}.event_type"),
                    "must be one of logs, environment_update, windowed, btql_export, retention",
                ));
            }
        };
        config.check(at)?;
        Ok((config, status))
    }

    /// The `event_type` tag.
    pub fn event_type(&self) -> &'static str {
        match self {
            AutomationConfig::Logs(_) => "logs",
            AutomationConfig::EnvironmentUpdate(_) => "environment_update",
            AutomationConfig::BtqlExport(_) => "btql_export",
            AutomationConfig::Retention(_) => "retention",
            AutomationConfig::Windowed(_) => "windowed",
        }
    }

    /// The alert destinations, each with its path in the config (`action`,
    /// `actions[1]`) and its delivery's `action_index` (`None` for the one
    /// `action` of a log or environment alert). Empty for exports and
    /// retention.
    pub fn actions(&self) -> Vec<ActionAt<'_>> {
        match self {
            AutomationConfig::Logs(LogsConfig {
                action, actions, ..
            })
            | AutomationConfig::EnvironmentUpdate(EnvironmentConfig {
                action, actions, ..
            }) => std::iter::once(ActionAt {
                path: "action".into(),
                index: None,
                action,
            })
            .chain(indexed(actions))
            .collect(),
            AutomationConfig::Windowed(c) => indexed(&c.actions).collect(),
            _ => Vec::new(),
        }
    }

    /// Mutable access to the alert destinations, with their paths.
    pub fn actions_mut(&mut self) -> Vec<(String, &mut Action)> {
        match self {
            AutomationConfig::Logs(LogsConfig {
                action, actions, ..
            })
            | AutomationConfig::EnvironmentUpdate(EnvironmentConfig {
                action, actions, ..
            }) => std::iter::once(("action".to_string(), action))
                .chain(indexed_mut(actions))
                .collect(),
            AutomationConfig::Windowed(c) => indexed_mut(&mut c.actions).collect(),
            _ => Vec::new(),
        }
    }

    /// The config as the API shows it: [`AutomationConfig::to_json`] with
    /// the automation's `status`.
    pub fn to_json_with_status(&self, status: AutomationStatus) -> Value {
        let mut json = self.to_json();
        if let Value::Object(map) = &mut json {
            map.insert("status".into(), status.as_str().into());
        }
        json
    }

    /// The config as JSON, `event_type` included (no `status`: that is
    /// state, not config).
    pub fn to_json(&self) -> Value {
        let fields = match self {
            AutomationConfig::Logs(c) => serde_json::to_value(c),
            AutomationConfig::EnvironmentUpdate(c) => serde_json::to_value(c),
            AutomationConfig::BtqlExport(c) => serde_json::to_value(c),
            AutomationConfig::Retention(c) => serde_json::to_value(c),
            AutomationConfig::Windowed(c) => serde_json::to_value(c),
        };
        let mut object = match fields {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let mut tagged = Map::with_capacity(object.len() + 1);
        tagged.insert("event_type".into(), self.event_type().into());
        tagged.append(&mut object);
        Value::Object(tagged)
    }

    fn check(&self, at: &str) -> Result<(), ConfigError> {
        match self {
            AutomationConfig::Logs(c) => {
                check_interval(c.interval_seconds, &format!("{at}.interval_seconds"))?;
                check_extra_actions(&c.actions, at)?;
                c.filter().map_err(|e| {
                    ConfigError::new(format!("{at}.btql_filter"), format!("invalid filter: {e}"))
                })?;
            }
            AutomationConfig::EnvironmentUpdate(c) => {
                check_extra_actions(&c.actions, at)?;
                for (i, slug) in c.environment_filter.iter().enumerate() {
                    if slug.trim().is_empty() {
                        return Err(ConfigError::new(
                            format!("{at}.environment_filter[{i}]"),
                            "must be an environment slug, not empty",
                        ));
                    }
                }
            }
            AutomationConfig::BtqlExport(c) => {
                check_interval(c.interval_seconds, &format!("{at}.interval_seconds"))?;
                c.check(at)?;
            }
            AutomationConfig::Retention(c) => {
                if c.retention_days > 36_500 {
                    return Err(ConfigError::new(
                        format!("{at}.retention_days"),
                        "must be at most 36500 (100 years)",
                    ));
                }
                if let Some(seconds) = c.interval_seconds {
                    check_interval(seconds, &format!("{at}.interval_seconds"))?;
                }
            }
            AutomationConfig::Windowed(c) => c.check(at)?,
        }
        Ok(())
    }
}

impl LogsConfig {
    /// The parsed filter; `None` when it is empty (every span counts).
    pub fn filter(&self) -> Result<Option<Filter>, FilterError> {
        if self.btql_filter.trim().is_empty() {
            return Ok(None);
        }
        Filter::parse(&self.btql_filter).map(Some)
    }
}

impl EnvironmentConfig {
    /// Whether a change of environment `slug` concerns this automation.
    pub fn watches(&self, slug: &str) -> bool {
        self.environment_filter.is_empty() || self.environment_filter.iter().any(|s| s == slug)
    }
}

/// `actions[i]`, each at its path with its delivery index.
fn indexed(actions: &[Action]) -> impl Iterator<Item = ActionAt<'_>> {
    actions.iter().enumerate().map(|(i, action)| ActionAt {
        path: format!("actions[{i}]"),
        index: Some(i as i32),
        action,
    })
}

/// [`indexed`], mutably.
fn indexed_mut(actions: &mut [Action]) -> impl Iterator<Item = (String, &mut Action)> {
    actions
        .iter_mut()
        .enumerate()
        .map(|(i, action)| (format!("actions[{i}]"), action))
}

/// Refuses more than [`MAX_EXTRA_ACTIONS`] extra destinations at `at.actions`.
fn check_extra_actions(actions: &[Action], at: &str) -> Result<(), ConfigError> {
    if actions.len() > MAX_EXTRA_ACTIONS {
        return Err(ConfigError::new(
            format!("{at}.actions"),
            format!("may hold at most {MAX_EXTRA_ACTIONS} destinations beside `action`"),
        ));
    }
    Ok(())
}

/// Most destinations a log or environment alert's `actions` may add.
pub const MAX_EXTRA_ACTIONS: usize = 9;

/// Deserializes a variant's fields, reporting the failing field's path.
fn typed<T: serde::de::DeserializeOwned>(fields: &Value, at: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(fields).map_err(|err| {
        let inner = err.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{inner}")
        };
        ConfigError::new(path, err.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_carry_the_field_path() {
        let bad = json!({"event_type": "logs", "btql_filter": "", "interval_seconds": 0,
            "action": {"type": "webhook", "url": "x"}});
        assert_eq!(
            AutomationConfig::parse(&bad, "config").unwrap_err().path,
            "config.interval_seconds"
        );
        let bad = json!({"event_type": "logs", "btql_filter": "error = = 1",
            "interval_seconds": 60, "action": {"type": "webhook"}});
        assert_eq!(
            AutomationConfig::parse(&bad, "config").unwrap_err().path,
            "config.btql_filter"
        );
        let bad = json!({"event_type": "logs", "interval_seconds": "x", "action": {"type": "w"}});
        assert_eq!(
            AutomationConfig::parse(&bad, "config").unwrap_err().path,
            "config.interval_seconds"
        );
        let bad = json!({"event_type": "nope"});
        assert_eq!(
            AutomationConfig::parse(&bad, "config").unwrap_err().path,
            "config.event_type"
        );
    }

    #[test]
    fn status_is_read_apart_and_shown_from_the_state() {
        let value = json!({"event_type": "retention", "status": "paused",
            "object_type": "dataset", "retention_days": 7});
        let (config, status) = AutomationConfig::parse_with_status(&value, "config").unwrap();
        assert_eq!(status, Some(AutomationStatus::Paused));
        assert!(
            config.to_json().get("status").is_none(),
            "state, not config"
        );
        assert_eq!(config.to_json_with_status(AutomationStatus::Paused), value);
        let unstated = json!({"event_type": "retention", "object_type": "dataset",
            "retention_days": 7});
        let (_, status) = AutomationConfig::parse_with_status(&unstated, "config").unwrap();
        assert_eq!(status, None);
        let bad = json!({"event_type": "retention", "status": "Active",
            "object_type": "dataset", "retention_days": 7});
        assert_eq!(
            AutomationConfig::parse(&bad, "config").unwrap_err().path,
            "config.status"
        );
    }

    #[test]
    fn round_trips_with_the_action_flattened() {
        let value = json!({"event_type": "environment_update", "environment_filter": ["prod"],
            "action": {"type": "slack", "webhook_url": "https://hooks.slack.com/x"}});
        let config = AutomationConfig::parse(&value, "config").unwrap();
        assert_eq!(config.actions()[0].action.plugin, "slack");
        assert_eq!(config.to_json(), value);
    }
}
