//! Backtest (*Herald*): replays a windowed alert over the last N windows of
//! real data and says when it would have fired and recovered.
//!
//! The evaluations are the ones the schedule would have made (every
//! `evaluation_interval_seconds`, or the cron expression's past times),
//! oldest first, each over its own window, stepped through the same
//! [`lifecycle`](super::lifecycle) as live evaluations from a fresh start.
//! Nothing is written: a backtest is read-only, whatever it finds.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::calculation::{CalculationError, calculate};
use super::lifecycle::{GroupRecord, Observation};
use super::{step_all, window_at};
use crate::automations::windowed_config::{Schedule, WindowedConfig, parse_cron, parse_zone};
use crate::store::{DbTime, Store};

/// Evaluations a backtest replays unless asked otherwise.
pub const DEFAULT_WINDOWS: u32 = 60;
/// The most evaluations one backtest may replay.
pub const MAX_WINDOWS: u32 = 1000;

/// What a backtest found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Backtest {
    /// Evaluations replayed.
    pub evaluations: usize,
    /// The first one's time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<DbTime>,
    /// The last one's time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub to: Option<DbTime>,
    /// Each evaluation's time and value (ungrouped) or values per group.
    #[schema(value_type = Vec<Object>)]
    pub series: Vec<Value>,
    /// What would have been notified, oldest first: `at`, `state`
    /// (`firing`, `recovered`, `no_data`), `reminder`, `value`, `group`.
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<Value>,
}

/// The evaluation times of the last `windows` evaluations up to `now`,
/// oldest first.
fn evaluation_times(schedule: &Schedule, now: DbTime, windows: u32) -> Vec<DbTime> {
    let mut times = Vec::with_capacity(windows as usize);
    match schedule {
        Schedule::Interval {
            evaluation_interval_seconds,
        } => {
            let step = chrono::TimeDelta::seconds(*evaluation_interval_seconds as i64);
            for k in 0..windows {
                times.push(DbTime(now.0 - step * k as i32));
            }
        }
        Schedule::Cron {
            cron_expression,
            timezone,
        } => {
            let (Ok(zone), Ok(cron)) =
                (parse_zone(timezone.as_deref()), parse_cron(cron_expression))
            else {
                return times;
            };
            let mut at = now.0.with_timezone(&zone);
            for _ in 0..windows {
                match cron.find_previous_occurrence(&at, false) {
                    Ok(previous) => {
                        times.push(DbTime(previous.with_timezone(&chrono::Utc)));
                        at = previous;
                    }
                    Err(_) => break,
                }
            }
        }
    }
    times.reverse();
    times
}

/// Replays `config` over its last `windows` evaluations up to `now`.
pub async fn backtest(
    store: &Store,
    project_id: Uuid,
    config: &WindowedConfig,
    now: DbTime,
    windows: u32,
) -> Result<Backtest, CalculationError> {
    let times = evaluation_times(&config.window.schedule, now, windows.min(MAX_WINDOWS));
    let calculation = &config.threshold().calculation;
    let mut records: Vec<GroupRecord> = Vec::new();
    let mut series = Vec::with_capacity(times.len());
    let mut notifications = Vec::new();
    for &at in &times {
        let (start, end) = window_at(config, at);
        let calculated = calculate(
            store,
            project_id,
            calculation,
            config.max_groups(),
            start,
            end,
        )
        .await?;
        series.push(point(at, &calculated.groups));
        let stepped = step_all(config, &records, &calculated, at);
        for moved in stepped.moves {
            if let Some(notice) = moved.notice {
                notifications.push(serde_json::json!({
                    "at": at,
                    "state": notice.state(moved.record.no_data),
                    "reminder": notice == super::lifecycle::Notice::Reminder,
                    "value": moved.record.value,
                    "group": moved.group,
                }));
            }
        }
        records = stepped.records;
    }
    Ok(Backtest {
        evaluations: times.len(),
        from: times.first().copied(),
        to: times.last().copied(),
        series,
        notifications,
    })
}

/// One evaluation's point of the series.
fn point(at: DbTime, groups: &[(Option<Map<String, Value>>, Observation)]) -> Value {
    let value = |o: &Observation| match o {
        Observation::Value(v) => Value::from(*v),
        Observation::NoData => Value::Null,
    };
    match groups {
        [] => serde_json::json!({"at": at, "value": null}),
        [(None, observation)] => serde_json::json!({"at": at, "value": value(observation)}),
        groups => serde_json::json!({"at": at, "groups": groups
            .iter()
            .map(|(g, o)| serde_json::json!({"group": g, "value": value(o)}))
            .collect::<Vec<_>>()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_times_follow_the_schedule_back() {
        let now = DbTime::parse("2026-07-01T10:00:30Z").unwrap();
        let every = Schedule::Interval {
            evaluation_interval_seconds: 60,
        };
        let times = evaluation_times(&every, now, 3);
        assert_eq!(
            times,
            [
                DbTime::parse("2026-07-01T09:58:30Z").unwrap(),
                DbTime::parse("2026-07-01T09:59:30Z").unwrap(),
                now
            ]
        );
        let hourly = Schedule::Cron {
            cron_expression: "0 * * * *".into(),
            timezone: None,
        };
        assert_eq!(
            evaluation_times(&hourly, now, 2),
            [
                DbTime::parse("2026-07-01T09:00:00Z").unwrap(),
                DbTime::parse("2026-07-01T10:00:00Z").unwrap()
            ]
        );
    }
}
