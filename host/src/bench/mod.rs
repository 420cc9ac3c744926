//! Benchmarks run by the `herald-bench` binary. They live in the library so
//! they exercise the same code paths `herald serve` uses.

pub mod ingest;
