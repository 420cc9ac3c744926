//! What the operator allows each plugin: hosts, memory, CPU time, HTTP
//! limits. Set per plugin name in the config file:
//!
//! ```toml
//! [plugins.webhook]
//! allowed_hosts = ["*.example.com"]
//! memory_limit_mb = 64
//!
//! [plugins.teams]
//! allowed_hosts = ["*.webhook.office.com"]
//! ```
//!
//! Defaults: the `webhook` plugin may reach any public host (its URLs come
//! from automation configs, which only API-key holders write); `slack` may
//! reach Slack's API hosts; every other plugin reaches nothing until the
//! operator says so. Private addresses stay refused for all of them unless
//! `allow_private_networks` is set.

use super::contract::World;
use super::sandbox::SandboxLimits;
use crate::capabilities::http::HttpLimits;
use crate::capabilities::net_guard::HostAllowList;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One plugin's operator settings; every field is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PluginPolicy {
    /// Hosts the plugin may reach over HTTP: `*` (any), `*.example.com`
    /// (subdomains) or `example.com` (exact). Replaces the default list.
    pub allowed_hosts: Option<Vec<String>>,
    /// Linear memory cap per call, MiB (default 128).
    pub memory_limit_mb: Option<u64>,
    /// CPU time per call, ms, excluding time in host capabilities (default 2000).
    pub cpu_time_ms: Option<u64>,
    /// Wall-clock time per call, ms, including host capabilities (default 60000).
    pub wall_time_ms: Option<u64>,
    /// Cap on one HTTP request's duration, ms (default 10000).
    pub http_timeout_ms: Option<u64>,
    /// Cap on one HTTP response body, bytes (default 4 MiB).
    pub max_response_bytes: Option<u64>,
}

/// Default HTTP timeout cap.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default response size cap.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 << 20;
/// Request bodies a plugin may send.
pub const MAX_REQUEST_BYTES: u64 = 8 << 20;

/// The allow-list a plugin gets when the operator configures none.
pub fn default_allowed_hosts(plugin: &str) -> Vec<String> {
    match plugin {
        "webhook" => vec!["*".into()],
        "slack" => vec!["slack.com".into(), "*.slack.com".into()],
        "pagerduty" => vec![
            "events.pagerduty.com".into(),
            "events.eu.pagerduty.com".into(),
        ],
        _ => Vec::new(),
    }
}

/// Default wall-clock limit of one retention call: six hours.
pub const RETENTION_WALL_TIME: Duration = Duration::from_secs(6 * 3600);

/// Default wall-clock limit of one export call (one batch's upload):
/// thirty minutes, for large objects over slow links.
pub const EXPORT_WALL_TIME: Duration = Duration::from_secs(30 * 60);

impl PluginPolicy {
    /// Checks the settings, naming the bad field.
    pub fn validate(&self, plugin: &str) -> Result<(), String> {
        if let Some(hosts) = &self.allowed_hosts {
            HostAllowList::parse(hosts)
                .map_err(|e| format!("plugins.{plugin}.allowed_hosts: {e}"))?;
        }
        let positive = [
            ("memory_limit_mb", self.memory_limit_mb),
            ("cpu_time_ms", self.cpu_time_ms),
            ("wall_time_ms", self.wall_time_ms),
            ("http_timeout_ms", self.http_timeout_ms),
            ("max_response_bytes", self.max_response_bytes),
        ];
        for (field, value) in positive {
            if value == Some(0) {
                return Err(format!("plugins.{plugin}.{field}: must be greater than 0"));
            }
        }
        Ok(())
    }

    /// The sandbox limits this policy gives a plugin of `world`. A
    /// retention policy's default wall time is [`RETENTION_WALL_TIME`]: a
    /// purge is a long series of host calls; an export destination's is
    /// [`EXPORT_WALL_TIME`], for uploads (the CPU budget, which excludes
    /// time in the host, stays the usual one for both).
    pub fn sandbox_limits(&self, world: World) -> SandboxLimits {
        let mut defaults = SandboxLimits::default();
        match world {
            World::RetentionPolicy => defaults.wall_time = RETENTION_WALL_TIME,
            World::ExportDestination => defaults.wall_time = EXPORT_WALL_TIME,
            World::AlertDestination => {}
        }
        SandboxLimits {
            memory_bytes: self
                .memory_limit_mb
                .map_or(defaults.memory_bytes, |mb| mb << 20),
            cpu_time: self
                .cpu_time_ms
                .map_or(defaults.cpu_time, Duration::from_millis),
            wall_time: self
                .wall_time_ms
                .map_or(defaults.wall_time, Duration::from_millis),
        }
    }

    /// The HTTP limits this policy gives plugin `name`.
    pub fn http_limits(&self, name: &str) -> HttpLimits {
        let hosts = self
            .allowed_hosts
            .clone()
            .unwrap_or_else(|| default_allowed_hosts(name));
        HttpLimits {
            // Validated at start-up; an unparsable list allows nothing.
            allowed_hosts: HostAllowList::parse(&hosts).unwrap_or_default(),
            timeout: self
                .http_timeout_ms
                .map_or(DEFAULT_HTTP_TIMEOUT, Duration::from_millis),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            max_request_bytes: MAX_REQUEST_BYTES,
        }
    }
}
