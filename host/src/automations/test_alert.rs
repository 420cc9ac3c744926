//! `POST …/test`: send one notification marked `is_test` now, and say what
//! happened.
//!
//! A log alert counts the spans matching its filter created in the last
//! `interval_seconds` (at least an hour, so a short interval still finds
//! something to show); like Braintrust it sends only when some match, unless
//! the caller asks to send on zero matches. An environment alert sends a
//! sample change (Braintrust cannot test those). A windowed alert runs its
//! calculation over the current window and sends the value as a test
//! firing notice to every action, and replays its last evaluations (a
//! backtest: when it would have fired and recovered). The notification goes
//! straight to the plugin, once, without the outbox or retries: the caller
//! is waiting for the receiver's answer. A saved automation's test is
//! recorded as a `test` run.

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Engine;
use super::config::AutomationConfig;
use super::delivery::deliver_through;
use super::payload::{LogWindow, WindowedNotice, human_duration};
use super::windowed::backtest::{self, Backtest};
use super::windowed::calculation::calculate;
use super::windowed::lifecycle::Observation;
use super::windowed::window_at;
use crate::filter::Filter;
use crate::plugins::AlertRequest;
use crate::store::{
    DbTime, EnvironmentEvent, NewRun, ObjectRef, RunStatus, RunTrigger, StoredAutomation, XactRange,
};

/// The shortest look-back of a log alert test.
const MIN_TEST_WINDOW_SECONDS: u64 = 3600;

/// What a test did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    /// Whether a notification was sent (and accepted by the receiver).
    pub sent: bool,
    /// Matching spans in the window (log alerts).
    pub matched_rows: Option<u64>,
    /// The event id of the notification, if one was built.
    pub event_id: Option<String>,
    /// The payload sent (or that would have been sent).
    #[schema(value_type = Object)]
    pub payload: Option<Value>,
    /// The receiver's HTTP status.
    pub status_code: Option<u16>,
    /// The beginning of the receiver's answer.
    pub response_excerpt: Option<String>,
    /// The plugin's one-line summary.
    pub summary: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// What happened, in one sentence.
    pub message: String,
    /// The recorded run (saved automations only).
    pub run_id: Option<Uuid>,
    /// Each destination's answer, in config order (`path`, `sent`,
    /// `status_code`, `summary` or `error`).
    #[schema(value_type = Vec<Object>)]
    pub destinations: Vec<Value>,
    /// Windowed alerts: when the alert would have fired and recovered over
    /// its last evaluations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtest: Option<Backtest>,
}

/// What the caller asked of a test.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestAsk {
    /// Send a log alert's test even when no logs match.
    pub send_on_zero_matches: bool,
    /// Windowed alerts: evaluations to replay in the backtest (default
    /// [`backtest::DEFAULT_WINDOWS`], at most [`backtest::MAX_WINDOWS`]).
    pub backtest_windows: Option<u32>,
}

