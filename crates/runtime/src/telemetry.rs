//! Logs and traces: JSON logs carrying the trace id, and OpenTelemetry spans
//! exported over OTLP/gRPC when an endpoint is configured.
//!
//! The tracing subscriber is process-global, so [`init`] installs it once and
//! later calls (several apps in one test binary) reuse it.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetryConfig;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Flushes and stops trace export when dropped via [`Telemetry::shutdown`].
#[derive(Debug, Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// Installs logging and tracing for `service` (once per process).
///
/// Must run inside a multi-thread Tokio runtime when an OTLP endpoint is set.
pub fn init(service: &str, cfg: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    if let Some(provider) = PROVIDER.get() {
        return Ok(Telemetry {
            provider: provider.clone(),
        });
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service, cfg)?;
    let tracer = provider.tracer(service.to_owned());
    let filter = EnvFilter::try_new(&cfg.log_filter)
        .map_err(|e| anyhow::anyhow!("telemetry.log_filter: {e}"))?;
    let fmt = match cfg.log_format.as_str() {
        "pretty" => tracing_subscriber::fmt::layer().with_target(false).boxed(),
        "json" => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .boxed(),
        other => anyhow::bail!("telemetry.log_format: {other:?} is not one of json, pretty"),
    };
    // The log filter quiets logs only: spans of info and above are traced
    // whatever is logged (a quiet `warn` log still gives whole traces).
    let traces = tracing_subscriber::filter::LevelFilter::INFO;
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(traces),
        )
        .try_init()
        .is_ok();
    if installed {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    let provider = PROVIDER.get_or_init(|| provider).clone();
    Ok(Telemetry { provider })
}

fn tracer_provider(service: &str, cfg: &TelemetryConfig) -> anyhow::Result<SdkTracerProvider> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio)));
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler);
    if let Some(endpoint) = &cfg.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_secs(5))
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

impl Telemetry {
    /// Flushes pending spans. Runs the flush off the async workers, where a
    /// blocking flush cannot deadlock the runtime.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let res = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Ok(Err(e)) = res {
            tracing::warn!(error = %e, "trace flush failed");
        }
    }
}

/// The trace id of `span` as 32 lowercase hex digits.
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// The W3C `traceparent` of the current span, for messages and outbound calls.
pub fn current_traceparent() -> String {
    traceparent_of(&tracing::Span::current())
}

/// The W3C `traceparent` of `span` (empty when it is not traced).
pub fn traceparent_of(span: &tracing::Span) -> String {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return String::new();
    }
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

/// The trace context a W3C `traceparent` names (empty if it names none).
fn context_of(traceparent: &str) -> opentelemetry::Context {
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier))
}

/// Makes `span` a child of the span `traceparent` names (a message's
/// producer, an outbox row's request); nothing if it names none.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    if !traceparent.is_empty() {
        let _ = span.set_parent(context_of(traceparent));
    }
}

/// Links `span` to the span `traceparent` names: work done for many
/// requests at once (a join batch) points at each of them.
pub fn add_link(span: &tracing::Span, traceparent: &str) {
    let cx = context_of(traceparent);
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}
