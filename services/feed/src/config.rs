//! The feed service's settings.

use serde::{Deserialize, Serialize};

use cityevents_authn::VerifierConfig;
use cityevents_messaging::NatsConfig;
use cityevents_runtime::config::{
    DatabaseConfig, RedisConfig, Secret, ServerConfig, TelemetryConfig,
};
use cityevents_runtime::grpc::client::ClientConfig;

/// Everything the feed service reads at start-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// The projection's own database (PostGIS, pg_trgm and unaccent).
    pub database: DatabaseConfig,
    /// Hot pages, and token revocation lookups.
    pub redis: RedisConfig,
    pub nats: NatsConfig,
    /// Token checks ("for you" and calendar links need the caller).
    pub verifier: VerifierConfig,
    /// The auth service, for its JWKS.
    pub auth: ClientConfig,
    pub feed: FeedConfig,
}

/// Discovery's own knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Signs page cursors (HMAC-SHA256), so a tampered cursor is refused.
    /// Every replica needs the same key; empty makes a random one per
    /// process (cursors then only work on the replica that made them).
    pub cursor_key: Secret,
    /// How long a cached page lives in Redis, in milliseconds. A change
    /// to a listing (publish, update, cancel, hide) drops every cached page
    /// at once; seat counts in a cached page may lag by up to this long.
    /// 0 turns the cache off.
    pub cache_ttl_ms: u64,
    /// How long a read may wait for the projection to apply a `read_after`
    /// version, in milliseconds.
    pub read_after_wait_ms: u64,
    /// Typos are corrected when the words as typed find fewer than this
    /// many events on a first page.
    pub fuzzy_below: usize,
    /// How alike (pg_trgm similarity, 0–1) a misspelt word and its
    /// correction must be; lower forgives more.
    pub fuzzy_threshold: f32,
    /// Events ranked at most per search or feed: ranking only a bounded
    /// candidate set keeps a broad query from sorting the whole table.
    pub max_candidates: i64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            cursor_key: Secret::default(),
            cache_ttl_ms: 2_000,
            read_after_wait_ms: 2_000,
            fuzzy_below: 3,
            fuzzy_threshold: 0.35,
            max_candidates: 1_000,
        }
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
