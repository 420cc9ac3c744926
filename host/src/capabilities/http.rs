//! The `http` capability: outbound HTTP made by the host for a plugin.
//!
//! The plugin has no sockets; it asks the host, and the host applies the
//! operator's rules: the plugin's allow-list ([`HostAllowList`]), the
//! private-address guard ([`GuardedResolver`]), a timeout cap, a request
//! size cap and a response size cap enforced while streaming, so a huge
//! answer is cut off without being buffered. Redirects are not followed
//! (a redirect could lead past the allow-list) and proxies from the
//! environment are ignored (they would bypass the address guard).

use super::net_guard::{BlockedAddress, GuardedResolver, HostAllowList, non_public_reason};
use crate::bindings::alert::herald::automation::http as wit;
use futures::StreamExt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Limits that apply to every request of one plugin.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Hosts the plugin may reach.
    pub allowed_hosts: HostAllowList,
    /// Longest a request may take; a plugin may ask for less.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: u64,
}

/// The shared HTTP client (one connection pool for all plugins).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpClient {
    /// Builds the client; `allow_private` turns the address guard off.
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(allow_private))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// Sends `request` under `limits`. The error is what the plugin sees.
    pub async fn send(
        &self,
        limits: &HttpLimits,
        request: wit::Request,
    ) -> Result<wit::Response, wit::HttpError> {
        use wit::HttpError;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "scheme `{}` is not allowed; use http or https",
                url.scheme()
            )));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(HttpError::InvalidRequest("URL has no host".into())),
        };
        if !limits.allowed_hosts.allows(&host) {
            return Err(HttpError::HostNotAllowed(host));
        }
        // IP literals never reach the resolver; check them here.
        if let Ok(ip) = host.parse::<IpAddr>()
            && let (Some(reason), false) = (non_public_reason(ip), self.allow_private)
        {
            return Err(HttpError::PrivateAddress(format!(
                "{host} is a {reason} address"
            )));
        }
        let body_len = request.body.as_ref().map_or(0, |b| b.len() as u64);
        if body_len > limits.max_request_bytes {
            return Err(HttpError::InvalidRequest(format!(
                "request body of {body_len} bytes exceeds the {} byte limit",
                limits.max_request_bytes
            )));
        }

        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()).min(limits.timeout))
            .unwrap_or(limits.timeout);
        let mut builder = self
            .client
            .request(method(request.method), url)
            .timeout(timeout);
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding"
            ) {
                return Err(HttpError::InvalidRequest(format!(
                    "header `{name}` is set by the host"
                )));
            }
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name `{name}`")))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header `{name}`")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }

        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > limits.max_response_bytes)
        {
            return Err(HttpError::ResponseTooLarge(limits.max_response_bytes));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport_error)?;
            if body.len() as u64 + chunk.len() as u64 > limits.max_response_bytes {
                return Err(HttpError::ResponseTooLarge(limits.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(wit::Response {
            status,
            headers,
            body,
        })
    }
}

fn method(method: wit::Method) -> reqwest::Method {
    match method {
        wit::Method::Get => reqwest::Method::GET,
        wit::Method::Post => reqwest::Method::POST,
        wit::Method::Put => reqwest::Method::PUT,
        wit::Method::Patch => reqwest::Method::PATCH,
        wit::Method::Delete => reqwest::Method::DELETE,
        wit::Method::Head => reqwest::Method::HEAD,
    }
}

/// Maps a reqwest failure to what the plugin sees, finding the address
/// guard's refusal in the error chain.
fn transport_error(error: reqwest::Error) -> wit::HttpError {
    // The URL may carry a token in its path or query: never put it in a message.
    let error = error.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<BlockedAddress>() {
            return wit::HttpError::PrivateAddress(blocked.to_string());
        }
        source = err.source();
    }
    if error.is_timeout() {
        return wit::HttpError::Timeout;
    }
    // The chain's innermost message is the useful one ("Connection refused").
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(err) = source {
        message = err.to_string();
        source = err.source();
    }
    wit::HttpError::Connection(message)
}

/// The `http` capability's state for one call.
#[derive(Debug, Default)]
pub struct HttpState {
    /// What the call may reach, when it was granted network access.
    pub grant: Option<HttpGrant>,
    /// The first host the guard refused, for the call's error.
    pub denied_host: Option<String>,
    /// The status of the last answer the plugin received: a 0.1.0 plugin's
    /// failure has no status code of its own, so the host reports this one.
    pub last_status: Option<u16>,
    /// Time spent waiting on requests (not charged to the guest's CPU
    /// budget).
    pub host_time: Duration,
}

impl wit::Host for HttpState {
    async fn send(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        let Some(grant) = self.grant.clone() else {
            return Ok(Err(wit::HttpError::HostNotAllowed(
                "this call has no network access".into(),
            )));
        };
        let started = Instant::now();
        let recorded = grant.sent.as_ref().map(|_| SentRequest {
            method: format!("{:?}", request.method).to_uppercase(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request
                .body
                .as_deref()
                .map(|b| excerpt(b, SENT_BODY_EXCERPT))
                .unwrap_or_default(),
            outcome: String::new(),
            response_excerpt: String::new(),
        });
        let result = grant.client.send(&grant.limits, request).await;
        self.host_time += started.elapsed();
        if let (Some(log), Some(mut entry)) = (&grant.sent, recorded) {
            match &result {
                Ok(response) => {
                    entry.outcome = response.status.to_string();
                    entry.response_excerpt = excerpt(&response.body, 2_048);
                }
                Err(error) => entry.outcome = format!("{error:?}"),
            }
            log.lock().push(entry);
        }
        match &result {
            Ok(response) => self.last_status = Some(response.status),
            Err(wit::HttpError::HostNotAllowed(host) | wit::HttpError::PrivateAddress(host)) => {
                self.denied_host.get_or_insert_with(|| host.clone());
            }
            Err(_) => {}
        }
        Ok(result)
    }
}

/// What one call may do over HTTP: the shared client and the plugin's limits.
#[derive(Debug, Clone)]
pub struct HttpGrant {
    /// The shared client.
    pub client: HttpClient,
    /// This plugin's limits.
    pub limits: std::sync::Arc<HttpLimits>,
    /// Where to record each request and its outcome (`herald plugins
    /// test`); `None` in the daemon.
    pub sent: Option<SentLog>,
}

/// The requests a plugin made, as `herald plugins test` prints them.
pub type SentLog = std::sync::Arc<parking_lot::Mutex<Vec<SentRequest>>>;

/// One request a plugin made and what came of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SentRequest {
    /// `POST`, `GET`…
    pub method: String,
    /// The URL.
    pub url: String,
    /// The headers the plugin set.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), at most [`SENT_BODY_EXCERPT`] bytes.
    pub body: String,
    /// The response status, or the error in words.
    pub outcome: String,
    /// The start of the response body.
    pub response_excerpt: String,
}

/// How much of a recorded body is kept.
pub const SENT_BODY_EXCERPT: usize = 16 << 10;

fn excerpt(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}
