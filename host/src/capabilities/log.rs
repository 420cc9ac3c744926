//! The `log` capability: plugin lines into the run history and the daemon log.
//!
//! Lines are kept with the call's report (at most [`MAX_LINES`] of at most
//! [`MAX_LINE_BYTES`] each; the rest are counted as dropped) and emitted as
//! `tracing` events with the plugin's name, so an operator sees them in the
//! daemon's log too. The same cap holds for the daemon's log: a plugin in a
//! loop cannot flood it, and the one line saying lines were dropped is
//! logged when the cap is reached.

use std::sync::Arc;

use serde::Serialize;

use crate::bindings::alert::herald::automation::log as wit;
use crate::bindings::types::{self, Level};

/// Most lines kept per call.
pub const MAX_LINES: usize = 200;
/// Longest line kept, in bytes; longer lines are cut.
pub const MAX_LINE_BYTES: usize = 2048;

/// One line a plugin wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The text (cut to [`MAX_LINE_BYTES`]).
    pub message: String,
}

/// The `log` capability's state for one call: the lines kept so far.
#[derive(Debug)]
pub struct LogState {
    /// The plugin, named in every daemon log line.
    plugin: Arc<str>,
    /// The lines kept, at most [`MAX_LINES`].
    pub lines: Vec<LogLine>,
    /// Lines past the cap, counted but not kept.
    pub dropped: u32,
}

impl LogState {
    /// No lines yet, for a call of `plugin`.
    pub fn new(plugin: Arc<str>) -> Self {
        Self {
            plugin,
            lines: Vec::new(),
            dropped: 0,
        }
    }

    /// Records a line (also used for the guest's stderr).
    pub fn push(&mut self, level: &'static str, mut message: String) {
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if self.lines.len() >= MAX_LINES {
            if self.dropped == 0 {
                tracing::warn!(plugin = %self.plugin, cap = MAX_LINES,
                    "plugin log lines past the cap are dropped for the rest of this call");
            }
            self.dropped += 1;
            return;
        }
        match level {
            "error" => tracing::error!(plugin = %self.plugin, "{message}"),
            "warn" => tracing::warn!(plugin = %self.plugin, "{message}"),
            "info" => tracing::info!(plugin = %self.plugin, "{message}"),
            _ => tracing::debug!(plugin = %self.plugin, "{message}"),
        }
        self.lines.push(LogLine { level, message });
    }
}

impl wit::Host for LogState {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.push(level, message);
        Ok(())
    }
}

impl types::Host for LogState {}
