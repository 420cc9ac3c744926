//! [`ConfigError`]: what is wrong with an automation config, and where.
//! Its own leaf module so that every config module (the automation kinds'
//! configs, the export config) can report errors without importing the
//! others.

/// A problem with a config, at a request path like `config.action.url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Where, in the request body.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}
