//! What the API asks of the engine besides tests and the lifecycle
//! ([`super::lifecycle`]): where a new automation starts, run once now,
//! status, resume, reset.

use serde::Serialize;
use uuid::Uuid;

use super::Engine;
use super::config::AutomationConfig;
use super::evaluate::evaluate_until_claimed;
use super::trigger::{Outcome, Trigger};
use super::windowed::WindowedState;
use super::windowed::lifecycle::{GroupRecord, GroupState};
use crate::store::{DbTime, NewRun, ObjectRef, Run, RunStatus, RunTrigger, StoreError, XactRange};

/// An automation's state as `GET …/status` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AutomationStatus {
    /// The automation.
    pub automation_id: Uuid,
    /// `active`, `suppressed`, `paused`, or for windowed alerts `pending`
    /// or `firing`.
    pub state: &'static str,
    /// Why it is paused.
    pub paused_reason: Option<String>,
    /// A log alert sends nothing before this time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub suppressed_until: Option<DbTime>,
    /// Matches waiting for the end of the suppression (log alerts).
    pub pending_matches: u64,
    /// Delivery attempts that failed in a row.
    pub consecutive_failures: i32,
    /// Notifications waiting in the outbox.
    pub queued_deliveries: i64,
    /// The latest run.
    pub last_run: Option<Run>,
    /// When the scheduler next evaluates it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run: Option<DbTime>,
    /// When it was last evaluated.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_checked: Option<DbTime>,
    /// The ingest sequence number up to which data has been looked at.
    pub watermark: i64,
    /// Windowed alerts: the lifecycle of each group.
    #[schema(value_type = Option<Object>)]
    pub windowed: Option<WindowedStatus>,
    /// Destinations paused on their own (an automation with several pauses
    /// only the one that keeps failing): `path` (`actions[1]`) and `reason`.
    #[schema(value_type = Vec<Object>)]
    pub paused_destinations: Vec<serde_json::Value>,
}

/// A windowed alert's lifecycle, as `…/status` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowedStatus {
    /// The most severe state of its groups: `firing`, `pending` or `ok`.
    pub state: &'static str,
    /// The last value (ungrouped alerts).
    pub value: Option<f64>,
    /// Since when it has been in `state` (ungrouped alerts, or the earliest
    /// group in that state).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<DbTime>,
    /// The last window evaluated.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_start: Option<DbTime>,
    /// See `window_start`.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_end: Option<DbTime>,
    /// Each group: `group`, `state`, `since`, `value`, `notified`, `no_data`.
    #[schema(value_type = Vec<Object>)]
    pub groups: Vec<GroupRecord>,
}

impl WindowedStatus {
    fn of(state: WindowedState) -> Self {
        let worst = state
            .groups
            .iter()
            .map(|g| g.state)
            .max_by_key(|s| match s {
                GroupState::Ok => 0,
                GroupState::Pending => 1,
                GroupState::Firing => 2,
            })
            .unwrap_or(GroupState::Ok);
        let since = state
            .groups
            .iter()
            .filter(|g| g.state == worst)
            .map(|g| g.since)
            .min();
        let value = match state.groups.as_slice() {
            [only] if only.group.is_none() => only.value,
            _ => None,
        };
        WindowedStatus {
            state: worst.as_str(),
            value,
            since,
            window_start: state.window_start,
            window_end: state.window_end,
            groups: state.groups,
        }
    }
}

