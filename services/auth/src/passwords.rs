//! Password hashing with argon2id (OWASP's parameters: 19 MiB, 2 passes).
//!
//! Hashing is CPU- and memory-heavy, so it runs on a small pool of its own
//! threads, one per permit, not on Tokio's blocking pool: each argon2 call
//! allocates its 19 MiB, and the allocator keeps freed blocks in the arena
//! of the thread that used them, so hundreds of blocking-pool threads held
//! hundreds of megabytes after a sign-up storm. A few long-lived threads
//! keep the peak at a few blocks. A login storm queues instead of exhausting
//! memory. Unknown emails are checked against a dummy hash so they take as
//! long as known ones.

use std::sync::{Arc, Mutex, mpsc};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::{Semaphore, oneshot};

use cityevents_runtime::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and checks passwords.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    dummy: Arc<str>,
}

impl Passwords {
    /// At most `concurrency` hashes run at once, each on one of as many
    /// threads of its own (they end when the last clone is dropped).
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking("not a real password, only for timing")?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            jobs,
            dummy: dummy.into(),
        })
    }

    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::internal(anyhow::anyhow!("hashing threads stopped")))?;
        rx.await
            .map_err(|_| Error::internal(anyhow::anyhow!("hashing thread failed")))
    }

    /// The PHC string of a new argon2id hash.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let pw = password.to_owned();
        self.run(move || hash_blocking(&pw))
            .await?
            .map_err(Error::internal)
    }

    /// Whether `password` matches `hash`; `None` checks the dummy and fails.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_owned();
        let pw = password.to_owned();
        let ok = self
            .run(move || {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
                Ok::<_, anyhow::Error>(
                    Argon2::default()
                        .verify_password(pw.as_bytes(), &parsed)
                        .is_ok(),
                )
            })
            .await?
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
