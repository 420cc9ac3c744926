//! Windowed threshold alerts (`event_type: "windowed"`): on a schedule, a
//! calculation over the last `window_seconds` of the project's spans, held
//! against a threshold, with a lifecycle per group (ok → pending → firing
//! → recovered) and a notification to every action on each transition.
//!
//! One evaluation, under the lease like every kind: the window ends
//! `evaluation_delay_seconds` before now; the calculation runs confined to
//! it ([`calculation`]); each group's record, read under the lease, steps
//! through [`lifecycle::step`]; the new records, the run and one delivery
//! per (notice, action) are committed in one transaction. So a transition
//! is notified once, whichever daemon evaluates and however often daemons
//! restart: a crash before the commit leaves the old records, and the next
//! evaluation makes the same step.
//!
//! A run is recorded when a group changes state or something is notified
//! (and for every manual run), with the value and each group's move; a
//! calculation that fails is a failed run, and `pause_after_failures` of
//! them in a row pause the alert (counted in its own state, apart from the
//! delivery failure streak).

pub mod backtest;
pub mod calculation;
pub mod lifecycle;
pub mod schedule;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use self::calculation::{Calculated, calculate};
use self::lifecycle::{GroupRecord, Notice, Observation, step};
use super::kind::{Evaluation, Verdict};
use super::payload::WindowedNotice;
use super::trigger::Trigger;
use super::windowed_config::WindowedConfig;
use crate::store::{
    DbTime, EvaluationCommit, FailureUpdate, NewDelivery, NewRun, RunStatus, RunTrigger,
};

