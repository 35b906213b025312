//! Join business metrics (no user or event ids in labels).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec};

use cityevents_runtime::metrics::Metrics;

#[derive(Clone)]
pub struct JoinMetrics {
    /// `join_requests_total{result}`: confirmed, waitlisted, replayed,
    /// refused, expired (the deadline passed first).
    pub joins: IntCounterVec,
    /// `join_leaves_total{kind}`: left, removed.
    pub leaves: IntCounterVec,
    /// `join_refusals_total{reason}`: refused joins by their error's reason
    /// (a fixed set: FULL, WAITLIST_FULL, EVENT_NOT_FOUND, …).
    pub refusals: IntCounterVec,
    /// `join_promotions_total`: waitlisted people confirmed by a leave.
    pub promotions: IntCounter,
    /// `join_check_ins_total{result}`: first, again (a ticket shown twice).
    pub check_ins: IntCounterVec,
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
        let promotions = IntCounter::new(
            "join_promotions_total",
            "Waitlisted people confirmed when a place freed.",
        )?;
        m.registry().register(Box::new(promotions.clone()))?;
        let joins = m.counter("join_requests_total", "Joins by result.", &["result"])?;
        let leaves = m.counter("join_leaves_total", "Cancellations by kind.", &["kind"])?;
        let check_ins = m.counter("join_check_ins_total", "Check-ins by result.", &["result"])?;
        let refusals = m.counter(
            "join_refusals_total",
            "Refused joins by reason.",
            &["reason"],
        )?;
        // Every series exists from the start (dashboards and alerts see 0,
        // not nothing).
        for r in ["confirmed", "waitlisted", "replayed", "refused", "expired"] {
            joins.with_label_values(&[r]);
        }
        for k in ["left", "removed"] {
            leaves.with_label_values(&[k]);
        }
        for r in ["first", "again"] {
            check_ins.with_label_values(&[r]);
        }
        Ok(Self {
            refusals,
            promotions,
            check_ins,
            joins,
            leaves,
            batch_size,
        })
    }
}
