//! herald
pub mod api;
pub mod bench;
pub mod filter;
pub mod store;
