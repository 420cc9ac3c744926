//! Ingest from what applications already emit, beside Braintrust's REST
//! API (`crate::api::events`):
//!
//! * [`otlp`]: OpenTelemetry traces, over HTTP (protobuf and JSON, at
//!   `/otel/v1/traces` and `/v1/traces`) and gRPC (its own listener), with
//!   the GenAI, OpenInference and `braintrust.*` attribute conventions
//!   mapped onto the span fields by one table ([`otlp::mapping`]);
//! * [`braintrust`]: the rows Braintrust's tracing SDKs upload (`/logs3`),
//!   routed to their project, experiment or dataset.
//!
//! Every path ends in the same store write as `POST …/insert`
//! ([`crate::store::Store::insert_events`] after
//! [`crate::store::validate_event`]), so every automation sees every span
//! the same way, whichever door it came in by.

pub mod braintrust;
pub mod otlp;
