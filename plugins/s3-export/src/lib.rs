//! The S3 export destination: one object per batch, under date partitions.
//!
//! The host reads the rows, encodes them (JSON Lines or Parquet) and holds
//! the bucket's credentials and endpoint; this plugin only decides the
//! object layout and writes through the host's object-store capability,
//! handing back the host's own buffer so the batch is never copied into the
//! plugin. Each batch goes to
//! `{prefix}/{shape}/date=YYYY-MM-DD/{automation_id}_{first:020}_{last:020}.{ext}`
//! (see `layout.rs`). The key depends only on the batch (its ingest sequences
//! and the UTC day its run started), so a retry of the same batch writes the
//! same key and overwrites the object rather than duplicating it. (A batch
//! that a later run exports again on another day, or cut at other
//! sequences, is a different object.)
//!
//! The destination check writes, reads back and deletes
//! `{prefix}/_herald_check/destination-check.txt` (see `check.rs`).

mod check;
mod layout;

use herald_plugin::export::object_store::{self, Payload};
use herald_plugin::export::{Batch, CheckStep, ExportDestination, Written};
use herald_plugin::{ConfigError, Plugin, PluginError, PluginInfo, log};
use serde::Deserialize;

/// The destination's config. The bucket, endpoint and credentials are the
/// host's; only the layout inside the bucket is the plugin's.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Key prefix inside the bucket, e.g. `exports/herald`. May be empty;
    /// no slash at either end.
    #[serde(default)]
    prefix: String,
}

struct S3Export;

impl Plugin for S3Export {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "s3-export",
            env!("CARGO_PKG_VERSION"),
            "Writes each exported batch as one object in an S3 or S3-compatible bucket, under {prefix}/{shape}/date=YYYY-MM-DD/; a retried batch overwrites its object.",
        )
        .schema(serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "prefix": {
                    "type": "string",
                    "maxLength": layout::MAX_PREFIX_BYTES,
                    "pattern": "^([^/]+(/[^/]+)*)?$",
                    "default": "",
                    "description": "Key prefix inside the bucket, e.g. exports/herald. May be empty; no slash at either end."
                }
            }
        }))
    }

    fn check_config(config: &Config) -> Vec<ConfigError> {
        match layout::prefix_problem(&config.prefix) {
            Some(problem) => vec![ConfigError::new("/prefix", problem)],
            None => Vec::new(),
        }
    }
}

impl ExportDestination for S3Export {
    fn export_batch(
        config: Config,
        batch: &Batch,
        body: &Payload<'_>,
    ) -> Result<Written, PluginError> {
        let encoding = layout::encoding(&batch.format).ok_or_else(|| {
            PluginError::permanent(format!(
                "unsupported export format `{}`: expected jsonl or parquet",
                batch.format.escape_debug()
            ))
        })?;
        let key =
            layout::batch_key(&config.prefix, batch, encoding).map_err(PluginError::permanent)?;
        let info = object_store::put(&key, encoding.content_type, body).map_err(|error| {
            let mut error = PluginError::from(error);
            error.message = format!("could not write s3 key {key}: {}", error.message);
            error
        })?;
        log::info(&format!(
            "wrote s3 key {key} ({} bytes, {} rows)",
            info.size, batch.row_count
        ));
        Ok(Written::one(key, info.size))
    }

    fn check_destination(config: Config) -> Vec<CheckStep> {
        check::run(&mut check::HostStore, &layout::check_key(&config.prefix))
    }
}

herald_plugin::export_export_destination!(S3Export);

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin::export::object_store::StoreError;
    use herald_plugin::parse_config;

    #[test]
    fn configs() {
        assert_eq!(parse_config::<S3Export>("{}").unwrap().prefix, "");
        assert_eq!(
            parse_config::<S3Export>(r#"{"prefix": "exports/herald"}"#)
                .unwrap()
                .prefix,
            "exports/herald"
        );
        let errors = parse_config::<S3Export>(r#"{"prefix": "exports/"}"#)
            .err()
            .unwrap();
        assert_eq!(errors[0].path, "/prefix");
        let errors = parse_config::<S3Export>(r#"{"prefx": "a"}"#).err().unwrap();
        assert!(errors[0].message.contains("unknown field"), "{errors:?}");
    }

    #[test]
    fn describes_itself_without_secrets() {
        let info = S3Export::info();
        assert_eq!(info.name, "s3-export");
        assert!(info.secret_fields.is_empty());
        assert_eq!(info.config_schema["additionalProperties"], false);
    }

    #[test]
    fn store_errors_become_plugin_errors() {
        let cases = [
            (
                StoreError::AccessDenied("no".into()),
                "access denied: no",
                false,
            ),
            (
                StoreError::NoSuchBucket("b".into()),
                "no such bucket: b",
                false,
            ),
            (StoreError::NotFound("k".into()), "no such key: k", true),
            (
                StoreError::Unreachable("timed out".into()),
                "the store could not be reached: timed out",
                true,
            ),
            (
                StoreError::Other("slow down".into()),
                "the store failed: slow down",
                true,
            ),
        ];
        for (store_error, message, retryable) in cases {
            let error = PluginError::from(store_error);
            assert_eq!(error.message, message);
            assert_eq!(error.retryable, retryable, "{message}");
        }
    }
}
