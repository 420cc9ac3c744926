//! The capabilities the host offers to plugins, one module per WIT import.
//!
//! Each module owns its per-call state (`LogState`, `HttpState`,
//! `ObjectStoreState`, `RecordsState`), implements the generated `Host`
//! trait of its interface ([`crate::bindings`]) on it, and is linked by
//! projection from the call's state (as wasmtime-wasi's `WasiCtxView`), so
//! a capability sees only its own fields and never the plugin host's
//! types. Adding one is one module, one field of the call's state and one
//! linker line. A plugin is linked only with the capabilities its world
//! declares, and each
//! capability is further scoped by what the call was granted (the HTTP
//! limits of that plugin, the object store of that automation, the records
//! of that project). A call without a grant gets a clear refusal. Plugins
//! built against the first contract (0.1.0) reach the same implementations
//! through [`contract_0_1`].

pub mod contract_0_1;
pub mod http;
pub mod log;
pub mod net_guard;
pub mod object_store;
pub mod records;
pub mod s3;
