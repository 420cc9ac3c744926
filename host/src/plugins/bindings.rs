//! The `wasmtime::component::bindgen!` output for the three worlds of
//! `herald:automation@0.1.0`. Private to the plugin host: the rest of the
//! daemon uses the typed API in [`super`].
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
            "herald:automation/object-store.payload": crate::capabilities::object_store::Payload,
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
