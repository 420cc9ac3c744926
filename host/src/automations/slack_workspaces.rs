//! Slack workspaces the operator registers, for configs in Braintrust's
//! Slack shape: `{"type": "slack", "workspace_id": "T…", "channel": "C…"}`.
//!
//! Braintrust installs its Slack app per workspace; self-hosted, the
//! operator gives Herald each workspace's bot token instead, in
//! `herald.toml` (`[slack.workspaces]`, `T0123ABCD = "xoxb-…"`), in
//! `HERALD_SLACK_WORKSPACES` (`T0123ABCD=xoxb-…,T0456=xoxb-…`), or as an
//! env var named `SLACK_WORKSPACE_<workspace id>` (project, then
//! organization) through `/v1/env_var`. Delivery puts the token in place
//! of `workspace_id` (`secret_refs`), so the Slack plugin posts with
//! `chat.postMessage` as it does for a config holding a `bot_token`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Registered workspaces: id → bot token. Its `Debug` shows ids only.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SlackWorkspaces(BTreeMap<String, String>);

impl std::fmt::Debug for SlackWorkspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The env var that may hold workspace `id`'s bot token.
pub fn env_var_name(id: &str) -> String {
    format!("SLACK_WORKSPACE_{id}")
}

impl SlackWorkspaces {
    /// Parses `HERALD_SLACK_WORKSPACES`: `T…=xoxb-…` pairs, comma-separated.
    pub fn parse_list(list: &str) -> Result<Self, String> {
        let mut workspaces = BTreeMap::new();
        for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((id, token)) = pair.split_once('=') else {
                return Err(format!(
                    "HERALD_SLACK_WORKSPACES: {:?} is not WORKSPACE_ID=TOKEN",
                    pair.split('=').next().unwrap_or_default()
                ));
            };
            workspaces.insert(id.trim().to_owned(), token.trim().to_owned());
        }
        Ok(Self(workspaces))
    }

    /// These workspaces, then `other`'s (which win on the same id).
    pub fn merged(mut self, other: SlackWorkspaces) -> Self {
        self.0.extend(other.0);
        self
    }

    /// Checks every entry; `Err` names the workspace (never the token).
    pub fn validate(&self) -> Result<(), String> {
        for (id, token) in &self.0 {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "slack.workspaces: {id:?} is not a Slack workspace id (e.g. T0123ABCD)"
                ));
            }
            if !token.starts_with("xoxb-") && !token.starts_with("xoxp-") {
                return Err(format!(
                    "slack.workspaces.{id}: the token must be a bot token (xoxb-…)"
                ));
            }
        }
        Ok(())
    }

    /// Workspace `id`'s bot token, if registered.
    pub fn token(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_tokens_stay_out_of_debug() {
        let w = SlackWorkspaces::parse_list(" T01=xoxb-1 , T02=xoxb-2 ").unwrap();
        assert_eq!(w.token("T01"), Some("xoxb-1"));
        assert!(w.validate().is_ok());
        assert_eq!(format!("{w:?}"), r#"{"T01", "T02"}"#);
        assert!(SlackWorkspaces::parse_list("T01").is_err());
        assert!(
            SlackWorkspaces::parse_list("T01=hunter2")
                .unwrap()
                .validate()
                .is_err_and(|e| !e.contains("hunter2"))
        );
        let file = SlackWorkspaces::parse_list("T01=xoxb-file").unwrap();
        assert_eq!(
            file.merged(w).token("T01"),
            Some("xoxb-1"),
            "the environment wins"
        );
    }
}
