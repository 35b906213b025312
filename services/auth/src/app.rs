//! Wiring: config in, a runnable [`Host`] out. `main.rs` and the tests both
//! call [`build`] and run the host.

use std::sync::Arc;

use cityevents_authn::{Revocations, Verifier};
use cityevents_messaging::Backbone;
use cityevents_proto::cityevents::auth::v1::auth_service_server::AuthServiceServer;
use cityevents_runtime::db;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{AuthApi, State};
use crate::config::Config;
use crate::metrics::AuthMetrics;
use crate::passwords::Passwords;
use crate::revocation_copy::RevocationCopy;
use crate::tokens::Issuer;
use cityevents_runtime::ratelimit::RateLimiter;

/// Connects to the stores, migrates if configured, binds the listeners; the
/// outbox relay runs beside the server.
pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    cfg.rate_limits.validate()?;
    let metrics = Metrics::new()?;
    let Backbone { pool, relay, .. } =
        cityevents_messaging::open(&cfg.database, &cfg.nats, "auth", &crate::MIGRATOR, &metrics)
            .await?;
    let redis = Redis::connect(&cfg.redis).await?;
    let issuer = Issuer::new(
        cfg.tokens.load_keys()?,
        &cfg.tokens.verifier,
        cfg.tokens.access_ttl_secs,
    )?;
    let revocations = Revocations::new(
        redis.conn.clone(),
        cfg.tokens.verifier.revocation_prefix.clone(),
        metrics.redis_calls("revocation"),
    );
    let verifier = Verifier::new(
        &cfg.tokens.verifier,
        Arc::new(issuer.jwks()),
        revocations.clone(),
    );
    let copy = RevocationCopy {
        pool: pool.clone(),
        revocations: revocations.clone(),
        access_ttl_secs: cfg.tokens.access_ttl_secs + cfg.tokens.verifier.leeway_secs,
    };
    // The first copy before serving, so verifiers do not start closed; if
    // Redis is away, the task keeps trying (and verifiers stay closed).
    if let Err(e) = copy.round(None).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "revocation copy failed at start-up"
        );
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let state = State {
        pool,
        passwords: Passwords::new(cores)?,
        issuer,
        verifier: Arc::new(verifier),
        revocations,
        limiter: RateLimiter::new(redis, metrics.redis_calls("rate_limit")),
        limits: cfg.rate_limits.clone(),
        tokens: cfg.tokens.clone(),
        metrics: AuthMetrics::register(&metrics)?,
        client_address: cfg.trusted_proxies.parse()?,
        sealer: cfg.tokens.link_seal.load()?,
    };
    let services = ServiceSet::new().with(AuthServiceServer::new(AuthApi::new(state)));
    Ok(Host::bind(cfg.server, metrics, services)
        .await?
        .task("outbox-relay", move |t| relay.run(t))
        .task("revocation-copy", move |t| copy.run(t)))
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
