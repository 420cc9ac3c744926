//! End-to-end test support lives in `tests/e2e`; this library is empty.
