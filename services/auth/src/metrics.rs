//! The auth service's business metrics (no user ids in labels).

use prometheus::IntCounterVec;

use cityevents_runtime::metrics::Metrics;

/// Counters for logins, registrations, refreshes and admin actions.
#[derive(Clone)]
pub struct AuthMetrics {
    /// `auth_logins_total{result}`: ok, bad_credentials, banned, rate_limited.
    pub logins: IntCounterVec,
    /// `auth_registrations_total{result}`: ok, duplicate, rate_limited.
    pub registrations: IntCounterVec,
    /// `auth_refreshes_total{result}`: ok, reuse_detected, invalid.
    pub refreshes: IntCounterVec,
    /// `auth_admin_actions_total{action}`.
    pub admin_actions: IntCounterVec,
}

impl AuthMetrics {
    /// Registers the counters in `metrics`' registry.
    pub fn register(metrics: &Metrics) -> prometheus::Result<Self> {
        Ok(Self {
            logins: metrics.counter(
                "auth_logins_total",
                "Login attempts by result.",
                &["result"],
            )?,
            registrations: metrics.counter(
                "auth_registrations_total",
                "Sign-ups by result.",
                &["result"],
            )?,
            refreshes: metrics.counter(
                "auth_refreshes_total",
                "Refresh-token rotations by result.",
                &["result"],
            )?,
            admin_actions: metrics.counter(
                "auth_admin_actions_total",
                "Role changes and bans.",
                &["action"],
            )?,
        })
    }
}
