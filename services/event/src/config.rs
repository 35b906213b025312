//! The event service's settings.

use serde::{Deserialize, Serialize};

use cityevents_authn::VerifierConfig;
use cityevents_messaging::NatsConfig;
use cityevents_runtime::config::{DatabaseConfig, RedisConfig, ServerConfig, TelemetryConfig};
use cityevents_runtime::grpc::client::ClientConfig;

/// Everything the event service reads at start-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    /// Token revocation lookups.
    pub redis: RedisConfig,
    pub nats: NatsConfig,
    /// Token checks (issuer, audience, revocation prefix).
    pub verifier: VerifierConfig,
    /// The auth service, for its JWKS.
    pub auth: ClientConfig,
    /// The join service, for the capacity floor; empty endpoint skips it.
    pub join: ClientConfig,
    /// The media service, which checks and attaches cover images; with an
    /// empty endpoint events take no images.
    pub media: ClientConfig,
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
