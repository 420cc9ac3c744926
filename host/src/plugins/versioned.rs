//! Each world's pre-instantiated component, in the contract version the
//! plugin was built against, and one method per export that calls it and
//! answers in the current contract's types.
//!
//! This is where the contract versions meet: a call site asks for a world
//! ([`AlertPre`], [`ExportPre`], [`RetentionPre`]) and never sees which
//! version it speaks. A 0.1.0 call converts its arguments down and its
//! answer up (`bindings::between_versions`); a 0.1.0 failure, which has no
//! status code, gets the status of the last HTTP answer the plugin
//! received. Supporting another version is one variant per world here and
//! its linkers in `loaded`.

use super::contract::World;
use super::sandbox::CallState;
use crate::bindings::alert::exports::herald::automation::alerting;
use crate::bindings::export::exports::herald::automation::exporting;
use crate::bindings::retention::exports::herald::automation::retention;
use crate::bindings::{Payload, alert, export, retention as retention_world, types, v0_1};
use wasmtime::Store;
use wasmtime::component::Resource;

/// An alert destination, per contract version.
pub(crate) enum AlertPre {
    /// Built against 0.2.x.
    Current(alert::AlertDestinationPre<CallState>),
    /// Built against 0.1.x.
    V0_1(v0_1::alert::AlertDestinationPre<CallState>),
}

/// An export destination, per contract version.
pub(crate) enum ExportPre {
    /// Built against 0.2.x.
    Current(export::ExportDestinationPre<CallState>),
    /// Built against 0.1.x.
    V0_1(v0_1::export::ExportDestinationPre<CallState>),
}

/// A retention policy, per contract version.
pub(crate) enum RetentionPre {
    /// Built against 0.2.x.
    Current(retention_world::RetentionPolicyPre<CallState>),
    /// Built against 0.1.x.
    V0_1(v0_1::retention::RetentionPolicyPre<CallState>),
}

/// The typed pre-instantiated component, per world.
pub(crate) enum Pre {
    Alert(AlertPre),
    Export(ExportPre),
    Retention(RetentionPre),
}

/// One world's pre-instantiated component type. A world's calls ask for
/// their own type ([`super::PluginRuntime::call_world`]), so a plugin of
/// another world is an error value for the caller, never an unreachable
/// match arm.
pub(crate) trait WorldPre: Sized {
    /// The world.
    const WORLD: World;
    /// `pre` as this world's type, if it is of this world.
    fn of(pre: &Pre) -> Option<&Self>;
}

macro_rules! world_pre {
    ($ty:ident, $variant:ident, $world:expr) => {
        impl WorldPre for $ty {
            const WORLD: World = $world;
            fn of(pre: &Pre) -> Option<&Self> {
                match pre {
                    Pre::$variant(pre) => Some(pre),
                    _ => None,
                }
            }
        }
    };
}
world_pre!(AlertPre, Alert, World::AlertDestination);
world_pre!(ExportPre, Export, World::ExportDestination);
world_pre!(RetentionPre, Retention, World::RetentionPolicy);

/// Instantiates `pre` (any world, any version) in `store` and runs `call`
/// on its `plugin` interface; `call` converts the answer into current types.
macro_rules! on_plugin_interface {
    ($pre:expr, $store:ident, |$iface:ident| $call:expr) => {
        match $pre {
            Pre::Alert(AlertPre::Current(pre)) => {
                let $iface = pre.instantiate_async(&mut *$store).await?;
                $call
            }
            Pre::Alert(AlertPre::V0_1(pre)) => {
                let $iface = pre.instantiate_async(&mut *$store).await?;
                $call
            }
            Pre::Export(ExportPre::Current(pre)) => {
                let $iface = pre.instantiate_async(&mut *$store).await?;
                $call
            }
            Pre::Export(ExportPre::V0_1(pre)) => {
                let $iface = pre.instantiate_async(&mut *$store).await?;
                $call
            }
            Pre::Retention(RetentionPre::Current(pre)) => {
                let $iface = pre.instantiate_async(&mut *$store).await?;
                $call
            }
            Pre::Retention(RetentionPre::V0_1(pre)) => {
                let $iface = pre.instantiate_async(&mut *$store).await?;
                $call
            }
        }
    };
}

