//! A scratch PostgreSQL schema for a benchmark run.
//!
//! Benchmarks that measure PostgreSQL get a database URL from the operator
//! (`HERALD_BENCH_DATABASE_URL`). Rather than writing into whatever that
//! database holds, a run creates a schema of its own, points its
//! connections at it through `search_path` in the URL (so migrations and
//! every query land there), and drops it, data and all, when done.

use anyhow::Context;

/// A schema created for one run; [`ScratchSchema::drop_now`] removes it.
pub struct ScratchSchema {
    admin: sqlx::PgPool,
    name: String,
    /// The database URL whose connections use only this schema.
    pub url: String,
}

impl ScratchSchema {
    /// Creates `herald_bench_<random>` in the database at `admin_url`.
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("herald_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(admin_url)
            .await
            .context("connecting to HERALD_BENCH_DATABASE_URL")?;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .with_context(|| format!("creating the scratch schema {name}"))?;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{name}");
        Ok(Self { admin, name, url })
    }

    /// Drops the schema and everything in it.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&self.admin)
            .await
            .with_context(|| format!("dropping the scratch schema {}", self.name))?;
        self.admin.close().await;
        Ok(())
    }
}
