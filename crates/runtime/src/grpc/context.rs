//! Per-call context on the server side: the W3C trace context extracted from
//! metadata (so a request's spans join the caller's trace), and what an
//! outbound call made while handling it should forward: the caller's token
//! and the remaining deadline.
//!
//! The context lives in a task-local scope around the handler, so clients
//! built by [`super::client`] forward it without handlers passing it along.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Request, Response};
use opentelemetry::propagation::{Extractor, Injector};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::descriptors;

/// What a handler's outbound calls inherit from the inbound call.
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// The caller's `authorization` metadata, forwarded as is.
    pub authorization: Option<HeaderValue>,
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
}

tokio::task_local! {
    static CALL: CallContext;
}

impl CallContext {
    /// The context of the call being handled, if any.
    pub fn current() -> Option<CallContext> {
        CALL.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with `self` as the current call context.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CALL.scope(self, fut).await
    }

    fn from_headers(headers: &HeaderMap) -> Self {
        let deadline = headers
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| Instant::now() + d);
        Self {
            authorization: headers.get(http::header::AUTHORIZATION).cloned(),
            deadline,
        }
    }
}

/// Parses a `grpc-timeout` value such as `250m` or `5S`.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats a duration as a `grpc-timeout` value (milliseconds, at least 1).
pub fn format_grpc_timeout(d: Duration) -> String {
    format!("{}m", d.as_millis().clamp(1, 99_999_999))
}

pub(crate) struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

pub(crate) struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Opens a span per RPC, parented on the caller's `traceparent`, and sets the
/// [`CallContext`] for the handler.
#[derive(Clone, Debug, Default)]
pub struct ServerContextLayer;

impl<S> Layer<S> for ServerContextLayer {
    type Service = ServerContextService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ServerContextService { inner }
    }
}

/// See [`ServerContextLayer`].
#[derive(Clone, Debug)]
pub struct ServerContextService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for ServerContextService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let span = request_span(&req);
        let call = CallContext::from_headers(req.headers());
        let fut = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let res = call.scope(fut).await;
                if let Ok(r) = &res {
                    log_early_status(r.headers());
                }
                res
            }
            .instrument(span),
        )
    }
}

fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let path = req.uri().path();
    let (service, method) = match descriptors::method(path) {
        Some(m) => (m.service.as_str(), m.method.as_str()),
        None => ("unknown", "unknown"),
    };
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(req.headers()))
    });
    // A REST call's path carries ids: its span is named by the path with
    // every id-like segment as `{id}`.
    let name = match descriptors::method(path) {
        Some(_) => path.trim_start_matches('/').to_owned(),
        None => format!("{} {}", req.method(), path_template(path)),
    };
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        trace_id = tracing::field::Empty,
    );
    let _ = span.set_parent(parent);
    span.record("trace_id", crate::telemetry::trace_id(&span));
    span
}

/// `path` with each segment that looks like an id or a secret (a digit
/// anywhere but a version like `v1`, or over 20 characters) as `{id}`; a
/// `:verb` suffix is kept.
fn path_template(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let (head, verb) = match seg.split_once(':') {
                Some((h, v)) => (h, Some(v)),
                None => (seg, None),
            };
            let version = head.len() > 1
                && head.starts_with('v')
                && head[1..].bytes().all(|b| b.is_ascii_digit());
            let id = !version && (head.bytes().any(|b| b.is_ascii_digit()) || head.len() > 20);
            let head = if id { "{id}" } else { head };
            match verb {
                Some(v) => format!("{head}:{v}"),
                None => head.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Logs errors answered without a body (every tonic handler error).
fn log_early_status(headers: &HeaderMap) {
    use tonic::Code;
    let Some(code) = super::metrics_layer::status_of(headers) else {
        return;
    };
    let code_name = super::metrics_layer::code_label(code);
    match code {
        Code::Ok => {}
        Code::Internal
        | Code::Unknown
        | Code::Unavailable
        | Code::DeadlineExceeded
        | Code::DataLoss => {
            tracing::warn!(grpc.code = code_name, "request failed")
        }
        _ => tracing::info!(grpc.code = code_name, "request rejected"),
    }
}

#[cfg(test)]
mod path_tests {
    use super::path_template;

    #[test]
    fn ids_and_secrets_leave_span_names() {
        assert_eq!(
            path_template("/v1/events/0196f1aa-8e0c-7c3e-9b1a-2f4f7c1d2e3f/registration"),
            "/v1/events/{id}/registration"
        );
        assert_eq!(
            path_template("/v1/events/0196f1aa-8e0c-7c3e-9b1a-2f4f7c1d2e3f:publish"),
            "/v1/events/{id}:publish"
        );
        assert_eq!(
            path_template("/v1/calendar/Zm9vYmFyYmF6cXV4cXV1eHF1dXo.ics"),
            "/v1/calendar/{id}"
        );
        assert_eq!(path_template("/v1/search"), "/v1/search");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_handler_runs_in_the_callers_trace_with_its_token_and_deadline() {
        crate::telemetry::init("test", &Default::default()).unwrap();
        let inner = tower::service_fn(|_req: Request<()>| async {
            let call = CallContext::current().unwrap();
            let seen = (
                crate::telemetry::current_traceparent(),
                call.authorization,
                call.deadline.is_some(),
            );
            Ok::<_, std::convert::Infallible>(Response::new(seen))
        });
        let mut svc = ServerContextLayer.layer(inner);
        let req = Request::builder()
            .uri("/cityevents.auth.v1.AuthService/GetMe")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header("authorization", "Bearer abc")
            .header("grpc-timeout", "5S")
            .body(())
            .unwrap();
        let (traceparent, auth, has_deadline) = svc.call(req).await.unwrap().into_body();
        assert!(
            traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "{traceparent}"
        );
        assert_eq!(auth.unwrap(), "Bearer abc");
        assert!(has_deadline);
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_reject_junk() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("1234567890S"), None);
        assert_eq!(format_grpc_timeout(Duration::from_micros(10)), "1m");
    }
}
