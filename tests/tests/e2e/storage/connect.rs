//! Connecting: URL schemes, migrations applied once and kept across
//! restarts, SQLite pragmas.

use herald::store::{Store, StoreError};
use sqlx::Connection;

use super::{Backend, TestDb, both_backends};

both_backends!(reconnecting_keeps_data_and_migrations);

async fn reconnecting_keeps_data_and_migrations(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    let (project, created) = store.create_project("persist", Some("d")).await.unwrap();
    assert!(created);
    store.close().await;

    // A restart re-runs the migrator, which finds nothing to do.
    let store = Store::connect(&db.url).await.unwrap();
    let again = store.project(project.id).await.unwrap();
    assert_eq!(again, project);
    let (same, created) = store.create_project("persist", None).await.unwrap();
    assert!(!created);
    assert_eq!(same, project);
    store.close().await;
}

#[tokio::test]
async fn sqlite_files_use_wal_and_parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/herald.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap();
    store.create_project("p", None).await.unwrap();
    assert!(path.exists());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_in_memory_works_across_the_pool() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (p, _) = store.create_project("mem", None).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            store.project(p.id).await.map(|p| p.name)
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap(), "mem");
    }
}

#[tokio::test]
async fn a_confined_query_runs_on_an_in_memory_database_and_leaves_it_writable() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (p, _) = store.create_project("mem", None).await.unwrap();
    for _ in 0..3 {
        let rows = crate::storage::confined(
            &store,
            "SELECT count(*) AS n FROM spans",
            p.id,
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(rows.rows, vec![vec![serde_json::json!(0)]]);
    }
    // The query ran on a connection of its own: the pool's database is
    // still there and still takes writes.
    assert_eq!(store.project(p.id).await.unwrap().name, "mem");
    store.create_project("after", None).await.unwrap();
}

#[tokio::test]
async fn unknown_schemes_are_rejected_without_leaking_credentials() {
    let err = Store::connect("mysql://root:hunter2@db/herald")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    let text = err.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("sqlite:"), "{text}");
}
