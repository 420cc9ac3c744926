//! # herald-plugin: the guest SDK for Herald plugins
//!
//! A Herald plugin is a WebAssembly component that targets one world of the
//! `herald:automation@0.2.0` contract (see `wit/` in the Herald repository):
//!
//! | world                | you implement                  | you may call                            | cargo feature |
//! |----------------------|--------------------------------|-----------------------------------------|---------------|
//! | `alert-destination`  | `alert::AlertDestination`      | `http`, `log`                           | `alert`       |
//! | `export-destination` | `export::ExportDestination`    | `export::object_store`, `log`           | `export`      |
//! | `retention-policy`   | `retention::RetentionPolicy`   | `retention::records`, `log`             | `retention`   |
//!
//! Enable exactly one feature: a component targets one world, and the host
//! links only the capabilities that world declares.
//!
//! Every plugin also implements [`Plugin`]: its name, version and config
//! type. The SDK turns the config type into validation with JSON-Pointer
//! paths for free; the JSON Schema you publish in [`PluginInfo`] is what the
//! API and `herald plugins check` show to operators.
//!
//! ## A complete alert destination
//!
//! ```ignore
//! use herald_plugin::alert::{Alert, AlertDestination, Delivery};
//! use herald_plugin::http::Request;
//! use herald_plugin::{Plugin, PluginError, PluginInfo};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { url: String }
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     type Config = Config;
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("echo", env!("CARGO_PKG_VERSION"), "Posts the alert JSON to a URL.")
//!             .schema(serde_json::json!({
//!                 "type": "object",
//!                 "required": ["url"],
//!                 "properties": {"url": {"type": "string", "format": "uri"}}
//!             }))
//!     }
//! }
//!
//! impl AlertDestination for Echo {
//!     fn deliver(config: Config, alert: &Alert) -> Result<Delivery, PluginError> {
//!         let response = Request::post(&config.url)
//!             .header("content-type", "application/json")
//!             .body(alert.payload.as_bytes().to_vec())
//!             .send()?;
//!         response.into_delivery(&config.url)
//!     }
//! }
//!
//! herald_plugin::export_alert_destination!(Echo);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`, check it
//! with `herald plugins check target/wasm32-wasip2/release/echo.wasm`, and
//! drop the file into the daemon's plugins directory.
//!
//! ## What a plugin cannot do
//!
//! It has no filesystem, no environment variables, no sockets and no clock
//! beyond WASI's. Its only way out is the capabilities of its world, each
//! checked by the host. Each call gets a fresh instance with a memory cap and
//! a CPU deadline: keep no state between calls.

extern crate self as herald_plugin;

mod common;
pub use common::{ConfigError, Plugin, PluginError, PluginInfo, parse_config};

#[cfg(any(feature = "alert", feature = "export", feature = "retention"))]
pub mod log;

#[cfg(feature = "alert")]
pub mod alert;
#[cfg(feature = "alert")]
pub mod http;

#[cfg(feature = "export")]
pub mod export;

#[cfg(feature = "retention")]
pub mod retention;

/// The generated bindings, one module per world. Not part of the API: use
/// the typed modules above and the `export_*!` macros.
#[doc(hidden)]
pub mod __bindings;

/// Re-exported for the export macros and for plugins that build JSON.
pub use serde_json;
