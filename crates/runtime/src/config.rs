//! Typed configuration: defaults, then an optional TOML file, then the
//! environment (`CITYEVENTS_` prefix, `__` for nesting, e.g.
//! `CITYEVENTS_DATABASE__URL`). Config structs use `deny_unknown_fields`, so a
//! typo is an error at start-up, not a silently ignored setting. Tests build
//! config values directly instead of touching the process environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The environment prefix every setting shares.
pub const ENV_PREFIX: &str = "CITYEVENTS_";

/// Loads `T` from its defaults, `file` (if given) and the environment.
pub fn load<T>(file: Option<&Path>) -> anyhow::Result<T>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        anyhow::ensure!(
            file.exists(),
            "config file {} does not exist",
            file.display()
        );
        fig = fig.merge(Toml::file(file));
    }
    fig.merge(Env::prefixed(ENV_PREFIX).split("__"))
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where and how a service listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP address (`/metrics`, `/healthz`).
    pub admin_addr: SocketAddr,
    /// Upper bound on any request's handling time, in milliseconds.
    pub request_timeout_ms: u64,
    /// Requests handled at once per connection before callers queue.
    pub concurrency_limit: usize,
    /// Time between NOT_SERVING and closing listeners, so balancers notice.
    pub drain_delay_ms: u64,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace_ms: u64,
    /// Streams a peer may reset before the server accepted them, per
    /// connection, before GOAWAY (h2's reset-flood protection; its default
    /// of 20 is met by any client cancelling calls at their deadlines).
    pub http2_max_pending_accept_resets: usize,
    /// Streams the server may reset on errors, per connection, before GOAWAY.
    pub http2_max_local_error_resets: usize,
    /// Request headers a call may carry, in bytes (HTTP/2's count: name,
    /// value and 32 a header); over it the call alone is refused
    /// (RESOURCE_EXHAUSTED `HEADERS_TOO_LARGE`, 431 on REST).
    pub max_header_bytes: usize,
    /// The header block HTTP/2 reads at all; a larger one ends the
    /// connection (h2's GOAWAY), so it sits far above `max_header_bytes`.
    pub http2_max_header_list_size: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_addr: ([0, 0, 0, 0], 50051).into(),
            admin_addr: ([0, 0, 0, 0], 9090).into(),
            request_timeout_ms: 10_000,
            concurrency_limit: 256,
            drain_delay_ms: 0,
            shutdown_grace_ms: 20_000,
            http2_max_pending_accept_resets: 4_096,
            http2_max_local_error_resets: 65_536,
            max_header_bytes: 16 * 1024,
            http2_max_header_list_size: 1024 * 1024,
        }
    }
}

impl ServerConfig {
    /// Loopback on port 0 for both listeners, no drain delay: for tests.
    pub fn ephemeral() -> Self {
        Self {
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            admin_addr: ([127, 0, 0, 1], 0).into(),
            shutdown_grace_ms: 5_000,
            ..Self::default()
        }
    }
    /// Request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `tracing` filter directive, e.g. `info,sqlx=warn`.
    pub log_filter: String,
    /// `json` (default) or `pretty`.
    pub log_format: String,
    /// OTLP/gRPC collector endpoint; traces are exported only when set.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces kept whole (parent decisions are honoured).
    pub sample_ratio: f64,
    /// Spans of the other traces that failed or took at least this long
    /// are kept too (0: none).
    pub keep_slow_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info,sqlx=warn,h2=warn,tower=warn".into(),
            log_format: "json".into(),
            otlp_endpoint: None,
            sample_ratio: 0.1,
            keep_slow_ms: 1_000,
        }
    }
}

/// A PostgreSQL pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db`.
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// How long a request waits for a connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Apply migrations at start-up (the chart's hook runs them otherwise).
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            max_connections: 16,
            acquire_timeout_ms: 3_000,
            migrate_on_start: true,
        }
    }
}

/// A Redis connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: Secret,
    /// Prefix for every key this service writes (tests use a unique one).
    pub key_prefix: String,
    /// How long one command may take before it fails as UNAVAILABLE.
    pub response_timeout_ms: u64,
    /// How long connecting may take.
    pub connect_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("redis://127.0.0.1:6379"),
            key_prefix: "ce:".into(),
            response_timeout_ms: 2_000,
            connect_timeout_ms: 2_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        server: ServerConfig,
        database: DatabaseConfig,
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[database]\nmax_connections = 3\n").unwrap();
        let cfg: Sample = load(Some(&good)).unwrap();
        assert_eq!(cfg.database.max_connections, 3);

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[database]\nmax_conections = 3\n").unwrap();
        let err = load::<Sample>(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("max_conections"), "{err}");
    }
}
