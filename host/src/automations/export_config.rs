//! The `btql_export` config, in Braintrust's shape plus the fields an
//! S3-compatible store needs, and its checks.
//!
//! ```json
//! {"event_type": "btql_export",
//!  "export_definition": {"type": "log_spans"},
//!  "export_path": "s3://bucket/some/prefix",
//!  "format": "parquet",
//!  "interval_seconds": 3600,
//!  "batch_size": 1000,
//!  "credentials": {"type": "access_key", "access_key_id": "…", "secret_access_key": "…"},
//!  "region": "us-east-1",
//!  "endpoint_url": "http://127.0.0.1:9000",
//!  "force_path_style": true,
//!  "start_from": "2026-01-01T00:00:00Z"}
//! ```
//!
//! The secret access key is the only secret: it is redacted on every read
//! and never reaches the export plugin (the host signs the requests).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config_error::ConfigError;
use crate::capabilities::s3::S3Destination;

/// Rows per batch when `batch_size` is not set (Braintrust's default).
pub const DEFAULT_EXPORT_BATCH_SIZE: u64 = 1_000;

/// The largest `batch_size`: a batch is held in memory while it is encoded
/// and uploaded, so this bounds an export's memory.
pub const MAX_EXPORT_BATCH_SIZE: u64 = 100_000;

/// What an export exports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportDefinition {
    /// One row per trace: the root span with scores, tokens, cost and
    /// duration aggregated over the trace.
    LogTraces,
    /// One row per span.
    LogSpans,
    /// A custom read-only `SELECT` over the project's `spans` and `traces`.
    BtqlQuery {
        /// The query (see `export::query` for what it may use).
        btql_query: String,
    },
}

impl ExportDefinition {
    /// `spans`, `traces` or `query`: the shape named in object keys.
    pub fn shape(&self) -> &'static str {
        match self {
            ExportDefinition::LogTraces => "traces",
            ExportDefinition::LogSpans => "spans",
            ExportDefinition::BtqlQuery { .. } => "query",
        }
    }
}

/// Output format of an export (defined by the encoders, which are what
/// use it).
pub use crate::export::encoding::ExportFormat;

/// How the host authenticates to the bucket, tagged by `type` (defined by
/// the S3 capability, which is what uses it).
pub use crate::capabilities::s3::S3Credentials as ExportCredentials;

/// Where an export's objects go, parsed from `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPath {
    /// The bucket.
    pub bucket: String,
    /// The key prefix inside it, without leading or trailing `/`; may be
    /// empty.
    pub prefix: String,
}

impl ExportPath {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<ExportPath, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or("must be an s3://bucket/prefix URL")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(format!(
                "bucket {bucket:?} is not a valid S3 bucket name (3 to 63 lowercase letters, \
                 digits, dots and hyphens)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err("the prefix must not contain . or .. segments".into());
        }
        Ok(ExportPath {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// Braintrust's export `scope`: what one exported unit is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportScope {
    /// Every span as it arrives: what Herald exports (the default).
    Span,
    /// A trace once it has been idle `idle_seconds`: refused for now.
    Trace {
        /// How long a trace must go without new spans.
        #[serde(default)]
        idle_seconds: Option<serde_json::Value>,
    },
    /// Groups of rows: refused for now.
    Group {
        /// Braintrust's grouping settings, kept only to name them.
        #[serde(flatten)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
}

/// An S3 export (Braintrust's `btql_export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// What to export.
    pub export_definition: ExportDefinition,
    /// Braintrust's execution scope: only `{"type": "span"}`, the default,
    /// today (`trace` and `group` are refused with a message saying so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ExportScope>,
    /// `s3://bucket/prefix`; cannot change after creation.
    pub export_path: String,
    /// Output format.
    pub format: ExportFormat,
    /// Seconds between the starts of two runs while there is no backlog.
    #[serde(deserialize_with = "super::whole_number::deserialize")]
    pub interval_seconds: u64,
    /// Rows per object (default 1,000, at most 100,000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::whole_number::option"
    )]
    pub batch_size: Option<u64>,
    /// How to authenticate; the AWS default chain when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ExportCredentials>,
    /// The bucket's region (default `us-east-1`, or the default chain's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// An S3-compatible endpoint (MinIO, R2, Ceph…) instead of AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint`
    /// (most S3-compatible stores need this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Export only rows created at or after this time (RFC 3339). Older
    /// rows are skipped, but the cursor still moves past them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<DateTime<Utc>>,
}

impl ExportConfig {
    /// Rows per batch.
    pub fn batch_size(&self) -> u64 {
        self.batch_size.unwrap_or(DEFAULT_EXPORT_BATCH_SIZE)
    }

