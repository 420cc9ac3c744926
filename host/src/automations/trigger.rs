//! Why an evaluation runs ([`Trigger`]) and what it did ([`Outcome`]): the
//! vocabulary the scheduler, the control endpoints, change notifications
//! and every automation kind share. Its own module so that a kind (export,
//! retention) can name its trigger without importing the evaluation that
//! calls it.

use crate::store::{DbTime, NewRun, RunTrigger};

/// Why an evaluation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A change was committed at `at` (ingest or an environment change).
    Event {
        /// When the engine heard of it.
        at: DbTime,
    },
    /// The scheduler found it due.
    Scheduled,
    /// `POST …/run`: ignore suppression, record a run even if nothing matched.
    Manual,
}

impl Trigger {
    pub(super) fn run_trigger(self) -> RunTrigger {
        match self {
            Trigger::Event { .. } => RunTrigger::Event,
            Trigger::Scheduled => RunTrigger::Scheduled,
            Trigger::Manual => RunTrigger::Manual,
        }
    }

    /// Of two pending triggers, the one to keep: manual wins, then the
    /// earliest event (so latency is measured from the first change).
    pub fn merge(self, other: Trigger) -> Trigger {
        match (self, other) {
            (Trigger::Manual, _) | (_, Trigger::Manual) => Trigger::Manual,
            (Trigger::Event { at: a }, Trigger::Event { at: b }) => Trigger::Event {
                at: if a.0 <= b.0 { a } else { b },
            },
            (event @ Trigger::Event { .. }, _) | (_, event @ Trigger::Event { .. }) => event,
            _ => Trigger::Scheduled,
        }
    }
}

/// What an evaluation did.
#[derive(Debug)]
pub enum Outcome {
    /// Another daemon holds the lease; try again shortly.
    Busy,
    /// Nothing to do (suppressed, paused, gone, not an alert, or no match).
    Idle,
    /// Runs were recorded (and their notifications queued).
    Recorded(Vec<NewRun>),
}
