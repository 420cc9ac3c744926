//! Alert destinations: the `alert-destination` world.
//!
//! Implement [`AlertDestination`] and call [`export_alert_destination!`]
//! once. The host calls `deliver` once per attempt; return a retryable
//! [`PluginError`] for failures that may pass (the host retries with
//! backoff and the same `event_id`), a permanent one otherwise.
//!
//! [`export_alert_destination!`]: crate::export_alert_destination

use crate::{Plugin, PluginError};

/// One notification to deliver.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Stable across retries: use it as an idempotency key.
    pub event_id: String,
    /// `logs` or `environment_update`.
    pub event_type: String,
    /// Braintrust's webhook payload, as JSON text.
    pub payload: String,
    /// True for a test sent from the API.
    pub is_test: bool,
    /// 1 on the first try.
    pub attempt: u32,
}

impl Alert {
    /// The payload parsed as JSON.
    pub fn payload_json(&self) -> Result<serde_json::Value, PluginError> {
        serde_json::from_str(&self.payload)
            .map_err(|e| PluginError::permanent(format!("alert payload is not JSON: {e}")))
    }
}

/// What happened at the receiver.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The receiver's HTTP status.
    pub status_code: Option<u16>,
    /// The beginning of the receiver's answer.
    pub response_excerpt: Option<String>,
    /// One line for the run history.
    pub summary: String,
}

/// An alert destination.
pub trait AlertDestination: Plugin {
    /// Delivers one alert. Called once per attempt.
    fn deliver(config: Self::Config, alert: &Alert) -> Result<Delivery, PluginError>;
}

#[doc(hidden)]
pub mod __glue {
    use super::{Alert, AlertDestination};
    use crate::__bindings::alert_world::{self as w, config_or_error, error_to_wit};
    use w::exports::herald::automation::alerting as wit;

    /// `deliver` for plugin `P`.
    pub fn deliver<P: AlertDestination>(
        config: String,
        alert: wit::Alert,
    ) -> Result<wit::Delivery, w::herald::automation::types::PluginError> {
        let config = config_or_error::<P>(&config)?;
        let alert = Alert {
            event_id: alert.event_id,
            event_type: alert.event_type,
            payload: alert.payload,
            is_test: alert.is_test,
            attempt: alert.attempt,
        };
        P::deliver(config, &alert)
            .map(|d| wit::Delivery {
                status_code: d.status_code,
                response_excerpt: d.response_excerpt,
                summary: d.summary,
            })
            .map_err(error_to_wit)
    }
}

/// Exports `$plugin` (an [`AlertDestination`]) as the component's
/// implementation of the `alert-destination` world. Call it once, at the
/// crate root of a `cdylib`.
#[macro_export]
macro_rules! export_alert_destination {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __HeraldAlertExport;

        impl $crate::__bindings::alert_world::exports::herald::automation::plugin::Guest
            for __HeraldAlertExport
        {
            fn describe() -> $crate::__bindings::alert_world::herald::automation::types::PluginInfo {
                $crate::__bindings::alert_world::describe::<$plugin>()
            }
            fn validate_config(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                (),
                ::std::vec::Vec<$crate::__bindings::alert_world::herald::automation::types::ConfigError>,
            > {
                $crate::__bindings::alert_world::validate::<$plugin>(config)
            }
        }

        impl $crate::__bindings::alert_world::exports::herald::automation::alerting::Guest
            for __HeraldAlertExport
        {
            fn deliver(
                config: ::std::string::String,
                alert: $crate::__bindings::alert_world::exports::herald::automation::alerting::Alert,
            ) -> ::std::result::Result<
                $crate::__bindings::alert_world::exports::herald::automation::alerting::Delivery,
                $crate::__bindings::alert_world::herald::automation::types::PluginError,
            > {
                $crate::alert::__glue::deliver::<$plugin>(config, alert)
            }
        }

        $crate::__bindings::alert_world::__herald_export_alert_world!(__HeraldAlertExport);
    };
}
