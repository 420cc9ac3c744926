//! The ranges every config shares (intervals), in a leaf so that each
//! kind's config module checks them the same way without importing the
//! others.

use super::config_error::ConfigError;

/// The longest notify interval Braintrust allows: 30 days.
pub const MAX_INTERVAL_SECONDS: u64 = 2_592_000;

/// Refuses an interval outside 1 s – 30 days, at `path`.
pub fn check_interval(seconds: u64, path: &str) -> Result<(), ConfigError> {
    if !(1..=MAX_INTERVAL_SECONDS).contains(&seconds) {
        return Err(ConfigError::new(
            path,
            format!("must be between 1 and {MAX_INTERVAL_SECONDS} seconds (30 days)"),
        ));
    }
    Ok(())
}
