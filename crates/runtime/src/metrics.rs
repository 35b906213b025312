//! Prometheus metrics: one registry per app, with the gRPC ecosystem's metric
//! names. Services add their business metrics to the same registry.
//!
//! Labels never carry user or event ids: only service, method, type and code.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

const GRPC_LABELS: &[&str] = &["grpc_service", "grpc_method", "grpc_type"];
const GRPC_CODE_LABELS: &[&str] = &["grpc_service", "grpc_method", "grpc_type", "grpc_code"];
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The gRPC RED metrics of one side (server or client).
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    /// `grpc_<side>_started_total`.
    pub started: IntCounterVec,
    /// `grpc_<side>_handled_total` (server) / `grpc_client_handled_total`.
    pub handled: IntCounterVec,
    /// `grpc_server_handling_seconds` / `grpc_client_handling_seconds`.
    pub seconds: HistogramVec,
}

impl GrpcMetrics {
    fn register(registry: &Registry, side: &str) -> prometheus::Result<Self> {
        let started = IntCounterVec::new(
            Opts::new(
                format!("grpc_{side}_started_total"),
                format!("RPCs started on the {side}."),
            ),
            GRPC_LABELS,
        )?;
        let handled = IntCounterVec::new(
            Opts::new(
                format!("grpc_{side}_handled_total"),
                format!("RPCs completed on the {side}, by status code."),
            ),
            GRPC_CODE_LABELS,
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                format!("grpc_{side}_handling_seconds"),
                format!("Time from request to the final status on the {side}."),
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            GRPC_LABELS,
        )?;
        registry.register(Box::new(started.clone()))?;
        registry.register(Box::new(handled.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self {
            started,
            handled,
            seconds,
        })
    }
}

/// An app's metrics registry and the metrics every service has.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Server-side gRPC metrics.
    pub server: GrpcMetrics,
    /// Client-side gRPC metrics.
    pub client: GrpcMetrics,
    /// `redis_calls_total{use, result}`.
    redis: IntCounterVec,
}

/// Counts one use's Redis calls by result (`ok`, `error`); cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisCalls {
    ok: IntCounter,
    error: IntCounter,
}

impl RedisCalls {
    /// Counters registered nowhere (for tests and tools).
    pub fn unregistered() -> Self {
        Self {
            ok: IntCounter::new("redis_calls_ok", "unregistered").expect("valid name"),
            error: IntCounter::new("redis_calls_error", "unregistered").expect("valid name"),
        }
    }

    /// Counts `result` and hands it back.
    pub fn record<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        match &result {
            Ok(_) => self.ok.inc(),
            Err(_) => self.error.inc(),
        }
        result
    }
}

impl Metrics {
    /// A fresh registry holding the gRPC server and client metrics and the
    /// process's own (`process_cpu_seconds_total`,
    /// `process_resident_memory_bytes`, `process_open_fds`, …).
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let server = GrpcMetrics::register(&registry, "server")?;
        let client = GrpcMetrics::register(&registry, "client")?;
        let redis = IntCounterVec::new(
            Opts::new(
                "redis_calls_total",
                "Redis calls by use (rate_limit, revocation) and result (ok, error); the feed cache counts in feed_cache_requests_total.",
            ),
            &["use", "result"],
        )?;
        registry.register(Box::new(redis.clone()))?;
        Ok(Self {
            registry,
            server,
            client,
            redis,
        })
    }

    /// The counters of Redis calls made for `use_` (both results exported
    /// from the start, at 0, so error ratios exist before the first error).
    pub fn redis_calls(&self, use_: &str) -> RedisCalls {
        RedisCalls {
            ok: self.redis.with_label_values(&[use_, "ok"]),
            error: self.redis.with_label_values(&[use_, "error"]),
        }
    }

    /// The registry, for a service's own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a counter vector and returns it.
    pub fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.registry.register(Box::new(c.clone()))?;
        Ok(c)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let families = self.registry.gather();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod process_tests {
    use super::Metrics;

    #[test]
    fn every_registry_reports_the_process_cpu_memory_and_open_files() {
        let text = Metrics::new().unwrap().render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
