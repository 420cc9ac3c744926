//! Herald's end-to-end suite: one test binary (linking is the slow part of a
//! build on a small machine), one module per area.
//!
//! Everything here uses real parts: components compiled from `plugins/`,
//! HTTP receivers on loopback, the `herald` process itself, SQLite and
//! PostgreSQL.

mod authoring;
mod automations;
mod cli;
mod contract_versions;
mod doc_examples;
mod examples;
mod export;
mod harness;
mod ingest;
mod pagerduty;
mod plugin_faults;
mod plugin_network;
mod plugin_registry;
mod secrets;
mod slack;
mod storage;
mod webhook;
