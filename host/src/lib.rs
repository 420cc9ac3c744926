//! # Herald
//!
//! A self-hosted automations engine for LLM observability data: it watches
//! traces, experiments and datasets and, on schedules or events, sends
//! alerts, exports data and enforces retention. Every action that touches
//! the outside world is a sandboxed WebAssembly component plugin behind the
//! `herald:automation` WIT contract.
//!
//! Modules, one concern each:
//! * [`plugins`]: the plugin host (engine, registry, sandbox, contract checks);
//! * [`capabilities`]: what plugins may import (http, object store, records, log);
//! * [`store`]: storage over SQLite or PostgreSQL, the data model;
//! * [`filter`]: the SQL-style filter language, compiled per backend;
//! * [`sql_budget`]: size, depth and stack bounds on every user-written SQL text;
//! * [`export`]: export batches: their rows, custom queries, JSON Lines and Parquet;
//! * [`ingest`]: OpenTelemetry (OTLP over HTTP and gRPC) into the store;
//! * [`api`]: the HTTP API;
//! * [`authoring`]: the plugin author's loop (`plugins test`, `plugins new`);
//! * [`private_files`]: the data directory and its files, readable by Herald alone;
//! * [`sealing`]: secrets sealed at rest under a key kept outside the database;
//! * [`config`], [`cli`], [`server`]: settings, command line and wiring.
//!
//! The benchmarks (`herald-bench`) and the test kit (a loopback S3 server)
//! are crates of their own beside this one, so the daemon links neither.

pub mod api;
pub mod authoring;
pub mod automations;
pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod columns;
pub mod config;
pub mod event_fields;
pub mod export;
pub mod filter;
pub mod ingest;
pub mod plugins;
pub mod private_files;
pub mod sealing;
pub mod server;
pub mod sql_budget;
pub mod store;