impl Pre {
    /// `plugin.describe`.
    // One body for every version: for current plugins `into` is the identity.
    #[allow(clippy::useless_conversion)]
    pub(crate) async fn describe(
        &self,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<types::PluginInfo> {
        on_plugin_interface!(self, store, |instance| instance
            .herald_automation_plugin()
            .call_describe(&mut *store)
            .await
            .map(Into::into))
    }

    /// `plugin.validate-config`.
    #[allow(clippy::useless_conversion)]
    pub(crate) async fn validate_config(
        &self,
        store: &mut Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), Vec<types::ConfigError>>> {
        on_plugin_interface!(self, store, |instance| instance
            .herald_automation_plugin()
            .call_validate_config(&mut *store, config)
            .await
            .map(
                |answer| answer.map_err(|problems| problems.into_iter().map(Into::into).collect())
            ))
    }
}

/// A 0.1.0 failure in current types, with the status of the call's last
/// HTTP answer.
fn failure_0_1(
    store: &Store<CallState>,
    error: v0_1::alert::herald::automation::types::PluginError,
) -> types::PluginError {
    types::PluginError {
        status_code: store.data().http.last_status,
        ..error.into()
    }
}

/// An action's answer in current types (`Ok` and `Err` converted).
fn current<T: Into<U>, U>(
    store: &Store<CallState>,
    answer: Result<T, v0_1::alert::herald::automation::types::PluginError>,
) -> Result<U, types::PluginError> {
    answer.map(Into::into).map_err(|e| failure_0_1(store, e))
}

impl AlertPre {
    /// `alerting.deliver`.
    pub(crate) async fn deliver(
        &self,
        store: &mut Store<CallState>,
        config: &str,
        alert: &alerting::Alert,
    ) -> wasmtime::Result<Result<alerting::Delivery, types::PluginError>> {
        match self {
            AlertPre::Current(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .herald_automation_alerting()
                    .call_deliver(&mut *store, config, alert)
                    .await
            }
            AlertPre::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let answer = instance
                    .herald_automation_alerting()
                    .call_deliver(&mut *store, config, &alert.clone().into())
                    .await?;
                Ok(current(store, answer))
            }
        }
    }
}

impl ExportPre {
    /// `exporting.export-batch`.
    pub(crate) async fn export_batch(
        &self,
        store: &mut Store<CallState>,
        config: &str,
        batch: &exporting::Batch,
        body: Resource<Payload>,
    ) -> wasmtime::Result<Result<exporting::Written, types::PluginError>> {
        match self {
            ExportPre::Current(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .herald_automation_exporting()
                    .call_export_batch(&mut *store, config, batch, body)
                    .await
            }
            ExportPre::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let answer = instance
                    .herald_automation_exporting()
                    .call_export_batch(&mut *store, config, &batch.clone().into(), body)
                    .await?;
                Ok(current(store, answer))
            }
        }
    }

    /// `exporting.check-destination`.
    pub(crate) async fn check_destination(
        &self,
        store: &mut Store<CallState>,
        config: &str,
    ) -> wasmtime::Result<Vec<exporting::CheckStep>> {
        match self {
            ExportPre::Current(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .herald_automation_exporting()
                    .call_check_destination(&mut *store, config)
                    .await
            }
            ExportPre::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let steps = instance
                    .herald_automation_exporting()
                    .call_check_destination(&mut *store, config)
                    .await?;
                Ok(steps.into_iter().map(Into::into).collect())
            }
        }
    }
}

impl RetentionPre {
    /// `retention.apply`.
    pub(crate) async fn apply(
        &self,
        store: &mut Store<CallState>,
        config: &str,
        request: retention::RetentionRequest,
    ) -> wasmtime::Result<Result<retention::RetentionOutcome, types::PluginError>> {
        match self {
            RetentionPre::Current(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .herald_automation_retention()
                    .call_apply(&mut *store, config, request)
                    .await
            }
            RetentionPre::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let answer = instance
                    .herald_automation_retention()
                    .call_apply(&mut *store, config, request.into())
                    .await?;
                Ok(current(store, answer))
            }
        }
    }
}
