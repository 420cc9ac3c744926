//! The retention policy: everything older than `retention_days` goes.
//!
//! The cutoff is the run's clock minus the window. A dry run (the API's
//! preview) only counts. A real run first counts (so the run history shows
//! the oldest and newest affected records), then deletes in batches of
//! `batch_size` through the host until a batch comes back empty. The host
//! does the deleting, confined to the automation's project, without loading
//! rows; a run cut short (a crash, a deadline) leaves only records that the
//! next run deletes, because the cutoff only ever moves forward.

use herald_plugin::retention::{RetentionOutcome, RetentionPolicy, RetentionRequest, records};
use herald_plugin::{ConfigError, Plugin, PluginError, PluginInfo, log};
use serde::Deserialize;

/// The default number of records per delete batch.
const DEFAULT_BATCH_SIZE: u32 = 5_000;

/// The policy's config: only tuning, the window comes with each request.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Records per delete batch (1–100,000). Smaller batches hold the
    /// database's write lock for less time; larger ones purge faster.
    #[serde(default)]
    batch_size: Option<u32>,
}

struct Retention;

impl Plugin for Retention {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo::new(
            "retention",
            env!("CARGO_PKG_VERSION"),
            "Deletes project logs, experiments or dataset rows older than the retention window, in bounded batches.",
        )
        .schema(serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000,
                               "description": "Records per delete batch (default 5000)."}
            }
        }))
    }

    fn check_config(config: &Config) -> Vec<ConfigError> {
        match config.batch_size {
            Some(n) if !(1..=100_000).contains(&n) => {
                vec![ConfigError::new(
                    "/batch_size",
                    "must be between 1 and 100000",
                )]
            }
            _ => Vec::new(),
        }
    }
}

impl RetentionPolicy for Retention {
    fn apply(config: Config, request: &RetentionRequest) -> Result<RetentionOutcome, PluginError> {
        let cutoff_ms = request.cutoff_ms();
        let affected = records::count_older_than(request.object_type, cutoff_ms)
            .map_err(PluginError::retryable)?;
        let mut outcome = RetentionOutcome {
            cutoff_ms,
            affected,
            deleted: 0,
            batches: 0,
        };
        if request.dry_run || outcome.affected.count == 0 {
            return Ok(outcome);
        }
        let batch = config.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        loop {
            let deleted = records::delete_older_than(request.object_type, cutoff_ms, batch)
                .map_err(PluginError::retryable)?;
            if deleted == 0 {
                break;
            }
            outcome.deleted += deleted;
            outcome.batches += 1;
        }
        log::info(&format!(
            "deleted {} records in {} batches",
            outcome.deleted, outcome.batches
        ));
        Ok(outcome)
    }
}

herald_plugin::export_retention_policy!(Retention);
