//! Daemon settings: defaults, then the TOML config file, then environment
//! variables, then command-line flags (later wins).
//!
//! ```toml
//! # herald.toml — every key is optional
//! listen = "127.0.0.1:7777"
//! otlp_grpc_listen = "127.0.0.1:4317"   # off unless set
//! data_dir = "./herald-data"
//! plugins_dir = "./herald-data/plugins"
//! database_url = "sqlite://./herald-data/herald.db"
//! allow_private_networks = false
//! public_base_url = "https://herald.example.com"
//! api_keys = ["…"]
//! secret_key = "…"            # base64, 32 bytes (default: <data_dir>/secret-key)
//! secret_key_previous = []     # during a key rotation: the keys before it
//!
//! [plugins.webhook]
//! allowed_hosts = ["*"]
//! memory_limit_mb = 64
//!
//! [slack.workspaces]          # bot tokens for configs naming a workspace_id
//! T0123ABCD = "xoxb-…"
//!
//! [automations]
//! retry_schedule_ms = [0, 5000, 30000, 120000, 600000, 1800000, 3600000]
//! pause_after_failures = 5
//! organization_name = "herald"
//! ```
//!
//! Unknown keys are errors (a typo must not silently fall back to a
//! default), reported with the file, line and key.

use crate::automations::AutomationSettings;
use crate::automations::slack_workspaces::SlackWorkspaces;
use crate::plugins::{PluginPolicy, RuntimeConfig};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7777";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./herald-data";

/// The config file's contents; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address the HTTP API listens on.
    pub listen: Option<SocketAddr>,
    /// Address of the OTLP/gRPC listener (off unless set), e.g.
    /// `0.0.0.0:4317`. OTLP over HTTP is always on the API's listener.
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// Where Herald keeps its database, compile cache and generated API key.
    pub data_dir: Option<PathBuf>,
    /// Directory watched for `.wasm` plugins (default `<data_dir>/plugins`).
    pub plugins_dir: Option<PathBuf>,
    /// `sqlite://path` or `postgres://…` (default SQLite in the data dir).
    pub database_url: Option<String>,
    /// Let plugins reach private, loopback and link-local addresses.
    pub allow_private_networks: Option<bool>,
    /// Base URL used to build absolute links in notifications.
    pub public_base_url: Option<String>,
    /// API keys accepted as `Authorization: Bearer <key>`.
    pub api_keys: Option<Vec<String>>,
    /// The key secrets are sealed under in the database: 32 bytes in base64
    /// (`herald secrets generate-key` prints one). Default: the key in
    /// `<data_dir>/secret-key`, generated on first start. Daemons sharing a
    /// PostgreSQL database must all have the same key.
    pub secret_key: Option<String>,
    /// Keys secrets may still be sealed under: during a rotation, the old
    /// key, until the daemon has started once with the new `secret_key` (it
    /// re-seals everything at start).
    pub secret_key_previous: Option<Vec<String>>,
    /// Operator settings per plugin name.
    #[serde(default)]
    pub plugins: HashMap<String, PluginPolicy>,
    /// Delivery retries, pausing and payload settings of the automations
    /// engine.
    #[serde(default)]
    pub automations: AutomationSettings,
    /// Slack settings.
    #[serde(default)]
    pub slack: SlackSettings,
}

/// `[slack]`: what Herald needs to post to Slack as Braintrust configs
/// name it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// Workspace id → bot token (`xoxb-…`), for configs with a
    /// `workspace_id` instead of a token.
    #[serde(default)]
    pub workspaces: SlackWorkspaces,
}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }
}

