//! Assembles gRPC clients: lazy connections to every replica of a backend,
//! balanced per request ([`super::balance`]), deadlines, a client span per
//! call whose context travels in `traceparent`, the caller's token
//! forwarded, client metrics, and retries for idempotent methods only,
//! bounded per call and by a budget per backend.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use std::sync::{Arc, Mutex};

use super::balance::{Balanced, Discovery, Dns, Fixed, rebuild};
use super::context::{CallContext, HeaderInjector, format_grpc_timeout};
use super::descriptors;
use super::endpoint_slices::EndpointSlices;
use super::metrics_layer::{GrpcMetricsLayer, status_of};
use crate::metrics::Metrics;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A cloneable channel for generated clients, e.g. `AuthServiceClient::new(ch)`.
pub type GrpcChannel = BoxCloneSyncService<Request<Body>, Response<Body>, ChannelError>;

/// A transport failure under a [`GrpcChannel`]. A concrete type rather than a
/// boxed trait object, which trips rustc's higher-ranked `Send` checks in
/// async code; tonic finds the cause through `source()`.
#[derive(Debug)]
pub struct ChannelError(BoxError);

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// How a backend's replicas are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMode {
    /// Resolve the endpoint's name again every `resolve_interval_ms`.
    #[default]
    Dns,
    /// Watch the EndpointSlices of the Service the endpoint's host names
    /// (`name` or `name.namespace…`) through the Kubernetes API.
    Kubernetes,
}

/// How to reach one upstream service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// `http://host:port`. A name is resolved again every
    /// `resolve_interval_ms` and every address it yields is a replica (a
    /// headless Service balances across its pods); an IP is one replica.
    pub endpoint: String,
    /// `dns` (default) or `kubernetes` (EndpointSlices; the pod must be
    /// allowed to read them).
    pub discovery: DiscoveryMode,
    /// Fixed replica addresses, when the replicas are known up front (a
    /// static list instead of resolving `endpoint`, which still names the
    /// backend in logs and errors).
    pub addresses: Vec<std::net::SocketAddr>,
    /// Deadline for a call when the inbound call has none left to pass on.
    pub timeout_ms: u64,
    /// TCP connect timeout.
    pub connect_timeout_ms: u64,
    /// Extra attempts for idempotent methods failing with UNAVAILABLE.
    pub max_retries: u32,
    /// How often a backend name is resolved again.
    pub resolve_interval_ms: u64,
    /// Calls to this backend at once; the excess is refused at once with
    /// RESOURCE_EXHAUSTED `OVERLOADED` and `retry-after`.
    pub max_in_flight: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            discovery: DiscoveryMode::Dns,
            addresses: Vec::new(),
            timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            max_retries: 2,
            resolve_interval_ms: 5_000,
            max_in_flight: 1_024,
        }
    }
}

/// Builds a balanced, lazily connecting channel to `cfg.endpoint`'s
/// replicas, found as `cfg.discovery` says.
pub fn channel(cfg: &ClientConfig, metrics: &Metrics) -> anyhow::Result<GrpcChannel> {
    Ok(channel_over(cfg, discovery(cfg)?, metrics))
}

/// Where `cfg`'s replicas come from: its fixed `addresses`, the IP its
/// endpoint names, or the name's DNS records or EndpointSlices.
pub fn discovery(cfg: &ClientConfig) -> anyhow::Result<Box<dyn Discovery>> {
    let uri: http::Uri = cfg
        .endpoint
        .parse()
        .map_err(|e| anyhow::anyhow!("client endpoint {:?}: {e}", cfg.endpoint))?;
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        anyhow::bail!(
            "client endpoint {:?}: expected http://host:port",
            cfg.endpoint
        );
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(match host.parse::<std::net::IpAddr>() {
        _ if !cfg.addresses.is_empty() => Box::new(Fixed::new(cfg.addresses.clone())),
        Ok(ip) => Box::new(Fixed::new(vec![(ip, port).into()])),
        Err(_) if cfg.discovery == DiscoveryMode::Kubernetes => {
            Box::new(EndpointSlices::new(host, port))
        }
        Err(_) => Box::new(Dns::new(
            format!("{host}:{port}"),
            Duration::from_millis(cfg.resolve_interval_ms.max(100)),
        )),
    })
}

