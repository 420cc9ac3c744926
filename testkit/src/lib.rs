//! Herald's test kit: real peers on loopback for the end-to-end tests and
//! `herald-bench`, kept out of the daemon so the binary users run links
//! none of it (the S3 server and its dependencies, `s3s`, `s3s-fs` and
//! `hyper-util`, are test and benchmark tools, not parts of Herald).
//!
//! * [`s3_server`]: an S3-protocol server over a temporary directory that
//!   checks SigV4 signatures, for export destinations.

pub mod s3_server;
