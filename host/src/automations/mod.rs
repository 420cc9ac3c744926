//! The automations engine: it decides when an automation runs, runs it,
//! and delivers what it produces.
//!
//! Three loops share one [`Engine`]:
//!
//! - **Triggers** ([`scheduler`]): the store's change notifications start an
//!   evaluation of the affected project's alerts within milliseconds of a
//!   commit (ingest-driven, no polling), and a scheduler sleeps until the
//!   earliest persisted `next_run` (or at most [`RESCAN_INTERVAL`], to see
//!   automations other daemons created) to run what is due: the end of a
//!   log alert's suppression, interval backstops.
//! - **Evaluation** ([`evaluate`]): under a database lease, run the
//!   automation's kind — one sibling module each: `logs` (count what
//!   arrived above the watermark), `environment`, [`export`],
//!   [`retention`], behind the one interface in `kind` — and commit what it
//!   decided (watermark, runs, queued notifications) in one transaction.
//! - **Delivery** ([`delivery`]): attempt queued notifications through the
//!   action's plugin, retry with backoff, pause an automation that keeps
//!   failing.
//!
//! Retention and export automations ride the same scheduler and leases,
//! their lease renewed while a purge or an upload goes on.
//!
//! The database is the source of truth for all of it (leases, watermarks,
//! the outbox), so any number of daemons can share one PostgreSQL database
//! and a restart loses nothing. [`config`] holds the Braintrust-shaped
//! configs, [`validate`] the plugin checks and secret redaction,
//! [`payload`] the webhook JSON, [`test_alert`] the `…/test` endpoint, and
//! [`metrics`] the Prometheus metrics.

mod action;
pub mod config;
mod config_error;
pub mod control;
pub mod delivery;
mod environment;
pub mod evaluate;
pub mod export;
pub mod export_config;
mod kind;
mod lease;
mod lifecycle;
mod limits;
mod logs;
pub mod metrics;
pub mod payload;
pub mod retention;
pub mod scheduler;
pub mod secret_refs;
pub mod slack_workspaces;
pub mod test_alert;
pub mod trigger;
pub mod validate;
mod whole_number;
pub mod windowed;
pub mod windowed_config;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use config::{AutomationConfig, ConfigError};
pub use control::{AutomationStatus, RunNowError};
pub use metrics::Metrics;
pub use payload::PayloadContext;

use crate::capabilities::net_guard::HostAllowList;
use crate::capabilities::s3::{EndpointPolicy, S3Connector};
use crate::plugins::PluginRuntime;
use crate::store::Store;

/// The longest the scheduler sleeps without looking at the database, so
/// that automations created through another daemon are picked up.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(30);

/// Evaluations and delivery attempts that may be in flight at once.
const MAX_IN_FLIGHT: u32 = 64;

/// Operator settings of the engine (`[automations]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutomationSettings {
    /// Delay before each delivery attempt, in milliseconds: the first entry
    /// is the first attempt (normally 0), and there are as many attempts as
    /// entries. Each delay gets ±20 % jitter; a receiver's `Retry-After`
    /// can only lengthen it.
    pub retry_schedule_ms: Vec<u64>,
    /// Pause an automation after this many failed delivery attempts in a
    /// row (0: never pause).
    pub pause_after_failures: u32,
    /// `organization.name` (and `.id`) in payloads.
    pub organization_name: String,
    /// How long a daemon's claim on an automation or a delivery lasts before
    /// another daemon may take the work over, in seconds.
    pub lease_seconds: u64,
    /// How often environment alerts look for changes made through other
    /// daemons, in seconds (changes made through this one fire at once).
    pub environment_backstop_seconds: u64,
    /// S3 endpoints (host patterns: `minio.internal`, `*.example.com`)
    /// that may receive the daemon's own AWS credentials, i.e. exports
    /// whose `credentials` are `default` or `aws_iam`, besides AWS's own
    /// hosts. Empty by default: an API key holder cannot send the daemon's
    /// credentials to a server of their choosing.
    pub ambient_credential_endpoints: Vec<String>,
    /// Slack workspaces and their bot tokens, for configs that name a
    /// `workspace_id` (from `[slack.workspaces]` and
    /// `HERALD_SLACK_WORKSPACES`, not from `[automations]`).
    #[serde(skip)]
    pub slack_workspaces: slack_workspaces::SlackWorkspaces,
}

impl Default for AutomationSettings {
    fn default() -> Self {
        Self {
            retry_schedule_ms: vec![0, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000],
            pause_after_failures: 5,
            organization_name: "herald".into(),
            lease_seconds: 120,
            environment_backstop_seconds: 60,
            ambient_credential_endpoints: Vec::new(),
            slack_workspaces: Default::default(),
        }
    }
}

