//! Assembles and runs a service's gRPC server: its services plus health and
//! reflection, behind the standard layers, with one shutdown path.
//!
//! Health names for probes: `liveness` is SERVING from start to exit (the
//! process answers); `readiness`, `""` and each service's own name turn
//! NOT_SERVING when shutdown starts, so a pod leaves its Service's
//! endpoints before it stops listening, without being restarted for it.
//!
//! Shutdown: the token fires → health answers NOT_SERVING → after the drain
//! delay the listener closes → in-flight calls get the grace period to finish
//! → the admin listener stops. The caller then flushes telemetry.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;

use super::context::ServerContextLayer;
use super::metrics_layer::GrpcMetricsLayer;
use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// The gRPC services one binary serves (and, at the edge, the HTTP routes
/// and layers around them).
#[derive(Default)]
pub struct ServiceSet {
    routes: Routes,
    names: Vec<&'static str>,
}

impl ServiceSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generated tonic server (e.g. `AuthServiceServer::new(handler)`).
    pub fn with<S>(mut self, svc: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(svc);
        self
    }

    /// The gRPC services added so far, as one in-process service: the BFF's
    /// REST transcoder dispatches into it without a network hop.
    pub fn routes(&self) -> Routes {
        self.routes.clone()
    }

    /// Rewrites the router, e.g. to add HTTP routes, a fallback and
    /// edge layers (gRPC-web, CORS) in front of the gRPC services. The
    /// server's own layers (context, metrics) stay outermost.
    pub fn map_router(mut self, f: impl FnOnce(axum::Router) -> axum::Router) -> Self {
        self.routes = Routes::from(f(self.routes.into_axum_router()));
        self
    }
}

/// A server ready to run on bound listeners.
pub struct GrpcServer {
    config: ServerConfig,
    metrics: Metrics,
    services: ServiceSet,
    health: HealthReporter,
    health_service:
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
}

impl GrpcServer {
    /// Prepares `services` with `config`'s limits and `metrics`' registry.
    pub fn new(config: ServerConfig, metrics: Metrics, services: ServiceSet) -> Self {
        let health = HealthReporter::new();
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        Self {
            config,
            metrics,
            services,
            health,
            health_service,
        }
    }

    /// The health reporter, for services that want to flip their own status.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves on `grpc` and `admin` until `shutdown` fires and the drain ends.
    pub async fn serve(
        self,
        grpc: TcpListener,
        admin: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let GrpcServer {
            config,
            metrics,
            services,
            health,
            health_service,
        } = self;
        let names = services.names.clone();
        health
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        set_status(&health, &names, ServingStatus::Serving).await;
        let reflection = reflection(&names)?;

        // Layers, outermost first. Context before metrics, so the metrics of a
        // request and its logs share a span; metrics before tonic's timeout and
        // concurrency limit, so requests they cut off are counted too; the
        // refusal rewrite inside metrics, so they count the code callers see.
        // The header limit innermost of these, so its refusals are counted
        // and logged like any answer.
        let layers = tower::ServiceBuilder::new()
            .layer(ServerContextLayer)
            .layer(GrpcMetricsLayer::new(metrics.server.clone()))
            .map_response(super::refusals::rewrite)
            .layer(super::refusals::HeaderLimitLayer {
                max: config.max_header_bytes,
            });
        // Reset-flood protection stays on, with room for ordinary load: a
        // client that cancels calls at their deadline sends a RST_STREAM per
        // call, and h2's defaults (20 pending-accept resets, 1,024 local
        // error resets) answered a storm of those with GOAWAY, failing every
        // unrelated call on the connection (crates/runtime/tests/resets.rs).
        let router = tonic::transport::Server::builder()
            .http2_max_pending_accept_reset_streams(Some(config.http2_max_pending_accept_resets))
            .http2_max_local_error_reset_streams(Some(config.http2_max_local_error_resets))
            .http2_max_header_list_size(Some(config.http2_max_header_list_size))
            .timeout(config.request_timeout())
            .concurrency_limit_per_connection(config.concurrency_limit)
            .accept_http1(true)
            .layer(layers)
            .add_routes(services.routes)
            .add_service(health_service)
            .add_service(reflection);

        let admin_task = tokio::spawn(crate::admin::serve(admin, metrics, shutdown.clone()));
        let drain = Duration::from_millis(config.drain_delay_ms);
        let signal = {
            let (health, names, shutdown) = (health.clone(), names.clone(), shutdown.clone());
            async move {
                shutdown.cancelled().await;
                tracing::info!("shutting down: health not serving, draining");
                set_status(&health, &names, ServingStatus::NotServing).await;
                tokio::time::sleep(drain).await;
            }
        };
        // Nagle off, as tonic's own listener does: with it on, a response's
        // last frame waits for the peer's delayed ACK (up to 40 ms).
        let incoming = TcpIncoming::from(grpc).with_nodelay(Some(true));
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        let grace = drain + Duration::from_millis(config.shutdown_grace_ms);
        tokio::select! {
            res = serve => res?,
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("grace period over: dropping calls still in flight");
            }
        }
        shutdown.cancel();
        admin_task.await??;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// The health name a liveness probe asks for.
pub const LIVENESS: &str = "liveness";
/// The health name a readiness probe asks for.
pub const READINESS: &str = "readiness";

async fn set_status(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(READINESS, status).await;
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

fn reflection(
    names: &[&'static str],
) -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cityevents_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for name in names {
        builder = builder.with_service_name(*name);
    }
    Ok(builder.build_v1()?)
}

/// Binds `addr` (port 0 picks a free port; read it from `local_addr`).
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("bind {addr}: {e}"))
}