/// Settings given on the command line or in the environment (clap fills
/// both), each overriding the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `HERALD_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--otlp-grpc-listen` / `HERALD_OTLP_GRPC_LISTEN`.
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// `--data-dir` / `HERALD_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--plugins-dir` / `HERALD_PLUGINS_DIR`.
    pub plugins_dir: Option<PathBuf>,
    /// `--database-url` / `HERALD_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--allow-private-networks` / `HERALD_ALLOW_PRIVATE_NETWORKS`.
    pub allow_private_networks: Option<bool>,
    /// `--public-base-url` / `HERALD_PUBLIC_BASE_URL`.
    pub public_base_url: Option<String>,
    /// `HERALD_API_KEYS` (comma-separated).
    pub api_keys: Option<Vec<String>>,
    /// `HERALD_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `HERALD_SECRET_KEY_PREVIOUS` (comma-separated).
    pub secret_key_previous: Option<Vec<String>>,
    /// `HERALD_SLACK_WORKSPACES` (`T…=xoxb-…`, comma-separated); added to
    /// the file's, winning on the same id.
    pub slack_workspaces: Option<SlackWorkspaces>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Address of the OTLP/gRPC listener, if it is on.
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Plugins directory.
    pub plugins_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Whether plugins may reach private networks.
    pub allow_private_networks: bool,
    /// Base URL for links in notifications.
    pub public_base_url: Option<String>,
    /// Configured API keys (empty: generate one on first start).
    pub api_keys: Vec<String>,
    /// The sealing key, if configured (else the data dir's key file).
    pub secret_key: Option<String>,
    /// Keys that may still open sealed secrets (a rotation).
    pub secret_key_previous: Vec<String>,
    /// Per-plugin operator settings.
    pub plugins: HashMap<String, PluginPolicy>,
    /// Automations engine settings.
    pub automations: AutomationSettings,
}

impl Settings {
    /// Merges defaults, the file and the overrides, and checks the result.
    pub fn resolve(file: FileConfig, overrides: Overrides) -> anyhow::Result<Self> {
        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let plugins_dir = overrides
            .plugins_dir
            .or(file.plugins_dir)
            .unwrap_or_else(|| data_dir.join("plugins"));
        let database_url = overrides
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("herald.db").display()));
        let settings = Self {
            listen: overrides
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            otlp_grpc_listen: overrides.otlp_grpc_listen.or(file.otlp_grpc_listen),
            data_dir,
            plugins_dir,
            database_url,
            allow_private_networks: overrides
                .allow_private_networks
                .or(file.allow_private_networks)
                .unwrap_or(false),
            public_base_url: overrides.public_base_url.or(file.public_base_url),
            api_keys: overrides.api_keys.or(file.api_keys).unwrap_or_default(),
            secret_key: overrides.secret_key.or(file.secret_key),
            secret_key_previous: overrides
                .secret_key_previous
                .or(file.secret_key_previous)
                .unwrap_or_default(),
            plugins: file.plugins,
            automations: AutomationSettings {
                slack_workspaces: file
                    .slack
                    .workspaces
                    .merged(overrides.slack_workspaces.unwrap_or_default()),
                ..file.automations
            },
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.automations.validate().map_err(anyhow::Error::msg)?;
        for (name, policy) in &self.plugins {
            policy.validate(name).map_err(anyhow::Error::msg)?;
        }
        let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|prefix| self.database_url.starts_with(prefix));
        if !scheme_ok {
            anyhow::bail!("database_url must start with sqlite:, postgres:// or postgresql://");
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            anyhow::bail!("public_base_url must be an http:// or https:// URL");
        }
        if self.api_keys.iter().any(|k| k.trim().len() < 16) {
            anyhow::bail!("api_keys: every key must be at least 16 characters");
        }
        Ok(())
    }

    /// The compile cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// How the plugin host is set up under these settings.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            plugins_dir: Some(self.plugins_dir.clone()),
            cache_dir: Some(self.cache_dir()),
            allow_private_networks: self.allow_private_networks,
            policies: self.plugins.clone(),
            ..RuntimeConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sources_win_and_defaults_fill_in() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/h\"").unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Overrides::default()
        };
        let s = Settings::resolve(file, overrides).unwrap();
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.plugins_dir, PathBuf::from("/srv/h/plugins"));
        assert_eq!(s.database_url, "sqlite:///srv/h/herald.db");
    }

    #[test]
    fn typos_are_errors_with_the_key() {
        let error = toml::from_str::<FileConfig>("lisen = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `lisen`"), "{error}");
        let error = toml::from_str::<FileConfig>("[plugins.webhook]\nallowed_host = []")
            .unwrap_err()
            .to_string();
        assert!(error.contains("allowed_host"), "{error}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let file: FileConfig =
            toml::from_str("[plugins.slack]\nallowed_hosts = [\"a*b\"]").unwrap();
        let error = Settings::resolve(file, Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("plugins.slack.allowed_hosts"), "{error}");
        let overrides = Overrides {
            database_url: Some("mysql://x".into()),
            ..Overrides::default()
        };
        assert!(Settings::resolve(FileConfig::default(), overrides).is_err());
    }
}
