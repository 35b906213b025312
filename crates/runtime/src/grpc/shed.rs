//! Load shedding at a service's door: at most `max` requests in flight
//! across all connections; the next one is refused at once (RESOURCE_EXHAUSTED
//! `OVERLOADED`, 503 on REST, `retry-after`) instead of queueing behind the
//! others until every caller times out. A request holds its place until its
//! response headers are ready, so a long-lived stream does not keep one.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use http::{Request, Response, StatusCode};
use tokio::sync::Semaphore;

use super::refusals::Refusal;

const OVERLOADED: Refusal = Refusal {
    reason: "OVERLOADED",
    message: "this server is busy; retry after the time given",
    http: StatusCode::SERVICE_UNAVAILABLE,
    retry_after: Some(1),
};

/// See the module docs; `max` of 0 sheds nothing.
#[derive(Clone, Debug)]
pub struct ShedLayer {
    places: Option<Arc<Semaphore>>,
    shed: prometheus::IntCounter,
}

impl ShedLayer {
    /// At most `max` in flight (0: no limit), counting refusals in `shed`.
    pub fn new(max: usize, shed: prometheus::IntCounter) -> Self {
        Self {
            places: (max > 0).then(|| Arc::new(Semaphore::new(max))),
            shed,
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;
    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`ShedLayer`].
#[derive(Clone, Debug)]
pub struct Shed<S> {
    inner: S,
    layer: ShedLayer,
}

impl<S, B, R> tower::Service<Request<B>> for Shed<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: From<String> + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let place = match &self.layer.places {
            None => None,
            Some(places) => match places.clone().try_acquire_owned() {
                Ok(place) => Some(place),
                Err(_) => {
                    self.layer.shed.inc();
                    let refused = OVERLOADED.respond(req.headers(), R::from);
                    return futures::future::ready(Ok(refused)).boxed();
                }
            },
        };
        let call = self.inner.call(req);
        async move {
            let res = call.await;
            drop(place);
            res
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[tokio::test]
    async fn past_the_limit_a_request_is_refused_at_once_and_a_place_freed_is_reused() {
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
        let slow = tower::service_fn(move |_: Request<()>| {
            let mut gate = gate_rx.clone();
            async move {
                gate.wait_for(|open| *open).await.ok();
                Ok::<_, std::convert::Infallible>(Response::new(String::from("done")))
            }
        });
        let shed = prometheus::IntCounter::new("shed", "shed").unwrap();
        let mut svc = ShedLayer::new(1, shed.clone()).layer(slow);
        let json = || {
            Request::builder()
                .header("content-type", "application/json")
                .body(())
                .unwrap()
        };

        let first = svc.ready().await.unwrap().call(json());
        let refused = svc.ready().await.unwrap().call(json()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["retry-after"], "1");
        assert!(refused.body().contains("OVERLOADED"), "{}", refused.body());
        assert_eq!(shed.get(), 1);

        gate_tx.send(true).unwrap();
        assert_eq!(first.await.unwrap().body(), "done");
        let grpc = Request::builder()
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let again = svc.ready().await.unwrap().call(grpc).await.unwrap();
        assert_eq!(again.body(), "done", "the place is free again");
    }

    #[tokio::test]
    async fn a_grpc_caller_is_refused_in_grpc_terms() {
        let svc = tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        });
        let shed = prometheus::IntCounter::new("shed", "shed").unwrap();
        let layer = ShedLayer::new(1, shed);
        let _held = layer.places.clone().unwrap().try_acquire_owned().unwrap();
        let grpc = Request::builder()
            .header("content-type", "application/grpc-web+proto")
            .body(())
            .unwrap();
        let refused = layer.layer(svc).oneshot(grpc).await.unwrap();
        assert_eq!(
            (
                &refused.headers()["grpc-status"],
                &refused.headers()["x-cityevents-error"]
            ),
            (
                &http::HeaderValue::from_static("8"),
                &http::HeaderValue::from_static("OVERLOADED")
            )
        );
    }
}
