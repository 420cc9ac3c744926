//! The delivery worker: drains the outbox through the actions' plugins.
//!
//! It claims due deliveries under a lease, runs each attempt concurrently
//! (one plugin call each, in the plugin sandbox), and records the outcome
//! with the run and the automation's failure streak in one transaction.
//! Retryable failures (the plugin says so: 408, 429, 5xx, timeouts,
//! refused connections) are tried again after the next delay of
//! [`AutomationSettings::retry_schedule_ms`](super::AutomationSettings),
//! with ±20 % jitter so that many alerts failing together do not retry in
//! lockstep, and never before a receiver's `Retry-After`. Anything else
//! fails at once. When it has nothing to do the worker sleeps until the
//! next delivery is due or a new one is queued.
//!
//! Delivery is at least once: a daemon that dies mid-attempt leaves its
//! lease to expire and the attempt is made again, with the same event id
//! (`webhook-id`), so receivers can drop the duplicate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::config::{Action, AutomationConfig, ConfigError};
use super::metrics::DeliveryOutcome;
use super::{Inner, MAX_IN_FLIGHT, RESCAN_INTERVAL};
use crate::plugins::{AlertRequest, CallReport, Delivery};
use crate::store::{AttemptOutcome, DbTime, PauseScope, QueuedDelivery, RunTrigger, StoreError};