    /// Where the bucket is and how to reach it, as the S3 capability
    /// takes it.
    pub fn s3_destination(&self) -> S3Destination<'_> {
        let path = self.path();
        S3Destination {
            credentials: self.credentials.as_ref(),
            region: self.region.as_deref(),
            endpoint_url: self.endpoint_url.as_deref(),
            force_path_style: self.force_path_style.unwrap_or(false),
            bucket: path.bucket,
            prefix: path.prefix,
        }
    }

    /// The parsed `export_path` (checked when the config was parsed).
    pub fn path(&self) -> ExportPath {
        ExportPath::parse(&self.export_path).unwrap_or(ExportPath {
            bucket: String::new(),
            prefix: String::new(),
        })
    }

    /// Checks what serde cannot; errors carry paths under `at`.
    pub(super) fn check(&self, at: &str) -> Result<(), ConfigError> {
        ExportPath::parse(&self.export_path)
            .map_err(|e| ConfigError::new(format!("{at}.export_path"), e))?;
        match &self.scope {
            None | Some(ExportScope::Span) => {}
            Some(ExportScope::Trace { .. }) => {
                return Err(ConfigError::new(
                    format!("{at}.scope.type"),
                    "trace scope (export a trace once it is idle) is not supported by Herald \
                     yet: use span scope (the default), or export_definition log_traces, which \
                     writes one row per trace",
                ));
            }
            Some(ExportScope::Group { .. }) => {
                return Err(ConfigError::new(
                    format!("{at}.scope.type"),
                    "group scope is not supported by Herald: use span scope (the default) or \
                     a btql_query export with GROUP BY",
                ));
            }
        }
        if let Some(size) = self.batch_size
            && !(1..=MAX_EXPORT_BATCH_SIZE).contains(&size)
        {
            return Err(ConfigError::new(
                format!("{at}.batch_size"),
                format!("must be between 1 and {MAX_EXPORT_BATCH_SIZE}"),
            ));
        }
        if let ExportDefinition::BtqlQuery { btql_query } = &self.export_definition
            && btql_query.trim().is_empty()
        {
            return Err(ConfigError::new(
                format!("{at}.export_definition.btql_query"),
                "must be a SELECT query",
            ));
        }
        if let Some(endpoint) = &self.endpoint_url {
            let parsed = url::Url::parse(endpoint).map_err(|e| {
                ConfigError::new(format!("{at}.endpoint_url"), format!("not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(ConfigError::new(
                    format!("{at}.endpoint_url"),
                    "must be an http:// or https:// URL with a host",
                ));
            }
        }
        if let Some(region) = &self.region
            && (region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(ConfigError::new(
                format!("{at}.region"),
                "must be a region name such as us-east-1",
            ));
        }
        match &self.credentials {
            Some(ExportCredentials::AwsIam { role_arn, .. }) if !role_arn.starts_with("arn:") => {
                Err(ConfigError::new(
                    format!("{at}.credentials.role_arn"),
                    "must be a role ARN (arn:aws:iam::<account>:role/<name>)",
                ))
            }
            Some(ExportCredentials::AccessKey {
                access_key_id,
                secret_access_key,
            }) if access_key_id.is_empty() || secret_access_key.is_empty() => {
                let field = if access_key_id.is_empty() {
                    "access_key_id"
                } else {
                    "secret_access_key"
                };
                Err(ConfigError::new(
                    format!("{at}.credentials.{field}"),
                    "must not be empty",
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths_parse_into_bucket_and_prefix() {
        let path = ExportPath::parse("s3://my-bucket/a/b/").unwrap();
        assert_eq!(
            (path.bucket.as_str(), path.prefix.as_str()),
            ("my-bucket", "a/b")
        );
        let path = ExportPath::parse("s3://my-bucket").unwrap();
        assert_eq!(path.prefix, "");
        assert!(ExportPath::parse("https://x/y").is_err());
        assert!(ExportPath::parse("s3://Bad_Bucket/x").is_err());
        assert!(ExportPath::parse("s3://bucket/../x").is_err());
    }
}
