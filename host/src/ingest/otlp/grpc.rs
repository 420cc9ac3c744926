//! OTLP over gRPC: the collector's and most SDKs' default transport, on a
//! listener of its own (`otlp_grpc_listen`, off unless set).
//!
//! The `TraceService/Export` RPC takes the same path as OTLP/HTTP: the
//! same API keys (`authorization: Bearer …` metadata, checked by an
//! interceptor before the request is decoded), the same `x-bt-parent`
//! routing and [`super::ingest`], the same partial-success answer. Requests
//! may be gzip-compressed and are capped at [`MAX_MESSAGE_BYTES`]. Errors
//! use the codes OTLP clients act on: `INVALID_ARGUMENT` (not retried) for
//! a request over the span limit, `UNAVAILABLE` (retried) when the
//! database is down, `UNAUTHENTICATED` for a missing or wrong key.

use std::future::Future;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::{IngestError, PARENT_HEADER, ingest};
use crate::store::Store;

/// The largest request accepted (OTLP/gRPC's usual 4 MiB). tonic decodes a
/// message before the service sees it, and an empty span is two bytes on
/// the wire and a few hundred decoded, so this is kept at the default.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Says whether an `authorization` value (`Bearer <key>`) is accepted: the
/// API's own key check, handed in by the daemon's wiring.
pub type Authorize = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The `TraceService` implementation.
struct Traces {
    store: Store,
}

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let parent = request
            .metadata()
            .get(PARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let request = request.into_inner();
        match ingest(&self.store, request, parent.as_deref()).await {
            Ok(outcome) => Ok(Response::new(super::http::response(&outcome))),
            Err(error @ IngestError::TooManySpans(_)) => {
                Err(Status::invalid_argument(error.to_string()))
            }
            Err(IngestError::Store(error)) => {
                tracing::warn!(%error, "OTLP/gRPC export failed to write");
                Err(Status::unavailable(
                    "the database is unavailable; retry later",
                ))
            }
            Err(error @ IngestError::Internal(_)) => {
                tracing::error!(%error, "OTLP/gRPC export failed");
                Err(Status::internal(error.to_string()))
            }
        }
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves (then the
/// listener closes and open calls finish).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    authorize: Authorize,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let value = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match value {
            Some(value) if authorize(value) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid API key")),
            None => Err(Status::unauthenticated(
                "missing API key: send `authorization: Bearer <key>` metadata",
            )),
        }
    };
    let service = TraceServiceServer::new(Traces { store })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "OTLP/gRPC listening on {address}");
    }
    // HTTP/2's default window is 64 KiB a stream: a 500-span export
    // (~600 KB) would wait for a dozen window updates on the way in. One
    // message's worth per stream, two per connection, bounds what a client
    // can have in flight at what the decoder accepts anyway.
    Server::builder()
        .initial_stream_window_size(Some(MAX_MESSAGE_BYTES as u32))
        .initial_connection_window_size(Some(2 * MAX_MESSAGE_BYTES as u32))
        .add_service(InterceptedService::new(service, check))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
