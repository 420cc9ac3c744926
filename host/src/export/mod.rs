//! Export batches, from the store to encoded bytes.
//!
//! ```text
//!  store (rows in (cursor, upto]) ──> rows ──> encoding ──> Payload ──> s3-export plugin
//!        spans | traces | query          jsonl | parquet        (host memory)   └─> object-store (host, S3)
//! ```
//!
//! The host reads and encodes, once and fast; the plugin only decides where
//! the object goes. The engine side (cursor, runs, retries) is in
//! [`crate::automations::export`].
//!
//! * [`rows`]: what a batch carries (spans, traces, query results), as the
//!   store reads it (the types live in `store::rows`, below both);
//! * [`query`]: custom queries, parsed and confined to the project;
//! * [`encoding`]: JSON Lines and Parquet.

pub mod encoding;
pub mod query;
pub use crate::store::rows;
