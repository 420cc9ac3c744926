//! Log alerts: count the spans matching the filter with an ingest sequence
//! number in `(watermark, now]`, and notify when there are any.
//!
//! If spans matched and the alert is not suppressed, the commit records the
//! run, queues the notification, moves the watermark and suppresses the
//! alert for `interval_seconds` (see [`Store::commit_evaluation`]). While it
//! is suppressed the watermark stays put, so the spans that keep matching
//! are counted into the notification sent when the suppression ends — the
//! scheduler is due exactly then. Reading the watermark and the sequence
//! inside one lease means a span is counted once, whichever daemon ingests
//! it, whenever the daemons restart.
//!
//! [`Store::commit_evaluation`]: crate::store::Store::commit_evaluation

use serde_json::json;
use uuid::Uuid;

use super::config::LogsConfig;
use super::kind::{Evaluation, NotificationRun, Verdict, suppression};
use super::payload::LogWindow;
use super::trigger::Trigger;
use crate::store::{DbTime, EvaluationCommit, ObjectRef, XactRange};

/// Evaluates a log alert.
pub(super) async fn evaluate(ev: &Evaluation<'_>, logs: &LogsConfig) -> anyhow::Result<Verdict> {
    let (store, state, now) = (&ev.inner.store, ev.state, ev.now);
    if let Some(until) = suppression(state, now)
        && ev.trigger != Trigger::Manual
    {
        return Ok(Verdict::Release {
            next_run: Some(until),
        });
    }
    let upto = store.current_xact_id().await?;
    let filter = logs.filter()?;
    let object = ObjectRef::project_logs(ev.project.id);
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
        let payload = ev
            .inner
            .payloads
            .logs(ev.project, ev.automation, ev.config, &window, false);
        let (run, deliveries) = ev.notification(NotificationRun {
            trigger: ev.trigger,
            matched_rows: Some(count as i64),
            details,
            payload,
            event_id: format!("evt_{}", Uuid::now_v7().simple()),
            triggered_at: ev.triggered_at(),
        });
        commit.runs.push(run);
        commit.deliveries.extend(deliveries);
        commit.suppressed_until = Some(DbTime(now.0 + interval));
        commit.next_run = commit.suppressed_until;
    } else if ev.trigger == Trigger::Manual {
        commit.runs.push(ev.skipped(Some(0), details));
    }
    Ok(Verdict::Commit(commit))
}
