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
use crate::sealing::SealError;

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
    /// The whole config, secrets included (without `status`: that is
    /// [`StoredAutomation::paused`]).
    pub config: Json<Value>,
    /// Whether it is paused: by its config (`status: paused`), by failures
    /// in a row, or until `…/resume`. One state for all three.
    pub paused: bool,
    /// The identity of the API key that created it, if known.
    pub user_id: Option<DbId>,
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
    /// `Some(true)` pauses it, `Some(false)` makes it active (forgetting a
    /// failure streak, as `…/resume` does), `None` keeps the pause state as
    /// it is (a new automation starts active).
    pub paused: Option<bool>,
    /// Who creates it (the API key's identity); a replace keeps the
    /// creator.
    pub user_id: Option<Uuid>,
}

/// Why an automation whose config says `status: paused` is paused.
pub const PAUSED_BY_CONFIG: &str = "paused by its config (status: paused)";

/// What [`Store::update_automation`] changes; `None` keeps a field.
#[derive(Debug, Clone, Copy, Default)]
pub struct AutomationChange<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<&'a str>>,
    /// New event type and config.
    pub config: Option<(&'a str, &'a Value)>,
    /// Pause (`true`) or activate (`false`), as [`AutomationWrite::paused`].
    pub paused: Option<bool>,
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

/// An automation's columns, with its pause state, from [`FROM_AUTOMATIONS`].
const COLUMNS: &str = "a.id, a.project_id, a.name, a.description, a.created, a.event_type, \
     a.config, COALESCE(s.paused, FALSE) AS paused, a.user_id";
const FROM_AUTOMATIONS: &str =
    "automations a LEFT JOIN automation_state s ON s.automation_id = a.id";

/// Inserts the state row of a new automation: nothing seen before
/// `watermark`, due at `next_run`, paused or not.
const INSERT_STATE_SQL: &str = "INSERT INTO automation_state \
     (automation_id, next_run, watermark, window_start, paused, paused_reason) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Pauses (`$2` true, with reason `$3`) or activates an automation; an
