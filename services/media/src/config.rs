//! The media service's settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use cityevents_authn::VerifierConfig;
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
    pub media: MediaConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Where images are stored (the local file system).
    pub storage_path: PathBuf,
    /// Largest upload, in bytes.
    pub max_bytes: u64,
    /// Most pixels an image may have (width × height), checked from its
    /// header before anything is decoded.
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Images decoded at once at most (each takes a core while it runs).
    pub workers: usize,
    /// Signs image URLs: `<key id>:<secret>`, the first signs, all verify
    /// (rotation: add the new key first, drop the old one after the
    /// longest URL life).
    pub url_keys: Vec<Secret>,
    /// Life of a signed URL, in seconds.
    pub url_ttl_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            storage_path: PathBuf::from("/var/lib/cityevents/media"),
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_side: 12_000,
            workers: 1,
            url_keys: Vec::new(),
            url_ttl_secs: 3_600,
        }
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
