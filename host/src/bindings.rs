//! The `wasmtime::component::bindgen!` output for the three worlds of
//! `herald:automation@0.2.0` (the current contract) and of `@0.1.0` (the
//! first, which the host keeps loading): a leaf, like Spin's `spin-world`,
//! so the capabilities (which implement the imported interfaces) and the
//! plugin host (which calls the exports) both build on it without importing
//! each other. The rest of the daemon uses the typed API in
//! [`crate::plugins`].
//!
//! In each version the alert world generates the shared interfaces
//! (`types`, `log`, `http`); the other two reuse them through `with`, so a
//! `PluginInfo` is one Rust type whatever world produced it. The two
//! versions are separate Rust types: the 0.1.0 capability traits forward to
//! the current ones (`capabilities::contract_0_1`), and the plugin host
//! converts 0.1.0 answers into current ones (`plugins::contract_0_1`).

#![allow(missing_docs)]

/// `alert-destination`: imports log + http, exports plugin + alerting.
pub mod alert {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "herald:automation/alert-destination@0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// `export-destination`: imports log + object-store, exports plugin + exporting.
pub mod export {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "herald:automation/export-destination@0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "herald:automation/types": super::alert::herald::automation::types,
            "herald:automation/log": super::alert::herald::automation::log,
            "herald:automation/object-store.payload": super::Payload,
        },
    });
}

/// `retention-policy`: imports log + records, exports plugin + retention.
pub mod retention {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "herald:automation/retention-policy@0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "herald:automation/types": super::alert::herald::automation::types,
            "herald:automation/log": super::alert::herald::automation::log,
        },
    });
}

pub use alert::herald::automation::types;

/// The frozen `herald:automation@0.1.0` contract (`wit/v0.1.0`): the same
/// worlds, without `plugin-error.status-code`.
pub mod v0_1 {
    /// `alert-destination@0.1.0`.
    pub mod alert {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.0",
            world: "herald:automation/alert-destination@0.1.0",
            imports: { default: async | trappable },
            exports: { default: async },
        });
    }

    /// `export-destination@0.1.0`.
    pub mod export {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.0",
            world: "herald:automation/export-destination@0.1.0",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "herald:automation/types": super::alert::herald::automation::types,
                "herald:automation/log": super::alert::herald::automation::log,
                "herald:automation/object-store.payload": super::super::Payload,
            },
        });
    }

    /// `retention-policy@0.1.0`.
    pub mod retention {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1.0",
            world: "herald:automation/retention-policy@0.1.0",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "herald:automation/types": super::alert::herald::automation::types,
                "herald:automation/log": super::alert::herald::automation::log,
            },
        });
    }
}

/// Bytes the host prepared for a plugin (e.g. an encoded export batch): the
/// host side of the WIT `payload` resource, kept in the call's resource
/// table so the bytes stay in host memory.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The bytes; cheap to clone.
    pub bytes: bytes::Bytes,
}

/// `From` between two generated types of the same shape (a record's
/// fields, an enum's or variant's cases): each field or payload is
/// converted in turn, so nested types of the two versions follow.
macro_rules! same_shape {
    (record $from:path => $to:path { $($field:ident),* $(,)? }) => {
        impl From<$from> for $to {
            #[allow(clippy::useless_conversion)]
            fn from(value: $from) -> Self {
                Self { $($field: value.$field.into()),* }
            }
        }
    };
    (cases $from:path => $to:path { $($case:ident $(($payload:ident))?),* $(,)? }) => {
        impl From<$from> for $to {
            #[allow(clippy::useless_conversion)]
            fn from(value: $from) -> Self {
                type From_ = $from;
                match value {
                    $(From_::$case $(($payload))? => Self::$case $(($payload.into()))?),*
                }
            }
        }
    };
}

/// The conversions between the two contract versions, one per type that
/// crosses the boundary. Capability arguments and plugin answers go from
/// 0.1.0 to current, capability answers and call arguments the other way.
mod between_versions {
    use super::alert::exports::herald::automation::alerting;
    use super::alert::herald::automation::{http, types};
    use super::export::exports::herald::automation::exporting;
    use super::export::herald::automation::object_store;
    use super::retention::exports::herald::automation::retention;
    use super::retention::herald::automation::records;
    use super::v0_1::alert::exports::herald::automation::alerting as alerting_0_1;
    use super::v0_1::alert::herald::automation::{http as http_0_1, types as types_0_1};
    use super::v0_1::export::exports::herald::automation::exporting as exporting_0_1;
    use super::v0_1::export::herald::automation::object_store as object_store_0_1;
    use super::v0_1::retention::exports::herald::automation::retention as retention_0_1;
    use super::v0_1::retention::herald::automation::records as records_0_1;

    same_shape!(cases types_0_1::Level => types::Level { Trace, Debug, Info, Warn, Error });
    same_shape!(record types_0_1::PluginInfo => types::PluginInfo {
        name, version, description, config_schema, secret_fields
    });
    same_shape!(record types_0_1::ConfigError => types::ConfigError { path, message });
    /// A 0.1.0 failure has no status code; the host fills it in from the
    /// call's last HTTP answer.
    impl From<types_0_1::PluginError> for types::PluginError {
        fn from(e: types_0_1::PluginError) -> Self {
            Self {
                message: e.message,
                retryable: e.retryable,
                retry_after_ms: e.retry_after_ms,
                status_code: None,
            }
        }
    }

    same_shape!(cases http_0_1::Method => http::Method { Get, Post, Put, Patch, Delete, Head });
    same_shape!(record http_0_1::Request => http::Request {
        method, url, headers, body, timeout_ms
    });
    same_shape!(record http::Response => http_0_1::Response { status, headers, body });
    same_shape!(cases http::HttpError => http_0_1::HttpError {
        HostNotAllowed(host), PrivateAddress(host), InvalidRequest(why), Timeout,
        Connection(why), ResponseTooLarge(limit)
    });

    same_shape!(record object_store::ObjectInfo => object_store_0_1::ObjectInfo { key, size, etag });
    same_shape!(cases object_store::StoreError => object_store_0_1::StoreError {
        AccessDenied(why), NoSuchBucket(why), NotFound(why), Unreachable(why), Other(why)
    });

    same_shape!(cases records_0_1::ObjectType => records::ObjectType {
        ProjectLogs, Experiment, Dataset
    });
    same_shape!(cases records::ObjectType => records_0_1::ObjectType {
        ProjectLogs, Experiment, Dataset
    });
    same_shape!(record records::Affected => records_0_1::Affected {
        count, oldest_ms, newest_ms, sample_ids
    });
    same_shape!(record records_0_1::Affected => records::Affected {
        count, oldest_ms, newest_ms, sample_ids
    });

    same_shape!(record alerting::Alert => alerting_0_1::Alert {
        event_id, event_type, payload, is_test, attempt
    });
    same_shape!(record alerting_0_1::Delivery => alerting::Delivery {
        status_code, response_excerpt, summary
    });
    same_shape!(record exporting::Batch => exporting_0_1::Batch {
        automation_id, project_id, shape, format, row_count, first_sequence,
        last_sequence, run_started_ms
    });
    same_shape!(record exporting_0_1::Written => exporting::Written { keys, bytes });
    same_shape!(record exporting_0_1::CheckStep => exporting::CheckStep { step, ok, message });
    same_shape!(record retention::RetentionRequest => retention_0_1::RetentionRequest {
        object_type, retention_days, now_ms, dry_run
    });
    same_shape!(record retention_0_1::RetentionOutcome => retention::RetentionOutcome {
        cutoff_ms, affected, deleted, batches
    });
}
