//! e2e
mod storage;
