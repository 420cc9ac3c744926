//! One evaluation of one automation, under its lease.
//!
//! **Log alerts** count the spans matching the filter with an ingest
//! sequence number in `(watermark, now]`. If there are any and the alert is
//! not suppressed, one transaction records the run, queues the
//! notification, moves the watermark and suppresses the alert for
//! `interval_seconds` (see [`Store::commit_evaluation`]). While it is
//! suppressed the watermark stays put, so the spans that keep matching are
//! counted into the notification sent when the suppression ends — the
//! scheduler is due exactly then. Reading the watermark and the sequence
//! inside one lease means a span is counted once, whichever daemon ingests
//! it, whenever the daemons restart.
//!
//! **Environment alerts** read environment events above the watermark in
//! sequence order and queue one notification per event whose slug the
//! automation watches, with an event id derived from the automation and the
//! event, so even a replay could not mint a second id.
//!
//! [`Store::commit_evaluation`]: crate::store::Store::commit_evaluation

use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::config::AutomationConfig;
use super::payload::LogWindow;
use super::trigger::{Outcome, Trigger};
use super::{Inner, evaluate};
use crate::store::{
    AutomationState, DbTime, EvaluationCommit, NewDelivery, NewRun, ObjectRef, RunStatus,
    RunTrigger, StoreError, XactRange,
};

