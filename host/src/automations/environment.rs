//! Environment alerts: read environment events above the watermark in
//! sequence order and queue one notification per event whose slug the
//! automation watches, with an event id derived from the automation and
//! the event, so even a replay could not mint a second id.

use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::config::EnvironmentConfig;
use super::kind::{Evaluation, NotificationRun, Verdict};
use super::trigger::Trigger;
use crate::store::{DbTime, EvaluationCommit};

/// Most environment events read by one evaluation; a full page makes the
/// automation due again at once.
const PAGE: u32 = 500;

/// Evaluates an environment alert.
pub(super) async fn evaluate(
    ev: &Evaluation<'_>,
    environment: &EnvironmentConfig,
) -> anyhow::Result<Verdict> {
    let (inner, state, now) = (ev.inner, ev.state, ev.now);
    let events = inner
        .store
        .environment_events(Some(ev.project.id), Some(state.watermark), PAGE)
        .await?;
    let backstop = chrono::TimeDelta::seconds(inner.settings.environment_backstop_seconds as i64);
    let watermark = events.last().map_or(state.watermark, |e| e.xact_id);
    let mut commit = EvaluationCommit::next(watermark, now, DbTime(now.0 + backstop));
    if events.len() == PAGE as usize {
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
                .environment(ev.project, ev.automation, ev.config, event, false);
        let details = json!({
            "environment_event_id": event.id,
            "environment": event.environment_slug,
            "prompt_id": event.prompt_id,
            "action": event.action,
        });
        let (run, deliveries) = ev.notification(NotificationRun {
            trigger: match ev.trigger {
                Trigger::Manual => Trigger::Manual,
                _ => Trigger::Event { at: event.created },
            },
            matched_rows: None,
            details,
            payload,
            event_id: environment_event_id(ev.id(), event.id),
            triggered_at: event.created,
        });
        commit.runs.push(run);
        commit.deliveries.extend(deliveries);
    }
    if commit.runs.is_empty() && ev.trigger == Trigger::Manual {
        let details = json!({"message": "no environment changes since the last run"});
        commit.runs.push(ev.skipped(None, details));
    }
    Ok(Verdict::Commit(commit))
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