impl AutomationSettings {
    /// Checks the values; `Err` names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_schedule_ms.is_empty() {
            return Err("automations.retry_schedule_ms needs at least one entry".into());
        }
        if self.lease_seconds < 5 {
            return Err("automations.lease_seconds must be at least 5".into());
        }
        if self.environment_backstop_seconds == 0 {
            return Err("automations.environment_backstop_seconds must be at least 1".into());
        }
        if self.organization_name.trim().is_empty() {
            return Err("automations.organization_name must not be empty".into());
        }
        HostAllowList::parse(&self.ambient_credential_endpoints)
            .map_err(|e| format!("automations.ambient_credential_endpoints: {e}"))?;
        self.slack_workspaces.validate()?;
        Ok(())
    }

    fn lease(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.lease_seconds as i64)
    }
}

/// The engine. Cheap to clone; all clones share one set of loops.
///
/// [`control`] holds what the API asks of it (run once, status, resume,
/// reset); [`test_alert`] and [`retention`] its tests and previews.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Store,
    plugins: PluginRuntime,
    settings: AutomationSettings,
    payloads: PayloadContext,
    metrics: Metrics,
    /// S3 clients for exports, cached by destination settings.
    s3: S3Connector,
    /// This process's lease identity.
    owner: String,
    wake_scheduler: Notify,
    wake_delivery: Notify,
    /// One entry per automation being evaluated, with a trigger that came
    /// in meanwhile (see [`scheduler`]).
    slots: Mutex<HashMap<Uuid, Option<trigger::Trigger>>>,
    /// Which alerts watch which project, for the ingest path.
    index: parking_lot::RwLock<scheduler::WatchIndex>,
    /// Held by every evaluation and delivery attempt; shutdown takes all.
    work: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    loops: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// An engine over `store` and `plugins`; nothing runs until
    /// [`Engine::start`].
    pub fn new(
        store: Store,
        plugins: PluginRuntime,
        settings: AutomationSettings,
        public_base_url: Option<String>,
    ) -> Self {
        let payloads = PayloadContext {
            organization: settings.organization_name.clone(),
            organization_id: payload::organization_id(&settings.organization_name),
            public_base_url,
        };
        let s3 = S3Connector::new(EndpointPolicy {
            allow_private_networks: plugins.allows_private_networks(),
            // Validated with the settings; an invalid list allows nothing.
            ambient_credential_endpoints: HostAllowList::parse(
                &settings.ambient_credential_endpoints,
            )
            .unwrap_or_default(),
        });
        Self {
            inner: Arc::new(Inner {
                store,
                plugins,
                settings,
                payloads,
                metrics: Metrics::default(),
                s3,
                owner: format!("herald-{}-{}", std::process::id(), Uuid::new_v4().simple()),
                wake_scheduler: Notify::new(),
                wake_delivery: Notify::new(),
                slots: Mutex::new(HashMap::new()),
                index: Default::default(),
                work: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
                shutdown: watch::channel(false).0,
                loops: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The organization's name, as payloads and Braintrust's SDKs see it.
    pub fn organization_name(&self) -> &str {
        &self.inner.payloads.organization
    }

    /// The organization's id, as payloads and Braintrust's SDKs see it.
    pub fn organization_id(&self) -> &str {
        &self.inner.payloads.organization_id
    }

    /// Starts the trigger, scheduler and delivery loops.
    pub fn start(&self) {
        let mut loops = self.inner.loops.lock();
        if !loops.is_empty() {
            return;
        }
        loops.push(tokio::spawn(scheduler::listen(self.inner.clone())));
        loops.push(tokio::spawn(scheduler::schedule(self.inner.clone())));
        loops.push(tokio::spawn(delivery::deliver(self.inner.clone())));
        tracing::info!(owner = %self.inner.owner, "automations engine started");
    }

    /// Stops the loops, lets evaluations and deliveries in flight finish (up
    /// to `grace`), and releases every lease this daemon holds so another
    /// daemon can take over at once.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.inner.shutdown.send(true);
        let loops: Vec<_> = std::mem::take(&mut *self.inner.loops.lock());
        let drained = tokio::time::timeout(grace, async {
            for handle in loops {
                let _ = handle.await;
            }
            let _ = self.inner.work.acquire_many(MAX_IN_FLIGHT).await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "work still in flight at shutdown; its leases expire and another run picks it up"
            );
        }
        if let Err(error) = self.inner.store.release_all_leases(&self.inner.owner).await {
            tracing::warn!(%error, "could not release leases at shutdown");
        }
    }

    /// Tells the engine an automation was created, changed or deleted: the
    /// ingest path sees it before this returns.
    pub(crate) async fn changed(&self) {
        self.inner.rebuild_index().await;
        self.inner.wake_scheduler.notify_one();
    }

    /// Tells the delivery worker to look at the outbox now.
    pub fn wake_delivery(&self) {
        self.inner.wake_delivery.notify_one();
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The engine's settings.
    pub fn settings(&self) -> &AutomationSettings {
        &self.inner.settings
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The plugin host.
    pub fn plugins(&self) -> &PluginRuntime {
        &self.inner.plugins
    }
}

impl Inner {
    fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
