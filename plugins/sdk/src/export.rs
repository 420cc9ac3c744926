//! Export destinations: the `export-destination` world.
//!
//! Implement [`ExportDestination`] and call [`export_export_destination!`]
//! once. The host reads the rows, encodes one batch (JSON Lines or Parquet)
//! in its own memory and calls `export_batch` with a handle to those bytes;
//! the destination decides where the batch goes (the object key) and writes
//! it through [`object_store`], which the host confines to the automation's
//! bucket with credentials the plugin never sees. The plugin has no network
//! of its own.
//!
//! A batch is named by its first and last ingest sequence, which do not
//! change when the host retries it: derive the key from them and a retry
//! overwrites the object instead of adding a duplicate.
//!
//! [`export_export_destination!`]: crate::export_export_destination

use crate::{Plugin, PluginError};

pub use object_store::Payload;

/// One batch of rows the host has already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The automation's id.
    pub automation_id: String,
    /// The project's id.
    pub project_id: String,
    /// What the rows are: `spans`, `traces` or `query`.
    pub shape: String,
    /// How the body is encoded: `jsonl` or `parquet`.
    pub format: String,
    /// Number of rows in the batch.
    pub row_count: u64,
    /// The ingest sequence of the first row in the batch.
    pub first_sequence: u64,
    /// The ingest sequence of the last row in the batch. With
    /// `first_sequence` it names the batch deterministically, so a retry can
    /// overwrite instead of duplicating.
    pub last_sequence: u64,
    /// When the run started, Unix milliseconds (for date partitions).
    pub run_started_ms: i64,
}

/// What a batch export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The keys of the objects written.
    pub keys: Vec<String>,
    /// Bytes written in total.
    pub bytes: u64,
}

impl Written {
    /// One object of `bytes` bytes written at `key`.
    pub fn one(key: impl Into<String>, bytes: u64) -> Self {
        Self {
            keys: vec![key.into()],
            bytes,
        }
    }
}

/// The result of one step of a destination check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStep {
    /// `write`, `read` or `delete` (or `config` when the config is invalid).
    pub step: String,
    /// Whether the step worked.
    pub ok: bool,
    /// What happened, in plain words (the store's error when not ok).
    pub message: String,
}

impl CheckStep {
    /// A step that worked.
    pub fn passed(step: &str, message: impl Into<String>) -> Self {
        Self {
            step: step.to_owned(),
            ok: true,
            message: message.into(),
        }
    }

    /// A step that failed, with why.
    pub fn failed(step: &str, message: impl Into<String>) -> Self {
        Self {
            step: step.to_owned(),
            ok: false,
            message: message.into(),
        }
    }
}

/// An export destination.
pub trait ExportDestination: Plugin {
    /// Writes one encoded batch. Called once per attempt; a retry passes the
    /// same batch (same sequences) again.
    fn export_batch(
        config: Self::Config,
        batch: &Batch,
        body: &Payload<'_>,
    ) -> Result<Written, PluginError>;

    /// Writes a small test object, reads it back and deletes it, reporting
    /// each step. Stop at the first failed step. An invalid config never
    /// reaches this method: the SDK reports it as one failed `config` step.
    fn check_destination(config: Self::Config) -> Vec<CheckStep>;
}

/// The `object-store` capability: write, read and delete objects in the
/// automation's bucket. The host holds the credentials and the endpoint;
/// the plugin only names keys.
pub mod object_store {
    use crate::__bindings::export_world::herald::automation::object_store as wit;
    use crate::PluginError;

