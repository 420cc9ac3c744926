//! Write lines into the run history (the `log` capability).
//!
//! Lines are tagged with the plugin's name and run; the host keeps at most
//! 200 lines of 2 KiB per call. Never log secrets.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed diagnostics.
    Trace,
    /// Development diagnostics.
    Debug,
    /// Normal progress.
    Info,
    /// Unexpected but not fatal.
    Warn,
    /// Failed.
    Error,
}

/// Writes one line at `level`.
pub fn write(level: Level, message: &str) {
    crate::__bindings::active::log_write(level, message);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes an info line.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes a warning.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes an error line.
pub fn error(message: &str) {
    write(Level::Error, message);
}
