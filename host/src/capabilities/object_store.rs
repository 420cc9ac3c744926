//! The `object-store` capability: writes to the bucket of the automation
//! being run, through a backend the host configured for that call.
//!
//! The plugin never sees credentials or the endpoint: it names keys, the
//! host's [`ObjectStore`] backend (S3 and S3-compatible stores) does the
//! rest. Encoded export batches reach the plugin as a [`Payload`] handle, so
//! their bytes stay in host memory and are uploaded from there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Resource, ResourceTable};

pub use crate::bindings::Payload;
use crate::bindings::export::herald::automation::object_store as wit;
pub use wit::{ObjectInfo, StoreError};

/// Largest body `put-bytes` accepts from a plugin.
pub const MAX_PUT_BYTES: usize = 8 << 20;

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

/// The `object-store` capability's state for one call.
#[derive(Default)]
pub struct ObjectStoreState {
    /// The automation's bucket, when the call was granted one.
    pub store: Option<Arc<dyn ObjectStore>>,
    /// Time spent in the backend (not charged to the guest's CPU budget).
    pub host_time: Duration,
}

/// What the capability works on: its state and the call's resource table,
/// where the [`Payload`]s handed to the plugin live (the table is shared
/// with WASI, so it is lent rather than owned; as `WasiCtxView` does).
pub struct ObjectStoreView<'a> {
    /// The capability's own state.
    pub state: &'a mut ObjectStoreState,
    /// The call's resource table.
    pub table: &'a mut ResourceTable,
}

/// Links the capability by projection: `add_to_linker::<_, ObjectStoreCapability>`.
pub struct ObjectStoreCapability;

impl HasData for ObjectStoreCapability {
    type Data<'a> = ObjectStoreView<'a>;
}

impl ObjectStoreView<'_> {
    fn object_store(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        self.state
            .store
            .clone()
            .ok_or_else(|| StoreError::Other("no object store is configured for this call".into()))
    }
}

impl wit::Host for ObjectStoreView<'_> {
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
        self.state.host_time += started.elapsed();
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
        self.state.host_time += started.elapsed();
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
        self.state.host_time += started.elapsed();
        Ok(result)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), StoreError>> {
        let store = match self.object_store() {
            Ok(store) => store,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let result = store.delete(&key).await;
        self.state.host_time += started.elapsed();
        Ok(result)
    }
}

impl wit::HostPayload for ObjectStoreView<'_> {
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
