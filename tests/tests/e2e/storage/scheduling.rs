//! The scheduler's storage against both backends: leases are exclusive and
//! expire, a commit by a daemon that lost its lease writes nothing, due
//! times are found, the outbox is claimed by one daemon at a time, and a
//! failure streak pauses the automation in the same transaction that
//! records the attempt.

use chrono::TimeDelta;
use herald::store::PauseScope;
use herald::store::outbox::AttemptOutcome;
use herald::store::{
    AutomationWrite, DbTime, EvaluationCommit, FailureUpdate, NewDelivery, NewRun, RunStatus,
    RunTrigger, Store,
};
use serde_json::json;
use uuid::Uuid;

use super::{Backend, TestDb, both_backends};

both_backends!(
    leases_are_exclusive_and_expire,
    a_commit_without_the_lease_writes_nothing,
    the_outbox_is_claimed_once_and_failures_pause,
    a_reserved_export_batch_outlives_failures_and_clears_on_success
);

fn later(seconds: i64) -> DbTime {
    DbTime(DbTime::now().0 + TimeDelta::seconds(seconds))
}

/// A fresh store with one project and one log alert due now.
async fn setup(backend: Backend) -> (TestDb, Store, Uuid) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    let (project, _) = store.create_project("scheduling", None).await.unwrap();
    let write = AutomationWrite {
        project_id: project.id,
        name: "alert".into(),
        description: None,
        event_type: "logs".into(),
        config: json!({"event_type": "logs", "btql_filter": "", "interval_seconds": 60,
                       "action": {"type": "webhook", "url": "https://example.com"}}),
        paused: None,
        user_id: None,
    };
    let (automation, created) = store
        .create_automation(&write, 0, Some(DbTime::now()))
        .await
        .unwrap();
    assert!(created);
    let (again, created) = store
        .create_automation(&write, 0, Some(DbTime::now()))
        .await
        .unwrap();
    assert!(
        !created,
        "a second create with the same name returns the first"
    );
    assert_eq!(again.id, automation.id);
    (db, store, automation.id)
}

