//! Wiring: config in, a runnable host out (server, join batcher, outbox
//! relay, event-snapshot consumer).

use std::sync::Arc;
use std::time::Duration;

use cityevents_messaging::Backbone;
use cityevents_messaging::consumer::{Consumer, ConsumerSpec};
use cityevents_proto::cityevents::event::v1::event_service_client::EventServiceClient;
use cityevents_proto::cityevents::join::v1::join_service_server::JoinServiceServer;
use cityevents_runtime::config::DatabaseConfig;
use cityevents_runtime::db;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{JoinApi, State};
use crate::config::Config;
use crate::metrics::JoinMetrics;
use crate::snapshots::{Fallback, SnapshotHandler};
use crate::tickets::Tickets;

pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    let metrics = Metrics::new()?;
    let Backbone {
        pool,
        js,
        relay,
        metrics: messaging,
    } = cityevents_messaging::open(&cfg.database, &cfg.nats, "join", &crate::MIGRATOR, &metrics)
        .await?;
    let consumer = Consumer {
        pool: pool.clone(),
        js,
        prefix: cfg.nats.stream_prefix.clone(),
        spec: ConsumerSpec::new("join-event-snapshots", "event", &["event.>"]),
        handler: Arc::new(SnapshotHandler),
        metrics: messaging,
    };
    let redis = Redis::connect(&cfg.redis).await?;
    let verifier = cityevents_authn::remote(
        &cfg.verifier,
        channel(&cfg.auth, &metrics)?,
        redis.conn.clone(),
        &metrics,
    );
    let events = if cfg.event.endpoint.is_empty() {
        None
    } else {
        Some(EventServiceClient::new(channel(&cfg.event, &metrics)?))
    };
    let join_metrics = JoinMetrics::register(&metrics)?;
    // Three pools, so a flood of one kind of work cannot starve the others.
    let sized = |n: u32| DatabaseConfig {
        max_connections: n.max(1),
        ..cfg.database.clone()
    };
    let batch_pool = db::pool(&sized(cfg.batch.shards as u32 + 1))?;
    db::PoolCollector::register(&metrics, &[("main", &pool), ("batch", &batch_pool)])?;
    let (batcher, workers) = crate::batch::batcher(
        batch_pool,
        cfg.batch.shards,
        cfg.batch.max_batch,
        cfg.batch.max_queue,
        join_metrics.clone(),
    );
    let sweep = (
        pool.clone(),
        Duration::from_secs(cfg.batch.key_sweep_secs.max(1)),
    );
    let state = State {
        pool: pool.clone(),
        verifier: Arc::new(verifier),
        batcher,
        fallback: Fallback::new(pool, events),
        tickets: Tickets::new(cfg.tickets.load()?),
        metrics: join_metrics,
    };
    let services = ServiceSet::new().with(JoinServiceServer::new(JoinApi::new(state)));
    Ok(Host::bind(cfg.server, metrics, services)
        .await?
        .task("join-batcher", move |t| workers.run(t))
        .task("outbox-relay", move |t| relay.run(t))
        .task("event-snapshots", move |t| consumer.run(t))
        .task("idempotency-sweeper", move |t| {
            crate::batch::sweeper(sweep.0, sweep.1, t)
        }))
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
