//! What starts evaluations: store events (ingest-driven) and due times.
//!
//! [`listen`] subscribes to the store's change notifications. Spans written
//! to a project start an evaluation of that project's log alerts that are
//! not suppressed; an environment change starts its project's environment
//! alerts. A [`WatchIndex`] in memory answers "which alerts watch this
//! project" without a query per insert; it is rebuilt from the database
//! whenever an automation changes and on every scheduler pass.
//!
//! [`schedule`] sleeps until the earliest `next_run` in the database (or
//! [`RESCAN_INTERVAL`](super::RESCAN_INTERVAL), or until woken by an API
//! change), then evaluates everything due. Nothing polls in a tight loop.
//!
//! Evaluations of one automation never overlap within a daemon: a trigger
//! that arrives while one runs is remembered (merged with any other) and
//! runs right after, so a burst of inserts costs one or two evaluations,
//! not one per insert. Across daemons the database lease does the same job;
//! a daemon that finds the lease taken retries shortly, because the holder
//! may have counted before this daemon's insert committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::evaluate::evaluate_until_claimed;
use super::trigger::{Outcome, Trigger};
use super::{Inner, RESCAN_INTERVAL};
use crate::store::{DbTime, ObjectKind, StoreEvent};

/// How many times (100 ms apart) an evaluation retries a taken lease
/// before leaving the work to the backstop.
const BUSY_RETRIES: u32 = 50;

/// Alerts by project, as the ingest path needs them.
#[derive(Debug, Default)]
pub struct WatchIndex {
    logs: HashMap<Uuid, Vec<(Uuid, Option<DbTime>)>>,
    environment: HashMap<Uuid, Vec<Uuid>>,
}

impl Inner {
    /// Re-reads which alerts watch which project.
    pub(super) async fn rebuild_index(&self) {
        match self.store.alert_watches().await {
            Ok(watches) => {
                let mut index = WatchIndex::default();
                for watch in watches.into_iter().filter(|w| !w.paused) {
                    match watch.event_type.as_str() {
                        "logs" => index
                            .logs
                            .entry(watch.project_id)
                            .or_default()
                            .push((watch.automation_id, watch.suppressed_until)),
                        _ => index
                            .environment
                            .entry(watch.project_id)
                            .or_default()
                            .push(watch.automation_id),
                    }
                }
                *self.index.write() = index;
            }
            Err(error) => tracing::warn!(%error, "could not read the automations to watch"),
        }
    }

    /// Starts an evaluation of `id`, or folds `trigger` into the one
    /// running.
    pub(super) fn request(self: &Arc<Self>, id: Uuid, trigger: Trigger) {
        {
            let mut slots = self.slots.lock();
            if let Some(pending) = slots.get_mut(&id) {
                *pending = Some(pending.map_or(trigger, |p| p.merge(trigger)));
                return;
            }
            slots.insert(id, None);
        }
        let inner = self.clone();
        tokio::spawn(async move { inner.run_slot(id, trigger).await });
    }

    async fn run_slot(self: Arc<Self>, id: Uuid, mut trigger: Trigger) {
        let Ok(_permit) = self.work.clone().acquire_owned().await else {
            self.slots.lock().remove(&id);
            return;
        };
        loop {
            match evaluate_until_claimed(&self, id, trigger, BUSY_RETRIES).await {
                Ok(Outcome::Recorded(_)) => self.rebuild_index().await,
                Ok(Outcome::Busy) => {
                    tracing::debug!(automation_id = %id, "lease held elsewhere; left to the holder and the backstop")
                }
                Ok(Outcome::Idle) => {}
                Err(error) => {
                    tracing::warn!(automation_id = %id, error = format!("{error:#}"), "evaluation failed");
                    // Let go at once (if the lease is ours) and try again in a minute.
                    let retry = DbTime(DbTime::now().0 + chrono::TimeDelta::seconds(60));
                    let _ = self
                        .store
                        .release_automation(id, &self.owner, Some(retry))
                        .await;
                }
            }
            let mut slots = self.slots.lock();
            match slots.get_mut(&id).and_then(Option::take) {
                Some(next) if !self.is_shutting_down() => trigger = next,
                _ => {
                    slots.remove(&id);
                    break;
                }
            }
        }
    }
}

/// Turns store change notifications into evaluations.
pub(super) async fn listen(inner: Arc<Inner>) {
    let mut events = inner.store.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    inner.rebuild_index().await;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = shutdown.changed() => break,
        };
        let at = DbTime::now();
        match event {
            Ok(StoreEvent::Events {
                object, written, ..
            }) if written > 0 && object.kind == ObjectKind::ProjectLogs => {
                let due: Vec<Uuid> = inner
                    .index
                    .read()
                    .logs
                    .get(&object.project_id)
                    .map(|alerts| {
                        alerts
                            .iter()
                            .filter(|(_, until)| until.is_none_or(|u| u.0 <= at.0))
                            .map(|(id, _)| *id)
                            .collect()
                    })
                    .unwrap_or_default();
                for id in due {
                    inner.request(id, Trigger::Event { at });
                }
            }
            Ok(StoreEvent::Environment(change)) => {
                let watching = inner
                    .index
                    .read()
                    .environment
                    .get(&change.project_id)
                    .cloned()
                    .unwrap_or_default();
                for id in watching {
                    inner.request(id, Trigger::Event { at });
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                // The notifications are wake-ups; the watermarks are the
                // truth. Evaluate every alert once to catch up.
                tracing::warn!(
                    missed,
                    "change notifications lagged; evaluating every alert"
                );
                let all: Vec<Uuid> = {
                    let index = inner.index.read();
                    index
                        .logs
                        .values()
                        .flatten()
                        .map(|(id, _)| *id)
                        .chain(index.environment.values().flatten().copied())
                        .collect()
                };
                for id in all {
                    inner.request(id, Trigger::Event { at });
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Runs what is due, then sleeps until the next due time.
pub(super) async fn schedule(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if inner.is_shutting_down() {
            break;
        }
        inner.rebuild_index().await;
        let now = DbTime::now();
        match inner
            .store
            .recover_interrupted(now, inner.settings.pause_after_failures)
            .await
        {
            Ok(runs) => {
                for run in runs {
                    tracing::warn!(automation_id = %run.automation_id, run_id = %run.id,
                        "a run was interrupted by a daemon stopping; recorded as failed");
                    inner.metrics.run(&run.event_type, run.trigger, run.status);
                }
            }
            Err(error) => tracing::warn!(%error, "could not look for interrupted runs"),
        }
        match inner.store.due_automations(now, 256).await {
            Ok(due) => {
                for id in due {
                    inner.request(id, Trigger::Scheduled);
                }
            }
            Err(error) => tracing::warn!(%error, "could not read due automations"),
        }
        let next = inner.store.next_due_time().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "could not read the next due time");
            None
        });
        let sleep = next
            .map(|at| (at.0 - DbTime::now().0).to_std().unwrap_or_default())
            .unwrap_or(RESCAN_INTERVAL)
            .min(RESCAN_INTERVAL)
            // Work just requested is still holding `next_run` in the past;
            // give it a moment rather than spinning.
            .max(Duration::from_millis(50));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = inner.wake_scheduler.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
}
