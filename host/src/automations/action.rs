//! An alert's destination as configs write it: `{"type": "<plugin>", …the
//! plugin's config}`, and where one sits in a config. A leaf, so that each
//! kind's config module can hold actions without importing the others.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An alert's destination: the plugin named by `type`, and its config (the
/// rest of the object).
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The plugin name.
    pub plugin: String,
    /// The plugin's config.
    pub config: Map<String, Value>,
}

/// One destination of an alert, where it sits in the config.
#[derive(Debug, Clone)]
pub struct ActionAt<'a> {
    /// Its path under `config` (`action`, `actions[0]`).
    pub path: String,
    /// Its deliveries' `action_index` (`None`: the single `action`).
    pub index: Option<i32>,
    /// The destination.
    pub action: &'a Action,
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = Map::with_capacity(self.config.len() + 1);
        object.insert("type".into(), Value::String(self.plugin.clone()));
        object.extend(self.config.clone());
        object.serialize(serializer)
    }
}

/// Braintrust's `formatting_prompt`: instructions for its Loop agent.
pub const FORMATTING_PROMPT_REFUSED: &str = "needs Braintrust's Loop agent, which Herald does \
     not have: remove it (Herald sends its own message; Slack takes message_template)";

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut object = Map::deserialize(deserializer)?;
        match object.remove("type") {
            Some(Value::String(plugin)) if !plugin.is_empty() => Ok(Action {
                plugin,
                config: object,
            }),
            _ => Err(serde::de::Error::custom(
                "`type` must name an alert destination plugin, e.g. \"webhook\" or \"slack\"",
            )),
        }
    }
}
