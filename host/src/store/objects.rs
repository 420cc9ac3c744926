//! Experiments and datasets: the named containers of event rows inside a
//! project. Creation follows Braintrust: asking for an existing name returns
//! the existing object, unless an experiment is created with `ensure_new`,
//! which picks a free name by appending a number.

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::columns::{DbId, DbTime};
use super::model::{Dataset, Experiment, ObjectKind, ObjectRef};
use super::projects::{ListParams, MAX_LIST_LIMIT};
use super::{Store, StoreError, dispatch};

/// What to create an experiment with.
#[derive(Debug, Clone, Default)]
pub struct NewExperiment {
    /// The project.
    pub project_id: Uuid,
    /// The name; `None` picks one.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The dataset it runs against.
    pub dataset_id: Option<Uuid>,
    /// Whether it is public.
    pub public: bool,
    /// Metadata object.
    pub metadata: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Always create a new experiment, renaming on conflict.
    pub ensure_new: bool,
}

const EXPERIMENT_COLUMNS: &str =
    "id, project_id, name, description, created, dataset_id, public, metadata, tags";
const DATASET_COLUMNS: &str = "id, project_id, name, description, created, metadata";

impl Store {
    /// Creates an experiment (see the module docs for name conflicts). The
    /// flag is true when it was created.
    pub async fn create_experiment(
        &self,
        new: NewExperiment,
    ) -> Result<(Experiment, bool), StoreError> {
        self.project(new.project_id).await?;
        let base = new.name.clone().unwrap_or_else(|| "experiment".to_string());
        let tags = new.tags.map(|t| Json(Value::from(t)));
        let metadata = new.metadata.map(Json);
        let sql = format!(
            "INSERT INTO experiments ({EXPERIMENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (project_id, name) DO NOTHING"
        );
        let rename = new.ensure_new || new.name.is_none();
        for attempt in 0..1000u32 {
            let name = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let id = Uuid::new_v4();
            let inserted = dispatch!(self, |pool, DB| {
                sqlx::query::<DB>(&sql)
                    .bind(DbId(id))
                    .bind(DbId(new.project_id))
                    .bind(&name)
                    .bind(new.description.as_deref())
                    .bind(DbTime::now())
                    .bind(new.dataset_id.map(DbId))
                    .bind(new.public)
                    .bind(&metadata)
                    .bind(&tags)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            if inserted > 0 {
                tracing::info!(experiment_id = %id, project_id = %new.project_id, name, "experiment created");
                return Ok((self.experiment(id).await?, true));
            }
            if !rename {
                let existing = self
                    .list_experiments(
                        Some(new.project_id),
                        &ListParams {
                            name: Some(name.clone()),
                            ..ListParams::default()
                        },
                    )
                    .await?;
                if let Some(e) = existing.into_iter().next() {
                    return Ok((e, false));
                }
            }
        }
        Err(StoreError::Conflict(format!(
            "no free experiment name starting with {base:?}"
        )))
    }

    /// The experiment with this id.
    pub async fn experiment(&self, id: Uuid) -> Result<Experiment, StoreError> {
        self.container(id).await
    }

    /// Lists experiments, newest first, optionally of one project.
    pub async fn list_experiments(
        &self,
        project_id: Option<Uuid>,
        params: &ListParams,
    ) -> Result<Vec<Experiment>, StoreError> {
        self.list_containers(project_id, params).await
    }

    /// Deletes an experiment and its events.
    pub async fn delete_experiment(&self, id: Uuid) -> Result<Experiment, StoreError> {
        self.delete_container(id).await
    }

    /// Creates a dataset, or returns the existing one with the same name in
    /// the project. The flag is true when it was created.
    pub async fn create_dataset(
        &self,
        project_id: Uuid,
        name: &str,
        description: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<(Dataset, bool), StoreError> {
        self.project(project_id).await?;
        let id = Uuid::new_v4();
        let sql = format!(
            "INSERT INTO datasets ({DATASET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (project_id, name) DO NOTHING"
        );
        let metadata = metadata.map(Json);
        let inserted = dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(&sql)
                .bind(DbId(id))
                .bind(DbId(project_id))
                .bind(name)
                .bind(description)
                .bind(DbTime::now())
                .bind(&metadata)
                .execute(pool)
                .await?
                .rows_affected()
        });
        let params = ListParams {
            name: Some(name.to_string()),
            ..ListParams::default()
        };
        let dataset = self
            .list_datasets(Some(project_id), &params)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::not_found("dataset", name))?;
        if inserted > 0 {
            tracing::info!(dataset_id = %dataset.id, %project_id, name, "dataset created");
        }
        Ok((dataset, inserted > 0))
    }

    /// The dataset with this id.
    pub async fn dataset(&self, id: Uuid) -> Result<Dataset, StoreError> {
        self.container(id).await
    }

    /// Lists datasets, newest first, optionally of one project.
    pub async fn list_datasets(
        &self,
        project_id: Option<Uuid>,
        params: &ListParams,
    ) -> Result<Vec<Dataset>, StoreError> {
        self.list_containers(project_id, params).await
    }

