//! Password hashing: argon2id with OWASP's parameters, off the async threads.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{Error, Result};

/// Hashes and verifies passwords. Verifying against a missing hash still does the full
/// work (against a dummy hash), so response time does not reveal whether a user exists.
#[derive(Debug)]
pub struct Passwords {
    /// A hash of a random password, made on first use, for unknown users.
    dummy_hash: OnceCell<String>,
    /// At most one hash per core at a time: more only thrash the CPU and memory (each
    /// takes 19 MiB) and make every login slower; the rest wait their turn.
    slots: Semaphore,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            dummy_hash: OnceCell::new(),
            slots: Semaphore::new(cores),
        }
    }
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

impl Passwords {
    /// Runs one hashing job on a blocking thread once a slot is free.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _slot = self.slots.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(Error::internal)?
    }

    /// A new hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// The argon2id PHC string of `password`.
    ///
    /// # Errors
    ///
    /// `Internal` if hashing fails or its blocking task is lost.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.blocking(move || hash_blocking(&password)).await
    }

    /// Whether `password` matches `hash`; with no hash, does the same work and says no.
    ///
    /// # Errors
    ///
    /// `Internal` if its blocking task is lost (a malformed hash is simply no match).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        match hash {
            Some(hash) => {
                self.blocking(move || verify_blocking(&password, &hash))
                    .await
            }
            None => {
                let dummy = self
                    .dummy_hash
                    .get_or_try_init(|| async {
                        let random = crate::accounts::tokens::random_token();
                        self.blocking(move || hash_blocking(&random)).await
                    })
                    .await?
                    .clone();
                self.blocking(move || verify_blocking(&password, &dummy))
                    .await?;
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
