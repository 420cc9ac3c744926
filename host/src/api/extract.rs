//! Request extractors with Herald's error shape.
//!
//! axum's own `Json`, `Query` and `Path` rejections answer in plain text
//! with wording meant for Rust developers; these wrappers answer with an
//! [`ApiError`] that says what is wrong and at which field, using
//! `serde_path_to_error` for the path (`events[3].created`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON request body that may be empty.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

/// Reads the body within the configured size limit, checking that it is
/// declared as JSON (or not declared at all).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let ok = content_type
                .to_str()
                .map(|ct| {
                    let essence = ct
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    essence == "application/json" || essence.ends_with("+json")
                })
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::UnsupportedMediaType(
                    "the request body must be JSON (Content-Type: application/json)".into(),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge("the request body is larger than allowed".into())
                }
                other => ApiError::bad_request("invalid_body", other.body_text(), None),
            })?;
        Ok(bytes)
    }
}

/// Parses a JSON document into `T`, with positioned syntax errors and field
/// paths for type errors.
///
/// An integer beyond 64 bits, which serde_json would round to a float, is
/// refused with its path (see [`super::exact_numbers`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let parsed = parse_json_as_is(bytes)?;
    if let Some((path, literal)) = super::exact_numbers::inexact_integer(bytes) {
        let shown: String = literal.chars().take(40).collect();
        let more = if literal.len() > shown.len() {
            "…"
        } else {
            ""
        };
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "the integer {shown}{more} does not fit in 64 bits and would lose digits; send it \
                 as a string"
            ),
            (!path.is_empty()).then_some(path),
        ));
    }
    Ok(parsed)
}

fn parse_json_as_is<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| (err.path().to_string(), err.into_inner()))
        .and_then(|v| de.end().map(|()| v).map_err(|e| (String::new(), e)));
    value.map_err(|(path, inner)| {
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                "invalid_json",
                format!(
                    "malformed JSON at line {}, column {}: {}",
                    inner.line(),
                    inner.column(),
                    syntax_message(&inner)
                ),
                None,
            ),
            Category::Data => ApiError::bad_request(
                "invalid_request",
                data_message(&inner),
                (path != "." && !path.is_empty()).then_some(path),
            ),
        }
    })
}

/// serde_json's message without its " at line L column C" suffix.
fn syntax_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn data_message(err: &serde_json::Error) -> String {
    syntax_message(err)
}

/// Query-string parameters.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|err| {
                let path = err.path().to_string();
                ApiError::bad_request(
                    "invalid_request",
                    format!("invalid query parameter: {}", err.into_inner()),
                    (path != ".").then_some(path),
                )
            })
    }
}

/// A list's `limit` query parameter.
pub fn parse_limit(value: &str) -> Result<u32, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_request",
            format!("limit must be a positive integer, got {value:?}"),
            Some("limit".into()),
        )
    })
}

/// Adds the ids of one `ids` query parameter (comma-separated; the
/// parameter may repeat) to `ids`.
pub fn push_ids(value: &str, ids: &mut Vec<Uuid>) -> Result<(), ApiError> {
    for id in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        ids.push(parse_id(id, "ids")?);
    }
    Ok(())
}

/// Parses a path segment as an object id.
pub fn parse_id(value: &str, name: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{name} must be a UUID, got {value:?}"),
            Some(name.to_string()),
        )
    })
}
