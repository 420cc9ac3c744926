//! Automations as stored: create (idempotent by name, like Braintrust),
//! create-or-replace, list, get, update, delete.
//!
//! The store keeps the config as opaque JSON; its meaning (and the
//! validation through plugins) belongs to [`crate::automations`]. Every
//! automation has one `automation_state` row, written in the same
//! transaction, that the engine uses for scheduling (see
//! [`super::automation_state`]). Deleting an automation cascades to its
//! state, runs and queued deliveries.

use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::projects::MAX_LIST_LIMIT;
use super::{Store, StoreError, dispatch};

/// An automation row.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StoredAutomation {
    /// Unique id.
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// The project it watches.
    #[sqlx(try_from = "DbId")]
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    pub created: DbTime,
    /// `logs`, `environment_update`, `btql_export` or `retention`.
    pub event_type: String,
    /// The whole config, secrets included.
    pub config: Json<Value>,
}

/// What a create or replace writes.
#[derive(Debug, Clone)]
pub struct AutomationWrite {
    /// The project.
    pub project_id: Uuid,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The config's `event_type`.
    pub event_type: String,
    /// The whole config.
    pub config: Value,
}

/// Filters and pagination of [`Store::list_automations`].
#[derive(Debug, Clone, Default)]
pub struct AutomationListParams {
    /// Only this project's.
    pub project_id: Option<Uuid>,
    /// Only the one with this name.
    pub name: Option<String>,
    /// Only these ids (empty: no restriction).
    pub ids: Vec<Uuid>,
    /// At most this many (default and cap [`MAX_LIST_LIMIT`]).
    pub limit: Option<u32>,
    /// Only automations listed after this one (older).
    pub starting_after: Option<Uuid>,
    /// Only automations listed before this one (newer).
    pub ending_before: Option<Uuid>,
}

const COLUMNS: &str = "id, project_id, name, description, created, event_type, config";

/// Inserts the state row of a new automation: nothing seen before
/// `watermark`, due at `next_run`.
const INSERT_STATE_SQL: &str = "INSERT INTO automation_state \
     (automation_id, next_run, watermark, window_start) VALUES ($1, $2, $3, $4)";

