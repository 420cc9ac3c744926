//! One evaluation of one automation, under its lease: the protocol every
//! kind shares.
//!
//! A cheap pre-check without the lease (most ingest events land inside a
//! suppression and need no write), then the claim, then the state re-read
//! under the lease (another daemon may have committed in between), then
//! the kind's own evaluation (`logs`, `environment`,
//! [`super::export`], [`super::retention`]; see `kind`), then one
//! transaction that commits what it decided, or the release of the lease.
//! Only this module claims, releases and commits.

use uuid::Uuid;

use super::config::AutomationConfig;
use super::kind::{Evaluation, Verdict, suppression};
use super::trigger::{Outcome, Trigger};
use super::{Inner, evaluate};
use crate::store::{AutomationState, DbTime, StoreError};

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
    if nothing_to_do(&state, trigger, now) {
        store
            .release_automation(id, &inner.owner, state.next_run)
            .await?;
        return Ok(Outcome::Idle);
    }
    let project = store.project(automation.project_id).await?;
    let ev = Evaluation {
        inner,
        automation: &automation,
        config: &config,
        project: &project,
        state: &state,
        trigger,
        now,
    };
    let verdict = match &config {
        AutomationConfig::Logs(logs) => super::logs::evaluate(&ev, logs).await?,
        AutomationConfig::EnvironmentUpdate(environment) => {
            super::environment::evaluate(&ev, environment).await?
        }
        AutomationConfig::Retention(retention) => {
            super::retention::evaluate(&ev, retention).await?
        }
        AutomationConfig::BtqlExport(export) => super::export::evaluate(&ev, export).await?,
        AutomationConfig::Windowed(windowed) => super::windowed::evaluate(&ev, windowed).await?,
    };
    let commit = match verdict {
        Verdict::Commit(commit) => commit,
        Verdict::Release { next_run } => {
            store.release_automation(id, &inner.owner, next_run).await?;
            return Ok(Outcome::Idle);
        }
        Verdict::Busy => return Ok(Outcome::Busy),
    };

    if !store.commit_evaluation(id, &inner.owner, &commit).await? {
        return Ok(Outcome::Busy);
    }
    super::kind::committed(inner, id, &commit);
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

/// Whether `trigger` has nothing to do on `state` at `now`: a paused
/// automation runs only when asked to, and an event inside a suppression
/// is counted when the suppression ends (the scheduler is due then).
fn nothing_to_do(state: &AutomationState, trigger: Trigger, now: DbTime) -> bool {
    (state.paused && trigger != Trigger::Manual)
        || (suppression(state, now).is_some() && matches!(trigger, Trigger::Event { .. }))
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