/// Evaluates automation `id`.
pub(crate) async fn evaluate(inner: &Inner, id: Uuid, trigger: Trigger) -> anyhow::Result<Outcome> {
    let store = &inner.store;
    let automation = match store.automation(id).await {
        Ok(automation) => automation,
        Err(StoreError::NotFound { .. }) => return Ok(Outcome::Idle),
        Err(other) => return Err(other.into()),
    };
    // A cheap pre-check, without the lease: most ingest events land inside
    // a suppression and need no write at all.
    if nothing_to_do(&store.automation_state(id).await?, trigger, DbTime::now()) {
        return Ok(Outcome::Idle);
    }
    let config = AutomationConfig::parse(&automation.config.0, "config")
        .map_err(|e| anyhow::anyhow!("stored config of automation {id} is invalid: {e}"))?;
    let lease_until = DbTime(DbTime::now().0 + inner.settings.lease());
    if !store
        .claim_automation(id, &inner.owner, lease_until)
        .await?
    {
        return Ok(Outcome::Busy);
    }
    // Another daemon may have committed an evaluation between the pre-check
    // and the claim: only the state read under the lease is the truth.
    let state = store.automation_state(id).await?;
    let now = DbTime::now();
    let suppressed = suppression(&state, now);
    if nothing_to_do(&state, trigger, now) {
        store
            .release_automation(id, &inner.owner, state.next_run)
            .await?;
        return Ok(Outcome::Idle);
    }
    let project = store.project(automation.project_id).await?;
    let triggered_at = match trigger {
        Trigger::Event { at } => at,
        _ => now,
    };

    let commit = match &config {
        AutomationConfig::Logs(logs) => {
            if let Some(until) = suppressed
                && trigger != Trigger::Manual
            {
                store
                    .release_automation(id, &inner.owner, Some(until))
                    .await?;
                return Ok(Outcome::Idle);
            }
            let upto = store.current_xact_id().await?;
            let filter = logs.filter()?;
            let object = ObjectRef::project_logs(project.id);
            let count = store
                .count_events(
                    object,
                    filter.as_ref(),
                    XactRange::between(state.watermark, upto),
                )
                .await?;
            let window = LogWindow {
                count,
                time_start: state.window_start,
                time_end: now,
                xact_after: state.watermark,
                xact_upto: upto,
            };
            let interval = chrono::TimeDelta::seconds(logs.interval_seconds as i64);
            let mut commit = EvaluationCommit::next(upto, now, DbTime(now.0 + interval));
            let details = json!({
                "xact_after": window.xact_after,
                "xact_upto": window.xact_upto,
                "time_start": window.time_start,
                "time_end": window.time_end,
            });
            if count > 0 {
                let payload = inner
                    .payloads
                    .logs(&project, &automation, &config, &window, false);
                let (run, delivery) = notification(
                    &automation.event_type,
                    id,
                    trigger,
                    Some(count as i64),
                    details,
                    payload,
                    format!("evt_{}", Uuid::now_v7().simple()),
                    triggered_at,
                );
                commit.runs.push(run);
                commit.deliveries.push(delivery);
                commit.suppressed_until = Some(DbTime(now.0 + interval));
                commit.next_run = commit.suppressed_until;
            } else if trigger == Trigger::Manual {
                commit
                    .runs
                    .push(skipped(&automation.event_type, id, Some(0), details));
            }
            commit
        }
        AutomationConfig::EnvironmentUpdate(environment) => {
            let events = store
                .environment_events(Some(project.id), Some(state.watermark), 500)
                .await?;
            let backstop =
                chrono::TimeDelta::seconds(inner.settings.environment_backstop_seconds as i64);
            let watermark = events.last().map_or(state.watermark, |e| e.xact_id);
            let mut commit = EvaluationCommit::next(watermark, now, DbTime(now.0 + backstop));
            if events.len() == 500 {
                // More to read: come back at once.
                commit.next_run = Some(now);
            }
            for event in events
                .iter()
                .filter(|e| environment.watches(&e.environment_slug))
            {
                let payload =
                    inner
                        .payloads
                        .environment(&project, &automation, &config, event, false);
                let details = json!({
                    "environment_event_id": event.id,
                    "environment": event.environment_slug,
                    "prompt_id": event.prompt_id,
                    "action": event.action,
                });
                let event_trigger = match trigger {
                    Trigger::Manual => Trigger::Manual,
                    _ => Trigger::Event { at: event.created },
                };
                let (run, delivery) = notification(
                    &automation.event_type,
                    id,
                    event_trigger,
                    None,
                    details,
                    payload,
                    environment_event_id(id, event.id),
                    event.created,
                );
                commit.runs.push(run);
                commit.deliveries.push(delivery);
            }
            if commit.runs.is_empty() && trigger == Trigger::Manual {
                let details = json!({"message": "no environment changes since the last run"});
                commit
                    .runs
                    .push(skipped(&automation.event_type, id, None, details));
            }
            commit
        }
        AutomationConfig::Retention(retention) => {
            let started = DbTime::now();
            let result =
                super::retention::apply(inner, project.id, retention, false, Some(id)).await;
            let finished = DbTime::now();
            let interval = chrono::TimeDelta::seconds(retention.interval() as i64);
            let (status, error, details, matched) = match result {
                Ok(report) => (
                    RunStatus::Succeeded,
                    None,
                    report.to_json(),
                    Some(report.affected as i64),
                ),
                Err(error) => (RunStatus::Failed, Some(error.to_string()), json!({}), None),
            };
            // Start to start: the next run is one interval after this one began.
            let next_run = DbTime(started.0 + interval);
            EvaluationCommit {
                runs: vec![NewRun {
                    finished: Some(finished),
                    matched_rows: matched,
                    attempts: 1,
                    error,
                    details,
                    ..NewRun::ended(
                        id,
                        automation.event_type.clone(),
                        trigger.run_trigger(),
                        status,
                        started,
                    )
                }],
                ..EvaluationCommit::next(state.watermark, started, next_run)
            }
        }
        AutomationConfig::BtqlExport(export) => {
            match super::export::run(inner, &automation, export, &state, trigger).await? {
                Some(commit) => commit,
                None => return Ok(Outcome::Busy),
            }
        }
    };

    if !store.commit_evaluation(id, &inner.owner, &commit).await? {
        return Ok(Outcome::Busy);
    }
    for run in &commit.runs {
        // Runs still waiting on a delivery are counted when it ends.
        if run.status != RunStatus::Running {
            inner.metrics.run(&run.event_type, run.trigger, run.status);
        }
        tracing::info!(
            automation_id = %id,
            run_id = %run.id,
            trigger = run.trigger.as_str(),
            status = run.status.as_str(),
            matched_rows = run.matched_rows,
            "automation run recorded"
        );
    }
    if !commit.deliveries.is_empty() {
        inner.wake_delivery.notify_one();
    }
    // Due again at once (an export backlog left after the drain budget, a
    // manual run): the scheduler may be asleep until a later time.
    if commit.next_run.is_some_and(|at| at.0 <= DbTime::now().0) {
        inner.wake_scheduler.notify_one();
    }
    if commit.runs.is_empty() {
        Ok(Outcome::Idle)
    } else {
        Ok(Outcome::Recorded(commit.runs))
    }
}

