//! The admin HTTP listener: `/metrics` for Prometheus and `/healthz` for
//! liveness. Readiness is the gRPC health service (native gRPC probes).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Serves the admin endpoints until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn render(
    State(metrics): State<Metrics>,
) -> ([(http::header::HeaderName, &'static str); 1], String) {
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
