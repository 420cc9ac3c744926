//! The destination check: write a small object, read it back, delete it.
//!
//! The steps run against [`CheckStore`] rather than the capability directly
//! so the sequence and its messages are tested natively with a fake store.
//! The check stops at the first failed step and returns the steps so far:
//! a later step could not tell the operator anything new.

use herald_plugin::export::CheckStep;
use herald_plugin::export::object_store::{self, StoreError};

/// What the check writes: short, and saying what it is to whoever finds it.
pub(crate) const CONTENT: &[u8] =
    b"Herald export destination check: written, read back and deleted by Herald.\n";

/// The check object's content type.
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The object operations the check needs.
pub(crate) trait CheckStore {
    /// Writes `body` at `key`.
    fn put_bytes(&mut self, key: &str, content_type: &str, body: &[u8]) -> Result<(), StoreError>;
    /// Reads at most `max_bytes` from `key`.
    fn get_bytes(&mut self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError>;
    /// Deletes `key`.
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// The host's object-store capability.
pub(crate) struct HostStore;

impl CheckStore for HostStore {
    fn put_bytes(&mut self, key: &str, content_type: &str, body: &[u8]) -> Result<(), StoreError> {
        object_store::put_bytes(key, content_type, body).map(|_| ())
    }

    fn get_bytes(&mut self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        object_store::get_bytes(key, max_bytes)
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        object_store::delete(key)
    }
}

/// Runs the write, read and delete steps on `key`, stopping at the first
/// failure.
pub(crate) fn run(store: &mut impl CheckStore, key: &str) -> Vec<CheckStep> {
    let mut steps = Vec::with_capacity(3);

    if let Err(error) = store.put_bytes(key, CONTENT_TYPE, CONTENT) {
        steps.push(CheckStep::failed(
            "write",
            format!("could not write s3 key {key}: {error}"),
        ));
        return steps;
    }
    steps.push(CheckStep::passed(
        "write",
        format!("wrote s3 key {key} ({} bytes)", CONTENT.len()),
    ));

    // Room for more than was written, so a longer object shows as a
    // mismatch rather than as a read error.
    match store.get_bytes(key, 2 * CONTENT.len() as u64) {
        Ok(read) if read == CONTENT => steps.push(CheckStep::passed(
            "read",
            format!("read s3 key {key} back: the content matches"),
        )),
        Ok(read) => {
            steps.push(CheckStep::failed(
                "read",
                format!(
                    "read s3 key {key} back but got different content ({} bytes instead of the {} written)",
                    read.len(),
                    CONTENT.len()
                ),
            ));
            return steps;
        }
        Err(error) => {
            steps.push(CheckStep::failed(
                "read",
                format!("could not read s3 key {key}: {error}"),
            ));
            return steps;
        }
    }

    match store.delete(key) {
        Ok(()) => steps.push(CheckStep::passed("delete", format!("deleted s3 key {key}"))),
        Err(error) => steps.push(CheckStep::failed(
            "delete",
            format!("could not delete s3 key {key}: {error}"),
        )),
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An in-memory store that can be told to fail one operation.
    #[derive(Default)]
    struct FakeStore {
        objects: HashMap<String, Vec<u8>>,
        fail_put: Option<StoreError>,
        fail_get: Option<StoreError>,
        fail_delete: Option<StoreError>,
        corrupt: bool,
        calls: Vec<&'static str>,
    }

    impl CheckStore for FakeStore {
        fn put_bytes(&mut self, key: &str, _: &str, body: &[u8]) -> Result<(), StoreError> {
            self.calls.push("put");
            if let Some(error) = self.fail_put.take() {
                return Err(error);
            }
            let mut body = body.to_vec();
            if self.corrupt {
                body.push(b'!');
            }
            self.objects.insert(key.to_owned(), body);
            Ok(())
        }

        fn get_bytes(&mut self, key: &str, _: u64) -> Result<Vec<u8>, StoreError> {
            self.calls.push("get");
            if let Some(error) = self.fail_get.take() {
                return Err(error);
            }
            self.objects
                .get(key)
                .cloned()
                .ok_or_else(|| StoreError::NotFound(key.to_owned()))
        }

        fn delete(&mut self, key: &str) -> Result<(), StoreError> {
            self.calls.push("delete");
            if let Some(error) = self.fail_delete.take() {
                return Err(error);
            }
            self.objects.remove(key);
            Ok(())
        }
    }

    fn summary(steps: &[CheckStep]) -> Vec<(&str, bool)> {
        steps.iter().map(|s| (s.step.as_str(), s.ok)).collect()
    }

    #[test]
    fn a_working_store_passes_every_step_and_is_left_clean() {
        let mut store = FakeStore::default();
        let steps = run(&mut store, "p/_herald_check/destination-check.txt");
        assert_eq!(
            summary(&steps),
            [("write", true), ("read", true), ("delete", true)]
        );
        assert!(store.objects.is_empty());
        assert_eq!(
            steps[0].message,
            format!(
                "wrote s3 key p/_herald_check/destination-check.txt ({} bytes)",
                CONTENT.len()
            )
        );
    }

    #[test]
    fn a_refused_write_stops_the_check_with_the_stores_words() {
        let mut store = FakeStore {
            fail_put: Some(StoreError::AccessDenied("not allowed to PutObject".into())),
            ..FakeStore::default()
        };
        let steps = run(&mut store, "k");
        assert_eq!(summary(&steps), [("write", false)]);
        assert_eq!(
            steps[0].message,
            "could not write s3 key k: access denied: not allowed to PutObject"
        );
        assert_eq!(store.calls, ["put"]);
    }

    #[test]
    fn a_read_error_or_mismatch_fails_the_read_step() {
        let mut store = FakeStore {
            fail_get: Some(StoreError::Unreachable("connection reset".into())),
            ..FakeStore::default()
        };
        let steps = run(&mut store, "k");
        assert_eq!(summary(&steps), [("write", true), ("read", false)]);
        assert_eq!(
            steps[1].message,
            "could not read s3 key k: the store could not be reached: connection reset"
        );

        let mut store = FakeStore {
            corrupt: true,
            ..FakeStore::default()
        };
        let steps = run(&mut store, "k");
        assert_eq!(summary(&steps), [("write", true), ("read", false)]);
        assert!(steps[1].message.contains("different content"));
        assert_eq!(store.calls, ["put", "get"]);
    }

    #[test]
    fn a_failed_delete_is_the_last_step() {
        let mut store = FakeStore {
            fail_delete: Some(StoreError::Other(String::new())),
            ..FakeStore::default()
        };
        let steps = run(&mut store, "k");
        assert_eq!(
            summary(&steps),
            [("write", true), ("read", true), ("delete", false)]
        );
        assert_eq!(
            steps[2].message,
            "could not delete s3 key k: the store failed"
        );
    }
}