    /// Deletes a dataset and its rows.
    pub async fn delete_dataset(&self, id: Uuid) -> Result<Dataset, StoreError> {
        self.delete_container(id).await
    }

    /// The [`ObjectRef`] of the object of `kind` with `id` (a project's id
    /// for its logs); `NotFound` when there is none.
    pub async fn object_ref(&self, kind: ObjectKind, id: Uuid) -> Result<ObjectRef, StoreError> {
        match kind {
            ObjectKind::ProjectLogs => {
                self.project(id).await?;
                Ok(ObjectRef::project_logs(id))
            }
            ObjectKind::Experiment => self.experiment_ref(id).await,
            ObjectKind::Dataset => self.dataset_ref(id).await,
        }
    }

    /// The [`ObjectRef`] of an experiment.
    pub async fn experiment_ref(&self, id: Uuid) -> Result<ObjectRef, StoreError> {
        let e = self.experiment(id).await?;
        Ok(ObjectRef {
            kind: ObjectKind::Experiment,
            id,
            project_id: e.project_id,
        })
    }

    /// The [`ObjectRef`] of a dataset.
    pub async fn dataset_ref(&self, id: Uuid) -> Result<ObjectRef, StoreError> {
        let d = self.dataset(id).await?;
        Ok(ObjectRef {
            kind: ObjectKind::Dataset,
            id,
            project_id: d.project_id,
        })
    }
}

/// A table of named containers of event rows in a project (experiments,
/// datasets): what getting, listing and deleting one needs to know.
trait Container:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
{
    /// The kind of its event rows.
    const KIND: ObjectKind;
    /// Its table.
    const TABLE: &'static str;
    /// Its columns, in the row type's order.
    const COLUMNS: &'static str;
    /// What a `NotFound` error calls it.
    const NOUN: &'static str;
    /// Where it sorts in a list: creation time, then id.
    fn list_position(&self) -> (DbTime, Uuid);
}

impl Container for Experiment {
    const KIND: ObjectKind = ObjectKind::Experiment;
    const TABLE: &'static str = "experiments";
    const COLUMNS: &'static str = EXPERIMENT_COLUMNS;
    const NOUN: &'static str = "experiment";
    fn list_position(&self) -> (DbTime, Uuid) {
        (self.created, self.id)
    }
}

impl Container for Dataset {
    const KIND: ObjectKind = ObjectKind::Dataset;
    const TABLE: &'static str = "datasets";
    const COLUMNS: &'static str = DATASET_COLUMNS;
    const NOUN: &'static str = "dataset";
    fn list_position(&self) -> (DbTime, Uuid) {
        (self.created, self.id)
    }
}

impl Store {
    async fn container<C: Container>(&self, id: Uuid) -> Result<C, StoreError> {
        let sql = format!("SELECT {} FROM {} WHERE id = $1", C::COLUMNS, C::TABLE);
        let found = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, C>(&sql)
                .bind(DbId(id))
                .fetch_optional(pool)
                .await?
        });
        found.ok_or_else(|| StoreError::not_found(C::NOUN, id))
    }

    async fn list_containers<C: Container>(
        &self,
        project_id: Option<Uuid>,
        params: &ListParams,
    ) -> Result<Vec<C>, StoreError> {
        let (after_created, after_id) = match params.starting_after {
            Some(id) => {
                let (created, id) = self.container::<C>(id).await?.list_position();
                (Some(created), Some(DbId(id)))
            }
            None => (None, None),
        };
        let sql = format!(
            "SELECT {} FROM {} \
             WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR name = $2) \
             AND ($3 IS NULL OR created < $3 OR (created = $3 AND id < $4)) \
             ORDER BY created DESC, id DESC LIMIT $5",
            C::COLUMNS,
            C::TABLE
        );
        let limit = i64::from(params.limit.unwrap_or(MAX_LIST_LIMIT).min(MAX_LIST_LIMIT));
        Ok(dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, C>(&sql)
                .bind(project_id.map(DbId))
                .bind(params.name.as_deref())
                .bind(after_created)
                .bind(after_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Deletes the container and its event rows in one transaction.
    async fn delete_container<C: Container>(&self, id: Uuid) -> Result<C, StoreError> {
        let container = self.container::<C>(id).await?;
        let kind = C::KIND.as_str();
        let delete = format!("DELETE FROM {} WHERE id = $1", C::TABLE);
        let _guard = self.write_guard().await;
        dispatch!(self, |pool, DB| {
            let mut tx = pool.begin().await?;
            sqlx::query::<DB>("DELETE FROM events WHERE object_type = $1 AND object_id = $2")
                .bind(kind)
                .bind(DbId(id))
                .execute(&mut *tx)
                .await?;
            sqlx::query::<DB>(&delete)
                .bind(DbId(id))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        tracing::info!(kind, id = %id, "{} deleted", C::NOUN);
        Ok(container)
    }
}
