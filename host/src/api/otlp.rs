//! `POST /otel/v1/traces` and `POST /v1/traces`: OpenTelemetry traces over
//! OTLP/HTTP (Braintrust's path and the collector's default), decoded and
//! answered by [`crate::ingest::otlp::http`], written by
//! [`crate::ingest::otlp::ingest`]. Behind the same key check and body
//! limit as every route; the project comes from `x-bt-parent` or the
//! spans' `braintrust.parent` attribute.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::ingest::otlp::http::{Encoding, decode, encode_error, encode_response};
use crate::ingest::otlp::{IngestError, PARENT_HEADER, ingest};

/// Export spans (OTLP/HTTP, protobuf or JSON, optionally gzip).
#[utoipa::path(post, path = "/otel/v1/traces", tag = "otlp",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf",
                 description = "An OTLP ExportTraceServiceRequest (or application/json)"),
    responses((status = 200, description = "ExportTraceServiceResponse, with partial_success when spans were rejected"),
              (status = 400, description = "Malformed body (google.rpc.Status)"),
              (status = 413, description = "Body too large"),
              (status = 415, description = "Not protobuf or JSON")))]
pub async fn export_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    export(&state, &headers, body).await
}

/// Export spans at the collector's default path (same as `/otel/v1/traces`).
#[utoipa::path(post, path = "/v1/traces", tag = "otlp",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf"),
    responses((status = 200, description = "ExportTraceServiceResponse")))]
pub async fn export_traces_default_path(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    export(&state, &headers, body).await
}

async fn export(state: &AppState, headers: &HeaderMap, body: Bytes) -> Response {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = text(header::CONTENT_TYPE);
    // Errors before the encoding is known are answered in JSON.
    let encoding = Encoding::of(content_type.as_deref()).unwrap_or(Encoding::Json);
    let content_encoding = text(header::CONTENT_ENCODING);
    let limit = state.limits.max_body_bytes;
    // Decoding (and inflating) a body is CPU work proportional to its
    // size: on a blocking thread, as the mapping is, so the runtime
    // threads keep serving the other connections meanwhile.
    let decoded = tokio::task::spawn_blocking(move || {
        decode(
            content_type.as_deref(),
            content_encoding.as_deref(),
            &body,
            limit,
        )
    })
    .await;
    let (request, encoding) = match decoded {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(error)) => return answer_error(error.status(), &error.to_string(), encoding),
        Err(_) => {
            tracing::error!("OTLP export failed: decoding the body panicked");
            return answer_error(500, "internal error while decoding the body", encoding);
        }
    };
    let parent = headers.get(PARENT_HEADER).and_then(|v| v.to_str().ok());
    match ingest(&state.store, request, parent).await {
        Ok(outcome) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoding.content_type())],
            encode_response(&outcome, encoding),
        )
            .into_response(),
        Err(error @ IngestError::TooManySpans(_)) => {
            answer_error(400, &error.to_string(), encoding)
        }
        Err(IngestError::Store(error)) => {
            tracing::warn!(%error, "OTLP export failed to write");
            answer_error(503, "the database is unavailable; retry later", encoding)
        }
        Err(error @ IngestError::Internal(_)) => {
            tracing::error!(%error, "OTLP export failed");
            answer_error(500, &error.to_string(), encoding)
        }
    }
}

fn answer_error(status: u16, message: &str, encoding: Encoding) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        encode_error(status.as_u16(), message, encoding),
    )
        .into_response()
}