/// What a windowed alert keeps between evaluations (the state row's
/// `windowed` column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowedState {
    /// Each group's lifecycle (one, with no group, for ungrouped alerts).
    pub groups: Vec<GroupRecord>,
    /// The last window evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DbTime>,
    /// See `window_start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<DbTime>,
    /// Calculations that failed in a row. Kept apart from the automation's
    /// delivery failure streak, so that a successful evaluation does not
    /// wipe the streak of a destination that keeps failing, nor a
    /// delivered notification the streak of a calculation that does.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub calculation_failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl WindowedState {
    /// Reads the stored document (absent or unreadable: a fresh start).
    pub fn from_stored(stored: Option<&Value>) -> Self {
        stored
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

/// The window an evaluation at `now` covers: `[end - window, end)` with
/// `end = now - delay`.
pub fn window_at(config: &WindowedConfig, now: DbTime) -> (DbTime, DbTime) {
    let seconds = |s: u64| chrono::TimeDelta::seconds(s as i64);
    let end = DbTime(now.0 - seconds(config.window.evaluation_delay_seconds));
    (DbTime(end.0 - seconds(config.window.window_seconds)), end)
}

/// The key a group is matched by across evaluations.
fn group_key(group: Option<&Map<String, Value>>) -> String {
    group.map_or_else(String::new, |g| Value::Object(g.clone()).to_string())
}

/// One evaluation's steps over all groups: the new records and the moves.
pub struct Stepped {
    /// The records to keep.
    pub records: Vec<GroupRecord>,
    /// Each group that moved or notified: its record before and after and
    /// the notice.
    pub moves: Vec<Move>,
}

/// One group's move in an evaluation.
pub struct Move {
    /// The group (none: ungrouped).
    pub group: Option<Map<String, Value>>,
    /// Its state before.
    pub previous: lifecycle::GroupState,
    /// Its record after.
    pub record: GroupRecord,
    /// What to notify.
    pub notice: Option<Notice>,
}

/// Steps every group of `previous` and `calculated` at `now`.
pub fn step_all(
    config: &WindowedConfig,
    previous: &[GroupRecord],
    calculated: &Calculated,
    now: DbTime,
) -> Stepped {
    let policy = &config.threshold().policy;
    let mut known: HashMap<String, &GroupRecord> = previous
        .iter()
        .map(|r| (group_key(r.group.as_ref()), r))
        .collect();
    // What this window shows, each group with its record from before; then
    // the groups seen before and missing now, which have no data. An alert
    // that has never seen a row starts as one ungrouped group without data.
    let mut observed: Vec<_> = calculated
        .groups
        .iter()
        .map(|(group, observation)| {
            let before = known.remove(&group_key(group.as_ref()));
            (before, group.clone(), *observation)
        })
        .collect();
    observed.extend(previous.iter().filter_map(|r| {
        let missing = known.remove(&group_key(r.group.as_ref()))?;
        Some((Some(missing), missing.group.clone(), Observation::NoData))
    }));
    if observed.is_empty() {
        observed.push((None, None, Observation::NoData));
    }
    let mut stepped = Stepped {
        records: Vec::with_capacity(observed.len()),
        moves: Vec::new(),
    };
    for (before, group, observation) in observed {
        let grouped = group.is_some();
        let result = step(policy, before, group.as_ref(), observation, now, grouped);
        let Some(record) = result.record else {
            continue;
        };
        if result.changed || result.notice.is_some() {
            stepped.moves.push(Move {
                group: group.clone(),
                previous: before.map_or(lifecycle::GroupState::Ok, |b| b.state),
                record: record.clone(),
                notice: result.notice,
            });
        }
        stepped.records.push(record);
    }
    stepped
}

/// Evaluates a windowed alert.
pub(super) async fn evaluate(
    ev: &Evaluation<'_>,
    config: &WindowedConfig,
) -> anyhow::Result<Verdict> {
    let (inner, state, now) = (ev.inner, ev.state, ev.now);
    let next_run = match ev.trigger {
        // A manual run leaves the schedule as it was.
        Trigger::Manual => state.next_run.filter(|at| at.0 > now.0),
        _ => None,
    }
    .or_else(|| schedule::next_after(&config.window.schedule, now));
    let (start, end) = window_at(config, now);
    let mut commit = EvaluationCommit {
        next_run,
        ..EvaluationCommit::next(state.watermark, state.window_start, now)
    };
    let threshold = config.threshold();
    let previous = WindowedState::from_stored(state.windowed.as_ref().map(|j| &j.0));
    let calculated = match calculate(
        &inner.store,
        ev.project.id,
        &threshold.calculation,
        config.max_groups(),
        start,
        end,
    )
    .await
    {
        Ok(calculated) => calculated,
        Err(error) => {
            let message = format!("the calculation failed: {error}");
            let failures = previous.calculation_failures + 1;
            tracing::warn!(automation_id = %ev.id(), failures, error = %error, "windowed alert calculation failed");
            // Pauses once the calculation has failed `pause_after_failures`
            // times in a row (the streak kept in the alert's own state).
            let pause_after = inner.settings.pause_after_failures;
            if pause_after > 0 && failures >= pause_after {
                commit.failures = FailureUpdate::Failed {
                    reason: format!("the calculation failed {failures} times in a row: {message}"),
                    pause_after: 1,
                };
            }
            commit.windowed = Some(serde_json::to_value(WindowedState {
                calculation_failures: failures,
                ..previous
            })?);
            commit.runs.push(NewRun {
                error: Some(message),
                details: json!({"window_start": start, "window_end": end}),
                ..NewRun::ended(
                    ev.id(),
                    "windowed",
                    ev.trigger.run_trigger(),
                    RunStatus::Failed,
                    now,
                )
            });
            return Ok(Verdict::Commit(commit));
        }
    };
    let previous = WindowedState::from_stored(state.windowed.as_ref().map(|j| &j.0));
    let stepped = step_all(config, &previous.groups, &calculated, now);
    let run_id = Uuid::now_v7();
    for (notified, notice) in stepped.moves.iter().filter_map(|m| Some((m, m.notice?))) {
        let condition = &threshold.policy.condition;
        let payload = inner.payloads.windowed(
            ev.project,
            ev.automation,
            ev.config,
            &WindowedNotice {
                state: notice.state(notified.record.no_data),
                reminder: notice == Notice::Reminder,
                value: notified.record.value,
                threshold: condition.threshold,
                operator: (condition.operator.as_str(), condition.operator.symbol()),
                window_start: start,
                window_end: end,
                group: notified.group.as_ref(),
            },
            false,
        );
        for index in 0..config.actions.len() {
            commit.deliveries.push(NewDelivery {
                id: format!("evt_{}", Uuid::now_v7().simple()),
                automation_id: ev.id(),
                run_id,
                event_type: "windowed".into(),
                payload: payload.clone(),
                triggered_at: now,
                action_index: Some(index as i32),
            });
        }
    }
    let manual = ev.trigger == Trigger::Manual;
    if !stepped.moves.is_empty() || manual {
        let status = if !commit.deliveries.is_empty() {
            RunStatus::Running
        } else if stepped.moves.is_empty() {
            RunStatus::Skipped
        } else {
            RunStatus::Succeeded
        };
        commit.runs.push(NewRun {
            id: run_id,
            finished: (status != RunStatus::Running).then(DbTime::now),
            deliveries: commit.deliveries.len() as i32,
            details: run_details(&calculated, &stepped, start, end),
            ..NewRun::ended(
                ev.id(),
                "windowed",
                if manual {
                    RunTrigger::Manual
                } else {
                    ev.trigger.run_trigger()
                },
                status,
                now,
            )
        });
    }
    commit.windowed = Some(serde_json::to_value(WindowedState {
        groups: stepped.records,
        window_start: Some(start),
        window_end: Some(end),
        calculation_failures: 0,
    })?);
    Ok(Verdict::Commit(commit))
}

/// A run's `details`: the window, the value (ungrouped) and each group's move.
fn run_details(calculated: &Calculated, stepped: &Stepped, start: DbTime, end: DbTime) -> Value {
    let value = match calculated.groups.as_slice() {
        [(None, Observation::Value(v))] => json!(v),
        _ => Value::Null,
    };
    let moves: Vec<Value> = stepped
        .moves
        .iter()
        .map(|m| {
            json!({
                "group": m.group,
                "previous_state": m.previous.as_str(),
                "state": m.record.state.as_str(),
                "value": m.record.value,
                "notice": m.notice.map(|n| n.state(m.record.no_data)),
            })
        })
        .collect();
    json!({
        "window_start": start,
        "window_end": end,
        "value": value,
        "groups_evaluated": calculated.groups.len(),
        "groups_dropped": calculated.dropped,
        "moves": moves,
    })
}
