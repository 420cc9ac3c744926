//! Prompts and their versions.
//!
//! A prompt is identified by a slug unique in its project; every change
//! creates a new version numbered by the ingest sequence (Braintrust's
//! `_xact_id`), so any version can be read back and environments
//! ([`super::environments`]) can point at one.

use serde::{Serialize, Serializer};
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::environments::EnvChange;
use super::{RESERVE_XACT_SQL, Store, StoreError, dispatch};

pub(super) fn as_string<S: Serializer, T: ToString>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

pub(super) fn opt_as_string<S: Serializer, T: ToString>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_none(),
    }
}

/// One version of a prompt, in Braintrust's shape.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct Prompt {
    /// The prompt's id (stable across versions).
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// This version's number, as a string.
    #[serde(rename = "_xact_id", serialize_with = "as_string")]
    #[sqlx(rename = "xact_id")]
    #[schema(value_type = String)]
    pub version: i64,
    /// The project.
    #[sqlx(try_from = "DbId")]
    pub project_id: Uuid,
    /// The slug, unique in the project.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When the prompt was first created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
    /// `llm`, `scorer`, `task` or `tool` in Braintrust; free text here.
    pub function_type: Option<String>,
    /// The prompt itself (messages, model, parameters), as given.
    #[schema(value_type = Option<Object>)]
    pub prompt_data: Option<Json<Value>>,
    /// Tags.
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Json<Value>>,
    /// Metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Json<Value>>,
}

/// The content of a new prompt or of a prompt's next version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptContent {
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Function type.
    pub function_type: Option<String>,
    /// Prompt data.
    pub prompt_data: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Metadata.
    pub metadata: Option<Value>,
}

const PROMPT_SELECT: &str = "SELECT p.id, v.xact_id, p.project_id, p.slug, v.name, v.description, \
     p.created, v.function_type, v.prompt_data, v.tags, v.metadata \
     FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id";

/// Inserts a prompt version with sequence number `$2`.
const INSERT_VERSION_SQL: &str = "INSERT INTO prompt_versions \
     (prompt_id, xact_id, created, name, description, function_type, prompt_data, tags, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

