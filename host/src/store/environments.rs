//! Environments and their assignment to prompt versions.
//!
//! An environment (`production`, `staging`, …) is a global slug that can
//! point at one version of each prompt. Assigning an environment to a
//! version, moving it to another version, and removing it are recorded as
//! [`EnvironmentEvent`]s in `environment_events`, in the same transaction and
//! with a sequence number, then published on the store's channel after
//! commit: environment alerts subscribe to the channel and catch up from the
//! table. Deleting a prompt or an environment records a removal for each
//! assignment it had.

use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::model::StoreEvent;
use super::prompts::{Prompt, as_string, opt_as_string};
use super::{RESERVE_XACT_SQL, Store, StoreError, dispatch};

/// An environment: a slug that points at one version of each prompt.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct Environment {
    /// Unique id.
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// Unique slug, e.g. `production`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
}

/// Which version of a prompt an environment points at.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct EnvironmentAssignment {
    /// The prompt.
    #[sqlx(try_from = "DbId")]
    pub prompt_id: Uuid,
    /// The environment's slug.
    pub environment_slug: String,
    /// The prompt version, as a string.
    #[serde(serialize_with = "as_string")]
    #[schema(value_type = String)]
    pub version: i64,
    /// When the assignment last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated: DbTime,
}

/// A change of an environment assignment, as recorded and published.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct EnvironmentEvent {
    /// Unique id, stable for deliveries about this change.
    #[sqlx(try_from = "DbId")]
    pub id: Uuid,
    /// Sequence number (commit order), as a string.
    #[serde(rename = "_xact_id", serialize_with = "as_string")]
    #[sqlx(rename = "xact_id")]
    #[schema(value_type = String)]
    pub xact_id: i64,
    /// The prompt's project.
    #[sqlx(try_from = "DbId")]
    pub project_id: Uuid,
    /// The prompt.
    #[sqlx(try_from = "DbId")]
    pub prompt_id: Uuid,
    /// The prompt's slug at the time.
    pub prompt_slug: String,
    /// The prompt's name at the time.
    pub prompt_name: String,
    /// The environment.
    pub environment_slug: String,
    /// `assigned` or `removed`.
    pub action: String,
    /// The version now assigned (null for a removal).
    #[serde(serialize_with = "opt_as_string")]
    #[schema(value_type = Option<String>)]
    pub version: Option<i64>,
    /// The version assigned before (null if none).
    #[serde(serialize_with = "opt_as_string")]
    #[schema(value_type = Option<String>)]
    pub previous_version: Option<i64>,
    /// When it happened.
    #[schema(value_type = String, format = DateTime)]
    pub created: DbTime,
}

const ENV_EVENT_COLUMNS: &str = "id, xact_id, project_id, prompt_id, prompt_slug, prompt_name, \
     environment_slug, action, version, previous_version, created";

const INSERT_ENV_EVENT_SQL: &str = "INSERT INTO environment_events \
     (id, xact_id, project_id, prompt_id, prompt_slug, prompt_name, environment_slug, action, \
      version, previous_version, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// A pending environment event (before its sequence number is known).
pub(super) struct EnvChange {
    pub prompt: Prompt,
    pub environment_slug: String,
    pub action: &'static str,
    pub version: Option<i64>,
    pub previous_version: Option<i64>,
}

