//! Wiring: config in, a runnable host out.

use std::sync::Arc;

use cityevents_messaging::Backbone;
use cityevents_proto::cityevents::event::v1::event_service_server::EventServiceServer;
use cityevents_proto::cityevents::join::v1::join_service_client::JoinServiceClient;
use cityevents_proto::cityevents::media::v1::media_service_client::MediaServiceClient;
use cityevents_runtime::db;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{EventApi, State};
use crate::config::Config;

/// Connects, migrates if configured, binds; the outbox relay runs beside.
pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    let metrics = Metrics::new()?;
    let Backbone { pool, relay, .. } = cityevents_messaging::open(
        &cfg.database,
        &cfg.nats,
        "event",
        &crate::MIGRATOR,
        &metrics,
    )
    .await?;
    let redis = Redis::connect(&cfg.redis).await?;
    let verifier = cityevents_authn::remote(
        &cfg.verifier,
        channel(&cfg.auth, &metrics)?,
        redis.conn.clone(),
        &metrics,
    );
    let join = if cfg.join.endpoint.is_empty() {
        None
    } else {
        Some(JoinServiceClient::new(channel(&cfg.join, &metrics)?))
    };
    let media = if cfg.media.endpoint.is_empty() {
        None
    } else {
        Some(MediaServiceClient::new(channel(&cfg.media, &metrics)?))
    };
    let lifecycle = metrics.counter(
        "events_lifecycle_total",
        "Events created, updated, published and cancelled.",
        &["action"],
    )?;
    for action in ["created", "updated", "published", "cancelled"] {
        lifecycle.with_label_values(&[action]);
    }
    let state = State {
        pool,
        verifier: Arc::new(verifier),
        join,
        media,
        lifecycle,
    };
    let services = ServiceSet::new().with(EventServiceServer::new(EventApi::new(state)));
    Ok(Host::bind(cfg.server, metrics, services)
        .await?
        .task("outbox-relay", move |t| relay.run(t)))
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