impl Store {
    /// Creates an automation, or returns the existing one of that name in
    /// the project unmodified (Braintrust's semantics). The flag is true when
    /// it was created. A new automation starts looking after `watermark` and
    /// is first due at `next_run`.
    pub async fn create_automation(
        &self,
        write: &AutomationWrite,
        watermark: i64,
        next_run: Option<DbTime>,
    ) -> Result<(StoredAutomation, bool), StoreError> {
        if let Some(existing) = self
            .automation_by_name(write.project_id, &write.name)
            .await?
        {
            return Ok((existing, false));
        }
        let id = Uuid::new_v4();
        let now = DbTime::now();
        let insert = "INSERT INTO automations (id, project_id, name, description, created, \
                      event_type, config) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (project_id, name) DO NOTHING";
        let inserted = dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query::<DB>(insert)
                .bind(DbId(id))
                .bind(DbId(write.project_id))
                .bind(&write.name)
                .bind(write.description.as_deref())
                .bind(now)
                .bind(&write.event_type)
                .bind(Json(&write.config))
                .execute(&mut *tx)
                .await
                .map_err(|e| project_missing(e, write.project_id))?
                .rows_affected();
            if inserted > 0 {
                sqlx::query::<DB>(INSERT_STATE_SQL)
                    .bind(DbId(id))
                    .bind(next_run)
                    .bind(watermark)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            inserted
        });
        let stored = self
            .automation_by_name(write.project_id, &write.name)
            .await?
            .ok_or_else(|| StoreError::not_found("project_automation", &write.name))?;
        if inserted > 0 {
            tracing::info!(automation_id = %stored.id, project_id = %stored.project_id,
                event_type = %stored.event_type, "automation created");
        }
        Ok((stored, inserted > 0))
    }

    /// Creates the automation, or replaces the config and description of the
    /// one with the same project and name (keeping its id, history and state,
    /// unless the event type changes: then its state starts afresh at
    /// `watermark`).
    pub async fn replace_automation(
        &self,
        write: &AutomationWrite,
        watermark: i64,
        next_run: Option<DbTime>,
    ) -> Result<StoredAutomation, StoreError> {
        let Some(existing) = self
            .automation_by_name(write.project_id, &write.name)
            .await?
        else {
            let (stored, _) = self.create_automation(write, watermark, next_run).await?;
            return Ok(stored);
        };
        self.update_automation(
            existing.id,
            None,
            Some(write.description.as_deref()),
            Some((&write.event_type, &write.config)),
            watermark,
            next_run,
        )
        .await
    }

    /// The automation with this id.
    pub async fn automation(&self, id: Uuid) -> Result<StoredAutomation, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM automations WHERE id = $1");
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        found.ok_or_else(|| StoreError::not_found("project_automation", id))
    }

    async fn automation_by_name(
        &self,
        project_id: Uuid,
        name: &str,
    ) -> Result<Option<StoredAutomation>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM automations WHERE project_id = $1 AND name = $2");
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(DbId(project_id))
                .bind(name)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Lists automations, newest first.
    pub async fn list_automations(
        &self,
        params: &AutomationListParams,
    ) -> Result<Vec<StoredAutomation>, StoreError> {
        let limit = i64::from(params.limit.unwrap_or(MAX_LIST_LIMIT).min(MAX_LIST_LIMIT));
        let after = match params.starting_after {
            Some(id) => Some(self.automation(id).await?),
            None => None,
        };
        let before = match params.ending_before {
            Some(id) => Some(self.automation(id).await?),
            None => None,
        };
        let mut sql = format!(
            "SELECT {COLUMNS} FROM automations WHERE ($1 IS NULL OR project_id = $1) \
             AND ($2 IS NULL OR name = $2) \
             AND ($3 IS NULL OR created < $3 OR (created = $3 AND id < $4)) \
             AND ($5 IS NULL OR created > $5 OR (created = $5 AND id > $6))"
        );
        if !params.ids.is_empty() {
            let list: Vec<String> = (0..params.ids.len())
                .map(|i| format!("${}", i + 8))
                .collect();
            sql.push_str(&format!(" AND id IN ({})", list.join(", ")));
        }
        sql.push_str(" ORDER BY created DESC, id DESC LIMIT $7");
        Ok(dispatch!(self, |pool, DB| {
            let mut query = sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(params.project_id.map(DbId))
                .bind(params.name.as_deref())
                .bind(after.as_ref().map(|a| a.created))
                .bind(after.as_ref().map(|a| DbId(a.id)))
                .bind(before.as_ref().map(|a| a.created))
                .bind(before.as_ref().map(|a| DbId(a.id)))
                .bind(limit);
            for id in &params.ids {
                query = query.bind(DbId(*id));
            }
            query.fetch_all(pool).await?
        }))
    }

    /// Every automation of one event type, optionally of one project.
    pub async fn automations_of_type(
        &self,
        event_type: &str,
        project_id: Option<Uuid>,
    ) -> Result<Vec<StoredAutomation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM automations WHERE event_type = $1 \
             AND ($2 IS NULL OR project_id = $2) ORDER BY created, id"
        );
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(event_type)
                .bind(project_id.map(DbId))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Changes the name, description and/or config. A config of another
    /// event type resets the automation's state to start after `watermark`
    /// and be due at `next_run`.
    pub async fn update_automation(
        &self,
        id: Uuid,
        name: Option<&str>,
        description: Option<Option<&str>>,
        config: Option<(&str, &Value)>,
        watermark: i64,
        next_run: Option<DbTime>,
    ) -> Result<StoredAutomation, StoreError> {
        let current = self.automation(id).await?;
        let name = name.unwrap_or(&current.name);
        let description = description.unwrap_or(current.description.as_deref());
        let (event_type, config) = config.unwrap_or((&current.event_type, &current.config.0));
        let reset = event_type != current.event_type;
        let update = "UPDATE automations SET name = $1, description = $2, event_type = $3, \
                      config = $4 WHERE id = $5";
        let reset_sql = "UPDATE automation_state SET next_run = $2, lease_owner = NULL, \
                         lease_expires = NULL, watermark = $3, window_start = $4, \
                         suppressed_until = NULL, consecutive_failures = 0, paused = $5, \
                         paused_reason = NULL WHERE automation_id = $1";
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            sqlx::query::<DB>(update)
                .bind(name)
                .bind(description)
                .bind(event_type)
                .bind(Json(config))
                .bind(DbId(id))
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    StoreError::conflict_on_unique(
                        e,
                        format!("an automation named {name:?} exists in this project"),
                    )
                })?;
            if reset {
                sqlx::query::<DB>(reset_sql)
                    .bind(DbId(id))
                    .bind(next_run)
                    .bind(watermark)
                    .bind(DbTime::now())
                    .bind(false)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        tracing::info!(automation_id = %id, reset, "automation updated");
        self.automation(id).await
    }

    /// Deletes an automation with its state, runs and queued deliveries;
    /// returns what was deleted.
    pub async fn delete_automation(&self, id: Uuid) -> Result<StoredAutomation, StoreError> {
        let stored = self.automation(id).await?;
        let sql = "DELETE FROM automations WHERE id = $1";
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql).bind(DbId(id)).execute(pool).await?;
        });
        tracing::info!(automation_id = %id, "automation deleted");
        Ok(stored)
    }
}

/// Maps a foreign-key violation on `project_id` to "project not found".
fn project_missing(err: sqlx::Error, project_id: Uuid) -> StoreError {
    match &err {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::not_found("project", project_id)
        }
        _ => StoreError::Database(err),
    }
}
