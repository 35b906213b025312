//! Wiring: config in, a running server out. `main.rs` and the tests both
//! build the service through [`App::build`] and run it with [`App::run`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use cityevents_authn::{Revocations, Verifier};
use cityevents_messaging::metrics::MessagingMetrics;
use cityevents_messaging::relay::Relay;
use cityevents_proto::cityevents::auth::v1::auth_service_server::AuthServiceServer;
use cityevents_runtime::grpc::server::{GrpcServer, ServiceSet, bind};
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;
use cityevents_runtime::{CancellationToken, db};

use crate::api::{AuthApi, State};
use crate::config::Config;
use crate::metrics::AuthMetrics;
use crate::passwords::Passwords;
use crate::ratelimit::RateLimiter;
use crate::tokens::Issuer;

/// A built, not yet running, auth service.
pub struct App {
    server: GrpcServer,
    grpc: TcpListener,
    admin: TcpListener,
    metrics: Metrics,
    relay: Relay,
}

impl App {
    /// Connects to its stores, migrates if configured, binds its listeners.
    pub async fn build(cfg: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new()?;
        let pool = db::pool(&cfg.database)?;
        if cfg.database.migrate_on_start {
            migrate_pool(&pool).await?;
        }
        let js = cityevents_messaging::connect(&cfg.nats).await?;
        let relay = Relay::new(
            pool.clone(),
            js,
            "auth",
            &cfg.nats.stream_prefix,
            MessagingMetrics::register(&metrics)?,
        );
        let redis = Redis::connect(&cfg.redis).await?;
        let issuer = Issuer::new(
            cfg.tokens.load_keys()?,
            &cfg.tokens.verifier,
            cfg.tokens.access_ttl_secs,
        )?;
        let revocations = Revocations::new(
            redis.conn.clone(),
            cfg.tokens.verifier.revocation_prefix.clone(),
        );
        let verifier = Verifier::new(
            &cfg.tokens.verifier,
            Arc::new(issuer.jwks()),
            revocations.clone(),
        );
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let state = State {
            pool,
            passwords: Passwords::new(cores)?,
            issuer,
            verifier: Arc::new(verifier),
            revocations,
            limiter: RateLimiter::new(redis),
            limits: cfg.rate_limits.clone(),
            tokens: cfg.tokens.clone(),
            metrics: AuthMetrics::register(&metrics)?,
            trust_forwarded_for: cfg.trust_forwarded_for,
        };
        let services = ServiceSet::new().with(AuthServiceServer::new(AuthApi::new(state)));
        let grpc = bind(cfg.server.grpc_addr).await?;
        let admin = bind(cfg.server.admin_addr).await?;
        let server = GrpcServer::new(cfg.server, metrics.clone(), services);
        Ok(Self {
            server,
            grpc,
            admin,
            metrics,
            relay,
        })
    }

    /// Where gRPC is served.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Where `/metrics` is served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The app's metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves until `shutdown` fires, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr(), admin = %self.admin_addr(), "auth service listening");
        // The relay stops with the server: serve() cancels the token when done.
        let relay = tokio::spawn(self.relay.run(shutdown.child_token()));
        let served = self
            .server
            .serve(self.grpc, self.admin, shutdown.clone())
            .await;
        shutdown.cancel();
        relay.await??;
        served
    }
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    migrate_pool(&db::pool(&cfg.database)?).await
}

async fn migrate_pool(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    cityevents_messaging::migrate(pool).await?;
    db::migrate(pool, &crate::MIGRATOR).await
}
