//! Client-side balancing across a backend's replicas.
//!
//! A backend name (a headless Service) may resolve to several addresses. A
//! [`Discovery`] (`discovery.rs`) reports the current set — DNS re-resolved
//! periodically, an EndpointSlice watcher in a cluster — and [`Balanced`] keeps one
//! lazily connected channel per address and sends each request to the less
//! busy of two replicas picked at random (power of two choices over
//! in-flight requests; tonic's `balance_channel` sees no load and picks at
//! random). A new replica gets traffic from its first request on, without
//! touching the other connections; a removed one takes no new requests and
//! its connection closes when its last in-flight call ends.
//!
//! The balancer also bounds what one backend is asked at once: over
//! `max_in_flight` calls, the excess is answered at once with
//! RESOURCE_EXHAUSTED `OVERLOADED` and `retry-after`, instead of queueing
//! until deadlines pass. A request that never reached a replica (connection
//! refused, stream refused by a draining server) is sent to another one —
//! safe for every method, since the replica did nothing — and the replica is
//! skipped for a moment.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

use super::descriptors::{self, MethodKind};
pub use super::discovery::{Discovery, Dns, Fixed};
use crate::{Error, ErrorCode};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long a replica that refused a connection is skipped.
const EJECT_FOR: Duration = Duration::from_secs(1);
/// Replicas tried for one request that never got sent.
const MAX_ATTEMPTS: usize = 3;

/// One replica: its channel and what it is doing.
struct Replica {
    addr: SocketAddr,
    channel: Channel,
    in_flight: Arc<AtomicUsize>,
    skip_until: Mutex<Option<Instant>>,
}

impl Replica {
    fn skipped(&self, now: Instant) -> bool {
        self.skip_until
            .lock()
            .map(|t| t.is_some_and(|t| t > now))
            .unwrap_or(false)
    }
    fn skip(&self) {
        if let Ok(mut t) = self.skip_until.lock() {
            *t = Some(Instant::now() + EJECT_FOR);
        }
    }
}

struct Shared {
    /// The configured endpoint, for messages and logs.
    name: String,
    replicas: RwLock<Arc<Vec<Arc<Replica>>>>,
    /// How many replicas are known (waiters for the first set watch it).
    known: watch::Sender<usize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    connect_timeout: Duration,
    seed: AtomicU64,
    /// Ends the discovery task with the last clone of the balancer.
    _stop: DropGuard,
}

/// A cloneable service balancing gRPC calls over one backend's replicas.
#[derive(Clone)]
pub struct Balanced {
    shared: Arc<Shared>,
}

impl Balanced {
    /// Starts following `discovery` (a task that ends with the last clone).
    pub fn new(
        name: impl Into<String>,
        mut discovery: Box<dyn Discovery>,
        max_in_flight: usize,
        connect_timeout: Duration,
    ) -> Self {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            name: name.into(),
            replicas: RwLock::new(Arc::new(Vec::new())),
            known: watch::Sender::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: max_in_flight.max(1),
            connect_timeout,
            seed: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            _stop: stop.clone().drop_guard(),
        });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let set = tokio::select! {
                    () = stop.cancelled() => return,
                    set = discovery.next() => set,
                };
                let (Some(set), Some(shared)) = (set, weak.upgrade()) else {
                    return;
                };
                shared.update(set);
            }
        });
        Self { shared }
    }

    /// The addresses in use now.
    pub fn replicas(&self) -> Vec<SocketAddr> {
        self.shared.snapshot().iter().map(|r| r.addr).collect()
    }
}

