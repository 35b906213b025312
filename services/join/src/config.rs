//! The join service's settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use cityevents_authn::{SigningKey, VerifierConfig};
use cityevents_messaging::NatsConfig;
use cityevents_runtime::config::{
    DatabaseConfig, RedisConfig, Secret, ServerConfig, TelemetryConfig,
};
use cityevents_runtime::grpc::client::ClientConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    /// Token revocation lookups.
    pub redis: RedisConfig,
    pub nats: NatsConfig,
    pub verifier: VerifierConfig,
    /// The auth service, for its JWKS.
    pub auth: ClientConfig,
    /// The event service, for snapshots the stream has not delivered yet.
    pub event: ClientConfig,
    pub tickets: TicketConfig,
    pub batch: BatchConfig,
}

/// The key that signs ticket codes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketConfig {
    /// PKCS#8 PEM Ed25519 key file (`auth keygen` makes one).
    pub signing_key_file: Option<PathBuf>,
    /// The same, inline (tests).
    pub signing_key: Option<Secret>,
}

impl TicketConfig {
    pub fn load(&self) -> anyhow::Result<SigningKey> {
        if let Some(path) = &self.signing_key_file {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("tickets.signing_key_file: {}: {e}", path.display())
            })?;
            return SigningKey::from_pem(&pem);
        }
        if let Some(pem) = &self.signing_key {
            return SigningKey::from_pem(pem.expose());
        }
        anyhow::bail!("no ticket key: set tickets.signing_key_file (create one with `auth keygen`)")
    }
}

/// The join hot path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Parallel batch workers (events hash to one); each holds one connection.
    /// Fewer shards make larger batches (less work per join); two keep the
    /// database busy while one waits for its commit (docs/benchmarks.md).
    pub shards: usize,
    /// Joins settled per transaction at most.
    pub max_batch: usize,
    /// Joins queued per shard at most; beyond it (or when the queue ahead
    /// would outlast a join's deadline) joins are refused at once with
    /// RESOURCE_EXHAUSTED and `retry-after`.
    pub max_queue: usize,
    /// Seconds between sweeps of expired idempotency keys.
    pub key_sweep_secs: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            shards: 2,
            max_batch: 500,
            max_queue: 4_096,
            key_sweep_secs: 300,
        }
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
