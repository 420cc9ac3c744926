//! Keeping an automation's lease while long work runs under it.
//!
//! A lease lasts `lease_seconds`; a retention purge or a large export batch
//! can take longer. [`Heartbeat`] renews the lease every third of its length
//! until dropped, so a live daemon keeps its work while a crashed one's
//! lease simply expires and another daemon takes over.

use std::time::Duration;

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Inner;
use crate::store::DbTime;

/// Renews the lease on one automation until dropped.
pub(super) struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    /// Starts renewing this daemon's lease on automation `id`.
    pub(super) fn start(inner: &Inner, id: Uuid) -> Self {
        let store = inner.store.clone();
        let owner = inner.owner.clone();
        let lease = inner.settings.lease();
        Self(tokio::spawn(async move {
            let every = Duration::from_secs((lease.num_seconds() / 3).max(1) as u64);
            loop {
                tokio::time::sleep(every).await;
                let until = DbTime(DbTime::now().0 + lease);
                // Only a lease still held: once another daemon has taken it
                // over (or recorded this run as interrupted), this run's
                // commit fails and the work is redone under the new holder.
                match store.renew_lease(id, &owner, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(automation_id = %id, "the lease was lost; this run will not commit");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(automation_id = %id, %error, "could not renew the lease")
                    }
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