impl Store {
    /// Creates an environment, or returns the existing one with this slug.
    pub async fn create_environment(
        &self,
        slug: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<(Environment, bool), StoreError> {
        let sql = "INSERT INTO environments (id, slug, name, description, created) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slug) DO NOTHING";
        let inserted = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(Uuid::new_v4()))
                .bind(slug)
                .bind(name.unwrap_or(slug))
                .bind(description)
                .bind(DbTime::now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        let env = self
            .environment_by_slug(slug)
            .await?
            .ok_or_else(|| StoreError::not_found("environment", slug))?;
        Ok((env, inserted > 0))
    }

    /// The environment with this id.
    pub async fn environment(&self, id: Uuid) -> Result<Environment, StoreError> {
        let sql = "SELECT id, slug, name, description, created FROM environments WHERE id = $1";
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Environment>(sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        found.ok_or_else(|| StoreError::not_found("environment", id))
    }

    /// The environment with this slug, if any.
    pub async fn environment_by_slug(&self, slug: &str) -> Result<Option<Environment>, StoreError> {
        let sql = "SELECT id, slug, name, description, created FROM environments WHERE slug = $1";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Environment>(sql)
                .bind(slug)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// All environments, by slug.
    pub async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        let sql = "SELECT id, slug, name, description, created FROM environments ORDER BY slug";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Environment>(sql)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Deletes an environment, recording a removal for each prompt it
    /// pointed at.
    pub async fn delete_environment(&self, id: Uuid) -> Result<Environment, StoreError> {
        let env = self.environment(id).await?;
        let sql = "SELECT a.prompt_id, e.slug AS environment_slug, a.version, a.updated \
                   FROM prompt_environments a JOIN environments e ON e.id = a.environment_id \
                   WHERE a.environment_id = $1";
        let assignments = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, EnvironmentAssignment>(sql)
                .bind(DbId(id))
                .fetch_all(pool)
                .await?
        });
        let mut changes = Vec::with_capacity(assignments.len());
        for a in assignments {
            changes.push(EnvChange {
                prompt: self.prompt(a.prompt_id, None).await?,
                environment_slug: a.environment_slug,
                action: "removed",
                version: None,
                previous_version: Some(a.version),
            });
        }
        let delete = ("DELETE FROM environments WHERE id = $1", vec![id]);
        self.record_env_changes(changes, Some(delete), None).await?;
        tracing::info!(environment_id = %id, slug = env.slug, "environment deleted");
        Ok(env)
    }

    /// The environments pointing at versions of a prompt.
    pub async fn prompt_environments(
        &self,
        prompt_id: Uuid,
    ) -> Result<Vec<EnvironmentAssignment>, StoreError> {
        let sql = "SELECT a.prompt_id, e.slug AS environment_slug, a.version, a.updated \
                   FROM prompt_environments a JOIN environments e ON e.id = a.environment_id \
                   WHERE a.prompt_id = $1 ORDER BY e.slug";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, EnvironmentAssignment>(sql)
                .bind(DbId(prompt_id))
                .fetch_all(pool)
                .await?
        }))
    }

    /// The prompt version an environment points at.
    pub async fn prompt_in_environment(
        &self,
        prompt_id: Uuid,
        environment_slug: &str,
    ) -> Result<Prompt, StoreError> {
        let assignment = self
            .prompt_environments(prompt_id)
            .await?
            .into_iter()
            .find(|a| a.environment_slug == environment_slug)
            .ok_or_else(|| {
                StoreError::not_found(
                    "environment assignment",
                    format!("{prompt_id}/{environment_slug}"),
                )
            })?;
        let prompt = self.prompt(prompt_id, Some(assignment.version)).await?;
        Ok(prompt)
    }

    /// Points an environment at a version of a prompt (the latest when
    /// `version` is `None`). Returns the assignment and the recorded event,
    /// which is `None` when the environment already pointed there.
    pub async fn assign_environment(
        &self,
        prompt_id: Uuid,
        environment_slug: &str,
        version: Option<i64>,
    ) -> Result<(EnvironmentAssignment, Option<EnvironmentEvent>), StoreError> {
        let env = self
            .environment_by_slug(environment_slug)
            .await?
            .ok_or_else(|| StoreError::not_found("environment", environment_slug))?;
        let latest = self.prompt(prompt_id, None).await?;
        let version = match version {
            Some(v) => {
                let p = self.prompt(prompt_id, Some(v)).await?;
                if p.version != v {
                    return Err(StoreError::not_found(
                        "prompt version",
                        format!("{prompt_id}@{v}"),
                    ));
                }
                v
            }
            None => latest.version,
        };
        let previous = self
            .prompt_environments(prompt_id)
            .await?
            .into_iter()
            .find(|a| a.environment_slug == environment_slug);
        if let Some(p) = &previous
            && p.version == version
        {
            return Ok((p.clone(), None));
        }
        let change = EnvChange {
            prompt: latest,
            environment_slug: environment_slug.to_string(),
            action: "assigned",
            version: Some(version),
            previous_version: previous.map(|p| p.version),
        };
        let upsert = (env.id, version);
        let mut events = self
            .record_env_changes(vec![change], None, Some(upsert))
            .await?;
        let event = events.pop();
        let assignment = self
            .prompt_environments(prompt_id)
            .await?
            .into_iter()
            .find(|a| a.environment_slug == environment_slug)
            .ok_or_else(|| StoreError::not_found("environment assignment", environment_slug))?;
        Ok((assignment, event))
    }

    /// Removes an environment from a prompt and returns the recorded event.
    pub async fn unassign_environment(
        &self,
        prompt_id: Uuid,
        environment_slug: &str,
    ) -> Result<EnvironmentEvent, StoreError> {
        let prompt = self.prompt(prompt_id, None).await?;
        let assignment = self
            .prompt_environments(prompt_id)
            .await?
            .into_iter()
            .find(|a| a.environment_slug == environment_slug)
            .ok_or_else(|| {
                StoreError::not_found(
                    "environment assignment",
                    format!("{prompt_id}/{environment_slug}"),
                )
            })?;
        let env = self
            .environment_by_slug(environment_slug)
            .await?
            .ok_or_else(|| StoreError::not_found("environment", environment_slug))?;
        let change = EnvChange {
            prompt,
            environment_slug: environment_slug.to_string(),
            action: "removed",
            version: None,
            previous_version: Some(assignment.version),
        };
        let delete = (
            "DELETE FROM prompt_environments WHERE prompt_id = $1 AND environment_id = $2",
            vec![prompt_id, env.id],
        );
        let mut events = self
            .record_env_changes(vec![change], Some(delete), None)
            .await?;
        events
            .pop()
            .ok_or_else(|| StoreError::not_found("environment assignment", environment_slug))
    }

    /// Environment events in sequence order, optionally of one project and
    /// after a sequence number.
    pub async fn environment_events(
        &self,
        project_id: Option<Uuid>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EnvironmentEvent>, StoreError> {
        let sql = format!(
            "SELECT {ENV_EVENT_COLUMNS} FROM environment_events \
             WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR xact_id > $2) \
             ORDER BY xact_id LIMIT $3"
        );
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, EnvironmentEvent>(&sql)
                .bind(project_id.map(DbId))
                .bind(after)
                .bind(i64::from(limit.min(10_000)))
                .fetch_all(pool)
                .await?
        }))
    }

    /// In one transaction: allocates sequence numbers, runs `delete` (SQL
    /// and the ids it binds), points `(environment, version)` at the prompt
    /// of the first change, and records `changes`. Publishes the events after
    /// commit.
    pub(super) async fn record_env_changes(
        &self,
        changes: Vec<EnvChange>,
        delete: Option<(&'static str, Vec<Uuid>)>,
        upsert: Option<(Uuid, i64)>,
    ) -> Result<Vec<EnvironmentEvent>, StoreError> {
        let prompt_id = changes.first().map(|c| c.prompt.id);
        let now = DbTime::now();
        let n = changes.len() as i64;
        let guard = self.write_guard().await;
        let events = dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            let first = if n > 0 {
                let last: i64 = sqlx::query_scalar(RESERVE_XACT_SQL)
                    .bind(n)
                    .fetch_one(&mut *tx)
                    .await?;
                last - n + 1
            } else {
                0
            };
            if let Some((sql, ids)) = &delete {
                let mut q = sqlx::query::<DB>(sql);
                for id in ids {
                    q = q.bind(DbId(*id));
                }
                q.execute(&mut *tx).await?;
            }
            if let (Some((environment_id, version)), Some(prompt_id)) = (upsert, prompt_id) {
                sqlx::query::<DB>(
                    "INSERT INTO prompt_environments (prompt_id, environment_id, version, updated) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (prompt_id, environment_id) \
                     DO UPDATE SET version = excluded.version, updated = excluded.updated",
                )
                .bind(DbId(prompt_id))
                .bind(DbId(environment_id))
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let mut events = Vec::with_capacity(changes.len());
            for (i, c) in changes.into_iter().enumerate() {
                let event = EnvironmentEvent {
                    id: Uuid::new_v4(),
                    xact_id: first + i as i64,
                    project_id: c.prompt.project_id,
                    prompt_id: c.prompt.id,
                    prompt_slug: c.prompt.slug,
                    prompt_name: c.prompt.name,
                    environment_slug: c.environment_slug,
                    action: c.action.to_string(),
                    version: c.version,
                    previous_version: c.previous_version,
                    created: now,
                };
                sqlx::query::<DB>(INSERT_ENV_EVENT_SQL)
                    .bind(DbId(event.id))
                    .bind(event.xact_id)
                    .bind(DbId(event.project_id))
                    .bind(DbId(event.prompt_id))
                    .bind(&event.prompt_slug)
                    .bind(&event.prompt_name)
                    .bind(&event.environment_slug)
                    .bind(&event.action)
                    .bind(event.version)
                    .bind(event.previous_version)
                    .bind(event.created)
                    .execute(&mut *tx)
                    .await?;
                events.push(event);
            }
            tx.commit().await?;
            events
        });
        drop(guard);
        for event in &events {
            tracing::info!(
                prompt_id = %event.prompt_id,
                environment = event.environment_slug,
                action = event.action,
                xact_id = event.xact_id,
                "environment event"
            );
            self.publish(StoreEvent::Environment(event.clone()));
        }
        Ok(events)
    }
}
