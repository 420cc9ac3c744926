//! The capabilities the host offers to plugins, one module per WIT import.
//!
//! Each module implements the generated `Host` trait of its interface for
//! the per-call [`CallState`](crate::plugins::sandbox::CallState). A plugin
//! is linked only with the capabilities its world declares, and each
//! capability is further scoped by what the call was granted (the HTTP
//! limits of that plugin, the object store of that automation, the records
//! of that project). A call without a grant gets a clear refusal.

pub mod http;
pub mod log;
pub mod net_guard;
pub mod object_store;
pub mod records;
pub mod s3;
