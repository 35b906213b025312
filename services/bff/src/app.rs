//! Wiring: config in, a runnable host out — the public services on one port
//! for native gRPC, gRPC-web (binary and text), REST/JSON and server-sent
//! events, behind CORS, plus the live-update subscription.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use http::{HeaderName, HeaderValue, Method, Request};
use prost_reflect::DescriptorPool;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use cityevents_proto::cityevents::api::v1::{
    account_service_server::AccountServiceServer, discovery_service_server::DiscoveryServiceServer,
    events_service_server::EventsServiceServer, live_service_server::LiveServiceServer,
    registrations_service_server::RegistrationsServiceServer,
};
use cityevents_proto::cityevents::auth::v1::auth_service_client::AuthServiceClient;
use cityevents_proto::cityevents::event::v1::event_service_client::EventServiceClient;
use cityevents_proto::cityevents::feed::v1::feed_service_client::FeedServiceClient;
use cityevents_proto::cityevents::join::v1::join_service_client::JoinServiceClient;
use cityevents_proto::cityevents::mail::v1::mail_service_client::MailServiceClient;
use cityevents_proto::cityevents::media::v1::media_service_client::MediaServiceClient;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::ratelimit::RateLimiter;
use cityevents_runtime::redis::Redis;

use crate::api::{Api, Backends};
use crate::config::{Config, EdgeConfig};
use crate::edge::Edge;
use crate::http_metrics::HttpMetrics;
use crate::live::{Hub, Pace};
use crate::media::MediaHttp;
use crate::rest::Rest;
use crate::rest::routes::Table;
use cityevents_runtime::grpc::shed::ShedLayer;

/// Request headers browsers may send (gRPC-web's and ours).
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "idempotency-key",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "traceparent",
];
/// Response headers browser code may read.
const EXPOSED_HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-cityevents-error",
    "retry-after",
];

pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    cfg.validate()?;
    let metrics = Metrics::new()?;
    let redis = Redis::connect(&cfg.redis).await?;
    let auth = channel(&cfg.auth, &metrics)?;
    let verifier =
        cityevents_authn::remote(&cfg.verifier, auth.clone(), redis.conn.clone(), &metrics);
    let edge = Arc::new(Edge {
        verifier: Arc::new(verifier),
        limiter: RateLimiter::new(redis, metrics.redis_calls("rate_limit")),
        client_address: cfg.edge.trusted_proxies.parse()?,
        per_user: cfg.edge.per_user,
        per_address: cfg.edge.per_address,
    });
    let backends = Backends {
        auth: AuthServiceClient::new(auth),
        events: EventServiceClient::new(channel(&cfg.event, &metrics)?),
        join: JoinServiceClient::new(channel(&cfg.join, &metrics)?),
        feed: FeedServiceClient::new(channel(&cfg.feed, &metrics)?),
        mail: MailServiceClient::new(channel(&cfg.mail, &metrics)?),
        media: MediaServiceClient::new(channel(&cfg.media, &metrics)?),
    };
    let media = MediaHttp {
        edge: edge.clone(),
        client: backends.media.clone(),
        pool: DescriptorPool::decode(cityevents_proto::FILE_DESCRIPTOR_SET)?,
    };
    let heartbeat = Duration::from_secs(cfg.live.heartbeat_secs.max(1));
    let pace = Pace {
        heartbeat,
        stall: Duration::from_secs(cfg.live.stall_secs.max(1)),
    };
    let hub = Hub::new(cfg.live.max_watchers, pace, metrics.registry())?;
    let nats = cityevents_messaging::connect(&cfg.nats).await?.client();
    let api = Api::new(edge, backends, hub.clone());

    let max = cfg.edge.max_body_bytes;
    let services = ServiceSet::new()
        .with(AccountServiceServer::new(api.clone()).max_decoding_message_size(max))
        .with(EventsServiceServer::new(api.clone()).max_decoding_message_size(max))
        .with(RegistrationsServiceServer::new(api.clone()).max_decoding_message_size(max))
        .with(DiscoveryServiceServer::new(api.clone()).max_decoding_message_size(max))
        .with(LiveServiceServer::new(api).max_decoding_message_size(max));
    let pool = DescriptorPool::decode(cityevents_proto::FILE_DESCRIPTOR_SET)?;
    let table = Table::from_pool(&pool, &SERVED)?;
    let rest = Rest::new(table, services.routes(), max, heartbeat, media);
    let cors = cors(&cfg.edge)?;
    let shed_total = prometheus::IntCounter::new(
        "edge_shed_total",
        "Calls refused at once because the replica had edge.max_in_flight in flight",
    )?;
    metrics.registry().register(Box::new(shed_total.clone()))?;
    let shed = ShedLayer::new(cfg.edge.max_in_flight, shed_total);
    let grpc_methods = pool
        .services()
        .filter(|s| SERVED.contains(&s.full_name()))
        .flat_map(|s| {
            let name = s.full_name().to_owned();
            s.methods()
                .map(move |m| format!("/{name}/{}", m.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    let http_metrics = HttpMetrics::register(metrics.registry(), grpc_methods)?;
    let services = services.map_router(move |grpc| {
        let with_rest = grpc.fallback(move |req| rest.clone().handle(req));
        // gRPC-web's layer answers 400 to any other HTTP/1.1 request, so
        // only gRPC-web requests go through it.
        let web = tonic_web::GrpcWebLayer::new().layer(with_rest.clone());
        let split = tower::service_fn(move |req: Request<axum::body::Body>| {
            let (web, plain, http_metrics) = (web.clone(), with_rest.clone(), http_metrics.clone());
            async move {
                if is_grpc(req.headers()) {
                    return Ok::<_, Infallible>(plain.oneshot(req).await?.into_response());
                }
                let started = http_metrics.start(&req);
                let res = if is_grpc_web(req.headers()) {
                    web.oneshot(req).await?.into_response()
                } else {
                    plain.oneshot(req).await?.into_response()
                };
                http_metrics.finish(started, &res);
                Ok::<_, Infallible>(res)
            }
        });
        // CORS outermost, so a browser can read a refusal; then shedding,
        // before any work is spent on a call that will not be served.
        let edge = ServiceBuilder::new().layer(cors).layer(shed).service(split);
        axum::Router::new().fallback_service(edge)
    });
    let prefix = cfg.nats.stream_prefix.clone();
    Ok(Host::bind(cfg.server, metrics, services)
        .await?
        .task("live-updates", move |t| hub.follow(nats, prefix, t)))
}

/// The public services, by full name.
pub const SERVED: [&str; 5] = [
    "cityevents.api.v1.AccountService",
    "cityevents.api.v1.EventsService",
    "cityevents.api.v1.RegistrationsService",
    "cityevents.api.v1.DiscoveryService",
    "cityevents.api.v1.LiveService",
];

/// Native gRPC (measured by `grpc_server_*`), not gRPC-web.
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/grpc") && !ct.starts_with("application/grpc-web")
        })
}

fn is_grpc_web(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc-web"))
}

fn cors(edge: &EdgeConfig) -> anyhow::Result<CorsLayer> {
    let origins = edge
        .cors_origins
        .iter()
        .map(|o| HeaderValue::from_str(o))
        .collect::<Result<Vec<_>, _>>()?;
    let names = |list: &[&str]| {
        list.iter()
            .map(|h| HeaderName::from_bytes(h.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ])
        .allow_headers(names(ALLOWED_HEADERS)?)
        .expose_headers(names(EXPOSED_HEADERS)?)
        .max_age(Duration::from_secs(600)))
}
