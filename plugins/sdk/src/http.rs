//! Outbound HTTP through the host (the `http` capability).
//!
//! The host enforces the operator's allow-list for this plugin, refuses
//! private addresses unless allowed, does not follow redirects, caps
//! response sizes and times requests out (10 s unless the operator says
//! otherwise). [`retryable_status`] is the classification every Herald
//! destination uses.

use crate::__bindings::alert_world::herald::automation::http as wit;
use crate::PluginError;

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

/// An outbound request, built fluently.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
}

impl Request {
    /// A request with `method` to `url`.
    pub fn new(method: Method, url: &str) -> Self {
        Self {
            method,
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A POST to `url`.
    pub fn post(url: &str) -> Self {
        Self::new(Method::Post, url)
    }

    /// A GET of `url`.
    pub fn get(url: &str) -> Self {
        Self::new(Method::Get, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string().into_bytes())
    }

    /// Sets the timeout (capped by the operator's limit).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request through the host and waits for the response.
    pub fn send(self) -> Result<Response, HttpError> {
        let method = match self.method {
            Method::Get => wit::Method::Get,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
            Method::Head => wit::Method::Head,
        };
        let request = wit::Request {
            method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        };
        match wit::send(&request) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(e) => Err(match e {
                wit::HttpError::HostNotAllowed(m) => HttpError::HostNotAllowed(m),
                wit::HttpError::PrivateAddress(m) => HttpError::PrivateAddress(m),
                wit::HttpError::InvalidRequest(m) => HttpError::InvalidRequest(m),
                wit::HttpError::Timeout => HttpError::Timeout,
                wit::HttpError::Connection(m) => HttpError::Connection(m),
                wit::HttpError::ResponseTooLarge(n) => HttpError::ResponseTooLarge(n),
            }),
        }
    }
}

/// A response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first `max` bytes of the body as (lossy) text.
    pub fn excerpt(&self, max: usize) -> String {
        let end = self.body.len().min(max);
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }

    /// `Retry-After` in milliseconds, when it is given in seconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.header("retry-after")?
            .trim()
            .parse::<u64>()
            .ok()
            .map(|s| s.saturating_mul(1000))
    }

    /// The usual mapping for a delivery: 2xx is a [`crate::alert::Delivery`],
    /// anything else an error, retryable per [`retryable_status`]. `target`
    /// names the destination in messages (never include secrets in it).
    #[cfg(feature = "alert")]
    pub fn into_delivery(self, target: &str) -> Result<crate::alert::Delivery, PluginError> {
        let excerpt = self.excerpt(512);
        if (200..300).contains(&self.status) {
            Ok(crate::alert::Delivery {
                status_code: Some(self.status),
                response_excerpt: Some(excerpt),
                summary: format!("delivered to {target} ({})", self.status),
            })
        } else {
            let message = format!("{target} answered {}: {}", self.status, excerpt.trim());
            let error = if retryable_status(self.status) {
                PluginError::retryable(message)
            } else {
                PluginError::permanent(message)
            };
            Err(error
                .with_retry_after_ms(self.retry_after_ms())
                .with_status_code(self.status))
        }
    }
}

/// The host of `url`, for messages and summaries: never the path, query or
/// user info, which may hold tokens.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_owned()
}

/// Whether a delivery answered with `status` is worth retrying: 408, 429 and
/// every 5xx are; every other status is final.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host is not on this plugin's allow-list.
    HostNotAllowed(String),
    /// The host resolves to a private address, and those are not allowed.
    PrivateAddress(String),
    /// Bad URL, scheme or header.
    InvalidRequest(String),
    /// No response in time.
    Timeout,
    /// DNS, connect, TLS or reset.
    Connection(String),
    /// The response exceeded the cap (bytes).
    ResponseTooLarge(u64),
}

impl HttpError {
    /// Whether a retry could help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HttpError::Timeout | HttpError::Connection(_))
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::HostNotAllowed(m) => write!(f, "host not allowed: {m}"),
            HttpError::PrivateAddress(m) => write!(f, "private address refused: {m}"),
            HttpError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpError::Timeout => f.write_str("request timed out"),
            HttpError::Connection(m) => write!(f, "connection failed: {m}"),
            HttpError::ResponseTooLarge(n) => write!(f, "response larger than {n} bytes"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for PluginError {
    fn from(error: HttpError) -> Self {
        let retryable = error.is_retryable();
        PluginError {
            message: error.to_string(),
            retryable,
            retry_after_ms: None,
            status_code: None,
        }
    }
}
