//! Checking an action's config with its plugin, and keeping secrets secret.
//!
//! The plugin is the authority on its config: [`validate_action`] asks it
//! (`validate-config`) and maps each problem's JSON Pointer to the request
//! path (`/headers/X-Team` → `config.action.headers.X-Team`).
//!
//! Secret fields are the JSON Pointers the plugin declares in `describe`.
//! [`redact`] replaces them with [`REDACTED`] in everything the API
//! returns. [`restore_secrets`] makes a read-modify-write round trip safe: a
//! write that sends the placeholder back keeps the stored value, unless the
//! write also changes where the secret goes (a URL, an endpoint, a bucket):
//! then the placeholder is refused and the secret must be sent again, so
//! nobody who can edit a config but not read its secret can redirect the
//! secret to a host of their own.

use serde_json::{Map, Value};

use super::config::{Action, AutomationConfig, ConfigError, ExportConfig, ExportCredentials};
use crate::plugins::{CallError, PluginRuntime, World};

/// What secret fields read as.
pub const REDACTED: &str = "[redacted]";

/// Checks that `action` names a loaded alert destination and that the
/// plugin accepts its config. `at` is the request path of the action.
pub async fn validate_action(
    plugins: &PluginRuntime,
    action: &Action,
    at: &str,
) -> Result<(), ConfigError> {
    let Some(plugin) = plugins.get(&action.plugin) else {
        let mut names: Vec<String> = plugins
            .list()
            .objects
            .into_iter()
            .filter(|p| p.world == World::AlertDestination)
            .map(|p| p.name)
            .collect();
        names.sort();
        return Err(ConfigError::new(
            format!("{at}.type"),
            format!(
                "no alert destination plugin named {:?} is loaded (available: {})",
                action.plugin,
                names.join(", ")
            ),
        ));
    };
    if plugin.world != World::AlertDestination {
        return Err(ConfigError::new(
            format!("{at}.type"),
            format!(
                "plugin {:?} is a {} plugin, not an alert destination",
                action.plugin,
                plugin.world.name()
            ),
        ));
    }
    let report = plugins
        .validate_config(&action.plugin, &Value::Object(action.config.clone()))
        .await;
    match report.result {
        Ok(()) => Ok(()),
        Err(CallError::InvalidConfig(problems)) => {
            let first = problems.first();
            let path = first.map(|p| pointer_to_path(at, &p.path));
            let message = problems
                .iter()
                .map(|p| match p.path.as_str() {
                    "" => p.message.clone(),
                    pointer => format!("{}: {}", pointer_to_path(at, pointer), p.message),
                })
                .collect::<Vec<_>>()
                .join("; ");
            Err(ConfigError::new(
                path.unwrap_or_else(|| at.to_string()),
                message,
            ))
        }
        Err(other) => Err(ConfigError::new(
            at,
            format!(
                "the {} plugin could not check this config: {other}",
                action.plugin
            ),
        )),
    }
}

/// `config.action` + `/headers/X~1Y` → `config.action.headers.X/Y`.
fn pointer_to_path(at: &str, pointer: &str) -> String {
    let mut path = at.to_string();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if let Ok(index) = token.parse::<usize>() {
            path.push_str(&format!("[{index}]"));
        } else {
            path.push('.');
            path.push_str(&token);
        }
    }
    path
}

/// The secret pointers of the action's plugin (none if it is not loaded).
fn secret_pointers(plugins: &PluginRuntime, action: &Action) -> Vec<String> {
    plugins
        .get(&action.plugin)
        .map(|p| p.info.secret_fields.clone())
        .unwrap_or_default()
}

/// The export's secret access key, if its credentials have one.
fn export_secret(config: &mut AutomationConfig) -> Option<&mut String> {
    match config {
        AutomationConfig::BtqlExport(ExportConfig {
            credentials:
                Some(ExportCredentials::AccessKey {
                    secret_access_key, ..
                }),
            ..
        }) => Some(secret_access_key),
        _ => None,
    }
}

/// Replaces every secret field of the config's action (or the export's
/// secret access key) with [`REDACTED`].
pub fn redact(plugins: &PluginRuntime, config: &mut AutomationConfig) {
    if let Some(secret) = export_secret(config) {
        *secret = REDACTED.into();
    }
    for (_, action) in config.actions_mut() {
        for pointer in secret_pointers(plugins, action) {
            if let Some(value) = pointer_mut(&mut action.config, &pointer)
                && !value.is_null()
            {
                *value = Value::String(REDACTED.into());
            }
        }
    }
}

