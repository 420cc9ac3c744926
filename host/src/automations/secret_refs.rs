//! Configs that name a secret instead of holding it.
//!
//! For each top-level secret field a destination plugin declares (`/secret`,
//! `/bot_token`, `/routing_key`…), an action config may hold a reference,
//! `<field>_secret_name` (`secret_name` for a field called `secret`), naming
//! an environment variable (`/v1/env_var`) of the automation's project or,
//! failing that, of the organization: Braintrust's `routing_key_secret_name`
//! is one such reference. The stored config holds only the name. The value
//! is put in place of the reference when the config is checked and each
//! time it is delivered, so a changed variable takes effect at the next
//! delivery and the plugin sees the config it always did.

use serde_json::Value;
use uuid::Uuid;

use super::config::{Action, ConfigError};
use crate::plugins::PluginRuntime;
use crate::store::Store;

/// The reference key of secret field `field`.
pub fn reference_key(field: &str) -> String {
    if field == "secret" {
        "secret_name".into()
    } else {
        format!("{field}_secret_name")
    }
}

/// `action` with every reference replaced by its variable's value (and
/// marked used). `at` is the request path of the action, for errors.
pub async fn resolve_action(
    store: &Store,
    plugins: &PluginRuntime,
    organization_id: &str,
    project_id: Uuid,
    action: &Action,
    at: &str,
) -> Result<Action, ConfigError> {
    let Some(plugin) = plugins.get(&action.plugin) else {
        // validate_action says which plugins there are.
        return Ok(action.clone());
    };
    let organization_id = Uuid::parse_str(organization_id).unwrap_or_default();
    let mut resolved = action.clone();
    for pointer in &plugin.info.secret_fields {
        let Some(field) = pointer.strip_prefix('/').filter(|f| !f.contains('/')) else {
            continue;
        };
        let key = reference_key(field);
        let Some(reference) = resolved.config.remove(&key) else {
            continue;
        };
        let Value::String(name) = reference else {
            return Err(ConfigError::new(
                format!("{at}.{key}"),
                "must be the name of an env var (a string)",
            ));
        };
        if resolved.config.contains_key(field) {
            return Err(ConfigError::new(
                format!("{at}.{key}"),
                format!("give either {field} or {key}, not both"),
            ));
        }
        let value = store
            .env_var_value(project_id, organization_id, &name)
            .await
            .map_err(|e| ConfigError::new(format!("{at}.{key}"), e.to_string()))?
            .ok_or_else(|| {
                ConfigError::new(
                    format!("{at}.{key}"),
                    format!(
                        "no env var named {name:?} with a value in this project or the \
                         organization (create it with POST /v1/env_var)"
                    ),
                )
            })?;
        resolved
            .config
            .insert(field.to_owned(), Value::String(value));
    }
    Ok(resolved)
}
