//! Typed errors at the plugin host's edges.
//!
//! [`LoadError`] says why a component file was rejected (shown in
//! `GET /v1/plugins` and `herald plugins check`); [`CallError`] says why one
//! call failed. Each sandbox violation has its own variant so the run
//! history, the API and the retry logic can tell them apart.

use serde::Serialize;
use std::time::Duration;

/// One problem in a config, with the JSON Pointer of its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// JSON Pointer of the field (`""` for the whole config).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Why a component could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The file is not WebAssembly, or is a core module rather than a component.
    #[error("{0}")]
    NotAComponent(String),
    /// Wasmtime could not compile it.
    #[error("compile error: {0}")]
    Compile(String),
    /// It does not implement the contract this host speaks.
    #[error("{0}")]
    Contract(String),
    /// It imports something its world does not provide.
    #[error("{0}")]
    Import(String),
    /// Its `describe` failed or returned something invalid.
    #[error("describe failed: {0}")]
    Describe(String),
    /// Another file already provides a plugin of the same name.
    #[error("{0}")]
    Conflict(String),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
}

/// Why one plugin call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No loaded plugin has that name.
    #[error("no plugin named `{0}` is loaded")]
    NotFound(String),
    /// The plugin targets a different world than the call needs.
    #[error("plugin `{plugin}` is a {world} plugin, not a {needed}")]
    WrongWorld {
        /// The plugin.
        plugin: String,
        /// Its world.
        world: &'static str,
        /// The world the call needs.
        needed: &'static str,
    },
    /// The config was rejected by the plugin's validation.
    #[error("invalid config: {}", format_problems(.0))]
    InvalidConfig(Vec<ConfigProblem>),
    /// The guest trapped (a panic, an `unreachable`, an out-of-bounds access).
    #[error("plugin `{plugin}` crashed: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The trap and the guest's own message (e.g. its panic text).
        message: String,
        /// The guest's stack, when the component has names for it.
        backtrace: Option<String>,
    },
    /// The guest used more CPU time than its budget.
    #[error("plugin `{plugin}` exceeded its CPU deadline of {} ms", .limit.as_millis())]
    DeadlineExceeded {
        /// The plugin.
        plugin: String,
        /// The budget.
        limit: Duration,
    },
    /// The guest tried to grow its memory past its cap.
    #[error("plugin `{plugin}` exceeded its memory limit of {} MiB", .limit_bytes >> 20)]
    MemoryLimitExceeded {
        /// The plugin.
        plugin: String,
        /// The cap in bytes.
        limit_bytes: u64,
    },
    /// The guest asked for a host it may not reach.
    #[error("plugin `{plugin}` is not allowed to reach {host}")]
    HostNotAllowed {
        /// The plugin.
        plugin: String,
        /// The host, and why it was refused.
        host: String,
    },
    /// The plugin reported a failure of its own.
    #[error("{message}")]
    Failed {
        /// The plugin's message.
        message: String,
        /// Whether a retry could help.
        retryable: bool,
        /// The destination's requested delay before a retry.
        retry_after: Option<Duration>,
        /// The receiver's HTTP status, when the failure was its answer.
        status_code: Option<u16>,
    },
    /// Every sandbox slot is busy.
    #[error("too many plugin calls in flight; try again")]
    Busy,
    /// Something failed in the host itself.
    #[error("plugin host error: {0}")]
    Host(String),
}

impl CallError {
    /// Whether retrying the same call later could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Failed { retryable, .. } => *retryable,
            CallError::Busy => true,
            _ => false,
        }
    }

    /// A short stable code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::NotFound(_) => "plugin_not_found",
            CallError::WrongWorld { .. } => "plugin_wrong_world",
            CallError::InvalidConfig(_) => "invalid_config",
            CallError::Trap { .. } => "plugin_trap",
            CallError::DeadlineExceeded { .. } => "plugin_deadline_exceeded",
            CallError::MemoryLimitExceeded { .. } => "plugin_memory_limit_exceeded",
            CallError::HostNotAllowed { .. } => "plugin_host_not_allowed",
            CallError::Failed { .. } => "plugin_failed",
            CallError::Busy => "plugin_busy",
            CallError::Host(_) => "plugin_host_error",
        }
    }
}

fn format_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                if p.path.is_empty() { "/" } else { &p.path },
                p.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A plugin's own `plugin-error` (one WIT type shared by every world): a
/// failure it reported, with its retry advice and the receiver's status.
impl From<crate::bindings::types::PluginError> for CallError {
    fn from(e: crate::bindings::types::PluginError) -> Self {
        CallError::Failed {
            message: e.message,
            retryable: e.retryable,
            retry_after: e.retry_after_ms.map(Duration::from_millis),
            status_code: e.status_code,
        }
    }
}

impl CallError {
    /// The receiver's HTTP status of a failed call, when it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            CallError::Failed { status_code, .. } => *status_code,
            _ => None,
        }
    }
}