/// activation forgets the failure streak.
const SET_PAUSED_SQL: &str = "UPDATE automation_state SET paused = $2, paused_reason = $3, \
     consecutive_failures = CASE WHEN $2 THEN consecutive_failures ELSE 0 END \
     WHERE automation_id = $1";

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
                      event_type, config, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
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
                .bind(Json(self.seal_config(id, &write.config)))
                .bind(write.user_id.map(DbId))
                .execute(&mut *tx)
                .await
                .map_err(|e| project_missing(e, write.project_id))?
                .rows_affected();
            if inserted > 0 {
                let paused = write.paused.unwrap_or(false);
                sqlx::query::<DB>(INSERT_STATE_SQL)
                    .bind(DbId(id))
                    .bind(next_run)
                    .bind(watermark)
                    .bind(now)
                    .bind(paused)
                    .bind(paused.then_some(PAUSED_BY_CONFIG))
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
            AutomationChange {
                name: None,
                description: Some(write.description.as_deref()),
                config: Some((&write.event_type, &write.config)),
                paused: write.paused,
            },
            watermark,
            next_run,
        )
        .await
    }

    /// The automation with this id.
    pub async fn automation(&self, id: Uuid) -> Result<StoredAutomation, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {FROM_AUTOMATIONS} WHERE a.id = $1");
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        self.open_config(found.ok_or_else(|| StoreError::not_found("project_automation", id))?)
    }

    async fn automation_by_name(
        &self,
        project_id: Uuid,
        name: &str,
    ) -> Result<Option<StoredAutomation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {FROM_AUTOMATIONS} WHERE a.project_id = $1 AND a.name = $2"
        );
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(DbId(project_id))
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        found.map(|stored| self.open_config(stored)).transpose()
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
            "SELECT {COLUMNS} FROM {FROM_AUTOMATIONS} WHERE ($1 IS NULL OR a.project_id = $1) \
             AND ($2 IS NULL OR a.name = $2) \
             AND ($3 IS NULL OR a.created < $3 OR (a.created = $3 AND a.id < $4)) \
             AND ($5 IS NULL OR a.created > $5 OR (a.created = $5 AND a.id > $6))"
        );
        if !params.ids.is_empty() {
            let list: Vec<String> = (0..params.ids.len())
                .map(|i| format!("${}", i + 8))
                .collect();
            sql.push_str(&format!(" AND a.id IN ({})", list.join(", ")));
        }
        sql.push_str(" ORDER BY a.created DESC, a.id DESC LIMIT $7");
        let found = dispatch!(self, |pool, DB| {
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
        });
        found.into_iter().map(|s| self.open_config(s)).collect()
    }

    /// Every automation of one event type, optionally of one project.
    pub async fn automations_of_type(
        &self,
        event_type: &str,
        project_id: Option<Uuid>,
    ) -> Result<Vec<StoredAutomation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {FROM_AUTOMATIONS} WHERE a.event_type = $1 \
             AND ($2 IS NULL OR a.project_id = $2) ORDER BY a.created, a.id"
        );
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, StoredAutomation>(&sql)
                .bind(event_type)
                .bind(project_id.map(DbId))
                .fetch_all(pool)
                .await?
        });
        found.into_iter().map(|s| self.open_config(s)).collect()
    }

    /// Changes what `change` gives. A config of another event type resets
    /// the automation's state to start after `watermark` and be due at
    /// `next_run`; then the pause state is set, if `change` sets it.
    pub async fn update_automation(
        &self,
        id: Uuid,
        change: AutomationChange<'_>,
        watermark: i64,
        next_run: Option<DbTime>,
    ) -> Result<StoredAutomation, StoreError> {
        let AutomationChange {
            name,
            description,
            config,
            paused,
        } = change;
        let current = self.automation(id).await?;
        let name = name.unwrap_or(&current.name);
        let description = description.unwrap_or(current.description.as_deref());
        let (event_type, config) = config.unwrap_or((&current.event_type, &current.config.0));
        let reset = event_type != current.event_type;
        // A destination's own pause belongs to the destination at its index:
        // when the destinations change, the indexes no longer name them.
        let destinations_changed = ["action", "actions"]
            .iter()
            .any(|key| current.config.0.get(key) != config.get(key));
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
                .bind(Json(self.seal_config(id, config)))
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
            if reset || destinations_changed {
                sqlx::query::<DB>(super::automation_state::RESUME_DESTINATIONS_SQL)
                    .bind(DbId(id))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(paused) = paused {
                sqlx::query::<DB>(SET_PAUSED_SQL)
                    .bind(DbId(id))
                    .bind(paused)
                    .bind(paused.then_some(PAUSED_BY_CONFIG))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        tracing::info!(automation_id = %id, reset, ?paused, "automation updated");
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

/// Where automation `id`'s sealed config belongs (what it is bound to).
fn config_context(id: Uuid) -> String {
    format!("automation/{id}/config")
}

/// A config as the database holds it: `{"sealed": "v1.…"}`.
fn sealed_text(config: &Value) -> Option<&str> {
    match config.as_object() {
        Some(object) if object.len() == 1 => object.get("sealed").and_then(Value::as_str),
        _ => None,
    }
}

impl Store {
    /// `config` sealed for automation `id`, as the `config` column holds it.
    fn seal_config(&self, id: Uuid, config: &Value) -> Value {
        let sealed = self
            .sealer
            .seal(config.to_string().as_bytes(), &config_context(id));
        serde_json::json!({ "sealed": sealed })
    }

    /// `stored` with its config opened (a config written before configs
    /// were sealed is passed through; the start-up re-seal seals it).
    fn open_config(&self, mut stored: StoredAutomation) -> Result<StoredAutomation, StoreError> {
        if let Some(sealed) = sealed_text(&stored.config.0) {
            stored.config.0 = self.open_sealed_config(stored.id, sealed)?;
        }
        Ok(stored)
    }

    fn open_sealed_config(&self, id: Uuid, sealed: &str) -> Result<Value, StoreError> {
        let opened = self.sealer.open(sealed, &config_context(id))?;
        serde_json::from_slice(&opened)
            .map_err(|_| StoreError::Sealing(SealError::Malformed("not JSON inside")))
    }

    /// Re-seals everything secret (configs, env var values) that is not
    /// sealed under the current key: what the daemon does at start. Fails,
    /// naming the key, when something is sealed under a key it lacks.
    /// Returns how many values were re-sealed.
    pub async fn reseal_secrets(&self) -> Result<u64, StoreError> {
        Ok(self.reseal_configs().await?
            + self.reseal_env_vars().await?
            + self.reseal_deployment_secrets().await?)
    }

    /// Seals every automation config that is not sealed under the current
    /// key: those of an older Herald (plain) and those under a previous key
    /// (a rotation). Fails, naming the key, when a config is sealed under a
    /// key this daemon does not have. Returns how many were re-sealed.
    async fn reseal_configs(&self) -> Result<u64, StoreError> {
        let rows: Vec<(DbId, Json<Value>)> = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, (DbId, Json<Value>)>("SELECT id, config FROM automations")
                .fetch_all(pool)
                .await?
        });
        let mut resealed = 0;
        for (DbId(id), Json(config)) in rows {
            let plain = match sealed_text(&config) {
                Some(sealed) if self.sealer.is_current(sealed) => {
                    // Under the current key: check it opens, once, at start.
                    self.sealer.open(sealed, &config_context(id))?;
                    continue;
                }
                Some(sealed) => self.open_sealed_config(id, sealed)?,
                None => config,
            };
            let sealed = Json(self.seal_config(id, &plain));
            dispatch!(self, |pool, DB| {
                sqlx::query::<DB>("UPDATE automations SET config = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(DbId(id))
                    .execute(pool)
                    .await?;
            });
            resealed += 1;
        }
        Ok(resealed)
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