/// A channel to the replicas `discovery` reports (the chart's EndpointSlice
/// watcher, or a test's fixed set).
pub fn channel_over(
    cfg: &ClientConfig,
    discovery: Box<dyn Discovery>,
    metrics: &Metrics,
) -> GrpcChannel {
    let channel = Balanced::new(
        cfg.endpoint.clone(),
        discovery,
        cfg.max_in_flight,
        Duration::from_millis(cfg.connect_timeout_ms),
    );
    // Outermost first: the context layer opens the client span and sets the
    // headers once per logical call; metrics count logical calls; retries
    // repeat the call on the channel underneath.
    let svc = tower::ServiceBuilder::new()
        .layer(ClientContextLayer {
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
        .layer(GrpcMetricsLayer::new(metrics.client.clone()))
        .layer(RetryLayer {
            max_retries: cfg.max_retries,
            budget: Arc::new(Budget::default()),
        })
        .service(channel)
        .map_response(|res: Response<_>| res.map(Body::new))
        .map_err(ChannelError);
    BoxCloneSyncService::new(svc)
}

/// Sets `traceparent`, `authorization` (when inherited) and `grpc-timeout`.
#[derive(Clone, Debug)]
struct ClientContextLayer {
    timeout: Duration,
}

impl<S> Layer<S> for ClientContextLayer {
    type Service = ClientContext<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientContext {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone, Debug)]
struct ClientContext<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for ClientContext<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let path = req.uri().path().trim_start_matches('/').to_owned();
        let span = tracing::info_span!("grpc.client", otel.name = %path, otel.kind = "client", rpc.system = "grpc");
        let cx = span.context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut HeaderInjector(req.headers_mut()))
        });
        let inherited = CallContext::current().unwrap_or_default();
        let headers = req.headers_mut();
        if let Some(auth) = inherited.authorization {
            headers.entry(http::header::AUTHORIZATION).or_insert(auth);
        }
        let left = inherited
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = left.map_or(self.timeout, |l| l.min(self.timeout));
        if let Ok(v) = HeaderValue::from_str(&format_grpc_timeout(timeout)) {
            headers.insert("grpc-timeout", v);
        }
        self.inner.call(req).instrument(span)
    }
}

/// Retries a backend may spend: a fifth of its calls, plus ten a second
/// when calls are few, saved up to a hundred. When the backend is down,
/// retries stop at that share instead of multiplying the load on it.
#[derive(Debug)]
struct Budget {
    /// (tokens, last refill)
    state: Mutex<(f64, Instant)>,
}

impl Budget {
    const PER_CALL: f64 = 0.2;
    const PER_SECOND: f64 = 10.0;
    const MAX: f64 = 100.0;

    fn deposit(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = (s.0 + Self::PER_CALL).min(Self::MAX);
        }
    }

    fn withdraw(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * Self::PER_SECOND;
        *s = ((s.0 + refill).min(Self::MAX), now);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            state: Mutex::new((Self::PER_SECOND, Instant::now())),
        }
    }
}

#[derive(Clone, Debug)]
struct RetryLayer {
    max_retries: u32,
    budget: Arc<Budget>,
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            max_retries: self.max_retries,
            budget: self.budget.clone(),
        }
    }
}

/// Retries idempotent unary calls on UNAVAILABLE with exponential backoff,
/// within the backend's budget.
#[derive(Clone, Debug)]
struct Retry<S> {
    inner: S,
    max_retries: u32,
    budget: Arc<Budget>,
}