async fn leases_are_exclusive_and_expire(backend: Backend) {
    let (_db, store, id) = setup(backend).await;
    assert_eq!(store.due_automations(later(1), 10).await.unwrap(), [id]);

    assert!(
        store
            .claim_automation(id, "daemon-a", later(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_automation(id, "daemon-b", later(60))
            .await
            .unwrap(),
        "a held lease is not taken"
    );
    assert!(
        store
            .due_automations(later(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased automation is not due for others"
    );

    // Daemon A "crashes" with a lease that has expired: B takes over.
    assert!(
        store
            .claim_automation(id, "daemon-a", later(-1))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_automation(id, "daemon-b", later(60))
            .await
            .unwrap()
    );
    store
        .release_automation(id, "daemon-b", Some(later(3600)))
        .await
        .unwrap();
    assert!(
        store
            .due_automations(later(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let next = store.next_due_time().await.unwrap().unwrap();
    assert!(next.0 > later(3500).0, "next run is an hour out: {next}");
}

fn run(automation_id: Uuid) -> NewRun {
    NewRun {
        id: Uuid::now_v7(),
        automation_id,
        event_type: "logs".into(),
        trigger: RunTrigger::Event,
        status: RunStatus::Running,
        started: DbTime::now(),
        finished: None,
        matched_rows: Some(3),
        deliveries: 1,
        attempts: 0,
        error: None,
        details: json!({"event_id": "evt_1"}),
    }
}

fn commit_with(automation_id: Uuid, event_id: &str) -> (EvaluationCommit, Uuid) {
    let run = run(automation_id);
    let run_id = run.id;
    let commit = EvaluationCommit {
        watermark: 42,
        window_start: DbTime::now(),
        suppressed_until: Some(later(60)),
        next_run: Some(later(60)),
        runs: vec![run],
        deliveries: vec![NewDelivery {
            id: event_id.into(),
            automation_id,
            run_id,
            event_type: "logs".into(),
            payload: json!({"details": {"count": 3}}),
            triggered_at: DbTime::now(),
            action_index: None,
        }],
        failures: FailureUpdate::Keep,
        keep_export_pending: false,
        windowed: None,
    };
    (commit, run_id)
}

async fn a_commit_without_the_lease_writes_nothing(backend: Backend) {
    let (_db, store, id) = setup(backend).await;
    let (commit, run_id) = commit_with(id, "evt_lost");
    assert!(
        store
            .claim_automation(id, "daemon-a", later(-1))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_automation(id, "daemon-b", later(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .commit_evaluation(id, "daemon-a", &commit)
            .await
            .unwrap(),
        "A lost its lease"
    );
    assert_eq!(store.automation_state(id).await.unwrap().watermark, 0);
    assert!(store.list_runs(id, 10, None).await.unwrap().is_empty());
    assert_eq!(store.queued_deliveries(Some(id)).await.unwrap(), 0);

    assert!(
        store
            .commit_evaluation(id, "daemon-b", &commit)
            .await
            .unwrap()
    );
    let state = store.automation_state(id).await.unwrap();
    assert_eq!(state.watermark, 42);
    assert!(state.lease_owner.is_none(), "the commit releases the lease");
    assert!(state.suppressed_until.is_some());
    assert_eq!(store.run(run_id).await.unwrap().status, RunStatus::Running);
    assert_eq!(store.queued_deliveries(Some(id)).await.unwrap(), 1);
}

async fn the_outbox_is_claimed_once_and_failures_pause(backend: Backend) {
    let (_db, store, id) = setup(backend).await;
    let (commit, run_id) = commit_with(id, "evt_outbox");
    assert!(
        store
            .claim_automation(id, "daemon-a", later(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .commit_evaluation(id, "daemon-a", &commit)
            .await
            .unwrap()
    );

    let claimed = store
        .claim_due_deliveries("daemon-a", later(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, "evt_outbox");
    assert!(
        store
            .claim_due_deliveries("daemon-b", later(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "a claimed delivery is not handed out twice"
    );

    // A retryable failure keeps it queued (due again at once here) and
    // counts a failure.
    let retry = AttemptOutcome::Retry {
        error: "receiver answered 503".into(),
        status_code: Some(503),
        next_attempt: later(-1),
    };
    let recorded = store
        .record_attempt(&claimed[0], "daemon-a", &retry, 2, PauseScope::Automation)
        .await
        .unwrap()
        .expect("lease held");
    assert!(!recorded.paused);
    assert_eq!(store.queued_deliveries(Some(id)).await.unwrap(), 1);
    let run = store.run(run_id).await.unwrap();
    assert_eq!((run.status, run.attempts), (RunStatus::Running, 1));
    let failed = AttemptOutcome::Failed {
        error: "receiver answered 400".into(),
        status_code: Some(400),
    };
    assert!(
        store
            .record_attempt(&claimed[0], "daemon-a", &failed, 2, PauseScope::Automation)
            .await
            .unwrap()
            .is_none(),
        "recording an attempt without the lease is refused"
    );

    // Daemon B takes the retry; it fails for good, the second failure in a
    // row, which pauses the automation in the same transaction.
    let claimed = store
        .claim_due_deliveries("daemon-b", later(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    let recorded = store
        .record_attempt(&claimed[0], "daemon-b", &failed, 2, PauseScope::Automation)
        .await
        .unwrap()
        .unwrap();
    assert!(
        recorded.paused,
        "two failures in a row pause the automation"
    );
    let state = store.automation_state(id).await.unwrap();
    assert!(state.paused);
    assert!(
        state
            .paused_reason
            .as_deref()
            .unwrap()
            .contains("receiver answered 400"),
        "{:?}",
        state.paused_reason
    );
    let run = store.run(run_id).await.unwrap();
    assert_eq!((run.status, run.attempts), (RunStatus::Failed, 2));
    assert_eq!(run.details["status_code"], 400);
    assert_eq!(store.queued_deliveries(Some(id)).await.unwrap(), 0);

    store.resume_automation(id).await.unwrap();
    let state = store.automation_state(id).await.unwrap();
    assert!(!state.paused && state.consecutive_failures == 0);
}

/// An export batch is reserved under the lease; a failed attempt keeps the
/// reservation (so the retry redoes exactly that batch) and counts towards
/// the pause; a successful commit moves the cursor and clears it.
async fn a_reserved_export_batch_outlives_failures_and_clears_on_success(backend: Backend) {
    let (_db, store, id) = setup(backend).await;
    let started = DbTime::now();
    assert!(
        !store
            .reserve_export_batch(id, "daemon-a", 10, started)
            .await
            .unwrap(),
        "no reservation without the lease"
    );
    assert!(
        store
            .claim_automation(id, "daemon-a", later(60))
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_export_batch(id, "daemon-a", 10, started)
            .await
            .unwrap()
    );
    let failed = |keep: bool, failures: FailureUpdate| EvaluationCommit {
        watermark: 0,
        window_start: started,
        suppressed_until: None,
        next_run: Some(later(1)),
        runs: Vec::new(),
        deliveries: Vec::new(),
        failures,
        keep_export_pending: keep,
        windowed: None,
    };
    for attempt in 1..=2 {
        assert!(
            store
                .claim_automation(id, "daemon-a", later(60))
                .await
                .unwrap()
        );
        let commit = failed(
            true,
            FailureUpdate::Failed {
                reason: "bucket unreachable".into(),
                pause_after: 2,
            },
        );
        assert!(
            store
                .commit_evaluation(id, "daemon-a", &commit)
                .await
                .unwrap()
        );
        let state = store.automation_state(id).await.unwrap();
        assert_eq!(
            state.export_pending_upto,
            Some(10),
            "attempt {attempt} keeps the batch"
        );
        assert_eq!(
            state.export_pending_started.map(|t| t.0.timestamp_millis()),
            Some(started.0.timestamp_millis()),
            "and its start time, which names its object"
        );
        assert_eq!(state.consecutive_failures, attempt);
        assert_eq!(
            state.paused,
            attempt == 2,
            "paused after two failures in a row"
        );
    }
    assert!(
        store
            .claim_automation(id, "daemon-a", later(60))
            .await
            .unwrap()
    );
    let mut done = failed(false, FailureUpdate::Reset);
    done.watermark = 10;
    assert!(
        store
            .commit_evaluation(id, "daemon-a", &done)
            .await
            .unwrap()
    );
    let state = store.automation_state(id).await.unwrap();
    assert_eq!((state.watermark, state.export_pending_upto), (10, None));
    assert_eq!(state.consecutive_failures, 0);
}
