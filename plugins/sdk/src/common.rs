//! Types every plugin uses, whatever its world: who it is ([`PluginInfo`]),
//! what is wrong with a config ([`ConfigError`]) and why a call failed
//! ([`PluginError`]).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// What a plugin tells the host about itself (the WIT `plugin-info`).
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Unique name (`[a-z0-9-]+`); the `action.type` that selects the plugin.
    pub name: String,
    /// The plugin's version, semver.
    pub version: String,
    /// One or two sentences for operators.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the config object.
    pub config_schema: Value,
    /// JSON Pointers of secret config fields, redacted by the host on read.
    pub secret_fields: Vec<String>,
}

impl PluginInfo {
    /// Starts a description with an open schema (`{"type":"object"}`).
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            config_schema: serde_json::json!({"type": "object"}),
            secret_fields: Vec::new(),
        }
    }

    /// Sets the JSON Schema of the config.
    pub fn schema(mut self, schema: Value) -> Self {
        self.config_schema = schema;
        self
    }

    /// Marks a config field (a JSON Pointer such as `/secret`) as secret.
    pub fn secret(mut self, pointer: &str) -> Self {
        self.secret_fields.push(pointer.to_owned());
        self
    }
}

/// One problem in a config, with the JSON Pointer of its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON Pointer to the field, `""` for the whole config.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path` (a JSON Pointer such as `/url`).
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Why a call failed, and whether a retry could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// What went wrong, in plain words. Never include secrets.
    pub message: String,
    /// Whether trying again later could succeed.
    pub retryable: bool,
    /// The earliest a retry makes sense, when the destination said so.
    pub retry_after_ms: Option<u64>,
    /// The receiver's HTTP status, when the failure is its answer (shown in
    /// the run history beside the message).
    pub status_code: Option<u16>,
}

impl PluginError {
    /// A failure that may pass if retried (timeouts, 5xx, 429…).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after_ms: None,
            status_code: None,
        }
    }

    /// A failure that will repeat (4xx, rejected payload, bad config).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after_ms: None,
            status_code: None,
        }
    }

    /// Adds the destination's requested delay before a retry.
    pub fn with_retry_after_ms(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }

    /// Adds the receiver's HTTP status.
    pub fn with_status_code(mut self, status: u16) -> Self {
        self.status_code = Some(status);
        self
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

/// What every plugin implements, whatever its world.
pub trait Plugin {
    /// The config, deserialized from the automation's JSON. Use
    /// `#[serde(deny_unknown_fields)]` so typos are reported with their path.
    type Config: DeserializeOwned;

    /// Describes the plugin: name, version, schema, secret fields.
    fn info() -> PluginInfo;

    /// Checks that deserialization cannot express (e.g. "must be an
    /// https URL"). The default accepts every config that deserializes.
    fn check_config(config: &Self::Config) -> Vec<ConfigError> {
        let _ = config;
        Vec::new()
    }
}

/// Parses and checks a config for plugin `P`, reporting problems with the
/// JSON Pointer of the offending field.
pub fn parse_config<P: Plugin>(json: &str) -> Result<P::Config, Vec<ConfigError>> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let config: P::Config = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let mut path = json_pointer(err.path());
        let message = err.inner().to_string();
        // serde reports a missing field at its parent; point at the field.
        if let Some(field) = missing_field_name(&message) {
            path.push('/');
            path.push_str(field);
        }
        vec![ConfigError::new(&path, strip_position(&message))]
    })?;
    let problems = P::check_config(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// serde_json appends " at line L column C"; the path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}
