//! The `wasmtime::component::bindgen!` output for the three worlds of
//! `herald:automation@0.1.0`: a leaf, like Spin's `spin-world`, so the
//! capabilities (which implement the imported interfaces) and the plugin
//! host (which calls the exports) both build on it without importing each
//! other. The rest of the daemon uses the typed API in [`crate::plugins`].
//!
//! The alert world generates the shared interfaces (`types`, `log`,
//! `http`); the other two reuse them through `with`, so a `PluginInfo` is
//! one Rust type whatever world produced it.

#![allow(missing_docs)]

/// `alert-destination`: imports log + http, exports plugin + alerting.
pub mod alert {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "herald:automation/alert-destination@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// `export-destination`: imports log + object-store, exports plugin + exporting.
pub mod export {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "herald:automation/export-destination@0.1.0",
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
        world: "herald:automation/retention-policy@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "herald:automation/types": super::alert::herald::automation::types,
            "herald:automation/log": super::alert::herald::automation::log,
        },
    });
}

pub use alert::herald::automation::types;

/// Bytes the host prepared for a plugin (e.g. an encoded export batch): the
/// host side of the WIT `payload` resource, kept in the call's resource
/// table so the bytes stay in host memory.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The bytes; cheap to clone.
    pub bytes: bytes::Bytes,
}
