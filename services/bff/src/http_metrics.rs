//! HTTP server metrics of the BFF's browser side (REST/JSON, server-sent
//! events, gRPC-web), named and labelled as OpenTelemetry's HTTP semantic
//! conventions say: `http_server_request_duration_seconds` by
//! `http_request_method`, `http_route` and `http_response_status_code`.
//! Native gRPC is measured by `grpc_server_*` instead.
//!
//! `http_route` is a template, never a path: a REST route as the proto
//! writes it (`/v1/events/{event_id}:publish`, set by the handler on the
//! response), a gRPC-web method of this BFF, or `unmatched` — so a caller
//! cannot grow the label with made-up paths. The duration runs to the
//! response's headers (for a live stream: until it starts).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response};
use prometheus::{HistogramOpts, HistogramVec, Registry};

/// The route a response answered, put on it by the handler.
#[derive(Clone, Debug)]
pub struct HttpRoute(pub String);

/// Buckets the conventions recommend, in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Clone)]
pub struct HttpMetrics {
    duration: HistogramVec,
    /// `/package.Service/Method` of every public method.
    grpc_methods: Arc<HashSet<String>>,
}

impl HttpMetrics {
    pub fn register(
        registry: &Registry,
        grpc_methods: HashSet<String>,
    ) -> prometheus::Result<Self> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Duration of HTTP requests (REST, SSE, gRPC-web) to their response headers.",
            )
            .buckets(BUCKETS.to_vec()),
            &[
                "http_request_method",
                "http_route",
                "http_response_status_code",
            ],
        )?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            duration,
            grpc_methods: Arc::new(grpc_methods),
        })
    }

    /// What to label a request with before it is answered.
    pub fn start<B>(&self, req: &Request<B>) -> Started {
        let path = req.uri().path();
        Started {
            at: Instant::now(),
            method: method_label(req.method()),
            grpc_route: self.grpc_methods.contains(path).then(|| path.to_owned()),
        }
    }

    pub fn finish<B>(&self, started: Started, res: &Response<B>) {
        let route = res
            .extensions()
            .get::<HttpRoute>()
            .map(|r| r.0.clone())
            .or(started.grpc_route)
            .unwrap_or_else(|| "unmatched".to_owned());
        self.duration
            .with_label_values(&[started.method, &route, res.status().as_str()])
            .observe(started.at.elapsed().as_secs_f64());
    }
}

pub struct Started {
    at: Instant,
    method: &'static str,
    grpc_route: Option<String>,
}

/// Known methods as themselves, the rest as `_OTHER` (as the conventions say).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}
