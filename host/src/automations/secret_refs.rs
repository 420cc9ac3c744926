//! Configs that name a secret instead of holding it.
//!
//! For each top-level secret field a destination plugin declares (`/secret`,
//! `/bot_token`, `/routing_key`…), an action config may hold a reference,
//! `<field>_secret_name` (`secret_name` for a field called `secret`), naming
//! an environment variable (`/v1/env_var`) of the automation's project or,
//! failing that, of the organization: Braintrust's `routing_key_secret_name`
//! is one such reference. A Slack action in Braintrust's shape names a
//! `workspace_id` instead of a token: the workspace's bot token (see
//! [`super::slack_workspaces`]) takes its place. The stored config holds
//! only the names. The values are put in place when the config is checked
//! and each time it is delivered, so a changed variable takes effect at the
//! next delivery and the plugin sees the config it always did.

use serde_json::Value;
use uuid::Uuid;

use super::config::{Action, ConfigError};
use super::slack_workspaces::env_var_name;
use super::{Engine, Inner};

/// The reference key of secret field `field`.
pub fn reference_key(field: &str) -> String {
    if field == "secret" {
        "secret_name".into()
    } else {
        format!("{field}_secret_name")
    }
}

impl Engine {
    /// `action` of an automation of `project_id` with every reference
    /// replaced by its value (and marked used). `at` is the request path of
    /// the action, for errors.
    pub async fn resolve_action(
        &self,
        project_id: Uuid,
        action: &Action,
        at: &str,
    ) -> Result<Action, ConfigError> {
        self.inner.resolve_action(project_id, action, at).await
    }
}

impl Inner {
    /// The variable `name` as project `project_id` sees it.
    async fn env_var(
        &self,
        project_id: Uuid,
        name: &str,
        at: &str,
    ) -> Result<Option<String>, ConfigError> {
        let organization_id = Uuid::parse_str(&self.payloads.organization_id).unwrap_or_default();
        self.store
            .env_var_value(project_id, organization_id, name)
            .await
            .map_err(|e| ConfigError::new(at, e.to_string()))
    }

    /// [`Engine::resolve_action`].
    pub(super) async fn resolve_action(
        &self,
        project_id: Uuid,
        action: &Action,
        at: &str,
    ) -> Result<Action, ConfigError> {
        let mut resolved = action.clone();
        if action.plugin == "slack" {
            self.resolve_slack_workspace(project_id, &mut resolved, at)
                .await?;
        }
        let Some(plugin) = self.plugins.get(&action.plugin) else {
            // validate_action says which plugins there are.
            return Ok(resolved);
        };
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
            let value = self
                .env_var(project_id, &name, &format!("{at}.{key}"))
                .await?
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

    /// A Slack `workspace_id` replaced by that workspace's `bot_token`.
    async fn resolve_slack_workspace(
        &self,
        project_id: Uuid,
        action: &mut Action,
        at: &str,
    ) -> Result<(), ConfigError> {
        let Some(id) = action.config.remove("workspace_id") else {
            return Ok(());
        };
        let path = format!("{at}.workspace_id");
        let Value::String(id) = id else {
            return Err(ConfigError::new(path, "must be a Slack workspace id (T…)"));
        };
        if action.config.contains_key("bot_token") || action.config.contains_key("webhook_url") {
            return Err(ConfigError::new(
                path,
                "give either workspace_id or a bot_token / webhook_url, not both",
            ));
        }
        let token = match self.settings.slack_workspaces.token(&id) {
            Some(token) => token.to_owned(),
            None => self
                .env_var(project_id, &env_var_name(&id), &path)
                .await?
                .ok_or_else(|| {
                    ConfigError::new(
                        &path,
                        format!(
                            "Slack workspace {id} is not registered: add its bot token to \
                             [slack.workspaces] in herald.toml or HERALD_SLACK_WORKSPACES, or \
                             as the env var {}",
                            env_var_name(&id)
                        ),
                    )
                })?,
        };
        action
            .config
            .insert("bot_token".into(), Value::String(token));
        Ok(())
    }
}