impl<S, ResBody> Service<Request<Body>> for Retry<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<ResBody>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone is not ready yet; the polled original goes to this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let retryable = descriptors::method(req.uri().path())
            .is_some_and(|m| m.idempotent && m.kind == descriptors::MethodKind::Unary);
        self.budget.deposit();
        if !retryable || self.max_retries == 0 {
            let fut = inner.call(req);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let max = self.max_retries;
        let budget = self.budget.clone();
        Box::pin(
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect().await?.to_bytes();
                let mut attempt = 0;
                loop {
                    let res = inner
                        .call(rebuild(&parts, bytes.clone()))
                        .await
                        .map_err(Into::into);
                    let unavailable = match &res {
                        Err(_) => true,
                        Ok(r) => status_of(r.headers()) == Some(tonic::Code::Unavailable),
                    };
                    if !unavailable || attempt >= max || !budget.withdraw() {
                        return res;
                    }
                    attempt += 1;
                    tracing::debug!(attempt, "retrying idempotent call");
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                    ServiceExt::<Request<Body>>::ready(&mut inner)
                        .await
                        .map_err(Into::into)?;
                }
            }
            .in_current_span(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn unavailable() -> Response<Body> {
        let mut res = Response::new(Body::empty());
        res.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("14"));
        res
    }

    async fn attempts_for(path: &str) -> usize {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |_req: Request<Body>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>(unavailable()) }
        });
        let mut svc = RetryLayer {
            max_retries: 2,
            budget: Arc::new(Budget::default()),
        }
        .layer(inner);
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(status_of(res.headers()), Some(tonic::Code::Unavailable));
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn idempotent_calls_are_retried_a_bounded_number_of_times() {
        assert_eq!(
            attempts_for("/cityevents.auth.v1.AuthService/GetJwks").await,
            3
        );
    }

    #[test]
    fn when_a_backend_keeps_failing_retries_stay_within_the_budget() {
        let budget = Budget::default();
        let mut retries = 0;
        for _ in 0..500 {
            budget.deposit();
            // Every call fails and would be retried twice.
            for _ in 0..2 {
                if budget.withdraw() {
                    retries += 1;
                }
            }
        }
        // A fifth of the 500 calls and the ten saved at the start (the
        // refill of the microseconds this took is nothing).
        assert!(
            (105..=112).contains(&retries),
            "{retries} retries for 500 calls"
        );
    }

    #[tokio::test]
    async fn calls_with_side_effects_are_never_retried() {
        assert_eq!(
            attempts_for("/cityevents.auth.v1.AuthService/Login").await,
            1
        );
        assert_eq!(
            attempts_for("/cityevents.join.v1.JoinService/Join").await,
            1
        );
    }

    #[tokio::test]
    async fn outbound_calls_carry_the_trace_the_token_and_the_remaining_deadline() {
        crate::telemetry::init("test", &Default::default()).unwrap();
        let inner = tower::service_fn(|req: Request<()>| async move {
            Ok::<_, BoxError>(Response::new(req.headers().clone()))
        });
        let mut svc = ClientContextLayer {
            timeout: Duration::from_secs(30),
        }
        .layer(inner);
        let parent = tracing::info_span!("handler");
        let cx = opentelemetry::global::get_text_map_propagator(|p| {
            let mut h = http::HeaderMap::new();
            h.insert(
                "traceparent",
                HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            );
            p.extract(&super::super::context::HeaderExtractor(&h))
        });
        let _ = parent.set_parent(cx);
        let call = CallContext {
            authorization: Some(HeaderValue::from_static("Bearer xyz")),
            deadline: Some(Instant::now() + Duration::from_secs(2)),
        };
        let req = Request::builder()
            .uri("/cityevents.auth.v1.AuthService/GetMe")
            .body(())
            .unwrap();
        let headers = call
            .scope(async { parent.in_scope(|| svc.call(req)).await })
            .await
            .unwrap()
            .into_body();
        let tp = headers.get("traceparent").unwrap().to_str().unwrap();
        assert!(
            tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{tp}"
        );
        assert!(
            !tp.contains("00f067aa0ba902b7"),
            "a new client span is the parent: {tp}"
        );
        assert_eq!(headers.get("authorization").unwrap(), "Bearer xyz");
        let timeout = super::super::context::parse_grpc_timeout(
            headers.get("grpc-timeout").unwrap().to_str().unwrap(),
        );
        assert!(
            timeout.unwrap() <= Duration::from_secs(2),
            "the inbound deadline bounds the outbound one"
        );
    }
}
