//! Wiring: config in, a runnable host out — the server, the workers, the
//! events consumer that keeps attachments, and the collector.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use tokio::sync::mpsc;

use cityevents_messaging::consumer;
use cityevents_messaging::metrics::MessagingMetrics;

use cityevents_proto::cityevents::media::v1::media_service_server::MediaServiceServer;
use cityevents_runtime::db;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{MediaApi, State};
use crate::attach::{Attachments, CONSUMERS, Collector};
use crate::check::Limits;
use crate::config::{Config, MediaConfig};
use crate::sign::UrlSigner;
use crate::work::{self, Workers};

pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    let metrics = Metrics::new()?;
    let pool = db::pool(&cfg.database)?;
    if cfg.database.migrate_on_start {
        cityevents_messaging::migrate_with(&pool, &crate::MIGRATOR).await?;
    }
    db::PoolCollector::register(&metrics, &[("main", &pool)])?;
    let messaging = MessagingMetrics::register(&metrics)?;
    let js = cityevents_messaging::connect(&cfg.nats).await?;
    let store = object_store(&cfg.media)?;
    let redis = Redis::connect(&cfg.redis).await?;
    let verifier = cityevents_authn::remote(
        &cfg.verifier,
        channel(&cfg.auth, &metrics)?,
        redis.conn.clone(),
        &metrics,
    );
    let (jobs, queue) = mpsc::channel(work::QUEUE);
    // Re-queued beside the workers (not before them: more than the queue
    // holds would wait for a worker that has not started).
    let recovery = (pool.clone(), store.clone(), jobs.clone());
    let processed = metrics.counter(
        "media_images_processed_total",
        "Accepted uploads processed: ready (variants made) or failed (undecodable).",
        &["result"],
    )?;
    for r in ["ready", "failed"] {
        processed.with_label_values(&[r]);
    }
    let workers = Workers {
        processed,
        jobs: queue,
        pool: pool.clone(),
        store: store.clone(),
        workers: cfg.media.workers.max(1),
        max_pixels: cfg.media.max_pixels,
    };
    let (consumer_pool, collector_store) = (pool.clone(), store.clone());
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
        part_size: if cfg.media.s3.bucket.is_empty() {
            256 * 1024
        } else {
            5 * 1024 * 1024
        },
    };
    let collector = Collector {
        pool: consumer_pool.clone(),
        store: collector_store,
        grace: Duration::from_secs(cfg.media.unattached_grace_secs),
        every: Duration::from_secs(cfg.media.collect_every_secs.max(1)),
    };

    // Uploads are larger than other calls' messages: a chunk at most 1 MiB.
    let server = MediaServiceServer::new(MediaApi::new(state)).max_decoding_message_size(1 << 20);
    let services = ServiceSet::new().with(server);
    let host = Host::bind(cfg.server, metrics, services).await?;
    let prefix = &cfg.nats.stream_prefix;
    let host = consumer::follow(
        host,
        &CONSUMERS,
        &consumer_pool,
        &js,
        prefix,
        Arc::new(Attachments),
        &messaging,
    );
    Ok(host
        .task("media-workers", move |t| workers.run(t))
        .task("media-collector", move |t| collector.run(t))
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

/// The local file system, or an S3-compatible store when `s3.bucket` is set.
pub fn object_store(cfg: &MediaConfig) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if cfg.s3.bucket.is_empty() {
        std::fs::create_dir_all(&cfg.storage_path).map_err(|e| {
            anyhow::anyhow!("media.storage_path {}: {e}", cfg.storage_path.display())
        })?;
        return Ok(Arc::new(LocalFileSystem::new_with_prefix(
            &cfg.storage_path,
        )?));
    }
    // reqwest's rustls has no crypto of its own here: ring is the one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = &cfg.s3;
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_allow_http(s3.allow_http);
    if !s3.region.is_empty() {
        b = b.with_region(&s3.region);
    }
    if !s3.endpoint.is_empty() {
        b = b.with_endpoint(&s3.endpoint);
    }
    if !s3.access_key_id.expose().is_empty() {
        b = b
            .with_access_key_id(s3.access_key_id.expose())
            .with_secret_access_key(s3.secret_access_key.expose());
    }
    Ok(Arc::new(
        b.build().map_err(|e| anyhow::anyhow!("media.s3: {e}"))?,
    ))
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