impl Shared {
    fn snapshot(&self) -> Arc<Vec<Arc<Replica>>> {
        self.replicas
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Keeps the replicas still listed (their connections untouched), adds
    /// new ones lazily, drops the rest (they close when idle).
    fn update(&self, set: Vec<SocketAddr>) {
        let old = self.snapshot();
        let mut next = Vec::with_capacity(set.len());
        for addr in set {
            if let Some(r) = old.iter().find(|r| r.addr == addr) {
                next.push(r.clone());
                continue;
            }
            match Endpoint::from_shared(format!("http://{addr}")) {
                Ok(e) => next.push(Arc::new(Replica {
                    addr,
                    channel: e
                        .connect_timeout(self.connect_timeout)
                        .tcp_nodelay(true)
                        .connect_lazy(),
                    in_flight: Arc::new(AtomicUsize::new(0)),
                    skip_until: Mutex::new(None),
                })),
                Err(e) => tracing::warn!(%addr, error = %e, "unusable backend address"),
            }
        }
        let added = next
            .iter()
            .filter(|r| !old.iter().any(|o| o.addr == r.addr))
            .count();
        let removed = old
            .iter()
            .filter(|o| !next.iter().any(|r| r.addr == o.addr))
            .count();
        if added + removed > 0 {
            let addrs: Vec<String> = next.iter().map(|r| r.addr.to_string()).collect();
            tracing::info!(backend = %self.name, added, removed, replicas = ?addrs, "backend replicas changed");
        }
        let n = next.len();
        match self.replicas.write() {
            Ok(mut r) => *r = Arc::new(next),
            Err(p) => *p.into_inner() = Arc::new(next),
        }
        self.known.send_replace(n);
    }

    /// A cheap random number (splitmix64 over a shared counter).
    fn random(&self) -> u64 {
        let mut z = self
            .seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The less busy of two random replicas not tried yet, preferring ones
    /// not skipped.
    fn pick(&self, tried: &[SocketAddr]) -> Option<Arc<Replica>> {
        let all = self.snapshot();
        let now = Instant::now();
        let fresh: Vec<&Arc<Replica>> = all.iter().filter(|r| !tried.contains(&r.addr)).collect();
        let up: Vec<&Arc<Replica>> = fresh.iter().copied().filter(|r| !r.skipped(now)).collect();
        let pool = if up.is_empty() { fresh } else { up };
        match pool.len() {
            0 => None,
            1 => Some(pool[0].clone()),
            n => {
                let r = self.random();
                let a = (r % n as u64) as usize;
                let b = (a + 1 + ((r >> 32) % (n as u64 - 1)) as usize) % n;
                let load = |i: usize| pool[i].in_flight.load(Ordering::Relaxed);
                Some(pool[if load(b) < load(a) { b } else { a }].clone())
            }
        }
    }

    async fn wait_for_replicas(&self) -> bool {
        let mut rx = self.known.subscribe();
        tokio::time::timeout(self.connect_timeout, rx.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Service<Request<Body>> for Balanced {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for its own replica's channel instead.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            if shared.in_flight.load(Ordering::Relaxed) >= shared.max_in_flight {
                return Ok(refusal(overloaded(&shared.name)));
            }
            if shared.snapshot().is_empty() && !shared.wait_for_replicas().await {
                return Ok(refusal(Error::new(
                    ErrorCode::Unavailable,
                    format!("no replica of {} is known", shared.name),
                )));
            }
            // A single request message can be sent again; a client stream
            // cannot.
            let single = descriptors::method(req.uri().path())
                .is_some_and(|m| matches!(m.kind, MethodKind::Unary | MethodKind::ServerStream));
            if !single {
                let Some(replica) = shared.pick(&[]) else {
                    return Ok(refusal(no_replica(&shared.name)));
                };
                return send(&replica, req, &shared.in_flight).await;
            }
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let mut tried = Vec::new();
            loop {
                let Some(replica) = shared.pick(&tried) else {
                    return Ok(refusal(no_replica(&shared.name)));
                };
                tried.push(replica.addr);
                match send(&replica, rebuild(&parts, bytes.clone()), &shared.in_flight).await {
                    Err(e) if never_sent(&*e) => {
                        replica.skip();
                        tracing::debug!(backend = %shared.name, replica = %replica.addr, error = %e, "replica refused the request; trying another");
                        if tried.len() >= MAX_ATTEMPTS {
                            return Err(e);
                        }
                    }
                    other => return other,
                }
            }
        })
    }
}

/// Sends `req` to `replica`, counting it in flight until its response body
/// ends (a server stream is load as long as it lasts).
async fn send(
    replica: &Replica,
    req: Request<Body>,
    total: &Arc<AtomicUsize>,
) -> Result<Response<Body>, BoxError> {
    let total = InFlight::enter(total.clone());
    let mine = InFlight::enter(replica.in_flight.clone());
    let res = replica.channel.clone().oneshot(req).await?;
    Ok(res.map(|inner| {
        Body::new(Tracked {
            inner,
            _held: (total, mine),
        })
    }))
}

/// Whether the failure happened before the replica saw the request.
fn never_sent(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

fn overloaded(name: &str) -> Error {
    Error::new(
        ErrorCode::ResourceExhausted,
        format!("{name} is saturated; retry shortly"),
    )
    .with_reason("OVERLOADED")
    .with_retry_after(Duration::from_secs(1))
}

fn no_replica(name: &str) -> Error {
    Error::new(
        ErrorCode::Unavailable,
        format!("no replica of {name} answers"),
    )
}

fn refusal(err: Error) -> Response<Body> {
    tonic::Status::from(err).into_http()
}

/// A copy of a buffered request, to send again.
pub(super) fn rebuild(parts: &http::request::Parts, body: Bytes) -> Request<Body> {
    let mut req = Request::new(Body::new(Full::new(body)));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    req
}

/// One in-flight call on a counter; leaves it when dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its call counted until it ends.
struct Tracked {
    inner: Body,
    _held: (InFlight, InFlight),
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokio::sync::mpsc;
    use tonic::transport::server::TcpIncoming;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::health_server::HealthServer;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
    use tonic_health::server::{HealthReporter, HealthService};

    use super::*;

    /// A backend replica: the health service, counting the calls it gets.
    struct Replica {
        addr: SocketAddr,
        calls: Arc<AtomicUsize>,
        stop: CancellationToken,
    }

    async fn replica() -> Replica {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let health = HealthService::from_health_reporter(HealthReporter::new());
        let svc = HealthServer::with_interceptor(health, move |req| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(req)
        });
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
                    signal.cancelled().await
                }),
        );
        Replica { addr, calls, stop }
    }

    /// Discovery a test drives by hand.
    struct Scripted(mpsc::UnboundedReceiver<Vec<SocketAddr>>);

    impl Discovery for Scripted {
        fn next(&mut self) -> BoxFuture<'_, Option<Vec<SocketAddr>>> {
            Box::pin(self.0.recv())
        }
    }

    fn client(b: &Balanced) -> HealthClient<Balanced> {
        HealthClient::new(b.clone())
    }

    async fn check(b: &Balanced) -> Result<HealthCheckResponse, tonic::Status> {
        client(b)
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner())
    }

    async fn until(mut ok: impl FnMut() -> bool) {
        for _ in 0..200 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition never held");
    }

    #[tokio::test]
    async fn every_replica_gets_a_share_of_the_calls() {
        let (a, b) = (replica().await, replica().await);
        let lb = Balanced::new(
            "test",
            Box::new(Fixed::new(vec![a.addr, b.addr])),
            64,
            Duration::from_secs(1),
        );
        let calls: Vec<_> = (0..200).map(|_| check(&lb)).collect();
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        let (na, nb) = (
            a.calls.load(Ordering::SeqCst),
            b.calls.load(Ordering::SeqCst),
        );
        assert_eq!(na + nb, 200);
        assert!(na >= 40 && nb >= 40, "a got {na}, b got {nb}");
    }

    #[tokio::test]
    async fn a_new_replica_gets_traffic_and_a_removed_one_gets_none() {
        let (a, b) = (replica().await, replica().await);
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(vec![a.addr]).unwrap();
        let lb = Balanced::new("test", Box::new(Scripted(rx)), 64, Duration::from_secs(1));
        for _ in 0..20 {
            check(&lb).await.unwrap();
        }
        assert_eq!(a.calls.load(Ordering::SeqCst), 20);

        tx.send(vec![a.addr, b.addr]).unwrap();
        until(|| lb.replicas().len() == 2).await;
        for _ in 0..100 {
            check(&lb).await.unwrap();
        }
        assert!(
            b.calls.load(Ordering::SeqCst) > 10,
            "the new replica takes calls"
        );

        tx.send(vec![b.addr]).unwrap();
        until(|| lb.replicas() == vec![b.addr]).await;
        let before = a.calls.load(Ordering::SeqCst);
        for _ in 0..50 {
            check(&lb).await.unwrap();
        }
        assert_eq!(
            a.calls.load(Ordering::SeqCst),
            before,
            "a removed replica gets nothing"
        );
    }

    #[tokio::test]
    async fn a_stopped_replica_costs_no_call() {
        let (a, b) = (replica().await, replica().await);
        let lb = Balanced::new(
            "test",
            Box::new(Fixed::new(vec![a.addr, b.addr])),
            64,
            Duration::from_secs(1),
        );
        for _ in 0..20 {
            check(&lb).await.unwrap();
        }
        b.stop.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut failed = HashMap::new();
        for _ in 0..200 {
            if let Err(s) = check(&lb).await {
                *failed.entry(s.code()).or_insert(0) += 1;
            }
        }
        assert!(
            failed.is_empty(),
            "calls failed after one replica stopped: {failed:?}"
        );
    }

    #[tokio::test]
    async fn calls_over_the_in_flight_bound_are_refused_at_once() {
        let a = replica().await;
        let lb = Balanced::new(
            "test",
            Box::new(Fixed::new(vec![a.addr])),
            2,
            Duration::from_secs(1),
        );
        // Two open Watch streams hold the two places.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(
                client(&lb)
                    .watch(HealthCheckRequest::default())
                    .await
                    .unwrap(),
            );
        }
        let refused = check(&lb).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            refused.metadata().get("x-cityevents-error").unwrap(),
            "OVERLOADED"
        );
        assert!(refused.metadata().get("retry-after").is_some());
        drop(held);
        until(|| lb.shared.in_flight.load(Ordering::SeqCst) == 0).await;
        check(&lb).await.unwrap();
    }

    #[tokio::test]
    async fn a_name_is_resolved_to_its_addresses() {
        let a = replica().await;
        let name = format!("localhost:{}", a.addr.port());
        let set = Dns::new(&name, Duration::from_millis(100))
            .next()
            .await
            .unwrap();
        assert!(set.contains(&a.addr), "{set:?}");
        let lb = Balanced::new(
            "localhost",
            Box::new(Dns::new(name, Duration::from_millis(100))),
            8,
            Duration::from_secs(1),
        );
        check(&lb).await.unwrap();
    }
}
