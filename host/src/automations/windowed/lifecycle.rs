//! The lifecycle of a windowed alert's group, as a pure state machine:
//! given the policy, the group's record and this window's observation,
//! what the record becomes and what to notify.
//!
//! ```text
//!          breach                    held pending_seconds
//!   ok ───────────────▶ pending ───────────────────────────▶ firing
//!    ▲  ◀── no breach ──┘                                      │
//!    └──────────────── no breach (recovered) ◀─────────────────┘
//! ```
//!
//! With `pending_seconds = 0` a breach fires at once. A window without
//! data follows `no_data_behavior`: `keep_last` changes nothing, `resolve`
//! counts as no breach, `alert` as a breach (the notification's state is
//! `no_data`). While firing, a reminder goes out every
//! `renotify_interval_seconds`; a recovery is notified only with
//! `notify_on_recovery`. Grafana's and Alertmanager's pending / firing /
//! resolved, in Braintrust's policy fields.
//!
//! Keeping this free of I/O lets the unit tests walk every transition, and
//! the backtest replay past windows through the same code.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::windowed_config::{NoDataBehavior, Policy};
use crate::store::DbTime;

/// Where a group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// No breach.
    Ok,
    /// Breached, waiting out `pending_seconds`.
    Pending,
    /// Breached long enough: notified.
    Firing,
}

impl GroupState {
    /// `ok`, `pending` or `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Ok => "ok",
            GroupState::Pending => "pending",
            GroupState::Firing => "firing",
        }
    }
}

/// One group's persisted lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The group columns' values (`None`: the alert has no groups).
    pub group: Option<Map<String, Value>>,
    /// Where it stands.
    pub state: GroupState,
    /// Since when.
    pub since: DbTime,
    /// The last value seen (`None`: no data).
    pub value: Option<f64>,
    /// When it was last notified (firing or reminder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<DbTime>,
    /// Whether it is breached (or firing) because data is missing.
    #[serde(default)]
    pub no_data: bool,
}

/// What one window shows of a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// The calculation's value.
    Value(f64),
    /// No row, or a null value.
    NoData,
}

/// What to tell the destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// It started firing on a breached value.
    Firing,
    /// It started firing because data is missing (`no_data_behavior: alert`).
    NoData,
    /// Still firing, `renotify_interval_seconds` after the last notice.
    Reminder,
    /// It stopped firing.
    Recovered,
}

