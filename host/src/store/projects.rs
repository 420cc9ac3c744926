//! Projects: create (idempotent by name, like Braintrust), list, get,
//! rename, delete. Deleting a project deletes everything in it (foreign keys
//! cascade to experiments, datasets, prompts and event rows).

use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::model::Project;
use super::{Store, StoreError, dispatch};

/// Parameters of a list query shared by the object lists.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// Return at most this many objects (newest first).
    pub limit: Option<u32>,
    /// Only objects with this exact name.
    pub name: Option<String>,
    /// Only objects created before the object with this id (pagination).
    pub starting_after: Option<Uuid>,
}

/// The default and largest page of a list.
pub const MAX_LIST_LIMIT: u32 = 1000;

impl Store {
    /// Creates a project, or returns the existing one with the same name.
    /// The flag is true when the project was created.
    pub async fn create_project(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<(Project, bool), StoreError> {
        let id = DbId(Uuid::new_v4());
        let created = DbTime::now();
        let sql = "INSERT INTO projects (id, name, description, created) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (name) DO NOTHING";
        let inserted = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(id)
                .bind(name)
                .bind(description)
                .bind(created)
                .execute(pool)
                .await?
                .rows_affected()
        });
        let project = self
            .project_by_name(name)
            .await?
            .ok_or_else(|| StoreError::not_found("project", name))?;
        if inserted > 0 {
            tracing::info!(project_id = %project.id, name, "project created");
        }
        Ok((project, inserted > 0))
    }

    /// The project with this id.
    pub async fn project(&self, id: Uuid) -> Result<Project, StoreError> {
        let sql = "SELECT id, name, description, created FROM projects WHERE id = $1";
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Project>(sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        found.ok_or_else(|| StoreError::not_found("project", id))
    }

    /// The project with this name, if any.
    pub async fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        let sql = "SELECT id, name, description, created FROM projects WHERE name = $1";
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Project>(sql)
                .bind(name)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Lists projects, newest first.
    pub async fn list_projects(&self, params: &ListParams) -> Result<Vec<Project>, StoreError> {
        let limit = i64::from(params.limit.unwrap_or(MAX_LIST_LIMIT).min(MAX_LIST_LIMIT));
        let after = match params.starting_after {
            Some(id) => Some(self.project(id).await?),
            None => None,
        };
        let sql = "SELECT id, name, description, created FROM projects \
                   WHERE ($1 IS NULL OR name = $1) \
                   AND ($2 IS NULL OR created < $2 OR (created = $2 AND id < $3)) \
                   ORDER BY created DESC, id DESC LIMIT $4";
        let after_created = after.as_ref().map(|p| p.created);
        let after_id = after.as_ref().map(|p| DbId(p.id));
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, Project>(sql)
                .bind(params.name.as_deref())
                .bind(after_created)
                .bind(after_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Renames a project and/or changes its description.
    pub async fn update_project(
        &self,
        id: Uuid,
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> Result<Project, StoreError> {
        let current = self.project(id).await?;
        let name = name.unwrap_or(&current.name);
        let description = description.unwrap_or(current.description.as_deref());
        let sql = "UPDATE projects SET name = $1, description = $2 WHERE id = $3";
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(name)
                .bind(description)
                .bind(DbId(id))
                .execute(pool)
                .await
                .map_err(|e| {
                    StoreError::conflict_on_unique(e, format!("a project named {name:?} exists"))
                })?
                .rows_affected()
        });
        self.project(id).await
    }

    /// Deletes a project and everything in it; returns what was deleted.
    pub async fn delete_project(&self, id: Uuid) -> Result<Project, StoreError> {
        let project = self.project(id).await?;
        let sql = "DELETE FROM projects WHERE id = $1";
        let _guard = self.write_guard().await;
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(sql)
                .bind(DbId(id))
                .execute(pool)
                .await?
                .rows_affected()
        });
        tracing::info!(project_id = %id, "project deleted");
        Ok(project)
    }
}