/// Why a test could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// Export and retention automations are tested by their own releases.
    #[error("testing {0} automations is not supported yet")]
    NotSupported(&'static str),
    /// Reading the data failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Engine {
    /// Tests `automation` (saved when `record` is true) with `config`.
    pub async fn test(
        &self,
        automation: &StoredAutomation,
        config: &AutomationConfig,
        ask: TestAsk,
        record: bool,
    ) -> Result<TestOutcome, TestError> {
        let send_on_zero_matches = ask.send_on_zero_matches;
        let inner = &self.inner;
        let store = &inner.store;
        let started = DbTime::now();
        let project = store
            .project(automation.project_id)
            .await
            .map_err(anyhow::Error::from)?;
        let actions = config.actions();
        if actions.is_empty() {
            return Err(TestError::NotSupported(config.event_type()));
        }
        let mut replayed = None;
        let (payload, matched, lead) = match config {
            AutomationConfig::Logs(logs) => {
                let seconds = logs.interval_seconds.max(MIN_TEST_WINDOW_SECONDS);
                let recent = format!("created >= now() - interval '{seconds} seconds'");
                let source = match logs.btql_filter.trim() {
                    "" => recent,
                    filter => format!("({filter}) AND {recent}"),
                };
                let filter = Filter::parse(&source).map_err(anyhow::Error::from)?;
                let object = ObjectRef::project_logs(project.id);
                let count = store
                    .count_events(object, Some(&filter), XactRange::default())
                    .await
                    .map_err(anyhow::Error::from)?;
                let upto = store.current_xact_id().await.map_err(anyhow::Error::from)?;
                let window = LogWindow {
                    count,
                    time_start: DbTime(started.0 - chrono::TimeDelta::seconds(seconds as i64)),
                    time_end: started,
                    xact_after: 0,
                    xact_upto: upto,
                };
                let payload = inner
                    .payloads
                    .logs(&project, automation, config, &window, true);
                let span = human_duration(chrono::TimeDelta::seconds(seconds as i64));
                let noun = if count == 1 { "log" } else { "logs" };
                (
                    payload,
                    Some(count),
                    format!("{count} {noun} matched in the last {span}"),
                )
            }
            AutomationConfig::EnvironmentUpdate(environment) => {
                let slug = environment
                    .environment_filter
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "production".into());
                let version = store.current_xact_id().await.map_err(anyhow::Error::from)?;
                let sample = EnvironmentEvent {
                    id: Uuid::new_v4(),
                    xact_id: version,
                    project_id: project.id,
                    prompt_id: Uuid::nil(),
                    prompt_slug: "sample-prompt".into(),
                    prompt_name: "Sample prompt".into(),
                    environment_slug: slug,
                    action: "assigned".into(),
                    version: Some(version),
                    previous_version: None,
                    created: started,
                };
                let payload = inner
                    .payloads
                    .environment(&project, automation, config, &sample, true);
                (payload, None, "sample environment change".to_string())
            }
            AutomationConfig::Windowed(windowed) => {
                let (start, end) = window_at(windowed, started);
                let threshold = windowed.threshold();
                let calculated = calculate(
                    store,
                    project.id,
                    &threshold.calculation,
                    windowed.max_groups(),
                    start,
                    end,
                )
                .await
                .map_err(|e| anyhow::anyhow!("the calculation failed: {e}"))?;
                let (group, value) = match calculated.groups.first() {
                    Some((group, Observation::Value(v))) => (group.as_ref(), Some(*v)),
                    Some((group, Observation::NoData)) => (group.as_ref(), None),
                    None => (None, None),
                };
                let condition = &threshold.policy.condition;
                let notice = WindowedNotice {
                    state: if value.is_some() { "firing" } else { "no_data" },
                    reminder: false,
                    value,
                    threshold: condition.threshold,
                    operator: (condition.operator.as_str(), condition.operator.symbol()),
                    window_start: start,
                    window_end: end,
                    group,
                };
                let payload = inner
                    .payloads
                    .windowed(&project, automation, config, &notice, true);
                let windows = ask.backtest_windows.unwrap_or(backtest::DEFAULT_WINDOWS);
                replayed = Some(
                    backtest::backtest(store, project.id, windowed, started, windows)
                        .await
                        .map_err(|e| anyhow::anyhow!("the backtest failed: {e}"))?,
                );
                let shown = value.map_or_else(|| "no data".to_string(), |v| v.to_string());
                let lead = format!(
                    "the value is {shown} over the last {} (alerts when {} {})",
                    human_duration(end.0 - start.0),
                    condition.operator.symbol(),
                    condition.threshold
                );
                (payload, None, lead)
            }
            _ => return Err(TestError::NotSupported(config.event_type())),
        };

        let event_id = format!("evt_test_{}", Uuid::now_v7().simple());
        let mut outcome = TestOutcome {
            sent: false,
            matched_rows: matched,
            event_id: Some(event_id.clone()),
            payload: Some(payload.clone()),
            status_code: None,
            response_excerpt: None,
            summary: None,
            error: None,
            message: String::new(),
            run_id: None,
            destinations: Vec::new(),
            backtest: replayed,
        };
        let status = if matched == Some(0) && !send_on_zero_matches {
            outcome.message = format!(
                "{lead}; nothing sent (pass \"send_on_zero_matches\": true to send anyway)"
            );
            RunStatus::Skipped
        } else {
            let request = AlertRequest {
                event_id,
                event_type: config.event_type().to_string(),
                payload,
                is_test: true,
                attempt: 1,
            };
            let mut failed = false;
            for at in &actions {
                let path = format!("config.{}", at.path);
                let delivered =
                    deliver_through(inner, automation.project_id, at.action, &request, &path).await;
                let result = match delivered {
                    Err(error) => Err((format!("{}: {}", error.path, error.message), None)),
                    Ok(report) => match report.result {
                        Ok(delivery) => Ok(delivery),
                        Err(error) => Err((error.to_string(), error.status_code())),
                    },
                };
                let shown = match result {
                    Ok(delivery) => {
                        outcome.status_code = delivery.status_code;
                        outcome.response_excerpt = delivery.response_excerpt.clone();
                        outcome.summary = Some(delivery.summary.clone());
                        json!({"path": format!("config.{}", at.path), "sent": true,
                            "status_code": delivery.status_code, "summary": delivery.summary,
                            "response_excerpt": delivery.response_excerpt})
                    }
                    Err((error, status_code)) => {
                        failed = true;
                        outcome.status_code = status_code.or(outcome.status_code);
                        let first = outcome.error.is_none();
                        if first {
                            outcome.error = Some(error.clone());
                        }
                        json!({"path": format!("config.{}", at.path), "sent": false,
                            "status_code": status_code, "error": error})
                    }
                };
                outcome.destinations.push(shown);
            }
            outcome.sent = !failed;
            if failed {
                let error = outcome.error.clone().unwrap_or_default();
                outcome.message = if actions.len() == 1 {
                    format!("{lead}; the destination failed: {error}")
                } else {
                    format!("{lead}; a destination failed: {error}")
                };
                RunStatus::Failed
            } else {
                outcome.message = format!("{lead}; test notification sent");
                RunStatus::Succeeded
            }
        };
        if record {
            let run = NewRun {
                matched_rows: matched.map(|m| m as i64),
                deliveries: if status == RunStatus::Skipped {
                    0
                } else {
                    actions.len() as i32
                },
                attempts: if status == RunStatus::Skipped {
                    0
                } else {
                    actions.len() as i32
                },
                error: outcome.error.clone(),
                details: json!({
                    "event_id": outcome.event_id,
                    "status_code": outcome.status_code,
                    "message": outcome.message,
                }),
                ..NewRun::ended(
                    automation.id,
                    config.event_type(),
                    RunTrigger::Test,
                    status,
                    started,
                )
            };
            store.insert_run(&run).await.map_err(anyhow::Error::from)?;
            outcome.run_id = Some(run.id);
        }
        inner
            .metrics
            .run(config.event_type(), RunTrigger::Test, status);
        tracing::info!(
            automation_id = %automation.id,
            sent = outcome.sent,
            matched_rows = matched,
            status_code = outcome.status_code,
            "automation test"
        );
        Ok(outcome)
    }
}
