//! Retention policies: the `retention-policy` world.
//!
//! Implement [`RetentionPolicy`] and call [`export_retention_policy!`] once.
//! The host calls `apply` once per run with the automation's object type and
//! retention window; the policy decides what goes and deletes it through
//! [`records`], which works in the host, on the automation's project only,
//! in bounded batches, without ever handing rows to the plugin.
//!
//! [`export_retention_policy!`]: crate::export_retention_policy

use crate::{Plugin, PluginError};

/// Which records a retention run is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// Project log spans, by `created`; a deleted root takes its trace.
    ProjectLogs,
    /// Whole experiments, by the experiment's creation time.
    Experiment,
    /// Dataset rows, by `created`; the dataset stays.
    Dataset,
}

/// What a cutoff affects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Affected {
    /// Rows (or experiments) older than the cutoff.
    pub count: u64,
    /// The oldest affected timestamp, Unix milliseconds.
    pub oldest_ms: Option<i64>,
    /// The newest affected timestamp, Unix milliseconds.
    pub newest_ms: Option<i64>,
    /// A few affected ids, for a preview.
    pub sample_ids: Vec<String>,
}

/// One retention run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRequest {
    /// What to purge.
    pub object_type: ObjectType,
    /// Keep records younger than this many days.
    pub retention_days: u32,
    /// The run's clock, Unix milliseconds.
    pub now_ms: i64,
    /// Count only; delete nothing.
    pub dry_run: bool,
}

impl RetentionRequest {
    /// `now_ms` minus the window.
    pub fn cutoff_ms(&self) -> i64 {
        self.now_ms - i64::from(self.retention_days) * 86_400_000
    }
}

/// What a run did or would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// The cutoff used, Unix milliseconds.
    pub cutoff_ms: i64,
    /// What was affected before deleting.
    pub affected: Affected,
    /// Records deleted (0 on a dry run).
    pub deleted: u64,
    /// Delete batches run.
    pub batches: u32,
}

/// A retention policy.
pub trait RetentionPolicy: Plugin {
    /// Applies the policy to one request.
    fn apply(
        config: Self::Config,
        request: &RetentionRequest,
    ) -> Result<RetentionOutcome, PluginError>;
}

/// The `records` capability: count and delete the project's records by age.
pub mod records {
    use super::{Affected, ObjectType};
    use crate::__bindings::retention_world::herald::automation::records as wit;

    fn to_wit(object_type: ObjectType) -> wit::ObjectType {
        match object_type {
            ObjectType::ProjectLogs => wit::ObjectType::ProjectLogs,
            ObjectType::Experiment => wit::ObjectType::Experiment,
            ObjectType::Dataset => wit::ObjectType::Dataset,
        }
    }

    /// What is older than `cutoff_ms`. Deletes nothing.
    pub fn count_older_than(object_type: ObjectType, cutoff_ms: i64) -> Result<Affected, String> {
        wit::count_older_than(to_wit(object_type), cutoff_ms).map(|a| Affected {
            count: a.count,
            oldest_ms: a.oldest_ms,
            newest_ms: a.newest_ms,
            sample_ids: a.sample_ids,
        })
    }

    /// Deletes at most `max_rows` records older than `cutoff_ms`; returns
    /// how many went. Call until it returns 0.
    pub fn delete_older_than(
        object_type: ObjectType,
        cutoff_ms: i64,
        max_rows: u32,
    ) -> Result<u64, String> {
        wit::delete_older_than(to_wit(object_type), cutoff_ms, max_rows)
    }

    pub(crate) fn from_wit(object_type: wit::ObjectType) -> ObjectType {
        match object_type {
            wit::ObjectType::ProjectLogs => ObjectType::ProjectLogs,
            wit::ObjectType::Experiment => ObjectType::Experiment,
            wit::ObjectType::Dataset => ObjectType::Dataset,
        }
    }
}

#[doc(hidden)]
pub mod __glue {
    use super::{RetentionPolicy, RetentionRequest};
    use crate::__bindings::retention_world::{self as w, config_or_error, error_to_wit};
    use w::exports::herald::automation::retention as wit;
    use w::herald::automation::records as records_wit;

    /// `apply` for plugin `P`.
    pub fn apply<P: RetentionPolicy>(
        config: String,
        request: wit::RetentionRequest,
    ) -> Result<wit::RetentionOutcome, w::herald::automation::types::PluginError> {
        let config = config_or_error::<P>(&config)?;
        let request = RetentionRequest {
            object_type: super::records::from_wit(request.object_type),
            retention_days: request.retention_days,
            now_ms: request.now_ms,
            dry_run: request.dry_run,
        };
        P::apply(config, &request)
            .map(|o| wit::RetentionOutcome {
                cutoff_ms: o.cutoff_ms,
                affected: records_wit::Affected {
                    count: o.affected.count,
                    oldest_ms: o.affected.oldest_ms,
                    newest_ms: o.affected.newest_ms,
                    sample_ids: o.affected.sample_ids,
                },
                deleted: o.deleted,
                batches: o.batches,
            })
            .map_err(error_to_wit)
    }
}

/// Exports `$plugin` (a [`RetentionPolicy`]) as the component's
/// implementation of the `retention-policy` world. Call it once, at the
/// crate root of a `cdylib`.
#[macro_export]
macro_rules! export_retention_policy {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __HeraldRetentionExport;

        impl $crate::__bindings::retention_world::exports::herald::automation::plugin::Guest
            for __HeraldRetentionExport
        {
            fn describe()
            -> $crate::__bindings::retention_world::herald::automation::types::PluginInfo {
                $crate::__bindings::retention_world::describe::<$plugin>()
            }
            fn validate_config(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                (),
                ::std::vec::Vec<
                    $crate::__bindings::retention_world::herald::automation::types::ConfigError,
                >,
            > {
                $crate::__bindings::retention_world::validate::<$plugin>(config)
            }
        }

        impl $crate::__bindings::retention_world::exports::herald::automation::retention::Guest
            for __HeraldRetentionExport
        {
            fn apply(
                config: ::std::string::String,
                request: $crate::__bindings::retention_world::exports::herald::automation::retention::RetentionRequest,
            ) -> ::std::result::Result<
                $crate::__bindings::retention_world::exports::herald::automation::retention::RetentionOutcome,
                $crate::__bindings::retention_world::herald::automation::types::PluginError,
            > {
                $crate::retention::__glue::apply::<$plugin>(config, request)
            }
        }

        $crate::__bindings::retention_world::__herald_export_retention_world!(
            __HeraldRetentionExport
        );
    };
}
