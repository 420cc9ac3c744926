//! What every automation kind implements, and the runs they share.
//!
//! A kind (`logs`, `environment`, `export`, `retention`; the next ones are
//! added the same way) is one module with one entry point,
//! `evaluate(&Evaluation, &ItsConfig) -> Verdict`: given the automation,
//! its project and the state read under the lease, it says what to commit.
//! It never takes or releases the lease and never commits: the lease
//! protocol (claim, re-read, run the kind, commit or release) lives only in
//! [`super::evaluate`], so a new kind cannot get it wrong.
//!
//! Trade-off: a `match` over the config names each kind in one place
//! instead of a trait object per kind; a kind's config type is its own, so
//! the compiler checks that every kind is dispatched.

use serde_json::Value;
use uuid::Uuid;

use super::Inner;
use super::config::AutomationConfig;
use super::trigger::Trigger;
use crate::store::{
    AutomationState, DbTime, EvaluationCommit, NewDelivery, NewRun, Project, RunStatus, RunTrigger,
    StoredAutomation,
};

/// What a kind sees of one evaluation, all read under the lease.
pub(super) struct Evaluation<'a> {
    /// The engine's shared parts (store, plugins, payloads, settings).
    pub inner: &'a Inner,
    /// The automation being evaluated.
    pub automation: &'a StoredAutomation,
    /// Its parsed config (the whole one: payloads name the action).
    pub config: &'a AutomationConfig,
    /// The automation's project.
    pub project: &'a Project,
    /// Its state (watermark, suppression, failures) as read under the lease.
    pub state: &'a AutomationState,
    /// Why it runs.
    pub trigger: Trigger,
    /// When the evaluation started (after the claim).
    pub now: DbTime,
}

impl Evaluation<'_> {
    /// The automation's id.
    pub fn id(&self) -> Uuid {
        self.automation.id
    }

    /// When what triggered the run happened: the change for an event, the
    /// evaluation's start otherwise.
    pub fn triggered_at(&self) -> DbTime {
        match self.trigger {
            Trigger::Event { at } => at,
            _ => self.now,
        }
    }

    /// A run that queued a notification to each of the alert's
    /// destinations (its `action`, and Herald's `actions` beside it), and
    /// those notifications. The first keeps `event_id`; each further one
    /// adds its action's index (`…_a0`), so every delivery has its own.
    pub fn notification(&self, run: NotificationRun) -> (NewRun, Vec<NewDelivery>) {
        let NotificationRun {
            trigger,
            matched_rows,
            mut details,
            payload,
            event_id,
            triggered_at,
        } = run;
        let run_id = Uuid::now_v7();
        let event_type = &self.automation.event_type;
        details["event_id"] = event_id.clone().into();
        let deliveries: Vec<NewDelivery> = self
            .config
            .actions()
            .into_iter()
            .map(|at| NewDelivery {
                id: match at.index {
                    None => event_id.clone(),
                    Some(i) => format!("{event_id}_a{i}"),
                },
                automation_id: self.id(),
                run_id,
                event_type: event_type.clone(),
                payload: payload.clone(),
                triggered_at,
                action_index: at.index,
            })
            .collect();
        let run = NewRun {
            id: run_id,
            finished: None,
            matched_rows,
            deliveries: deliveries.len() as i32,
            attempts: 0,
            details,
            ..NewRun::ended(
                self.id(),
                event_type.clone(),
                trigger.run_trigger(),
                RunStatus::Running,
                DbTime::now(),
            )
        };
        (run, deliveries)
    }

    /// A manual run that found nothing to send.
    pub fn skipped(&self, matched_rows: Option<i64>, details: Value) -> NewRun {
        NewRun {
            matched_rows,
            details,
            ..NewRun::ended(
                self.id(),
                self.automation.event_type.clone(),
                RunTrigger::Manual,
                RunStatus::Skipped,
                DbTime::now(),
            )
        }
    }
}

/// What one notification's run records.
pub(super) struct NotificationRun {
    /// Why it runs (an environment event's own time, for instance).
    pub trigger: Trigger,
    /// How many rows matched, for kinds that count.
    pub matched_rows: Option<i64>,
    /// The run's details (the event id is added).
    pub details: Value,
    /// The notification's payload.
    pub payload: Value,
    /// The notification's event id (the same on every retry).
    pub event_id: String,
    /// When what it reports happened.
    pub triggered_at: DbTime,
}

/// When the automation's suppression ends, if it is still on at `now`.
pub(super) fn suppression(state: &AutomationState, now: DbTime) -> Option<DbTime> {
    state.suppressed_until.filter(|until| until.0 > now.0)
}

/// Counts and logs the runs of a commit of automation `id` once it is
/// made: the one place a committed run is counted (a run still waiting on
/// its notification is counted by delivery when that ends).
pub(super) fn committed(inner: &Inner, id: Uuid, commit: &EvaluationCommit) {
    for run in &commit.runs {
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
}

/// What a kind decided.
pub(super) enum Verdict {
    /// Commit these runs, notifications and the automation's next state.
    Commit(EvaluationCommit),
    /// Nothing to record: release the lease, due again at `next_run`.
    Release {
        /// When the automation is due again.
        next_run: Option<DbTime>,
    },
    /// The lease was lost while the kind worked: try again shortly.
    Busy,
}