/// How long a shutting-down worker waits for attempts in flight.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// The worker loop.
pub(super) async fn deliver(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let limit = MAX_IN_FLIGHT as usize / 2;
    loop {
        if inner.is_shutting_down() {
            break;
        }
        let capacity = limit.saturating_sub(in_flight.len());
        if capacity > 0 {
            let until = DbTime(DbTime::now().0 + inner.settings.lease());
            match inner
                .store
                .claim_due_deliveries(&inner.owner, until, capacity as u32)
                .await
            {
                Ok(claimed) => {
                    for delivery in claimed {
                        let inner = inner.clone();
                        in_flight.spawn(async move { attempt(&inner, delivery).await });
                    }
                }
                Err(error) => tracing::warn!(%error, "could not read the outbox"),
            }
        }
        let sleep = if in_flight.len() >= limit {
            RESCAN_INTERVAL
        } else {
            match inner.store.next_delivery_time().await {
                Ok(Some(at)) => (at.0 - DbTime::now().0)
                    .to_std()
                    .unwrap_or_default()
                    .clamp(Duration::from_millis(20), RESCAN_INTERVAL),
                Ok(None) => RESCAN_INTERVAL,
                Err(error) => {
                    tracing::warn!(%error, "could not read the outbox");
                    Duration::from_secs(1)
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = inner.wake_delivery.notified() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = in_flight.len(),
            "deliveries still in flight at shutdown are left to their leases"
        );
        in_flight.abort_all();
    }
}

/// Makes one attempt of `delivery` and records it.
async fn attempt(inner: &Inner, delivery: QueuedDelivery) {
    let Ok(_permit) = inner.work.acquire().await else {
        return;
    };
    let attempt_number = delivery.attempts + 1;
    let started = Instant::now();
    let (plugin, outcome, scope) = match send(inner, &delivery, attempt_number as u32).await {
        Ok(result) => result,
        Err(error) => (
            "unknown".to_string(),
            AttemptOutcome::Failed {
                error: error.to_string(),
                status_code: None,
            },
            PauseScope::Automation,
        ),
    };
    let took = started.elapsed();
    // 410 Gone says the destination is gone for good (Standard Webhooks,
    // Svix): the automation pauses at once instead of after a streak.
    let gone = matches!(
        outcome,
        AttemptOutcome::Failed {
            status_code: Some(410),
            ..
        }
    );
    let pause_after = if gone {
        1
    } else {
        inner.settings.pause_after_failures
    };
    let recorded = match inner
        .store
        .record_attempt(&delivery, &inner.owner, &outcome, pause_after, scope)
        .await
    {
        Ok(Some(recorded)) => recorded,
        Ok(None) => {
            tracing::warn!(event_id = %delivery.id, "lost the delivery lease mid-attempt; another daemon took over");
            return;
        }
        Err(error) => {
            tracing::error!(event_id = %delivery.id, %error, "could not record a delivery attempt; it will be retried when its lease expires");
            return;
        }
    };
    let trigger = RunTrigger::parse(&delivery.run_trigger);
    let metrics = &inner.metrics;
    match &outcome {
        AttemptOutcome::Delivered {
            status_code,
            summary,
        } => {
            metrics.delivery(&plugin, DeliveryOutcome::Delivered, took);
            let latency = (DbTime::now().0 - delivery.triggered_at.0)
                .to_std()
                .unwrap_or_default();
            metrics.alert_latency(&delivery.event_type, latency);
            tracing::info!(
                automation_id = %delivery.automation_id,
                event_id = %delivery.id,
                attempt = attempt_number,
                status_code,
                latency_ms = latency.as_millis() as u64,
                "{summary}"
            );
        }
        AttemptOutcome::Retry {
            error,
            next_attempt,
            status_code,
        } => {
            metrics.delivery(&plugin, DeliveryOutcome::Retried, took);
            tracing::warn!(
                automation_id = %delivery.automation_id,
                event_id = %delivery.id,
                attempt = attempt_number,
                next_attempt = %next_attempt,
                status_code,
                error,
                "delivery failed; will retry"
            );
        }
        AttemptOutcome::Failed { error, status_code } => {
            metrics.delivery(&plugin, DeliveryOutcome::Failed, took);
            tracing::warn!(
                automation_id = %delivery.automation_id,
                event_id = %delivery.id,
                attempt = attempt_number,
                status_code,
                error,
                "delivery failed for good"
            );
        }
    }
    // A run is counted once, when its last notification ends.
    if let Some(status) = recorded.run_finished {
        metrics.run(&delivery.event_type, trigger, status);
    }
    if recorded.paused {
        metrics.paused();
        match scope {
            PauseScope::Automation => tracing::warn!(
                automation_id = %delivery.automation_id,
                failures = inner.settings.pause_after_failures,
                "automation paused after failed deliveries in a row; POST …/resume to restart it"
            ),
            PauseScope::Destination => tracing::warn!(
                automation_id = %delivery.automation_id,
                action_index = delivery.action_index,
                failures = inner.settings.pause_after_failures,
                "destination paused after failed deliveries in a row (the automation's other \
                 destinations go on); POST …/resume to restart it"
            ),
        }
    }
}

/// Calls the action's plugin; returns its name, the outcome, and whose
/// failure streak it counts in (the destination's, when the automation has
/// several).
async fn send(
    inner: &Inner,
    delivery: &QueuedDelivery,
    attempt: u32,
) -> Result<(String, AttemptOutcome, PauseScope), StoreError> {
    let automation = inner.store.automation(delivery.automation_id).await?;
    let config = match AutomationConfig::parse(&automation.config.0, "config") {
        Ok(config) => config,
        Err(error) => {
            return Ok((
                "unknown".into(),
                AttemptOutcome::Failed {
                    error: format!("the automation's config is no longer valid: {error}"),
                    status_code: None,
                },
                PauseScope::Automation,
            ));
        }
    };
    let actions = config.actions();
    let scope = if actions.len() > 1 {
        PauseScope::Destination
    } else {
        PauseScope::Automation
    };
    let Some(at) = actions.iter().find(|a| a.index == delivery.action_index) else {
        return Ok((
            "unknown".into(),
            AttemptOutcome::Failed {
                error: match delivery.action_index {
                    None => "the automation is no longer an alert".into(),
                    Some(i) => format!("the automation no longer has actions[{i}]"),
                },
                status_code: None,
            },
            PauseScope::Automation,
        ));
    };
    let action = at.action;
    let request = AlertRequest {
        event_id: delivery.id.clone(),
        event_type: delivery.event_type.clone(),
        payload: delivery.payload.0.clone(),
        is_test: false,
        attempt,
    };
    let path = format!("config.{}", at.path);
    let report = match deliver_through(inner, automation.project_id, action, &request, &path).await
    {
        Ok(report) => report,
        Err(error) => {
            return Ok((
                action.plugin.clone(),
                AttemptOutcome::Failed {
                    error: format!("{}: {}", error.path, error.message),
                    status_code: None,
                },
                scope,
            ));
        }
    };
    let outcome = match report.result {
        Ok(done) => AttemptOutcome::Delivered {
            status_code: done.status_code,
            summary: done.summary,
        },
        Err(error) => {
            let status_code = error.status_code();
            let schedule = &inner.settings.retry_schedule_ms;
            let next_index = attempt as usize;
            if error.is_retryable() && next_index < schedule.len() {
                let delay = jittered(Duration::from_millis(schedule[next_index]));
                let delay = match &error {
                    crate::plugins::CallError::Failed {
                        retry_after: Some(after),
                        ..
                    } => delay.max(*after),
                    _ => delay,
                };
                AttemptOutcome::Retry {
                    error: error.to_string(),
                    status_code,
                    next_attempt: DbTime(
                        DbTime::now().0 + chrono::TimeDelta::from_std(delay).unwrap_or_default(),
                    ),
                }
            } else if error.is_retryable() {
                AttemptOutcome::Failed {
                    error: format!("gave up after {attempt} attempts: {error}"),
                    status_code,
                }
            } else if status_code == Some(410) {
                AttemptOutcome::Failed {
                    error: format!(
                        "the destination is gone (410 Gone), so the automation is paused until it is resumed: {error}"
                    ),
                    status_code,
                }
            } else {
                AttemptOutcome::Failed {
                    error: error.to_string(),
                    status_code,
                }
            }
        }
    };
    Ok((action.plugin.clone(), outcome, scope))
}

/// Delivers `request` through `action` (at `path` in the config, e.g.
/// `config.actions[1]`) of an automation of `project_id`, its env var
/// references resolved first (`secret_refs`); the error is a reference
/// that no longer resolves.
pub(super) async fn deliver_through(
    inner: &Inner,
    project_id: Uuid,
    action: &Action,
    request: &AlertRequest,
    path: &str,
) -> Result<CallReport<Delivery>, ConfigError> {
    let action = inner.resolve_action(project_id, action, path).await?;
    Ok(inner
        .plugins
        .deliver(&action.plugin, &Value::Object(action.config), request)
        .await)
}

/// `delay` ± 20 %, from the randomness of a fresh v4 UUID.
pub fn jittered(delay: Duration) -> Duration {
    let unit = (Uuid::new_v4().as_u128() % 10_001) as f64 / 10_000.0; // 0.0 ..= 1.0
    delay.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
