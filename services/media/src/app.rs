//! Wiring: config in, a runnable host out — the server and the workers.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use tokio::sync::mpsc;

use cityevents_proto::cityevents::media::v1::media_service_server::MediaServiceServer;
use cityevents_runtime::db;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{MediaApi, State};
use crate::check::Limits;
use crate::config::Config;
use crate::sign::UrlSigner;
use crate::work::{self, Workers};

pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    let metrics = Metrics::new()?;
    let pool = db::pool(&cfg.database)?;
    if cfg.database.migrate_on_start {
        cityevents_messaging::migrate_with(&pool, &crate::MIGRATOR).await?;
    }
    db::PoolCollector::register(&metrics, &[("main", &pool)])?;
    std::fs::create_dir_all(&cfg.media.storage_path).map_err(|e| {
        anyhow::anyhow!(
            "media.storage_path {}: {e}",
            cfg.media.storage_path.display()
        )
    })?;
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&cfg.media.storage_path)?);
    let redis = Redis::connect(&cfg.redis).await?;
    let verifier = cityevents_authn::remote(
        &cfg.verifier,
        channel(&cfg.auth, &metrics)?,
        redis.conn.clone(),
    );
    let (jobs, queue) = mpsc::channel(work::QUEUE);
    // Re-queued beside the workers (not before them: more than the queue
    // holds would wait for a worker that has not started).
    let recovery = (pool.clone(), store.clone(), jobs.clone());
    let workers = Workers {
        jobs: queue,
        pool: pool.clone(),
        store: store.clone(),
        workers: cfg.media.workers.max(1),
        max_pixels: cfg.media.max_pixels,
    };
    let state = State {
        pool,
        verifier: Arc::new(verifier),
        store,
        jobs,
        signer: UrlSigner::new(&cfg.media.url_keys)?,
        limits: Limits {
            max_pixels: cfg.media.max_pixels,
            max_side: cfg.media.max_side,
        },
        max_bytes: cfg.media.max_bytes,
        url_ttl: Duration::from_secs(cfg.media.url_ttl_secs.max(1)),
    };
    // Uploads are larger than other calls' messages: a chunk at most 1 MiB.
    let server = MediaServiceServer::new(MediaApi::new(state)).max_decoding_message_size(1 << 20);
    let services = ServiceSet::new().with(server);
    Ok(Host::bind(cfg.server, metrics, services)
        .await?
        .task("media-workers", move |t| workers.run(t))
        .task("media-recovery", move |t| async move {
            let (pool, store, jobs) = recovery;
            tokio::select! {
                () = t.cancelled() => return Ok(()),
                n = work::recover(&pool, store.as_ref(), &jobs) => {
                    let n = n?;
                    if n > 0 {
                        tracing::info!(recovered = n, "unfinished uploads queued again");
                    }
                }
            }
            // A host task that ends stops the service: wait for shutdown.
            t.cancelled().await;
            Ok(())
        }))
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