impl Notice {
    /// The payload's `details.state`: `firing`, `no_data` or `recovered`.
    pub fn state(self, no_data: bool) -> &'static str {
        match self {
            Notice::Firing => "firing",
            Notice::NoData => "no_data",
            Notice::Reminder if no_data => "no_data",
            Notice::Reminder => "firing",
            Notice::Recovered => "recovered",
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The record afterwards (`None`: forget the group).
    pub record: Option<GroupRecord>,
    /// What to notify, if anything.
    pub notice: Option<Notice>,
    /// Whether the state changed (a run is recorded when it did).
    pub changed: bool,
}

/// Moves `previous` (none: a group not seen before) by `observation` at
/// `now`. `grouped` says whether the alert has group columns: an `ok`
/// group that stops appearing is forgotten, so vanished groups do not pile
/// up (the ungrouped record is always kept, for the status).
pub fn step(
    policy: &Policy,
    previous: Option<&GroupRecord>,
    group: Option<&Map<String, Value>>,
    observation: Observation,
    now: DbTime,
    grouped: bool,
) -> Step {
    let fresh = GroupRecord {
        group: group.cloned(),
        state: GroupState::Ok,
        since: now,
        value: None,
        notified: None,
        no_data: false,
    };
    let record = previous.cloned().unwrap_or(fresh);
    let (breach, no_data, value) = match observation {
        Observation::Value(v) => (
            policy
                .condition
                .operator
                .holds(v, policy.condition.threshold),
            false,
            Some(v),
        ),
        Observation::NoData => match policy.no_data_behavior {
            NoDataBehavior::KeepLast => {
                let forget = grouped && record.state == GroupState::Ok;
                return Step {
                    record: (!forget).then_some(record),
                    notice: None,
                    changed: false,
                };
            }
            NoDataBehavior::Resolve => (false, true, None),
            NoDataBehavior::Alert => (true, true, None),
        },
    };
    let moved = |state: GroupState, notified: Option<DbTime>| GroupRecord {
        group: record.group.clone(),
        state,
        since: now,
        value,
        notified,
        no_data: no_data && breach,
    };
    let pending_for = chrono::TimeDelta::seconds(policy.pending_seconds as i64);
    let fire = || Step {
        record: Some(moved(GroupState::Firing, Some(now))),
        notice: Some(if no_data {
            Notice::NoData
        } else {
            Notice::Firing
        }),
        changed: true,
    };
    match (record.state, breach) {
        (GroupState::Ok, false) => {
            let forget = grouped && no_data;
            Step {
                record: (!forget).then_some(GroupRecord { value, ..record }),
                notice: None,
                changed: false,
            }
        }
        (GroupState::Ok, true) if pending_for.is_zero() => fire(),
        (GroupState::Ok, true) => Step {
            record: Some(moved(GroupState::Pending, None)),
            notice: None,
            changed: true,
        },
        (GroupState::Pending, false) => Step {
            record: Some(moved(GroupState::Ok, None)),
            notice: None,
            changed: true,
        },
        (GroupState::Pending, true) if now.0 - record.since.0 >= pending_for => fire(),
        (GroupState::Pending, true) => Step {
            record: Some(GroupRecord {
                value,
                no_data,
                ..record
            }),
            notice: None,
            changed: false,
        },
        (GroupState::Firing, true) => {
            let due = policy.renotify_interval_seconds.is_some_and(|every| {
                record
                    .notified
                    .is_none_or(|at| now.0 - at.0 >= chrono::TimeDelta::seconds(every as i64))
            });
            Step {
                record: Some(GroupRecord {
                    value,
                    notified: if due { Some(now) } else { record.notified },
                    no_data,
                    ..record
                }),
                notice: due.then_some(Notice::Reminder),
                changed: false,
            }
        }
        (GroupState::Firing, false) => Step {
            record: Some(moved(GroupState::Ok, None)),
            notice: policy
                .notify_on_recovery
                .unwrap_or(false)
                .then_some(Notice::Recovered),
            changed: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::windowed_config::{Condition, ConditionType, Operator};
    use super::*;

    fn policy(pending: u64, no_data: NoDataBehavior) -> Policy {
        Policy {
            condition: Condition {
                kind: ConditionType::Threshold,
                operator: Operator::Gt,
                threshold: 0.5,
            },
            pending_seconds: pending,
            no_data_behavior: no_data,
            renotify_interval_seconds: None,
            notify_on_recovery: Some(true),
        }
    }

    fn at(seconds: i64) -> DbTime {
        DbTime(chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::seconds(seconds))
    }

    /// Walks `observations` (one per 10 s) and returns the notices.
    fn walk(policy: &Policy, observations: &[Observation]) -> Vec<(i64, Notice)> {
        let mut record: Option<GroupRecord> = None;
        let mut notices = Vec::new();
        for (i, observation) in observations.iter().enumerate() {
            let now = i as i64 * 10;
            let step = step(policy, record.as_ref(), None, *observation, at(now), false);
            if let Some(notice) = step.notice {
                notices.push((now, notice));
            }
            record = step.record;
        }
        notices
    }

    use Observation::{NoData, Value as V};

    #[test]
    fn a_breach_fires_once_and_recovers_once() {
        let p = policy(0, NoDataBehavior::KeepLast);
        let notices = walk(&p, &[V(0.1), V(0.9), V(0.8), V(0.7), V(0.2), V(0.1)]);
        assert_eq!(notices, [(10, Notice::Firing), (40, Notice::Recovered)]);
        let quiet = Policy {
            notify_on_recovery: None,
            ..p
        };
        assert_eq!(walk(&quiet, &[V(0.9), V(0.1)]), [(0, Notice::Firing)]);
    }

    #[test]
    fn a_breach_shorter_than_pending_never_fires() {
        let p = policy(25, NoDataBehavior::KeepLast);
        assert!(walk(&p, &[V(0.9), V(0.9), V(0.9), V(0.1), V(0.9)]).is_empty());
        assert_eq!(
            walk(&p, &[V(0.9), V(0.9), V(0.9), V(0.9), V(0.1)]),
            [(30, Notice::Firing), (40, Notice::Recovered)]
        );
    }

    #[test]
    fn no_data_follows_the_behaviour() {
        let keep = policy(0, NoDataBehavior::KeepLast);
        assert_eq!(
            walk(&keep, &[V(0.9), NoData, NoData]),
            [(0, Notice::Firing)]
        );
        let resolve = policy(0, NoDataBehavior::Resolve);
        assert_eq!(
            walk(&resolve, &[V(0.9), NoData]),
            [(0, Notice::Firing), (10, Notice::Recovered)]
        );
        let alert = policy(0, NoDataBehavior::Alert);
        assert_eq!(
            walk(&alert, &[V(0.1), NoData, V(0.2)]),
            [(10, Notice::NoData), (20, Notice::Recovered)]
        );
        assert_eq!(Notice::NoData.state(true), "no_data");
    }

    #[test]
    fn reminders_come_every_renotify_interval_while_firing() {
        let p = Policy {
            renotify_interval_seconds: Some(20),
            ..policy(0, NoDataBehavior::KeepLast)
        };
        let notices = walk(&p, &[V(0.9), V(0.9), V(0.9), V(0.9), V(0.9), V(0.1)]);
        assert_eq!(
            notices,
            [
                (0, Notice::Firing),
                (20, Notice::Reminder),
                (40, Notice::Reminder),
                (50, Notice::Recovered)
            ]
        );
    }

    #[test]
    fn vanished_ok_groups_are_forgotten_but_firing_ones_kept() {
        let p = policy(0, NoDataBehavior::KeepLast);
        let group: Map<String, Value> = [("model".to_string(), Value::from("a"))]
            .into_iter()
            .collect();
        let ok = step(&p, None, Some(&group), V(0.1), at(0), true);
        let gone = step(&p, ok.record.as_ref(), Some(&group), NoData, at(10), true);
        assert_eq!(gone.record, None);
        let firing = step(&p, None, Some(&group), V(0.9), at(0), true);
        let kept = step(
            &p,
            firing.record.as_ref(),
            Some(&group),
            NoData,
            at(10),
            true,
        );
        assert_eq!(kept.record.unwrap().state, GroupState::Firing);
    }
}
