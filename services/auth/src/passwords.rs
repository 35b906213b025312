//! Password hashing with argon2id (OWASP's parameters: 19 MiB, 2 passes).
//!
//! Hashing is CPU- and memory-heavy, so it runs on a small pool of its own
//! threads, one per permit, and each thread owns the argon2 working memory
//! it reuses for every hash. argon2's own API allocates 19 MiB per call; the
//! allocator's mmap threshold then rises to that size, so later blocks come
//! from the heap, and freed blocks stay resident in the arenas (hundreds of
//! megabytes after a sign-up storm). With the memory owned by the threads,
//! the peak is one block per thread, whatever the load. A login storm
//! queues instead of exhausting memory. Unknown emails are checked against a
//! dummy hash so they take as long as known ones.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use cityevents_runtime::{Error, Result};

/// A hashing thread's working memory, grown to the largest hash it met.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

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
        let dummy = hash_with(
            &mut Memory::default(),
            "not a real password, only for timing",
        )?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
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

    /// Runs `work` on a hashing thread, with that thread's memory.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(work(memory));
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
        self.run(move |memory| hash_with(memory, &pw))
            .await?
            .map_err(Error::internal)
    }

    /// Whether `password` matches `hash`; `None` checks the dummy and fails.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_owned();
        let pw = password.to_owned();
        let ok = self
            .run(move |memory| verify_with(memory, &pw, &hash))
            .await?
            .map_err(Error::internal)?;
        Ok(known && ok)
    }
}

fn hash_with(memory: &mut Memory, password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for a salt: {e}"))?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::default(), params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(&params),
        )
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("argon2: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the stored hash's parameters over `password` and compares in
/// constant time (`Output`'s equality).
fn verify_with(memory: &mut Memory, password: &str, stored: &str) -> anyhow::Result<bool> {
    let unreadable = |e: &dyn std::fmt::Display| anyhow::anyhow!("stored hash unreadable: {e}");
    let phc = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return Err(unreadable(&"no salt or no hash"));
    };
    let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(|e| unreadable(&e))?;
    let version = match phc.version {
        Some(v) => Version::try_from(v).map_err(|e| unreadable(&e))?,
        None => Version::default(),
    };
    let params = Params::try_from(&phc).map_err(|e| unreadable(&e))?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.blocks(&params))
        .map_err(|e| unreadable(&e))?;
    Ok(Output::new(&out).map_err(|e| unreadable(&e))? == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_agree_with_argon2s_own_api_both_ways() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let mut memory = Memory::default();
        let ours = hash_with(&mut memory, "correct horse battery").unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(verify_with(&mut memory, "correct horse battery", &theirs).unwrap());
        assert!(!verify_with(&mut memory, "wrong horse battery", &theirs).unwrap());
        assert!(verify_with(&mut memory, "x", "$argon2id$junk").is_err());
    }

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