    /// The encoded batch the host prepared, borrowed for one call. Its bytes
    /// stay in the host: pass it to [`put`] rather than reading it into the
    /// plugin's memory.
    #[derive(Debug, Clone, Copy)]
    pub struct Payload<'a> {
        resource: &'a wit::Payload,
    }

    impl<'a> Payload<'a> {
        pub(crate) fn new(resource: &'a wit::Payload) -> Self {
            Self { resource }
        }

        /// Size in bytes.
        pub fn size(&self) -> u64 {
            self.resource.size()
        }

        /// Reads up to `len` bytes starting at `offset` (fewer at the end).
        /// This copies them into the plugin: only for peeking, e.g. at a
        /// header.
        pub fn read(&self, offset: u64, len: u32) -> Vec<u8> {
            self.resource.read(offset, len)
        }
    }

    /// What the store said about a written object.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ObjectInfo {
        /// The full key written.
        pub key: String,
        /// Size in bytes.
        pub size: u64,
        /// The store's entity tag, when it returns one.
        pub etag: Option<String>,
    }

    /// Why an object operation failed, in the store's own terms. Each
    /// variant carries the store's message.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum StoreError {
        /// The credentials are not allowed to do this (S3 `AccessDenied`).
        AccessDenied(String),
        /// The bucket does not exist (S3 `NoSuchBucket`).
        NoSuchBucket(String),
        /// The key does not exist (S3 `NoSuchKey`).
        NotFound(String),
        /// The endpoint could not be reached or answered garbage.
        Unreachable(String),
        /// Anything else.
        Other(String),
    }

    impl StoreError {
        /// Whether trying again later could succeed: not when the
        /// credentials or the bucket are wrong, which only the operator can
        /// fix.
        pub fn retryable(&self) -> bool {
            !matches!(self, Self::AccessDenied(_) | Self::NoSuchBucket(_))
        }
    }

    impl std::fmt::Display for StoreError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let (what, detail) = match self {
                Self::AccessDenied(m) => ("access denied", m),
                Self::NoSuchBucket(m) => ("no such bucket", m),
                Self::NotFound(m) => ("no such key", m),
                Self::Unreachable(m) => ("the store could not be reached", m),
                Self::Other(m) => ("the store failed", m),
            };
            if detail.is_empty() {
                f.write_str(what)
            } else {
                write!(f, "{what}: {detail}")
            }
        }
    }

    impl std::error::Error for StoreError {}

    impl From<StoreError> for PluginError {
        fn from(error: StoreError) -> Self {
            if error.retryable() {
                PluginError::retryable(error.to_string())
            } else {
                PluginError::permanent(error.to_string())
            }
        }
    }

    fn from_wit(error: wit::StoreError) -> StoreError {
        match error {
            wit::StoreError::AccessDenied(m) => StoreError::AccessDenied(m),
            wit::StoreError::NoSuchBucket(m) => StoreError::NoSuchBucket(m),
            wit::StoreError::NotFound(m) => StoreError::NotFound(m),
            wit::StoreError::Unreachable(m) => StoreError::Unreachable(m),
            wit::StoreError::Other(m) => StoreError::Other(m),
        }
    }

    fn info_from_wit(info: wit::ObjectInfo) -> ObjectInfo {
        ObjectInfo {
            key: info.key,
            size: info.size,
            etag: info.etag,
        }
    }

    /// Uploads the host-prepared `body` to `key`, replacing any object
    /// there. The host uploads from its own memory (in parts when large).
    pub fn put(
        key: &str,
        content_type: &str,
        body: &Payload<'_>,
    ) -> Result<ObjectInfo, StoreError> {
        wit::put(key, content_type, body.resource)
            .map(info_from_wit)
            .map_err(from_wit)
    }

    /// Uploads small plugin-made bytes to `key` (at most 8 MiB), replacing
    /// any object there.
    pub fn put_bytes(key: &str, content_type: &str, body: &[u8]) -> Result<ObjectInfo, StoreError> {
        wit::put_bytes(key, content_type, body)
            .map(info_from_wit)
            .map_err(from_wit)
    }

    /// Reads the object at `key`, which must be at most `max_bytes` long.
    pub fn get_bytes(key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        wit::get_bytes(key, max_bytes).map_err(from_wit)
    }

    /// Deletes the object at `key`; deleting a missing key succeeds.
    pub fn delete(key: &str) -> Result<(), StoreError> {
        wit::delete(key).map_err(from_wit)
    }
}

#[doc(hidden)]
pub mod __glue {
    use super::{Batch, ExportDestination, object_store::Payload};
    use crate::__bindings::export_world::{self as w, config_or_error, error_to_wit};
    use w::exports::herald::automation::exporting as wit;
    use w::herald::automation::object_store as store_wit;

    /// `export-batch` for plugin `P`.
    pub fn export_batch<P: ExportDestination>(
        config: String,
        batch: wit::Batch,
        body: &store_wit::Payload,
    ) -> Result<wit::Written, w::herald::automation::types::PluginError> {
        let config = config_or_error::<P>(&config)?;
        let batch = Batch {
            automation_id: batch.automation_id,
            project_id: batch.project_id,
            shape: batch.shape,
            format: batch.format,
            row_count: batch.row_count,
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            run_started_ms: batch.run_started_ms,
        };
        P::export_batch(config, &batch, &Payload::new(body))
            .map(|written| wit::Written {
                keys: written.keys,
                bytes: written.bytes,
            })
            .map_err(error_to_wit)
    }

    /// `check-destination` for plugin `P`. An invalid config is one failed
    /// `config` step: the WIT function has no error case.
    pub fn check_destination<P: ExportDestination>(config: String) -> Vec<wit::CheckStep> {
        let steps = match config_or_error::<P>(&config) {
            Ok(config) => P::check_destination(config),
            Err(error) => vec![super::CheckStep::failed("config", error.message)],
        };
        steps
            .into_iter()
            .map(|step| wit::CheckStep {
                step: step.step,
                ok: step.ok,
                message: step.message,
            })
            .collect()
    }
}

/// Exports `$plugin` (an [`ExportDestination`]) as the component's
/// implementation of the `export-destination` world. Call it once, at the
/// crate root of a `cdylib`.
#[macro_export]
macro_rules! export_export_destination {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __HeraldExportExport;

        impl $crate::__bindings::export_world::exports::herald::automation::plugin::Guest
            for __HeraldExportExport
        {
            fn describe() -> $crate::__bindings::export_world::herald::automation::types::PluginInfo {
                $crate::__bindings::export_world::describe::<$plugin>()
            }
            fn validate_config(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                (),
                ::std::vec::Vec<$crate::__bindings::export_world::herald::automation::types::ConfigError>,
            > {
                $crate::__bindings::export_world::validate::<$plugin>(config)
            }
        }

        impl $crate::__bindings::export_world::exports::herald::automation::exporting::Guest
            for __HeraldExportExport
        {
            fn export_batch(
                config: ::std::string::String,
                batch: $crate::__bindings::export_world::exports::herald::automation::exporting::Batch,
                body: &$crate::__bindings::export_world::herald::automation::object_store::Payload,
            ) -> ::std::result::Result<
                $crate::__bindings::export_world::exports::herald::automation::exporting::Written,
                $crate::__bindings::export_world::herald::automation::types::PluginError,
            > {
                $crate::export::__glue::export_batch::<$plugin>(config, batch, body)
            }
            fn check_destination(
                config: ::std::string::String,
            ) -> ::std::vec::Vec<
                $crate::__bindings::export_world::exports::herald::automation::exporting::CheckStep,
            > {
                $crate::export::__glue::check_destination::<$plugin>(config)
            }
        }

        $crate::__bindings::export_world::__herald_export_export_world!(__HeraldExportExport);
    };
}
