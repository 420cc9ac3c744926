//! The `object-store` capability: writes to the bucket of the automation
//! being run, through a backend the host configured for that call.
//!
//! The plugin never sees credentials or the endpoint: it names keys, the
//! host's [`ObjectStore`] backend (S3 and S3-compatible stores) does the
//! rest. Encoded export batches reach the plugin as a [`Payload`] handle, so
//! their bytes stay in host memory and are uploaded from there.

use crate::plugins::bindings::export::herald::automation::object_store as wit;
use crate::plugins::sandbox::CallState;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Resource;

pub use wit::{ObjectInfo, StoreError};

/// Largest body `put-bytes` accepts from a plugin.
pub const MAX_PUT_BYTES: usize = 8 << 20;

/// Bytes the host prepared for a plugin (e.g. an encoded export batch).
#[derive(Debug, Clone)]
pub struct Payload {
    /// The bytes; cheap to clone.
    pub bytes: bytes::Bytes,
}

/// Where an export call's objects go: one bucket, credentials held here.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes `body` to `key`, replacing what is there.
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: bytes::Bytes,
    ) -> Result<ObjectInfo, StoreError>;
    /// Reads at most `max_bytes` of `key`.
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError>;
    /// Deletes `key`; a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

impl CallState {
    fn object_store(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        self.object_store
            .clone()
            .ok_or_else(|| StoreError::Other("no object store is configured for this call".into()))
    }
}

impl wit::Host for CallState {
    async fn put(
        &mut self,
        key: String,
        content_type: String,
        body: Resource<Payload>,
    ) -> wasmtime::Result<Result<ObjectInfo, StoreError>> {
        let bytes = self.table.get(&body)?.bytes.clone();
        let store = match self.object_store() {
            Ok(store) => store,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let result = store.put(&key, &content_type, bytes).await;
        self.host_time += started.elapsed();
        Ok(result)
    }

    async fn put_bytes(
        &mut self,
        key: String,
        content_type: String,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<ObjectInfo, StoreError>> {
        if body.len() > MAX_PUT_BYTES {
            return Ok(Err(StoreError::Other(format!(
                "put-bytes takes at most {MAX_PUT_BYTES} bytes; got {}",
                body.len()
            ))));
        }
        let store = match self.object_store() {
            Ok(store) => store,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let result = store.put(&key, &content_type, body.into()).await;
        self.host_time += started.elapsed();
        Ok(result)
    }

    async fn get_bytes(
        &mut self,
        key: String,
        max_bytes: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, StoreError>> {
        let store = match self.object_store() {
            Ok(store) => store,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let result = store.get(&key, max_bytes.min(MAX_PUT_BYTES as u64)).await;
        self.host_time += started.elapsed();
        Ok(result)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), StoreError>> {
        let store = match self.object_store() {
            Ok(store) => store,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let result = store.delete(&key).await;
        self.host_time += started.elapsed();
        Ok(result)
    }
}

impl wit::HostPayload for CallState {
    async fn size(&mut self, payload: Resource<Payload>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&payload)?.bytes.len() as u64)
    }

    async fn read(
        &mut self,
        payload: Resource<Payload>,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        let bytes = &self.table.get(&payload)?.bytes;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start.saturating_add(len as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    async fn drop(&mut self, payload: Resource<Payload>) -> wasmtime::Result<()> {
        self.table.delete(payload)?;
        Ok(())
    }
}
