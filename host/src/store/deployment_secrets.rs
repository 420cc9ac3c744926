//! Secrets of the deployment itself, shared by every daemon on the
//! database and sealed like every other secret: today the salt API-key
//! identities are made with (`api::auth`), so an automation's `user_id` is
//! the same on every daemon and across restarts and key rotations, and
//! guessing a weak API key from it needs the salt, which needs the sealing
//! key.

use super::{Store, StoreError, dispatch};

const IDENTITY_SALT: &str = "identity_salt";

fn context(name: &str) -> String {
    format!("deployment/{name}")
}

impl Store {
    /// The deployment's identity salt: created (random, sealed) by the
    /// first daemon that asks, read by every other.
    pub async fn identity_salt(&self) -> Result<[u8; 32], StoreError> {
        let salt: [u8; 32] = rand_bytes();
        let sealed = self.sealer.seal(&salt, &context(IDENTITY_SALT));
        dispatch!(self, |pool, DB| {
            sqlx::query::<DB>(
                "INSERT INTO deployment_secrets (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(IDENTITY_SALT)
            .bind(&sealed)
            .execute(pool)
            .await?;
        });
        let stored: String = dispatch!(self, |pool, DB| {
            sqlx::query_scalar::<DB, String>("SELECT value FROM deployment_secrets WHERE name = $1")
                .bind(IDENTITY_SALT)
                .fetch_one(pool)
                .await?
        });
        let opened = self.sealer.open(&stored, &context(IDENTITY_SALT))?;
        opened
            .try_into()
            .map_err(|_| StoreError::Sealing(crate::sealing::SealError::Malformed("bad salt")))
    }

    /// Re-seals the deployment's secrets under the current key.
    pub(crate) async fn reseal_deployment_secrets(&self) -> Result<u64, StoreError> {
        let rows: Vec<(String, String)> = dispatch!(self, |pool, DB| {
            sqlx::query_as::<DB, (String, String)>("SELECT name, value FROM deployment_secrets")
                .fetch_all(pool)
                .await?
        });
        let mut resealed = 0;
        for (name, sealed) in rows {
            let Some(again) = self.sealer.reseal(&sealed, &context(&name))? else {
                continue;
            };
            dispatch!(self, |pool, DB| {
                sqlx::query::<DB>("UPDATE deployment_secrets SET value = $1 WHERE name = $2")
                    .bind(again)
                    .bind(&name)
                    .execute(pool)
                    .await?;
            });
            resealed += 1;
        }
        Ok(resealed)
    }
}

fn rand_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source works");
    bytes
}
