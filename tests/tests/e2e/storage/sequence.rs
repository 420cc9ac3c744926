//! The ingest sequence as a watermark: with concurrent writers, a reader
//! that repeatedly reads "rows above the highest `_xact_id` I have seen"
//! must see every row exactly once, and notifications arrive after commit.

use std::collections::HashSet;
use std::time::Duration;

use herald::store::{EventQuery, ObjectRef, StoreEvent, XactRange, validate_event};
use serde_json::json;

use super::{Backend, TestServer, both_backends};

both_backends!(watermark_reader_never_skips_rows);

const WRITERS: usize = 4;
const BATCHES: usize = 25;
const BATCH: usize = 20;

async fn watermark_reader_never_skips_rows(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.project("watermark").await;
    let object = ObjectRef::project_logs(p.parse().unwrap());
    let mut notifications = s.store.subscribe();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = s.store.clone();
        writers.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let writes = (0..BATCH)
                    .map(|i| {
                        let event =
                            json!({"id": format!("w{w}-b{b}-{i}"), "input": {"w": w, "b": b}});
                        validate_event(object.kind, event, "e").unwrap()
                    })
                    .collect();
                store.insert_events(object, writes).await.unwrap();
            }
        }));
    }

    let reader = {
        let store = s.store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut watermark = 0i64;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while seen.len() < WRITERS * BATCHES * BATCH {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "reader timed out at {} rows",
                    seen.len()
                );
                let query = EventQuery {
                    range: XactRange {
                        after: Some(watermark),
                        upto: None,
                    },
                    limit: Some(37),
                    ..EventQuery::default()
                };
                let rows = store.fetch_events(object, &query).await.unwrap();
                for row in rows {
                    assert!(row.xact_id > watermark);
                    watermark = row.xact_id;
                    seen.push(row.id);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    let seen = reader.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row seen twice");
    assert_eq!(seen.len(), WRITERS * BATCHES * BATCH, "no row skipped");

    // Each batch was published once, after commit, with consecutive numbers.
    let mut ranges = Vec::new();
    while ranges.len() < WRITERS * BATCHES {
        match tokio::time::timeout(Duration::from_secs(5), notifications.recv()).await {
            Ok(Ok(StoreEvent::Events {
                xact_range: Some((a, b)),
                written,
                ..
            })) => {
                assert_eq!((b - a + 1) as usize, written);
                ranges.push((a, b));
            }
            other => panic!("expected an events notification, got {other:?}"),
        }
    }
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[0].1 < w[1].0),
        "ranges do not overlap"
    );
    let total: i64 = ranges.iter().map(|(a, b)| b - a + 1).sum();
    assert_eq!(total as usize, WRITERS * BATCHES * BATCH);
}