/// Puts the stored value back wherever `config` carries [`REDACTED`] in a
/// secret field; a placeholder with nothing stored behind it is an error.
pub fn restore_secrets(
    plugins: &PluginRuntime,
    config: &mut AutomationConfig,
    stored: Option<&AutomationConfig>,
    at: &str,
) -> Result<(), ConfigError> {
    let moved = export_destination_change(config, stored);
    if let Some(secret) = export_secret(config)
        && secret == REDACTED
    {
        let previous = stored.cloned().as_mut().and_then(export_secret).cloned();
        if let (Some(_), Some(field)) = (&previous, moved) {
            return Err(moved_destination(
                format!("{at}.credentials.secret_access_key"),
                field,
            ));
        }
        match previous {
            Some(previous) => *secret = previous,
            None => {
                return Err(ConfigError::new(
                    format!("{at}.credentials.secret_access_key"),
                    "is the redaction placeholder but no secret is stored to keep; send the value",
                ));
            }
        }
    }
    let stored_actions: Vec<(String, Action)> = stored
        .map(|c| {
            c.actions()
                .into_iter()
                .map(|a| (a.path, a.action.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (path, action) in config.actions_mut() {
        let stored_action = stored_actions
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, a)| a);
        restore_action_secrets(plugins, action, stored_action, &format!("{at}.{path}"))?;
    }
    Ok(())
}

/// [`restore_secrets`] for one action at path `at`, against the action
/// stored at the same place.
fn restore_action_secrets(
    plugins: &PluginRuntime,
    action: &mut Action,
    stored_action: Option<&Action>,
    at: &str,
) -> Result<(), ConfigError> {
    let secrets = secret_pointers(plugins, action);
    let moved = stored_action
        .filter(|a| a.plugin == action.plugin)
        .and_then(|a| action_destination_change(&action.config, &a.config, &secrets));
    for pointer in &secrets {
        let Some(value) = pointer_mut(&mut action.config, pointer) else {
            continue;
        };
        if value.as_str() != Some(REDACTED) {
            continue;
        }
        let previous = stored_action
            .filter(|a| a.plugin == action.plugin)
            .and_then(|a| Value::Object(a.config.clone()).pointer(pointer).cloned());
        if let (Some(_), Some(field)) = (&previous, &moved) {
            return Err(moved_destination(
                pointer_to_path(at, pointer),
                field.clone(),
            ));
        }
        match previous {
            Some(previous) => *value = previous,
            None => {
                return Err(ConfigError::new(
                    pointer_to_path(at, pointer),
                    "is the redaction placeholder but no secret is stored to keep; send the value",
                ));
            }
        }
    }
    Ok(())
}

fn moved_destination(path: String, field: String) -> ConfigError {
    ConfigError::new(
        path,
        format!(
            "is the redaction placeholder, but `{field}` changed: send the secret again, so the \
             stored one never goes to a destination it was not written for"
        ),
    )
}

/// Whether an action's config key says where its requests go: `url`,
/// `webhook_url`, `api_base_url`, `endpoint`, `host`… (a plugin's
/// destination fields, by the names every destination uses).
fn is_destination_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.ends_with("url")
        || key.starts_with("endpoint")
        || key.starts_with("host")
        || key.ends_with("_host")
        || key.contains("bucket")
        || key == "workspace_id"
}

/// The first destination field whose value differs between an action's
/// new and stored config (secret fields are not compared).
fn action_destination_change(
    new: &Map<String, Value>,
    stored: &Map<String, Value>,
    secrets: &[String],
) -> Option<String> {
    let keys = new.keys().chain(stored.keys());
    keys.filter(|key| is_destination_key(key))
        .filter(|key| {
            !secrets
                .iter()
                .any(|p| p.trim_start_matches('/') == key.as_str())
        })
        .find(|key| new.get(key.as_str()) != stored.get(key.as_str()))
        .cloned()
}

/// The first of an export's destination fields (`endpoint_url`, `region`,
/// the bucket of `export_path`) that differs from the stored config's.
fn export_destination_change(
    config: &AutomationConfig,
    stored: Option<&AutomationConfig>,
) -> Option<String> {
    let (AutomationConfig::BtqlExport(new), Some(AutomationConfig::BtqlExport(old))) =
        (config, stored)
    else {
        return None;
    };
    if new.endpoint_url != old.endpoint_url {
        Some("endpoint_url".into())
    } else if new.path().bucket != old.path().bucket {
        Some("export_path".into())
    } else if new.region != old.region {
        Some("region".into())
    } else {
        None
    }
}

fn pointer_mut<'a>(object: &'a mut Map<String, Value>, pointer: &str) -> Option<&'a mut Value> {
    let mut tokens = pointer.split('/').skip(1);
    let first = tokens.next()?.replace("~1", "/").replace("~0", "~");
    let mut value = object.get_mut(&first)?;
    for token in tokens {
        let token = token.replace("~1", "/").replace("~0", "~");
        value = match value {
            Value::Object(map) => map.get_mut(&token)?,
            Value::Array(items) => items.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_request_paths() {
        assert_eq!(
            pointer_to_path("config.action", "/url"),
            "config.action.url"
        );
        assert_eq!(
            pointer_to_path("config.action", "/headers/X~1Y"),
            "config.action.headers.X/Y"
        );
        assert_eq!(
            pointer_to_path("config.action", "/a/0"),
            "config.action.a[0]"
        );
    }

    #[test]
    fn destination_fields_are_told_apart_from_the_rest() {
        for key in [
            "url",
            "webhook_url",
            "api_base_url",
            "endpoint_url",
            "host",
            "bucket",
        ] {
            assert!(is_destination_key(key), "{key}");
        }
        for key in [
            "channel",
            "severity",
            "headers",
            "message_template",
            "secret",
        ] {
            assert!(!is_destination_key(key), "{key}");
        }
        let old = serde_json::json!({"api_base_url": "https://slack.com", "bot_token": "x"});
        let new = serde_json::json!({"api_base_url": "https://evil.example", "bot_token": "x"});
        let secrets = vec!["/bot_token".to_string()];
        assert_eq!(
            action_destination_change(new.as_object().unwrap(), old.as_object().unwrap(), &secrets),
            Some("api_base_url".into())
        );
        assert_eq!(
            action_destination_change(old.as_object().unwrap(), old.as_object().unwrap(), &secrets),
            None
        );
    }

    #[test]
    fn pointer_mut_finds_nested_fields() {
        let mut map = serde_json::json!({"a": {"b": [1, {"c": "x"}]}})
            .as_object()
            .unwrap()
            .clone();
        *pointer_mut(&mut map, "/a/b/1/c").unwrap() = Value::from("y");
        assert_eq!(map["a"]["b"][1]["c"], "y");
        assert!(pointer_mut(&mut map, "/missing").is_none());
    }
}