impl Store {
    /// Creates a prompt with its first version, or returns the existing
    /// prompt with the same slug in the project. The flag is true when it
    /// was created.
    pub async fn create_prompt(
        &self,
        project_id: Uuid,
        slug: &str,
        content: PromptContent,
    ) -> Result<(Prompt, bool), StoreError> {
        self.project(project_id).await?;
        if let Some(p) = self.prompt_by_slug(project_id, slug).await? {
            return Ok((p, false));
        }
        let id = Uuid::new_v4();
        let now = DbTime::now();
        let guard = self.write_guard().await;
        let inserted = dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let xact: i64 = sqlx::query_scalar(RESERVE_XACT_SQL)
                .bind(1i64)
                .fetch_one(&mut *tx)
                .await?;
            let inserted = sqlx::query::<DB>(
                "INSERT INTO prompts (id, project_id, slug, created) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (project_id, slug) DO NOTHING",
            )
            .bind(DbId(id))
            .bind(DbId(project_id))
            .bind(slug)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted > 0 {
                sqlx::query::<DB>(INSERT_VERSION_SQL)
                    .bind(DbId(id))
                    .bind(xact)
                    .bind(now)
                    .bind(&content.name)
                    .bind(content.description.as_deref())
                    .bind(content.function_type.as_deref())
                    .bind(content.prompt_data.as_ref().map(Json))
                    .bind(content.tags.clone().map(|t| Json(Value::from(t))))
                    .bind(content.metadata.as_ref().map(Json))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            inserted > 0
        });
        drop(guard);
        let prompt = self
            .prompt_by_slug(project_id, slug)
            .await?
            .ok_or_else(|| StoreError::not_found("prompt", slug))?;
        if inserted {
            tracing::info!(prompt_id = %prompt.id, %project_id, slug, "prompt created");
        }
        Ok((prompt, inserted))
    }

    /// A prompt as of `version` (its latest version at or below it), or its
    /// latest version.
    pub async fn prompt(&self, id: Uuid, version: Option<i64>) -> Result<Prompt, StoreError> {
        let sql = format!(
            "{PROMPT_SELECT} WHERE p.id = $1 AND ($2 IS NULL OR v.xact_id <= $2) \
             ORDER BY v.xact_id DESC LIMIT 1"
        );
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Prompt>(&sql)
                .bind(DbId(id))
                .bind(version)
                .fetch_optional(pool)
                .await?
        });
        found.ok_or_else(|| match version {
            Some(v) => StoreError::not_found("prompt version", format!("{id}@{v}")),
            None => StoreError::not_found("prompt", id),
        })
    }

    /// The latest version of the prompt with `slug` in a project.
    pub async fn prompt_by_slug(
        &self,
        project_id: Uuid,
        slug: &str,
    ) -> Result<Option<Prompt>, StoreError> {
        let sql = format!(
            "{PROMPT_SELECT} WHERE p.project_id = $1 AND p.slug = $2 \
             ORDER BY v.xact_id DESC LIMIT 1"
        );
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Prompt>(&sql)
                .bind(DbId(project_id))
                .bind(slug)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Lists the latest version of each prompt, optionally of one project
    /// and/or with one slug, newest first.
    pub async fn list_prompts(
        &self,
        project_id: Option<Uuid>,
        slug: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        let sql = format!(
            "{PROMPT_SELECT} WHERE v.xact_id = \
             (SELECT MAX(xact_id) FROM prompt_versions WHERE prompt_id = p.id) \
             AND ($1 IS NULL OR p.project_id = $1) AND ($2 IS NULL OR p.slug = $2) \
             ORDER BY p.created DESC, p.id DESC LIMIT $3"
        );
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Prompt>(&sql)
                .bind(project_id.map(DbId))
                .bind(slug)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Every version of a prompt, newest first.
    pub async fn prompt_versions(&self, id: Uuid) -> Result<Vec<Prompt>, StoreError> {
        let sql = format!("{PROMPT_SELECT} WHERE p.id = $1 ORDER BY v.xact_id DESC");
        let versions = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Prompt>(&sql)
                .bind(DbId(id))
                .fetch_all(pool)
                .await?
        });
        if versions.is_empty() {
            return Err(StoreError::not_found("prompt", id));
        }
        Ok(versions)
    }

    /// Saves `content` as the prompt's next version.
    pub async fn update_prompt(
        &self,
        id: Uuid,
        content: PromptContent,
    ) -> Result<Prompt, StoreError> {
        self.prompt(id, None).await?;
        let guard = self.write_guard().await;
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let xact: i64 = sqlx::query_scalar(RESERVE_XACT_SQL)
                .bind(1i64)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query::<DB>(INSERT_VERSION_SQL)
                .bind(DbId(id))
                .bind(xact)
                .bind(DbTime::now())
                .bind(&content.name)
                .bind(content.description.as_deref())
                .bind(content.function_type.as_deref())
                .bind(content.prompt_data.as_ref().map(Json))
                .bind(content.tags.clone().map(|t| Json(Value::from(t))))
                .bind(content.metadata.as_ref().map(Json))
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        StoreError::not_found("prompt", id)
                    }
                    _ => StoreError::Database(e),
                })?;
            tx.commit().await?;
        });
        drop(guard);
        self.prompt(id, None).await
    }

    /// Deletes a prompt, recording a removal for each environment that
    /// pointed at it.
    pub async fn delete_prompt(&self, id: Uuid) -> Result<Prompt, StoreError> {
        let prompt = self.prompt(id, None).await?;
        let changes = self
            .prompt_environments(id)
            .await?
            .into_iter()
            .map(|a| EnvChange {
                prompt: prompt.clone(),
                environment_slug: a.environment_slug,
                action: "removed",
                version: None,
                previous_version: Some(a.version),
            })
            .collect();
        let delete = ("DELETE FROM prompts WHERE id = $1", vec![id]);
        self.record_env_changes(changes, Some(delete), None).await?;
        tracing::info!(prompt_id = %id, "prompt deleted");
        Ok(prompt)
    }
}
