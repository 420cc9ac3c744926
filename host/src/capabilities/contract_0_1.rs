//! The capabilities as `herald:automation@0.1.0` names them, for plugins
//! built against the first contract.
//!
//! The 0.1.0 interfaces have the shapes of the current ones (0.2.0 changed
//! only what plugins export), but bindgen makes them separate traits and
//! types, linked under their own names. Each method here converts its
//! arguments, calls the current implementation on the same state, and
//! converts the answer back (`bindings::between_versions`), so there is one
//! implementation of each capability, whatever contract the plugin speaks.
//! Dropping 0.1.0 support is deleting this module and its linker lines.

use wasmtime::component::Resource;

use super::http::HttpState;
use super::log::LogState;
use super::object_store::{ObjectStoreView, Payload};
use super::records::RecordsState;
use crate::bindings::alert::herald::automation::{http, log};
use crate::bindings::export::herald::automation::object_store;
use crate::bindings::retention::herald::automation::records;
use crate::bindings::v0_1::alert::herald::automation::{
    http as http_0_1, log as log_0_1, types as types_0_1,
};
use crate::bindings::v0_1::export::herald::automation::object_store as object_store_0_1;
use crate::bindings::v0_1::retention::herald::automation::records as records_0_1;

/// A capability answer `Result<T, E>` of the current contract as 0.1.0's.
fn back<T: Into<U>, E: Into<F>, U, F>(
    answer: wasmtime::Result<Result<T, E>>,
) -> wasmtime::Result<Result<U, F>> {
    answer.map(|inner| inner.map(Into::into).map_err(Into::into))
}

impl types_0_1::Host for LogState {}

impl log_0_1::Host for LogState {
    async fn write(&mut self, level: types_0_1::Level, message: String) -> wasmtime::Result<()> {
        log::Host::write(self, level.into(), message).await
    }
}

impl http_0_1::Host for HttpState {
    async fn send(
        &mut self,
        request: http_0_1::Request,
    ) -> wasmtime::Result<Result<http_0_1::Response, http_0_1::HttpError>> {
        back(http::Host::send(self, request.into()).await)
    }
}

impl object_store_0_1::Host for ObjectStoreView<'_> {
    async fn put(
        &mut self,
        key: String,
        content_type: String,
        body: Resource<Payload>,
    ) -> wasmtime::Result<Result<object_store_0_1::ObjectInfo, object_store_0_1::StoreError>> {
        back(object_store::Host::put(self, key, content_type, body).await)
    }

    async fn put_bytes(
        &mut self,
        key: String,
        content_type: String,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<object_store_0_1::ObjectInfo, object_store_0_1::StoreError>> {
        back(object_store::Host::put_bytes(self, key, content_type, body).await)
    }

    async fn get_bytes(
        &mut self,
        key: String,
        max_bytes: u64,
    ) -> wasmtime::Result<Result<Vec<u8>, object_store_0_1::StoreError>> {
        back(object_store::Host::get_bytes(self, key, max_bytes).await)
    }

    async fn delete(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<(), object_store_0_1::StoreError>> {
        back(object_store::Host::delete(self, key).await)
    }
}

impl object_store_0_1::HostPayload for ObjectStoreView<'_> {
    async fn size(&mut self, payload: Resource<Payload>) -> wasmtime::Result<u64> {
        object_store::HostPayload::size(self, payload).await
    }

    async fn read(
        &mut self,
        payload: Resource<Payload>,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        object_store::HostPayload::read(self, payload, offset, len).await
    }

    async fn drop(&mut self, payload: Resource<Payload>) -> wasmtime::Result<()> {
        object_store::HostPayload::drop(self, payload).await
    }
}

impl records_0_1::Host for RecordsState {
    async fn count_older_than(
        &mut self,
        object_type: records_0_1::ObjectType,
        cutoff_ms: i64,
    ) -> wasmtime::Result<Result<records_0_1::Affected, String>> {
        back(records::Host::count_older_than(self, object_type.into(), cutoff_ms).await)
    }

    async fn delete_older_than(
        &mut self,
        object_type: records_0_1::ObjectType,
        cutoff_ms: i64,
        max_rows: u32,
    ) -> wasmtime::Result<Result<u64, String>> {
        back(records::Host::delete_older_than(self, object_type.into(), cutoff_ms, max_rows).await)
    }
}
