//! The `wit-bindgen` output, one private module per world, and the glue that
//! converts between the generated types and the SDK's public ones.
//!
//! Each world gets its own `generate!` because a component targets exactly
//! one world; the Cargo features make sure a plugin compiles only its own.

pub use wit_bindgen;

/// Conversions shared by every world module (the generated types differ
/// per module, the code does not).
macro_rules! common_glue {
    () => {
        use self::herald::automation::types as wit;

        pub(crate) fn info_to_wit(info: crate::PluginInfo) -> wit::PluginInfo {
            wit::PluginInfo {
                name: info.name,
                version: info.version,
                description: info.description,
                config_schema: info.config_schema.to_string(),
                secret_fields: info.secret_fields,
            }
        }

        pub(crate) fn error_to_wit(error: crate::PluginError) -> wit::PluginError {
            wit::PluginError {
                message: error.message,
                retryable: error.retryable,
                retry_after_ms: error.retry_after_ms,
                status_code: error.status_code,
            }
        }

        /// `describe` for plugin `P`.
        pub fn describe<P: crate::Plugin>() -> wit::PluginInfo {
            info_to_wit(P::info())
        }

        /// `validate-config` for plugin `P`.
        pub fn validate<P: crate::Plugin>(config: String) -> Result<(), Vec<wit::ConfigError>> {
            crate::parse_config::<P>(&config)
                .map(|_| ())
                .map_err(|errors| {
                    errors
                        .into_iter()
                        .map(|e| wit::ConfigError {
                            path: e.path,
                            message: e.message,
                        })
                        .collect()
                })
        }

        /// Parses the config or turns the problems into a permanent error.
        pub(crate) fn config_or_error<P: crate::Plugin>(
            config: &str,
        ) -> Result<P::Config, wit::PluginError> {
            crate::parse_config::<P>(config).map_err(|errors| {
                let detail: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            if e.path.is_empty() { "/" } else { &e.path },
                            e.message
                        )
                    })
                    .collect();
                error_to_wit(crate::PluginError::permanent(format!(
                    "invalid config: {}",
                    detail.join("; ")
                )))
            })
        }

        pub(crate) fn log_write(level: crate::log::Level, message: &str) {
            use self::herald::automation::log;
            let level = match level {
                crate::log::Level::Trace => wit::Level::Trace,
                crate::log::Level::Debug => wit::Level::Debug,
                crate::log::Level::Info => wit::Level::Info,
                crate::log::Level::Warn => wit::Level::Warn,
                crate::log::Level::Error => wit::Level::Error,
            };
            log::write(level, message);
        }
    };
}

/// Bindings for the `alert-destination` world.
#[cfg(feature = "alert")]
pub mod alert_world {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "herald:automation/alert-destination@0.2.0",
        export_macro_name: "__herald_export_alert_world",
        pub_export_macro: true,
        default_bindings_module: "herald_plugin::__bindings::alert_world",
        runtime_path: "herald_plugin::__bindings::wit_bindgen::rt",
    });
    common_glue!();
}

/// Bindings for the `export-destination` world.
#[cfg(feature = "export")]
pub mod export_world {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "herald:automation/export-destination@0.2.0",
        export_macro_name: "__herald_export_export_world",
        pub_export_macro: true,
        default_bindings_module: "herald_plugin::__bindings::export_world",
        runtime_path: "herald_plugin::__bindings::wit_bindgen::rt",
    });
    common_glue!();
}

/// Bindings for the `retention-policy` world.
#[cfg(feature = "retention")]
pub mod retention_world {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../../wit",
        world: "herald:automation/retention-policy@0.2.0",
        export_macro_name: "__herald_export_retention_world",
        pub_export_macro: true,
        default_bindings_module: "herald_plugin::__bindings::retention_world",
        runtime_path: "herald_plugin::__bindings::wit_bindgen::rt",
    });
    common_glue!();
}

/// The world whose `log` import the [`crate::log`] functions use.
#[cfg(feature = "alert")]
pub(crate) use alert_world as active;
#[cfg(all(feature = "export", not(feature = "alert")))]
pub(crate) use export_world as active;
#[cfg(all(feature = "retention", not(feature = "alert"), not(feature = "export")))]
pub(crate) use retention_world as active;
