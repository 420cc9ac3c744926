//! OTLP over HTTP: decoding an export request and encoding the answer, as
//! the OTLP/HTTP specification has them. The route itself is the API's
//! (`crate::api::otlp`), so it sits behind the same key check and body
//! limit as every other route.
//!
//! * Bodies are `application/x-protobuf` (or `application/protobuf`) or
//!   `application/json` (OTLP/JSON: hex ids, lowerCamelCase names), plain or
//!   `Content-Encoding: gzip`; anything else is `415`.
//! * A gzip body is inflated up to the same size limit as a plain one, so a
//!   small bomb cannot grow past it (`413`).
//! * The answer is in the request's encoding: `ExportTraceServiceResponse`,
//!   with `partial_success` when spans were rejected; errors are a
//!   `google.rpc.Status` (`code`, `message`) in that encoding, `400` for a
//!   malformed body, `503` when the database is unavailable (retryable).

use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::IngestOutcome;

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Protocol buffers.
    Protobuf,
    /// OTLP/JSON.
    Json,
}

impl Encoding {
    /// The `Content-Type` of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// The encoding a `Content-Type` names, if it is one of OTLP's.
    pub fn of(content_type: Option<&str>) -> Option<Encoding> {
        let essence = content_type?.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }
}

/// Why a request could not be decoded, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not an OTLP content type (`415`).
    #[error("unsupported content type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedType(String),
    /// A `Content-Encoding` other than gzip or identity (`415`).
    #[error("unsupported content encoding {0:?}: send gzip or no encoding")]
    UnsupportedEncoding(String),
    /// The inflated body is over the limit (`413`).
    #[error("the request body inflates to more than {0} bytes")]
    TooLarge(usize),
    /// The body is not a valid export request (`400`).
    #[error("malformed OTLP {encoding} body: {message}")]
    Malformed {
        /// `protobuf` or `JSON`.
        encoding: &'static str,
        /// What the decoder said.
        message: String,
    },
}

impl DecodeError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            DecodeError::UnsupportedType(_) | DecodeError::UnsupportedEncoding(_) => 415,
            DecodeError::TooLarge(_) => 413,
            DecodeError::Malformed { .. } => 400,
        }
    }
}

/// Decodes an export request from its body and headers; `limit` caps the
/// inflated size.
pub fn decode(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<(ExportTraceServiceRequest, Encoding), DecodeError> {
    let encoding = Encoding::of(content_type)
        .ok_or_else(|| DecodeError::UnsupportedType(content_type.unwrap_or("").to_string()))?;
    let inflated;
    let bytes = match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => body,
        Some(e) if e.is_empty() || e == "identity" => body,
        Some(e) if e == "gzip" => {
            inflated = gunzip(body, limit)?;
            &inflated
        }
        Some(other) => return Err(DecodeError::UnsupportedEncoding(other)),
    };
    if encoding == Encoding::Json && bytes.len() > MAX_JSON_BYTES {
        return Err(DecodeError::TooLarge(MAX_JSON_BYTES));
    }
    if encoding == Encoding::Protobuf {
        // Counted on the wire, before decoding: an empty span is two bytes
        // there and a few hundred decoded.
        let spans = count_spans(bytes).map_err(|message| DecodeError::Malformed {
            encoding: "protobuf",
            message,
        })?;
        if spans > super::MAX_SPANS_PER_REQUEST {
            return Err(DecodeError::Malformed {
                encoding: "protobuf",
                message: format!(
                    "{spans} spans in one request; the limit is {}",
                    super::MAX_SPANS_PER_REQUEST
                ),
            });
        }
    }
    let request = match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(bytes).map_err(|e| DecodeError::Malformed {
                encoding: "protobuf",
                message: e.to_string(),
            })?
        }
        Encoding::Json => decode_json(bytes)?,
    };
    Ok((request, encoding))
}

