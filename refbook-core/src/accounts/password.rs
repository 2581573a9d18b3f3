//! Password hashing: argon2id with OWASP's parameters, off the async threads.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::OnceCell;

use crate::error::{Error, Result};

/// Hashes and verifies passwords. Verifying against a missing hash still does the full
/// work (against a dummy hash), so response time does not reveal whether a user exists.
#[derive(Debug, Default)]
pub struct Passwords {
    /// A hash of a random password, made on first use, for unknown users.
    dummy_hash: OnceCell<String>,
}

/// OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| Error::internal(e.to_string()))?;
    Ok(hasher()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::internal)?
}

impl Passwords {
    /// A new hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String> {
        blocking(move || hash_blocking(&password)).await
    }

    /// Whether `password` matches `hash`; with no hash, does the same work and says no.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        match hash {
            Some(hash) => blocking(move || verify_blocking(&password, &hash)).await,
            None => {
                let dummy = self
                    .dummy_hash
                    .get_or_try_init(|| async {
                        let random = crate::accounts::tokens::random_token();
                        blocking(move || hash_blocking(&random)).await
                    })
                    .await?
                    .clone();
                blocking(move || verify_blocking(&password, &dummy)).await?;
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let passwords = Passwords::new();
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!passwords
            .verify("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!passwords.verify("anything".into(), None).await.unwrap());
    }
}
