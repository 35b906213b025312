//! The worker pool: a bounded queue of accepted uploads and at most
//! `media.workers` of them decoded at once, each on a blocking thread, so
//! image work never takes more cores than it is given. On shutdown no new
//! job starts and the running ones finish; anything still queued is found
//! again at the next start (its row says `processing`, its bytes are kept
//! under `uploads/`).

use std::sync::Arc;

use image::ImageFormat;
use object_store::{ObjectStore, ObjectStoreExt};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use cityevents_runtime::CancellationToken;

use crate::process;
use crate::store;

/// Uploads waiting for a worker at most; beyond it uploads are refused
/// (`OVERLOADED`, retry later).
pub const QUEUE: usize = 64;

/// An accepted upload: its bytes wait at [`store::upload_path`].
pub struct Job {
    pub sha: String,
    pub format: ImageFormat,
}

pub struct Workers {
    pub jobs: mpsc::Receiver<Job>,
    pub pool: PgPool,
    pub store: Arc<dyn ObjectStore>,
    pub workers: usize,
    pub max_pixels: u64,
    /// `media_images_processed_total{result}`: ready, failed.
    pub processed: prometheus::IntCounterVec,
}

impl Workers {
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut running = JoinSet::new();
        loop {
            while running.len() >= self.workers.max(1) {
                running.join_next().await;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                job = self.jobs.recv() => match job {
                    Some(job) => {
                        let (pool, store, max) = (self.pool.clone(), self.store.clone(), self.max_pixels);
                        let processed = self.processed.clone();
                        running.spawn(async move {
                            if let Some(result) = process_one(pool, store, job, max).await {
                                processed.with_label_values(&[result]).inc();
                            }
                        });
                    }
                    None => break,
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }
}

/// Makes one upload's variants: `ready` or `failed`, or `None` when it
/// stays `processing` for the next start (storage away).
async fn process_one(
    pool: PgPool,
    store: Arc<dyn ObjectStore>,
    job: Job,
    max_pixels: u64,
) -> Option<&'static str> {
    let Job { sha, format } = job;
    let bytes = match store::read(store.as_ref(), &store::upload_path(&sha)).await {
        Ok(b) => b,
        // The row stays `processing`; the next start tries again.
        Err(e) => {
            tracing::warn!(%sha, error = %e, "reading an upload failed");
            return None;
        }
    };
    let made = tokio::task::spawn_blocking(move || process::variants(&bytes, format, max_pixels))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
    let result = if made.is_ok() { "ready" } else { "failed" };
    let outcome = match made {
        Ok(variants) => {
            let mut names = Vec::new();
            let mut stored = Ok(());
            for v in variants {
                for (ext, data) in [("webp", v.webp), ("jpg", v.jpeg)] {
                    if let Err(e) = store::put(
                        store.as_ref(),
                        &store::variant_path(&sha, v.variant, ext),
                        data,
                    )
                    .await
                    {
                        stored = Err(e);
                    }
                }
                names.push(process::variant_name(v.variant).to_owned());
            }
            match stored {
                Ok(()) => store::finish(&pool, &sha, &names, None).await,
                // Storage is away: the row stays `processing` and the next
                // start tries again.
                Err(e) => {
                    tracing::warn!(%sha, error = %e, "storing variants failed");
                    return None;
                }
            }
        }
        Err(e) => {
            tracing::info!(%sha, error = format!("{e:#}"), "an accepted image could not be decoded");
            store::finish(
                &pool,
                &sha,
                &[],
                Some("the image could not be decoded (damaged or cut off)"),
            )
            .await
        }
    };
    match outcome {
        Ok(()) => {
            let _ = store.delete(&store::upload_path(&sha)).await;
            Some(result)
        }
        Err(e) => {
            tracing::warn!(%sha, error = %e, "recording a processed image failed");
            None
        }
    }
}

/// Queues again what a restart cut short.
pub async fn recover(
    pool: &PgPool,
    store: &dyn ObjectStore,
    jobs: &mpsc::Sender<Job>,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for (sha, content_type) in store::unfinished(pool).await? {
        let Some(format) = ImageFormat::from_mime_type(&content_type) else {
            continue;
        };
        match store.head(&store::upload_path(&sha)).await {
            Ok(_) => {
                jobs.send(Job { sha, format }).await?;
                n += 1;
            }
            Err(e) => tracing::warn!(%sha, error = %e, "an unfinished upload's bytes are gone"),
        }
    }
    Ok(n)
}
