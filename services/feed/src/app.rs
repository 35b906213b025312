//! Wiring: config in, a runnable host out — the server, the two stream
//! consumers that keep the projection, and the sweeper.

use std::sync::Arc;
use std::time::Duration;

use cityevents_messaging::consumer;
use cityevents_messaging::metrics::MessagingMetrics;
use cityevents_proto::cityevents::feed::v1::feed_service_server::FeedServiceServer;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::DatabaseConfig;
use cityevents_runtime::db;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{FeedApi, State};
use crate::cache::Cache;
use crate::config::{Config, FeedConfig};
use crate::cursor::Signer;
use crate::projection::Projection;
use crate::search::PgSearch;

/// The durable consumers: domain events of the event and join services.
pub const CONSUMERS: [(&str, &str); 2] = [("feed-events", "event"), ("feed-joins", "join")];

/// The feed's pool: custom plans for its many-shaped searches, and the
/// typo threshold of pg_trgm's `%`.
pub fn pool(database: &DatabaseConfig, feed: &FeedConfig) -> anyhow::Result<sqlx::PgPool> {
    let threshold = feed.fuzzy_threshold.clamp(0.0, 1.0).to_string();
    db::pool_with(
        database,
        &[
            ("plan_cache_mode", "force_custom_plan"),
            ("pg_trgm.similarity_threshold", &threshold),
        ],
    )
}

pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    let metrics = Metrics::new()?;
    let pool = pool(&cfg.database, &cfg.feed)?;
    if cfg.database.migrate_on_start {
        cityevents_messaging::migrate_with(&pool, &crate::MIGRATOR).await?;
    }
    db::PoolCollector::register(&metrics, &[("main", &pool)])?;
    let messaging = MessagingMetrics::register(&metrics)?;
    let js = cityevents_messaging::connect(&cfg.nats).await?;
    let redis = Redis::connect(&cfg.redis).await?;
    let cache = Arc::new(Cache::new(
        redis.clone(),
        Duration::from_millis(cfg.feed.cache_ttl_ms),
        &metrics,
    )?);
    let verifier = cityevents_authn::remote(
        &cfg.verifier,
        channel(&cfg.auth, &metrics)?,
        redis.conn.clone(),
        &metrics,
    );
    let state = State {
        pool: pool.clone(),
        verifier: Arc::new(verifier),
        engine: Arc::new(PgSearch {
            pool: pool.clone(),
            fuzzy_below: cfg.feed.fuzzy_below,
            max_candidates: cfg.feed.max_candidates.max(1),
        }),
        cache: cache.clone(),
        signer: Signer::new(cfg.feed.cursor_key.expose())?,
        read_after_wait: Duration::from_millis(cfg.feed.read_after_wait_ms),
    };
    let services = ServiceSet::new().with(FeedServiceServer::new(FeedApi::new(state)));
    let host = Host::bind(cfg.server, metrics, services).await?;
    let projection = Arc::new(Projection {
        cache: cache.clone(),
    });
    let prefix = &cfg.nats.stream_prefix;
    let host = consumer::follow(host, &CONSUMERS, &pool, &js, prefix, projection, &messaging);
    let sweep = pool.clone();
    Ok(host.task("feed-sweeper", move |t| sweeper(sweep, t)))
}

/// Every minute: unlist ended events, drop expired ranked lists.
async fn sweeper(pool: sqlx::PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                if let Err(e) = crate::rank::sweep_ended(&pool).await {
                    tracing::warn!(error = %e, "unlisting ended events failed");
                }
                if let Err(e) = crate::rank::sweep_lists(&pool).await {
                    tracing::warn!(error = %e, "sweeping ranked lists failed");
                }
            }
        }
    }
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
