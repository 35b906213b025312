//! Logs and traces: JSON logs carrying the trace id, and OpenTelemetry spans
//! exported over OTLP/gRPC when an endpoint is configured.
//!
//! The tracing subscriber is process-global, so [`init`] installs it once and
//! later calls (several apps in one test binary) reuse it.

use std::sync::{Arc, OnceLock};
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
        "json" => json_logs(std::io::stdout).boxed(),
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

/// JSON log lines, each written inside a traced span starting with that
/// span's `trace_id` and `span_id`, so any line leads to its trace.
fn json_logs<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let dispatch = Arc::new(OnceLock::new());
    let format = tracing_subscriber::fmt::format()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true);
    let lines = tracing_subscriber::fmt::layer()
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(WithTraceIds {
            format,
            dispatch: dispatch.clone(),
        })
        .with_writer(writer);
    KeepDispatch(dispatch).and_then(lines)
}

/// Keeps the dispatch it is registered with, for [`WithTraceIds`] (inside
/// a subscriber's callback `tracing` gives no current dispatch).
struct KeepDispatch(Arc<OnceLock<tracing::dispatcher::WeakDispatch>>);

impl<S: tracing::Subscriber> Layer<S> for KeepDispatch {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

/// Puts `trace_id` and `span_id` first in each JSON line `format` writes.
struct WithTraceIds<F> {
    format: F,
    dispatch: Arc<OnceLock<tracing::dispatcher::WeakDispatch>>,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.format.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        let ids = ctx
            .lookup_current()
            .zip(self.dispatch.get().and_then(|d| d.upgrade()))
            .and_then(|(span, d)| tracing_opentelemetry::get_otel_context(&span.id(), &d))
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        match (ids, line.strip_prefix('{')) {
            (Some(sc), Some(rest)) => write!(
                writer,
                "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
                sc.trace_id(),
                sc.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

fn tracer_provider(service: &str, cfg: &TelemetryConfig) -> anyhow::Result<SdkTracerProvider> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio)));
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    // Recording the unsampled spans only pays where they can be exported.
    builder = match &cfg.otlp_endpoint {
        Some(_) => builder.with_sampler(KeepNotable(sampler)),
        None => builder.with_sampler(sampler),
    };
    if let Some(endpoint) = &cfg.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_secs(5))
            .build()?;
        let batches = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).build();
        builder = builder.with_span_processor(NotableSpans {
            next: batches,
            slow: (cfg.keep_slow_ms > 0).then(|| Duration::from_millis(cfg.keep_slow_ms)),
        });
    }
    Ok(builder.build())
}

/// Sampling that keeps what an SRE needs: `0`'s decision for whole traces,
/// and every other span recorded (not exported) so [`NotableSpans`] can
/// keep the ones that failed or were slow.
#[derive(Debug, Clone)]
struct KeepNotable(Sampler);

impl opentelemetry_sdk::trace::ShouldSample for KeepNotable {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry_sdk::trace::SamplingDecision;
        let mut r =
            self.0
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if r.decision == SamplingDecision::Drop {
            r.decision = SamplingDecision::RecordOnly;
        }
        r
    }
}

/// Passes on sampled spans, and of the rest those that ended in error or
/// took at least `slow` (marked sampled, so exporters take them).
#[derive(Debug)]
struct NotableSpans<P> {
    next: P,
    slow: Option<Duration>,
}

impl<P: opentelemetry_sdk::trace::SpanProcessor> opentelemetry_sdk::trace::SpanProcessor
    for NotableSpans<P>
{
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.next.on_start(span, cx);
    }

    fn on_end(&self, mut span: opentelemetry_sdk::trace::SpanData) {
        use opentelemetry::trace::{SpanContext, Status, TraceFlags};
        if !span.span_context.is_sampled() {
            let failed = matches!(span.status, Status::Error { .. });
            let took = span
                .end_time
                .duration_since(span.start_time)
                .unwrap_or_default();
            if !failed && self.slow.is_none_or(|slow| took < slow) {
                return;
            }
            let sc = &span.span_context;
            span.span_context = SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                TraceFlags::SAMPLED,
                sc.is_remote(),
                sc.trace_state().clone(),
            );
        }
        self.next.on_end(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.next.set_resource(resource);
    }
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

#[cfg(test)]
mod log_tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_json_line_written_in_a_span_names_its_trace_and_span() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let lines = Lines::default();
        let out = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(super::json_logs(move || out.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let request = tracing::info_span!("request");
            let _in = request.enter();
            tracing::info!(seats = 3, "inside");
            let inner = tracing::info_span!("query");
            let _deeper = inner.enter();
            tracing::info!("deeper");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed.len(), 3, "{text}");
        assert!(parsed[0].get("trace_id").is_none());
        let id = |i: usize, k: &str| parsed[i][k].as_str().map(str::to_owned);
        assert_eq!(id(1, "trace_id").map(|t| t.len()), Some(32), "{text}");
        assert_eq!(id(1, "span_id").map(|t| t.len()), Some(16), "{text}");
        assert_eq!(parsed[1]["seats"], 3);
        assert_eq!(id(2, "trace_id"), id(1, "trace_id"), "one trace");
        assert_ne!(id(2, "span_id"), id(1, "span_id"), "its own span");
    }
}

#[cfg(test)]
mod sampling_tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanProcessor};

    use super::{KeepNotable, NotableSpans};

    /// Collects the names of the spans passed on.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<String>>>);

    impl SpanProcessor for Kept {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: SpanData) {
            assert!(
                span.span_context.is_sampled(),
                "exporters take sampled spans only"
            );
            self.0.lock().unwrap().push(span.name.into_owned());
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn unsampled_traces_still_give_their_failed_and_slow_spans() {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(KeepNotable(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(0.0),
            ))))
            .with_span_processor(NotableSpans {
                next: kept.clone(),
                slow: Some(Duration::from_secs(1)),
            })
            .build();
        let tracer = provider.tracer("test");
        tracer.start("fast and fine").end();
        let mut failed = tracer.start("failed");
        failed.set_status(Status::error("boom"));
        failed.end();
        let started = SystemTime::now() - Duration::from_secs(2);
        let slow = tracer
            .span_builder("slow")
            .with_start_time(started)
            .start(&tracer);
        drop(slow);
        let names = kept.0.lock().unwrap().clone();
        assert_eq!(names, ["failed", "slow"]);
    }
}