/// When the automation's suppression ends, if it is still on at `now`.
fn suppression(state: &AutomationState, now: DbTime) -> Option<DbTime> {
    state.suppressed_until.filter(|until| until.0 > now.0)
}

/// Whether `trigger` has nothing to do on `state` at `now`: a paused
/// automation runs only when asked to, and an event inside a suppression
/// is counted when the suppression ends (the scheduler is due then).
fn nothing_to_do(state: &AutomationState, trigger: Trigger, now: DbTime) -> bool {
    (state.paused && trigger != Trigger::Manual)
        || (suppression(state, now).is_some() && matches!(trigger, Trigger::Event { .. }))
}

/// A run that queued one notification, and that notification.
#[allow(clippy::too_many_arguments)]
fn notification(
    event_type: &str,
    automation_id: Uuid,
    trigger: Trigger,
    matched_rows: Option<i64>,
    mut details: serde_json::Value,
    payload: serde_json::Value,
    event_id: String,
    triggered_at: DbTime,
) -> (NewRun, NewDelivery) {
    let run_id = Uuid::now_v7();
    details["event_id"] = event_id.clone().into();
    let run = NewRun {
        id: run_id,
        automation_id,
        event_type: event_type.to_string(),
        trigger: trigger.run_trigger(),
        status: RunStatus::Running,
        started: DbTime::now(),
        finished: None,
        matched_rows,
        deliveries: 1,
        attempts: 0,
        error: None,
        details,
    };
    let delivery = NewDelivery {
        id: event_id,
        automation_id,
        run_id,
        event_type: event_type.to_string(),
        payload,
        triggered_at,
    };
    (run, delivery)
}

/// A manual run that found nothing to send.
fn skipped(
    event_type: &str,
    automation_id: Uuid,
    matched_rows: Option<i64>,
    details: serde_json::Value,
) -> NewRun {
    NewRun {
        matched_rows,
        details,
        ..NewRun::ended(
            automation_id,
            event_type,
            RunTrigger::Manual,
            RunStatus::Skipped,
            DbTime::now(),
        )
    }
}

/// The event id of automation `automation_id`'s notification about
/// environment event `event_id`: the same whoever computes it, whenever.
fn environment_event_id(automation_id: Uuid, event_id: Uuid) -> String {
    let digest = Sha256::new()
        .chain_update(automation_id.as_bytes())
        .chain_update(event_id.as_bytes())
        .finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

/// Evaluates, retrying while another daemon holds the lease (at most
/// `attempts` times, 100 ms apart).
pub(crate) async fn evaluate_until_claimed(
    inner: &Inner,
    id: Uuid,
    trigger: Trigger,
    attempts: u32,
) -> anyhow::Result<Outcome> {
    for _ in 1..attempts {
        match evaluate::evaluate(inner, id, trigger).await? {
            Outcome::Busy if !inner.is_shutting_down() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            outcome => return Ok(outcome),
        }
    }
    evaluate::evaluate(inner, id, trigger).await
}
