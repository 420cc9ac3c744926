//! Sealing secrets at rest: what the database holds of a secret is
//! ciphertext under a key kept outside it.
//!
//! Every automation config (webhook secrets and headers, Slack tokens, S3
//! keys: the whole config, so no secret field can be missed) and every
//! environment variable's value is sealed with ChaCha20-Poly1305 (`ring`)
//! before it is written, and opened when it is read. A sealed value is
//! text, `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, with a fresh
//! random 96-bit nonce each time, and is bound to where it belongs (its
//! *context*, e.g. `automation/<id>/config`): a value copied into another
//! row does not open there.
//!
//! The key is 32 random bytes, from `secret_key` / `HERALD_SECRET_KEY`
//! (base64), or else from `<data_dir>/secret-key` (mode 0600), generated on
//! first start. Its id (a hash prefix, not the key) is written with every
//! value, so a daemon started with the wrong key says which key the
//! database needs instead of reading garbage. Rotation: start with the new
//! key as `secret_key` and the old one in `secret_key_previous`; the daemon
//! re-seals everything under the new key at start, after which the old key
//! can go. Daemons sharing one PostgreSQL database must share the key.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// The file in the data directory that holds the generated key.
pub const KEY_FILE: &str = "secret-key";

/// The format version written first in every sealed value.
const VERSION: &str = "v1";

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// It was sealed under a key this daemon does not have.
    #[error(
        "sealed under key {key_id}, but this daemon has key {known}: start it with the key \
         the data was sealed under (secret_key or HERALD_SECRET_KEY; during a rotation, the \
         old one in secret_key_previous)"
    )]
    UnknownKey {
        /// The key the value names.
        key_id: String,
        /// The keys this daemon has, comma-separated (current first).
        known: String,
    },
    /// The value does not open under its key: altered, or moved from
    /// another place.
    #[error("a sealed value at {context} does not open: it was altered or copied from elsewhere")]
    Tampered {
        /// Where it was read.
        context: String,
    },
    /// Not a sealed value at all.
    #[error("not a sealed value ({0})")]
    Malformed(&'static str),
}

/// One 256-bit key and its id.
struct SealingKey {
    id: String,
    key: LessSafeKey,
}

impl SealingKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"herald sealing key id\0")
            .chain_update(bytes)
            .finalize();
        Self {
            id: hex::encode(&digest[..6]),
            key: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key"),
            ),
        }
    }
}

/// Seals and opens values with the current key (and opens with the
/// previous ones, during a rotation). Cheap to share behind an `Arc`.
pub struct Sealer {
    current: SealingKey,
    previous: Vec<SealingKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.current.id)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with `current` and, for opening only, `previous`.
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            current: SealingKey::new(current),
            previous: previous.iter().map(SealingKey::new).collect(),
            random: SystemRandom::new(),
        }
    }

    /// A sealer under a key made for this process: what `Store::connect`
    /// uses for tools and tests that never hand data to another process.
    /// The daemon always loads its key with [`Sealer::load`].
    pub fn for_this_process() -> Self {
        static KEY: OnceLock<[u8; 32]> = OnceLock::new();
        Self::new(KEY.get_or_init(random_key), &[])
    }

    /// The configured key (`configured`, base64) with `previous` keys, or
    /// else the key in `data_dir/secret-key`, or else a new key written
    /// there. The second value is the file written, when a key was
    /// generated.
    pub fn load(
        data_dir: &Path,
        configured: Option<&str>,
        previous: &[String],
    ) -> anyhow::Result<(Self, Option<PathBuf>)> {
        let previous = previous
            .iter()
            .enumerate()
            .map(|(i, text)| parse_key(text).with_context(|| format!("secret_key_previous[{i}]")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(text) = configured.filter(|t| !t.trim().is_empty()) {
            let key = parse_key(text).context("secret_key")?;
            return Ok((Self::new(&key, &previous), None));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = parse_key(&text).with_context(|| format!("{}", path.display()))?;
                return Ok((Self::new(&key, &previous), None));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        crate::private_files::private_dir(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let key = random_key();
        crate::private_files::write_private(
            &path,
            format!("{}\n", STANDARD.encode(key)).as_bytes(),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        Ok((Self::new(&key, &previous), Some(path)))
    }

    /// The current key's id.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// `plaintext` sealed under the current key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the operating system's random source works");
        let mut data = plaintext.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .expect("sealing a value in memory cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LEN + data.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&data);
        format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// Opens a value [`Sealer::seal`] made for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let (key_id, data) = parts(sealed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id: key_id.to_owned(),
                known: std::iter::once(&self.current)
                    .chain(&self.previous)
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let mut data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Malformed("bad base64"))?;
        if data.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Malformed("too short"));
        }
        let nonce: [u8; NONCE_LEN] = data[..NONCE_LEN].try_into().expect("checked length");
        let opened = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| SealError::Tampered {
                context: context.to_owned(),
            })?;
        Ok(opened.to_vec())
    }

    /// `sealed` sealed again under the current key, or `None` when it is
    /// under it already; either way it is checked to open (a rotation).
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<Option<String>, SealError> {
        let opened = self.open(sealed, context)?;
        Ok((!self.is_current(sealed)).then(|| self.seal(&opened, context)))
    }

    /// Whether `sealed` is under the current key (else a rotation re-seals it).
    pub fn is_current(&self, sealed: &str) -> bool {
        parts(sealed).is_ok_and(|(key_id, _)| key_id == self.current.id)
    }
}

