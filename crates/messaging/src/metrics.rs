//! Outbox and consumer metrics.

use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use cityevents_runtime::metrics::Metrics;

/// Registered once per app.
#[derive(Clone)]
pub struct MessagingMetrics {
    /// `outbox_backlog{producer}`: unpublished rows.
    pub outbox_backlog: IntGaugeVec,
    /// `outbox_oldest_unpublished_seconds{producer}`.
    pub outbox_oldest_seconds: IntGaugeVec,
    /// `outbox_published_total{producer}`.
    pub published: IntCounterVec,
    /// `outbox_publish_failures_total{producer}`.
    pub publish_failures: IntCounterVec,
    /// `outbox_parked_total{producer}`: rows JetStream refused for good.
    pub parked: IntCounterVec,
    /// `outbox_parked_rows{producer}`: rows waiting in `outbox_parked` (alert
    /// when above 0).
    pub parked_rows: IntGaugeVec,
    /// `consumer_handled_total{consumer,result}`: ok, duplicate, retry, dead_letter.
    pub handled: IntCounterVec,
    /// `consumer_redeliveries_total{consumer}`.
    pub redeliveries: IntCounterVec,
    /// `consumer_dead_letters_total{consumer}`.
    pub dead_letters: IntCounterVec,
    /// `consumer_pending_messages{consumer}`: consumer lag.
    pub pending: IntGaugeVec,
}

impl MessagingMetrics {
    /// Registers the metrics in `m`'s registry.
    pub fn register(m: &Metrics) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            m.registry().register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Self {
            outbox_backlog: gauge(
                "outbox_backlog",
                "Outbox rows not yet published.",
                &["producer"],
            )?,
            outbox_oldest_seconds: gauge(
                "outbox_oldest_unpublished_seconds",
                "Age of the oldest unpublished outbox row.",
                &["producer"],
            )?,
            published: m.counter(
                "outbox_published_total",
                "Outbox rows published.",
                &["producer"],
            )?,
            publish_failures: m.counter(
                "outbox_publish_failures_total",
                "Failed publish attempts.",
                &["producer"],
            )?,
            parked: m.counter(
                "outbox_parked_total",
                "Outbox rows parked because JetStream refuses them.",
                &["producer"],
            )?,
            parked_rows: gauge(
                "outbox_parked_rows",
                "Outbox rows waiting in outbox_parked for an operator.",
                &["producer"],
            )?,
            handled: m.counter(
                "consumer_handled_total",
                "Messages handled by result.",
                &["consumer", "result"],
            )?,
            redeliveries: m.counter(
                "consumer_redeliveries_total",
                "Messages delivered again.",
                &["consumer"],
            )?,
            dead_letters: m.counter(
                "consumer_dead_letters_total",
                "Messages parked as dead letters.",
                &["consumer"],
            )?,
            pending: gauge(
                "consumer_pending_messages",
                "Messages not yet delivered (lag).",
                &["consumer"],
            )?,
        })
    }

    /// Makes every series of `producer` exist (at 0), so dashboards and
    /// alerts see a quiet outbox rather than none.
    pub fn touch_producer(&self, producer: &str) {
        let p = &[producer];
        self.outbox_backlog.with_label_values(p);
        self.outbox_oldest_seconds.with_label_values(p);
        self.published.with_label_values(p);
        self.publish_failures.with_label_values(p);
        self.parked.with_label_values(p);
        self.parked_rows.with_label_values(p);
    }

    /// Makes every series of `consumer` exist (at 0).
    pub fn touch_consumer(&self, consumer: &str) {
        for result in ["ok", "duplicate", "retry", "dead_letter"] {
            self.handled.with_label_values(&[consumer, result]);
        }
        self.redeliveries.with_label_values(&[consumer]);
        self.dead_letters.with_label_values(&[consumer]);
        self.pending.with_label_values(&[consumer]);
    }
}