/// OTLP/JSON, strictly as the specification has it, or else with enum
/// names (`"kind": "SPAN_KIND_CLIENT"`) read as their numbers: the spec
/// forbids names, but protobuf's own JSON printer writes them by default.
fn decode_json(bytes: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    let malformed = |e: serde_json::Error| DecodeError::Malformed {
        encoding: "JSON",
        message: e.to_string(),
    };
    let strict = match serde_json::from_slice(bytes) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
    let mut renamed = false;
    let spans = value
        .get_mut("resourceSpans")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten()
        .filter_map(|r| r.get_mut("scopeSpans").and_then(|v| v.as_array_mut()))
        .flatten()
        .filter_map(|s| s.get_mut("spans").and_then(|v| v.as_array_mut()))
        .flatten();
    for span in spans {
        if let Some(kind) = span.get("kind").and_then(|k| k.as_str())
            && let Some(number) = SpanKind::from_str_name(kind)
        {
            span["kind"] = (number as i32).into();
            renamed = true;
        }
        if let Some(status) = span.get_mut("status")
            && let Some(code) = status.get("code").and_then(|c| c.as_str())
            && let Some(number) = StatusCode::from_str_name(code)
        {
            status["code"] = (number as i32).into();
            renamed = true;
        }
    }
    if !renamed {
        return Err(malformed(strict));
    }
    serde_json::from_value(value).map_err(malformed)
}

/// The largest OTLP/JSON body, inflated: JSON spans can be a few bytes
/// each, and each decodes to a few hundred, so JSON gets a tighter limit
/// than protobuf (whose spans are counted before decoding).
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Counts the spans of an `ExportTraceServiceRequest` on the wire
/// (`resource_spans` = 1 → `scope_spans` = 2 → `spans` = 2), without
/// decoding them.
fn count_spans(bytes: &[u8]) -> Result<usize, String> {
    fn fields(
        mut buf: &[u8],
        mut each: impl FnMut(u32, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        use prost::encoding::{WireType, decode_key, decode_varint};
        while !buf.is_empty() {
            let (tag, wire) = decode_key(&mut buf).map_err(|e| e.to_string())?;
            match wire {
                WireType::Varint => {
                    decode_varint(&mut buf).map_err(|e| e.to_string())?;
                }
                WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                    let n = if wire == WireType::SixtyFourBit { 8 } else { 4 };
                    buf = buf.get(n..).ok_or("truncated field")?;
                }
                WireType::LengthDelimited => {
                    let len = decode_varint(&mut buf).map_err(|e| e.to_string())? as usize;
                    let body = buf.get(..len).ok_or("truncated field")?;
                    each(tag, body)?;
                    buf = &buf[len..];
                }
                _ => return Err("groups are not valid in OTLP".into()),
            }
        }
        Ok(())
    }
    let mut spans = 0;
    fields(bytes, |tag, resource| {
        if tag != 1 {
            return Ok(());
        }
        fields(resource, |tag, scope| {
            if tag != 2 {
                return Ok(());
            }
            fields(scope, |tag, _| {
                spans += usize::from(tag == 2);
                Ok(())
            })
        })
    })?;
    Ok(spans)
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Malformed {
            encoding: "gzip",
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(out)
}

/// The answer to an export that was processed.
pub fn response(outcome: &IngestOutcome) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (outcome.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: outcome.rejected as i64,
            error_message: outcome.error_message.clone(),
        }),
    }
}

/// `response` encoded as `encoding`.
pub fn encode_response(outcome: &IngestOutcome, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => response(outcome).encode_to_vec(),
        // By hand: the crate's serializer writes `"partialSuccess": null`
        // where OTLP/JSON leaves an unset field out, and OTLP/JSON writes
        // int64 as a string.
        Encoding::Json => {
            let body = match (outcome.rejected, outcome.error_message.as_str()) {
                (0, "") => serde_json::json!({}),
                (rejected, message) => serde_json::json!({"partialSuccess": {
                    "rejectedSpans": rejected.to_string(), "errorMessage": message}}),
            };
            body.to_string().into_bytes()
        }
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP's error answers (its
/// `details` are never sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// An error answer's body: `google.rpc.Status` in `encoding`, with the
/// gRPC code matching `http_status`.
pub fn encode_error(http_status: u16, message: &str, encoding: Encoding) -> Vec<u8> {
    let code = match http_status {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    };
    match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => {
            serde_json::to_vec(&serde_json::json!({"code": code, "message": message}))
                .unwrap_or_default()
        }
    }
}
