//! Environment variables (Braintrust's `/v1/env_var`): named secrets of the
//! organization or of a project, which automation configs may name instead
//! of holding the secret (`secret_name`, `routing_key_secret_name`).
//!
//! A value is write-only: it is sealed under the daemon's key before it is
//! written ([`crate::sealing`], bound to the variable's id) and opened only
//! when a delivery needs it ([`Store::env_var_value`], which also stamps
//! `used`). Nothing that lists or reads a variable returns its value.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::projects::MAX_LIST_LIMIT;
use super::{Store, StoreError, dispatch};

/// What an environment variable belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvVarScope {
    /// The organization: every project may use it.
    Organization,
    /// One project.
    Project,
}

impl EnvVarScope {
    /// `organization` or `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvVarScope::Organization => "organization",
            EnvVarScope::Project => "project",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "project" {
            EnvVarScope::Project
        } else {
            EnvVarScope::Organization
        }
    }
}

/// An environment variable as the API shows it: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EnvVar {
    /// Unique id.
    pub id: Uuid,
    /// What it belongs to.
    pub object_type: EnvVarScope,
    /// The organization's or the project's id.
    pub object_id: Uuid,
    /// Its name, unique within its object.
    pub name: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
    /// When a delivery last used it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used: Option<DbTime>,
    /// Free-form metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// What kind of secret it is (free text, e.g. `slack_bot_token`).
    pub secret_type: Option<String>,
    /// Always `env_var` (Braintrust's `secret_category`).
    pub secret_category: &'static str,
    /// Whether it has a value (the value itself is never returned).
    pub has_value: bool,
}

type EnvVarRow = (
    DbId,
    String,
    DbId,
    String,
    DbTime,
    Option<DbTime>,
    Option<Json<Value>>,
    Option<String>,
    bool,
);

const COLUMNS: &str = "id, object_type, object_id, name, created, used, metadata, secret_type, \
     value IS NOT NULL";

fn from_row(row: EnvVarRow) -> EnvVar {
    let (id, object_type, object_id, name, created, used, metadata, secret_type, has_value) = row;
    EnvVar {
        id: id.0,
        object_type: EnvVarScope::parse(&object_type),
        object_id: object_id.0,
        name,
        created,
        used,
        metadata: metadata.map(|m| m.0),
        secret_type,
        secret_category: "env_var",
        has_value,
    }
}

/// What a create or replace writes.
#[derive(Debug, Clone)]
pub struct EnvVarWrite {
    /// What it belongs to.
    pub object_type: EnvVarScope,
    /// The organization's or the project's id.
    pub object_id: Uuid,
    /// Its name.
    pub name: String,
    /// The secret (sealed before it is written); `None` for no value.
    pub value: Option<String>,
    /// Free-form metadata.
    pub metadata: Option<Value>,
    /// What kind of secret it is.
    pub secret_type: Option<String>,
}

/// What [`Store::update_env_var`] changes; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct EnvVarChange {
    /// A new name.
    pub name: Option<String>,
    /// A new value (`Some(None)` removes it).
    pub value: Option<Option<String>>,
    /// New metadata.
    pub metadata: Option<Value>,
    /// A new secret type.
    pub secret_type: Option<String>,
}

/// Filters of [`Store::list_env_vars`].
#[derive(Debug, Clone, Default)]
pub struct EnvVarListParams {
    /// At most this many (default and cap 1000).
    pub limit: Option<u32>,
    /// Only these ids (empty: no restriction).
    pub ids: Vec<Uuid>,
    /// Only the one of this name.
    pub name: Option<String>,
    /// Only those of this kind of object.
    pub object_type: Option<EnvVarScope>,
    /// Only those of this object.
    pub object_id: Option<Uuid>,
}

/// Where variable `id`'s sealed value belongs.
fn value_context(id: Uuid) -> String {
    format!("env_var/{id}/value")
}

impl Store {
    fn seal_value(&self, id: Uuid, value: Option<&str>) -> Option<String> {
        value.map(|v| self.sealer.seal(v.as_bytes(), &value_context(id)))
    }

