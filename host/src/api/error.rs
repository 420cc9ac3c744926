//! API errors: one type, one JSON shape, stable codes.
//!
//! Every error response is `{"error": {"code": "…", "message": "…", "path":
//! "…"}}` with the HTTP status of its kind. `code` is a stable machine
//! string; `path` names the offending request field where there is one,
//! always in the form `events[3].scores.accuracy` (dots for keys, brackets for
//! indexes and for keys that are not plain identifiers). Internal errors are
//! logged with their cause and answered with a generic message, so database
//! details never leak to clients.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::filter::FilterError;
use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is invalid (400).
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `invalid_json`, `invalid_field`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
        /// The offending field, if any.
        path: Option<String>,
    },
    /// Missing or wrong API key (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The object does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing data (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Anything else (500); the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 400 with a code, a message and optionally a field path.
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        path: Option<String>,
    ) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            path,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The details of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `invalid_json`, `invalid_request`,
    /// `invalid_field`, `invalid_filter`, `invalid_id`, `unauthorized`,
    /// `not_found`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `internal`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The offending field, e.g. `events[3].scores.accuracy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(
                error = format!("{cause:#}"),
                "internal error answering a request"
            );
        }
        let path = match &self {
            ApiError::BadRequest { path, .. } => path.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.to_string(),
                path,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => ApiError::NotFound(err.to_string()),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::Invalid(v) => ApiError::BadRequest {
                code: "invalid_field",
                message: v.message,
                path: Some(v.path),
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    /// A filter error at request field `path`.
    pub fn filter(err: FilterError, path: &str) -> Self {
        ApiError::BadRequest {
            code: "invalid_filter",
            message: format!("invalid filter: {err}"),
            path: Some(path.to_string()),
        }
    }
}
