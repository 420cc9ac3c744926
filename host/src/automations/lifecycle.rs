//! An automation's life as the API changes it: create, replace, update and
//! delete.
//!
//! Each writes the store with the automation's starting point (where a new
//! config begins to look at data, [`Engine::starting_point`]) and then
//! refreshes what the engine derives from the set of automations (the
//! ingest path's index, the scheduler's wake-up), in one place: a caller
//! cannot write an automation and forget the refresh. Checking a config
//! against its plugin stays with the caller (the API), which owns the paths
//! of the request body that errors point at.

use uuid::Uuid;

use super::Engine;
use super::config::{AutomationConfig, AutomationStatus};
use crate::store::{AutomationChange, AutomationWrite, StoreError, StoredAutomation};

impl Engine {
    /// Creates the automation `write` describes (with its parsed `config`),
    /// or returns the one of that project and name if there is one.
    pub async fn create(
        &self,
        write: &AutomationWrite,
        config: &AutomationConfig,
    ) -> Result<StoredAutomation, StoreError> {
        let (watermark, next_run) = self.starting_point(config).await?;
        let (stored, _) = self
            .inner
            .store
            .create_automation(write, watermark, next_run)
            .await?;
        self.changed().await;
        Ok(stored)
    }

    /// Creates the automation, or replaces the one of that project and name
    /// (its state starts over from `config`'s starting point).
    pub async fn replace(
        &self,
        write: &AutomationWrite,
        config: &AutomationConfig,
    ) -> Result<StoredAutomation, StoreError> {
        let (watermark, next_run) = self.starting_point(config).await?;
        let stored = self
            .inner
            .store
            .replace_automation(write, watermark, next_run)
            .await?;
        self.changed().await;
        Ok(stored)
    }

    /// Changes what is given of automation `id`: its name, description or
    /// config (a new config starts from its own starting point), and its
    /// status (`paused` pauses it, `active` resumes it).
    pub async fn update(
        &self,
        id: Uuid,
        name: Option<&str>,
        description: Option<&str>,
        config: Option<&AutomationConfig>,
        status: Option<AutomationStatus>,
    ) -> Result<StoredAutomation, StoreError> {
        let (watermark, next_run) = match config {
            Some(config) => self.starting_point(config).await?,
            None => (0, None),
        };
        let json = config.map(|c| (c.event_type(), c.to_json()));
        let stored = self
            .inner
            .store
            .update_automation(
                id,
                AutomationChange {
                    name,
                    description: description.map(Some),
                    config: json
                        .as_ref()
                        .map(|(event_type, value)| (*event_type, value)),
                    paused: status.map(|s| s == AutomationStatus::Paused),
                },
                watermark,
                next_run,
            )
            .await?;
        self.changed().await;
        Ok(stored)
    }

    /// Deletes automation `id` with its state, runs and queued deliveries.
    pub async fn delete(&self, id: Uuid) -> Result<StoredAutomation, StoreError> {
        let stored = self.inner.store.delete_automation(id).await?;
        self.changed().await;
        Ok(stored)
    }
}