    /// Creates a variable, or returns the one of that name on that object
    /// unmodified (Braintrust's `POST`). The flag is true when created.
    pub async fn create_env_var(&self, write: &EnvVarWrite) -> Result<(EnvVar, bool), StoreError> {
        let id = Uuid::new_v4();
        let sql = "INSERT INTO env_vars (id, object_type, object_id, project_id, name, value, \
                   metadata, secret_type, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                   ON CONFLICT (object_type, object_id, name) DO NOTHING";
        let project_id = (write.object_type == EnvVarScope::Project).then_some(write.object_id);
        let inserted = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(write.object_type.as_str())
                .bind(DbId(write.object_id))
                .bind(project_id.map(DbId))
                .bind(&write.name)
                .bind(self.seal_value(id, write.value.as_deref()))
                .bind(write.metadata.as_ref().map(Json))
                .bind(write.secret_type.as_deref())
                .bind(DbTime::now())
                .execute(pool)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        StoreError::not_found("project", write.object_id)
                    }
                    _ => StoreError::Database(e),
                })?
                .rows_affected()
        });
        let stored = self
            .env_var_named(write.object_type, write.object_id, &write.name)
            .await?
            .ok_or_else(|| StoreError::not_found("env_var", &write.name))?;
        if inserted > 0 {
            tracing::info!(env_var_id = %stored.id, object_type = write.object_type.as_str(),
                object_id = %write.object_id, name = %write.name, "env var created");
        }
        Ok((stored, inserted > 0))
    }

    /// Creates the variable, or replaces the value, metadata and secret
    /// type of the one with that name on that object (Braintrust's `PUT`).
    pub async fn replace_env_var(&self, write: &EnvVarWrite) -> Result<EnvVar, StoreError> {
        let (stored, created) = self.create_env_var(write).await?;
        if created {
            return Ok(stored);
        }
        self.update_env_var(
            stored.id,
            EnvVarChange {
                name: None,
                value: Some(write.value.clone()),
                metadata: write.metadata.clone(),
                secret_type: write.secret_type.clone(),
            },
        )
        .await
    }

    /// The variable with this id.
    pub async fn env_var(&self, id: Uuid) -> Result<EnvVar, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM env_vars WHERE id = $1");
        let row = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, EnvVarRow>(&sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row)
            .ok_or_else(|| StoreError::not_found("env_var", id))
    }

    async fn env_var_named(
        &self,
        object_type: EnvVarScope,
        object_id: Uuid,
        name: &str,
    ) -> Result<Option<EnvVar>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM env_vars WHERE object_type = $1 AND object_id = $2 AND name = $3"
        );
        let row = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, EnvVarRow>(&sql)
                .bind(object_type.as_str())
                .bind(DbId(object_id))
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(from_row))
    }

    /// Lists variables, newest first.
    pub async fn list_env_vars(
        &self,
        params: &EnvVarListParams,
    ) -> Result<Vec<EnvVar>, StoreError> {
        let limit = i64::from(params.limit.unwrap_or(MAX_LIST_LIMIT).min(MAX_LIST_LIMIT));
        let mut sql = format!(
            "SELECT {COLUMNS} FROM env_vars WHERE ($1 IS NULL OR name = $1) \
             AND ($2 IS NULL OR object_type = $2) AND ($3 IS NULL OR object_id = $3)"
        );
        if !params.ids.is_empty() {
            let list: Vec<String> = (0..params.ids.len())
                .map(|i| format!("${}", i + 5))
                .collect();
            sql.push_str(&format!(" AND id IN ({})", list.join(", ")));
        }
        sql.push_str(" ORDER BY created DESC, id DESC LIMIT $4");
        let rows = dispatch!(self, |pool, DB| {
            let mut query = sqlx::query_as::<DB, EnvVarRow>(&sql)
                .bind(params.name.as_deref())
                .bind(params.object_type.map(EnvVarScope::as_str))
                .bind(params.object_id.map(DbId))
                .bind(limit);
            for id in &params.ids {
                query = query.bind(DbId(*id));
            }
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Changes what `change` gives of variable `id`.
    pub async fn update_env_var(
        &self,
        id: Uuid,
        change: EnvVarChange,
    ) -> Result<EnvVar, StoreError> {
        let current = self.env_var(id).await?;
        let sql = "UPDATE env_vars SET name = COALESCE($2, name), \
                   value = CASE WHEN $3 THEN $4 ELSE value END, \
                   metadata = COALESCE($5, metadata), secret_type = COALESCE($6, secret_type) \
                   WHERE id = $1";
        let sealed = change
            .value
            .as_ref()
            .and_then(|v| self.seal_value(id, v.as_deref()));
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .bind(change.name.as_deref())
                .bind(change.value.is_some())
                .bind(sealed)
                .bind(change.metadata.as_ref().map(Json))
                .bind(change.secret_type.as_deref())
                .execute(pool)
                .await
                .map_err(|e| {
                    StoreError::conflict_on_unique(
                        e,
                        format!(
                            "an env var named {:?} exists on this {}",
                            change.name.as_deref().unwrap_or(&current.name),
                            current.object_type.as_str()
                        ),
                    )
                })?;
        });
        tracing::info!(env_var_id = %id, value_changed = change.value.is_some(), "env var updated");
        self.env_var(id).await
    }

    /// Deletes variable `id`; returns what was deleted.
    pub async fn delete_env_var(&self, id: Uuid) -> Result<EnvVar, StoreError> {
        let stored = self.env_var(id).await?;
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>("DELETE FROM env_vars WHERE id = $1")
                .bind(DbId(id))
                .execute(pool)
                .await?;
        });
        tracing::info!(env_var_id = %id, "env var deleted");
        Ok(stored)
    }

    /// The value of the variable `name` as project `project_id` sees it:
    /// the project's own, else the organization's (`organization_id`).
    /// Stamps its `used`. `None` when neither exists or it has no value.
    pub async fn env_var_value(
        &self,
        project_id: Uuid,
        organization_id: Uuid,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let sql = "SELECT id, value FROM env_vars WHERE name = $1 AND \
                   ((object_type = 'project' AND object_id = $2) OR \
                    (object_type = 'organization' AND object_id = $3)) \
                   ORDER BY CASE WHEN object_type = 'project' THEN 0 ELSE 1 END LIMIT 1";
        let row: Option<(DbId, Option<String>)> = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, (DbId, Option<String>)>(sql)
                .bind(name)
                .bind(DbId(project_id))
                .bind(DbId(organization_id))
                .fetch_optional(pool)
                .await?
        });
        let Some((DbId(id), Some(sealed))) = row else {
            return Ok(None);
        };
        let opened = self.sealer.open(&sealed, &value_context(id))?;
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>("UPDATE env_vars SET used = $2 WHERE id = $1")
                .bind(DbId(id))
                .bind(DbTime::now())
                .execute(pool)
                .await?;
        });
        String::from_utf8(opened)
            .map(Some)
            .map_err(|_| StoreError::Sealing(crate::sealing::SealError::Malformed("not text")))
    }

    /// Re-seals every value not sealed under the current key (a rotation);
    /// fails, naming the key, when one is under a key this daemon lacks.
    pub async fn reseal_env_vars(&self) -> Result<u64, StoreError> {
        let rows: Vec<(DbId, String)> = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, (DbId, String)>(
                "SELECT id, value FROM env_vars WHERE value IS NOT NULL",
            )
            .fetch_all(pool)
            .await?
        });
        let mut resealed = 0;
        for (DbId(id), sealed) in rows {
            let Some(again) = self.sealer.reseal(&sealed, &value_context(id))? else {
                continue;
            };
            dispatch!(self, |pool, DB| {
                sqlx::query::<DB>("UPDATE env_vars SET value = $1 WHERE id = $2")
                    .bind(again)
                    .bind(DbId(id))
                    .execute(pool)
                    .await?;
            });
            resealed += 1;
        }
        Ok(resealed)
    }
}
