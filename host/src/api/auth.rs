//! API keys and the bearer-token check.
//!
//! Every route except `GET /healthz` requires `Authorization: Bearer <key>`.
//! Keys come from the configuration (or `HERALD_API_KEYS`, comma-separated,
//! which the caller parses with [`ApiKeys::parse_list`]); when none is
//! configured, [`ApiKeys::load_or_generate`] reads the key stored in the data
//! directory or generates one on first start and stores it there (mode
//! 0600), telling the caller to print it once. Keys are kept as SHA-256
//! digests and compared in constant time.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// The file in the data directory that holds the generated key.
pub const KEY_FILE: &str = "api-key";

/// The set of accepted API keys.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Arc<Vec<[u8; 32]>>,
    /// The deployment's identity salt ([`ApiKeys::with_identity_salt`]).
    identity: Option<Arc<ring::hmac::Key>>,
}

/// Who made a request: a stable id of its API key, an HMAC of the key
/// under the deployment's identity salt (never the key, and not guessable
/// without the salt, which is sealed in the database). Set on every
/// authenticated request; it is an automation's `user_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyIdentity(pub uuid::Uuid);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Accepts exactly these keys (blank entries are ignored).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(keys: I) -> Self {
        let digests = keys
            .into_iter()
            .map(|k| k.as_ref().trim().to_string())
            .filter(|k| !k.is_empty())
            .map(|k| digest(&k))
            .collect();
        Self {
            digests: Arc::new(digests),
            identity: None,
        }
    }

    /// These keys, identified under the deployment's `salt`
    /// (`Store::identity_salt`).
    pub fn with_identity_salt(mut self, salt: &[u8; 32]) -> Self {
        self.identity = Some(Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            salt,
        )));
        self
    }

    /// The identity of `key`, when the keys have an identity salt.
    pub fn identity(&self, key: &str) -> Option<KeyIdentity> {
        let tag = ring::hmac::sign(self.identity.as_deref()?, key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&tag.as_ref()[..16]);
        Some(KeyIdentity(
            uuid::Builder::from_random_bytes(bytes).into_uuid(),
        ))
    }

    /// Splits a comma-separated list (the `HERALD_API_KEYS` format).
    pub fn parse_list(list: &str) -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The configured keys, or else the key stored in `data_dir`, or else a
    /// newly generated key written to `data_dir/api-key`. The second value
    /// is the new key when one was generated (print it once), else `None`.
    pub fn load_or_generate(
        data_dir: &Path,
        configured: &[String],
    ) -> anyhow::Result<(ApiKeys, Option<String>)> {
        let configured: Vec<&String> = configured.iter().filter(|k| !k.trim().is_empty()).collect();
        if !configured.is_empty() {
            return Ok((ApiKeys::new(configured), None));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(stored) if !stored.trim().is_empty() => {
                return Ok((ApiKeys::new([stored.trim()]), None));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        crate::private_files::private_dir(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let key = generate_key();
        crate::private_files::write_private(&path, format!("{key}\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated an API key");
        Ok((ApiKeys::new([&key]), Some(key)))
    }

    /// Whether `key` is accepted.
    pub fn accepts(&self, key: &str) -> bool {
        let candidate = digest(key);
        // Constant-time over each stored digest; the number of keys is public.
        self.digests.iter().fold(false, |found, d| {
            let diff = d
                .iter()
                .zip(candidate.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (diff == 0)
        })
    }

    /// Whether no key is configured (every request is then refused).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// A new random key: `hk_` and 64 hex digits (256 bits from the OS).
fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    // v4 UUIDs fix 6 bits each; hash to spread the remaining 244 bits.
    format!("hk_{}", hex::encode(Sha256::digest(bytes)))
}

/// Middleware: refuses requests without an accepted bearer key.
pub async fn require_key(
    State(keys): State<ApiKeys>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(value) = header else {
        return Err(ApiError::Unauthorized(
            "missing API key: send `Authorization: Bearer <key>`".into(),
        ));
    };
    match bearer_token(value) {
        Some(key) if keys.accepts(key) => {
            let identity = keys.identity(key);
            if let Some(identity) = identity {
                request.extensions_mut().insert(identity);
            }
            Ok(next.run(request).await)
        }
        Some(_) => Err(ApiError::Unauthorized("invalid API key".into())),
        None => Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <key>`".into(),
        )),
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110 §11.1) and may be followed by any amount of
/// spaces or tabs.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_ignores_case() {
        for value in [
            "Bearer k",
            "bearer k",
            "BEARER k",
            "BeArEr \t k ",
            " Bearer  k",
        ] {
            assert_eq!(bearer_token(value), Some("k"), "{value:?}");
        }
        for value in ["Basic k", "Bearer", "Bearer ", "Bearerk", "k"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    #[test]
    fn identities_are_stable_per_key_and_salt_and_reveal_nothing() {
        let keys = ApiKeys::new(["key-one-0123456789", "key-two-0123456789"]);
        assert_eq!(
            keys.identity("key-one-0123456789"),
            None,
            "no salt, no identity"
        );
        let salted = keys.clone().with_identity_salt(&[7; 32]);
        let one = salted.identity("key-one-0123456789").unwrap();
        assert_eq!(salted.identity("key-one-0123456789"), Some(one));
        assert_ne!(salted.identity("key-two-0123456789"), Some(one));
        let other_salt = keys.with_identity_salt(&[8; 32]);
        assert_ne!(other_salt.identity("key-one-0123456789"), Some(one));
        assert!(!one.0.to_string().contains("key-one"));
    }

    #[test]
    fn generates_once_then_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, generated) = ApiKeys::load_or_generate(dir.path(), &[]).unwrap();
        let key = generated.expect("a key is generated on first start");
        assert!(key.starts_with("hk_") && key.len() == 67);
        assert!(keys.accepts(&key) && !keys.accepts("nope"));
        let (again, generated) = ApiKeys::load_or_generate(dir.path(), &[]).unwrap();
        assert!(generated.is_none());
        assert!(again.accepts(&key));
        let configured = ApiKeys::parse_list(" a, ,b ");
        assert_eq!(configured, vec!["a", "b"]);
        let (keys, generated) = ApiKeys::load_or_generate(dir.path(), &configured).unwrap();
        assert!(generated.is_none() && keys.accepts("b") && !keys.accepts(&key));
    }
}