/// The key id and data of a sealed value.
fn parts(sealed: &str) -> Result<(&str, &str), SealError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(VERSION), Some(key_id), Some(data)) => Ok((key_id, data)),
        (Some(VERSION), _, _) => Err(SealError::Malformed("missing parts")),
        _ => Err(SealError::Malformed("unknown version")),
    }
}

/// A key given as text: 32 bytes in base64 (standard or URL-safe, padded
/// or not), as `herald secrets generate-key` prints.
pub fn parse_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| anyhow::anyhow!("a secret key must be 32 bytes in base64"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("a secret key must be 32 bytes, not {}", b.len()))
}

/// A new key, as text for `secret_key`.
pub fn generate_key_text() -> String {
    STANDARD.encode(random_key())
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .expect("the operating system's random source works");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_under_their_key_and_context() {
        let (a, b) = (random_key(), random_key());
        let sealer = Sealer::new(&a, &[]);
        let sealed = sealer.seal(b"hunter2", "automation/1/config");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            sealer.seal(b"hunter2", "automation/1/config"),
            "fresh nonces"
        );
        assert_eq!(
            sealer.open(&sealed, "automation/1/config").unwrap(),
            b"hunter2"
        );
        assert!(matches!(
            sealer.open(&sealed, "automation/2/config"),
            Err(SealError::Tampered { .. })
        ));
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open(
                    std::str::from_utf8(&altered).unwrap(),
                    "automation/1/config"
                )
                .is_err()
        );

        // Another key: a clear error naming both; with the old key as
        // previous it opens, and is not current.
        let other = Sealer::new(&b, &[]);
        let error = other.open(&sealed, "automation/1/config").unwrap_err();
        assert!(
            matches!(&error, SealError::UnknownKey { key_id, .. } if key_id == sealer.key_id())
        );
        assert!(error.to_string().contains(other.key_id()), "{error}");
        let rotating = Sealer::new(&b, &[a]);
        assert_eq!(
            rotating.open(&sealed, "automation/1/config").unwrap(),
            b"hunter2"
        );
        assert!(!rotating.is_current(&sealed));
        assert!(rotating.is_current(&rotating.seal(b"x", "c")));
        assert!(matches!(
            other.open("plain", "c"),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn the_key_is_generated_once_then_loaded_and_configured_keys_win() {
        let dir = tempfile::tempdir().unwrap();
        let (first, written) = Sealer::load(dir.path(), None, &[]).unwrap();
        assert_eq!(written, Some(dir.path().join(KEY_FILE)));
        let sealed = first.seal(b"x", "c");
        let (again, written) = Sealer::load(dir.path(), None, &[]).unwrap();
        assert!(written.is_none());
        assert_eq!(again.key_id(), first.key_id());
        assert_eq!(again.open(&sealed, "c").unwrap(), b"x");

        let configured = generate_key_text();
        let (chosen, _) = Sealer::load(dir.path(), Some(&configured), &[]).unwrap();
        assert_ne!(chosen.key_id(), first.key_id());
        assert!(
            Sealer::load(dir.path(), Some("c2hvcnQ="), &[]).is_err(),
            "5 bytes"
        );
        assert!(Sealer::load(dir.path(), Some("not base64!"), &[]).is_err());
    }
}
