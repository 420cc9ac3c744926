//! The engine's Prometheus metrics, served at `GET /metrics`.
//!
//! Labels are low-cardinality on purpose (event type, trigger, status,
//! plugin name): no automation or project ids, which would grow without
//! bound and could reveal names to whoever scrapes.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::{RunStatus, RunTrigger};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    event_type: String,
    trigger: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    plugin: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventTypeLabels {
    event_type: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// How a delivery attempt ended, for [`Metrics::delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted by the destination.
    Delivered,
    /// Failed, will be retried.
    Retried,
    /// Failed for good.
    Failed,
}

/// The engine's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    runs: Family<RunLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    paused: Counter,
    outbox_queued: Gauge,
    plugin_duration: HistogramFamily<PluginLabels>,
    alert_latency: HistogramFamily<EventTypeLabels>,
}

fn plugin_buckets() -> Histogram {
    // 100 µs … ~6.5 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 17,
    ))
}

fn latency_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "herald_automation_runs",
            "Automation runs recorded, by event type, trigger and final or current status",
            runs.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "herald_deliveries",
            "Delivery attempts, by plugin and outcome (delivered, retried, failed)",
            deliveries.clone(),
        );
        let paused = Counter::default();
        registry.register(
            "herald_automations_paused",
            "Automations paused after too many failed deliveries in a row",
            paused.clone(),
        );
        let outbox_queued = Gauge::default();
        registry.register(
            "herald_outbox_queued",
            "Notifications waiting in the outbox",
            outbox_queued.clone(),
        );
        let plugin_duration: HistogramFamily<PluginLabels> =
            Family::new_with_constructor(plugin_buckets);
        registry.register(
            "herald_plugin_call_duration_seconds",
            "Wall time of plugin delivery calls",
            plugin_duration.clone(),
        );
        let alert_latency: HistogramFamily<EventTypeLabels> =
            Family::new_with_constructor(latency_buckets);
        registry.register(
            "herald_alert_latency_seconds",
            "From the change that triggered a notification to its delivery",
            alert_latency.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            runs,
            deliveries,
            paused,
            outbox_queued,
            plugin_duration,
            alert_latency,
        }
    }
}

impl Metrics {
    /// Counts a recorded run.
    pub fn run(&self, event_type: &str, trigger: RunTrigger, status: RunStatus) {
        self.runs
            .get_or_create(&RunLabels {
                event_type: event_type.to_string(),
                trigger: trigger.as_str(),
                status: status.as_str(),
            })
            .inc();
    }

    /// Counts a delivery attempt and how long the plugin took.
    pub fn delivery(&self, plugin: &str, outcome: DeliveryOutcome, took: Duration) {
        let outcome = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::Failed => "failed",
        };
        self.deliveries
            .get_or_create(&DeliveryLabels {
                plugin: plugin.to_string(),
                outcome,
            })
            .inc();
        self.plugin_duration
            .get_or_create(&PluginLabels {
                plugin: plugin.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records the latency of a delivered alert.
    pub fn alert_latency(&self, event_type: &str, latency: Duration) {
        self.alert_latency
            .get_or_create(&EventTypeLabels {
                event_type: event_type.to_string(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Counts an automation being paused.
    pub fn paused(&self) {
        self.paused.inc();
    }

    /// Renders every metric in the Prometheus text format, with the outbox
    /// gauge set to `queued`.
    pub fn render(&self, queued: i64) -> String {
        self.outbox_queued.set(queued);
        let mut text = String::new();
        let registry = self.registry.lock();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
