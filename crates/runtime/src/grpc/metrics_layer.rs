//! Tower layer counting RPCs with the gRPC ecosystem's metric names.
//!
//! The status of a unary success arrives in the trailers, after the handler
//! returned, so the response body is wrapped and the RPC is recorded when its
//! trailers pass (or at once for trailers-only errors). A response dropped
//! before its status counts as `Canceled`. The same layer serves clients.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::descriptors;
use crate::metrics::GrpcMetrics;

/// Adds `grpc_*_started_total`, `grpc_*_handled_total` and `grpc_*_handling_seconds`.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
}

impl GrpcMetricsLayer {
    /// Counts into `metrics` (the server or the client side of a registry).
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

struct Recorder {
    metrics: GrpcMetrics,
    labels: [&'static str; 3],
    start: Instant,
    done: bool,
}

impl Recorder {
    fn start(metrics: GrpcMetrics, path: &str) -> Self {
        let labels = match descriptors::method(path) {
            Some(m) => [m.service.as_str(), m.method.as_str(), m.kind.as_str()],
            // Unknown paths share one label set: no unbounded cardinality.
            None => ["unknown", "unknown", "unknown"],
        };
        metrics.started.with_label_values(&labels).inc();
        Self {
            metrics,
            labels,
            start: Instant::now(),
            done: false,
        }
    }

    fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let [s, m, t] = self.labels;
        self.metrics
            .handled
            .with_label_values(&[s, m, t, code_label(code)])
            .inc();
        self.metrics
            .seconds
            .with_label_values(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

/// The status in `grpc-status`, if the map has one.
pub(crate) fn status_of(headers: &HeaderMap) -> Option<tonic::Code> {
    let v = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(v))
}

/// The label value grpc-go and the Prometheus ecosystem use for a code.
pub fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcMetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let recorder = Recorder::start(self.metrics.clone(), req.uri().path());
        MeteredFuture {
            inner: self.inner.call(req),
            recorder: Some(recorder),
        }
    }
}

pin_project! {
    /// Response future of [`GrpcMetricsService`].
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        recorder: Option<Recorder>,
    }
}

impl<F, B, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<MeteredBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut recorder = this.recorder.take();
        Poll::Ready(match result {
            Ok(res) => {
                if let (Some(code), Some(r)) = (status_of(res.headers()), recorder.as_mut()) {
                    r.finish(code);
                }
                Ok(res.map(|inner| MeteredBody { inner, recorder }))
            }
            Err(e) => {
                if let Some(r) = recorder.as_mut() {
                    r.finish(tonic::Code::Unavailable);
                }
                Err(e)
            }
        })
    }
}

pin_project! {
    /// Response body that records the RPC when its trailers pass.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        recorder: Option<Recorder>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(r) = this.recorder.as_mut() {
            match &frame {
                Some(Ok(f)) => {
                    if let Some(code) = f.trailers_ref().and_then(status_of) {
                        r.finish(code);
                    }
                }
                Some(Err(_)) => r.finish(tonic::Code::Unknown),
                None => r.finish(tonic::Code::Unknown),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
