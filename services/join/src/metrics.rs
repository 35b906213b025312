//! Join business metrics (no user or event ids in labels).

use prometheus::{Histogram, HistogramOpts, IntCounterVec};

use cityevents_runtime::metrics::Metrics;

#[derive(Clone)]
pub struct JoinMetrics {
    /// `join_requests_total{result}`: confirmed, waitlisted, replayed, refused.
    pub joins: IntCounterVec,
    /// `join_leaves_total{kind}`: left, removed.
    pub leaves: IntCounterVec,
    /// `join_batch_size`: joins settled per transaction.
    pub batch_size: Histogram,
}

impl JoinMetrics {
    pub fn register(m: &Metrics) -> prometheus::Result<Self> {
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("join_batch_size", "Joins settled per transaction.").buckets(vec![
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
            ]),
        )?;
        m.registry().register(Box::new(batch_size.clone()))?;
        Ok(Self {
            joins: m.counter("join_requests_total", "Joins by result.", &["result"])?,
            leaves: m.counter("join_leaves_total", "Cancellations by kind.", &["kind"])?,
            batch_size,
        })
    }
}
