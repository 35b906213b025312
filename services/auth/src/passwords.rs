//! Password hashing with argon2id (OWASP's parameters: 19 MiB, 2 passes).
//!
//! Hashing is CPU- and memory-heavy, so it runs on blocking threads behind a
//! semaphore: a login storm queues instead of exhausting memory. Unknown
//! emails are checked against a dummy hash so they take as long as known ones.

use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use cityevents_runtime::{Error, Result};

/// Hashes and checks passwords.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl Passwords {
    /// At most `concurrency` hashes run at once.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking("not a real password, only for timing")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: dummy.into(),
        })
    }

    /// The PHC string of a new argon2id hash.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let pw = password.to_owned();
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || hash_blocking(&pw))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }

    /// Whether `password` matches `hash`; `None` checks the dummy and fails.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_owned();
        let pw = password.to_owned();
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let ok = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            Ok::<_, anyhow::Error>(
                Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        Ok(known && ok)
    }
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let p = Passwords::new(2).unwrap();
        let h = p.hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse battery", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong horse battery", Some(&h)).await.unwrap());
        assert!(
            !p.verify("not a real password, only for timing", None)
                .await
                .unwrap()
        );
    }
}