/// Why `run once` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunNowError {
    /// The automation is paused.
    #[error("the automation is paused ({0}); POST …/resume first")]
    Paused(String),
    /// Another daemon kept the lease.
    #[error("another daemon is running this automation; try again")]
    Busy,
    /// The automation does not exist, or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Engine {
    /// The watermark and first due time of a new automation with `config`:
    /// it looks only at data written from now on.
    pub(crate) async fn starting_point(
        &self,
        config: &AutomationConfig,
    ) -> Result<(i64, Option<DbTime>), StoreError> {
        let watermark = self.inner.store.current_xact_id().await?;
        let now = DbTime::now().0;
        let next_run = match config {
            AutomationConfig::Logs(logs) => {
                Some(now + chrono::TimeDelta::seconds(logs.interval_seconds as i64))
            }
            AutomationConfig::EnvironmentUpdate(_) => Some(
                now + chrono::TimeDelta::seconds(
                    self.inner.settings.environment_backstop_seconds as i64,
                ),
            ),
            AutomationConfig::Retention(retention) => {
                Some(now + chrono::TimeDelta::seconds(retention.interval() as i64))
            }
            AutomationConfig::Windowed(windowed) => {
                return Ok((
                    watermark,
                    super::windowed::schedule::next_after(&windowed.window.schedule, DbTime::now()),
                ));
            }
            // An export starts from the beginning of the project's logs
            // (`start_from` narrows it), and its first run is due now.
            AutomationConfig::BtqlExport(_) => return Ok((0, Some(DbTime::now()))),
        };
        Ok((watermark, next_run.map(DbTime)))
    }

    /// Evaluates automation `id` now, ignoring suppression; returns the run
    /// it recorded.
    pub async fn run_now(&self, id: Uuid) -> Result<Run, RunNowError> {
        let store = &self.inner.store;
        store.automation(id).await?;
        let state = store.automation_state(id).await?;
        if state.paused {
            return Err(RunNowError::Paused(
                state.paused_reason.unwrap_or_else(|| "paused".into()),
            ));
        }
        let attempts = (self.inner.settings.lease_seconds as u32).saturating_mul(10);
        match evaluate_until_claimed(&self.inner, id, Trigger::Manual, attempts).await? {
            Outcome::Recorded(runs) => {
                self.inner.rebuild_index().await;
                let last = runs.last().map(|r| r.id).ok_or(RunNowError::Busy)?;
                Ok(store.run(last).await?)
            }
            Outcome::Busy | Outcome::Idle => Err(RunNowError::Busy),
        }
    }

    /// The status of automation `id`.
    pub async fn status(&self, id: Uuid) -> Result<AutomationStatus, StoreError> {
        let store = &self.inner.store;
        let automation = store.automation(id).await?;
        let state = store.automation_state(id).await?;
        let now = DbTime::now();
        let suppressed_until = state.suppressed_until.filter(|u| u.0 > now.0);
        let mut pending_matches = 0;
        if let Ok(AutomationConfig::Logs(logs)) =
            AutomationConfig::parse(&automation.config.0, "config")
            && suppressed_until.is_some()
            && let Ok(filter) = logs.filter()
        {
            let upto = store.current_xact_id().await?;
            pending_matches = store
                .count_events(
                    ObjectRef::project_logs(automation.project_id),
                    filter.as_ref(),
                    XactRange::between(state.watermark, upto),
                )
                .await?;
        }
        let windowed = (automation.event_type == "windowed").then(|| {
            WindowedStatus::of(WindowedState::from_stored(
                state.windowed.as_ref().map(|j| &j.0),
            ))
        });
        let state_name = if state.paused {
            "paused"
        } else if suppressed_until.is_some() {
            "suppressed"
        } else if let Some(windowed) = windowed.as_ref().filter(|w| w.state != "ok") {
            windowed.state
        } else {
            "active"
        };
        Ok(AutomationStatus {
            automation_id: id,
            state: state_name,
            paused_reason: state.paused_reason,
            suppressed_until,
            pending_matches,
            consecutive_failures: state.consecutive_failures,
            queued_deliveries: store.queued_deliveries(Some(id)).await?,
            last_run: store.list_runs(id, 1, None).await?.into_iter().next(),
            next_run: state.next_run,
            last_checked: state.last_checked,
            watermark: state.watermark,
            windowed,
            paused_destinations: store
                .paused_destinations(id)
                .await?
                .into_iter()
                .map(|(index, reason)| {
                    let path = match index {
                        -1 => "config.action".to_string(),
                        i => format!("config.actions[{i}]"),
                    };
                    serde_json::json!({"path": path, "reason": reason})
                })
                .collect(),
        })
    }

    /// Re-sends run `run_id`'s failed notification (of automation `id`)
    /// now, with the same event id: one more attempt, recorded on the same
    /// run. It goes out when the automation is not paused.
    pub async fn retry_run(&self, id: Uuid, run_id: Uuid) -> Result<Run, StoreError> {
        self.inner.store.retry_failed_delivery(id, run_id).await?;
        self.inner.wake_delivery.notify_one();
        self.inner.store.run(run_id).await
    }

    /// Un-pauses automation `id` and forgets its failure streak; its queued
    /// deliveries go out again.
    pub async fn resume(&self, id: Uuid) -> Result<AutomationStatus, StoreError> {
        self.inner.store.resume_automation(id).await?;
        tracing::info!(automation_id = %id, "automation resumed");
        self.after_state_change().await;
        self.status(id).await
    }

    /// Forgets automation `id`'s suppression, carried-over matches, failure
    /// streak and pause: an alert looks only at data written from now on,
    /// an export starts again from the beginning (everything is exported
    /// again) and records the reset in its run history.
    pub async fn reset_state(&self, id: Uuid) -> Result<AutomationStatus, StoreError> {
        let store = &self.inner.store;
        let automation = store.automation(id).await?;
        let previous = store.automation_state(id).await?;
        let (watermark, next_run) = match AutomationConfig::parse(&automation.config.0, "config") {
            Ok(config) => self.starting_point(&config).await?,
            Err(_) => (store.current_xact_id().await?, None),
        };
        store
            .reset_automation_state(id, watermark, next_run)
            .await?;
        if automation.event_type == "btql_export" {
            let now = DbTime::now();
            store
                .insert_run(&NewRun {
                    finished: Some(now),
                    details: serde_json::json!({
                        "action": "reset",
                        "message": format!(
                            "cursor reset from {} to {watermark}: every row will be exported again",
                            previous.watermark
                        ),
                        "cursor_before": previous.watermark,
                        "cursor_after": watermark,
                    }),
                    ..NewRun::ended(
                        id,
                        automation.event_type.clone(),
                        RunTrigger::Manual,
                        RunStatus::Succeeded,
                        now,
                    )
                })
                .await?;
        }
        tracing::info!(automation_id = %id, watermark, "automation state reset");
        self.after_state_change().await;
        self.status(id).await
    }

    async fn after_state_change(&self) {
        self.inner.rebuild_index().await;
        self.inner.wake_scheduler.notify_one();
        self.inner.wake_delivery.notify_one();
    }
}
